//! The `rest` data adapter: an external REST API configured per instance (base URL, entity →
//! path mapping, filter → query parameter templates, pagination, where the credential goes).
//! The defaults suit json-server 0.17 (`_page`/`_limit`, `{field}_gte`, …).
//!
//! A plain REST API has no transactions, so some of `TableData`'s guarantees become "best
//! effort" here, each documented on its method: an explicit-id `create` checks then writes
//! (another writer can slip in between), conditional writes read, check, then write (with
//! `If-Match` when the upstream gives a strong `ETag`), and batches compensate on failure
//! (delete what they created, restore what they patched) instead of being atomic.
//!
//! Every adapter call has one time budget (`timeout_ms`, 5 s by default, at most 8 s so the
//! 504 comes before the Lambda's 10 s timeout): all its requests, retries, backoff pauses and
//! pages (connect and whole bodies included) fit before one deadline; each attempt gets what
//! remains, and no retry starts with less than `MIN_ATTEMPT` (100 ms) left. Reads (GET) are
//! retried with jittered backoff on transport errors, timeouts and 502/503/504; writes only
//! when the connection was never made. A rejected credential is re-fetched at most once per
//! adapter call. Upstream failures become 502 `upstream_error`, timeouts 504
//! `upstream_timeout`; messages name the entity and status, never the credential or the
//! upstream's body (which may echo it).
//!
//! The client refuses loopback, private, link-local (instance metadata), unspecified and
//! other non-public addresses, checked after DNS resolution (and on literal IPs), unless
//! `SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1` (read once by [`RestClient::new`]; the tests' local
//! json-servers need it).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tower_service::Service;

use crate::data::{as_object, matches, merged, type_name};
use crate::error::{Detail, Error};
use crate::ids::{EntityName, OrgId, RecordId};
use crate::ports::{Condition, DataAdapter, DataError, MAX_TRANSACT_ITEMS, Op, Page, StoreError};
use crate::secrets::{CredentialRef, SecretValue, Secrets};

/// The whole budget of one adapter call (every attempt, backoff and page).
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Below the Lambda functions' 10 s `Timeout` (template.yaml), with room for the rest of the
/// request and a batch's compensation (`UNDO_BUDGET`), so the caller gets our 504.
const MAX_TIMEOUT_MS: u64 = 8_000;
/// No retry starts with less than this left of the call's budget (after its backoff).
const MIN_ATTEMPT: Duration = Duration::from_millis(100);
/// A failed batch's compensation may run this long past an exhausted budget: leaving a
/// partial batch behind is worse than a slightly later answer.
const UNDO_BUDGET: Duration = Duration::from_secs(1);
/// The environment variable that lets the client call private and loopback addresses.
pub const ALLOW_PRIVATE_ENV: &str = "SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS";
/// Extra attempts for a read after the first one.
const DEFAULT_RETRIES: u64 = 2;
const MAX_RETRIES: u64 = 4;
/// Larger answers are refused rather than buffered.
const MAX_BODY_BYTES: usize = 8 << 20;
/// `query` reads at most this many records from the upstream before giving up.
const MAX_QUERY_RECORDS: usize = 10_000;
const MAX_PAGE_SIZE: u64 = 1_000;

/// Ids and query values keep only unreserved characters; '.' is encoded too, so an id can
/// never become a `..` path segment.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

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

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Https = hyper_rustls::HttpsConnector<Guarded>;
type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// One HTTP(S) client per container, shared by every `rest` adapter (its pool is per host).
#[derive(Clone)]
pub struct RestClient {
    http: Client<Https, Full<Bytes>>,
    allow_private: bool,
}

impl RestClient {
    /// The client; private and loopback upstreams only with
    /// `SWITCHBOARD_ALLOW_PRIVATE_UPSTREAMS=1` (read here, once).
    pub fn new() -> Result<Self, Error> {
        let allow = std::env::var(ALLOW_PRIVATE_ENV).is_ok_and(|v| v.trim() == "1");
        if allow {
            tracing::warn!(
                "{ALLOW_PRIVATE_ENV}=1: the rest data adapter may call private and loopback addresses"
            );
        }
        Self::with_private_upstreams(allow)
    }

    /// The client, allowing private and loopback upstreams or not whatever the environment.
    pub fn with_private_upstreams(allow: bool) -> Result<Self, Error> {
        let mut http = HttpConnector::new_with_resolver(PublicResolver {
            gai: GaiResolver::new(),
            allow_private: allow,
        });
        // The HTTPS connector checks the scheme; this one must pass https through.
        http.enforce_http(false);
        // The provider is named so a second rustls provider in the build can never make
        // rustls guess (and panic); aws-lc-rs and native roots are what the AWS SDK uses.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| Error::internal(format!("rest adapter TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(Guarded {
                http,
                allow_private: allow,
            });
        let http = Client::builder(TokioExecutor::new())
            // Below the 5 s keep-alive of Node servers (and most others): reusing a connection
            // the server is closing fails a write, which is never retried.
            .pool_idle_timeout(Duration::from_secs(4))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            http,
            allow_private: allow,
        })
    }

    /// Whether this client may call private and loopback addresses.
    pub fn allows_private_upstreams(&self) -> bool {
        self.allow_private
    }
}

