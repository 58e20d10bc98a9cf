//! The `rest` adapter's settings: base URL, entity → path mapping, where the credential goes,
//! filter → query parameter templates, pagination. The defaults suit json-server 0.17
//! (`_page`/`_limit`, `{field}_gte`, …). Parsed once per resolved instance.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Uri;
use http::header::{self, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::egress::Egress;
use crate::error::Detail;
use crate::ids::EntityName;
use crate::ports::Op;
use crate::secrets::{CredentialRef, SecretValue};

/// The whole budget of one adapter call (every attempt, backoff and page).
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Below the Lambda functions' `Timeout` (template.yaml), with room for the rest of the
/// request and a batch's compensation, so the caller gets the adapter's 504.
pub const MAX_TIMEOUT_MS: u64 = 8_000;
/// Extra attempts for a read after the first one.
const DEFAULT_RETRIES: u64 = 2;
const MAX_RETRIES: u64 = 4;
const MAX_PAGE_SIZE: u64 = 1_000;

const SETTINGS: [&str; 9] = [
    "base_url",
    "entities",
    "credential",
    "auth",
    "filters",
    "pagination",
    "records_at",
    "timeout_ms",
    "retries",
];

const AUTH_SHAPE: &str =
    r#"must be {"bearer": "<secret field>"} or {"header": "X-Api-Key", "field": "<secret field>"}"#;

/// Where an entity's records live, relative to the base URL. `item` holds `{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub collection: String,
    pub item: String,
}

/// Where the credential's value goes on each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <secret[field]>`.
    Bearer { field: String },
    /// `<name>: <secret[field]>`.
    Header { name: HeaderName, field: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    pub page: String,
    pub limit: String,
    pub first: u64,
    /// Page size `query` reads with.
    pub size: u64,
}

/// The parsed settings of one `rest` adapter config.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Without a trailing '/'.
    pub base_url: String,
    pub entities: BTreeMap<EntityName, Paths>,
    pub credential: Option<CredentialRef>,
    pub auth: Option<Auth>,
    /// Operator → query parameter template (`{field}_gte`); operators not listed are
    /// applied by the adapter after reading.
    pub filters: Vec<(Op, String)>,
    pub pagination: Option<Pagination>,
    pub records_at: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
}

impl RestConfig {
    /// Parses the settings beside `"type": "rest"`; every problem is reported with its pointer.
    pub fn parse(settings: &Map<String, Value>) -> Result<Self, Vec<Detail>> {
        let mut p = Vec::new();
        unknown_settings(settings, &SETTINGS, "rest", &mut p);
        let credential = super::credential_setting(settings, &mut p);
        let base_url = base_url(settings.get("base_url"), &mut p);
        let entities = entities(settings.get("entities"), &mut p);
        let auth = auth(settings.get("auth"), &mut p);
        auth_with_credential(settings, AUTH_SHAPE, &mut p);
        let filters = filters(settings.get("filters"), &mut p);
        let pagination = pagination(settings.get("pagination"), &mut p);
        let records_at = match settings.get("records_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.starts_with('/') => Some(s.clone()),
            Some(_) => {
                p.push(Detail::new(
                    "/records_at",
                    "must be a JSON pointer to the list in a list answer, e.g. \"/data\"",
                ));
                None
            }
        };
        let timeout = number(
            settings.get("timeout_ms"),
            "/timeout_ms",
            DEFAULT_TIMEOUT_MS,
            1..=MAX_TIMEOUT_MS,
            &mut p,
        );
        let retries = number(
            settings.get("retries"),
            "/retries",
            DEFAULT_RETRIES,
            0..=MAX_RETRIES,
            &mut p,
        );
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Self {
            base_url,
            entities,
            credential,
            auth,
            filters,
            pagination,
            records_at,
            timeout: Duration::from_millis(timeout),
            // Bounded by MAX_RETRIES above.
            retries: u32::try_from(retries).unwrap_or(0),
        })
    }

    pub fn credential(&self) -> Option<&CredentialRef> {
        self.credential.as_ref()
    }

    /// Refuses (at write time) a `base_url` whose host is visibly private: `localhost` or a
    /// literal non-public IP. Names that resolve to one are refused when called.
    pub fn check_upstream(&self, egress: &Egress) -> Result<(), Detail> {
        let host = self
            .base_url
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        match host {
            Some(host) if egress.check_host(&host).is_err() => Err(Detail::new(
                "/base_url",
                "must name a public host: the rest data adapter refuses to call private or loopback addresses",
            )),
            _ => Ok(()),
        }
    }

    /// Checks (at write time) that the resolved secret holds the field `auth` names as a
    /// non-empty string that fits in a header. Messages are fixed: they never quote a value.
    pub fn check_secret(&self, value: &SecretValue) -> Result<(), Detail> {
        match &self.auth {
            Some(auth) => check_auth_secret(auth, value),
            None => Ok(()),
        }
    }
}

