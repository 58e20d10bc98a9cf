//! Every file in `events/` goes through lambda_http's request parsing into the real handler
//! of its function (a plugin, the agent builder, admin, MCP), or, for the events that are
//! not HTTP requests, into the function's own event handling (the authorizer's, a plugin's
//! tool-call event).

use serde_json::{Value, json};
use std::sync::Arc;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::auth::{Authorizer, KEY_CACHE_TTL};

use switchboard::lambda::{
    EventReply, LocalInvoker, handle, handle_admin, handle_agent, handle_event, handle_mcp,
};
use switchboard::mcp::{McpService, OriginPolicy};
use switchboard::ports::StoreError;
use switchboard::registry::{ApiKeyRecord, BedrockAgent, Connection, KeyHash};
use switchboard::secrets::SecretValue;
use switchboard::{BedrockAgentRef, Channel, ConnectionId, OrgId, VoicePlatform};
use switchboard_tests::{Tables, embedded_tables, moto_tables};

use crate::fixtures::{booking_service, demo_on};

struct Expect {
    file: &'static str,
    status: u16,
    check: fn(&Value),
}

const EXPECTED: &[Expect] = &[
    Expect {
        file: "translation-bad-language.json",
        status: 422,
        check: |b| {
            // A language name, not a code: refused before Amazon Translate is asked.
            assert_eq!(b["error"]["details"][0]["path"], "/targetLanguage", "{b}");
        },
    },
    Expect {
        file: "sms-reminder-too-soon.json",
        status: 422,
        check: |b| {
            // Its reminder would go out in the past: refused before anything is scheduled.
            assert_eq!(b["error"]["details"][0]["path"], "/appointmentTime", "{b}");
        },
    },
    Expect {
        file: "zoom-past-start.json",
        status: 422,
        check: |b| {
            // A start in the past: refused before Zoom is asked.
            assert_eq!(b["error"]["details"][0]["path"], "/startTime", "{b}");
        },
    },
    Expect {
        file: "salesforce-crm-no-contact.json",
        status: 422,
        check: |b| {
            // Neither an email address nor a phone number: refused before Salesforce is asked.
            assert_eq!(b["error"]["details"][0]["path"], "/email", "{b}");
        },
    },
    Expect {
        file: "google-calendar-closed-day.json",
        status: 200,
        check: |b| {
            // A Saturday: closed, answered from the office hours without calling Google.
            assert_eq!(b["result"]["closed"], true, "{b}");
            assert_eq!(b["result"]["slots"], json!([]));
        },
    },
    Expect {
        file: "google-calendar-outside-hours.json",
        status: 422,
        check: |b| {
            assert_eq!(b["error"]["details"][0]["path"], "/start", "{b}");
        },
    },
    Expect {
        file: "sms-send-text.json",
        status: 200,
        check: |b| {
            // Prism answers with the document's example message; the request passed its
            // validation against Twilio's published schema.
            let sid = b["result"]["messageSid"].as_str().unwrap_or_default();
            assert!(sid.starts_with("SM") && sid.len() == 34, "{b}");
            assert_eq!(b["result"]["to"], "+15558675310");
        },
    },
    Expect {
        file: "sms-status-callback.json",
        status: 200,
        check: |b| {
            // Twilio's form, verified over the rebuilt public URL, runs the webhook function.
            assert_eq!(b["result"]["status"], "undelivered", "{b}");
            assert_eq!(b["result"]["errorCode"], "30003", "{b}");
        },
    },
    Expect {
        file: "sms-status-callback-forged.json",
        status: 401,
        check: |b| {
            // The same signature over a status changed on the way.
            let message = b["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.contains("twilio signature did not verify"),
                "{message}"
            );
        },
    },
    Expect {
        file: "sms-no-number.json",
        status: 422,
        check: |b| {
            assert_eq!(b["error"]["details"][0]["path"], "/to", "{b}");
        },
    },
    Expect {
        file: "booking-create-appointment.json",
        status: 200,
        check: |b| {
            assert_eq!(b["success"], true);
            let apt = &b["result"];
            assert_eq!(apt["AptDateTime"], "2027-06-01 10:00:00");
            assert_eq!(apt["AptStatus"], "Scheduled");
            assert_eq!(
                (apt["PatNum"].as_i64(), apt["ProvNum"].as_i64()),
                (Some(1), Some(1))
            );
            assert!(apt["AptNum"].as_i64().is_some(), "{apt}");
            assert!(
                apt["Op"].as_i64().is_some(),
                "an operatory is assigned: {apt}"
            );
        },
    },
    Expect {
        file: "booking-validation-failure.json",
        status: 422,
        check: |b| {
            assert_eq!(b["error"]["code"], "validation_failed");
            let paths: Vec<&str> = b["error"]["details"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["path"].as_str())
                .collect();
            for p in ["/AptDateTime", "/PatNum", "/ProvNum"] {
                assert!(paths.contains(&p), "{p} missing from {paths:?}");
            }
            assert_eq!(paths.len(), 3, "one entry per failing pointer: {paths:?}");
        },
    },
    Expect {
        file: "booking-unknown-function.json",
        status: 404,
        check: |b| {
            assert_eq!(b["error"]["code"], "unknown_function");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("CreateAppointment")
            );
        },
    },
    Expect {
        file: "booking-disabled-plugin.json",
        status: 403,
        check: |b| {
            assert_eq!(b["error"]["code"], "plugin_not_enabled");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("disabled")
            );
        },
    },
    Expect {
        file: "booking-legacy-route.json",
        status: 200,
        check: |b| {
            let found = b["result"]["patients"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(found.len(), 1, "{b}");
            assert_eq!(found[0]["PatNum"], 1);
            assert_eq!(found[0]["LName"], "Rivera");
        },
    },
    Expect {
        file: "agent-builder-twilio-openai.json",
        status: 200,
        check: |b| {
            assert_eq!(
                (b["format"].as_str(), b["channel"].as_str()),
                (Some("openai"), Some("twilio"))
            );
            let tools = b["tools"].as_array().cloned().unwrap_or_default();
            let names: Vec<&str> = tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect();
            for n in ["CreateAppointment", "CreateTicket", "CreateLead"] {
                assert!(names.contains(&n), "{n} missing from {names:?}");
            }
            assert!(tools.iter().all(|t| t["type"] == "function"));
        },
    },
    Expect {
        file: "booking-retell-custom-function.json",
        status: 200,
        check: |b| {
            let found = b["result"]["patients"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(found.len(), 1, "{b}");
            assert_eq!(found[0]["LName"], "Rivera");
        },
    },
    Expect {
        file: "booking-vapi-tool-calls.json",
        status: 200,
        check: |b| {
            let results = b["results"].as_array().cloned().unwrap_or_default();
            assert_eq!(results.len(), 2, "{b}");
            assert_eq!(results[0]["toolCallId"], "call_1");
            let text = results[0]["result"].as_str().unwrap_or("");
            assert!(!text.contains('\n') && text.contains("Dr. Lee"), "{text}");
            assert_eq!(results[1]["toolCallId"], "call_2");
            assert!(
                results[1]["error"].as_str().unwrap_or("").contains("999"),
                "{b}"
            );
        },
    },
    Expect {
        file: "authorizer-valid-key.json",
        status: 200,
        check: |b| {
            assert_eq!(b["isAuthorized"], true, "{b}");
            assert_eq!(b["context"]["orgId"], "demo-dental");
            assert_eq!(b["context"]["scopes"], "plugins:call agents:read");
            assert_eq!(b["context"]["channel"], "twilio", "the key is bound");
            assert_eq!(b["context"]["keyId"], KeyHash::of(EVENT_KEY).id(), "{b}");
        },
    },
    Expect {
        file: "authorizer-unknown-key.json",
        status: 200,
        check: |b| assert_eq!(b, &serde_json::json!({"isAuthorized": false})),
    },
    Expect {
        file: "admin-list-plugins.json",
        status: 200,
        check: |b| {
            let names: Vec<&str> = b["result"]["plugins"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str())
                .collect();
            for n in ["booking", "crm", "support"] {
                assert!(names.contains(&n), "{n} missing from {names:?}");
            }
        },
    },
    Expect {
        file: "admin-console-page.json",
        status: 200,
        check: |b| {
            let page = b.as_str().unwrap_or_default();
            assert!(
                page.contains(r#"<script src="/console/app.js" defer></script>"#),
                "{b}"
            );
        },
    },
    Expect {
        file: "admin-preview-channel.json",
        status: 200,
        check: |b| {
            let diff = &b["result"]["diff"];
            assert!(
                diff["tools"]["removed"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|t| t == "CreateLead")),
                "{b}"
            );
            assert_eq!(diff["tools"]["added"], serde_json::json!([]), "{b}");
        },
    },
    Expect {
        file: "admin-put-channel-stale-version.json",
        status: 409,
        check: |b| {
            assert_eq!(b["error"]["code"], "conflict");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("current version is 1"),
                "{b}"
            );
        },
    },
    Expect {
        file: "booking-channel-not-assigned.json",
        status: 403,
        check: |b| {
            assert_eq!(b["error"]["code"], "plugin_not_assigned", "{b}");
            let message = b["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains("'retell' channel"), "{message}");
        },
    },
    Expect {
        file: "booking-retell-signed.json",
        status: 200,
        check: |b| {
            // No phone in the arguments: the caller's number from the signed payload.
            let found = b["result"]["patients"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(found.len(), 1, "{b}");
            assert_eq!(found[0]["LName"], "Rivera");
        },
    },
    Expect {
        file: "booking-retell-bad-signature.json",
        status: 401,
        check: |b| {
            assert_eq!(b["error"]["code"], "unauthenticated", "{b}");
            let message = b["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.contains("does not match this connection's secret"),
                "{message}"
            );
        },
    },
    Expect {
        file: "booking-vapi-signed.json",
        status: 200,
        check: |b| {
            // A base64 body (as API Gateway may pass it) verified over its decoded bytes.
            let results = b["results"].as_array().cloned().unwrap_or_default();
            assert_eq!(results.len(), 1, "{b}");
            assert_eq!(results[0]["toolCallId"], "call_signed_1");
            let text = results[0]["result"].as_str().unwrap_or("");
            assert!(text.contains("Rivera"), "{text}");
        },
    },
    Expect {
        file: "mcp-tools-call.json",
        status: 200,
        check: |b| {
            assert_eq!(b["id"], 7, "{b}");
            let result = &b["result"];
            assert_eq!(result["isError"], false, "{b}");
            let apt = &result["structuredContent"];
            assert_eq!(apt["AptDateTime"], "2027-06-01 11:00:00", "{b}");
            let text = result["content"][0]["text"].as_str().unwrap_or_default();
            let parsed: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(&parsed, apt, "the text content is the same result");
        },
    },
    Expect {
        file: "booking-tool-call.json",
        status: 200,
        check: |b| {
            let slots = b["result"]["slots"].as_array();
            assert!(slots.is_some_and(|s| !s.is_empty()), "{b}");
        },
    },
    Expect {
        file: "booking-bedrock-create-appointment.json",
        status: 200,
        check: |b| {
            let response = &b["response"];
            assert_eq!(b["messageVersion"], "1.0");
            assert_eq!(
                (&response["actionGroup"], &response["function"]),
                (&json!("booking"), &json!("CreateAppointment"))
            );
            assert!(
                response["functionResponse"].get("responseState").is_none(),
                "{b}"
            );
            let text = response["functionResponse"]["responseBody"]["TEXT"]["body"]
                .as_str()
                .unwrap_or_default();
            let apt: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(apt["AptDateTime"], "2027-06-01 12:00:00", "{b}");
            // The session attributes go back as they came, and chose nothing.
            assert_eq!(b["sessionAttributes"]["orgId"], "someone-else");
        },
    },
    Expect {
        file: "booking-bedrock-unmapped-agent.json",
        status: 424,
        check: |b| {
            let response = &b["response"]["functionResponse"];
            assert_eq!(response["responseState"], "FAILURE", "{b}");
            let text = response["responseBody"]["TEXT"]["body"]
                .as_str()
                .unwrap_or_default();
            assert!(
                text.contains("NOTMAPPED1/TSTALIASID is not mapped"),
                "{text}"
            );
        },
    },
    Expect {
        file: "booking-no-tenant.json",
        status: 401,
        check: |b| assert_eq!(b["error"]["code"], "unauthenticated"),
    },
];

/// The API key `events/authorizer-valid-key.json` presents.
const EVENT_KEY: &str = "sb_test_authorizer_event_key";

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The connections the signed events name, and their credentials' secrets.
const EVENT_CONNECTIONS: [(&str, VoicePlatform, &str, &str); 2] = [
    (
        "cn_5e1ec7ed00000000000000000000a001",
        VoicePlatform::Retell,
        "retell-signing",
        "key_events_retell",
    ),
    (
        "cn_5e1ec7ed00000000000000000000b002",
        VoicePlatform::Vapi,
        "vapi-signing",
        "vapi_events_secret",
    ),
];

async fn run_all(tables: Tables) {
    let secrets = crate::fixtures::local_secrets();
    let demo = demo_on(tables, None, None, secrets.clone()).await;
    let mapping = BedrockAgent {
        agent: BedrockAgentRef::parse("SBAGENT001", "TSTALIASID").unwrap(),
        org: demo.org.clone(),
        channel: Channel::parse("twilio").unwrap(),
        created: 1_795_608_000,
    };
    match demo.platform.registry.create_bedrock_agent(&mapping).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    for (id, platform, credential, secret) in EVENT_CONNECTIONS {
        let value =
            serde_json::Map::from_iter([(platform.secret_field().to_owned(), Value::from(secret))]);
        secrets
            .store(&demo.org, credential, &SecretValue::new(value))
            .await
            .unwrap();
        let conn = Connection {
            id: ConnectionId::parse(id).unwrap(),
            org: demo.org.clone(),
            channel: Channel::parse("twilio").unwrap(),
            platform,
            credential: credential.into(),
            created: 1_795_608_000,
        };
        match demo.platform.registry.create_connection(&conn).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let service = Arc::new(booking_service(&demo.platform));
    let sms = crate::vendors::sms_events_org(&demo.platform, &secrets).await;
    let calendar = crate::vendors::calendar_events_org(&demo.platform).await;
    let salesforce = crate::vendors::salesforce_events_org(&demo.platform).await;
    let zoom = crate::vendors::zoom_events_org(&demo.platform).await;
    let translation = crate::vendors::translation_events_org(&demo.platform).await;
    let mcp = McpService::new(
        AgentBuilder::new(
            demo.platform.registry.clone(),
            std::time::Duration::from_secs(30),
        ),
        Arc::new(LocalInvoker::new(vec![service.clone()])),
        OriginPolicy::default(),
    );
    let agents = AgentService::new(
        AgentBuilder::new(
            demo.platform.registry.clone(),
            std::time::Duration::from_secs(30),
        ),
        ExportOptions {
            public_base_url: None,
        },
    );
    let authorizer = Authorizer::new(demo.platform.registry.clone(), KEY_CACHE_TTL);
    let admin = switchboard_tests::admin_service(
        demo.platform.registry.clone(),
        crate::fixtures::local_secrets(),
    );
    let record = ApiKeyRecord {
        org: OrgId::parse("demo-dental").unwrap(),
        scopes: vec!["plugins:call".into(), "agents:read".into()],
        created: 1_795_608_000,
        revoked: false,
        name: Some("events".into()),
        channel: Some(Channel::parse("twilio").unwrap()),
        rate_limit_per_second: None,
    };
    match demo
        .platform
        .registry
        .create_api_key(&KeyHash::of(EVENT_KEY), &record)
        .await
    {
        Ok(_) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    for e in EXPECTED {
        let text = std::fs::read_to_string(events_dir().join(e.file)).unwrap();
        if e.file.starts_with("authorizer") {
            // An authorizer event is not an HTTP request: it goes to the authorizer as JSON.
            let event: Value = serde_json::from_str(&text).unwrap();
            let body = authorizer.simple_response(&event).await.unwrap();
            (e.check)(&body);
            continue;
        }
        if e.file.contains("-bedrock-") {
            // Bedrock's action group event: JSON into the plugin function's event handling.
            let event: Value = serde_json::from_str(&text).unwrap();
            let reply = handle_event(&service, event, lambda_http::Context::default())
                .await
                .unwrap_or_else(|err| panic!("{}: {err}", e.file));
            let EventReply::Bedrock(body) = reply else {
                panic!("{}: not answered as Bedrock: {reply:?}", e.file)
            };
            // Bedrock's answer has no status: 200 stands for a result, 422 for REPROMPT,
            // 424 (failed dependency) for FAILURE.
            let state = body["response"]["functionResponse"]["responseState"].as_str();
            let status = match state {
                None => 200,
                Some("REPROMPT") => 422,
                Some(_) => 424,
            };
            assert_eq!(status, e.status, "{}: {body}", e.file);
            (e.check)(&body);
            continue;
        }
        if e.file.ends_with("tool-call.json") {
            // The MCP function's Invoke: JSON into the plugin function's event handling.
            let event: Value = serde_json::from_str(&text).unwrap();
            let reply = handle_event(&service, event, lambda_http::Context::default())
                .await
                .unwrap_or_else(|err| panic!("{}: {err}", e.file));
            let EventReply::ToolCall(out) = reply else {
                panic!("{}: answered as HTTP: {reply:?}", e.file)
            };
            assert_eq!(out.status, e.status, "{}: {}", e.file, out.body);
            (e.check)(&out.body);
            continue;
        }
        let req =
            lambda_http::request::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        let resp = if e.file.starts_with("agent-builder") {
            handle_agent(&agents, req).await
        } else if e.file.starts_with("admin") {
            handle_admin(&admin, req).await
        } else if e.file.starts_with("mcp") {
            handle_mcp(&mcp, req).await
        } else if e.file.starts_with("sms") {
            handle(&sms, req).await
        } else if e.file.starts_with("google-calendar") {
            handle(&calendar, req).await
        } else if e.file.starts_with("salesforce-crm") {
            handle(&salesforce, req).await
        } else if e.file.starts_with("zoom") {
            handle(&zoom, req).await
        } else if e.file.starts_with("translation") {
            handle(&translation, req).await
        } else {
            handle(&service, req).await
        };
        let status = resp.status().as_u16();
        // JSON, or the text of a console file.
        let body: Value = match resp.body() {
            lambda_http::Body::Text(t) => {
                serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone()))
            }
            other => panic!("{}: unexpected body {other:?}", e.file),
        };
        assert_eq!(status, e.status, "{}: {body}", e.file);
        (e.check)(&body);
    }
}

/// The key an event's authorizer context stands for: a fixed string per (org, scopes,
/// channel), so the context's `keyId` is reproducible.
fn event_key(org: &str, scopes: &str, channel: Option<&str>) -> String {
    format!(
        "sb_event_{org}_{}_{}",
        scopes.replace(' ', "+"),
        channel.unwrap_or("-")
    )
}

/// Every authorizer context in `events/` is exactly what the authorizer answers for a key
/// with that org, those scopes and that channel: the tests run on contexts production makes.
#[tokio::test]
async fn every_authorizer_context_is_the_authorizers_own() {
    let registry = switchboard::registry::Registry::new(embedded_tables().registry);
    let authorizer = Authorizer::new(registry.clone(), KEY_CACHE_TTL);
    let mut checked = 0;
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let path = entry.unwrap().path();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(context) = event.pointer("/requestContext/authorizer/lambda") else {
            continue;
        };
        let org = context["orgId"].as_str().unwrap_or_default();
        let scopes = context["scopes"].as_str().unwrap_or_default();
        let channel = context.get("channel").and_then(Value::as_str);
        let key = event_key(org, scopes, channel);
        let record = ApiKeyRecord {
            org: OrgId::parse(org).unwrap(),
            scopes: scopes.split(' ').map(str::to_owned).collect(),
            created: 1_795_608_000,
            revoked: false,
            name: None,
            channel: channel.map(|c| Channel::parse(c).unwrap()),
            rate_limit_per_second: None,
        };
        match registry.create_api_key(&KeyHash::of(&key), &record).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        let answer = authorizer
            .simple_response(
                &serde_json::json!({"headers": {"authorization": format!("Bearer {key}")}}),
            )
            .await
            .unwrap();
        assert_eq!(
            context,
            &answer["context"],
            "{}: the authorizer answers this context for such a key",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} events carry a context");
}

#[test]
fn every_event_file_has_an_expectation() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = EXPECTED.iter().map(|e| e.file.to_owned()).collect();
    expected.sort();
    assert_eq!(files, expected);
}

#[tokio::test]
async fn events_through_lambda_http_on_embedded() {
    run_all(embedded_tables()).await;
}

#[tokio::test]
async fn events_through_lambda_http_on_dynamodb() {
    run_all(moto_tables().await).await;
}
