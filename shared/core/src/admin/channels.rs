//! Channel configs: plugin assignments (with adapter overrides) and instructions.

use super::*;

impl AdminService {
    pub(super) async fn put_channel(
        &self,
        org: &OrgId,
        channel: &Channel,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let mut value = parse_body(body)?;
        let body_version =
            match value.as_object_mut().and_then(|m| m.remove("version")) {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    Error::invalid_field("/version", "must be a positive integer")
                })?),
            };
        let expected = expected_version(if_match, body_version)?;
        let config = ChannelConfig::from_json(&value)?;
        let current = self.registry.get_channel(org, channel).await?;
        check_version(&current, expected, &format!("channel {channel}"))?;

        let snap = self.registry.org_snapshot(org).await?;
        only_enabled(&config, &snap.instances)?;
        for (i, a) in config.plugin_assignments.iter().enumerate() {
            let Some(d) = &a.data_adapter else { continue };
            let at = format!("/plugin_assignments/{i}/data_adapter");
            if let Some(inst) = snap.instances.iter().find(|x| x.value.plugin == a.plugin) {
                let m = self.manifest(&a.plugin, &inst.value.pinned_version).await?;
                supports(&m, d.kind, &at)?;
            }
            self.adapters.check(org, d, &at).await?;
        }
        // Each assigned instance as read: the write holds only while none has changed.
        let read: Vec<(PluginName, u64)> = config
            .plugin_assignments
            .iter()
            .filter_map(|a| {
                snap.instances
                    .iter()
                    .find(|i| i.value.plugin == a.plugin)
                    .map(|i| (a.plugin.clone(), i.version))
            })
            .collect();
        let version = self
            .registry
            .put_channel_checked(
                org,
                channel,
                &config,
                current.as_ref().map(|c| c.version),
                &read,
            )
            .await?;
        let status = if current.is_some() { 200 } else { 201 };
        ok(
            status,
            versioned_json(&Versioned {
                value: config,
                version,
            }),
        )
    }
}

/// 422 unless every plugin `config` assigns is enabled among `instances`.
pub(super) fn only_enabled(
    config: &ChannelConfig,
    instances: &[Versioned<PluginInstance>],
) -> Result<(), Error> {
    let mut details = Vec::new();
    for (i, a) in config.plugin_assignments.iter().enumerate() {
        let enabled = instances
            .iter()
            .any(|inst| inst.value.plugin == a.plugin && inst.value.enabled);
        if !enabled {
            details.push(Detail::new(
                format!("/plugin_assignments/{i}/plugin"),
                format!(
                    "{} is not enabled for this organization; enable it first",
                    a.plugin
                ),
            ));
        }
    }
    if !details.is_empty() {
        return Err(Error::Validation {
            code: "validation_failed",
            message: format!(
                "the channel assigns plugins this organization has not enabled: {}",
                details
                    .iter()
                    .map(|d| d.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            details,
        });
    }
    Ok(())
}
