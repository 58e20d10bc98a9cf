//! The booking plugin: a dental receptionist over OpenDental-style patients, providers,
//! operatories and appointments, stored through the instance's data adapter.

mod appointments;
mod claims;
pub mod config;
mod patients;
pub mod records;
pub mod rules;

use switchboard::{ContractError, Plugin};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// The messages callers hear, by language (`locales/*.ftl`).
const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// The plugin's messages in `locale`, for the rules' unit tests (calls get theirs from
/// the context).
#[cfg(test)]
pub(crate) fn speaker(locale: &str) -> switchboard::Speaker {
    static MESSAGES: std::sync::OnceLock<std::sync::Arc<switchboard::i18n::Messages>> =
        std::sync::OnceLock::new();
    let m = MESSAGES
        .get_or_init(|| std::sync::Arc::new(switchboard::i18n::Messages::new(LOCALES).unwrap()));
    switchboard::Speaker::new(Some(m.clone()), locale)
}

/// Builds the plugin; fails if the manifest and the handlers disagree, or the messages do
/// not parse or differ between languages.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("GetAllPatients", patients::get_all_patients)
        .handler("GetPatient", patients::get_patient)
        .handler("SearchPatients", patients::search_patients)
        .handler("CreatePatient", patients::create_patient)
        .handler("GetProviders", patients::get_providers)
        .handler("GetAvailableSlots", appointments::get_available_slots)
        .handler("CreateAppointment", appointments::create_appointment)
        .handler("GetAppointments", appointments::get_appointments)
        .handler(
            "RescheduleAppointment",
            appointments::reschedule_appointment,
        )
        .handler("CancelAppointment", appointments::cancel_appointment)
        .build()
}
