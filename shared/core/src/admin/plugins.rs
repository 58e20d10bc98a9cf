//! The plugin library: listing, reading and publishing manifests.

use super::*;

impl AdminService {
    pub(super) async fn list_plugins(&self) -> Reply {
        let out: Vec<Value> = self
            .registry
            .library()
            .await?
            .into_iter()
            .map(|e| json!({"name": e.name, "latest": e.versions.last(), "versions": e.versions}))
            .collect();
        ok(200, json!({ "plugins": out }))
    }

    pub(super) async fn plugin_versions(&self, name: &PluginName) -> Reply {
        let versions = self.registry.manifest_versions(name).await?;
        let Some(latest) = versions.last() else {
            return Err(unknown_plugin(name));
        };
        let manifest = self.manifest(name, latest).await?;
        ok(
            200,
            json!({"name": name, "latest": latest, "versions": versions, "manifest": manifest}),
        )
    }

    pub(super) async fn manifest(
        &self,
        name: &PluginName,
        version: &str,
    ) -> Result<Manifest, Error> {
        self.registry
            .get_manifest(name, version)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("plugin {name} has no published version {version}"))
            })
    }

    pub(super) async fn publish(&self, body: &[u8]) -> Reply {
        let value = parse_body(body)?;
        // The whole manifest is checked: its own schema and every embedded schema compiles.
        let compiled = CompiledManifest::from_value(value).map_err(Error::from)?;
        let m = compiled.manifest();
        match self.registry.publish_manifest(m).await {
            Ok(Published::Created) => ok(
                201,
                json!({"name": m.name, "version": m.version, "created": true}),
            ),
            Ok(Published::Unchanged) => ok(
                200,
                json!({"name": m.name, "version": m.version, "created": false}),
            ),
            Err(crate::ports::StoreError::Conflict { .. }) => Err(Error::conflict(format!(
                "{} {} is already published with different content; versions are immutable, publish a new version",
                m.name, m.version
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
