//! The ticket rules as pure functions, so they are tested without a store. Every refusal's
//! message is written to be read out by a voice agent, with what to do instead.

use switchboard::{Error, Speaker};

use crate::records::Status;

/// Whether a ticket may move `from` → `to`: `Ok(true)` for a change, `Ok(false)` when it
/// already has that status (nothing to do), 409 when the current status forbids it.
///
/// open and pending move freely; resolved may be closed; moving a resolved or closed ticket
/// back to open or pending is a reopen, allowed only with `allowReopen`; closed is final
/// otherwise, and never becomes resolved.
pub fn transition(
    sp: &Speaker,
    id: &str,
    from: Status,
    to: Status,
    allow_reopen: bool,
) -> Result<bool, Error> {
    use Status::{Closed, Open, Pending, Resolved};
    match (from, to) {
        _ if from == to => Ok(false),
        (Open | Pending, _) | (Resolved, Closed) => Ok(true),
        (Resolved | Closed, Open | Pending) if allow_reopen => Ok(true),
        (Resolved | Closed, Open | Pending) => Err(Error::conflict(sp.say(
            "no-reopening",
            &[("id", id.into()), ("from", from.as_str().into())],
        ))),
        // Equal statuses returned above, so this is closed -> resolved.
        (Resolved | Closed, Resolved | Closed) => Err(Error::conflict(sp.say(
            "closed-is-final",
            &[
                ("id", id.into()),
                ("to", to.as_str().into()),
                ("hint", (&reopen_hint(sp, id, allow_reopen)).into()),
            ],
        ))),
    }
}

fn reopen_hint(sp: &Speaker, id: &str, allow_reopen: bool) -> String {
    if allow_reopen {
        sp.say("hint-reopen", &[])
    } else {
        sp.say("hint-new-ticket", &[("id", id.into())])
    }
}

/// Comments go only on tickets that are not closed.
pub fn commentable(
    sp: &Speaker,
    id: &str,
    status: Status,
    allow_reopen: bool,
) -> Result<(), Error> {
    if status == Status::Closed {
        return Err(closed_for_comments(sp, id, allow_reopen));
    }
    Ok(())
}

pub fn closed_for_comments(sp: &Speaker, id: &str, allow_reopen: bool) -> Error {
    Error::conflict(sp.say(
        "closed-for-comments",
        &[
            ("id", id.into()),
            ("hint", (&reopen_hint(sp, id, allow_reopen)).into()),
        ],
    ))
}

/// A comment, trimmed: not blank and at most `max` characters (not bytes).
pub fn comment_text(sp: &Speaker, text: &str, max: usize) -> Result<String, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid_field(
            "/comment",
            sp.say("empty-comment", &[]),
        ));
    }
    let n = text.chars().count();
    if n > max {
        return Err(Error::invalid_field(
            "/comment",
            sp.say("long-comment", &[("length", n.into()), ("max", max.into())]),
        ));
    }
    Ok(text.to_owned())
}

/// A required text parameter, trimmed and not blank; `what` is `subject`, `description`
/// or `name` (the contact's).
pub fn required_text(sp: &Speaker, path: &str, value: &str, what: &str) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid_field(
            path,
            sp.say("empty-field", &[("what", what.into())]),
        ));
    }
    Ok(v.to_owned())
}

/// An optional text parameter, trimmed; blank counts as absent.
pub fn optional_text(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The ticket number as the agent gave it ("12" or "#12"), as the record id.
pub fn ticket_number(sp: &Speaker, raw: &str) -> Result<String, Error> {
    let id = raw.trim().trim_start_matches('#');
    if id.is_empty() {
        return Err(Error::invalid_field(
            "/ticketId",
            sp.say("no-ticket-number", &[]),
        ));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Closed, Open, Pending, Resolved};

    const ALL: [Status; 4] = [Open, Pending, Resolved, Closed];

    fn speaker(locale: &str) -> Speaker {
        let m = switchboard::i18n::Messages::new(crate::LOCALES).unwrap();
        Speaker::new(Some(std::sync::Arc::new(m)), locale)
    }

    fn allowed(from: Status, to: Status, reopen: bool) -> Option<bool> {
        match transition(&speaker("en"), "3", from, to, reopen) {
            Ok(changed) => Some(changed),
            Err(e) => {
                assert_eq!(e.status(), 409, "{from} -> {to}");
                None
            }
        }
    }

    #[test]
    fn the_transition_table() {
        for reopen in [true, false] {
            for from in ALL {
                for to in ALL {
                    let expected = if from == to {
                        Some(false)
                    } else {
                        match (from, to) {
                            (Open | Pending, _) | (Resolved, Closed) => Some(true),
                            (Resolved | Closed, Open | Pending) => reopen.then_some(true),
                            _ => None,
                        }
                    };
                    assert_eq!(
                        allowed(from, to, reopen),
                        expected,
                        "{from} -> {to}, reopen {reopen}"
                    );
                }
            }
        }
        // Spelled out, the cases that matter most.
        assert_eq!(allowed(Closed, Resolved, true), None);
        assert_eq!(allowed(Closed, Open, false), None);
        assert_eq!(allowed(Resolved, Open, false), None);
        assert_eq!(allowed(Resolved, Open, true), Some(true));
        assert_eq!(allowed(Open, Closed, false), Some(true));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let sp = &speaker("en");
        let e = transition(sp, "3", Closed, Open, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Ticket 3 is closed, and this support team does not reopen tickets. If the problem is back, create a new ticket with CreateTicket and mention ticket 3 in its description."
        );
        let e = transition(sp, "3", Closed, Resolved, true).unwrap_err();
        assert!(
            e.to_string().contains("reopen it with UpdateTicketStatus"),
            "{e}"
        );
        let e = commentable(sp, "3", Closed, false).unwrap_err();
        assert_eq!(e.status(), 409);
        assert_eq!(
            e.to_string(),
            "Ticket 3 is closed, so no more comments can be added to it. If the problem is back, create a new ticket and mention ticket 3."
        );
        assert!(commentable(sp, "3", Resolved, false).is_ok());
        let e = commentable(&speaker("es-MX"), "3", Closed, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "El ticket 3 está cerrado, así que no admite más comentarios. Si el problema no está resuelto, reábralo con UpdateTicketStatus y el estado open."
        );
    }

    #[test]
    fn comments_are_trimmed_and_counted_in_characters() {
        let sp = &speaker("en");
        assert_eq!(comment_text(sp, "  hi  ", 2).unwrap(), "hi");
        assert_eq!(comment_text(sp, &"é".repeat(5), 5).unwrap(), "é".repeat(5));
        let e = comment_text(sp, &"é".repeat(6), 5).unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(
            e.to_string(),
            "The comment is 6 characters long, but the limit is 5. Shorten it, or split it into several comments."
        );
        assert_eq!(comment_text(sp, " \n ", 5).unwrap_err().status(), 422);
    }

    #[test]
    fn ticket_numbers_may_start_with_a_hash() {
        let sp = &speaker("en");
        assert_eq!(ticket_number(sp, "#12").unwrap(), "12");
        assert_eq!(ticket_number(sp, "12").unwrap(), "12");
        assert_eq!(ticket_number(sp, "#").unwrap_err().status(), 422);
    }
}
