//! Tracing set-up: JSON lines on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text locally.
//! Call spans carry request id, tenant, plugin and function; parameters are never logged.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
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

/// The target of [`count_failure`]'s events. With JSON logs (Lambda) they are written as CloudWatch
/// embedded metric format lines, which CloudWatch Logs turns into metrics of the namespace
/// [`METRIC_NAMESPACE`] (dimensions `service`, and `service` with `function`); the
/// template alarms on them. Locally they are log lines like any other.
pub const METRIC_TARGET: &str = "switchboard::metric";
pub const METRIC_NAMESPACE: &str = "Switchboard";

/// Adds `value` to the metric `name`, a count of failures: at ERROR, so that a Lambda
/// application log level up to ERROR keeps the line, and whatever level `RUST_LOG` asks.
pub fn count_failure(name: &'static str, value: u64) {
    tracing::error!(target: METRIC_TARGET, metric = name, value);
}

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
    // Metrics are counted at any level.
    targets.with_target(METRIC_TARGET, LevelFilter::INFO)
}

/// One writer for both the log lines and the metric lines.
struct Shared<W>(std::sync::Arc<W>);

impl<W> Clone for Shared<W> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Shared<W> {
    type Writer = W::Writer;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// Writes [`count_failure`]'s events as embedded metric format documents, one line each.
struct Emf<W> {
    writer: W,
    /// The stack (`SWITCHBOARD_METRIC_SERVICE`), so that each stack's alarms see its own.
    service: String,
    function: String,
    unwritten: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct MetricFields {
    name: Option<String>,
    value: Option<u64>,
}

impl Visit for MetricFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "metric" {
            self.name = Some(value.to_owned());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "value" {
            self.value = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S, W> Layer<S> for Emf<W>
where
    S: Subscriber,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != METRIC_TARGET {
            return;
        }
        let mut fields = MetricFields::default();
        event.record(&mut fields);
        let (Some(name), Some(value)) = (fields.name, fields.value) else {
            return;
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let directive = serde_json::json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["service"], ["service", "function"]],
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        });
        // The metric first, so that it can never replace the document's own members.
        let mut doc = serde_json::json!({ name: value });
        for (k, v) in [
            ("_aws", directive),
            ("level", event.metadata().level().as_str().into()),
            ("service", self.service.as_str().into()),
            ("function", self.function.as_str().into()),
        ] {
            doc[k] = v;
        }
        // The log stream is the only place a metric goes: a line it refused is only counted.
        if writeln!(self.writer.make_writer(), "{doc}").is_err() {
            self.unwritten
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
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
        let env =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let service = env("SWITCHBOARD_METRIC_SERVICE", "switchboard");
        let function = env("AWS_LAMBDA_FUNCTION_NAME", "local");
        let writer = Shared(std::sync::Arc::new(writer));
        Box::new(
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_writer(writer.clone())
                        .with_filter(filter_fn(|m| m.target() != METRIC_TARGET)),
                )
                .with(Emf {
                    writer,
                    service,
                    function,
                    unwritten: std::sync::atomic::AtomicU64::new(0),
                }),
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
