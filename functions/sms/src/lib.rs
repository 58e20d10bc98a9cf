//! The SMS plugin: text messages from the organization's Twilio number through Twilio's
//! Messages API. The instance's data adapter is an `api` one, e.g.
//! `{"type": "api", "base_url": "https://api.twilio.com", "credential": "switchboard/<org>/twilio",
//! "auth": {"basic": {"username": "account_sid", "password": "auth_token"}}}` (an API key's
//! SID and secret work the same way); the account and sending number are config.

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::api::{ApiRequest, ApiResponse, segment};

use switchboard::{CallContext, ContractError, Error, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

const TWILIO: &str = "Twilio's Messages API";

/// The messages callers hear, by language (`locales/*.ftl`).
const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// Builds the plugin; fails if the manifest and the handlers disagree, or the messages
/// do not parse or differ between languages.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("SendSms", send_sms)
        .handler("GetSmsStatus", get_sms_status)
        .handler("ScheduleReminder", schedule_reminder)
        .handler("CancelReminder", cancel_reminder)
        .handler("SmsStatusCallback", status_callback)
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
    status_callback_url: Option<String>,
}

impl SmsConfig {
    fn account(&self) -> Result<&str, Error> {
        self.account_sid.as_deref().ok_or_else(|| {
            Error::invalid_config(
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

/// The fields of Twilio's status callback this plugin reads (it sends many more).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatusCallback {
    account_sid: String,
    message_sid: String,
    message_status: String,
    error_code: Option<String>,
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
fn refused(ctx: &CallContext, resp: &ApiResponse, account: &str) -> Error {
    let code = resp.body.get("code").and_then(Value::as_u64);
    // The vendor's own words, or ours in the caller's language when it gave none.
    let said = resp
        .body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(200).collect::<String>())
        .unwrap_or_else(|| ctx.say("no-reason", &[]));
    let with_code = code
        .map(|c| {
            format!(
                " ({})",
                ctx.say("twilio-code", &[("code", (&c.to_string()).into())])
            )
        })
        .unwrap_or_default();
    match resp.status {
        400 if code.is_some_and(|c| FROM_ERRORS.contains(&c)) => Error::invalid_config(
            "/config/fromNumber",
            format!("Twilio will not send from the sms instance's fromNumber: {said}{with_code}"),
        ),
        400 => Error::unprocessable(ctx.say(
            "not-sent",
            &[("said", (&said).into()), ("code", (&with_code).into())],
        )),
        404 => Error::invalid_config(
            "/config/accountSid",
            format!(
                "Twilio has no account {account} for this credential; check accountSid and the credential"
            ),
        ),
        429 => Error::Unavailable(ctx.say("rate-limited", &[])),
        _ => resp.upstream_error(TWILIO),
    }
}

/// `to`, or the caller's own number on a voice call.
fn recipient(ctx: &CallContext, to: Option<String>) -> Result<String, Error> {
    match to {
        Some(to) => Ok(to),
        None => match ctx.caller_phone.as_deref().filter(|c| is_e164(c)) {
            Some(caller) => Ok(caller.to_owned()),
            None => Err(Error::invalid_field("/to", ctx.say("no-number", &[]))),
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
        return Err(Error::invalid_config(
            "/config/reminderMinutesBefore",
            "reminders are off for this organization (reminderMinutesBefore is 0)",
        ));
    }
    // Checked now, not when the reminder is due: a setting to fix is said to the caller.
    cfg.account()?;
    if cfg.from_number.is_none() {
        return Err(Error::invalid_config(
            "/config/fromNumber",
            "the sms instance has no fromNumber: set it to the organization's Twilio number, e.g. +15017122661",
        ));
    }
    let start: jiff::Timestamp = p
        .appointment_time
        .parse()
        .map_err(|_| Error::invalid_field("/appointmentTime", ctx.say("bad-time", &[])))?;
    let lead = std::time::Duration::from_secs(u64::from(cfg.reminder_minutes_before) * 60);
    let out_of_range = || Error::invalid_field("/appointmentTime", ctx.say("out-of-range", &[]));
    let start = std::time::SystemTime::try_from(start).map_err(|_| out_of_range())?;
    let send_at = start.checked_sub(lead).ok_or_else(out_of_range)?;
    if send_at <= ctx.now {
        return Err(Error::invalid_field(
            "/appointmentTime",
            ctx.say(
                "too-soon",
                &[("minutes", cfg.reminder_minutes_before.into())],
            ),
        ));
    }
    if send_at.duration_since(ctx.now).unwrap_or_default() > switchboard::schedule::MAX_AHEAD {
        return Err(Error::invalid_field(
            "/appointmentTime",
            ctx.say("too-far", &[]),
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
        Error::invalid_config(
            "/config/fromNumber",
            "the sms instance has no fromNumber: set it to the organization's Twilio number, e.g. +15017122661",
        )
    })?;
    let to = recipient(&ctx, p.to)?;
    let body = match cfg.signature.trim() {
        "" => p.body,
        sig => format!("{}\n{sig}", p.body),
    };
    let mut form = vec![("To", to.as_str()), ("From", from), ("Body", body.as_str())];
    if let Some(url) = cfg.status_callback_url.as_deref() {
        form.push(("StatusCallback", url));
    }
    let request = ApiRequest::post_form(format!("{}.json", messages(account)), form);
    let resp = ctx.api()?.send(request).await?;
    if !resp.is_success() {
        return Err(refused(&ctx, &resp, account));
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

/// Twilio's report on a text: the signature (the org's auth token) is verified by then;
/// the account must also be the one this organization sends from. The phone numbers in the
/// callback stay out of the log.
async fn status_callback(ctx: CallContext, p: StatusCallback) -> Result<Value, Error> {
    let cfg: SmsConfig = ctx.config()?;
    let account = cfg.account()?;
    if !p.account_sid.eq_ignore_ascii_case(account) {
        return Err(Error::Forbidden {
            code: "other_account",
            message: format!(
                "this callback reports a text of Twilio account {}, not the sms instance's accountSid",
                p.account_sid
            ),
        });
    }
    let error_code = p.error_code.filter(|c| !c.is_empty() && c != "0");
    let failed = matches!(p.message_status.as_str(), "failed" | "undelivered");
    if failed {
        tracing::warn!(org = %ctx.org, message_sid = %p.message_sid, status = %p.message_status, error_code = error_code.as_deref().unwrap_or("-"), "text not delivered");
    } else {
        tracing::info!(org = %ctx.org, message_sid = %p.message_sid, status = %p.message_status, "text status");
    }
    Ok(json!({
        "messageSid": p.message_sid,
        "status": p.message_status,
        "errorCode": error_code,
        "delivered": p.message_status == "delivered" || p.message_status == "read",
    }))
}

async fn get_sms_status(ctx: CallContext, p: GetSmsStatus) -> Result<Value, Error> {
    let cfg: SmsConfig = ctx.config()?;
    let account = cfg.account()?;
    let path = format!("{}/{}.json", messages(account), segment(&p.message_sid));
    let resp = ctx.api()?.send(ApiRequest::get(path)).await?;
    if resp.status == 404 {
        return Err(Error::not_found(
            ctx.say("unknown-message", &[("sid", (&p.message_sid).into())]),
        ));
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
    fn every_message_reads_differently_in_each_language() {
        let m = switchboard::i18n::Messages::new(LOCALES).unwrap();
        for id in [
            "no-number",
            "not-sent",
            "rate-limited",
            "unknown-message",
            "bad-time",
            "out-of-range",
            "too-soon",
            "too-far",
        ] {
            let args = [
                ("said", "x".into()),
                ("code", "".into()),
                ("sid", "SM1".into()),
                ("minutes", 5u32.into()),
            ];
            let (es, en) = (m.get("es", id, &args), m.get("en", id, &args));
            assert!(
                m.has(id) && es != en && es != id && en != id,
                "{id}: {es} / {en}"
            );
        }
        let soon = |lang, n: u32| m.get(lang, "too-soon", &[("minutes", n.into())]);
        assert!(
            soon("en", 1).contains("less than a minute away"),
            "{}",
            soon("en", 1)
        );
        assert!(soon("en", 1440).contains("less than 1440 minutes away"));
        assert!(
            soon("es", 1).contains("menos de un minuto para"),
            "{}",
            soon("es", 1)
        );
        assert!(soon("es", 30).contains("menos de 30 minutos para"));
    }

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
