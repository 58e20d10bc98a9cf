//! The salesforce-crm handlers through the test kit, with a double of Salesforce's REST API
//! that records each request and answers queries from the leads it is given. The requests'
//! shape against the operations' contract is tested in `tests/tests/suite/vendors.rs` (Prism).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchboard::api::{ApiBody, ApiRequest, ApiResponse};
use switchboard::ports::Api;
use switchboard::{Error, async_trait};
use switchboard_testkit::Harness;

#[derive(Default)]
struct Salesforce {
    /// What a query answers.
    on_file: Vec<Value>,
    /// What a PATCH answers.
    patch_status: u16,
    /// What a create answers, if not 201.
    create_answer: Option<(u16, Value)>,
    sent: Mutex<Vec<ApiRequest>>,
}

#[async_trait]
impl Api for Salesforce {
    async fn send(&self, r: ApiRequest) -> Result<ApiResponse, Error> {
        self.sent.lock().unwrap().push(r.clone());
        let (status, body) = match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/services/data/v60.0/query") => (
                200,
                json!({"totalSize": self.on_file.len(), "done": true, "records": self.on_file}),
            ),
            ("POST", "/services/data/v60.0/sobjects/Lead") => {
                self.create_answer.clone().unwrap_or((
                    201,
                    json!({"id": "00Q5e00000AbCdEEAV", "success": true, "errors": []}),
                ))
            }
            ("PATCH", _) => (self.patch_status, Value::Null),
            _ => (404, json!([{"errorCode": "NOT_FOUND", "message": "nope"}])),
        };
        Ok(ApiResponse {
            status,
            body,
            etag: None,
        })
    }
}

fn harness(sf: Arc<Salesforce>, config: Value) -> Harness {
    Harness::new(salesforce_crm::plugin().unwrap(), "sf-acme")
        .config(config)
        .api(sf)
}

fn query_of(r: &ApiRequest) -> String {
    r.query
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.clone())
        .unwrap()
}

fn body_of(r: &ApiRequest) -> Value {
    match &r.body {
        ApiBody::Json(v) => v.clone(),
        other => panic!("not JSON: {other:?}"),
    }
}

#[tokio::test]
async fn a_lead_is_checked_for_duplicates_then_created_with_the_right_status() {
    let sf = Arc::new(Salesforce::default());
    let h = harness(sf.clone(), json!({"autoQualifyLeads": true}));
    let lead = h
        .ok(
            "CreateLead",
            json!({"name": "Jordan  Rivera", "email": "jordan.o'neil@example.com", "phone": "+1 555 010 2000", "source": "referral"}),
        )
        .await;
    assert_eq!(lead["leadId"], "00Q5e00000AbCdEEAV");
    assert_eq!(
        lead["status"], "Working - Contacted",
        "both contacts: qualified"
    );
    let sent = sf.sent.lock().unwrap().clone();
    assert_eq!(
        query_of(&sent[0]),
        r"SELECT Id FROM Lead WHERE IsConverted = false AND (Email = 'jordan.o\'neil@example.com' OR Phone = '+1 555 010 2000') ORDER BY CreatedDate DESC LIMIT 1"
    );
    assert_eq!(
        body_of(&sent[1]),
        json!({"FirstName": "Jordan", "LastName": "Rivera", "Company": "[not provided]",
            "Email": "jordan.o'neil@example.com", "Phone": "+1 555 010 2000",
            "LeadSource": "referral", "Status": "Working - Contacted"})
    );

    // With manager approval the assistant never qualifies, not even automatically.
    let sf = Arc::new(Salesforce::default());
    let h = harness(
        sf.clone(),
        json!({"autoQualifyLeads": true, "requireManagerApproval": true}),
    );
    let lead = h
        .ok("CreateLead", json!({"name": "Sam", "email": "sam@example.com", "phone": "555-010-3000", "source": "web"}))
        .await;
    assert_eq!(lead["status"], "Open - Not Contacted");
}

