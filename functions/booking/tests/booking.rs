//! The booking rules end to end: handlers called through the plugin on the embedded store,
//! with parameters validated against the manifest as the pipeline does, and a fixed clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use switchboard::manifest::overlay;
use switchboard::{DataAdapter, EntityName, RecordId};
use switchboard_testkit::{Harness, Meddle};

/// Monday 1 December 2025, 09:00 in New York.
const MONDAY_9AM: &str = "2025-12-01T09:00:00";

fn local(tz: &str, dt: &str) -> SystemTime {
    let dt: DateTime = dt.parse().unwrap();
    let ts = TimeZone::get(tz).unwrap().to_timestamp(dt).unwrap();
    SystemTime::try_from(ts).unwrap()
}

/// The demo tenant's booking data from `infra/seed/demo.json`, created as `dev` creates it:
/// in order and without ids, so the store allocates 1, 2, 3.
async fn seed_demo(data: &dyn DataAdapter) {
    let demo: Value = serde_json::from_str(include_str!("../../../infra/seed/demo.json")).unwrap();
    for (entity, records) in demo["data"]["booking"].as_object().unwrap() {
        let entity = EntityName::parse(entity.as_str()).unwrap();
        for r in records.as_array().unwrap() {
            data.create(&entity, r.clone()).await.unwrap();
        }
    }
}

/// Bright Smile's booking instance with the demo data, on Monday 09:00 in New York.
async fn harness() -> Harness {
    let h = Harness::new(booking::plugin().unwrap(), "bright-smile")
        .at(local("America/New_York", MONDAY_9AM));
    seed_demo(h.data.as_ref()).await;
    h
}

/// The booking suite's own helpers.
trait Booking {
    async fn book(&self, pat: i64, at: &str, prov: i64, extra: Value) -> Value;
    async fn slots(&self, params: Value) -> Value;
    async fn claim_ids(&self) -> BTreeSet<String>;
    async fn appointments(&self) -> Vec<Value>;
    async fn expected_claims(&self) -> BTreeSet<String>;
    async fn foreign_claim(&self, id: &str, owner: Value, claimed_at: i64);
    fn now_secs(&self) -> i64;
}

impl Booking for Harness {
    async fn book(&self, pat: i64, at: &str, prov: i64, extra: Value) -> Value {
        let mut params = json!({"PatNum": pat, "AptDateTime": at, "ProvNum": prov});
        overlay(&mut params, &extra);
        self.ok("CreateAppointment", params).await
    }

    async fn slots(&self, params: Value) -> Value {
        self.ok("GetAvailableSlots", params).await
    }