/// The refusal to connect to a non-public address; found again in the client's error chain.
#[derive(Debug)]
struct PrivateAddress;

impl std::fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream's address is private, loopback or otherwise not public")
    }
}

impl std::error::Error for PrivateAddress {}

/// getaddrinfo, keeping only public addresses (unless allowed): the connection goes to what
/// is returned here, so a name re-resolving to a private address later changes nothing.
#[derive(Clone)]
struct PublicResolver {
    gai: GaiResolver,
    allow_private: bool,
}

impl Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.gai.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private;
        let lookup = self.gai.call(name);
        Box::pin(async move {
            let found: Vec<SocketAddr> = lookup.await?.collect();
            if found.is_empty() {
                return Err("the upstream's name resolved to no address".into());
            }
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow || !is_private(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(PrivateAddress) as BoxError);
            }
            Ok(public.into_iter())
        })
    }
}

/// The TCP connector, refusing a literal non-public IP (which `HttpConnector` connects to
/// without asking the resolver).
#[derive(Clone)]
struct Guarded {
    http: HttpConnector<PublicResolver>,
    allow_private: bool,
}

impl Service<Uri> for Guarded {
    type Response = <HttpConnector<PublicResolver> as Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if !self.allow_private && uri.host().and_then(literal_ip).is_some_and(is_private) {
            return Box::pin(std::future::ready(
                Err(Box::new(PrivateAddress) as BoxError),
            ));
        }
        let connecting = self.http.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The IP a URL's host names literally (`[::1]` as well as `127.0.0.1`).
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Anything but a public unicast address: loopback, RFC 1918 and unique-local, link-local
/// (169.254.169.254, the instance metadata service), unspecified, shared (CGNAT), broadcast,
/// multicast and reserved ranges, and IPv4 addresses mapped or translated (NAT64) into IPv6.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_private(IpAddr::from([a, b, c, d]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local (AWS's fd00:ec2::254 metadata), fe80::/10 link-local,
                // fec0::/10 (deprecated) site-local.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
        }
    }
}

/// Whether a client error is the refusal of a non-public address.
fn is_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<PrivateAddress>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Where an entity's records live, relative to the base URL. `item` holds `{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Paths {
    collection: String,
    item: String,
}

/// Where the credential's value goes on each request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    /// `Authorization: Bearer <secret[field]>`.
    Bearer { field: String },
    /// `<name>: <secret[field]>`.
    Header { name: HeaderName, field: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pagination {
    page: String,
    limit: String,
    first: u64,
    /// Page size `query` reads with.
    size: u64,
}

/// The parsed settings of one `rest` adapter config.
#[derive(Debug, Clone)]
pub struct RestConfig {
    base_url: String,
    entities: BTreeMap<EntityName, Paths>,
    credential: Option<CredentialRef>,
    auth: Option<Auth>,
    filters: Vec<(Op, String)>,
    pagination: Option<Pagination>,
    records_at: Option<String>,
    timeout: Duration,
    retries: u32,
}

impl RestConfig {
    /// Parses the settings beside `"type": "rest"`; every problem is reported with its pointer.
    pub fn parse(settings: &Map<String, Value>) -> Result<Self, Vec<Detail>> {
        let mut p = Vec::new();
        for k in settings.keys() {
            if !SETTINGS.contains(&k.as_str()) {
                p.push(Detail::new(
                    format!("/{}", escape(k)),
                    format!("is not a rest adapter setting; use {}", SETTINGS.join(", ")),
                ));
            }
        }
        let credential = super::credential_setting(settings, &mut p);
        let base_url = base_url(settings.get("base_url"), &mut p);
        let entities = entities(settings.get("entities"), &mut p);
        let auth = auth(settings.get("auth"), &mut p);
        let has_credential = !matches!(settings.get("credential"), None | Some(Value::Null));
        match (&auth, has_credential) {
            (Some(_), false) => p.push(Detail::new(
                "/credential",
                "is required with auth: the secret whose field is sent",
            )),
            (None, true) if !settings.contains_key("auth") => p.push(Detail::new(
                "/auth",
                format!("is required with a credential: it {AUTH_SHAPE}"),
            )),
            _ => {}
        }
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
    /// literal loopback, private, link-local or otherwise non-public IP. Names that resolve
    /// to one are refused by the client when called.
    pub fn check_upstream(&self, allow_private: bool) -> Result<(), Detail> {
        if allow_private {
            return Ok(());
        }
        let host = self.base_url.parse::<Uri>().ok().and_then(|u| {
            u.host()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        });
        let Some(host) = host else {
            return Ok(());
        };
        let local = host == "localhost" || host.ends_with(".localhost");
        if local || literal_ip(&host).is_some_and(is_private) {
            return Err(Detail::new(
                "/base_url",
                "must name a public host: the rest data adapter refuses to call private or loopback addresses",
            ));
        }
        Ok(())
    }

    /// Checks (at write time) that the resolved secret holds the field `auth` names as a
    /// non-empty string that fits in a header. Messages are fixed: they never quote a value.
    pub fn check_secret(&self, value: &SecretValue) -> Result<(), Detail> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
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
                format!(
                    "the secret's field '{field}' holds characters an HTTP header cannot carry"
                ),
            ));
        }
        Ok(())
    }
}

