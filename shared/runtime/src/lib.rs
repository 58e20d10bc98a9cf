//! Composition roots: the clients each kind of function builds once per container, from the
//! [`Settings`] read at start-up, and nothing else.
//!
//! | function | builds |
//! |---|---|
//! | authorizer | the registry table, the audit log in the data table ([`authorizer`]) |
//! | agent builder | the registry table ([`registry`]) |
//! | admin (feature `admin`) | the registry, Secrets Manager, the adapter config check, the audit log ([`admin`]) |
//! | a plugin (feature `plugin`) | the registry, the data table, Secrets Manager, the `rest` client and `postgres` pools, EventBridge Scheduler ([`platform`], [`run_plugin`]) |
//! | mcp (feature `mcp`) | the registry, a Lambda client for the plugin functions ([`mcp`]) |
//!
//! With the feature `local`, `SWITCHBOARD_STORE=sqlite:<path>` puts all of it on the embedded
//! store instead (`cargo lambda watch` against `dev`'s database).

#[cfg(any(feature = "plugin", feature = "admin"))]
pub mod adapters;

use std::sync::Arc;

use switchboard::ports::ItemStore;
use switchboard::registry::Registry;
use switchboard::settings::{Settings, StoreSetting};

/// The error `main` returns.
pub use switchboard::lambda::Error;
/// The TLS client config every HTTPS client of a container shares.
pub use switchboard_aws::tls_config;

/// Where this container's tables (and secrets) live.
enum Backend {
    Aws {
        // Only plugins, admin and mcp build a second client (Secrets Manager, Lambda) from it.
        #[cfg_attr(
            not(any(feature = "plugin", feature = "admin", feature = "mcp")),
            allow(dead_code)
        )]
        sdk: Box<switchboard_aws::SdkConfig>,
        dynamodb: switchboard_aws::dynamodb::Client,
        registry: String,
        data: String,
        #[cfg_attr(not(feature = "plugin"), allow(dead_code))]
        tls: Arc<rustls::ClientConfig>,
    },
    #[cfg(feature = "local")]
    Local(switchboard_embedded::Embedded),
}

impl Backend {
    async fn open(settings: &Settings) -> Result<Self, Error> {
        match &settings.store {
            StoreSetting::Dynamodb { registry, data } => {
                // The system's TLS roots, loaded once, at start-up, for every HTTPS client.
                let tls = switchboard_aws::tls_config()?;
                let sdk = switchboard_aws::sdk_config(&settings.aws, tls.clone())?;
                Ok(Self::Aws {
                    dynamodb: switchboard_aws::dynamodb::client_from_config(&sdk),
                    sdk: Box::new(sdk),
                    registry: registry.clone(),
                    data: data.clone(),
                    tls,
                })
            }
            #[cfg(feature = "local")]
            StoreSetting::Sqlite(path) => Ok(Self::Local(switchboard_embedded::Embedded::open(
                path,
            )?)),
            #[cfg(not(feature = "local"))]
            StoreSetting::Sqlite(_) => Err(
                "SWITCHBOARD_STORE=sqlite:… needs a build with the `local` feature (e.g. `--features booking/local`)"
                    .into(),
            ),
        }
    }

    fn registry(&self) -> Arc<dyn ItemStore> {
        match self {
            Self::Aws {
                dynamodb, registry, ..
            } => Arc::new(switchboard_aws::dynamodb::DynamoStore::new(
                dynamodb.clone(),
                registry.clone(),
            )),
            #[cfg(feature = "local")]
            Self::Local(db) => db.registry_table(),
        }
    }

    /// The data table: plugin data and idempotency records, and the audit log (which the
    /// admin and authorizer functions write too).
    fn data(&self) -> Arc<dyn ItemStore> {
        match self {
            Self::Aws { dynamodb, data, .. } => Arc::new(
                switchboard_aws::dynamodb::DynamoStore::new(dynamodb.clone(), data.clone()),
            ),
            #[cfg(feature = "local")]
            Self::Local(db) => db.data_table(),
        }
    }

