//! Vendor plugins against the vendors' own published API contracts: Prism (started by
//! `scripts/test`, see `scripts/prism.sh`) mocks each vendor from its OpenAPI document
//! (`tests/fixtures/vendor-openapi/`) and validates every request against it, so a request
//! our plugin builds wrongly fails these tests.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard::OrgId;
use switchboard::api::ApiRequest;
use switchboard::pipeline::{Platform, PluginService};
use switchboard::ports::Api;
use switchboard::ports::StoreError;
use switchboard::registry::{ChannelConfig, Connection, DataAdapterConfig, PluginInstance};
use switchboard::secrets::{SecretValue, Secrets};
use switchboard::signature::sign_twilio;
use switchboard::{Channel, ConnectionId, VoicePlatform};
use switchboard_tests::http::{post, send};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-auth-token-never-shown";

/// Prism on Twilio's Messages API, set by `scripts/test`. Without it these tests fail.
pub(crate) fn twilio() -> String {
    match std::env::var("SWITCHBOARD_TEST_TWILIO") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SWITCHBOARD_TEST_TWILIO is not set: the vendor tests run against Prism, which \
             scripts/test installs and starts (scripts/prism.sh). Run scripts/test."
        ),
    }
}

fn secret(v: Value) -> SecretValue {
    match v {
        Value::Object(m) => SecretValue::new(m),
        other => panic!("not an object: {other}"),
    }
}

fn twilio_adapter(org: &str) -> Value {
    json!({
        "type": "api",
        "base_url": twilio(),
        "credential": format!("switchboard/{org}/twilio"),
        "auth": {"basic": {"username": "account_sid", "password": "auth_token"}}
    })
}