    async fn claim_ids(&self) -> BTreeSet<String> {
        self.stored("slot_claims")
            .await
            .into_iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn appointments(&self) -> Vec<Value> {
        self.stored("appointments").await
    }

    /// The claims the stored Scheduled appointments should hold, and nothing else.
    async fn expected_claims(&self) -> BTreeSet<String> {
        self.appointments()
            .await
            .iter()
            .filter(|a| a["AptStatus"] == "Scheduled")
            .flat_map(|a| {
                let start = a["AptDateTime"].as_str().unwrap().replace(' ', "T");
                claims_of(
                    a["ProvNum"].as_i64().unwrap(),
                    a["Op"].as_i64().unwrap(),
                    &start,
                    a["durationMinutes"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// Stores a claim as another request holding it would.
    async fn foreign_claim(&self, id: &str, owner: Value, claimed_at: i64) {
        let claims = EntityName::parse("slot_claims").unwrap();
        let rid = RecordId::parse(id).unwrap();
        self.data.delete(&claims, &rid).await.unwrap();
        self.data
            .create(
                &claims,
                json!({"id": id, "AptNum": owner, "AptDate": "2025-12-02", "claimedAt": claimed_at}),
            )
            .await
            .unwrap();
    }

    fn now_secs(&self) -> i64 {
        let d = self.now.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        i64::try_from(d.as_secs()).unwrap()
    }
}

fn starts(slots: &Value, prov: i64) -> Vec<String> {
    slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ProvNum"] == prov)
        .map(|s| s["AptDateTime"].as_str().unwrap()[11..16].to_owned())
        .collect()
}

fn unix_minute(tz: &str, dt: &str) -> i64 {
    let t = local(tz, dt);
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    i64::try_from(secs / 60).unwrap()
}

/// The claims an appointment holds: one per absolute 5-minute unit, for provider and room.
fn claims_of(prov: i64, op: i64, start: &str, minutes: i64) -> BTreeSet<String> {
    let first = unix_minute("America/New_York", start);
    (0..minutes / 5)
        .flat_map(|k| {
            let m = first + 5 * k;
            [format!("prov-{prov}-{m}"), format!("op-{op}-{m}")]
        })
        .collect()
}

#[test]
fn plugin_builds_with_one_handler_per_function() {
    let plugin = booking::plugin().unwrap();
    let names: Vec<&str> = plugin
        .manifest()
        .manifest()
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "GetAllPatients",
            "GetPatient",
            "SearchPatients",
            "CreatePatient",
            "GetProviders",
            "GetAvailableSlots",
            "CreateAppointment",
            "GetAppointments",
            "RescheduleAppointment",
            "CancelAppointment"
        ]
    );
    assert_eq!(plugin.name().as_str(), "booking");
    assert!(plugin.manifest().manifest().functions.iter().all(|f| {
        f.parameters["type"] == "object"
            && f.parameters["additionalProperties"] == false
            && !f.examples.is_empty()
    }));
}

#[tokio::test]
async fn demo_seed_numbers_match_ids() {
    let h = harness().await;
    let providers = h.ok("GetProviders", json!({})).await;
    assert_eq!(providers["providers"].as_array().unwrap().len(), 2);
    assert_eq!(providers["providers"][0]["ProvNum"], 1);
    assert_eq!(providers["providers"][0]["Abbr"], "Dr. Lee");
    let jordan = h.ok("GetPatient", json!({"PatNum": 1})).await;
    assert_eq!(jordan["FName"], "Jordan");
    assert_eq!(jordan["LName"], "Rivera");
    assert_eq!(jordan["WirelessPhone"], "555-010-2000");
    assert_eq!(jordan["id"], "1");
    let all = h.ok("GetAllPatients", json!({})).await;
    assert_eq!(all["patients"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn unknown_patient_is_404_with_advice() {
    let h = harness().await;
    let (status, msg, _) = h.fails("GetPatient", json!({"PatNum": 42})).await;
    assert_eq!(status, 404);
    assert!(
        msg.starts_with("No patient with PatNum 42. Use SearchPatients"),
        "{msg}"
    );
}

#[tokio::test]
async fn phone_search_normalises_numbers() {
    let h = harness().await;
    for phone in [
        "+1 (555) 010-2000",
        "5550102000",
        "555.010.2000",
        "010-2000",
    ] {
        let r = h.ok("SearchPatients", json!({ "phone": phone })).await;
        let found = r["patients"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{phone}");
        assert_eq!(found[0]["PatNum"], 1);
    }
    let none = h
        .ok("SearchPatients", json!({"phone": "555-999-0000"}))
        .await;
    assert!(none["patients"].as_array().unwrap().is_empty());
    let (status, _, paths) = h.fails("SearchPatients", json!({"phone": "2000"})).await;
    assert_eq!((status, paths), (422, vec!["/phone".to_owned()]));
}

#[tokio::test]
async fn name_search_is_a_case_insensitive_substring_and_one_criterion_is_required() {
    let h = harness().await;
    let r = h
        .ok("SearchPatients", json!({"name": "  JORDAN   riv"}))
        .await;
    assert_eq!(r["patients"][0]["PatNum"], 1);
    let r = h.ok("SearchPatients", json!({"name": "an r"})).await;
    assert_eq!(r["patients"].as_array().unwrap().len(), 1);
    let both = h
        .ok(
            "SearchPatients",
            json!({"name": "rivera", "phone": "555-010-3000"}),
        )
        .await;
    assert!(both["patients"].as_array().unwrap().is_empty());
    let (status, msg, _) = h.fails("SearchPatients", json!({})).await;
    assert_eq!(status, 422);
    assert!(msg.contains("phone number or a name"), "{msg}");
}

#[tokio::test]
async fn on_a_phone_line_an_empty_search_uses_the_callers_number() {
    let mut h = harness().await;
    h.caller_phone = Some("+1 555 010 2000".into());
    let r = h.ok("SearchPatients", json!({})).await;
    let found = r["patients"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{r}");
    assert_eq!(found[0]["PatNum"], 1);
    // A number the model gives, or a name, wins over the caller's.
    let r = h.ok("SearchPatients", json!({"name": "nobody-here"})).await;
    assert!(r["patients"].as_array().unwrap().is_empty(), "{r}");
    let r = h
        .ok("SearchPatients", json!({"phone": "555-010-3000"}))
        .await;
    assert_eq!(r["patients"][0]["PatNum"], 2, "{r}");
    // A withheld number is no number.
    h.caller_phone = Some("12".into());
    let (status, _, _) = h.fails("SearchPatients", json!({})).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn patients_are_paginated() {
    let h = harness().await;
    let first = h.ok("GetAllPatients", json!({"limit": 2})).await;
    assert_eq!(first["patients"].as_array().unwrap().len(), 2);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = h
        .ok("GetAllPatients", json!({"limit": 2, "cursor": cursor}))
        .await;
    assert_eq!(second["patients"].as_array().unwrap().len(), 1);
    assert_eq!(second["patients"][0]["PatNum"], 3);
    assert!(second["nextCursor"].is_null());
    let (status, _, paths) = h.fails("GetAllPatients", json!({"limit": 0})).await;
    assert_eq!((status, paths), (422, vec!["/limit".to_owned()]));
}

#[tokio::test]
async fn create_patient_refuses_duplicates_and_bad_birthdates() {
    let h = harness().await;
    let (status, msg, _) = h
        .fails(
            "CreatePatient",
            json!({"FName": "jordan", "LName": "RIVERA", "WirelessPhone": "+1 555 010 2000"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.contains("already on file as PatNum 1"), "{msg}");

    let created = h
        .ok(
            "CreatePatient",
            json!({"FName": " Alex ", "LName": "Morgan", "WirelessPhone": "555-010-7000",
                   "Email": "alex@example.com", "Birthdate": "1990-06-15"}),
        )
        .await;
    assert_eq!(created["PatNum"], 4);
    assert_eq!(created["id"], "4");
    assert_eq!(created["FName"], "Alex");
    let again = h.ok("GetPatient", json!({"PatNum": 4})).await;
    assert_eq!(again, created);

    let (status, _, paths) = h
        .fails(
            "CreatePatient",
            json!({"FName": "Baby", "LName": "Future", "Birthdate": "2026-01-01"}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/Birthdate".to_owned()]));
    let (status, _, paths) = h
        .fails(
            "CreatePatient",
            json!({"FName": "Leap", "LName": "Day", "Birthdate": "2023-02-29"}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/Birthdate".to_owned()]));
    let (status, _, paths) = h
        .fails(
            "CreatePatient",
            json!({"FName": "No", "LName": "Last", "Nickname": "x"}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/Nickname".to_owned()]));
}

#[tokio::test]
async fn a_booking_is_stored_with_opendental_fields() {
    let h = harness().await;
    let apt = h
        .book(
            1,
            "2025-12-02 10:00",
            1,
            json!({"ProcDescript": "Cleaning", "Note": "nervous"}),
        )
        .await;
    assert_eq!(
        apt,
        json!({
            "id": "1", "AptNum": 1, "PatNum": 1, "ProvNum": 1, "Op": 1,
            "AptDateTime": "2025-12-02 10:00:00", "AptDate": "2025-12-02",
            "durationMinutes": 30, "AptStatus": "Scheduled",
            "Note": "nervous", "ProcDescript": "Cleaning",
        })
    );
    let minute = unix_minute("America/New_York", "2025-12-02T10:00:00");
    // Six absolute 5-minute units, for the provider and for the room.
    assert_eq!(
        h.claim_ids().await,
        claims_of(1, 1, "2025-12-02T10:00:00", 30)
    );
    assert!(
        h.claim_ids()
            .await
            .contains(&format!("op-1-{}", minute + 25))
    );
    let claim = h
        .data
        .get(
            &EntityName::parse("slot_claims").unwrap(),
            &RecordId::parse(format!("prov-1-{minute}")).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim["AptNum"], 1);
}

#[tokio::test]
async fn dates_must_be_real() {
    let h = harness().await;
    for bad in ["2026-02-30 10:00", "tomorrow", "2025-12-02 10:00 AM"] {
        let (status, _, paths) = h
            .fails(
                "CreateAppointment",
                json!({"PatNum": 1, "AptDateTime": bad, "ProvNum": 1}),
            )
            .await;
        assert_eq!(
            (status, paths),
            (422, vec!["/AptDateTime".to_owned()]),
            "{bad}"
        );
    }
    let (status, _, paths) = h
        .fails("GetAvailableSlots", json!({"date": "2025-11-31"}))
        .await;
    assert_eq!((status, paths), (422, vec!["/date".to_owned()]));
}

#[tokio::test]
async fn office_hours_and_the_slot_grid_are_enforced() {
    let h = harness().await;
    let book = |at: &'static str, extra: Value| {
        let mut p = json!({"PatNum": 1, "AptDateTime": at, "ProvNum": 1});
        overlay(&mut p, &extra);
        p
    };
    let (status, msg, _) = h
        .fails("CreateAppointment", book("2025-12-06 10:00", json!({})))
        .await;
    assert_eq!(status, 422);
    assert!(
        msg.contains("closed on Saturdays") && msg.contains("Monday to Friday 08:00 to 17:00"),
        "{msg}"
    );
    let (_, msg, _) = h
        .fails("CreateAppointment", book("2025-12-02 07:30", json!({})))
        .await;
    assert!(msg.contains("outside office hours"), "{msg}");
    let (_, msg, _) = h
        .fails(
            "CreateAppointment",
            book("2025-12-02 16:30", json!({"durationMinutes": 60})),
        )
        .await;
    assert!(msg.contains("from 08:00 to 16:00"), "{msg}");
    let (_, msg, _) = h
        .fails("CreateAppointment", book("2025-12-02 10:10", json!({})))
        .await;
    assert!(msg.contains("The nearest are 10:00 or 10:30"), "{msg}");
    let (status, _, paths) = h
        .fails(
            "CreateAppointment",
            book("2025-12-02 10:00", json!({"durationMinutes": 45})),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/durationMinutes".to_owned()]));
    h.book(1, "2025-12-02 16:00", 1, json!({"durationMinutes": 60}))
        .await;
}

#[tokio::test]
async fn times_in_the_past_are_refused() {
    let h = harness()
        .await
        .at(local("America/New_York", "2025-12-02T10:05:00"));
    let (status, msg, paths) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(paths, ["/AptDateTime"]);
    assert!(msg.contains("in the past; it is now 10:05"), "{msg}");
    h.book(1, "2025-12-02 10:30", 1, json!({})).await;
}

#[tokio::test]
async fn same_day_booking_can_be_turned_off() {
    let h = harness()
        .await
        .config(json!({"allowSameDayBooking": false}));
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-01 15:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        msg.contains("earliest bookable day is tomorrow, Tuesday 2 December"),
        "{msg}"
    );
    let today = h.slots(json!({"date": "2025-12-01"})).await;
    assert!(today["slots"].as_array().unwrap().is_empty());
    assert!(today["message"].as_str().unwrap().contains("tomorrow"));
    h.book(1, "2025-12-02 08:00", 1, json!({})).await;
}

#[tokio::test]
async fn consent_is_required_when_configured() {
    let h = harness()
        .await
        .config(json!({"requirePatientConsent": true}));
    let params = json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1});
    let (status, msg, paths) = h.fails("CreateAppointment", params.clone()).await;
    assert_eq!((status, paths), (422, vec!["/patientConsent".to_owned()]));
    assert!(msg.contains("ask them to confirm"), "{msg}");
    let mut refused = params.clone();
    refused["patientConsent"] = json!(false);
    assert_eq!(h.fails("CreateAppointment", refused).await.0, 422);
    let apt = h
        .book(1, "2025-12-02 10:00", 1, json!({"patientConsent": true}))
        .await;

    let (status, _, paths) = h
        .fails(
            "RescheduleAppointment",
            json!({"AptNum": apt["AptNum"], "AptDateTime": "2025-12-02 11:00"}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/patientConsent".to_owned()]));
    h.ok(
        "RescheduleAppointment",
        json!({"AptNum": apt["AptNum"], "AptDateTime": "2025-12-02 11:00", "patientConsent": true}),
    )
    .await;
}

#[tokio::test]
async fn a_provider_cannot_be_double_booked() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({"durationMinutes": 60}))
        .await;
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 2, "AptDateTime": "2025-12-02 10:30", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Dr. Lee is already booked at 10:30 on Tuesday 2 December. Offer another time; GetAvailableSlots lists open times."
    );
    let (status, _, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 2, "AptDateTime": "2025-12-02 09:30", "ProvNum": 1, "durationMinutes": 60}),
        )
        .await;
    assert_eq!(status, 409);
    // Right after it ends is free; the other provider is free meanwhile.
    h.book(2, "2025-12-02 11:00", 1, json!({})).await;
    let other = h.book(2, "2025-12-02 10:00", 2, json!({})).await;
    assert_eq!(other["Op"], 2);
    // The same patient cannot be in two chairs at once.
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:30", "ProvNum": 2}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        msg.contains("Jordan Rivera already has an appointment"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_operatory_cannot_be_double_booked_and_a_free_one_is_assigned() {
    let h = harness().await;
    let first = h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    assert_eq!(first["Op"], 1);
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 2, "AptDateTime": "2025-12-02 10:00", "ProvNum": 2, "Op": 1}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        msg.starts_with("Op 1 is already in use at 10:00 on Tuesday 2 December"),
        "{msg}"
    );
    let auto = h.book(2, "2025-12-02 10:00", 2, json!({})).await;
    assert_eq!(auto["Op"], 2);

    // A third provider finds no free room at 10:00.
    let third = h
        .data
        .create(
            &EntityName::parse("providers").unwrap(),
            json!({"FName": "Ana", "LName": "Kim", "Abbr": "Dr. Kim"}),
        )
        .await
        .unwrap();
    assert_eq!(third["id"], "3");
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 3, "AptDateTime": "2025-12-02 10:00", "ProvNum": 3}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.starts_with("No treatment room is free"), "{msg}");
    let slots = h.slots(json!({"date": "2025-12-02", "ProvNum": 3})).await;
    assert!(!starts(&slots, 3).contains(&"10:00".to_owned()));
    assert!(starts(&slots, 3).contains(&"10:30".to_owned()));
}

#[tokio::test]
async fn unknown_references_are_404() {
    let h = harness().await;
    let cases = [
        json!({"PatNum": 99, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1}),
        json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 9}),
        json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1, "Op": 7}),
    ];
    for params in cases {
        assert_eq!(h.fails("CreateAppointment", params).await.0, 404);
    }
    let (status, msg, _) = h.fails("CancelAppointment", json!({"AptNum": 5})).await;
    assert_eq!(status, 404);
    assert!(msg.contains("GetAppointments"), "{msg}");
    let params = json!({"AptNum": 5, "AptDateTime": "2025-12-02 10:00"});
    assert_eq!(h.fails("RescheduleAppointment", params).await.0, 404);
    assert_eq!(
        h.fails("GetAppointments", json!({"PatNum": 77})).await.0,
        404
    );
    let params = json!({"date": "2025-12-02", "ProvNum": 4});
    assert_eq!(h.fails("GetAvailableSlots", params).await.0, 404);
}

#[tokio::test]
async fn available_slots_follow_hours_bookings_and_the_clock() {
    let h = harness().await;
    let tuesday = h.slots(json!({"date": "2025-12-02"})).await;
    assert_eq!(tuesday["timeZone"], "America/New_York");
    assert_eq!(tuesday["date"], "2025-12-02");
    assert_eq!(starts(&tuesday, 1).len(), 18);
    assert_eq!(starts(&tuesday, 1)[0], "08:00");
    assert_eq!(starts(&tuesday, 2).last().unwrap(), "16:30");
    assert_eq!(tuesday["slots"][0]["Op"], 1);
    assert!(tuesday.get("message").is_none());

    h.book(1, "2025-12-02 10:00", 1, json!({"durationMinutes": 60}))
        .await;
    let after = h
        .slots(json!({"date": "2025-12-02", "durationMinutes": 60}))
        .await;
    let lee = starts(&after, 1);
    for busy in ["09:30", "10:00", "10:30"] {
        assert!(!lee.contains(&busy.to_owned()), "{busy} in {lee:?}");
    }
    assert!(lee.contains(&"09:00".to_owned()) && lee.contains(&"11:00".to_owned()));
    assert_eq!(lee.last().unwrap(), "16:00");
    // Dr. Ortiz is free at 10:00 but Op 1 is taken, so Op 2 is offered.
    let ortiz_ten = after["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ProvNum"] == 2 && s["AptDateTime"] == "2025-12-02 10:00:00")
        .unwrap();
    assert_eq!(ortiz_ten["Op"], 2);

    // Today (Monday, 09:00 now): only later times.
    let today = h.slots(json!({"date": "2025-12-01", "ProvNum": 1})).await;
    assert_eq!(starts(&today, 1)[0], "09:30");
    assert!(starts(&today, 2).is_empty());

    let saturday = h.slots(json!({"date": "2025-12-06"})).await;
    assert!(saturday["slots"].as_array().unwrap().is_empty());
    assert!(
        saturday["message"]
            .as_str()
            .unwrap()
            .contains("closed on Saturdays"),
        "{saturday}"
    );
    let past = h.slots(json!({"date": "2025-11-28"})).await;
    assert!(past["message"].as_str().unwrap().contains("already passed"));
}

#[tokio::test]
async fn rescheduling_onto_its_own_time_claims_only_new_units() {
    let h = harness().await;
    let apt = h
        .book(1, "2025-12-02 10:00", 1, json!({"durationMinutes": 60}))
        .await;
    let moved = h
        .ok(
            "RescheduleAppointment",
            json!({"AptNum": apt["AptNum"], "AptDateTime": "2025-12-02 10:30"}),
        )
        .await;
    assert_eq!(moved["AptDateTime"], "2025-12-02 10:30:00");
    assert_eq!(moved["durationMinutes"], 60);
    assert_eq!(moved["Op"], 1);
    assert_eq!(moved["AptNum"], 1);
    assert_eq!(
        h.claim_ids().await,
        claims_of(1, 1, "2025-12-02T10:30:00", 60)
    );
    // 10:00 is free again; 11:00 is not.
    h.book(2, "2025-12-02 10:00", 1, json!({})).await;
    let (status, _, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 3, "AptDateTime": "2025-12-02 11:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 409);

    // Moving to another provider and day keeps the patient's room when it is free.
    let moved = h
        .ok(
            "RescheduleAppointment",
            json!({"AptNum": 1, "AptDateTime": "2025-12-03T09:00", "ProvNum": 2, "durationMinutes": 30}),
        )
        .await;
    assert_eq!(
        (moved["ProvNum"].clone(), moved["Op"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(moved["AptDate"], "2025-12-03");
    let (status, msg, _) = h
        .fails(
            "RescheduleAppointment",
            json!({"AptNum": 2, "AptDateTime": "2025-12-03 09:00", "ProvNum": 2}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        msg.starts_with("Dr. Ortiz is already booked at 09:00 on Wednesday 3 December"),
        "{msg}"
    );
}

#[tokio::test]
async fn cancelling_frees_the_slot_and_cannot_happen_twice() {
    let h = harness().await;
    let apt = h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    let cancelled = h
        .ok(
            "CancelAppointment",
            json!({"AptNum": 1, "reason": "Feeling unwell"}),
        )
        .await;
    assert_eq!(cancelled["AptStatus"], "Broken");
    assert_eq!(cancelled["CancelReason"], "Feeling unwell");
    assert_eq!(cancelled["AptNum"], apt["AptNum"]);
    assert!(h.claim_ids().await.is_empty());

    let (status, msg, _) = h.fails("CancelAppointment", json!({"AptNum": 1})).await;
    assert_eq!(status, 409);
    assert!(msg.contains("already cancelled"), "{msg}");
    let (status, _, _) = h
        .fails(
            "RescheduleAppointment",
            json!({"AptNum": 1, "AptDateTime": "2025-12-02 11:00"}),
        )
        .await;
    assert_eq!(status, 409);

    let slots = h.slots(json!({"date": "2025-12-02", "ProvNum": 1})).await;
    assert!(starts(&slots, 1).contains(&"10:00".to_owned()));
    let again = h.book(2, "2025-12-02 10:00", 1, json!({})).await;
    assert_eq!(again["Op"], 1);

    let listed = h.ok("GetAppointments", json!({"PatNum": 1})).await;
    assert!(listed["appointments"].as_array().unwrap().is_empty());
    let listed = h
        .ok(
            "GetAppointments",
            json!({"PatNum": 1, "includeCancelled": true}),
        )
        .await;
    assert_eq!(listed["appointments"][0]["AptStatus"], "Broken");
}

#[tokio::test]
async fn past_appointments_cannot_be_changed() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    let later = h.at(local("America/New_York", "2025-12-02T10:15:00"));
    let (status, msg, _) = later.fails("CancelAppointment", json!({"AptNum": 1})).await;
    assert_eq!(status, 422);
    assert!(msg.contains("already started or passed"), "{msg}");
}

#[tokio::test]
async fn appointments_are_listed_by_patient_or_range_in_time_order() {
    let h = harness().await;
    h.book(1, "2025-12-03 09:00", 1, json!({})).await;
    h.book(2, "2025-12-02 15:00", 2, json!({})).await;
    h.book(1, "2025-12-02 11:00", 1, json!({})).await;
    h.book(1, "2025-12-10 11:00", 2, json!({})).await;

    let mine = h.ok("GetAppointments", json!({"PatNum": 1})).await;
    let times: Vec<&str> = mine["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AptDateTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2025-12-02 11:00:00",
            "2025-12-03 09:00:00",
            "2025-12-10 11:00:00"
        ]
    );
    let range = h
        .ok(
            "GetAppointments",
            json!({"startDate": "2025-12-02", "endDate": "2025-12-03"}),
        )
        .await;
    let nums: Vec<i64> = range["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AptNum"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, [3, 2, 1]);

    let (status, msg, _) = h.fails("GetAppointments", json!({})).await;
    assert_eq!(status, 422);
    assert!(msg.contains("PatNum, or a startDate and endDate"), "{msg}");
    let (_, _, paths) = h
        .fails("GetAppointments", json!({"startDate": "2025-12-02"}))
        .await;
    assert_eq!(paths, ["/endDate"]);
    let (_, _, paths) = h
        .fails(
            "GetAppointments",
            json!({"startDate": "2025-12-05", "endDate": "2025-12-02"}),
        )
        .await;
    assert_eq!(paths, ["/endDate"]);
}

#[tokio::test]
async fn a_taken_claim_refuses_the_booking_and_an_orphan_is_released() {
    let h = harness().await;
    let claims = EntityName::parse("slot_claims").unwrap();
    let now_secs = |h: &Harness| {
        let d = h.now.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        i64::try_from(d.as_secs()).unwrap()
    };
    let ten = unix_minute("America/New_York", "2025-12-02T10:00:00");
    // Another request is booking the same provider at this instant.
    h.data
        .create(
            &claims,
            json!({"id": format!("prov-1-{ten}"), "AptNum": "pending", "claimedAt": now_secs(&h)}),
        )
        .await
        .unwrap();
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.starts_with("That time was just taken"), "{msg}");
    // The failed attempt left nothing behind.
    assert_eq!(h.claim_ids().await.len(), 1);

    // Ten minutes later the pending claim is an orphan and is released.
    let later = h.at(local("America/New_York", "2025-12-01T09:10:00"));
    let apt = later.book(1, "2025-12-02 10:00", 1, json!({})).await;
    assert_eq!(apt["AptStatus"], "Scheduled");
    assert_eq!(
        later.claim_ids().await,
        claims_of(1, 1, "2025-12-02T10:00:00", 30)
    );
}

#[tokio::test]
async fn bookings_across_a_dst_change_use_real_durations() {
    // Sunday 8 March 2026: New York clocks jump from 02:00 to 03:00.
    let h = harness()
        .await
        .config(json!({"officeHours": {"sun": {"open": "00:00", "close": "05:00"}}}))
        .at(local("America/New_York", "2026-03-06T12:00:00"));
    let slots = h.slots(json!({"date": "2026-03-08", "ProvNum": 1})).await;
    let lee = starts(&slots, 1);
    assert!(!lee.contains(&"02:00".to_owned()) && !lee.contains(&"02:30".to_owned()));
    assert_eq!(lee.len(), 8);
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2026-03-08 02:30", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(msg.contains("clocks go forward"), "{msg}");
    // 01:30 for an hour ends at 03:30 local, so 03:00 is taken.
    h.book(1, "2026-03-08 01:30", 1, json!({"durationMinutes": 60}))
        .await;
    let (status, _, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 2, "AptDateTime": "2026-03-08 03:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 409);
    h.book(2, "2026-03-08 03:30", 1, json!({})).await;
    let after = h.slots(json!({"date": "2026-03-08", "ProvNum": 1})).await;
    assert_eq!(
        starts(&after, 1),
        ["00:00", "00:30", "01:00", "04:00", "04:30"]
    );
}

#[tokio::test]
async fn a_bad_config_is_invalid_config() {
    let h = harness()
        .await
        .config(json!({"timeZone": "Mars/Olympus_Mons"}));
    let err = h
        .call("GetAvailableSlots", json!({"date": "2025-12-02"}))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (422, "invalid_config"));
    let h = harness()
        .await
        .config(json!({"slotMinutes": 20, "defaultAppointmentMinutes": 30}));
    let err = h
        .call(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_config");
}

#[test]
fn the_config_schema_rejects_malformed_hours() {
    let plugin = booking::plugin().unwrap();
    let m = plugin.manifest();
    let mut c = m.manifest().default_config.clone();
    overlay(
        &mut c,
        &json!({"officeHours": {"sat": {"open": "9", "close": "12:00"}}}),
    );
    assert!(m.validate_config(&c).is_err());
    let mut c = m.manifest().default_config.clone();
    overlay(
        &mut c,
        &json!({"officeHours": {"sat": {"open": "09:00", "close": "12:00"}}}),
    );
    assert!(m.validate_config(&c).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bookings_of_one_time_let_exactly_one_through() {
    let h = Arc::new(harness().await);
    for (round, at) in ["2025-12-02 10:00", "2025-12-02 14:30", "2025-12-03 09:00"]
        .into_iter()
        .enumerate()
    {
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (h, start) = (h.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let params = json!({"PatNum": i % 3 + 1, "AptDateTime": at, "ProvNum": 1});
                    h.call("CreateAppointment", params).await
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(apt) => won.push(apt),
                Err(e) => {
                    assert_eq!(e.status(), 409, "{e}");
                    refused += 1;
                }
            }
        }
        assert_eq!((won.len(), refused), (1, 7), "{at}");
        let scheduled: Vec<Value> = h
            .appointments()
            .await
            .into_iter()
            .filter(|a| a["AptStatus"] == "Scheduled")
            .collect();
        assert_eq!(scheduled.len(), round + 1);
        assert_eq!(
            scheduled
                .iter()
                .filter(|a| a["AptDateTime"].as_str().unwrap().starts_with(at))
                .count(),
            1
        );
        // Exactly the winner's claims are left: the losers took nothing with them.
        assert_eq!(h.claim_ids().await, h.expected_claims().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_cancel_and_reschedule_leave_claims_matching_the_appointment() {
    let h = Arc::new(harness().await);
    let rounds = [
        ("2025-12-02", "08:00"),
        ("2025-12-03", "09:00"),
        ("2025-12-04", "10:00"),
        ("2025-12-05", "11:00"),
        ("2025-12-08", "12:00"),
        ("2025-12-09", "13:00"),
    ];
    for (day, hour) in rounds {
        let apt = h.book(1, &format!("{day} {hour}"), 1, json!({})).await;
        let num = apt["AptNum"].clone();
        let target = format!("{day} 16:00");
        // Both start together, so they usually read the same appointment.
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let mv = {
            let (h, target, num) = (h.clone(), target.clone(), num.clone());
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                h.call(
                    "RescheduleAppointment",
                    json!({"AptNum": num, "AptDateTime": target}),
                )
                .await
            })
        };
        let cancel = {
            let (h, num) = (h.clone(), num.clone());
            tokio::spawn(async move {
                start.wait().await;
                h.call("CancelAppointment", json!({"AptNum": num})).await
            })
        };
        let (moved, cancelled) = (mv.await.unwrap(), cancel.await.unwrap());
        for r in [&moved, &cancelled] {
            if let Err(e) = r {
                assert_eq!(e.status(), 409, "{e}");
            }
        }
        let stored = h
            .appointments()
            .await
            .into_iter()
            .find(|a| a["AptNum"] == num)
            .unwrap();
        match (moved.is_ok(), cancelled.is_ok()) {
            (true, false) => {
                assert_eq!(stored["AptStatus"], "Scheduled");
                assert!(
                    stored["AptDateTime"]
                        .as_str()
                        .unwrap()
                        .ends_with("16:00:00")
                );
            }
            (false, true) => {
                assert_eq!(stored["AptStatus"], "Broken");
                assert!(stored["AptDateTime"].as_str().unwrap().contains(hour));
            }
            // Only if they did not overlap: the move finished before the cancel read it,
            // so the cancel acted on the moved appointment.
            (true, true) => {
                assert_eq!(stored["AptStatus"], "Broken");
                assert!(
                    stored["AptDateTime"]
                        .as_str()
                        .unwrap()
                        .ends_with("16:00:00")
                );
            }
            (false, false) => panic!("neither the move nor the cancel went through"),
        }
        assert_eq!(h.claim_ids().await, h.expected_claims().await, "{hour}");
    }

    // Two moves of one appointment to different times: never both from the same reading,
    // and the claims follow whichever won.
    let apt = h.book(2, "2025-12-10 08:00", 2, json!({})).await;
    let num = apt["AptNum"].clone();
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let moves: Vec<_> = ["2025-12-10 11:00", "2025-12-10 15:00"]
        .into_iter()
        .map(|at| {
            let (h, num, start) = (h.clone(), num.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                h.call(
                    "RescheduleAppointment",
                    json!({"AptNum": num, "AptDateTime": at}),
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for m in moves {
        match m.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.status(), 409, "{e}"),
        }
    }
    assert!(ok >= 1);
    assert_eq!(h.claim_ids().await, h.expected_claims().await);
}

#[tokio::test]
async fn cancel_and_reschedule_delete_only_claims_they_own() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    // Another request owns one of the units now (as after a release and a re-claim).
    let taken = format!(
        "prov-1-{}",
        unix_minute("America/New_York", "2025-12-02T10:05:00")
    );
    h.foreign_claim(&taken, json!(99), h.now_secs()).await;
    h.ok("CancelAppointment", json!({"AptNum": 1})).await;
    assert_eq!(h.claim_ids().await, BTreeSet::from([taken.clone()]));

    let apt = h.book(2, "2025-12-02 11:00", 1, json!({})).await;
    let stale = format!(
        "op-1-{}",
        unix_minute("America/New_York", "2025-12-02T11:10:00")
    );
    h.foreign_claim(&stale, json!("pending"), h.now_secs())
        .await;
    let moved = h
        .ok(
            "RescheduleAppointment",
            json!({"AptNum": apt["AptNum"], "AptDateTime": "2025-12-02 14:00"}),
        )
        .await;
    assert_eq!(moved["AptDateTime"], "2025-12-02 14:00:00");
    let mut expected = claims_of(1, 1, "2025-12-02T14:00:00", 30);
    expected.extend([taken, stale]);
    assert_eq!(h.claim_ids().await, expected);
}

#[tokio::test]
async fn claims_do_not_depend_on_the_slot_grid() {
    // A booking in flight under a 30-minute grid holds 10:00 to 10:30 ...
    let h = harness().await;
    let in_flight = claims_of(1, 1, "2025-12-02T10:00:00", 30);
    for id in &in_flight {
        h.foreign_claim(id, json!("pending"), h.now_secs()).await;
    }
    // ... so after the grid changes to 15 minutes, 10:15 with the same provider collides.
    let h = h.config(json!({"slotMinutes": 15}));
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 2, "AptDateTime": "2025-12-02 10:15", "ProvNum": 1, "Op": 2, "durationMinutes": 15}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.starts_with("That time was just taken"), "{msg}");
    h.book(2, "2025-12-02 10:30", 1, json!({"durationMinutes": 15}))
        .await;

    // Opening at 08:05 with 10-minute slots, then back to 08:00 and 30 minutes: bookings
    // made under either config collide exactly where they overlap in time.
    let h = h.config(json!({"slotMinutes": 10, "defaultAppointmentMinutes": 20,
        "officeHours": {"wed": {"open": "08:05", "close": "17:00"}}}));
    h.book(3, "2025-12-03 08:35", 2, json!({})).await;
    let h = h.config(json!({"slotMinutes": 30, "defaultAppointmentMinutes": 30,
        "officeHours": {"wed": {"open": "08:00", "close": "17:00"}}}));
    let (status, _, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-03 08:30", "ProvNum": 2}),
        )
        .await;
    assert_eq!(status, 409);
    h.book(1, "2025-12-03 08:00", 2, json!({})).await;
    h.book(1, "2025-12-03 09:00", 2, json!({})).await;
    let mut expected = h.expected_claims().await;
    expected.extend(in_flight);
    assert_eq!(h.claim_ids().await, expected);
}

#[test]
fn the_config_schema_keeps_times_on_five_minute_units() {
    let plugin = booking::plugin().unwrap();
    let m = plugin.manifest();
    let with = |patch: Value| {
        let mut c = m.manifest().default_config.clone();
        overlay(&mut c, &patch);
        m.validate_config(&c)
    };
    assert!(with(json!({"slotMinutes": 12})).is_err());
    assert!(with(json!({"slotMinutes": 15})).is_ok());
    assert!(with(json!({"officeHours": {"mon": {"open": "08:03", "close": "17:00"}}})).is_err());
    assert!(with(json!({"officeHours": {"mon": {"open": "08:00", "close": "16:59"}}})).is_err());
    assert!(with(json!({"officeHours": {"mon": {"open": "08:05", "close": "24:00"}}})).is_ok());
    assert!(with(json!({"maxDaysAhead": 0})).is_err());
    assert!(with(json!({"maxDaysAhead": 731})).is_err());
    assert!(with(json!({"maxDaysAhead": 730})).is_ok());
    assert_eq!(m.manifest().default_config["maxDaysAhead"], 365);
}

#[tokio::test]
async fn a_booking_across_a_dst_change_claims_real_minutes() {
    // Sunday 8 March 2026, New York: 01:30 for an hour runs 01:30 EST to 03:30 EDT.
    let h = harness()
        .await
        .config(json!({"officeHours": {"sun": {"open": "00:00", "close": "05:00"}}}))
        .at(local("America/New_York", "2026-03-06T12:00:00"));
    h.book(1, "2026-03-08 01:30", 1, json!({"durationMinutes": 60}))
        .await;
    let claims = h.claim_ids().await;
    assert_eq!(claims, claims_of(1, 1, "2026-03-08T01:30:00", 60));
    assert_eq!(claims.len(), 24);
    let three = unix_minute("America/New_York", "2026-03-08T03:00:00");
    assert!(claims.contains(&format!("prov-1-{three}")));
    assert!(claims.contains(&format!("prov-1-{}", three + 25)));
    assert!(!claims.contains(&format!("prov-1-{}", three + 30)));

    // Sunday 1 November 2026: 01:00 (the first one, EDT) for an hour ends at 01:00 EST.
    let h = h.at(local("America/New_York", "2026-10-30T12:00:00"));
    h.book(2, "2026-11-01 01:00", 2, json!({"durationMinutes": 60}))
        .await;
    let first = unix_minute("America/New_York", "2026-11-01T01:00:00");
    let ids = h.claim_ids().await;
    let units: Vec<i64> = ids
        .iter()
        .filter_map(|id| id.strip_prefix("prov-2-"))
        .map(|m| m.parse().unwrap())
        .collect();
    assert_eq!(units, (0..12).map(|k| first + 5 * k).collect::<Vec<_>>());
    let (status, _, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 3, "AptDateTime": "2026-11-01 01:30", "ProvNum": 2}),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn the_booking_horizon_and_far_dates_are_422() {
    let h = harness().await;
    // Monday 1 December 2025 + 365 days is Tuesday 1 December 2026.
    h.book(1, "2026-12-01 10:00", 1, json!({})).await;
    let (status, msg, paths) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2026-12-02 10:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/AptDateTime".to_owned()]));
    assert!(
        msg.starts_with("We can only book up to 365 days ahead"),
        "{msg}"
    );
    let (status, msg, _) = h
        .fails(
            "RescheduleAppointment",
            json!({"AptNum": 1, "AptDateTime": "2027-01-05 10:00"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(msg.contains("365 days ahead"), "{msg}");

    let h = h.config(json!({"maxDaysAhead": 30}));
    let (status, msg, paths) = h
        .fails("GetAvailableSlots", json!({"date": "2026-01-05"}))
        .await;
    assert_eq!((status, paths), (422, vec!["/date".to_owned()]));
    assert!(
        msg.starts_with("We can only book up to 30 days ahead"),
        "{msg}"
    );
    h.slots(json!({"date": "2025-12-31"})).await;

    // The ends of the calendar, in zones far behind and far ahead of UTC.
    for tz in ["America/New_York", "Etc/GMT+12", "Pacific/Kiritimati"] {
        let h = harness().await.config(json!({"timeZone": tz,
            "officeHours": {"fri": {"open": "00:00", "close": "24:00"}}}));
        let (status, _, _) = h
            .fails(
                "CreateAppointment",
                json!({"PatNum": 1, "AptDateTime": "9999-12-31 23:30", "ProvNum": 1}),
            )
            .await;
        assert_eq!(status, 422, "{tz}");
        assert_eq!(
            h.fails("GetAvailableSlots", json!({"date": "9999-12-31"}))
                .await
                .0,
            422,
            "{tz}"
        );
        let (status, _, _) = h
            .fails(
                "CreateAppointment",
                json!({"PatNum": 1, "AptDateTime": "0000-01-07 10:00", "ProvNum": 1}),
            )
            .await;
        assert_eq!(status, 422, "{tz}");
        let long_ago = h.slots(json!({"date": "0000-01-07"})).await;
        assert!(long_ago["slots"].as_array().unwrap().is_empty());
        h.ok(
            "GetAppointments",
            json!({"startDate": "0000-01-01", "endDate": "9999-12-31"}),
        )
        .await;
    }
}

#[tokio::test]
async fn patient_search_is_capped_and_says_so() {
    let h = harness().await;
    let patients = EntityName::parse("patients").unwrap();
    for i in 0..25 {
        h.data
            .create(
                &patients,
                json!({"FName": "Sam", "LName": format!("Testperson{i}"),
                       "WirelessPhone": format!("555-020-{:04}", i)}),
            )
            .await
            .unwrap();
    }
    let r = h.ok("SearchPatients", json!({"name": "testperson"})).await;
    assert_eq!(r["patients"].as_array().unwrap().len(), 20);
    assert_eq!(r["truncated"], true);
    assert!(
        r["message"].as_str().unwrap().contains("narrow it down"),
        "{r}"
    );
    let r = h.ok("SearchPatients", json!({"name": "testperson2"})).await;
    assert_eq!(r["patients"].as_array().unwrap().len(), 6);
    assert_eq!(r["truncated"], false);
}

#[tokio::test]
async fn a_malformed_cursor_is_422() {
    let h = harness().await;
    for cursor in ["x".repeat(300), "\u{7}".to_owned()] {
        let (status, _, paths) = h.fails("GetAllPatients", json!({"cursor": cursor})).await;
        assert_eq!((status, paths), (422, vec!["/cursor".to_owned()]));
    }
}

#[tokio::test]
async fn a_cancel_that_lost_a_race_changes_nothing() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    // Someone moves it to Op 2 between this cancel's read and its write.
    let h = h.meddled(vec![Meddle::before_write("appointments", "1").update(
        "appointments",
        "1",
        json!({"Op": 2}),
    )]);
    let (status, msg, _) = h.fails("CancelAppointment", json!({"AptNum": 1})).await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "That appointment was just changed; check it with GetAppointments."
    );
    let apt = h.ok("GetAppointments", json!({"PatNum": 1})).await;
    assert_eq!(apt["appointments"][0]["AptStatus"], "Scheduled");
    // Its claims were not touched.
    assert_eq!(
        h.claim_ids().await,
        claims_of(1, 1, "2025-12-02T10:00:00", 30)
    );
    // Read again, it cancels.
    h.ok("CancelAppointment", json!({"AptNum": 1})).await;
}

#[tokio::test]
async fn a_reschedule_that_lost_a_race_gives_back_its_new_claims() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    // Someone cancels it between this reschedule's read and its write.
    let h = h.meddled(vec![Meddle::before_write("appointments", "1").update(
        "appointments",
        "1",
        json!({"AptStatus": "Broken"}),
    )]);
    let (status, msg, _) = h
        .fails(
            "RescheduleAppointment",
            json!({"AptNum": 1, "AptDateTime": "2025-12-02 14:00"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        msg.contains("just changed; check it with GetAppointments"),
        "{msg}"
    );
    // The 14:00 claims are gone again; the old ones were left to the canceller.
    assert_eq!(
        h.claim_ids().await,
        claims_of(1, 1, "2025-12-02T10:00:00", 30)
    );
    h.book(2, "2025-12-02 14:00", 1, json!({})).await;
}

#[tokio::test]
async fn an_orphan_release_never_deletes_a_claim_just_taken() {
    let h = harness().await;
    let ten = unix_minute("America/New_York", "2025-12-02T10:00:00");
    let id = format!("prov-1-{ten}");
    // A claim left by a request that failed ten minutes ago ...
    h.foreign_claim(&id, json!("pending"), h.now_secs() - 600)
        .await;
    // ... that another request releases and takes afresh just before this one deletes it.
    let fresh =
        json!({"id": id, "AptNum": "pending", "AptDate": "2025-12-02", "claimedAt": h.now_secs()});
    let h = h.meddled(vec![Meddle::before_write("slot_claims", &id).replace(
        "slot_claims",
        &id,
        fresh.clone(),
    )]);
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.starts_with("That time was just taken"), "{msg}");
    let stored = h
        .data
        .get(
            &EntityName::parse("slot_claims").unwrap(),
            &RecordId::parse(id.as_str()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stored, Some(fresh));
    assert_eq!(h.claim_ids().await, BTreeSet::from([id]));
}

#[tokio::test]
async fn an_old_claim_still_held_by_its_appointment_is_kept() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    let claims = EntityName::parse("slot_claims").unwrap();
    let long_ago = h.now_secs() - 3600;
    for id in claims_of(1, 1, "2025-12-02T10:00:00", 30) {
        let rid = RecordId::parse(id).unwrap();
        h.data
            .update(&claims, &rid, json!({"claimedAt": long_ago}))
            .await
            .unwrap();
    }
    // Dated another day (as after a time-zone change), the appointment is not among the
    // day's bookings, so only its claims refuse the time: they are old, but still held.
    h.data
        .update(
            &EntityName::parse("appointments").unwrap(),
            &RecordId::parse("1").unwrap(),
            json!({"AptDate": "2025-12-01"}),
        )
        .await
        .unwrap();
    let (status, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 2, "AptDateTime": "2025-12-02 10:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.starts_with("That time was just taken"), "{msg}");
    assert_eq!(
        h.claim_ids().await,
        claims_of(1, 1, "2025-12-02T10:00:00", 30)
    );
    // Cancelling releases them, and the time can be booked.
    h.ok("CancelAppointment", json!({"AptNum": 1})).await;
    h.book(2, "2025-12-02 10:00", 1, json!({})).await;
}

#[tokio::test]
async fn releasing_the_old_time_spares_a_claim_taken_afresh() {
    let h = harness().await;
    h.book(1, "2025-12-02 10:00", 1, json!({})).await;
    let ten = format!(
        "prov-1-{}",
        unix_minute("America/New_York", "2025-12-02T10:00:00")
    );
    // While this move gives up 10:00, another request (moving the same appointment back)
    // releases that claim as an orphan and takes it afresh.
    let fresh =
        json!({"id": ten, "AptNum": 1, "AptDate": "2025-12-02", "claimedAt": h.now_secs() + 1});
    let h = h.meddled(vec![Meddle::before_write("slot_claims", &ten).replace(
        "slot_claims",
        &ten,
        fresh.clone(),
    )]);
    h.ok(
        "RescheduleAppointment",
        json!({"AptNum": 1, "AptDateTime": "2025-12-02 14:00"}),
    )
    .await;
    let mut expected = claims_of(1, 1, "2025-12-02T14:00:00", 30);
    expected.insert(ten);
    assert_eq!(h.claim_ids().await, expected);
}

/// A call on a Spanish channel hears the rules, the dates and the refusals in Spanish.
#[tokio::test]
async fn a_spanish_call_hears_spanish() {
    let h = harness().await.locale("es-US");
    let (status, msg, paths) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-06 10:00", "ProvNum": 1}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/AptDateTime".to_owned()]));
    assert!(
        msg.contains(
            "La consulta cierra los sábados, así que no se puede reservar el sábado 6 de diciembre. El horario es: de lunes a viernes de 08:00 a 17:00."
        ),
        "{msg}"
    );
    let (_, msg, _) = h
        .fails(
            "CreateAppointment",
            json!({"PatNum": 1, "AptDateTime": "2025-12-02 10:15", "ProvNum": 1}),
        )
        .await;
    assert!(
        msg.contains("Las citas empiezan cada 30 minutos desde las 08:00; 10:15 no es una hora de inicio. Las más cercanas son 10:00 o 10:30."),
        "{msg}"
    );
    let saturday = h.slots(json!({"date": "2025-12-06"})).await;
    let said = saturday["message"].as_str().unwrap_or_default();
    assert!(said.starts_with("La consulta cierra los sábados"), "{said}");
    let e = h
        .call("GetAppointments", json!({"PatNum": 99}))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("No hay ningún paciente con PatNum 99"),
        "{e}"
    );
}
