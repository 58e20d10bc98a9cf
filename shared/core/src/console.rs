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

/// The API Gateway route keys of the console's files (`template.yaml`): requests on them
/// are answered from the files alone, whatever their path holds.
pub const ROUTE_KEYS: [&str; 2] = ["GET /console", "GET /console/{proxy+}"];

/// Whether a request came in on one of the console's routes.
pub fn is_console_route(route_key: &str) -> bool {
    ROUTE_KEYS.contains(&route_key)
}

/// The file at `path`, if the console has one there. The page's links carry the stage
/// prefix it was served under (e.g. `/prod`), so it works on a named stage too.
pub fn asset(path: &str) -> Option<Asset> {
    const FILES: [(&str, &str); 5] = [
        ("/console", "index"),
        ("/console/", "index"),
        ("/console/index.html", "index"),
        ("/console/app.js", "js"),
        ("/console/app.css", "css"),
    ];
    let (prefix, file) = FILES
        .iter()
        .find_map(|(suffix, file)| path.strip_suffix(suffix).map(|p| (p, *file)))?;
    // Only a stage name may come before the files.
    let prefix_ok = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'))
        && !prefix.contains("/console");
    Some(match file {
        "index" => Asset {
            content_type: "text/html; charset=utf-8",
            body: Cow::Owned(INDEX.replace("{{BASE}}", if prefix_ok { prefix } else { "" })),
        },
        "js" => Asset {
            content_type: "text/javascript; charset=utf-8",
            body: Cow::Borrowed(APP_JS),
        },
        _ => Asset {
            content_type: "text/css; charset=utf-8",
            body: Cow::Borrowed(APP_CSS),
        },
    })
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
        assert!(asset("/console/admin/keys").is_none());
        // Only the route decides: a channel named "console" is the admin API's.
        assert!(is_console_route("GET /console/{proxy+}"));
        assert!(!is_console_route("ANY /admin/{proxy+}"));
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
