//! Tracing set-up: JSON lines on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text locally.
//! Call spans carry request id, tenant, plugin and function; parameters are never logged.

use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

fn level_filter() -> Targets {
    let spec = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_ascii_lowercase();
    spec.parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

/// A subscriber writing to `writer`: JSON when `json`, else human-readable.
pub fn subscriber<W>(json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(level_filter());
    if json {
        Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            ),
        )
    } else {
        Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(writer),
            ),
        )
    }
}

/// Installs the process-wide subscriber once; later calls are no-ops.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if tracing::subscriber::set_global_default(subscriber(json, std::io::stderr)).is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
}
