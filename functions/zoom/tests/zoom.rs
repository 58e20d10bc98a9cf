//! The zoom handlers through the test kit, with a double of Zoom's Meeting API that keeps its
//! meetings, pages its list two at a time and records each request. The requests' shape
//! against the operations' contract is tested in `tests/tests/suite/vendors.rs` (Prism).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchboard::api::{ApiBody, ApiRequest, ApiResponse};
use switchboard::ports::Api;
use switchboard::{Error, async_trait};
use switchboard_testkit::Harness;

const HOST: &str = "frontdesk@acme.example";

#[derive(Default)]
struct Zoom {
    meetings: Mutex<Vec<Value>>,
    sent: Mutex<Vec<ApiRequest>>,
    /// Answer every request with this instead.
    refuse: Option<(u16, Value)>,
}

fn query<'a>(r: &'a ApiRequest, name: &str) -> Option<&'a str> {
    r.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[async_trait]
impl Api for Zoom {
    async fn send(&self, r: ApiRequest) -> Result<ApiResponse, Error> {
        self.sent.lock().unwrap().push(r.clone());
        let answer = |status: u16, body: Value| {
            Ok(ApiResponse {
                status,
                body,
                etag: None,
            })
        };
        if let Some((status, body)) = &self.refuse {
            return answer(*status, body.clone());
        }
        let users = "/users/frontdesk%40acme.example/meetings";
        let mut meetings = self.meetings.lock().unwrap();
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", p) if p == users => {
                let ApiBody::Json(b) = &r.body else {
                    return answer(400, json!({"code": 300, "message": "not JSON"}));
                };
                let id = 85_746_065_000u64 + meetings.len() as u64;
                let m = json!({
                    "id": id, "topic": b["topic"], "type": 2, "start_time": b["start_time"],
                    "duration": b["duration"], "agenda": b["agenda"],
                    "join_url": format!("https://us05web.zoom.us/j/{id}?pwd=x"),
                    "start_url": format!("https://us05web.zoom.us/s/{id}?zak=host-secret"),
                    "password": "k3Yp4s",
                });
                meetings.push(m.clone());
                answer(201, m)
            }
            ("GET", p) if p == users => {
                let from: usize = query(&r, "next_page_token")
                    .map(|t| t.trim_start_matches("page-").parse().unwrap())
                    .unwrap_or(0);
                let page: Vec<Value> = meetings.iter().skip(from).take(2).cloned().collect();
                let next = if from + 2 < meetings.len() {
                    format!("page-{}", from + 2)
                } else {
                    String::new()
                };
                answer(
                    200,
                    json!({"page_size": 2, "total_records": meetings.len(), "next_page_token": next, "meetings": page}),
                )
            }
            ("DELETE", p) if p.starts_with("/meetings/") => {
                let id: u64 = p["/meetings/".len()..].parse().unwrap();
                let before = meetings.len();
                meetings.retain(|m| m["id"] != id);
                if meetings.len() == before {
                    answer(
                        404,
                        json!({"code": 3001, "message": "Meeting does not exist"}),
                    )
                } else {
                    answer(204, Value::Null)
                }
            }
            _ => answer(404, json!({"code": 404, "message": "no such route"})),
        }
    }
}

/// 2027-06-01T12:00:00Z.
fn noon() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_811_851_200)
}

fn harness(zoom: Arc<Zoom>) -> Harness {
    Harness::new(zoom::plugin().unwrap(), "zoom-acme")
        .config(json!({"hostUser": HOST, "timeZone": "America/Chicago"}))
        .api(zoom)
        .at(noon())
}

