//! The data adapter of each call of a plugin: built-in, `rest`, `postgres`, or the vendor
//! API of an `api` one.

use std::sync::Arc;

use switchboard::data::{BuiltinData, NoRecords};
use switchboard::egress::Egress;
use switchboard::error::Error;
use switchboard::ids::{OrgId, PluginName};
use switchboard::index::Indexes;
use switchboard::ports::{Api, DataAdapter, DataAdapterFactory};
use switchboard::secrets::Secrets;
use switchboard::spec::AdapterSpec;

/// The per-container data adapter factory: the built-in store, one HTTP client for `rest`
/// and the connection pools for `postgres`, sharing one secret resolver and egress guard.
pub struct DataAdapters {
    builtin: BuiltinData,
    secrets: Arc<Secrets>,
    rest: switchboard_rest::RestClient,
    postgres: switchboard_postgres::PgPools,
    /// The `api` adapters' OAuth2 access tokens, shared by every call of the container.
    tokens: switchboard_rest::Tokens,
}

impl DataAdapters {
    /// `tls`: the container's TLS client config (`switchboard_aws::tls_config`), shared with
    /// the AWS SDK's client.
    pub fn new(
        builtin: BuiltinData,
        secrets: Arc<Secrets>,
        egress: &Egress,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Self {
            builtin,
            secrets,
            rest: switchboard_rest::RestClient::new(egress.clone(), tls),
            postgres: switchboard_postgres::PgPools::new(egress.clone()),
            tokens: switchboard_rest::Tokens::default(),
        }
    }

    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    pub fn builtin(&self) -> &BuiltinData {
        &self.builtin
    }
}

impl DataAdapterFactory for DataAdapters {
    fn build(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        spec: &AdapterSpec,
        indexes: &Indexes,
    ) -> Result<Arc<dyn DataAdapter>, Error> {
        Ok(match spec {
            AdapterSpec::Builtin => Arc::new(self.builtin.scoped(org, plugin, indexes)),
            AdapterSpec::Rest(c) => Arc::new(switchboard_rest::RestData::new(
                self.rest.clone(),
                c.clone(),
                self.secrets.clone(),
                org.clone(),
                indexes.clone(),
            )),
            AdapterSpec::Postgres(c) => Arc::new(switchboard_postgres::PgData::new(
                self.postgres.clone(),
                c.clone(),
                self.secrets.clone(),
                org.clone(),
                indexes.clone(),
            )),
            AdapterSpec::Api(_) => Arc::new(NoRecords {
                plugin: plugin.clone(),
            }),
        })
    }

    fn api(&self, org: &OrgId, spec: &AdapterSpec) -> Result<Option<Arc<dyn Api>>, Error> {
        Ok(match spec {
            AdapterSpec::Api(c) => Some(Arc::new(switchboard_rest::VendorApi::new(
                self.rest.clone(),
                c.clone(),
                self.secrets.clone(),
                org.clone(),
                self.tokens.clone(),
            ))),
            _ => None,
        })
    }
}
