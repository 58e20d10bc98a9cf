//! The MCP `tools/list` result (protocol revision 2025-06-18).

use serde_json::{Map, Value, json};

use super::title;
use crate::agent::AgentTool;

pub(super) fn export(tools: &[&AgentTool]) -> Map<String, Value> {
    let tools = tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "title": title(&t.name),
                "description": t.description,
                "inputSchema": t.parameters,
                "annotations": {
                    "readOnlyHint": t.annotations.read_only,
                    "destructiveHint": t.annotations.destructive,
                    "idempotentHint": t.annotations.idempotent,
                    // Tools reach the tenant's data source and beyond.
                    "openWorldHint": true,
                },
            })
        })
        .collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}
