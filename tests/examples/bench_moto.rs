//! The DynamoDB side of `scripts/bench` (not a test): seeds moto and measures, in-process,
//! what needs the SDK's request counter. Prints one JSON document on stdout.
//!
//! - `seed <dir>`: publishes the manifests and seeds the demo tenant (`infra/seed/demo.json`)
//!   into the tables on `AWS_ENDPOINT_URL`; prints `{"org", "api_key"}` (the key is kept in
//!   `<dir>`).
//! - `agent-build`: agent builds for 1, 10, 20 and 50 plugins against moto: cold builds (a new
//!   builder, so an empty cache) with the DynamoDB operations each one sent, and warm builds
//!   from the cache.
//! - `overhead <n>`: the platform overhead of one warm call per call (the criterion bench
//!   `pipeline/warm_call_overhead` gives means per sample; this gives the per-call
//!   distribution): the booking manifest's CreateAppointment through the pipeline on the
//!   in-memory embedded store, served by a handler that does no I/O.
//! - `warm-calls <n>`: the booking plugin's pipeline in-process against moto, `GetProviders`
//!   `n` times after a first call, counting registry and data-table requests separately.
//! - `idempotency <n>`: what the idempotency layer adds to a write call: support's
//!   `CreateTicket` in-process against moto, `n` calls without a key and `n` with a new
//!   `Idempotency-Key` each, interleaved, then `n` repeats of one keyed call (replays), for
//!   an organization of its own.
//! - `audit <n>`: what the audit log adds to a warm call: booking's `GetProviders`
//!   in-process against moto without and with the audit log, interleaved, `n` each, and the
//!   data-table requests of the audited calls (the entry is one conditional `PutItem`).
//! - `ratelimit <n>`: what the per-organization rate limit adds to a warm call (booking's
//!   `GetProviders` against moto without a limiter, with the default lease of 10 tokens and
//!   with none, interleaved, `n` each, and the bucket's requests per call), and the noisy
//!   neighbour: the demo organization calls `n` times at 50 calls a second alone, then again
//!   while another organization calls the same two containers at its limit of 20 a second,
//!   then while it floods them at 1,000 a second; the calm organization's p99 in each against
//!   its own baseline, how busy moto (`MOTO_PID`) and this process were, and every other
//!   call's status (`BENCH_CALM_PER_SECOND`, `BENCH_FLOOD_LIMIT` and
//!   `BENCH_FLOOD_PER_SECOND` change the 50, the 20 and the 1,000).
//! - `mcp <n>`: the MCP server against the direct routes, warm, on the in-memory embedded
//!   store with the demo seeded (no I/O wait, so the differences are the layers'). Every
//!   request is an API Gateway event parsed by lambda_http into the function's handler:
//!   booking's `SearchPatients` on `POST /plugins/booking`, and as MCP `tools/call` on
//!   `POST /mcp/twilio` with the in-process invoker (`dev`'s) and with the AWS SDK's Lambda
//!   client invoking the booking function behind a loopback Invoke API (the hop); `tools/list`
//!   against `GET /agents/twilio?format=mcp`. Interleaved, each lap starting with another, `n`
//!   each.
//!
//! - `history <moto|sqlite|postgres> [calls]`: booking's day lookups as the tenant's history
//!   grows (0 to 100,000 appointments); see `bench_moto/history.rs`.
//!
//! Run by `scripts/bench` as `cargo run --release -p switchboard-tests --example bench_moto`.

#[path = "bench_moto/history.rs"]
mod history;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::agent::builder::AgentBuilder;
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::manifest::{CompiledManifest, Manifest};
use switchboard::pipeline::{CallInput, Platform, PluginService};
use switchboard::ratelimit::RateLimiter;
use switchboard::registry::{Assignment, ChannelConfig, OrgProfile, PluginInstance, Registry};
use switchboard::{Channel, OrgId};
use switchboard_aws::dynamodb::DynamoStore;
use switchboard_tests::{RequestCounter, dynamodb_client};

type BoxError = Box<dyn std::error::Error>;

const REGISTRY_TABLE: &str = "switchboard-registry";
const DATA_TABLE: &str = "switchboard-data";
const SIZES: [usize; 4] = [1, 10, 20, 50];
const COLD_BUILDS: usize = 20;
const WARM_BUILDS: usize = 1000;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Logs to stderr, warnings only: stdout is the JSON result the bench reads.
    switchboard::telemetry::init(&switchboard::settings::LogSettings {
        json: false,
        level: "warn".into(),
    });
    let endpoint = || {
        std::env::var("AWS_ENDPOINT_URL")
            .map_err(|_| "AWS_ENDPOINT_URL must point at moto (scripts/bench sets it)")
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |default: usize| -> Result<usize, BoxError> {
        Ok(match args.get(1) {
            Some(n) => n.parse()?,
            None => default,
        })
    };
    let out = match args.first().map(String::as_str) {
        Some("seed") => {
            let dir = args.get(1).ok_or("usage: bench_moto seed <dir>")?;
            seed(&endpoint()?, std::path::Path::new(dir)).await?
        }
        Some("agent-build") => agent_build(&endpoint()?).await?,
        Some("warm-calls") => warm_calls(&endpoint()?, count(1000)?).await?,
        Some("overhead") => overhead(count(100_000)?).await?,
        Some("idempotency") => idempotency(&endpoint()?, count(1000)?).await?,
        Some("audit") => audit(&endpoint()?, count(1000)?).await?,
        Some("ratelimit") => ratelimit(&endpoint()?, count(1000)?).await?,
        Some("mcp") => mcp(count(1000)?).await?,
        Some("history") => {
            let store = args
                .get(1)
                .ok_or("usage: bench_moto history <moto|sqlite|postgres> [calls]")?;
            let calls = match args.get(2) {
                Some(n) => n.parse()?,
                None => 200,
            };
            history::run(store, calls).await?
        }
        _ => {
            return Err(
                "usage: bench_moto seed <dir> | agent-build | warm-calls [n] | overhead [n] | idempotency [n] | audit [n] | ratelimit [n] | mcp [n] | history <store> [calls]"
                    .into(),
            );
        }
    };
    println!("{out}");
    Ok(())
}