    /// The TLS client config for the rest adapter: the SDK's, or (on the embedded store) the
    /// system's roots loaded now.
    #[cfg(feature = "plugin")]
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        match self {
            Self::Aws { tls, .. } => Ok(tls.clone()),
            #[cfg(feature = "local")]
            Self::Local(_) => Ok(switchboard_aws::tls_config()?),
        }
    }

    #[cfg(any(feature = "plugin", feature = "admin"))]
    fn secrets(&self, settings: &Settings) -> Arc<switchboard::secrets::Secrets> {
        let store: Arc<dyn switchboard::ports::SecretStore> = match self {
            Self::Aws { sdk, .. } => {
                Arc::new(switchboard_aws::secretsmanager::SecretsManagerStore::new(
                    switchboard_aws::secretsmanager::client_from_config(sdk),
                ))
            }
            #[cfg(feature = "local")]
            Self::Local(db) => db.secret_store(),
        };
        Arc::new(switchboard::secrets::Secrets::from_settings(
            store, settings,
        ))
    }
}

/// The registry alone: what the authorizer and the agent builder read.
pub async fn registry(settings: &Settings) -> Result<Registry, Error> {
    Ok(Registry::new(Backend::open(settings).await?.registry()))
}

/// The registry and the built-in data adapter's table, for maintenance commands
/// (`switchboard data reindex`).
#[cfg(feature = "plugin")]
pub async fn tables(
    settings: &Settings,
) -> Result<(Registry, switchboard::data::BuiltinData), Error> {
    let backend = Backend::open(settings).await?;
    Ok((
        Registry::new(backend.registry()),
        switchboard::data::BuiltinData::new(backend.data()),
    ))
}

/// The authorizer: API keys from the registry, refusals of an organization's keys to its
/// audit log.
pub async fn authorizer(settings: &Settings) -> Result<switchboard::auth::Authorizer, Error> {
    let backend = Backend::open(settings).await?;
    let audit = switchboard::audit::AuditLog::new(backend.data());
    Ok(switchboard::auth::Authorizer::new(
        Registry::new(backend.registry()),
        switchboard::auth::KEY_CACHE_TTL,
    )
    .with_audit(Arc::new(audit)))
}

/// The admin service: the registry, the secret store it writes credentials to, and the
/// check of adapter configs on write.
#[cfg(feature = "admin")]
pub async fn admin(settings: &Settings) -> Result<switchboard::admin::AdminService, Error> {
    let backend = Backend::open(settings).await?;
    let secrets = backend.secrets(settings);
    let audit = switchboard::audit::AuditLog::new(backend.data());
    Ok(
        admin_with(Registry::new(backend.registry()), secrets, settings)
            .with_audit(Arc::new(audit)),
    )
}

/// [`admin`] over stores the caller opened (`dev`'s embedded database), without the audit
/// log ([`switchboard::admin::AdminService::with_audit`] adds it).
#[cfg(feature = "admin")]
pub fn admin_with(
    registry: Registry,
    secrets: Arc<switchboard::secrets::Secrets>,
    settings: &Settings,
) -> switchboard::admin::AdminService {
    let check = adapters::ConfigCheck::new(secrets.clone(), settings.egress.clone());
    switchboard::admin::AdminService::new(registry, secrets, Arc::new(check)).with_export(
        switchboard::agent::dialects::ExportOptions {
            public_base_url: settings.public_url.clone(),
        },
    )
}

/// A plugin's platform: the registry, the data adapters with their credentials, the same
/// secret resolver for the signed voice-platform routes, the audit log and the rate limits
/// (both in the data table).
#[cfg(feature = "plugin")]
pub async fn platform(settings: &Settings) -> Result<switchboard::pipeline::Platform, Error> {
    let backend = Backend::open(settings).await?;
    let platform = platform_with(
        Registry::new(backend.registry()),
        switchboard::data::BuiltinData::new(backend.data()),
        backend.secrets(settings),
        backend.tls()?,
        settings,
    )?;
    // Scheduled calls: EventBridge Scheduler when the stack has a schedule group; on the
    // embedded store, its data table, where `dev` runs them when due.
    let scheduler: Option<Arc<dyn switchboard::ports::Scheduler>> =
        match (&backend, &settings.scheduler) {
            (Backend::Aws { sdk, .. }, Some(s)) => Some(Arc::new(
                switchboard_aws::scheduler::EventBridgeScheduler::new(
                    switchboard_aws::scheduler::client_from_config(sdk),
                    s.clone(),
                ),
            )),
            (Backend::Aws { .. }, None) => None,
            #[cfg(feature = "local")]
            (Backend::Local(db), _) => Some(Arc::new(switchboard::schedule::StoredSchedules::new(
                db.data_table(),
            ))),
        };
    Ok(match scheduler {
        Some(s) => platform.with_scheduler(s),
        None => platform,
    })
}

