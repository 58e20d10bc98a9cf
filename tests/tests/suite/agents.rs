//! The agent builder: which plugins, instructions, tool names, skipped assignments, and the
//! round trips a build costs, counted at the SDK against moto.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::agent::INSTRUCTION_SEPARATOR;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::{ExportOptions, Format, strict_rule_violations};
use switchboard::agent::service::AgentService;
use switchboard::auth::TenantContext;
use switchboard::manifest::{CompiledManifest, compile};
use switchboard::pipeline::{CallInput, PluginService};
use switchboard::registry::{Assignment, ChannelConfig, OrgProfile, PluginInstance, Registry};
use switchboard::{Channel, OrgId, PluginName};
use switchboard_tests::{counted_moto_registry, embedded_tables, unique};

use crate::fixtures::demo;

fn manifest(name: &str, functions: &[&str], template: &str) -> switchboard::manifest::Manifest {
    let functions: Vec<Value> = functions
        .iter()
        .map(|f| json!({"name": f, "description": format!("{f} in {name}"), "side_effects": false, "parameters": {"type": "object"}}))
        .collect();
    let m = json!({"name": name, "version": "1.0.0", "display_name": name, "description": "test plugin",
        "instruction_template": template, "functions": functions,
        "config_schema": {"type": "object"}, "default_config": {"greeting": "hello"}});
    CompiledManifest::from_value(m).unwrap().manifest().clone()
}

/// An org with `plugins` published, instances enabled, and all assigned to `twilio` with
/// priority = position.
async fn org_with(registry: &Registry, plugins: &[switchboard::manifest::Manifest]) -> OrgId {
    let org = OrgId::parse(unique("agents")).unwrap();
    let profile = OrgProfile {
        display_name: "Acme Clinic".into(),
        ..Default::default()
    };
    registry.put_profile(&org, &profile, None).await.unwrap();
    let mut assignments = Vec::new();
    for (i, m) in plugins.iter().enumerate() {
        registry.publish_manifest(m).await.unwrap();
        let inst = PluginInstance {
            plugin: m.name.clone(),
            enabled: true,
            pinned_version: m.version.clone(),
            config: json!({}),
            data_adapter: Default::default(),
        };
        registry.put_instance(&org, &inst, None).await.unwrap();
        assignments.push(Assignment {
            plugin: m.name.clone(),
            enabled: true,
            priority: i as i64,
            data_adapter: None,
        });
    }
    let chan = ChannelConfig {
        locale: None,
        instructions: None,
        plugin_assignments: assignments,
    };
    registry
        .put_channel(&org, &Channel::parse("twilio").unwrap(), &chan, None)
        .await
        .unwrap();
    org
}

#[tokio::test]
async fn a_build_costs_two_round_trips_for_1_10_and_50_plugins() {
    let (table, counter) = counted_moto_registry().await;
    let registry = Registry::new(table);
    let twilio = Channel::parse("twilio").unwrap();
    for n in [1usize, 10, 50] {
        let tag = unique("rt");
        let plugins: Vec<_> = (0..n)
            .map(|i| {
                manifest(
                    &format!("p{i}-{tag}"),
                    &["Ping"],
                    "Plugin {{ config.greeting }}",
                )
            })
            .collect();
        let org = org_with(&registry, &plugins).await;
        let builder = AgentBuilder::new(registry.clone(), Duration::from_secs(30));
        counter.reset();
        let agent = builder.build(&org, &twilio).await.unwrap();
        assert_eq!(agent.tools.len(), n);
        let mut ops = counter.operations();
        ops.sort();
        assert_eq!(ops, vec!["BatchGetItem", "Query"], "{n} plugins");
        counter.reset();
        builder.build(&org, &twilio).await.unwrap();
        assert!(
            counter.operations().is_empty(),
            "a warm build is served from the cache"
        );
    }
}

