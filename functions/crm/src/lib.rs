//! The CRM plugin: captures sales leads from calls and chats and moves them through a
//! status workflow (new, contacted, qualified, lost), stored through the instance's data
//! adapter.

pub mod config;
mod leads;
pub mod records;

use switchboard::{ContractError, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// The credential scope ApproveLead requires: staff tools, not a public caller's channel.
pub const APPROVE_SCOPE: &str = "leads:approve";

/// The messages callers hear, by language (`locales/*.ftl`).
pub(crate) const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// Builds the plugin; fails if the manifest and the handlers disagree, or the messages do
/// not parse or differ between languages.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("CreateLead", leads::create_lead)
        .handler("GetLeadsByStatus", leads::get_leads_by_status)
        .handler("GetLead", leads::get_lead)
        .handler("UpdateLeadStatus", leads::update_lead_status)
        .handler("ApproveLead", leads::approve_lead)
        .build()
}