/// A JSON pointer token for a settings key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn base_url(v: Option<&Value>, p: &mut Vec<Detail>) -> String {
    let Some(Value::String(s)) = v else {
        p.push(Detail::new(
            "/base_url",
            "is required: the API's http(s) URL, e.g. \"https://api.example.com/v1\"",
        ));
        return String::new();
    };
    let problem = match s.parse::<hyper::Uri>() {
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

fn auth(v: Option<&Value>, p: &mut Vec<Detail>) -> Option<Auth> {
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

fn number(
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

/// The `rest` adapter for one organization's instance.
pub struct RestData {
    client: RestClient,
    config: RestConfig,
    secrets: Arc<Secrets>,
    org: OrgId,
}

/// An upstream answer, body read in full.
struct Reply {
    status: StatusCode,
    etag: Option<HeaderValue>,
    total: Option<u64>,
    body: Bytes,
}

/// Why one attempt got no answer.
enum Failure {
    Timeout,
    /// The upstream's address is not public (and the client does not allow that).
    Refused,
    /// No connection was made: the request never left, so even a write may be retried.
    Connect(String),
    Transport(String),
}

/// One adapter call (one `DataAdapter` method): the deadline all its requests, retries and
/// pages share, and whether it already re-fetched the credential.
struct Ctx {
    deadline: Instant,
    refreshed: AtomicBool,
}

impl Ctx {
    /// What is left of the budget.
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The context for compensating a failed batch: the rest of the budget, but at least
    /// [`UNDO_BUDGET`]; still at most one credential refresh in the whole call.
    fn for_undo(&self) -> Self {
        Self {
            deadline: self.deadline.max(Instant::now() + UNDO_BUDGET),
            refreshed: AtomicBool::new(self.refreshed.load(Ordering::Relaxed)),
        }
    }
}

/// One request to send, possibly several times.
struct Call<'a> {
    entity: &'a EntityName,
    method: Method,
    url: String,
    body: Option<Bytes>,
    if_match: Option<HeaderValue>,
}

fn conflict(entity: &EntityName, id: &str) -> DataError {
    DataError::Conflict {
        entity: entity.to_string(),
        id: id.to_owned(),
    }
}

fn not_found(entity: &EntityName, id: &str) -> DataError {
    DataError::NotFound {
        entity: entity.to_string(),
        id: id.to_owned(),
    }
}

/// A refused or failed answer, by entity, method and status only: the body may echo secrets.
fn failed(call_entity: &EntityName, method: &Method, status: StatusCode) -> DataError {
    DataError::Upstream(format!(
        "the {call_entity} API answered {status} to {method}"
    ))
}

fn secret_error(e: Error) -> DataError {
    match e {
        Error::Validation { message, .. } => DataError::Invalid(message),
        Error::Unavailable(m) => DataError::Store(StoreError::Unavailable(m)),
        Error::Internal(cause) => DataError::Store(StoreError::Internal(cause)),
        other => DataError::Store(StoreError::Internal(other.to_string())),
    }
}

/// A record id as text: strings as they are, numbers printed (json-server's ids are numbers).
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn explicit_id(
    entity: &EntityName,
    record: &Map<String, Value>,
) -> Result<Option<RecordId>, DataError> {
    match record.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ (Value::String(_) | Value::Number(_))) => {
            RecordId::parse(id_text(v).unwrap_or_default())
                .map(Some)
                .map_err(|e| DataError::Invalid(e.to_string()))
        }
        Some(other) => Err(DataError::Invalid(format!(
            "a {entity} id must be a string or a number, not {}",
            type_name(other)
        ))),
    }
}

/// The record with `"id"` filled in when the upstream left it out.
fn with_id(record: Map<String, Value>, id: &str) -> Value {
    let mut record = record;
    if !record.contains_key("id") {
        record.insert("id".into(), Value::String(id.to_owned()));
    }
    Value::Object(record)
}

/// Whether a condition may go to the upstream as a query parameter without making it drop
/// a record that the condition (checked here again) would keep.
fn pushable(c: &Condition) -> bool {
    match &c.value {
        Value::Bool(_) => true,
        // json-server compares `String(value)`: "1.0" would miss a stored 1.
        Value::Number(n) => n.is_i64() || n.is_u64() || !matches!(c.op, Op::Eq | Op::Ne),
        // `_like` is a regular expression upstream: only plain text is safe to send.
        Value::String(s) => {
            c.op != Op::Contains || !s.contains(|ch: char| "\\^$.|?*+()[]{}".contains(ch))
        }
        _ => false,
    }
}

/// A `list` cursor: the offset of the next record.
fn cursor_at(offset: u64) -> String {
    format!("o{offset}")
}

