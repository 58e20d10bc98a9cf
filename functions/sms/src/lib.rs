//! The SMS plugin: text messages from the organization's Twilio number through Twilio's
//! Messages API. The instance's data adapter is an `api` one, e.g.
//! `{"type": "api", "base_url": "https://api.twilio.com", "credential": "switchboard/<org>/twilio",
//! "auth": {"basic": {"username": "account_sid", "password": "auth_token"}}}` (an API key's
//! SID and secret work the same way); the account and sending number are config.

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::api::{ApiRequest, ApiResponse, segment};
use switchboard::{CallContext, ContractError, Detail, Error, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

const TWILIO: &str = "Twilio's Messages API";

/// Builds the plugin; fails if the manifest and the handlers disagree.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .handler("SendSms", send_sms)
        .handler("GetSmsStatus", get_sms_status)
        .handler("ScheduleReminder", schedule_reminder)
        .handler("CancelReminder", cancel_reminder)
        .build()
}

/// The config as written in `config_schema`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SmsConfig {
    account_sid: Option<String>,
    from_number: Option<String>,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    reminder_minutes_before: u32,
}

/// 422 `invalid_config`: the organization's setting to fix, not the caller's input.
fn config_error(path: &str, message: impl Into<String>) -> Error {
    let message = message.into();
    Error::Validation {
        code: "invalid_config",
        details: vec![Detail::new(path, message.clone())],
        message,
    }
}

impl SmsConfig {
    fn account(&self) -> Result<&str, Error> {
        self.account_sid.as_deref().ok_or_else(|| {
            config_error(
                "/config/accountSid",
                "the sms instance has no accountSid: set it to the Twilio account (AC…) that sends the texts",
            )
        })
    }
}