#[tokio::test]
async fn assembly_orders_skips_renders_and_qualifies() {
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let alpha = manifest(
        "alpha",
        &["Lookup", "Book"],
        "Alpha for {{ org.display_name }} on {{ channel }}",
    );
    let beta = manifest(
        "beta",
        &["Lookup", "Escalate"],
        "Beta says {{ config.greeting }}",
    );
    let org = org_with(&registry, &[beta.clone(), alpha.clone()]).await;
    // Priorities: beta 0, alpha 1; add a disabled instance, a missing instance and an
    // assignment whose manifest was never published.
    let gamma = manifest("gamma", &["Ping"], "");
    let ghost = PluginName::parse("ghost").unwrap();
    let unpublished = PluginName::parse("unpublished").unwrap();
    registry
        .put_instance(
            &org,
            &PluginInstance {
                plugin: gamma.name.clone(),
                enabled: false,
                pinned_version: "1.0.0".into(),
                config: json!({}),
                data_adapter: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    registry.publish_manifest(&gamma).await.unwrap();
    registry
        .put_instance(
            &org,
            &PluginInstance {
                plugin: unpublished.clone(),
                enabled: true,
                pinned_version: "3.0.0".into(),
                config: json!({}),
                data_adapter: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    let twilio = Channel::parse("twilio").unwrap();
    let mut chan = registry.get_channel(&org, &twilio).await.unwrap().unwrap();
    for (p, prio) in [(&gamma.name, 5), (&ghost, 6), (&unpublished, 7)] {
        chan.value.plugin_assignments.push(Assignment {
            plugin: p.clone(),
            enabled: true,
            priority: prio,
            data_adapter: None,
        });
    }
    registry
        .put_channel(&org, &twilio, &chan.value, Some(chan.version))
        .await
        .unwrap();

    let builder = AgentBuilder::new(registry.clone(), Duration::ZERO);
    let agent = builder.build(&org, &twilio).await.unwrap();
    let names: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["beta_Lookup", "Escalate", "alpha_Lookup", "Book"]);
    assert_eq!(
        agent.instructions,
        format!("Beta says hello{INSTRUCTION_SEPARATOR}Alpha for Acme Clinic on twilio")
    );
    let skipped: Vec<(String, String)> = agent
        .skipped
        .iter()
        .map(|s| (s.plugin.to_string(), s.reason.clone()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped[0].0 == "gamma" && skipped[0].1.contains("disabled"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].0 == "ghost" && skipped[1].1.contains("no instance"),
        "{skipped:?}"
    );
    assert!(
        skipped[2].0 == "unpublished" && skipped[2].1.contains("no manifest"),
        "{skipped:?}"
    );
    let json = agent.to_json();
    assert_eq!(json["routing"]["beta_Lookup"]["plugin"], "beta");
    assert_eq!(json["routing"]["Book"]["route"], "/plugins/alpha");
    assert_eq!(
        json["routing"]["Book"]["data_adapter"], "dynamodb",
        "the type only, never its settings"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_4xx() {
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let broken = manifest("broken", &["Ping"], "Hello {{ org.display_name ");
    let org = org_with(&registry, &[broken]).await;
    let service = AgentService::new(
        AgentBuilder::new(registry, Duration::ZERO),
        ExportOptions {
            public_base_url: None,
        },
    );
    let tenant = || Some(TenantContext::new(org.clone()).with_scopes(&["agents:read"]));

    let (status, body) = service.get(tenant(), "whatsapp", None, "t").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_channel")),
        "{body}"
    );

    let (status, body) = service.get(tenant(), "twilio", Some("gemini"), "t").await;
    assert_eq!(status, 400, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or("");
    for f in Format::ALL {
        assert!(msg.contains(f), "{f} missing from {msg}");
    }

    let (status, body) = service.get(tenant(), "twilio", None, "t").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("broken"),
        "{body}"
    );

    let (status, _) = service.get(None, "twilio", None, "t").await;
    assert_eq!(status, 401);
    let (status, body) = service
        .get(
            Some(TenantContext::new(org.clone()).with_scopes(&["plugins:call"])),
            "twilio",
            None,
            "t",
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
}

#[tokio::test]
async fn the_demo_twilio_agent_has_all_three_plugins_in_every_format() {
    let demo = demo(embedded_tables(), None).await;
    let service = AgentService::new(
        AgentBuilder::new(demo.platform.registry.clone(), Duration::from_secs(30)),
        ExportOptions {
            public_base_url: Some("https://api.example.com".into()),
        },
    );
    let tenant = || Some(TenantContext::new(demo.org.clone()).with_scopes(&["agents:read"]));
    let (status, agent) = service.get(tenant(), "twilio", None, "t").await;
    assert_eq!(status, 200, "{agent}");
    let mut plugins: Vec<&str> = agent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["plugin"].as_str())
        .collect();
    plugins.dedup();
    assert_eq!(
        plugins,
        ["booking", "support", "crm"],
        "priority order 1, 2, 3"
    );
    assert_eq!(
        agent["instructions"]
            .as_str()
            .unwrap()
            .matches(INSTRUCTION_SEPARATOR)
            .count(),
        2
    );
    assert!(
        agent["instructions"]
            .as_str()
            .unwrap()
            .contains("Bright Smile Dental")
    );

    let total = agent["tools"].as_array().map_or(0, Vec::len);
    for f in Format::ALL {
        let (status, body) = service.get(tenant(), "twilio", Some(f), "t").await;
        assert_eq!(status, 200, "{f}: {body}");
        assert_eq!(body["format"], f, "{body}");
        let exported = if f == "bedrock" {
            body["functionSchema"]["functions"]
                .as_array()
                .map_or(0, Vec::len)
                + body["notExportable"].as_array().map_or(0, Vec::len)
        } else {
            body["tools"].as_array().map_or(0, Vec::len)
        };
        assert_eq!(exported, total, "{f}: every tool is exported or reported");
    }

    let (status, web) = service.get(tenant(), "web", None, "t").await;
    assert_eq!(status, 200, "{web}");
    assert!(
        web["instructions"]
            .as_str()
            .unwrap()
            .starts_with("You are the web chat assistant")
    );
    let web_tools = web["tools"].as_array().cloned().unwrap_or_default();
    assert!(!web_tools.is_empty());
    assert!(web_tools.iter().all(|t| t["plugin"] == "booking"), "{web}");
}

/// Every name the builder emits — declared, `<plugin>_<function>`, the hashed form of a
/// qualified name that collides or is over 64 characters — reaches its function through the
/// plugin's own route (the pipeline, with a handler that answers its function's name).
#[tokio::test]
async fn every_tool_name_resolves_on_its_plugin_route() {
    use std::sync::Arc;
    use switchboard::pipeline::{CallInput, Platform, PluginService};
    use switchboard::{CallContext, Error, Plugin};

    let long = "l".repeat(40);
    let long_fn = "F".repeat(40);
    let specs: Vec<(String, Vec<String>)> = vec![
        // "a_b" + "c" and "a" + "b_c" both qualify to "a_b_c".
        ("a_b".into(), vec!["c".into(), "Get".into()]),
        ("a".into(), vec!["b_c".into(), "Get".into()]),
        // Declares "a_Get", the qualified name of a's Get.
        ("x".into(), vec!["a_Get".into(), "c".into()]),
        // Over 64 characters once qualified.
        (long.clone(), vec![long_fn.clone(), "Get".into()]),
        ("y".into(), vec![long_fn.clone(), "Unique".into()]),
        // Makes "b_c" collide too: a's b_c and a_b's c then both qualify to "a_b_c".
        ("z".into(), vec!["b_c".into()]),
    ];
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let manifests: Vec<_> = specs
        .iter()
        .map(|(p, fs)| {
            let fs: Vec<&str> = fs.iter().map(String::as_str).collect();
            manifest(p, &fs, "")
        })
        .collect();
    let org = org_with(&registry, &manifests).await;
    let agent = AgentBuilder::new(registry.clone(), Duration::ZERO)
        .build(&org, &Channel::parse("twilio").unwrap())
        .await
        .unwrap();
    assert_eq!(agent.tools.len(), 11, "{:?}", agent.skipped);
    let names: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.iter().all(|n| n.len() <= 64), "{names:?}");
    let unique_names: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(unique_names.len(), names.len(), "{names:?}");
    assert!(
        names.contains(&"Unique") && names.contains(&"a_Get"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"a_b_c"),
        "a colliding qualified name is hashed: {names:?}"
    );

    async fn answer(ctx: CallContext, _: serde_json::Value) -> Result<String, Error> {
        Ok(ctx.function.to_string())
    }
    let platform = Arc::new(Platform::new(
        registry,
        Arc::new(switchboard::data::BuiltinData::new(tables.data.clone())),
        tables.data,
        Duration::ZERO,
    ));
    for m in &manifests {
        let text = serde_json::to_string(m).unwrap();
        let plugin = m
            .functions
            .iter()
            .fold(Plugin::builder(&text), |b, f| {
                b.handler(f.name.as_str(), answer)
            })
            .build()
            .unwrap();
        let service = PluginService::new(plugin, platform.clone());
        for tool in agent.tools.iter().filter(|t| t.plugin == m.name) {
            let body = json!({"function": tool.name, "parameters": {}}).to_string();
            let (status, resp) = service
                .call(CallInput {
                    tenant: Some(TenantContext::new(org.clone()).with_scopes(&["plugins:call"])),
                    body: body.as_bytes(),
                    request_id: "t",
                    idempotency_key: None,
                })
                .await;
            assert_eq!(status, 200, "{} on {}: {resp}", tool.name, tool.route);
            assert_eq!(resp["result"], tool.function.as_str(), "{}", tool.name);
        }
    }
}

/// String-length constraints of `schema` (recursively through object properties): the
/// pointer of each constrained string, and a value strict mode lets through that the
/// declared schema refuses.
fn relaxed_violations(schema: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        let here = format!("{at}/{name}");
        if let Some(max) = prop.get("maxLength").and_then(Value::as_u64) {
            out.push((here.clone(), json!("x".repeat(max as usize + 1))));
        }
        if prop.get("minLength").and_then(Value::as_u64).unwrap_or(0) > 0 {
            out.push((here.clone(), json!("")));
        }
        relaxed_violations(prop, &here, out);
    }
}

/// `value` at `pointer` (`/a/b`) inside otherwise empty objects.
fn nested(pointer: &str, value: Value) -> Value {
    pointer
        .rsplit('/')
        .filter(|s| !s.is_empty())
        .fold(value, |inner, name| json!({ name: inner }))
}

/// The target: every tool of the demo twilio agent is strict in the OpenAI exports,
/// and what strict mode cannot say (string lengths, defaults) is in the description while the
/// server still refuses it: a value the lowered schema accepts and the declared one does not
/// gets a 422 naming the field, through the real pipeline.
#[tokio::test]
async fn the_demo_agent_is_strict_and_the_server_keeps_what_strict_mode_cannot_say() {
    let demo = demo(embedded_tables(), None).await;
    let agents = AgentService::new(
        AgentBuilder::new(demo.platform.registry.clone(), Duration::from_secs(30)),
        ExportOptions::default(),
    );
    let tenant = TenantContext::new(demo.org.clone()).with_scopes(&["agents:read", "plugins:call"]);
    for format in ["openai", "openai-responses"] {
        let (status, body) = agents
            .get(Some(tenant.clone()), "twilio", Some(format), "t")
            .await;
        assert_eq!(status, 200, "{body}");
        let tools = body["tools"].as_array().cloned().unwrap_or_default();
        assert_eq!(tools.len(), 20, "{format}");
        let strict = |t: &Value| t.get("function").unwrap_or(t)["strict"] == true;
        assert_eq!(
            tools.iter().filter(|t| strict(t)).count(),
            20,
            "{format}: {body}"
        );
        assert_eq!(body["warnings"], json!([]), "{format}");
        for t in &tools {
            let t = t.get("function").unwrap_or(t);
            let broken = strict_rule_violations(&t["parameters"]);
            assert!(broken.is_empty(), "{format} {}: {broken:?}", t["name"]);
        }
    }
    let (_, openai) = agents
        .get(Some(tenant.clone()), "twilio", Some("openai"), "t")
        .await;
    let (_, plain) = agents.get(Some(tenant.clone()), "twilio", None, "t").await;
    let services: Vec<PluginService> = switchboard_cli::dev::plugins()
        .unwrap()
        .into_iter()
        .map(|p| PluginService::new(p, demo.platform.clone()))
        .collect();
    let mut checked = 0;
    for (tool, declared) in openai["tools"]
        .as_array()
        .unwrap()
        .iter()
        .zip(plain["tools"].as_array().unwrap())
    {
        let function = &tool["function"];
        assert_eq!(function["name"], declared["name"]);
        let mut violations = Vec::new();
        relaxed_violations(&declared["parameters"], "", &mut violations);
        let service = services
            .iter()
            .find(|s| s.plugin().name().as_str() == declared["plugin"])
            .unwrap();
        for (pointer, value) in violations {
            // The lowered (strict) property schema accepts it…
            let lowered_at = pointer.replace('/', "/properties/");
            let lowered = function["parameters"].pointer(&lowered_at).unwrap();
            let description = lowered["description"].as_str().unwrap_or("");
            assert!(
                description.contains("character"),
                "{pointer}: {description}"
            );
            // (A length beside a format strict mode keeps is mostly that format's own limit.)
            if lowered.get("format").is_none() {
                assert!(
                    compile(lowered).unwrap().is_valid(&value),
                    "{}{pointer}: strict mode would refuse {value} itself",
                    function["name"]
                );
            }
            // …and the server refuses it, naming the field.
            let call = json!({"function": function["name"], "parameters": nested(&pointer, value)});
            let (status, body) = service
                .call(CallInput {
                    tenant: Some(tenant.clone()),
                    body: call.to_string().as_bytes(),
                    request_id: "strict",
                    idempotency_key: None,
                })
                .await;
            assert_eq!(status, 422, "{call}: {body}");
            let paths: Vec<&str> = body["error"]["details"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["path"].as_str())
                .collect();
            assert!(paths.contains(&pointer.as_str()), "{call}: {paths:?}");
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} constrained strings in the demo agent"
    );
}

/// The agent speaks the channel's locale, else the organization's: each plugin's template in
/// the closest language it offers (Fluent's negotiation), English otherwise.
#[tokio::test]
async fn instructions_come_in_the_channel_or_organization_locale() {
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let mut hola = manifest("hola", &["Ping"], "Hello from {{ org.display_name }}");
    hola.instruction_templates.insert(
        "es".into(),
        "Hola desde {{ org.display_name }} ({{ locale }})".into(),
    );
    let english_only = manifest("plain", &["Pong"], "Only English");
    let org = org_with(&registry, &[hola, english_only]).await;
    let twilio = Channel::parse("twilio").unwrap();
    let build = || async {
        AgentBuilder::new(registry.clone(), Duration::from_secs(0))
            .build(&org, &twilio)
            .await
            .unwrap()
    };
    let agent = build().await;
    assert_eq!(agent.locale, "en-US");
    assert!(
        agent.instructions.starts_with("Hello from Acme Clinic"),
        "{}",
        agent.instructions
    );

    // The organization speaks Mexican Spanish: "es" is the closest template.
    let current = registry.get_profile(&org).await.unwrap().unwrap();
    let mut profile = current.value;
    profile.locale = "es-MX".into();
    registry
        .put_profile(&org, &profile, Some(current.version))
        .await
        .unwrap();
    let agent = build().await;
    assert_eq!(agent.locale, "es-MX");
    assert_eq!(
        agent.instructions,
        format!("Hola desde Acme Clinic (es-MX){INSTRUCTION_SEPARATOR}Only English")
    );

    // The channel's own locale wins.
    let current = registry.get_channel(&org, &twilio).await.unwrap().unwrap();
    let mut chan = current.value;
    chan.locale = Some("en-GB".into());
    registry
        .put_channel(&org, &twilio, &chan, Some(current.version))
        .await
        .unwrap();
    let agent = build().await;
    assert_eq!(agent.locale, "en-GB");
    assert!(
        agent.instructions.starts_with("Hello from"),
        "{}",
        agent.instructions
    );
    assert_eq!(agent.to_json()["locale"], "en-GB");
}

/// The built-in plugins' Spanish templates render with their default config for an
/// organization speaking es-US, and a channel config with a malformed locale is refused
/// naming it.
#[tokio::test]
async fn spanish_templates_render_and_bad_locales_are_refused() {
    let plugins = switchboard_cli::dev::plugins().unwrap();
    let names = ["booking", "salesforce-crm", "sms", "zoom", "translation"];
    let manifests: Vec<_> = names
        .iter()
        .map(|n| {
            plugins
                .iter()
                .find(|p| p.name().as_str() == *n)
                .unwrap_or_else(|| panic!("{n} is not linked"))
                .manifest()
                .manifest()
                .clone()
        })
        .collect();
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let org = org_with(&registry, &manifests).await;
    let current = registry.get_profile(&org).await.unwrap().unwrap();
    let mut profile = current.value;
    profile.locale = "es-US".into();
    registry
        .put_profile(&org, &profile, Some(current.version))
        .await
        .unwrap();
    let agent = AgentBuilder::new(registry.clone(), Duration::from_secs(0))
        .build(&org, &Channel::parse("twilio").unwrap())
        .await
        .unwrap();
    let parts: Vec<&str> = agent.instructions.split(INSTRUCTION_SEPARATOR).collect();
    assert_eq!(parts.len(), names.len(), "{}", agent.instructions);
    for (part, spanish) in parts.iter().zip([
        "Usted atiende la recepción de Bright Smile Dental",
        "Usted registra oportunidades de venta (leads) para Acme Clinic",
        "Puede enviar un mensaje de texto desde el número de Acme Clinic",
        "Cuando alguien quiera que su cita con Acme Clinic sea por videollamada",
        "Si la persona escribe o habla en un idioma distinto",
    ]) {
        assert!(part.starts_with(spanish), "{part}");
        assert!(!part.contains("{{") && !part.contains("{%"), "{part}");
    }
    assert!(
        parts[0].contains("Está al teléfono"),
        "twilio is a voice channel"
    );

    let e =
        ChannelConfig::from_json(&json!({"locale": "Spanish please", "plugin_assignments": []}))
            .unwrap_err();
    assert_eq!(e.status(), 422);
    assert!(e.to_body().to_string().contains("/locale"), "{e}");
}
