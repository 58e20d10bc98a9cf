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

/// Whether a declared result schema is an object's alone (anything else, even one that also
/// allows objects, goes under `result`).
fn object_only(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// MCP's `outputSchema` and `structuredContent` are objects: a function declaring another
/// result type gets it under `result`, as [`structured_content`] puts the value.
pub fn output_schema(schema: &Value) -> Value {
    if object_only(schema) {
        schema.clone()
    } else {
        json!({"type": "object", "properties": {"result": schema}, "required": ["result"]})
    }
}

/// A tool's result as MCP's `structuredContent`: wrapped under `result` exactly when its
/// declared `outputSchema` is (without one, when the result is not an object).
pub fn structured_content(result: &Value, declared: Option<&Value>) -> Value {
    let bare = match declared {
        Some(schema) => object_only(schema),
        None => result.is_object(),
    };
    if bare {
        result.clone()
    } else {
        json!({"result": result})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `structuredContent` is wrapped exactly when `outputSchema` is, so a client checking
    /// one against the other agrees.
    #[test]
    fn structured_content_follows_the_declared_schema() {
        let object = json!({"type": "object", "properties": {"AptNum": {"type": "integer"}}});
        assert_eq!(output_schema(&object), object);
        assert_eq!(
            structured_content(&json!({"AptNum": 1}), Some(&object)),
            json!({"AptNum": 1})
        );
        let list = json!({"type": "array", "items": {"type": "integer"}});
        assert_eq!(output_schema(&list)["properties"]["result"], list);
        assert_eq!(
            structured_content(&json!([1, 2]), Some(&list)),
            json!({"result": [1, 2]})
        );
        // A schema that allows an object among other types wraps even an object result.
        let either = json!({"type": ["object", "null"]});
        assert_eq!(output_schema(&either)["required"], json!(["result"]));
        assert_eq!(
            structured_content(&json!({"a": 1}), Some(&either)),
            json!({"result": {"a": 1}})
        );
        // Without a declared schema, the result's own shape decides.
        assert_eq!(structured_content(&json!({"a": 1}), None), json!({"a": 1}));
        assert_eq!(
            structured_content(&json!("text"), None),
            json!({"result": "text"})
        );
    }
}
