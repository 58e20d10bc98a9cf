//! The `rest` data adapter against real json-server 0.17 instances that `scripts/test`
//! starts (see `scripts/rest.sh` and `tests/fixtures/rest/`): a normal one (bearer auth on
//! `/secure_*` and for writes to `/guarded_*`, 150 ms late on `/slow_*`), a slow one (3 s per
//! answer) and a failing one (500s, 503s on `/flaky`, and request counts at
//! `/__requests/<METHOD>:<segment>`). `scripts/test` also sets
//! `SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1`: the servers listen on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use switchboard::egress::Egress;
use switchboard::ports::AdapterCheck;
use switchboard::registry::DataAdapterConfig;
use switchboard::secrets::{CredentialRef, SecretError, SecretStore, SecretValue, Secrets};
use switchboard::spec::{AdapterKind, RestConfig};
use switchboard::{Condition, DataAdapter, DataError, EntityName, Error, Op, OrgId, RecordId};
use switchboard_embedded::Embedded;
use switchboard_rest::{RestClient, RestData};
use switchboard_tests::unique;

/// The token `tests/fixtures/rest/auth.js` accepts on `/secure_*`.
const TOKEN: &str = "sb-rest-test-token-v2";

/// A server URL set by `scripts/test`. Without it these tests fail, never skip.
fn server(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: the rest adapter tests run against json-server, which \
             scripts/test installs and starts (scripts/rest.sh). Run scripts/test."
        ),
    }
}

fn org() -> OrgId {
    OrgId::parse("rest-acme").unwrap()
}

fn entity(name: &str) -> EntityName {
    EntityName::parse(name).unwrap()
}