/// A client for moto whose every request is recorded by the returned counter.
async fn counted_client(endpoint: &str) -> (aws_sdk_dynamodb::Client, RequestCounter) {
    let client = dynamodb_client(endpoint).await;
    let counter = RequestCounter::default();
    let conf = client
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(conf), counter)
}

async fn seed(endpoint: &str, dir: &std::path::Path) -> Result<Value, BoxError> {
    std::fs::create_dir_all(dir)?;
    let client = dynamodb_client(endpoint).await;
    let registry = Registry::new(Arc::new(DynamoStore::new(client.clone(), REGISTRY_TABLE)));
    let data = BuiltinData::new(Arc::new(DynamoStore::new(client, DATA_TABLE)));
    let plugins = switchboard_cli::dev::plugins()?;
    let key = switchboard_cli::seed::ensure_demo(&registry, &data, &plugins, dir, None).await?;
    let org = switchboard_cli::seed::demo_org(None)?;
    Ok(json!({"org": org.as_str(), "api_key": key}))
}

fn bench_manifest(tag: &str, i: usize) -> Result<Manifest, BoxError> {
    let params = json!({"type": "object", "additionalProperties": false, "required": ["id"],
        "properties": {"id": {"type": "integer", "minimum": 1}, "note": {"type": "string", "maxLength": 500},
                       "when": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}}});
    let m = json!({"name": format!("{tag}p{i}"), "version": "1.0.0", "display_name": format!("Plugin {i}"),
        "description": "bench", "default_config": {"tone": "warm"},
        "instruction_template": "You help {{ org.display_name }} callers on {{ channel }} with plugin {i}, in a {{ config.tone }} tone.",
        "functions": [
            {"name": format!("Get{i}"), "description": "Get one", "side_effects": false, "parameters": params},
            {"name": format!("Create{i}"), "description": "Create one", "side_effects": true, "parameters": params},
            {"name": format!("Cancel{i}"), "description": "Cancel one", "side_effects": true, "parameters": params}]});
    Ok(CompiledManifest::from_value(m)?.manifest().clone())
}

/// An org with `n` plugins published, enabled and assigned to `twilio`.
async fn org_with(registry: &Registry, n: usize) -> Result<OrgId, BoxError> {
    let tag = format!("bench{n}");
    let org = OrgId::parse(format!("bench-agents-{n}"))?;
    let profile = OrgProfile {
        display_name: "Bench Dental".into(),
        ..Default::default()
    };
    if registry.get_profile(&org).await?.is_none() {
        registry.put_profile(&org, &profile, None).await?;
    }
    let mut assignments = Vec::new();
    for i in 0..n {
        let m = bench_manifest(&tag, i)?;
        registry.publish_manifest(&m).await?;
        let inst = PluginInstance {
            plugin: m.name.clone(),
            enabled: true,
            pinned_version: m.version.clone(),
            config: json!({}),
            data_adapter: Default::default(),
        };
        if registry.get_instance(&org, &m.name).await?.is_none() {
            registry.put_instance(&org, &inst, None).await?;
        }
        assignments.push(Assignment {
            plugin: m.name.clone(),
            enabled: true,
            priority: i as i64,
            data_adapter: None,
        });
    }
    let twilio = Channel::parse("twilio")?;
    if registry.get_channel(&org, &twilio).await?.is_none() {
        let chan = ChannelConfig {
            locale: None,
            instructions: None,
            plugin_assignments: assignments,
        };
        registry.put_channel(&org, &twilio, &chan, None).await?;
    }
    Ok(org)
}

