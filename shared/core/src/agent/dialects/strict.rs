//! OpenAI strict-mode lowering, and its inverse for incoming calls.
//!
//! Strict mode is an allowlist: a keyword outside it makes OpenAI refuse the whole request,
//! so a schema that cannot be lowered faithfully is refused here (and exported with
//! `strict: false`) instead of being shipped weaker. The lowering closes every object and
//! makes every property required; an optional property becomes nullable, and
//! [`strip_strict_nulls`] turns those nulls back into absent properties.
//!
//! Constraints strict mode refuses but the server checks anyway ([`RELAXED`]: string lengths,
//! unique items; the [`SERVER_FORMATS`] on strings) leave the lowered schema and are written
//! into its description instead, for the model to read; `default` (unless null is allowed,
//! since a model's null is not the default) and `examples` become description text too. A
//! `$schema` must name draft 2020-12, the draft the lowering and the server read. The call is still validated against the declared schema (the
//! compiled validator, formats included), so what the lowered schema lets through that the
//! declared one does not is a 422 naming the field, never a call that runs.
//!
//! Equivalence: for parameters without undeclared properties, `original` accepts `x` exactly
//! when `lowered` accepts `x` with every absent optional property set to null and `x` passes
//! the relaxed constraints. Two cases are inherently lost and documented rather than hidden:
//! an object schema that does not say `additionalProperties` is closed by the lowering, and an
//! explicit null for an optional, non-nullable property reads as "absent" after
//! [`strip_strict_nulls`].

use serde_json::{Map, Value, json};

use super::{escape_pointer, resolve_ref};

/// The `format` values strict mode accepts.
pub const STRICT_FORMATS: [&str; 9] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Keywords copied unchanged. Deliberately absent although JSON Schema has them, because
/// OpenAI answers them with "'<keyword>' is not permitted": `default`, `minLength`,
/// `maxLength`, `examples`, `$schema` (and every composition keyword but `anyOf`).
const KEPT: [&str; 13] = [
    "type",
    "enum",
    "const",
    "description",
    "title",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
];

/// Keywords strict mode refuses whose meaning moves into the description: the server enforces
/// the constraints among them when it validates the call against the declared schema.
pub const RELAXED: [&str; 5] = [
    "minLength",
    "maxLength",
    "uniqueItems",
    "default",
    "examples",
];

/// Formats outside [`STRICT_FORMATS`] that the server's validator checks (draft 2020-12,
/// without the `idna` feature): relaxed into the description. Any other format (`phone`,
/// `idn-email`, …) the validator ignores, so nothing would keep it: refused.
pub const SERVER_FORMATS: [&str; 7] = [
    "uri",
    "uri-reference",
    "uri-template",
    "iri",
    "iri-reference",
    "json-pointer",
    "regex",
];

/// The one draft the lowering reads schemas in; a `$schema` naming it is dropped, any other
/// refused (older drafts read `$ref` siblings and `exclusiveMinimum` differently).
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Keywords that say nothing to a model or a validator of the lowered schema; dropped.
const DROPPED: [&str; 1] = ["$comment"];

/// Keywords that carry no constraint; they move to the outside of a nullable wrapper.
const ANNOTATIONS: [&str; 2] = ["description", "title"];

const MAX_NESTING: usize = 10;
const MAX_PROPERTIES: usize = 5000;
const MAX_ENUM_VALUES: usize = 1000;
/// One string enum of more than 250 values may total at most this many characters.
const MAX_LARGE_ENUM_CHARS: usize = 7500;
/// Property names, definition names, enum and const strings together (the lower of the
/// limits OpenAI has published, to stay on the accepted side).
const MAX_TOTAL_CHARS: usize = 15_000;
/// How many `$ref`s with siblings may be inlined into one another.
const MAX_INLINE: usize = 10;
/// Guards the walks of [`strip_strict_nulls`] against recursive `$ref`s.
const MAX_WALK: usize = 64;

