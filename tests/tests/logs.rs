//! Log capture, in its own test binary: tracing's callsite cache is process-wide, so other
//! tests running in parallel threads would make the captured output flaky.

#[path = "suite/fixtures.rs"]
mod fixtures;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchboard::auth::TenantContext;
use switchboard::pipeline::CallInput;
use switchboard_tests::embedded_tables;

use fixtures::{booking_service, demo};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_carry_the_call_and_never_the_parameters() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = switchboard::telemetry::subscriber(true, move || writer.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let demo = demo(embedded_tables(), None).await;
            let svc = booking_service(&demo.platform);
            let body = json!({"function": "CreateAppointment", "parameters":
                {"PatNum": 2, "ProvNum": 2, "AptDateTime": "2027-06-01 11:00", "Note": "PRIVATE-NOTE-4417"}})
            .to_string();
            let (status, resp) = svc
                .call(CallInput {
                    tenant: Some(TenantContext::new(demo.org.clone()).with_scopes(&["plugins:call"])),
                    body: body.as_bytes(),
                    request_id: "req-log-1",
                })
                .await;
            assert_eq!(status, 200, "{resp}");
        });
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let call_line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "call ok")
        .unwrap_or_else(|| panic!("no 'call ok' line in:\n{text}"));
    let span = &call_line["span"];
    assert_eq!(span["request_id"], "req-log-1", "{call_line}");
    assert_eq!(span["org"], "demo-dental");
    assert_eq!(span["plugin"], "booking");
    assert_eq!(span["function"], "CreateAppointment");
    assert_eq!(call_line["status"], 200);
    assert!(
        !text.contains("PRIVATE-NOTE-4417"),
        "parameters leaked into the log:\n{text}"
    );
}
