//! The MCP `tools/list` result (protocol revision 2025-06-18 and later), as the MCP server
//! (`POST /mcp/{channel}`) serves it and `?format=mcp` exports it.

use serde_json::{Map, Value, json};

use super::title;
use crate::agent::AgentTool;

pub(super) fn export(tools: &[&AgentTool]) -> Map<String, Value> {
    let tools = tools.iter().map(|t| tool(t)).collect();
    Map::from_iter([("tools".to_owned(), Value::Array(tools))])
}

/// One tool definition.
pub(super) fn tool(t: &AgentTool) -> Value {
    let mut tool = json!({
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
    });
    if let Some(schema) = &t.output_schema {
        tool["outputSchema"] = output_schema(schema);
    }
    tool
}

/// MCP's `outputSchema` and `structuredContent` are objects: a function declaring another
/// result type gets it under `result`, as [`structured_content`] puts the value.
pub fn output_schema(schema: &Value) -> Value {
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        schema.clone()
    } else {
        json!({"type": "object", "properties": {"result": schema}, "required": ["result"]})
    }
}

/// A tool's result as MCP's `structuredContent`: the object itself, anything else under
/// `result`.
pub fn structured_content(result: &Value) -> Value {
    match result {
        Value::Object(_) => result.clone(),
        other => json!({"result": other}),
    }
}
