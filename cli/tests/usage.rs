//! Usage mistakes name the argument to fix and exit 2, without calling anything.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("SWITCHBOARD_URL", "http://127.0.0.1:9")
        .output()
        .expect("switchboard runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_missing_argument_is_named_not_the_whole_help() {
    let (code, text) = run(&["org", "create", "acme2"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--name <NAME>"), "{text}");
    assert!(
        !text.contains("Commands:"),
        "the whole help was printed: {text}"
    );
}

#[test]
fn an_unknown_flag_is_refused_not_ignored() {
    let (code, text) = run(&[
        "key",
        "create",
        "--scopes",
        "agents:read",
        "--chanel",
        "web",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unexpected argument '--chanel'"), "{text}");
    assert!(
        text.contains("--channel"),
        "the close match is suggested: {text}"
    );
}

#[test]
fn each_command_has_its_help_and_completions_exist() {
    let (code, text) = run(&["channel", "assign", "--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("--priority"), "{text}");
    let (code, text) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("_switchboard()"), "{text}");
}

#[test]
fn a_key_is_not_sent_over_plain_http_off_this_machine() {
    let refused = "refusing to send the API key over plain http://";
    let (code, text) = run(&[
        "plugins",
        "--url",
        "http://api.example.com",
        "--key",
        "sb_test",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(refused), "{text}");
    assert!(text.contains("--allow-insecure"), "{text}");
    assert!(
        !text.contains("sb_test"),
        "the key is never printed: {text}"
    );
    // Loopback (dev) and an explicit opt-in go on to call: here nothing listens.
    for args in [
        &["plugins", "--url", "http://127.0.0.1:9", "--key", "sb_test"][..],
        &["plugins", "--url", "http://[::1]:9", "--key", "sb_test"][..],
        &["plugins", "--url", "http://localhost:9", "--key", "sb_test"][..],
        &[
            "plugins",
            "--url",
            "http://api.example.invalid",
            "--key",
            "sb_test",
            "--allow-insecure",
        ][..],
    ] {
        let (code, text) = run(args);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(!text.contains(refused), "{args:?}: {text}");
    }
}