async fn agent_build(endpoint: &str) -> Result<Value, BoxError> {
    let (client, counter) = counted_client(endpoint).await;
    let registry = Registry::new(Arc::new(DynamoStore::new(client, REGISTRY_TABLE)));
    let twilio = Channel::parse("twilio")?;
    let mut results = Vec::new();
    for n in SIZES {
        let org = org_with(&registry, n).await?;
        let mut cold = Vec::new();
        let mut cold_ops = Vec::new();
        for _ in 0..COLD_BUILDS {
            let builder = AgentBuilder::new(registry.clone(), Duration::from_secs(3600));
            counter.reset();
            let t = Instant::now();
            let agent = builder.build(&org, &twilio).await?;
            cold.push(t.elapsed());
            if agent.tools.len() != n * 3 {
                return Err(format!("{n} plugins built {} tools", agent.tools.len()).into());
            }
            cold_ops.push(counter.operations());
        }
        let builder = AgentBuilder::new(registry.clone(), Duration::from_secs(3600));
        builder.build(&org, &twilio).await?;
        counter.reset();
        let mut warm = Vec::new();
        for _ in 0..WARM_BUILDS {
            let t = Instant::now();
            let agent = builder.build(&org, &twilio).await?;
            warm.push(t.elapsed());
            std::hint::black_box(agent);
        }
        let warm_ops = counter.operations().len();
        let mut ops = cold_ops.first().cloned().unwrap_or_default();
        ops.sort();
        let max_rt = cold_ops.iter().map(Vec::len).max().unwrap_or(0);
        let min_rt = cold_ops.iter().map(Vec::len).min().unwrap_or(0);
        results.push(json!({
            "plugins": n,
            "tools": n * 3,
            "cold": stats(&mut cold),
            "cold_round_trips": {"min": min_rt, "max": max_rt, "operations": ops},
            "warm": stats(&mut warm),
            "warm_round_trips_total": warm_ops,
            "warm_builds": WARM_BUILDS,
        }));
    }
    Ok(json!({"cold_builds_per_size": COLD_BUILDS, "sizes": results}))
}

/// The pipeline's platform on moto, as a plugin function builds it but without the audit
/// log (measured on its own), with a request counter on each table's client.
async fn counted_platform(endpoint: &str) -> (Arc<Platform>, RequestCounter, RequestCounter) {
    let (platform, reg, data) = counted_platform_with(endpoint, false).await;
    (Arc::new(platform), reg, data)
}

async fn counted_platform_with(
    endpoint: &str,
    audit: bool,
) -> (Platform, RequestCounter, RequestCounter) {
    let (reg_client, reg_counter) = counted_client(endpoint).await;
    let (data_client, data_counter) = counted_client(endpoint).await;
    let registry = Registry::new(Arc::new(DynamoStore::new(reg_client, REGISTRY_TABLE)));
    let data = Arc::new(BuiltinData::new(Arc::new(DynamoStore::new(
        data_client,
        DATA_TABLE,
    ))));
    let ttl = switchboard_tests::settings().cache_ttl;
    let table = data.table();
    let mut platform = Platform::new(registry, data, table.clone(), ttl);
    if audit {
        platform = platform.with_audit(Arc::new(switchboard::audit::AuditLog::new(table)));
    }
    (platform, reg_counter, data_counter)
}

/// What writing the audit entry adds to a warm call: booking's `GetProviders` in-process
/// against moto, on a platform without and one with the audit log, interleaved, `n` each.
async fn audit(endpoint: &str, n: usize) -> Result<Value, BoxError> {
    let (plain, _, _) = counted_platform_with(endpoint, false).await;
    let (audited, _, data_counter) = counted_platform_with(endpoint, true).await;
    let audited = Arc::new(audited);
    let log = audited.audit().cloned().ok_or("no audit log")?;
    let plain = PluginService::new(booking::plugin()?, Arc::new(plain));
    let with_log = PluginService::new(booking::plugin()?, audited);
    let org = switchboard_cli::seed::demo_org(None)?;
    let tenant = TenantContext::new(org).with_scopes(&["plugins:call"]);
    let body = br#"{"function": "GetProviders", "parameters": {}, "sessionId": "bench"}"#;
    let mut without = Vec::with_capacity(n);
    let mut with = Vec::with_capacity(n);
    for (i, svc) in [&plain, &with_log].into_iter().enumerate() {
        let (status, reply) = svc
            .call(CallInput {
                tenant: Some(tenant.clone()),
                body,
                request_id: &format!("bench-audit-warmup-{i}"),
                idempotency_key: None,
            })
            .await;
        if status != 200 {
            return Err(format!("first GetProviders: {status} {reply}").into());
        }
    }
    data_counter.reset();
    for i in 0..n {
        for (svc, out) in [(&plain, &mut without), (&with_log, &mut with)] {
            let rid = format!("bench-audit-{}-{i}", std::process::id());
            let t = Instant::now();
            let (status, reply) = svc
                .call(CallInput {
                    tenant: Some(tenant.clone()),
                    body,
                    request_id: &rid,
                    idempotency_key: None,
                })
                .await;
            out.push(t.elapsed());
            if status != 200 {
                return Err(format!("warm GetProviders: {status} {reply}").into());
            }
        }
    }
    let data_ops = data_counter.operations();
    let (without, with) = (stats(&mut without), stats(&mut with));
    let delta = |k: &str| with[k].as_f64().unwrap_or(0.0) - without[k].as_f64().unwrap_or(0.0);
    Ok(json!({
        "function": "booking GetProviders",
        "calls": n,
        "without_audit": without,
        "with_audit": with,
        "added_p50_us": delta("p50_us"),
        "added_p99_us": delta("p99_us"),
        "audited_data_round_trips_per_call": data_ops.len() as f64 / n as f64,
        "audited_data_operations": dedup(data_ops),
        "entries_not_stored": log.failures(),
    }))
}

