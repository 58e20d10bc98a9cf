//! Data adapter configs: the stored form (`{"type": "rest", …settings}`) and the typed spec
//! parsed from it once per resolved instance. The adapters themselves live in their own
//! crates; this module is what the pipeline, the admin API and the manifests agree on.

pub mod api;
pub mod postgres;
pub mod rest;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Detail, Error};
use crate::secrets::CredentialRef;

pub use api::ApiConfig;
pub use postgres::PgConfig;
pub use rest::RestConfig;

/// The adapter types an instance may name in `data_adapter.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// The built-in store: the data table (DynamoDB; SQLite in `dev`).
    #[default]
    Dynamodb,
    Rest,
    Postgres,
    /// A vendor's HTTP API that the plugin's own code calls (`ctx.api()`); no records.
    Api,
}

impl AdapterKind {
    pub const ALL: [AdapterKind; 4] = [Self::Dynamodb, Self::Rest, Self::Postgres, Self::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dynamodb => "dynamodb",
            Self::Rest => "rest",
            Self::Postgres => "postgres",
            Self::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "data adapter type '{}' is unknown; use one of {}",
                    s.chars().take(40).collect::<String>(),
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AdapterKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Which data adapter a plugin instance (or a channel assignment) uses, as stored: the type
/// and its settings, which hold credential *references* only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataAdapterConfig {
    #[serde(rename = "type")]
    pub kind: AdapterKind,
    #[serde(default, flatten)]
    pub settings: Map<String, Value>,
}

impl DataAdapterConfig {
    /// Reads a config as written by an operator; an unknown or missing type is 422
    /// `invalid_config` at `{at}/type`.
    pub fn from_json(value: &Value, at: &str) -> Result<Self, Error> {
        let Value::Object(m) = value else {
            return Err(invalid_type(
                at,
                "must be an object {\"type\": …, …settings}",
            ));
        };
        let kind = match m.get("type") {
            Some(Value::String(t)) => {
                AdapterKind::parse(t).map_err(|msg| invalid_type(at, &msg))?
            }
            _ => {
                return Err(invalid_type(
                    at,
                    "is required: one of dynamodb, rest, postgres, api",
                ));
            }
        };
        let mut settings = m.clone();
        settings.remove("type");
        Ok(Self { kind, settings })
    }
}

fn invalid_type(at: &str, message: &str) -> Error {
    Error::Validation {
        code: "invalid_config",
        message: format!("the data adapter's type {message}"),
        details: vec![Detail::new(format!("{at}/type"), message)],
    }
}

/// A config parsed and checked: what an adapter is built from on every call.
#[derive(Debug, Clone, Default)]
pub enum AdapterSpec {
    #[default]
    Builtin,
    Rest(Arc<RestConfig>),
    Postgres(Arc<PgConfig>),
    Api(Arc<ApiConfig>),
}

impl AdapterSpec {
    /// Parses `config`; settings problems are 422 `invalid_config` with their pointers under
    /// `at` (the config's place in the written document, e.g. `/data_adapter`).
    pub fn parse(config: &DataAdapterConfig, at: &str) -> Result<Self, Error> {
        match config.kind {
            AdapterKind::Dynamodb => match config.settings.keys().next() {
                None => Ok(Self::Builtin),
                Some(k) => Err(invalid(
                    at,
                    vec![Detail::new(
                        format!("/{k}"),
                        "the dynamodb adapter takes no settings",
                    )],
                )),
            },
            AdapterKind::Rest => RestConfig::parse(&config.settings)
                .map(|c| Self::Rest(Arc::new(c)))
                .map_err(|d| invalid(at, d)),
            AdapterKind::Postgres => PgConfig::parse(&config.settings)
                .map(|c| Self::Postgres(Arc::new(c)))
                .map_err(|d| invalid(at, d)),
            AdapterKind::Api => ApiConfig::parse(&config.settings)
                .map(|c| Self::Api(Arc::new(c)))
                .map_err(|d| invalid(at, d)),
        }
    }

