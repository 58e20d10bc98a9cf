//! The `postgres` adapter settings: the credential, and how entities map to tables.
//!
//! ```json
//! {"type": "postgres", "credential": "switchboard/acme/supabase",
//!  "schema": "public", "max_connections": 3, "timeout_ms": 5000,
//!  "entities": {"patients": "patients",
//!               "appointments": {"table": "appointment", "id_column": "AptNum",
//!                                "schema": "dental", "extra_column": "extra"}}}
//! ```
//!
//! Every identifier is checked here, once, against `[A-Za-z_][A-Za-z0-9_]{0,62}`; SQL only
//! ever quotes identifiers that passed this check or that the database's catalog returned.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Detail;
use crate::ids::EntityName;
use crate::secrets::CredentialRef;

const SETTINGS: [&str; 6] = [
    "credential",
    "schema",
    "entities",
    "max_connections",
    "timeout_ms",
    "type",
];
const ENTITY_SETTINGS: [&str; 4] = ["table", "schema", "id_column", "extra_column"];
pub const DEFAULT_MAX_CONNECTIONS: usize = 3;
/// The whole budget of one adapter call: pool wait, connect and statements.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// One entity's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub schema: String,
    pub table: String,
    /// The primary-key column; records carry its value as `"id"`.
    pub id_column: String,
    /// A jsonb column that keeps record fields the table has no column for.
    pub extra_column: Option<String>,
}

impl TableMap {
    /// `"schema"."table"`, from checked identifiers.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.table))
    }
    /// For messages: `schema.table`.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

#[derive(Debug, Clone)]
pub struct PgConfig {
    credential: CredentialRef,
    pub entities: BTreeMap<EntityName, TableMap>,
    pub max_connections: usize,
    pub timeout: Duration,
}

impl PgConfig {
    /// Parses and checks the settings; every problem is reported with its JSON pointer.
    pub fn parse(settings: &Map<String, Value>) -> Result<Self, Vec<Detail>> {
        let mut p = Vec::new();
        for key in settings.keys() {
            if !SETTINGS.contains(&key.as_str()) {
                p.push(Detail::new(
                    format!("/{}", escape(key)),
                    format!("unknown setting; use {}", SETTINGS[..5].join(", ")),
                ));
            }
        }
        let credential = super::credential_setting(settings, &mut p);
        if credential.is_none() && !p.iter().any(|d| d.path == "/credential") {
            p.push(Detail::new(
                "/credential",
                "is required: the secret holding the connection string (field 'connection_string')",
            ));
        }
        let schema = match settings.get("schema") {
            None => "public".to_owned(),
            Some(v) => identifier(v, "/schema", &mut p).unwrap_or_default(),
        };
        let max_connections = int_setting(settings, "max_connections", 1, 10, &mut p)
            .map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize);
        let timeout = int_setting(settings, "timeout_ms", 100, 60_000, &mut p).map_or(
            Duration::from_millis(DEFAULT_TIMEOUT_MS),
            Duration::from_millis,
        );
        let mut entities = BTreeMap::new();
        match settings.get("entities") {
            Some(Value::Object(m)) if !m.is_empty() => {
                for (name, v) in m {
                    let at = format!("/entities/{}", escape(name));
                    let entity = match EntityName::parse(name.as_str()) {
                        Ok(e) => Some(e),
                        Err(e) => {
                            p.push(Detail::new(at.clone(), e.to_string()));
                            None
                        }
                    };
                    let map = table_map(v, &at, &schema, &mut p);
                    if let (Some(e), Some(m)) = (entity, map) {
                        entities.insert(e, m);
                    }
                }
            }
            _ => p.push(Detail::new(
                "/entities",
                "is required: an object mapping each entity to its table, e.g. {\"patients\": \"patients\"}",
            )),
        }
        match credential {
            Some(credential) if p.is_empty() => Ok(Self {
                credential,
                entities,
                max_connections,
                timeout,
            }),
            _ => Err(p),
        }
    }

    pub fn credential(&self) -> &CredentialRef {
        &self.credential
    }
}

