//! The sms plugin's appointment reminders on EventBridge Scheduler (moto's server, started by
//! `scripts/test`): a one-time `at()` schedule per appointment whose target is the sms
//! function with a scheduled tool-call event, replaced when the appointment moves, deleted
//! when it is cancelled; its event, delivered as the scheduler delivers it, sends the text
//! through Twilio's contract (Prism) once, however often it is delivered.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard::OrgId;
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::lambda::{EventReply, handle_event};
use switchboard::pipeline::{PluginService, ToolCallEvent};
use switchboard::registry::Registry;
use switchboard::secrets::Secrets;
use switchboard::settings::SchedulerSettings;
use switchboard_aws::scheduler::EventBridgeScheduler;
use switchboard_tests::{embedded_tables, moto_endpoint, scheduler_client, unique};

const ROLE: &str = "arn:aws:iam::123456789012:role/sb-scheduler";
const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:sb-SmsFunction-x1";

/// The sms function of the sample events' SMS organization, on a platform whose scheduler
/// is EventBridge Scheduler (moto) with the schedule group `group`.
async fn sms_on_scheduler(group: &str) -> Arc<PluginService> {
    let tables = embedded_tables();
    let settings = switchboard_cli::dev::settings().unwrap();
    let secrets = Arc::new(Secrets::from_settings(
        switchboard_embedded::Embedded::in_memory()
            .unwrap()
            .secret_store(),
        &settings,
    ));
    let client = scheduler_client(&moto_endpoint()).await;
    let scheduler = EventBridgeScheduler::new(
        client,
        SchedulerSettings {
            group: group.to_owned(),
            role_arn: ROLE.into(),
            target_arn: TARGET.into(),
        },
    );
    let platform = switchboard_runtime::platform_with(
        Registry::new(tables.registry),
        BuiltinData::new(tables.data),
        secrets.clone(),
        switchboard_tests::tls(),
        &settings,
    )
    .unwrap()
    .with_scheduler(Arc::new(scheduler))
    // 2026-12-01T00:00:00Z: the reminders' dates stay in the future.
    .with_clock(Arc::new(|| {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_083_200)
    }));
    let platform = Arc::new(platform);
    Arc::new(crate::vendors::sms_events_org(&platform, &secrets).await)
}

fn tenant() -> TenantContext {
    TenantContext {
        org: OrgId::parse("sms-events").unwrap(),
        scopes: vec!["plugins:call".into()],
        channel: None,
        key_id: Some("k-reminders".into()),
        key_rate_limit: None,
    }
}

/// Calls `function` as a tool-call event: (status, body).
async fn call(sms: &PluginService, function: &str, parameters: Value) -> (u16, Value) {
    let event = ToolCallEvent::new(
        sms.plugin().name().clone(),
        &tenant(),
        function,
        parameters,
        unique("req"),
    );
    let out = sms.respond_tool_call(event).await;
    (out.status, out.body)
}

/// Delivers a schedule's input to the function as EventBridge Scheduler does.
async fn deliver(sms: &PluginService, input: &str) -> (u16, Value, bool) {
    let event: Value = serde_json::from_str(input).unwrap();
    match handle_event(sms, event, lambda_http::Context::default())
        .await
        .unwrap()
    {
        EventReply::ToolCall(out) => (out.status, out.body, out.replayed),
        other => panic!("not answered as a tool call: {other:?}"),
    }
}

