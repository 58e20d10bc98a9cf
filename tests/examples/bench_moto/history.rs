//! `history <store> [calls]`: what a booking call costs as the tenant's history grows.
//! For each history size, a tenant of its own with that many appointments spread over the
//! days around the measured one, which holds the same six every time (so the answer does
//! not change): booking's `GetAvailableSlots` for the day and `GetAppointments` for one
//! patient on the day, warm, through the plugin pipeline, with the platform clock fixed
//! at 2026-12-01. `store`: `moto` (DynamoDB on `AWS_ENDPOINT_URL`, with the items each call
//! read by DynamoDB's `ScannedCount`), `sqlite` (the embedded store on a file, as `dev`)
//! or `postgres` (the organization's database on `SWITCHBOARD_TEST_POSTGRES`, with the
//! indexes the README tells operators to create).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::index::Indexes;
use switchboard::pipeline::{CallInput, Platform, PluginService};
use switchboard::ports::{DataAdapterFactory, DataError, SecretStore, StoreError};
use switchboard::registry::Registry;
use switchboard::secrets::{SecretValue, Secrets};
use switchboard::{DataAdapter, EntityName, OrgId, PluginName};
use switchboard_aws::dynamodb::DynamoStore;
use switchboard_embedded::Embedded;

use super::{BoxError, DATA_TABLE, REGISTRY_TABLE, stats};

pub const SIZES: [usize; 4] = [0, 1_000, 10_000, 100_000];
const DAY: &str = "2026-12-15";
/// Appointments of each history day: two providers, a full morning each.
const PER_DAY: usize = 12;
/// Records per transaction when writing the history (each with two index entries).
const CHUNK: usize = 33;

fn clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_126_400) // 2026-12-01T12:00:00Z
}

/// The `i`-th appointment of the history: never on [`DAY`], on the days before and after it.
fn historical(i: usize) -> Value {
    let day = i / PER_DAY;
    let slot = i % PER_DAY;
    // Alternate before and after the measured day, moving outwards.
    let offset = (day / 2 + 1) as i64 * if day.is_multiple_of(2) { -1 } else { 1 };
    let date = jiff::civil::date(2026, 12, 15)
        .checked_add(jiff::Span::new().days(offset))
        .unwrap_or(jiff::civil::date(2026, 12, 14));
    let hour = 8 + slot / 2;
    appointment(
        1_000_000 + i,
        &date.to_string(),
        hour,
        (slot % 2 + 1) as i64,
        (i % 3 + 1) as i64,
    )
}

fn appointment(n: usize, date: &str, hour: usize, prov: i64, pat: i64) -> Value {
    json!({
        "id": n.to_string(), "AptNum": n, "PatNum": pat, "ProvNum": prov, "Op": prov,
        "AptDateTime": format!("{date} {hour:02}:00:00"), "AptDate": date,
        "durationMinutes": 60, "AptStatus": "Scheduled", "Note": "", "ProcDescript": "",
    })
}

/// The six appointments of the measured day, in every tenant.
fn measured_day() -> Vec<Value> {
    (0..6)
        .map(|i| {
            appointment(
                900 + i,
                DAY,
                9 + i / 2,
                (i % 2 + 1) as i64,
                (i % 3 + 1) as i64,
            )
        })
        .collect()
}

struct Store {
    registry: Registry,
    data: BuiltinData,
    factory: Arc<dyn DataAdapterFactory>,
    scanned: Option<DynamoStore>,
    postgres: Option<Postgres>,
}

struct Postgres {
    url: String,
    admin: tokio_postgres::Client,
    /// Where the tenants' credentials go (the embedded store, as in `dev`).
    secrets: Arc<dyn SecretStore>,
}

