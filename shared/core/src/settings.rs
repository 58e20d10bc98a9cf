//! Every setting a function reads from its environment, read once at start-up (in `main`) and
//! passed down. Nothing else in the platform reads an environment variable, and a malformed
//! value stops the start with a message naming the variable, instead of a silent default.

use std::path::PathBuf;
use std::time::Duration;

use crate::egress::Egress;

/// Where the registry and the built-in data live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    /// `SWITCHBOARD_STORE` unset or `dynamodb`: the tables `REGISTRY_TABLE` and `DATA_TABLE`.
    Dynamodb { registry: String, data: String },
    /// `SWITCHBOARD_STORE=sqlite:<path>`: the embedded store (`cargo lambda watch` on the
    /// dev store); needs a build with the `local` feature.
    Sqlite(PathBuf),
}

/// Log format and level (`AWS_LAMBDA_LOG_FORMAT`, `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    /// A `tracing` target filter, e.g. `info` or `warn,switchboard=debug`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            json: false,
            level: "info".to_owned(),
        }
    }
}

/// What the AWS SDK clients are built from: the variables Lambda sets for every function
/// (and `AWS_ENDPOINT_URL`, which points them at a local server). `Debug` redacts the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `AWS_ENDPOINT_URL`: every AWS service at this URL (moto, in tests and `scripts/moto`).
    pub endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_LAMBDA`: Lambda alone at this URL (moto cannot run functions).
    pub lambda_endpoint_url: Option<String>,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("access_key_id", &set(&self.access_key_id))
            .field("secret_access_key", &set(&self.secret_access_key))
            .field("session_token", &set(&self.session_token))
            .field("endpoint_url", &self.endpoint_url)
            .field("lambda_endpoint_url", &self.lambda_endpoint_url)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreSetting,
    /// Registry and agent cache TTL per container (`SWITCHBOARD_CACHE_TTL_SECS`, 30 s).
    pub cache_ttl: Duration,
    /// The API's public base URL, for Vapi and Retell tool URLs (`SWITCHBOARD_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// Credentials live under `<prefix>/<org>/` (`SWITCHBOARD_SECRET_PREFIX`, `switchboard`).
    pub secret_prefix: String,
    /// Secret cache TTL per container (`SWITCHBOARD_SECRET_TTL_SECS`, 300 s).
    pub secret_ttl: Duration,
    /// The oldest cached secret served while Secrets Manager is unreachable
    /// (`SWITCHBOARD_SECRET_MAX_STALE_SECS`, 86400 s); older, calls fail closed with 503.
    pub secret_max_stale: Duration,
    /// Where tenant-configured upstreams may be (`SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS`).
    pub egress: Egress,
    pub log: LogSettings,
    pub aws: AwsSettings,
    /// Browser origins the MCP server answers (`SWITCHBOARD_MCP_ALLOWED_ORIGINS`, comma
    /// separated; none by default: a request with any `Origin` is refused).
    pub mcp_origins: Vec<String>,
    /// Each plugin's Lambda function (`SWITCHBOARD_PLUGIN_FUNCTIONS`, `<plugin>=<function
    /// name or ARN>` pairs, comma separated): where the MCP function sends tool calls.
    pub plugin_functions: Vec<(crate::ids::PluginName, String)>,
    /// An organization's tool calls per second unless its profile sets its own
    /// (`SWITCHBOARD_RATE_LIMIT_PER_SECOND`, 100).
    pub rate_limit_per_second: u32,
    /// The most tokens a container leases ahead of its calls
    /// (`SWITCHBOARD_RATE_LIMIT_ALLOWANCE`, 10; 0 for a round trip per call).
    pub rate_limit_allowance: u32,
    /// Where a plugin's scheduled calls go on AWS; none without `SWITCHBOARD_SCHEDULE_GROUP`.
    pub scheduler: Option<SchedulerSettings>,
}

/// EventBridge Scheduler for a plugin's scheduled calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// The stack's schedule group (`SWITCHBOARD_SCHEDULE_GROUP`).
    pub group: String,
    /// The role the scheduler assumes to invoke the function
    /// (`SWITCHBOARD_SCHEDULER_ROLE_ARN`).
    pub role_arn: String,
    /// The function the schedules invoke: `SWITCHBOARD_SCHEDULER_TARGET`, else this
    /// function (`AWS_LAMBDA_FUNCTION_NAME`, in the role's partition and account and
    /// `AWS_REGION`), since a template cannot give a function its own ARN.
    pub target_arn: String,
}

