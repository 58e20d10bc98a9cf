//! `switchboard`: the local dev server and operator commands.

use switchboard_cli::{dev, ops};

use std::collections::HashMap;

use serde_json::{Map, Value};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
switchboard — multi-tenant plugin platform for AI voice and chat agents

USAGE:
    switchboard dev [--addr 127.0.0.1:3000] [--data-dir .switchboard]
    switchboard manifest validate <manifest.json> [--json]

    switchboard manifest publish <manifest.json>
    switchboard plugins
    switchboard org create <org> --name <display name>
    switchboard org enable <plugin> [--version <v>] [--config <json>]
    switchboard org disable <plugin>
    switchboard org configure <plugin> [--config <json>] [--data-adapter <json>] [--version <v>]
    switchboard channel assign <channel> <plugin> [--priority <n>]
    switchboard key create --scopes <a,b,…> [--name <name>]
    switchboard key list
    switchboard key revoke <id>
    switchboard agent preview <channel> [--format openai|anthropic|mcp|bedrock|vapi|retell|…]
    switchboard credential set <name> --from-file <secret.json>
    switchboard credential show <name>

    Operator commands call the admin API at --url (or SWITCHBOARD_URL, default
    http://127.0.0.1:3000) with --key (or SWITCHBOARD_API_KEY): the same commands work
    against `dev` and a deployed stack's ApiUrl. Output is for people; add --json for
    scripts. A refused request prints the API's message and exits 1.

COMMANDS:
    dev                Serve every function's routes on one local port, on the embedded
                       store. Seeds a demo dental practice on first start and prints an
                       API key and a curl line that books an appointment.
    manifest validate  Check a plugin manifest as a plugin's start-up does: the format's
                       JSON Schema, unique names, schemas that compile, default_config and
                       examples that fit. Lists every problem with its JSON pointer; exits 1
                       if there is any.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dev") => match dev_options(&args[1..]) {
            Ok(opts) => run_dev(opts),
            Err(msg) => {
                eprintln!("error: {msg}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("manifest") if args.get(1).map(String::as_str) == Some("validate") => {
            match args.get(2) {
                Some(file) => validate_manifest(file, args[3..].iter().any(|a| a == "--json")),
                None => {
                    eprintln!(
                        "error: use 'switchboard manifest validate <file> [--json]'\n\n{USAGE}"
                    );
                    ExitCode::from(2)
                }
            }
        }
        Some("manifest" | "plugins" | "org" | "channel" | "key" | "agent" | "credential") => {
            operator(&args)
        }
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown command '{other}'\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Positional words, `--flag value` options, and whether `--json` was given.
type Parsed = (Vec<String>, HashMap<String, String>, bool);

/// Splits `--flag value` options (and the bare `--json`) from positional words.
fn split_flags(args: &[String]) -> Result<Parsed, String> {
    let mut words = Vec::new();
    let mut flags = HashMap::new();
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--json" {
            json = true;
        } else if let Some(name) = a.strip_prefix("--") {
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name.to_owned(), v.clone());
        } else {
            words.push(a.clone());
        }
    }
    Ok((words, flags, json))
}

fn operator(args: &[String]) -> ExitCode {
    let (words, flags, json) = match split_flags(args) {
        Ok(x) => x,
        Err(msg) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let url = flags
        .get("url")
        .cloned()
        .or_else(|| std::env::var("SWITCHBOARD_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:3000".to_owned());
    let key = flags
        .get("key")
        .cloned()
        .or_else(|| std::env::var("SWITCHBOARD_API_KEY").ok())
        .unwrap_or_default();
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
    let result = rt.block_on(async {
        let api = ops::Api::new(&url, &key)?;
        run_operator(&api, &words, &flags).await
    });
    match result {
        Ok(o) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&o.json).unwrap_or_default()
                );
            } else {
                println!("{}", o.text);
            }
            ExitCode::SUCCESS
        }
        Err(ops::Failure(msg)) if msg.starts_with("usage: ") => {
            eprintln!("error: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(ops::Failure(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn json_flag(flags: &HashMap<String, String>, name: &str) -> Result<Option<Value>, ops::Failure> {
    flags
        .get(name)
        .map(|v| {
            serde_json::from_str(v).map_err(|e| ops::Failure(format!("--{name} is not JSON: {e}")))
        })
        .transpose()
}

async fn run_operator(
    api: &ops::Api,
    words: &[String],
    flags: &HashMap<String, String>,
) -> Result<ops::Output, ops::Failure> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let usage = |u: &str| ops::Failure(format!("usage: switchboard {u}"));
    match w.as_slice() {
        ["manifest", "publish", file] => ops::publish(api, file).await,
        ["plugins"] => ops::plugins(api).await,
        ["org", "create", org] => {
            let name = flags
                .get("name")
                .ok_or_else(|| usage("org create <org> --name <display name>"))?;
            ops::org_create(api, org, name).await
        }
        ["org", verb @ ("enable" | "disable" | "configure"), plugin] => {
            let mut patch = Map::new();
            match *verb {
                "enable" => {
                    patch.insert("enabled".into(), Value::Bool(true));
                }
                "disable" => {
                    patch.insert("enabled".into(), Value::Bool(false));
                }
                _ => {}
            }
            if let Some(v) = flags.get("version") {
                patch.insert("pinned_version".into(), Value::String(v.clone()));
            }
            if let Some(c) = json_flag(flags, "config")? {
                patch.insert("config".into(), c);
            }
            if let Some(d) = json_flag(flags, "data-adapter")? {
                patch.insert("data_adapter".into(), d);
            }
            ops::instance(api, plugin, patch, verb).await
        }
        ["channel", "assign", channel, plugin] => {
            let priority = match flags.get("priority") {
                Some(p) => p.parse().map_err(|_| {
                    ops::Failure(format!("--priority must be an integer, not '{p}'"))
                })?,
                None => 1,
            };
            ops::assign(api, channel, plugin, priority).await
        }
        ["key", "create"] => {
            let scopes: Vec<String> = flags
                .get("scopes")
                .ok_or_else(|| usage("key create --scopes <a,b,…> [--name <name>]"))?
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            ops::key_create(api, flags.get("name").map(String::as_str), &scopes).await
        }
        ["key", "list"] => ops::key_list(api).await,
        ["credential", "set", name] => {
            let file = flags
                .get("from-file")
                .ok_or_else(|| usage("credential set <name> --from-file <secret.json>"))?;
            ops::credential_set(api, name, file).await
        }
        ["credential", "show", name] => ops::credential_show(api, name).await,
        ["key", "revoke", id] => ops::key_revoke(api, id).await,
        ["agent", "preview", channel] => {
            ops::agent_preview(api, channel, flags.get("format").map(String::as_str)).await
        }
        _ => Err(usage(&format!(
            "{} …: unknown command or missing arguments",
            words.join(" ")
        ))),
    }
}

fn validate_manifest(file: &str, as_json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {file}: {e}");
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

fn dev_options(args: &[String]) -> Result<dev::Options, String> {
    let mut opts = dev::Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        data_dir: PathBuf::from(".switchboard"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => {
                opts.addr = value
                    .parse()
                    .map_err(|e| format!("--addr {value}: {e} (use e.g. 127.0.0.1:3000)"))?
            }
            "--data-dir" => opts.data_dir = PathBuf::from(value),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(opts)
}

fn run_dev(opts: dev::Options) -> ExitCode {
    switchboard::telemetry::init();
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
