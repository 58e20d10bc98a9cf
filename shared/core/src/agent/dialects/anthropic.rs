//! Anthropic Messages API tools: `{name, description, input_schema}`.

use serde_json::{Map, Value, json};

use crate::agent::AgentTool;

pub(super) fn export(tools: &[&AgentTool]) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(
            |t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}),
        )
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}
