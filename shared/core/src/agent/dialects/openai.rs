//! OpenAI Chat Completions and Responses API tools, strict where the schema allows.

use serde_json::{Map, Value, json};

use super::strict::lower_strict;
use super::warning;
use crate::agent::AgentTool;

/// `{"type":"function","function":{name, description, parameters, strict}}` per tool.
pub(super) fn chat(tools: &[&AgentTool], warnings: &mut Vec<Value>) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(|t| {
            let (parameters, strict) = parameters(t, warnings);
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description,
                "parameters": parameters, "strict": strict,
            }})
        })
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}

/// The Responses API's flattened `{"type":"function", name, description, parameters, strict}`.
pub(super) fn responses(tools: &[&AgentTool], warnings: &mut Vec<Value>) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(|t| {
            let (parameters, strict) = parameters(t, warnings);
            json!({
                "type": "function", "name": t.name, "description": t.description,
                "parameters": parameters, "strict": strict,
            })
        })
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}

/// The strict lowering when it is faithful; otherwise the schema as declared, `strict: false`
/// and a warning saying why.
fn parameters(tool: &AgentTool, warnings: &mut Vec<Value>) -> (Value, bool) {
    match lower_strict(&tool.parameters) {
        Ok(lowered) => (lowered, true),
        Err(problems) => {
            warnings.push(warning(
                &tool.name,
                format!(
                    "exported with strict: false because strict mode cannot express the schema \
                     faithfully: {}",
                    problems.join("; ")
                ),
            ));
            (tool.parameters.clone(), false)
        }
    }
}
