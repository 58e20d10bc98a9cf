//! The support rules end to end: handlers called through the plugin on the embedded store,
//! with parameters validated against the manifest as the pipeline does.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard::manifest::overlay;
use switchboard::{EntityName, Error};
use switchboard_testkit::{Harness, Meddle};

/// Monday 1 December 2025, 14:00 UTC.
const NOW_SECS: u64 = 1_764_597_600;
const NOW: &str = "2025-12-01T14:00:00Z";

/// Bright Smile's support instance, called during a Twilio call at 14:00 UTC.
fn harness() -> Harness {
    Harness::new(support::plugin().unwrap(), "bright-smile")
        .at(UNIX_EPOCH + Duration::from_secs(NOW_SECS))
        .channel("twilio")
        .session("CA123")
}

/// The support suite's own helpers.
trait Support {
    async fn ticket(&self, subject: &str) -> String;
    async fn set(&self, id: &str, status: &str) -> Value;
    async fn comment(&self, id: &str, text: &str) -> Result<Value, Error>;
    async fn stored_comments(&self) -> Vec<Value>;
}

impl Support for Harness {
    /// Creates a ticket and returns its number.
    async fn ticket(&self, subject: &str) -> String {
        let t = self
            .ok(
                "CreateTicket",
                json!({"subject": subject, "description": "It broke.",
                       "contact": {"name": "Jordan Rivera", "phone": "555-010-2000"}}),
            )
            .await;
        t["ticketId"].as_str().unwrap().to_owned()
    }

    async fn set(&self, id: &str, status: &str) -> Value {
        self.ok(
            "UpdateTicketStatus",
            json!({"ticketId": id, "status": status}),
        )
        .await
    }

    async fn comment(&self, id: &str, text: &str) -> Result<Value, Error> {
        self.call("AddTicketComment", json!({"ticketId": id, "comment": text}))
            .await
    }

    async fn stored_comments(&self) -> Vec<Value> {
        self.stored("ticket_comments").await
    }
}

fn texts(ticket: &Value) -> Vec<String> {
    ticket["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plugin_builds_with_one_handler_per_function() {
    let plugin = support::plugin().unwrap();
    let m = plugin.manifest().manifest();
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "CreateTicket",
            "GetTicket",
            "ListTickets",
            "UpdateTicketStatus",
            "AddTicketComment"
        ]
    );
    assert_eq!(plugin.name().as_str(), "support");
    assert_eq!(m.version, "1.4.0");
    assert_eq!(
        m.data_adapters,
        [
            switchboard::spec::AdapterKind::Dynamodb,
            switchboard::spec::AdapterKind::Rest,
            switchboard::spec::AdapterKind::Postgres
        ]
    );
    assert!(m.functions.iter().all(|f| {
        f.parameters["type"] == "object"
            && f.parameters["additionalProperties"] == false
            && f.parameters["required"].is_array()
            && !f.examples.is_empty()
    }));
    assert_eq!(
        m.default_config,
        json!({"teamName": "", "defaultPriority": "normal", "allowReopen": true, "maxCommentLength": 2000})
    );
    // The template names only the documented variables.
    for var in ["org.display_name", "config.", "channel"] {
        assert!(m.instruction_template.contains(var), "{var}");
    }
}

#[test]
fn the_config_schema_bounds_its_settings() {
    let plugin = support::plugin().unwrap();
    let m = plugin.manifest();
    let with = |patch: Value| {
        let mut c = m.manifest().default_config.clone();
        overlay(&mut c, &patch);
        m.validate_config(&c)
    };
    assert!(with(json!({"defaultPriority": "urgent"})).is_ok());
    assert!(with(json!({"defaultPriority": "critical"})).is_err());
    assert!(with(json!({"maxCommentLength": 0})).is_err());
    assert!(with(json!({"maxCommentLength": 10001})).is_err());
    assert!(with(json!({"allowReopen": "yes"})).is_err());
    assert!(with(json!({"unknownSetting": 1})).is_err());
}

