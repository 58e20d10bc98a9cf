//! Retell custom functions; Retell POSTs `{name, call, args}` to the function's URL.

use serde_json::{Map, Value, json};

use super::VoiceUrls;
use crate::agent::AgentTool;

pub(super) fn export(tools: &[&AgentTool], urls: &VoiceUrls<'_>) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(|t| {
            json!({
                "type": "custom",
                "name": t.name,
                "description": t.description,
                "url": urls.of(t),
                "parameters": t.parameters,
                // The agent stays quiet while the tool runs and speaks from its result.
                "speak_during_execution": false,
                "speak_after_execution": true,
            })
        })
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}
