//! `switchboard`: the local dev server and operator commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::{Map, Value};
use switchboard_cli::{dev, ops};

/// Switchboard: a multi-tenant plugin platform for AI voice and chat agents.
///
/// Operator commands call the admin API at --url with --key: the same commands work against
/// `dev` and a deployed stack's ApiUrl. Output is for people; add --json for scripts. A
/// refused request prints the API's message and exits 1; a usage mistake exits 2.
#[derive(Parser)]
#[command(name = "switchboard", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the admin API is, and as whom to call it.
#[derive(Args)]
struct Remote {
    /// The API's base URL.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:3000")]
    url: String,
    /// An API key (`sb_…`); kept out of the process list when given by environment.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// Send the key over plain http:// to a host other than this machine (it would cross
    /// the network readable by anyone on the path).
    #[arg(long)]
    allow_insecure: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every function's routes on one local port, on the embedded store. Seeds a demo
    /// dental practice on first start and prints an API key and a curl line that books.
    Dev {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// The embedded store's directory; delete it to start over.
        #[arg(long, default_value = ".switchboard")]
        data_dir: PathBuf,
    },
    /// Plugin manifests: check one offline, or publish one to the library.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// List the plugin library: every plugin and its versions.
    Plugins {
        #[command(flatten)]
        remote: Remote,
    },
    /// Organizations and their plugin instances.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Channel configs.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// API keys of the caller's organization.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Agents as channels get them.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Credentials in the secret store (values from a file, never from the command line).
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Amazon Bedrock agent aliases mapped to an organization and channel, so their action
    /// groups can call the plugin functions.
    #[command(subcommand)]
    Bedrock(BedrockCommand),
    /// Plugin data, on the tables directly: AWS credentials and the functions' table settings
    /// from the environment, or `--data-dir` for `dev`'s store.
    #[command(subcommand)]
    Data(DataCommand),
    /// The organization's audit log, newest first (needs `audit:read` or `admin:write`).
    Audit {
        /// Oldest entry: epoch milliseconds or RFC 3339 (default: 24 hours before --to).
        #[arg(long)]
        from: Option<String>,
        /// Newest entry (default: now).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long)]
        function: Option<String>,
        /// An HTTP status (409) or a class (4xx).
        #[arg(long)]
        status: Option<String>,
        /// Entries per page (1-200).
        #[arg(long)]
        limit: Option<u16>,
        /// The cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print a shell completion script, e.g. `switchboard completions bash > /etc/bash_completion.d/switchboard`.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Write the index entries of a plugin's existing records and remove stale ones
    /// (idempotent; safe beside live calls; resumable with --from).
    Reindex(switchboard_cli::data::Options),
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Check a manifest as a plugin's start-up does (the format's JSON Schema, unique names,
    /// schemas that compile, a default config and examples that fit); lists every problem
    /// with its JSON pointer and exits 1 if there is any. Offline.
    Validate {
        file: PathBuf,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish a manifest to the plugin library (needs `platform:publish`).
    Publish {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and print its first admin key (needs `platform:orgs`).
    Create {
        /// The organization's id, e.g. `acme`.
        org: String,
        /// Its display name, e.g. "Acme Support".
        #[arg(long)]
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Enable a plugin for the caller's organization.
    Enable {
        plugin: String,
        /// Pin (or upgrade to) this published version.
        #[arg(long = "version")]
        pinned: Option<String>,
        /// The instance's config, as JSON.
        #[arg(long)]
        config: Option<String>,
        /// The data adapter, as JSON, e.g. '{"type": "api", …}' for a vendor plugin.
        #[arg(long)]
        data_adapter: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Disable a plugin (its config is kept).
    Disable {
        plugin: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a plugin instance's config, data adapter or pinned version.
    Configure {
        plugin: String,
        /// The instance's config, as JSON.
        #[arg(long)]
        config: Option<String>,
        /// The data adapter, as JSON, e.g. '{"type": "rest", …}'.
        #[arg(long)]
        data_adapter: Option<String>,
        /// Pin (or upgrade to) this published version.
        #[arg(long = "version")]
        pinned: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show or change the organization's profile (only the options given change).
    Profile {
        #[arg(long)]
        display_name: Option<String>,
        /// An IANA time zone, e.g. America/New_York.
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long)]
        locale: Option<String>,
        /// How long idempotent calls are replayed, 1 to 168 hours.
        #[arg(long, conflicts_with = "default_idempotency_ttl")]
        idempotency_ttl_hours: Option<u64>,
        /// Back to the platform's 24 hours.
        #[arg(long)]
        default_idempotency_ttl: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Assign a plugin to a channel (replacing its earlier assignment).
    Assign {
        channel: String,
        plugin: String,
        /// Lower comes first in the agent's instructions and tools.
        #[arg(long, default_value_t = 1)]
        priority: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Set the language the channel's agent speaks (a BCP 47 tag, e.g. es-US), or `none` to
    /// follow the organization profile's locale.
    Locale {
        channel: String,
        locale: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Let a voice platform call the channel's plugins with its own signature instead of an
    /// API key, or Twilio send them its webhooks; prints the URLs to paste into Retell or
    /// Vapi, or to set as a plugin's Twilio callback (e.g. sms's statusCallbackUrl).
    Connect {
        /// retell, vapi or twilio.
        platform: String,
        channel: String,
        /// The credential holding the signing secret: field `api_key` (Retell's API key),
        /// `secret` (Vapi's server credential) or `auth_token` (the Twilio account's auth
        /// token, which signs its webhooks). Store it first with `credential set`.
        #[arg(long)]
        credential: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the organization's voice-platform connections and their URLs.
    Connections {
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a connection: its URLs stop working.
    Disconnect {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum BedrockCommand {
    /// Map an agent alias to an organization's channel (a platform operator's key).
    Map {
        /// The agent's id (10 characters).
        #[arg(long)]
        agent_id: String,
        /// The alias's id, e.g. TSTALIASID.
        #[arg(long)]
        alias_id: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        channel: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the agent aliases mapped to the caller's organization.
    Agents {
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove an alias's mapping: its action group calls are refused (a platform operator's key).
    Unmap {
        #[arg(long)]
        agent_id: String,
        #[arg(long)]
        alias_id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key; it is shown once.
    Create {
        /// Comma-separated, e.g. agents:read,plugins:call.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// A name to recognise it by.
        #[arg(long)]
        name: Option<String>,
        /// Bind the key to a channel (e.g. retell): it may then call only the plugins
        /// assigned and enabled there, and read only that channel's agent.
        #[arg(long)]
        channel: Option<String>,
        /// Tool calls a second this key may make (1-10000), within the organization's
        /// limit: one key's flood then leaves the organization's other keys their share.
        #[arg(long)]
        rate_limit: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the organization's keys (never the keys themselves).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a key by its id.
    Revoke {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// The channel's agent: instructions and tools, optionally in a dialect.
    Preview {
        channel: String,
        /// openai, openai-responses, anthropic, bedrock, mcp, vapi or retell.
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Store a credential from a JSON file of string fields.
    Set {
        name: String,
        #[arg(long)]
        from_file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a credential's metadata (never its value).
    Show {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev { addr, data_dir } => run_dev(dev::Options { addr, data_dir }),
        Command::Manifest(ManifestCommand::Validate { file, json }) => {
            validate_manifest(&file, json)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "switchboard",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Data(DataCommand::Reindex(opts)) => run_reindex(opts),
        other => operator(other),
    }
}

fn json_arg(name: &str, value: Option<String>) -> Result<Option<Value>, ops::Failure> {
    value
        .map(|v| {
            serde_json::from_str(&v).map_err(|e| ops::Failure(format!("--{name} is not JSON: {e}")))
        })
        .transpose()
}

fn operator(command: Command) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (result, json) = rt.block_on(run_operator(command));
    match result {
        Ok(o) => {
            if json {
                match serde_json::to_string_pretty(&o.json) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!("{}", o.text);
            }
            ExitCode::SUCCESS
        }
        Err(ops::Failure(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an operator command; returns its outcome and whether `--json` was asked for.
async fn run_operator(command: Command) -> (Result<ops::Output, ops::Failure>, bool) {
    let remote = match &command {
        Command::Plugins { remote }
        | Command::Manifest(ManifestCommand::Publish { remote, .. })
        | Command::Org(
            OrgCommand::Create { remote, .. }
            | OrgCommand::Enable { remote, .. }
            | OrgCommand::Disable { remote, .. }
            | OrgCommand::Configure { remote, .. }
            | OrgCommand::Profile { remote, .. },
        )
        | Command::Channel(
            ChannelCommand::Assign { remote, .. }
            | ChannelCommand::Locale { remote, .. }
            | ChannelCommand::Connect { remote, .. }
            | ChannelCommand::Connections { remote }
            | ChannelCommand::Disconnect { remote, .. },
        )
        | Command::Bedrock(
            BedrockCommand::Map { remote, .. }
            | BedrockCommand::Agents { remote }
            | BedrockCommand::Unmap { remote, .. },
        )
        | Command::Key(
            KeyCommand::Create { remote, .. }
            | KeyCommand::List { remote }
            | KeyCommand::Revoke { remote, .. },
        )
        | Command::Agent(AgentCommand::Preview { remote, .. })
        | Command::Audit { remote, .. }
        | Command::Credential(
            CredentialCommand::Set { remote, .. } | CredentialCommand::Show { remote, .. },
        ) => remote,
        Command::Dev { .. }
        | Command::Completions { .. }
        | Command::Data(_)
        | Command::Manifest(ManifestCommand::Validate { .. }) => {
            return (Err(ops::Failure("not an operator command".into())), false);
        }
    };
    let json = remote.json;
    let api = match ops::Api::new(
        &remote.url,
        remote.key.as_deref().unwrap_or_default(),
        remote.allow_insecure,
    ) {
        Ok(api) => api,
        Err(e) => return (Err(e), json),
    };
    (dispatch(&api, command).await, json)
}

async fn dispatch(api: &ops::Api, command: Command) -> Result<ops::Output, ops::Failure> {
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    match command {
        Command::Manifest(ManifestCommand::Publish { file, .. }) => {
            ops::publish(api, &path(&file)).await
        }
        Command::Plugins { .. } => ops::plugins(api).await,
        Command::Org(OrgCommand::Create { org, name, .. }) => {
            ops::org_create(api, &org, &name).await
        }
        Command::Org(OrgCommand::Enable {
            plugin,
            pinned,
            config,
            data_adapter,
            ..
        }) => {
            let patch = instance_patch(
                Some(true),
                pinned,
                json_arg("config", config)?,
                json_arg("data-adapter", data_adapter)?,
            );
            ops::instance(api, &plugin, patch, "enable").await
        }
        Command::Org(OrgCommand::Disable { plugin, .. }) => {
            let patch = instance_patch(Some(false), None, None, None);
            ops::instance(api, &plugin, patch, "disable").await
        }
        Command::Org(OrgCommand::Configure {
            plugin,
            config,
            data_adapter,
            pinned,
            ..
        }) => {
            let patch = instance_patch(
                None,
                pinned,
                json_arg("config", config)?,
                json_arg("data-adapter", data_adapter)?,
            );
            ops::instance(api, &plugin, patch, "configure").await
        }
        Command::Org(OrgCommand::Profile {
            display_name,
            timezone,
            locale,
            idempotency_ttl_hours,
            default_idempotency_ttl,
            ..
        }) => {
            let mut patch = serde_json::Map::new();
            for (field, value) in [
                ("display_name", display_name),
                ("timezone", timezone),
                ("locale", locale),
            ] {
                if let Some(v) = value {
                    patch.insert(field.into(), v.into());
                }
            }
            if let Some(h) = idempotency_ttl_hours {
                patch.insert("idempotency_ttl_hours".into(), h.into());
            }
            if default_idempotency_ttl {
                patch.insert("idempotency_ttl_hours".into(), serde_json::Value::Null);
            }
            ops::profile(api, patch).await
        }
        Command::Channel(ChannelCommand::Assign {
            channel,
            plugin,
            priority,
            ..
        }) => ops::assign(api, &channel, &plugin, priority).await,
        Command::Channel(ChannelCommand::Locale {
            channel, locale, ..
        }) => ops::channel_locale(api, &channel, &locale).await,
        Command::Channel(ChannelCommand::Connect {
            platform,
            channel,
            credential,
            ..
        }) => ops::connect(api, &platform, &channel, &credential).await,
        Command::Channel(ChannelCommand::Connections { .. }) => ops::connections(api).await,
        Command::Channel(ChannelCommand::Disconnect { id, .. }) => ops::disconnect(api, &id).await,
        Command::Bedrock(BedrockCommand::Map {
            agent_id,
            alias_id,
            org,
            channel,
            ..
        }) => ops::bedrock_map(api, &agent_id, &alias_id, &org, &channel).await,
        Command::Bedrock(BedrockCommand::Agents { .. }) => ops::bedrock_agents(api).await,
        Command::Bedrock(BedrockCommand::Unmap {
            agent_id, alias_id, ..
        }) => ops::bedrock_unmap(api, &agent_id, &alias_id).await,
        Command::Key(KeyCommand::Create {
            scopes,
            name,
            channel,
            rate_limit,
            ..
        }) => {
            let scopes: Vec<String> = scopes
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            ops::key_create(
                api,
                name.as_deref(),
                &scopes,
                channel.as_deref(),
                rate_limit,
            )
            .await
        }
        Command::Key(KeyCommand::List { .. }) => ops::key_list(api).await,
        Command::Audit {
            from,
            to,
            plugin,
            function,
            status,
            limit,
            cursor,
            ..
        } => {
            let limit = limit.map(|l| l.to_string());
            let params = [
                ("from", from),
                ("to", to),
                ("plugin", plugin),
                ("function", function),
                ("status", status),
                ("limit", limit),
                ("cursor", cursor),
            ];
            ops::audit(api, &params).await
        }
        Command::Key(KeyCommand::Revoke { id, .. }) => ops::key_revoke(api, &id).await,
        Command::Agent(AgentCommand::Preview {
            channel, format, ..
        }) => ops::agent_preview(api, &channel, format.as_deref()).await,
        Command::Credential(CredentialCommand::Set {
            name, from_file, ..
        }) => ops::credential_set(api, &name, &path(&from_file)).await,
        Command::Credential(CredentialCommand::Show { name, .. }) => {
            ops::credential_show(api, &name).await
        }
        Command::Dev { .. }
        | Command::Completions { .. }
        | Command::Data(_)
        | Command::Manifest(ManifestCommand::Validate { .. }) => {
            Err(ops::Failure("not an operator command".into()))
        }
    }
}

fn instance_patch(
    enabled: Option<bool>,
    pinned: Option<String>,
    config: Option<Value>,
    data_adapter: Option<Value>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    if let Some(e) = enabled {
        patch.insert("enabled".into(), Value::Bool(e));
    }
    if let Some(v) = pinned {
        patch.insert("pinned_version".into(), Value::String(v));
    }
    if let Some(c) = config {
        patch.insert("config".into(), c);
    }
    if let Some(d) = data_adapter {
        patch.insert("data_adapter".into(), d);
    }
    patch
}

fn validate_manifest(file: &std::path::Path, as_json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let (report, valid) = switchboard_cli::manifest::validate(&text, as_json);
    println!("{report}");
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_reindex(opts: switchboard_cli::data::Options) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(switchboard_cli::data::reindex(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_dev(opts: dev::Options) -> ExitCode {
    let settings = match dev::settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    switchboard::telemetry::init(&settings.log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dev::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
