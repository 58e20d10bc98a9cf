//! Per-organization rate limits: one organization floods two containers sharing moto's data
//! table past its limit while another keeps calling. The flood's excess calls all get 429
//! `rate_limited` (none a 5xx), the two containers together admit no more than the bucket
//! allows (its burst, then the limit a second), the other organization's calls all succeed,
//! and the flood leaves one audit entry per container and second, not one per refused call. Over `dev`: the profile sets the limit,
//! and the 429 carries `Retry-After: 1`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::pipeline::{CallInput, Platform, PluginService};
use switchboard::ratelimit::RateLimiter;
use switchboard::registry::Registry;
use switchboard::{OrgId, audit::AuditLog};
use switchboard_tests::http::{send, send_with};
use switchboard_tests::{Tables, moto_tables, unique};

use crate::fixtures::{self, local_secrets, pinned_now};

/// A plugin function's container as `main` builds it: its own limiter and caches, the
/// shared tables.
fn container(tables: &Tables) -> Arc<Platform> {
    let data = BuiltinData::new(tables.data.clone());
    let table = data.table();
    let adapters = fixtures::adapters(data, local_secrets());
    let limiter = RateLimiter::new(table.clone(), 100, 10);
    let platform = Platform::new(
        Registry::new(tables.registry.clone()),
        Arc::new(adapters),
        table.clone(),
        Duration::from_secs(30),
    )
    .with_audit(Arc::new(AuditLog::new(table)))
    .with_rate_limits(Arc::new(limiter))
    .with_clock(Arc::new(pinned_now));
    Arc::new(platform)
}

fn second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn call(svc: &PluginService, org: &OrgId, rid: String) -> (u16, serde_json::Value) {
    let tenant = TenantContext::new(org.clone()).with_scopes(&["plugins:call"]);
    svc.call(CallInput {
        tenant: Some(tenant),
        body: br#"{"function": "GetProviders", "parameters": {}}"#,
        request_id: &rid,
        idempotency_key: None,
    })
    .await
}

#[tokio::test]
async fn a_flood_past_the_limit_is_refused_while_another_org_keeps_calling() {
    const LIMIT: u32 = 10;
    let tables = moto_tables().await;
    let shared = || Tables {
        registry: tables.registry.clone(),
        data: tables.data.clone(),
    };
    let flood = fixtures::demo(shared(), Some(&unique("flood"))).await.org;
    let calm = fixtures::demo(shared(), Some(&unique("calm"))).await.org;
    let registry = Registry::new(tables.registry.clone());
    let current = registry.get_profile(&flood).await.unwrap().unwrap();
    let mut profile = current.value;
    profile.rate_limit_per_second = Some(LIMIT);
    registry
        .put_profile(&flood, &profile, Some(current.version))
        .await
        .unwrap();

    let containers: Vec<Arc<PluginService>> = (0..2)
        .map(|_| Arc::new(fixtures::booking_service(&container(&shared()))))
        .collect();
    // Each container's caches filled first (as a warm container's are), so the flood's
    // calls do not all read the registry at once.
    let clock = std::time::Instant::now();
    let mut admitted = 0;
    for (i, svc) in containers.iter().enumerate() {
        for org in [&flood, &calm] {
            let (status, body) = call(svc, org, format!("warm-{i}")).await;
            assert_eq!(status, 200, "{body}");
        }
        admitted += 1;
    }
    let started = second();
    let mut flood_calls = Vec::new();
    for i in 0..300 {
        let svc = containers[i % 2].clone();
        let org = flood.clone();
        flood_calls.push(tokio::spawn(async move {
            call(&svc, &org, format!("flood-{i}")).await
        }));
    }
    let mut calm_statuses = Vec::new();
    for i in 0..30 {
        let (status, body) = call(&containers[i % 2], &calm, format!("calm-{i}")).await;
        calm_statuses.push((status, body));
    }
    let mut refused = 0;
    for handle in flood_calls {
        let (status, body) = handle.await.unwrap();
        match status {
            200 => admitted += 1,
            429 => {
                refused += 1;
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                let message = body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains("limit of 10 tool calls per second"),
                    "{message}"
                );
            }
            other => panic!("flood call answered {other}: {body}"),
        }
    }
    let windows = second() - started + 1;
    // The bucket's burst, then a token every tenth of a second.
    let bound = u64::from(LIMIT) + (clock.elapsed().as_secs_f64() * f64::from(LIMIT)).ceil() as u64;
    assert!(
        admitted <= bound,
        "{admitted} admitted in {:?}",
        clock.elapsed()
    );
    assert!(admitted > 2 && refused >= 200, "{admitted} / {refused}");
    for (status, body) in &calm_statuses {
        assert_eq!(*status, 200, "the calm org was refused: {body}");
    }

    // One entry per container and second for the refusals, every admitted call its own.
    let log = AuditLog::new(tables.data.clone());
    let entries = crate::audit::entries(&log, &flood, &[]).await;
    let limited = entries
        .iter()
        .filter(|e| e.error_code.as_deref() == Some("rate_limited"))
        .count() as u64;
    assert!(
        (1..=2 * windows).contains(&limited),
        "{limited} rate_limited entries in {windows} windows"
    );
    assert_eq!(
        entries.iter().filter(|e| e.status == 200).count() as u64,
        admitted
    );
    let calm_entries = crate::audit::entries(&log, &calm, &[]).await;
    assert_eq!(calm_entries.len(), 32);
    assert!(calm_entries.iter().all(|e| e.status == 200));
}