/// Twilio's errors about the sending number (not SMS-capable, not the account's, invalid):
/// the organization's setting, not the caller's.
const FROM_ERRORS: [u64; 4] = [21212, 21606, 21659, 21660];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendSms {
    to: Option<String>,
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScheduleReminder {
    appointment_ref: String,
    appointment_time: String,
    to: Option<String>,
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CancelReminder {
    appointment_ref: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GetSmsStatus {
    message_sid: String,
}

/// `+` and 7 to 15 digits, the first not 0: what Twilio's `To` takes.
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn messages(account: &str) -> String {
    format!("/2010-04-01/Accounts/{}/Messages", segment(account))
}

/// Twilio's 400 names a number or body it will not take (e.g. 21211, "The 'To' number is
/// not a valid phone number"): something the caller can fix, so a 422 with its words, unless
/// it is about the sending number or the account (the organization's config).
fn refused(resp: &ApiResponse, account: &str) -> Error {
    let code = resp.body.get("code").and_then(Value::as_u64);
    let said = resp
        .body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the request was refused")
        .chars()
        .take(200)
        .collect::<String>();
    let with_code = code
        .map(|c| format!(" (Twilio error {c})"))
        .unwrap_or_default();
    match resp.status {
        400 if code.is_some_and(|c| FROM_ERRORS.contains(&c)) => config_error(
            "/config/fromNumber",
            format!("Twilio will not send from the sms instance's fromNumber: {said}{with_code}"),
        ),
        400 => Error::unprocessable(format!("Twilio did not send the text: {said}{with_code}")),
        404 => config_error(
            "/config/accountSid",
            format!(
                "Twilio has no account {account} for this credential; check accountSid and the credential"
            ),
        ),
        429 => Error::Unavailable(
            "Twilio is limiting this account's sending rate; retry shortly".into(),
        ),
        _ => resp.upstream_error(TWILIO),
    }
}

/// `to`, or the caller's own number on a voice call.
fn recipient(ctx: &CallContext, to: Option<String>) -> Result<String, Error> {
    match to {
        Some(to) => Ok(to),
        None => match ctx.caller_phone.as_deref().filter(|c| is_e164(c)) {
            Some(caller) => Ok(caller.to_owned()),
            None => Err(Error::invalid_field(
                "/to",
                "give the number to text in E.164 form, e.g. +15558675310: this call has no caller number to default to",
            )),
        },
    }
}

/// The scheduled call's name for an appointment's reminder.
fn reminder(appointment: &str) -> String {
    format!("reminder-{appointment}")
}

/// A reminder is a `SendSms` scheduled before the appointment; scheduling one for an
/// appointment that has one replaces it (the appointment moved).
async fn schedule_reminder(ctx: CallContext, p: ScheduleReminder) -> Result<Value, Error> {
    let cfg: SmsConfig = ctx.config()?;
    if cfg.reminder_minutes_before == 0 {
        return Err(config_error(
            "/config/reminderMinutesBefore",
            "reminders are off for this organization (reminderMinutesBefore is 0)",
        ));
    }
    // Checked now, not when the reminder is due: a setting to fix is said to the caller.
    cfg.account()?;
    if cfg.from_number.is_none() {
        return Err(config_error(
            "/config/fromNumber",
            "the sms instance has no fromNumber: set it to the organization's Twilio number, e.g. +15017122661",
        ));
    }
    let start: jiff::Timestamp = p.appointment_time.parse().map_err(|_| {
        Error::invalid_field(
            "/appointmentTime",
            "give the start as RFC 3339 with an offset, e.g. 2027-06-01T10:00:00-05:00",
        )
    })?;
    let lead = std::time::Duration::from_secs(u64::from(cfg.reminder_minutes_before) * 60);
    let start = std::time::SystemTime::try_from(start)
        .map_err(|_| Error::invalid_field("/appointmentTime", "the time is out of range"))?;
    let send_at = start
        .checked_sub(lead)
        .ok_or_else(|| Error::invalid_field("/appointmentTime", "the time is out of range"))?;
    if send_at <= ctx.now {
        return Err(Error::invalid_field(
            "/appointmentTime",
            format!(
                "the appointment is less than {} minutes away, when its reminder would go out: send a text now with SendSms instead",
                cfg.reminder_minutes_before
            ),
        ));
    }
    if send_at.duration_since(ctx.now).unwrap_or_default() > switchboard::schedule::MAX_AHEAD {
        return Err(Error::invalid_field(
            "/appointmentTime",
            "a reminder can be scheduled at most a year ahead",
        ));
    }
    let to = recipient(&ctx, p.to)?;
    let name = reminder(&p.appointment_ref);
    let params = json!({"to": to, "body": p.body});
    // An existing reminder is replaced; a second conflict means a concurrent call
    // scheduled one in between, which this one replaces in turn.
    let mut replaced = false;
    for attempt in 0..3 {
        match ctx
            .schedule_call(&name, send_at, "SendSms", params.clone())
            .await
        {
            Ok(()) => break,
            Err(Error::Conflict { .. }) if attempt < 2 => {
                ctx.cancel_scheduled_call(&name).await?;
                replaced = true;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(json!({
        "appointmentRef": p.appointment_ref,
        "sendAt": switchboard::plugin::rfc3339(send_at)?,
        "to": to,
        "replaced": replaced,
    }))
}

async fn cancel_reminder(ctx: CallContext, p: CancelReminder) -> Result<Value, Error> {
    let cancelled = ctx
        .cancel_scheduled_call(&reminder(&p.appointment_ref))
        .await?;
    Ok(json!({"appointmentRef": p.appointment_ref, "cancelled": cancelled}))
}

async fn send_sms(ctx: CallContext, p: SendSms) -> Result<Value, Error> {
    let cfg: SmsConfig = ctx.config()?;
    let account = cfg.account()?;
    let from = cfg.from_number.as_deref().ok_or_else(|| {
        config_error(
            "/config/fromNumber",
            "the sms instance has no fromNumber: set it to the organization's Twilio number, e.g. +15017122661",
        )
    })?;
    let to = recipient(&ctx, p.to)?;
    let body = match cfg.signature.trim() {
        "" => p.body,
        sig => format!("{}\n{sig}", p.body),
    };
    let request = ApiRequest::post_form(
        format!("{}.json", messages(account)),
        [("To", to.as_str()), ("From", from), ("Body", body.as_str())],
    );
    let resp = ctx.api()?.send(request).await?;
    if !resp.is_success() {
        return Err(refused(&resp, account));
    }
    let sid = resp
        .body
        .get("sid")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::Upstream(format!(
                "{TWILIO} answered {} without a message sid",
                resp.status
            ))
        })?;
    Ok(json!({
        "messageSid": sid,
        "status": resp.body.get("status").cloned().unwrap_or(json!("queued")),
        "to": to,
    }))
}

async fn get_sms_status(ctx: CallContext, p: GetSmsStatus) -> Result<Value, Error> {
    let cfg: SmsConfig = ctx.config()?;
    let account = cfg.account()?;
    let path = format!("{}/{}.json", messages(account), segment(&p.message_sid));
    let resp = ctx.api()?.send(ApiRequest::get(path)).await?;
    if resp.status == 404 {
        return Err(Error::not_found(format!(
            "No text with messageSid {} was sent from this account. Use the messageSid SendSms returned.",
            p.message_sid
        )));
    }
    let body = resp.into_json(TWILIO)?;
    Ok(json!({
        "messageSid": p.message_sid,
        "status": body.get("status").cloned().unwrap_or(Value::Null),
        "errorCode": body.get("error_code").cloned().unwrap_or(Value::Null),
        "errorMessage": body.get("error_message").cloned().unwrap_or(Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_only() {
        assert!(is_e164("+15558675310"));
        for bad in [
            "15558675310",
            "+0155586",
            "+1555",
            "+1 555 867 5310",
            "+1234567890123456",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }
}