impl Default for Settings {
    /// What an empty environment gives.
    fn default() -> Self {
        Self {
            store: StoreSetting::Dynamodb {
                registry: "switchboard-registry".to_owned(),
                data: "switchboard-data".to_owned(),
            },
            cache_ttl: Duration::from_secs(30),
            public_url: None,
            secret_prefix: "switchboard".to_owned(),
            secret_ttl: Duration::from_secs(300),
            secret_max_stale: crate::secrets::MAX_STALE,
            egress: Egress::public_only(),
            log: LogSettings::default(),
            aws: AwsSettings::default(),
            mcp_origins: Vec::new(),
            plugin_functions: Vec::new(),
            rate_limit_per_second: crate::ratelimit::DEFAULT_PER_SECOND,
            rate_limit_allowance: crate::ratelimit::DEFAULT_ALLOWANCE,
            scheduler: None,
        }
    }
}

/// A setting that cannot be used; the message names the variable and what it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a test's table).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut s = Settings::default();
        let get = |name: &str| get(name).map(|v| v.trim().to_owned());
        let nonempty = |name: &str| get(name).filter(|v| !v.is_empty());

        match nonempty("SWITCHBOARD_STORE").as_deref() {
            None | Some("dynamodb") => {
                s.store = StoreSetting::Dynamodb {
                    registry: nonempty("REGISTRY_TABLE")
                        .unwrap_or_else(|| "switchboard-registry".to_owned()),
                    data: nonempty("DATA_TABLE").unwrap_or_else(|| "switchboard-data".to_owned()),
                };
            }
            Some(other) => match other.strip_prefix("sqlite:").filter(|p| !p.is_empty()) {
                Some(path) => s.store = StoreSetting::Sqlite(PathBuf::from(path)),
                None => {
                    return Err(SettingsError(format!(
                        "SWITCHBOARD_STORE must be 'dynamodb' or 'sqlite:<path>', not '{other}'"
                    )));
                }
            },
        }
        if let Some(v) = nonempty("SWITCHBOARD_CACHE_TTL_SECS") {
            s.cache_ttl = seconds("SWITCHBOARD_CACHE_TTL_SECS", &v)?;
        }
        if let Some(v) = nonempty("SWITCHBOARD_SECRET_TTL_SECS") {
            s.secret_ttl = seconds("SWITCHBOARD_SECRET_TTL_SECS", &v)?;
        }
        if let Some(v) = nonempty("SWITCHBOARD_SECRET_MAX_STALE_SECS") {
            s.secret_max_stale = seconds("SWITCHBOARD_SECRET_MAX_STALE_SECS", &v)?;
        }
        if let Some(url) = nonempty("SWITCHBOARD_PUBLIC_URL") {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(SettingsError(format!(
                    "SWITCHBOARD_PUBLIC_URL must be the API's http(s) base URL, e.g. https://api.example.com, not '{url}'"
                )));
            }
            s.public_url = Some(url.trim_end_matches('/').to_owned());
        }
        if let Some(p) = nonempty("SWITCHBOARD_SECRET_PREFIX") {
            s.secret_prefix = p.trim_end_matches('/').to_owned();
        }
        s.egress = match get("SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS").as_deref() {
            None | Some("" | "0") => Egress::public_only(),
            Some("1") => Egress::new(true),
            Some(other) => {
                return Err(SettingsError(format!(
                    "SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS must be 1 (allow) or 0, not '{other}'"
                )));
            }
        };
        s.aws = AwsSettings {
            region: nonempty("AWS_REGION").or_else(|| nonempty("AWS_DEFAULT_REGION")),
            access_key_id: nonempty("AWS_ACCESS_KEY_ID"),
            secret_access_key: nonempty("AWS_SECRET_ACCESS_KEY"),
            session_token: nonempty("AWS_SESSION_TOKEN"),
            endpoint_url: nonempty("AWS_ENDPOINT_URL"),
            lambda_endpoint_url: nonempty("AWS_ENDPOINT_URL_LAMBDA"),
        };
        if let Some(list) = nonempty("SWITCHBOARD_MCP_ALLOWED_ORIGINS") {
            for origin in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let host = origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"));
                let shaped = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#']));
                if !shaped {
                    return Err(SettingsError(format!(
                        "SWITCHBOARD_MCP_ALLOWED_ORIGINS takes origins like https://app.example.com (scheme and host, no path), not '{origin}'"
                    )));
                }
                s.mcp_origins.push(origin.to_owned());
            }
        }
        if let Some(list) = nonempty("SWITCHBOARD_PLUGIN_FUNCTIONS") {
            for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let parsed = pair.split_once('=').and_then(|(plugin, function)| {
                    let plugin = crate::ids::PluginName::parse(plugin.trim()).ok()?;
                    let function = function.trim();
                    (!function.is_empty()).then(|| (plugin, function.to_owned()))
                });
                match parsed {
                    Some(p) => s.plugin_functions.push(p),
                    None => {
                        return Err(SettingsError(format!(
                            "SWITCHBOARD_PLUGIN_FUNCTIONS takes <plugin>=<function> pairs separated by commas, e.g. booking=my-stack-BookingFunction-1A2B, not '{pair}'"
                        )));
                    }
                }
            }
        }
        if let Some(v) = nonempty("SWITCHBOARD_RATE_LIMIT_PER_SECOND") {
            let max = crate::ratelimit::MAX_PER_SECOND;
            s.rate_limit_per_second = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    SettingsError(format!(
                        "SWITCHBOARD_RATE_LIMIT_PER_SECOND must be 1 to {max} tool calls per second, not '{v}'"
                    ))
                })?;
        }
        if let Some(v) = nonempty("SWITCHBOARD_RATE_LIMIT_ALLOWANCE") {
            s.rate_limit_allowance =
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 1000)
                    .ok_or_else(|| {
                        SettingsError(format!(
                            "SWITCHBOARD_RATE_LIMIT_ALLOWANCE must be 0 to 1000 tokens, not '{v}'"
                        ))
                    })?;
        }
        if let Some(group) = nonempty("SWITCHBOARD_SCHEDULE_GROUP") {
            let role_arn = nonempty("SWITCHBOARD_SCHEDULER_ROLE_ARN").ok_or_else(|| {
                SettingsError(
                    "SWITCHBOARD_SCHEDULE_GROUP is set without SWITCHBOARD_SCHEDULER_ROLE_ARN, the role the scheduler invokes functions as".into(),
                )
            })?;
            // arn:<partition>:iam::<account>:role/<name>
            let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
            let (partition, account) = match parts.as_slice() {
                ["arn", partition, "iam", "", account, role]
                    if role.starts_with("role/") && !account.is_empty() =>
                {
                    (*partition, *account)
                }
                _ => {
                    return Err(SettingsError(format!(
                        "SWITCHBOARD_SCHEDULER_ROLE_ARN must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not '{role_arn}'"
                    )));
                }
            };
            let target_arn = match nonempty("SWITCHBOARD_SCHEDULER_TARGET") {
                Some(t) => t,
                None => {
                    let region = nonempty("AWS_REGION").or_else(|| nonempty("AWS_DEFAULT_REGION"));
                    match (region, nonempty("AWS_LAMBDA_FUNCTION_NAME")) {
                        (Some(region), Some(function)) => {
                            format!("arn:{partition}:lambda:{region}:{account}:function:{function}")
                        }
                        _ => {
                            return Err(SettingsError(
                                "SWITCHBOARD_SCHEDULE_GROUP is set, and the function to schedule calls to is unknown: set SWITCHBOARD_SCHEDULER_TARGET (outside Lambda) or AWS_REGION and AWS_LAMBDA_FUNCTION_NAME".into(),
                            ));
                        }
                    }
                }
            };
            s.scheduler = Some(SchedulerSettings {
                group,
                role_arn,
                target_arn,
            });
        }
        s.log = LogSettings {
            json: get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            level: nonempty("RUST_LOG")
                .or_else(|| nonempty("AWS_LAMBDA_LOG_LEVEL"))
                .unwrap_or_else(|| "info".to_owned()),
        };
        Ok(s)
    }
}