/// The secret holds the field `auth` names as a non-empty string that fits in a header.
pub(super) fn check_auth_secret(auth: &Auth, value: &SecretValue) -> Result<(), Detail> {
    let (field, bearer) = match auth {
        Auth::Bearer { field } => (field, true),
        Auth::Header { field, .. } => (field, false),
    };
    let setting = if bearer { "auth.bearer" } else { "auth.field" };
    let Some(v) = value.field(field).filter(|v| !v.is_empty()) else {
        return Err(Detail::new(
            "/credential",
            format!("the secret has no non-empty string field '{field}' (named by {setting})"),
        ));
    };
    let fits = if bearer {
        HeaderValue::from_str(&format!("Bearer {v}")).is_ok()
    } else {
        HeaderValue::from_str(v).is_ok()
    };
    if !fits {
        return Err(Detail::new(
            "/credential",
            format!("the secret's field '{field}' holds characters an HTTP header cannot carry"),
        ));
    }
    Ok(())
}

/// Each key of `settings` not in `allowed` is a problem naming the ones that are.
pub(super) fn unknown_settings(
    settings: &Map<String, Value>,
    allowed: &[&str],
    adapter: &str,
    p: &mut Vec<Detail>,
) {
    for k in settings.keys().filter(|k| !allowed.contains(&k.as_str())) {
        p.push(Detail::new(
            format!("/{}", escape(k)),
            format!(
                "is not a {adapter} adapter setting; use {}",
                allowed.join(", ")
            ),
        ));
    }
}

/// `auth` and `credential` go together: the one names where the other's value is sent.
pub(super) fn auth_with_credential(
    settings: &Map<String, Value>,
    shape: &str,
    p: &mut Vec<Detail>,
) {
    let set = |k: &str| !matches!(settings.get(k), None | Some(Value::Null));
    match (set("auth"), set("credential")) {
        (true, false) => p.push(Detail::new(
            "/credential",
            "is required with auth: the secret whose fields are sent",
        )),
        (false, true) => p.push(Detail::new(
            "/auth",
            format!("is required with a credential: it {shape}"),
        )),
        _ => {}
    }
}

/// A JSON pointer token for a settings key.
pub(super) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(super) fn base_url(v: Option<&Value>, p: &mut Vec<Detail>) -> String {
    let Some(Value::String(s)) = v else {
        p.push(Detail::new(
            "/base_url",
            "is required: the API's http(s) URL, e.g. \"https://api.example.com/v1\"",
        ));
        return String::new();
    };
    let problem = match s.parse::<Uri>() {
        Err(_) => Some("is not a URL"),
        Ok(u) if !matches!(u.scheme_str(), Some("http" | "https")) => {
            Some("must start with http:// or https://")
        }
        Ok(u) => match u.authority() {
            None => Some("has no host"),
            Some(a) if a.as_str().contains('@') => {
                Some("must not carry credentials; use the credential and auth settings")
            }
            Some(_) if u.query().is_some() || s.contains('#') => {
                Some("must not have a query or fragment")
            }
            Some(_) => None,
        },
    };
    if let Some(m) = problem {
        p.push(Detail::new("/base_url", m));
    }
    s.trim_end_matches('/').to_owned()
}

