//! The google-calendar handlers through the test kit, against a calendar double that keeps
//! events and answers as the Calendar API does where the plugin relies on it: an event id in
//! use is refused (409), a deleted event stays as `cancelled` with its id, and a PATCH with
//! a stale `If-Match` is refused (412). Requests' shape against Google's published contract
//! is tested in `tests/tests/suite/vendors.rs` (Prism).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard::api::{ApiBody, ApiRequest, ApiResponse};
use switchboard::ports::Api;
use switchboard::{Error, async_trait};
use switchboard_testkit::Harness;

#[derive(Default)]
struct Google {
    events: Mutex<BTreeMap<String, (Value, u64)>>,
    requests: Mutex<Vec<String>>,
    /// Answer free/busy without the calendar asked about.
    forget_calendar: std::sync::atomic::AtomicBool,
}

impl Google {
    /// A calendar holding one event made by staff in Google Calendar itself.
    fn with_staff_event() -> Arc<Self> {
        let g = Self::default();
        g.events.lock().unwrap().insert(
            "outside0001".into(),
            (
                json!({"id": "outside0001", "status": "confirmed", "etag": "\"1\"",
                    "summary": "Dr. Lee: lunch with Priya Shah",
                    "start": {"dateTime": "2027-06-01T16:00:00Z"}, "end": {"dateTime": "2027-06-01T17:00:00Z"}}),
                1,
            ),
        );
        Arc::new(g)
    }
}

fn answer(status: u16, body: Value) -> Result<ApiResponse, Error> {
    Ok(ApiResponse {
        status,
        body,
        etag: None,
    })
}

fn etag(v: u64) -> String {
    format!("\"{v}\"")
}

#[async_trait]
impl Api for Google {
    async fn send(&self, r: ApiRequest) -> Result<ApiResponse, Error> {
        self.requests
            .lock()
            .unwrap()
            .push(format!("{} {}", r.method, r.path));
        // Let concurrent calls interleave, as real round trips do.
        tokio::task::yield_now().await;
        let body = match &r.body {
            ApiBody::Json(v) => v.clone(),
            _ => Value::Null,
        };
        let mut events = self.events.lock().unwrap();
        let parts: Vec<&str> = r.path.split('/').collect();
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["", "freeBusy"]) => {
                let (from, to) = (
                    body["timeMin"].as_str().unwrap(),
                    body["timeMax"].as_str().unwrap(),
                );
                let busy: Vec<Value> = events
                    .values()
                    .filter(|(e, _)| e["status"] != "cancelled")
                    .filter(|(e, _)| {
                        e["start"]["dateTime"].as_str().unwrap() < to
                            && e["end"]["dateTime"].as_str().unwrap() > from
                    })
                    .map(|(e, _)| json!({"start": e["start"]["dateTime"], "end": e["end"]["dateTime"]}))
                    .collect();
                if self
                    .forget_calendar
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    return answer(200, json!({"calendars": {}}));
                }
                answer(200, json!({"calendars": {"primary": {"busy": busy}}}))
            }
            ("POST", ["", "calendars", "primary", "events"]) => {
                let id = body["id"].as_str().unwrap().to_owned();
                if events.contains_key(&id) {
                    return answer(
                        409,
                        json!({"error": {"code": 409, "message": "The requested identifier already exists."}}),
                    );
                }
                let mut e = body.clone();
                e["status"] = json!("confirmed");
                e["etag"] = json!(etag(1));
                events.insert(id, (e.clone(), 1));
                answer(200, e)
            }
            (method, ["", "calendars", "primary", "events", id]) => {
                let Some((e, v)) = events.get_mut(*id) else {
                    return answer(404, json!({"error": {"code": 404, "message": "Not Found"}}));
                };
                // A write names the ETag it read: a stale one is refused, as Google does.
                let wanted = r
                    .headers
                    .iter()
                    .find(|(n, _)| n == "if-match")
                    .map(|(_, h)| h.to_str().unwrap().to_owned());
                if method != "GET" && wanted.is_some_and(|w| w != etag(*v)) {
                    return answer(
                        412,
                        json!({"error": {"code": 412, "message": "Precondition Failed"}}),
                    );
                }
                match method {
                    "GET" => answer(200, e.clone()),
                    "DELETE" if e["status"] == "cancelled" => answer(410, json!({})),
                    "DELETE" => {
                        e["status"] = json!("cancelled");
                        *v += 1;
                        e["etag"] = json!(etag(*v));
                        answer(204, Value::Null)
                    }
                    "PATCH" => {
                        for (k, val) in body.as_object().unwrap() {
                            e[k] = val.clone();
                        }
                        *v += 1;
                        e["etag"] = json!(etag(*v));
                        answer(200, e.clone())
                    }
                    _ => answer(405, Value::Null),
                }
            }
            ("GET", ["", "calendars", "primary", "events"]) => {
                let items: Vec<Value> = events.values().map(|(e, _)| e.clone()).collect();
                answer(200, json!({"items": items}))
            }
            _ => answer(404, Value::Null),
        }
    }
}

