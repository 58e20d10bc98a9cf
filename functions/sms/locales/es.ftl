# Los mensajes del plugin sms para quien llama (resultados y errores que el agente transmite).
no-number = indique el número al que enviar el mensaje en formato E.164, p. ej. +15558675310: esta llamada no tiene un número de origen que usar
not-sent = Twilio no envió el mensaje: { $said }{ $code }
rate-limited = Twilio está limitando el ritmo de envío de esta cuenta; vuelva a intentarlo en unos momentos
unknown-message = Esta cuenta no envió ningún mensaje con messageSid { $sid }. Use el messageSid que devolvió SendSms.
bad-time = indique el inicio en RFC 3339 con su diferencia con UTC, p. ej. 2027-06-01T10:00:00-05:00
out-of-range = la hora está fuera de rango
too-soon = faltan menos de { $minutes ->
        [one] un minuto
       *[other] { $minutes } minutos
    } para la cita, cuando saldría su recordatorio: envíe en su lugar un mensaje ahora con SendSms
too-far = un recordatorio se puede programar como máximo con un año de antelación
no-reason = la petición fue rechazada
twilio-code = error de Twilio { $code }
