//! The audit log on the embedded store and on moto: every tool call (each of a Vapi batch),
//! every request refused before a function ran and every admin write leaves one entry
//! under its organization, with the parameters' hash and never their values; queries come
//! newest first, filter, page across shards, and reach only the caller's organization; an
//! entry that cannot be stored fails nothing and is counted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::admin::AdminRequest;
use switchboard::audit::{AuditEntry, AuditLog, AuditQuery};
use switchboard::auth::TenantContext;
use switchboard::pipeline::{CallInput, ToolCallEvent};
use switchboard::registry::Registry;
use switchboard::{Channel, OrgId, PluginName};
use switchboard_tests::{Tables, embedded_tables, moto_tables, unique};

use crate::fixtures::{self, booking_service, local_secrets, pinned_now};

fn tenant(org: &OrgId) -> TenantContext {
    let mut t = TenantContext::new(org.clone())
        .with_scopes(&["plugins:call"])
        .on_channel(Channel::parse("twilio").unwrap());
    t.key_id = Some("k-0123456789abcdef".into());
    t
}

fn body(function: &str, parameters: Value) -> Vec<u8> {
    json!({"function": function, "parameters": parameters})
        .to_string()
        .into_bytes()
}

pub(crate) async fn entries(
    log: &AuditLog,
    org: &OrgId,
    query: &[(&str, &str)],
) -> Vec<AuditEntry> {
    let params: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut q = AuditQuery::parse(&params, pinned_now() + Duration::from_secs(60)).unwrap();
    let mut out = Vec::new();
    loop {
        let page = log.query(org, &q, pinned_now()).await.unwrap();
        out.extend(page.entries);
        match page.next {
            Some(next) => {
                let mut params = params.clone();
                params.push(("cursor".into(), next.token()));
                q = AuditQuery::parse(&params, pinned_now() + Duration::from_secs(60)).unwrap();
            }
            None => return out,
        }
    }
}

