//! The data adapter ports' implementations a plugin or the admin function builds: the per-call
//! factory over the built-in store, `rest` and `postgres` (feature `plugin`), and the
//! write-time config check (feature `admin`).

#[cfg(feature = "admin")]
mod check;
#[cfg(feature = "plugin")]
mod factory;

#[cfg(feature = "admin")]
pub use check::ConfigCheck;
#[cfg(feature = "plugin")]
pub use factory::DataAdapters;
