//! What the CLI tests share: `switchboard dev` started as a process of the binary under
//! test, stopped when the guard drops.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
