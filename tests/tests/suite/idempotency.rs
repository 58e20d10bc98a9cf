//! Idempotent tool calls on both stores: concurrent repeats of one call make one record,
//! a voice platform's retry gets the first answer, and a key cannot be reused for another call.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::auth::TenantContext;
use switchboard::idempotency::{Begin, CallKey, Idempotency, KeySource};
use switchboard::lambda::handle;
use switchboard::pipeline::{CallInput, CallOutput, Platform, PluginService};
use switchboard::{FunctionName, OrgId, PluginName};
use switchboard_tests::{Tables, embedded_tables, moto_tables, unique};

use crate::fixtures::demo;

/// Concurrent calls of one request; at most this many may find the first still running.
const CONCURRENT: usize = 50;

fn service(platform: &Arc<Platform>, name: &str) -> Arc<PluginService> {
    let plugin = switchboard_cli::dev::plugins()
        .unwrap()
        .into_iter()
        .find(|p| p.name().as_str() == name)
        .unwrap_or_else(|| panic!("no plugin {name}"));
    Arc::new(PluginService::new(plugin, platform.clone()))
}

async fn call(svc: &PluginService, org: &OrgId, body: &Value, key: Option<&str>) -> CallOutput {
    let body = body.to_string();
    svc.respond(CallInput {
        tenant: Some(TenantContext::new(org.clone()).with_scopes(&["plugins:call"])),
        body: body.as_bytes(),
        request_id: "idem",
        idempotency_key: key,
    })
    .await
}

/// How many records a listing call returns whose `field` is `value`, and the listing.
async fn matching(
    svc: &PluginService,
    org: &OrgId,
    listing: Value,
    list: &str,
    field: &str,
    value: &str,
) -> (usize, Value) {
    let out = call(svc, org, &listing, None).await;
    let count = out.body["result"][list]
        .as_array()
        .unwrap_or_else(|| panic!("{}", out.body))
        .iter()
        .filter(|r| r[field] == value)
        .count();
    (count, out.body)
}

/// `CONCURRENT` identical calls with one key at once: one 200 body for all (a bounded
/// number may be 409 `request_in_progress`), and a later repeat replays it. Returns it.
async fn fifty_at_once(svc: &Arc<PluginService>, org: &OrgId, body: Value) -> Value {
    let key = unique("idem-key");
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (svc, org, body, key) = (svc.clone(), org.clone(), body.clone(), key.clone());
            tokio::spawn(async move { call(&svc, &org, &body, Some(&key)).await })
        })
        .collect();
    let mut ok = Vec::new();
    let mut in_progress = 0;
    for t in tasks {
        let out = t.await.unwrap();
        match out.status {
            200 => ok.push(out),
            409 if out.body["error"]["code"] == "request_in_progress" => in_progress += 1,
            s => panic!("{s}: {}", out.body),
        }
    }
    eprintln!(
        "{} answered 200 ({} replayed), {in_progress} in progress",
        ok.len(),
        ok.iter().filter(|o| o.replayed).count()
    );
    let repeat = call(svc, org, &body, Some(&key)).await;
    assert_eq!(repeat.status, 200, "{}", repeat.body);
    assert!(repeat.replayed, "a repeat after the first is a replay");
    for o in &ok {
        assert_eq!(o.body, repeat.body, "every answer is the first call's");
    }
    assert!(
        ok.iter().filter(|o| !o.replayed).count() <= 1,
        "only one call ran"
    );
    repeat.body
}

