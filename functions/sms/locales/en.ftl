# The sms plugin's messages to callers (tool results and errors the agent relays).
no-number = give the number to text in E.164 form, e.g. +15558675310: this call has no caller number to default to
not-sent = Twilio did not send the text: { $said }{ $code }
rate-limited = Twilio is limiting this account's sending rate; retry shortly
unknown-message = No text with messageSid { $sid } was sent from this account. Use the messageSid SendSms returned.
bad-time = give the start as RFC 3339 with an offset, e.g. 2027-06-01T10:00:00-05:00
out-of-range = the time is out of range
too-soon = the appointment is less than { $minutes ->
        [one] a minute
       *[other] { $minutes } minutes
    } away, when its reminder would go out: send a text now with SendSms instead
too-far = a reminder can be scheduled at most a year ahead
no-reason = the request was refused
twilio-code = Twilio error { $code }