/// A configured path: absolute, no query, and no placeholder but `{id}` in an item path.
fn check_path(path: &str, item: bool) -> Result<(), &'static str> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#');
    if !path.starts_with('/') {
        return Err("must start with '/'");
    }
    if path.chars().any(bad) {
        return Err("must not hold spaces, '?' or '#'");
    }
    let rest = if item {
        if path.matches("{id}").count() != 1 {
            return Err("must hold the placeholder {id} once");
        }
        path.replace("{id}", "")
    } else {
        path.to_owned()
    };
    if rest.contains(['{', '}']) {
        return Err("has a placeholder other than {id}");
    }
    Ok(())
}

fn entities(v: Option<&Value>, p: &mut Vec<Detail>) -> BTreeMap<EntityName, Paths> {
    let mut out = BTreeMap::new();
    let Some(Value::Object(m)) = v.filter(|v| v.as_object().is_some_and(|m| !m.is_empty())) else {
        p.push(Detail::new(
            "/entities",
            r#"is required: entity name to path, e.g. {"patients": "/patients"} or {"patients": {"path": "/patients", "item": "/patients/{id}"}}"#,
        ));
        return out;
    };
    for (name, spec) in m {
        let at = format!("/entities/{}", escape(name));
        let Ok(entity) = EntityName::parse(name.as_str()) else {
            p.push(Detail::new(
                at,
                "is not an entity name: use 1 to 64 characters from a-z, A-Z, 0-9, '_' and '-'",
            ));
            continue;
        };
        let (collection, item) = match spec {
            Value::String(path) => (path.clone(), None),
            Value::Object(o) => {
                for k in o.keys().filter(|k| !matches!(k.as_str(), "path" | "item")) {
                    p.push(Detail::new(
                        format!("{at}/{}", escape(k)),
                        "is not an entity setting; use path and item",
                    ));
                }
                let Some(path) = o.get("path").and_then(Value::as_str) else {
                    p.push(Detail::new(
                        format!("{at}/path"),
                        "is required: the collection's path, e.g. \"/patients\"",
                    ));
                    continue;
                };
                match o.get("item") {
                    None | Some(Value::Null) => (path.to_owned(), None),
                    Some(Value::String(i)) => (path.to_owned(), Some(i.clone())),
                    Some(_) => {
                        p.push(Detail::new(
                            format!("{at}/item"),
                            "must be a path holding {id}, e.g. \"/patients/{id}\"",
                        ));
                        continue;
                    }
                }
            }
            _ => {
                p.push(Detail::new(
                    at,
                    r#"must be a path like "/patients" or {"path": "/patients", "item": "/patients/{id}"}"#,
                ));
                continue;
            }
        };
        let path_at = if spec.is_string() {
            at.clone()
        } else {
            format!("{at}/path")
        };
        if let Err(m) = check_path(&collection, false) {
            p.push(Detail::new(path_at, m));
            continue;
        }
        let item = item.unwrap_or_else(|| format!("{}/{{id}}", collection.trim_end_matches('/')));
        if let Err(m) = check_path(&item, true) {
            p.push(Detail::new(format!("{at}/item"), m));
            continue;
        }
        out.insert(entity, Paths { collection, item });
    }
    out
}

