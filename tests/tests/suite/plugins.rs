//! Every plugin this build serves: its manifest and handlers agree, so it starts.

#[test]
fn every_plugin_has_exactly_one_handler_per_function() {
    let plugins = switchboard_cli::dev::plugins().unwrap_or_else(|e| panic!("{e}"));
    assert!(!plugins.is_empty());
    for p in &plugins {
        let functions = p.manifest().manifest().functions.len();
        assert!(functions > 0, "{} declares no functions", p.name());
        assert!(p.routes().contains(&format!("/plugins/{}", p.name())));
    }
}
