//! The instance configuration, read from the effective config on every call.

use serde::Deserialize;

/// The config as written in `config_schema` (camelCase keys); missing keys are off.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmConfig {
    /// A lead created with both an email and a phone starts as qualified.
    #[serde(default)]
    pub auto_qualify_leads: bool,
    /// A lead that becomes qualified waits for `ApproveLead` before it is listed.
    #[serde(default)]
    pub require_manager_approval: bool,
}
