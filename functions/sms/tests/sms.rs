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

/// 2027-05-31T12:00:00Z.
fn noon_before() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_811_764_800)
}

#[tokio::test]
async fn a_reminder_is_a_text_scheduled_before_the_appointment_and_cancelled_with_it() {
    let api = twilio(
        201,
        json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}),
    );
    let mut h = harness(api.clone()).at(noon_before());
    h.caller_phone = Some("+15558675310".into());
    // 10:00 in Chicago on 1 June is 15:00Z; the default is the day before.
    let out = h
        .ok(
            "ScheduleReminder",
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-01T10:00:00-05:00", "body": "Reminder: tomorrow at 10:00."}),
        )
        .await;
    assert_eq!(
        out,
        json!({"appointmentRef": "1042", "sendAt": "2027-05-31T15:00:00Z", "to": "+15558675310", "replaced": false})
    );
    assert!(api.sent.lock().unwrap().is_empty(), "nothing sent yet");
    assert!(h.take_due(1_811_775_599).await.is_empty(), "not due before");

    // The appointment moves: its reminder is replaced, not doubled.
    let moved = h
        .ok(
            "ScheduleReminder",
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-02T10:00:00-05:00", "body": "Reminder: tomorrow (Wed) at 10:00."}),
        )
        .await;
    assert_eq!(moved["replaced"], true);
    assert_eq!(moved["sendAt"], "2027-06-01T15:00:00Z");
    assert!(
        h.take_due(1_811_775_600).await.is_empty(),
        "the old one is gone"
    );
    let due = h.take_due(1_811_862_000).await;
    assert_eq!(due.len(), 1);
    let call = &due[0].event;
    assert_eq!((call.function.as_str(), call.scheduled), ("SendSms", true));
    assert_eq!(call.tenant.org.as_str(), "sms-acme");
    assert_eq!(
        call.parameters,
        json!({"to": "+15558675310", "body": "Reminder: tomorrow (Wed) at 10:00."})
    );
    assert!(
        call.idempotency_key.is_some(),
        "a repeated delivery is a replay"
    );
    assert!(h.take_due(1_811_862_000).await.is_empty(), "taken once");

    // Cancelled with its appointment; again is not an error.
    h.ok(
        "ScheduleReminder",
        json!({"appointmentRef": "1043", "appointmentTime": "2027-06-03T09:00:00Z", "to": "+15558675311", "body": "Reminder"}),
    )
    .await;
    let cancelled = h
        .ok("CancelReminder", json!({"appointmentRef": "1043"}))
        .await;
    assert_eq!(cancelled["cancelled"], true);
    let again = h
        .ok("CancelReminder", json!({"appointmentRef": "1043"}))
        .await;
    assert_eq!(again["cancelled"], false);
    assert!(h.take_due(i64::MAX).await.is_empty());

    // Another organization's reminder of the same appointment number is its own.
    let other = h.other_org("sms-globex");
    other
        .ok(
            "ScheduleReminder",
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-03T09:00:00Z", "body": "Reminder"}),
        )
        .await;
    let cancelled = h
        .ok("CancelReminder", json!({"appointmentRef": "1042"}))
        .await;
    assert_eq!(cancelled["cancelled"], false, "not globex's");
    assert_eq!(
        h.take_due(i64::MAX).await[0].event.tenant.org.as_str(),
        "sms-globex"
    );
}

