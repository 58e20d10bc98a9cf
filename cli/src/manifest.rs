//! `switchboard manifest validate <file>`: the start-up validation, offline, for authors.

use serde_json::{Value, json};
use switchboard::manifest::CompiledManifest;

/// The report for one manifest text: human lines or JSON, and whether it is valid.
pub fn validate(text: &str, as_json: bool) -> (String, bool) {
    match CompiledManifest::from_json(text) {
        Ok(m) => {
            let m = m.manifest();
            let out = if as_json {
                json!({"valid": true, "name": m.name, "version": m.version,
                       "functions": m.functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>()})
                .to_string()
            } else {
                format!(
                    "ok: {} {} ({} functions)",
                    m.name,
                    m.version,
                    m.functions.len()
                )
            };
            (out, true)
        }
        Err(e) => {
            let out = if as_json {
                let problems: Vec<Value> = e
                    .problems
                    .iter()
                    .map(|d| json!({"path": d.path, "message": d.message}))
                    .collect();
                json!({"valid": false, "problems": problems}).to_string()
            } else {
                e.problems
                    .iter()
                    .map(|d| {
                        let at = if d.path.is_empty() { "/" } else { &d.path };
                        format!("error: {at}: {}", d.message)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            (out, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_manifest_validates() {
        let (out, ok) = validate(include_str!("../../functions/booking/manifest.json"), false);
        assert!(ok, "{out}");
        assert!(out.starts_with("ok: booking "), "{out}");
    }

    #[test]
    fn every_problem_is_listed_with_its_pointer() {
        let bad = r#"{"name": "x y", "version": "1", "display_name": "X", "description": "d",
            "instruction_template": "", "functions": []}"#;
        let (out, ok) = validate(bad, false);
        assert!(!ok);
        for path in ["/name", "/version", "/functions"] {
            assert!(
                out.contains(&format!("error: {path}:")),
                "{path} missing in:\n{out}"
            );
        }
        let (json_out, _) = validate(bad, true);
        let v: Value = serde_json::from_str(&json_out).unwrap();
        assert_eq!(v["valid"], false);
        assert!(v["problems"].as_array().unwrap().len() >= 3);
    }

    #[test]
    fn text_that_is_not_json_is_reported() {
        let (out, ok) = validate("{", false);
        assert!(!ok);
        assert!(out.contains("not valid JSON"), "{out}");
    }
}
