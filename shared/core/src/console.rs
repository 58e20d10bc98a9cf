//! The admin console's files (`GET /console`, `/console/app.js`, `/console/app.css`),
//! compiled into the admin function. They are served without the API-key authorizer (a
//! browser cannot send a key before the page has asked for one); every call the page makes
//! goes to the admin API with the key the user enters, kept in the tab's `sessionStorage`.

use std::borrow::Cow;

const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

/// Only this origin's own script and style files run or apply: no inline script or style,
/// no framing, and the page talks to its own origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A console file: its content type and body.
#[derive(Debug)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: Cow<'static, str>,
}

/// Whether `path` (a request's path, after any stage prefix) is the console's: `/console`
/// or under `/console/`. Such a path is never an admin API route.
pub fn is_console_path(path: &str) -> bool {
    split(path).is_some()
}

/// The stage prefix before `/console`, and what follows it.
fn split(path: &str) -> Option<(&str, &str)> {
    let i = path.find("/console")?;
    let (prefix, rest) = (&path[..i], &path[i + "/console".len()..]);
    (rest.is_empty() || rest.starts_with('/')).then_some((prefix, rest))
}

/// The file at `path`, if the console has one there. The page's links carry the stage
/// prefix it was served under (e.g. `/prod`), so it works on a named stage too.
pub fn asset(path: &str) -> Option<Asset> {
    let (prefix, rest) = split(path)?;
    let safe_prefix = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'));
    match rest {
        "" | "/" | "/index.html" => Some(Asset {
            content_type: "text/html; charset=utf-8",
            body: Cow::Owned(INDEX.replace("{{BASE}}", if safe_prefix { prefix } else { "" })),
        }),
        "/app.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: Cow::Borrowed(APP_JS),
        }),
        "/app.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: Cow::Borrowed(APP_CSS),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_its_files_under_the_stage_prefix() {
        let page = asset("/console").unwrap();
        assert!(page.body.contains(r#"src="/console/app.js""#));
        let staged = asset("/prod/console/").unwrap();
        assert!(staged.body.contains(r#"href="/prod/console/app.css""#));
        // A prefix that could break out of the attribute is dropped.
        let odd = asset("/a\"b/console").unwrap();
        assert!(odd.body.contains(r#"src="/console/app.js""#));
        assert_eq!(
            asset("/console/app.js").unwrap().content_type,
            "text/javascript; charset=utf-8"
        );
        assert!(asset("/console/other.js").is_none());
        assert!(asset("/consoles").is_none());
        assert!(!is_console_path("/admin/keys"));
        assert!(is_console_path("/console/../admin/keys"));
    }

    #[test]
    fn the_files_hold_no_inline_script_or_style_and_no_inner_html() {
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        assert!(!APP_JS.contains("innerHTML") && !APP_JS.contains("outerHTML"));
        assert!(!APP_JS.contains("insertAdjacentHTML") && !APP_JS.contains("eval("));
        assert!(
            !APP_JS.contains("localStorage"),
            "the key stays in sessionStorage"
        );
        assert!(!APP_CSS.contains("@import") && !APP_CSS.contains("url("));
    }
}