#[tokio::test]
async fn create_then_get() {
    let h = harness();
    let created = h
        .ok(
            "CreateTicket",
            json!({"subject": "  Cannot log in  ", "description": "Portal says wrong password.",
                   "contact": {"name": "Jordan Rivera", "email": "jordan@example.com"}}),
        )
        .await;
    assert_eq!(created["ticketId"], "1");
    assert_eq!(created["subject"], "Cannot log in");
    assert_eq!(created["status"], "open");
    assert_eq!(created["priority"], "normal");
    assert_eq!(
        created["contact"],
        json!({"name": "Jordan Rivera", "email": "jordan@example.com"})
    );
    assert_eq!(created["channel"], "twilio");
    assert_eq!(created["createdAt"], NOW);
    assert_eq!(created["commentCount"], 0);

    let second = h
        .ok(
            "CreateTicket",
            json!({"subject": "Invoice", "description": "Charged twice.", "priority": "urgent",
                   "contact": {"name": "Alex", "phone": "555-010-3000"}}),
        )
        .await;
    assert_eq!(second["ticketId"], "2");
    assert_eq!(second["priority"], "urgent");

    let got = h.ok("GetTicket", json!({"ticketId": "1"})).await;
    assert_eq!(got, created);
    // "#1" works as well as "1".
    assert_eq!(h.ok("GetTicket", json!({"ticketId": "#1"})).await, created);
    let (status, msg, _) = h.fails("GetTicket", json!({"ticketId": "42"})).await;
    assert_eq!(status, 404);
    assert_eq!(
        msg,
        "There is no ticket 42. Check the number with the caller, or find the ticket with ListTickets."
    );
}

#[tokio::test]
async fn the_default_priority_comes_from_config() {
    let h = harness().config(json!({"defaultPriority": "high"}));
    h.ticket("Printer").await;
    let t = h.ok("GetTicket", json!({"ticketId": "1"})).await;
    assert_eq!(t["priority"], "high");
}

#[tokio::test]
async fn parameters_are_validated_against_the_manifest() {
    let h = harness();
    let contact = json!({"name": "Jordan", "phone": "555-010-2000"});
    let cases = [
        (
            "CreateTicket",
            json!({"subject": "x", "description": "y"}),
            "/contact",
        ),
        (
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": contact, "priority": "critical"}),
            "/priority",
        ),
        (
            "CreateTicket",
            json!({"subject": "", "description": "y", "contact": contact}),
            "/subject",
        ),
        (
            "CreateTicket",
            json!({"subject": "x".repeat(201), "description": "y", "contact": contact}),
            "/subject",
        ),
        (
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": contact, "orgId": "evil"}),
            "/orgId",
        ),
        (
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "J", "fax": "1"}}),
            "/contact/fax",
        ),
        (
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "J", "email": "not-an-email"}}),
            "/contact/email",
        ),
        (
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "J", "phone": "call me"}}),
            "/contact/phone",
        ),
        ("GetTicket", json!({}), "/ticketId"),
        ("GetTicket", json!({"ticketId": "1; drop"}), "/ticketId"),
        ("GetTicket", json!({"ticketId": 1}), "/ticketId"),
        ("ListTickets", json!({}), "/status"),
        ("ListTickets", json!({"status": "done"}), "/status"),
        (
            "ListTickets",
            json!({"status": "open", "limit": 0}),
            "/limit",
        ),
        (
            "ListTickets",
            json!({"status": "open", "limit": 101}),
            "/limit",
        ),
        (
            "UpdateTicketStatus",
            json!({"ticketId": "1", "status": "reopened"}),
            "/status",
        ),
        (
            "UpdateTicketStatus",
            json!({"ticketId": "1", "status": "open", "note": "n".repeat(1001)}),
            "/note",
        ),
        (
            "AddTicketComment",
            json!({"ticketId": "1", "comment": ""}),
            "/comment",
        ),
        (
            "AddTicketComment",
            json!({"ticketId": "1", "comment": "c".repeat(10_001)}),
            "/comment",
        ),
    ];
    for (function, params, path) in cases {
        let (status, _, paths) = h.fails(function, params.clone()).await;
        assert_eq!((status, paths), (422, vec![path.to_owned()]), "{params}");
    }
    // Nothing was stored by any of them.
    assert!(h.stored("tickets").await.is_empty());
}