#[tokio::test]
async fn dev_answers_429_with_retry_after_at_the_profiles_limit() {
    let dir = std::env::temp_dir().join(unique("sb-rate"));
    let (addr, key, task) = crate::dev_server::start(&dir).await;
    let got = send(addr, "GET", "/admin/profile", Some(&key), b"").await;
    assert_eq!(got.status, 200, "{}", got.body);
    let version = got.body["result"]["version"].clone();
    let limit = json!({"rate_limit_per_second": 2, "version": version}).to_string();
    let put = send(addr, "PUT", "/admin/profile", Some(&key), limit.as_bytes()).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["result"]["rate_limit_per_second"], 2);
    let version = put.body["result"]["version"].clone();
    let bad = json!({"rate_limit_per_second": 0, "version": version}).to_string();
    let refused = send(addr, "PUT", "/admin/profile", Some(&key), bad.as_bytes()).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["details"][0]["path"],
        "/rate_limit_per_second"
    );

    // The profile is cached for the platform's cache TTL: a fresh server reads the new one.
    task.abort();
    let (addr, key, task) = crate::dev_server::start(&dir).await;
    let body = json!({"function": "GetProviders", "parameters": {}}).to_string();
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..6 {
        let reply = send_with(
            addr,
            "POST",
            "/plugins/booking",
            Some(&key),
            &[],
            body.as_bytes(),
        )
        .await;
        if reply.status == 429 {
            retry = reply.header("retry-after").map(str::to_owned);
            assert!(
                reply.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("limit of 2 tool calls per second"),
                "{}",
                reply.body
            );
        }
        statuses.push(reply.status);
    }
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(retry.as_deref(), Some("1"));
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A key with a limit of its own is refused past it alone: the organization's other keys
/// keep calling, the 429 names the key, and the admin API shows and checks the limit.
#[tokio::test]
async fn a_key_past_its_own_limit_leaves_the_organizations_other_keys_calling() {
    let dir = std::env::temp_dir().join(unique("sb-key-rate"));
    let (addr, admin, task) = crate::dev_server::start(&dir).await;
    // The organization's limit just above both keys' calls together (2 + 6): a key's refused
    // calls must not use the organization's tokens, or the other key's would be refused.
    let got = send(addr, "GET", "/admin/profile", Some(&admin), b"").await;
    let version = got.body["result"]["version"].clone();
    let limit = json!({"rate_limit_per_second": 10, "version": version}).to_string();
    let put = send(
        addr,
        "PUT",
        "/admin/profile",
        Some(&admin),
        limit.as_bytes(),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let create_as = |key: String, body: serde_json::Value| async move {
        let body = body.to_string();
        send(addr, "POST", "/admin/keys", Some(&key), body.as_bytes()).await
    };
    let create = |body: serde_json::Value| create_as(admin.clone(), body);
    for bad in [json!(0), json!(10_001), json!("2"), json!(-1)] {
        let refused =
            create(json!({"scopes": ["plugins:call"], "rate_limit_per_second": bad})).await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
        if bad.is_number() && bad.as_i64() != Some(-1) {
            assert_eq!(
                refused.body["error"]["details"][0]["path"], "/rate_limit_per_second",
                "{}",
                refused.body
            );
        }
    }
    let limited =
        create(json!({"name": "bot", "scopes": ["plugins:call"], "rate_limit_per_second": 2}))
            .await;
    assert_eq!(limited.status, 201, "{}", limited.body);
    assert_eq!(limited.body["result"]["rate_limit_per_second"], 2);
    let (limited_key, limited_id) = (
        limited.body["result"]["key"].as_str().unwrap().to_owned(),
        limited.body["result"]["id"].as_str().unwrap().to_owned(),
    );
    let other = create(json!({"name": "desk", "scopes": ["plugins:call"]})).await;
    assert_eq!(other.status, 201, "{}", other.body);
    assert!(other.body["result"].get("rate_limit_per_second").is_none());
    let other_key = other.body["result"]["key"].as_str().unwrap().to_owned();
    let listed = send(addr, "GET", "/admin/keys", Some(&admin), b"").await;
    let shown = listed.body["result"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == limited_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(shown["rate_limit_per_second"], 2, "{shown}");

    let body = json!({"function": "GetProviders", "parameters": {}}).to_string();
    let burst = |key: String| {
        let body = body.clone();
        async move {
            let mut out = Vec::new();
            for _ in 0..6 {
                let reply = send(
                    addr,
                    "POST",
                    "/plugins/booking",
                    Some(&key),
                    body.as_bytes(),
                )
                .await;
                out.push(reply);
            }
            out
        }
    };
    let limited_replies = burst(limited_key).await;
    let statuses: Vec<u16> = limited_replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    // The bucket's burst is its limit: never more than twice it in the first second.
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 4,
        "{statuses:?}"
    );
    let refused = limited_replies.iter().find(|r| r.status == 429).unwrap();
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("API key {limited_id}")) && message.contains("own limit of 2"),
        "{message}"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    // The same organization's other key is not held to it.
    let other_statuses: Vec<u16> = burst(other_key).await.iter().map(|r| r.status).collect();
    assert_eq!(other_statuses, vec![200; 6]);
    // A limited key's keys are limited at most as it is.
    let creator =
        create(json!({"scopes": ["admin:write", "plugins:call"], "rate_limit_per_second": 5}))
            .await;
    assert_eq!(creator.status, 201, "{}", creator.body);
    let creator = creator.body["result"]["key"].as_str().unwrap().to_owned();
    let by_creator = |body: serde_json::Value| create_as(creator.clone(), body);
    let higher = by_creator(json!({"scopes": ["plugins:call"], "rate_limit_per_second": 6})).await;
    assert_eq!(higher.status, 403, "{}", higher.body);
    assert!(
        higher.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("creator's 5"),
        "{}",
        higher.body
    );
    let inherited = by_creator(json!({"scopes": ["plugins:call"]})).await;
    assert_eq!(inherited.status, 201, "{}", inherited.body);
    assert_eq!(inherited.body["result"]["rate_limit_per_second"], 5);
    let lower = by_creator(json!({"scopes": ["plugins:call"], "rate_limit_per_second": 3})).await;
    assert_eq!(
        lower.body["result"]["rate_limit_per_second"], 3,
        "{}",
        lower.body
    );
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}