/// A container on moto as a plugin function builds it, with its own limiter (`allowance`
/// tokens leased at most) when `limiter` is set, and the audit log when `audit` is.
async fn limited_platform(
    endpoint: &str,
    limiter: Option<(u32, u32)>,
    audit: bool,
) -> (Arc<Platform>, Option<Arc<RateLimiter>>) {
    let (mut platform, _, _) = counted_platform_with(endpoint, audit).await;
    let mut made = None;
    if let Some((default_limit, allowance)) = limiter {
        let table = Arc::new(DynamoStore::new(
            dynamodb_client(endpoint).await,
            DATA_TABLE,
        ));
        let limiter = Arc::new(RateLimiter::new(table, default_limit, allowance));
        platform = platform.with_rate_limits(limiter.clone());
        made = Some(limiter);
    }
    (Arc::new(platform), made)
}

/// How busy moto's process (when its pid is known) and this one were over a span: CPU
/// time over wall time, 1.0 being one core.
struct Busy {
    moto: Option<u32>,
    started: Instant,
    moto_ticks: Option<u64>,
    own_ticks: Option<u64>,
}

impl Busy {
    fn start(moto: Option<u32>) -> Self {
        Self {
            moto,
            started: Instant::now(),
            moto_ticks: moto.and_then(|p| cpu_ticks(&p.to_string())),
            own_ticks: cpu_ticks("self"),
        }
    }

    fn end(self) -> Value {
        let secs = self.started.elapsed().as_secs_f64();
        // USER_HZ: 100 on every Linux this runs on.
        let share = |before: Option<u64>, now: Option<u64>| match (before, now) {
            (Some(b), Some(n)) => json!((n.saturating_sub(b)) as f64 / 100.0 / secs),
            _ => Value::Null,
        };
        json!({
            "moto": share(self.moto_ticks, self.moto.and_then(|p| cpu_ticks(&p.to_string()))),
            "bench": share(self.own_ticks, cpu_ticks("self")),
        })
    }
}

/// User and system CPU ticks of a process, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(field(11)? + field(12)?)
}

/// One warm `GetProviders` by `org`; its status and how long it took.
async fn providers(svc: &PluginService, org: &OrgId, rid: String) -> (u16, Duration) {
    let tenant = TenantContext::new(org.clone()).with_scopes(&["plugins:call"]);
    let body = br#"{"function": "GetProviders", "parameters": {}, "sessionId": "bench"}"#;
    let t = Instant::now();
    let (status, _) = svc
        .call(CallInput {
            tenant: Some(tenant),
            body,
            request_id: &rid,
            idempotency_key: None,
        })
        .await;
    (status, t.elapsed())
}

