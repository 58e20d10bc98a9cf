//! Amazon Bedrock Agents action group, function details. The format is narrow (at most five
//! scalar or array parameters, length-limited descriptions), so a function that does not fit
//! is listed in `notExportable` with the reason, never dropped or truncated silently.
//! `actionGroups` holds one group per plugin, whose executor is that plugin's function;
//! `functionSchema` lists every exported function together.

use serde_json::{Map, Value, json};

use super::{resolve_ref, warning};
use crate::agent::AgentTool;

const MAX_PARAMETERS: usize = 5;
const MAX_FUNCTION_DESCRIPTION: usize = 1200;
const MAX_PARAMETER_DESCRIPTION: usize = 500;
const MAX_NAME_GROUPS: usize = 100;
/// How many `$ref`s are followed to find a parameter's type.
const MAX_REF_HOPS: usize = 8;
/// Keywords that carry nothing Bedrock could have shown, so losing them is not reported.
const SILENT: [&str; 4] = ["type", "description", "title", "$comment"];
/// Root keywords the function-details shape itself expresses (or that only hold definitions).
const ROOT_EXPRESSED: [&str; 9] = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "description",
    "title",
    "$schema",
    "$defs",
    "definitions",
];

pub(super) fn export(tools: &[AgentTool], warnings: &mut Vec<Value>) -> Map<String, Value> {
    let mut functions = Vec::new();
    let mut not_exportable = Vec::new();
    // One action group per plugin: each plugin is its own function, the group's executor.
    let mut groups: Vec<(&str, Vec<Value>)> = Vec::new();
    for tool in tools {
        match function(tool) {
            Ok((f, lost)) => {
                let plugin = tool.plugin.as_str();
                // The plugin names the function's action group.
                if !is_bedrock_name(plugin) {
                    not_exportable.push(json!({"name": tool.name, "reason": format!(
                        "its plugin's name '{plugin}' is not a Bedrock action group name ([0-9a-zA-Z][_-]?){{1,100}}"
                    )}));
                    continue;
                }
                match groups.iter_mut().find(|(p, _)| *p == plugin) {
                    Some((_, fs)) => fs.push(f.clone()),
                    None => groups.push((plugin, vec![f.clone()])),
                }
                functions.push(f);
                if !lost.is_empty() {
                    warnings.push(warning(
                        &tool.name,
                        format!(
                            "Bedrock function details cannot carry these constraints, so the \
                             model does not see them: {}",
                            lost.join("; ")
                        ),
                    ));
                }
            }
            Err(reasons) => {
                not_exportable.push(json!({"name": tool.name, "reason": reasons.join("; ")}));
            }
        }
    }
    let action_groups = groups
        .into_iter()
        .map(|(plugin, functions)| {
            json!({
                "actionGroupName": plugin,
                "plugin": plugin,
                "functionSchema": {"functions": functions},
            })
        })
        .collect();
    Map::from_iter([
        ("functionSchema".to_owned(), json!({"functions": functions})),
        ("actionGroups".to_owned(), Value::Array(action_groups)),
        ("notExportable".to_owned(), Value::Array(not_exportable)),
    ])
}

