//! Vapi function tools; Vapi POSTs each tool call to the tool's server URL.

use serde_json::{Map, Value, json};

use super::VoiceUrls;
use crate::agent::AgentTool;

pub(super) fn export(tools: &[&AgentTool], urls: &VoiceUrls<'_>) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                "server": {"url": urls.of(t)},
            })
        })
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}