/// What the rate limit costs a warm call, and what a flooding organization costs another.
async fn ratelimit(endpoint: &str, n: usize) -> Result<Value, BoxError> {
    const ALLOWANCE: u32 = switchboard::ratelimit::DEFAULT_ALLOWANCE;
    // The flood's limit and offered rate can be varied (BENCH_FLOOD_LIMIT,
    // BENCH_FLOOD_PER_SECOND) to tell its admitted calls' load from its refused ones'.
    let knob = |name: &str, default: u64| -> Result<u64, BoxError> {
        Ok(match std::env::var(name) {
            Ok(v) => v.parse()?,
            Err(_) => default,
        })
    };
    let flood_limit = u32::try_from(knob("BENCH_FLOOD_LIMIT", 20)?)?;
    let flood_per_second = knob("BENCH_FLOOD_PER_SECOND", 1000)?.max(1);
    let calm_per_second = knob("BENCH_CALM_PER_SECOND", 50)?.max(1);
    let moto = std::env::var("MOTO_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    let org = switchboard_cli::seed::demo_org(None)?;
    let max = switchboard::ratelimit::MAX_PER_SECOND;

    // 1. Added latency: no limiter, leases of ALLOWANCE, a write per call. The limit is out
    // of reach, so every call is admitted and only the counting is measured.
    let (plain, _) = limited_platform(endpoint, None, false).await;
    let (leased, leased_limiter) = limited_platform(endpoint, Some((max, ALLOWANCE)), false).await;
    let (each, each_limiter) = limited_platform(endpoint, Some((max, 0)), false).await;
    let services: Vec<PluginService> = [plain, leased, each]
        .into_iter()
        .map(|p| Ok(PluginService::new(booking::plugin()?, p)))
        .collect::<Result<_, BoxError>>()?;
    for (i, svc) in services.iter().enumerate() {
        let (status, _) = providers(svc, &org, format!("bench-rate-warmup-{i}")).await;
        if status != 200 {
            return Err(format!("first GetProviders answered {status}").into());
        }
    }
    let (leased_limiter, each_limiter) = (
        leased_limiter.ok_or("no limiter")?,
        each_limiter.ok_or("no limiter")?,
    );
    let writes_before = (leased_limiter.round_trips(), each_limiter.round_trips());
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..n {
        for (svc, out) in services.iter().zip(samples.iter_mut()) {
            let (status, took) = providers(svc, &org, format!("bench-rate-{i}")).await;
            if status != 200 {
                return Err(format!("warm GetProviders answered {status}").into());
            }
            out.push(took);
        }
    }
    let [mut without, mut with_lease, mut with_each] = samples;
    let (without, with_lease, with_each) = (
        stats(&mut without),
        stats(&mut with_lease),
        stats(&mut with_each),
    );
    let delta =
        |a: &Value, k: &str| a[k].as_f64().unwrap_or(0.0) - without[k].as_f64().unwrap_or(0.0);
    let per_call = |now: u64, before: u64| (now - before) as f64 / n as f64;

    // 2. The noisy neighbour, on two containers with the audit log, as deployed.
    let plugins = switchboard_cli::dev::plugins()?;
    let client = dynamodb_client(endpoint).await;
    let registry = Registry::new(Arc::new(DynamoStore::new(client.clone(), REGISTRY_TABLE)));
    let data = BuiltinData::new(Arc::new(DynamoStore::new(client, DATA_TABLE)));
    let dir = std::env::temp_dir().join(format!("sb-bench-flood-{}", std::process::id()));
    switchboard_cli::seed::ensure_demo(&registry, &data, &plugins, &dir, Some("flood")).await?;
    std::fs::remove_dir_all(&dir)?;
    let flood = switchboard_cli::seed::demo_org(Some("flood"))?;
    let current = registry
        .get_profile(&flood)
        .await?
        .ok_or("the flood org has no profile")?;
    let mut profile = current.value;
    profile.rate_limit_per_second = Some(flood_limit);
    registry
        .put_profile(&flood, &profile, Some(current.version))
        .await?;
    let mut containers = Vec::new();
    let mut limiters = Vec::new();
    for _ in 0..2 {
        let (platform, limiter) = limited_platform(
            endpoint,
            Some((switchboard::ratelimit::DEFAULT_PER_SECOND, ALLOWANCE)),
            true,
        )
        .await;
        containers.push(Arc::new(PluginService::new(booking::plugin()?, platform)));
        limiters.extend(limiter);
    }
    for (i, svc) in containers.iter().enumerate() {
        for who in [&org, &flood] {
            let (status, _) = providers(svc, who, format!("bench-flood-warmup-{i}")).await;
            if status != 200 {
                return Err(format!("first GetProviders of {who} answered {status}").into());
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calm_run = |label: &'static str| {
        let containers = containers.clone();
        let org = org.clone();
        async move {
            let mut tick =
                tokio::time::interval(Duration::from_micros(1_000_000 / calm_per_second));
            let mut out = Vec::with_capacity(n);
            let mut refused = 0usize;
            for i in 0..n {
                tick.tick().await;
                let (status, took) =
                    providers(&containers[i % 2], &org, format!("bench-{label}-{i}")).await;
                if status != 200 {
                    refused += 1;
                }
                out.push(took);
            }
            (out, refused)
        }
    };
    // The other organization at `rate` calls a second while the calm one runs: its calls'
    // statuses and how long the calm run took.
    let beside = |rate: u64, label: &'static str| {
        let containers = containers.clone();
        let flood = flood.clone();
        let calm = calm_run(label);
        async move {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flooder = {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
                    let mut calls = Vec::new();
                    let mut i = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        tick.tick().await;
                        let svc = containers[i % 2].clone();
                        let flood = flood.clone();
                        calls.push(tokio::spawn(async move {
                            providers(&svc, &flood, format!("bench-{label}-{i}"))
                                .await
                                .0
                        }));
                        i += 1;
                    }
                    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                    for c in calls {
                        *statuses.entry(c.await.unwrap_or(0)).or_default() += 1;
                    }
                    statuses
                })
            };
            let started = Instant::now();
            let (samples, refused) = calm.await;
            let secs = started.elapsed().as_secs_f64();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let statuses = flooder.await.unwrap_or_default();
            (samples, refused, statuses, secs)
        }
    };
    let busy = Busy::start(moto);
    let (mut alone, alone_refused) = calm_run("alone").await;
    let alone_busy = busy.end();
    let busy = Busy::start(moto);
    let (mut at_limit, at_limit_refused, at_limit_statuses, _) =
        beside(u64::from(flood_limit), "at-limit").await;
    let at_limit_busy = busy.end();
    let busy = Busy::start(moto);
    let (mut flooded, flooded_refused, statuses, flood_secs) =
        beside(flood_per_second, "flooded").await;
    let flooded_busy = busy.end();
    let (alone, at_limit, flooded) = (stats(&mut alone), stats(&mut at_limit), stats(&mut flooded));
    let ratio =
        |a: &Value, b: &Value, k: &str| a[k].as_f64().unwrap_or(0.0) / b[k].as_f64().unwrap_or(1.0);
    let flood_calls: usize = statuses.values().sum();
    let admitted = statuses.get(&200).copied().unwrap_or(0);
    let other: usize = statuses
        .iter()
        .chain(at_limit_statuses.iter())
        .filter(|(s, _)| **s != 200 && **s != 429)
        .map(|(_, n)| n)
        .sum();
    Ok(json!({
        "function": "booking GetProviders",
        "calls": n,
        "allowance": ALLOWANCE,
        "without_limit": without,
        "with_lease": with_lease,
        "with_write_per_call": with_each,
        "lease_added_p50_us": delta(&with_lease, "p50_us"),
        "lease_added_p99_us": delta(&with_lease, "p99_us"),
        "write_added_p50_us": delta(&with_each, "p50_us"),
        "write_added_p99_us": delta(&with_each, "p99_us"),
        "lease_requests_per_call": per_call(leased_limiter.round_trips(), writes_before.0),
        "write_per_call_requests_per_call": per_call(each_limiter.round_trips(), writes_before.1),
        "neighbour": {
            "calm_calls_per_second": calm_per_second,
            "busy": {"alone": alone_busy, "beside_org_at_its_limit": at_limit_busy,
                     "flooded": flooded_busy},
            "flood_offered_per_second": flood_per_second,
            "flood_limit_per_second": flood_limit,
            "containers": 2,
            "alone": alone,
            "beside_org_at_its_limit": at_limit,
            "flooded": flooded,
            "calm_refused": alone_refused + at_limit_refused + flooded_refused,
            "p50_ratio": ratio(&flooded, &alone, "p50_us"),
            "p99_ratio": ratio(&flooded, &alone, "p99_us"),
            "at_limit_p99_ratio": ratio(&at_limit, &alone, "p99_us"),
            "excess_p99_ratio": ratio(&flooded, &at_limit, "p99_us"),
            "flood_seconds": flood_secs,
            "flood_calls": flood_calls,
            "flood_admitted": admitted,
            "flood_admitted_per_second": admitted as f64 / flood_secs,
            "flood_429": statuses.get(&429).copied().unwrap_or(0),
            "flood_other": other,
            "bucket_requests": limiters.iter().map(|l| l.round_trips()).sum::<u64>(),
            "bucket_failures": limiters.iter().map(|l| l.failures()).sum::<u64>(),
        },
    }))
}

