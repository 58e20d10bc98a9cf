//! The isolation oracle: random operations by random keys of three organizations (and keys
//! nobody holds) over every route a tenant reaches (the plugin routes of booking, support and
//! crm, a signed Retell route, MCP tool calls, agents, admin reads and writes, the audit log),
//! on the embedded store and on moto. Every key goes through the real authorizer; every
//! request through the Lambda edge as API Gateway hands it over. A model keeps what each
//! organization made, and every answer is checked against it: no other organization's
//! marker in any answer, the authorizer's context always the key's own organization, audit
//! entries only of the caller's own requests, and at the end every organization's records
//! are the ones it made, each under its own marker.
//!
//! `SWITCHBOARD_ISOLATION_OPS` sets the operations per store (10,000 on the embedded store,
//! 2,500 on moto by default); each run prints its count.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request};
use serde_json::{Value, json};
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::audit::AuditLog;
use switchboard::auth::{Authorizer, KEY_CACHE_TTL};
use switchboard::lambda::{LocalInvoker, handle, handle_admin, handle_agent, handle_mcp};
use switchboard::mcp::{McpService, OriginPolicy};
use switchboard::pipeline::PluginService;
use switchboard::registry::{Connection, Registry};
use switchboard::secrets::SecretValue;
use switchboard::signature::sign_retell;
use switchboard::{Channel, ConnectionId, OrgId, VoicePlatform};
use switchboard_tests::{Tables, embedded_tables, moto_tables, unique};

use crate::fixtures::{demo_on, local_secrets, pinned_now};

/// SplitMix64: a seeded sequence, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the model knows of one organization.
struct Tenant {
    org: OrgId,
    key: String,
    connection: String,
    retell_secret: String,
    patients: Vec<i64>,
    tickets: Vec<String>,
    leads: Vec<String>,
    requests: HashSet<String>,
}

struct Edge {
    registry: Registry,
    booking: Arc<PluginService>,
    support: Arc<PluginService>,
    crm: Arc<PluginService>,
    mcp: McpService,
    agents: AgentService,
    admin: switchboard::admin::AdminService,
    authorizer: Authorizer,
}

/// The audit window of the tool calls: the platform's clock is pinned (the sample events'
/// dates), so their entries are dated 2026-11-25; admin writes carry the real time.
const CALLS_WINDOW: &str = "from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z&limit=100";

impl Edge {
    /// `body` to a plugin's route, as the caller the authorizer's `context` names.
    async fn call(
        &self,
        plugin: &PluginService,
        base: &Value,
        context: &Value,
        body: Vec<u8>,
        rid: &str,
    ) -> lambda_http::Response<Body> {
        let path = format!("/plugins/{}", plugin.plugin().name());
        handle(
            plugin,
            request(base, ("POST", &path, ""), Some(context), &[], body, rid),
        )
        .await
    }
}

fn template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events/booking-create-appointment.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An API Gateway request as the edge receives it: `context` is the authorizer's answer.
fn request(
    base: &Value,
    (method, path, query): (&str, &str, &str),
    context: Option<&Value>,
    headers: &[(&str, String)],
    body: Vec<u8>,
    request_id: &str,
) -> Request {
    let mut e = base.clone();
    e["rawPath"] = path.into();
    e["rawQueryString"] = query.into();
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e["requestContext"]["requestId"] = request_id.into();
    e["routeKey"] = format!("{method} {path}").into();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    e["pathParameters"] = match segments.as_slice() {
        ["plugins", p] => json!({"plugin": p}),
        ["agents", c] | ["mcp", c] => json!({"channel": c}),
        ["admin", rest @ ..] => json!({"proxy": rest.join("/")}),
        _ => json!({}),
    };
    match context {
        Some(c) => e["requestContext"]["authorizer"] = json!({"lambda": c}),
        None => {
            if let Some(rc) = e["requestContext"].as_object_mut() {
                rc.remove("authorizer");
            }
        }
    }
    if let Some(h) = e["headers"].as_object_mut() {
        for (k, v) in headers {
            h.insert((*k).to_owned(), v.clone().into());
        }
    }
    e["body"] = Value::Null;
    let req = lambda_http::request::from_str(&e.to_string()).unwrap();
    let (parts, _) = req.into_parts();
    Request::from_parts(parts, Body::Binary(body))
}