pub(super) fn auth(v: Option<&Value>, p: &mut Vec<Detail>) -> Option<Auth> {
    let field = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let m = match v {
        None | Some(Value::Null) => return None,
        Some(Value::Object(m)) => m,
        Some(_) => {
            p.push(Detail::new("/auth", AUTH_SHAPE));
            return None;
        }
    };
    let is_bearer = m.contains_key("bearer");
    let allowed: &[&str] = if is_bearer {
        &["bearer"]
    } else {
        &["header", "field"]
    };
    let strays: Vec<&String> = m
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if !strays.is_empty() || m.is_empty() {
        p.push(Detail::new("/auth", AUTH_SHAPE));
        return None;
    }
    if is_bearer {
        let f = field(m.get("bearer"));
        if f.is_none() {
            p.push(Detail::new(
                "/auth/bearer",
                "must name the secret's field holding the token",
            ));
        }
        return Some(Auth::Bearer { field: f? });
    }
    let name = m
        .get("header")
        .and_then(Value::as_str)
        .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .filter(|h| {
            // Headers the client itself sets, or that would change the framing.
            ![
                header::HOST,
                header::CONTENT_LENGTH,
                header::CONTENT_TYPE,
                header::TRANSFER_ENCODING,
                header::CONNECTION,
            ]
            .contains(h)
        });
    let f = field(m.get("field"));
    if name.is_none() {
        p.push(Detail::new(
            "/auth/header",
            "must be an HTTP header name, e.g. \"X-Api-Key\"",
        ));
    }
    if f.is_none() {
        p.push(Detail::new(
            "/auth/field",
            "must name the secret's field holding the value",
        ));
    }
    Some(Auth::Header {
        name: name?,
        field: f?,
    })
}

/// json-server's operators. `ne` is left out on purpose: json-server's `_ne` drops records
/// that lack the field, which Switchboard's `ne` keeps, so it is applied here instead.
fn default_filters() -> Vec<(Op, String)> {
    vec![
        (Op::Eq, "{field}".into()),
        (Op::Gte, "{field}_gte".into()),
        (Op::Lte, "{field}_lte".into()),
        (Op::Contains, "{field}_like".into()),
    ]
}