/// Lowers a function's parameters schema to OpenAI strict mode. `Err` lists every reason it
/// cannot be lowered faithfully, each naming the JSON pointer and the keyword.
pub fn lower_strict(schema: &Value) -> Result<Value, Vec<String>> {
    let mut l = Lowerer {
        root: schema,
        problems: Vec::new(),
        properties: 0,
        enum_values: 0,
        chars: 0,
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        l.problem("", "strict mode needs a root with \"type\": \"object\"");
    }
    let lowered = l.lower(schema, "", 1, 0);
    if l.properties > MAX_PROPERTIES {
        l.problem(
            "",
            format!(
                "{} properties in total; strict mode allows at most {MAX_PROPERTIES}",
                l.properties
            ),
        );
    }
    if l.enum_values > MAX_ENUM_VALUES {
        l.problem(
            "",
            format!(
                "{} enum values in total; strict mode allows at most {MAX_ENUM_VALUES}",
                l.enum_values
            ),
        );
    }
    if l.chars > MAX_TOTAL_CHARS {
        l.problem(
            "",
            format!(
                "property names, definition names and enum/const strings total {} characters; \
                 strict mode allows at most {MAX_TOTAL_CHARS}",
                l.chars
            ),
        );
    }
    if l.problems.is_empty() {
        Ok(lowered)
    } else {
        Err(l.problems)
    }
}

struct Lowerer<'a> {
    root: &'a Value,
    problems: Vec<String>,
    properties: usize,
    enum_values: usize,
    chars: usize,
}

