//! Property-based fuzzing (proptest, stable toolchain) of what clients and tenants control:
//! API Gateway events and bodies on every route that runs a function (plugin envelopes,
//! Retell and Vapi on the signed routes, MCP JSON-RPC, Bedrock action group events, the MCP
//! function's tool-call events), manifests, config documents, adapter specs, signature
//! headers, and a differential check of each lowered (OpenAI strict) parameters schema
//! against the server's validation.
//!
//! Properties: no panic; never a 5xx for client input; a refused request (4xx) leaves
//! nothing behind but its audit entry (every other key it wrote is gone again).
//!
//! `SWITCHBOARD_FUZZ_CASES` sets the cases per target (64 by default: `scripts/test`) and
//! `SWITCHBOARD_FUZZ_SEED` the seed (fixed by default, so CI runs the same cases every
//! time); `scripts/fuzz` runs 100,000 per target and reports them in RELIABILITY.md from the
//! lines each target appends to `SWITCHBOARD_FUZZ_REPORT`. A failure shrinks to a minimal
//! input and names its target, seed and case.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_http::{Body, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use switchboard::admin::{AdminRequest, AdminService};
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::{lower_strict, strip_strict_nulls};
use switchboard::auth::TenantContext;
use switchboard::lambda::{EventReply, LocalInvoker, handle, handle_event, handle_mcp};
use switchboard::manifest::{CompiledManifest, compile};
use switchboard::mcp::{McpService, OriginPolicy};
use switchboard::pipeline::PluginService;
use switchboard::ports::{Item, ItemStore, Key, Page, Precondition, SkRange, StoreError, Write};
use switchboard::registry::{Connection, DataAdapterConfig, Registry};
use switchboard::secrets::SecretValue;
use switchboard::signature::{
    SignatureHeaders, sign_retell, sign_twilio, sign_vapi, verify_retell, verify_twilio,
    verify_vapi,
};
use switchboard::spec::AdapterSpec;
use switchboard::{Channel, ConnectionId, OrgId, Plugin, VoicePlatform};
use switchboard_embedded::Embedded;
use switchboard_tests::Tables;

use crate::fixtures::{booking_service, demo_on, local_secrets, pinned_now};

// ---------------------------------------------------------------------------------------
// The runner: cases, seed, report.