#[tokio::test]
async fn a_duplicate_is_refused_without_naming_who_is_on_file() {
    let sf = Arc::new(Salesforce {
        on_file: vec![
            json!({"Id": "00Q5e00000ZzZzZEAV", "FirstName": "Priya", "LastName": "Shah"}),
        ],
        ..Salesforce::default()
    });
    let h = harness(sf.clone(), json!({}));
    let e = h
        .call(
            "CreateLead",
            json!({"name": "Someone Else", "phone": "555-010-3000", "source": "call"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 409);
    assert!(
        e.to_string().contains("00Q5e00000ZzZzZEAV") && !e.to_string().contains("Priya"),
        "{e}"
    );
    assert_eq!(sf.sent.lock().unwrap().len(), 1, "nothing created");
    let e = h
        .call(
            "CreateLead",
            json!({"name": "No Contact", "source": "call"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
}

#[tokio::test]
async fn searches_escape_every_value() {
    let sf = Arc::new(Salesforce {
        on_file: vec![
            json!({"Id": "00Q5e00000AbCdEEAV", "FirstName": "Ann", "LastName": "O'Brien", "Status": "Open - Not Contacted"}),
        ],
        ..Salesforce::default()
    });
    let h = harness(sf.clone(), json!({})).scopes(&["plugins:call", "leads:read"]);
    let found = h.ok("FindLeads", json!({"name": "O'Br%"})).await;
    assert_eq!(
        (found["count"].as_u64(), found["leads"][0]["name"].as_str()),
        (Some(1), Some("Ann O'Brien"))
    );
    // A public channel's key learns that the lead exists and its status, not who it is.
    let public = harness(sf.clone(), json!({}));
    let found = public
        .ok("FindLeads", json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(
        found["leads"][0],
        json!({"leadId": "00Q5e00000AbCdEEAV", "status": "Open - Not Contacted"})
    );
    assert_eq!(
        query_of(&sf.sent.lock().unwrap()[0]),
        r"SELECT Id, FirstName, LastName, Company, Email, Phone, Status, LeadSource FROM Lead WHERE (FirstName LIKE 'O\'Br\%%' OR LastName LIKE 'O\'Br\%%') ORDER BY CreatedDate DESC LIMIT 20"
    );
    let e = h.call("FindLeads", json!({})).await.unwrap_err();
    assert_eq!(e.status(), 422);
}

#[tokio::test]
async fn statuses_come_from_the_organizations_list() {
    let sf = Arc::new(Salesforce {
        patch_status: 204,
        ..Salesforce::default()
    });
    let h = harness(sf.clone(), json!({"requireManagerApproval": true}));
    let ok = h
        .ok(
            "UpdateLeadStatus",
            json!({"leadId": "00Q5e00000AbCdEEAV", "status": "Closed - Not Converted"}),
        )
        .await;
    assert_eq!(ok["status"], "Closed - Not Converted");
    assert_eq!(
        body_of(&sf.sent.lock().unwrap()[0]),
        json!({"Status": "Closed - Not Converted"})
    );
    let e = h
        .call(
            "UpdateLeadStatus",
            json!({"leadId": "00Q5e00000AbCdEEAV", "status": "Hot"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_string().contains("Open - Not Contacted"), "{e}");
    let e = h
        .call(
            "UpdateLeadStatus",
            json!({"leadId": "00Q5e00000AbCdEEAV", "status": "Working - Contacted"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403, "a manager qualifies");
    assert_eq!(sf.sent.lock().unwrap().len(), 1);

    let missing = Arc::new(Salesforce {
        patch_status: 404,
        ..Salesforce::default()
    });
    let e = harness(missing, json!({}))
        .call(
            "UpdateLeadStatus",
            json!({"leadId": "00Q5e00000AbCdEEAV", "status": "Working - Contacted"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn salesforces_refusals_keep_their_meaning() {
    let refused = |status: u16, code: &str, fields: Value| {
        Arc::new(Salesforce {
            create_answer: Some((
                status,
                json!([{"errorCode": code, "message": "refused here", "fields": fields}]),
            )),
            ..Salesforce::default()
        })
    };
    let lead = json!({"name": "Jordan Rivera", "email": "j@example.com", "source": "TikTok"});
    for (sf, status, code, path) in [
        (
            refused(400, "DUPLICATES_DETECTED", json!([])),
            409,
            "conflict",
            None,
        ),
        (
            refused(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                json!(["LeadSource"]),
            ),
            422,
            "validation_failed",
            Some("/source"),
        ),
        (
            refused(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                json!(["Status"]),
            ),
            422,
            "invalid_config",
            Some("/config/newStatus"),
        ),
        (
            refused(403, "REQUEST_LIMIT_EXCEEDED", json!([])),
            503,
            "dependency_unavailable",
            None,
        ),
        (
            refused(403, "INSUFFICIENT_ACCESS", json!([])),
            422,
            "invalid_config",
            Some("/data_adapter/credential"),
        ),
        (
            refused(500, "UNKNOWN_EXCEPTION", json!([])),
            502,
            "upstream_error",
            None,
        ),
    ] {
        let e = harness(sf, json!({}))
            .call("CreateLead", lead.clone())
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (status, code), "{e}");
        if let Some(path) = path {
            assert_eq!(e.to_body()["error"]["details"][0]["path"], path, "{e}");
        }
    }
    // A blank name never reaches Salesforce.
    let sf = Arc::new(Salesforce::default());
    let e = harness(sf.clone(), json!({}))
        .call(
            "CreateLead",
            json!({"name": "   ", "phone": "555-010-3000", "source": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.to_body()["error"]["details"][0]["path"], "/name");
    assert!(
        sf.sent.lock().unwrap().is_empty(),
        "nothing asked of Salesforce"
    );
}

#[tokio::test]
async fn a_spanish_call_hears_spanish() {
    let missing = Arc::new(Salesforce {
        patch_status: 404,
        ..Salesforce::default()
    });
    let e = harness(missing, json!({}))
        .locale("es-US")
        .call(
            "UpdateLeadStatus",
            json!({"leadId": "00Q5e00000AbCdEEAV", "status": "Working - Contacted"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(
        e.to_string(),
        "No hay ningún lead con leadId 00Q5e00000AbCdEEAV. Búsquelo con FindLeads."
    );
}
