//! The admin API's check of a data adapter config when it is written.

use std::sync::Arc;

use switchboard::egress::Egress;
use switchboard::error::{Detail, Error};
use switchboard::ids::OrgId;
use switchboard::ports::AdapterCheck;
use switchboard::secrets::Secrets;
use switchboard::spec::{AdapterSpec, DataAdapterConfig, invalid};

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
            match &spec {
                AdapterSpec::Rest(c) => c
                    .check_upstream(&self.egress)
                    .map_err(|d| invalid(at, vec![d]))?,
                AdapterSpec::Api(c) => c
                    .check_upstream(&self.egress)
                    .map_err(|d| invalid(at, vec![d]))?,
                _ => {}
            }
            return Ok(spec);
        };
        let field = format!("{at}/credential");
        self.secrets.check_scope(org, reference, &field)?;
        let value = self
            .secrets
            .resolve_for_check(org, reference)
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
            AdapterSpec::Api(c) => {
                c.check_upstream(&self.egress)
                    .map_err(|d| invalid(at, vec![d]))?;
                c.check_secret(&value).map_err(|d| invalid(at, vec![d]))?;
                c.check_secret_upstream(&value, &self.egress)
                    .map_err(|d| invalid(at, vec![d]))?;
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
