//! The Google Calendar plugin: appointments on the organization's own calendar through the
//! Calendar API (the instance's `api` data adapter, e.g. base URL
//! `https://www.googleapis.com/calendar/v3` with an `oauth2` `jwt_bearer` credential holding
//! a service account's key, or a `refresh_token` one).
//!
//! No double booking: slots lie on a grid from each opening window's start, and a booked
//! slot's event id is derived from the calendar and the slot's instant. Google refuses a second
//! event with an id in use (409), atomically, so of two calls racing for one slot exactly one
//! books it. A cancelled event keeps its id, so rebooking a cancelled slot revives that event,
//! conditional on the ETag read (If-Match; a lost race is Google's 412). Events made elsewhere
//! are seen through free/busy before booking, which is a check, not a lock.

mod time;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::api::{ApiRequest, ApiResponse, segment};
use switchboard::ports::Api;
use switchboard::{CallContext, ContractError, Error, Plugin};

use time::{Calendar, Span};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// Marks the events this plugin books (a private extended property).
const MARK: &str = "switchboard";
/// The booking's reference, which moving or cancelling it requires (a private property).
const REF: &str = "switchboardRef";

/// The messages callers hear, by language (`locales/*.ftl`).
pub(crate) const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// Builds the plugin; fails if the manifest and the handlers disagree.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("FindFreeSlots", find_free_slots)
        .handler("BookAppointment", book_appointment)
        .handler("MoveAppointment", move_appointment)
        .handler("CancelAppointment", cancel_appointment)
        .handler("ListAppointments", list_appointments)
        .build()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Day {
    date: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Book {
    start: String,
    name: String,
    phone: Option<String>,
    email: Option<String>,
    notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Move {
    event_id: String,
    booking_ref: String,
    start: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventRef {
    event_id: String,
    booking_ref: String,
}

/// The event id of the slot starting at `start_ts` on `calendar`: 32 characters of Google's
/// base32hex alphabet (hex digits are in it).
pub fn slot_event_id(calendar: &str, start_ts: i64) -> String {
    let digest = Sha256::digest(format!("{calendar}\n{start_ts}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sb{}", &hex[..30])
}

fn events_path(cal: &Calendar) -> String {
    format!("/calendars/{}/events", segment(&cal.id))
}

fn event_path(cal: &Calendar, event_id: &str) -> String {
    format!("{}/{}", events_path(cal), segment(event_id))
}

/// The calendar's busy intervals between two instants (unix seconds), from free/busy.
async fn busy(api: &dyn Api, cal: &Calendar, from: i64, to: i64) -> Result<Vec<Span>, Error> {
    let body = json!({
        "timeMin": time::rfc3339(from)?,
        "timeMax": time::rfc3339(to)?,
        "items": [{"id": cal.id}],
    });
    let resp = api
        .send(ApiRequest::post_json("/freeBusy", body))
        .await?
        .into_json("Google Calendar's freeBusy")?;
    let entry = resp.pointer("/calendars").and_then(|c| c.get(&cal.id));
    if let Some(reason) = entry
        .and_then(|e| e.pointer("/errors/0/reason"))
        .and_then(Value::as_str)
    {
        return Err(if reason == "notFound" {
            Error::invalid_config(
                "/config/calendarId",
                format!(
                    "calendar '{}' was not found, or is not shared with this credential",
                    cal.id
                ),
            )
        } else {
            Error::Upstream(format!(
                "Google Calendar's freeBusy could not read calendar '{}' ({})",
                cal.id,
                reason.chars().take(40).collect::<String>()
            ))
        });
    }
    // No entry for the calendar asked about: nothing is known free.
    let Some(entry) = entry else {
        return Err(Error::Upstream(format!(
            "Google Calendar's freeBusy answered without calendar '{}'",
            cal.id
        )));
    };
    let mut out = Vec::new();
    for b in entry
        .get("busy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let at = |k: &str| {
            b.get(k)
                .and_then(Value::as_str)
                .and_then(time::parse_instant)
        };
        match (at("start"), at("end")) {
            (Some(start), Some(end)) => out.push(Span { start, end }),
            _ => {
                return Err(Error::Upstream(
                    "Google Calendar's freeBusy answered a busy interval without readable times"
                        .into(),
                ));
            }
        }
    }
    Ok(out)
}

async fn find_free_slots(ctx: CallContext, p: Day) -> Result<Value, Error> {
    let cal = Calendar::from_context(&ctx)?;
    let date = time::parse_date(&ctx.speaker(), &p.date, "/date")?;
    let windows = cal.windows(date)?;
    let (Some(first), Some(end)) = (windows.first(), windows.iter().map(|w| w.end).max()) else {
        return Ok(json!({"date": p.date, "timeZone": cal.zone_name, "slots": [], "closed": true}));
    };
    let now = time::unix(ctx.now)?;
    if end <= now {
        return Ok(
            json!({"date": p.date, "timeZone": cal.zone_name, "slots": [], "closed": false}),
        );
    }
    let taken = busy(ctx.api()?, &cal, first.start, end).await?;
    let slots: Vec<String> = cal
        .slots(&windows)
        .into_iter()
        .filter(|s| s.start > now && !taken.iter().any(|b| b.overlaps(s)))
        .map(|s| cal.local_hhmm(s.start))
        .collect::<Result<_, _>>()?;
    Ok(json!({"date": p.date, "timeZone": cal.zone_name, "slots": slots, "closed": false}))
}

/// The appointment as the caller sees it.
fn appointment(
    cal: &Calendar,
    event_id: &str,
    reference: &str,
    slot: Span,
) -> Result<Value, Error> {
    Ok(json!({
        "eventId": event_id,
        "bookingRef": reference,
        "start": cal.local(slot.start)?,
        "end": cal.local(slot.end)?,
        "timeZone": cal.zone_name,
        "status": "confirmed",
    }))
}

/// Books `slot` (already checked against the rules) as an event titled `summary`; 409 when
/// the slot is taken, whoever took it.
async fn claim(
    api: &dyn Api,
    cal: &Calendar,
    slot: Span,
    summary: &str,
    description: &str,
    reference: &str,
) -> Result<String, Error> {
    if busy(api, cal, slot.start, slot.end)
        .await?
        .iter()
        .any(|b| b.overlaps(&slot))
    {
        return Err(taken(cal, slot));
    }
    let id = slot_event_id(&cal.id, slot.start);
    let fields = json!({
        "summary": summary,
        "description": description,
        "start": {"dateTime": time::rfc3339(slot.start)?, "timeZone": cal.zone_name},
        "end": {"dateTime": time::rfc3339(slot.end)?, "timeZone": cal.zone_name},
        "extendedProperties": {"private": {MARK: "1", REF: reference}},
    });
    let mut event = fields.clone();
    event["id"] = json!(id);
    let resp = api
        .send(ApiRequest::post_json(events_path(cal), event))
        .await?;
    match resp.status {
        200 | 201 => Ok(id),
        // The id is in use: the slot is booked, or was and has been cancelled.
        409 => revive(api, cal, &id, slot, fields).await.map(|()| id),
        403 | 404 => Err(no_access(cal, &resp)),
        _ => Err(resp.upstream_error("Google Calendar's events.insert")),
    }
}

/// Rebooks a cancelled slot's event, only if it is still the cancelled event read.
async fn revive(
    api: &dyn Api,
    cal: &Calendar,
    id: &str,
    slot: Span,
    mut fields: Value,
) -> Result<(), Error> {
    let current = api.send(ApiRequest::get(event_path(cal, id))).await?;
    if current.status != 200 || current.body.get("status") != Some(&json!("cancelled")) {
        return Err(taken(cal, slot));
    }
    let Some(etag) = current.body.get("etag").and_then(Value::as_str) else {
        return Err(taken(cal, slot));
    };
    let if_match = http::HeaderValue::from_str(etag).map_err(|_| {
        Error::Upstream("Google Calendar answered an event ETag that is not a header value".into())
    })?;
    fields["status"] = json!("confirmed");
    let resp = api
        .send(
            ApiRequest::new(http::Method::PATCH, event_path(cal, id))
                .json(fields)
                .header(http::header::IF_MATCH, if_match),
        )
        .await?;
    match resp.status {
        200 => Ok(()),
        // Another call revived it first.
        412 => Err(taken(cal, slot)),
        _ => Err(resp.upstream_error("Google Calendar's events.patch")),
    }
}

/// The calendar does not exist for this credential, or is not shared with it for writing:
/// the organization's setting to fix.
fn no_access(cal: &Calendar, resp: &ApiResponse) -> Error {
    Error::invalid_config(
        "/config/calendarId",
        format!(
            "Google Calendar refused calendar '{}' ({}): share it with the credential's account with permission to make changes, or fix calendarId",
            cal.id, resp.status
        ),
    )
}

/// A booking's own secret: the eventId follows from the slot, so it cannot prove who booked.
fn booking_ref(seed: &str) -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new();
    let (a, b) = (random.hash_one(seed), random.hash_one((seed, 1u8)));
    format!("{a:016x}{b:016x}")
}

fn taken(cal: &Calendar, slot: Span) -> Error {
    let when = cal
        .local(slot.start)
        .unwrap_or_else(|_| cal.speaker.say("that-time", &[]));
    Error::conflict(cal.speaker.say("taken", &[("when", (&when).into())]))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn book_appointment(ctx: CallContext, p: Book) -> Result<Value, Error> {
    let cal = Calendar::from_context(&ctx)?;
    let now = time::unix(ctx.now)?;
    let slot = cal.bookable(&p.start, "/start", now)?;
    let phone = p.phone.or_else(|| ctx.caller_phone.clone());
    let mut description = Vec::new();
    if let Some(phone) = &phone {
        description.push(format!("Phone: {}", one_line(phone)));
    }
    if let Some(email) = &p.email {
        description.push(format!("Email: {}", one_line(email)));
    }
    if let Some(notes) = &p.notes {
        description.push(format!("Notes: {}", notes.trim()));
    }
    description.push(format!(
        "Booked by the {} agent{}.",
        ctx.org,
        ctx.channel
            .as_ref()
            .map(|c| format!(" on {c}"))
            .unwrap_or_default()
    ));
    let summary = format!("{}: {}", cal.title, one_line(&p.name));
    let reference = booking_ref(&format!("{}{}{summary}", ctx.org, slot.start));
    let id = claim(
        ctx.api()?,
        &cal,
        slot,
        &summary,
        &description.join("\n"),
        &reference,
    )
    .await?;
    appointment(&cal, &id, &reference, slot)
}

/// The event `id` and its ETag, if this plugin booked it under `reference` and it is not
/// cancelled. Without the right reference it is "not found": an id alone (it follows from
/// the slot) proves nothing.
async fn ours(
    api: &dyn Api,
    cal: &Calendar,
    id: &str,
    reference: &str,
) -> Result<(Value, Option<String>), Error> {
    let resp = api.send(ApiRequest::get(event_path(cal, id))).await?;
    let gone = || Error::not_found(cal.speaker.say("no-booking", &[("id", id.into())]));
    match resp.status {
        404 | 410 => return Err(gone()),
        403 => return Err(no_access(cal, &resp)),
        _ => {}
    }
    let event = resp.into_json("Google Calendar's events.get")?;
    if event.get("status") == Some(&json!("cancelled")) {
        return Err(gone());
    }
    if event.pointer(&format!("/extendedProperties/private/{MARK}")) != Some(&json!("1")) {
        return Err(Error::unprocessable(
            cal.speaker.say("not-ours", &[("id", id.into())]),
        ));
    }
    if event.pointer(&format!("/extendedProperties/private/{REF}")) != Some(&json!(reference)) {
        return Err(gone());
    }
    let etag = event.get("etag").and_then(Value::as_str).map(str::to_owned);
    Ok((event, etag))
}

/// Deletes the event as read (`If-Match` its ETag): a concurrent change is a 409.
async fn delete_event(
    api: &dyn Api,
    cal: &Calendar,
    id: &str,
    etag: Option<&str>,
) -> Result<(), Error> {
    let mut request = ApiRequest::delete(event_path(cal, id));
    if let Some(tag) = etag.and_then(|t| http::HeaderValue::from_str(t).ok()) {
        request = request.header(http::header::IF_MATCH, tag);
    }
    let resp: ApiResponse = api.send(request).await?;
    match resp.status {
        200 | 204 | 410 => Ok(()),
        404 => Err(Error::not_found(
            cal.speaker.say("no-event", &[("id", id.into())]),
        )),
        412 => Err(Error::conflict(
            cal.speaker.say("changed", &[("id", id.into())]),
        )),
        403 => Err(no_access(cal, &resp)),
        _ => Err(resp.upstream_error("Google Calendar's events.delete")),
    }
}

async fn move_appointment(ctx: CallContext, p: Move) -> Result<Value, Error> {
    let cal = Calendar::from_context(&ctx)?;
    let now = time::unix(ctx.now)?;
    let slot = cal.bookable(&p.start, "/start", now)?;
    let api = ctx.api()?;
    let (old, etag) = ours(api, &cal, &p.event_id, &p.booking_ref).await?;
    if p.event_id == slot_event_id(&cal.id, slot.start) {
        // Already at that time.
        return appointment(&cal, &p.event_id, &p.booking_ref, slot);
    }
    let text = |k: &str| old.get(k).and_then(Value::as_str).unwrap_or_default();
    let reference = booking_ref(&format!("{}{}{}", ctx.org, slot.start, p.event_id));
    let id = claim(
        api,
        &cal,
        slot,
        text("summary"),
        text("description"),
        &reference,
    )
    .await?;
    let mut moved = appointment(&cal, &id, &reference, slot)?;
    if let Err(e) = delete_event(api, &cal, &p.event_id, etag.as_deref()).await {
        // The new time is booked: say so, and what is left to do, rather than fail the move.
        moved["warning"] = json!(cal.speaker.say(
            "old-not-cancelled",
            &[
                ("id", (&p.event_id).into()),
                ("why", (&e.to_string()).into())
            ],
        ));
    }
    Ok(moved)
}

async fn cancel_appointment(ctx: CallContext, p: EventRef) -> Result<Value, Error> {
    let cal = Calendar::from_context(&ctx)?;
    let api = ctx.api()?;
    let (_, etag) = ours(api, &cal, &p.event_id, &p.booking_ref).await?;
    delete_event(api, &cal, &p.event_id, etag.as_deref()).await?;
    Ok(json!({"eventId": p.event_id, "status": "cancelled"}))
}

async fn list_appointments(ctx: CallContext, p: Day) -> Result<Value, Error> {
    let cal = Calendar::from_context(&ctx)?;
    let date = time::parse_date(&ctx.speaker(), &p.date, "/date")?;
    let (from, to) = cal.day(date)?;
    let request = ApiRequest::get(events_path(&cal))
        .query("timeMin", time::rfc3339(from)?)
        .query("timeMax", time::rfc3339(to)?)
        .query("singleEvents", "true")
        .query("orderBy", "startTime")
        .query("maxResults", "250");
    let body = ctx
        .api()?
        .send(request)
        .await?
        .into_json("Google Calendar's events.list")?;
    let mut out = Vec::new();
    for e in body
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if e.get("status") == Some(&json!("cancelled")) {
            continue;
        }
        let when = |k: &str| -> Result<Value, Error> {
            match e.pointer(&format!("/{k}/dateTime")).and_then(Value::as_str) {
                Some(t) => match time::parse_instant(t) {
                    Some(ts) => Ok(json!(cal.local(ts)?)),
                    None => Ok(Value::Null),
                },
                // An all-day event: its date.
                None => Ok(e
                    .pointer(&format!("/{k}/date"))
                    .cloned()
                    .unwrap_or(Value::Null)),
            }
        };
        let mine = e.pointer(&format!("/extendedProperties/private/{MARK}")) == Some(&json!("1"));
        // No titles: they name people, and a caller must learn only that a time is taken.
        out.push(json!({
            "eventId": e.get("id").cloned().unwrap_or(Value::Null),
            "start": when("start")?,
            "end": when("end")?,
            "bookedHere": mine,
        }));
    }
    Ok(json!({"date": p.date, "timeZone": cal.zone_name, "events": out}))
}