async fn audit_contract(tables: Tables) {
    let log = Arc::new(AuditLog::new(tables.data.clone()));
    let demo = fixtures::demo_audited_by(tables, Some(&unique("audit")), log.clone()).await;
    let svc = booking_service(&demo.platform);
    let org = demo.org.clone();
    let call = |body: Vec<u8>, rid: &'static str, who: Option<TenantContext>| {
        let svc = &svc;
        async move {
            svc.call(CallInput {
                tenant: who,
                body: &body,
                request_id: rid,
                idempotency_key: None,
            })
            .await
        }
    };

    // A call that reads a patient by name: 200, and only the hash of what was asked.
    let secret_name = "Zebulon Quartermaine";
    let params = json!({"name": secret_name});
    let (status, out) = call(
        body("SearchPatients", params.clone()),
        "req-ok",
        Some(tenant(&org)),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    // A function the plugin does not have, and a key without the call scope.
    let (status, _) = call(body("DropTables", json!({})), "req-404", Some(tenant(&org))).await;
    assert_eq!(status, 404);
    let no_scope = TenantContext::new(org.clone()).with_scopes(&["agents:read"]);
    let (status, _) = call(body("GetProviders", json!({})), "req-403", Some(no_scope)).await;
    assert_eq!(status, 403);
    // Two tool calls of one Vapi request: one entry each.
    let vapi = json!({"message": {"type": "tool-calls", "toolCallList": [
        {"id": "tc-a", "name": "GetProviders", "arguments": {}},
        {"id": "tc-b", "name": "GetAvailableSlots", "arguments": {"date": "not a date"}}]}});
    let (status, _) = call(
        vapi.to_string().into_bytes(),
        "req-vapi",
        Some(tenant(&org)),
    )
    .await;
    assert_eq!(status, 200);
    // No organization, no entry (and nothing to attribute it to).
    let (status, _) = call(body("GetProviders", json!({})), "req-anon", None).await;
    assert_eq!(status, 401);

    // Tool-call events from the MCP function, one for another plugin's function.
    let event = |plugin: &str, rid: &str| {
        ToolCallEvent::new(
            PluginName::parse(plugin).unwrap(),
            &tenant(&org),
            "GetProviders",
            json!({}),
            rid,
        )
    };
    assert_eq!(
        svc.respond_tool_call(event("booking", "req-mcp"))
            .await
            .status,
        200
    );
    assert_eq!(
        svc.respond_tool_call(event("crm", "req-mcp-crm"))
            .await
            .status,
        404
    );

    let all = entries(&log, &org, &[]).await;
    let ids: Vec<&str> = all.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(all.len(), 7, "{ids:?}");
    for (rid, status) in [("req-mcp", 200), ("req-mcp-crm", 404)] {
        let e = all.iter().find(|e| e.request_id == rid).unwrap();
        assert_eq!((e.route.as_str(), e.status), ("mcp", status), "{e:?}");
    }
    assert!(!ids.contains(&"req-anon"));
    let ok = all.iter().find(|e| e.request_id == "req-ok").unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.route, "POST /plugins/booking");
    assert_eq!(ok.plugin.as_deref(), Some("booking"));
    assert_eq!(ok.function.as_deref(), Some("SearchPatients"));
    assert_eq!(ok.channel.as_deref(), Some("twilio"));
    assert_eq!(ok.key_id.as_deref(), Some("k-0123456789abcdef"));
    assert_eq!(
        ok.params_sha256.as_deref(),
        Some(switchboard::audit::params_hash(&params).as_str())
    );
    assert_eq!(ok.at, "2026-11-25T12:00:00.000000Z");
    let refused = all.iter().find(|e| e.request_id == "req-403").unwrap();
    assert_eq!(
        (
            refused.status,
            refused.error_code.as_deref(),
            refused.function.as_deref()
        ),
        (403, Some("forbidden"), None)
    );
    let vapi_calls: Vec<&AuditEntry> = all.iter().filter(|e| e.request_id == "req-vapi").collect();
    assert_eq!(vapi_calls.len(), 2);
    assert!(
        vapi_calls
            .iter()
            .any(|e| e.idempotency_key.as_deref() == Some("tc-b")
                && e.status == 422
                && e.function.as_deref() == Some("GetAvailableSlots"))
    );
    assert!(
        vapi_calls
            .iter()
            .all(|e| e.route == "POST /plugins/booking")
    );
    // Patient data never reaches the log.
    let raw = serde_json::to_string(&all).unwrap();
    assert!(!raw.contains("Zebulon"), "{raw}");

    // Filters.
    let slots = entries(&log, &org, &[("function", "GetAvailableSlots")]).await;
    assert_eq!(slots.len(), 1);
    let client_errors = entries(&log, &org, &[("status", "4xx")]).await;
    assert_eq!(client_errors.len(), 4, "{client_errors:?}");
    let exact = entries(&log, &org, &[("status", "200")]).await;
    assert_eq!(exact.len(), 3);
    let none = entries(&log, &org, &[("plugin", "support")]).await;
    assert!(none.is_empty());
    // Pages of one: the same entries, each once.
    let paged = entries(&log, &org, &[("limit", "1")]).await;
    assert_eq!(paged, all);
    // Outside the window: nothing.
    let earlier = entries(&log, &org, &[("to", "2026-11-25T11:00:00Z")]).await;
    assert!(earlier.is_empty());

    // Another organization reads only its own (none).
    let other = OrgId::parse(unique("other")).unwrap();
    assert!(entries(&log, &other, &[]).await.is_empty());
}

/// Newest first across shards and days, one page at a time.
async fn ordering_contract(tables: Tables) {
    let log = AuditLog::new(tables.data.clone());
    let org = OrgId::parse(unique("busy")).unwrap();
    let start = pinned_now() - Duration::from_secs(2 * 86_400);
    for i in 0..60u64 {
        let at = start + Duration::from_secs(i * 2_800);
        let entry = switchboard::audit::Subject {
            route: "POST /plugins/booking".into(),
            request_id: format!("req-{i}"),
            function: Some("GetProviders".into()),
            ..Default::default()
        }
        .entry(&org, at, Duration::from_millis(3), 200, None, false);
        log.record(&entry, 0, 90).await;
    }
    let query = [("from", "2026-11-20T00:00:00Z"), ("limit", "7")];
    let got = entries(&log, &org, &query).await;
    let ids: Vec<String> = got.iter().map(|e| e.request_id.clone()).collect();
    let expected: Vec<String> = (0..60).rev().map(|i| format!("req-{i}")).collect();
    assert_eq!(ids, expected);
    // A write retried after it landed is one entry, not two.
    log.record(&got[0], 0, 90).await;
    assert_eq!(entries(&log, &org, &query).await.len(), 60);
    assert_eq!(log.failures(), 0);
}

