//! Voice-platform connections: the admin API that makes them (embedded store and moto), and
//! Retell and Vapi agents calling `dev` over real sockets with signatures instead of keys.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::admin::AdminRequest;
use switchboard::auth::TenantContext;
use switchboard::pipeline::{Platform, SignedCall};
use switchboard::registry::{Connection, Registry};
use switchboard::secrets::{SecretValue, Secrets};
use switchboard::signature::{SignatureHeaders, sign_retell, sign_vapi};
use switchboard::{Channel, ConnectionId, OrgId, VoicePlatform};
use switchboard_embedded::Embedded;
use switchboard_tests::http::{Reply, post, send_with};
use switchboard_tests::{Tables, embedded_tables, moto_tables, unique};

use crate::dev_server::start;
use crate::fixtures::{booking_service, demo_on, local_secrets, pinned_now};

const ALL: [&str; 3] = ["admin:write", "platform:publish", "plugins:call"];

async fn admin_connections(tables: Tables) {
    let registry = Registry::new(tables.registry);
    let service = switchboard_tests::admin_service(registry.clone(), local_secrets());
    let org = OrgId::parse(unique("conn")).unwrap();
    let other = OrgId::parse(unique("conn-other")).unwrap();
    let call = |org: &OrgId, scopes: &[&str], method: &'static str, path: String, body: Value| {
        let tenant = TenantContext::new(org.clone()).with_scopes(scopes);
        let service = &service;
        async move {
            let body = if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            service
                .handle(AdminRequest {
                    tenant: Some(tenant),
                    method,
                    path: &path,
                    if_match: None,
                    body: &body,
                    ..Default::default()
                })
                .await
        }
    };
    // A crm version of this run's own, enabled and assigned to a retell channel.
    let version = format!(
        "1.{}.0",
        unique("")
            .replace('-', "")
            .chars()
            .take(9)
            .collect::<String>()
    );
    let mut manifest: Value =
        serde_json::from_str(include_str!("../../../functions/crm/manifest.json")).unwrap();
    manifest["version"] = json!(version);
    for (path, body) in [
        ("/admin/plugins", manifest),
        ("/admin/instances/crm", json!({"pinned_version": version})),
        (
            "/admin/channels/retell",
            json!({"plugin_assignments": [{"plugin": "crm", "priority": 1}]}),
        ),
        (
            "/admin/credentials/retell-signing",
            json!({"value": {"api_key": "key_admin_test"}}),
        ),
        (
            "/admin/credentials/webhook-token",
            json!({"value": {"token": "t"}}),
        ),
    ] {
        let method = if path == "/admin/plugins" {
            "POST"
        } else {
            "PUT"
        };
        let (s, b) = call(&org, &ALL, method, path.into(), body).await;
        assert!(s == 201 || s == 200, "{path}: {s} {b}");
    }

    let new = |platform: &str, channel: &str, credential: &str| json!({"platform": platform, "channel": channel, "credential": credential});
    // Every bad field is a 422 naming it, and nothing is created.
    for (body, at, says) in [
        (
            new("whatsapp", "retell", "retell-signing"),
            "/platform",
            "retell, vapi or twilio",
        ),
        (
            new("twilio", "retell", "retell-signing"),
            "/credential",
            "no 'auth_token' field",
        ),
        (
            new("retell", "phone", "retell-signing"),
            "/channel",
            "not configured",
        ),
        (
            new("retell", "Two Words", "retell-signing"),
            "/channel",
            "invalid",
        ),
        (
            new("retell", "retell", "missing"),
            "/credential",
            "no credential 'missing'",
        ),
        (
            new("retell", "retell", "webhook-token"),
            "/credential",
            "no 'api_key' field",
        ),
        (
            new("vapi", "retell", "retell-signing"),
            "/credential",
            "no 'secret' field",
        ),
    ] {
        let (s, b) = call(
            &org,
            &ALL,
            "POST",
            "/admin/connections".into(),
            body.clone(),
        )
        .await;
        assert_eq!(s, 422, "{body}: {b}");
        assert_eq!(b["error"]["details"][0]["path"], at, "{b}");
        let message = b["error"]["details"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{body}: {message}");
    }
    let (s, b) = call(
        &org,
        &ALL,
        "POST",
        "/admin/connections".into(),
        json!({"platform": "retell", "channel": "retell", "credential": "retell-signing", "extra": 1}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = call(&org, &ALL, "GET", "/admin/connections".into(), Value::Null).await;
    assert_eq!((s, &b["result"]["connections"]), (200, &json!([])), "{b}");
    // Creating needs admin:write.
    let (s, b) = call(
        &org,
        &["admin:read"],
        "POST",
        "/admin/connections".into(),
        new("retell", "retell", "retell-signing"),
    )
    .await;
    assert_eq!(s, 403, "{b}");

    let (s, b) = call(
        &org,
        &ALL,
        "POST",
        "/admin/connections".into(),
        new("retell", "retell", "retell-signing"),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let conn = &b["result"];
    let id = conn["id"].as_str().unwrap().to_owned();
    assert!(ConnectionId::parse(&id).is_some(), "{id}");
    assert_eq!(
        (&conn["platform"], &conn["channel"], &conn["credential"]),
        (&json!("retell"), &json!("retell"), &json!("retell-signing"))
    );
    assert_eq!(conn["paths"], json!([format!("/channels/retell/{id}/crm")]));
    assert!(conn.get("api_key").is_none() && !b.to_string().contains("key_admin_test"));
    // The lookup the signed route makes finds it, under its org.
    let stored = registry
        .get_connection(&ConnectionId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.org, org);

    let (s, b) = call(
        &org,
        &["admin:read"],
        "GET",
        "/admin/connections".into(),
        Value::Null,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["result"]["connections"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["result"]["connections"][0]["id"], id.as_str());
    let (s, b) = call(
        &org,
        &["admin:read"],
        "GET",
        format!("/admin/connections/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!((s, &b["result"]["id"]), (200, &json!(id)), "{b}");

    // Another organization can neither see nor delete it.
    for method in ["GET", "DELETE"] {
        let (s, b) = call(
            &other,
            &ALL,
            method,
            format!("/admin/connections/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(s, 404, "{method}: {b}");
    }
    let (s, b) = call(
        &other,
        &ALL,
        "GET",
        "/admin/connections".into(),
        Value::Null,
    )
    .await;
    assert_eq!((s, &b["result"]["connections"]), (200, &json!([])), "{b}");
    for bad in ["nope", "cn_", "CN_00000000000000000000000000000000"] {
        let (s, _) = call(
            &org,
            &ALL,
            "GET",
            format!("/admin/connections/{bad}"),
            Value::Null,
        )
        .await;
        assert_eq!(s, 404, "{bad}");
    }

    let (s, b) = call(
        &org,
        &ALL,
        "DELETE",
        format!("/admin/connections/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!((s, &b["result"]["id"]), (200, &json!(id)), "{b}");
    assert!(
        registry
            .get_connection(&ConnectionId::parse(&id).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let (s, _) = call(
        &org,
        &ALL,
        "DELETE",
        format!("/admin/connections/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = call(&org, &ALL, "GET", "/admin/connections".into(), Value::Null).await;
    assert_eq!((s, &b["result"]["connections"]), (200, &json!([])), "{b}");
}

#[tokio::test]
async fn connections_admin_api_on_embedded() {
    admin_connections(embedded_tables()).await;
}

#[tokio::test]
async fn connections_admin_api_on_dynamodb() {
    admin_connections(moto_tables().await).await;
}

/// Sets up a channel, a credential and a connection over the admin API; returns the path
/// prefix of the connection's routes (`/channels/<platform>/<id>/`).
async fn connect(
    addr: SocketAddr,
    admin_key: &str,
    platform: &str,
    channel: &str,
    credential: Value,
) -> String {
    let put = |path: String, body: Value| async move {
        let r = send_with(
            addr,
            "PUT",
            &path,
            Some(admin_key),
            &[],
            body.to_string().as_bytes(),
        )
        .await;
        assert!(r.status == 201 || r.status == 200, "{path}: {}", r.body);
    };
    put(
        format!("/admin/channels/{channel}"),
        json!({"plugin_assignments": [{"plugin": "booking", "priority": 1}]}),
    )
    .await;
    put(
        format!("/admin/credentials/{channel}-signing"),
        json!({ "value": credential }),
    )
    .await;
    let r = post(
        addr,
        "/admin/connections",
        Some(admin_key),
        &json!({"platform": platform, "channel": channel, "credential": format!("{channel}-signing")}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["result"]["id"].as_str().unwrap();
    let path = format!("/channels/{platform}/{id}/booking");
    assert_eq!(r.body["result"]["paths"], json!([path]));
    format!("/channels/{platform}/{id}/")
}

async fn signed_post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send_with(addr, "POST", path, None, headers, body.as_bytes()).await
}

async fn appointments_on(addr: SocketAddr, key: &str, day: &str) -> Vec<Value> {
    let r = post(
        addr,
        "/plugins/booking",
        Some(key),
        &json!({"function": "GetAppointments",
            "parameters": {"PatNum": 1, "startDate": day, "endDate": day}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["result"]["appointments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The issue's end-to-end check: a Retell agent books through its signed URL, retries, and
/// a forger gets nothing.
#[tokio::test]
async fn a_retell_agent_books_through_its_signed_url_and_a_forger_writes_nothing() {
    let dir = std::env::temp_dir().join(unique("sb-dev"));
    let (addr, admin_key, task) = start(&dir).await;
    let api_key = "key_retell_e2e_0123";
    let prefix = connect(
        addr,
        &admin_key,
        "retell",
        "retell",
        json!({"api_key": api_key}),
    )
    .await;
    let url = format!("{prefix}booking");
    // The agent exported for Retell points CreateAppointment at that signed route.
    let agent = send_with(
        addr,
        "GET",
        "/agents/retell?format=retell",
        Some(&admin_key),
        &[],
        b"",
    )
    .await;
    assert_eq!(agent.status, 200, "{}", agent.body);
    let tool = agent.body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == "CreateAppointment")
        .unwrap_or_else(|| panic!("no CreateAppointment in {}", agent.body));
    assert_eq!(tool["url"], format!("http://{addr}{url}"));
    assert_eq!(agent.body["warnings"], json!([]));
    let now = pinned_now();
    let book = |call_id: &str, time: &str| {
        json!({"name": "CreateAppointment",
            "call": {"call_id": call_id, "direction": "inbound", "from_number": "+15550102000", "to_number": "+15550101000"},
            "args": {"PatNum": 1, "ProvNum": 1, "AptDateTime": format!("2027-06-01 {time}")}})
        .to_string()
    };

    // Signed CreateAppointment, then Retell's retry of the same call: one appointment, two
    // identical 200 bodies, the second marked as a replay.
    let body = book("call_e2e_1", "10:00");
    let sig = sign_retell(api_key.as_bytes(), body.as_bytes(), now);
    let first = signed_post(addr, &url, &[("X-Retell-Signature", &sig)], &body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["result"]["AptDateTime"], "2027-06-01 10:00:00");
    assert_eq!(first.header("idempotent-replayed"), None);
    // Retell re-signs a retry with a new timestamp; the call id makes it the same call.
    let later = now + Duration::from_secs(20);
    let sig2 = sign_retell(api_key.as_bytes(), body.as_bytes(), later);
    let platform_clock_tolerates_it =
        signed_post(addr, &url, &[("X-Retell-Signature", &sig2)], &body).await;
    assert_eq!(
        platform_clock_tolerates_it.status, 200,
        "{}",
        platform_clock_tolerates_it.body
    );
    assert_eq!(platform_clock_tolerates_it.body, first.body);
    assert_eq!(
        platform_clock_tolerates_it.header("idempotent-replayed"),
        Some("true")
    );
    assert_eq!(
        appointments_on(addr, &admin_key, "2027-06-01").await.len(),
        1
    );

    // Forged, stale, missing, malformed, or another connection's signature: 401, nothing runs.
    let forged_body = book("call_e2e_2", "11:00");
    let other_prefix = connect(
        addr,
        &admin_key,
        "retell",
        "retell-two",
        json!({"api_key": "key_of_another_connection"}),
    )
    .await;
    assert_ne!(other_prefix, prefix);
    let other_sig = sign_retell(b"key_of_another_connection", forged_body.as_bytes(), now);
    let stale = sign_retell(
        api_key.as_bytes(),
        forged_body.as_bytes(),
        now - Duration::from_secs(301),
    );
    let wrong_key = sign_retell(b"guess", forged_body.as_bytes(), now);
    for (name, headers, says) in [
        (
            "another connection's",
            vec![("X-Retell-Signature", other_sig.as_str())],
            "does not match",
        ),
        (
            "a guessed key's",
            vec![("X-Retell-Signature", wrong_key.as_str())],
            "does not match",
        ),
        (
            "a stale",
            vec![("X-Retell-Signature", stale.as_str())],
            "outside the 300 s window",
        ),
        ("no", vec![], "carries no X-Retell-Signature"),
        (
            "a malformed",
            vec![("X-Retell-Signature", "v=1,d=zz")],
            "malformed",
        ),
        // An API key is no way in on a signed route.
        (
            "a bearer key instead of a",
            vec![("Authorization", "Bearer sb_live_x")],
            "carries no X-Retell-Signature",
        ),
    ] {
        let r = signed_post(addr, &url, &headers, &forged_body).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{name} signature: {}",
            r.body
        );
        let message = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{name} signature: {message}");
        assert!(!message.contains(api_key), "{message}");
    }
    assert_eq!(
        appointments_on(addr, &admin_key, "2027-06-01").await.len(),
        1
    );
    // Nothing of the refused calls was written, not even an idempotency record: the same
    // call, properly signed, runs fresh (a replay, or a 409 for a taken slot, otherwise).
    let proper = sign_retell(api_key.as_bytes(), forged_body.as_bytes(), now);
    let fresh = signed_post(addr, &url, &[("X-Retell-Signature", &proper)], &forged_body).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.header("idempotent-replayed"), None);
    // The other connection's URL takes its own signature.
    let its_body = book("call_e2e_4", "13:00");
    let its_sig = sign_retell(b"key_of_another_connection", its_body.as_bytes(), now);
    let ok_there = signed_post(
        addr,
        &format!("{other_prefix}booking"),
        &[("X-Retell-Signature", &its_sig)],
        &its_body,
    )
    .await;
    assert_eq!(ok_there.status, 200, "{}", ok_there.body);
    assert_eq!(
        appointments_on(addr, &admin_key, "2027-06-01").await.len(),
        3
    );

    // A tampered body under a valid signature.
    let tampered = body.replace("10:00", "12:00");
    let r = signed_post(addr, &url, &[("X-Retell-Signature", &sig)], &tampered).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        appointments_on(addr, &admin_key, "2027-06-01").await.len(),
        3
    );

    // A Retell URL takes Retell calls only; the platform segment must match the connection.
    let native = json!({"function": "GetPatient", "parameters": {"PatNum": 1}}).to_string();
    let s = sign_retell(api_key.as_bytes(), native.as_bytes(), now);
    let r = signed_post(addr, &url, &[("X-Retell-Signature", &s)], &native).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{}",
        r.body
    );
    let as_vapi = url.replace("/retell/", "/vapi/");
    let r = signed_post(addr, &as_vapi, &[("X-Retell-Signature", &sig)], &body).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("unknown_connection")),
        "{}",
        r.body
    );
    let made_up = "/channels/retell/cn_00000000000000000000000000000000/booking";
    let r = signed_post(addr, made_up, &[("X-Retell-Signature", &sig)], &body).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // The template routes POST only; API Gateway answers anything else with 404.
    let r = send_with(addr, "GET", &url, None, &[], b"").await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Platforms without signed routes are not routed at all.
    let r = signed_post(addr, &url.replace("/retell/", "/twilio/"), &[], &body).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // The connection runs on its channel: crm is not assigned there.
    let lead = json!({"name": "GetLeadsByStatus", "call": {"call_id": "call_e2e_3"}, "args": {"status": "new"}}).to_string();
    let s = sign_retell(api_key.as_bytes(), lead.as_bytes(), now);
    let r = signed_post(
        addr,
        &format!("{prefix}crm"),
        &[("X-Retell-Signature", &s)],
        &lead,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("plugin_not_assigned")),
        "{}",
        r.body
    );
    // And so does a key bound to that channel.
    let created = post(
        addr,
        "/admin/keys",
        Some(&admin_key),
        &json!({"scopes": ["plugins:call"], "channel": "retell"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let bound = created.body["result"]["key"].as_str().unwrap();
    let r = post(
        addr,
        "/plugins/crm",
        Some(bound),
        &json!({"function": "GetLeadsByStatus", "parameters": {"status": "new"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("plugin_not_assigned")),
        "{}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("'retell' channel")
    );

    // A revoked key is refused by the authorizer, and the refusal is its org's to see.
    let created = post(
        addr,
        "/admin/keys",
        Some(&admin_key),
        &json!({"scopes": ["plugins:call"], "name": "to revoke"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let revoked = created.body["result"]["key"].as_str().unwrap().to_owned();
    let revoked_id = created.body["result"]["id"].as_str().unwrap().to_owned();
    let r = send_with(
        addr,
        "DELETE",
        &format!("/admin/keys/{revoked_id}"),
        Some(&admin_key),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Twice: one entry a minute per key, however often it is replayed.
    for _ in 0..2 {
        let r = post(
            addr,
            "/plugins/booking",
            Some(&revoked),
            &json!({"function": "GetProviders", "parameters": {}}),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
    }

    // The audit log: the signed calls under the connection (a retry marked as a replay), the
    // refused signatures of an existing connection, and the revoked key's refusal.
    let log = send_with(
        addr,
        "GET",
        "/admin/audit?from=2026-11-01T00:00:00Z&limit=200",
        Some(&admin_key),
        &[],
        b"",
    )
    .await;
    assert_eq!(log.status, 200, "{}", log.body);
    let entries = log.body["result"]["entries"].as_array().unwrap();
    let signed: Vec<&Value> = entries.iter().filter(|e| e["route"] == "retell").collect();
    assert!(
        signed.iter().any(|e| e["status"] == 200
            && e["function"] == "CreateAppointment"
            && e["replayed"] == true
            && e["idempotencyKey"] == "call_e2e_1"),
        "{signed:?}"
    );
    // The Retell connection's URL posted under /vapi/ is no signature refusal of the org's.
    assert!(!entries.iter().any(|e| e["route"] == "vapi"), "{entries:?}");
    let refused: Vec<&&Value> = signed.iter().filter(|e| e["status"] == 401).collect();
    assert!(refused.len() >= 7, "{signed:?}");
    assert!(
        refused.iter().all(|e| e["errorCode"] == "unauthenticated"
            && e["keyId"]
                .as_str()
                .is_some_and(|k| k.starts_with("connection:cn_"))),
        "{refused:?}"
    );
    let revoked_entries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["keyId"] == revoked_id.as_str())
        .collect();
    assert_eq!(revoked_entries.len(), 1, "{entries:?}");
    assert_eq!(revoked_entries[0]["status"], 401);
    assert_eq!(revoked_entries[0]["errorCode"], "unauthenticated");
    assert!(!log.body.to_string().contains(api_key));

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Vapi assistant with a bearer server credential, and one with Vapi's HMAC credential.
#[tokio::test]
async fn a_vapi_assistant_calls_with_its_server_credential() {
    let dir = std::env::temp_dir().join(unique("sb-dev"));
    let (addr, admin_key, task) = start(&dir).await;
    let secret = "vapi_server_secret_e2e";
    let prefix = connect(addr, &admin_key, "vapi", "vapi", json!({"secret": secret})).await;
    let url = format!("{prefix}booking");
    let message = |id: &str| {
        json!({"message": {"type": "tool-calls", "call": {"id": "vapi-call-1", "customer": {"number": "+15550102000"}},
            "toolCallList": [{"id": id, "type": "function", "function": {"name": "SearchPatients", "arguments": "{}"}}]}})
        .to_string()
    };
    let body = message("tc_1");
    let bearer = format!("Bearer {secret}");
    let r = signed_post(addr, &url, &[("Authorization", &bearer)], &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["toolCallId"], "tc_1");
    assert!(
        r.body["results"][0]["result"]
            .as_str()
            .unwrap_or("")
            .contains("Rivera"),
        "{}",
        r.body
    );

    let (sig, ts) = sign_vapi(secret.as_bytes(), body.as_bytes(), pinned_now());
    let r = signed_post(
        addr,
        &url,
        &[("X-Signature", &sig), ("X-Timestamp", &ts)],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = signed_post(addr, &url, &[("X-Vapi-Secret", secret)], &body).await;
    assert_eq!(r.status, 200, "{}", r.body);

    for (name, headers) in [
        (
            "wrong bearer",
            vec![("Authorization", "Bearer vapi_server_secret_e2f")],
        ),
        ("no credential", vec![]),
        (
            "HMAC of another body",
            vec![("X-Signature", sig.as_str()), ("X-Timestamp", ts.as_str())],
        ),
    ] {
        let other = message("tc_2");
        let r = signed_post(addr, &url, &headers, &other).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert!(!r.body.to_string().contains(secret));
    }
    // A Vapi URL takes Vapi messages only.
    let retell =
        json!({"name": "SearchPatients", "args": {}, "call": {"call_id": "c"}}).to_string();
    let r = signed_post(addr, &url, &[("Authorization", &bearer)], &retell).await;
    assert_eq!(r.status, 400, "{}", r.body);

    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A secret rotated by another container takes effect on the next call (one re-fetch on the
/// mismatch); a credential that is gone or lacks its field is a 401 that names no secret; a
/// deleted connection's URL is a 404 once no cache holds it.
#[tokio::test]
async fn signed_calls_follow_the_secret_and_the_connection() {
    let db = Embedded::in_memory().unwrap();
    let store = db.secret_store();
    let secrets = Arc::new(Secrets::new(
        store.clone(),
        Duration::from_secs(300),
        "switchboard",
    ));
    // The admin function writes through a resolver of its own.
    let admin = Secrets::new(store, Duration::from_secs(300), "switchboard");
    let tables = embedded_tables();
    let data = tables.data.clone();
    let demo = demo_on(tables, None, None, secrets.clone()).await;
    let registry = demo.platform.registry.clone();
    // No cache between calls, so a deletion shows at once.
    let platform = Arc::new(
        Platform::new(
            registry.clone(),
            demo.platform.data.clone(),
            data,
            Duration::ZERO,
        )
        .with_secrets(secrets.clone())
        .with_clock(Arc::new(pinned_now)),
    );
    let service = booking_service(&platform);
    let store_key = |name: &'static str, field: &'static str, value: &'static str| {
        let value = SecretValue::new(serde_json::Map::from_iter([(
            field.to_owned(),
            json!(value),
        )]));
        let admin = &admin;
        let org = demo.org.clone();
        async move { admin.store(&org, name, &value).await.unwrap() }
    };
    let connect = |n: u8, credential: &str| {
        let conn = Connection {
            id: ConnectionId::parse(&format!("cn_{:032x}", n)).unwrap(),
            org: demo.org.clone(),
            channel: Channel::parse("twilio").unwrap(),
            platform: VoicePlatform::Retell,
            credential: credential.into(),
            created: 1_795_608_000,
        };
        let registry = registry.clone();
        async move {
            registry.create_connection(&conn).await.unwrap();
            conn.id
        }
    };
    let body = json!({"name": "SearchPatients", "args": {}, "call": {"call_id": "c1", "from_number": "+15550102000"}})
        .to_string();
    let call = |id: &ConnectionId, key: &str| {
        let header = sign_retell(key.as_bytes(), body.as_bytes(), pinned_now());
        let id = id.to_string();
        let service = &service;
        let body = &body;
        async move {
            service
                .respond_signed(SignedCall {
                    platform: "retell",
                    connection: &id,
                    headers: SignatureHeaders {
                        retell_signature: Some(&header),
                        ..Default::default()
                    },
                    body: body.as_bytes(),
                    url: "",
                    request_id: "test",
                })
                .await
        }
    };

    store_key("retell-signing", "api_key", "key_one").await;
    let id = connect(1, "retell-signing").await;
    assert_eq!(call(&id, "key_one").await.status, 200);
    // Rotated elsewhere: this container still caches key_one, and the mismatch re-fetches.
    store_key("retell-signing", "api_key", "key_two").await;
    let rotated = call(&id, "key_two").await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let old = call(&id, "key_one").await;
    assert_eq!(old.status, 401, "{}", old.body);

    store_key("webhook", "token", "not-a-signing-key").await;
    for (n, credential) in [(2, "webhook"), (3, "never-stored")] {
        let id = connect(n, credential).await;
        let out = call(&id, "key_two").await;
        assert_eq!(
            (out.status, out.body["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{}",
            out.body
        );
        let text = out.body.to_string();
        assert!(text.contains("cannot verify requests"), "{text}");
        for hidden in ["switchboard/", credential, demo.org.as_str()] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
    }

    registry
        .delete_connection(&demo.org, &id)
        .await
        .unwrap()
        .unwrap();
    let gone = call(&id, "key_two").await;
    assert_eq!(
        (gone.status, gone.body["error"]["code"].as_str()),
        (404, Some("unknown_connection")),
        "{}",
        gone.body
    );
}

/// A plugin whose webhook function has side effects, reached by Twilio's signed webhook:
/// the fields become its parameters (a repeated field an array), a repeat of the same
/// signed request is answered from its idempotency record, the URL under the configured
/// public URL verifies too, and the function is reached no other way; a plugin without a
/// Twilio webhook function answers `no_webhook`.
#[tokio::test]
async fn twilio_webhooks_run_their_function_once_per_signature() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use switchboard::pipeline::{CallInput, PluginService, ToolCallEvent};

    use switchboard::signature::sign_twilio;

    const MANIFEST: &str = r#"{
        "name": "hooked", "version": "0.1.0", "display_name": "Hooked", "description": "Takes webhooks",
        "instruction_template": "", "data_adapters": ["dynamodb"],
        "functions": [
            {"name": "Ping", "description": "ping", "side_effects": false, "parameters": {"type": "object"}},
            {"name": "Delivered", "description": "a delivery report", "side_effects": true, "webhook": "twilio",
             "parameters": {"type": "object", "required": ["MessageSid"],
                            "properties": {"MessageSid": {"type": "string", "pattern": "^SM"}}}}
        ]
    }"#;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let plugin = switchboard::Plugin::builder(MANIFEST)
        .handler("Ping", |_, _: Value| async { Ok(json!("pong")) })
        .handler("Delivered", move |_, p: Value| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok(json!({"run": n, "fields": p})) }
        })
        .build()
        .unwrap();

    let db = Embedded::in_memory().unwrap();
    let secrets = Arc::new(Secrets::new(
        db.secret_store(),
        Duration::from_secs(300),
        "switchboard",
    ));
    let tables = embedded_tables();
    let data = tables.data.clone();
    let demo = demo_on(tables, None, None, secrets.clone()).await;
    let registry = demo.platform.registry.clone();
    let org = demo.org.clone();
    registry
        .publish_manifest(plugin.manifest().manifest())
        .await
        .unwrap();
    let instance: switchboard::registry::PluginInstance = serde_json::from_value(
        json!({"plugin": "hooked", "enabled": true, "pinned_version": "0.1.0",
            "config": {}, "data_adapter": {"type": "dynamodb"}}),
    )
    .unwrap();
    registry.put_instance(&org, &instance, None).await.unwrap();
    let twilio = Channel::parse("twilio").unwrap();
    let mut channel = registry.get_channel(&org, &twilio).await.unwrap().unwrap();
    channel
        .value
        .plugin_assignments
        .push(serde_json::from_value(json!({"plugin": "hooked", "priority": 9})).unwrap());
    registry
        .put_channel(&org, &twilio, &channel.value, Some(channel.version))
        .await
        .unwrap();
    for (name, field, value) in [
        ("twilio-signing", "auth_token", "tw_token"),
        ("retell-signing", "api_key", "key_one"),
    ] {
        let value = SecretValue::new(serde_json::Map::from_iter([(
            field.to_owned(),
            json!(value),
        )]));
        secrets.store(&org, name, &value).await.unwrap();
    }
    let connect = |n: u8, platform: VoicePlatform, credential: &str| {
        let conn = Connection {
            id: ConnectionId::parse(&format!("cn_{:032x}", 0xa0 + n)).unwrap(),
            org: org.clone(),
            channel: twilio.clone(),
            platform,
            credential: credential.into(),
            created: 1_795_608_000,
        };
        let registry = registry.clone();
        async move {
            registry.create_connection(&conn).await.unwrap();
            conn.id.to_string()
        }
    };
    let tw = connect(1, VoicePlatform::Twilio, "twilio-signing").await;
    let retell = connect(2, VoicePlatform::Retell, "retell-signing").await;
    let platform = Arc::new(
        Platform::new(
            registry.clone(),
            demo.platform.data.clone(),
            data,
            Duration::ZERO,
        )
        .with_secrets(secrets.clone())
        .with_clock(Arc::new(pinned_now))
        .with_public_url(Some("https://custom.example.com/api".into())),
    );
    let service = PluginService::new(plugin, platform.clone());
    let url =
        format!("https://abc.execute-api.us-east-1.amazonaws.com/channels/twilio/{tw}/hooked");
    let form = "MessageSid=SM1&MessageStatus=sent&Tag=b&Tag=a".to_owned();
    let sig = sign_twilio(b"tw_token", &url, form.as_bytes());
    let first = twilio_post(&service, &tw, &url, &form, &sig).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["result"]["run"], 1);
    assert_eq!(
        first.body["result"]["fields"]["Tag"],
        json!(["a", "b"]),
        "a repeated field, its values in the order they are signed in"
    );
    // The same fields in another order sign the same, and are the same call.
    let reordered = "Tag=a&MessageStatus=sent&Tag=b&MessageSid=SM1".to_owned();
    let same = twilio_post(&service, &tw, &url, &reordered, &sig).await;
    assert_eq!((same.status, same.replayed), (200, true), "{}", same.body);
    // Twilio's retry, or a replay: the same signed request answers from the record.
    let again = twilio_post(&service, &tw, &url, &form, &sig).await;
    assert_eq!(
        (again.status, again.replayed),
        (200, true),
        "{}",
        again.body
    );
    assert_eq!(again.body, first.body);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Signed for the public URL the operator gave Twilio; the function saw another host.
    let public = format!("https://custom.example.com/api/channels/twilio/{tw}/hooked");
    let other = "MessageSid=SM2&MessageStatus=delivered".to_owned();
    let sig2 = sign_twilio(b"tw_token", &public, other.as_bytes());
    let out = twilio_post(&service, &tw, &url, &other, &sig2).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // Another connection's URL does not verify here.
    let theirs = url.replace(&tw, &retell);
    let sig3 = sign_twilio(b"tw_token", &theirs, other.as_bytes());
    let out = twilio_post(&service, &tw, &url, &other, &sig3).await;
    assert_eq!(out.status, 401, "{}", out.body);
    // A JSON body signed through bodySHA256 must be an object.
    let array = "[1]".to_owned();
    let hex: String = {
        use sha2::Digest;
        sha2::Sha256::digest(array.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let hashed = format!("{url}?bodySHA256={hex}");
    let sig4 = sign_twilio(b"tw_token", &hashed, array.as_bytes());
    let out = twilio_post(&service, &tw, &hashed, &array, &sig4).await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(
        out.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be an object")),
        "{}",
        out.body
    );

    // A pair repeated exactly is signed once: refused rather than read twice.
    let doubled = "MessageSid=SM9&MessageSid=SM9".to_owned();
    let sig5 = sign_twilio(b"tw_token", &url, doubled.as_bytes());
    let out = twilio_post(&service, &tw, &url, &doubled, &sig5).await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(
        out.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("repeats field 'MessageSid'")),
        "{}",
        out.body
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // No other way in: an API key, the MCP function's tool-call event, a Retell call.
    let tenant = TenantContext {
        channel: Some(twilio.clone()),
        ..TenantContext::new(org.clone()).with_scopes(&["plugins:call"])
    };
    let by_key = service
        .respond(CallInput {
            tenant: Some(tenant.clone()),
            body: br#"{"function": "Delivered", "parameters": {"MessageSid": "SM3"}}"#,
            request_id: "test",
            idempotency_key: None,
        })
        .await;
    assert_eq!(
        (by_key.status, &by_key.body["error"]["code"]),
        (403, &json!("webhook_only")),
        "{}",
        by_key.body
    );
    // Refused before its parameters are checked.
    let bad = service
        .respond(CallInput {
            tenant: Some(tenant.clone()),
            body: br#"{"function": "Delivered", "parameters": {}}"#,
            request_id: "test",
            idempotency_key: None,
        })
        .await;
    assert_eq!(
        (bad.status, &bad.body["error"]["code"]),
        (403, &json!("webhook_only")),
        "{}",
        bad.body
    );
    let event = json!({"kind": "switchboard.tool-call/1", "tenant": {"org": org.as_str(), "scopes": ["plugins:call"], "channel": "twilio"},
        "plugin": "hooked", "function": "Delivered", "parameters": {"MessageSid": "SM4"}, "requestId": "r1"});
    if let Some(Ok(call)) = ToolCallEvent::from_event(&event) {
        let out = service.respond_tool_call(call).await;
        assert_eq!(out.status, 403, "{}", out.body);
    } else {
        panic!("not a tool-call event: {event}");
    }
    let body =
        json!({"name": "Delivered", "args": {"MessageSid": "SM5"}, "call": {"call_id": "c9"}})
            .to_string();
    let header = sign_retell(b"key_one", body.as_bytes(), pinned_now());
    let out = service
        .respond_signed(SignedCall {
            platform: "retell",
            connection: &retell,
            headers: SignatureHeaders {
                retell_signature: Some(&header),
                ..Default::default()
            },
            body: body.as_bytes(),
            url: "",
            request_id: "test",
        })
        .await;
    assert_eq!(
        (out.status, &out.body["error"]["code"]),
        (403, &json!("webhook_only")),
        "{}",
        out.body
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "none of those ran it");

    // A plugin with no function for Twilio's webhooks.
    let booking = booking_service(&platform);
    let booking_url = url.replace("/hooked", "/booking");
    let booking_sig = sign_twilio(b"tw_token", &booking_url, form.as_bytes());
    let out = twilio_post(&booking, &tw, &booking_url, &form, &booking_sig).await;
    assert_eq!(
        (out.status, &out.body["error"]["code"]),
        (404, &json!("no_webhook")),
        "{}",
        out.body
    );
}

/// A Twilio webhook as the edge hands it to the pipeline.
async fn twilio_post(
    service: &switchboard::pipeline::PluginService,
    connection: &str,
    url: &str,
    body: &str,
    signature: &str,
) -> switchboard::pipeline::CallOutput {
    service
        .respond_signed(SignedCall {
            platform: "twilio",
            connection,
            headers: SignatureHeaders {
                twilio_signature: Some(signature),
                ..Default::default()
            },
            body: body.as_bytes(),
            url,
            request_id: "test",
        })
        .await
}
