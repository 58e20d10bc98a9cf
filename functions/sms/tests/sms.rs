//! The sms handlers through the test kit, with a vendor API double that records each request
//! and answers as Twilio does. The requests' shape against Twilio's published contract is
//! tested in `tests/tests/suite/vendors.rs` (Prism).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchboard::api::{ApiBody, ApiRequest, ApiResponse};
use switchboard::ports::Api;
use switchboard::{Error, async_trait};
use switchboard_testkit::Harness;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

struct Twilio {
    sent: Mutex<Vec<ApiRequest>>,
    answer: ApiResponse,
}

#[async_trait]
impl Api for Twilio {
    async fn send(&self, request: ApiRequest) -> Result<ApiResponse, Error> {
        self.sent.lock().unwrap().push(request);
        Ok(self.answer.clone())
    }
}

fn twilio(status: u16, body: Value) -> Arc<Twilio> {
    Arc::new(Twilio {
        sent: Mutex::default(),
        answer: ApiResponse {
            status,
            body,
            etag: None,
        },
    })
}

fn harness(api: Arc<Twilio>) -> Harness {
    Harness::new(sms::plugin().unwrap(), "sms-acme")
        .config(json!({"accountSid": ACCOUNT, "fromNumber": "+15017122661", "signature": "– Acme"}))
        .api(api)
}

fn form(r: &ApiRequest) -> Vec<(String, String)> {
    match &r.body {
        ApiBody::Form(f) => f.clone(),
        other => panic!("not a form: {other:?}"),
    }
}

#[tokio::test]
async fn a_text_goes_to_the_accounts_messages_with_the_signature() {
    let api = twilio(
        201,
        json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}),
    );
    let h = harness(api.clone());
    let out = h
        .ok(
            "SendSms",
            json!({"to": "+15558675310", "body": "See you at 10."}),
        )
        .await;
    assert_eq!(
        out,
        json!({"messageSid": "SM0123456789abcdef0123456789abcdef", "status": "queued", "to": "+15558675310"})
    );
    let sent = api.sent.lock().unwrap();
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    assert_eq!(
        form(&sent[0]),
        [
            ("To".to_owned(), "+15558675310".to_owned()),
            ("From".to_owned(), "+15017122661".to_owned()),
            ("Body".to_owned(), "See you at 10.\n– Acme".to_owned()),
        ]
    );
}

#[tokio::test]
async fn on_a_voice_call_the_caller_is_texted_unless_told_otherwise() {
    let api = twilio(201, json!({"sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}));
    let mut h = harness(api.clone());
    h.caller_phone = Some("+15550102000".into());
    h.ok("SendSms", json!({"body": "Directions"})).await;
    assert_eq!(form(&api.sent.lock().unwrap()[0])[0].1, "+15550102000");

    // No caller number (or one Twilio would not take): the model must ask for one.
    h.caller_phone = Some("555-0102".into());
    let e = h.call("SendSms", json!({"body": "x"})).await.unwrap_err();
    assert_eq!(e.status(), 422);
    assert_eq!(e.to_body()["error"]["details"][0]["path"], "/to");
    // A number not in E.164 form is refused before anything is sent.
    let e = h
        .call("SendSms", json!({"to": "555 0102", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert_eq!(api.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn twilios_refusals_and_failures_keep_their_meaning() {
    // Twilio's 400 (e.g. 21211) is the caller's to fix: 422 with Twilio's words.
    let h = harness(twilio(
        400,
        json!({"code": 21211, "message": "Invalid 'To' Phone Number: +1555867XXXX", "status": 400}),
    ));
    let e = h
        .call("SendSms", json!({"to": "+15558675310", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_string().contains("(Twilio error 21211)"), "{e}");
    // About the sending number: the organization's config.
    let h = harness(twilio(
        400,
        json!({"code": 21606, "message": "The From phone number is not a valid, SMS-capable inbound phone number"}),
    ));
    let e = h
        .call("SendSms", json!({"to": "+15558675310", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (422, "invalid_config"));
    assert_eq!(
        e.to_body()["error"]["details"][0]["path"],
        "/config/fromNumber"
    );
    // Rate limited: 503, retry later.
    let h = harness(twilio(429, json!({"code": 20429})));
    let e = h
        .call("SendSms", json!({"to": "+15558675310", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    // Its 5xx is the upstream's: 502.
    let h = harness(twilio(503, Value::Null));
    let e = h
        .call("SendSms", json!({"to": "+15558675310", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"));
    // An unknown message is a 404 that says which sid to use.
    let h = harness(twilio(404, json!({"code": 20404, "message": "not found"})));
    let e = h
        .call(
            "GetSmsStatus",
            json!({"messageSid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404);
}

#[tokio::test]
async fn without_an_api_connection_or_account_the_message_says_what_to_set() {
    let mut h = Harness::new(sms::plugin().unwrap(), "sms-acme")
        .config(json!({"accountSid": ACCOUNT, "fromNumber": "+15017122661"}));
    let e = h
        .call("SendSms", json!({"to": "+15558675310", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (422, "invalid_config"));
    assert!(e.to_string().contains("\"type\": \"api\""), "{e}");
    h.config = json!({"signature": ""});
    h.api = Some(twilio(201, json!({})));
    let e = h
        .call("SendSms", json!({"to": "+15558675310", "body": "x"}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_body()["error"]["details"][0]["path"],
        "/config/accountSid"
    );
}

#[test]
fn the_manifest_takes_only_the_api_adapter() {
    let p = sms::plugin().unwrap();
    assert_eq!(
        p.manifest().manifest().data_adapters,
        [switchboard::spec::AdapterKind::Api]
    );
}