    pub fn kind(&self) -> AdapterKind {
        match self {
            Self::Builtin => AdapterKind::Dynamodb,
            Self::Rest(_) => AdapterKind::Rest,
            Self::Postgres(_) => AdapterKind::Postgres,
            Self::Api(_) => AdapterKind::Api,
        }
    }

    /// The credential the adapter resolves on every call, if any.
    pub fn credential(&self) -> Option<&CredentialRef> {
        match self {
            Self::Builtin => None,
            Self::Rest(c) => c.credential(),
            Self::Postgres(c) => Some(c.credential()),
            Self::Api(c) => c.credential(),
        }
    }
}

/// 422 `invalid_config` for settings problems, with their pointers under `at`; the message
/// names how many there are and the first, the details list each.
pub fn invalid(at: &str, details: Vec<Detail>) -> Error {
    let details: Vec<Detail> = details
        .into_iter()
        .map(|d| Detail::new(format!("{at}{}", d.path), d.message))
        .collect();
    let message = match details.as_slice() {
        [] => "the data adapter config is invalid".to_owned(),
        [one] => format!("the data adapter config is invalid at {}", one.path),
        [first, rest @ ..] => format!(
            "the data adapter config has {} problems, the first at {}",
            rest.len() + 1,
            first.path
        ),
    };
    Error::Validation {
        code: "invalid_config",
        message,
        details,
    }
}

/// Reads the optional `credential` setting as a reference.
pub(crate) fn credential_setting(
    settings: &Map<String, Value>,
    problems: &mut Vec<Detail>,
) -> Option<CredentialRef> {
    match settings.get("credential") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match CredentialRef::parse(s.clone()) {
            Ok(r) => Some(r),
            Err(m) => {
                problems.push(Detail::new("/credential", m));
                None
            }
        },
        Some(_) => {
            problems.push(Detail::new(
                "/credential",
                "must be a Secrets Manager secret name or ARN",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_parse_with_a_message_listing_the_known_ones() {
        let c: DataAdapterConfig = serde_json::from_value(json!({"type": "rest"})).unwrap();
        assert_eq!(c.kind, AdapterKind::Rest);
        let e = serde_json::from_value::<DataAdapterConfig>(json!({"type": "mongo"})).unwrap_err();
        assert!(
            e.to_string()
                .contains("'mongo' is unknown; use one of dynamodb, rest, postgres, api"),
            "{e}"
        );
        assert_eq!(
            serde_json::to_value(DataAdapterConfig::default()).unwrap(),
            json!({"type": "dynamodb"})
        );
    }

    #[test]
    fn written_configs_name_a_bad_type_by_pointer() {
        for bad in [
            json!({"type": "mongodb"}),
            json!({"base_url": "x"}),
            json!("rest"),
        ] {
            let e = DataAdapterConfig::from_json(&bad, "/data_adapter").unwrap_err();
            assert_eq!(
                e.to_body()["error"]["details"][0]["path"],
                "/data_adapter/type"
            );
        }
        let c = DataAdapterConfig::from_json(&json!({"type": "rest", "retries": 1}), "").unwrap();
        assert_eq!((c.kind, c.settings.len()), (AdapterKind::Rest, 1));
    }

    #[test]
    fn a_spec_is_parsed_once_with_every_problem_named() {
        let rest: DataAdapterConfig = serde_json::from_value(json!({"type": "rest"})).unwrap();
        let e = AdapterSpec::parse(&rest, "/data_adapter").unwrap_err();
        let body = e.to_body();
        assert_eq!((e.status(), e.code()), (422, "invalid_config"));
        let paths: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["/data_adapter/base_url", "/data_adapter/entities"]);
        // The message summarises; it does not repeat the details' text.
        assert_eq!(
            body["error"]["message"],
            "the data adapter config has 2 problems, the first at /data_adapter/base_url"
        );
        let builtin = AdapterSpec::parse(&DataAdapterConfig::default(), "").unwrap();
        assert_eq!(builtin.kind(), AdapterKind::Dynamodb);
        let extra: DataAdapterConfig =
            serde_json::from_value(json!({"type": "dynamodb", "table": "x"})).unwrap();
        assert!(AdapterSpec::parse(&extra, "/data_adapter").is_err());
    }
}
