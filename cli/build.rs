//! Writes `plugins()` for `dev`: one `<crate>::plugin()?` per dependency of this crate that is
//! a plugin (a path dependency whose crate holds a `manifest.json`). Adding a plugin to `dev`
//! is therefore one line in Cargo.toml.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let toml = std::fs::read_to_string(Path::new(&dir).join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("cannot read cli/Cargo.toml: {e}"));
    let mut crates = Vec::new();
    let mut in_deps = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        let Some((name, spec)) = line.split_once('=').filter(|_| in_deps) else {
            continue;
        };
        let Some(path) = spec.split("path").nth(1).and_then(|s| s.split('"').nth(1)) else {
            continue;
        };
        let manifest = Path::new(&dir).join(path).join("manifest.json");
        println!("cargo:rerun-if-changed={}", manifest.display());
        if manifest.exists() {
            crates.push(name.trim().replace('-', "_"));
        }
    }
    let calls: Vec<String> = crates.iter().map(|c| format!("{c}::plugin()?")).collect();
    let code = format!(
        "/// Every plugin this build serves: the plugin crates cli/Cargo.toml depends on.\n\
         pub fn plugins() -> Result<Vec<switchboard::Plugin>, switchboard::ContractError> {{\n    \
         Ok(vec![{}])\n}}\n\n\
         /// The crates [`plugins`] comes from, in that order.\n\
         pub const PLUGIN_CRATES: &[&str] = &[{}];\n",
        calls.join(", "),
        crates
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(Path::new(&out).join("plugins.rs"), code)
        .unwrap_or_else(|e| panic!("cannot write plugins.rs: {e}"));
}