async fn warm_calls(endpoint: &str, n: usize) -> Result<Value, BoxError> {
    let (platform, reg_counter, data_counter) = counted_platform(endpoint).await;
    let service = PluginService::new(booking::plugin()?, platform);
    let org = switchboard_cli::seed::demo_org(None)?;
    let tenant = TenantContext::new(org).with_scopes(&["plugins:call"]);
    let body = br#"{"function": "GetProviders", "parameters": {}, "sessionId": "bench"}"#;
    let call = || {
        service.call(CallInput {
            tenant: Some(tenant.clone()),
            body,
            request_id: "bench",
            idempotency_key: None,
        })
    };
    let (status, reply) = call().await;
    if status != 200 {
        return Err(format!("first GetProviders: {status} {reply}").into());
    }
    let first_registry = reg_counter.operations();
    let first_data = data_counter.operations();
    reg_counter.reset();
    data_counter.reset();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, reply) = call().await;
        times.push(t.elapsed());
        if status != 200 {
            return Err(format!("warm GetProviders: {status} {reply}").into());
        }
    }
    let reg_ops = reg_counter.operations();
    let data_ops = data_counter.operations();
    Ok(json!({
        "function": "booking GetProviders",
        "calls": n,
        "cache_ttl_secs": switchboard_tests::settings().cache_ttl.as_secs(),
        "first_call": {"registry_operations": first_registry, "data_operations": first_data},
        "warm_registry_round_trips": reg_ops.len(),
        "warm_registry_round_trips_per_call": reg_ops.len() as f64 / n as f64,
        "warm_data_round_trips_per_call": data_ops.len() as f64 / n as f64,
        "warm_data_operations": dedup(data_ops),
        "latency": stats(&mut times),
    }))
}

async fn idempotency(endpoint: &str, n: usize) -> Result<Value, BoxError> {
    let (platform, _, data_counter) = counted_platform(endpoint).await;
    let plugin = switchboard_cli::dev::plugins()?
        .into_iter()
        .find(|p| p.name().as_str() == "support")
        .ok_or("no support plugin")?;
    // An org of its own: the thousands of tickets this makes must not slow the demo
    // tenant's ListTickets, which the warm-call measurements read.
    let org = OrgId::parse(format!("bench-idem-{}", std::process::id()))?;
    let instance = PluginInstance {
        plugin: plugin.name().clone(),
        enabled: true,
        pinned_version: plugin.manifest().manifest().version.clone(),
        config: json!({}),
        data_adapter: Default::default(),
    };
    platform
        .registry
        .put_instance(&org, &instance, None)
        .await?;
    let service = PluginService::new(plugin, platform);
    let tenant = TenantContext::new(org).with_scopes(&["plugins:call"]);
    let body = |i: usize| {
        json!({"function": "CreateTicket", "parameters": {"subject": format!("Bench ticket {i}"),
            "description": "Created by scripts/bench.", "contact": {"name": "Bench", "phone": "555-010-2000"}}})
        .to_string()
    };
    let call = |body: String, key: Option<String>| {
        let service = &service;
        let tenant = tenant.clone();
        async move {
            let t = Instant::now();
            let out = service
                .respond(CallInput {
                    tenant: Some(tenant),
                    body: body.as_bytes(),
                    request_id: "bench",
                    idempotency_key: key.as_deref(),
                })
                .await;
            (t.elapsed(), out)
        }
    };
    // A first call fills the instance cache.
    let (_, first) = call(body(0), None).await;
    if first.status != 200 {
        return Err(format!("first CreateTicket: {} {}", first.status, first.body).into());
    }
    let (mut plain, mut keyed, mut replayed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plain_ops, mut keyed_ops) = (0, 0);
    for i in 0..n {
        data_counter.reset();
        let (t, out) = call(body(2 * i + 1), None).await;
        plain_ops += data_counter.operations().len();
        if out.status != 200 || out.replayed {
            return Err(format!("CreateTicket: {} {}", out.status, out.body).into());
        }
        plain.push(t);
        data_counter.reset();
        let (t, out) = call(
            body(2 * i + 2),
            Some(format!("bench-{i}-{}", std::process::id())),
        )
        .await;
        keyed_ops += data_counter.operations().len();
        if out.status != 200 || out.replayed {
            return Err(format!("keyed CreateTicket: {} {}", out.status, out.body).into());
        }
        keyed.push(t);
    }
    let key = format!("bench-replay-{}", std::process::id());
    let (_, out) = call(body(0), Some(key.clone())).await;
    if out.status != 200 {
        return Err(format!("CreateTicket to replay: {} {}", out.status, out.body).into());
    }
    data_counter.reset();
    for _ in 0..n {
        let (t, out) = call(body(0), Some(key.clone())).await;
        if out.status != 200 || !out.replayed {
            return Err(format!("replay: {} {}", out.status, out.body).into());
        }
        replayed.push(t);
    }
    let replay_ops = data_counter.operations().len();
    Ok(json!({
        "function": "support CreateTicket",
        "calls": n,
        "without_key": stats(&mut plain),
        "with_key": stats(&mut keyed),
        "replayed": stats(&mut replayed),
        "data_requests_per_call": {
            "without_key": plain_ops as f64 / n as f64,
            "with_key": keyed_ops as f64 / n as f64,
            "replayed": replay_ops as f64 / n as f64,
        },
    }))
}

