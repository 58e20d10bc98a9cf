//! The agent export dialects: golden files per format, and the equivalence of the OpenAI
//! strict lowering with the declared schemas.
//!
//! Regenerate the goldens with `UPDATE_GOLDENS=1 cargo test -p switchboard --test dialects`,
//! then review the diff against each vendor's published tool format before committing.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchboard::agent::dialects::{
    ExportOptions, Format, export, lower_strict, strict_rule_violations, strip_strict_nulls,
};
use switchboard::agent::{Agent, AgentTool};
use switchboard::manifest::{Annotations, check, compile};
use switchboard::registry::DataAdapterConfig;
use switchboard::{Channel, ConnectionId, FunctionName, OrgId, PluginName, VoicePlatform};

fn slots_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "date": {"type": "string", "format": "date", "description": "The day to search, YYYY-MM-DD."},
            "provider": {"type": "integer", "minimum": 1, "description": "ProvNum; omit for any provider."},
            "visitType": {"type": "string", "enum": ["cleaning", "checkup", "emergency"], "description": "What the visit is for."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20}
        },
        "required": ["date"]
    })
}

fn update_patient_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "PatNum": {"type": "integer", "minimum": 1, "description": "The patient's number."},
            "FName": {"type": "string", "pattern": "^\\S"},
            "LName": {"type": "string", "pattern": "^\\S"},
            "Birthdate": {"type": "string", "format": "date"},
            "Email": {"type": "string", "format": "email"},
            "address": {
                "type": "object",
                "additionalProperties": false,
                "description": "Postal address.",
                "properties": {
                    "line1": {"type": "string"},
                    "line2": {"type": "string"},
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"}
                },
                "required": ["line1", "zip"]
            }
        },
        "required": ["PatNum"]
    })
}

fn tag_ticket_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "ticketId": {"type": "string", "description": "The ticket to tag."},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 5},
            "note": {"type": "string", "maxLength": 500}
        },
        "required": ["ticketId", "tags"]
    })
}

/// `not` has no strict form and no description that would keep it: never strict.
fn merge_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "from": {"type": "string"},
            "into": {"type": "string", "not": {"const": ""}}
        },
        "required": ["from", "into"]
    })
}

/// Not in the agent: exercises `$defs`, `$ref`, `anyOf`, arrays of objects and a declared
/// nullable property through the lowering.
fn composite_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "$defs": {
            "slot": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "minutes": {"type": "integer", "multipleOf": 5}
                },
                "required": ["start"]
            }
        },
        "properties": {
            "slots": {"type": "array", "items": {"$ref": "#/$defs/slot"}, "minItems": 1},
            "preferred": {"$ref": "#/$defs/slot", "description": "The caller's first choice."},
            "contact": {"anyOf": [
                {"type": "string", "format": "email"},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"phone": {"type": "string"}, "ext": {"type": "string"}},
                    "required": ["phone"]
                }
            ]},
            "channel": {"enum": ["sms", "voice"]},
            "note": {"type": ["string", "null"]}
        },
        "required": ["slots"]
    })
}

fn tool(
    name: &str,
    plugin: &str,
    description: &str,
    parameters: Value,
    annotations: Annotations,
) -> AgentTool {
    let plugin = PluginName::parse(plugin).unwrap();
    AgentTool {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
        route: format!("/plugins/{plugin}"),
        plugin,
        function: FunctionName::parse(name).unwrap(),
        annotations,
        output_schema: None,
        data_adapter: DataAdapterConfig::default(),
    }
}

fn agent() -> Agent {
    Agent {
        org: OrgId::parse("acme-dental").unwrap(),
        channel: Channel::parse("twilio").unwrap(),
        locale: "en-US".to_owned(),
        instructions: "You are the receptionist of Acme Dental.".to_owned(),
        tools: vec![
            tool(
                "GetAvailableSlots",
                "booking",
                "Open appointment times on one day.",
                slots_schema(),
                Annotations {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                },
            ),
            tool(
                "UpdatePatient",
                "crm",
                "Changes a patient's record.",
                update_patient_schema(),
                Annotations {
                    read_only: false,
                    destructive: true,
                    idempotent: true,
                },
            ),
            tool(
                "TagTicket",
                "support",
                "Adds tags to a support ticket.",
                tag_ticket_schema(),
                Annotations::default(),
            ),
            tool(
                "MergeTickets",
                "support",
                "Merges one ticket into another.",
                merge_schema(),
                Annotations::default(),
            ),
        ],
        skipped: Vec::new(),
        // A Retell connection on the channel, no Vapi one.
        connections: vec![(
            VoicePlatform::Retell,
            ConnectionId::parse("cn_0123456789abcdef0123456789abcdef").unwrap(),
        )],
    }
}