fn id(s: impl ToString) -> RecordId {
    RecordId::parse(s.to_string()).unwrap()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn secret(fields: Value) -> SecretValue {
    SecretValue::new(object(fields))
}

/// A secret store and a resolver over it (a long TTL: rotation is seen only on refresh).
fn secrets() -> (Arc<dyn SecretStore>, Arc<Secrets>) {
    let db = Embedded::in_memory().unwrap();
    let store = db.secret_store();
    let resolver = Secrets::new(store.clone(), Duration::from_secs(300), "switchboard");
    (store, Arc::new(resolver))
}

fn adapter(secrets: Arc<Secrets>, settings: Value) -> RestData {
    let config =
        RestConfig::parse(&object(settings)).unwrap_or_else(|p| panic!("config refused: {p:?}"));
    RestData::new(
        RestClient::new(switchboard_tests::egress(), switchboard_tests::tls()),
        Arc::new(config),
        secrets,
        org(),
        test_indexes(),
    )
}

/// Every field these tests query, declared, so they exercise what each condition sends.
fn test_indexes() -> switchboard::index::Indexes {
    switchboard_tests::indexes(
        &[
            "claims", "comp", "flaky", "invoices", "items", "notes", "patients", "requests", "x",
        ],
        &[
            "FName",
            "age",
            "n",
            "no_such_field",
            "ok",
            "tag",
            "text",
            "name",
            "status",
        ],
    )
}

fn plain(settings: Value) -> RestData {
    adapter(secrets().1, settings)
}

fn id_of(record: &Value) -> String {
    match &record["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("no id in {record}: {other}"),
    }
}

#[tokio::test]
async fn crud_queries_and_batches_against_json_server() {
    let a = plain(json!({
        "base_url": server("SWITCHBOARD_TEST_REST"),
        "entities": {"patients": "/crud_patients", "claims": {"path": "/claims", "item": "/claims/{id}"}, "comp": "/comp"},
    }));
    let patients = entity("patients");
    let tag = unique("tag");

    // Allocated ids are json-server's numbers; an explicit id is checked first.
    let ada = a
        .create(&patients, json!({"FName": "Ada", "age": 36, "tag": tag}))
        .await
        .unwrap();
    let bo = a
        .create(&patients, json!({"FName": "Bo", "age": 41, "tag": tag}))
        .await
        .unwrap();
    assert!(ada["id"].is_u64() && bo["id"].is_u64(), "{ada} {bo}");
    let (ada_id, bo_id) = (id_of(&ada), id_of(&bo));
    let cy_id = unique("cy");
    let cy = a
        .create(
            &patients,
            json!({"id": cy_id, "FName": "Cy", "age": 29, "tag": tag}),
        )
        .await
        .unwrap();
    assert_eq!(cy["id"], cy_id.as_str());
    let dup = a.create(&patients, json!({"id": cy_id})).await;
    assert!(matches!(dup, Err(DataError::Conflict { .. })), "{dup:?}");
    let dup_number = a.create(&patients, json!({"id": ada["id"]})).await;
    assert!(
        matches!(dup_number, Err(DataError::Conflict { .. })),
        "{dup_number:?}"
    );
    let bad = a.create(&patients, json!([1, 2])).await;
    assert!(matches!(bad, Err(DataError::Invalid(_))), "{bad:?}");

    // Read, update, delete.
    assert_eq!(
        a.get(&patients, &id(&ada_id)).await.unwrap().unwrap()["FName"],
        "Ada"
    );
    assert_eq!(a.get(&patients, &id("no-such-id")).await.unwrap(), None);
    let up = a
        .update(&patients, &id(&ada_id), json!({"age": 37, "id": "hijack"}))
        .await
        .unwrap();
    assert_eq!(
        (up["age"].clone(), id_of(&up), up["FName"].clone()),
        (json!(37), ada_id.clone(), json!("Ada"))
    );
    let missing = a.update(&patients, &id("no-such-id"), json!({})).await;
    assert!(
        matches!(missing, Err(DataError::NotFound { .. })),
        "{missing:?}"
    );

    // Conditional writes act only on what the caller read.
    let guarded = a
        .update_where(
            &patients,
            &id(&bo_id),
            json!({"age": 42}),
            &[Condition::eq("age", 41)],
        )
        .await
        .unwrap();
    assert_eq!(guarded["age"], 42);
    let stale = a
        .update_where(
            &patients,
            &id(&bo_id),
            json!({"age": 99}),
            &[Condition::eq("age", 41)],
        )
        .await;
    assert!(
        matches!(stale, Err(DataError::Conflict { .. })),
        "{stale:?}"
    );
    let kept = a
        .delete_where(
            &patients,
            &id(&bo_id),
            &[Condition::eq("FName", "Someone else")],
        )
        .await;
    assert!(matches!(kept, Err(DataError::Conflict { .. })), "{kept:?}");
    assert_eq!(
        a.get(&patients, &id(&bo_id)).await.unwrap().unwrap()["age"],
        42
    );
    assert!(
        !a.delete_where(&patients, &id("no-such-id"), &[Condition::eq("age", 1)])
            .await
            .unwrap()
    );

    // Queries: pushed filters (eq, gte, lte, contains) and local ones (begins_with, ne), all
    // checked again here.
    let mine = Condition::eq("tag", tag.as_str());
    let names = |rs: Vec<Value>| {
        let mut n: Vec<String> = rs
            .iter()
            .filter_map(|r| r["FName"].as_str().map(str::to_owned))
            .collect();
        n.sort();
        n
    };
    let older = a
        .query(
            &patients,
            &[mine.clone(), Condition::new("age", Op::Gte, 37)],
        )
        .await
        .unwrap();
    assert_eq!(names(older), vec!["Ada", "Bo"]);
    let younger = a
        .query(
            &patients,
            &[mine.clone(), Condition::new("age", Op::Lte, 37)],
        )
        .await
        .unwrap();
    assert_eq!(names(younger), vec!["Ada", "Cy"]);
    let c = a
        .query(
            &patients,
            &[mine.clone(), Condition::new("FName", Op::BeginsWith, "C")],
        )
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["id"], cy_id.as_str());
    // json-server's `_like` ignores case; Switchboard's `contains` does not.
    let with_d = a
        .query(
            &patients,
            &[mine.clone(), Condition::new("FName", Op::Contains, "D")],
        )
        .await
        .unwrap();
    assert!(with_d.is_empty(), "{with_d:?}");
    let not_ada = a
        .query(
            &patients,
            &[mine.clone(), Condition::new("FName", Op::Ne, "Ada")],
        )
        .await
        .unwrap();
    assert_eq!(names(not_ada), vec!["Bo", "Cy"]);
    // json-server ignores a parameter no record has; the local check does not.
    let none = a
        .query(&patients, &[Condition::eq("no_such_field", 1)])
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    let regexish = a
        .query(
            &patients,
            &[mine.clone(), Condition::new("FName", Op::Contains, "(")],
        )
        .await
        .unwrap();
    assert!(regexish.is_empty());

    // Batches: an existing id fails the batch before anything is written.
    let claims = entity("claims");
    let (c1, c2, c3) = (unique("c1"), unique("c2"), unique("c3"));
    let made = a
        .batch_create(&claims, vec![json!({"id": c1}), json!({"id": c2})])
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    let clash = a
        .batch_create(&claims, vec![json!({"id": c3}), json!({"id": c2})])
        .await;
    assert!(
        matches!(clash, Err(DataError::Conflict { .. })),
        "{clash:?}"
    );
    assert_eq!(a.get(&claims, &id(&c3)).await.unwrap(), None);
    let twice = a
        .batch_create(&claims, vec![json!({"id": c3}), json!({"id": c3})])
        .await;
    assert!(matches!(twice, Err(DataError::Invalid(_))), "{twice:?}");

    // A failure half-way is compensated: the second record takes the id json-server is about
    // to give the first, so its POST fails (500) and the first record is deleted again.
    let comp = entity("comp");
    let probe = a.create(&comp, json!({})).await.unwrap();
    let next = probe["id"].as_u64().unwrap() + 1;
    let half = a
        .batch_create(&comp, vec![json!({"n": 1}), json!({"id": next, "n": 2})])
        .await;
    assert!(matches!(half, Err(DataError::Upstream(_))), "{half:?}");
    assert_eq!(a.get(&comp, &id(next)).await.unwrap(), None);

    let updated = a
        .batch_update(
            &patients,
            vec![
                (id(&ada_id), json!({"vip": true})),
                (id(&bo_id), json!({"vip": false})),
            ],
        )
        .await
        .unwrap();
    assert_eq!(updated.len(), 2);
    let missing = a
        .batch_update(
            &patients,
            vec![
                (id(&ada_id), json!({"vip": 1})),
                (id("no-such-id"), json!({})),
            ],
        )
        .await;
    assert!(
        matches!(missing, Err(DataError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(
        a.get(&patients, &id(&ada_id)).await.unwrap().unwrap()["vip"],
        true
    );

    // Schema, entities, and an entity that is not mapped.
    let schema = a.get_schema(&patients).await.unwrap();
    assert_eq!(schema["properties"]["age"]["type"], "number");
    let entities: Vec<String> = a
        .list_entities()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(entities, vec!["claims", "comp", "patients"]);
    let unmapped = a.get(&entity("invoices"), &id(1)).await;
    match unmapped {
        Err(DataError::Invalid(m)) => assert!(m.contains("invoices"), "{m}"),
        other => panic!("{other:?}"),
    }
    let e: Error = a
        .list(&entity("invoices"), 10, None)
        .await
        .unwrap_err()
        .into();
    assert_eq!(e.status(), 422);

    assert!(a.delete(&patients, &id(&cy_id)).await.unwrap());
    assert!(!a.delete(&patients, &id(&cy_id)).await.unwrap());
    for id_ in [&ada_id, &bo_id] {
        assert!(a.delete(&patients, &id(id_)).await.unwrap());
    }
}

/// support's derived contact keys on REST: not a field upstream, so not sent; the other
/// conditions are, and what comes back is tested with the key normalised.
#[tokio::test]
async fn derived_keys_are_tested_on_what_the_upstream_returns() {
    let config = RestConfig::parse(&object(json!({
        "base_url": server("SWITCHBOARD_TEST_REST"),
        "entities": {"tickets": "/sp_tickets"},
    })))
    .unwrap();
    let support = support::plugin().unwrap();
    let a = RestData::new(
        RestClient::new(switchboard_tests::egress(), switchboard_tests::tls()),
        Arc::new(config),
        secrets().1,
        org(),
        support.manifest().manifest().indexes.clone(),
    );
    let tickets = entity("tickets");
    let ids = |rs: Vec<Value>| -> Vec<String> { rs.iter().map(id_of).collect() };
    let open_by_phone = [
        Condition::eq("contactPhone", "+1 555 010 2000"),
        Condition::eq("status", "open"),
    ];
    assert_eq!(
        ids(a.query(&tickets, &open_by_phone).await.unwrap()),
        ["1", "2"]
    );
    let by_mail = [Condition::eq("contactEmail", "ANA@example.com")];
    assert_eq!(ids(a.query(&tickets, &by_mail).await.unwrap()), ["2", "4"]);
    let nobody = [Condition::eq("contactPhone", "555 010 0000")];
    assert!(a.query(&tickets, &nobody).await.unwrap().is_empty());

    // A key of a top-level field is sent as that field, as given: the upstream narrows by
    // its own (exact) matching instead of returning every lead, so on rest a lead written
    // "Pat@Example.org" is not found by "pat@example.org".
    let config = RestConfig::parse(&object(json!({
        "base_url": server("SWITCHBOARD_TEST_REST"),
        "entities": {"leads": "/sp_leads"},
    })))
    .unwrap();
    let crm = crm::plugin().unwrap();
    let a = RestData::new(
        RestClient::new(switchboard_tests::egress(), switchboard_tests::tls()),
        Arc::new(config),
        secrets().1,
        org(),
        crm.manifest().manifest().indexes.clone(),
    );
    let leads = entity("leads");
    let by_mail = [Condition::eq("emailKey", "pat@example.org")];
    assert_eq!(ids(a.query(&leads, &by_mail).await.unwrap()), ["1"]);
    let by_phone = [Condition::eq("phoneKey", "(555) 777-1234")];
    assert_eq!(ids(a.query(&leads, &by_phone).await.unwrap()), ["2"]);
}

#[tokio::test]
async fn pages_follow_json_servers_page_and_limit() {
    let base = server("SWITCHBOARD_TEST_REST");
    let items = entity("items");
    for pagination in [json!(null), json!(false)] {
        let a = plain(json!({
            "base_url": base,
            "entities": {"items": "/page_items"},
            "pagination": pagination,
        }));
        let mut ids = Vec::new();
        let mut cursors = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = a.list(&items, 3, cursor.as_deref()).await.unwrap();
            assert!(page.items.len() <= 3);
            ids.extend(page.items.iter().map(id_of));
            match page.next {
                Some(c) => {
                    cursors.push(c.clone());
                    cursor = Some(c);
                }
                None => break,
            }
        }
        assert_eq!(ids, (1..=7).map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(cursors.len(), 2, "{pagination}: {cursors:?}");
        // The cursor is an offset: changing the limit between pages neither skips nor
        // repeats a record, whichever way it changes.
        for limits in [[3, 2, 4, 1], [2, 3, 1, 5], [1, 4, 2, 3]] {
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            for turn in 0.. {
                let limit = limits[turn % limits.len()];
                let page = a.list(&items, limit, cursor.as_deref()).await.unwrap();
                assert!(page.items.len() <= limit, "{limits:?}: {page:?}");
                ids.extend(page.items.iter().map(id_of));
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
                assert!(turn < 10, "{pagination} {limits:?}: no end ({ids:?})");
            }
            assert_eq!(
                ids,
                (1..=7).map(|n| n.to_string()).collect::<Vec<_>>(),
                "{pagination} {limits:?}"
            );
        }
        // The last full page: no cursor to an empty one.
        let all = a.list(&items, 7, None).await.unwrap();
        assert_eq!((all.items.len(), all.next), (7, None));
        let tail = a.list(&items, 5, Some("o5")).await.unwrap();
        assert_eq!(tail.items.iter().map(id_of).collect::<Vec<_>>(), ["6", "7"]);
        assert_eq!(tail.next, None);
        for bad in [
            "abc",
            "-1",
            "é",
            "2",
            "o",
            "o-1",
            "o01",
            "o 3",
            "o4294967296",
        ] {
            let r = a.list(&items, 3, Some(bad)).await;
            assert!(matches!(r, Err(DataError::Invalid(_))), "{bad}: {r:?}");
        }
    }
    // Query reads every page.
    let a = plain(json!({
        "base_url": base,
        "entities": {"items": "/page_items"},
        "pagination": {"page": "_page", "limit": "_limit", "page_size": 2},
    }));
    let all = a
        .query(&items, &[Condition::new("n", Op::Gte, 1)])
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    let some = a
        .query(
            &items,
            &[
                Condition::new("n", Op::Gte, 3),
                Condition::new("n", Op::Lt, 6),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        some.iter().map(id_of).collect::<Vec<_>>(),
        vec!["3", "4", "5"]
    );
}

#[tokio::test]
async fn invalid_configs_are_422_with_pointers() {
    let parse = |v: Value| RestConfig::parse(&object(v)).err().unwrap_or_default();
    let paths = |d: Vec<switchboard::Detail>| d.into_iter().map(|d| d.path).collect::<Vec<_>>();
    assert_eq!(
        paths(parse(json!({"entities": {"a": "/a"}}))),
        vec!["/base_url"]
    );
    assert_eq!(
        paths(parse(json!({"base_url": "http://127.0.0.1:1"}))),
        vec!["/entities"]
    );
    assert_eq!(
        paths(parse(json!({
            "base_url": "http://127.0.0.1:1",
            "entities": {"patients": {"path": "/p", "item": "/p/{pid}"}},
        }))),
        vec!["/entities/patients/item"]
    );
    assert_eq!(
        paths(parse(json!({
            "base_url": "http://127.0.0.1:1",
            "entities": {"a": "/a"},
            "credential": "switchboard/rest-acme/api",
            "auth": {"token": "api_key"},
        }))),
        vec!["/auth"]
    );
    // The budget of a whole call stays below the Lambda's 10 s timeout.
    let budget = |ms: u64| json!({"base_url": "http://127.0.0.1:1", "entities": {"a": "/a"}, "timeout_ms": ms});
    assert_eq!(paths(parse(budget(8_001))), vec!["/timeout_ms"]);
    assert_eq!(paths(parse(budget(60_000))), vec!["/timeout_ms"]);
    assert!(parse(budget(8_000)).is_empty());

    // Through the factory's write-time check: pointers under the config's location.
    let (store, resolver) = secrets();
    let adapters = switchboard_tests::config_check(resolver.clone());
    let config = |settings: Value| DataAdapterConfig {
        kind: AdapterKind::Rest,
        settings: object(settings),
    };
    let at = "/data_adapter";
    let bad_auth = adapters
        .check(
            &org(),
            &config(json!({
                "base_url": server("SWITCHBOARD_TEST_REST"),
                "entities": {"a": "/a"},
                "credential": "switchboard/rest-acme/api",
                "auth": {"header": "X-Api-Key"},
            })),
            at,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (bad_auth.status(), bad_auth.code()),
        (422, "invalid_config")
    );
    assert_eq!(
        bad_auth.to_body()["error"]["details"][0]["path"],
        "/data_adapter/auth/field"
    );
    let no_url = adapters
        .check(&org(), &config(json!({"entities": {"a": "/a"}})), at)
        .await
        .unwrap_err();
    assert_eq!(no_url.status(), 422);
    assert_eq!(
        no_url.to_body()["error"]["details"][0]["path"],
        "/data_adapter/base_url"
    );
    // A credential that does not exist, then one that does.
    let good = json!({
        "base_url": server("SWITCHBOARD_TEST_REST"),
        "entities": {"notes": "/secure_notes"},
        "credential": "switchboard/rest-acme/checked",
        "auth": {"bearer": "token"},
    });
    let unresolved = adapters
        .check(&org(), &config(good.clone()), at)
        .await
        .unwrap_err();
    assert_eq!(unresolved.status(), 422, "{unresolved:?}");
    let writer = Secrets::new(store, Duration::from_secs(300), "switchboard");
    writer
        .store(&org(), "checked", &secret(json!({"token": TOKEN})))
        .await
        .unwrap();
    adapters.check(&org(), &config(good), at).await.unwrap();

    // The secret must hold the field auth names, as a non-empty string fit for a header;
    // the 422 names the field, never a value.
    let hidden = unique("hidden-value");
    for (label, auth, fields, ok) in [
        (
            "nofield",
            json!({"bearer": "token"}),
            json!({"other": hidden}),
            false,
        ),
        (
            "empty",
            json!({"bearer": "token"}),
            json!({"token": "", "x": hidden}),
            false,
        ),
        (
            "number",
            json!({"bearer": "token"}),
            json!({"token": 42, "x": hidden}),
            false,
        ),
        (
            "newline",
            json!({"bearer": "token"}),
            json!({"token": format!("{hidden}\nX-Injected: 1")}),
            false,
        ),
        (
            "headerless",
            json!({"header": "X-Api-Key", "field": "key"}),
            json!({"token": hidden}),
            false,
        ),
        (
            "header",
            json!({"header": "X-Api-Key", "field": "key"}),
            json!({"key": hidden}),
            true,
        ),
    ] {
        let r = writer.store(&org(), label, &secret(fields)).await.unwrap();
        let settings = json!({
            "base_url": server("SWITCHBOARD_TEST_REST"),
            "entities": {"notes": "/secure_notes"},
            "credential": r.as_str(),
            "auth": auth,
        });
        let result = adapters.check(&org(), &config(settings.clone()), at).await;
        if ok {
            result.unwrap();
            continue;
        }
        let e = result.expect_err(label);
        assert_eq!((e.status(), e.code()), (422, "invalid_config"), "{label}");
        let body = e.to_body();
        assert_eq!(
            body["error"]["details"][0]["path"], "/data_adapter/credential",
            "{label}: {body}"
        );
        assert!(!body.to_string().contains(&hidden), "{label}: {body}");
        assert!(!format!("{e:?} {e}").contains(&hidden), "{label}");
        // The same check, directly.
        let parsed = RestConfig::parse(&object(settings)).unwrap();
        let value = resolver.resolve(&org(), &r).await.unwrap();
        let d = parsed.check_secret(&value).unwrap_err();
        assert_eq!(d.path, "/credential");
        assert!(!d.message.contains(&hidden), "{label}: {}", d.message);
    }
}

/// The margin over `timeout_ms` an adapter call may take to give up (scheduling, the
/// connection's teardown).
const MARGIN: Duration = Duration::from_millis(250);

#[tokio::test]
async fn slow_upstream_is_504_within_the_timeout() {
    let a = plain(json!({
        "base_url": server("SWITCHBOARD_TEST_REST_SLOW"),
        "entities": {"flaky": "/flaky"},
        "timeout_ms": 300,
        "retries": 0,
    }));
    let budget = Duration::from_millis(300);
    let flaky = entity("flaky");
    let started = Instant::now();
    let e = a.get(&flaky, &id(1)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, DataError::UpstreamTimeout(_)), "{e:?}");
    assert!(e.to_string().contains("flaky"), "{e}");
    assert!(elapsed < budget + MARGIN, "{elapsed:?}");
    let e: Error = e.into();
    assert_eq!((e.status(), e.code()), (504, "upstream_timeout"));

    // A write is tried once.
    let started = Instant::now();
    let w = a.create(&flaky, json!({"n": 1})).await.unwrap_err();
    assert!(matches!(w, DataError::UpstreamTimeout(_)), "{w:?}");
    assert!(started.elapsed() < budget + MARGIN);

    // timeout_ms is the budget of the whole call: retries (the default two, or the most,
    // four) and their backoff fit in it too.
    for retries in [json!(null), json!(4)] {
        let retried = plain(json!({
            "base_url": server("SWITCHBOARD_TEST_REST_SLOW"),
            "entities": {"flaky": "/flaky"},
            "timeout_ms": 300,
            "retries": retries,
        }));
        for call in ["get", "query", "update_where"] {
            let started = Instant::now();
            let r = match call {
                "get" => retried.get(&flaky, &id(1)).await.map(|_| ()),
                "query" => retried
                    .query(&flaky, &[Condition::eq("ok", true)])
                    .await
                    .map(|_| ()),
                _ => retried
                    .update_where(
                        &flaky,
                        &id(1),
                        json!({"n": 2}),
                        &[Condition::eq("ok", true)],
                    )
                    .await
                    .map(|_| ()),
            };
            let elapsed = started.elapsed();
            let r = r.unwrap_err();
            assert!(matches!(r, DataError::UpstreamTimeout(_)), "{call}: {r:?}");
            assert!(
                elapsed >= budget && elapsed < budget + MARGIN,
                "{call}, retries {retries}: {elapsed:?}"
            );
        }
    }
}

/// A query over many pages shares one budget: 20 pages of a server that answers each
/// request 150 ms late cannot fit in 600 ms, whereas every page alone would.
#[tokio::test]
async fn paged_query_respects_the_calls_budget() {
    let base = server("SWITCHBOARD_TEST_REST");
    let items = entity("items");
    let paged = |timeout_ms: u64, page_size: u64| {
        plain(json!({
            "base_url": base,
            "entities": {"items": "/slow_items"},
            "pagination": {"page_size": page_size},
            "timeout_ms": timeout_ms,
        }))
    };
    let started = Instant::now();
    let e = paged(600, 1)
        .query(&items, &[Condition::new("n", Op::Gte, 1)])
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, DataError::UpstreamTimeout(_)), "{e:?}");
    assert!(e.to_string().contains("items"), "{e}");
    assert!(elapsed < Duration::from_millis(600) + MARGIN, "{elapsed:?}");
    let e: Error = e.into();
    assert_eq!((e.status(), e.code()), (504, "upstream_timeout"));

    // Within the budget the same query reads every page.
    let all = paged(5_000, 7)
        .query(&items, &[Condition::new("n", Op::Gte, 1)])
        .await
        .unwrap();
    assert_eq!(all.len(), 20);
}

#[tokio::test]
async fn failing_upstream_is_502_and_only_reads_are_retried() {
    let base = server("SWITCHBOARD_TEST_REST_FAILING");
    let (store, resolver) = secrets();
    let leaked = unique("s3cr3t-value");
    let reference = Secrets::new(store, Duration::from_secs(300), "switchboard")
        .store(&org(), "failing", &secret(json!({"token": leaked})))
        .await
        .unwrap();
    // `/fail-…` answers 500 (a bug upstream: not retried), `/unavailable-…` 503 (retried
    // for reads only).
    let (failing, unavailable) = (unique("fail"), unique("unavailable"));
    let a = adapter(
        resolver,
        json!({
            "base_url": base,
            "entities": {"things": format!("/{failing}"), "others": format!("/{unavailable}")},
            "credential": reference.as_str(),
            "auth": {"bearer": "token"},
        }),
    );
    let counter = plain(json!({"base_url": base, "entities": {"requests": "/__requests"}}));
    let count = |method: &str, segment: &str| {
        let (counter, key) = (&counter, format!("{method}:{segment}"));
        async move {
            counter
                .get(&entity("requests"), &id(&key))
                .await
                .unwrap()
                .unwrap()["count"]
                .as_u64()
                .unwrap()
        }
    };

    for (name, status) in [("things", "500"), ("others", "503")] {
        let e = entity(name);
        let errors = vec![
            a.get(&e, &id(1)).await.unwrap_err(),
            a.create(&e, json!({"n": 1})).await.unwrap_err(),
            a.update(&e, &id(1), json!({"n": 2})).await.unwrap_err(),
            a.delete(&e, &id(1)).await.unwrap_err(),
        ];
        for e in errors {
            assert!(matches!(e, DataError::Upstream(_)), "{e:?}");
            let text = e.to_string();
            assert!(text.contains(name) && text.contains(status), "{text}");
            assert!(!text.contains(&leaked) && !text.contains("boom"), "{text}");
            let e: Error = e.into();
            assert_eq!((e.status(), e.code()), (502, "upstream_error"));
            assert!(!e.to_body().to_string().contains(&leaked));
        }
    }
    assert_eq!(count("GET", &failing).await, 1, "a 500 is not retried");
    assert_eq!(
        count("GET", &unavailable).await,
        3,
        "a read is tried three times"
    );
    for method in ["POST", "PATCH", "DELETE"] {
        assert_eq!(count(method, &failing).await, 1, "{method}");
        assert_eq!(
            count(method, &unavailable).await,
            1,
            "{method} is never retried"
        );
    }

    // Transient 503s on a read are retried until json-server answers.
    let flaky = plain(json!({"base_url": base, "entities": {"flaky": "/flaky"}, "retries": 4}));
    let before = count("GET", "flaky").await;
    let got = flaky.get(&entity("flaky"), &id(1)).await.unwrap();
    assert_eq!(got.unwrap()["ok"], true);
    let tries = count("GET", "flaky").await - before;
    assert!((1..=3).contains(&tries), "{tries}");

    // Nothing listens here: a connection error is a 502 too.
    let closed =
        plain(json!({"base_url": "http://127.0.0.1:9", "entities": {"x": "/x"}, "retries": 0}));
    let e: Error = closed.get(&entity("x"), &id(1)).await.unwrap_err().into();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"));
}

#[tokio::test]
async fn rejected_credentials_are_refreshed_once_and_retried() {
    let base = server("SWITCHBOARD_TEST_REST");
    let (store, resolver) = secrets();
    let writer = Secrets::new(store, Duration::from_secs(300), "switchboard");
    let stale = unique("stale-token");
    let settings = |reference: &CredentialRef, auth: Value| {
        json!({
            "base_url": base,
            "entities": {"notes": "/secure_notes"},
            "credential": reference.as_str(),
            "auth": auth,
        })
    };
    let notes = entity("notes");

    // The adapter's resolver holds the old value; the store already has the rotated one.
    for (label, auth, rotated) in [
        (
            "bearer",
            json!({"bearer": "token"}),
            json!({"token": TOKEN}),
        ),
        (
            "header",
            json!({"header": "Authorization", "field": "value"}),
            json!({"value": format!("Bearer {TOKEN}")}),
        ),
    ] {
        let old = json!({"token": stale, "value": stale});
        let r = writer.store(&org(), label, &secret(old)).await.unwrap();
        resolver.resolve(&org(), &r).await.unwrap();
        writer.store(&org(), label, &secret(rotated)).await.unwrap();
        let a = adapter(resolver.clone(), settings(&r, auth));
        let note = a.get(&notes, &id(1)).await.unwrap().unwrap();
        assert_eq!(note["text"], "for bearer holders only", "{label}");
    }

    // A write refused with 401 is sent again with the rotated value, once.
    let r = writer
        .store(&org(), "writer", &secret(json!({"token": stale})))
        .await
        .unwrap();
    resolver.resolve(&org(), &r).await.unwrap();
    writer
        .store(&org(), "writer", &secret(json!({"token": TOKEN})))
        .await
        .unwrap();
    let a = adapter(resolver.clone(), settings(&r, json!({"bearer": "token"})));
    let created = a.create(&notes, json!({"text": "rotated"})).await.unwrap();
    assert!(
        a.delete(&notes, &id(id_of(&created))).await.unwrap(),
        "{created}"
    );

    // Not rotated: the refresh finds the same value, so the call fails with 502 naming the
    // credential, and nothing of the value (the upstream's body echoes it) leaks.
    let r = writer
        .store(&org(), "wrong", &secret(json!({"token": stale})))
        .await
        .unwrap();
    let a = adapter(resolver.clone(), settings(&r, json!({"bearer": "token"})));
    let e = a.get(&notes, &id(1)).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, DataError::Upstream(_)), "{e:?}");
    assert!(
        text.contains("rejected") && text.contains(r.as_str()) && text.contains("notes"),
        "{text}"
    );
    assert!(!text.contains(&stale), "{text}");
    let e: Error = e.into();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"));

    // A secret without the configured field is a config problem (422), not a leak.
    let r = writer
        .store(&org(), "fieldless", &secret(json!({"other": stale})))
        .await
        .unwrap();
    let a = adapter(resolver, settings(&r, json!({"bearer": "token"})));
    let e: Error = a.get(&notes, &id(1)).await.unwrap_err().into();
    assert_eq!(e.status(), 422);
    assert!(!e.to_body().to_string().contains(&stale));
}

