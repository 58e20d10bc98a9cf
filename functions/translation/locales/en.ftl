# The translation plugin's messages to callers (tool results and errors the agent relays).
unsupported-pair = Amazon Translate does not translate from { $from } into { $target }; use a language pair it supports, e.g. en and es, fr, de, pt, zh, ja
unsupported-from-detected = Amazon Translate does not translate from the text's language into { $target }; use a language pair it supports, e.g. en and es, fr, de, pt, zh, ja
no-detection-here = Amazon Translate cannot detect languages in this deployment's region; give sourceLanguage
refused-text = Amazon Translate refused the request: check the language codes and the text
refused-codes = Amazon Translate refused the request: check the language codes
low-confidence = Amazon Translate could not tell which language this is: give sourceLanguage, or a longer text
too-long = the text is longer than Amazon Translate takes at once (10,000 bytes): send it in parts
limited = Amazon Translate is limiting this account; retry shortly
unavailable = Amazon Translate is unavailable; retry shortly
