//! Implementations of the ports: DynamoDB and Secrets Manager for Lambda, SQLite for `dev`
//! and tests, and the external data adapters (`rest`, `postgres`). [`DataAdapters`] picks the
//! data adapter for a call from the instance's (or the channel assignment's) config.

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod postgres;
pub mod rest;
pub mod secretsmanager;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::data::{BuiltinData, DataAdapterFactory};
use crate::error::{Detail, Error};
use crate::ids::{OrgId, PluginName};
use crate::ports::DataAdapter;
use crate::registry::DataAdapterConfig;
use crate::secrets::{CredentialRef, Secrets};

/// The adapter types an instance may name in `data_adapter.type`.
pub const ADAPTER_TYPES: [&str; 3] = ["dynamodb", "rest", "postgres"];

/// The per-container data adapter factory: the built-in store, one HTTP client for `rest`
/// and the connection pools for `postgres`, sharing one secret resolver.
pub struct DataAdapters {
    builtin: BuiltinData,
    secrets: Arc<Secrets>,
    rest: rest::RestClient,
    postgres: postgres::PgPools,
}

/// Set to `1` to let `rest` and `postgres` reach loopback and private addresses (tests, and
/// deployments whose upstreams live in the VPC). Off by default: a tenant's config could
/// otherwise reach the instance metadata service or internal hosts.
pub const ALLOW_PRIVATE_UPSTREAMS: &str = "SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS";

impl DataAdapters {
    /// With private upstreams allowed only when `SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1`.
    pub fn new(builtin: BuiltinData, secrets: Arc<Secrets>) -> Result<Self, Error> {
        let allow = std::env::var(ALLOW_PRIVATE_UPSTREAMS).is_ok_and(|v| v == "1");
        Self::with_private_upstreams(builtin, secrets, allow)
    }

    /// `dev` allows them: its upstreams are the developer's own local servers.
    pub fn with_private_upstreams(
        builtin: BuiltinData,
        secrets: Arc<Secrets>,
        allow: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            builtin,
            secrets,
            rest: rest::RestClient::with_private_upstreams(allow)?,
            postgres: postgres::PgPools::new(allow),
        })
    }

    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    pub fn builtin(&self) -> &BuiltinData {
        &self.builtin
    }

    /// Checks an adapter config when it is written, not when it is first called: a known
    /// type, its required settings, and a credential that belongs to `org` and resolves.
    /// `at` is the JSON pointer of the config in the written document.
    pub async fn check(
        &self,
        org: &OrgId,
        config: &DataAdapterConfig,
        at: &str,
    ) -> Result<(), Error> {
        let credential = match config.kind.as_str() {
            "dynamodb" => None,
            "rest" => {
                let c = rest::RestConfig::parse(&config.settings).map_err(|d| invalid(at, d))?;
                c.check_upstream(self.rest.allows_private_upstreams())
                    .map_err(|d| invalid(at, vec![d]))?;
                // A credential that does not resolve is reported below, as for the others.
                if let Some(r) = c.credential()
                    && let Ok(value) = self.secrets.resolve(org, r).await
                {
                    c.check_secret(&value).map_err(|d| invalid(at, vec![d]))?;
                }
                c.credential().cloned()
            }
            "postgres" => {
                let c = postgres::PgConfig::parse(&config.settings).map_err(|d| invalid(at, d))?;
                let r = c.credential();
                // The value's connection string, checked without connecting; a credential
                // that does not resolve is reported below.
                if let Ok(value) = self.secrets.resolve(org, r).await {
                    postgres::check_secret(&value).map_err(|m| Error::Validation {
                        code: "invalid_config",
                        message: format!(
                            "credential '{r}' cannot be used by the postgres data adapter: {m}"
                        ),
                        details: vec![Detail::new(format!("{at}/credential"), m)],
                    })?;
                }
                Some(r.clone())
            }
            other => return Err(unknown_type(at, other)),
        };
        if let Some(r) = credential {
            let field = format!("{at}/credential");
            self.secrets.check_scope(org, &r, &field)?;
            self.secrets.resolve(org, &r).await.map_err(|e| match e {
                Error::Validation { code, message, .. } => Error::Validation {
                    code,
                    message,
                    details: vec![Detail::new(field.clone(), "does not resolve")],
                },
                other => other,
            })?;
        }
        Ok(())
    }
}

impl DataAdapterFactory for DataAdapters {
    fn build(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        config: &DataAdapterConfig,
    ) -> Result<Arc<dyn DataAdapter>, Error> {
        let at = "/data_adapter";
        match config.kind.as_str() {
            "dynamodb" => self.builtin.build(org, plugin, config),
            "rest" => {
                let c = rest::RestConfig::parse(&config.settings).map_err(|d| invalid(at, d))?;
                Ok(Arc::new(rest::RestData::new(
                    self.rest.clone(),
                    c,
                    self.secrets.clone(),
                    org.clone(),
                )))
            }
            "postgres" => {
                let c = postgres::PgConfig::parse(&config.settings).map_err(|d| invalid(at, d))?;
                Ok(Arc::new(postgres::PgData::new(
                    self.postgres.clone(),
                    c,
                    self.secrets.clone(),
                    org.clone(),
                )))
            }
            other => Err(unknown_type(at, other)),
        }
    }
}

fn unknown_type(at: &str, kind: &str) -> Error {
    Error::Validation {
        code: "invalid_config",
        message: format!(
            "data adapter type '{kind}' is unknown; use one of {}",
            ADAPTER_TYPES.join(", ")
        ),
        details: vec![Detail::new(format!("{at}/type"), "unknown adapter type")],
    }
}

/// 422 for settings problems, with their pointers under `at`.
fn invalid(at: &str, details: Vec<Detail>) -> Error {
    let details: Vec<Detail> = details
        .into_iter()
        .map(|d| Detail::new(format!("{at}{}", d.path), d.message))
        .collect();
    let first = details
        .first()
        .map(|d| format!("{}: {}", d.path, d.message))
        .unwrap_or_default();
    Error::Validation {
        code: "invalid_config",
        message: format!("the data adapter config is invalid ({first})"),
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