#[tokio::test]
async fn a_reminder_is_a_one_time_schedule_that_texts_once_and_goes_with_its_appointment() {
    let client = scheduler_client(&moto_endpoint()).await;
    let group = unique("sb-reminders");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let sms = sms_on_scheduler(&group).await;

    let (status, body) = call(
        &sms,
        "ScheduleReminder",
        json!({"appointmentRef": "1042", "appointmentTime": "2027-06-01T10:00:00-05:00",
            "to": "+15558675310", "body": "Reminder: your appointment is tomorrow at 10:00."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["sendAt"], "2027-05-31T15:00:00Z", "{body}");

    let listed = client
        .list_schedules()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let names: Vec<String> = listed
        .schedules()
        .iter()
        .filter_map(|s| s.name().map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        !names[0].contains("1042") && !names[0].contains("sms-events"),
        "{}",
        names[0]
    );
    let schedule = client
        .get_schedule()
        .group_name(&group)
        .name(&names[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2027-05-31T15:00:00)")
    );
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        schedule.action_after_completion().map(|a| a.as_str()),
        Some("DELETE")
    );
    let target = schedule.target().unwrap();
    assert_eq!((target.arn(), target.role_arn()), (TARGET, ROLE));
    let input = target.input().unwrap().to_owned();
    let event: Value = serde_json::from_str(&input).unwrap();
    assert_eq!(event["kind"], "switchboard.tool-call/1");
    assert_eq!(event["scheduled"], true);
    assert_eq!(event["plugin"], "sms");
    assert_eq!(event["function"], "SendSms");
    assert_eq!(event["tenant"]["org"], "sms-events");
    assert_eq!(
        event["parameters"],
        json!({"to": "+15558675310", "body": "Reminder: your appointment is tomorrow at 10:00."})
    );

    // Delivered (as the scheduler would at 15:00Z): the text goes to Twilio's contract.
    let (status, body, replayed) = deliver(&sms, &input).await;
    assert_eq!(status, 200, "{body}");
    assert!(!replayed);
    let sid = body["result"]["messageSid"].clone();
    assert!(sid.is_string(), "{body}");
    // Delivered again (the scheduler retries): the first answer, no second text.
    let (status, again, replayed) = deliver(&sms, &input).await;
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again["result"]["messageSid"], sid);

    // The appointment moves: one schedule, at the new time.
    let (status, body) = call(
        &sms,
        "ScheduleReminder",
        json!({"appointmentRef": "1042", "appointmentTime": "2027-06-02T10:00:00-05:00",
            "to": "+15558675310", "body": "Reminder: your appointment is tomorrow at 10:00."}),
    )
    .await;
    assert_eq!(
        (status, &body["result"]["replaced"]),
        (200, &json!(true)),
        "{body}"
    );
    let schedule = client
        .get_schedule()
        .group_name(&group)
        .name(&names[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2027-06-01T15:00:00)")
    );
    // Its delivery is a new text, not a replay of the first reminder's.
    let moved_input = schedule.target().unwrap().input().unwrap().to_owned();
    let (status, body, replayed) = deliver(&sms, &moved_input).await;
    assert_eq!((status, replayed), (200, false), "{body}");

    // Cancelled with the appointment: the schedule is gone.
    let (status, body) = call(&sms, "CancelReminder", json!({"appointmentRef": "1042"})).await;
    assert_eq!(
        (status, &body["result"]["cancelled"]),
        (200, &json!(true)),
        "{body}"
    );
    let gone = client
        .get_schedule()
        .group_name(&group)
        .name(&names[0])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_scheduler::error::ProvideErrorMetadata::code(&gone),
        Some("ResourceNotFoundException")
    );
    let (status, body) = call(&sms, "CancelReminder", json!({"appointmentRef": "1042"})).await;
    assert_eq!(
        (status, &body["result"]["cancelled"]),
        (200, &json!(false)),
        "{body}"
    );
}

/// Without a schedule group the scheduler refuses: the call is a 503 that names the
/// dependency, never a 500.
#[tokio::test]
async fn a_scheduler_failure_is_a_503() {
    let sms = sms_on_scheduler(&unique("sb-no-such-group")).await;
    let (status, body) = call(
        &sms,
        "ScheduleReminder",
        json!({"appointmentRef": "7", "appointmentTime": "2027-06-01T10:00:00Z",
            "to": "+15558675310", "body": "Reminder"}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "dependency_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("EventBridge Scheduler"),
        "{body}"
    );

    // Delivered by the scheduler, a call that may succeed later fails the invocation (so
    // the scheduler retries it); a refusal is answered (a retry would only repeat it).
    let scheduled = |parameters: Value| {
        let event = ToolCallEvent::new(
            sms.plugin().name().clone(),
            &tenant(),
            "ScheduleReminder",
            parameters,
            unique("req"),
        )
        .scheduled();
        serde_json::to_value(event).unwrap()
    };
    let failed = handle_event(
        &sms,
        scheduled(
            json!({"appointmentRef": "7", "appointmentTime": "2027-06-01T10:00:00Z",
            "to": "+15558675310", "body": "Reminder"}),
        ),
        lambda_http::Context::default(),
    )
    .await
    .unwrap_err();
    assert!(failed.to_string().contains("503"), "{failed}");
    let refused = handle_event(
        &sms,
        scheduled(
            json!({"appointmentRef": "7", "appointmentTime": "2020-06-01T10:00:00Z",
            "to": "+15558675310", "body": "Reminder"}),
        ),
        lambda_http::Context::default(),
    )
    .await
    .unwrap();
    let EventReply::ToolCall(out) = refused else {
        panic!("not a tool-call reply")
    };
    assert_eq!(out.status, 422, "{}", out.body);
}
