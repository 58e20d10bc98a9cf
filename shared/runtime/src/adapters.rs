//! The data adapter ports' implementations for a plugin or admin function: the per-call
//! factory over the built-in store, `rest` and `postgres`, and the write-time config check.

use std::sync::Arc;

use switchboard::data::BuiltinData;
use switchboard::egress::Egress;
use switchboard::error::{Detail, Error};
use switchboard::ids::{OrgId, PluginName};
use switchboard::ports::{AdapterCheck, DataAdapter, DataAdapterFactory};
use switchboard::secrets::Secrets;
use switchboard::spec::{AdapterSpec, DataAdapterConfig, invalid};

/// The per-container data adapter factory: the built-in store, one HTTP client for `rest`
/// and the connection pools for `postgres`, sharing one secret resolver and egress guard.
#[cfg(feature = "plugin")]
pub struct DataAdapters {
    builtin: BuiltinData,
    secrets: Arc<Secrets>,
    rest: switchboard_rest::RestClient,
    postgres: switchboard_postgres::PgPools,
}

#[cfg(feature = "plugin")]
impl DataAdapters {
    pub fn new(
        builtin: BuiltinData,
        secrets: Arc<Secrets>,
        egress: &Egress,
    ) -> Result<Self, Error> {
        Ok(Self {
            builtin,
            secrets,
            rest: switchboard_rest::RestClient::new(egress.clone())?,
            postgres: switchboard_postgres::PgPools::new(egress.clone()),
        })
    }

    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    pub fn builtin(&self) -> &BuiltinData {
        &self.builtin
    }
}

#[cfg(feature = "plugin")]
impl DataAdapterFactory for DataAdapters {
    fn build(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        spec: &AdapterSpec,
    ) -> Result<Arc<dyn DataAdapter>, Error> {
        Ok(match spec {
            AdapterSpec::Builtin => Arc::new(self.builtin.scoped(org, plugin)),
            AdapterSpec::Rest(c) => Arc::new(switchboard_rest::RestData::new(
                self.rest.clone(),
                c.clone(),
                self.secrets.clone(),
                org.clone(),
            )),
            AdapterSpec::Postgres(c) => Arc::new(switchboard_postgres::PgData::new(
                self.postgres.clone(),
                c.clone(),
                self.secrets.clone(),
                org.clone(),
            )),
        })
    }
}

/// Checks adapter configs when they are written (the admin API's [`AdapterCheck`]): settings,
/// the upstream's host, and a credential of the organization's that resolves and holds what
/// the adapter needs. Nothing is connected to.
pub struct ConfigCheck {
    secrets: Arc<Secrets>,
    egress: Egress,
}

impl ConfigCheck {
    pub fn new(secrets: Arc<Secrets>, egress: Egress) -> Self {
        Self { secrets, egress }
    }
}

#[switchboard::async_trait]
impl AdapterCheck for ConfigCheck {
    async fn check(
        &self,
        org: &OrgId,
        config: &DataAdapterConfig,
        at: &str,
    ) -> Result<AdapterSpec, Error> {
        let spec = AdapterSpec::parse(config, at)?;
        let Some(reference) = spec.credential() else {
            if let AdapterSpec::Rest(c) = &spec {
                c.check_upstream(&self.egress)
                    .map_err(|d| invalid(at, vec![d]))?;
            }
            return Ok(spec);
        };
        let field = format!("{at}/credential");
        self.secrets.check_scope(org, reference, &field)?;
        let value = self
            .secrets
            .resolve(org, reference)
            .await
            .map_err(|e| match e {
                Error::Validation { code, message, .. } => Error::Validation {
                    code,
                    message,
                    details: vec![Detail::new(field.clone(), "does not resolve")],
                },
                other => other,
            })?;
        match &spec {
            AdapterSpec::Builtin => {}
            AdapterSpec::Rest(c) => {
                c.check_upstream(&self.egress)
                    .map_err(|d| invalid(at, vec![d]))?;
                c.check_secret(&value).map_err(|d| invalid(at, vec![d]))?;
            }
            AdapterSpec::Postgres(_) => {
                // The connection string, parsed without connecting.
                switchboard_postgres::check_secret(&value, &self.egress).map_err(|m| Error::Validation {
                    code: "invalid_config",
                    message: format!(
                        "credential '{reference}' cannot be used by the postgres data adapter: {m}"
                    ),
                    details: vec![Detail::new(field.clone(), m)],
                })?;
            }
        }
        Ok(spec)
    }
}
