//! The Zoom plugin: a video meeting per appointment on the organization's own Zoom account,
//! through Zoom's Meeting API (the instance's `api` data adapter:
//! `{"type": "api", "base_url": "https://api.zoom.us/v2", "credential": …,
//! "auth": {"oauth2": {"grant": "account_credentials", "token_url": "https://zoom.us/oauth/token"}}}`,
//! a Server-to-Server OAuth app's `client_id`, `client_secret` and `account_id` in the secret).
//!
//! A meeting belongs to an appointment through a marker in its agenda, `[switchboard booking
//! <ref> <org tag>]`: that is how a booking's meeting is found again (to return it instead of
//! creating a second, and to cancel it), and why meetings the host made elsewhere, or another
//! organization made on the same Zoom account, are never listed or cancelled here.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::api::{ApiRequest, ApiResponse, segment};
use switchboard::{CallContext, ContractError, Error, OrgId, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

const ZOOM: &str = "Zoom's Meeting API";
/// Zoom's largest page of meetings.
const PAGE_SIZE: &str = "300";
/// Pages read when looking for a booking's meeting: 3,000 upcoming meetings.
const MAX_PAGES: usize = 10;

/// The credential scope that lists every booking's meeting (staff tools); without it a
/// caller names the booking.
pub const READ_SCOPE: &str = "meetings:read";

/// The messages callers hear, by language (`locales/*.ftl`).
const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// Builds the plugin; fails if the manifest and the handlers disagree, or the messages do
/// not parse or differ between languages.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("CreateMeeting", create_meeting)
        .handler("ListMeetings", list_meetings)
        .handler("CancelMeeting", cancel_meeting)
        .build()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    host_user: Option<String>,
    topic: String,
    duration_minutes: u32,
    time_zone: String,
    waiting_room: bool,
}