impl Lowerer<'_> {
    fn problem(&mut self, ptr: &str, message: impl std::fmt::Display) {
        let at = if ptr.is_empty() { "/" } else { ptr };
        self.problems.push(format!("{at}: {message}"));
    }

    /// Lowers one schema at `ptr`; `level` counts object/array nesting (the root is 1).
    fn lower(&mut self, node: &Value, ptr: &str, level: usize, inlined: usize) -> Value {
        let Some(map) = node.as_object() else {
            self.problem(ptr, "a boolean schema cannot be expressed in strict mode");
            return node.clone();
        };
        if level > MAX_NESTING {
            self.problem(
                ptr,
                format!("nested {level} levels deep; strict mode allows at most {MAX_NESTING}"),
            );
            return node.clone();
        }
        if map.keys().any(|k| DROPPED.contains(&k.as_str())) {
            let mut kept = map.clone();
            kept.retain(|k, _| !DROPPED.contains(&k.as_str()));
            return self.lower(&Value::Object(kept), ptr, level, inlined);
        }
        if let Some(reference) = map.get("$ref") {
            return self.lower_ref(map, reference, ptr, level, inlined);
        }
        let is_object = is_object_schema(map);
        let mut out = Map::new();
        // What the description says instead of the relaxed keywords, in schema order.
        let mut notes = Vec::new();
        for (key, value) in map {
            let here = format!("{ptr}/{}", escape_pointer(key));
            match key.as_str() {
                // Rebuilt by `lower_object` (or checked below for a non-object).
                "properties" | "required" | "additionalProperties" => {}
                "items" => {
                    let lowered = if value.is_object() {
                        self.lower(value, &here, level + 1, inlined)
                    } else {
                        self.problem(&here, "'items' must be a single schema in strict mode");
                        value.clone()
                    };
                    out.insert(key.clone(), lowered);
                }
                "anyOf" => {
                    if ptr.is_empty() {
                        self.problem(&here, "strict mode does not allow 'anyOf' at the root");
                    }
                    let lowered = match value.as_array() {
                        Some(variants) => Value::Array(
                            variants
                                .iter()
                                .enumerate()
                                .map(|(i, v)| self.lower(v, &format!("{here}/{i}"), level, inlined))
                                .collect(),
                        ),
                        None => {
                            self.problem(&here, "'anyOf' must be an array");
                            value.clone()
                        }
                    };
                    out.insert(key.clone(), lowered);
                }
                "$defs" | "definitions" => {
                    let lowered = match value.as_object() {
                        Some(defs) => Value::Object(
                            defs.iter()
                                .map(|(name, def)| {
                                    self.chars += name.chars().count();
                                    let at = format!("{here}/{}", escape_pointer(name));
                                    (name.clone(), self.lower(def, &at, 1, inlined))
                                })
                                .collect(),
                        ),
                        None => {
                            self.problem(&here, format!("'{key}' must be an object"));
                            value.clone()
                        }
                    };
                    out.insert(key.clone(), lowered);
                }
                "format" => match value.as_str() {
                    Some(f) if STRICT_FORMATS.contains(&f) => {
                        out.insert(key.clone(), value.clone());
                    }
                    Some(f) if SERVER_FORMATS.contains(&f) && is_string_schema(map) => {
                        notes.push((rank("format"), format!("format: {f}")));
                    }
                    _ => self.problem(
                        &here,
                        format!(
                            "'format' {value} is not supported by OpenAI strict mode (accepted: {}) \
                             and the server does not check it on this type",
                            STRICT_FORMATS.join(", ")
                        ),
                    ),
                },
                "$schema" => {
                    if ptr.is_empty() && value == DRAFT_2020_12 {
                        // The lowering's own draft: nothing to say.
                    } else {
                        self.problem(
                            &here,
                            format!("'$schema' {value}: only {DRAFT_2020_12} at the root lowers"),
                        );
                    }
                }
                // A null the model sends for a nullable property reaches the handler as null,
                // not as the default: saying the default would mislead.
                "default" if accepts_null(map) => {}
                k if RELAXED.contains(&k) => match note(k, value) {
                    Some(n) => notes.push((rank(k), n)),
                    None => {
                        self.problem(&here, format!("'{k}' {value} is not a value it can have"))
                    }
                },
                "enum" => {
                    self.count_enum(value, &here);
                    out.insert(key.clone(), value.clone());
                }
                "const" => {
                    self.chars += value.as_str().map_or(0, |s| s.chars().count());
                    out.insert(key.clone(), value.clone());
                }
                k if KEPT.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                k => self.problem(
                    &here,
                    format!("'{k}' is not supported by OpenAI strict mode"),
                ),
            }
        }
        if !notes.is_empty() {
            notes.sort_by_key(|(rank, _)| *rank);
            let notes: Vec<String> = notes.into_iter().map(|(_, n)| n).collect();
            let notes = notes.join("; ");
            let text = match out.get("description").and_then(Value::as_str) {
                Some(d) if !d.trim().is_empty() => format!("{} ({notes})", d.trim_end()),
                _ => notes,
            };
            out.insert("description".into(), Value::String(text));
        }
        if is_object {
            self.lower_object(map, &mut out, ptr, level, inlined);
        } else {
            if let Some(extra) = map.get("additionalProperties") {
                if extra == &Value::Bool(false) {
                    out.insert("additionalProperties".into(), Value::Bool(false));
                } else {
                    self.problem(
                        &format!("{ptr}/additionalProperties"),
                        "'additionalProperties' must be false in strict mode",
                    );
                }
            }
            if map.contains_key("required") {
                self.problem(
                    &format!("{ptr}/required"),
                    "'required' outside an object schema cannot be expressed in strict mode",
                );
            }
            if !["type", "enum", "const", "anyOf"]
                .iter()
                .any(|k| map.contains_key(*k))
            {
                self.problem(
                    ptr,
                    "no 'type': the schema accepts any value, which strict mode cannot express",
                );
            }
        }
        Value::Object(out)
    }

    /// Closes an object and makes every property required, optional ones nullable.
    fn lower_object(
        &mut self,
        map: &Map<String, Value>,
        out: &mut Map<String, Value>,
        ptr: &str,
        level: usize,
        inlined: usize,
    ) {
        match map.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => self.problem(
                &format!("{ptr}/additionalProperties"),
                "'additionalProperties': true allows undeclared properties; strict mode needs false",
            ),
            Some(_) => self.problem(
                &format!("{ptr}/additionalProperties"),
                "'additionalProperties' is a schema; strict mode needs false",
            ),
        }
        out.insert("additionalProperties".into(), Value::Bool(false));

        let empty = Map::new();
        let props = match map.get("properties") {
            Some(Value::Object(p)) => p,
            Some(_) => {
                self.problem(
                    &format!("{ptr}/properties"),
                    "'properties' must be an object",
                );
                &empty
            }
            None => {
                // The root may take no parameters; a nested free-form object would be
                // narrowed to `{}`.
                if !ptr.is_empty() {
                    self.problem(
                        ptr,
                        "an object without 'properties' would accept only {} in strict mode",
                    );
                }
                &empty
            }
        };
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
            Some(_) => {
                self.problem(&format!("{ptr}/required"), "'required' must be an array");
                Vec::new()
            }
        };
        for name in &required {
            if !props.contains_key(*name) {
                self.problem(
                    &format!("{ptr}/required"),
                    format!(
                        "'required' lists '{name}', which is not in 'properties'; strict mode \
                         cannot require an undeclared property"
                    ),
                );
            }
        }

        let mut lowered_props = Map::new();
        for (name, sub) in props {
            self.properties += 1;
            self.chars += name.chars().count();
            let at = format!("{ptr}/properties/{}", escape_pointer(name));
            let lowered = if required.contains(&name.as_str()) {
                self.lower(sub, &at, level + 1, inlined)
            } else {
                self.lower_optional(sub, &at, level + 1, inlined)
            };
            lowered_props.insert(name.clone(), lowered);
        }
        let names: Vec<Value> = lowered_props.keys().map(|k| json!(k)).collect();
        out.insert("properties".into(), Value::Object(lowered_props));
        out.insert("required".into(), Value::Array(names));
    }

    /// An optional property: lowered, then made nullable.
    fn lower_optional(&mut self, sub: &Value, ptr: &str, level: usize, inlined: usize) -> Value {
        // A `$ref` with only annotations beside it is wrapped as it is, the annotations moving
        // outside, instead of being inlined.
        if let Some(m) = sub.as_object()
            && m.contains_key("$ref")
            && m.keys()
                .all(|k| k == "$ref" || ANNOTATIONS.contains(&k.as_str()))
        {
            let bare = json!({"$ref": m["$ref"]});
            let lowered = self.lower(&bare, ptr, level, inlined);
            let mut outer: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            outer.insert("anyOf".into(), json!([lowered, {"type": "null"}]));
            return Value::Object(outer);
        }
        nullable(self.lower(sub, ptr, level, inlined))
    }

    /// A `$ref` alone stays; with siblings (which strict mode refuses beside a `$ref`) the
    /// target is inlined under them, as long as no sibling constrains what the target does.
    fn lower_ref(
        &mut self,
        map: &Map<String, Value>,
        reference: &Value,
        ptr: &str,
        level: usize,
        inlined: usize,
    ) -> Value {
        let at = format!("{ptr}/$ref");
        let Some(target) = reference
            .as_str()
            .and_then(|r| resolve_ref(self.root, r).map(|t| (r, t)))
        else {
            self.problem(
                &at,
                format!("'$ref' {reference} does not resolve to a schema in this document"),
            );
            return Value::Object(map.clone());
        };
        let (reference, target) = target;
        if map.len() == 1 {
            return Value::Object(map.clone());
        }
        if inlined >= MAX_INLINE {
            self.problem(
                &at,
                format!("'$ref' {reference} with sibling keywords nests too deep to inline"),
            );
            return Value::Object(map.clone());
        }
        let Some(target) = target.as_object() else {
            self.problem(
                &at,
                format!("'$ref' {reference} points to a boolean schema, which cannot be inlined"),
            );
            return Value::Object(map.clone());
        };
        let mut merged = target.clone();
        for (key, value) in map {
            if key == "$ref" {
                continue;
            }
            // Annotations (and defaults and examples, which constrain nothing) may differ.
            let annotation =
                ANNOTATIONS.contains(&key.as_str()) || key == "default" || key == "examples";
            if !annotation && target.get(key).is_some_and(|t| t != value) {
                self.problem(
                    &format!("{ptr}/{}", escape_pointer(key)),
                    format!(
                        "'{key}' beside '$ref' {reference} conflicts with the target's own \
                         '{key}'; strict mode cannot keep both"
                    ),
                );
            }
            merged.insert(key.clone(), value.clone());
        }
        self.lower(&Value::Object(merged), ptr, level, inlined + 1)
    }

    fn count_enum(&mut self, value: &Value, ptr: &str) {
        let Some(values) = value.as_array() else {
            self.problem(ptr, "'enum' must be an array");
            return;
        };
        self.enum_values += values.len();
        let chars: usize = values
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.chars().count())
            .sum();
        self.chars += chars;
        if values.len() > 250 && chars > MAX_LARGE_ENUM_CHARS {
            self.problem(
                ptr,
                format!(
                    "an 'enum' of {} values totalling {chars} characters; strict mode allows at \
                     most {MAX_LARGE_ENUM_CHARS} characters when there are more than 250",
                    values.len()
                ),
            );
        }
    }
}