fn cases() -> u32 {
    std::env::var("SWITCHBOARD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn seed() -> u64 {
    std::env::var("SWITCHBOARD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0f5b_0a4d)
}

/// SplitMix64: the seed and the target's name spread into ChaCha's 32-byte seed, so targets
/// do not share a sequence.
fn rng_seed(target: &str) -> [u8; 32] {
    let mut x = target.bytes().fold(seed() ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// What a target saw besides its verdict, for the report.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        *self.0.lock().unwrap().entry(what.into()).or_default() += 1;
    }
}

/// Runs `property` on `cases()` inputs of `strategy`; panics with the shrunk input on a
/// failure, else appends the target's figures to the report.
fn fuzz<S>(
    target: &str,
    strategy: S,
    tally: &Tally,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed(target)),
    );
    let started = Instant::now();
    if let Err(e) = runner.run(&strategy, property) {
        panic!(
            "fuzz target {target} (SWITCHBOARD_FUZZ_SEED={}): {e}",
            seed()
        );
    }
    if let Ok(path) = std::env::var("SWITCHBOARD_FUZZ_REPORT") {
        let line = json!({
            "target": target,
            "cases": cases(),
            "seed": seed(),
            "seconds": started.elapsed().as_secs_f64(),
            "outcomes": *tally.0.lock().unwrap(),
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        writeln!(f, "{line}").unwrap();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Generators.

/// Strings that mean something somewhere in the platform, and some that break things.
const TOKENS: &[&str] = &[
    "",
    " ",
    "CreateAppointment",
    "GetProviders",
    "SearchPatients",
    "GetAvailableSlots",
    "CancelAppointment",
    "GetPatient",
    "booking__CreateAppointment",
    "2027-06-01 10:00",
    "2027-06-01",
    "2027-02-30 25:61",
    "1970-01-01T00:00:00Z",
    "+15550102000",
    "5550102000",
    "null",
    "demo-dental",
    "other-org",
    "ORG#other-org#booking#patients",
    "AUDIT#demo-dental#2026-11-25#0",
    "../../etc/passwd",
    "\u{0}",
    "\u{202e}",
    "\u{feff}",
    "💥",
    "%00",
    "{{ org.display_name }}",
    "'; DROP TABLE patients; --",
    "1e309",
    "-0",
    "NaN",
    "sb_live_0000",
    "http://169.254.169.254/latest/meta-data/",
    "tools/call",
    "2.0",
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => ".{0,24}",
        3 => prop::sample::select(TOKENS).prop_map(str::to_owned),
        1 => (prop::sample::select(TOKENS), 1..400usize)
            .prop_map(|(t, n)| if t.is_empty() { "x".repeat(n) } else { t.repeat(n) }),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![0i64, 1, -1, 2, 999, i64::MAX, i64::MIN]).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        text().prop_map(Value::from),
    ]
    .boxed()
}

/// Any JSON document, up to four levels deep.
fn json_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(text(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A value shaped by `schema` (its type, enum, properties), often right and sometimes not.
fn shaped(schema: &Value, depth: usize) -> BoxedStrategy<Value> {
    if depth > 4 {
        return leaf();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        let values = values.clone();
        return prop_oneof![3 => prop::sample::select(values), 1 => leaf()].boxed();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.first().and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    let pattern = schema.get("pattern").and_then(Value::as_str).and_then(|p| {
        proptest::string::string_regex(p.trim_start_matches('^').trim_end_matches('$')).ok()
    });
    let right = match (kind, pattern) {
        ("string", Some(p)) => prop_oneof![
            3 => p.prop_map(Value::from),
            1 => text().prop_map(Value::from),
        ]
        .boxed(),
        ("string", None) => match schema.get("format").and_then(Value::as_str) {
            Some("date") => prop::sample::select(vec!["2027-06-01", "2027-06-02", "2026-11-25", "2027-13-01", "06/01/2027"])
                .prop_map(Value::from)
                .boxed(),
            _ => text().prop_map(Value::from).boxed(),
        },
        // Small ids often: the demo's patients, providers and appointments are numbered from 1.
        ("integer", _) => prop_oneof![3 => (0i64..6).prop_map(Value::from), 2 => (-5i64..1000).prop_map(Value::from), 1 => any::<i64>().prop_map(Value::from)].boxed(),
        ("number", _) => prop_oneof![(-5i64..1000).prop_map(Value::from), any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number))].boxed(),
        ("boolean", _) => any::<bool>().prop_map(Value::from).boxed(),
        ("array", _) => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            prop::collection::vec(shaped(&items, depth + 1), 0..4)
                .prop_map(Value::Array)
                .boxed()
        }
        ("object", _) => params_like(schema, depth + 1),
        _ => return json_value(),
    };
    prop_oneof![5 => right, 1 => json_value()].boxed()
}

/// An object with some of `schema`'s properties (each shaped or not) and sometimes others.
fn params_like(schema: &Value, depth: usize) -> BoxedStrategy<Value> {
    let props: Vec<(String, Value)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = props
        .into_iter()
        .map(|(k, s)| {
            prop::option::weighted(0.7, shaped(&s, depth).prop_map(move |v| (k.clone(), v))).boxed()
        })
        .collect();
    let extra = prop::collection::vec((text(), leaf()), 0..2);
    (fields, extra)
        .prop_map(|(fields, extra)| {
            let mut m: Map<String, Value> = fields.into_iter().flatten().collect();
            m.extend(extra);
            Value::Object(m)
        })
        .boxed()
}

/// A plugin's functions as (name, parameters schema).
fn functions(plugin: &Plugin) -> Vec<(String, Value)> {
    plugin
        .manifest()
        .manifest()
        .functions
        .iter()
        .map(|f| (f.name.to_string(), f.parameters.clone()))
        .collect()
}

/// A tool name and its arguments: a declared function with arguments shaped by its schema,
/// or anything at all.
fn tool_call(functions: Vec<(String, Value)>) -> BoxedStrategy<(Value, Value)> {
    let declared = prop::sample::select(functions)
        .prop_flat_map(|(name, schema)| (Just(Value::from(name)), params_like(&schema, 0)));
    prop_oneof![4 => declared, 1 => (leaf(), json_value())].boxed()
}

/// A request body for a plugin route: Switchboard's envelope, Retell's custom function,
/// Vapi's tool-calls message, or any JSON.
fn envelope(functions: Vec<(String, Value)>) -> BoxedStrategy<Value> {
    let call = tool_call(functions);
    prop_oneof![
        4 => (call.clone(), prop::option::of(text()), prop::option::of(text())).prop_map(|((f, p), session, phone)| {
            let mut m = Map::new();
            m.insert("function".into(), f);
            m.insert("parameters".into(), p);
            if let Some(s) = session { m.insert("sessionId".into(), s.into()); }
            if let Some(p) = phone { m.insert("callerPhone".into(), p.into()); }
            Value::Object(m)
        }),
        2 => (call.clone(), text(), text()).prop_map(|((f, p), id, from)| json!({
            "name": f, "args": p, "call": {"call_id": id, "from_number": from}
        })),
        2 => (prop::collection::vec((text(), call, any::<bool>()), 0..4), text()).prop_map(|(calls, from)| {
            let list: Vec<Value> = calls.into_iter().map(|(id, (f, p), nested)| if nested {
                json!({"id": id, "type": "function", "function": {"name": f, "arguments": p}})
            } else {
                json!({"id": id, "name": f, "arguments": p.to_string()})
            }).collect();
            json!({"message": {"type": "tool-calls", "toolCallList": list, "call": {"id": "c"}, "customer": {"number": from}}})
        }),
        1 => json_value(),
    ]
    .boxed()
}

/// Bytes for a body: a JSON document serialized, or any bytes.
fn body_bytes(json: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => json.prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

/// Up to three edits of `base`: a node replaced by any JSON, or removed.
fn mutated(base: Value) -> BoxedStrategy<Value> {
    prop::collection::vec((any::<usize>(), prop::option::of(json_value())), 1..4)
        .prop_map(move |edits| {
            let mut doc = base.clone();
            for (at, with) in edits {
                let mut paths = Vec::new();
                pointers(&doc, String::new(), &mut paths);
                let path = &paths[at % paths.len()];
                if path.is_empty() {
                    if let Some(v) = with {
                        doc = v;
                    }
                    continue;
                }
                let (parent, last) = path.rsplit_once('/').unwrap();
                let last = last.replace("~1", "/").replace("~0", "~");
                match (doc.pointer_mut(parent), with) {
                    (Some(Value::Object(m)), Some(v)) => {
                        m.insert(last, v);
                    }
                    (Some(Value::Object(m)), None) => {
                        m.remove(&last);
                    }
                    (Some(Value::Array(a)), with) => {
                        if let Ok(i) = last.parse::<usize>() {
                            match with {
                                Some(v) if i < a.len() => a[i] = v,
                                None if i < a.len() => {
                                    a.remove(i);
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            doc
        })
        .boxed()
}

fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// The world: the demo tenant on the embedded store, every write recorded.

/// The data table, recording the key of every write, so a refused request can be checked
/// for what it left behind.
struct Recorder {
    inner: Arc<dyn ItemStore>,
    written: Mutex<Vec<Key>>,
}

impl Recorder {
    /// Only writes that happened: a refused conditional write changed nothing.
    fn note_if(&self, happened: bool, key: &Key) {
        if happened {
            self.written.lock().unwrap().push(key.clone());
        }
    }

    fn take(&self) -> Vec<Key> {
        std::mem::take(&mut self.written.lock().unwrap())
    }

    /// Every key written since the last `take` other than audit entries and rate counts is
    /// gone again (an idempotency claim released, nothing else touched).
    async fn left_nothing(&self) -> Result<(), TestCaseError> {
        for key in self.take() {
            if key.pk.starts_with("AUDIT#") || key.pk.starts_with("RATE#") {
                continue;
            }
            let left = self
                .inner
                .get(&key)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(left.is_none(), "a refused request left {key} behind");
        }
        Ok(())
    }
}

#[switchboard::async_trait]
impl ItemStore for Recorder {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &Key, data: &Value, pre: Precondition) -> Result<u64, StoreError> {
        let out = self.inner.put(key, data, pre).await;
        self.note_if(out.is_ok(), key);
        out
    }
    async fn delete(&self, key: &Key, pre: Precondition) -> Result<bool, StoreError> {
        let out = self.inner.delete(key, pre).await;
        self.note_if(out.is_ok(), key);
        out
    }
    async fn query_range(
        &self,
        pk: &str,
        range: &SkRange,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Item>, StoreError> {
        self.inner.query_range(pk, range, after, limit).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.batch_get(keys).await
    }
    async fn transact_write(&self, writes: &[Write<'_>]) -> Result<(), StoreError> {
        let out = self.inner.transact_write(writes).await;
        for w in writes.iter().filter(|w| !matches!(w, Write::Check { .. })) {
            self.note_if(out.is_ok(), w.key());
        }
        out
    }
    async fn increment(&self, key: &Key) -> Result<u64, StoreError> {
        let out = self.inner.increment(key).await;
        self.note_if(out.is_ok(), key);
        out
    }
    async fn put_expiring(
        &self,
        key: &Key,
        data: &Value,
        pre: Precondition,
        expires_at: u64,
    ) -> Result<u64, StoreError> {
        let out = self.inner.put_expiring(key, data, pre, expires_at).await;
        self.note_if(out.is_ok(), key);
        out
    }
}

const RETELL: (&str, &str) = ("cn_5e1ec7ed00000000000000000000a001", "key_fuzz_retell");
const VAPI: (&str, &str) = ("cn_5e1ec7ed00000000000000000000b002", "vapi_fuzz_secret");
const TWILIO: (&str, &str) = ("cn_5e1ec7ed00000000000000000000c003", "twilio_fuzz_token");

struct World {
    service: Arc<PluginService>,
    mcp: McpService,
    admin: AdminService,
    registry: Registry,
    data: Arc<Recorder>,
    org: OrgId,
}

async fn world() -> World {
    let db = Embedded::in_memory().unwrap();
    let data = Arc::new(Recorder {
        inner: db.data_table(),
        written: Mutex::default(),
    });
    let secrets = local_secrets();
    let tables = Tables {
        registry: db.registry_table(),
        data: data.clone(),
    };
    let demo = demo_on(tables, None, None, secrets.clone()).await;
    let registry = demo.platform.registry.clone();
    for (platform, (id, secret)) in [
        (VoicePlatform::Retell, RETELL),
        (VoicePlatform::Vapi, VAPI),
        (VoicePlatform::Twilio, TWILIO),
    ] {
        let credential = format!("{platform}-signing");
        let value = Map::from_iter([(platform.secret_field().to_owned(), Value::from(secret))]);
        secrets
            .store(&demo.org, &credential, &SecretValue::new(value))
            .await
            .unwrap();
        let conn = Connection {
            id: ConnectionId::parse(id).unwrap(),
            org: demo.org.clone(),
            channel: Channel::parse("twilio").unwrap(),
            platform,
            credential,
            created: 1_795_608_000,
        };
        registry.create_connection(&conn).await.unwrap();
    }
    // The sample Bedrock event's agent alias, mapped to the demo tenant as an operator would.
    let mapping = switchboard::registry::BedrockAgent {
        agent: switchboard::BedrockAgentRef::parse("SBAGENT001", "TSTALIASID").unwrap(),
        org: demo.org.clone(),
        channel: Channel::parse("twilio").unwrap(),
        created: 1_795_608_000,
    };
    registry.create_bedrock_agent(&mapping).await.unwrap();
    let service = Arc::new(booking_service(&demo.platform));
    let mcp = McpService::new(
        AgentBuilder::new(registry.clone(), Duration::from_secs(30)),
        Arc::new(LocalInvoker::new(vec![service.clone()])),
        OriginPolicy::default(),
    );
    // Adapter specs are checked before anything is reached: no tenant config may reach
    // loopback or private hosts, so the check never waits on a connection.
    let mut settings = switchboard_tests::settings();
    settings.egress = switchboard::egress::Egress::public_only();
    let admin = switchboard_runtime::admin_with(registry.clone(), secrets, &settings);
    data.take();
    World {
        service,
        mcp,
        admin,
        registry,
        data,
        org: demo.org,
    }
}

impl World {
    /// A plugin route's answer: no 5xx (nor, in a Vapi batch's 200, a call's internal
    /// error), and nothing left behind by a refusal.
    async fn check_call(
        &self,
        tally: &Tally,
        resp: &lambda_http::Response<Body>,
    ) -> Result<(), TestCaseError> {
        let status = resp.status().as_u16();
        let b = body_json(resp);
        tally.add(format!(
            "{status} {}",
            b["error"]["code"].as_str().unwrap_or("")
        ));
        prop_assert!(status < 500, "{status}: {b}");
        prop_assert!(!b.to_string().contains("internal error"), "{b}");
        if status >= 400 {
            self.data.left_nothing().await?;
        }
        Ok(())
    }
}

fn event(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `template` (an API Gateway v2 event) with `body` and `headers`, as lambda_http parses it.
fn request(
    template: &Value,
    path: Option<&str>,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Request {
    let mut e = template.clone();
    if let Some(p) = path {
        e["rawPath"] = p.into();
        e["requestContext"]["http"]["path"] = p.into();
    }
    if let Some(h) = e["headers"].as_object_mut() {
        for (k, v) in headers {
            h.insert(k.to_ascii_lowercase(), v.clone().into());
        }
    }
    e["body"] = Value::Null;
    let req = lambda_http::request::from_str(&e.to_string()).unwrap();
    let (parts, _) = req.into_parts();
    Request::from_parts(parts, Body::Binary(body))
}

fn body_json(resp: &lambda_http::Response<Body>) -> Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        Body::Empty => Value::Null,
        _ => Value::Null,
    }
}

/// A header value API Gateway could deliver: visible ASCII and spaces.
fn header_value() -> BoxedStrategy<String> {
    prop_oneof![
        "[ -~]{0,80}",
        prop::sample::select(TOKENS)
            .prop_map(|t| t.chars().filter(|c| (' '..='~').contains(c)).collect()),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Targets.

#[test]
fn fuzz_plugin_routes() {
    let rt = runtime();
    let w = rt.block_on(world());
    let template = event("booking-create-appointment.json");
    let tally = Tally::default();
    let strategy = (
        body_bytes(envelope(functions(w.service.plugin()))),
        // Mostly keys the header accepts (visible ASCII), so retries reach the idempotency
        // layer; sometimes any header value.
        prop::option::of(prop_oneof![3 => "[!-~]{1,40}", 1 => header_value()]),
    );
    fuzz("plugin_routes", strategy, &tally, |(body, key)| {
        rt.block_on(async {
            w.data.take();
            let headers: Vec<(String, String)> = key
                .into_iter()
                .map(|k| ("idempotency-key".into(), k))
                .collect();
            let resp = handle(&w.service, request(&template, None, &headers, body)).await;
            w.check_call(&tally, &resp).await
        })
    });
}

#[test]
fn fuzz_signed_voice_routes() {
    let rt = runtime();
    let w = rt.block_on(world());
    let template = event("booking-retell-signed.json");
    let tally = Tally::default();
    let strategy = (
        0..3u8,
        prop_oneof![4 => Just(None), 1 => text().prop_map(Some)],
        body_bytes(envelope(functions(w.service.plugin()))),
        prop_oneof![2 => Just(None), 1 => header_value().prop_map(Some)],
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "x-retell-signature",
                    "x-signature",
                    "x-timestamp",
                    "x-vapi-secret",
                    "authorization",
                    "x-twilio-signature",
                ]),
                header_value(),
            ),
            0..3,
        ),
    );
    fuzz(
        "signed_voice_routes",
        strategy,
        &tally,
        |(which, other_conn, body, signed, headers)| {
            rt.block_on(async {
                w.data.take();
                let (platform, (conn, secret)) = match which {
                    0 => ("retell", RETELL),
                    1 => ("vapi", VAPI),
                    // Booking takes no Twilio webhooks: verified, its fields read, then 404.
                    _ => ("twilio", TWILIO),
                };
                let conn = other_conn.unwrap_or_else(|| conn.to_owned());
                let mut h: Vec<(String, String)> = headers
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                // Half the time a valid signature, so the parsing behind it is fuzzed too.
                let valid = signed.is_none();
                let path = format!("/channels/{platform}/{}/booking", conn.replace('/', "%2F"));
                if valid {
                    match which {
                        0 => h.push((
                            "x-retell-signature".into(),
                            sign_retell(secret.as_bytes(), &body, pinned_now()),
                        )),
                        1 => {
                            let (sig, ts) = sign_vapi(secret.as_bytes(), &body, pinned_now());
                            h.push(("x-signature".into(), sig));
                            h.push(("x-timestamp".into(), ts));
                        }
                        _ => {
                            // The URL the template's request rebuilds.
                            let url = format!("https://api.switchboard.example{path}");
                            h.push((
                                "x-twilio-signature".into(),
                                sign_twilio(secret.as_bytes(), &url, &body),
                            ));
                        }
                    }
                }
                let resp = handle(&w.service, request(&template, Some(&path), &h, body)).await;
                w.check_call(&tally, &resp).await
            })
        },
    );
}

#[test]
fn fuzz_mcp_json_rpc() {
    let rt = runtime();
    let w = rt.block_on(world());
    let template = event("mcp-tools-call.json");
    let tally = Tally::default();
    let methods = vec![
        "initialize",
        "tools/list",
        "tools/call",
        "ping",
        "notifications/initialized",
        "resources/list",
        "prompts/get",
        "tools/call ",
    ];
    let message = (
        prop_oneof![Just(json!("2.0")), leaf()],
        prop_oneof![any::<i64>().prop_map(Value::from), text().prop_map(Value::from), leaf()],
        prop_oneof![prop::sample::select(methods).prop_map(Value::from), leaf()],
        prop_oneof![
            tool_call(functions(w.service.plugin())).prop_map(|(name, arguments)| json!({"name": name, "arguments": arguments})),
            json_value(),
        ],
    )
        .prop_map(|(v, id, method, params)| json!({"jsonrpc": v, "id": id, "method": method, "params": params}));
    let body = prop_oneof![
        5 => message.clone(),
        1 => prop::collection::vec(message, 0..3).prop_map(Value::Array),
        1 => json_value(),
    ]
    .boxed();
    let headers = (
        prop::option::of(prop::sample::select(vec![
            "application/json, text/event-stream",
            "application/json",
            "text/html",
            "*/*",
        ])),
        prop::option::of(prop_oneof![
            Just("2025-11-25".to_owned()),
            Just("2025-06-18".to_owned()),
            header_value()
        ]),
        prop::option::of(header_value()),
    );
    fuzz(
        "mcp_json_rpc",
        (body_bytes(body), headers),
        &tally,
        |(body, (accept, version, key))| {
            rt.block_on(async {
                w.data.take();
                let mut h = Vec::new();
                if let Some(a) = accept {
                    h.push(("accept".to_owned(), a.to_owned()));
                }
                if let Some(v) = version {
                    h.push(("mcp-protocol-version".to_owned(), v));
                }
                // The template's key would make every case a retry of the first.
                h.push((
                    "idempotency-key".to_owned(),
                    key.unwrap_or_else(|| switchboard_tests::unique("k")),
                ));
                let resp = handle_mcp(&w.mcp, request(&template, None, &h, body)).await;
                let status = resp.status().as_u16();
                let b = body_json(&resp);
                tally.add(format!(
                    "{status} {}",
                    b["error"]["code"]
                        .as_i64()
                        .map(|c| c.to_string())
                        .unwrap_or_default()
                ));
                prop_assert!(status < 500, "{status}: {b}");
                // A server fault reaches an MCP client as JSON-RPC -32603 or a tool result
                // carrying its status, inside a 200: look at every message.
                let messages = match &b {
                    Value::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                for m in &messages {
                    prop_assert!(m["error"]["code"] != json!(-32603), "{m}");
                    let inner = m["result"]["_meta"]["switchboard/error"]["status"].as_u64();
                    prop_assert!(inner.is_none_or(|s| s < 500), "{m}");
                }
                if status >= 400 || messages.iter().any(|m| m.get("error").is_some()) {
                    w.data.left_nothing().await?;
                }
                Ok(())
            })
        },
    );
}

#[test]
fn fuzz_bedrock_and_tool_call_events() {
    let rt = runtime();
    let w = rt.block_on(world());
    let bedrock = event("booking-bedrock-create-appointment.json");
    let tool_call = event("booking-tool-call.json");
    let tally = Tally::default();
    let fns = functions(w.service.plugin());
    let names: Vec<String> = fns.iter().map(|(n, _)| n.clone()).collect();
    let param = (
        prop_oneof![
            prop::sample::select(vec![
                "PatNum",
                "ProvNum",
                "AptDateTime",
                "date",
                "ProcDescript",
                "AptNum"
            ])
            .prop_map(str::to_owned),
            text()
        ],
        prop_oneof![
            prop::sample::select(vec!["string", "integer", "number", "boolean", "array"])
                .prop_map(str::to_owned),
            text()
        ],
        text(),
    )
        .prop_map(|(name, kind, value)| json!({"name": name, "type": kind, "value": value}));
    let bedrock_event = (
        mutated(bedrock),
        prop::option::of(prop_oneof![
            prop::sample::select(names).prop_map(Value::from),
            leaf()
        ]),
        prop::option::of(prop::collection::vec(param, 0..5)),
    )
        .prop_map(|(mut e, function, params)| {
            if let (Some(f), Some(m)) = (function, e.as_object_mut()) {
                m.insert("function".into(), f);
            }
            if let (Some(p), Some(m)) = (params, e.as_object_mut()) {
                m.insert("parameters".into(), Value::Array(p));
            }
            e
        });
    let tool_event = (mutated(tool_call), tool_call_strategy(fns)).prop_map(|(mut e, (f, p))| {
        if let Some(m) = e.as_object_mut() {
            m.insert("function".into(), f);
            m.insert("parameters".into(), p);
        }
        e
    });
    let strategy = prop_oneof![bedrock_event, tool_event];
    fuzz("bedrock_and_tool_call_events", strategy, &tally, |event| {
        rt.block_on(async {
            w.data.take();
            let bedrock_shaped =
                event.get("messageVersion").is_some() && event.get("actionGroup").is_some();
            let reply = handle_event(&w.service, event, lambda_http::Context::default()).await;
            match reply {
                Ok(EventReply::Bedrock(body)) => {
                    let state = body["response"]["functionResponse"]["responseState"]
                        .as_str()
                        .or_else(|| body["response"]["responseState"].as_str())
                        .unwrap_or("OK");
                    let text = body.to_string();
                    tally.add(format!("bedrock {state}"));
                    prop_assert!(!text.contains("internal error"), "{body}");
                }
                Ok(EventReply::ToolCall(out)) => {
                    tally.add(format!(
                        "tool-call {} {}",
                        out.status,
                        out.body["error"]["code"].as_str().unwrap_or("")
                    ));
                    prop_assert!(out.status < 500, "{}: {}", out.status, out.body);
                    if out.status >= 400 {
                        w.data.left_nothing().await?;
                    }
                }
                Ok(EventReply::Http(resp)) => {
                    tally.add(format!("http {}", resp.status_code));
                    prop_assert!(resp.status_code < 500, "{resp:?}");
                }
                Err(e) => {
                    // Not an event of any kind the function takes: the invocation's error.
                    tally.add("not an event");
                    prop_assert!(!bedrock_shaped || e.to_string().contains("Bedrock"), "{e}");
                }
            }
            Ok(())
        })
    });
}

fn tool_call_strategy(fns: Vec<(String, Value)>) -> BoxedStrategy<(Value, Value)> {
    tool_call(fns)
}

#[test]
fn fuzz_manifests() {
    let rt = runtime();
    // Published manifests pile up (a plugin with thousands of versions): a fresh registry
    // every thousand cases keeps each case's cost that of a realistic one.
    let fresh = || {
        let db = Embedded::in_memory().unwrap();
        let settings = switchboard_tests::settings();
        std::rc::Rc::new(switchboard_runtime::admin_with(
            Registry::new(db.registry_table()),
            local_secrets(),
            &settings,
        ))
    };
    let admin = std::cell::RefCell::new((0u32, fresh()));
    let base: Value =
        serde_json::from_str(include_str!("../../../functions/booking/manifest.json")).unwrap();
    let operator = TenantContext::new(OrgId::parse("platform").unwrap())
        .with_scopes(&["platform:publish", "admin:read"]);
    let tally = Tally::default();
    let strategy = prop_oneof![
        6 => mutated(base),
        1 => json_value(),
    ];
    fuzz("manifests", strategy, &tally, |doc| {
        rt.block_on(async {
            match CompiledManifest::from_value(doc.clone()) {
                Ok(m) => {
                    tally.add("compiled");
                    for f in &m.manifest().functions {
                        // Lowering either succeeds or names what it refuses; never panics.
                        let _lowered = lower_strict(&f.parameters).is_ok();
                    }
                }
                Err(_) => tally.add("refused"),
            }
            let body = doc.to_string();
            {
                let mut a = admin.borrow_mut();
                a.0 += 1;
                if a.0 % 1000 == 0 {
                    a.1 = fresh();
                }
            }
            let service = admin.borrow().1.clone();
            let (status, reply) = service
                .handle(AdminRequest {
                    tenant: Some(operator.clone()),
                    method: "POST",
                    path: "/admin/plugins",
                    if_match: None,
                    body: body.as_bytes(),
                    query: &[],
                    request_id: "fuzz",
                })
                .await;
            tally.add(format!("publish {status}"));
            prop_assert!(status < 500, "{status}: {reply}");
            Ok(())
        })
    });
}

/// A data adapter document: a known type's settings edited, or anything.
fn adapter_doc() -> BoxedStrategy<Value> {
    let rest = json!({"type": "rest", "base_url": "https://127.0.0.1/v1", "entities": {"patients": "/patients"},
        "credential": "switchboard/demo-dental/clinic-api", "auth": {"bearer": "token"}});
    let postgres = json!({"type": "postgres", "credential": "switchboard/demo-dental/supabase", "schema": "public",
        "entities": {"patients": "patients", "appointments": {"table": "appointment", "id_column": "AptNum", "extra_column": "extra"}}});
    prop_oneof![
        3 => mutated(rest),
        3 => mutated(postgres),
        1 => Just(json!({"type": "dynamodb"})),
        1 => json_value(),
    ]
    .boxed()
}

#[test]
fn fuzz_config_documents_and_adapter_specs() {
    let rt = runtime();
    let w = rt.block_on(world());
    let admin_tenant = TenantContext::new(w.org.clone()).with_scopes(&["admin:write"]);
    let booking = w.service.plugin();
    let base_config = booking.manifest().effective_config(&json!({}));
    let tally = Tally::default();
    let patch = (
        prop::option::of(prop_oneof![mutated(base_config), json_value()]),
        prop::option::of(adapter_doc()),
        prop::option::of(any::<bool>()),
        prop::option::of(prop_oneof![Just(Value::from("1.0.0")), leaf()]),
        any::<bool>(),
    );
    fuzz(
        "config_documents_and_adapter_specs",
        patch,
        &tally,
        |(config, adapter, enabled, pinned, versioned)| {
            rt.block_on(async {
                if let Some(c) = &config {
                    // The check itself: any document, no panic.
                    let _valid = booking.manifest().validate_config(c).is_ok();
                }
                if let Some(a) = &adapter {
                    match DataAdapterConfig::from_json(a, "/data_adapter")
                        .and_then(|c| AdapterSpec::parse(&c, "/data_adapter"))
                    {
                        Ok(_) => tally.add("adapter parsed"),
                        Err(e) => {
                            tally.add(format!("adapter {}", e.status()));
                            prop_assert!(e.status() < 500, "{e:?}");
                            if let switchboard::Error::Validation { details, .. } = &e {
                                for d in details {
                                    prop_assert!(d.path.starts_with("/data_adapter"), "{e:?}");
                                }
                            }
                        }
                    }
                }
                let mut body = Map::new();
                if let Some(c) = config {
                    body.insert("config".into(), c);
                }
                if let Some(a) = adapter {
                    body.insert("data_adapter".into(), a);
                }
                if let Some(e) = enabled {
                    body.insert("enabled".into(), e.into());
                }
                if let Some(p) = pinned {
                    body.insert("pinned_version".into(), p);
                }
                if versioned {
                    let current = w
                        .registry
                        .get_instance(&w.org, booking.name())
                        .await
                        .unwrap();
                    body.insert("version".into(), current.map(|c| c.version).into());
                }
                let body = Value::Object(body).to_string();
                let (status, reply) = w
                    .admin
                    .handle(AdminRequest {
                        tenant: Some(admin_tenant.clone()),
                        method: "PUT",
                        path: "/admin/instances/booking",
                        if_match: None,
                        body: body.as_bytes(),
                        query: &[],
                        request_id: "fuzz",
                    })
                    .await;
                tally.add(format!("put instance {status}"));
                prop_assert!(status < 500, "{status}: {reply}");
                Ok(())
            })
        },
    );
}

#[test]
fn fuzz_signature_headers() {
    let tally = Tally::default();
    let now = pinned_now();
    let header = prop_oneof![
        2 => header_value(),
        1 => (any::<u64>(), "[0-9a-f]{64}").prop_map(|(t, d)| format!("v={t},d={d}")),
        1 => (0i64..4_000_000_000_000, "[0-9a-fA-F]{0,66}").prop_map(|(t, d)| format!("v={t},d={d}")),
    ];
    let strategy = (
        prop::collection::vec(any::<u8>(), 1..40),
        prop::collection::vec(any::<u8>(), 0..200),
        header.clone(),
        prop::option::of(header_value()),
        prop::option::of(header_value()),
        prop::option::of(header_value()),
        prop::option::of(header_value()),
        any::<usize>(),
    );
    fuzz(
        "signature_headers",
        strategy,
        &tally,
        |(secret, body, retell, signature, timestamp, vapi_secret, authorization, flip)| {
            // Random headers never verify.
            prop_assert!(verify_retell(&secret, Some(&retell), &body, now).is_err());
            let headers = SignatureHeaders {
                retell_signature: None,
                authorization: authorization.as_deref(),
                vapi_secret: vapi_secret.as_deref(),
                signature: signature.as_deref(),
                timestamp: timestamp.as_deref(),
                twilio_signature: None,
            };
            let vapi = verify_vapi(&secret, &headers, &body, now);
            tally.add(if vapi.is_ok() {
                "vapi accepted"
            } else {
                "vapi refused"
            });
            // Only a presented secret equal to the real one could pass.
            if vapi.is_ok() {
                let s = String::from_utf8_lossy(&secret).into_owned();
                prop_assert!(
                    vapi_secret.as_deref() == Some(s.as_str())
                        || authorization
                            .as_deref()
                            .is_some_and(|a| a.ends_with(s.as_str()))
                );
            }
            // The right signature verifies; one changed hex digit does not.
            let good = sign_retell(&secret, &body, now);
            prop_assert!(verify_retell(&secret, Some(&good), &body, now).is_ok());
            let digits: Vec<usize> = good
                .match_indices(|c: char| c.is_ascii_hexdigit())
                .map(|(i, _)| i)
                .filter(|i| *i > good.find("d=").unwrap_or(0) + 1)
                .collect();
            let i = digits[flip % digits.len()];
            let mut bad = good.into_bytes();
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            let bad = String::from_utf8(bad).unwrap();
            prop_assert!(verify_retell(&secret, Some(&bad), &body, now).is_err());
            let (sig, ts) = sign_vapi(&secret, &body, now);
            let signed = SignatureHeaders {
                retell_signature: None,
                authorization: None,
                vapi_secret: None,
                signature: Some(&sig),
                timestamp: Some(&ts),
                twilio_signature: None,
            };
            prop_assert!(verify_vapi(&secret, &signed, &body, now).is_ok());
            Ok(())
        },
    );
}

#[test]
fn fuzz_twilio_signatures() {
    let tally = Tally::default();
    let strategy = (
        prop::collection::vec(any::<u8>(), 1..40),
        // Forms with repeated, empty and encoded keys, and bodies that are no form at all.
        prop_oneof![
            prop::collection::vec(("[A-Za-z%+=&]{0,6}", "[ -~]{0,12}"), 0..6).prop_map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.replace('&', "%26")))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes()
            }),
            prop::collection::vec(any::<u8>(), 0..120),
        ],
        prop_oneof![
            Just("https://api.example.com/channels/twilio/cn_1/sms".to_owned()),
            "https?://[a-z.:0-9\\[\\]]{0,20}/[a-z/?=&]{0,20}",
            "[ -~]{0,40}",
        ],
        prop::option::of(header_value()),
        any::<bool>(),
        any::<usize>(),
    );
    fuzz(
        "twilio_signatures",
        strategy,
        &tally,
        |(token, body, url, header, hashed, flip)| {
            let url = if hashed {
                use sha2::Digest;
                let hex: String = sha2::Sha256::digest(&body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!(
                    "{url}{}bodySHA256={hex}",
                    if url.contains('?') { '&' } else { '?' }
                )
            } else {
                url
            };
            // A random header never verifies, and nothing panics.
            let random = verify_twilio(&token, header.as_deref(), &url, &body);
            tally.add(if random.is_ok() {
                "random accepted"
            } else {
                "random refused"
            });
            prop_assert!(random.is_err());
            // The signature Twilio would send verifies; one changed character does not.
            let good = sign_twilio(&token, &url, &body);
            prop_assert!(
                verify_twilio(&token, Some(&good), &url, &body).is_ok(),
                "{url}"
            );
            let mut bad = good.clone().into_bytes();
            let i = flip % 26;
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).unwrap();
            prop_assert!(verify_twilio(&token, Some(&bad), &url, &body).is_err());
            tally.add("signed verified");
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// The differential check of the lowered schemas.

/// A value the lowered (strict) schema describes: every property present, nullable ones
/// sometimes null, enums and consts honoured, numbers inside their bounds most of the time.
fn from_lowered(schema: &Value, root: &Value, depth: usize) -> BoxedStrategy<Value> {
    if depth > 8 {
        return Just(Value::Null).boxed();
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .cloned()
            .unwrap_or(json!({}));
        return from_lowered(&target, root, depth + 1);
    }
    if let Some(Value::Array(branches)) = schema.get("anyOf") {
        let options: Vec<BoxedStrategy<Value>> = branches
            .iter()
            .map(|b| from_lowered(b, root, depth + 1))
            .collect();
        return prop::strategy::Union::new(options).boxed();
    }
    if let Some(c) = schema.get("const") {
        return Just(c.clone()).boxed();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return prop::sample::select(values.clone()).boxed();
    }
    let kinds: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec!["string".into(), "integer".into(), "null".into()],
    };
    let options: Vec<BoxedStrategy<Value>> = kinds
        .iter()
        .map(|k| match k.as_str() {
            "null" => Just(Value::Null).boxed(),
            "boolean" => any::<bool>().prop_map(Value::from).boxed(),
            "integer" | "number" => {
                let lo = schema.get("minimum").and_then(Value::as_i64).unwrap_or(-1000);
                let hi = schema.get("maximum").and_then(Value::as_i64).unwrap_or(lo.saturating_add(100_000));
                let hi = hi.max(lo);
                prop_oneof![4 => (lo..=hi).prop_map(Value::from), 1 => any::<i64>().prop_map(Value::from)].boxed()
            }
            "string" if schema.get("pattern").is_some() => {
                let pattern = schema["pattern"].as_str().unwrap_or_default();
                match proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$')) {
                    Ok(p) => prop_oneof![4 => p.prop_map(Value::from), 1 => ".{0,12}".prop_map(Value::from)].boxed(),
                    Err(_) => ".{0,12}".prop_map(Value::from).boxed(),
                }
            }
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("date") => prop::sample::select(vec!["2027-06-01", "2026-02-28", "2027-02-30"]).prop_map(Value::from).boxed(),
                Some("date-time") => prop::sample::select(vec!["2027-06-01T10:00:00Z", "2027-06-01T10:00:00+02:00", "2027-06-01 10:00"]).prop_map(Value::from).boxed(),
                Some("time") => prop::sample::select(vec!["10:00:00Z", "25:00:00Z"]).prop_map(Value::from).boxed(),
                Some("email") => prop::sample::select(vec!["jordan@example.com", "not-an-email", "a@b"]).prop_map(Value::from).boxed(),
                Some("uuid") => prop::sample::select(vec!["3f2504e0-4f89-11d3-9a0c-0305e82c3301", "nope"]).prop_map(Value::from).boxed(),
                _ => prop_oneof![".{0,12}".prop_map(Value::from), prop::sample::select(TOKENS).prop_map(Value::from), "[0-9 +()-]{0,16}".prop_map(Value::from)].boxed(),
            },
            "array" => {
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
                let max = schema.get("maxItems").and_then(Value::as_u64).map_or(min + 4, |m| m as usize).max(min);
                prop::collection::vec(from_lowered(&items, root, depth + 1), min..=max.min(min + 6)).prop_map(Value::Array).boxed()
            }
            "object" => {
                let props: Vec<(String, Value)> = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let fields: Vec<BoxedStrategy<(String, Value)>> = props
                    .into_iter()
                    .map(|(k, s)| from_lowered(&s, root, depth + 1).prop_map(move |v| (k.clone(), v)).boxed())
                    .collect();
                fields.prop_map(|f| Value::Object(f.into_iter().collect())).boxed()
            }
            _ => Just(Value::Null).boxed(),
        })
        .collect();
    prop::strategy::Union::new(options).boxed()
}

/// `schema` without the constraints the lowering moves into descriptions (the server
/// checks them on its own): what a lowered schema's instance must still satisfy.
fn relaxed(schema: &Value) -> Value {
    const SCHEMA_MAPS: [&str; 4] = ["properties", "$defs", "definitions", "patternProperties"];
    const SCHEMA_LISTS: [&str; 4] = ["anyOf", "allOf", "oneOf", "prefixItems"];
    const SCHEMA_ONE: [&str; 4] = ["items", "additionalProperties", "not", "contains"];
    let Value::Object(m) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let server_format = k == "format"
            && v.as_str()
                .is_some_and(|f| switchboard::agent::dialects::SERVER_FORMATS.contains(&f));
        if switchboard::agent::dialects::RELAXED.contains(&k.as_str()) || server_format {
            continue;
        }
        let v = if SCHEMA_MAPS.contains(&k.as_str()) {
            match v {
                Value::Object(props) => {
                    Value::Object(props.iter().map(|(n, s)| (n.clone(), relaxed(s))).collect())
                }
                other => other.clone(),
            }
        } else if SCHEMA_LISTS.contains(&k.as_str()) {
            match v {
                Value::Array(list) => Value::Array(list.iter().map(relaxed).collect()),
                other => other.clone(),
            }
        } else if SCHEMA_ONE.contains(&k.as_str()) {
            relaxed(v)
        } else {
            v.clone()
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

#[test]
fn fuzz_lowered_schemas_accept_nothing_the_server_refuses() {
    let plugins = [
        booking::plugin().unwrap(),
        crm::plugin().unwrap(),
        support::plugin().unwrap(),
    ];
    let mut cases_by_function = Vec::new();
    for plugin in &plugins {
        for (name, params) in functions(plugin) {
            let Ok(lowered) = lower_strict(&params) else {
                continue;
            };
            cases_by_function.push((plugin, name, params, lowered));
        }
    }
    assert!(
        cases_by_function.len() >= 20,
        "{} functions lower",
        cases_by_function.len()
    );
    let tally = Tally::default();
    // Compiled as the server compiles schemas (formats checked).
    let validators: Vec<_> = cases_by_function
        .iter()
        .map(|(_, _, params, lowered)| {
            (
                compile(lowered).unwrap(),
                compile(&relaxed(params)).unwrap(),
            )
        })
        .collect();
    let strategy = (0..cases_by_function.len()).prop_flat_map(|i| {
        let lowered = cases_by_function[i].3.clone();
        (Just(i), from_lowered(&lowered, &lowered, 0))
    });
    fuzz("lowered_schemas", strategy, &tally, |(i, instance)| {
        let (plugin, name, params, _) = &cases_by_function[i];
        let (lowered, relaxed) = &validators[i];
        if !lowered.is_valid(&instance) {
            tally.add("outside the lowered schema");
            return Ok(());
        }
        tally.add("accepted by the lowered schema");
        match plugin.prepare(name, instance.clone()) {
            Ok(_) => tally.add("accepted by the server"),
            Err(e) => {
                // Only what the lowering relaxed (and the server checks) may refuse it.
                prop_assert_eq!(e.status(), 422, "{}: {:?}", name, e);
                let mut stripped = instance.clone();
                strip_strict_nulls(params, &mut stripped);
                prop_assert!(
                    relaxed.is_valid(&stripped),
                    "{}: the lowered schema accepts {} but the server refuses it for a constraint the lowering kept: {:?}",
                    name,
                    instance,
                    e
                );
                tally.add("refused for a relaxed constraint");
            }
        }
        Ok(())
    });
    let seen = tally.0.lock().unwrap();
    let accepted = seen
        .get("accepted by the lowered schema")
        .copied()
        .unwrap_or(0);
    assert!(
        accepted * 4 >= u64::from(cases()),
        "only {accepted} of {} cases inside the lowered schemas: {seen:?}",
        cases()
    );
}
