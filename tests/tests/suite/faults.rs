//! Fault injection: containers whose DynamoDB client goes through a proxy in front of moto
//! that stalls, delays, drops, throttles or fails the requests of one kind (every request,
//! the plugins' data reads or writes, the idempotency records, the audit entries, the rate
//! bucket), once per call or on every such request. Each cell of that matrix runs a booking
//! and a support call with an `Idempotency-Key` and a read, one after another, then heals
//! the proxy and retries the two writes with their keys.
//!
//! A fault that happens once is absorbed: every call answers 200, the retry replays it, each
//! call's effect exists exactly once and each call has exactly one audit entry. A fault that
//! persists fails calls cleanly: 200 or `503 dependency_unavailable`, never anything else,
//! within the call's budget; a refused call wrote nothing of its own unless its outcome was
//! unknown (a write reached moto unanswered, or it was cut off while its function ran); no
//! idempotency record outlives its in-progress window; each call's audit entry is stored
//! once or logged as lost. A call whose result was
//! stored answers its retry from the record; one whose completion could not be stored runs
//! again on its retry (the documented limit), and the cell reports it.
//!
//! `SWITCHBOARD_FAULT_REPORT=<file>` writes one JSON line per cell (`scripts/faults` turns
//! them into RELIABILITY.md's fault matrix).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::retry::RetryPartition;
use serde_json::{Value, json};
use switchboard::OrgId;
use switchboard::audit::AuditLog;
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::pipeline::{CallInput, CallOutput, Platform, PluginService};
use switchboard::ports::{ItemStore, Key};
use switchboard::ratelimit::RateLimiter;
use switchboard::registry::Registry;
use switchboard_aws::dynamodb::DynamoStore;
use switchboard_tests::faults::{Fault, FaultProxy, Rule, Seen};
use switchboard_tests::{Tables, moto_endpoint, moto_tables, unique};
use tokio::sync::Semaphore;

use crate::fixtures::{self, local_secrets, pinned_now};

/// Cells run at once: each has its own proxy and container; moto is shared.
const PARALLEL_CELLS: usize = 8;

/// How many times each cell runs its three calls (`SWITCHBOARD_FAULT_ROUNDS`, 1 to 7; one
/// hour of the cell's day each).
fn rounds() -> usize {
    std::env::var("SWITCHBOARD_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .clamp(1, 7)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Everything,
    DataReads,
    DataWrites,
    IdempotencyRecords,
    Completion,
    Audit,
    Bucket,
}

impl Target {
    const ALL: [Target; 7] = [
        Target::Everything,
        Target::DataReads,
        Target::DataWrites,
        Target::IdempotencyRecords,
        Target::Completion,
        Target::Audit,
        Target::Bucket,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Everything => "every request",
            Self::DataReads => "plugin data reads",
            Self::DataWrites => "plugin data writes",
            Self::IdempotencyRecords => "idempotency records",
            Self::Completion => "idempotency completion",
            Self::Audit => "audit entries",
            Self::Bucket => "rate bucket",
        }
    }

    fn rule(self, org: &OrgId, fault: Fault) -> Rule {
        let data = format!("ORG#{org}#");
        match self {
            Self::Everything => Rule::new(&[], None, fault),
            Self::DataReads => Rule::new(&["GetItem", "Query", "BatchGetItem"], Some(&data), fault),
            Self::DataWrites => Rule::new(
                &["UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems"],
                Some(&data),
                fault,
            ),
            Self::IdempotencyRecords => Rule::new(&[], Some("IDEM#"), fault),
            // The second write of the record (a conditional PutItem, as the first, the claim).
            Self::Completion => Rule::new(&["PutItem"], Some("IDEM#"), fault).window(1, 1),
            Self::Audit => Rule::new(&[], Some("AUDIT#"), fault),
            Self::Bucket => Rule::new(&[], Some("RATE#"), fault),
        }
    }
}

/// Under the SDK's 2 s attempt timeout, so every request succeeds: a call of many requests
/// runs past its budget and is cut off there.
const CRAWL: Fault = Fault::Delay(Duration::from_millis(1_500));

const FAULTS: [Fault; 8] = [
    Fault::Stall,
    Fault::Delay(Duration::from_millis(700)),
    CRAWL,
    Fault::Drop,
    Fault::LoseAnswer,
    Fault::Throttle,
    Fault::ServerError,
    Fault::ServerErrorAfter,
];

#[derive(Debug, Clone, Copy)]
struct Cell {
    target: Target,
    fault: Fault,
    /// Once per call, or every matching request.
    once: bool,
    /// Which weekday its appointment is booked on.
    day: usize,
}

