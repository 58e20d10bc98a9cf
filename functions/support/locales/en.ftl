# The support plugin's messages to callers (tool results and errors the agent relays).
# Statuses (open, pending, resolved, closed) are the tools' values and stay as they are.
no-reopening = Ticket { $id } is { $from }, and this support team does not reopen tickets. If the problem is back, create a new ticket with CreateTicket and mention ticket { $id } in its description.
closed-is-final = Ticket { $id } is already closed, which is final, so it cannot be marked { $to }.{ $hint }
hint-reopen = {" "}If the problem is not solved, reopen it with UpdateTicketStatus and status open.
hint-new-ticket = {" "}If the problem is back, create a new ticket and mention ticket { $id }.
closed-for-comments = Ticket { $id } is closed, so no more comments can be added to it.{ $hint }
empty-comment = The comment is empty. Say what should be added to the ticket.
long-comment = The comment is { $length } characters long, but the limit is { $max }. Shorten it, or split it into several comments.
empty-field = The { $what ->
        [subject] subject
        [description] description
       *[name] contact's name
    } is empty. Ask the caller for it, then call again.
no-ticket-number = The ticket number is missing. Ask the caller for it, or find it with ListTickets.
not-a-ticket-number = '{ $id }' is not a ticket number. Ask the caller for it, or find it with ListTickets.
no-ticket = There is no ticket { $id }. Check the number with the caller, or find the ticket with ListTickets.
just-changed = Ticket { $id } was just changed by someone else, so its status was not changed. Check it again with GetTicket before deciding what to do.
short-phone = The phone number { $phone } is too short. Ask the caller for the full number, with at least { $min } digits.
no-contact = The team needs a way to reach the caller. Ask for a phone number or an email address, then call again with contact.phone or contact.email.
limit-range = limit must be 1 to { $max }
search-phone = A phone number needs at least { $min } digits to search by.
only-newest = Only the newest { $limit } { $status } tickets are listed. Ask for the ticket number, or search by the caller's phone number or email.
none-match = No { $status } tickets match.
already-status = Ticket { $id } is already { $status }; nothing was changed.
