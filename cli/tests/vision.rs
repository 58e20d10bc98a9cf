//! The product brief's vision, with nothing but the `switchboard` binary against `dev`: "a
//! voice agent that handles dental appointments, creates Salesforce leads, sends SMS
//! reminders via Twilio, books Zoom meetings, and logs everything to our own Supabase. Oh,
//! and we want it to speak Spanish." An operator creates the organization; its admin stores
//! the credentials, enables booking on the organization's own PostgreSQL, salesforce-crm, sms,
//! zoom and translation, assigns them to the `twilio` channel, sets its locale to es-US and
//! creates the voice agent's key. Then a scripted call makes the tool calls a voice agent
//! would: find the patient by the caller's number, book, create the lead, schedule the
//! reminder, create the Zoom meeting, text the meeting's link (which Twilio reports delivered
//! through the signed status callback); and the appointment is cancelled with its reminder and
//! meeting. Every vendor is behind Prism on its published contract, the OAuth2 tokens come
//! from the test provider, and the PostgreSQL is `scripts/test`'s (all started by it).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::{cli_ok as cli, start_dev};

use serde_json::{Value, json};

const BOOKING_SQL: &str = include_str!("../../tests/fixtures/postgres/booking.sql");
const CALLER: &str = "+15550102000";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => {
            panic!("{name} is not set: scripts/test starts the server it names. Run scripts/test.")
        }
    }
}

/// A credential file for `credential set --from-file`.
fn file(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// One tool call through the twilio channel's key, as the voice platform's tool server
/// makes it: (status, body).
fn call(url: &str, key: &str, plugin: &str, function: &str, parameters: Value) -> (u16, Value) {
    let body =
        json!({"function": function, "parameters": parameters, "sessionId": "call-vision-1"})
            .to_string();
    let headers = format!("Authorization: Bearer {key}\r\nContent-Type: application/json\r\n");
    post(url, &format!("/plugins/{plugin}"), &headers, &body)
}

/// A POST of `body` to `path` with the extra `headers` (each line ending in CRLF).
fn post(url: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status: u16 = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {raw}"));
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn ok(url: &str, key: &str, plugin: &str, function: &str, parameters: Value) -> Value {
    let (status, body) = call(url, key, plugin, function, parameters.clone());
    assert_eq!(status, 200, "{plugin} {function} {parameters}: {body}");
    body["result"].clone()
}

/// Runs `sql` on `scripts/test`'s PostgreSQL.
fn postgres(url: &str, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("scripts/test's PostgreSQL does not answer: {e}"))?;
        tokio::spawn(conn);
        client.batch_execute(sql).await.map_err(|e| e.to_string())
    })
}

/// The practice's own database: the booking tables in a schema of its own on `scripts/test`'s
/// PostgreSQL, with its patients, providers and rooms. Dropped with the guard.
struct PracticeDb {
    url: String,
    schema: String,
}

