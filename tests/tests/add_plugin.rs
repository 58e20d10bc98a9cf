//! The README's "Adding a plugin", followed literally for one more plugin in a copy of the
//! workspace: the crate (tests/fixtures/plugin-echo as functions/echo), one line in
//! cli/Cargo.toml, `scripts/template`. Before the line and the template, the checks of
//! `scripts/test` name exactly what is missing; after them they pass, and the `dev` built from
//! the copy serves the new plugin on its route and its manifest's alias.
//!
//! The copy lives beside the build output (`$CARGO_TARGET_DIR/add-plugin`), is refreshed file
//! by file, and builds into its own target dir there, so repeated runs build incrementally.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use switchboard_tests::http::{post, send};

/// The README's one line for cli/Cargo.toml.
const LINE: &str = r#"echo = { path = "../functions/echo" }"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("repository root: {e}"))
}

/// Where the copy and its build go.
fn work() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("add-plugin")
}

/// `scripts/test`'s Python (with PyYAML for check_template.py).
fn python() -> String {
    std::env::var("SWITCHBOARD_VENV_PYTHON").unwrap_or_else(|_| {
        panic!("SWITCHBOARD_VENV_PYTHON is not set: scripts/test exports it. Run scripts/test.")
    })
}

/// Copies the tracked files of the repository into `dst`, leaving identical files alone
/// (their modification times are what keeps the copy's build incremental).
fn copy_workspace(dst: &Path) {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("git ls-files: {e}"));
    assert!(out.status.success(), "git ls-files failed");
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let from = repo().join(&name);
        let to = dst.join(&name);
        let Ok(bytes) = std::fs::read(&from) else {
            continue; // deleted in the work tree but not yet in the index
        };
        if std::fs::read(&to).is_ok_and(|old| old == bytes) {
            continue;
        }
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, &bytes).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&from).unwrap().permissions().mode();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            let bytes = std::fs::read(entry.path()).unwrap();
            if std::fs::read(&target).is_ok_and(|old| old == bytes) {
                continue;
            }
            std::fs::write(&target, bytes).unwrap();
        }
    }
}

/// Runs `program args` in `dir`; returns (success, stdout + stderr).
fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The checks `scripts/test` runs on the template and the workspace.
fn checks(ws: &Path) -> Vec<(bool, String)> {
    vec![
        run(ws, &python(), &["infra/local/template.py", "--check"]),
        run(ws, &python(), &["infra/local/check_template.py"]),
    ]
}

#[test]
fn a_new_plugin_is_a_crate_one_line_and_scripts_template() {
    let work = work();
    let ws = work.join("ws");
    copy_workspace(&ws);
    // Step 1: the crate.
    let crate_dir = ws.join("functions/echo");
    if crate_dir.exists() {
        std::fs::remove_dir_all(&crate_dir).unwrap();
    }
    copy_dir(&repo().join("tests/fixtures/plugin-echo"), &crate_dir);

    // The checks name what is missing.
    let before = checks(&ws);
    assert!(!before[0].0, "{}", before[0].1);
    assert!(
        before[0].1.contains("missing: Echo") && before[0].1.contains("scripts/template"),
        "{}",
        before[0].1
    );
    assert!(!before[1].0, "{}", before[1].1);
    assert!(
        before[1]
            .1
            .contains("functions/echo is a plugin but dev does not serve it")
            && before[1].1.contains(LINE),
        "{}",
        before[1].1
    );

    // Step 2: one line in cli/Cargo.toml.
    let cli_toml = ws.join("cli/Cargo.toml");
    let original = std::fs::read_to_string(&cli_toml).unwrap();
    let edited = original.replacen("[dependencies]\n", &format!("[dependencies]\n{LINE}\n"), 1);
    assert_eq!(edited.lines().count(), original.lines().count() + 1);
    std::fs::write(&cli_toml, edited).unwrap();
    // Step 3: scripts/template.
    let (ok, out) = run(&ws, "scripts/template", &[]);
    assert!(ok, "{out}");

    for (ok, out) in checks(&ws) {
        assert!(ok, "{out}");
    }
    let template = std::fs::read_to_string(ws.join("template.yaml")).unwrap();
    assert!(
        template.contains("  EchoFunction:") && template.contains("Path: /api/echo"),
        "{template}"
    );
    // The MCP function reaches the new plugin's function without an edit of its own.
    assert!(
        template.contains("echo=${EchoFunction}")
            && template.contains("FunctionName: !Ref EchoFunction"),
        "{template}"
    );

    // The copy builds, and its dev serves the new plugin.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "switchboard-cli"])
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .status()
        .unwrap_or_else(|e| panic!("cargo build: {e}"));
    assert!(
        build.success(),
        "the copy with the fourth plugin does not build"
    );

    let data = work.join(format!("data-{}", std::process::id()));
    let mut dev = Command::new(work.join("target/debug/switchboard"))
        .args(["dev", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("switchboard dev: {e}"));
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("dev's banner").unwrap();
        if let Some(rest) = line.split("dev server on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let key = std::fs::read_to_string(data.join("demo-api-key"))
        .unwrap()
        .trim()
        .to_owned();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let enable = send(
                addr,
                "PUT",
                "/admin/instances/echo",
                Some(&key),
                json!({"enabled": true}).to_string().as_bytes(),
            )
            .await;
            assert_eq!(enable.status, 201, "{}", enable.body);
            for route in ["/plugins/echo", "/api/echo"] {
                let r = post(
                    addr,
                    route,
                    Some(&key),
                    &json!({"function": "Echo", "parameters": {"text": "hi"}}),
                )
                .await;
                assert_eq!(r.status, 200, "{route}: {}", r.body);
                assert_eq!(r.body["result"], "demo-dental: hi", "{route}");
            }
        })
    }));
    if let Err(e) = dev.kill() {
        eprintln!("dev already stopped: {e}");
    }
    if let Err(e) = dev.wait() {
        eprintln!("dev did not exit: {e}");
    }
    if let Err(e) = std::fs::remove_dir_all(&data) {
        eprintln!("cannot remove {}: {e}", data.display());
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
