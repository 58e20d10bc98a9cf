//! The `postgres` data adapter against a real PostgreSQL 15 on loopback, started by
//! `scripts/test` (scripts/postgres.sh). Each test works in its own schema, so they run in
//! parallel; without the server the tests fail, never skip.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::data::matches;
use switchboard::egress::Egress;
use switchboard::ports::AdapterCheck;
use switchboard::registry::DataAdapterConfig;
use switchboard::secrets::{SecretStore, SecretValue, Secrets};
use switchboard::spec::PgConfig;
use switchboard::{Condition, DataAdapter, DataError, EntityName, Error, Op, OrgId, RecordId};
use switchboard_embedded::Embedded;
use switchboard_postgres::{PgData, PgPools};
use switchboard_tests::unique;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BOOKING_SQL: &str = include_str!("../../fixtures/postgres/booking.sql");
const SUPPORT_SQL: &str = include_str!("../../fixtures/postgres/support.sql");
const SUPPORT_INDEXES_SQL: &str = include_str!("../../fixtures/postgres/support-indexes.sql");

/// The test server's URL, set by `scripts/test`.
fn server_url() -> String {
    match std::env::var("SWITCHBOARD_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "SWITCHBOARD_TEST_POSTGRES is not set: the postgres adapter tests run against a \
             throw-away PostgreSQL cluster that scripts/test starts. Run scripts/test."
        ),
    }
}

fn password(url: &str) -> String {
    let creds = url.split('@').next().unwrap_or("");
    creds.rsplit(':').next().unwrap_or("").to_owned()
}

fn entity(s: &str) -> EntityName {
    EntityName::parse(s).unwrap()
}

fn id(s: impl ToString) -> RecordId {
    RecordId::parse(s.to_string()).unwrap()
}

/// A fresh schema holding `ddl`'s tables, and an admin connection to inspect it.
struct Db {
    schema: String,
    admin: tokio_postgres::Client,
}

async fn fresh(ddl: &str) -> Db {
    let (admin, conn) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot reach the test PostgreSQL (scripts/test starts it): {e}")
        });
    tokio::spawn(conn);
    let schema = unique("t").replace('-', "_");
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; {ddl}"
        ))
        .await
        .unwrap();
    Db { schema, admin }
}

