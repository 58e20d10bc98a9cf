# Los mensajes del plugin google-calendar para quien llama (resultados y errores que el agente transmite).
not-a-date = '{ $given }' no es una fecha; use AAAA-MM-DD
not-a-local-time = '{ $given }' no es una hora local; use AAAA-MM-DD HH:MM, p. ej. 2027-06-01 10:00
clocks-forward = { $start } no existe en { $zone }: esa noche se adelantan los relojes; ofrezca otra hora
has-passed = { $start } ya ha pasado; ofrezca una hora posterior de las que devuelve FindFreeSlots
not-bookable = { $start } no es una hora de inicio reservable: las citas duran { $minutes } minutos y empiezan en intervalos desde cada apertura ({ $day }: { $hours }); use una hora que haya devuelto FindFreeSlots
closed = cerrado
out-of-range = la hora está fuera de rango
taken = Alguien acaba de reservar { $when }. Vuelva a llamar a FindFreeSlots y ofrezca otra hora.
that-time = esa hora
no-booking = No hay ninguna cita con eventId { $id } y ese bookingRef. Use ambos tal como los devolvió BookAppointment.
not-ours = El evento { $id } no se reservó a través de este asistente; el personal puede cambiarlo en el calendario.
no-event = No hay ninguna cita con eventId { $id }.
changed = Alguien acaba de cambiar la cita { $id }; compruébela con ListAppointments y vuelva a intentarlo.
date-out-of-range = la fecha está fuera de rango
old-not-cancelled = No se pudo cancelar la cita anterior { $id } ({ $why }); cancélela con CancelAppointment.