fn seconds(name: &str, value: &str) -> Result<Duration, SettingsError> {
    value.parse::<u64>().map(Duration::from_secs).map_err(|_| {
        SettingsError(format!(
            "{name} must be a whole number of seconds, not '{value}'"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn an_empty_environment_gives_the_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.store,
            StoreSetting::Dynamodb {
                registry: "switchboard-registry".into(),
                data: "switchboard-data".into()
            }
        );
        assert_eq!(s.cache_ttl, Duration::from_secs(30));
        assert_eq!(s.secret_ttl, Duration::from_secs(300));
        assert_eq!(s.secret_max_stale, Duration::from_secs(86_400));
        assert_eq!(s.secret_prefix, "switchboard");
        assert!(!s.egress.allows_private());
        assert_eq!(s.log, LogSettings::default());
        assert_eq!((s.rate_limit_per_second, s.rate_limit_allowance), (100, 10));
    }

    #[test]
    fn the_scheduler_targets_this_function_unless_told() {
        let role = (
            "SWITCHBOARD_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/sb-scheduler",
        );
        let s = settings(&[
            ("SWITCHBOARD_SCHEDULE_GROUP", "sb"),
            role,
            ("AWS_REGION", "us-east-1"),
            ("AWS_LAMBDA_FUNCTION_NAME", "sb-SmsFunction-x1"),
        ])
        .unwrap();
        assert_eq!(
            s.scheduler.unwrap().target_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:sb-SmsFunction-x1"
        );
        let s = settings(&[
            ("SWITCHBOARD_SCHEDULE_GROUP", "sb"),
            role,
            (
                "SWITCHBOARD_SCHEDULER_TARGET",
                "arn:aws:lambda:us-east-1:1:function:f",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.scheduler.unwrap().target_arn,
            "arn:aws:lambda:us-east-1:1:function:f"
        );
        assert!(settings(&[]).unwrap().scheduler.is_none());
        for bad in [
            vec![("SWITCHBOARD_SCHEDULE_GROUP", "sb")],
            vec![
                ("SWITCHBOARD_SCHEDULE_GROUP", "sb"),
                ("SWITCHBOARD_SCHEDULER_ROLE_ARN", "sb-scheduler"),
            ],
            vec![("SWITCHBOARD_SCHEDULE_GROUP", "sb"), role],
        ] {
            let e = settings(&bad).unwrap_err().to_string();
            assert!(e.contains("SWITCHBOARD_SCHEDULE"), "{e}");
        }
    }

    #[test]
    fn every_variable_is_read() {
        let s = settings(&[
            ("SWITCHBOARD_STORE", "sqlite:/tmp/x.db"),
            ("SWITCHBOARD_CACHE_TTL_SECS", "0"),
            ("SWITCHBOARD_SECRET_TTL_SECS", "60"),
            ("SWITCHBOARD_SECRET_MAX_STALE_SECS", "3600"),
            ("SWITCHBOARD_PUBLIC_URL", "https://api.example.com/"),
            ("SWITCHBOARD_SECRET_PREFIX", "prod/"),
            ("SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS", "1"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "debug"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:5001"),
            (
                "SWITCHBOARD_MCP_ALLOWED_ORIGINS",
                "https://app.example.com, http://localhost:6274",
            ),
            (
                "SWITCHBOARD_PLUGIN_FUNCTIONS",
                "booking=stack-BookingFunction-1,crm=arn:aws:lambda:eu-west-1:1:function:crm",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.aws.lambda_endpoint_url.as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(
            s.mcp_origins,
            ["https://app.example.com", "http://localhost:6274"]
        );
        let functions: Vec<(&str, &str)> = s
            .plugin_functions
            .iter()
            .map(|(p, f)| (p.as_str(), f.as_str()))
            .collect();
        assert_eq!(
            functions,
            [
                ("booking", "stack-BookingFunction-1"),
                ("crm", "arn:aws:lambda:eu-west-1:1:function:crm")
            ]
        );
        assert_eq!(s.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            s.aws.secret_access_key.as_deref(),
            Some("wJalrXUtnFEMI-secret")
        );
        assert!(
            !format!("{s:?}").contains("wJalrXUtnFEMI"),
            "the keys are redacted"
        );
        assert_eq!(s.store, StoreSetting::Sqlite("/tmp/x.db".into()));
        assert_eq!(s.cache_ttl, Duration::ZERO);
        assert_eq!(s.secret_ttl, Duration::from_secs(60));
        assert_eq!(s.secret_max_stale, Duration::from_secs(3600));
        assert_eq!(s.public_url.as_deref(), Some("https://api.example.com"));
        assert_eq!(s.secret_prefix, "prod");
        assert!(s.egress.allows_private());
        assert_eq!(
            s.log,
            LogSettings {
                json: true,
                level: "debug".into()
            }
        );
        let s = settings(&[("REGISTRY_TABLE", "r"), ("DATA_TABLE", "d")]).unwrap();
        assert_eq!(
            s.store,
            StoreSetting::Dynamodb {
                registry: "r".into(),
                data: "d".into()
            }
        );
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("SWITCHBOARD_STORE", "postgres"),
            ("SWITCHBOARD_STORE", "sqlite:"),
            ("SWITCHBOARD_CACHE_TTL_SECS", "30s"),
            ("SWITCHBOARD_SECRET_TTL_SECS", "-1"),
            ("SWITCHBOARD_PUBLIC_URL", "api.example.com"),
            ("SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS", "yes"),
            ("SWITCHBOARD_MCP_ALLOWED_ORIGINS", "app.example.com"),
            (
                "SWITCHBOARD_MCP_ALLOWED_ORIGINS",
                "https://app.example.com/",
            ),
            ("SWITCHBOARD_PLUGIN_FUNCTIONS", "booking"),
            ("SWITCHBOARD_PLUGIN_FUNCTIONS", "book ing=fn"),
            ("SWITCHBOARD_PLUGIN_FUNCTIONS", "booking="),
            ("SWITCHBOARD_RATE_LIMIT_PER_SECOND", "0"),
            ("SWITCHBOARD_RATE_LIMIT_PER_SECOND", "10001"),
            ("SWITCHBOARD_RATE_LIMIT_ALLOWANCE", "-1"),
        ] {
            let e = settings(&[(var, value)]).unwrap_err();
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }
}