pub async fn run(store: &str, calls: usize) -> Result<Value, BoxError> {
    let plugins = switchboard_cli::dev::plugins()?;
    let booking = booking::plugin()?;
    let indexes = booking.manifest().manifest().indexes.clone();
    let dir = std::env::temp_dir().join(format!("sb-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let s = open(store, &dir).await?;
    let mut rows = Vec::new();
    for size in SIZES {
        let suffix = format!("h{size}-{}", std::process::id());
        switchboard_cli::seed::ensure_demo(&s.registry, &s.data, &plugins, &dir, Some(&suffix))
            .await?;
        let org = switchboard_cli::seed::demo_org(Some(&suffix))?;
        let started = Instant::now();
        match &s.postgres {
            None => write_history(&s.data, &org, &indexes, size).await?,
            Some(pg) => postgres_history(pg, &s, &org, size).await?,
        }
        let fill_secs = started.elapsed().as_secs_f64();
        let platform = Platform::new(
            s.registry.clone(),
            s.factory.clone(),
            s.data.table(),
            Duration::from_secs(300),
        )
        .with_clock(Arc::new(clock));
        let service = PluginService::new(booking::plugin()?, Arc::new(platform));
        let slots = measure(
            &service,
            &org,
            &s,
            calls,
            json!({"function": "GetAvailableSlots", "parameters": {"date": DAY}}),
        )
        .await?;
        let apts = measure(
            &service,
            &org,
            &s,
            calls,
            json!({"function": "GetAppointments",
                   "parameters": {"PatNum": 1, "startDate": DAY, "endDate": DAY}}),
        )
        .await?;
        eprintln!("history {store} {size}: filled in {fill_secs:.1} s");
        rows.push(json!({
            "appointments": size, "fill_secs": fill_secs,
            "GetAvailableSlots": slots, "GetAppointments": apts,
        }));
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(json!({"store": store, "calls": calls, "day": DAY, "sizes": rows}))
}

async fn open(store: &str, dir: &std::path::Path) -> Result<Store, BoxError> {
    match store {
        "moto" => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .map_err(|_| "AWS_ENDPOINT_URL must point at moto (scripts/bench sets it)")?;
            // moto answers a Query by going through every item of the table and copies every
            // table for each transaction, so at 100,000 appointments one request takes
            // seconds: production's 5 s budget and retries would measure timeouts.
            let sdk = switchboard_tests::sdk_config(&endpoint).await;
            let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
                .timeout_config(
                    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                        .operation_timeout(Duration::from_secs(300))
                        .build(),
                )
                .retry_config(
                    aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(1),
                )
                .build();
            let client = aws_sdk_dynamodb::Client::from_conf(conf);
            let table = DynamoStore::new(client.clone(), DATA_TABLE);
            let data = BuiltinData::new(Arc::new(table.clone()));
            Ok(Store {
                registry: Registry::new(Arc::new(DynamoStore::new(client, REGISTRY_TABLE))),
                factory: Arc::new(data.clone()),
                data,
                scanned: Some(table),
                postgres: None,
            })
        }
        "sqlite" => {
            let db = Embedded::open(&dir.join("switchboard.db"))?;
            let data = BuiltinData::new(db.data_table());
            Ok(Store {
                registry: Registry::new(db.registry_table()),
                factory: Arc::new(data.clone()),
                data,
                scanned: None,
                postgres: None,
            })
        }
        "postgres" => {
            let url = std::env::var("SWITCHBOARD_TEST_POSTGRES").map_err(
                |_| "SWITCHBOARD_TEST_POSTGRES must name the database (scripts/bench starts it)",
            )?;
            let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let db = Embedded::open(&dir.join("switchboard.db"))?;
            let data = BuiltinData::new(db.data_table());
            let secret_store = db.secret_store();
            let secrets = Arc::new(Secrets::new(
                secret_store.clone(),
                Duration::from_secs(300),
                "switchboard",
            ));
            let factory = switchboard_runtime::adapters::DataAdapters::new(
                data.clone(),
                secrets,
                &switchboard::egress::Egress::new(true),
                switchboard_tests::tls(),
            );
            let store = Store {
                registry: Registry::new(db.registry_table()),
                factory: Arc::new(factory),
                data,
                scanned: None,
                postgres: Some(Postgres {
                    url,
                    admin,
                    secrets: secret_store,
                }),
            };
            Ok(store)
        }
        other => Err(format!("unknown store '{other}': moto, sqlite or postgres").into()),
    }
}

/// The history through the built-in adapter, as booking writes it (records with their index
/// entries), a few transactions at a time.
async fn write_history(
    data: &BuiltinData,
    org: &OrgId,
    indexes: &Indexes,
    size: usize,
) -> Result<(), BoxError> {
    let adapter = Arc::new(data.scoped(org, &PluginName::parse("booking")?, indexes));
    let apts = EntityName::parse("appointments")?;
    adapter.batch_create(&apts, measured_day()).await?;
    let all: Vec<Value> = (0..size).map(historical).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in all.chunks(CHUNK * 8) {
        let chunk = chunk.to_vec();
        let adapter = adapter.clone();
        let apts = apts.clone();
        tasks.spawn(async move {
            for part in chunk.chunks(CHUNK) {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match adapter.batch_create(&apts, part.to_vec()).await {
                        Ok(_) => break,
                        // A slow moto can time out an attempt it then applies, so a retry
                        // finds the records written (moto does not honour the transaction's
                        // ClientRequestToken): the chunk is done if all of it is there.
                        Err(
                            e @ (DataError::Conflict { .. }
                            | DataError::Store(StoreError::Unavailable(_))),
                        ) => {
                            if landed(adapter.as_ref(), &apts, part).await? {
                                break;
                            }
                            if attempt == 5 {
                                return Err(e);
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok::<_, DataError>(())
        });
        while tasks.len() >= 2 {
            if let Some(done) = tasks.join_next().await {
                done??;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

async fn landed(
    adapter: &dyn DataAdapter,
    apts: &EntityName,
    part: &[Value],
) -> Result<bool, DataError> {
    for r in part {
        let id = switchboard::RecordId::parse(r["id"].as_str().unwrap_or_default())
            .map_err(|e| DataError::Invalid(e.to_string()))?;
        if adapter.get(apts, &id).await?.as_ref() != Some(r) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The tenant's booking instance on a schema of its own in PostgreSQL: the fixture's tables
/// and demo rows, the operator's indexes, and the history inserted by SQL.
async fn postgres_history(
    pg: &Postgres,
    s: &Store,
    org: &OrgId,
    size: usize,
) -> Result<(), BoxError> {
    let schema = format!("bench_{}", org.as_str().replace('-', "_"));
    let fixture = include_str!("../../fixtures/postgres/booking.sql");
    pg.admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}; {fixture}
             CREATE INDEX ON appointments (\"AptDate\" COLLATE \"C\");
             CREATE INDEX ON appointments (\"PatNum\");
             CREATE INDEX ON slot_claims (\"AptDate\" COLLATE \"C\");"
        ))
        .await?;
    let mut all = measured_day();
    all.extend((0..size).map(historical));
    for chunk in all.chunks(5_000) {
        pg.admin
            .execute(
                &format!(
                    "INSERT INTO {schema}.appointments (id, \"AptNum\", \"PatNum\", \"ProvNum\", \"Op\", \"AptDateTime\", \"AptDate\", \"durationMinutes\", \"AptStatus\")
                     SELECT (r->>'AptNum')::bigint, (r->>'AptNum')::bigint, (r->>'PatNum')::bigint, (r->>'ProvNum')::bigint,
                            (r->>'Op')::bigint, r->>'AptDateTime', r->>'AptDate', 60, 'Scheduled'
                     FROM jsonb_array_elements($1::jsonb) AS r"
                ),
                &[&Value::Array(chunk.to_vec())],
            )
            .await?;
    }
    pg.admin
        .batch_execute(&format!("ANALYZE {schema}.appointments;"))
        .await?;
    // The credential and the instance's adapter, as an org admin would set them.
    let name = format!("switchboard/{org}/supabase");
    let secret = SecretValue::from_secret_string(&json!({"connection_string": pg.url}).to_string())
        .map_err(|e| e.to_string())?;
    pg.secrets
        .put(&name, &secret)
        .await
        .map_err(|e| e.to_string())?;
    let booking = PluginName::parse("booking")?;
    let current = s
        .registry
        .get_instance(org, &booking)
        .await?
        .ok_or("the demo tenant has no booking instance")?;
    let mut inst = current.value;
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
    inst.data_adapter = serde_json::from_value(json!({
        "type": "postgres", "credential": name, "schema": schema, "entities": entities,
    }))?;
    s.registry
        .put_instance(org, &inst, Some(current.version))
        .await?;
    Ok(())
}

async fn measure(
    service: &PluginService,
    org: &OrgId,
    s: &Store,
    calls: usize,
    body: Value,
) -> Result<Value, BoxError> {
    let tenant = TenantContext::new(org.clone()).with_scopes(&["plugins:call"]);
    let body = body.to_string();
    let call = || {
        service.call(CallInput {
            tenant: Some(tenant.clone()),
            body: body.as_bytes(),
            request_id: "bench",
            idempotency_key: None,
        })
    };
    // The first call fills the caches; its answer is checked once.
    let (status, reply) = call().await;
    if status != 200 {
        return Err(format!("{body}: {status} {reply}").into());
    }
    let answer = answer_size(&reply);
    let before = s.scanned.as_ref().map(DynamoStore::items_scanned);
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let (status, reply) = call().await;
        times.push(t.elapsed());
        if status != 200 {
            return Err(format!("{body}: {status} {reply}").into());
        }
    }
    let read = match (before, &s.scanned) {
        (Some(b), Some(t)) => json!((t.items_scanned() - b) as f64 / calls as f64),
        _ => Value::Null,
    };
    Ok(json!({"latency": stats(&mut times), "items_read_per_call": read, "answer": answer}))
}

/// How many slots or appointments the answer holds: the same at every history size.
fn answer_size(reply: &Value) -> usize {
    let r = &reply["result"];
    r["slots"]
        .as_array()
        .or_else(|| r["appointments"].as_array())
        .map_or(0, Vec::len)
}