/// Where a note goes among the others, whatever the schema's key order.
fn rank(keyword: &str) -> usize {
    const ORDER: [&str; 6] = [
        "minLength",
        "maxLength",
        "uniqueItems",
        "format",
        "default",
        "examples",
    ];
    ORDER
        .iter()
        .position(|k| *k == keyword)
        .unwrap_or(ORDER.len())
}

/// The description text of a relaxed keyword; `None` for a value the keyword cannot have.
fn note(keyword: &str, value: &Value) -> Option<String> {
    let count = |noun: &str| {
        value.as_u64().map(|n| {
            let s = if n == 1 { "" } else { "s" };
            format!("{n} {noun}{s}")
        })
    };
    match keyword {
        "minLength" => count("character").map(|c| format!("at least {c}")),
        "maxLength" => count("character").map(|c| format!("at most {c}")),
        "uniqueItems" => value.as_bool().map(|u| {
            if u {
                "no duplicates"
            } else {
                "duplicates allowed"
            }
            .to_owned()
        }),
        "default" => Some(format!("default: {value}")),
        "examples" => value.as_array().map(|e| {
            let shown: Vec<String> = e.iter().take(3).map(Value::to_string).collect();
            format!("e.g. {}", shown.join(", "))
        }),
        _ => None,
    }
}