#[tokio::test]
async fn a_reminder_that_cannot_go_out_is_refused_when_scheduled() {
    let api = twilio(201, json!({}));
    let h = harness(api.clone()).at(noon_before());
    for (params, at) in [
        // Less than a day away: its reminder would be in the past.
        (
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-01T09:00:00Z", "to": "+15558675310", "body": "x"}),
            "/appointmentTime",
        ),
        (
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-01 10:00", "to": "+15558675310", "body": "x"}),
            "/appointmentTime",
        ),
        // More than a year ahead.
        (
            json!({"appointmentRef": "1042", "appointmentTime": "2028-06-03T09:00:00Z", "to": "+15558675310", "body": "x"}),
            "/appointmentTime",
        ),
        // No number given and no caller's number to default to.
        (
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-03T09:00:00Z", "body": "x"}),
            "/to",
        ),
    ] {
        let (status, _, paths) = h.fails("ScheduleReminder", params.clone()).await;
        assert_eq!(status, 422, "{params}");
        assert_eq!(paths, [at], "{params}");
    }
    let off = harness(api)
        .at(noon_before())
        .config(json!({"reminderMinutesBefore": 0}));
    let (status, _, paths) = off
        .fails(
            "ScheduleReminder",
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-03T09:00:00Z", "to": "+15558675310", "body": "x"}),
        )
        .await;
    assert_eq!(
        (status, paths),
        (422, vec!["/config/reminderMinutesBefore".to_owned()])
    );
    assert!(h.take_due(i64::MAX).await.is_empty());
}

/// A caller on a Spanish-speaking channel hears the plugin's messages in Spanish.
#[tokio::test]
async fn messages_follow_the_calls_locale() {
    let api = twilio(201, json!({}));
    let h = harness(api.clone()).at(noon_before()).locale("es-US");
    let e = h
        .call("SendSms", json!({"body": "Hola"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_string().contains("indique el número"), "{e}");
    let (_, message, paths) = h
        .fails(
            "ScheduleReminder",
            json!({"appointmentRef": "1042", "appointmentTime": "2027-06-01T09:00:00Z", "to": "+15558675310", "body": "x"}),
        )
        .await;
    assert_eq!(paths, ["/appointmentTime"]);
    assert!(
        message.contains("faltan menos de 1440 minutos"),
        "{message}"
    );
    let english = harness(api).at(noon_before());
    let e = english
        .call("SendSms", json!({"body": "Hi"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("give the number to text"), "{e}");
}

#[tokio::test]
async fn a_status_callback_is_the_orgs_own_account_and_sends_nothing() {
    let api = twilio(500, json!({}));
    let sid = "SM0123456789abcdef0123456789abcdef";
    let with_callback = harness(api.clone()).config(json!({"accountSid": ACCOUNT,
        "fromNumber": "+15017122661", "statusCallbackUrl": "https://api.example.com/channels/twilio/cn_1/sms"}));
    let out = with_callback
        .ok(
            "SmsStatusCallback",
            json!({"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": "failed",
                "ErrorCode": "30007", "To": "+15558675310", "ApiVersion": "2010-04-01"}),
        )
        .await;
    assert_eq!(
        out,
        json!({"messageSid": sid, "status": "failed", "errorCode": "30007", "delivered": false})
    );
    // "0" (or nothing) is Twilio's no-error.
    let out = with_callback
        .ok(
            "SmsStatusCallback",
            json!({"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": "delivered", "ErrorCode": "0"}),
        )
        .await;
    assert_eq!(
        (&out["errorCode"], &out["delivered"]),
        (&Value::Null, &json!(true))
    );
    let e = with_callback
        .call(
            "SmsStatusCallback",
            json!({"AccountSid": "AC00000000000000000000000000000000", "MessageSid": sid, "MessageStatus": "sent"}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (403, "other_account"), "{e}");
    assert!(
        api.sent.lock().unwrap().is_empty(),
        "a callback calls Twilio for nothing"
    );

    // With a callback URL set, each text asks Twilio to report to it.
    let sending = twilio(201, json!({"sid": sid, "status": "queued"}));
    let h = harness(sending.clone()).config(json!({"accountSid": ACCOUNT,
        "fromNumber": "+15017122661", "statusCallbackUrl": "https://api.example.com/channels/twilio/cn_1/sms"}));
    h.ok("SendSms", json!({"to": "+15558675310", "body": "Hi"}))
        .await;
    let sent = sending.sent.lock().unwrap();
    assert!(
        form(&sent[0]).contains(&(
            "StatusCallback".to_owned(),
            "https://api.example.com/channels/twilio/cn_1/sms".to_owned()
        )),
        "{:?}",
        form(&sent[0])
    );
}