#[tokio::test]
async fn a_contact_needs_a_way_to_reach_them() {
    let h = harness();
    let (status, msg, paths) = h
        .fails(
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "Jordan"}}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/contact".to_owned()]));
    assert!(
        msg.starts_with("The team needs a way to reach the caller."),
        "{msg}"
    );
    let (status, _, paths) = h
        .fails(
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "  ", "phone": "555-010-2000"}}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/contact/name".to_owned()]));
    let (status, msg, paths) = h
        .fails(
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "J", "phone": "+1 (55) 01"}}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/contact/phone".to_owned()]));
    assert!(msg.contains("too short"), "{msg}");
    let (status, _, paths) = h
        .fails(
            "CreateTicket",
            json!({"subject": " ", "description": "y", "contact": {"name": "J", "phone": "555-010-2000"}}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/subject".to_owned()]));

    // On a phone line, the caller id the channel injected is used.
    let mut h = h;
    h.caller_phone = Some("+15550102000".into());
    let t = h
        .ok(
            "CreateTicket",
            json!({"subject": "x", "description": "y", "contact": {"name": "Jordan"}}),
        )
        .await;
    assert_eq!(
        t["contact"],
        json!({"name": "Jordan", "phone": "+15550102000"})
    );
}

#[tokio::test]
async fn transitions_with_reopen_allowed() {
    let h = harness();
    let id = h.ticket("Portal").await;
    let r = h
        .ok(
            "UpdateTicketStatus",
            json!({"ticketId": id, "status": "pending", "note": " waiting for screenshot "}),
        )
        .await;
    assert_eq!(r["changed"], true);
    assert_eq!(r["previousStatus"], "open");
    assert_eq!(r["ticket"]["status"], "pending");
    h.set(&id, "resolved").await;
    h.set(&id, "open").await;
    h.set(&id, "closed").await;
    // Closed never becomes resolved, even when reopening is allowed.
    let (status, msg, _) = h
        .fails(
            "UpdateTicketStatus",
            json!({"ticketId": id, "status": "resolved"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Ticket 1 is already closed, which is final, so it cannot be marked resolved. If the problem is not solved, reopen it with UpdateTicketStatus and status open."
    );
    h.set(&id, "open").await;
    // The same status again changes nothing (a retried call is harmless).
    let same = h.set(&id, "open").await;
    assert_eq!(same["changed"], false);
    assert_eq!(
        same["message"],
        "Ticket 1 is already open; nothing was changed."
    );

    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    let history: Vec<(String, String)> = t["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["from"].as_str().unwrap().to_owned(),
                c["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pairs = [
        ("open", "pending"),
        ("pending", "resolved"),
        ("resolved", "open"),
        ("open", "closed"),
        ("closed", "open"),
    ];
    assert_eq!(
        history,
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(t["history"][0]["note"], "waiting for screenshot");
    assert_eq!(t["history"][0]["at"], NOW);
    assert!(t["history"][1].get("note").is_none());
}

#[tokio::test]
async fn transitions_with_reopen_refused() {
    let h = harness().config(json!({"allowReopen": false}));
    let id = h.ticket("Portal").await;
    h.set(&id, "resolved").await;
    for to in ["open", "pending"] {
        let (status, msg, _) = h
            .fails("UpdateTicketStatus", json!({"ticketId": id, "status": to}))
            .await;
        assert_eq!(status, 409);
        assert_eq!(
            msg,
            "Ticket 1 is resolved, and this support team does not reopen tickets. If the problem is back, create a new ticket with CreateTicket and mention ticket 1 in its description."
        );
    }
    h.set(&id, "closed").await;
    for to in ["open", "pending", "resolved"] {
        let (status, msg, _) = h
            .fails("UpdateTicketStatus", json!({"ticketId": id, "status": to}))
            .await;
        assert_eq!(status, 409, "{to}");
        assert!(msg.starts_with("Ticket 1 is"), "{msg}");
        assert!(msg.contains("create a new ticket"), "{msg}");
    }
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(t["status"], "closed");
    assert_eq!(t["history"].as_array().unwrap().len(), 2);
    // Open and pending still move freely.
    let other = h.ticket("Email").await;
    h.set(&other, "pending").await;
    h.set(&other, "open").await;
    h.set(&other, "closed").await;
    let (status, _, _) = h
        .fails(
            "UpdateTicketStatus",
            json!({"ticketId": "9", "status": "closed"}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn comments_are_kept_in_order_and_refused_on_closed_tickets() {
    let h = harness().config(json!({"allowReopen": false}));
    let id = h.ticket("Portal").await;
    h.comment(&id, "first").await.unwrap();
    let added = h
        .ok(
            "AddTicketComment",
            json!({"ticketId": id, "comment": "  second  ", "author": "Jordan Rivera"}),
        )
        .await;
    assert_eq!(added["ticketId"], "1");
    assert_eq!(added["comment"]["text"], "second");
    assert_eq!(added["comment"]["author"], "Jordan Rivera");
    assert_eq!(added["comment"]["createdAt"], NOW);
    h.set(&id, "resolved").await;
    // Resolved tickets still take comments.
    h.comment(&id, "third").await.unwrap();
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(texts(&t), ["first", "second", "third"]);
    assert_eq!(t["comments"][0]["author"], "caller");
    assert_eq!(t["commentCount"], 3);

    h.set(&id, "closed").await;
    let (status, msg, _) = h
        .fails(
            "AddTicketComment",
            json!({"ticketId": id, "comment": "fourth"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Ticket 1 is closed, so no more comments can be added to it. If the problem is back, create a new ticket and mention ticket 1."
    );
    assert_eq!(h.stored_comments().await.len(), 3);
    let (status, _, _) = h
        .fails(
            "AddTicketComment",
            json!({"ticketId": "7", "comment": "hello"}),
        )
        .await;
    assert_eq!(status, 404);
    // Comments of one ticket never show on another.
    let other = h.ticket("Email").await;
    h.comment(&other, "elsewhere").await.unwrap();
    let t = h.ok("GetTicket", json!({"ticketId": other})).await;
    assert_eq!(texts(&t), ["elsewhere"]);
}

#[tokio::test]
async fn the_comment_limit_comes_from_config() {
    let h = harness().config(json!({"maxCommentLength": 50}));
    let id = h.ticket("Portal").await;
    h.comment(&id, &"é".repeat(50)).await.unwrap();
    let (status, msg, paths) = h
        .fails(
            "AddTicketComment",
            json!({"ticketId": id, "comment": "x".repeat(51)}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/comment".to_owned()]));
    assert_eq!(
        msg,
        "The comment is 51 characters long, but the limit is 50. Shorten it, or split it into several comments."
    );
    let (status, _, paths) = h
        .fails(
            "AddTicketComment",
            json!({"ticketId": id, "comment": "   "}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/comment".to_owned()]));
    assert_eq!(h.stored_comments().await.len(), 1);
    // The default limit is 2000.
    let h = harness();
    let id = h.ticket("Portal").await;
    h.comment(&id, &"x".repeat(2000)).await.unwrap();
    let (status, _, _) = h
        .fails(
            "AddTicketComment",
            json!({"ticketId": id, "comment": "x".repeat(2001)}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_comments_are_all_kept() {
    let h = Arc::new(harness());
    let id = h.ticket("Portal").await;
    let n = 24;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let h = h.clone();
            let id = id.clone();
            tokio::spawn(async move { h.comment(&id, &format!("comment {i}")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    let mut got = texts(&t);
    assert_eq!(got.len(), n);
    // In the order the store allocated them.
    let ids: Vec<u64> = t["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commentId"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    got.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("comment {i}")).collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_status_changes_one_wins() {
    let h = Arc::new(harness());
    let id = h.ticket("Portal").await;
    let targets = [
        "pending", "resolved", "closed", "pending", "resolved", "closed",
    ];
    let tasks: Vec<_> = targets
        .iter()
        .map(|to| {
            let h = h.clone();
            let id = id.clone();
            let to = *to;
            tokio::spawn(async move {
                h.call("UpdateTicketStatus", json!({"ticketId": id, "status": to}))
                    .await
            })
        })
        .collect();
    let mut applied = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => applied.push(v),
            Err(e) => assert_eq!(e.status(), 409, "{e}"),
        }
    }
    assert!(!applied.is_empty());
    // Every change that reported success is in the history, in a valid chain from open.
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    let history = t["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        applied.iter().filter(|a| a["changed"] == true).count()
    );
    let mut at = "open";
    for c in history {
        assert_eq!(c["from"], at);
        at = c["to"].as_str().unwrap();
    }
    assert_eq!(t["status"], at);
}

#[tokio::test]
async fn a_status_change_that_lost_a_race_is_409_and_changes_nothing() {
    let h = harness();
    let id = h.ticket("Portal").await;
    // Someone marks it pending between this call's read and its write.
    let h = h.meddled(vec![Meddle::before_write("tickets", "1").update(
        "tickets",
        "1",
        json!({"status": "pending", "revision": 2}),
    )]);
    let (status, msg, _) = h
        .fails(
            "UpdateTicketStatus",
            json!({"ticketId": id, "status": "resolved"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Ticket 1 was just changed by someone else, so its status was not changed. Check it again with GetTicket before deciding what to do."
    );
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(t["status"], "pending");
    // Read again, it goes through.
    h.set(&id, "resolved").await;
}

#[tokio::test]
async fn a_change_and_a_change_back_still_loses_the_race() {
    let h = harness();
    let id = h.ticket("Portal").await;
    // open -> pending -> open by others: the status matches again, the revision does not.
    let h = h.meddled(vec![
        Meddle::before_write("tickets", "1")
            .update(
                "tickets",
                "1",
                json!({"status": "pending", "revision": 2,
                   "history": [{"from": "open", "to": "pending", "at": NOW}]}),
            )
            .update(
                "tickets",
                "1",
                json!({"status": "open", "revision": 3,
                   "history": [{"from": "open", "to": "pending", "at": NOW},
                               {"from": "pending", "to": "open", "at": NOW}]}),
            ),
    ]);
    let (status, _, _) = h
        .fails(
            "UpdateTicketStatus",
            json!({"ticketId": id, "status": "closed"}),
        )
        .await;
    assert_eq!(status, 409);
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(t["status"], "open");
    // The others' history is intact.
    assert_eq!(t["history"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_comment_racing_a_close_is_taken_back() {
    let h = harness();
    let id = h.ticket("Portal").await;
    h.comment(&id, "before").await.unwrap();
    // The ticket is closed after this comment's check but before it is stored.
    let h = h.meddled(vec![Meddle::before_create("ticket_comments").update(
        "tickets",
        "1",
        json!({"status": "closed", "revision": 2}),
    )]);
    let (status, msg, _) = h
        .fails(
            "AddTicketComment",
            json!({"ticketId": id, "comment": "late"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.starts_with("Ticket 1 is closed"), "{msg}");
    let t = h.ok("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(texts(&t), ["before"]);
    assert_eq!(h.stored_comments().await.len(), 1);
}

#[tokio::test]
async fn list_filters_by_status_and_contact_newest_first() {
    let h = harness();
    for (subject, phone, email) in [
        ("A", Some("555-010-2000"), None),
        ("B", None, Some("Alex@Example.com")),
        ("C", Some("+1 (555) 010-2000"), None),
        ("D", Some("555-010-9999"), None),
    ] {
        let mut contact = json!({"name": subject});
        if let Some(p) = phone {
            contact["phone"] = json!(p);
        }
        if let Some(e) = email {
            contact["email"] = json!(e);
        }
        h.ok(
            "CreateTicket",
            json!({"subject": subject, "description": "d", "contact": contact}),
        )
        .await;
    }
    h.set("4", "pending").await;
    let subjects = |r: &Value| -> Vec<String> {
        r["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let open = h.ok("ListTickets", json!({"status": "open"})).await;
    assert_eq!(subjects(&open), ["C", "B", "A"]);
    assert_eq!(open["count"], 3);
    assert_eq!(open["truncated"], false);
    assert_eq!(open["tickets"][0]["ticketId"], "3");
    assert_eq!(open["tickets"][0]["contactName"], "C");
    let pending = h.ok("ListTickets", json!({"status": "pending"})).await;
    assert_eq!(subjects(&pending), ["D"]);
    let mine = h
        .ok(
            "ListTickets",
            json!({"status": "open", "phone": "5550102000"}),
        )
        .await;
    assert_eq!(subjects(&mine), ["C", "A"]);
    let by_mail = h
        .ok(
            "ListTickets",
            json!({"status": "open", "email": "alex@example.com"}),
        )
        .await;
    assert_eq!(subjects(&by_mail), ["B"]);
    // Both: tickets with that phone and that email (none here); the email in any case.
    let both = h
        .ok(
            "ListTickets",
            json!({"status": "open", "phone": "555 010 2000", "email": "alex@example.com"}),
        )
        .await;
    assert_eq!(both["count"], 0);
    let shouted = h
        .ok(
            "ListTickets",
            json!({"status": "open", "email": "ALEX@EXAMPLE.COM"}),
        )
        .await;
    assert_eq!(subjects(&shouted), ["B"]);
    let few = h
        .ok("ListTickets", json!({"status": "open", "limit": 2}))
        .await;
    assert_eq!(subjects(&few), ["C", "B"]);
    assert_eq!(few["truncated"], true);
    assert!(
        few["message"]
            .as_str()
            .unwrap()
            .starts_with("Only the newest 2 open tickets")
    );
    let none = h.ok("ListTickets", json!({"status": "closed"})).await;
    assert_eq!(none["count"], 0);
    assert_eq!(none["message"], "No closed tickets match.");
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let a = harness();
    let b = a.other_org("acme-clinic");
    let id = a.ticket("A's problem").await;
    a.comment(&id, "a secret").await.unwrap();

    let (status, _, _) = b.fails("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(status, 404);
    let (status, _, _) = b
        .fails(
            "UpdateTicketStatus",
            json!({"ticketId": id, "status": "closed"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = b
        .fails("AddTicketComment", json!({"ticketId": id, "comment": "x"}))
        .await;
    assert_eq!(status, 404);
    let listed = b.ok("ListTickets", json!({"status": "open"})).await;
    assert_eq!(listed["count"], 0);

    // B's own ticket 1 is its own, with its own comments.
    let own = b.ticket("B's problem").await;
    assert_eq!(own, id);
    let t = b.ok("GetTicket", json!({"ticketId": own})).await;
    assert_eq!(t["subject"], "B's problem");
    assert!(texts(&t).is_empty());
    b.set(&own, "closed").await;
    let t = a.ok("GetTicket", json!({"ticketId": id})).await;
    assert_eq!(t["status"], "open");
    assert_eq!(texts(&t), ["a secret"]);
}

#[tokio::test]
async fn records_written_by_others_are_read() {
    let h = harness();
    // A record from an external system: numeric id, no revision or history.
    h.data
        .create(
            &EntityName::parse("tickets").unwrap(),
            json!({"id": "100", "subject": "Imported", "status": "pending",
                   "contact": {"name": "Sam", "phone": "555-010-4000"}}),
        )
        .await
        .unwrap();
    let t = h.ok("GetTicket", json!({"ticketId": "100"})).await;
    assert_eq!(t["priority"], "normal");
    let r = h.set("100", "resolved").await;
    assert_eq!(r["ticket"]["status"], "resolved");
    h.set("100", "closed").await;
}

#[tokio::test]
async fn a_spanish_call_hears_spanish() {
    let h = harness().locale("es-US");
    let e = h
        .call(
            "CreateTicket",
            json!({"subject": "  ", "description": "x", "contact": {"name": "Ana", "phone": "+15550102000"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_string().contains("El asunto está vacío."), "{e}");
    let e = h
        .call("GetTicket", json!({"ticketId": "404"}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "No existe el ticket 404. Compruebe el número con quien llama o busque el ticket con ListTickets."
    );
}
