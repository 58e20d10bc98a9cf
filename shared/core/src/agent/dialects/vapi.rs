//! Vapi function tools; Vapi POSTs each tool call to the tool's server URL.

use serde_json::{Map, Value, json};

use super::tool_url;
use crate::agent::AgentTool;

pub(super) fn export(tools: &[&AgentTool], base: &str) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                "server": {"url": tool_url(base, &t.route)},
            })
        })
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}