async fn concurrent_repeats_make_one_record(tables: Tables) {
    let suffix = unique("t");
    let demo = demo(tables, Some(&suffix)).await;
    let org = &demo.org;

    let support = service(&demo.platform, "support");
    let subject = unique("Portal login");
    let ticket = json!({"function": "CreateTicket", "parameters": {"subject": subject,
        "description": "The password reset email never arrives.",
        "contact": {"name": "Jordan Rivera", "phone": "555-010-2000"}}});
    let first = fifty_at_once(&support, org, ticket).await;
    assert_eq!(first["success"], true, "{first}");
    let (same, list) = matching(
        &support,
        org,
        json!({"function": "ListTickets", "parameters": {"status": "open"}}),
        "tickets",
        "subject",
        &subject,
    )
    .await;
    assert_eq!(same, 1, "one ticket: {}", list);

    let crm = service(&demo.platform, "crm");
    let name = unique("Lee");
    let lead = json!({"function": "CreateLead", "parameters": {"name": name, "source": "referral",
        "email": format!("{name}@example.com")}});
    fifty_at_once(&crm, org, lead).await;
    let (same, list) = matching(
        &crm,
        org,
        json!({"function": "GetLeadsByStatus", "parameters": {"status": "new", "limit": 100}}),
        "leads",
        "name",
        &name,
    )
    .await;
    assert_eq!(same, 1, "one lead: {}", list);

    let booking = service(&demo.platform, "booking");
    let appointment = json!({"function": "CreateAppointment", "parameters":
        {"PatNum": 2, "ProvNum": 2, "AptDateTime": "2027-06-02 11:00"}});
    fifty_at_once(&booking, org, appointment).await;
    let list = call(
        &booking,
        org,
        &json!({"function": "GetAppointments", "parameters":
            {"PatNum": 2, "startDate": "2027-06-02", "endDate": "2027-06-02"}}),
        None,
    )
    .await;
    assert_eq!(
        list.body["result"]["appointments"].as_array().map(Vec::len),
        Some(1),
        "one appointment: {}",
        list.body
    );
}

