# Los mensajes del plugin crm para quien llama (resultados y errores que el agente transmite).
# Los estados (new, contacted, qualified, lost) son valores de las herramientas y no se traducen.
lead = El lead { $id }
lead-named = El lead { $id } ({ $name })
or-list = { $rest } o { $last }
no-lead = No hay ningún lead con leadId { $id }. Compruebe el id o busque el lead con GetLeadsByStatus.
not-a-lead-id = '{ $id }' no es un id de lead; use el leadId que devolvió CreateLead o GetLeadsByStatus.
changed = { $lead } acaba de cambiar por otra vía, así que este cambio no se hizo. Compruébelo con GetLead y vuelva a intentarlo.
duplicate = El lead { $id } ya consta con el mismo { $shared ->
        [email] correo electrónico
       *[phone] número de teléfono
    }. Use el leadId { $id } en lugar de crear un lead nuevo.
saved-meanwhile = En este mismo momento se estaba guardando otro lead con este correo electrónico o número de teléfono. Búsquelo con GetLeadsByStatus antes de volver a intentarlo.
name-needed = Hace falta el nombre del lead; pida su nombre completo.
source-needed = Pregunte cómo conoció la empresa y páselo como source.
email-too-long = Ese correo electrónico es demasiado largo para ser real; vuelva a pedirlo.
not-a-phone = '{ $phone }' no es un número de teléfono: necesita de { $min } a { $max } dígitos. Vuelva a pedir el número.
contact-needed = Un lead necesita un número de teléfono o un correo electrónico para que el equipo pueda hacer el seguimiento; pida al menos uno.
limit-range = limit debe estar entre 1 y { $max }.
pending-qualified = Solo los leads cualificados esperan aprobación; use pendingApproval con el estado qualified.
odd-status = { $lead } tiene el estado '{ $status }', que no se puede cambiar aquí. Pida a un miembro del personal que lo actualice en el CRM.
never-new = Ningún lead puede volver a new; ese estado es solo para leads que nadie ha atendido todavía. El lead { $id } está en { $from }; puede pasar a { $next }.
already = El lead { $id } ya está en { $status }, así que no se cambió nada.
reopen-first = El lead { $id } está perdido (lost). Para volver a trabajarlo, reábralo pasándolo primero a contacted.
only-to = El lead { $id } está en { $from } y solo puede pasar a { $next }.
now = { $lead } está ahora en { $status }.
awaits-approval = { $lead } está ahora en qualified y espera la aprobación de un responsable; figurará como cualificado cuando se apruebe.
staff-approves = Aprobar un lead corresponde al personal: la credencial de esta línea no tiene el permiso '{ $scope }'. Diga a quien llama que un responsable revisará el lead.
nothing-to-approve = { $lead } está en { $status }, no en qualified, así que no hay nada que aprobar. Solo los leads cualificados esperan aprobación.
already-approved = { $lead } ya está aprobado.
no-approval-needed = { $lead } no necesita aprobación: ya figura como cualificado.
approved = { $lead } está aprobado y figura ahora como cualificado.
saved-awaiting = { $name } quedó guardado como lead { $id }, cualificado porque dio un correo electrónico y un número de teléfono. Espera la aprobación de un responsable antes de figurar como cualificado.
saved-qualified = { $name } quedó guardado como lead { $id }, cualificado porque dio un correo electrónico y un número de teléfono.
saved-new = { $name } quedó guardado como lead { $id }, con el estado new.
none-listed = No hay { $pending ->
        [yes] leads cualificados pendientes de aprobación
       *[no] leads en { $status }
    }.
showing-newest = Se muestran los { $limit } más recientes de { $total } { $pending ->
        [yes] leads cualificados pendientes de aprobación
       *[no] leads en { $status }
    }.
more-awaiting = { $awaiting ->
        [one] Otro espera la aprobación de un responsable y no se lista hasta que se apruebe.
       *[other] Otros { $awaiting } esperan la aprobación de un responsable y no se listan hasta que se aprueben.
    }