/// 08:00 in New York on Tuesday 1 June 2027.
fn morning() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_811_851_200)
}

fn harness(google: Arc<Google>) -> Harness {
    Harness::new(google_calendar::plugin().unwrap(), "cal-acme")
        .at(morning())
        .api(google)
}

#[tokio::test]
async fn free_slots_book_list_move_and_cancel() {
    let google = Google::with_staff_event();
    let h = harness(google.clone());
    let free = h.ok("FindFreeSlots", json!({"date": "2027-06-01"})).await;
    // 09:00-17:00 in 30-minute slots, but for the staff event's 12:00-13:00.
    assert_eq!(free["slots"].as_array().unwrap().len(), 14, "{free}");
    assert_eq!(free["slots"][0], "09:00");
    assert!(!free["slots"].as_array().unwrap().contains(&json!("12:30")));

    let booked = h
        .ok("BookAppointment", json!({"start": "2027-06-01 10:00", "name": "Jordan Rivera", "phone": "+1 555 010 2000"}))
        .await;
    assert_eq!(
        (booked["start"].as_str(), booked["end"].as_str()),
        (Some("2027-06-01 10:00"), Some("2027-06-01 10:30"))
    );
    let id = booked["eventId"].as_str().unwrap().to_owned();
    let reference = booked["bookingRef"].as_str().unwrap().to_owned();
    assert_eq!(id, google_calendar::slot_event_id("primary", 1_811_858_400));
    let free = h.ok("FindFreeSlots", json!({"date": "2027-06-01"})).await;
    assert!(
        !free["slots"].as_array().unwrap().contains(&json!("10:00")),
        "{free}"
    );

    // The day's busy times, without anyone's name.
    let list = h
        .ok("ListAppointments", json!({"date": "2027-06-01"}))
        .await;
    assert_eq!(list["events"].as_array().unwrap().len(), 2, "{list}");
    assert!(
        !list.to_string().contains("Priya") && !list.to_string().contains("Jordan"),
        "{list}"
    );

    // The eventId follows from the slot: without the bookingRef it moves or cancels nothing.
    let e = h
        .call(
            "CancelAppointment",
            json!({"eventId": id, "bookingRef": "0123456789abcdef0123456789abcdef"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404, "{e}");
    // Moving to where it is already is a no-op, not a conflict with itself.
    let same = h
        .ok(
            "MoveAppointment",
            json!({"eventId": id, "bookingRef": reference, "start": "2027-06-01 10:00"}),
        )
        .await;
    assert_eq!(same["eventId"], json!(id));
    let moved = h
        .ok(
            "MoveAppointment",
            json!({"eventId": id, "bookingRef": reference, "start": "2027-06-01 14:30"}),
        )
        .await;
    assert_eq!(moved["start"], "2027-06-01 14:30");
    assert!(moved.get("warning").is_none(), "{moved}");
    let new_id = moved["eventId"].as_str().unwrap().to_owned();
    let new_ref = moved["bookingRef"].as_str().unwrap().to_owned();
    let e = h
        .call(
            "CancelAppointment",
            json!({"eventId": id, "bookingRef": reference}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404, "the old slot was cancelled by the move");
    h.ok(
        "CancelAppointment",
        json!({"eventId": new_id, "bookingRef": new_ref}),
    )
    .await;

    // The cancelled 10:00 slot can be booked again: its event is revived with a new
    // bookingRef, so the first booking's reference cannot cancel the new one.
    let again = h
        .ok(
            "BookAppointment",
            json!({"start": "2027-06-01 10:00", "name": "Sam Ortiz"}),
        )
        .await;
    assert_eq!(again["eventId"], json!(id));
    assert_ne!(again["bookingRef"], json!(reference));
    let e = h
        .call(
            "CancelAppointment",
            json!({"eventId": id, "bookingRef": reference}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
    // An event made in Google Calendar itself cannot be moved or cancelled here.
    let e = h
        .call(
            "CancelAppointment",
            json!({"eventId": "outside0001", "bookingRef": reference}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422, "{e}");
    assert!(
        e.to_string().contains("not booked through this assistant"),
        "{e}"
    );
}

#[tokio::test]
async fn a_free_busy_answer_without_the_calendar_books_nothing() {
    let google = Arc::new(Google::default());
    google
        .forget_calendar
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let h = harness(google.clone());
    for (function, params) in [
        ("FindFreeSlots", json!({"date": "2027-06-01"})),
        (
            "BookAppointment",
            json!({"start": "2027-06-01 10:00", "name": "X"}),
        ),
    ] {
        let e = h.call(function, params).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    }
    assert!(google.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn two_calls_racing_for_one_slot_book_it_once() {
    let google = Arc::new(Google::default());
    let h = Arc::new(harness(google.clone()));
    let calls: Vec<_> = ["Jordan Rivera", "Priya Shah", "Marcus Chen", "Sam Ortiz"]
        .into_iter()
        .map(|name| {
            let h = h.clone();
            tokio::spawn(async move {
                h.call(
                    "BookAppointment",
                    json!({"start": "2027-06-01 11:00", "name": name}),
                )
                .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for c in calls {
        match c.await.unwrap() {
            Ok(v) => won.push(v),
            Err(e) => {
                assert_eq!(e.status(), 409, "{e}");
                assert!(e.to_string().contains("FindFreeSlots"), "{e}");
            }
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(google.events.lock().unwrap().len(), 1);
    // A cancelled slot revived by two calls at once: one wins (If-Match), the other is 409.
    h.ok(
        "CancelAppointment",
        json!({"eventId": won[0]["eventId"], "bookingRef": won[0]["bookingRef"]}),
    )
    .await;
    let (a, b) = tokio::join!(
        h.call(
            "BookAppointment",
            json!({"start": "2027-06-01 11:00", "name": "A"})
        ),
        h.call(
            "BookAppointment",
            json!({"start": "2027-06-01 11:00", "name": "B"})
        )
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count(),
        1,
        "{a:?} {b:?}"
    );
}

#[tokio::test]
async fn times_outside_the_rules_are_422_before_any_request() {
    let google = Arc::new(Google::default());
    let h = harness(google.clone());
    for start in [
        "2027-06-01 07:30",
        "2027-06-01 10:10",
        "2027-05-31 10:00",
        "2027-06-05 10:00",
    ] {
        let e = h
            .call("BookAppointment", json!({"start": start, "name": "X"}))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 422, "{start}: {e}");
    }
    assert!(google.requests.lock().unwrap().is_empty());
    // Saturday is closed: no slots, and no free/busy request.
    let closed = h.ok("FindFreeSlots", json!({"date": "2027-06-05"})).await;
    assert_eq!(
        (
            closed["slots"].as_array().map(Vec::len),
            closed["closed"].as_bool()
        ),
        (Some(0), Some(true))
    );
    assert!(google.requests.lock().unwrap().is_empty());
}

#[test]
fn slot_ids_are_base32hex_and_per_calendar() {
    let a = google_calendar::slot_event_id("primary", 1_811_858_400);
    let b = google_calendar::slot_event_id("front@acme.example", 1_811_858_400);
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'v').contains(&c)),
        "{a}"
    );
}

#[tokio::test]
async fn a_spanish_call_hears_spanish() {
    let google = Arc::new(Google::default());
    let h = harness(google).locale("es-US");
    let e = h
        .call(
            "BookAppointment",
            json!({"start": "2027-05-01 10:00", "name": "Ana Ruiz"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(
        e.to_string()
            .contains("2027-05-01 10:00 ya ha pasado; ofrezca una hora posterior"),
        "{e}"
    );
}