// Worker threads, so that the calls really overlap (SQLite answers without yielding).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_make_one_record_on_embedded() {
    concurrent_repeats_make_one_record(embedded_tables()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_repeats_make_one_record_on_dynamodb() {
    concurrent_repeats_make_one_record(moto_tables().await).await;
}

/// Retell, Vapi and a reused key, through the Lambda edge where headers matter.
async fn retries_replay_and_keys_stay_with_their_call(tables: Tables) {
    let suffix = unique("t");
    let data = tables.data.clone();
    let demo = demo(tables, Some(&suffix)).await;
    let org = &demo.org;
    let booking = service(&demo.platform, "booking");

    // Retell retries a booking it thinks failed: the same body, the first answer.
    let retell = json!({"name": "CreateAppointment", "call": {"call_id": unique("call")},
        "args": {"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-03 09:00"}});
    let first = call(&booking, org, &retell, None).await;
    assert_eq!(
        (first.status, first.replayed),
        (200, false),
        "{}",
        first.body
    );
    let retry = call(&booking, org, &retell, None).await;
    assert_eq!(
        (retry.status, retry.replayed),
        (200, true),
        "{}",
        retry.body
    );
    assert_eq!(retry.body, first.body);
    // Another call of the same Retell conversation (other arguments) is a new call.
    let mut other = retell.clone();
    other["args"]["AptDateTime"] = json!("2027-06-03 10:00");
    let second = call(&booking, org, &other, None).await;
    assert_eq!(
        (second.status, second.replayed),
        (200, false),
        "{}",
        second.body
    );
    assert_ne!(
        second.body["result"]["AptNum"],
        first.body["result"]["AptNum"]
    );
    // Without any key, a repeat runs again: the slot is taken.
    let plain = json!({"function": "CreateAppointment", "parameters":
        {"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-03 09:00"}});
    assert_eq!(call(&booking, org, &plain, None).await.status, 409);

    // A Vapi batch repeating one tool call id: one side effect, the same answer twice.
    let support = service(&demo.platform, "support");
    let subject = unique("Vapi");
    let args = json!({"subject": subject, "description": "x", "contact": {"name": "A", "phone": "555-010-2000"}});
    let id = unique("toolcall");
    let vapi = json!({"message": {"type": "tool-calls", "toolCallList": [
        {"id": id, "name": "CreateTicket", "arguments": args},
        {"id": id, "name": "CreateTicket", "arguments": args}]}});
    let out = call(&support, org, &vapi, None).await;
    assert_eq!(out.status, 200, "{}", out.body);
    let results = out.body["results"].as_array().unwrap();
    assert_eq!(results[0]["result"], results[1]["result"], "{}", out.body);
    assert!(!out.replayed, "the first of them ran");
    let again = call(&support, org, &vapi, None).await;
    assert!(
        again.replayed,
        "Vapi resent the whole message: {}",
        again.body
    );
    let (same, list) = matching(
        &support,
        org,
        json!({"function": "ListTickets", "parameters": {"status": "open"}}),
        "tickets",
        "subject",
        &subject,
    )
    .await;
    assert_eq!(same, 1, "{}", list);

    // One key, other arguments: 422, and nothing runs.
    let key = unique("key");
    let book = |at: &str| {
        json!({"function": "CreateAppointment", "parameters":
            {"PatNum": 3, "ProvNum": 1, "AptDateTime": at}})
    };
    let first = call(&booking, org, &book("2027-06-04 09:00"), Some(&key)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let reused = call(&booking, org, &book("2027-06-04 10:00"), Some(&key)).await;
    assert_eq!(
        (reused.status, reused.body["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{}",
        reused.body
    );
    let free = call(&booking, org, &book("2027-06-04 10:00"), None).await;
    assert_eq!(
        free.status, 200,
        "the reused key booked nothing: {}",
        free.body
    );

    // A failed call releases its key: the retry runs at once (and fails the same way here),
    // instead of waiting for a claim that is never completed.
    let key = unique("key");
    let taken = call(&booking, org, &book("2027-06-04 10:00"), Some(&key)).await;
    assert_eq!(taken.body["error"]["code"], "conflict", "{}", taken.body);
    // (A claim left behind would answer request_in_progress after the wait instead.)
    let retry = call(&booking, org, &book("2027-06-04 10:00"), Some(&key)).await;
    assert_eq!(
        (retry.body["error"]["code"].as_str(), retry.replayed),
        (Some("conflict"), false),
        "{}",
        retry.body
    );

    // Read-only functions skip the mechanism: a key on them replays nothing.
    let key = unique("key");
    let read = json!({"function": "GetProviders", "parameters": {}});
    for _ in 0..2 {
        let out = call(&booking, org, &read, Some(&key)).await;
        assert_eq!((out.status, out.replayed), (200, false), "{}", out.body);
    }

    // A malformed key is the client's mistake.
    let bad = call(&booking, org, &book("2027-06-05 09:00"), Some("has space")).await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Through the Lambda edge: the header in, `Idempotent-Replayed` out.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/booking-create-appointment.json"),
    )
    .unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["requestContext"]["authorizer"]["lambda"]["orgId"] = json!(org.as_str());
    event["requestContext"]["authorizer"]["lambda"]
        .as_object_mut()
        .unwrap()
        .remove("channel");
    event["headers"]["idempotency-key"] = json!(unique("edge"));
    event["body"] = json!(book("2027-06-07 09:00").to_string());
    let mut answers = Vec::new();
    for _ in 0..2 {
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let resp = handle(&booking, req).await;
        let replayed = resp
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = match resp.body() {
            lambda_http::Body::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        answers.push((resp.status().as_u16(), replayed, body));
    }
    assert_eq!(
        (answers[0].0, answers[0].1.as_deref()),
        (200, None),
        "{}",
        answers[0].2
    );
    assert_eq!(
        (answers[1].0, answers[1].1.as_deref()),
        (200, Some("true")),
        "{}",
        answers[1].2
    );
    assert_eq!(answers[0].2, answers[1].2, "the same body");

    // A first call still running (claimed here, never completed): the repeat waits, then
    // gets 409 with `Retry-After`.
    let held = unique("held");
    let request = book("2027-06-08 09:00");
    let (plugin, function) = (
        PluginName::parse("booking").unwrap(),
        FunctionName::parse("CreateAppointment").unwrap(),
    );
    let source = KeySource::Header(held.clone());
    let running = CallKey {
        org,
        plugin: &plugin,
        function: &function,
        source: &source,
        params: &request["parameters"],
    };
    let idem = Idempotency::new(data);
    let Begin::Proceed(_running) = idem
        .begin(&running, idem.wait_deadline(), None)
        .await
        .unwrap()
    else {
        panic!("the key is new")
    };
    event["headers"]["idempotency-key"] = json!(held);
    event["body"] = json!(request.to_string());
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let resp = handle(&booking, req).await;
    assert_eq!(resp.status().as_u16(), 409);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
}

#[tokio::test]
async fn retries_replay_and_keys_stay_with_their_call_on_embedded() {
    retries_replay_and_keys_stay_with_their_call(embedded_tables()).await;
}

#[tokio::test]
async fn retries_replay_and_keys_stay_with_their_call_on_dynamodb() {
    retries_replay_and_keys_stay_with_their_call(moto_tables().await).await;
}

/// A first call still running gets its repeats a bounded wait, then 409; a crashed one's
/// record lets a retry through once its in-progress window is over.
async fn in_progress_and_crashed_records(tables: Tables) {
    let idem = Idempotency::new(tables.data.clone()).with_windows(
        Duration::from_secs(3600),
        Duration::from_secs(3),
        Duration::from_millis(150),
    );
    let org = OrgId::parse(unique("idem")).unwrap();
    let plugin = PluginName::parse("support").unwrap();
    let function = FunctionName::parse("CreateTicket").unwrap();
    let source = KeySource::Header(unique("k"));
    let params = json!({"subject": "x"});
    let key = CallKey {
        org: &org,
        plugin: &plugin,
        function: &function,
        source: &source,
        params: &params,
    };
    let Begin::Proceed(_crashed) = idem.begin(&key, idem.wait_deadline(), None).await.unwrap()
    else {
        panic!("the first call claims the key")
    };
    let started = std::time::Instant::now();
    let e = idem
        .begin(&key, idem.wait_deadline(), None)
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (409, "request_in_progress"));
    // A deadline already spent (an earlier call of the same request used it) waits no more,
    // however long the wait would be: here 5 s, against the two round trips it takes.
    let patient = Idempotency::new(tables.data.clone()).with_windows(
        Duration::from_secs(3600),
        Duration::from_secs(3),
        Duration::from_secs(5),
    );
    let spent = std::time::Instant::now();
    let e = patient
        .begin(&key, tokio::time::Instant::now(), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "request_in_progress");
    assert!(
        spent.elapsed() < Duration::from_millis(2500),
        "no second wait"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "it waited first"
    );
    // The first attempt never completes (its Lambda died): after the window, a retry runs.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let Begin::Proceed(claim) = idem.begin(&key, idem.wait_deadline(), None).await.unwrap() else {
        panic!("a crashed attempt's key is taken over")
    };
    idem.complete(claim, &json!({"ticketId": "7"})).await;
    match idem.begin(&key, idem.wait_deadline(), None).await.unwrap() {
        Begin::Replay(v) => assert_eq!(v, json!({"ticketId": "7"})),
        Begin::Proceed(_) => panic!("a completed call is replayed"),
    }
    // Another tenant with the same key and arguments is another call.
    let other = OrgId::parse(unique("idem")).unwrap();
    let theirs = CallKey { org: &other, ..key };
    assert!(matches!(
        idem.begin(&theirs, idem.wait_deadline(), None)
            .await
            .unwrap(),
        Begin::Proceed(_)
    ));
}

#[tokio::test]
async fn in_progress_and_crashed_records_on_embedded() {
    in_progress_and_crashed_records(embedded_tables()).await;
}

#[tokio::test]
async fn in_progress_and_crashed_records_on_dynamodb() {
    in_progress_and_crashed_records(moto_tables().await).await;
}

/// On DynamoDB the record carries the TTL attribute the table expires items by.
#[tokio::test]
async fn records_carry_the_tables_ttl_attribute_on_dynamodb() {
    let tables = moto_tables().await;
    let idem = Idempotency::new(tables.data.clone());
    let org = OrgId::parse(unique("idem")).unwrap();
    let plugin = PluginName::parse("crm").unwrap();
    let function = FunctionName::parse("CreateLead").unwrap();
    let source = KeySource::Header(unique("k"));
    let params = json!({});
    let key = CallKey {
        org: &org,
        plugin: &plugin,
        function: &function,
        source: &source,
        params: &params,
    };
    let Begin::Proceed(claim) = idem.begin(&key, idem.wait_deadline(), None).await.unwrap() else {
        panic!("a new key is claimed")
    };
    let record = claim.key().clone();
    idem.complete(claim, &json!({"leadId": "1"})).await;
    let client = switchboard_tests::dynamodb_client(&switchboard_tests::moto_endpoint()).await;
    let item = client
        .get_item()
        .table_name("switchboard-data")
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(record.pk))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(record.sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = item.item().expect("the record");
    let at: u64 = match item.get("expires_at") {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("no top-level expires_at: {other:?}"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 86_000..=now + 86_500).contains(&at),
        "24 h from now: {at}"
    );
}

/// Through `dev` over real sockets: the header in, `Idempotent-Replayed` out.
#[tokio::test]
async fn the_header_round_trips_through_dev() {
    let dir = std::env::temp_dir().join(unique("sb-dev"));
    let (addr, key, task) = crate::dev_server::start(&dir).await;
    let ticket = json!({"function": "CreateTicket", "parameters": {"subject": "Printer",
        "description": "Jammed.", "contact": {"name": "Sam", "phone": "555-010-3000"}}});
    let body = ticket.to_string();
    let idem = unique("dev-key");
    let headers = [("Idempotency-Key", idem.as_str())];
    let send = || {
        switchboard_tests::http::send_with(
            addr,
            "POST",
            "/plugins/support",
            Some(&key),
            &headers,
            body.as_bytes(),
        )
    };
    let first = send().await;
    assert_eq!(
        (first.status, first.header("idempotent-replayed")),
        (200, None),
        "{}",
        first.body
    );
    let again = send().await;
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (200, Some("true")),
        "{}",
        again.body
    );
    assert_eq!(again.body, first.body);
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Retell's derived keys replay only within its retry window; a client's key for a day.
#[tokio::test]
async fn retell_keys_expire_with_its_retries() {
    let table = embedded_tables().data;
    let idem = Idempotency::new(table.clone());
    let org = OrgId::parse("acme").unwrap();
    let plugin = PluginName::parse("booking").unwrap();
    let function = FunctionName::parse("CreateAppointment").unwrap();
    let params = json!({"PatNum": 1});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (source, ttl) in [
        (
            KeySource::RetellCall("call_1".into()),
            switchboard::idempotency::RETELL_RETRY_WINDOW,
        ),
        (
            KeySource::Header("k1".into()),
            switchboard::idempotency::DEFAULT_TTL,
        ),
        (
            KeySource::ToolCall("t1".into()),
            switchboard::idempotency::DEFAULT_TTL,
        ),
    ] {
        let call = CallKey {
            org: &org,
            plugin: &plugin,
            function: &function,
            source: &source,
            params: &params,
        };
        let Begin::Proceed(claim) = idem.begin(&call, idem.wait_deadline(), None).await.unwrap()
        else {
            panic!("new key")
        };
        let key = claim.key().clone();
        idem.complete(claim, &json!({"AptNum": 1})).await;
        let stored = table.get(&key).await.unwrap().unwrap();
        let at = stored.data["expires_at"].as_u64().unwrap();
        assert!(
            (now + ttl.as_secs()..=now + ttl.as_secs() + 5).contains(&at),
            "{source:?}: {at}"
        );
    }
}

/// An organization's profile sets how long its calls are replayed.
#[tokio::test]
async fn an_organization_sets_its_replay_window() {
    let tables = embedded_tables();
    let data = tables.data.clone();
    let suffix = unique("t");
    let demo = demo(tables, Some(&suffix)).await;
    let org = &demo.org;
    let registry = &demo.platform.registry;
    let mut profile = registry.get_profile(org).await.unwrap().unwrap();
    profile.value.idempotency_ttl_hours = Some(1);
    registry
        .put_profile(org, &profile.value, Some(profile.version))
        .await
        .unwrap();
    let support = service(&demo.platform, "support");
    let key = unique("key");
    let ticket = json!({"function": "CreateTicket", "parameters": {"subject": "Window",
        "description": "x", "contact": {"name": "A", "phone": "555-010-2000"}}});
    let out = call(&support, org, &ticket, Some(&key)).await;
    assert_eq!(out.status, 200, "{}", out.body);
    let (plugin, function) = (
        PluginName::parse("support").unwrap(),
        FunctionName::parse("CreateTicket").unwrap(),
    );
    let source = KeySource::Header(key);
    let record = CallKey {
        org,
        plugin: &plugin,
        function: &function,
        source: &source,
        params: &ticket["parameters"],
    }
    .record_key();
    let stored = data.get(&record).await.unwrap().expect("the record");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = stored.data["expires_at"].as_u64().unwrap();
    assert!(
        (now + 3590..=now + 3610).contains(&at),
        "1 h from now: {at}"
    );
}
