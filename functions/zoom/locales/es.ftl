# Los mensajes del plugin zoom para quien llama (resultados y errores que el agente transmite).
no-such-meeting = Zoom no tiene esa reunión: { $said }
not-taken = Zoom no aceptó la reunión: { $said }
rate-limited = Zoom está limitando el ritmo de peticiones de esta cuenta; vuelva a intentarlo en unos momentos
bad-time = indique el inicio en RFC 3339 con su diferencia con UTC, p. ej. 2027-06-01T10:00:00-05:00
already-started = la cita ya ha empezado: las reuniones se crean para un inicio futuro
out-of-range = el inicio está fuera de rango
list-needs-scope = para ver la reunión de cada cita hace falta una clave con el permiso { $scope }; indique el bookingRef de la cita de quien llama
no-reason = la petición fue rechazada
