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

/// Builds the plugin; fails if the manifest and the handlers disagree.
pub fn plugin() -> Result<Plugin, ContractError> {
    Plugin::builder(MANIFEST)
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