/// [`platform`] over stores the caller opened (`dev`'s embedded database).
#[cfg(feature = "plugin")]
pub fn platform_with(
    registry: Registry,
    builtin: switchboard::data::BuiltinData,
    secrets: Arc<switchboard::secrets::Secrets>,
    tls: Arc<rustls::ClientConfig>,
    settings: &Settings,
) -> Result<switchboard::pipeline::Platform, Error> {
    let table = builtin.table();
    let audit = Arc::new(switchboard::audit::AuditLog::new(table.clone()));
    let limiter = Arc::new(switchboard::ratelimit::RateLimiter::new(
        table.clone(),
        settings.rate_limit_per_second,
        settings.rate_limit_allowance,
    ));
    let data = adapters::DataAdapters::new(builtin, secrets.clone(), &settings.egress, tls);
    Ok(
        switchboard::pipeline::Platform::new(registry, Arc::new(data), table, settings.cache_ttl)
            .with_secrets(secrets)
            .with_audit(audit)
            .with_rate_limits(limiter)
            .with_public_url(settings.public_url.clone()),
    )
}

/// The MCP server: agents from the registry, tool calls as `Invoke`s of the plugin
/// functions (`SWITCHBOARD_PLUGIN_FUNCTIONS`).
#[cfg(feature = "mcp")]
pub async fn mcp(settings: &Settings) -> Result<switchboard::mcp::McpService, Error> {
    use switchboard::agent::builder::AgentBuilder;
    use switchboard::mcp::{McpService, OriginPolicy};

    let backend = Backend::open(settings).await?;
    let registry = Registry::new(backend.registry());
    let invoker: Arc<dyn switchboard::ports::ToolInvoker> = match &backend {
        Backend::Aws { sdk, .. } => {
            if settings.plugin_functions.is_empty() {
                return Err(
                    "SWITCHBOARD_PLUGIN_FUNCTIONS is not set: the MCP function invokes the plugin functions it names (template.yaml sets it)"
                        .into(),
                );
            }
            let client = switchboard_aws::lambda::client_from_config(
                sdk,
                settings.aws.lambda_endpoint_url.as_deref(),
            );
            let functions = settings.plugin_functions.iter().cloned().collect();
            Arc::new(switchboard_aws::lambda::LambdaInvoker::new(
                client, functions,
            ))
        }
        #[cfg(feature = "local")]
        Backend::Local(_) => {
            return Err(
                "on the embedded store there are no plugin functions to invoke: `switchboard dev` serves /mcp/{channel} with the plugins in-process"
                    .into(),
            );
        }
    };
    let audit = Arc::new(switchboard::audit::AuditLog::new(backend.data()));
    Ok(McpService::new(
        AgentBuilder::new(registry.clone(), settings.cache_ttl),
        invoker,
        OriginPolicy {
            allowed: settings.mcp_origins.clone(),
            loopback: false,
        },
    )
    .with_audit(audit, registry, settings.cache_ttl))
}

/// The whole `main` of a plugin Lambda: settings, tracing, clients once, then the loop.
#[cfg(feature = "plugin")]
pub async fn run_plugin(plugin: switchboard::Plugin) -> Result<(), Error> {
    let settings = Settings::from_env()?;
    switchboard::telemetry::init(&settings.log);
    let platform = Arc::new(platform(&settings).await?);
    let service = switchboard::pipeline::PluginService::new(plugin, platform);
    switchboard::lambda::serve::plugin(&service).await
}