/// A container as a plugin function's `main` builds it, on DynamoDB through `endpoint`.
async fn container(endpoint: &str) -> (Arc<Platform>, Arc<AuditLog>) {
    // The SDK's retry quota is per partition and process: a container of its own (one
    // process on Lambda) must not spend its retries on another cell's faults.
    let client = switchboard_tests::dynamodb_client(endpoint).await;
    let conf = client
        .config()
        .to_builder()
        .retry_partition(RetryPartition::new(unique("faults")))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let registry: Arc<dyn ItemStore> =
        Arc::new(DynamoStore::new(client.clone(), "switchboard-registry"));
    let data = BuiltinData::new(Arc::new(DynamoStore::new(client, "switchboard-data")));
    let table = data.table();
    let adapters = fixtures::adapters(data, local_secrets());
    let audit = Arc::new(AuditLog::new(table.clone()));
    let platform = Platform::new(
        Registry::new(registry),
        Arc::new(adapters),
        table.clone(),
        Duration::from_secs(30),
    )
    .with_audit(audit.clone())
    // No lease: every call asks the bucket, so a cell's faults reach it.
    .with_rate_limits(Arc::new(RateLimiter::new(table, 100, 0)))
    .with_clock(Arc::new(pinned_now));
    (Arc::new(platform), audit)
}

fn service(platform: &Arc<Platform>, name: &str) -> PluginService {
    let plugin = switchboard_cli::dev::plugins()
        .unwrap()
        .into_iter()
        .find(|p| p.name().as_str() == name)
        .unwrap_or_else(|| panic!("no plugin {name}"));
    PluginService::new(plugin, platform.clone())
}

async fn call(
    svc: &PluginService,
    org: &OrgId,
    body: &Value,
    key: Option<&str>,
    rid: &str,
) -> CallOutput {
    let body = body.to_string();
    svc.respond(CallInput {
        tenant: Some(TenantContext::new(org.clone()).with_scopes(&["plugins:call"])),
        body: body.as_bytes(),
        request_id: rid,
        idempotency_key: key,
    })
    .await
}

/// The `n`-th weekday from 2027-06-01, as `YYYY-MM-DD`.
fn weekday(n: usize) -> String {
    let mut d = jiff::civil::date(2027, 6, 1);
    let mut left = n;
    loop {
        let weekend = matches!(
            d.weekday(),
            jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
        );
        if !weekend {
            if left == 0 {
                return d.to_string();
            }
            left -= 1;
        }
        d = d.tomorrow().unwrap();
    }
}

/// One call of a cell and what happened to it.
struct Made {
    name: &'static str,
    body: Value,
    key: Option<String>,
    rid: String,
    out: CallOutput,
    elapsed: Duration,
    seen: Vec<Seen>,
    /// Audit entries its container logged as lost while it ran.
    audit_lost: u64,
}

impl Made {
    /// Whether a fault let one of this call's own data writes reach moto without the
    /// container learning that it did.
    fn write_may_have_landed(&self, org: &OrgId) -> bool {
        // Cut off at its budget while its function ran: any write of it may land.
        let cut = self.out.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ran past its"));
        let data = format!("ORG#{org}#");
        cut || self.seen.iter().any(|s| {
            s.fault.is_some_and(|f| f.forwards())
                && s.pk.as_deref().is_some_and(|pk| pk.starts_with(&data))
                && s.op != "GetItem"
                && s.op != "Query"
                && s.op != "BatchGetItem"
        })
    }
}

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    unavailable: usize,
    /// Answers other than 200 and 503 `dependency_unavailable`.
    other: Vec<String>,
    max_ms: u128,
    /// Retries after healing answered from the record.
    replayed: usize,
    /// Retries that ran the call again: after a 503, or after a 200 whose record could not
    /// be completed.
    ran_again: usize,
    /// Retries refused: a booking whose refused first call's write may have landed.
    refused_again: Vec<String>,
    /// Writes whose effect exists more than once after the retries.
    duplicated: Vec<String>,
    /// Writes whose effect is missing after the retries.
    missing: Vec<String>,
    in_progress_left: usize,
    /// Refused calls whose effect exists though no write of theirs can have landed.
    refused_wrote: Vec<String>,
    audit_lost: u64,
    audit_lost_by_call: Vec<u64>,
    /// Requests the proxy faulted.
    faulted: usize,
    /// Each call's request id.
    rids: Vec<String>,
}

