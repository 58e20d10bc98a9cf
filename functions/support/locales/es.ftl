# Los mensajes del plugin support para quien llama (resultados y errores que el agente transmite).
# Los estados (open, pending, resolved, closed) son valores de las herramientas y no se traducen.
no-reopening = El ticket { $id } está en { $from } y este equipo de asistencia no reabre tickets. Si el problema ha vuelto, cree un ticket nuevo con CreateTicket y mencione el ticket { $id } en su descripción.
closed-is-final = El ticket { $id } ya está cerrado, lo que es definitivo, así que no se puede marcar como { $to }.{ $hint }
hint-reopen = {" "}Si el problema no está resuelto, reábralo con UpdateTicketStatus y el estado open.
hint-new-ticket = {" "}Si el problema ha vuelto, cree un ticket nuevo y mencione el ticket { $id }.
closed-for-comments = El ticket { $id } está cerrado, así que no admite más comentarios.{ $hint }
empty-comment = El comentario está vacío. Diga qué hay que añadir al ticket.
long-comment = El comentario tiene { $length } caracteres, pero el límite es { $max }. Acórtelo o divídalo en varios comentarios.
empty-field = { $what ->
        [subject] El asunto está vacío
        [description] La descripción está vacía
       *[name] El nombre del contacto está vacío
    }. Pídaselo a quien llama y vuelva a llamar.
no-ticket-number = Falta el número de ticket. Pídaselo a quien llama o búsquelo con ListTickets.
not-a-ticket-number = '{ $id }' no es un número de ticket. Pídaselo a quien llama o búsquelo con ListTickets.
no-ticket = No existe el ticket { $id }. Compruebe el número con quien llama o busque el ticket con ListTickets.
just-changed = Alguien acaba de cambiar el ticket { $id }, así que su estado no se cambió. Vuelva a consultarlo con GetTicket antes de decidir qué hacer.
short-phone = El número de teléfono { $phone } es demasiado corto. Pida a quien llama el número completo, con al menos { $min } dígitos.
no-contact = El equipo necesita una forma de contactar con quien llama. Pida un número de teléfono o un correo electrónico y vuelva a llamar con contact.phone o contact.email.
limit-range = limit debe estar entre 1 y { $max }
search-phone = Para buscar por teléfono hacen falta al menos { $min } dígitos.
only-newest = Solo se listan los { $limit } tickets { $status } más recientes. Pida el número de ticket, o busque por el teléfono o el correo de quien llama.
none-match = No hay tickets { $status } que coincidan.
already-status = El ticket { $id } ya está en { $status }; no se cambió nada.
