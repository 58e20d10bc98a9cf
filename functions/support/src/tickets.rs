//! The ticket handlers.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard::{CallContext, Condition, DataAdapter, DataError, Error, RecordId, Speaker};

use crate::config::SupportConfig;
use crate::records::{
    COMMENTS, CONTACT_EMAIL, CONTACT_PHONE, Change, Comment, Contact, MAX_HISTORY, Priority,
    Status, TICKETS, Ticket, email_key, entity, newest_first, ordered_comments, phone_key,
    record_id,
};
use crate::rules::{
    closed_for_comments, comment_text, commentable, optional_text, required_text, ticket_number,
    transition,
};

const DEFAULT_LIST: usize = 20;
const MAX_LIST: usize = 100;
/// Fewer digits than this cannot be a phone number someone can call back.
const MIN_PHONE_DIGITS: usize = 7;
/// Who a comment is from when the agent does not say.
const DEFAULT_AUTHOR: &str = "caller";

fn no_ticket(sp: &Speaker, id: &str) -> Error {
    Error::not_found(sp.say("no-ticket", &[("id", id.into())]))
}

fn just_changed(sp: &Speaker, id: &str) -> Error {
    Error::conflict(sp.say("just-changed", &[("id", id.into())]))
}

async fn load_ticket(sp: &Speaker, data: &dyn DataAdapter, id: &str) -> Result<Ticket, Error> {
    let rid = RecordId::parse(id).map_err(|_| {
        Error::invalid_field(
            "/ticketId",
            sp.say("not-a-ticket-number", &[("id", id.into())]),
        )
    })?;
    match data.get(&entity(TICKETS)?, &rid).await? {
        Some(r) => Ticket::from_record(r),
        None => Err(no_ticket(sp, id)),
    }
}

async fn load_comments(data: &dyn DataAdapter, id: &str) -> Result<Vec<Comment>, Error> {
    let records = data
        .query(&entity(COMMENTS)?, &[Condition::eq("ticketId", id)])
        .await?;
    Ok(ordered_comments(records))
}

fn enough_digits(phone: &str) -> bool {
    phone.chars().filter(char::is_ascii_digit).count() >= MIN_PHONE_DIGITS
}

/// Checks the contact; with neither phone nor email, falls back to the caller's number the
/// voice platform reported (`CallContext::caller_phone`).
fn checked_contact(ctx: &CallContext, c: Contact) -> Result<Contact, Error> {
    let sp = &ctx.speaker();
    let name = required_text(sp, "/contact/name", &c.name, "name")?;
    let mut phone = optional_text(c.phone.as_deref());
    let email = optional_text(c.email.as_deref());
    if let Some(p) = &phone
        && !enough_digits(p)
    {
        return Err(Error::invalid_field(
            "/contact/phone",
            sp.say(
                "short-phone",
                &[("phone", p.into()), ("min", MIN_PHONE_DIGITS.into())],
            ),
        ));
    }
    if phone.is_none() && email.is_none() {
        phone = ctx
            .caller_phone
            .as_deref()
            .filter(|p| enough_digits(p))
            .map(str::to_owned);
    }
    if phone.is_none() && email.is_none() {
        return Err(Error::invalid_field("/contact", sp.say("no-contact", &[])));
    }
    Ok(Contact { name, phone, email })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub subject: String,
    pub description: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    pub contact: Contact,
}

