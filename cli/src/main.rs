//! `switchboard`: the local dev server and operator commands.

use switchboard_cli::dev;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
switchboard — multi-tenant plugin platform for AI voice and chat agents

USAGE:
    switchboard dev [--addr 127.0.0.1:3000] [--data-dir .switchboard]
    switchboard manifest validate <manifest.json> [--json]

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
        Some("manifest") => match (args.get(1).map(String::as_str), args.get(2)) {
            (Some("validate"), Some(file)) => {
                validate_manifest(file, args[3..].iter().any(|a| a == "--json"))
            }
            _ => {
                eprintln!("error: use 'switchboard manifest validate <file> [--json]'\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
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
