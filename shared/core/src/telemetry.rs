//! Tracing set-up: JSON lines on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text locally.
//! Call spans carry request id, tenant, plugin and function; parameters are never logged.

use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::settings::LogSettings;

/// Libraries whose TRACE output formats whole requests: the AWS SDK's carries request bodies
/// (a `CreateSecret`'s `SecretString`, DynamoDB items), hyper's, rustls' and the postgres
/// driver's carry raw bytes or statements. Whatever level is asked for, they and their
/// modules log at DEBUG at most.
const CAPPED: [&str; 11] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_secretsmanager",
    "aws_sdk_dynamodb",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "h2",
    "rustls",
    "tokio_postgres",
];

fn is_capped(target: &str) -> bool {
    CAPPED.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

fn capped(spec: &str) -> Targets {
    let asked: Targets = spec
        .to_ascii_lowercase()
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let debug = LevelFilter::DEBUG;
    // Every directive, capped when it names a capped library or one of its modules.
    let mut targets = asked
        .iter()
        .map(|(t, level)| {
            (
                t.to_owned(),
                if is_capped(t) {
                    level.min(debug)
                } else {
                    level
                },
            )
        })
        .fold(Targets::new(), |acc, (t, level)| acc.with_target(t, level));
    if let Some(default) = asked.default_level() {
        targets = targets.with_default(default);
    }
    // And the libraries themselves, where the default would let them trace.
    for t in CAPPED {
        if targets.would_enable(t, &tracing::Level::TRACE) {
            targets = targets.with_target(t, debug);
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
        // A directive naming a module of a capped library is capped too.
        let t = capped("info,aws_smithy_runtime::client::orchestrator=trace,hyper_util=trace");
        let orchestrator = "aws_smithy_runtime::client::orchestrator";
        assert!(!t.would_enable(orchestrator, &tracing::Level::TRACE));
        assert!(t.would_enable(orchestrator, &tracing::Level::DEBUG));
        assert!(!t.would_enable("hyper_util::client", &tracing::Level::TRACE));
        assert!(!t.would_enable("hyperdrive", &tracing::Level::DEBUG));
    }
}
