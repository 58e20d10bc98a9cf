//! Tracing set-up: JSON lines on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text locally.
//! Call spans carry request id, tenant, plugin and function; parameters are never logged.

use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::settings::LogSettings;

/// Libraries whose TRACE output formats whole requests: the AWS SDK's carries request bodies
/// (a `CreateSecret`'s `SecretString`, DynamoDB items), hyper's and rustls' carry raw bytes.
/// Whatever level is asked for, they log at DEBUG at most.
const CAPPED: [&str; 8] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_secretsmanager",
    "aws_sdk_dynamodb",
    "hyper",
    "h2",
    "rustls",
];

fn capped(spec: &str) -> Targets {
    let mut targets: Targets = spec
        .to_ascii_lowercase()
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    for t in CAPPED {
        if targets.would_enable(t, &tracing::Level::TRACE) {
            targets = targets.with_target(t, tracing::Level::DEBUG);
        }
    }
    targets
}

/// A subscriber writing to `writer` as the settings say (JSON or human-readable, level).
pub fn subscriber<W>(log: &LogSettings, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    with_filter(capped(&log.level), log.json, writer)
}

/// Like [`subscriber`], at the level `spec` (e.g. `"trace"`), with the same caps.
pub fn subscriber_for<W>(spec: &str, json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    with_filter(capped(spec), json, writer)
}

fn with_filter<W>(filter: Targets, json: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(filter);
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
pub fn init(log: &LogSettings) {
    if tracing::subscriber::set_global_default(subscriber(log, std::io::stderr)).is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_dumping_libraries_never_trace() {
        let t = capped("trace");
        assert!(t.would_enable("switchboard", &tracing::Level::TRACE));
        assert!(!t.would_enable("aws_smithy_runtime::client", &tracing::Level::TRACE));
        assert!(t.would_enable("aws_smithy_runtime::client", &tracing::Level::DEBUG));
        assert!(!t.would_enable("hyper_util", &tracing::Level::TRACE));
        // The cap never raises a level.
        let t = capped("info");
        assert!(!t.would_enable("aws_smithy_runtime", &tracing::Level::DEBUG));
    }
}