/// Whether the schema says its value is a string (and nothing else but null).
fn is_string_schema(map: &Map<String, Value>) -> bool {
    match map.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => {
            ts.iter().any(|t| t == "string") && ts.iter().all(|t| t == "string" || t == "null")
        }
        _ => false,
    }
}

/// Whether the schema itself lets null through (its `type` or `enum`).
fn accepts_null(map: &Map<String, Value>) -> bool {
    let typed = match map.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
        _ => false,
    };
    typed
        || map
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|e| e.contains(&Value::Null))
}

fn is_object_schema(map: &Map<String, Value>) -> bool {
    map.contains_key("properties")
        || match map.get("type") {
            Some(Value::String(t)) => t == "object",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
            _ => false,
        }
}

/// OpenAI's published strict-mode rules, checked on a schema as exported: only the supported
/// keywords and formats, every object closed with every property required, nothing beside a
/// `$ref`, no `anyOf` at the root, at most [`MAX_NESTING`] levels. Independent of the
/// lowering, so tests can hold its output to the rules rather than to itself.
pub fn strict_rule_violations(schema: &Value) -> Vec<String> {
    const ALLOWED: [&str; 21] = [
        "type",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "description",
        "title",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "pattern",
        "format",
        "multipleOf",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
    ];
    fn walk(node: &Value, at: &str, level: usize, out: &mut Vec<String>) {
        let here = if at.is_empty() { "/" } else { at };
        if level > MAX_NESTING {
            out.push(format!("{here}: nested {level} levels deep"));
            return;
        }
        let Some(map) = node.as_object() else {
            out.push(format!("{here}: not a schema object"));
            return;
        };
        for k in map.keys().filter(|k| !ALLOWED.contains(&k.as_str())) {
            out.push(format!("{here}: '{k}' is not allowed"));
        }
        if map.contains_key("$ref") && map.len() > 1 {
            out.push(format!("{here}: keywords beside '$ref'"));
        }
        if at.is_empty() && map.contains_key("anyOf") {
            out.push("/: 'anyOf' at the root".into());
        }
        if let Some(f) = map.get("format")
            && !f.as_str().is_some_and(|f| STRICT_FORMATS.contains(&f))
        {
            out.push(format!("{here}: format {f}"));
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                out.push(format!("{here}: 'additionalProperties' is not false"));
            }
            let mut required: Vec<&str> = map
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            required.sort_unstable();
            let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
            names.sort_unstable();
            if required != names {
                out.push(format!("{here}: 'required' is not every property"));
            }
            for (name, p) in props {
                walk(
                    p,
                    &format!("{at}/properties/{}", escape_pointer(name)),
                    level + 1,
                    out,
                );
            }
        }
        if let Some(items) = map.get("items") {
            walk(items, &format!("{at}/items"), level + 1, out);
        }
        for (i, v) in map
            .get("anyOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            walk(v, &format!("{at}/anyOf/{i}"), level, out);
        }
        for (name, d) in map
            .get("$defs")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            walk(d, &format!("{at}/$defs/{}", escape_pointer(name)), 1, out);
        }
    }
    let mut out = Vec::new();
    if schema.get("type") != Some(&json!("object")) {
        out.push("/: the root is not \"type\": \"object\"".into());
    }
    walk(schema, "", 1, &mut out);
    out
}