#[tokio::test]
async fn calls_leave_one_entry_each_on_embedded() {
    audit_contract(embedded_tables()).await;
    ordering_contract(embedded_tables()).await;
}

#[tokio::test]
async fn calls_leave_one_entry_each_on_dynamodb() {
    audit_contract(moto_tables().await).await;
    ordering_contract(moto_tables().await).await;
}

/// Admin writes are audited (a credential's without a hash of its values), reads are not,
/// and the log is read through `GET /admin/audit` with `audit:read` or `admin:write`.
#[tokio::test]
async fn admin_writes_are_audited_and_read_through_the_api() {
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry.clone());
    let log = Arc::new(AuditLog::new(tables.data.clone()));
    let service =
        switchboard_tests::admin_service(registry, local_secrets()).with_audit(log.clone());
    let org = OrgId::parse(unique("adm")).unwrap();
    let seq = std::sync::atomic::AtomicUsize::new(0);
    let call = |scopes: &'static [&'static str],
                method: &'static str,
                path: &'static str,
                body: Value,
                query: Vec<(String, String)>| {
        let service = &service;
        let org = org.clone();
        // API Gateway's request ids are unique: each request its own.
        let rid = format!(
            "adm-{}",
            seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        async move {
            let body = if body.is_null() {
                vec![]
            } else {
                body.to_string().into_bytes()
            };
            service
                .handle(AdminRequest {
                    tenant: Some(TenantContext::new(org).with_scopes(scopes)),
                    method,
                    path,
                    if_match: None,
                    body: &body,
                    query: &query,
                    request_id: &rid,
                })
                .await
        }
    };
    let writer: &[&str] = &["admin:write"];
    let (status, out) = call(
        writer,
        "PUT",
        "/admin/profile",
        json!({"display_name": "Adm Dental"}),
        vec![],
    )
    .await;
    assert_eq!(status, 201, "{out}");
    let (status, _) = call(
        writer,
        "PUT",
        "/admin/profile",
        json!({"audit_retention_days": 0, "version": 1}),
        vec![],
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        writer,
        "PUT",
        "/admin/credentials/api",
        json!({"value": {"token": "hunter2-secret"}}),
        vec![],
    )
    .await;
    assert!(status < 300 || status == 422, "{status}");
    let (status, _) = call(writer, "GET", "/admin/profile", Value::Null, vec![]).await;
    assert_eq!(status, 200);

    let (status, page) = call(writer, "GET", "/admin/audit", Value::Null, vec![]).await;
    assert_eq!(status, 200, "{page}");
    let got = page["result"]["entries"].as_array().unwrap().clone();
    let routes: Vec<&str> = got.iter().filter_map(|e| e["route"].as_str()).collect();
    assert_eq!(
        routes,
        [
            "PUT /admin/credentials/api",
            "PUT /admin/profile",
            "PUT /admin/profile"
        ]
    );
    assert!(got[0]["paramsSha256"].is_null(), "{}", got[0]);
    assert!(got[1]["paramsSha256"].is_string());
    assert_eq!(got[1]["status"], 422);
    assert_eq!(got[1]["errorCode"], "validation_failed");
    assert!(!page.to_string().contains("hunter2"));

    let reader: &[&str] = &["audit:read"];
    let q = vec![("status".to_owned(), "2xx".to_owned())];
    let (status, page) = call(reader, "GET", "/admin/audit", Value::Null, q).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["result"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] != 422)
    );
    let caller: &[&str] = &["plugins:call", "admin:read"];
    let (status, page) = call(caller, "GET", "/admin/audit", Value::Null, vec![]).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.to_string().contains("audit:read"));
    let bad = vec![("from".to_owned(), "last tuesday".to_owned())];
    let (status, page) = call(reader, "GET", "/admin/audit", Value::Null, bad).await;
    assert_eq!(status, 400, "{page}");
}