/// The sample events' SMS organization: the sms plugin on Prism's Twilio, its credential
/// in `secrets`. Returns the sms function's service on `platform`.
pub(crate) async fn sms_events_org(platform: &Arc<Platform>, secrets: &Secrets) -> PluginService {
    let org = OrgId::parse("sms-events").unwrap();
    secrets
        .store(
            &org,
            "twilio",
            &secret(json!({"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN})),
        )
        .await
        .unwrap();
    let service = enable(
        platform,
        &org,
        sms::plugin().unwrap(),
        json!({"accountSid": ACCOUNT, "fromNumber": "+15017122661"}),
        twilio_adapter("sms-events"),
    )
    .await;
    // Twilio's status callbacks (`events/sms-status-callback*.json`) come through a twilio
    // connection of a channel sms is assigned to, signed with the credential's auth token.
    let channel = Channel::parse("twilio").unwrap();
    let config: ChannelConfig =
        serde_json::from_value(json!({"plugin_assignments": [{"plugin": "sms", "priority": 1}]}))
            .unwrap();
    match platform
        .registry
        .put_channel(&org, &channel, &config, None)
        .await
    {
        Ok(_) | Err(switchboard::Error::Conflict { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    let conn = Connection {
        id: ConnectionId::parse(SMS_EVENTS_CONNECTION).unwrap(),
        org,
        channel,
        platform: VoicePlatform::Twilio,
        credential: "twilio".into(),
        created: 1_795_608_000,
    };
    match platform.registry.create_connection(&conn).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    service
}

/// The twilio connection `events/sms-status-callback*.json` are sent to.
const SMS_EVENTS_CONNECTION: &str = "cn_5e1ec7ed00000000000000000000c003";

/// `plugin` enabled for `org` at its own version with `config` and the `api` adapter
/// `adapter`, written straight to the registry; the function's service on `platform`.
async fn enable(
    platform: &Arc<Platform>,
    org: &OrgId,
    plugin: switchboard::Plugin,
    config: Value,
    adapter: Value,
) -> PluginService {
    let inst = PluginInstance {
        plugin: plugin.name().clone(),
        enabled: true,
        pinned_version: plugin.manifest().manifest().version.clone(),
        config,
        data_adapter: DataAdapterConfig::from_json(&adapter, "").unwrap(),
    };
    match platform.registry.put_instance(org, &inst, None).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    PluginService::new(plugin, platform.clone())
}

/// The sample events' calendar organization: google-calendar on Prism's Calendar API (its
/// events are answered before any request). Returns the function's service on `platform`.
pub(crate) async fn calendar_events_org(platform: &Arc<Platform>) -> PluginService {
    let adapter = json!({
        "type": "api", "base_url": google_calendar(),
        "credential": "switchboard/calendar-events/google",
        "auth": {"oauth2": {"grant": "jwt_bearer", "scope": "calendar"}}
    });
    let org = OrgId::parse("calendar-events").unwrap();
    enable(
        platform,
        &org,
        google_calendar::plugin().unwrap(),
        json!({}),
        adapter,
    )
    .await
}

/// The sample events' Salesforce organization: salesforce-crm on Prism's Lead operations (its
/// event is answered before any request). Returns the function's service on `platform`.
pub(crate) async fn salesforce_events_org(platform: &Arc<Platform>) -> PluginService {
    let adapter = json!({
        "type": "api", "base_url": salesforce(),
        "credential": "switchboard/salesforce-events/salesforce",
        "auth": {"oauth2": {"grant": "client_credentials", "token_url": "https://acme.my.salesforce.com/services/oauth2/token"}}
    });
    let org = OrgId::parse("salesforce-events").unwrap();
    enable(
        platform,
        &org,
        salesforce_crm::plugin().unwrap(),
        json!({}),
        adapter,
    )
    .await
}

/// The sample events' Zoom organization: zoom on Prism's Meeting API (its event is answered
/// before any request). Returns the function's service on `platform`.
pub(crate) async fn zoom_events_org(platform: &Arc<Platform>) -> PluginService {
    let adapter = json!({
        "type": "api", "base_url": zoom(),
        "credential": "switchboard/zoom-events/zoom",
        "auth": {"oauth2": {"grant": "account_credentials", "token_url": "https://zoom.us/oauth/token"}}
    });
    let org = OrgId::parse("zoom-events").unwrap();
    enable(
        platform,
        &org,
        zoom::plugin().unwrap(),
        json!({"hostUser": "frontdesk@acme.example"}),
        adapter,
    )
    .await
}

/// The sample events' translation organization: the translation plugin (its event is
/// answered before Amazon Translate is asked). Returns the function's service on `platform`.
pub(crate) async fn translation_events_org(platform: &Arc<Platform>) -> PluginService {
    let org = OrgId::parse("translation-events").unwrap();
    enable(
        platform,
        &org,
        translation::plugin().unwrap(),
        json!({}),
        json!({"type": "dynamodb"}),
    )
    .await
}

/// The README's sequence for the sms plugin, through `dev`'s admin API and plugin route,
/// with Twilio behind Prism: what an operator types is what reaches Twilio's contract.
#[tokio::test]
async fn sms_sends_and_reports_through_twilios_published_contract() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-sms"));
    std::fs::create_dir_all(&dir).unwrap();
    let (addr, key, _, gateway, task) = crate::dev_server::start_gateway(&dir).await;
    let put = |path: &'static str, body: Value| {
        let key = key.clone();
        async move { send(addr, "PUT", path, Some(&key), body.to_string().as_bytes()).await }
    };

    // The credential first; its value never comes back.
    let stored = put(
        "/admin/credentials/twilio",
        json!({"value": {"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN}}),
    )
    .await;
    assert!(matches!(stored.status, 200 | 201), "{}", stored.body);
    assert!(!stored.body.to_string().contains(AUTH_TOKEN));

    // The plugin takes only the api adapter, and the secret must hold what auth names.
    let wrong_kind = put(
        "/admin/instances/sms",
        json!({"pinned_version": "0.4.0", "enabled": true, "data_adapter": {"type": "dynamodb"}}),
    )
    .await;
    assert_eq!(wrong_kind.status, 422, "{}", wrong_kind.body);
    assert!(
        wrong_kind.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("sms supports the data adapters api"),
        "{}",
        wrong_kind.body
    );
    let mut missing_field = twilio_adapter("demo-dental");
    missing_field["auth"]["basic"]["password"] = json!("api_secret");
    let refused = put(
        "/admin/instances/sms",
        json!({"pinned_version": "0.4.0", "enabled": true, "data_adapter": missing_field}),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["details"][0]["path"], "/data_adapter/credential",
        "{}",
        refused.body
    );

    let created = put(
        "/admin/instances/sms",
        json!({
            "pinned_version": "0.4.0", "enabled": true,
            "config": {"accountSid": ACCOUNT, "fromNumber": "+15017122661", "signature": "– Bright Smile Dental"},
            "data_adapter": twilio_adapter("demo-dental"),
        }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);

    let sent = post(
        addr,
        "/plugins/sms",
        Some(&key),
        &json!({"function": "SendSms", "parameters": {"to": "+15558675310", "body": "Your appointment is on Tuesday at 10:00."}}),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let sid = sent.body["result"]["messageSid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{}", sent.body);
    assert!(sent.body["result"]["status"].is_string());

    let status = post(
        addr,
        "/plugins/sms",
        Some(&key),
        &json!({"function": "GetSmsStatus", "parameters": {"messageSid": sid}}),
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body["result"]["status"].is_string(),
        "{}",
        status.body
    );

    // A reminder waits in dev's store until due (dev's clock is pinned to 2026-11-25), then
    // runs through the sms function's event handling as the scheduler's delivery would.
    let reminder = |appointment: &'static str| {
        json!({"function": "ScheduleReminder", "parameters": {"appointmentRef": appointment,
            "appointmentTime": "2026-11-27T10:00:00-05:00", "to": "+15558675310",
            "body": "Reminder: your appointment is tomorrow at 10:00."}})
    };
    let scheduled = post(addr, "/plugins/sms", Some(&key), &reminder("1042")).await;
    assert_eq!(scheduled.status, 200, "{}", scheduled.body);
    assert_eq!(scheduled.body["result"]["sendAt"], "2026-11-26T15:00:00Z");
    let cancelled_later = post(addr, "/plugins/sms", Some(&key), &reminder("1043")).await;
    assert_eq!(cancelled_later.status, 200, "{}", cancelled_later.body);
    let cancel = post(
        addr,
        "/plugins/sms",
        Some(&key),
        &json!({"function": "CancelReminder", "parameters": {"appointmentRef": "1043"}}),
    )
    .await;
    assert_eq!(cancel.body["result"]["cancelled"], true, "{}", cancel.body);
    assert_eq!(gateway.run_due(1_795_705_199).await, 0, "not due yet");
    assert_eq!(
        gateway.run_due(1_795_705_200).await,
        1,
        "1042's, not 1043's"
    );
    assert_eq!(gateway.run_due(1_795_705_200).await, 0, "run once");
    // The audit log shows the text the scheduler sent.
    let audit = send(
        addr,
        "GET",
        "/admin/audit?function=SendSms&from=2026-11-20T00:00:00Z&to=2026-11-30T00:00:00Z",
        Some(&key),
        b"",
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let by_scheduler: Vec<&Value> = audit.body["result"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "scheduler")
        .collect();
    assert_eq!(by_scheduler.len(), 1, "{}", audit.body);
    assert_eq!(by_scheduler[0]["status"], 200, "{}", audit.body);

    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Twilio's status callbacks, as an operator wires them through `dev`'s admin API: a twilio
/// connection, the sms URL it lists set as `statusCallbackUrl` (which SendSms hands Twilio,
/// past Prism's validation), then callbacks signed as Twilio signs them. Only a verified
/// callback runs the webhook function, and nothing else runs it.
#[tokio::test]
async fn twilio_status_callbacks_run_only_when_signed() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-sms-status"));
    std::fs::create_dir_all(&dir).unwrap();
    let (addr, key, _, _gateway, task) = crate::dev_server::start_gateway(&dir).await;
    let admin = |method: &'static str, path: String, body: Value| {
        let key = key.clone();
        async move { send(addr, method, &path, Some(&key), body.to_string().as_bytes()).await }
    };
    let config = |callback: Option<&str>| {
        let mut c = json!({"accountSid": ACCOUNT, "fromNumber": "+15017122661"});
        if let Some(url) = callback {
            c["statusCallbackUrl"] = json!(url);
        }
        c
    };
    let stored = admin(
        "PUT",
        "/admin/credentials/twilio".into(),
        json!({"value": {"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN}}),
    )
    .await;
    assert!(matches!(stored.status, 200 | 201), "{}", stored.body);
    let created = admin(
        "PUT",
        "/admin/instances/sms".into(),
        json!({"pinned_version": "0.4.0", "enabled": true, "config": config(None),
            "data_adapter": twilio_adapter("demo-dental")}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let assigned = admin(
        "PUT",
        "/admin/channels/sms-status".into(),
        json!({"plugin_assignments": [{"plugin": "sms", "priority": 1}, {"plugin": "booking", "priority": 2}]}),
    )
    .await;
    assert!(matches!(assigned.status, 200 | 201), "{}", assigned.body);
    let connected = post(
        addr,
        "/admin/connections",
        Some(&key),
        &json!({"platform": "twilio", "channel": "sms-status", "credential": "twilio"}),
    )
    .await;
    assert_eq!(connected.status, 201, "{}", connected.body);
    let id = connected.body["result"]["id"].as_str().unwrap().to_owned();
    // Only sms answers Twilio's webhooks: booking, on the same channel, has no URL here.
    let path = format!("/channels/twilio/{id}/sms");
    assert_eq!(connected.body["result"]["paths"], json!([path]));
    let url = format!("http://{addr}{path}");
    let updated = admin(
        "PUT",
        "/admin/instances/sms".into(),
        json!({"version": created.body["result"]["version"], "config": config(Some(&url))}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);

    // SendSms hands Twilio the callback URL; Prism validates it against Twilio's contract.
    let sent = post(
        addr,
        "/plugins/sms",
        Some(&key),
        &json!({"function": "SendSms", "parameters": {"to": "+15558675310", "body": "See you Tuesday."}}),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let sid = "SM0123456789abcdef0123456789abcdef";
    let form = format!(
        "AccountSid={ACCOUNT}&MessageSid={sid}&SmsSid={sid}&MessageStatus=undelivered&SmsStatus=undelivered&ErrorCode=30003&To=%2B15558675310&From=%2B15017122661&ApiVersion=2010-04-01"
    );
    let callback = |url: String, body: String, signature: Option<String>, kind: &'static str| {
        let path = url.trim_start_matches(&format!("http://{addr}")).to_owned();
        async move {
            let mut headers = vec![("content-type", kind)];
            if let Some(s) = &signature {
                headers.push(("x-twilio-signature", s.as_str()));
            }
            switchboard_tests::http::send_with(addr, "POST", &path, None, &headers, body.as_bytes())
                .await
        }
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let signed =
        |url: &str, body: &str| Some(sign_twilio(AUTH_TOKEN.as_bytes(), url, body.as_bytes()));

    let ok = callback(url.clone(), form.clone(), signed(&url, &form), FORM).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let result = &ok.body["result"];
    assert_eq!(
        (
            &result["messageSid"],
            &result["status"],
            &result["errorCode"],
            &result["delivered"]
        ),
        (
            &json!(sid),
            &json!("undelivered"),
            &json!("30003"),
            &json!(false)
        ),
        "{}",
        ok.body
    );

    // JSON bodies are signed through the URL's bodySHA256.
    let json_body =
        json!({"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": "delivered"}).to_string();
    let hashed = format!("{url}?bodySHA256={}", sha256_hex(json_body.as_bytes()));
    let ok = callback(
        hashed.clone(),
        json_body.clone(),
        signed(&hashed, &json_body),
        "application/json",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["result"]["delivered"], true, "{}", ok.body);

    let other_account = form.replace(ACCOUNT, "AC00000000000000000000000000000000");
    let refusals = [
        // A status changed on the way.
        (
            form.replace("undelivered", "delivered"),
            signed(&url, &form),
            FORM,
            url.clone(),
            401,
            "does not match",
        ),
        (
            form.clone(),
            None,
            FORM,
            url.clone(),
            401,
            "X-Twilio-Signature",
        ),
        (
            form.clone(),
            Some("not base64!".into()),
            FORM,
            url.clone(),
            401,
            "malformed",
        ),
        // Signed for another URL (another connection's).
        (
            form.clone(),
            signed(&format!("{url}x"), &form),
            FORM,
            url.clone(),
            401,
            "does not match",
        ),
        (
            json_body.replace("delivered", "failed"),
            signed(&hashed, &json_body),
            "application/json",
            hashed.clone(),
            401,
            "bodySHA256",
        ),
        // Signed with the org's token, for a text of an account the org does not send from.
        (
            other_account.clone(),
            signed(&url, &other_account),
            FORM,
            url.clone(),
            403,
            "not the sms instance's accountSid",
        ),
        // Missing what the function needs: Twilio's fields are validated like any parameters.
        (
            "AccountSid=x".to_owned(),
            signed(&url, "AccountSid=x"),
            FORM,
            url.clone(),
            422,
            "MessageSid",
        ),
    ];
    for (body, signature, kind, url, status, says) in refusals {
        let r = callback(url, body.clone(), signature, kind).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }

    // The webhook function is nobody else's: not a key's, not an agent's tool.
    let direct = post(
        addr,
        "/plugins/sms",
        Some(&key),
        &json!({"function": "SmsStatusCallback", "parameters": {"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": "delivered"}}),
    )
    .await;
    assert_eq!(direct.status, 403, "{}", direct.body);
    assert_eq!(
        direct.body["error"]["code"], "webhook_only",
        "{}",
        direct.body
    );
    // Headers a tunnel or a client may repeat or garble fall back to dev's own host and
    // scheme: each request is answered, and dev keeps serving.
    for host in ["a b", "localhost:99999", "[zz]", ":80", "1.2.3.999"] {
        let garbled = switchboard_tests::http::send_with(
            addr,
            "POST",
            "/plugins/sms",
            Some(&key),
            &[
                ("Host", host),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Proto", "https"),
            ],
            br#"{"function": "SmsStatusCallback", "parameters": {}}"#,
        )
        .await;
        assert_eq!(garbled.status, 403, "{host}: {}", garbled.body);
        // The same host alone, as a client would send it.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = r#"{"function": "SmsStatusCallback", "parameters": {}}"#;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /plugins/sms HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        assert!(
            raw.starts_with("HTTP/1.1 403") || raw.starts_with("HTTP/1.1 400"),
            "{host}: {raw}"
        );
    }
    let agent = send(addr, "GET", "/agents/sms-status", Some(&key), b"").await;
    assert_eq!(agent.status, 200, "{}", agent.body);
    let tools = agent.body.to_string();
    assert!(tools.contains("SendSms"), "{tools}");
    assert!(!tools.contains("SmsStatusCallback"), "{tools}");
    // Twilio's route reaches only plugins that answer its webhooks (as API Gateway routes it).
    let booking = format!("/channels/twilio/{id}/booking");
    let r = callback(
        format!("http://{addr}{booking}"),
        form.clone(),
        signed(&format!("http://{addr}{booking}"), &form),
        FORM,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Each callback is in the org's audit log, under Twilio's route and the connection.
    let audit = send(
        addr,
        "GET",
        "/admin/audit?from=2026-11-20T00:00:00Z&to=2026-11-30T00:00:00Z",
        Some(&key),
        b"",
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let twilio: Vec<&Value> = audit.body["result"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "twilio")
        .collect();
    let statuses: Vec<i64> = twilio.iter().filter_map(|e| e["status"].as_i64()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&401) && statuses.contains(&403),
        "{statuses:?}"
    );
    assert!(
        twilio.iter().all(|e| e["channel"] == "sms-status"),
        "{twilio:?}"
    );
    // Neither the auth token nor a signature (the idempotency key is its hash) is kept.
    let kept = audit.body.to_string();
    let signature = signed(&url, &form).unwrap_or_default();
    assert!(
        !kept.contains(AUTH_TOKEN) && !kept.contains(&signature),
        "{kept}"
    );
    assert!(
        twilio.iter().any(|e| e["idempotencyKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("twilio:"))),
        "{twilio:?}"
    );

    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Without a credential Twilio's contract answers 401 (Prism checks its security scheme): a
/// 502 saying no credential is configured, not the vendor's body.
#[tokio::test]
async fn twilio_without_a_credential_is_refused_by_its_contract() {
    let Value::Object(settings) = json!({"base_url": twilio()}) else {
        unreachable!()
    };
    let api = switchboard_rest::VendorApi::new(
        switchboard_rest::RestClient::new(switchboard_tests::egress(), switchboard_tests::tls()),
        Arc::new(switchboard::spec::ApiConfig::parse(&settings).unwrap()),
        crate::fixtures::local_secrets(),
        OrgId::parse("sms-bare").unwrap(),
        switchboard_rest::Tokens::default(),
    );
    let request = ApiRequest::post_form(
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"),
        [
            ("To", "+15558675310"),
            ("From", "+15017122661"),
            ("Body", "Hi"),
        ],
    );
    let e = api.send(request).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    assert!(e.to_string().contains("no credential is configured"), "{e}");
}

/// A vendor that counts requests by method and path: 503 on `/flaky`; on `/secure`, 200
/// only with Basic `sid:new-token`, else 401.
async fn counting_vendor() -> (
    String,
    Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
    tokio::task::JoinHandle<()>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let counts: Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
    let seen = counts.clone();
    let good = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "sid:new-token")
    );
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        let good = good.clone();
        async move {
            let key = format!("{} {}", req.method(), req.uri().path());
            *seen.lock().unwrap().entry(key).or_default() += 1;
            let authorized = req
                .headers()
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == good.as_bytes());
            let status = match req.uri().path() {
                "/flaky" => 503,
                _ if authorized => 200,
                _ => 401,
            };
            Ok::<_, std::convert::Infallible>(
                hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .unwrap(),
            )
        }
    });
    let (addr, task) = switchboard_tests::serve_http1(svc).await;
    (format!("http://{addr}"), counts, task)
}

/// What the api adapter repeats (a read after a 503) and what it never does (a write), and a
/// key rejected with 401 re-read once from the store, as after a rotation.
#[tokio::test]
async fn the_api_adapter_repeats_only_reads_and_rereads_a_rotated_key() {
    let (url, counts, task) = counting_vendor().await;
    let db = switchboard_embedded::Embedded::in_memory().unwrap();
    let store = db.secret_store();
    let reference = store
        .put(
            "switchboard/sms-rot/twilio",
            &secret(json!({"account_sid": "sid", "auth_token": "old-token"})),
        )
        .await
        .unwrap();
    let Value::Object(settings) = json!({
        "base_url": url, "credential": "switchboard/sms-rot/twilio",
        "auth": {"basic": {"username": "account_sid", "password": "auth_token"}}
    }) else {
        unreachable!()
    };
    let config = Arc::new(switchboard::spec::ApiConfig::parse(&settings).unwrap());
    let api = |secrets: Arc<Secrets>| {
        switchboard_rest::VendorApi::new(
            switchboard_rest::RestClient::new(
                switchboard_tests::egress(),
                switchboard_tests::tls(),
            ),
            config.clone(),
            secrets,
            OrgId::parse("sms-rot").unwrap(),
            switchboard_rest::Tokens::default(),
        )
    };
    let secrets = || {
        Arc::new(Secrets::new(
            store.clone(),
            std::time::Duration::from_secs(300),
            "switchboard",
        ))
    };
    let a = api(secrets());
    let count = |k: &str| counts.lock().unwrap().get(k).copied().unwrap_or(0);

    let read = a.send(ApiRequest::get("/flaky")).await.unwrap();
    assert_eq!((read.status, count("GET /flaky")), (503, 3));
    let write = a
        .send(ApiRequest::post_form("/flaky", [("Body", "once")]))
        .await
        .unwrap();
    assert_eq!((write.status, count("POST /flaky")), (503, 1));

    // The cached "old-token" is refused; the store has been rotated meanwhile.
    store
        .put(
            reference.name(),
            &secret(json!({"account_sid": "sid", "auth_token": "new-token"})),
        )
        .await
        .unwrap();
    let ok = a.send(ApiRequest::get("/secure")).await.unwrap();
    assert_eq!((ok.status, count("GET /secure")), (200, 2));

    // A key that is simply wrong: one re-read, then a 502 naming the credential, not its value.
    store
        .put(
            reference.name(),
            &secret(json!({"account_sid": "sid", "auth_token": "wrong-token"})),
        )
        .await
        .unwrap();
    let e = api(secrets())
        .send(ApiRequest::get("/secure"))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    assert!(
        e.to_string().contains("switchboard/sms-rot/twilio")
            && !e.to_string().contains("wrong-token"),
        "{e}"
    );
    assert_eq!(count("GET /secure"), 3);
    task.abort();
}

/// Prism on the Salesforce Lead operations, set by `scripts/test`. Without it these tests fail.
fn salesforce() -> String {
    match std::env::var("SWITCHBOARD_TEST_SALESFORCE") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SWITCHBOARD_TEST_SALESFORCE is not set: the vendor tests run against Prism, \
             which scripts/test installs and starts (scripts/prism.sh). Run scripts/test."
        ),
    }
}

/// Prism on Google's Calendar API, set by `scripts/test`. Without it these tests fail.
fn google_calendar() -> String {
    match std::env::var("SWITCHBOARD_TEST_GOOGLE_CALENDAR") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SWITCHBOARD_TEST_GOOGLE_CALENDAR is not set: the vendor tests run against Prism, \
             which scripts/test installs and starts (scripts/prism.sh). Run scripts/test."
        ),
    }
}

/// The google-calendar plugin through `dev`, authenticated as a service account (the
/// JWT-bearer grant against the test OAuth2 provider), against Prism on Google's published
/// Calendar API: each request the plugin builds must fit Google's contract.
#[tokio::test]
async fn google_calendar_books_through_its_contract_with_a_service_account() {
    let issuer = std::env::var("SWITCHBOARD_TEST_OAUTH").unwrap_or_else(|_| {
        panic!("SWITCHBOARD_TEST_OAUTH is not set: scripts/test starts the OAuth2 provider")
    });
    let provider: std::net::SocketAddr = issuer.trim_start_matches("http://").parse().unwrap();
    let account = send(provider, "GET", "/test/service-account", None, b"").await;
    assert_eq!(account.status, 200, "{}", account.body);

    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-gcal"));
    std::fs::create_dir_all(&dir).unwrap();
    let (addr, key, task) = crate::dev_server::start(&dir).await;
    let put = |path: &'static str, body: Value| {
        let key = key.clone();
        async move { send(addr, "PUT", path, Some(&key), body.to_string().as_bytes()).await }
    };
    // The service account's key file, stored as Google issues it.
    let stored = put("/admin/credentials/google", json!({"value": account.body})).await;
    assert!(matches!(stored.status, 200 | 201), "{}", stored.body);
    let created = put(
        "/admin/instances/google-calendar",
        json!({
            "pinned_version": "0.2.0", "enabled": true,
            "config": {"timeZone": "America/New_York"},
            "data_adapter": {
                "type": "api", "base_url": google_calendar(),
                "credential": "switchboard/demo-dental/google",
                "auth": {"oauth2": {"grant": "jwt_bearer", "scope": "calendar"}}
            }
        }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);

    let call = |function: &'static str, parameters: Value| {
        let key = key.clone();
        async move {
            post(
                addr,
                "/plugins/google-calendar",
                Some(&key),
                &json!({"function": function, "parameters": parameters}),
            )
            .await
        }
    };
    let free = call("FindFreeSlots", json!({"date": "2027-06-01"})).await;
    assert_eq!(free.status, 200, "{}", free.body);
    assert!(free.body["result"]["slots"].is_array(), "{}", free.body);
    let booked = call(
        "BookAppointment",
        json!({"start": "2027-06-01 10:00", "name": "Jordan Rivera", "phone": "+1 555 010 2000"}),
    )
    .await;
    assert_eq!(booked.status, 200, "{}", booked.body);
    assert_eq!(
        booked.body["result"]["eventId"],
        json!(google_calendar::slot_event_id("primary", 1_811_858_400)),
        "{}",
        booked.body
    );
    let listed = call("ListAppointments", json!({"date": "2027-06-01"})).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed.body["result"]["events"].is_array(),
        "{}",
        listed.body
    );
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Prism on the Zoom Meeting API operations, set by `scripts/test`. Without it these tests fail.
pub(crate) fn zoom() -> String {
    match std::env::var("SWITCHBOARD_TEST_ZOOM") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SWITCHBOARD_TEST_ZOOM is not set: the vendor tests run against Prism, which \
             scripts/test installs and starts (scripts/prism.sh). Run scripts/test."
        ),
    }
}

/// The zoom plugin through `dev` with a Server-to-Server OAuth app's token from the test
/// provider (`account_credentials`), against Prism on the Meeting API operations: a booking's
/// meeting is created, found again rather than duplicated, listed without the host's other
/// meetings, and cancelled.
#[tokio::test]
async fn zoom_meetings_follow_their_bookings_through_its_contract() {
    let issuer = std::env::var("SWITCHBOARD_TEST_OAUTH").unwrap_or_else(|_| {
        panic!("SWITCHBOARD_TEST_OAUTH is not set: scripts/test starts the OAuth2 provider")
    });
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-zoom"));
    std::fs::create_dir_all(&dir).unwrap();
    let (addr, key, task) = crate::dev_server::start(&dir).await;
    let put = |path: &'static str, body: Value| {
        let key = key.clone();
        async move { send(addr, "PUT", path, Some(&key), body.to_string().as_bytes()).await }
    };
    let stored = put(
        "/admin/credentials/zoom",
        json!({"value": {"client_id": "switchboard-zoom", "client_secret": "zoom-secret", "account_id": "zoom-account-1"}}),
    )
    .await;
    assert!(matches!(stored.status, 200 | 201), "{}", stored.body);
    let created = put(
        "/admin/instances/zoom",
        json!({
            "pinned_version": "0.2.0", "enabled": true,
            "config": {"hostUser": "frontdesk@acme.example", "timeZone": "America/Chicago"},
            "data_adapter": {
                "type": "api", "base_url": zoom(),
                "credential": "switchboard/demo-dental/zoom",
                "auth": {"oauth2": {"grant": "account_credentials", "token_url": format!("{issuer}/token")}}
            }
        }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let call = |function: &'static str, parameters: Value| {
        let key = key.clone();
        async move {
            post(
                addr,
                "/plugins/zoom",
                Some(&key),
                &json!({"function": function, "parameters": parameters}),
            )
            .await
        }
    };
    // Booking 2077 has no meeting on Prism's list: one is created (Prism's example answer).
    let made = call(
        "CreateMeeting",
        json!({"bookingRef": "2077", "startTime": "2027-06-01T10:00:00-05:00"}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["result"]["existing"], false, "{}", made.body);
    assert_eq!(made.body["result"]["meetingId"], "85746065432");
    assert!(
        !made.body.to_string().contains("zak="),
        "the host's start link stays out: {}",
        made.body
    );
    // Booking 1042 has one: returned, not duplicated.
    let again = call(
        "CreateMeeting",
        json!({"bookingRef": "1042", "startTime": "2027-06-01T10:00:00-05:00"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["result"]["existing"], true, "{}", again.body);
    let listed = call("ListMeetings", json!({"bookingRef": "1042"})).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.body["result"]["meetings"],
        json!([{"bookingRef": "1042", "meetingId": "85746065432", "startTime": "2027-06-01T15:00:00Z",
            "durationMinutes": 30, "joinUrl": "https://us05web.zoom.us/j/85746065432?pwd=aBcDeF"}]),
        "only meetings this organization booked"
    );
    let everything = call("ListMeetings", json!({})).await;
    assert_eq!(everything.status, 403, "staff only: {}", everything.body);
    let cancelled = call("CancelMeeting", json!({"bookingRef": "1042"})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(
        cancelled.body["result"]["meetingIds"],
        json!(["85746065432"])
    );
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The brief's use case 2: a WhatsApp agent on external data only, Salesforce for leads and
/// Google Calendar for appointments. The organization's google-calendar instance runs as a
/// service account; its `whatsapp` channel's assignment overrides the adapter with a user's
/// OAuth2 consent (a refresh token), and salesforce-crm's with a connected app's client
/// credentials. A key bound to the channel books and captures a lead through the overrides:
/// the refresh token is spent at the provider (it was used, and rotated), and nothing is
/// stored locally.
#[tokio::test]
async fn a_whatsapp_channel_books_through_its_own_oauth2_override() {
    let issuer = std::env::var("SWITCHBOARD_TEST_OAUTH").unwrap_or_else(|_| {
        panic!("SWITCHBOARD_TEST_OAUTH is not set: scripts/test starts the OAuth2 provider")
    });
    let provider: std::net::SocketAddr = issuer.trim_start_matches("http://").parse().unwrap();
    let account = send(provider, "GET", "/test/service-account", None, b"").await;
    let minted = send(provider, "POST", "/test/refresh-token", None, b"").await;
    let r0 = minted.body["refresh_token"].as_str().unwrap().to_owned();

    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-wa"));
    std::fs::create_dir_all(&dir).unwrap();
    let (addr, key, task) = crate::dev_server::start(&dir).await;
    let write = |method: &'static str, path: &'static str, body: Value| {
        let key = key.clone();
        async move { send(addr, method, path, Some(&key), body.to_string().as_bytes()).await }
    };
    for (path, value) in [
        ("/admin/credentials/google", account.body.clone()),
        (
            "/admin/credentials/google-whatsapp",
            json!({"client_id": "switchboard-rt", "client_secret": "rt-secret", "refresh_token": r0}),
        ),
        (
            "/admin/credentials/salesforce",
            json!({"client_id": "switchboard-cc", "client_secret": "cc-secret"}),
        ),
        // The instance's own credential is refused by the provider: only the channel's
        // override can reach Salesforce.
        (
            "/admin/credentials/salesforce-old",
            json!({"client_id": "switchboard-cc", "client_secret": "revoked-secret"}),
        ),
    ] {
        let r = write("PUT", path, json!({"value": value})).await;
        assert!(matches!(r.status, 200 | 201), "{}", r.body);
    }
    let salesforce_adapter = json!({
        "type": "api", "base_url": salesforce(),
        "credential": "switchboard/demo-dental/salesforce",
        "auth": {"oauth2": {"grant": "client_credentials", "token_url": format!("{issuer}/token"), "scope": "leads"}}
    });
    let mut old_adapter = salesforce_adapter.clone();
    old_adapter["credential"] = json!("switchboard/demo-dental/salesforce-old");
    let enabled = write(
        "PUT",
        "/admin/instances/salesforce-crm",
        json!({"pinned_version": "0.2.0", "enabled": true, "data_adapter": old_adapter}),
    )
    .await;
    assert_eq!(enabled.status, 201, "{}", enabled.body);
    let enabled = write(
        "PUT",
        "/admin/instances/google-calendar",
        json!({
            "pinned_version": "0.2.0", "enabled": true,
            "data_adapter": {
                "type": "api", "base_url": google_calendar(),
                "credential": "switchboard/demo-dental/google",
                "auth": {"oauth2": {"grant": "jwt_bearer", "scope": "calendar"}}
            }
        }),
    )
    .await;
    assert_eq!(enabled.status, 201, "{}", enabled.body);
    let channel = write(
        "PUT",
        "/admin/channels/whatsapp",
        json!({"plugin_assignments": [{
            "plugin": "google-calendar", "enabled": true, "priority": 1,
            "data_adapter": {
                "type": "api", "base_url": google_calendar(),
                "credential": "switchboard/demo-dental/google-whatsapp",
                "auth": {"oauth2": {"grant": "refresh_token", "token_url": format!("{issuer}/token")}}
            }
        }, {
            "plugin": "salesforce-crm", "enabled": true, "priority": 2,
            "data_adapter": salesforce_adapter
        }]}),
    )
    .await;
    assert!(matches!(channel.status, 200 | 201), "{}", channel.body);
    let bound = write(
        "POST",
        "/admin/keys",
        json!({"name": "whatsapp bot", "scopes": ["plugins:call", "agents:read"], "channel": "whatsapp"}),
    )
    .await;
    assert_eq!(bound.status, 201, "{}", bound.body);
    let bot = bound.body["result"]["key"].as_str().unwrap().to_owned();

    let booked = post(
        addr,
        "/plugins/google-calendar",
        Some(&bot),
        &json!({"function": "BookAppointment", "parameters": {"start": "2027-06-02 09:30", "name": "Priya Shah"}}),
    )
    .await;
    assert_eq!(booked.status, 200, "{}", booked.body);
    // The channel's consent was used: its first refresh token is spent at the provider.
    let reuse = switchboard_tests::http::send_with(
        provider,
        "POST",
        "/token",
        None,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", "Basic c3dpdGNoYm9hcmQtcnQ6cnQtc2VjcmV0"),
        ],
        format!("grant_type=refresh_token&refresh_token={r0}").as_bytes(),
    )
    .await;
    assert_eq!(
        (reuse.status, reuse.body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        reuse.body
    );
    // Salesforce: a lead captured, looked up and moved on, each request within the
    // operations' contract.
    let lead = post(
        addr,
        "/plugins/salesforce-crm",
        Some(&bot),
        &json!({"function": "CreateLead", "parameters": {"name": "Priya Shah", "phone": "+1 555 010 3000", "email": "priya.o'shah@example.com", "source": "WhatsApp"}}),
    )
    .await;
    assert_eq!(lead.status, 200, "{}", lead.body);
    let lead_id = lead.body["result"]["leadId"].as_str().unwrap().to_owned();
    let found = post(
        addr,
        "/plugins/salesforce-crm",
        Some(&bot),
        &json!({"function": "FindLeads", "parameters": {"name": "O'Sh"}}),
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    let moved = post(
        addr,
        "/plugins/salesforce-crm",
        Some(&bot),
        &json!({"function": "UpdateLeadStatus", "parameters": {"leadId": lead_id, "status": "Working - Contacted"}}),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    // The agent for the channel offers both plugins' tools.
    let agent = send(
        addr,
        "GET",
        "/agents/whatsapp?format=openai",
        Some(&bot),
        b"",
    )
    .await;
    assert_eq!(agent.status, 200, "{}", agent.body);
    let tools = agent.body.to_string();
    assert!(
        tools.contains("BookAppointment") && tools.contains("CreateLead"),
        "{tools}"
    );
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}