/// Makes a lowered schema also accept null, without changing what else it accepts.
fn nullable(schema: Value) -> Value {
    let Value::Object(mut m) = schema else {
        return schema;
    };
    let constraints = m
        .keys()
        .filter(|k| !ANNOTATIONS.contains(&k.as_str()))
        .count();
    let null_variant = json!({"type": "null"});
    if m.contains_key("anyOf") && constraints == 1 {
        if let Some(Value::Array(variants)) = m.get_mut("anyOf")
            && !variants.contains(&null_variant)
        {
            variants.push(null_variant);
        }
        return Value::Object(m);
    }
    // `type` (and `enum`) can simply gain null; `const`, `$ref` and `anyOf` beside other
    // keywords cannot, so those are wrapped.
    let simple = (m.contains_key("type") || m.contains_key("enum"))
        && !["const", "$ref", "anyOf"]
            .iter()
            .any(|k| m.contains_key(*k));
    if !simple {
        let mut outer: Map<String, Value> = ANNOTATIONS
            .iter()
            .filter_map(|k| m.remove(*k).map(|v| ((*k).to_owned(), v)))
            .collect();
        outer.insert("anyOf".into(), json!([Value::Object(m), null_variant]));
        return Value::Object(outer);
    }
    match m.get_mut("type") {
        Some(Value::String(t)) if t != "null" => {
            let t = std::mem::take(t);
            m.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| t == "null") => ts.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = m.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    Value::Object(m)
}

/// The inverse of the lowering for an incoming call from a strict export: removes every
/// property whose value is null where the ORIGINAL `schema` has it optional and not
/// nullable, recursively through nested objects, arrays, `$ref`s and `anyOf` variants, so
/// the call validates against the original schema. Apply it only to calls made against a
/// strict export: elsewhere an explicit null for such a property is an error to report.
pub fn strip_strict_nulls(schema: &Value, params: &mut Value) {
    let candidates = expand(schema, schema, 0);
    strip(schema, &candidates, params, 0);
}

/// `node` and every schema that also applies to the same value (`$ref` target, composition
/// variants).
fn expand<'a>(root: &'a Value, node: &'a Value, depth: usize) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(map) = node.as_object() else {
        return out;
    };
    if depth > MAX_WALK {
        return out;
    }
    out.push(node);
    if let Some(target) = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve_ref(root, r))
    {
        out.extend(expand(root, target, depth + 1));
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        for variant in map
            .get(keyword)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(expand(root, variant, depth + 1));
        }
    }
    out
}