#[tokio::test]
async fn one_meeting_per_booking_listed_and_cancelled_with_it() {
    let zoom = Arc::new(Zoom::default());
    // Meetings the host made elsewhere: never listed or cancelled here.
    zoom.meetings.lock().unwrap().extend([
        json!({"id": 1, "topic": "Team sync", "agenda": "weekly"}),
        json!({"id": 2, "topic": "Board", "agenda": "Appointment 1042 (not ours)"}),
    ]);
    let h = harness(zoom.clone());

    let made = h
        .ok(
            "CreateMeeting",
            json!({"bookingRef": "1042", "startTime": "2027-06-01T10:00:00-05:00"}),
        )
        .await;
    assert_eq!(made["existing"], false);
    assert_eq!(made["startTime"], "2027-06-01T15:00:00Z", "sent in UTC");
    assert_eq!(made["durationMinutes"], 30, "the default");
    assert_eq!(made["passcode"], "k3Yp4s");
    assert!(
        !made.to_string().contains("host-secret"),
        "the host's start_url never reaches the agent: {made}"
    );
    let sent = zoom.sent.lock().unwrap().clone();
    let ApiBody::Json(body) = &sent.last().unwrap().body else {
        panic!("not JSON")
    };
    assert_eq!(body["timezone"], "America/Chicago");
    assert_eq!(body["topic"], "Video appointment (1042)");
    assert_eq!(body["settings"]["waiting_room"], true);
    assert_eq!(query(&sent[0], "type"), Some("upcoming"));

    // More meetings than one page of the list: the booking's meeting is still found.
    for r in ["BK-1", "BK-2", "BK-3"] {
        h.ok(
            "CreateMeeting",
            json!({"bookingRef": r, "startTime": "2027-06-02T09:00:00Z", "durationMinutes": 45}),
        )
        .await;
    }
    let again = h
        .ok(
            "CreateMeeting",
            json!({"bookingRef": "1042", "startTime": "2027-06-01T10:00:00-05:00"}),
        )
        .await;
    assert_eq!(again["existing"], true);
    assert_eq!(again["meetingId"], made["meetingId"]);
    assert_eq!(zoom.meetings.lock().unwrap().len(), 6, "no second meeting");

    let (status, _, _) = h.fails("ListMeetings", json!({})).await;
    assert_eq!(status, 403, "listing every booking's meeting is for staff");
    let staff = h
        .other_org("zoom-acme")
        .scopes(&["plugins:call", zoom::READ_SCOPE]);
    let listed = staff.ok("ListMeetings", json!({})).await;
    let refs: Vec<&str> = listed["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["bookingRef"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["1042", "BK-1", "BK-2", "BK-3"]);
    let one = h.ok("ListMeetings", json!({"bookingRef": "BK-2"})).await;
    assert_eq!(one["meetings"][0]["durationMinutes"], 45);
    assert_eq!(one["meetings"].as_array().unwrap().len(), 1);

    // Another organization on the same Zoom account: 1042 is not its booking.
    let other = h.other_org("zoom-globex");
    let theirs = other
        .ok("ListMeetings", json!({"bookingRef": "1042"}))
        .await;
    assert_eq!(theirs["meetings"], json!([]));
    let not_theirs = other
        .ok("CancelMeeting", json!({"bookingRef": "1042"}))
        .await;
    assert_eq!(not_theirs["cancelled"], false);

    let cancelled = h.ok("CancelMeeting", json!({"bookingRef": "1042"})).await;
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cancelled["meetingIds"], json!([made["meetingId"]]));
    let delete = zoom.sent.lock().unwrap().last().unwrap().clone();
    assert_eq!(query(&delete, "cancel_meeting_reminder"), Some("true"));
    // Again: nothing left to cancel, which is not an error.
    let again = h.ok("CancelMeeting", json!({"bookingRef": "1042"})).await;
    assert_eq!(again["cancelled"], false);
    let left: Vec<Value> = zoom.meetings.lock().unwrap().clone();
    assert_eq!(left.len(), 5);
    assert!(
        left.iter().any(|m| m["id"] == 2),
        "the host's own meeting stays"
    );
}

#[tokio::test]
async fn bad_input_and_zooms_refusals_map_to_the_contract() {
    let zoom = Arc::new(Zoom::default());
    let h = harness(zoom.clone());
    for (params, at) in [
        (
            json!({"bookingRef": "1042", "startTime": "2027-06-01 10:00"}),
            "/startTime",
        ),
        (
            json!({"bookingRef": "1042", "startTime": "2027-06-01T10:00:00"}),
            "/startTime",
        ),
        (
            json!({"bookingRef": "1042", "startTime": "2027-06-01T11:59:00Z"}),
            "/startTime",
        ),
        (
            json!({"bookingRef": "../x", "startTime": "2027-06-01T13:00:00Z"}),
            "/bookingRef",
        ),
    ] {
        let (status, _, paths) = h.fails("CreateMeeting", params.clone()).await;
        assert_eq!(status, 422, "{params}");
        assert!(paths.iter().any(|p| p == at), "{params}: {paths:?}");
    }
    assert!(zoom.sent.lock().unwrap().is_empty(), "refused before Zoom");

    let no_host = Harness::new(zoom::plugin().unwrap(), "zoom-acme")
        .api(zoom.clone())
        .at(noon());
    let e = no_host
        .call("ListMeetings", json!({"bookingRef": "1"}))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (422, "invalid_config"));
    let (_, _, paths) = no_host
        .fails("ListMeetings", json!({"bookingRef": "1"}))
        .await;
    assert_eq!(paths, ["/config/hostUser"]);

    let cases = [
        (
            404,
            json!({"code": 1001, "message": "User does not exist: frontdesk@acme.example."}),
            422,
            "/config/hostUser",
        ),
        (
            400,
            json!({"code": 4711, "message": "Invalid access token, does not contain scopes:[meeting:read:admin]."}),
            422,
            "/data_adapter/credential",
        ),
        (
            429,
            json!({"code": 429, "message": "Too many requests"}),
            503,
            "",
        ),
        (500, json!({"code": 500, "message": "oops"}), 502, ""),
    ];
    for (zoom_status, body, status, at) in cases {
        let zoom = Arc::new(Zoom {
            refuse: Some((zoom_status, body.clone())),
            ..Zoom::default()
        });
        let h = harness(zoom);
        let (got, _, paths) = h.fails("ListMeetings", json!({"bookingRef": "1"})).await;
        assert_eq!(got, status, "{body}");
        if !at.is_empty() {
            assert_eq!(paths, [at], "{body}");
        }
    }
}

#[tokio::test]
async fn a_spanish_call_hears_spanish() {
    let zoom = Arc::new(Zoom::default());
    let h = harness(zoom.clone()).locale("es-MX");
    let e = h
        .call(
            "CreateMeeting",
            json!({"bookingRef": "1042", "startTime": "2020-06-01T10:00:00-05:00"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("la cita ya ha empezado"), "{e}");
    let e = h.call("ListMeetings", json!({})).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("hace falta una clave con el permiso meetings:read"),
        "{e}"
    );
}