fn table_map(v: &Value, at: &str, schema: &str, p: &mut Vec<Detail>) -> Option<TableMap> {
    match v {
        Value::String(_) => Some(TableMap {
            schema: schema.to_owned(),
            table: identifier(v, at, p)?,
            id_column: "id".to_owned(),
            extra_column: None,
        }),
        Value::Object(m) => {
            for key in m.keys() {
                if !ENTITY_SETTINGS.contains(&key.as_str()) {
                    p.push(Detail::new(
                        format!("{at}/{}", escape(key)),
                        format!("unknown setting; use {}", ENTITY_SETTINGS.join(", ")),
                    ));
                }
            }
            let table = match m.get("table") {
                Some(t) => identifier(t, &format!("{at}/table"), p),
                None => {
                    p.push(Detail::new(format!("{at}/table"), "is required"));
                    None
                }
            };
            let schema = match m.get("schema") {
                Some(s) => identifier(s, &format!("{at}/schema"), p),
                None => Some(schema.to_owned()),
            };
            let id_column = match m.get("id_column") {
                Some(s) => identifier(s, &format!("{at}/id_column"), p),
                None => Some("id".to_owned()),
            };
            let extra_column = match m.get("extra_column") {
                None | Some(Value::Null) => Some(None),
                Some(s) => identifier(s, &format!("{at}/extra_column"), p).map(Some),
            };
            Some(TableMap {
                schema: schema?,
                table: table?,
                id_column: id_column?,
                extra_column: extra_column?,
            })
        }
        _ => {
            p.push(Detail::new(
                at,
                "must be a table name or an object with 'table' (and optionally 'schema', 'id_column', 'extra_column')",
            ));
            None
        }
    }
}

fn int_setting(
    settings: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
    p: &mut Vec<Detail>,
) -> Option<u64> {
    let v = settings.get(key)?;
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            p.push(Detail::new(
                format!("/{key}"),
                format!("must be an integer from {min} to {max}"),
            ));
            None
        }
    }
}

/// A PostgreSQL identifier we are willing to quote into SQL.
pub fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn identifier(v: &Value, at: &str, p: &mut Vec<Detail>) -> Option<String> {
    match v.as_str() {
        Some(s) if is_identifier(s) => Some(s.to_owned()),
        _ => {
            p.push(Detail::new(
                at,
                "must be an identifier: a letter or '_', then letters, digits or '_' (at most 63)",
            ));
            None
        }
    }
}

/// A double-quoted identifier. Config identifiers cannot contain quotes; catalog names can,
/// so they are doubled as SQL requires.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// JSON pointer escaping of one reference token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<PgConfig, Vec<Detail>> {
        match v {
            Value::Object(m) => PgConfig::parse(&m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn shorthand_and_full_entity_maps() {
        let c = parse(json!({
            "credential": "switchboard/acme/pg",
            "entities": {
                "patients": "patient",
                "appointments": {"table": "apt", "schema": "dental", "id_column": "AptNum", "extra_column": "extra"}
            }
        }))
        .unwrap();
        let p = &c.entities[&EntityName::parse("patients").unwrap()];
        assert_eq!(p.qualified(), "\"public\".\"patient\"");
        assert_eq!(p.id_column, "id");
        let a = &c.entities[&EntityName::parse("appointments").unwrap()];
        assert_eq!(
            (
                a.schema.as_str(),
                a.id_column.as_str(),
                a.extra_column.as_deref()
            ),
            ("dental", "AptNum", Some("extra"))
        );
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
    }

    #[test]
    fn every_problem_has_a_pointer() {
        let e = parse(json!({
            "schema": "pub lic",
            "entities": {"patients": "x\"; DROP TABLE y; --", "bad name!": "t", "ok": {"tabel": "t"}},
            "max_connections": 0,
            "colour": 1
        }))
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|d| d.path.as_str()).collect();
        for want in [
            "/colour",
            "/credential",
            "/schema",
            "/max_connections",
            "/entities/patients",
            "/entities/bad name!",
            "/entities/ok/tabel",
            "/entities/ok/table",
        ] {
            assert!(paths.contains(&want), "{want} missing in {paths:?}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("_a1"));
        assert!(is_identifier(&"a".repeat(63)));
        assert!(!is_identifier(&"a".repeat(64)));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
    }
}
