# The google-calendar plugin's messages to callers (tool results and errors the agent relays).
not-a-date = '{ $given }' is not a date; use YYYY-MM-DD
not-a-local-time = '{ $given }' is not a local time; use YYYY-MM-DD HH:MM, e.g. 2027-06-01 10:00
clocks-forward = { $start } does not exist in { $zone }: the clocks go forward then; offer another time
has-passed = { $start } has passed; offer a later time from FindFreeSlots
not-bookable = { $start } is not a bookable start: appointments are { $minutes } minutes, starting on the grid from each opening ({ $day }: { $hours }); use a time FindFreeSlots returned
closed = closed
out-of-range = the time is out of range
taken = { $when } was just booked by someone else. Call FindFreeSlots again and offer another time.
that-time = That time
no-booking = No appointment with eventId { $id } and that bookingRef. Use both as BookAppointment returned them.
not-ours = Event { $id } was not booked through this assistant; staff can change it in the calendar.
no-event = No appointment with eventId { $id }.
changed = Appointment { $id } was just changed by someone else; check it with ListAppointments and try again.
date-out-of-range = the date is out of range
old-not-cancelled = The old appointment { $id } could not be cancelled ({ $why }); cancel it with CancelAppointment.