fn text(resp: &lambda_http::Response<Body>) -> String {
    match resp.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

async fn edge(tables: &Tables, tenants: &mut Vec<Tenant>, run: &str) -> Edge {
    let secrets = local_secrets();
    let shared = || Tables {
        registry: tables.registry.clone(),
        data: tables.data.clone(),
    };
    let mut platform = None;
    let dir = std::env::temp_dir().join(unique("sb-iso"));
    for name in ["a", "b", "c"] {
        let suffix = format!("{run}-{name}");
        let demo = demo_on(shared(), Some(&suffix), None, secrets.clone()).await;
        let registry = demo.platform.registry.clone();
        let plugins = switchboard_cli::dev::plugins().unwrap();
        let data = switchboard::data::BuiltinData::new(tables.data.clone());
        let key =
            switchboard_cli::seed::ensure_demo(&registry, &data, &plugins, &dir, Some(&suffix))
                .await
                .unwrap();
        // Each organization's display name is its marker, so its agents carry it.
        let current = registry.get_profile(&demo.org).await.unwrap().unwrap();
        let mut profile = current.value;
        profile.display_name = demo.org.to_string();
        registry
            .put_profile(&demo.org, &profile, Some(current.version))
            .await
            .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let connection = format!(
            "cn_{:032x}",
            nanos ^ (u128::from(name.as_bytes()[0]) << 120)
        );
        let retell_secret = format!("key_{run}_{name}");
        let value = serde_json::Map::from_iter([(
            VoicePlatform::Retell.secret_field().to_owned(),
            Value::from(retell_secret.clone()),
        )]);
        secrets
            .store(&demo.org, "retell-signing", &SecretValue::new(value))
            .await
            .unwrap();
        registry
            .create_connection(&Connection {
                id: ConnectionId::parse(&connection).unwrap(),
                org: demo.org.clone(),
                channel: Channel::parse("twilio").unwrap(),
                platform: VoicePlatform::Retell,
                credential: "retell-signing".into(),
                created: 1_795_608_000,
            })
            .await
            .unwrap();
        tenants.push(Tenant {
            org: demo.org.clone(),
            key,
            connection,
            retell_secret,
            patients: Vec::new(),
            tickets: Vec::new(),
            leads: Vec::new(),
            requests: HashSet::new(),
        });
        platform = Some(demo.platform);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let platform = platform.unwrap();
    let registry: Registry = platform.registry.clone();
    let booking = Arc::new(PluginService::new(
        booking::plugin().unwrap(),
        platform.clone(),
    ));
    let support = Arc::new(PluginService::new(
        support::plugin().unwrap(),
        platform.clone(),
    ));
    let crm = Arc::new(PluginService::new(crm::plugin().unwrap(), platform.clone()));
    let mcp = McpService::new(
        AgentBuilder::new(registry.clone(), Duration::from_secs(30)),
        Arc::new(LocalInvoker::new(vec![
            booking.clone(),
            support.clone(),
            crm.clone(),
        ])),
        OriginPolicy::default(),
    );
    let agents = AgentService::new(
        AgentBuilder::new(registry.clone(), Duration::from_secs(30)),
        ExportOptions {
            public_base_url: None,
        },
    );
    let admin = switchboard_tests::admin_service(registry.clone(), secrets)
        .with_audit(Arc::new(AuditLog::new(tables.data.clone())));
    let authorizer = Authorizer::new(registry.clone(), KEY_CACHE_TTL);
    Edge {
        registry,
        booking,
        support,
        crm,
        mcp,
        agents,
        admin,
        authorizer,
    }
}

/// Runs `ops` random operations and checks every answer; returns how many reached a
/// function or service (the rest were keys the authorizer refused).
async fn oracle(tables: Tables, ops: usize, seed: u64) -> usize {
    let run = unique("iso");
    let mut tenants = Vec::new();
    let edge = edge(&tables, &mut tenants, &run).await;
    let owner: HashMap<String, usize> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.clone(), i))
        .collect();
    let base = template();
    let auth_event: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../events/authorizer-valid-key.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut rng = Rng(seed);
    let mut reached = 0;
    let mut outcomes: std::collections::BTreeMap<(usize, u16), usize> = Default::default();
    // Entries of the caller's own requests the audit reads returned: the check saw some.
    let mut audited_own = 0usize;
    for n in 0..ops {
        let rid = format!("{run}-op-{n}");
        // A tenant's own key, mostly; sometimes a key nobody holds.
        let presented = if rng.below(10) == 0 {
            format!("sb_live_{:016x}", rng.next())
        } else {
            tenants[rng.below(3)].key.clone()
        };
        let mut event = auth_event.clone();
        event["headers"]["authorization"] = format!("Bearer {presented}").into();
        event["identitySource"] = json!([format!("Bearer {presented}")]);
        let answer = edge.authorizer.simple_response(&event).await.unwrap();
        let Some(holder) = owner.get(&presented).copied() else {
            assert_eq!(answer["isAuthorized"], false, "{presented}: {answer}");
            continue;
        };
        assert_eq!(answer["isAuthorized"], true, "{answer}");
        let context = answer["context"].clone();
        assert_eq!(
            context["orgId"],
            tenants[holder].org.as_str(),
            "the authorizer named another organization for a key: {answer}"
        );
        reached += 1;
        let me = &tenants[holder];
        let marker = me.org.to_string();
        let other = |i: usize| &tenants[i];
        let pick_any = |rng: &mut Rng, f: &dyn Fn(&Tenant) -> Vec<String>| -> Option<String> {
            let all: Vec<String> = (0..3).flat_map(|i| f(other(i))).collect();
            (!all.is_empty()).then(|| all[rng.below(all.len())].clone())
        };
        let call = |function: &str, params: Value| {
            json!({"function": function, "parameters": params})
                .to_string()
                .into_bytes()
        };
        // A plugin route's call with the drawn key's authorizer context.
        let send = async |plugin: &PluginService, body: Vec<u8>| {
            edge.call(plugin, &base, &context, body, &rid).await
        };
        let op = rng.below(16);
        let (resp, created): (lambda_http::Response<Body>, Option<(&str, Value)>) = match op {
            0 | 1 => {
                let body = call(
                    "CreatePatient",
                    json!({"FName": format!("P{n}"), "LName": marker}),
                );
                let r = send(&edge.booking, body).await;
                (r, Some(("patient", Value::Null)))
            }
            2 => {
                let body = call("SearchPatients", json!({"name": marker}));
                (send(&edge.booking, body).await, None)
            }
            3 => {
                let id = pick_any(&mut rng, &|t| {
                    t.patients.iter().map(ToString::to_string).collect()
                })
                .unwrap_or_else(|| "1".into());
                let body = call("GetPatient", json!({"PatNum": id.parse::<i64>().unwrap()}));
                (send(&edge.booking, body).await, None)
            }
            4 => {
                let body = call(
                    "CreateTicket",
                    json!({"subject": format!("{marker} #{n}"), "description": "the oracle's ticket", "contact": {"name": format!("C{n}"), "email": format!("t{n}@{marker}.example")}}),
                );
                (
                    send(&edge.support, body).await,
                    Some(("ticket", Value::Null)),
                )
            }
            5 => {
                let id =
                    pick_any(&mut rng, &|t| t.tickets.clone()).unwrap_or_else(|| "none".into());
                let body = call("GetTicket", json!({"ticketId": id}));
                (send(&edge.support, body).await, None)
            }
            6 => {
                let body = call("ListTickets", json!({"status": "open"}));
                (send(&edge.support, body).await, None)
            }
            7 => {
                let body = call(
                    "CreateLead",
                    json!({"name": format!("{marker} lead {n}"), "source": "oracle", "email": format!("l{n}@{marker}.example")}),
                );
                (send(&edge.crm, body).await, Some(("lead", Value::Null)))
            }
            8 => {
                let id = pick_any(&mut rng, &|t| t.leads.clone()).unwrap_or_else(|| "none".into());
                let body = call("GetLead", json!({"leadId": id}));
                (send(&edge.crm, body).await, None)
            }
            9 => {
                let body = call("GetLeadsByStatus", json!({"status": "new"}));
                (send(&edge.crm, body).await, None)
            }
            10 => {
                // Any organization's voice connection, signed with its own secret: the call
                // runs as that connection's organization, whoever's key was drawn.
                let via = rng.below(3);
                let t = other(via);
                let body = json!({"name": "GetAllPatients", "args": {"limit": 200}, "call": {"call_id": rid, "from_number": "+15550102000"}}).to_string().into_bytes();
                let sig = sign_retell(t.retell_secret.as_bytes(), &body, pinned_now());
                let path = format!("/channels/retell/{}/booking", t.connection);
                let r = handle(
                    &edge.booking,
                    request(
                        &base,
                        ("POST", &path, ""),
                        None,
                        &[("x-retell-signature", sig)],
                        body,
                        &rid,
                    ),
                )
                .await;
                let status = r.status().as_u16();
                assert_eq!(status, 200, "{}", text(&r));
                check(&tenants, via, &text(&r), &rid);
                tenants[via].requests.insert(rid.clone());
                continue;
            }
            11 => {
                let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "GetAllPatients", "arguments": {"limit": 200}}}).to_string().into_bytes();
                let headers = [
                    ("accept", "application/json, text/event-stream".to_owned()),
                    ("mcp-protocol-version", "2025-11-25".to_owned()),
                ];
                (
                    handle_mcp(
                        &edge.mcp,
                        request(
                            &base,
                            ("POST", "/mcp/twilio", ""),
                            Some(&context),
                            &headers,
                            body,
                            &rid,
                        ),
                    )
                    .await,
                    None,
                )
            }
            12 => (
                handle_agent(
                    &edge.agents,
                    request(
                        &base,
                        ("GET", "/agents/twilio", "format=openai"),
                        Some(&context),
                        &[],
                        Vec::new(),
                        &rid,
                    ),
                )
                .await,
                None,
            ),
            13 => {
                let what = [
                    "instances",
                    "profile",
                    "channels/twilio",
                    "keys",
                    "connections",
                    "credentials/retell-signing",
                ][rng.below(6)];
                (
                    handle_admin(
                        &edge.admin,
                        request(
                            &base,
                            ("GET", &format!("/admin/{what}"), ""),
                            Some(&context),
                            &[],
                            Vec::new(),
                            &rid,
                        ),
                    )
                    .await,
                    None,
                )
            }
            14 => {
                let version = edge
                    .registry
                    .get_profile(&me.org)
                    .await
                    .unwrap()
                    .map(|p| p.version);
                let zone = ["UTC", "Europe/Dublin", "America/New_York"][rng.below(3)];
                let body = json!({"timezone": zone, "version": version})
                    .to_string()
                    .into_bytes();
                let r = handle_admin(
                    &edge.admin,
                    request(
                        &base,
                        ("PUT", "/admin/profile", ""),
                        Some(&context),
                        &[],
                        body,
                        &rid,
                    ),
                )
                .await;
                assert_eq!(r.status().as_u16(), 200, "{}", text(&r));
                (r, None)
            }
            _ => {
                let r = handle_admin(
                    &edge.admin,
                    request(
                        &base,
                        (
                            "GET",
                            "/admin/audit",
                            if n % 2 == 0 {
                                CALLS_WINDOW
                            } else {
                                "limit=100"
                            },
                        ),
                        Some(&context),
                        &[],
                        Vec::new(),
                        &rid,
                    ),
                )
                .await;
                let page: Value = serde_json::from_str(&text(&r)).unwrap();
                assert_eq!(page["success"], true, "{page}");
                for entry in page["result"]["entries"].as_array().into_iter().flatten() {
                    let of = entry["requestId"].as_str().unwrap_or_default();
                    // Every request of this run is in some organization's model; an entry
                    // must be of one of the caller's own.
                    assert!(
                        me.requests.contains(of) || !of.starts_with(&run),
                        "{} read the audit entry of another organization's request {of}",
                        me.org
                    );
                    assert_eq!(entry["org"], me.org.as_str(), "{entry}");
                    audited_own += usize::from(me.requests.contains(of));
                }
                (r, None)
            }
        };
        let status = resp.status().as_u16();
        let body = text(&resp);
        assert!(status < 500, "op {op}: {status} {body}");
        *outcomes.entry((op, status)).or_default() += 1;
        check(&tenants, holder, &body, &rid);
        if let (Some((kind, _)), 200) = (created, status) {
            let v: Value = serde_json::from_str(&body).unwrap();
            let t = &mut tenants[holder];
            match kind {
                "patient" => t.patients.push(
                    v["result"]["PatNum"]
                        .as_i64()
                        .unwrap_or_else(|| panic!("{v}")),
                ),
                "ticket" => t.tickets.push(
                    v["result"]["ticketId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{v}"))
                        .to_owned(),
                ),
                _ => t.leads.push(
                    v["result"]["lead"]["leadId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{v}"))
                        .to_owned(),
                ),
            }
        }
        tenants[holder].requests.insert(rid);
    }

    assert!(
        audited_own * 20 >= ops.min(20_000) / 16,
        "the audit reads returned only {audited_own} of the callers' own entries"
    );
    // The operations mostly did what they asked for, so the checks saw real data.
    let ok: usize = outcomes
        .iter()
        .filter(|((_, s), _)| *s == 200)
        .map(|(_, n)| n)
        .sum();
    let answered: usize = outcomes.values().sum();
    assert!(
        ok * 10 >= answered * 7,
        "{ok} of {answered} answered 200: {outcomes:?}"
    );
    for t in &tenants {
        assert!(
            !t.patients.is_empty() && !t.tickets.is_empty() && !t.leads.is_empty(),
            "{}: {} patients, {} tickets, {} leads; {outcomes:?}",
            t.org,
            t.patients.len(),
            t.tickets.len(),
            t.leads.len()
        );
    }

    // Every organization's records are the ones it made, each under its own marker: all
    // its patients, page by page.
    for (i, t) in tenants.iter().enumerate() {
        let context = json!({"orgId": t.org.as_str(), "scopes": "plugins:call", "keyId": "oracle"});
        let mut mine = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let body = json!({"function": "GetAllPatients", "parameters": {"limit": 200, "cursor": cursor}}).to_string().into_bytes();
            let page = handle(
                &edge.booking,
                request(
                    &base,
                    ("POST", "/plugins/booking", ""),
                    Some(&context),
                    &[],
                    body,
                    "final",
                ),
            )
            .await;
            let page_text = text(&page);
            check(&tenants, i, &page_text, "final");
            let v: Value = serde_json::from_str(&page_text).unwrap();
            assert_eq!(v["success"], true, "{v}");
            for p in v["result"]["patients"].as_array().into_iter().flatten() {
                if p["LName"] == t.org.as_str() {
                    mine.push(p["PatNum"].as_i64().unwrap());
                }
            }
            cursor = v["result"]["nextCursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        mine.sort_unstable();
        let mut made = t.patients.clone();
        made.sort_unstable();
        assert_eq!(mine, made, "{}'s patients", t.org);
    }
    reached
}

/// No other organization's marker in what `holder` was answered.
fn check(tenants: &[Tenant], holder: usize, body: &str, rid: &str) {
    for (i, t) in tenants.iter().enumerate() {
        if i != holder {
            assert!(
                !body.contains(t.org.as_str()),
                "{rid}: {} was answered with {}'s data: {body}",
                tenants[holder].org,
                t.org
            );
        }
    }
}

fn ops(default: usize) -> usize {
    std::env::var("SWITCHBOARD_ISOLATION_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn no_tenant_reaches_another_on_the_embedded_store() {
    let n = ops(10_000);
    let reached = oracle(embedded_tables(), n, 0x1501_a7e5).await;
    println!(
        "isolation oracle, embedded store: {n} operations, {reached} past the authorizer, 0 crossings"
    );
    assert!(reached * 10 >= n * 8, "{reached} of {n}");
}

#[tokio::test]
async fn no_tenant_reaches_another_on_dynamodb() {
    let n = ops(2_500);
    let reached = oracle(moto_tables().await, n, 0x1501_d7a0).await;
    println!(
        "isolation oracle, DynamoDB (moto): {n} operations, {reached} past the authorizer, 0 crossings"
    );
    assert!(reached * 10 >= n * 8, "{reached} of {n}");
}