impl Config {
    fn host(&self) -> Result<&str, Error> {
        self.host_user.as_deref().ok_or_else(|| {
            Error::invalid_config(
                "/config/hostUser",
                "the zoom instance has no hostUser: set it to the email address of the Zoom user who hosts the meetings",
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateMeeting {
    booking_ref: String,
    start_time: String,
    duration_minutes: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListMeetings {
    booking_ref: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CancelMeeting {
    booking_ref: String,
}

/// The organization's tag in markers: two organizations on one Zoom account (branches of a
/// practice) never see each other's meetings.
pub fn org_tag(org: &OrgId) -> String {
    let digest = Sha256::digest(org.as_str().as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The agenda marker tying a meeting to a booking of `org`.
pub fn marker(booking_ref: &str, org: &OrgId) -> String {
    format!("[switchboard booking {booking_ref} {}]", org_tag(org))
}

/// The booking of `org` a meeting was created for, from its agenda's marker.
fn booking_of<'a>(meeting: &'a Value, org: &OrgId) -> Option<&'a str> {
    let agenda = meeting.get("agenda")?.as_str()?;
    let rest = &agenda[agenda.find("[switchboard booking ")? + "[switchboard booking ".len()..];
    let (r, tag) = rest[..rest.find(']')?].split_once(' ')?;
    (tag == org_tag(org)
        && !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(r)
}

/// Zoom's meeting ids are 64-bit integers; given to the agent as digits in a string.
fn meeting_id(meeting: &Value) -> Option<String> {
    match meeting.get("id")? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// What the agent sees of a meeting: never its `start_url`, which lets anyone start the
/// meeting as its host.
fn summary(meeting: &Value, booking_ref: &str) -> Result<Value, Error> {
    let id = meeting_id(meeting)
        .ok_or_else(|| Error::Upstream(format!("{ZOOM} answered a meeting without an id")))?;
    Ok(json!({
        "bookingRef": booking_ref,
        "meetingId": id,
        "startTime": meeting.get("start_time").cloned().unwrap_or(Value::Null),
        "durationMinutes": meeting.get("duration").cloned().unwrap_or(Value::Null),
        "joinUrl": meeting.get("join_url").cloned().unwrap_or(Value::Null),
    }))
}

/// Zoom's refusals mapped to the error contract. Its body is `{"code": n, "message": …}`.
fn refused(ctx: &CallContext, resp: &ApiResponse, host: &str) -> Error {
    let code = resp.body.get("code").and_then(Value::as_u64);
    // The vendor's own words, or ours in the caller's language when it gave none.
    let said = resp
        .body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(200).collect::<String>())
        .unwrap_or_else(|| ctx.say("no-reason", &[]));
    match (resp.status, code) {
        // 4700-4799: the access token lacks the app's scopes.
        (_, Some(4700..=4799)) => Error::invalid_config(
            "/data_adapter/credential",
            format!(
                "the Zoom app behind this credential lacks a scope this plugin needs (meeting:read and meeting:write): {said}"
            ),
        ),
        (404, Some(1001)) | (400, Some(1001)) => Error::invalid_config(
            "/config/hostUser",
            format!(
                "Zoom has no user {host} on this account; set hostUser to a user of the account"
            ),
        ),
        (404, _) => Error::not_found(ctx.say("no-such-meeting", &[("said", (&said).into())])),
        (400, _) => Error::unprocessable(ctx.say("not-taken", &[("said", (&said).into())])),
        (429, _) => Error::Unavailable(ctx.say("rate-limited", &[])),
        _ => resp.upstream_error(ZOOM),
    }
}

/// Every upcoming meeting of the host created for a booking (`only`: for that booking),
/// oldest first as Zoom lists them.
async fn booked(ctx: &CallContext, host: &str, only: Option<&str>) -> Result<Vec<Value>, Error> {
    let path = format!("/users/{}/meetings", segment(host));
    let mut found = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let mut request = ApiRequest::get(path.clone())
            .query("type", "upcoming")
            .query("page_size", PAGE_SIZE);
        if !token.is_empty() {
            request = request.query("next_page_token", token.clone());
        }
        let resp = ctx.api()?.send(request).await?;
        if !resp.is_success() {
            return Err(refused(ctx, &resp, host));
        }
        let meetings = resp
            .body
            .get("meetings")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for m in meetings {
            let Some(r) = booking_of(&m, &ctx.org) else {
                continue;
            };
            if only.is_none_or(|o| o == r) {
                let r = r.to_owned();
                found.push(summary(&m, &r)?);
            }
        }
        token = resp
            .body
            .get("next_page_token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
    }
    Ok(found)
}

async fn create_meeting(ctx: CallContext, p: CreateMeeting) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    let host = cfg.host()?;
    let start: Timestamp = p
        .start_time
        .parse()
        .map_err(|_| Error::invalid_field("/startTime", ctx.say("bad-time", &[])))?;
    let now = Timestamp::try_from(ctx.now)
        .map_err(|e| Error::internal(format!("the clock is out of range: {e}")))?;
    if start <= now {
        return Err(Error::invalid_field(
            "/startTime",
            ctx.say("already-started", &[]),
        ));
    }
    let start = Timestamp::from_second(start.as_second())
        .map_err(|_| Error::invalid_field("/startTime", ctx.say("out-of-range", &[])))?;

    // A booking has one meeting: a retry, or a second request, gets the first.
    if let Some(existing) = booked(&ctx, host, Some(&p.booking_ref)).await?.pop() {
        let mut existing = existing;
        existing["existing"] = json!(true);
        return Ok(existing);
    }
    let body = json!({
        "topic": format!("{} ({})", cfg.topic, p.booking_ref),
        "type": 2,
        "start_time": start.to_string(),
        "duration": p.duration_minutes.unwrap_or(cfg.duration_minutes),
        "timezone": cfg.time_zone,
        "agenda": format!("Appointment {}\n{}", p.booking_ref, marker(&p.booking_ref, &ctx.org)),
        "settings": {"waiting_room": cfg.waiting_room, "join_before_host": false},
    });
    let path = format!("/users/{}/meetings", segment(host));
    let resp = ctx.api()?.send(ApiRequest::post_json(path, body)).await?;
    if !resp.is_success() {
        return Err(refused(&ctx, &resp, host));
    }
    let mut out = summary(&resp.body, &p.booking_ref)?;
    out["passcode"] = resp.body.get("password").cloned().unwrap_or(Value::Null);
    out["existing"] = json!(false);
    Ok(out)
}

async fn list_meetings(ctx: CallContext, p: ListMeetings) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    let host = cfg.host()?;
    if p.booking_ref.is_none() && !ctx.has_scope(READ_SCOPE) {
        return Err(Error::Forbidden {
            code: "forbidden",
            message: ctx.say("list-needs-scope", &[("scope", READ_SCOPE.into())]),
        });
    }
    let meetings = booked(&ctx, host, p.booking_ref.as_deref()).await?;
    Ok(json!({"meetings": meetings}))
}

async fn cancel_meeting(ctx: CallContext, p: CancelMeeting) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    let host = cfg.host()?;
    let meetings = booked(&ctx, host, Some(&p.booking_ref)).await?;
    let mut cancelled = Vec::new();
    // Every meeting of the booking: two racing creations may have made two.
    for m in &meetings {
        let Some(id) = m["meetingId"].as_str() else {
            continue;
        };
        let request = ApiRequest::delete(format!("/meetings/{}", segment(id)))
            .query("cancel_meeting_reminder", "true");
        let resp = ctx.api()?.send(request).await?;
        // 404: already gone, which is what was asked.
        if !resp.is_success() && resp.status != 404 {
            return Err(refused(&ctx, &resp, host));
        }
        cancelled.push(json!(id));
    }
    Ok(json!({
        "bookingRef": p.booking_ref,
        "cancelled": !cancelled.is_empty(),
        "meetingIds": cancelled,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_marker_of_the_org_names_a_booking() {
        let acme = OrgId::parse("acme").unwrap();
        let globex = OrgId::parse("globex").unwrap();
        let m = |agenda: String| json!({"agenda": agenda});
        let tag = org_tag(&acme);
        assert_eq!(
            booking_of(
                &m(format!("Appointment 1042\n{}", marker("1042", &acme))),
                &acme
            ),
            Some("1042")
        );
        assert_eq!(
            booking_of(&m(format!("{} x", marker("BK-7Q2M", &acme))), &acme),
            Some("BK-7Q2M")
        );
        assert_eq!(booking_of(&m(marker("1042", &globex)), &acme), None);
        for other in [
            "Team sync".to_owned(),
            "[switchboard booking 1042]".to_owned(),
            format!("[switchboard booking  {tag}]"),
            format!("[switchboard booking 10 42 {tag}]"),
            format!("[switchboard booking 1042 {tag}"),
            format!("switchboard booking 1042 {tag}]"),
        ] {
            assert_eq!(booking_of(&m(other.clone()), &acme), None, "{other}");
        }
        assert_eq!(booking_of(&json!({"topic": "no agenda"}), &acme), None);
    }

    #[test]
    fn ids_are_digits() {
        assert_eq!(
            meeting_id(&json!({"id": 85746065432u64})).as_deref(),
            Some("85746065432")
        );
        assert_eq!(meeting_id(&json!({"id": "8574"})).as_deref(), Some("8574"));
        assert_eq!(meeting_id(&json!({"id": "../x"})), None);
        assert_eq!(meeting_id(&json!({"id": -1})), None);
    }
}
