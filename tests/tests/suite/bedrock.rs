//! Bedrock Agents action groups: the operator's mapping of agent aliases to an org and
//! channel (admin API, on both stores), and every demo function Bedrock can express, built
//! from the agent builder's `?format=bedrock` export, through its plugin function's handler.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard::admin::AdminRequest;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::auth::TenantContext;
use switchboard::lambda::{EventReply, handle_event};
use switchboard::pipeline::PluginService;
use switchboard::registry::BedrockAgent;
use switchboard::{BedrockAgentRef, Channel, OrgId};
use switchboard_tests::{Tables, embedded_tables, moto_tables};

use crate::fixtures::{demo_on, local_secrets};

fn operator() -> TenantContext {
    TenantContext::new(OrgId::parse("switchboard-operator").unwrap())
        .with_scopes(&["platform:orgs"])
}

fn org_admin(org: &str) -> TenantContext {
    TenantContext::new(OrgId::parse(org).unwrap()).with_scopes(&["admin:write"])
}

async fn mappings(tables: Tables, suffix: Option<&str>) {
    let demo = demo_on(tables, suffix, None, local_secrets()).await;
    let org = demo.org.as_str();
    let admin = switchboard_tests::admin_service(demo.platform.registry.clone(), local_secrets());
    let call = |tenant: TenantContext, method: &'static str, path: String, body: Value| {
        let admin = &admin;
        async move {
            let body = if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            };
            admin
                .handle(AdminRequest {
                    tenant: Some(tenant),
                    method,
                    path: &path,
                    if_match: None,
                    body: &body,
                    ..Default::default()
                })
                .await
        }
    };
    let agent_id = format!("AG{:08}", std::process::id() % 100_000_000);
    let new = |agent: &str, alias: &str, org: &str, channel: &str| json!({"agent_id": agent, "alias_id": alias, "org": org, "channel": channel});
    let path = "/admin/bedrock-agents".to_owned();

    // Only an operator maps: an org cannot claim an agent id.
    let (status, body) = call(
        org_admin(org),
        "POST",
        path.clone(),
        new(&agent_id, "TSTALIASID", org, "twilio"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    for (body, field) in [
        (new("short", "TSTALIASID", org, "twilio"), "/agent_id"),
        (new(&agent_id, "TST-ALIAS", org, "twilio"), "/alias_id"),
        (
            new(&agent_id, "TSTALIASID", "no-such-org", "twilio"),
            "/org",
        ),
        (new(&agent_id, "TSTALIASID", org, "fax"), "/channel"),
    ] {
        let (status, b) = call(operator(), "POST", path.clone(), body).await;
        assert_eq!(
            (status, b["error"]["details"][0]["path"].as_str()),
            (422, Some(field)),
            "{b}"
        );
    }
    let (status, created) = call(
        operator(),
        "POST",
        path.clone(),
        new(&agent_id, "TSTALIASID", org, "twilio"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["result"]["org"], org);
    let (status, again) = call(
        operator(),
        "POST",
        path.clone(),
        new(&agent_id, "TSTALIASID", org, "web"),
    )
    .await;
    assert_eq!(status, 409, "{again}");

    // The org reads its own; another org sees nothing of it.
    let (status, list) = call(org_admin(org), "GET", path.clone(), Value::Null).await;
    assert_eq!(status, 200, "{list}");
    let ours = list["result"]["bedrock_agents"].as_array().unwrap();
    assert!(
        ours.iter().any(|m| m["agent_id"] == agent_id.as_str()),
        "{list}"
    );
    let (_, other) = call(org_admin("demo-paused"), "GET", path.clone(), Value::Null).await;
    assert_eq!(other["result"]["bedrock_agents"], json!([]), "{other}");
    let one = format!("{path}/{agent_id}/TSTALIASID");
    let (status, _) = call(org_admin("demo-paused"), "GET", one.clone(), Value::Null).await;
    assert_eq!(status, 404);
    let (status, mine) = call(org_admin(org), "GET", one.clone(), Value::Null).await;
    assert_eq!(
        (status, &mine["result"]["channel"]),
        (200, &json!("twilio")),
        "{mine}"
    );
    let (status, _) = call(org_admin(org), "DELETE", one.clone(), Value::Null).await;
    assert_eq!(status, 403, "an org cannot unmap either");

    let (status, gone) = call(operator(), "DELETE", one.clone(), Value::Null).await;
    assert_eq!(status, 200, "{gone}");
    let agent = BedrockAgentRef::parse(&agent_id, "TSTALIASID").unwrap();
    assert_eq!(
        demo.platform
            .registry
            .get_bedrock_agent(&agent)
            .await
            .unwrap(),
        None
    );
    let (status, _) = call(operator(), "DELETE", one.clone(), Value::Null).await;
    assert_eq!(status, 404);
    let (status, list) = call(org_admin(org), "GET", path.clone(), Value::Null).await;
    assert_eq!(status, 200);
    assert!(
        !list.to_string().contains(&agent_id),
        "the index entry went too: {list}"
    );
    let (status, b) = call(operator(), "GET", format!("{path}/x/y"), Value::Null).await;
    assert_eq!(status, 400, "{b}");
}

#[tokio::test]
async fn operators_map_bedrock_agents_on_embedded() {
    mappings(embedded_tables(), None).await;
}

#[tokio::test]
async fn operators_map_bedrock_agents_on_dynamodb() {
    // An org of its own: the demo org on the shared moto tables is the events test's.
    let suffix = switchboard_tests::unique("bedrock");
    mappings(moto_tables().await, Some(&suffix)).await;
}

/// A Bedrock event as the service sends it: every value a string.
fn event(agent: &str, group: &str, function: &str, params: &[(String, String, String)]) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, kind, value)| json!({"name": name, "type": kind, "value": value}))
        .collect();
    json!({
        "messageVersion": "1.0",
        "agent": {"name": "receptionist", "id": agent, "alias": "TSTALIASID", "version": "DRAFT"},
        "inputText": "…", "sessionId": "bedrock-session-1",
        "actionGroup": group, "function": function, "parameters": parameters,
        "sessionAttributes": {}, "promptSessionAttributes": {"turn": "3"},
    })
}

