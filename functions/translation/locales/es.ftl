# Los mensajes del plugin translation para quien llama (resultados y errores que el agente transmite).
unsupported-pair = Amazon Translate no traduce de { $from } a { $target }; use un par de idiomas que admita, p. ej. en y es, fr, de, pt, zh, ja
unsupported-from-detected = Amazon Translate no traduce del idioma del texto a { $target }; use un par de idiomas que admita, p. ej. en y es, fr, de, pt, zh, ja
no-detection-here = Amazon Translate no puede detectar idiomas en la región de esta instalación; indique sourceLanguage
refused-text = Amazon Translate rechazó la petición: compruebe los códigos de idioma y el texto
refused-codes = Amazon Translate rechazó la petición: compruebe los códigos de idioma
low-confidence = Amazon Translate no pudo saber en qué idioma está: indique sourceLanguage o un texto más largo
too-long = el texto es más largo de lo que Amazon Translate acepta de una vez (10.000 bytes): envíelo por partes
limited = Amazon Translate está limitando esta cuenta; vuelva a intentarlo en unos momentos
unavailable = Amazon Translate no está disponible; vuelva a intentarlo en unos momentos