fn opts() -> ExportOptions {
    ExportOptions {
        public_base_url: Some("https://api.example.com/".to_owned()),
    }
}

fn exported(format: Format) -> Value {
    match export(&agent(), format, &opts()) {
        Ok(v) => v,
        Err(e) => panic!("{format}: {e}"),
    }
}

fn golden_path(format: Format) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dialects")
        .join(format!("{format}.json"))
}

#[test]
fn every_format_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDENS").is_some();
    let mut mismatched = Vec::new();
    for format in Format::VARIANTS {
        let actual = exported(format);
        let path = golden_path(format);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDENS=1 writes it)", path.display()));
        let golden: Value = serde_json::from_str(&text).unwrap();
        if golden != actual {
            mismatched.push(format!(
                "{format}: {} differs; got\n{}",
                path.display(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
    }
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n\n"));
}

#[test]
fn every_output_carries_the_agent_and_its_format() {
    for format in Format::VARIANTS {
        let out = exported(format);
        assert_eq!(out["org"], "acme-dental", "{format}");
        assert_eq!(out["channel"], "twilio", "{format}");
        assert_eq!(out["format"], format.as_str());
        assert_eq!(
            out["instructions"],
            "You are the receptionist of Acme Dental."
        );
        assert!(out["warnings"].is_array(), "{format}");
    }
}

/// Every tool name each dialect emits.
fn names(format: Format, out: &Value) -> Vec<String> {
    let list = match format {
        Format::Bedrock => &out["functionSchema"]["functions"],
        _ => &out["tools"],
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = match format {
                Format::OpenAi | Format::Vapi => &t["function"]["name"],
                _ => &t["name"],
            };
            name.as_str().unwrap().to_owned()
        })
        .collect()
}

fn is_tool_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[test]
fn every_dialect_emits_only_valid_tool_names() {
    for format in Format::VARIANTS {
        let out = exported(format);
        let names = names(format, &out);
        let expected = if format == Format::Bedrock { 3 } else { 4 };
        assert_eq!(names.len(), expected, "{format}: {names:?}");
        for name in names {
            assert!(is_tool_name(&name), "{format}: '{name}'");
        }
    }
}

#[test]
fn a_tool_with_an_unusable_name_is_left_out_with_a_warning() {
    let mut agent = agent();
    agent.tools[2].name = "tag ticket".to_owned();
    let out = export(&agent, Format::Anthropic, &opts()).unwrap();
    assert_eq!(names(Format::Anthropic, &out).len(), 3);
    assert_eq!(out["warnings"][0]["tool"], "tag ticket", "{out}");
}

#[test]
fn openai_is_strict_where_faithful_and_says_why_not_elsewhere() {
    for format in [Format::OpenAi, Format::OpenAiResponses] {
        let out = exported(format);
        let tools = out["tools"].as_array().unwrap();
        let f = |i: usize| {
            if format == Format::OpenAi {
                tools[i]["function"].clone()
            } else {
                tools[i].clone()
            }
        };
        assert_eq!(f(0)["strict"], true, "{format}");
        assert_eq!(f(1)["strict"], true, "{format}");
        // Strict, with what strict mode cannot say in the descriptions.
        assert_eq!(f(2)["strict"], true, "{format}");
        let tag = &f(2)["parameters"]["properties"];
        assert_eq!(tag["note"]["description"], "at most 500 characters");
        assert_eq!(tag["tags"]["description"], "no duplicates");
        assert_eq!(f(3)["strict"], false, "{format}");
        // Not strict: the schema exactly as declared.
        assert_eq!(f(3)["parameters"], merge_schema(), "{format}");
        let warnings = out["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{format}: {warnings:?}");
        assert_eq!(warnings[0]["tool"], "MergeTickets");
        let message = warnings[0]["message"].as_str().unwrap();
        assert!(message.contains("/properties/into/not: 'not'"), "{message}");
        for tool in tools.iter().map(|t| t.get("function").unwrap_or(t)) {
            if tool["strict"] == true {
                assert_strict_rules(&tool["parameters"]);
            }
        }
        // Strict: closed, everything required, optional fields nullable.
        let p = &f(0)["parameters"];
        assert_eq!(p["additionalProperties"], false);
        assert_eq!(
            p["required"],
            json!(["date", "limit", "provider", "visitType"])
        );
        assert_eq!(p["properties"]["date"]["type"], "string");
        assert_eq!(
            p["properties"]["provider"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(
            p["properties"]["visitType"]["enum"],
            json!(["cleaning", "checkup", "emergency", null])
        );
        let address = &f(1)["parameters"]["properties"]["address"];
        assert_eq!(address["type"], json!(["object", "null"]));
        assert_eq!(address["additionalProperties"], false);
        assert_eq!(address["required"], json!(["line1", "line2", "zip"]));
        assert_eq!(
            address["properties"]["line2"]["type"],
            json!(["string", "null"])
        );
    }
}

#[test]
fn bedrock_reports_what_does_not_fit() {
    let out = exported(Format::Bedrock);
    let functions = out["functionSchema"]["functions"].as_array().unwrap();
    assert_eq!(functions[0]["name"], "GetAvailableSlots");
    assert_eq!(
        functions[0]["parameters"]["date"],
        json!({"type": "string", "description": "The day to search, YYYY-MM-DD.", "required": true})
    );
    assert_eq!(functions[0]["parameters"]["limit"]["required"], false);
    assert_eq!(functions[0]["requireConfirmation"], "DISABLED");
    // One action group per plugin, each the functions its plugin's function executes.
    let groups = out["actionGroups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .filter_map(|g| g["actionGroupName"].as_str())
        .collect();
    assert_eq!(names, ["booking", "support"], "{groups:?}");
    assert_eq!(groups[0]["functionSchema"]["functions"][0], functions[0]);
    let grouped: usize = groups
        .iter()
        .map(|g| {
            g["functionSchema"]["functions"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(grouped, functions.len());
    let refused = out["notExportable"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["name"], "UpdatePatient");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("has 6 parameters; Bedrock function details allow at most 5"),
        "{reason}"
    );
    assert!(
        reason.contains("parameter 'address' is an object"),
        "{reason}"
    );
    // The constraints Bedrock drops are named, per tool.
    let warnings = out["warnings"].as_array().unwrap();
    let slots = warnings
        .iter()
        .find(|w| w["tool"] == "GetAvailableSlots")
        .unwrap();
    let message = slots["message"].as_str().unwrap();
    for needle in [
        "date (format)",
        "visitType (enum)",
        "limit (maximum, minimum)",
    ] {
        assert!(message.contains(needle), "{needle} missing from {message}");
    }

    let mut agent = agent();
    agent.tools.truncate(1);
    agent.tools[0].description = "x".repeat(1201);
    agent.tools.push(tool(
        "CancelAppointment",
        "booking",
        "Cancels an appointment.",
        json!({"type": "object", "properties": {"AptNum": {"type": "integer"}}, "required": ["AptNum"]}),
        Annotations {
            read_only: false,
            destructive: true,
            idempotent: true,
        },
    ));
    let out = export(&agent, Format::Bedrock, &opts()).unwrap();
    let reason = out["notExportable"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the description is 1201 characters; Bedrock allows at most 1200"),
        "{reason}"
    );
    let cancel = &out["functionSchema"]["functions"][0];
    assert_eq!(cancel["name"], "CancelAppointment");
    assert_eq!(cancel["requireConfirmation"], "ENABLED");
}

#[test]
fn url_dialects_need_the_public_base_url() {
    for format in [Format::Vapi, Format::Retell] {
        let Err(e) = export(&agent(), format, &ExportOptions::default()) else {
            panic!("{format} exported without a base URL");
        };
        assert_eq!(e.status(), 422, "{format}");
        assert!(e.to_string().contains("SWITCHBOARD_PUBLIC_URL"), "{e}");
    }
    // Without a Vapi connection on the channel: the API-key route, and a warning saying how
    // to get a signed one.
    let vapi = exported(Format::Vapi);
    assert_eq!(
        vapi["tools"][1]["server"]["url"],
        "https://api.example.com/plugins/crm"
    );
    let warned = vapi["warnings"][0]["message"].as_str().unwrap_or("");
    assert!(
        warned.contains("switchboard channel connect vapi twilio"),
        "{warned}"
    );
    // With a Retell connection: its signed route, per plugin, and no warning.
    let retell = exported(Format::Retell);
    assert_eq!(
        retell["tools"][2]["url"],
        "https://api.example.com/channels/retell/cn_0123456789abcdef0123456789abcdef/support"
    );
    assert_eq!(retell["warnings"], json!([]));
    // The other dialects do not need it.
    assert!(export(&agent(), Format::Mcp, &ExportOptions::default()).is_ok());
}

#[test]
fn an_unknown_format_is_a_400_listing_all_seven() {
    let Err(e) = Format::parse("gemini") else {
        panic!("gemini parsed");
    };
    assert_eq!((e.status(), e.code()), (400, "invalid_request"));
    let message = e.to_string();
    for name in Format::ALL {
        assert!(message.contains(name), "{name} missing from {message}");
    }
}

// ---------------------------------------------------------------------------------------
// Equivalence of the strict lowering.

/// Sets every absent optional property to null, as a strict-mode model sends it.
fn fill_nulls(root: &Value, schema: &Value, value: &mut Value) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.trim_start_matches('#')).unwrap(),
        None => schema,
    };
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        // The variant that matches the value's JSON type.
        for v in variants {
            let object = v.get("properties").is_some();
            if object == value.is_object() {
                fill_nulls(root, v, value);
            }
        }
        return;
    }
    match value {
        Value::Object(obj) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (name, prop) in props {
                match obj.get_mut(name) {
                    Some(v) => fill_nulls(root, prop, v),
                    None if !required.contains(&name.as_str()) => {
                        obj.insert(name.clone(), Value::Null);
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    fill_nulls(root, item_schema, item);
                }
            }
        }
        _ => {}
    }
}

fn assert_equivalent(name: &str, original: &Value, valid: &[Value], invalid: &[Value]) {
    let lowered = lower_strict(original).unwrap_or_else(|p| panic!("{name}: {p:?}"));
    let original_v = compile(original).unwrap();
    let lowered_v = compile(&lowered).unwrap();
    assert!(
        valid.len() >= 5 && invalid.len() >= 5,
        "{name}: corpus too small"
    );
    for (x, expected) in valid
        .iter()
        .map(|x| (x, true))
        .chain(invalid.iter().map(|x| (x, false)))
    {
        // The corpus itself must say what it claims.
        assert_eq!(
            original_v.is_valid(x),
            expected,
            "{name}: corpus item {x} is not {}: {:?}",
            if expected { "valid" } else { "invalid" },
            check(&original_v, x)
        );
        let mut filled = x.clone();
        fill_nulls(original, original, &mut filled);
        assert_eq!(
            lowered_v.is_valid(&filled),
            expected,
            "{name}: lowered disagrees on {filled} (from {x}): {:?}",
            check(&lowered_v, &filled)
        );
        let mut stripped = filled.clone();
        strip_strict_nulls(original, &mut stripped);
        assert_eq!(
            check(&original_v, &stripped).is_empty(),
            expected,
            "{name}: stripped {stripped} (from {filled}) disagrees: {:?}",
            check(&original_v, &stripped)
        );
    }
}

#[test]
fn lowering_is_equivalent_for_the_slots_tool() {
    let d = "2025-03-04";
    assert_equivalent(
        "GetAvailableSlots",
        &slots_schema(),
        &[
            json!({"date": d}),
            json!({"date": d, "provider": 2}),
            json!({"date": d, "visitType": "cleaning"}),
            json!({"date": d, "limit": 1}),
            json!({"date": d, "provider": 1, "visitType": "emergency", "limit": 20}),
        ],
        &[
            json!({"date": 20250304}),
            json!({"provider": 2}),
            json!({"date": d, "room": 3}),
            json!({"date": d, "visitType": "surgery"}),
            json!({"date": null}),
            json!({"date": "2025-13-45"}),
            json!({"date": d, "limit": 0}),
            json!({"date": d, "provider": 1.5}),
        ],
    );
}

#[test]
fn lowering_is_equivalent_for_the_nested_object_tool() {
    let address = json!({"line1": "1 Main St", "zip": "12345"});
    assert_equivalent(
        "UpdatePatient",
        &update_patient_schema(),
        &[
            json!({"PatNum": 1}),
            json!({"PatNum": 1, "address": address}),
            json!({"PatNum": 1, "address": {"line1": "1 Main St", "line2": "Apt 2", "zip": "12345"}}),
            json!({"PatNum": 5, "Email": "ann@example.com", "FName": "Ann"}),
            json!({"PatNum": 7, "FName": "Ann", "LName": "Lee", "Birthdate": "1990-01-31",
                   "Email": "ann@example.com", "address": address}),
        ],
        &[
            json!({"PatNum": "1"}),
            json!({"FName": "Ann"}),
            json!({"PatNum": 1, "Nickname": "A"}),
            json!({"PatNum": null}),
            json!({"PatNum": 1, "address": {"line1": "1 Main St"}}),
            json!({"PatNum": 1, "address": {"line1": "1 Main St", "zip": "12345", "country": "US"}}),
            json!({"PatNum": 1, "address": {"line1": null, "zip": "12345"}}),
            json!({"PatNum": 1, "Email": "not an email"}),
            json!({"PatNum": 1, "FName": " leading space"}),
        ],
    );
}

#[test]
fn lowering_is_equivalent_through_refs_any_of_and_arrays() {
    let slot = json!({"start": "2025-03-04T10:00:00Z"});
    assert_equivalent(
        "composite",
        &composite_schema(),
        &[
            json!({"slots": [slot]}),
            json!({"slots": [slot, {"start": "2025-03-04T11:00:00Z", "minutes": 30}]}),
            json!({"slots": [slot], "preferred": slot}),
            json!({"slots": [slot], "contact": "ann@example.com"}),
            json!({"slots": [slot], "contact": {"phone": "+15550100"}}),
            json!({"slots": [slot], "contact": {"phone": "+15550100", "ext": "12"}, "channel": "voice"}),
            json!({"slots": [slot], "note": null}),
            json!({"slots": [slot], "note": "call after 5"}),
        ],
        &[
            json!({}),
            json!({"slots": []}),
            json!({"slots": null}),
            json!({"slots": [{"start": "2025-03-04T10:00:00Z", "minutes": 7}]}),
            json!({"slots": [{"start": "2025-03-04T10:00:00Z", "room": 1}]}),
            json!({"slots": [slot], "preferred": {"minutes": 5}}),
            json!({"slots": [slot], "contact": {"ext": "12"}}),
            json!({"slots": [slot], "contact": 42}),
            json!({"slots": [slot], "channel": "fax"}),
            json!({"slots": [slot], "note": 3}),
        ],
    );
}

#[test]
fn the_known_loss_an_explicit_null_for_an_optional_field_reads_as_absent() {
    // Strict mode cannot tell "absent" from "null" for an optional, non-nullable property:
    // the original refuses the null, the stripped call is accepted.
    let schema = composite_schema();
    let original = compile(&schema).unwrap();
    let x = json!({"slots": [{"start": "2025-03-04T10:00:00Z"}], "preferred": null});
    assert!(!original.is_valid(&x));
    let mut stripped = x.clone();
    strip_strict_nulls(&schema, &mut stripped);
    assert_eq!(
        stripped,
        json!({"slots": [{"start": "2025-03-04T10:00:00Z"}]})
    );
    assert!(original.is_valid(&stripped));
}

#[test]
fn the_merge_tool_cannot_be_strict() {
    let problems = lower_strict(&merge_schema()).unwrap_err();
    assert_eq!(
        problems,
        vec!["/properties/into/not: 'not' is not supported by OpenAI strict mode"]
    );
}

/// The relaxed keywords in an equivalence corpus: the lowered schema lets the invalid items
/// through (only strict mode's own keywords are left to refuse them), and the server's
/// validation of the stripped call against the declared schema refuses every one.
#[test]
fn what_the_lowering_relaxes_the_server_refuses() {
    let original = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 2, "maxLength": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "site": {"type": "string", "format": "uri"},
            "note": {"type": "string", "maxLength": 3, "default": "-"}
        },
        "required": ["name"]
    });
    let lowered = lower_strict(&original).unwrap();
    assert_strict_rules(&lowered);
    let original_v = compile(&original).unwrap();
    let lowered_v = compile(&lowered).unwrap();
    let valid = [
        json!({"name": "ab"}),
        json!({"name": "abcde", "tags": ["a", "b"]}),
        json!({"name": "ab", "site": "https://example.com/x"}),
        json!({"name": "ab", "note": "abc"}),
        json!({"name": "abc", "tags": [], "site": "urn:isbn:0451450523", "note": ""}),
    ];
    let relaxed_away = [
        json!({"name": "a"}),
        json!({"name": "abcdef"}),
        json!({"name": "ab", "tags": ["a", "a"]}),
        json!({"name": "ab", "site": "not a uri"}),
        json!({"name": "ab", "note": "four"}),
    ];
    for (x, ok) in valid
        .iter()
        .map(|x| (x, true))
        .chain(relaxed_away.iter().map(|x| (x, false)))
    {
        let mut filled = x.clone();
        fill_nulls(&original, &original, &mut filled);
        assert!(
            lowered_v.is_valid(&filled),
            "strict mode would refuse {filled} itself"
        );
        let mut stripped = filled;
        strip_strict_nulls(&original, &mut stripped);
        assert_eq!(
            original_v.is_valid(&stripped),
            ok,
            "{x}: {:?}",
            check(&original_v, &stripped)
        );
    }
}

fn assert_strict_rules(schema: &Value) {
    let broken = strict_rule_violations(schema);
    assert!(broken.is_empty(), "{schema}: {broken:#?}");
}