fn filters(v: Option<&Value>, p: &mut Vec<Detail>) -> Vec<(Op, String)> {
    let m = match v {
        None | Some(Value::Null) => return default_filters(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            p.push(Detail::new(
                "/filters",
                r#"must map operators to query parameter templates, e.g. {"eq": "{field}", "gte": "{field}_gte"}"#,
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (op, template) in m {
        let at = format!("/filters/{}", escape(op));
        let Ok(parsed) = serde_json::from_value::<Op>(Value::String(op.clone())) else {
            p.push(Detail::new(
                at,
                "is not an operator; use eq, ne, lt, lte, gt, gte, begins_with or contains",
            ));
            continue;
        };
        match template {
            // Explicitly applied here rather than by the upstream.
            Value::Null => {}
            Value::String(t) if t.contains("{field}") && !t.contains(['&', '=', '#']) => {
                out.push((parsed, t.clone()));
            }
            _ => p.push(Detail::new(
                at,
                "must be a query parameter name template holding {field}, e.g. \"{field}_gte\", or null",
            )),
        }
    }
    out
}

fn pagination(v: Option<&Value>, p: &mut Vec<Detail>) -> Option<Pagination> {
    let mut out = Pagination {
        page: "_page".into(),
        limit: "_limit".into(),
        first: 1,
        size: 100,
    };
    let m = match v {
        None | Some(Value::Null) => return Some(out),
        Some(Value::Bool(false)) => return None,
        Some(Value::Object(m)) => m,
        Some(_) => {
            p.push(Detail::new(
                "/pagination",
                r#"must be {"page": "_page", "limit": "_limit", "first_page": 1, "page_size": 100} or false"#,
            ));
            return None;
        }
    };
    for (k, v) in m {
        let at = format!("/pagination/{}", escape(k));
        match k.as_str() {
            "page" | "limit" => match v
                .as_str()
                .filter(|s| !s.is_empty() && !s.contains(['&', '=', '#']))
            {
                Some(s) if k == "page" => out.page = s.to_owned(),
                Some(s) => out.limit = s.to_owned(),
                None => p.push(Detail::new(at, "must be a query parameter name")),
            },
            "first_page" => out.first = number(Some(v), &at, 1, 0..=1, p),
            "page_size" => out.size = number(Some(v), &at, 100, 1..=MAX_PAGE_SIZE, p),
            _ => p.push(Detail::new(
                at,
                "is not a pagination setting; use page, limit, first_page and page_size",
            )),
        }
    }
    Some(out)
}

pub(super) fn number(
    v: Option<&Value>,
    at: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    p: &mut Vec<Detail>,
) -> u64 {
    match v {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64().filter(|n| range.contains(n)) {
            Some(n) => n,
            None => {
                p.push(Detail::new(
                    at,
                    format!(
                        "must be an integer from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ));
                default
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn paths_of(problems: Vec<Detail>) -> Vec<String> {
        problems.into_iter().map(|d| d.path).collect()
    }

    #[test]
    fn shorthand_and_full_entity_paths() {
        let c = RestConfig::parse(&settings(json!({
            "base_url": "https://api.example.com/v1/",
            "entities": {
                "patients": "/patients",
                "visits": {"path": "/visits", "item": "/visit/{id}/detail"},
            },
        })))
        .unwrap();
        assert_eq!(c.base_url, "https://api.example.com/v1");
        let p = &c.entities[&EntityName::parse("patients").unwrap()];
        assert_eq!(p.item, "/patients/{id}");
        let v = &c.entities[&EntityName::parse("visits").unwrap()];
        assert_eq!(v.item, "/visit/{id}/detail");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(
            c.pagination.as_ref().map(|p| p.page.as_str()),
            Some("_page")
        );
        assert!(c.credential().is_none());
    }

    #[test]
    fn every_problem_has_its_pointer() {
        let problems = RestConfig::parse(&settings(json!({
            "base_url": "ftp://x",
            "entities": {"bad name": "/x", "ok": {"path": "x"}, "item": {"path": "/a", "item": "/a/b"}},
            "auth": {"bearer": "token", "header": "X"},
            "filters": {"like": "{field}", "eq": "nofield"},
            "pagination": {"page": 1},
            "timeout_ms": 0,
            "retry": 3,
        })))
        .unwrap_err();
        let mut got = paths_of(problems);
        got.sort();
        assert_eq!(
            got,
            vec![
                "/auth",
                "/base_url",
                "/credential",
                "/entities/bad name",
                "/entities/item/item",
                "/entities/ok/path",
                "/filters/eq",
                "/filters/like",
                "/pagination/page",
                "/retry",
                "/timeout_ms",
            ]
        );
    }

    #[test]
    fn auth_and_credential_go_together() {
        let base = json!({"base_url": "http://127.0.0.1:1", "entities": {"a": "/a"}});
        let mut s = settings(base.clone());
        s.insert("auth".into(), json!({"bearer": "token"}));
        assert_eq!(
            paths_of(RestConfig::parse(&s).unwrap_err()),
            vec!["/credential"]
        );
        let mut s = settings(base.clone());
        s.insert("credential".into(), json!("switchboard/acme/api"));
        assert_eq!(paths_of(RestConfig::parse(&s).unwrap_err()), vec!["/auth"]);
        s.insert(
            "auth".into(),
            json!({"header": "X-Api-Key", "field": "key"}),
        );
        let c = RestConfig::parse(&s).unwrap();
        assert_eq!(
            c.credential().map(CredentialRef::as_str),
            Some("switchboard/acme/api")
        );
        s.insert("auth".into(), json!({"header": "Host", "field": "key"}));
        assert_eq!(
            paths_of(RestConfig::parse(&s).unwrap_err()),
            vec!["/auth/header"]
        );
    }

    #[test]
    fn user_info_in_the_base_url_is_refused() {
        let problems = RestConfig::parse(&settings(json!({
            "base_url": "https://user:pw@api.example.com",
            "entities": {"a": "/a"},
        })))
        .unwrap_err();
        assert_eq!(paths_of(problems), vec!["/base_url"]);
    }
}