pub async fn create_ticket(ctx: CallContext, p: CreateTicket) -> Result<Value, Error> {
    let cfg: SupportConfig = ctx.config()?;
    let sp = &ctx.speaker();
    let subject = required_text(sp, "/subject", &p.subject, "subject")?;
    let description = required_text(sp, "/description", &p.description, "description")?;
    let contact = checked_contact(&ctx, p.contact)?;
    let now = ctx.timestamp()?;
    let mut record = Map::new();
    record.insert("subject".into(), json!(subject));
    record.insert("description".into(), json!(description));
    record.insert("status".into(), json!(Status::Open));
    record.insert(
        "priority".into(),
        json!(p.priority.unwrap_or(cfg.default_priority)),
    );
    record.insert("contact".into(), json!(contact));
    if let Some(channel) = &ctx.channel {
        record.insert("channel".into(), json!(channel));
    }
    if let Some(session) = &ctx.session_id {
        record.insert("sessionId".into(), json!(session));
    }
    record.insert("createdAt".into(), json!(now));
    record.insert("updatedAt".into(), json!(now));
    record.insert("revision".into(), json!(1));
    record.insert("history".into(), json!([]));
    // No id: the adapter allocates it, and it is the number the caller is told.
    let created = ctx
        .data
        .create(&entity(TICKETS)?, Value::Object(record))
        .await?;
    Ok(Ticket::from_record(created)?.view(Some(&[])))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetTicket {
    pub ticket_id: String,
}

pub async fn get_ticket(ctx: CallContext, p: GetTicket) -> Result<Value, Error> {
    let sp = &ctx.speaker();
    let id = ticket_number(sp, &p.ticket_id)?;
    let data = ctx.data.as_ref();
    let ticket = load_ticket(sp, data, &id).await?;
    let comments = load_comments(data, &ticket.id).await?;
    Ok(ticket.view(Some(&comments)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListTickets {
    pub status: Status,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub limit: Option<u64>,
}

pub async fn list_tickets(ctx: CallContext, p: ListTickets) -> Result<Value, Error> {
    let limit = match p.limit {
        None => DEFAULT_LIST,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIST).contains(n))
            .ok_or_else(|| {
                Error::invalid_field(
                    "/limit",
                    ctx.say("limit-range", &[("max", MAX_LIST.into())]),
                )
            })?,
    };
    let phone = optional_text(p.phone.as_deref());
    if phone
        .as_ref()
        .is_some_and(|p| phone_key(p).len() < MIN_PHONE_DIGITS)
    {
        return Err(Error::invalid_field(
            "/phone",
            ctx.say("search-phone", &[("min", MIN_PHONE_DIGITS.into())]),
        ));
    }
    let email = optional_text(p.email.as_deref());
    // The contact's keys first: the adapter reads that contact's tickets only, not every
    // ticket of the status (which grows with the desk's history). It normalises the values
    // as the manifest's keys say (the phone's last ten digits, the email lowercased).
    let mut filter = Vec::with_capacity(3);
    if let Some(phone) = &phone {
        filter.push(Condition::eq(CONTACT_PHONE, phone.as_str()));
    }
    if let Some(email) = &email {
        filter.push(Condition::eq(CONTACT_EMAIL, email.as_str()));
    }
    let phone = phone.map(|p| phone_key(&p));
    let email = email.map(|e| email_key(&e));
    filter.push(Condition::eq("status", p.status.as_str()));
    let records = ctx.data.query(&entity(TICKETS)?, &filter).await?;
    let mut tickets: Vec<Ticket> = records
        .into_iter()
        .filter_map(|r| match Ticket::from_record(r) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = ?e, "skipping a ticket record that cannot be read");
                None
            }
        })
        // The adapter filtered already; checked again, as this list is all that keeps one
        // caller from reading another's tickets, should an adapter filter loosely.
        .filter(|t| t.status == p.status)
        .filter(|t| {
            phone
                .as_ref()
                .is_none_or(|key| t.contact.phone.as_deref().map(phone_key).as_ref() == Some(key))
        })
        .filter(|t| {
            email
                .as_ref()
                .is_none_or(|key| t.contact.email.as_deref().map(email_key).as_ref() == Some(key))
        })
        .collect();
    newest_first(&mut tickets);
    let truncated = tickets.len() > limit;
    tickets.truncate(limit);
    let mut out = json!({
        "tickets": tickets.iter().map(Ticket::summary).collect::<Vec<_>>(),
        "count": tickets.len(),
        "truncated": truncated,
    });
    if truncated {
        out["message"] = json!(ctx.say(
            "only-newest",
            &[
                ("limit", limit.into()),
                ("status", p.status.as_str().into())
            ],
        ));
    } else if tickets.is_empty() {
        out["message"] = json!(ctx.say("none-match", &[("status", p.status.as_str().into())]));
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTicketStatus {
    pub ticket_id: String,
    pub status: Status,
    #[serde(default)]
    pub note: Option<String>,
}

pub async fn update_ticket_status(ctx: CallContext, p: UpdateTicketStatus) -> Result<Value, Error> {
    let cfg: SupportConfig = ctx.config()?;
    let sp = &ctx.speaker();
    let id = ticket_number(sp, &p.ticket_id)?;
    let data = ctx.data.as_ref();
    let ticket = load_ticket(sp, data, &id).await?;
    let from = ticket.status;
    if !transition(sp, &ticket.id, from, p.status, cfg.allow_reopen)? {
        return Ok(json!({
            "ticket": ticket.view(None),
            "previousStatus": from,
            "changed": false,
            "message": sp.say(
                "already-status",
                &[("id", (&ticket.id).into()), ("status", from.as_str().into())],
            ),
        }));
    }
    let now = ctx.timestamp()?;
    let mut history = ticket.history.clone();
    history.push(Change {
        from,
        to: p.status,
        at: now.clone(),
        note: optional_text(p.note.as_deref()),
    });
    let excess = history.len().saturating_sub(MAX_HISTORY);
    history.drain(..excess);
    let patch = json!({
        "status": p.status,
        "updatedAt": now,
        "revision": ticket.revision_number() + 1,
        "history": history,
    });
    // Written only if nobody changed the status since it was read: the revision catches a
    // change and a change back, which the status alone would miss.
    let mut expect = vec![Condition::eq("status", from.as_str())];
    if let Some(rev) = &ticket.revision {
        expect.push(Condition::eq("revision", rev.clone()));
    }
    let updated = match data
        .update_where(&entity(TICKETS)?, &record_id(&ticket.id)?, patch, &expect)
        .await
    {
        Ok(r) => Ticket::from_record(r)?,
        Err(DataError::Conflict { .. }) => return Err(just_changed(sp, &ticket.id)),
        Err(DataError::NotFound { .. }) => return Err(no_ticket(sp, &ticket.id)),
        Err(e) => return Err(e.into()),
    };
    Ok(json!({
        "ticket": updated.view(None),
        "previousStatus": from,
        "changed": true,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddTicketComment {
    pub ticket_id: String,
    pub comment: String,
    #[serde(default)]
    pub author: Option<String>,
}

pub async fn add_ticket_comment(ctx: CallContext, p: AddTicketComment) -> Result<Value, Error> {
    let cfg: SupportConfig = ctx.config()?;
    let sp = &ctx.speaker();
    let id = ticket_number(sp, &p.ticket_id)?;
    let text = comment_text(sp, &p.comment, cfg.max_comment_length)?;
    let data = ctx.data.as_ref();
    let ticket = load_ticket(sp, data, &id).await?;
    commentable(sp, &ticket.id, ticket.status, cfg.allow_reopen)?;
    let author = optional_text(p.author.as_deref()).unwrap_or_else(|| DEFAULT_AUTHOR.to_owned());
    let mut record = Map::new();
    record.insert("ticketId".into(), json!(ticket.id));
    record.insert("text".into(), json!(text));
    record.insert("author".into(), json!(author));
    record.insert("createdAt".into(), json!(ctx.timestamp()?));
    if let Some(channel) = &ctx.channel {
        record.insert("channel".into(), json!(channel));
    }
    // Its own record with an allocated id: concurrent comments cannot overwrite each other.
    let comments = entity(COMMENTS)?;
    let created = data.create(&comments, Value::Object(record)).await?;
    let comment = Comment::from_record(created)?;
    // A close that landed between the check above and the create wins: look again and take
    // the comment back, so a closed ticket never gains one.
    let refusal = match load_ticket(sp, data, &ticket.id).await {
        Ok(now) if now.status != Status::Closed => None,
        Ok(_) => Some(closed_for_comments(sp, &ticket.id, cfg.allow_reopen)),
        Err(e) => Some(e),
    };
    if let Some(refusal) = refusal {
        if let Err(e) = data.delete(&comments, &record_id(&comment.id)?).await {
            tracing::error!(ticket = %ticket.id, comment = %comment.id, error = ?e,
                "could not take back a comment added to a ticket that was closed meanwhile");
            return Err(e.into());
        }
        return Err(refusal);
    }
    Ok(json!({"ticketId": ticket.id, "comment": comment.view()}))
}
