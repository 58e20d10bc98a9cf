//! Plugin instances: enable, configure, pin, and pick a data adapter.

use super::*;

/// An instance write as the API takes it: a patch over what is stored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InstancePatch {
    pub enabled: Option<bool>,
    pub pinned_version: Option<String>,
    pub config: Option<Value>,
    pub data_adapter: Option<Value>,
    pub version: Option<u64>,
}

impl InstancePatch {
    /// Its data adapter, parsed (422 naming the field).
    pub(super) fn adapter(&self) -> Result<Option<DataAdapterConfig>, Error> {
        self.data_adapter
            .as_ref()
            .map(|d| DataAdapterConfig::from_json(d, "/data_adapter"))
            .transpose()
    }
}

impl AdminService {
    pub(super) async fn put_instance(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let patch: InstancePatch = parse_as(body)?;
        let written_adapter = patch.adapter()?;
        let expected = expected_version(if_match, patch.version)?;
        let current = self.registry.get_instance(org, plugin).await?;
        check_version(&current, expected, &format!("instance {plugin}"))?;
        let base = current.as_ref().map(|c| c.value.clone());
        let instance = self
            .patched_instance(plugin, base.as_ref(), patch, written_adapter)
            .await?;
        // Re-checked (credential resolved) only when it changes or the instance is switched
        // on, so disabling works during a Secrets Manager outage or after a secret is gone.
        let adapter_changed = base
            .as_ref()
            .is_none_or(|b| b.data_adapter != instance.data_adapter);
        let enabling = instance.enabled && !base.as_ref().is_some_and(|b| b.enabled);
        if adapter_changed || enabling {
            self.adapters
                .check(org, &instance.data_adapter, "/data_adapter")
                .await?;
        }
        let version = self
            .registry
            .put_instance(org, &instance, current.as_ref().map(|c| c.version))
            .await?;
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: instance,
                version,
            }),
        )
    }

    /// `patch` over `base` (the stored instance, if any), checked as a write is: the
    /// pinned version is published, the config passes its `config_schema` (an upgrade the
    /// config fails names the fields), and the plugin supports the data adapter. The
    /// adapter's credential is not resolved here.
    pub(super) async fn patched_instance(
        &self,
        plugin: &PluginName,
        base: Option<&PluginInstance>,
        patch: InstancePatch,
        written_adapter: Option<DataAdapterConfig>,
    ) -> Result<PluginInstance, Error> {
        let versions = self.registry.manifest_versions(plugin).await?;
        let Some(latest) = versions.last() else {
            return Err(unknown_plugin(plugin));
        };
        let pinned = patch
            .pinned_version
            .or_else(|| base.map(|b| b.pinned_version.clone()))
            .unwrap_or_else(|| latest.clone());
        if !versions.contains(&pinned) {
            return Err(Error::invalid_field(
                "/pinned_version",
                format!(
                    "plugin {plugin} has no published version {pinned}; published: {}",
                    versions.join(", ")
                ),
            ));
        }
        let config = patch
            .config
            .or_else(|| base.map(|b| b.config.clone()))
            .unwrap_or_else(|| json!({}));
        if !config.is_object() {
            return Err(Error::invalid_field("/config", "must be an object"));
        }
        let manifest = self.manifest(plugin, &pinned).await?;
        let compiled = CompiledManifest::compile(manifest).map_err(Error::from)?;
        let upgrading = base.is_some_and(|b| b.pinned_version != pinned);
        compiled
            .validate_config(&compiled.effective_config(&config))
            .map_err(|e| match e {
                Error::Validation { details, .. } if upgrading => Error::Validation {
                    code: "invalid_config",
                    message: format!(
                        "the current config fails {plugin} {pinned}'s config_schema; change these fields with the upgrade: {}",
                        details.iter().map(|d| if d.path.is_empty() { "/" } else { d.path.as_str() }).collect::<Vec<_>>().join(", ")
                    ),
                    details: prefixed("/config", details),
                },
                Error::Validation { code, message, details } => Error::Validation {
                    code,
                    message,
                    details: prefixed("/config", details),
                },
                other => other,
            })?;
        let data_adapter = written_adapter
            .or_else(|| base.map(|b| b.data_adapter.clone()))
            .unwrap_or_default();
        supports(compiled.manifest(), data_adapter.kind, "/data_adapter")?;
        let enabled = patch
            .enabled
            .or_else(|| base.map(|b| b.enabled))
            .unwrap_or(true);
        Ok(PluginInstance {
            plugin: plugin.clone(),
            enabled,
            pinned_version: pinned,
            config,
            data_adapter,
        })
    }
}