/// A handler that does no I/O: what is left of a call is the platform's part.
async fn echo(_: switchboard::CallContext, params: Value) -> Result<Value, switchboard::Error> {
    Ok(params)
}

async fn overhead(n: usize) -> Result<Value, BoxError> {
    const BOOKING: &str = include_str!("../../functions/booking/manifest.json");
    let manifest = CompiledManifest::from_json(BOOKING)?;
    let mut builder = switchboard::Plugin::builder(BOOKING);
    for f in &manifest.manifest().functions {
        builder = builder.handler(f.name.as_str(), echo);
    }
    let plugin = builder.build()?;
    let db = switchboard_embedded::Embedded::in_memory()?;
    let registry = Registry::new(db.registry_table());
    let org = OrgId::parse("bench-org")?;
    let instance = PluginInstance {
        plugin: plugin.name().clone(),
        enabled: true,
        pinned_version: manifest.manifest().version.clone(),
        config: json!({"practiceName": "Bench Dental"}),
        data_adapter: Default::default(),
    };
    registry.put_instance(&org, &instance, None).await?;
    let data = Arc::new(BuiltinData::new(db.data_table()));
    let platform = Arc::new(Platform::new(
        registry,
        data,
        db.data_table(),
        Duration::from_secs(3600),
    ));
    let service = PluginService::new(plugin, platform);
    let body = json!({"function": "CreateAppointment", "sessionId": "call-1",
        "parameters": {"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-01 10:00",
                       "durationMinutes": 30, "Note": "first visit", "ProcDescript": "Cleaning"}})
    .to_string();
    let tenant = TenantContext::new(org).with_scopes(&["plugins:call"]);
    let mut times = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        let (status, reply) = service
            .call(CallInput {
                tenant: Some(tenant.clone()),
                body: body.as_bytes(),
                request_id: "bench",
                idempotency_key: None,
            })
            .await;
        let elapsed = t.elapsed();
        if status != 200 {
            return Err(format!("CreateAppointment (echo): {status} {reply}").into());
        }
        // The first tenth warms caches and the allocator; it is not counted.
        if i >= n / 10 {
            times.push(elapsed);
        }
    }
    Ok(
        json!({"function": "booking CreateAppointment, echo handler, embedded store",
              "latency": stats(&mut times)}),
    )
}

/// An API Gateway HTTP API event for `path`, with the authorizer context of a twilio-bound
/// key of the demo org.
fn v2_event(
    method: &str,
    route: &str,
    path: &str,
    query: &str,
    params: Value,
    body: &str,
) -> String {
    json!({
        "version": "2.0", "routeKey": format!("{method} {route}"), "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": if query.is_empty() { json!(null) } else {
            let (k, v) = query.split_once('=').unwrap_or((query, ""));
            json!({k: v})
        },
        "headers": {"content-type": "application/json", "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2025-11-25", "host": "api.example.com", "x-forwarded-proto": "https"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": format!("{method} {route}"), "stage": "$default", "timeEpoch": 1_795_608_000_000u64,
            "authorizer": {"lambda": {"orgId": "demo-dental", "scopes": "plugins:call agents:read", "keyId": "0123456789abcdef", "channel": "twilio"}},
        },
        "pathParameters": params,
        "body": body,
        "isBase64Encoded": false,
    })
    .to_string()
}