fn strip(root: &Value, candidates: &[&Value], value: &mut Value, depth: usize) {
    if depth > MAX_WALK {
        return;
    }
    match value {
        Value::Object(obj) => {
            let mut absent = Vec::new();
            for (key, v) in obj.iter_mut() {
                // Every schema that declares this property, with the schema declaring it.
                let declared: Vec<(&Value, &Value)> = candidates
                    .iter()
                    .filter_map(|c| Some((*c, c.get("properties")?.get(key)?)))
                    .collect();
                if declared.is_empty() {
                    continue;
                }
                if v.is_null() {
                    let optional = declared.iter().all(|(owner, prop)| {
                        !is_required(owner, key) && !allows_null(root, prop, 0)
                    });
                    if optional {
                        absent.push(key.clone());
                    }
                } else if v.is_object() || v.is_array() {
                    let inner: Vec<&Value> = declared
                        .iter()
                        .flat_map(|(_, prop)| expand(root, prop, 0))
                        .collect();
                    strip(root, &inner, v, depth + 1);
                }
            }
            for key in absent {
                obj.remove(&key);
            }
        }
        Value::Array(items) => {
            let inner: Vec<&Value> = candidates
                .iter()
                .filter_map(|c| c.get("items"))
                .flat_map(|i| expand(root, i, 0))
                .collect();
            if !inner.is_empty() {
                for item in items {
                    strip(root, &inner, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn is_required(schema: &Value, key: &str) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|n| n == key))
}

/// Whether `schema` accepts null. When unsure (a `$ref` cycle too deep) it answers true, so
/// a null is left for validation to report rather than removed.
fn allows_null(root: &Value, schema: &Value, depth: usize) -> bool {
    if depth > MAX_WALK {
        return true;
    }
    let map = match schema {
        Value::Bool(b) => return *b,
        Value::Object(m) => m,
        _ => return true,
    };
    let by_type = match map.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
        _ => true,
    };
    let by_enum = map
        .get("enum")
        .and_then(Value::as_array)
        .is_none_or(|values| values.contains(&Value::Null));
    let by_const = map.get("const").is_none_or(Value::is_null);
    let by_ref = map
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve_ref(root, r))
        .is_none_or(|t| allows_null(root, t, depth + 1));
    let variants = |k: &str| {
        map.get(k).and_then(Value::as_array).map(|vs| {
            vs.iter()
                .filter(|v| allows_null(root, v, depth + 1))
                .count()
        })
    };
    let by_any_of = variants("anyOf").is_none_or(|n| n > 0);
    let by_one_of = variants("oneOf").is_none_or(|n| n == 1);
    let by_all_of = map
        .get("allOf")
        .and_then(Value::as_array)
        .is_none_or(|vs| vs.iter().all(|v| allows_null(root, v, depth + 1)));
    let by_not = map
        .get("not")
        .is_none_or(|n| !allows_null(root, n, depth + 1));
    by_type && by_enum && by_const && by_ref && by_any_of && by_one_of && by_all_of && by_not
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowered(schema: Value) -> Value {
        match lower_strict(&schema) {
            Ok(v) => v,
            Err(p) => panic!("expected {schema} to lower: {p:?}"),
        }
    }

    fn refused(schema: Value) -> Vec<String> {
        match lower_strict(&schema) {
            Ok(v) => panic!("expected {schema} to be refused, got {v}"),
            Err(p) => p,
        }
    }

    #[test]
    fn optional_properties_become_nullable_and_required() {
        let out = lowered(json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string", "enum": ["x", "y"], "description": "B"},
                "c": {"type": ["integer", "string"]},
                "d": {"$ref": "#/$defs/D", "description": "a D"},
                "e": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "f": {"const": "only"},
                "g": {"enum": [1, 2]}
            },
            "required": ["a"],
            "$defs": {"D": {"type": "object", "properties": {"x": {"type": "number"}}}}
        }));
        assert_eq!(
            out,
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": ["string", "null"], "enum": ["x", "y", null], "description": "B"},
                    "c": {"type": ["integer", "string", "null"]},
                    "d": {"anyOf": [{"$ref": "#/$defs/D"}, {"type": "null"}], "description": "a D"},
                    "e": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
                    "f": {"anyOf": [{"const": "only"}, {"type": "null"}]},
                    "g": {"enum": [1, 2, null]}
                },
                "required": ["a", "b", "c", "d", "e", "f", "g"],
                "$defs": {"D": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"x": {"type": ["number", "null"]}},
                    "required": ["x"]
                }}
            })
        );
    }

    #[test]
    fn a_required_ref_with_a_description_is_inlined() {
        let out = lowered(json!({
            "type": "object",
            "properties": {"d": {"$ref": "#/$defs/D", "description": "a D"}},
            "required": ["d"],
            "$defs": {"D": {"type": "string", "description": "inner"}}
        }));
        assert_eq!(
            out["properties"]["d"],
            json!({"type": "string", "description": "a D"})
        );
    }

    #[test]
    fn every_refusal_names_the_pointer_and_keyword() {
        let p = refused(json!({
            "type": "object",
            "properties": {
                "meta": {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
                "open": {"type": "object", "properties": {}, "additionalProperties": true},
                "name": {"type": "string", "minLength": -1, "format": 7},
                "all": {"allOf": [{"type": "string"}]},
                "free": {"description": "anything"}
            }
        }));
        for needle in [
            "/properties/meta/patternProperties: 'patternProperties'",
            "/properties/meta: an object without 'properties'",
            "/properties/open/additionalProperties: 'additionalProperties': true",
            "/properties/name/minLength: 'minLength' -1",
            "/properties/name/format: 'format' 7",
            "/properties/all/allOf: 'allOf'",
            "/properties/free: no 'type'",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(needle)),
                "{needle} not in {p:#?}"
            );
        }
    }

    /// What strict mode refuses and the server checks becomes description text; the rest of
    /// the schema is lowered as usual, and annotations for validators go.
    #[test]
    fn server_checked_constraints_move_into_the_description() {
        let out = lowered(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "Full name."},
                "note": {"type": "string", "maxLength": 1, "default": "none", "$comment": "internal"},
                "tags": {"type": "array", "items": {"type": "string", "format": "uri"}, "uniqueItems": true},
                "email": {"type": "string", "format": "email", "examples": ["a@b.c"]}
            },
            "required": ["name"]
        }));
        assert_eq!(
            out,
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "description": "Full name. (at least 1 character; at most 64 characters)"},
                    "note": {"type": ["string", "null"], "description": "at most 1 character; default: \"none\""},
                    "tags": {
                        "type": ["array", "null"],
                        "items": {"type": "string", "description": "format: uri"},
                        "description": "no duplicates"
                    },
                    "email": {"type": ["string", "null"], "format": "email", "description": "e.g. \"a@b.c\""}
                },
                "required": ["email", "name", "note", "tags"]
            })
        );
    }

    /// Only what the server checks is relaxed: other drafts, formats it ignores, and a
    /// default a nullable property cannot reach stay out.
    #[test]
    fn only_what_the_server_checks_is_relaxed() {
        let p = refused(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "phone": {"type": "string", "format": "phone"},
                "size": {"type": "integer", "format": "uri"}
            }
        }));
        for needle in [
            "/$schema: '$schema' \"http://json-schema.org/draft-07/schema#\"",
            "/properties/phone/format: 'format' \"phone\"",
            "/properties/size/format: 'format' \"uri\"",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(needle)),
                "{needle} not in {p:#?}"
            );
        }
        let out = lowered(json!({
            "type": "object",
            "properties": {
                "nick": {"type": ["string", "null"], "default": "x", "maxLength": 3},
                "site": {"$ref": "#/$defs/url", "$comment": "a sibling that says nothing"}
            },
            "required": ["nick", "site"],
            "$defs": {"url": {"type": "string", "format": "uri", "default": "https://a.b"}}
        }));
        assert_eq!(
            out["properties"]["nick"],
            json!({"type": ["string", "null"], "description": "at most 3 characters"})
        );
        assert_eq!(out["properties"]["site"], json!({"$ref": "#/$defs/url"}));
        assert_eq!(
            out["$defs"]["url"],
            json!({"type": "string", "description": "format: uri; default: \"https://a.b\""})
        );
    }

    #[test]
    fn structural_limits_are_refused() {
        assert!(refused(json!({"type": "array"}))[0].contains("root"));
        assert!(
            refused(json!({"type": "object", "anyOf": [{"type": "object"}]}))
                .iter()
                .any(|m| m.starts_with("/anyOf"))
        );
        let mut deep = json!({"type": "string"});
        for _ in 0..10 {
            deep = json!({"type": "object", "properties": {"n": deep}, "required": ["n"]});
        }
        assert!(
            refused(deep.clone())
                .iter()
                .any(|m| m.contains("nested 11 levels"))
        );
        assert!(lower_strict(&deep["properties"]["n"]).is_ok());

        let props: Map<String, Value> = (0..5001)
            .map(|i| (format!("p{i}"), json!({"type": "integer"})))
            .collect();
        assert!(
            refused(json!({"type": "object", "properties": props}))
                .iter()
                .any(|m| m.contains("5001 properties"))
        );
        let values: Vec<i64> = (0..1001).collect();
        assert!(
            refused(json!({"type": "object", "properties": {"n": {"enum": values}}}))
                .iter()
                .any(|m| m.contains("1001 enum values"))
        );
        assert!(
            refused(json!({"type": "object", "required": ["ghost"]}))
                .iter()
                .any(|m| m.contains("'ghost'"))
        );
    }

    #[test]
    fn strip_removes_only_nulls_the_original_does_not_allow() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "n": {"type": ["string", "null"]},
                "r": {"type": "string"},
                "list": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                "either": {"anyOf": [
                    {"type": "object", "properties": {"x": {"type": "integer"}}},
                    {"type": "string"}
                ]}
            },
            "required": ["r"],
            "$defs": {"Item": {"type": "object", "properties": {"q": {"type": "integer"}, "k": {"type": "string"}}, "required": ["k"]}}
        });
        let mut params = json!({
            "a": null, "n": null, "r": null,
            "list": [{"q": null, "k": "v"}, {"q": 1, "k": null}],
            "either": {"x": null}
        });
        strip_strict_nulls(&schema, &mut params);
        assert_eq!(
            params,
            json!({
                "n": null, "r": null,
                "list": [{"k": "v"}, {"q": 1, "k": null}],
                "either": {}
            })
        );
    }
}
