# The zoom plugin's messages to callers (tool results and errors the agent relays).
no-such-meeting = Zoom has no such meeting: { $said }
not-taken = Zoom did not take the meeting: { $said }
rate-limited = Zoom is limiting this account's request rate; retry shortly
bad-time = give the start as RFC 3339 with an offset, e.g. 2027-06-01T10:00:00-05:00
already-started = the appointment has already started: a meeting is created for a future start
out-of-range = the start is out of range
list-needs-scope = listing every booking's meeting needs a key with the { $scope } scope; give the bookingRef of the caller's appointment
no-reason = the request was refused
