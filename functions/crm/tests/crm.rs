//! The CRM rules end to end: handlers called through the plugin on the embedded store, with
//! parameters validated against the manifest first, as the pipeline does.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard::{EntityName, Error};
use switchboard_testkit::{Harness, Meddle};

/// 2025-12-01T14:00:00Z.
const NOW_SECS: u64 = 1_764_597_600;

/// Acme Remodeling's CRM instance on the Twilio line, with the approval scope, at 14:00 UTC.
fn harness() -> Harness {
    Harness::new(crm::plugin().unwrap(), "acme-remodeling")
        .at(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS))
        .scopes(&["plugins:call", crm::APPROVE_SCOPE])
        .channel("twilio")
}

/// The CRM suite's own helpers.
trait Crm: Sized {
    fn later(&mut self, secs: u64);
    async fn lead(&self, name: &str, email: Option<&str>, phone: Option<&str>) -> Value;
    async fn status(&self, id: &str, status: &str) -> Result<Value, Error>;
    async fn listed(&self, status: &str) -> Vec<String>;
    fn overtaken(self, records: Vec<(&'static str, Value)>) -> Self;
}

impl Crm for Harness {
    fn later(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }

    /// Creates a lead and returns it.
    async fn lead(&self, name: &str, email: Option<&str>, phone: Option<&str>) -> Value {
        let mut params = json!({"name": name, "source": "referral"});
        if let Some(e) = email {
            params["email"] = json!(e);
        }
        if let Some(p) = phone {
            params["phone"] = json!(p);
        }
        self.ok("CreateLead", params).await["lead"].clone()
    }

    async fn status(&self, id: &str, status: &str) -> Result<Value, Error> {
        self.call("UpdateLeadStatus", json!({"leadId": id, "status": status}))
            .await
    }

    async fn listed(&self, status: &str) -> Vec<String> {
        self.ok("GetLeadsByStatus", json!({ "status": status }))
            .await["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["leadId"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The same harness, with `records` (entity, record) written just before the first
    /// lead is created: another request that finished in between.
    fn overtaken(self, records: Vec<(&'static str, Value)>) -> Self {
        let meddle = records
            .into_iter()
            .fold(Meddle::before_create("leads"), |m, (e, r)| m.create(e, r));
        self.meddled(vec![meddle])
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn plugin_builds_with_one_handler_per_function() {
    let plugin = crm::plugin().unwrap();
    let m = plugin.manifest().manifest();
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "CreateLead",
            "GetLeadsByStatus",
            "GetLead",
            "UpdateLeadStatus",
            "ApproveLead"
        ]
    );
    assert_eq!(plugin.name().as_str(), "crm");
    assert_eq!(m.version, "1.5.0");
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
            && !f.examples.is_empty()
    }));
    assert_eq!(
        m.default_config,
        json!({"autoQualifyLeads": false, "requireManagerApproval": false})
    );
    // The template's blocks are balanced and use only the documented variables.
    let t = &m.instruction_template;
    assert_eq!(t.matches("{% if").count(), t.matches("{% endif %}").count());
    for var in [
        "org.display_name",
        "config.autoQualifyLeads",
        "config.requireManagerApproval",
        "channel ==",
    ] {
        assert!(t.contains(var), "{var}");
    }
}

#[tokio::test]
async fn a_lead_is_created_with_an_allocated_id_and_read_back() {
    let h = harness();
    let r = h
        .ok(
            "CreateLead",
            json!({
                "name": "  Jordan   Rivera ",
                "email": "Jordan.Rivera@Example.com",
                "phone": "+1 (555) 010-2000",
                "source": "referral",
                "notes": "Kitchen remodel quote"
            }),
        )
        .await;
    assert_eq!(
        r["message"],
        "Saved Jordan Rivera as lead 1, with status new."
    );
    let lead = &r["lead"];
    assert_eq!(lead["leadId"], "1");
    assert_eq!(lead["name"], "Jordan Rivera");
    assert_eq!(lead["email"], "Jordan.Rivera@Example.com");
    assert_eq!(lead["phone"], "+1 (555) 010-2000");
    assert_eq!(lead["source"], "referral");
    assert_eq!(lead["notes"], "Kitchen remodel quote");
    assert_eq!(lead["status"], "new");
    assert_eq!(lead["approval"], Value::Null);
    assert_eq!(lead["capturedVia"], "twilio");
    assert_eq!(lead["createdAt"], "2025-12-01T14:00:00Z");
    assert!(lead.get("revision").is_none() && lead.get("id").is_none());

    let got = h.ok("GetLead", json!({"leadId": "1"})).await;
    assert_eq!(&got["lead"], lead);

    let second = h.lead("Sam Ortiz", None, Some("555-010-3000")).await;
    assert_eq!(second["leadId"], "2");
    assert_eq!(second["email"], Value::Null);

    let (status, msg, _) = h.fails("GetLead", json!({"leadId": "42"})).await;
    assert_eq!(status, 404);
    assert_eq!(
        msg,
        "No lead with leadId 42. Check the id, or find the lead with GetLeadsByStatus."
    );
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_field() {
    let h = harness();
    let cases = [
        (
            "CreateLead",
            json!({"name": "A B", "email": "not-an-email", "source": "web"}),
            "/email",
        ),
        (
            "CreateLead",
            json!({"name": "A B", "phone": "call me maybe", "source": "web"}),
            "/phone",
        ),
        (
            "CreateLead",
            json!({"email": "a@example.com", "source": "web"}),
            "/name",
        ),
        (
            "CreateLead",
            json!({"name": "A B", "email": "a@example.com"}),
            "/source",
        ),
        (
            "CreateLead",
            json!({"name": "A B", "email": "a@example.com", "source": "web", "orgId": "x"}),
            "/orgId",
        ),
        ("GetLeadsByStatus", json!({"status": "won"}), "/status"),
        (
            "GetLeadsByStatus",
            json!({"status": "new", "limit": 0}),
            "/limit",
        ),
        (
            "UpdateLeadStatus",
            json!({"leadId": "1", "status": "closed"}),
            "/status",
        ),
        ("GetLead", json!({"leadId": "1/../2"}), "/leadId"),
        ("ApproveLead", json!({}), "/leadId"),
    ];
    for (function, params, path) in cases {
        let (status, _, paths) = h.fails(function, params.clone()).await;
        assert_eq!((status, paths), (422, ids(&[path])), "{function} {params}");
    }

    // Rules the schema cannot express, checked by the handler.
    let (status, msg, paths) = h
        .fails("CreateLead", json!({"name": "A B", "source": "web"}))
        .await;
    assert_eq!((status, paths.len()), (422, 0));
    assert!(msg.contains("phone number or an email address"), "{msg}");
    let (status, _, paths) = h
        .fails(
            "CreateLead",
            json!({"name": "A B", "phone": "123-45 6", "source": "web"}),
        )
        .await;
    assert_eq!((status, paths), (422, ids(&["/phone"])));
    let (status, _, paths) = h
        .fails(
            "CreateLead",
            json!({"name": "   ", "email": "a@example.com", "source": "web"}),
        )
        .await;
    assert_eq!((status, paths), (422, ids(&["/name"])));
    let (status, _, paths) = h
        .fails(
            "GetLeadsByStatus",
            json!({"status": "new", "pendingApproval": true}),
        )
        .await;
    assert_eq!((status, paths), (422, ids(&["/pendingApproval"])));
    assert!(h.stored("leads").await.is_empty());
}

#[tokio::test]
async fn duplicates_by_email_or_phone_are_409_naming_the_lead_not_the_person() {
    let h = harness();
    h.lead(
        "Jordan Rivera",
        Some("jordan@example.com"),
        Some("555-010-2000"),
    )
    .await;
    let (status, msg, _) = h
        .fails(
            "CreateLead",
            json!({"name": "J. Rivera", "email": "JORDAN@Example.COM", "source": "web"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Lead 1 is already on file with the same email address. Use leadId 1 instead of creating a new lead."
    );
    let (status, msg, _) = h
        .fails(
            "CreateLead",
            json!({"name": "Someone", "phone": "+1 (555) 010 2000", "source": "web"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.contains("same phone number. Use leadId 1"), "{msg}");
    assert_eq!(h.stored("leads").await.len(), 1);

    // Different contacts are a different lead.
    let other = h
        .lead(
            "Jordan Rivera",
            Some("jr@example.com"),
            Some("555-010-2001"),
        )
        .await;
    // Refused creates allocate no id.
    assert_eq!(other["leadId"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_person_let_exactly_one_through() {
    let h = Arc::new(harness());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.call(
                "CreateLead",
                json!({"name": format!("Caller {i}"), "email": "same@example.com", "source": "web"}),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(e) => assert_eq!(e.status(), 409, "{e}"),
        }
    }
    assert_eq!(created, 1);
    let leads = h.stored("leads").await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    let claims = h.stored("lead_keys").await;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["id"], "e:same@example.com");
    assert_eq!(claims[0]["leadId"], leads[0]["id"]);
}

#[tokio::test]
async fn a_create_overtaken_by_the_same_person_is_409_and_leaves_nothing() {
    let h = harness();
    // Another request saves the same phone number after our duplicate check.
    let h = h.overtaken(vec![
        (
            "leads",
            json!({"name": "Jordan Rivera", "phone": "555-010-2000", "status": "new"}),
        ),
        ("lead_keys", json!({"id": "p:5550102000", "leadId": "1"})),
    ]);
    let (status, msg, _) = h
        .fails(
            "CreateLead",
            json!({"name": "Jordan", "phone": "(555) 010-2000", "email": "j@example.com", "source": "web"}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Lead 1 is already on file with the same phone number. Use leadId 1 instead of creating a new lead."
    );
    // The lead this request wrote is taken back, and no claim of it stays.
    let leads = h.stored("leads").await;
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["id"], "1");
    assert_eq!(
        h.stored("lead_keys").await,
        [json!({"id": "p:5550102000", "leadId": "1"})]
    );
}

#[tokio::test]
async fn a_claim_whose_lead_is_gone_is_released() {
    let h = harness();
    // Left by a create that failed after claiming.
    h.data
        .create(
            &EntityName::parse("lead_keys").unwrap(),
            json!({"id": "e:ghost@example.com", "leadId": "99"}),
        )
        .await
        .unwrap();
    let lead = h.lead("Casey", Some("Ghost@example.com"), None).await;
    assert_eq!(lead["leadId"], "1");
    let claims = h.stored("lead_keys").await;
    assert_eq!(
        claims,
        [json!({"id": "e:ghost@example.com", "leadId": "1"})]
    );
}

/// A lead written by another tool (no claims, contact typed its own way) is still found by
/// the derived keys, in either of its contacts.
#[tokio::test]
async fn leads_written_elsewhere_are_found_by_their_normalised_contacts() {
    let h = harness();
    h.data
        .create(
            &EntityName::parse("leads").unwrap(),
            json!({"name": "Pat Lee", "email": "  Pat.Lee@Example.ORG", "phone": "+1 555-777-1234", "status": "new"}),
        )
        .await
        .unwrap();
    let (status, msg, _) = h
        .fails(
            "CreateLead",
            json!({"name": "Pat", "email": "pat.lee@example.org", "source": "web"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.contains("same email address. Use leadId 1"), "{msg}");
    let (status, msg, _) = h
        .fails(
            "CreateLead",
            json!({"name": "Pat", "phone": "(555) 777 1234", "source": "web"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(msg.contains("same phone number. Use leadId 1"), "{msg}");
    // Keys are not stored on the lead: they are computed from its contacts.
    let lead = h
        .lead("Sam", Some("sam@example.org"), Some("555-777-9999"))
        .await;
    let stored = h.stored("leads").await;
    let sam = stored.iter().find(|l| l["id"] == lead["leadId"]).unwrap();
    assert!(
        sam.get("emailKey").is_none() && sam.get("phoneKey").is_none(),
        "{sam}"
    );
}

#[tokio::test]
async fn status_transitions_follow_the_workflow() {
    let mut h = harness();
    h.lead("Jordan Rivera", Some("jordan@example.com"), None)
        .await;
    h.later(60);
    let r = h
        .ok(
            "UpdateLeadStatus",
            json!({"leadId": "1", "status": "contacted", "note": "Left a voicemail"}),
        )
        .await;
    assert_eq!(r["message"], "Lead 1 (Jordan Rivera) is now contacted.");
    assert_eq!(r["lead"]["status"], "contacted");
    assert_eq!(r["lead"]["updatedAt"], "2025-12-01T14:01:00Z");
    assert_eq!(r["lead"]["createdAt"], "2025-12-01T14:00:00Z");
    assert_eq!(
        r["lead"]["history"][1],
        json!({"at": "2025-12-01T14:01:00Z", "from": "new", "status": "contacted", "note": "Left a voicemail"})
    );

    // Same status: 409, nothing changes.
    let e = h.status("1", "contacted").await.unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(
        e.to_string(),
        "Lead 1 is already contacted, so nothing was changed."
    );
    // Back to new: never.
    let e = h.status("1", "new").await.unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_string().contains("qualified or lost"), "{e}");

    h.status("1", "lost").await.unwrap();
    // Lost is terminal unless reopened as contacted.
    let e = h.status("1", "qualified").await.unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(
        e.to_string(),
        "Lead 1 is lost. To work on it again, reopen it by moving it to contacted first."
    );
    h.status("1", "contacted").await.unwrap();
    h.status("1", "qualified").await.unwrap();
    assert_eq!(h.listed("qualified").await, ids(&["1"]));
    assert!(h.listed("contacted").await.is_empty());

    let lead = h.ok("GetLead", json!({"leadId": "1"})).await["lead"].clone();
    let trail: Vec<&str> = lead["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        trail,
        ["new", "contacted", "lost", "contacted", "qualified"]
    );

    let (status, _, _) = h
        .fails("UpdateLeadStatus", json!({"leadId": "7", "status": "lost"}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn auto_qualify_off_keeps_every_new_lead_new() {
    let h = harness();
    let both = h
        .lead("Jordan", Some("jordan@example.com"), Some("555-010-2000"))
        .await;
    assert_eq!(both["status"], "new");
    assert_eq!(h.listed("new").await, ids(&["1"]));
    assert!(h.listed("qualified").await.is_empty());
}

#[tokio::test]
async fn auto_qualify_on_qualifies_leads_with_email_and_phone() {
    let h = harness().config(json!({"autoQualifyLeads": true}));
    let r = h
        .ok(
            "CreateLead",
            json!({"name": "Jordan", "email": "jordan@example.com", "phone": "555-010-2000", "source": "web"}),
        )
        .await;
    assert_eq!(r["lead"]["status"], "qualified");
    assert_eq!(r["lead"]["approval"], Value::Null);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("qualified since both an email address and a phone number were given"),
        "{}",
        r["message"]
    );
    let email_only = h.lead("Sam", Some("sam@example.com"), None).await;
    assert_eq!(email_only["status"], "new");
    let phone_only = h.lead("Lee", None, Some("555-010-4000")).await;
    assert_eq!(phone_only["status"], "new");
    assert_eq!(h.listed("qualified").await, ids(&["1"]));
}

#[tokio::test]
async fn without_manager_approval_qualified_leads_are_listed_at_once() {
    let h = harness();
    h.lead("Jordan", Some("jordan@example.com"), None).await;
    let r = h.status("1", "qualified").await.unwrap();
    assert_eq!(r["lead"]["approval"], Value::Null);
    assert_eq!(r["message"], "Lead 1 (Jordan) is now qualified.");
    assert_eq!(h.listed("qualified").await, ids(&["1"]));
    let all = h
        .ok("GetLeadsByStatus", json!({"status": "qualified"}))
        .await;
    assert_eq!(all["awaitingApproval"], 0);
    // Nothing awaits approval, so there is nothing to approve.
    let (status, msg, _) = h.fails("ApproveLead", json!({"leadId": "1"})).await;
    assert_eq!(status, 409);
    assert_eq!(
        msg,
        "Lead 1 (Jordan) does not need approval: it is already listed as qualified."
    );
}

#[tokio::test]
async fn with_manager_approval_qualified_leads_wait_for_approve_lead() {
    let h = harness().config(json!({"autoQualifyLeads": true, "requireManagerApproval": true}));
    // Qualified on creation: pending.
    let created = h
        .ok(
            "CreateLead",
            json!({"name": "Jordan", "email": "jordan@example.com", "phone": "555-010-2000", "source": "web"}),
        )
        .await;
    assert_eq!(created["lead"]["status"], "qualified");
    assert_eq!(created["lead"]["approval"], "pending");
    assert!(
        created["message"]
            .as_str()
            .unwrap()
            .contains("awaits a manager's approval")
    );
    // Qualified by UpdateLeadStatus: pending too.
    h.lead("Sam", Some("sam@example.com"), None).await;
    let moved = h.status("2", "qualified").await.unwrap();
    assert_eq!(moved["lead"]["approval"], "pending");
    assert_eq!(
        moved["message"],
        "Lead 2 (Sam) is now qualified and awaits a manager's approval; it is listed as qualified once approved."
    );

    let list = h
        .ok("GetLeadsByStatus", json!({"status": "qualified"}))
        .await;
    assert_eq!(list["leads"], json!([]));
    assert_eq!(list["awaitingApproval"], 2);
    assert!(
        list["message"]
            .as_str()
            .unwrap()
            .contains("2 more await a manager's approval")
    );
    let pending = h
        .ok(
            "GetLeadsByStatus",
            json!({"status": "qualified", "pendingApproval": true}),
        )
        .await;
    let pending_ids: Vec<&str> = pending["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["leadId"].as_str().unwrap())
        .collect();
    assert_eq!(pending_ids, ["2", "1"]);

    // Only a credential with the approval scope (staff, not a caller's channel) may approve.
    let mut caller_side = h.other_org("acme-remodeling");
    caller_side.scopes = vec!["plugins:call".into()];
    let (status, msg, _) = caller_side
        .fails("ApproveLead", json!({"leadId": "1"}))
        .await;
    assert_eq!(status, 403, "{msg}");
    assert_eq!(
        h.listed("qualified").await,
        ids(&[]),
        "nothing was approved"
    );

    let approved = h.ok("ApproveLead", json!({"leadId": "1"})).await;
    assert_eq!(approved["lead"]["approval"], "approved");
    assert_eq!(
        approved["message"],
        "Lead 1 (Jordan) is approved and now listed as qualified."
    );
    assert_eq!(h.listed("qualified").await, ids(&["1"]));

    let (status, msg, _) = h.fails("ApproveLead", json!({"leadId": "1"})).await;
    assert_eq!(
        (status, msg.as_str()),
        (409, "Lead 1 (Jordan) is already approved.")
    );

    // Leaving qualified clears the approval; coming back needs a new one.
    let back = h.status("2", "contacted").await.unwrap();
    assert_eq!(back["lead"]["approval"], Value::Null);
    let (status, msg, _) = h.fails("ApproveLead", json!({"leadId": "2"})).await;
    assert_eq!(status, 409);
    assert!(msg.contains("is contacted, not qualified"), "{msg}");
    h.status("2", "qualified").await.unwrap();
    assert_eq!(h.listed("qualified").await, ids(&["1"]));
    h.ok("ApproveLead", json!({"leadId": "2"})).await;
    assert_eq!(h.listed("qualified").await, ids(&["2", "1"]));
    let (status, _, _) = h.fails("ApproveLead", json!({"leadId": "9"})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn leads_are_listed_newest_first_up_to_the_limit() {
    let mut h = harness();
    for i in 0..12 {
        h.lead(
            &format!("Lead {i}"),
            Some(&format!("l{i}@example.com")),
            None,
        )
        .await;
        h.later(1);
    }
    let r = h
        .ok("GetLeadsByStatus", json!({"status": "new", "limit": 3}))
        .await;
    let got: Vec<&str> = r["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["leadId"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["12", "11", "10"]);
    assert_eq!(
        (r["count"].clone(), r["total"].clone()),
        (json!(3), json!(12))
    );
    assert_eq!(r["truncated"], true);
    assert_eq!(r["message"], "Showing the newest 3 of 12 new leads.");
    let none = h.ok("GetLeadsByStatus", json!({"status": "lost"})).await;
    assert_eq!(none["message"], "There are no lost leads.");
}

#[tokio::test]
async fn another_organization_cannot_see_or_change_this_ones_leads() {
    let h = harness();
    h.lead("Jordan", Some("jordan@example.com"), None).await;
    let other = h.other_org("other-clinic");
    let (status, _, _) = other.fails("GetLead", json!({"leadId": "1"})).await;
    assert_eq!(status, 404);
    let (status, _, _) = other
        .fails("UpdateLeadStatus", json!({"leadId": "1", "status": "lost"}))
        .await;
    assert_eq!(status, 404);
    assert!(other.listed("new").await.is_empty());
    // The same person is a separate lead in another organization.
    let theirs = other.lead("Jordan", Some("jordan@example.com"), None).await;
    assert_eq!(theirs["leadId"], "1");
    assert_eq!(
        h.ok("GetLead", json!({"leadId": "1"})).await["lead"]["status"],
        "new"
    );
}

#[tokio::test]
async fn an_update_that_lost_a_race_is_409_and_changes_nothing() {
    let h = harness();
    h.lead("Jordan", Some("jordan@example.com"), None).await;
    // Someone marks the lead lost between our read and our write.
    let h = h.meddled(vec![Meddle::before_write("leads", "1").update(
        "leads",
        "1",
        json!({"status": "lost", "revision": 2}),
    )]);
    let e = h.status("1", "contacted").await.unwrap_err();
    assert_eq!(e.status(), 409);
    assert_eq!(
        e.to_string(),
        "Lead 1 (Jordan) was just changed by someone else, so this change was not made. Check it with GetLead and try again."
    );
    let lead = h.ok("GetLead", json!({"leadId": "1"})).await["lead"].clone();
    assert_eq!(lead["status"], "lost");
    assert_eq!(lead["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_approval_that_lost_a_race_is_409() {
    let h = harness().config(json!({"requireManagerApproval": true}));
    h.lead("Jordan", Some("jordan@example.com"), None).await;
    h.status("1", "qualified").await.unwrap();
    // A note lands meanwhile: only the revision changes, and that is enough.
    let h = h.meddled(vec![Meddle::before_write("leads", "1").update(
        "leads",
        "1",
        json!({"revision": 99}),
    )]);
    let (status, _, _) = h.fails("ApproveLead", json!({"leadId": "1"})).await;
    assert_eq!(status, 409);
    let lead = h.ok("GetLead", json!({"leadId": "1"})).await["lead"].clone();
    assert_eq!(lead["approval"], "pending");
}

#[tokio::test]
async fn a_spanish_call_hears_spanish() {
    let h = harness().locale("es-US");
    let e = h
        .call("CreateLead", json!({"name": "Ana", "source": "web"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(
        e.to_string()
            .contains("Un lead necesita un número de teléfono o un correo electrónico"),
        "{e}"
    );
    let created = h
        .ok(
            "CreateLead",
            json!({"name": "Ana Ruiz", "source": "web", "phone": "+1 555 010 2000"}),
        )
        .await;
    assert!(
        created["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Ana Ruiz quedó guardado como lead"),
        "{created}"
    );
}