/// What `name`'s call left in the store: how many appointments at its time, or tickets of
/// its contact.
async fn effects(clean: &Clean, org: &OrgId, made: &Made) -> usize {
    match made.name {
        "booking" => {
            let p = &made.body["parameters"];
            let at = p["AptDateTime"].as_str().unwrap();
            let day = &at[..10];
            let out = call(
                &clean.booking,
                org,
                &json!({"function": "GetAppointments", "parameters":
                    {"PatNum": p["PatNum"], "startDate": day, "endDate": day}}),
                None,
                "check",
            )
            .await;
            assert_eq!(out.status, 200, "{}", out.body);
            out.body["result"]["appointments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["AptDateTime"].as_str().is_some_and(|t| t.starts_with(at)))
                .count()
        }
        "support" => {
            let email = made.body["parameters"]["contact"]["email"]
                .as_str()
                .unwrap();
            let out = call(
                &clean.support,
                org,
                &json!({"function": "ListTickets", "parameters":
                    {"status": "open", "email": email, "limit": 50}}),
                None,
                "check",
            )
            .await;
            assert_eq!(out.status, 200, "{}", out.body);
            out.body["result"]["tickets"].as_array().unwrap().len()
        }
        other => panic!("no effect check for {other}"),
    }
}

/// Services over moto without the proxy, to look at what the cells left.
struct Clean {
    booking: PluginService,
    support: PluginService,
    data: Arc<dyn ItemStore>,
}

async fn run_cell(cell: Cell, org: OrgId, clean: Arc<Clean>) -> (Cell, Tally) {
    let proxy = FaultProxy::start(&moto_endpoint()).await;
    let (platform, audit) = container(&proxy.endpoint).await;
    let booking = service(&platform, "booking");
    let support = service(&platform, "support");
    // A warm container: its caches filled before the faults start.
    let warm = call(
        &booking,
        &org,
        &json!({"function": "GetProviders", "parameters": {}}),
        None,
        &unique("warm"),
    )
    .await;
    assert_eq!(warm.status, 200, "{}", warm.body);
    let warm = call(
        &support,
        &org,
        &json!({"function": "ListTickets", "parameters": {"status": "open", "limit": 1}}),
        None,
        &unique("warm"),
    )
    .await;
    assert_eq!(warm.status, 200, "{}", warm.body);

    let day = weekday(cell.day);
    let mut plan: Vec<(&'static str, Value, bool)> = Vec::new();
    for round in 0..rounds() {
        let email = format!("{}@example.com", unique("faults"));
        let at = format!("{day} {:02}:00", 9 + round);
        plan.push((
            "booking",
            json!({"function": "CreateAppointment", "parameters":
                {"PatNum": 1, "ProvNum": 1, "AptDateTime": at}}),
            true,
        ));
        plan.push((
            "support",
            json!({"function": "CreateTicket", "parameters": {"subject": "Portal login",
                "description": "The reset email never arrives.",
                "contact": {"name": "Jordan Rivera", "email": email}}}),
            true,
        ));
        plan.push((
            "booking",
            json!({"function": "GetAppointments", "parameters":
                {"PatNum": 1, "startDate": day, "endDate": day}}),
            false,
        ));
    }
    let mut made = Vec::new();
    for (name, body, keyed) in plan {
        let svc = if name == "booking" {
            &booking
        } else {
            &support
        };
        let key = keyed.then(|| unique("fault-key"));
        let rid = unique("fault-rid");
        let once = if cell.once { 1 } else { usize::MAX };
        let rule = cell.target.rule(&org, cell.fault);
        let rule = if cell.target == Target::Completion {
            rule
        } else {
            rule.window(0, once)
        };
        proxy.schedule(vec![rule]);
        let lost_before = audit.failures();
        let started = Instant::now();
        let out = call(svc, &org, &body, key.as_deref(), &rid).await;
        let elapsed = started.elapsed();
        made.push(Made {
            name,
            body,
            key,
            rid,
            out,
            elapsed,
            seen: proxy.seen(),
            audit_lost: audit.failures() - lost_before,
        });
    }
    proxy.heal();

    let mut t = Tally {
        audit_lost: made.iter().map(|m| m.audit_lost).sum(),
        audit_lost_by_call: made.iter().map(|m| m.audit_lost).collect(),
        faulted: made
            .iter()
            .flat_map(|m| &m.seen)
            .filter(|s| s.fault.is_some())
            .count(),
        ..Tally::default()
    };
    for m in &made {
        t.max_ms = t.max_ms.max(m.elapsed.as_millis());
        match (m.out.status, m.out.body["error"]["code"].as_str()) {
            (200, _) => t.ok += 1,
            (503, Some("dependency_unavailable")) => t.unavailable += 1,
            (s, _) => t.other.push(format!("{} {s}: {}", m.name, m.out.body)),
        }
        if m.elapsed > Duration::from_secs(3) {
            let ops: Vec<String> = m
                .seen
                .iter()
                .map(|s| {
                    format!(
                        "{}{}",
                        s.op,
                        s.fault.map(|f| format!("[{f}]")).unwrap_or_default()
                    )
                })
                .collect();
            eprintln!(
                "SLOW {} {:?} {}: {}",
                m.name,
                m.elapsed,
                m.out.status,
                ops.join(" ")
            );
        }
    }
    // What the refused writes left before anyone retried them.
    for m in made
        .iter()
        .filter(|m| m.key.is_some() && m.out.status != 200)
    {
        let n = effects(&clean, &org, m).await;
        if n > 0 && !m.write_may_have_landed(&org) {
            t.refused_wrote
                .push(format!("{} answered {} and left {n}", m.name, m.out.status));
        }
    }
    // Records still in progress: wait out their window before retrying.
    let mut latest = 0u64;
    for m in made.iter().filter(|m| m.key.is_some()) {
        let key = record_key(&org, m);
        let item = clean.data.get(&key).await.unwrap();
        if let Some(item) = item.filter(|i| i.data["status"] == "IN_PROGRESS") {
            t.in_progress_left += 1;
            latest = latest.max(item.data["in_progress_until_ms"].as_u64().unwrap());
        }
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    if latest > now_ms {
        tokio::time::sleep(Duration::from_millis(latest - now_ms + 100)).await;
    }
    for m in made.iter().filter(|m| m.key.is_some()) {
        let svc = if m.name == "booking" {
            &booking
        } else {
            &support
        };
        let retry = call(svc, &org, &m.body, m.key.as_deref(), &unique("retry")).await;
        let may_have_landed = m.write_may_have_landed(&org);
        match (retry.status, retry.replayed) {
            (200, true) => {
                assert_eq!(retry.body, m.out.body, "a replay is the first answer");
                t.replayed += 1;
            }
            (200, false) => t.ran_again += 1,
            // The refused first call's slot claims landed: they hold the time until they are
            // released as orphans (booking's claims.rs), so the retry finds it taken.
            (409, _)
                if m.name == "booking"
                    && may_have_landed
                    && retry.body["error"]["code"] == "conflict" =>
            {
                t.refused_again
                    .push(format!("booking first {} then 409", m.out.status))
            }
            (s, _) => t.other.push(format!(
                "{} retry after healing {s}: {}",
                m.name, retry.body
            )),
        }
        let n = effects(&clean, &org, m).await;
        if n > 1 {
            t.duplicated
                .push(format!("{} first {}: {n}", m.name, m.out.status));
        } else if n == 0 && !(m.name == "booking" && retry.status == 409) {
            t.missing.push(format!("{} first {}", m.name, m.out.status));
        }
    }
    t.rids = made.iter().map(|m| m.rid.clone()).collect();
    (cell, t)
}

fn record_key(org: &OrgId, m: &Made) -> Key {
    use switchboard::idempotency::{CallKey, KeySource};
    let plugin = switchboard::PluginName::parse(m.name).unwrap();
    let function = switchboard::FunctionName::parse(m.body["function"].as_str().unwrap()).unwrap();
    CallKey {
        org,
        plugin: &plugin,
        function: &function,
        source: &KeySource::Header(m.key.clone().unwrap()),
        params: &m.body["parameters"],
    }
    .record_key()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_between_the_functions_and_dynamodb() {
    let tables = moto_tables().await;
    let org = fixtures::demo(
        Tables {
            registry: tables.registry.clone(),
            data: tables.data.clone(),
        },
        Some(&unique("faults")),
    )
    .await
    .org;
    // Twelve containers leasing from one bucket: a limit the cells never reach.
    let registry = Registry::new(tables.registry.clone());
    let current = registry.get_profile(&org).await.unwrap().unwrap();
    let mut profile = current.value;
    profile.rate_limit_per_second = Some(10_000);
    registry
        .put_profile(&org, &profile, Some(current.version))
        .await
        .unwrap();
    let (clean_platform, _) = container(&moto_endpoint()).await;
    let clean = Arc::new(Clean {
        booking: service(&clean_platform, "booking"),
        support: service(&clean_platform, "support"),
        data: tables.data.clone(),
    });
    let mut cells = Vec::new();
    for target in Target::ALL {
        for fault in FAULTS {
            for once in [true, false] {
                // The completion is one request: once and always are the same cell.
                if target == Target::Completion && !once {
                    continue;
                }
                // Crawling matters where a call makes many requests.
                if fault == CRAWL
                    && (once || !matches!(target, Target::Everything | Target::DataReads))
                {
                    continue;
                }
                cells.push(Cell {
                    target,
                    fault,
                    once,
                    day: cells.len(),
                });
            }
        }
    }
    let gate = Arc::new(Semaphore::new(PARALLEL_CELLS));
    let mut tasks = Vec::new();
    for cell in cells {
        let (gate, org, clean) = (gate.clone(), org.clone(), clean.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            run_cell(cell, org, clean).await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    // Each call's audit entries, by its request id: read once, after every cell.
    let log = AuditLog::new(tables.data.clone());
    let entries = crate::audit::entries(&log, &org, &[("limit", "200")]).await;
    let budget = switchboard::pipeline::ANSWER_BUDGET + Duration::from_secs(1);
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for (cell, t) in results {
        let label = format!(
            "{} / {} / {}",
            cell.target.name(),
            cell.fault,
            if cell.once { "once" } else { "always" }
        );
        let counts: Vec<usize> = t
            .rids
            .iter()
            .map(|rid| entries.iter().filter(|e| e.request_id == *rid).count())
            .collect();
        let audited: usize = counts.iter().sum();
        let calls = counts.len();
        let writes = calls / 3 * 2;
        let duplicated = counts.iter().filter(|n| **n > 1).count();
        eprintln!("{label}: {t:?} audit entries {counts:?}");
        let mut wrong = Vec::new();
        if !t.other.is_empty() {
            wrong.push(format!("answers other than 200 or 503: {:?}", t.other));
        }
        if t.max_ms > budget.as_millis() {
            wrong.push(format!("a call took {} ms, over its budget", t.max_ms));
        }
        if !t.refused_wrote.is_empty() {
            wrong.push(format!("refused calls wrote: {:?}", t.refused_wrote));
        }
        if duplicated > 0 {
            wrong.push(format!("{duplicated} calls with more than one audit entry"));
        }
        if t.faulted == 0 {
            wrong.push("no request was faulted: the cell tests nothing".to_owned());
        }
        // Each call's entry stored, or logged as lost by its container.
        let unaccounted = counts
            .iter()
            .zip(&t.audit_lost_by_call)
            .filter(|(n, lost)| **n == 0 && **lost == 0)
            .count();
        if unaccounted > 0 {
            wrong.push(format!(
                "{unaccounted} calls with no audit entry, none logged as lost ({audited} entries, {} logged, for {} calls)",
                t.audit_lost,
                counts.len()
            ));
        }
        if !t.missing.is_empty() {
            wrong.push(format!("writes missing after their retry: {:?}", t.missing));
        }
        if cell.once {
            if t.ok != calls {
                wrong.push(format!("a single fault failed {} calls", calls - t.ok));
            }
            if t.replayed != writes || !t.duplicated.is_empty() || !t.refused_again.is_empty() {
                wrong.push(format!(
                    "not exactly once: {} replayed, duplicated {:?}, refused {:?}",
                    t.replayed, t.duplicated, t.refused_again
                ));
            }
            if t.in_progress_left > 0 {
                wrong.push(format!("{} records left in progress", t.in_progress_left));
            }
            if audited != calls {
                wrong.push(format!("{audited} audit entries for {calls} calls"));
            }
        }
        lines.push(json!({
            "target": cell.target.name(), "fault": cell.fault.to_string(), "once": cell.once,
            "calls": calls, "ok": t.ok, "unavailable": t.unavailable, "other": t.other.len(),
            "max_ms": t.max_ms, "replayed": t.replayed, "ran_again": t.ran_again,
            "refused_again": t.refused_again.len(), "duplicated": t.duplicated.len(),
            "in_progress_left": t.in_progress_left, "audit_entries": audited,
            "audit_duplicated": duplicated, "audit_logged_lost": t.audit_lost,
            "faulted_requests": t.faulted,
            "failures": wrong.len(),
            "budget_ms": switchboard::pipeline::ANSWER_BUDGET.as_millis(),
        }));
        if !wrong.is_empty() {
            failures.push(format!("{label}: {}", wrong.join("; ")));
        }
    }
    if let Ok(path) = std::env::var("SWITCHBOARD_FAULT_REPORT") {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