/// The demo booking flow through the pipeline with the booking instance on json-server's
/// `bk_*` collections (seeded like the demo in tests/fixtures/rest/db.json): numeric ids
/// allocated upstream, slot claims by explicit id, conditional releases.
#[tokio::test]
async fn booking_flow_on_rest() {
    let entities: Map<String, Value> = [
        "patients",
        "providers",
        "operatories",
        "appointments",
        "slot_claims",
    ]
    .into_iter()
    .map(|e| (e.to_owned(), json!(format!("/bk_{e}"))))
    .collect();
    let adapter = DataAdapterConfig {
        kind: AdapterKind::Rest,
        settings: object(json!({
            "base_url": server("SWITCHBOARD_TEST_REST"),
            "entities": entities,
        })),
    };
    let suffix = unique("rest");
    let demo = crate::fixtures::demo_on(
        switchboard_tests::embedded_tables(),
        Some(&suffix),
        Some(adapter),
        crate::fixtures::local_secrets(),
    )
    .await;
    crate::adapters::booking_flow(demo.platform, demo.org, "2027-06-02").await;
}

/// A client that refuses private upstreams (as in Lambda, where
/// `SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS` is unset) refuses loopback, link-local (instance
/// metadata) and private addresses, literal or resolved, before connecting: a 502, at once.
#[tokio::test]
async fn private_upstreams_are_refused_unless_allowed() {
    let base = server("SWITCHBOARD_TEST_REST");
    let port = base.rsplit(':').next().unwrap().to_owned();
    // scripts/test allows them for its own loopback servers.
    assert!(switchboard_tests::egress().allows_private());
    let strict = RestClient::new(Egress::public_only(), switchboard_tests::tls());
    assert!(!strict.egress().allows_private());
    let items = entity("items");
    let on = |client: &RestClient, base_url: &str| {
        let config = RestConfig::parse(&object(json!({
            "base_url": base_url,
            "entities": {"items": "/page_items"},
        })))
        .unwrap();
        RestData::new(
            client.clone(),
            Arc::new(config),
            secrets().1,
            org(),
            test_indexes(),
        )
    };
    for base_url in [
        base.clone(),
        format!("http://[::1]:{port}"),
        format!("http://localhost:{port}"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.11.12.13:8080".to_owned(),
        "http://[::ffff:127.0.0.1]:9".to_owned(),
        "http://0.0.0.0:9".to_owned(),
    ] {
        let a = on(&strict, &base_url);
        let started = Instant::now();
        let errors = [
            a.get(&items, &id(1)).await.unwrap_err(),
            a.list(&items, 3, None).await.unwrap_err(),
            a.create(&items, json!({"n": 8})).await.unwrap_err(),
        ];
        for e in errors {
            let text = e.to_string();
            assert!(matches!(e, DataError::Upstream(_)), "{base_url}: {e:?}");
            assert!(
                text.contains("items")
                    && text.contains("refuses to call private or loopback addresses"),
                "{base_url}: {text}"
            );
            let e: Error = e.into();
            assert_eq!(
                (e.status(), e.code()),
                (502, "upstream_error"),
                "{base_url}"
            );
        }
        // Refused, not retried or waited for (10.x and 169.254.x would time out).
        assert!(started.elapsed() < Duration::from_secs(1), "{base_url}");
    }
    // The resolver lets loopback through when allowed: the same name answers.
    let allowed = RestClient::new(Egress::new(true), switchboard_tests::tls());
    let local = on(&allowed, &format!("http://localhost:{port}"));
    assert_eq!(local.get(&items, &id(1)).await.unwrap().unwrap()["n"], 1);

    // At write time, a visibly private host is a 422 on base_url (names are resolved only
    // when called).
    for (base_url, private) in [
        ("http://127.0.0.1:3000", true),
        ("http://[::1]:3000", true),
        ("http://LocalHost:3000", true),
        ("http://api.localhost", true),
        ("http://169.254.169.254", true),
        ("http://10.0.0.1", true),
        ("https://192.168.1.20/v1", true),
        ("http://172.16.0.1", true),
        ("http://[fd00:ec2::254]", true),
        ("http://[::ffff:10.0.0.1]", true),
        ("https://api.example.com/v1", false),
        ("https://93.184.216.34", false),
        ("http://[2606:4700::1111]", false),
    ] {
        let c = RestConfig::parse(&object(
            json!({"base_url": base_url, "entities": {"a": "/a"}}),
        ))
        .unwrap();
        assert!(c.check_upstream(&Egress::new(true)).is_ok(), "{base_url}");
        match c.check_upstream(&Egress::public_only()) {
            Err(d) => {
                assert!(private, "{base_url}: {d:?}");
                assert_eq!(d.path, "/base_url");
            }
            Ok(()) => assert!(!private, "{base_url}"),
        }
    }
}

/// A secret store that counts fetches (what a Secrets Manager call costs).
struct Counting {
    inner: Arc<dyn SecretStore>,
    fetches: AtomicUsize,
}

#[switchboard::async_trait]
impl SecretStore for Counting {
    async fn fetch(&self, reference: &CredentialRef) -> Result<SecretValue, SecretError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch(reference).await
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<CredentialRef, SecretError> {
        self.inner.put(name, value).await
    }
}

/// A credential that stays wrong is re-fetched at most once per adapter call, even when the
/// call sends several requests that are refused (here a batch's compensation: the upstream
/// lets anyone create /guarded_* records but only the token holder delete them).
#[tokio::test]
async fn a_wrong_credential_is_refreshed_at_most_once_per_call() {
    let (store, _) = secrets();
    let counting = Arc::new(Counting {
        inner: store.clone(),
        fetches: AtomicUsize::new(0),
    });
    // Per-call refreshes are what this test counts, not the resolver's rate limit.
    let resolver = Arc::new(
        Secrets::new(counting.clone(), Duration::from_secs(300), "switchboard")
            .with_refresh_interval(Duration::ZERO),
    );
    let writer = Secrets::new(store, Duration::from_secs(300), "switchboard");
    let stale = unique("stale-token");
    let r = writer
        .store(&org(), "guarded", &secret(json!({"token": stale})))
        .await
        .unwrap();
    let a = adapter(
        resolver,
        json!({
            "base_url": server("SWITCHBOARD_TEST_REST"),
            "entities": {"items": "/guarded_items"},
            "credential": r.as_str(),
            "auth": {"bearer": "token"},
        }),
    );
    let items = entity("items");
    let fetches = || counting.fetches.load(Ordering::SeqCst);

    // One refused read: the resolve and one refresh.
    let e = a.get(&entity("items"), &id(1)).await;
    assert!(e.is_ok(), "GET is open on /guarded_*: {e:?}");
    assert_eq!(fetches(), 1);
    let e = a.delete(&items, &id(1)).await.unwrap_err();
    assert!(e.to_string().contains("rejected"), "{e}");
    assert_eq!(fetches(), 2, "one refresh for the refused DELETE");

    // The third record takes the id json-server is about to give the second, so its POST
    // fails (500) and the batch deletes the two it created: both DELETEs are refused (401),
    // and only the first of them re-fetches the credential.
    let probe = a.create(&items, json!({})).await.unwrap();
    let clash = probe["id"].as_u64().unwrap() + 2;
    let before = fetches();
    let e = a
        .batch_create(
            &items,
            vec![
                json!({"n": 1}),
                json!({"n": 2}),
                json!({"id": clash, "n": 3}),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DataError::Upstream(_)), "{e:?}");
    assert_eq!(fetches() - before, 1, "one refresh in the whole batch");
}

/// Every failure names the entity and the status (or what happened), never the upstream's
/// body or a header value: auth.js echoes the Authorization header in its 401 bodies.
#[tokio::test]
async fn errors_name_entity_and_status_never_body_or_token() {
    let base = server("SWITCHBOARD_TEST_REST");
    let (store, resolver) = secrets();
    let writer = Secrets::new(store, Duration::from_secs(300), "switchboard");
    let stale = unique("echoed-token");
    let r = writer
        .store(
            &org(),
            "echoed",
            &secret(json!({"token": stale, "key": stale})),
        )
        .await
        .unwrap();
    let check = |label: &str, e: DataError, words: &[&str]| {
        let text = e.to_string();
        for w in words {
            assert!(text.contains(w), "{label}: '{w}' missing in {text}");
        }
        assert!(
            !text.contains(&stale) && !text.contains("invalid token"),
            "{label}: {text}"
        );
        let e: Error = e.into();
        let body = e.to_body().to_string();
        assert!(
            !body.contains(&stale) && !body.contains("invalid token"),
            "{label}: {body}"
        );
        assert!(!format!("{e:?}").contains(&stale), "{label}");
    };
    for auth in [
        json!({"bearer": "token"}),
        json!({"header": "Authorization", "field": "key"}),
    ] {
        let a = adapter(
            resolver.clone(),
            json!({
                "base_url": base,
                "entities": {"notes": "/secure_notes"},
                "credential": r.as_str(),
                "auth": auth,
            }),
        );
        let notes = entity("notes");
        check(
            "get",
            a.get(&notes, &id(1)).await.unwrap_err(),
            &["notes", "401"],
        );
        check(
            "list",
            a.list(&notes, 5, None).await.unwrap_err(),
            &["notes", "401"],
        );
        check(
            "query",
            a.query(&notes, &[Condition::eq("text", "x")])
                .await
                .unwrap_err(),
            &["notes", "401"],
        );
        check(
            "create",
            a.create(&notes, json!({"text": "x"})).await.unwrap_err(),
            &["notes", "401", "POST"],
        );
        check(
            "update",
            a.update(&notes, &id(1), json!({"text": "x"}))
                .await
                .unwrap_err(),
            &["notes", "401", "PATCH"],
        );
        check(
            "delete",
            a.delete(&notes, &id(1)).await.unwrap_err(),
            &["notes", "401", "DELETE"],
        );
    }

    // Answers of the wrong shape: the entity and the status, not the body.
    let shaped = plain(json!({
        "base_url": base,
        "entities": {"items": "/page_items"},
        "records_at": "/data",
    }));
    check(
        "records_at",
        shaped.list(&entity("items"), 3, None).await.unwrap_err(),
        &["items", "200"],
    );
    // json-server answers a nested route with a list: not a record.
    let item_is_list = plain(json!({
        "base_url": base,
        "entities": {"items": {"path": "/page_items", "item": "/page_items/{id}/page_items"}},
    }));
    check(
        "read shape",
        item_is_list
            .get(&entity("items"), &id(1))
            .await
            .unwrap_err(),
        &["items", "200"],
    );
}