/// The function-details entry and the constraints it loses, or every reason it does not fit.
fn function(tool: &AgentTool) -> Result<(Value, Vec<String>), Vec<String>> {
    let schema = &tool.parameters;
    let mut reasons = Vec::new();
    let mut lost = Vec::new();
    if !is_bedrock_name(&tool.name) {
        reasons.push(format!(
            "the name '{}' does not match Bedrock's pattern ([0-9a-zA-Z][_-]?){{1,100}}",
            tool.name
        ));
    }
    let description_len = tool.description.chars().count();
    if description_len > MAX_FUNCTION_DESCRIPTION {
        reasons.push(format!(
            "the description is {description_len} characters; Bedrock allows at most \
             {MAX_FUNCTION_DESCRIPTION}"
        ));
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        reasons.push("the parameters schema is not \"type\": \"object\"".to_owned());
    }
    let root_lost: Vec<&str> = schema
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .map(String::as_str)
        .filter(|k| !ROOT_EXPRESSED.contains(k))
        .collect();
    if !root_lost.is_empty() {
        lost.push(format!("the schema root ({})", root_lost.join(", ")));
    }

    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if props.len() > MAX_PARAMETERS {
        reasons.push(format!(
            "has {} parameters; Bedrock function details allow at most {MAX_PARAMETERS}",
            props.len()
        ));
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let mut parameters = Map::new();
    for (name, prop) in props {
        if !is_bedrock_name(name) {
            reasons.push(format!(
                "parameter '{name}' does not match Bedrock's name pattern \
                 ([0-9a-zA-Z][_-]?){{1,100}}"
            ));
        }
        let resolved = resolve(schema, prop);
        let kind = match bedrock_type(resolved) {
            Ok(kind) => kind,
            Err(why) => {
                reasons.push(format!("parameter '{name}' {why}"));
                continue;
            }
        };
        let description = prop
            .get("description")
            .or_else(|| resolved.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let len = description.chars().count();
        if len > MAX_PARAMETER_DESCRIPTION {
            reasons.push(format!(
                "parameter '{name}' has a description of {len} characters; Bedrock allows at \
                 most {MAX_PARAMETER_DESCRIPTION}"
            ));
        }
        let mut dropped: Vec<&str> = [prop, resolved]
            .iter()
            .filter_map(|s| s.as_object())
            .flat_map(|m| m.keys())
            .map(String::as_str)
            .filter(|k| !SILENT.contains(k) && *k != "$ref")
            .collect();
        dropped.sort_unstable();
        dropped.dedup();
        if !dropped.is_empty() {
            lost.push(format!("{name} ({})", dropped.join(", ")));
        }
        let mut detail = Map::new();
        detail.insert("type".into(), json!(kind));
        // Bedrock refuses an empty description (minimum length 1), so none is sent.
        if !description.is_empty() {
            detail.insert("description".into(), json!(description));
        }
        detail.insert("required".into(), json!(required.contains(&name.as_str())));
        parameters.insert(name.clone(), Value::Object(detail));
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let mut f = Map::new();
    f.insert("name".into(), json!(tool.name));
    if !tool.description.is_empty() {
        f.insert("description".into(), json!(tool.description));
    }
    f.insert("parameters".into(), Value::Object(parameters));
    f.insert(
        "requireConfirmation".into(),
        json!(if tool.annotations.destructive {
            "ENABLED"
        } else {
            "DISABLED"
        }),
    );
    Ok((Value::Object(f), lost))
}

/// `([0-9a-zA-Z][_-]?){1,100}`: each group is one alphanumeric, optionally followed by one
/// '_' or '-'.
fn is_bedrock_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut groups = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            return false;
        }
        groups += 1;
        i += 1;
        if i < bytes.len() && (bytes[i] == b'_' || bytes[i] == b'-') {
            i += 1;
        }
    }
    (1..=MAX_NAME_GROUPS).contains(&groups)
}

/// Follows local `$ref`s to the schema that says what the parameter is.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_HOPS {
        match schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| resolve_ref(root, r))
        {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// The Bedrock parameter type of a JSON Schema, or why there is none.
fn bedrock_type(schema: &Value) -> Result<&'static str, String> {
    let scalar = |t: &str| match t {
        "string" => Ok("string"),
        "number" => Ok("number"),
        "integer" => Ok("integer"),
        "boolean" => Ok("boolean"),
        "array" => Ok("array"),
        "object" => {
            Err("is an object; Bedrock function details do not allow object parameters".to_owned())
        }
        other => Err(format!(
            "has type '{other}', which Bedrock cannot express (string, number, integer, boolean \
             or array)"
        )),
    };
    match schema.get("type") {
        Some(Value::String(t)) => scalar(t),
        Some(Value::Array(ts)) => {
            // A nullable type is its non-null type: Bedrock sends no null anyway.
            let non_null: Vec<&str> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            match non_null.as_slice() {
                [t] => scalar(t),
                _ => Err(format!(
                    "has the types {}; a Bedrock parameter has exactly one",
                    quoted(&non_null)
                )),
            }
        }
        _ => Err(
            "has no usable 'type' (Bedrock needs one of string, number, integer, boolean, array)"
                .to_owned(),
        ),
    }
}

fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_names_follow_the_pattern() {
        for ok in [
            "CreateAppointment",
            "a",
            "booking_Get-Patient",
            "x_",
            "a1-b2_",
        ] {
            assert!(is_bedrock_name(ok), "{ok}");
        }
        for bad in ["", "_x", "a__b", "a-_b", "a b", "é", &"a".repeat(101)] {
            assert!(!is_bedrock_name(bad), "{bad}");
        }
        assert!(is_bedrock_name(&"a_".repeat(100)));
    }

    #[test]
    fn types_map_or_say_why_not() {
        assert_eq!(bedrock_type(&json!({"type": "integer"})), Ok("integer"));
        assert_eq!(
            bedrock_type(&json!({"type": ["string", "null"]})),
            Ok("string")
        );
        assert!(
            bedrock_type(&json!({"type": "object"}))
                .is_err_and(|e| e.contains("object parameters"))
        );
        assert!(bedrock_type(&json!({"type": ["string", "integer"]})).is_err());
        assert!(bedrock_type(&json!({"enum": ["a"]})).is_err_and(|e| e.contains("no usable")));
    }
}