impl PracticeDb {
    fn create() -> Self {
        let url = env("SWITCHBOARD_TEST_POSTGRES");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let schema = format!("vision_{}_{nanos}", std::process::id());
        postgres(
            &url,
            &format!("CREATE SCHEMA {schema}; SET search_path TO {schema}; {BOOKING_SQL}"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Self { url, schema }
    }
}

impl Drop for PracticeDb {
    fn drop(&mut self) {
        // Never a second panic: it would hide the test's own failure.
        if let Err(e) = postgres(
            &self.url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        ) {
            eprintln!("schema {} left behind: {e}", self.schema);
        }
    }
}

/// A weekday three to four weeks ahead in the practice's zone, as YYYY-MM-DD: far enough for
/// a day-before reminder, within the booking window and a year.
fn visit_day() -> String {
    let mut day = jiff::Timestamp::now()
        .in_tz("America/New_York")
        .unwrap()
        .date();
    for _ in 0..21 {
        day = day.tomorrow().unwrap();
    }
    while matches!(
        day.weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    ) {
        day = day.tomorrow().unwrap();
    }
    day.to_string()
}

/// "YYYY-MM-DD HH:MM:SS" in the practice's zone as RFC 3339 with its offset.
fn rfc3339(local: &str) -> String {
    let dt: jiff::civil::DateTime = local.replace(' ', "T").parse().unwrap();
    dt.in_tz("America/New_York")
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[test]
fn the_vision_configured_with_the_cli_and_called_in_spanish() {
    let twilio = env("SWITCHBOARD_TEST_TWILIO");
    let salesforce = env("SWITCHBOARD_TEST_SALESFORCE");
    let zoom = env("SWITCHBOARD_TEST_ZOOM");
    let issuer = env("SWITCHBOARD_TEST_OAUTH");
    let db = PracticeDb::create();
    let (pg_url, schema) = (db.url.clone(), db.schema.clone());

    let dir = std::env::temp_dir().join(format!("sb-vision-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let dev = start_dev(&dir);
    let url = dev.url.clone();
    let operator = std::fs::read_to_string(dir.join("operator-api-key"))
        .expect("dev saved the operator key")
        .trim()
        .to_owned();

    // The operator creates the organization; the rest is its admin's.
    let created = cli(
        &url,
        &operator,
        &["org", "create", "vision", "--name", "Bright Smile Dental"],
    );
    let admin = created["key"].as_str().expect("the admin key").to_owned();
    let admin = admin.as_str();
    cli(
        &url,
        admin,
        &[
            "org",
            "profile",
            "--timezone",
            "America/New_York",
            "--locale",
            "en-US",
        ],
    );
    for (name, value) in [
        ("practice-db", json!({"connection_string": pg_url})),
        (
            "salesforce",
            json!({"client_id": "switchboard-cc", "client_secret": "cc-secret"}),
        ),
        (
            "twilio",
            json!({"account_sid": ACCOUNT, "auth_token": "vision-auth-token"}),
        ),
        (
            "zoom",
            json!({"client_id": "switchboard-zoom", "client_secret": "zoom-secret", "account_id": "zoom-account-1"}),
        ),
    ] {
        let path = file(&dir, &format!("{name}.json"), &value);
        cli(
            &url,
            admin,
            &["credential", "set", name, "--from-file", &path],
        );
    }
    let entities: serde_json::Map<String, Value> = [
        "patients",
        "providers",
        "operatories",
        "appointments",
        "slot_claims",
    ]
    .into_iter()
    .map(|e| (e.to_owned(), json!(e)))
    .collect();
    let adapters = [
        (
            "booking",
            json!({}),
            json!({"type": "postgres", "credential": "switchboard/vision/practice-db", "schema": schema, "entities": entities}),
        ),
        (
            "salesforce-crm",
            json!({"autoQualifyLeads": true}),
            json!({"type": "api", "base_url": salesforce, "credential": "switchboard/vision/salesforce",
                "auth": {"oauth2": {"grant": "client_credentials", "token_url": format!("{issuer}/token"), "scope": "leads"}}}),
        ),
        (
            "sms",
            json!({"accountSid": ACCOUNT, "fromNumber": "+15017122661", "signature": "– Bright Smile Dental"}),
            json!({"type": "api", "base_url": twilio, "credential": "switchboard/vision/twilio",
                "auth": {"basic": {"username": "account_sid", "password": "auth_token"}}}),
        ),
        (
            "zoom",
            json!({"hostUser": "frontdesk@brightsmile.example", "timeZone": "America/New_York"}),
            json!({"type": "api", "base_url": zoom, "credential": "switchboard/vision/zoom",
                "auth": {"oauth2": {"grant": "account_credentials", "token_url": format!("{issuer}/token")}}}),
        ),
    ];
    for (plugin, config, adapter) in &adapters {
        cli(
            &url,
            admin,
            &[
                "org",
                "enable",
                plugin,
                "--config",
                &config.to_string(),
                "--data-adapter",
                &adapter.to_string(),
            ],
        );
    }
    cli(&url, admin, &["org", "enable", "translation"]);
    for (priority, plugin) in ["booking", "salesforce-crm", "sms", "zoom", "translation"]
        .iter()
        .enumerate()
    {
        let priority = (priority + 1).to_string();
        cli(
            &url,
            admin,
            &[
                "channel",
                "assign",
                "twilio",
                plugin,
                "--priority",
                &priority,
            ],
        );
    }
    let locale = cli(&url, admin, &["channel", "locale", "twilio", "es-US"]);
    assert_eq!(locale["locale"], "es-US", "{locale}");
    // Twilio reports each text's delivery to the sms URL of a twilio connection.
    let connected = cli(
        &url,
        admin,
        &[
            "channel",
            "connect",
            "twilio",
            "twilio",
            "--credential",
            "twilio",
        ],
    );
    let callbacks = connected["urls"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        callbacks.len(),
        1,
        "only sms takes Twilio's webhooks: {connected}"
    );
    let callback = callbacks[0].as_str().unwrap_or_default().to_owned();
    assert!(callback.ends_with("/sms"), "{callback}");
    cli(
        &url,
        admin,
        &[
            "org",
            "configure",
            "sms",
            "--config",
            &json!({"accountSid": ACCOUNT, "fromNumber": "+15017122661", "signature": "– Bright Smile Dental",
                "statusCallbackUrl": callback})
            .to_string(),
        ],
    );
    let key = cli(
        &url,
        admin,
        &[
            "key",
            "create",
            "--name",
            "voice agent",
            "--scopes",
            "agents:read,plugins:call",
            "--channel",
            "twilio",
        ],
    );
    let key = key["key"].as_str().expect("the agent's key").to_owned();
    let key = key.as_str();

    // The agent speaks Spanish and has every plugin's tools.
    let agent = cli(
        &url,
        admin,
        &["agent", "preview", "twilio", "--format", "openai"],
    );
    let text = agent.to_string();
    for spanish in [
        "Usted atiende la recepción de Bright Smile Dental",
        "Usted registra oportunidades de venta (leads)",
        "Puede enviar un mensaje de texto desde el número de Bright Smile Dental",
        "sea por videollamada",
        "respóndale en el suyo",
    ] {
        assert!(text.contains(spanish), "{spanish} not in {text}");
    }
    for tool in [
        "SearchPatients",
        "CreateLead",
        "ScheduleReminder",
        "CreateMeeting",
        "TranslateText",
    ] {
        assert!(text.contains(tool), "{tool} not offered: {text}");
    }

    // The plugins answer in the channel's language too (sms's messages are localised).
    let (status, body) = call(&url, key, "sms", "SendSms", json!({"body": "Hola"}));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("indique el número"),
        "{body}"
    );

    // The call. The caller is on file under their number.
    let found = ok(
        &url,
        key,
        "booking",
        "SearchPatients",
        json!({"phone": CALLER}),
    );
    let patient = &found["patients"][0];
    assert_eq!(patient["LName"], "Rivera", "{found}");
    let pat = patient["PatNum"].as_i64().unwrap();
    let day = visit_day();
    let providers = ok(&url, key, "booking", "GetProviders", json!({}));
    let prov = providers["providers"][0]["ProvNum"].as_i64().unwrap();
    let slots = ok(
        &url,
        key,
        "booking",
        "GetAvailableSlots",
        json!({"date": day, "ProvNum": prov}),
    );
    let when = slots["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["AptDateTime"].as_str())
        .find(|t| t.contains(" 10:00"))
        .unwrap_or_else(|| panic!("no 10:00 slot on {day}: {slots}"))
        .to_owned();
    let booked = ok(
        &url,
        key,
        "booking",
        "CreateAppointment",
        json!({"PatNum": pat, "ProvNum": prov, "AptDateTime": when, "patientConsent": true}),
    );
    let apt = booked["AptNum"]
        .as_i64()
        .unwrap_or_else(|| panic!("{booked}"));
    let apt_ref = apt.to_string();
    let lead = ok(
        &url,
        key,
        "salesforce-crm",
        "CreateLead",
        json!({"name": "Jordan Rivera", "phone": CALLER, "source": "llamada"}),
    );
    assert!(lead["leadId"].is_string(), "{lead}");
    let start = rfc3339(&when);
    let reminder = ok(
        &url,
        key,
        "sms",
        "ScheduleReminder",
        json!({"appointmentRef": apt_ref, "appointmentTime": start, "to": CALLER,
            "body": "Recordatorio: su cita en Bright Smile Dental es mañana."}),
    );
    assert_eq!(reminder["replaced"], false, "{reminder}");
    let meeting = ok(
        &url,
        key,
        "zoom",
        "CreateMeeting",
        json!({"bookingRef": apt_ref, "startTime": start}),
    );
    assert!(meeting["joinUrl"].is_string(), "{meeting}");
    let texted = ok(
        &url,
        key,
        "sms",
        "SendSms",
        json!({"to": CALLER, "body": format!("Su videollamada: {}", meeting["joinUrl"].as_str().unwrap_or_default())}),
    );
    assert!(texted["messageSid"].is_string(), "{texted}");
    // Twilio's report on that text, signed with the account's auth token as Twilio signs it.
    let report = format!(
        "AccountSid={ACCOUNT}&MessageSid={}&MessageStatus=delivered&To=%2B15550102000",
        texted["messageSid"].as_str().unwrap_or_default()
    );
    let signature =
        switchboard::signature::sign_twilio(b"vision-auth-token", &callback, report.as_bytes());
    let path = callback.trim_start_matches(url.as_str());
    let (status, delivered) = post(
        &url,
        path,
        &format!(
            "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n"
        ),
        &report,
    );
    assert_eq!(status, 200, "{delivered}");
    assert_eq!(delivered["result"]["delivered"], true, "{delivered}");

    // The caller cancels: the appointment, its reminder and its meeting.
    ok(
        &url,
        key,
        "booking",
        "CancelAppointment",
        json!({"AptNum": apt, "reason": "el paciente canceló"}),
    );
    let cancelled = ok(
        &url,
        key,
        "sms",
        "CancelReminder",
        json!({"appointmentRef": apt_ref}),
    );
    assert_eq!(
        cancelled["cancelled"], true,
        "the reminder is gone: {cancelled}"
    );
    let again = ok(
        &url,
        key,
        "sms",
        "CancelReminder",
        json!({"appointmentRef": apt_ref}),
    );
    assert_eq!(again["cancelled"], false);
    // Prism answers Zoom's list with its fixed example, which holds no meeting of this
    // organization, so the cancellation goes through Zoom's contract and finds nothing to
    // delete; the meeting's deletion is shown in tests/tests/suite/vendors.rs.
    let meeting_gone = ok(
        &url,
        key,
        "zoom",
        "CancelMeeting",
        json!({"bookingRef": apt_ref}),
    );
    assert_eq!(meeting_gone["bookingRef"], apt_ref.as_str());
    let mine = ok(
        &url,
        key,
        "booking",
        "GetAppointments",
        json!({"PatNum": pat, "includeCancelled": true}),
    );
    let row = mine["appointments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["AptNum"] == apt)
        .unwrap_or_else(|| panic!("{apt} not in {mine}"));
    assert_eq!(
        row["AptStatus"], "Broken",
        "the appointment is cancelled: {row}"
    );

    // The tenant's audit log has each kind of call made, and no reminder sent (cancelled).
    let audit = cli(&url, admin, &["audit", "--limit", "200"]);
    let text = audit.to_string();
    for step in [
        "SearchPatients",
        "CreateAppointment",
        "CreateLead",
        "ScheduleReminder",
        "CreateMeeting",
        "CancelReminder",
        "SmsStatusCallback",
    ] {
        assert!(text.contains(step), "{step} not audited: {text}");
    }
    assert!(
        !text.contains("\"scheduler\""),
        "no reminder was sent: {text}"
    );
    drop(dev);
    std::fs::remove_dir_all(&dir).unwrap();
}
