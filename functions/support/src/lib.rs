//! The support plugin: support requests taken on calls and chats, stored as tickets with a
//! priority, contact details, a status history and comments, through the instance's data
//! adapter.

pub mod config;
pub mod records;
pub mod rules;
mod tickets;

use switchboard::{ContractError, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// The messages callers hear, by language (`locales/*.ftl`).
pub(crate) const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// Builds the plugin; fails if the manifest and the handlers disagree, or the messages do
/// not parse or differ between languages.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("CreateTicket", tickets::create_ticket)
        .handler("GetTicket", tickets::get_ticket)
        .handler("ListTickets", tickets::list_tickets)
        .handler("UpdateTicketStatus", tickets::update_ticket_status)
        .handler("AddTicketComment", tickets::add_ticket_comment)
        .build()
}