fn as_bedrock_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn run(service: &PluginService, event: Value) -> Value {
    match handle_event(service, event, lambda_http::Context::default()).await {
        Ok(EventReply::Bedrock(reply)) => reply,
        other => panic!("not a Bedrock reply: {other:?}"),
    }
}

fn state(reply: &Value) -> &str {
    reply["response"]["functionResponse"]["responseState"]
        .as_str()
        .unwrap_or("OK")
}

fn text(reply: &Value) -> &str {
    reply["response"]["functionResponse"]["responseBody"]["TEXT"]["body"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn every_exported_function_runs_through_its_plugin_function() {
    let demo = demo_on(embedded_tables(), None, None, local_secrets()).await;
    let registry = demo.platform.registry.clone();
    for (agent, channel) in [("SBAGENT001", "twilio"), ("SBAGENT002", "web")] {
        registry
            .create_bedrock_agent(&BedrockAgent {
                agent: BedrockAgentRef::parse(agent, "TSTALIASID").unwrap(),
                org: demo.org.clone(),
                channel: Channel::parse(channel).unwrap(),
                created: 1_795_608_000,
            })
            .await
            .unwrap();
    }
    let services: Vec<Arc<PluginService>> = switchboard_cli::dev::plugins()
        .unwrap()
        .into_iter()
        .map(|p| Arc::new(PluginService::new(p, demo.platform.clone())))
        .collect();
    let service = |plugin: &str| {
        services
            .iter()
            .find(|s| s.plugin().name().as_str() == plugin)
            .unwrap()
            .clone()
    };
    let agents = AgentService::new(
        AgentBuilder::new(registry.clone(), std::time::Duration::from_secs(30)),
        ExportOptions::default(),
    );
    let tenant = TenantContext::new(demo.org.clone()).with_scopes(&["agents:read"]);
    let (status, export) = agents
        .get(Some(tenant), "twilio", Some("bedrock"), "t")
        .await;
    assert_eq!(status, 200, "{export}");

    // Each function of each action group, with its manifest's first example as Bedrock
    // would send it: typed by the export, every value a string.
    let mut ran = 0;
    let mut succeeded = Vec::new();
    for group in export["actionGroups"].as_array().unwrap() {
        let plugin = group["plugin"].as_str().unwrap();
        let svc = service(plugin);
        for f in group["functionSchema"]["functions"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            let def = svc.plugin().manifest().function(name).unwrap();
            let example = def.examples.first().cloned().unwrap_or(json!({}));
            let params: Vec<(String, String, String)> = example
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let kind = f["parameters"][k]["type"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}.{k} is not exported"));
                    (k.clone(), kind.to_owned(), as_bedrock_string(v))
                })
                .collect();
            let reply = run(&svc, event("SBAGENT001", plugin, name, &params)).await;
            assert_eq!(reply["messageVersion"], "1.0");
            assert_eq!(
                (
                    reply["response"]["actionGroup"].as_str(),
                    reply["response"]["function"].as_str()
                ),
                (Some(plugin), Some(name))
            );
            assert_eq!(reply["promptSessionAttributes"], json!({"turn": "3"}));
            // Examples name records and dates of their own: a refusal the model can act on
            // (REPROMPT) is fine; a FAILURE would mean the event itself did not work.
            assert_ne!(state(&reply), "FAILURE", "{plugin}.{name}: {reply}");
            if state(&reply) == "OK" {
                succeeded.push(name.to_owned());
            }
            ran += 1;
        }
    }
    let exportable = export["functionSchema"]["functions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(ran, exportable, "every exported function ran");
    assert!(
        ran >= 15,
        "only {ran} functions are exportable: {}",
        export["notExportable"]
    );
    for read in [
        "GetPatient",
        "SearchPatients",
        "GetProviders",
        "GetLeadsByStatus",
        "ListTickets",
    ] {
        assert!(
            succeeded.iter().any(|s| s == read),
            "{read} did not succeed: {succeeded:?}"
        );
    }

    // A booking, then the same slot again: the conflict is the model's to act on.
    let booking = service("booking");
    let p =
        |v: [(&str, &str, &str); 3]| v.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    let book = p([
        ("PatNum", "integer", "1"),
        ("ProvNum", "integer", "1"),
        ("AptDateTime", "string", "2027-06-07 09:30"),
    ]);
    let first = run(
        &booking,
        event("SBAGENT001", "booking", "CreateAppointment", &book),
    )
    .await;
    assert_eq!(state(&first), "OK", "{first}");
    let apt: Value = serde_json::from_str(text(&first)).unwrap();
    assert_eq!(apt["AptDateTime"], "2027-06-07 09:30:00");
    let again = run(
        &booking,
        event("SBAGENT001", "booking", "CreateAppointment", &book),
    )
    .await;
    assert_eq!(state(&again), "REPROMPT", "{again}");
    assert!(text(&again).contains("already booked"), "{again}");
    // A string that is not what the schema types: named, for the model to fix.
    let bad = p([
        ("PatNum", "integer", "one"),
        ("ProvNum", "integer", "1"),
        ("AptDateTime", "string", "2027-06-07 10:30"),
    ]);
    let refused = run(
        &booking,
        event("SBAGENT001", "booking", "CreateAppointment", &bad),
    )
    .await;
    assert_eq!(state(&refused), "REPROMPT", "{refused}");
    assert!(
        text(&refused).contains("parameter 'PatNum': 'one' is not a whole number"),
        "{refused}"
    );

    // The mapping's channel decides what the agent reaches: crm is not assigned on web.
    let leads = [("status".to_owned(), "string".to_owned(), "new".to_owned())];
    let crm = run(
        &service("crm"),
        event("SBAGENT002", "crm", "GetLeadsByStatus", &leads),
    )
    .await;
    assert_eq!(state(&crm), "FAILURE", "{crm}");
    assert!(text(&crm).contains("'web' channel"), "{crm}");

    // An unmapped agent is refused and writes nothing; session attributes choose nothing.
    let mut unmapped = event(
        "NOTMAPPED1",
        "booking",
        "CreateAppointment",
        &p([
            ("PatNum", "integer", "1"),
            ("ProvNum", "integer", "1"),
            ("AptDateTime", "string", "2027-06-07 11:30"),
        ]),
    );
    unmapped["sessionAttributes"] = json!({"orgId": "demo-dental", "channel": "twilio"});
    let reply = run(&booking, unmapped).await;
    assert_eq!(state(&reply), "FAILURE", "{reply}");
    let list = [("PatNum".to_owned(), "integer".to_owned(), "1".to_owned())];
    let appointments = run(
        &booking,
        event("SBAGENT001", "booking", "GetAppointments", &list),
    )
    .await;
    assert_eq!(state(&appointments), "OK", "{appointments}");
    assert!(
        !text(&appointments).contains("2027-06-07 11:30"),
        "the unmapped agent's booking was not made: {appointments}"
    );
    assert!(
        text(&appointments).contains("2027-06-07 09:30"),
        "{appointments}"
    );

    // The mapping is read on every call: unmapped, the alias is refused at once; mapped to
    // another organization, it runs as that one at once (demo-paused has no twilio channel).
    let third = BedrockAgentRef::parse("SBAGENT003", "TSTALIASID").unwrap();
    let map_to = |org: &str| BedrockAgent {
        agent: third.clone(),
        org: OrgId::parse(org).unwrap(),
        channel: Channel::parse("twilio").unwrap(),
        created: 1_795_608_000,
    };
    registry
        .create_bedrock_agent(&map_to(demo.org.as_str()))
        .await
        .unwrap();
    let providers = event("SBAGENT003", "booking", "GetProviders", &[]);
    assert_eq!(state(&run(&booking, providers.clone()).await), "OK");
    registry.delete_bedrock_agent(&third).await.unwrap();
    let gone = run(&booking, providers.clone()).await;
    assert!(text(&gone).contains("is not mapped"), "{gone}");
    registry
        .create_bedrock_agent(&map_to("demo-paused"))
        .await
        .unwrap();
    let moved = run(&booking, providers).await;
    assert_eq!(state(&moved), "FAILURE", "{moved}");
    assert!(
        text(&moved).contains("'twilio' channel, which is not configured"),
        "{moved}"
    );

    // An OpenAPI action group's event is refused in its own shape.
    let mut openapi = event("SBAGENT001", "booking", "GetProviders", &[]);
    openapi["apiPath"] = json!("/providers");
    openapi["httpMethod"] = json!("GET");
    let reply = run(&booking, openapi).await;
    assert_eq!(
        (
            &reply["response"]["apiPath"],
            &reply["response"]["httpStatusCode"]
        ),
        (&json!("/providers"), &json!(400)),
        "{reply}"
    );
    assert!(reply.to_string().contains("function details"), "{reply}");
    // Null parameters and attributes are none.
    let mut nulls = event("SBAGENT001", "booking", "GetProviders", &[]);
    nulls["parameters"] = Value::Null;
    nulls["sessionAttributes"] = Value::Null;
    let reply = run(&booking, nulls).await;
    assert_eq!(state(&reply), "OK", "{reply}");
    assert_eq!(reply["sessionAttributes"], json!({}));

    // A malformed event is still answered in Bedrock's format.
    let reply = run(
        &booking,
        json!({"messageVersion": "1.0", "actionGroup": "booking", "function": "GetProviders"}),
    )
    .await;
    assert_eq!(state(&reply), "FAILURE", "{reply}");
    assert_eq!(reply["response"]["function"], "GetProviders");
    let reply = run(&booking, {
        let mut e = event("SBAGENT001", "booking", "GetProviders", &[]);
        e["messageVersion"] = json!("2.0");
        e
    })
    .await;
    assert_eq!(state(&reply), "FAILURE", "{reply}");
}