/// The offset in a cursor this adapter returned (canonical digits, below 2^32).
fn parse_cursor(cursor: &str) -> Option<u64> {
    let n = cursor.strip_prefix('o')?.parse::<u64>().ok()?;
    (n < 1 << 32 && cursor_at(n) == cursor).then_some(n)
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Jitter over an exponential step: 100–200 ms, then 200–400 ms, 400–800 ms, …
fn backoff(attempt: u32) -> Duration {
    let step = 100u64 << attempt.min(5);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    Duration::from_millis(step / 2 + random % (step / 2 + 1))
}

impl RestData {
    pub fn new(client: RestClient, config: RestConfig, secrets: Arc<Secrets>, org: OrgId) -> Self {
        Self {
            client,
            config,
            secrets,
            org,
        }
    }

    /// The context of one adapter call, its budget starting now.
    fn begin(&self) -> Ctx {
        Ctx {
            deadline: Instant::now() + self.config.timeout,
            refreshed: AtomicBool::new(false),
        }
    }

    fn timed_out(&self, entity: &EntityName, method: &Method) -> DataError {
        DataError::UpstreamTimeout(format!(
            "the {entity} API did not answer a {method} within the call's {} ms budget",
            self.config.timeout.as_millis()
        ))
    }

    fn paths(&self, entity: &EntityName) -> Result<&Paths, DataError> {
        self.config.entities.get(entity).ok_or_else(|| {
            DataError::Invalid(format!(
                "entity '{entity}' is not mapped in the rest data adapter; add it under data_adapter.entities (mapped: {})",
                self.config
                    .entities
                    .keys()
                    .map(EntityName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn item_url(&self, paths: &Paths, id: &str) -> String {
        format!(
            "{}{}",
            self.config.base_url,
            paths.item.replace("{id}", &encode(id))
        )
    }

    fn collection_url(&self, paths: &Paths, query: &[(String, String)]) -> String {
        let mut url = format!("{}{}", self.config.base_url, paths.collection);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    fn auth_header(
        &self,
        entity: &EntityName,
        auth: &Auth,
        secret: &SecretValue,
    ) -> Result<(HeaderName, HeaderValue), DataError> {
        let (name, field) = match auth {
            Auth::Bearer { field } => (header::AUTHORIZATION, field),
            Auth::Header { name, field } => (name.clone(), field),
        };
        let reference = self
            .config
            .credential
            .as_ref()
            .map(CredentialRef::as_str)
            .unwrap_or_default();
        let Some(value) = secret.field(field).filter(|v| !v.is_empty()) else {
            return Err(DataError::Invalid(format!(
                "credential '{reference}' has no non-empty string field '{field}' for the {entity} API's auth"
            )));
        };
        let text = match auth {
            Auth::Bearer { .. } => format!("Bearer {value}"),
            Auth::Header { .. } => value.to_owned(),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            DataError::Invalid(format!(
                "credential '{reference}' field '{field}' cannot be sent in an HTTP header"
            ))
        })?;
        // Kept out of HPACK tables and redacted from the header map's Debug output.
        value.set_sensitive(true);
        Ok((name, value))
    }

    /// One attempt, before `deadline` (connect, headers and the whole body).
    async fn once(
        &self,
        call: &Call<'_>,
        auth: Option<&(HeaderName, HeaderValue)>,
        deadline: Instant,
    ) -> Result<Reply, Failure> {
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(call.url.as_str())
            .header(header::ACCEPT, "application/json");
        if call.body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        if let Some(tag) = &call.if_match {
            req = req.header(header::IF_MATCH, tag);
        }
        let req = req
            .body(Full::new(call.body.clone().unwrap_or_default()))
            .map_err(|e| Failure::Transport(format!("building the request: {e}")))?;
        let exchange = async {
            let resp = self.client.http.request(req).await.map_err(|e| {
                let cause = format!("{e:?}");
                if is_refusal(&e) {
                    Failure::Refused
                } else if e.is_connect() {
                    Failure::Connect(cause)
                } else {
                    Failure::Transport(cause)
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            let total = parts
                .headers
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            Ok(Reply {
                status: parts.status,
                // Only a strong validator can guard a write (If-Match compares strongly).
                etag: parts
                    .headers
                    .get(header::ETAG)
                    .filter(|t| !t.as_bytes().starts_with(b"W/"))
                    .cloned(),
                total,
                body,
            })
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| Failure::Timeout)?
    }

    /// The call with bounded retries within the call's budget: reads on any failure to
    /// answer and on 502/503/504, writes only when no connection was made. No retry starts
    /// when less than [`MIN_ATTEMPT`] would remain after its backoff.
    async fn attempts(
        &self,
        cx: &Ctx,
        call: &Call<'_>,
        auth: Option<&(HeaderName, HeaderValue)>,
    ) -> Result<Reply, DataError> {
        let read = call.method == Method::GET;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = if cx.remaining().is_zero() {
                Err(Failure::Timeout)
            } else {
                self.once(call, auth, cx.deadline).await
            };
            let retry = match &result {
                Ok(r) => read && matches!(r.status.as_u16(), 502..=504),
                Err(Failure::Refused) => false,
                Err(Failure::Connect(_)) => true,
                Err(_) => read,
            };
            let pause = backoff(attempt);
            if retry && attempt <= self.config.retries && cx.remaining() >= pause + MIN_ATTEMPT {
                let why = match &result {
                    Ok(r) => r.status.to_string(),
                    Err(Failure::Timeout) => "timeout".into(),
                    Err(Failure::Refused) => "refused".into(),
                    Err(Failure::Connect(c) | Failure::Transport(c)) => c.clone(),
                };
                tracing::warn!(entity = %call.entity, method = %call.method, attempt, %why, "upstream call failed; retrying");
                tokio::time::sleep(pause).await;
                continue;
            }
            return match result {
                Ok(r) => Ok(r),
                Err(Failure::Timeout) => Err(self.timed_out(call.entity, &call.method)),
                Err(Failure::Refused) => Err(DataError::Upstream(format!(
                    "the {} API was not called ({}): the rest data adapter refuses to call private or loopback addresses",
                    call.entity, call.method
                ))),
                Err(Failure::Connect(cause) | Failure::Transport(cause)) => {
                    tracing::warn!(entity = %call.entity, method = %call.method, %cause, "upstream call failed");
                    Err(DataError::Upstream(format!(
                        "the {} API could not be reached for a {}",
                        call.entity, call.method
                    )))
                }
            };
        }
    }

    /// Sends with the credential; on 401/403 re-fetches it, at most once per adapter call,
    /// and, if it was rotated, sends again (the refused request was not applied, so this
    /// holds for writes too). The secret store's answers count against the budget.
    async fn send(&self, cx: &Ctx, call: Call<'_>) -> Result<Reply, DataError> {
        let store_timeout = || {
            DataError::Store(StoreError::Unavailable(
                "the secret store did not answer within the call's time budget".into(),
            ))
        };
        let mut secret = match &self.config.credential {
            Some(r) => Some(
                tokio::time::timeout_at(cx.deadline, self.secrets.resolve(&self.org, r))
                    .await
                    .map_err(|_| store_timeout())?
                    .map_err(secret_error)?,
            ),
            None => None,
        };
        loop {
            let auth = match (&self.config.auth, &secret) {
                (Some(a), Some(s)) => Some(self.auth_header(call.entity, a, s)?),
                _ => None,
            };
            let reply = self.attempts(cx, &call, auth.as_ref()).await?;
            let status = reply.status;
            if !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Ok(reply);
            }
            let (Some(reference), Some(used)) = (&self.config.credential, &secret) else {
                return Err(DataError::Upstream(format!(
                    "the {} API refused a {} ({status}) and no credential is configured",
                    call.entity, call.method
                )));
            };
            if !cx.refreshed.swap(true, Ordering::Relaxed) {
                let refreshed = tokio::time::timeout_at(
                    cx.deadline,
                    self.secrets.refresh(&self.org, reference, used),
                )
                .await
                .map_err(|_| store_timeout())?
                .map_err(secret_error)?;
                if let Some(rotated) = refreshed {
                    tracing::info!(entity = %call.entity, credential = %reference, "upstream rejected the credential; retrying once with its rotated value");
                    secret = Some(rotated);
                    continue;
                }
            }
            return Err(DataError::Upstream(format!(
                "the {} API rejected credential '{reference}' ({status} to {}); update the secret",
                call.entity, call.method
            )));
        }
    }

    async fn call(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        method: Method,
        url: String,
        body: Option<&Value>,
        if_match: Option<HeaderValue>,
    ) -> Result<Reply, DataError> {
        let body = body
            .map(|b| serde_json::to_vec(b).map(Bytes::from))
            .transpose()
            .map_err(|e| DataError::Invalid(format!("a {entity} record cannot be encoded: {e}")))?;
        self.send(
            cx,
            Call {
                entity,
                method,
                url,
                body,
                if_match,
            },
        )
        .await
    }

    fn json(entity: &EntityName, reply: &Reply) -> Result<Option<Value>, DataError> {
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&reply.body).map(Some).map_err(|_| {
            DataError::Upstream(format!(
                "the {entity} API answered {} with a body that is not JSON",
                reply.status
            ))
        })
    }

    /// The records of a list answer (at `records_at` when set).
    fn records(&self, entity: &EntityName, reply: &Reply) -> Result<Vec<Value>, DataError> {
        let body = Self::json(entity, reply)?.unwrap_or(Value::Array(Vec::new()));
        let list = match &self.config.records_at {
            Some(at) => body.pointer(at).cloned(),
            None => Some(body),
        };
        match list {
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => Ok(items),
            _ => Err(DataError::Upstream(format!(
                "the {entity} API answered {} to a list request without a list of records{}",
                reply.status,
                self.config
                    .records_at
                    .as_ref()
                    .map(|at| format!(" at records_at '{at}'"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// The record and its strong ETag, or `None` on 404.
    async fn read(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &str,
    ) -> Result<Option<(Value, Option<HeaderValue>)>, DataError> {
        let r = self
            .call(
                cx,
                entity,
                Method::GET,
                self.item_url(paths, id),
                None,
                None,
            )
            .await?;
        match r.status {
            s if s.is_success() => match Self::json(entity, &r)? {
                Some(Value::Object(m)) => Ok(Some((with_id(m, id), r.etag))),
                _ => Err(DataError::Upstream(format!(
                    "the {entity} API answered {} to a read of '{id}' without a record",
                    r.status
                ))),
            },
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            s => Err(failed(entity, &Method::GET, s)),
        }
    }

    /// One page of the collection with `query` parameters, and the total when the
    /// upstream reports it (`X-Total-Count`).
    async fn fetch(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        query: &[(String, String)],
    ) -> Result<(Vec<Value>, Option<u64>), DataError> {
        let r = self
            .call(
                cx,
                entity,
                Method::GET,
                self.collection_url(paths, query),
                None,
                None,
            )
            .await?;
        if !r.status.is_success() {
            return Err(failed(entity, &Method::GET, r.status));
        }
        Ok((self.records(entity, &r)?, r.total))
    }

    /// POSTs a record; `id` is the one it names, if any.
    async fn post(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        record: Map<String, Value>,
        id: Option<&RecordId>,
    ) -> Result<Value, DataError> {
        let body = Value::Object(record);
        let r = self
            .call(
                cx,
                entity,
                Method::POST,
                self.collection_url(paths, &[]),
                Some(&body),
                None,
            )
            .await?;
        let id_text = id.map(RecordId::as_str).unwrap_or_default();
        match r.status {
            s if s.is_success() => match (Self::json(entity, &r)?, id) {
                (Some(Value::Object(m)), _) => Ok(match id {
                    Some(id) => with_id(m, id.as_str()),
                    None => Value::Object(m),
                }),
                (_, Some(_)) => Ok(body),
                (_, None) => Err(DataError::Upstream(format!(
                    "the {entity} API answered {} to a POST without the created record, so its id is unknown",
                    r.status
                ))),
            },
            StatusCode::CONFLICT => Err(conflict(entity, id_text)),
            s => Err(failed(entity, &Method::POST, s)),
        }
    }

    /// PATCHes one record; `read` (the current record and its strong ETag, when read first)
    /// guards the write and fills in an empty answer.
    async fn patch(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &RecordId,
        mut patch: Map<String, Value>,
        read: Option<(Value, Option<HeaderValue>)>,
    ) -> Result<Value, DataError> {
        let (current, etag) = match read {
            Some((current, etag)) => (Some(current), etag),
            None => (None, None),
        };
        // As in TableData, the id is never changed.
        patch.remove("id");
        let url = self.item_url(paths, id.as_str());
        let r = self
            .call(
                cx,
                entity,
                Method::PATCH,
                url,
                Some(&Value::Object(patch.clone())),
                etag,
            )
            .await?;
        match r.status {
            s if s.is_success() => match (Self::json(entity, &r)?, current) {
                (Some(Value::Object(m)), _) => Ok(with_id(m, id.as_str())),
                (_, Some(c)) => Ok(merged(as_object(entity, c)?, patch)),
                (_, None) => match self.read(cx, entity, paths, id.as_str()).await? {
                    Some((v, _)) => Ok(v),
                    None => Err(not_found(entity, id.as_str())),
                },
            },
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(not_found(entity, id.as_str())),
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => {
                Err(conflict(entity, id.as_str()))
            }
            s => Err(failed(entity, &Method::PATCH, s)),
        }
    }

    /// DELETE; `false` when it was already gone.
    async fn remove(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &str,
        etag: Option<HeaderValue>,
    ) -> Result<bool, DataError> {
        let r = self
            .call(
                cx,
                entity,
                Method::DELETE,
                self.item_url(paths, id),
                None,
                etag,
            )
            .await?;
        match r.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(false),
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => Err(conflict(entity, id)),
            s => Err(failed(entity, &Method::DELETE, s)),
        }
    }

    /// The stored record when it exists and satisfies `expect`.
    async fn checked(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<Option<(Value, Option<HeaderValue>)>, DataError> {
        let Some((current, etag)) = self.read(cx, entity, paths, id.as_str()).await? else {
            return Ok(None);
        };
        if expect.iter().all(|c| matches(&current, c)) {
            Ok(Some((current, etag)))
        } else {
            Err(conflict(entity, id.as_str()))
        }
    }

    /// Compensation for a failed batch create: deletes what it created, best effort.
    async fn undo_creates(&self, cx: &Ctx, entity: &EntityName, paths: &Paths, made: &[Value]) {
        for record in made {
            let Some(id) = record.get("id").and_then(id_text) else {
                tracing::error!(%entity, "cannot undo a batch create: the created record has no id");
                continue;
            };
            if let Err(e) = self.remove(cx, entity, paths, &id, None).await {
                tracing::error!(%entity, %id, error = %e, "could not undo a batch create; remove the record by hand");
            }
        }
    }

    /// Compensation for a failed batch update: puts the previous versions back, best effort.
    async fn undo_updates(
        &self,
        cx: &Ctx,
        entity: &EntityName,
        paths: &Paths,
        done: &[(RecordId, Value)],
    ) {
        for (id, previous) in done {
            let url = self.item_url(paths, id.as_str());
            match self
                .call(cx, entity, Method::PUT, url, Some(previous), None)
                .await
            {
                Ok(r) if r.status.is_success() => {}
                Ok(r) => {
                    tracing::error!(%entity, %id, status = %r.status, "could not undo a batch update; restore the record by hand");
                }
                Err(e) => {
                    tracing::error!(%entity, %id, error = %e, "could not undo a batch update; restore the record by hand");
                }
            }
        }
    }
}

#[async_trait]
impl DataAdapter for RestData {
    /// The cursor is the offset of the next record (`o<offset>`), so a caller may change
    /// `limit` between pages. With pagination, an offset that is not a multiple of `limit`
    /// reads the two upstream pages (of `limit` records) that hold the window.
    async fn list(
        &self,
        entity: &EntityName,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        let limit = limit.clamp(1, 1000) as u64;
        let offset = match cursor {
            None => 0,
            Some(c) => parse_cursor(c).ok_or_else(|| {
                DataError::Invalid(
                    "the cursor is not one this API returned; start again without it".into(),
                )
            })?,
        };
        let Some(pg) = &self.config.pagination else {
            let (all, _) = self.fetch(cx, entity, paths, &[]).await?;
            let len = all.len() as u64;
            let end = offset.saturating_add(limit).min(len);
            let items = all
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(end.saturating_sub(offset)).unwrap_or(0))
                .collect();
            return Ok(Page {
                items,
                next: (end < len).then(|| cursor_at(end)),
            });
        };
        let index = offset / limit;
        let skip = offset % limit;
        let mut items = Vec::new();
        let mut total = None;
        // Whether records may follow the last one returned.
        let mut more = false;
        for page in [index, index + 1] {
            if page > index && (skip == 0 || !more) {
                break;
            }
            let query = [
                (pg.page.clone(), (pg.first + page).to_string()),
                (pg.limit.clone(), limit.to_string()),
            ];
            let (got, t) = self.fetch(cx, entity, paths, &query).await?;
            total = t.or(total);
            let full = got.len() as u64 >= limit;
            let upstream_more = full && total.is_none_or(|t| (page + 1) * limit < t);
            let (from, take) = if page == index {
                (skip, limit - skip)
            } else {
                (0, skip)
            };
            let available = (got.len() as u64).saturating_sub(from);
            more = upstream_more || available > take;
            items.extend(
                got.into_iter()
                    .skip(usize::try_from(from).unwrap_or(usize::MAX))
                    .take(usize::try_from(take).unwrap_or(0)),
            );
        }
        let end = offset + items.len() as u64;
        let more = match total {
            Some(t) => end < t,
            None => more,
        };
        Ok(Page {
            items,
            next: more.then(|| cursor_at(end)),
        })
    }

    async fn get(&self, entity: &EntityName, id: &RecordId) -> Result<Option<Value>, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        Ok(self
            .read(cx, entity, paths, id.as_str())
            .await?
            .map(|(v, _)| v))
    }

    /// With an `"id"`, checks that it is free and then POSTs: not atomic against another
    /// writer creating the same id in between (the upstream's own answer decides then).
    /// Without one, the upstream assigns it (json-server: the next number).
    async fn create(&self, entity: &EntityName, record: Value) -> Result<Value, DataError> {
        let cx = &self.begin();
        let record = as_object(entity, record)?;
        let id = explicit_id(entity, &record)?;
        let paths = self.paths(entity)?;
        if let Some(id) = &id
            && self.read(cx, entity, paths, id.as_str()).await?.is_some()
        {
            return Err(conflict(entity, id.as_str()));
        }
        self.post(cx, entity, paths, record, id.as_ref()).await
    }

    /// Reads, checks `expect`, then PATCHes (with `If-Match` when the read gave a strong
    /// ETag). Without an ETag a write between the read and the PATCH goes unnoticed.
    async fn update_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
        expect: &[Condition],
    ) -> Result<Value, DataError> {
        let cx = &self.begin();
        let patch = as_object(entity, patch)?;
        let paths = self.paths(entity)?;
        if expect.is_empty() {
            return self.patch(cx, entity, paths, id, patch, None).await;
        }
        let Some((current, etag)) = self.checked(cx, entity, paths, id, expect).await? else {
            return Err(not_found(entity, id.as_str()));
        };
        self.patch(cx, entity, paths, id, patch, Some((current, etag)))
            .await
    }

    /// Like `update_where`: read, check, DELETE; not atomic without a strong ETag.
    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        if expect.is_empty() {
            return self.remove(cx, entity, paths, id.as_str(), None).await;
        }
        match self.checked(cx, entity, paths, id, expect).await? {
            Some((_, etag)) => self.remove(cx, entity, paths, id.as_str(), etag).await,
            None => Ok(false),
        }
    }

    /// Conditions with a query parameter template go to the upstream; every condition is
    /// checked again here, so a permissive upstream never returns a wrong record.
    async fn query(
        &self,
        entity: &EntityName,
        filter: &[Condition],
    ) -> Result<Vec<Value>, DataError> {
        let cx = &self.begin();
        let paths = self.paths(entity)?;
        let mut params: Vec<(String, String)> = Vec::new();
        for c in filter.iter().filter(|c| pushable(c)) {
            if let Some((_, template)) = self.config.filters.iter().find(|(op, _)| *op == c.op) {
                let value = match &c.value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                params.push((template.replace("{field}", &c.field), value));
            }
        }
        let mut all = Vec::new();
        match &self.config.pagination {
            None => all = self.fetch(cx, entity, paths, &params).await?.0,
            Some(pg) => {
                let mut page = pg.first;
                loop {
                    let mut query = params.clone();
                    query.push((pg.page.clone(), page.to_string()));
                    query.push((pg.limit.clone(), pg.size.to_string()));
                    let (items, total) = self.fetch(cx, entity, paths, &query).await?;
                    let got = items.len() as u64;
                    all.extend(items);
                    if all.len() > MAX_QUERY_RECORDS {
                        return Err(DataError::Upstream(format!(
                            "the {entity} API holds more than {MAX_QUERY_RECORDS} records for this query; narrow the filter"
                        )));
                    }
                    let read = (page - pg.first + 1) * pg.size;
                    if got < pg.size || total.is_some_and(|t| read >= t) {
                        break;
                    }
                    page += 1;
                }
            }
        }
        all.retain(|r| filter.iter().all(|c| matches(r, c)));
        Ok(all)
    }

    /// Checks every explicit id first, then creates one by one; on a failure deletes what it
    /// created and returns the error. Not atomic: others may see the partial batch meanwhile.
    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError> {
        let cx = &self.begin();
        crate::ports::check_batch_len(records.len(), MAX_TRANSACT_ITEMS)?;
        let paths = self.paths(entity)?;
        let mut prepared = Vec::with_capacity(records.len());
        let mut ids = HashSet::new();
        for r in records {
            let r = as_object(entity, r)?;
            let id = explicit_id(entity, &r)?;
            if let Some(id) = &id
                && !ids.insert(id.clone())
            {
                return Err(DataError::Invalid(format!(
                    "the batch names {entity} '{id}' twice"
                )));
            }
            prepared.push((id, r));
        }
        for id in &ids {
            if self.read(cx, entity, paths, id.as_str()).await?.is_some() {
                return Err(conflict(entity, id.as_str()));
            }
        }
        let mut made = Vec::with_capacity(prepared.len());
        for (id, r) in prepared {
            match self.post(cx, entity, paths, r, id.as_ref()).await {
                Ok(v) => made.push(v),
                Err(e) => {
                    self.undo_creates(&cx.for_undo(), entity, paths, &made)
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    /// Reads every record first (a missing one fails the batch before any write), then
    /// PATCHes one by one; on a failure PUTs the previous versions back and returns the error.
    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        let cx = &self.begin();
        crate::ports::check_batch_len(patches.len(), MAX_TRANSACT_ITEMS)?;
        let paths = self.paths(entity)?;
        let mut planned = Vec::with_capacity(patches.len());
        for (id, patch) in patches {
            let patch = as_object(entity, patch)?;
            let Some((current, etag)) = self.read(cx, entity, paths, id.as_str()).await? else {
                return Err(not_found(entity, id.as_str()));
            };
            planned.push((id, patch, current, etag));
        }
        let mut done = Vec::with_capacity(planned.len());
        let mut out = Vec::with_capacity(planned.len());
        for (id, patch, current, etag) in planned {
            match self
                .patch(cx, entity, paths, &id, patch, Some((current.clone(), etag)))
                .await
            {
                Ok(v) => {
                    out.push(v);
                    done.push((id, current));
                }
                Err(e) => {
                    self.undo_updates(&cx.for_undo(), entity, paths, &done)
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Describes the fields seen on the first records (a REST API has no schema to ask).
    async fn get_schema(&self, entity: &EntityName) -> Result<Value, DataError> {
        let page = self.list(entity, 50, None).await?;
        Ok(crate::data::describe(entity, page.items))
    }

    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        Ok(self.config.entities.keys().cloned().collect())
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

    #[test]
    fn ids_cannot_escape_their_segment() {
        assert_eq!(encode("../a b/%"), "%2E%2E%2Fa%20b%2F%25");
        assert_eq!(encode("2025-01-02_op-1~x"), "2025-01-02_op-1~x");
    }

    #[test]
    fn only_safe_conditions_are_sent_upstream() {
        assert!(pushable(&Condition::eq("a", "x")));
        assert!(pushable(&Condition::eq("a", 3)));
        assert!(!pushable(&Condition::eq("a", 1.5)));
        assert!(pushable(&Condition::new("a", Op::Gte, 1.5)));
        assert!(!pushable(&Condition::eq("a", Value::Null)));
        assert!(pushable(&Condition::new("a", Op::Contains, "lee")));
        assert!(!pushable(&Condition::new("a", Op::Contains, "a(b")));
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_ip("api.example.com"), None);
    }

    #[test]
    fn cursors_are_canonical_offsets() {
        assert_eq!(parse_cursor(&cursor_at(0)), Some(0));
        assert_eq!(parse_cursor("o42"), Some(42));
        for bad in ["42", "o", "o+1", "o01", "o-1", "o4294967296", "O1", "o1 "] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 1..6 {
            let d = backoff(attempt).as_millis() as u64;
            let step = 100u64 << attempt;
            assert!((step / 2..=step).contains(&d), "{attempt}: {d}");
        }
    }
}
