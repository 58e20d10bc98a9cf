# The booking plugin's messages to callers (tool results and errors the agent relays),
# written to be read out by a receptionist.

## Dates and times as a receptionist says them: "Tuesday 2 December", "10:30 on Tuesday 2 December".
day-1 = Monday
day-2 = Tuesday
day-3 = Wednesday
day-4 = Thursday
day-5 = Friday
day-6 = Saturday
day-7 = Sunday
days-1 = Mondays
days-2 = Tuesdays
days-3 = Wednesdays
days-4 = Thursdays
days-5 = Fridays
days-6 = Saturdays
days-7 = Sundays
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December
speak-date = { $weekday } { $day } { $month }
when = { $time } on { $date }
when-start = { $time } on { $date }
either = { $a } or { $b }
day-range = { $first } to { $last }
hours-span = { $days } { $open } to { $close }
no-hours = no office hours are configured

## The time rules.
not-a-date = '{ $given }' is not a calendar date; use YYYY-MM-DD, for example 2026-03-14
not-a-datetime = '{ $given }' is not a date and time; use YYYY-MM-DD HH:MM in the practice's local time, for example 2026-03-14 10:30
bad-duration = An appointment lasts a multiple of { $slot } minutes, up to { $max } minutes; { $minutes } minutes is not possible.
day-passed = { $date } has already passed; today is { $today }.
no-same-day = Same-day appointments cannot be booked; the earliest bookable day is tomorrow, { $tomorrow }.
tomorrow = tomorrow
beyond-horizon = We can only book up to { $days ->
        [one] one day
       *[other] { $days } days
    } ahead; the last bookable day is { $last } { $year }.
closed = The office is closed on { $days }, so { $date } cannot be booked. Office hours are { $hours }.
within = On { $days } the office is open { $open } to { $close }, so a { $minutes }-minute appointment can start from { $first } to { $latest }.
outside-hours = { $when } is outside office hours. { $within }
off-grid = Appointments start every { $slot } minutes from { $open }; { $start } is not a start time. The nearest are { $options }.
clocks-forward = { $when } does not exist because the clocks go forward that night; offer another time.
too-far = { $when } is too far ahead to book.
in-past = { $when } is in the past; it is now { $time } on { $today }.
ends-after-closing = A { $minutes }-minute appointment at { $when } would end after closing. { $within }

## Appointments.
another-time = Offer another time; GetAvailableSlots lists open times.
no-provider = No provider with ProvNum { $n }. Use GetProviders to list the practice's providers.
no-operatory = No operatory with Op { $n }. Leave Op out and a free treatment room is picked automatically.
no-appointment = No appointment with AptNum { $n }. Use GetAppointments with the patient's PatNum to find it.
consent-needed = Read the appointment details back to the patient and ask them to confirm; then call again with patientConsent set to true.
provider-busy = { $provider } is already booked at { $at }. { $another }
patient-overlap = { $patient } already has an appointment at { $other } (AptNum { $n }), which overlaps { $at }. Use RescheduleAppointment to move it, or offer another time.
room-busy = { $room } is already in use at { $at }. Leave Op out to use any free room, or offer another time.
no-rooms = The practice has no operatories (treatment rooms) set up, so nothing can be booked yet.
no-free-room = No treatment room is free for { $minutes } minutes at { $at }. { $another }
no-open-times = There are no open { $minutes }-minute times on { $date }. Try another day.
no-open-times-with = There are no open { $minutes }-minute times with { $provider } on { $date }. Try another day.
end-before-start = endDate { $end } is before startDate { $start }.
end-needs-start = Give endDate together with startDate.
start-needs-end = Give startDate together with endDate.
list-needs = Give the patient's PatNum, or a startDate and endDate (YYYY-MM-DD), to list appointments.
already-cancelled = Appointment { $n } was already cancelled.
already-cancelled-rebook = Appointment { $n } was already cancelled. Book a new one with CreateAppointment.
odd-status = Appointment { $n } has status { $status }, so it cannot be { $verb ->
        [reschedule] rescheduled
       *[cancel] cancelled
    } by phone.
already-past = Appointment { $n } at { $when } has already started or passed, so it cannot be { $verb ->
        [reschedule] rescheduled
       *[cancel] cancelled
    }.
just-changed = That appointment was just changed; check it with GetAppointments.
just-taken = That time was just taken by another booking. { $another }
patient-n = Patient { $n }
provider-n = provider { $n }
operatory-n = operatory { $n }

## Patients.
limit-range = limit must be 1 to { $max }
no-patient = No patient with PatNum { $n }. Use SearchPatients with the caller's phone number or name to find the right PatNum.
few-digits = '{ $given }' has too few digits to search by; ask for the full phone number.
search-needs = Give a phone number or a name to search for; ask the caller for the phone number on file.
too-many = More than { $max } patients match; only the first { $max } are listed. Ask the caller for their phone number or full name to narrow it down.
name-required = the patient's { $what ->
        [first] first name
       *[last] last name
    } is required
not-a-phone = '{ $given }' is not a phone number; ask the caller to repeat it.
birth-future = A birth date of { $date } { $year } is in the future; ask the caller to repeat it.
birth-implausible = A birth year of { $year } is not plausible.
patient-on-file = { $name } is already on file as PatNum { $n }. Use that patient instead of creating a new one.
bad-cursor = that cursor is not one this listing handed out; list again without it