impl Db {
    async fn count(&self, table: &str) -> i64 {
        self.admin
            .query_one(
                &format!("SELECT count(*) FROM {}.{table}", self.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }
}

struct Setup {
    data: PgData,
    secrets: Arc<Secrets>,
    /// The store under the resolver, to change a value behind its cache.
    store: Arc<dyn SecretStore>,
    org: OrgId,
    credential: String,
    pools: PgPools,
}

fn secret(v: Value) -> SecretValue {
    let Value::Object(m) = v else { panic!() };
    SecretValue::new(m)
}

async fn secrets_and_store(
    org: &OrgId,
    value: Value,
) -> (Arc<Secrets>, Arc<dyn SecretStore>, String) {
    let store = Embedded::in_memory().unwrap().secret_store();
    // Per-call rotation is what these tests check, not the resolver's rate limit.
    let secrets = Arc::new(
        Secrets::new(store.clone(), Duration::from_secs(60), "switchboard")
            .with_refresh_interval(Duration::ZERO),
    );
    let r = secrets
        .store(org, "supabase", &secret(value))
        .await
        .unwrap();
    (secrets, store, r.as_str().to_owned())
}

async fn secrets_with(org: &OrgId, value: Value) -> (Arc<Secrets>, String) {
    let (secrets, _, credential) = secrets_and_store(org, value).await;
    (secrets, credential)
}

/// An adapter over `schema` with `settings` (credential filled in) and the given secret.
/// The test server is on loopback, so private upstreams are allowed.
async fn adapter_with(secret: Value, settings: Value) -> Setup {
    adapter_on(PgPools::new(Egress::new(true)), secret, settings).await
}

async fn adapter_on(pools: PgPools, secret: Value, mut settings: Value) -> Setup {
    let org = OrgId::parse(unique("org")).unwrap();
    let (secrets, store, credential) = secrets_and_store(&org, secret).await;
    settings["credential"] = json!(credential);
    let data = PgData::new(
        pools.clone(),
        config(&settings),
        secrets.clone(),
        org.clone(),
        test_indexes(),
    );
    Setup {
        data,
        secrets,
        store,
        org,
        credential,
        pools,
    }
}

/// Every field these tests query, declared, so they exercise the SQL each condition makes.
fn test_indexes() -> switchboard::index::Indexes {
    switchboard_tests::indexes(
        &[
            "appointments",
            "claims",
            "ghosts",
            "notes",
            "patients",
            "people",
            "providers",
            "slot_claims",
            "strict",
            "things",
        ],
        &[
            "AptDate",
            "AptDateTime",
            "AptNum",
            "AptStatus",
            "FName",
            "PatNum",
            "ProvNum",
            "age",
            "b",
            "colour",
            "durationMinutes",
            "id",
            "j",
            "n",
            "name",
            "s",
            "tags",
            "x\" OR 1=1 --",
            "name\" = name OR \"1",
            "'; DROP TABLE people; --",
            "name) OR (1=1",
        ],
    )
}

fn config(settings: &Value) -> Arc<PgConfig> {
    Arc::new(PgConfig::parse(settings.as_object().unwrap()).unwrap())
}

impl Setup {
    /// As [`Setup::with_settings`], with the plugin's own declared indexes.
    fn with_indexes(&self, mut settings: Value, indexes: switchboard::index::Indexes) -> PgData {
        settings["credential"] = json!(self.credential);
        PgData::new(
            self.pools.clone(),
            config(&settings),
            self.secrets.clone(),
            self.org.clone(),
            indexes,
        )
    }

    /// Another adapter of the same organization and credential, sharing the pools.
    fn with_settings(&self, mut settings: Value) -> PgData {
        settings["credential"] = json!(self.credential);
        PgData::new(
            self.pools.clone(),
            config(&settings),
            self.secrets.clone(),
            self.org.clone(),
            test_indexes(),
        )
    }
}

async fn adapter(db: &Db, entities: Value) -> PgData {
    adapter_with(
        json!({"connection_string": server_url()}),
        json!({"schema": db.schema, "entities": entities}),
    )
    .await
    .data
}

const PEOPLE: &str = "CREATE TABLE people (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    age integer,
    email text UNIQUE,
    tags text[],
    active boolean NOT NULL DEFAULT true,
    meta jsonb
);
CREATE TABLE claims (id text PRIMARY KEY, owner jsonb NOT NULL, at bigint);";

#[tokio::test]
async fn crud_with_allocated_and_explicit_ids() {
    let db = fresh(PEOPLE).await;
    let pg = adapter(&db, json!({"people": "people", "claims": "claims"})).await;
    let people = entity("people");

    let ada = pg
        .create(&people, json!({"name": "Ada", "age": 36}))
        .await
        .unwrap();
    assert_eq!(ada["id"], 1, "the identity column allocates; {ada}");
    assert_eq!(ada["active"], true, "defaults apply to omitted columns");
    assert_eq!(ada["email"], Value::Null);
    let bo = pg
        .create(&people, json!({"name": "Bo", "age": 41, "id": null}))
        .await
        .unwrap();
    assert_eq!(bo["id"], 2);
    let explicit = pg
        .create(&people, json!({"id": "10", "name": "Cy"}))
        .await
        .unwrap();
    assert_eq!(explicit["id"], 10);
    let dup = pg.create(&people, json!({"id": 10, "name": "Dup"})).await;
    assert!(
        matches!(dup, Err(DataError::Conflict { ref id, .. }) if id == "10"),
        "{dup:?}"
    );
    let bad = pg.create(&people, json!([1, 2])).await;
    assert!(matches!(bad, Err(DataError::Invalid(_))), "{bad:?}");
    let wrong_type = pg.create(&people, json!({"name": "X", "age": "old"})).await;
    assert!(
        matches!(wrong_type, Err(DataError::Invalid(_))),
        "{wrong_type:?}"
    );
    let missing_required = pg.create(&people, json!({"age": 3})).await;
    assert!(
        matches!(missing_required, Err(DataError::Invalid(_))),
        "{missing_required:?}"
    );

    assert_eq!(
        pg.get(&people, &id(1)).await.unwrap().unwrap()["name"],
        "Ada"
    );
    assert_eq!(pg.get(&people, &id(404)).await.unwrap(), None);
    assert_eq!(
        pg.get(&people, &id("abc")).await.unwrap(),
        None,
        "a non-numeric id of an integer table does not exist"
    );

    let up = pg
        .update(
            &people,
            &id(1),
            json!({"age": 37, "id": "hijack", "tags": ["a", "b"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            up["age"].clone(),
            up["id"].clone(),
            up["name"].clone(),
            up["tags"].clone()
        ),
        (json!(37), json!(1), json!("Ada"), json!(["a", "b"]))
    );
    let nothing = pg.update(&people, &id(2), json!({})).await.unwrap();
    assert_eq!(nothing["name"], "Bo");
    assert!(matches!(
        pg.update(&people, &id(404), json!({"age": 1})).await,
        Err(DataError::NotFound { .. })
    ));
    assert!(matches!(
        pg.update(&people, &id("abc"), json!({"age": 1})).await,
        Err(DataError::NotFound { .. })
    ));

    // Pagination in id order.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = pg.list(&people, 2, cursor.as_deref()).await.unwrap();
        all.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids: Vec<i64> = all.iter().filter_map(|r| r["id"].as_i64()).collect();
    assert_eq!(ids, vec![1, 2, 10]);
    for bad in ["abc".to_owned(), "é".repeat(600)] {
        let r = pg.list(&people, 2, Some(&bad)).await;
        assert!(matches!(r, Err(DataError::Invalid(_))), "{r:?}");
    }

    assert!(pg.delete(&people, &id(10)).await.unwrap());
    assert!(!pg.delete(&people, &id(10)).await.unwrap());
    assert!(!pg.delete(&people, &id("abc")).await.unwrap());
    assert_eq!(db.count("people").await, 2);

    // Text ids, as booking's slot claims use.
    let claims = entity("claims");
    let c = pg
        .create(
            &claims,
            json!({"id": "prov-1-600", "owner": "pending", "at": 5}),
        )
        .await
        .unwrap();
    assert_eq!(
        (c["id"].clone(), c["owner"].clone()),
        (json!("prov-1-600"), json!("pending"))
    );
    let none = pg.create(&claims, json!({"owner": 1})).await;
    assert!(
        matches!(none, Err(DataError::Invalid(_))),
        "a text key has no default: {none:?}"
    );

    let schema = pg.get_schema(&people).await.unwrap();
    assert_eq!(
        schema["properties"]["age"]["type"],
        json!(["integer", "null"])
    );
    assert_eq!(schema["required"], json!(["name"]));
    let mut listed = pg.list_entities().await.unwrap();
    listed.sort();
    assert_eq!(listed, vec![entity("claims"), entity("people")]);
    let unmapped = pg.get(&entity("ghosts"), &id(1)).await;
    assert!(
        matches!(unmapped, Err(DataError::Invalid(_))),
        "{unmapped:?}"
    );
}

/// Every operator gives exactly what the built-in adapter's `matches` gives.
#[tokio::test]
async fn query_filters_match_the_builtin_semantics() {
    let db = fresh(
        "CREATE TABLE things (id text PRIMARY KEY, n numeric, s text, tags text[], j jsonb, b boolean);",
    )
    .await;
    let pg = adapter(&db, json!({"things": "things"})).await;
    let things = entity("things");
    let records = vec![
        json!({"id": "a", "n": 1, "s": "apple", "tags": ["x", "y"], "j": {"k": 1}, "b": true}),
        json!({"id": "b", "n": 2.5, "s": "Banana", "tags": [], "j": [1, "two"], "b": false}),
        json!({"id": "c", "n": 10, "s": "cherry pie", "tags": ["y"], "j": "text", "b": null}),
        json!({"id": "d", "n": null, "s": null, "tags": null, "j": 7, "b": true}),
        json!({"id": "e", "n": -3, "s": "äpfel", "tags": ["z"], "j": null, "b": false}),
        json!({"id": "f", "n": 1.0, "s": "app", "tags": ["x"], "j": ["apple"], "b": true}),
    ];
    let stored = pg.batch_create(&things, records).await.unwrap();
    let conditions = vec![
        Condition::eq("n", 1),
        Condition::eq("n", 2.5),
        Condition::eq("s", "apple"),
        Condition::eq("b", true),
        Condition::eq("s", Value::Null),
        Condition::eq("tags", json!(["x", "y"])),
        Condition::eq("j", json!({"k": 1})),
        Condition::eq("id", "c"),
        Condition::new("n", Op::Ne, 1),
        Condition::new("s", Op::Ne, "apple"),
        Condition::new("n", Op::Lt, 2.5),
        Condition::new("n", Op::Lte, 2.5),
        Condition::new("n", Op::Gt, 1),
        Condition::new("n", Op::Gte, 1),
        Condition::new("s", Op::Lt, "b"),
        Condition::new("s", Op::Gte, "a"),
        Condition::new("s", Op::Gt, "apple"),
        Condition::new("n", Op::Lt, "5"),
        Condition::new("s", Op::Gt, 1),
        Condition::new("b", Op::Gt, false),
        Condition::new("s", Op::BeginsWith, "app"),
        Condition::new("s", Op::BeginsWith, "App"),
        Condition::new("s", Op::BeginsWith, ""),
        Condition::new("n", Op::BeginsWith, "1"),
        Condition::new("s", Op::Contains, "pie"),
        Condition::new("s", Op::Contains, "%"),
        Condition::new("s", Op::Contains, "_"),
        Condition::new("tags", Op::Contains, "y"),
        Condition::new("j", Op::Contains, "two"),
        Condition::new("j", Op::Contains, 1),
        Condition::new("j", Op::Contains, "apple"),
        Condition::new("n", Op::Contains, 1),
    ];
    for c in &conditions {
        let mut want: Vec<&str> = stored
            .iter()
            .filter(|r| matches(r, c))
            .filter_map(|r| r["id"].as_str())
            .collect();
        want.sort();
        // With a condition every row meets on a declared field, as queries need one.
        let anchored = [c.clone(), Condition::new("id", Op::Gte, "")];
        let got = pg.query(&things, &anchored).await.unwrap();
        let mut got: Vec<&str> = got.iter().filter_map(|r| r["id"].as_str()).collect();
        got.sort();
        assert_eq!(got, want, "condition {c:?}");
    }
    // Several conditions: all must hold.
    let both = pg
        .query(
            &things,
            &[Condition::new("n", Op::Gte, 1), Condition::eq("b", true)],
        )
        .await
        .unwrap();
    let ids: Vec<&str> = both.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, vec!["a", "f"]);
    let unknown = pg.query(&things, &[Condition::eq("colour", "red")]).await;
    assert!(
        matches!(unknown, Err(DataError::Invalid(ref m)) if m.contains("colour")),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let db = fresh(PEOPLE).await;
    let pg = adapter(&db, json!({"people": "people", "claims": "claims"})).await;
    let claims = entity("claims");
    let made = pg
        .batch_create(
            &claims,
            vec![
                json!({"id": "prov-1-600", "owner": "pending", "at": 1}),
                json!({"id": "op-1-600", "owner": "pending", "at": 1}),
            ],
        )
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    assert_eq!(made[1]["id"], "op-1-600", "results in input order");
    let clash = pg
        .batch_create(
            &claims,
            vec![
                json!({"id": "prov-2-600", "owner": 7, "at": 2}),
                json!({"id": "op-1-600", "owner": 7, "at": 2}),
                json!({"id": "op-3-600", "owner": 7, "at": 2}),
            ],
        )
        .await;
    assert!(
        matches!(clash, Err(DataError::Conflict { ref id, .. }) if id == "op-1-600"),
        "{clash:?}"
    );
    assert_eq!(
        db.count("claims").await,
        2,
        "nothing of a failed batch lands"
    );
    let twice = pg
        .batch_create(
            &claims,
            vec![
                json!({"id": "x", "owner": 1}),
                json!({"id": "x", "owner": 1}),
            ],
        )
        .await;
    assert!(matches!(twice, Err(DataError::Invalid(_))), "{twice:?}");
    let bad_field = pg
        .batch_create(
            &claims,
            vec![
                json!({"id": "y", "owner": 1}),
                json!({"id": "z", "colour": 1}),
            ],
        )
        .await;
    assert!(
        matches!(bad_field, Err(DataError::Invalid(_))),
        "{bad_field:?}"
    );
    assert_eq!(db.count("claims").await, 2);
    assert!(pg.batch_create(&claims, vec![]).await.unwrap().is_empty());

    // Allocated ids in a batch.
    let people = entity("people");
    let ps = pg
        .batch_create(&people, vec![json!({"name": "A"}), json!({"name": "B"})])
        .await
        .unwrap();
    assert_eq!(
        (ps[0]["id"].clone(), ps[1]["id"].clone()),
        (json!(1), json!(2))
    );

    // batch_update: all patches or none.
    let tagged = pg
        .batch_update(
            &claims,
            vec![
                (id("prov-1-600"), json!({"owner": 42})),
                (id("op-1-600"), json!({"owner": 42})),
            ],
        )
        .await
        .unwrap();
    assert_eq!(tagged[0]["owner"], 42);
    let missing = pg
        .batch_update(
            &claims,
            vec![
                (id("prov-1-600"), json!({"owner": 43})),
                (id("nope"), json!({"owner": 43})),
            ],
        )
        .await;
    assert!(
        matches!(missing, Err(DataError::NotFound { ref id, .. }) if id == "nope"),
        "{missing:?}"
    );
    assert_eq!(
        pg.get(&claims, &id("prov-1-600")).await.unwrap().unwrap()["owner"],
        42,
        "the first patch was rolled back"
    );
    let dup_email = pg
        .batch_update(
            &people,
            vec![
                (id(1), json!({"email": "same@x"})),
                (id(2), json!({"email": "same@x"})),
            ],
        )
        .await;
    assert!(
        matches!(dup_email, Err(DataError::Conflict { .. })),
        "{dup_email:?}"
    );
    assert_eq!(
        pg.get(&people, &id(1)).await.unwrap().unwrap()["email"],
        Value::Null
    );
}

#[tokio::test]
async fn conditional_writes_tell_conflict_from_not_found() {
    let db = fresh(PEOPLE).await;
    let pg = adapter(&db, json!({"people": "people"})).await;
    let people = entity("people");
    pg.create(&people, json!({"name": "Bo", "age": 41}))
        .await
        .unwrap();
    let guarded = pg
        .update_where(
            &people,
            &id(1),
            json!({"age": 42}),
            &[Condition::eq("age", 41)],
        )
        .await
        .unwrap();
    assert_eq!(guarded["age"], 42);
    let stale = pg
        .update_where(
            &people,
            &id(1),
            json!({"age": 99}),
            &[Condition::eq("age", 41)],
        )
        .await;
    assert!(
        matches!(stale, Err(DataError::Conflict { .. })),
        "{stale:?}"
    );
    let gone = pg
        .update_where(
            &people,
            &id(404),
            json!({"age": 99}),
            &[Condition::eq("age", 41)],
        )
        .await;
    assert!(matches!(gone, Err(DataError::NotFound { .. })), "{gone:?}");
    let kept = pg
        .delete_where(&people, &id(1), &[Condition::eq("name", "Someone else")])
        .await;
    assert!(matches!(kept, Err(DataError::Conflict { .. })), "{kept:?}");
    assert!(
        !pg.delete_where(&people, &id(404), &[Condition::eq("age", 1)])
            .await
            .unwrap()
    );
    assert!(
        pg.delete_where(&people, &id(1), &[Condition::eq("age", 42)])
            .await
            .unwrap()
    );
    assert_eq!(db.count("people").await, 0);

    // Racing conditional updates: exactly one wins.
    pg.create(&people, json!({"name": "Race", "age": 0}))
        .await
        .unwrap();
    let pg = Arc::new(pg);
    let mut tasks = Vec::new();
    for i in 1..=8 {
        let pg = pg.clone();
        tasks.push(tokio::spawn(async move {
            pg.update_where(
                &entity("people"),
                &id(2),
                json!({"age": i}),
                &[Condition::eq("age", 0)],
            )
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(DataError::Conflict { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn unique_violations_are_conflicts() {
    let db = fresh(PEOPLE).await;
    let pg = adapter(&db, json!({"people": "people"})).await;
    let people = entity("people");
    pg.create(&people, json!({"name": "A", "email": "a@x"}))
        .await
        .unwrap();
    let b = pg
        .create(&people, json!({"name": "B", "email": "b@x"}))
        .await
        .unwrap();
    let again = pg
        .create(&people, json!({"name": "C", "email": "a@x"}))
        .await;
    assert!(
        matches!(again, Err(DataError::Conflict { .. })),
        "{again:?}"
    );
    let upd = pg
        .update(
            &people,
            &id(b["id"].as_i64().unwrap()),
            json!({"email": "a@x"}),
        )
        .await;
    assert!(matches!(upd, Err(DataError::Conflict { .. })), "{upd:?}");
    let e: Error = upd.unwrap_err().into();
    assert_eq!(e.status(), 409);
}

#[tokio::test]
async fn injection_attempts_stay_values() {
    let db = fresh(PEOPLE).await;
    let pg = adapter(&db, json!({"people": "people"})).await;
    let people = entity("people");
    let evil = "x'); DROP TABLE people; --";
    let made = pg
        .create(
            &people,
            json!({"name": evil, "meta": {"q\" OR 1=1 --": "'"}}),
        )
        .await
        .unwrap();
    assert_eq!(made["name"], evil);
    assert_eq!(
        pg.query(&people, &[Condition::eq("name", evil)])
            .await
            .unwrap()
            .len(),
        1
    );
    for field in [
        "x\" OR 1=1 --",
        "name\" = name OR \"1",
        "'; DROP TABLE people; --",
        "name) OR (1=1",
    ] {
        let q = pg.query(&people, &[Condition::eq(field, "x")]).await;
        assert!(matches!(q, Err(DataError::Invalid(_))), "{field}: {q:?}");
        let c = pg.create(&people, json!({"name": "a", field: 1})).await;
        assert!(
            matches!(c, Err(DataError::Invalid(ref m)) if m.contains(field)),
            "{field}: {c:?}"
        );
        let u = pg.update(&people, &id(1), json!({field: 1})).await;
        assert!(matches!(u, Err(DataError::Invalid(_))), "{field}: {u:?}");
    }
    let q = pg
        .query(
            &people,
            &[
                Condition::new("name", Op::Contains, "' OR '1'='1"),
                Condition::new("id", Op::Gte, 0),
            ],
        )
        .await
        .unwrap();
    assert!(q.is_empty());
    let by_id = pg.get(&people, &id("1 OR 1=1")).await.unwrap();
    assert_eq!(by_id, None);
    assert_eq!(
        db.count("people").await,
        1,
        "the table is still there, with one row"
    );
    // Quoted field names reach the database only as parameters: in a catch-all column
    // they are stored and matched as data.
    let db2 = fresh("CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text, extra jsonb);").await;
    let pg2 = adapter(
        &db2,
        json!({"notes": {"table": "notes", "extra_column": "extra"}}),
    )
    .await;
    let notes = entity("notes");
    let n = pg2
        .create(&notes, json!({"body": "b", "x\" OR 1=1 --": "v"}))
        .await
        .unwrap();
    assert_eq!(n["x\" OR 1=1 --"], "v");
    let hit = pg2
        .query(&notes, &[Condition::eq("x\" OR 1=1 --", "v")])
        .await
        .unwrap();
    assert_eq!(hit.len(), 1);
    let miss = pg2
        .query(&notes, &[Condition::eq("x\" OR 1=1 --", "w")])
        .await
        .unwrap();
    assert!(miss.is_empty());
}

#[tokio::test]
async fn unknown_fields_are_refused_or_kept_in_the_extra_column() {
    let db = fresh(
        "CREATE TABLE notes (nid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text, extra jsonb);
         CREATE TABLE strict (id serial PRIMARY KEY, body text);",
    )
    .await;
    let pg = adapter(
        &db,
        json!({"notes": {"table": "notes", "id_column": "nid", "extra_column": "extra"}, "strict": "strict"}),
    )
    .await;
    let strict = entity("strict");
    let refused = pg
        .create(&strict, json!({"body": "b", "colour": "red"}))
        .await;
    assert!(
        matches!(refused, Err(DataError::Invalid(ref m)) if m.contains("colour")),
        "{refused:?}"
    );
    assert_eq!(db.count("strict").await, 0);

    let notes = entity("notes");
    let n = pg
        .create(&notes, json!({"body": "b", "colour": "red", "size": 3}))
        .await
        .unwrap();
    assert_eq!(
        (
            n["id"].clone(),
            n["nid"].clone(),
            n["colour"].clone(),
            n["size"].clone()
        ),
        (json!(1), json!(1), json!("red"), json!(3))
    );
    assert!(
        n.get("extra").is_none(),
        "the catch-all column is folded in: {n}"
    );
    let up = pg
        .update(&notes, &id(1), json!({"size": 4, "shape": "round"}))
        .await
        .unwrap();
    assert_eq!(
        (
            up["colour"].clone(),
            up["size"].clone(),
            up["shape"].clone()
        ),
        (json!("red"), json!(4), json!("round"))
    );
    let found = pg
        .query(
            &notes,
            &[Condition::new("size", Op::Gt, 3), Condition::eq("id", 1)],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let schema = pg.get_schema(&notes).await.unwrap();
    assert_eq!(schema["additionalProperties"], true);
}

#[tokio::test]
async fn invalid_configs_are_422() {
    let bad = PgConfig::parse(
        json!({
            "schema": "public; DROP",
            "entities": {"patients": {"table": "pat\"ients"}, "x": 5},
            "timeout_ms": 1
        })
        .as_object()
        .unwrap(),
    )
    .unwrap_err();
    let paths: Vec<&str> = bad.iter().map(|d| d.path.as_str()).collect();
    for want in [
        "/credential",
        "/schema",
        "/entities/patients/table",
        "/entities/x",
        "/timeout_ms",
    ] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }

    let org = OrgId::parse(unique("org")).unwrap();
    let (secrets, credential) =
        secrets_with(&org, json!({"connection_string": server_url()})).await;
    let adapters = switchboard_tests::config_check(secrets);
    let check = |settings: Value| {
        let mut m = settings.as_object().unwrap().clone();
        m.insert("type".into(), json!("postgres"));
        serde_json::from_value::<DataAdapterConfig>(Value::Object(m)).unwrap()
    };
    let cases = [
        (
            json!({"entities": {"patients": "patients"}}),
            "/data_adapter/credential",
        ),
        (
            json!({"credential": credential, "entities": {"patients": "bad table"}}),
            "/data_adapter/entities/patients",
        ),
        (
            json!({"credential": format!("switchboard/{org}/missing"), "entities": {"patients": "patients"}}),
            "/data_adapter/credential",
        ),
        (
            json!({"credential": "switchboard/other-org/supabase", "entities": {"patients": "patients"}}),
            "/data_adapter/credential",
        ),
    ];
    for (settings, path) in cases {
        let e = adapters
            .check(&org, &check(settings.clone()), "/data_adapter")
            .await
            .unwrap_err();
        assert_eq!(e.status(), 422, "{settings}: {e:?}");
        let body = e.to_body();
        let details: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["path"].as_str())
            .collect();
        assert!(details.contains(&path), "{settings}: {details:?}");
    }
    adapters
        .check(
            &org,
            &check(json!({"credential": credential, "entities": {"patients": "patients"}})),
            "/data_adapter",
        )
        .await
        .unwrap();

    // A secret without the field, or with a broken string: 422 at call time, no secret shown.
    for secret in [
        json!({"url": "x"}),
        json!({"connection_string": "postgres://u:hunter2@h/db?sslmode=sometimes"}),
        json!({"connection_string": "host=h password=hunter2 nonsense"}),
    ] {
        let s = adapter_with(secret.clone(), json!({"entities": {"people": "people"}})).await;
        let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
        assert!(matches!(e, DataError::Invalid(_)), "{secret}: {e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    // The table or its id column missing is a config problem too.
    let db = fresh(PEOPLE).await;
    let pg = adapter(
        &db,
        json!({"a": "nope", "b": {"table": "people", "id_column": "pk"}}),
    )
    .await;
    for name in ["a", "b"] {
        let e = pg.get(&entity(name), &id(1)).await.unwrap_err();
        assert!(matches!(e, DataError::Invalid(_)), "{e:?}");
        assert_eq!(Error::from(e).status(), 422);
    }
}

/// A URL to the test server's port replaced, and its password.
fn url_on(port: u16, query: &str) -> String {
    let url = server_url();
    let (before, after) = url.split_once('@').unwrap();
    let db = after.split_once('/').unwrap().1;
    format!("{before}@127.0.0.1:{port}/{db}{query}")
}

#[tokio::test]
async fn a_dead_database_fails_fast_with_502() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = url_on(port, "");
    let s = adapter_with(
        json!({"connection_string": url}),
        json!({"entities": {"people": "people"}}),
    )
    .await;
    let started = Instant::now();
    let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(e, DataError::Upstream(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("people"), "{msg}");
    assert!(!msg.contains(&password(&url)), "{msg}");
    let e = Error::from(e);
    assert_eq!((e.status(), e.code()), (502, "upstream_error"));
}

#[tokio::test]
async fn a_silent_database_times_out_with_504() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
        }
    });
    let s = adapter_with(
        json!({"connection_string": url_on(port, "?sslmode=disable")}),
        json!({"entities": {"people": "people"}, "timeout_ms": 500}),
    )
    .await;
    let started = Instant::now();
    let e = s
        .data
        .query(&entity("people"), &[Condition::eq("name", "x")])
        .await
        .unwrap_err();
    let took = started.elapsed();
    // timeout_ms is the whole call's budget, connecting included (not a fixed 5 s on top).
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(500 + 400),
        "took {took:?}"
    );
    let e = Error::from(e);
    assert_eq!((e.status(), e.code()), (504, "upstream_timeout"), "{e:?}");
    held.abort();
}

#[tokio::test]
async fn a_wrong_password_is_502_without_the_password() {
    let url = server_url().replace(&password(&server_url()), "wrong-pw-123");
    let s = adapter_with(
        json!({"connection_string": url}),
        json!({"entities": {"people": "people"}}),
    )
    .await;
    let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::Upstream(_)), "{e:?}");
    assert!(
        msg.contains("refused") && msg.contains(&s.credential),
        "{msg}"
    );
    assert!(
        !msg.contains("wrong-pw-123") && !msg.contains(&password(&server_url())),
        "{msg}"
    );

    // After rotation the next call connects with the new value.
    let Value::Object(m) = json!({"connection_string": server_url()}) else {
        panic!()
    };
    s.secrets
        .store(&s.org, "supabase", &SecretValue::new(m))
        .await
        .unwrap();
    let again = s.data.get(&entity("people"), &id(1)).await;
    assert!(
        !matches!(again, Err(DataError::Upstream(_))),
        "the rotated credential is used: {again:?}"
    );
}

#[tokio::test]
async fn tls_modes_against_the_test_server() {
    let db = fresh(PEOPLE).await;
    let ca = std::fs::read_to_string(
        std::env::var("SWITCHBOARD_TEST_POSTGRES_CA")
            .expect("SWITCHBOARD_TEST_POSTGRES_CA is not set; run scripts/test"),
    )
    .unwrap();
    let url = server_url();
    let app = db.schema.clone();
    let settings = json!({"schema": db.schema, "entities": {"people": "people"}});
    let mut alive = Vec::new();
    for secret in [
        json!({"connection_string": format!("{url}?sslmode=require&application_name={app}")}),
        json!({"connection_string": format!("{url}?sslmode=verify-full&application_name={app}"), "ca_cert": ca}),
        json!({"connection_string": format!("{url}?application_name={app}&sslmode=verify-ca"), "ca_cert": ca}),
        json!({"connection_string": url.replace("127.0.0.1", "localhost") + "?sslmode=verify-full&application_name=" + &app, "ca_cert": ca}),
    ] {
        let s = adapter_with(secret.clone(), settings.clone()).await;
        s.data
            .create(&entity("people"), json!({"name": "tls"}))
            .await
            .unwrap_or_else(|e| panic!("{secret}: {e:?}"));
        alive.push(s);
    }
    let row = db
        .admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        (all, encrypted),
        (4, 4),
        "the adapter's pooled connections are encrypted"
    );
    // Not trusted: the system store does not know the test CA.
    let s = adapter_with(
        json!({"connection_string": format!("{url}?sslmode=verify-full")}),
        settings.clone(),
    )
    .await;
    let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
    assert!(
        matches!(e, DataError::Upstream(_) | DataError::Invalid(_)),
        "{e:?}"
    );
    assert!(!e.to_string().contains(&password(&url)));
}

/// Counts Parse messages that name a statement, on a proxy between adapter and server.
/// PgBouncer in transaction mode would lose such statements between calls.
async fn protocol_proxy() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = server_url()
        .split_once('@')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let named = Arc::new(AtomicUsize::new(0));
    let parses = Arc::new(AtomicUsize::new(0));
    let (n, p) = (named.clone(), parses.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
            let (n, p) = (n.clone(), p.clone());
            tokio::spawn(async move {
                // The startup message has no type byte; every later message does.
                let len = cr.read_i32().await? as usize;
                let mut buf = vec![0; len - 4];
                cr.read_exact(&mut buf).await?;
                sw.write_i32(len as i32).await?;
                sw.write_all(&buf).await?;
                loop {
                    let tag = cr.read_u8().await?;
                    let len = cr.read_i32().await? as usize;
                    let mut body = vec![0; len - 4];
                    cr.read_exact(&mut body).await?;
                    match tag {
                        b'P' => {
                            p.fetch_add(1, Ordering::SeqCst);
                            if body.first() != Some(&0) {
                                n.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        // Bind: portal name, then statement name.
                        b'B' => {
                            let portal_end = body.iter().position(|b| *b == 0).unwrap_or(0);
                            if body.get(portal_end + 1) != Some(&0) {
                                n.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        _ => {}
                    }
                    sw.write_u8(tag).await?;
                    sw.write_i32(len as i32).await?;
                    sw.write_all(&body).await?;
                }
                #[allow(unreachable_code)]
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (port, named, parses)
}

#[tokio::test]
async fn no_named_prepared_statements() {
    let db = fresh(PEOPLE).await;
    let (port, named, parses) = protocol_proxy().await;
    let s = adapter_with(
        json!({"connection_string": url_on(port, "?sslmode=disable")}),
        json!({"schema": db.schema, "entities": {"people": "people", "claims": "claims"}}),
    )
    .await;
    let pg = &s.data;
    let people = entity("people");
    for i in 0..3 {
        let p = pg
            .create(&people, json!({"name": format!("p{i}"), "age": i}))
            .await
            .unwrap();
        let n = p["id"].as_i64().unwrap();
        pg.update_where(
            &people,
            &id(n),
            json!({"age": 10}),
            &[Condition::eq("age", i)],
        )
        .await
        .unwrap();
        pg.get(&people, &id(n)).await.unwrap();
        pg.query(&people, &[Condition::new("age", Op::Gte, 1)])
            .await
            .unwrap();
        pg.list(&people, 1, None).await.unwrap();
    }
    pg.batch_create(
        &entity("claims"),
        vec![
            json!({"id": "a", "owner": 1}),
            json!({"id": "b", "owner": 2}),
        ],
    )
    .await
    .unwrap();
    pg.batch_update(&people, vec![(id(1), json!({"age": 5}))])
        .await
        .unwrap();
    pg.delete_where(&people, &id(1), &[Condition::eq("age", 5)])
        .await
        .unwrap();
    assert!(
        parses.load(Ordering::SeqCst) >= 15,
        "the proxy saw the statements"
    );
    assert_eq!(
        named.load(Ordering::SeqCst),
        0,
        "a statement was prepared by name"
    );
    // Control: a client that prepares by name (tokio-postgres' `query`) is caught.
    let (client, conn) =
        tokio_postgres::connect(&url_on(port, "?sslmode=disable"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    client.query("SELECT 1", &[]).await.unwrap();
    assert!(
        named.load(Ordering::SeqCst) > 0,
        "the proxy sees named statements"
    );
}

#[tokio::test]
async fn the_booking_fixture_serves_booking_style_calls() {
    let db = fresh(BOOKING_SQL).await;
    let pg = adapter(
        &db,
        json!({"patients": "patients", "providers": "providers", "operatories": "operatories",
               "appointments": "appointments", "slot_claims": "slot_claims"}),
    )
    .await;
    let providers = pg
        .list(&entity("providers"), 100, None)
        .await
        .unwrap()
        .items;
    assert_eq!(providers.len(), 2);
    assert_eq!(
        (
            providers[0]["ProvNum"].clone(),
            providers[0]["Abbr"].clone()
        ),
        (json!(1), json!("Dr. Lee"))
    );
    let jordan = pg
        .query(
            &entity("patients"),
            &[Condition::new("FName", Op::BeginsWith, "Jor")],
        )
        .await
        .unwrap();
    assert_eq!(jordan[0]["PatNum"], 1);

    // What CreateAppointment does: claim the units, create, number it, tag the claims.
    let claims = entity("slot_claims");
    let claim = |id: &str, owner: Value| json!({"id": id, "AptNum": owner, "ProvNum": 1, "Op": 1, "AptDate": "2026-12-01", "claimedAt": 1_795_608_000});
    pg.batch_create(
        &claims,
        vec![
            claim("prov-1-100", json!("pending")),
            claim("op-1-100", json!("pending")),
        ],
    )
    .await
    .unwrap();
    let apts = entity("appointments");
    let apt = pg
        .create(
            &apts,
            json!({"PatNum": 1, "ProvNum": 1, "Op": 1, "AptDateTime": "2026-12-01 09:00:00",
                   "AptDate": "2026-12-01", "durationMinutes": 30, "AptStatus": "Scheduled",
                   "Note": "", "ProcDescript": ""}),
        )
        .await
        .unwrap();
    let n = apt["id"].as_i64().unwrap();
    let numbered = pg
        .update(&apts, &id(n), json!({"AptNum": n}))
        .await
        .unwrap();
    assert_eq!(numbered["AptNum"], n);
    pg.batch_update(
        &claims,
        vec![
            (id("prov-1-100"), json!({"AptNum": n})),
            (id("op-1-100"), json!({"AptNum": n})),
        ],
    )
    .await
    .unwrap();
    // A second booking of the same units is refused whole.
    let clash = pg
        .batch_create(
            &claims,
            vec![
                claim("prov-2-100", json!("pending")),
                claim("op-1-100", json!("pending")),
            ],
        )
        .await;
    assert!(
        matches!(clash, Err(DataError::Conflict { .. })),
        "{clash:?}"
    );
    // Cancel: conditional on the appointment as read, then release its claims by owner.
    let cancelled = pg
        .update_where(
            &apts,
            &id(n),
            json!({"AptStatus": "Broken", "CancelReason": "sick"}),
            &[
                Condition::eq("AptStatus", "Scheduled"),
                Condition::eq("AptDateTime", "2026-12-01 09:00:00"),
                Condition::eq("ProvNum", 1),
                Condition::eq("durationMinutes", 30),
            ],
        )
        .await
        .unwrap();
    assert_eq!(cancelled["AptStatus"], "Broken");
    for c in ["prov-1-100", "op-1-100"] {
        assert!(
            pg.delete_where(&claims, &id(c), &[Condition::eq("AptNum", n)])
                .await
                .unwrap()
        );
    }
    let day = pg
        .query(
            &apts,
            &[
                Condition::new("AptDate", Op::Gte, "2026-12-01"),
                Condition::new("AptDate", Op::Lte, "2026-12-31"),
                Condition::eq("PatNum", 1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(day.len(), 1);
    assert_eq!(db.count("slot_claims").await, 0);
}

/// The demo tenant (a fresh one) with its booking instance on `db`'s booking tables, the
/// connection string resolved from a credential.
async fn booking_on(db: &Db, prefix: &str) -> crate::fixtures::Demo {
    let suffix = unique(prefix);
    let org = switchboard_cli::seed::demo_org(Some(&suffix)).unwrap();
    let (secrets, credential) =
        secrets_with(&org, json!({"connection_string": server_url()})).await;
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
    let adapter = serde_json::from_value(json!({
        "type": "postgres", "credential": credential, "schema": db.schema, "entities": entities,
    }))
    .unwrap();
    crate::fixtures::demo_on(
        switchboard_tests::embedded_tables(),
        Some(&suffix),
        Some(adapter),
        secrets,
    )
    .await
}

/// The demo booking flow through the pipeline with the booking instance on PostgreSQL (the
/// fixture's tables in a fresh schema), the connection string resolved from a credential.
#[tokio::test]
async fn booking_flow_on_postgres() {
    let db = fresh(BOOKING_SQL).await;
    let demo = booking_on(&db, "pg").await;
    crate::adapters::booking_flow(demo.platform, demo.org, "2027-06-03").await;
    assert_eq!(
        db.count("appointments").await,
        1,
        "the booking landed in PostgreSQL"
    );
}

/// Eight callers race for one slot with booking on PostgreSQL (the operator's indexes in
/// place): one 200, seven 409, one appointment, and the day's indexed lookup finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bookings_on_postgres_make_one_appointment() {
    let db = fresh(BOOKING_SQL).await;
    db.admin
        .batch_execute(&format!(
            "SET search_path TO {};
             CREATE INDEX ON appointments (\"AptDate\" COLLATE \"C\");
             CREATE INDEX ON appointments (\"PatNum\");
             CREATE INDEX ON slot_claims (\"AptDate\" COLLATE \"C\");",
            db.schema
        ))
        .await
        .unwrap();
    let demo = booking_on(&db, "pgrace").await;
    let svc = Arc::new(crate::fixtures::booking_service(&demo.platform));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let svc = svc.clone();
        let org = demo.org.clone();
        tasks.spawn(async move {
            let body = json!({"function": "CreateAppointment",
                "parameters": {"PatNum": 3, "ProvNum": 2, "AptDateTime": "2027-06-03 14:00"}})
            .to_string();
            svc.call(switchboard::pipeline::CallInput {
                tenant: Some(
                    switchboard::auth::TenantContext::new(org).with_scopes(&["plugins:call"]),
                ),
                body: body.as_bytes(),
                request_id: "race",
                idempotency_key: None,
            })
            .await
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert!(status == 200 || status == 409, "{status}: {body}");
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(db.count("appointments").await, 1);
    let body = json!({"function": "GetAppointments",
        "parameters": {"PatNum": 3, "startDate": "2027-06-03", "endDate": "2027-06-03"}})
    .to_string();
    let (status, listed) = svc
        .call(switchboard::pipeline::CallInput {
            tenant: Some(
                switchboard::auth::TenantContext::new(demo.org.clone())
                    .with_scopes(&["plugins:call"]),
            ),
            body: body.as_bytes(),
            request_id: "list",
            idempotency_key: None,
        })
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["result"]["appointments"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

/// The error of one call, and the body of the 422 a config write naming the credential
/// gets, with the credential's name replaced by `<credential>`.
async fn errors_for(value: Value) -> (DataError, String) {
    let s = adapter_with(value, json!({"entities": {"people": "people"}})).await;
    let call = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
    let e = write_check(&s).await.unwrap_err();
    assert_eq!(e.status(), 422, "{e:?}");
    let body = e.to_body();
    assert!(
        body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "/data_adapter/credential"),
        "{body}"
    );
    let call = match call {
        DataError::Invalid(m) => DataError::Invalid(m.replace(&s.credential, "<credential>")),
        other => other,
    };
    (
        call,
        body.to_string().replace(&s.credential, "<credential>"),
    )
}

/// The write-time check of a postgres config naming the setup's credential.
async fn write_check(s: &Setup) -> Result<(), Error> {
    let adapters = switchboard_tests::config_check(s.secrets.clone());
    let written: DataAdapterConfig = serde_json::from_value(json!({
        "type": "postgres", "credential": s.credential, "entities": {"people": "people"}
    }))
    .unwrap();
    adapters
        .check(&s.org, &written, "/data_adapter")
        .await
        .map(drop)
}

#[tokio::test]
async fn root_cert_files_named_by_the_tenant_are_never_read() {
    let url = server_url();
    let mut messages = Vec::new();
    for root in [
        "/etc/passwd",
        "/nonexistent/ca.pem",
        "/dev/zero",
        "/proc/self/environ",
    ] {
        for value in [
            json!({"connection_string": format!("{url}?sslrootcert={root}")}),
            json!({"connection_string": format!("{url}?sslmode=verify-full&sslrootcert={root}")}),
        ] {
            let started = Instant::now();
            let (call, written) = errors_for(value.clone()).await;
            assert!(started.elapsed() < Duration::from_secs(2));
            assert!(matches!(call, DataError::Invalid(_)), "{value}: {call:?}");
            let msg = call.to_string();
            assert!(
                msg.contains("sslrootcert") && msg.contains("ca_cert"),
                "{msg}"
            );
            assert!(
                !msg.contains(root) && !written.contains(root),
                "{msg} {written}"
            );
            assert_eq!(Error::from(call).status(), 422);
            messages.push((msg, written));
        }
    }
    // The same words whether the file exists or not: nothing tells paths apart.
    assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");

    // `system` is allowed: the system store (which does not know the test CA).
    let s = adapter_with(
        json!({"connection_string": format!("{url}?sslmode=verify-full&sslrootcert=system")}),
        json!({"entities": {"people": "people"}}),
    )
    .await;
    write_check(&s).await.unwrap();
    let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
    assert!(matches!(e, DataError::Upstream(_)), "{e:?}");
}

#[tokio::test]
async fn connection_string_fragments_never_reach_errors() {
    let token = "Zq7Tok3nXy";
    let port = {
        let u = server_url();
        let hostport = u
            .split_once('@')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        hostport.rsplit(':').next().unwrap().to_owned()
    };
    for conn in [
        // An unquoted password with a space: the driver would say "unknown option `Zq7...`".
        format!("host=127.0.0.1 port={port} user=sb_test password=pa {token}=x dbname=sb_test"),
        format!("host=127.0.0.1 port={port} user=sb_test password=pa {token} dbname=sb_test"),
        format!("host=127.0.0.1 port={port} password='{token}"),
        format!("postgres://sb_test:{token}@127.0.0.1:99999/sb_test"),
        format!("postgres://sb_test:{token}@127.0.0.1:{port}/sb_test?{token}=1"),
        format!("postgres://sb_test:{token}@127.0.0.1:{port}/sb_test?sslmode={token}"),
    ] {
        let (call, written) = errors_for(json!({"connection_string": conn})).await;
        let msg = call.to_string();
        assert!(matches!(call, DataError::Invalid(_)), "{conn}: {call:?}");
        assert!(!msg.contains(token), "{msg}");
        assert!(!written.contains(token), "{written}");
        assert!(
            msg.contains("cannot be parsed") || msg.contains("sslmode"),
            "a fixed message: {msg}"
        );
    }
}

#[tokio::test]
async fn a_rotated_password_is_retried_within_the_call() {
    let db = fresh(PEOPLE).await;
    let good = server_url();
    let wrong = good.replace(&password(&good), "wrong-pw-rot");
    let s = adapter_with(
        json!({"connection_string": wrong}),
        json!({"schema": db.schema, "entities": {"people": "people"}}),
    )
    .await;
    let people = entity("people");
    let e = s.data.get(&people, &id(1)).await.unwrap_err();
    assert_eq!(Error::from(e).status(), 502);

    // Rotated in the store, behind the resolver's cache (TTL 60 s): only the re-fetch on
    // the refusal can find the new value.
    s.store
        .put(&s.credential, &secret(json!({"connection_string": good})))
        .await
        .unwrap();
    let reference = switchboard::secrets::CredentialRef::parse(s.credential.clone()).unwrap();
    let cached = s.secrets.resolve(&s.org, &reference).await.unwrap();
    assert_eq!(cached.field("connection_string"), Some(wrong.as_str()));

    let created = s
        .data
        .create(&people, json!({"name": "rotated"}))
        .await
        .expect("the call retried with the rotated password");
    assert_eq!(created["name"], "rotated");
    assert_eq!(db.count("people").await, 1, "written once");
    let again = s
        .data
        .get(&people, &id(created["id"].clone()))
        .await
        .unwrap();
    assert!(again.is_some());
}

#[tokio::test]
async fn the_secret_is_checked_when_the_config_is_written() {
    let org = OrgId::parse(unique("org")).unwrap();
    let store = Embedded::in_memory().unwrap().secret_store();
    let secrets = Arc::new(Secrets::new(store, Duration::from_secs(60), "switchboard"));
    let adapters = switchboard_tests::config_check(secrets.clone());
    let written = |credential: &str| -> DataAdapterConfig {
        serde_json::from_value(json!({
            "type": "postgres", "credential": credential, "entities": {"people": "people"}
        }))
        .unwrap()
    };
    let cases = [
        (
            "nofield",
            json!({"url": "postgres://u:hunter2@db.example.com/x"}),
        ),
        (
            "badmode",
            json!({"connection_string": "postgres://u:hunter2@db.example.com/x?sslmode=maybe"}),
        ),
        (
            "rootfile",
            json!({"connection_string": "postgres://u:hunter2@db.example.com/x?sslrootcert=/etc/ssl/ca.pem"}),
        ),
        (
            "socket",
            json!({"connection_string": "host=/var/run/postgresql user=u password=hunter2"}),
        ),
        (
            "nohost",
            json!({"connection_string": "user=u password=hunter2 dbname=x"}),
        ),
        (
            "garbled",
            json!({"connection_string": "host=db.example.com password=hunter2 port=x"}),
        ),
        (
            "badca",
            json!({"connection_string": "postgres://u:hunter2@db.example.com/x?sslmode=verify-full", "ca_cert": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"}),
        ),
    ];
    for (label, value) in cases {
        let r = secrets.store(&org, label, &secret(value)).await.unwrap();
        let e = adapters
            .check(&org, &written(r.as_str()), "/data_adapter")
            .await
            .expect_err(label);
        assert_eq!(
            (e.status(), e.code()),
            (422, "invalid_config"),
            "{label}: {e:?}"
        );
        let body = e.to_body();
        assert!(
            body["error"]["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["path"] == "/data_adapter/credential"),
            "{label}: {body}"
        );
        assert!(!body.to_string().contains("hunter2"), "{label}: {body}");
    }
    // A good value passes without connecting (nothing listens at this host).
    let r = secrets
        .store(
            &org,
            "good",
            &secret(
                json!({"connection_string": "postgres://u:pw@db.example.invalid:6543/postgres"}),
            ),
        )
        .await
        .unwrap();
    adapters
        .check(&org, &written(r.as_str()), "/data_adapter")
        .await
        .unwrap();
}

/// A listener that counts the connections made to it and holds them open silently.
async fn counting_listener() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            open.push(sock);
        }
    });
    (port, n, task)
}

#[tokio::test]
async fn private_and_socket_hosts_are_refused() {
    let (port, accepted, task) = counting_listener().await;
    let settings = json!({"entities": {"people": "people"}, "timeout_ms": 500});
    for conn in [
        format!("postgres://u:pw@127.0.0.1:{port}/db?sslmode=disable"),
        format!("postgres://u:pw@localhost:{port}/db?sslmode=disable"),
        format!("postgres://u:pw@[::1]:{port}/db?sslmode=disable"),
        format!("host=db.example.com hostaddr=127.0.0.1 port={port} sslmode=disable"),
        "postgres://u:pw@169.254.169.254:5432/db".to_owned(),
        "postgres://u:pw@10.0.0.1:5432/db".to_owned(),
        "postgres://u:pw@192.168.1.10:5432/db".to_owned(),
        "postgres://u:pw@0.0.0.0:5432/db".to_owned(),
        "postgres://u:pw@[::ffff:169.254.169.254]:5432/db".to_owned(),
        "postgres://u:pw@[fd00:ec2::254]:5432/db".to_owned(),
    ] {
        let s = adapter_on(
            PgPools::new(Egress::public_only()),
            json!({"connection_string": conn}),
            settings.clone(),
        )
        .await;
        let started = Instant::now();
        let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{conn}");
        assert!(matches!(e, DataError::Invalid(_)), "{conn}: {e:?}");
        assert!(e.to_string().contains("private"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "no connection was attempted"
    );

    // Unix sockets: never, even where private upstreams are allowed.
    for allowed in [false, true] {
        let s = adapter_on(
            PgPools::new(Egress::new(allowed)),
            json!({"connection_string": "host=/tmp port=5432 user=u password=pw"}),
            settings.clone(),
        )
        .await;
        let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
        assert!(
            matches!(&e, DataError::Invalid(m) if m.contains("unix socket")),
            "{e:?}"
        );
    }

    // Control: allowed, the same address is connected to.
    let s = adapter_on(
        PgPools::new(Egress::new(true)),
        json!({"connection_string": format!("postgres://u:pw@127.0.0.1:{port}/db?sslmode=disable")}),
        settings,
    )
    .await;
    let e = s.data.get(&entity("people"), &id(1)).await.unwrap_err();
    assert_eq!(Error::from(e).status(), 504);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    task.abort();
}

/// The adapter's connections to the test server tagged `app`: (all, waiting on a lock).
async fn backends(db: &Db, app: &str) -> (i64, i64) {
    let row = db
        .admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') \
             FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Polls until `f` holds (at most 3 s).
async fn eventually(db: &Db, app: &str, f: impl Fn((i64, i64)) -> bool) -> (i64, i64) {
    let mut last = backends(db, app).await;
    for _ in 0..60 {
        if f(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = backends(db, app).await;
    }
    last
}

/// A second admin session holding an exclusive lock on `people` until dropped/rolled back.
async fn lock_people(db: &Db) -> tokio_postgres::Client {
    let (locker, conn) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {}.people IN ACCESS EXCLUSIVE MODE",
            db.schema
        ))
        .await
        .unwrap();
    locker
}

#[tokio::test]
async fn settings_changes_take_effect_and_timed_out_statements_are_cancelled() {
    let db = fresh(PEOPLE).await;
    let app = db.schema.clone();
    let url = format!("{}?application_name={app}", server_url());
    let settings = |max: u64, ms: u64| json!({"schema": db.schema, "entities": {"people": "people"}, "max_connections": max, "timeout_ms": ms});
    let s = adapter_with(json!({"connection_string": url}), settings(1, 5000)).await;
    let people = entity("people");
    s.data.get(&people, &id(1)).await.unwrap();

    // The same credential, now with a 300 ms budget: a blocked statement answers 504 in
    // time, and the server is asked to cancel it (it does not stay waiting on the lock).
    let short = s.with_settings(settings(1, 300));
    let locker = lock_people(&db).await;
    let started = Instant::now();
    let e = short.get(&people, &id(1)).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(300 + 400), "took {took:?}");
    assert_eq!(Error::from(e).status(), 504);
    let (_, waiting) = eventually(&db, &app, |(_, w)| w == 0).await;
    assert_eq!(waiting, 0, "the timed-out statement was cancelled");

    // Three connections now: three calls wait on the lock at once.
    let wide = s.with_settings(settings(3, 1500));
    let one = id(1);
    let watch = async { eventually(&db, &app, |(_, w)| w == 3).await };
    let (r1, r2, r3, (_, waiting)) = tokio::join!(
        wide.get(&people, &one),
        wide.get(&people, &one),
        wide.get(&people, &one),
        watch
    );
    assert_eq!(waiting, 3, "max_connections 3 took effect");
    for r in [r1, r2, r3] {
        assert_eq!(Error::from(r.unwrap_err()).status(), 504);
    }
    locker.batch_execute("ROLLBACK").await.unwrap();
    wide.get(&people, &id(1)).await.unwrap();
}

#[tokio::test]
async fn idle_connections_are_swept() {
    let db = fresh(PEOPLE).await;
    let app = db.schema.clone();
    let pools = PgPools::with_max_idle(Egress::new(true), Duration::from_millis(300));
    let settings =
        json!({"schema": db.schema, "entities": {"people": "people"}, "max_connections": 3});
    let a = adapter_on(
        pools.clone(),
        json!({"connection_string": format!("{}?application_name={app}", server_url())}),
        settings.clone(),
    )
    .await;
    let people = entity("people");
    let locker = lock_people(&db).await;
    let one = id(1);
    let unlock = async {
        eventually(&db, &app, |(_, w)| w == 3).await;
        locker.batch_execute("ROLLBACK").await.unwrap();
    };
    let (r1, r2, r3, ()) = tokio::join!(
        a.data.get(&people, &one),
        a.data.get(&people, &one),
        a.data.get(&people, &one),
        unlock
    );
    for r in [r1, r2, r3] {
        r.unwrap();
    }
    assert_eq!(backends(&db, &app).await.0, 3, "three idle connections");

    // Past the idle limit, any use of the pools (here another credential's) closes them,
    // though this pool is never checked out again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other_app = format!("{app}_b");
    let b = adapter_on(
        pools,
        json!({"connection_string": format!("{}?application_name={other_app}", server_url())}),
        settings,
    )
    .await;
    b.data.get(&people, &id(1)).await.unwrap();
    let (open, _) = eventually(&db, &app, |(n, _)| n == 0).await;
    assert_eq!(open, 0, "idle connections past the limit were closed");
    assert_eq!(backends(&db, &other_app).await.0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_calls_share_one_pool() {
    let db = fresh(PEOPLE).await;
    let app = db.schema.clone();
    let s = adapter_with(
        json!({"connection_string": format!("{}?application_name={app}", server_url())}),
        json!({"schema": db.schema, "entities": {"people": "people"}, "max_connections": 1}),
    )
    .await;
    let data = Arc::new(s.data);
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let d = data.clone();
            tokio::spawn(async move { d.get(&entity("people"), &id(1)).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(backends(&db, &app).await.0, 1, "one pool, one connection");
}

/// Booking's lookups with its own declared indexes: refused unless a declared field answers
/// them, paged by id, and — once the demo tables hold a realistic history and carry the
/// indexes the README tells operators to create — answered by an index scan, not a
/// sequential one.
#[tokio::test]
async fn booking_lookups_are_paged_and_use_the_operators_indexes() {
    let db = fresh(BOOKING_SQL).await;
    let booking = booking::plugin().unwrap();
    let indexes = booking.manifest().manifest().indexes.clone();
    let s = adapter_with(
        json!({"connection_string": server_url()}),
        json!({"schema": db.schema, "entities": {"appointments": "appointments", "slot_claims": "slot_claims"}}),
    )
    .await;
    let pg = s.with_indexes(json!({"schema": db.schema, "entities": {"appointments": "appointments", "slot_claims": "slot_claims"}}), indexes);
    let apts = entity("appointments");

    // 20,000 appointments over 400 days; 50 on 2026-12-15.
    db.admin
        .batch_execute(&format!(
            "SET search_path TO {};
             INSERT INTO appointments (\"PatNum\", \"ProvNum\", \"Op\", \"AptDateTime\", \"AptDate\")
             SELECT 1 + g % 500, 1 + g % 2, 1 + g % 2,
                    to_char(d, 'YYYY-MM-DD') || ' 09:00:00', to_char(d, 'YYYY-MM-DD')
             FROM generate_series(0, 19999) AS g,
                  LATERAL (SELECT date '2026-01-01' + (g % 400) AS d) AS day;
             UPDATE appointments SET \"AptNum\" = id;",
            db.schema
        ))
        .await
        .unwrap();
    let day = [Condition::eq("AptDate", "2026-12-15")];
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = pg
            .query_page(&apts, &day, 20, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.items.iter().all(|r| r["AptDate"] == "2026-12-15"));
        seen += page.items.len();
        pages += 1;
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!((seen, pages), (50, 3));
    let undeclared = pg
        .query(&apts, &[Condition::eq("AptStatus", "Scheduled")])
        .await;
    assert!(
        matches!(undeclared, Err(DataError::Undeclared(ref m)) if m.contains("AptDate, PatNum")),
        "{undeclared:?}"
    );

    // Without the operator's indexes the planner has nothing but the table to scan.
    let plan = pg.explain(&apts, &day).await.unwrap();
    assert!(plan.contains("Seq Scan"), "{plan}");
    db.admin
        .batch_execute(&format!(
            "SET search_path TO {};
             CREATE INDEX ON appointments (\"AptDate\" COLLATE \"C\");
             CREATE INDEX ON appointments (\"PatNum\");
             CREATE INDEX ON slot_claims (\"AptDate\" COLLATE \"C\");
             ANALYZE appointments; ANALYZE slot_claims;",
            db.schema
        ))
        .await
        .unwrap();
    for (filter, index) in [
        (day.to_vec(), "AptDate"),
        (vec![Condition::eq("PatNum", 42)], "PatNum"),
        (
            vec![
                Condition::new("AptDate", Op::Gte, "2026-12-14"),
                Condition::new("AptDate", Op::Lte, "2026-12-16"),
            ],
            "AptDate",
        ),
        (
            vec![
                Condition::eq("AptDate", "2026-12-15"),
                Condition::eq("PatNum", 42),
            ],
            "AptDate",
        ),
    ] {
        let plan = pg.explain(&apts, &filter).await.unwrap();
        // The field's own index, not the primary key's walked in id order.
        assert!(
            plan.contains("Index Scan") && plan.contains(&format!("{index}_idx")),
            "{filter:?}: {plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{filter:?}: {plan}");
    }
    assert_eq!(pg.query(&apts, &day).await.unwrap().len(), 50);
}

/// support on PostgreSQL: the contact keys it declares are computed in SQL from the row, so
/// tickets written by any tool (or before the keys existed) are found with no backfill; a
/// caller's tickets are one lookup of the README's expression index, not a read of every
/// ticket of the status.
#[tokio::test]
async fn support_finds_a_callers_tickets_through_expression_indexes() {
    let db = fresh(SUPPORT_SQL).await;
    let plugin = support::plugin().unwrap();
    let indexes = plugin.manifest().manifest().indexes.clone();
    let settings = json!({"schema": db.schema,
        "entities": {"tickets": "tickets", "ticket_comments": "ticket_comments"}});
    let s = adapter_with(json!({"connection_string": server_url()}), settings.clone()).await;
    // 20,000 tickets from another tool: 5,000 contacts, four tickets each.
    db.admin
        .batch_execute(&format!(
            "SET search_path TO {};
             INSERT INTO tickets (subject, status, contact)
             SELECT 'T' || g, (ARRAY['open', 'pending', 'resolved'])[1 + g % 3],
                    jsonb_build_object('name', 'N' || g,
                        'phone', '(555) 01' || lpad((g % 5000)::text, 5, '0'),
                        'email', ' User' || (g % 5000) || '@Example.com')
             FROM generate_series(0, 19999) AS g;",
            db.schema
        ))
        .await
        .unwrap();
    let mut h = switchboard_testkit::Harness::new(plugin, s.org.as_str()).channel("twilio");
    h.data = Arc::new(s.with_indexes(settings.clone(), indexes.clone()));
    let created = h
        .ok(
            "CreateTicket",
            json!({"subject": "Portal down", "description": "Cannot log in.",
                   "contact": {"name": "Ana", "phone": "555.010.0042"}}),
        )
        .await;
    assert_eq!(created["ticketId"], "20001");
    let subjects = |r: &Value| -> Vec<String> {
        r["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    // Contact 42's tickets are 42 (open), 5042 (resolved), 10042 (pending), 15042 (open).
    let by_phone = h
        .ok(
            "ListTickets",
            json!({"status": "open", "phone": "+1 555 010 0042"}),
        )
        .await;
    assert_eq!(subjects(&by_phone), ["Portal down", "T15042", "T42"]);
    let by_mail = h
        .ok(
            "ListTickets",
            json!({"status": "pending", "email": "user42@EXAMPLE.com"}),
        )
        .await;
    assert_eq!(subjects(&by_mail), ["T10042"]);

    let pg = s.with_indexes(settings, indexes);
    let tickets = entity("tickets");
    let lookups = [
        (
            vec![
                Condition::eq("contactPhone", "+1 555 010 0042"),
                Condition::eq("status", "open"),
            ],
            "tickets_contact_phone",
        ),
        (
            vec![
                Condition::eq("contactEmail", "user42@example.com"),
                Condition::eq("status", "pending"),
            ],
            "tickets_contact_email",
        ),
    ];
    for (filter, _) in &lookups {
        let plan = pg.explain(&tickets, filter).await.unwrap();
        assert!(plan.contains("Seq Scan"), "{plan}");
    }
    db.admin
        .batch_execute(&format!(
            "SET search_path TO {}; {SUPPORT_INDEXES_SQL} ANALYZE tickets;",
            db.schema
        ))
        .await
        .unwrap();
    for (filter, index) in &lookups {
        let plan = pg.explain(&tickets, filter).await.unwrap();
        assert!(
            plan.contains("Index Scan") && plan.contains(index),
            "{filter:?}: {plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{filter:?}: {plan}");
    }
    assert_eq!(
        subjects(
            &h.ok(
                "ListTickets",
                json!({"status": "open", "phone": "(555) 0100042"}),
            )
            .await
        ),
        ["Portal down", "T15042", "T42"]
    );
}

/// The README gives operators the statements the test above proves.
#[test]
fn the_readme_gives_supports_index_statements() {
    let readme = include_str!("../../../README.md");
    for statement in SUPPORT_INDEXES_SQL
        .lines()
        .filter(|l| l.starts_with("CREATE INDEX"))
    {
        assert!(readme.contains(statement), "README.md lacks: {statement}");
    }
}
