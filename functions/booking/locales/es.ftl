# Los mensajes del plugin booking para quien llama (resultados y errores que el agente
# transmite), escritos para que una recepcionista los lea en voz alta.

## Fechas y horas como las dice una recepcionista: "martes 2 de diciembre", "el martes 2 de diciembre a las 10:30".
day-1 = lunes
day-2 = martes
day-3 = miércoles
day-4 = jueves
day-5 = viernes
day-6 = sábado
day-7 = domingo
days-1 = los lunes
days-2 = los martes
days-3 = los miércoles
days-4 = los jueves
days-5 = los viernes
days-6 = los sábados
days-7 = los domingos
month-1 = enero
month-2 = febrero
month-3 = marzo
month-4 = abril
month-5 = mayo
month-6 = junio
month-7 = julio
month-8 = agosto
month-9 = septiembre
month-10 = octubre
month-11 = noviembre
month-12 = diciembre
speak-date = { $weekday } { $day } de { $month }
when = el { $date } a las { $time }
when-start = El { $date } a las { $time }
either = { $a } o { $b }
day-range = de { $first } a { $last }
hours-span = { $days } de { $open } a { $close }
no-hours = no hay horario de atención configurado

## Las reglas de horario.
not-a-date = '{ $given }' no es una fecha del calendario; use AAAA-MM-DD, por ejemplo 2026-03-14
not-a-datetime = '{ $given }' no es una fecha y hora; use AAAA-MM-DD HH:MM en la hora local de la consulta, por ejemplo 2026-03-14 10:30
bad-duration = Una cita dura un múltiplo de { $slot } minutos, hasta { $max } minutos; { $minutes } minutos no es posible.
day-passed = El { $date } ya ha pasado; hoy es { $today }.
no-same-day = No se pueden reservar citas para el mismo día; el primer día reservable es mañana, { $tomorrow }.
tomorrow = mañana
beyond-horizon = Solo podemos reservar con { $days ->
        [one] un día
       *[other] { $days } días
    } de antelación; el último día reservable es el { $last } de { $year }.
closed = La consulta cierra { $days }, así que no se puede reservar el { $date }. El horario es: { $hours }.
within = Horario de { $days }: de { $open } a { $close }, así que una cita de { $minutes } minutos puede empezar de { $first } a { $latest }.
outside-hours = { $when } está fuera del horario de atención. { $within }
off-grid = Las citas empiezan cada { $slot } minutos desde las { $open }; { $start } no es una hora de inicio. Las más cercanas son { $options }.
clocks-forward = { $when } no existe porque esa noche se adelantan los relojes; ofrezca otra hora.
too-far = { $when } está demasiado lejos para reservar.
in-past = { $when } ya ha pasado; ahora son las { $time } del { $today }.
ends-after-closing = Una cita de { $minutes } minutos { $when } terminaría después del cierre. { $within }

## Citas.
another-time = Ofrezca otra hora; GetAvailableSlots indica las horas libres.
no-provider = No hay ningún profesional con ProvNum { $n }. Use GetProviders para ver los profesionales de la consulta.
no-operatory = No hay ningún gabinete con Op { $n }. Omita Op y se elegirá automáticamente un gabinete libre.
no-appointment = No hay ninguna cita con AptNum { $n }. Use GetAppointments con el PatNum del paciente para encontrarla.
consent-needed = Lea al paciente los detalles de la cita y pídale que los confirme; después vuelva a llamar con patientConsent en true.
provider-busy = { $provider } ya tiene una cita { $at }. { $another }
patient-overlap = { $patient } ya tiene una cita { $other } (AptNum { $n }), que se solapa con { $at }. Use RescheduleAppointment para moverla u ofrezca otra hora.
room-busy = { $room } ya está ocupado { $at }. Omita Op para usar cualquier gabinete libre u ofrezca otra hora.
no-rooms = La consulta no tiene gabinetes configurados, así que todavía no se puede reservar nada.
no-free-room = No hay ningún gabinete libre durante { $minutes } minutos { $at }. { $another }
no-open-times = No hay horas libres de { $minutes } minutos el { $date }. Pruebe otro día.
no-open-times-with = No hay horas libres de { $minutes } minutos con { $provider } el { $date }. Pruebe otro día.
end-before-start = endDate { $end } es anterior a startDate { $start }.
end-needs-start = Indique endDate junto con startDate.
start-needs-end = Indique startDate junto con endDate.
list-needs = Indique el PatNum del paciente, o startDate y endDate (AAAA-MM-DD), para listar citas.
already-cancelled = La cita { $n } ya estaba cancelada.
already-cancelled-rebook = La cita { $n } ya estaba cancelada. Reserve una nueva con CreateAppointment.
odd-status = La cita { $n } tiene el estado { $status }, así que no se puede { $verb ->
        [reschedule] cambiar
       *[cancel] cancelar
    } por teléfono.
already-past = La cita { $n } { $when } ya ha empezado o pasado, así que no se puede { $verb ->
        [reschedule] cambiar
       *[cancel] cancelar
    }.
just-changed = Alguien acaba de cambiar esa cita; compruébela con GetAppointments.
just-taken = Otra reserva acaba de ocupar esa hora. { $another }
patient-n = El paciente { $n }
provider-n = el profesional { $n }
operatory-n = el gabinete { $n }

## Pacientes.
limit-range = limit debe estar entre 1 y { $max }
no-patient = No hay ningún paciente con PatNum { $n }. Use SearchPatients con el teléfono o el nombre de quien llama para encontrar el PatNum correcto.
few-digits = '{ $given }' tiene muy pocos dígitos para buscar; pida el número de teléfono completo.
search-needs = Indique un teléfono o un nombre para buscar; pida a quien llama el teléfono que consta en la ficha.
too-many = Coinciden más de { $max } pacientes; solo se listan los { $max } primeros. Pida a quien llama su teléfono o su nombre completo para acotar la búsqueda.
name-required = hace falta { $what ->
        [first] el nombre
       *[last] el apellido
    } del paciente
not-a-phone = '{ $given }' no es un número de teléfono; pida a quien llama que lo repita.
birth-future = Una fecha de nacimiento del { $date } de { $year } está en el futuro; pida a quien llama que la repita.
birth-implausible = Un año de nacimiento { $year } no es verosímil.
patient-on-file = { $name } ya consta como PatNum { $n }. Use ese paciente en lugar de crear uno nuevo.
bad-cursor = ese cursor no lo dio este listado; vuelva a listar sin él
