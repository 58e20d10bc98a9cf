//! What the CLI tests share: `switchboard dev` started as a process of the binary under
//! test, stopped when the guard drops.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Runs `switchboard <args> --json` with `key` against `url`: (exit ok, parsed stdout, stderr).
pub fn cli(url: &str, key: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env("SWITCHBOARD_URL", url)
        .env("SWITCHBOARD_API_KEY", key)
        .output()
        .expect("switchboard runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

/// [`cli`] that must succeed: its parsed output.
pub fn cli_ok(url: &str, key: &str, args: &[&str]) -> Value {
    let (success, json, stderr) = cli(url, key, args);
    assert!(success, "switchboard {args:?} failed: {stderr}");
    json
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

pub struct Dev {
    child: Child,
    pub url: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("dev already stopped: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("dev did not exit: {e}");
        }
    }
}

/// `switchboard dev` on a free port over `dir`, once it has printed its URL.
pub fn start_dev(dir: &Path) -> Dev {
    let child = Command::new(BIN)
        .args(["dev", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("switchboard dev starts");
    // Owned by the guard at once: a panic below still stops the server.
    let mut dev = Dev {
        child,
        url: String::new(),
    };
    let stdout = dev.child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    dev.url = loop {
        let line = lines
            .next()
            .expect("dev printed its banner")
            .expect("utf-8 banner");
        if let Some(rest) = line.split("dev server on ").nth(1) {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    dev
}