async fn mcp(n: usize) -> Result<Value, BoxError> {
    use std::collections::HashMap;
    use switchboard::lambda::{LocalInvoker, handle, handle_agent, handle_mcp};
    use switchboard::mcp::{McpService, OriginPolicy};

    let db = switchboard_embedded::Embedded::in_memory()?;
    let registry = Registry::new(db.registry_table());
    let data = BuiltinData::new(db.data_table());
    let plugins = switchboard_cli::dev::plugins()?;
    let dir = std::env::temp_dir().join(format!("sb-bench-mcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    switchboard_cli::seed::ensure_demo(&registry, &data, &plugins, &dir, None).await?;
    std::fs::remove_dir_all(&dir)?;
    let ttl = Duration::from_secs(3600);
    let table = data.table();
    let platform = Arc::new(Platform::new(registry.clone(), Arc::new(data), table, ttl));
    let services: Vec<Arc<PluginService>> = plugins
        .into_iter()
        .map(|p| Arc::new(PluginService::new(p, platform.clone())))
        .collect();
    let booking = services
        .iter()
        .find(|s| s.plugin().name().as_str() == "booking")
        .ok_or("no booking plugin")?
        .clone();
    let local = McpService::new(
        AgentBuilder::new(registry.clone(), ttl),
        Arc::new(LocalInvoker::new(services.clone())),
        OriginPolicy::default(),
    );
    let api = switchboard_tests::invoke_api::InvokeApi::unrecorded(HashMap::from([(
        "bench-booking".to_owned(),
        booking.clone(),
    )]));
    let (endpoint, server) = switchboard_tests::invoke_api::serve(api).await;
    let client = switchboard_tests::lambda_client(&endpoint).await;
    let functions = HashMap::from([(
        switchboard::PluginName::parse("booking")?,
        "bench-booking".to_owned(),
    )]);
    let lambda = McpService::new(
        AgentBuilder::new(registry.clone(), ttl),
        Arc::new(switchboard_aws::lambda::LambdaInvoker::new(
            client, functions,
        )),
        OriginPolicy::default(),
    );
    let agents = switchboard::agent::service::AgentService::new(
        AgentBuilder::new(registry, ttl),
        switchboard::agent::dialects::ExportOptions::default(),
    );

    let search = json!({"name": "Rivera"});
    let direct = v2_event(
        "POST",
        "/plugins/booking",
        "/plugins/booking",
        "",
        json!({"plugin": "booking"}),
        &json!({"function": "SearchPatients", "parameters": search}).to_string(),
    );
    let call = v2_event("POST", "/mcp/{channel}", "/mcp/twilio", "", json!({"channel": "twilio"}),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "SearchPatients", "arguments": search}}).to_string());
    let list = v2_event(
        "POST",
        "/mcp/{channel}",
        "/mcp/twilio",
        "",
        json!({"channel": "twilio"}),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string(),
    );
    let export = v2_event(
        "GET",
        "/agents/{channel}",
        "/agents/twilio",
        "format=mcp",
        json!({"channel": "twilio"}),
        "",
    );

    let body = |resp: lambda_http::Response<lambda_http::Body>| -> Result<Value, BoxError> {
        let status = resp.status().as_u16();
        let v: Value = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t)?,
            other => return Err(format!("unexpected body {other:?}").into()),
        };
        if status != 200
            || v["result"]["isError"] == true
            || v.get("error")
                .is_some_and(|e| !e.is_null() && v.get("jsonrpc").is_some())
        {
            return Err(format!("{status} {v}").into());
        }
        Ok(v)
    };
    let parse = |e: &str| lambda_http::request::from_str(e);
    let mut times: [Vec<Duration>; 5] = Default::default();
    for i in 0..n + n / 10 {
        let mut lap = [Duration::ZERO; 5];
        // Each lap starts with another request, so none always pays for going first.
        for k in 0..5 {
            let which = (i + k) % 5;
            let t = Instant::now();
            match which {
                0 => body(handle(&booking, parse(&direct)?).await)?,
                1 => body(handle_mcp(&local, parse(&call)?).await)?,
                2 => body(handle_mcp(&lambda, parse(&call)?).await)?,
                3 => body(handle_agent(&agents, parse(&export)?).await)?,
                _ => body(handle_mcp(&local, parse(&list)?).await)?,
            };
            lap[which] = t.elapsed();
        }
        // The first tenth warms caches, connections and the allocator; it is not counted.
        if i >= n / 10 {
            for (all, one) in times.iter_mut().zip(lap) {
                all.push(one);
            }
        }
    }
    server.abort();
    let [direct, mcp_local, mcp_invoke, export, list] = &mut times;
    Ok(json!({
        "store": "embedded (in-memory SQLite), demo tenant",
        "function": "booking SearchPatients {\"name\": \"Rivera\"}",
        "calls": n,
        "direct": stats(direct),
        "mcp_in_process": stats(mcp_local),
        "mcp_invoke": stats(mcp_invoke),
        "agents_export": stats(export),
        "mcp_tools_list": stats(list),
    }))
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// min, p50, p95, p99, max and mean, in microseconds.
fn stats(samples: &mut [Duration]) -> Value {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
        us(samples[i.min(samples.len() - 1)])
    };
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64
    };
    json!({"n": samples.len(), "min_us": pct(0.0), "p50_us": pct(50.0), "p95_us": pct(95.0),
           "p99_us": pct(99.0), "max_us": pct(100.0), "mean_us": mean})
}
