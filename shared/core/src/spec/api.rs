//! The `api` adapter's settings: a vendor's HTTP API that a plugin's own code calls (Twilio,
//! Google Calendar), with where its credential goes: a key in a header, HTTP Basic, or an
//! OAuth2 grant whose access tokens the platform obtains and caches. Credentials go over
//! https only, unless private upstreams are allowed (local test servers).

use std::time::Duration;

use http::Uri;
use http::header::HeaderValue;
use serde_json::{Map, Value};

use super::rest::{
    Auth, auth as key_auth, auth_with_credential, base_url, check_auth_secret, escape, number,
    unknown_settings,
};
use crate::egress::Egress;
use crate::error::Detail;
use crate::secrets::{CredentialRef, SecretValue};

const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const HTTPS_ONLY: &str = "must start with https://: credentials are never sent over plain http";
const SETTINGS: [&str; 4] = ["base_url", "credential", "auth", "timeout_ms"];

const AUTH_SHAPE: &str = r#"must be {"bearer": "<secret field>"}, {"header": "X-Api-Key", "field": "<secret field>"}, {"basic": {"username": "<secret field>", "password": "<secret field>"}} or {"oauth2": {"grant": "client_credentials" | "refresh_token" | "jwt_bearer" | "account_credentials", "token_url": "https://…", "scope": "…"}}"#;

/// How a token request proves the client (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`: the spec's default.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// The OAuth2 grant that obtains the access tokens, and what the secret must hold for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Secret: `client_id`, `client_secret`.
    ClientCredentials,
    /// Secret: `client_id`, `refresh_token`, optionally `client_secret`. A refresh token the
    /// provider rotates is written back to the secret.
    RefreshToken,
    /// RFC 7523 (Google service accounts, Salesforce's JWT flow). Secret: `private_key`
    /// (PKCS#8 PEM, RSA), the issuer in `client_email` or `client_id`, optionally
    /// `private_key_id` and `token_uri`.
    JwtBearer,
    /// Zoom's Server-to-Server OAuth: client credentials for one account. Secret:
    /// `client_id`, `client_secret`, `account_id`.
    AccountCredentials,
}

impl Grant {
    const ALL: [(&'static str, Grant); 4] = [
        ("client_credentials", Self::ClientCredentials),
        ("refresh_token", Self::RefreshToken),
        ("jwt_bearer", Self::JwtBearer),
        ("account_credentials", Self::AccountCredentials),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::JwtBearer => "jwt_bearer",
            Self::AccountCredentials => "account_credentials",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub grant: Grant,
    /// The token endpoint; for `jwt_bearer` it may come from the secret's `token_uri`.
    pub token_url: Option<String>,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
    /// `jwt_bearer`: the user the service account acts for (`sub`).
    pub subject: Option<String>,
    /// `jwt_bearer`: the assertion's `aud`; the token endpoint by default.
    pub audience: Option<String>,
}

/// Where the credential goes on each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAuth {
    /// A bearer token or a key header, as the rest adapter sends them.
    Key(Auth),
    /// `Authorization: Basic`, from two of the secret's fields.
    Basic {
        username: String,
        password: String,
    },
    OAuth2(OAuth2),
}

/// The parsed settings of one `api` adapter config.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Without a trailing '/'.
    pub base_url: String,
    pub credential: Option<CredentialRef>,
    pub auth: Option<ApiAuth>,
    /// The budget of one request, its token request and credential look-up included.
    pub timeout: Duration,
}

impl ApiConfig {
    /// Parses the settings beside `"type": "api"`; every problem is reported with its pointer.
    pub fn parse(settings: &Map<String, Value>) -> Result<Self, Vec<Detail>> {
        let mut p = Vec::new();
        unknown_settings(settings, &SETTINGS, "api", &mut p);
        let credential = super::credential_setting(settings, &mut p);
        let base_url = base_url(settings.get("base_url"), &mut p);
        let auth = api_auth(settings.get("auth"), &mut p);
        auth_with_credential(settings, AUTH_SHAPE, &mut p);
        let timeout = number(
            settings.get("timeout_ms"),
            "/timeout_ms",
            DEFAULT_TIMEOUT_MS,
            1..=super::rest::MAX_TIMEOUT_MS,
            &mut p,
        );
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Self {
            base_url,
            credential,
            auth,
            timeout: Duration::from_millis(timeout),
        })
    }

    pub fn credential(&self) -> Option<&CredentialRef> {
        self.credential.as_ref()
    }

    /// Refuses (at write time) a base or token URL whose host is visibly private, or that
    /// is not https (see [`ApiConfig::plain_http`]).
    pub fn check_upstream(&self, egress: &Egress) -> Result<(), Detail> {
        public_host(&self.base_url, "/base_url", egress)?;
        if self.plain_http(&self.base_url, egress) {
            return Err(Detail::new("/base_url", HTTPS_ONLY));
        }
        if let Some(ApiAuth::OAuth2(OAuth2 {
            token_url: Some(url),
            ..
        })) = &self.auth
        {
            public_host(url, "/auth/oauth2/token_url", egress)?;
            if self.plain_http(url, egress) {
                return Err(Detail::new("/auth/oauth2/token_url", HTTPS_ONLY));
            }
        }
        Ok(())
    }

    /// Whether a credential would cross the network in clear text to `url`: plain http is
    /// refused for an API with a credential, and for any token endpoint, unless private
    /// upstreams are allowed.
    pub fn plain_http(&self, url: &str, egress: &Egress) -> bool {
        self.credential.is_some() && !egress.allows_private() && !url.starts_with("https://")
    }

    /// Checks (at write time) that the resolved secret holds what `auth` needs. Messages
    /// name fields, never a value.
    pub fn check_secret(&self, value: &SecretValue) -> Result<(), Detail> {
        let need = |field: &str, why: &str| match value.field(field).filter(|v| !v.is_empty()) {
            Some(_) => Ok(()),
            None => Err(Detail::new(
                "/credential",
                format!("the secret has no non-empty string field '{field}' ({why})"),
            )),
        };
        match &self.auth {
            None => Ok(()),
            Some(ApiAuth::Key(a)) => check_auth_secret(a, value),
            Some(ApiAuth::Basic { username, password }) => {
                need(username, "named by auth.basic.username")?;
                need(password, "named by auth.basic.password")?;
                let user = value.field(username).unwrap_or_default();
                if user.contains(':') || HeaderValue::from_str(user).is_err() {
                    return Err(Detail::new(
                        "/credential",
                        format!(
                            "the secret's field '{username}' cannot be a Basic user name (no ':' or control characters)"
                        ),
                    ));
                }
                Ok(())
            }
            Some(ApiAuth::OAuth2(o)) => match o.grant {
                Grant::ClientCredentials => {
                    need("client_id", "the OAuth2 client")?;
                    need("client_secret", "the OAuth2 client's secret")
                }
                Grant::AccountCredentials => {
                    need("client_id", "the OAuth2 client")?;
                    need("client_secret", "the OAuth2 client's secret")?;
                    need("account_id", "the account the app acts for")
                }
                Grant::RefreshToken => {
                    need("client_id", "the OAuth2 client")?;
                    need("refresh_token", "the grant's refresh token")
                }
                Grant::JwtBearer => {
                    need(
                        "private_key",
                        "the PKCS#8 PEM key the assertion is signed with",
                    )?;
                    let has = |f: &str| value.field(f).is_some_and(|v| !v.is_empty());
                    if !has("client_email") && !has("client_id") {
                        return Err(Detail::new(
                            "/credential",
                            "the secret has neither 'client_email' nor 'client_id' (the assertion's issuer)",
                        ));
                    }
                    if o.token_url.is_none() {
                        need("token_uri", "no auth.oauth2.token_url is configured")?;
                    }
                    Ok(())
                }
            },
        }
    }
}

impl ApiConfig {
    /// Checks (at write time) a token endpoint that comes from the secret (`token_uri` of a
    /// service-account key file) as [`ApiConfig::check_upstream`] checks configured ones.
    pub fn check_secret_upstream(
        &self,
        value: &SecretValue,
        egress: &Egress,
    ) -> Result<(), Detail> {
        let Some(ApiAuth::OAuth2(OAuth2 {
            token_url: None, ..
        })) = &self.auth
        else {
            return Ok(());
        };
        let Some(uri) = value.field("token_uri") else {
            return Ok(());
        };
        let bad = |m: &str| Detail::new("/credential", format!("the secret's token_uri {m}"));
        let plain = uri
            .parse::<Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| !a.as_str().contains('@')));
        if plain != Some(true) {
            return Err(bad("must be an http(s) URL without credentials in it"));
        }
        if public_host(uri, "/credential", egress).is_err() {
            return Err(bad("must name a public host"));
        }
        if self.plain_http(uri, egress) {
            return Err(bad("must start with https://"));
        }
        Ok(())
    }
}

fn public_host(url: &str, at: &str, egress: &Egress) -> Result<(), Detail> {
    let host = url
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned));
    match host {
        Some(host) if egress.check_host(&host).is_err() => Err(Detail::new(
            at,
            "must name a public host: the api data adapter refuses to call private or loopback addresses",
        )),
        _ => Ok(()),
    }
}

fn api_auth(v: Option<&Value>, p: &mut Vec<Detail>) -> Option<ApiAuth> {
    let m = match v {
        None | Some(Value::Null) => return None,
        Some(Value::Object(m)) => m,
        Some(_) => {
            p.push(Detail::new("/auth", AUTH_SHAPE));
            return None;
        }
    };
    if m.contains_key("basic") || m.contains_key("oauth2") {
        if m.len() != 1 {
            p.push(Detail::new("/auth", AUTH_SHAPE));
            return None;
        }
    } else {
        return key_auth(v, p).map(ApiAuth::Key);
    }
    if let Some(b) = m.get("basic") {
        let field = |k: &str, p: &mut Vec<Detail>| match b.get(k).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            _ => {
                p.push(Detail::new(
                    format!("/auth/basic/{k}"),
                    "must name the secret's field holding it",
                ));
                None
            }
        };
        let Some(o) = b.as_object() else {
            p.push(Detail::new(
                "/auth/basic",
                r#"must be {"username": "<secret field>", "password": "<secret field>"}"#,
            ));
            return None;
        };
        for k in o
            .keys()
            .filter(|k| !matches!(k.as_str(), "username" | "password"))
        {
            p.push(Detail::new(
                format!("/auth/basic/{}", escape(k)),
                "is not a basic auth setting; use username and password",
            ));
        }
        let username = field("username", p);
        let password = field("password", p);
        return Some(ApiAuth::Basic {
            username: username?,
            password: password?,
        });
    }
    let Some(Value::Object(o)) = m.get("oauth2") else {
        p.push(Detail::new(
            "/auth/oauth2",
            r#"must be {"grant": "client_credentials" | "refresh_token" | "jwt_bearer" | "account_credentials", "token_url": "https://…", "scope": "…"}"#,
        ));
        return None;
    };
    oauth2(o, p).map(ApiAuth::OAuth2)
}

fn oauth2(o: &Map<String, Value>, p: &mut Vec<Detail>) -> Option<OAuth2> {
    const KEYS: [&str; 6] = [
        "grant",
        "token_url",
        "scope",
        "client_auth",
        "subject",
        "audience",
    ];
    let before = p.len();
    for k in o.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        p.push(Detail::new(
            format!("/auth/oauth2/{}", escape(k)),
            format!("is not an oauth2 setting; use {}", KEYS.join(", ")),
        ));
    }
    let grant = match o.get("grant").and_then(Value::as_str) {
        Some(g) => Grant::ALL.iter().find(|(n, _)| *n == g).map(|(_, g)| *g),
        None => None,
    };
    if grant.is_none() {
        p.push(Detail::new(
            "/auth/oauth2/grant",
            "must be one of client_credentials, refresh_token, jwt_bearer, account_credentials",
        ));
    }
    let text = |k: &str, p: &mut Vec<Detail>| match o.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Some(_) => {
            p.push(Detail::new(
                format!("/auth/oauth2/{k}"),
                "must be a non-empty string",
            ));
            None
        }
    };
    let token_url = match o.get("token_url") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let mut q = Vec::new();
            let url = base_url(Some(v), &mut q);
            p.extend(q.into_iter().map(|d| {
                Detail::new(
                    "/auth/oauth2/token_url",
                    d.message.replace("the API's", "the token endpoint's"),
                )
            }));
            Some(url)
        }
    };
    if token_url.is_none() && grant != Some(Grant::JwtBearer) {
        p.push(Detail::new(
            "/auth/oauth2/token_url",
            "is required: the provider's token endpoint, e.g. \"https://oauth2.googleapis.com/token\"",
        ));
    }
    let scope = text("scope", p);
    let subject = text("subject", p);
    let audience = text("audience", p);
    if grant != Some(Grant::JwtBearer) {
        for k in ["subject", "audience"] {
            let at = format!("/auth/oauth2/{k}");
            if o.get(k).is_some_and(|v| !v.is_null()) && !p.iter().any(|d| d.path == at) {
                p.push(Detail::new(at, "is a jwt_bearer setting only"));
            }
        }
    }
    let client_auth = match o
        .get("client_auth")
        .and_then(|v| v.as_str().or(v.is_null().then_some("basic")))
    {
        None if !o.contains_key("client_auth") => ClientAuth::Basic,
        Some("basic") => ClientAuth::Basic,
        Some("post") => ClientAuth::Post,
        _ => {
            p.push(Detail::new(
                "/auth/oauth2/client_auth",
                "must be \"basic\" (the default) or \"post\"",
            ));
            ClientAuth::Basic
        }
    };
    if p.len() > before {
        return None;
    }
    Some(OAuth2 {
        grant: grant?,
        token_url,
        scope,
        client_auth,
        subject,
        audience,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ApiConfig, Vec<String>> {
        let Value::Object(m) = v else {
            panic!("not an object")
        };
        ApiConfig::parse(&m).map_err(|ds| ds.into_iter().map(|d| d.path).collect())
    }

    fn secret(v: Value) -> SecretValue {
        let Value::Object(m) = v else {
            panic!("not an object")
        };
        SecretValue::new(m)
    }

    #[test]
    fn each_auth_shape_parses() {
        let c = parse(json!({
            "base_url": "https://api.twilio.com/", "credential": "switchboard/acme/twilio",
            "auth": {"basic": {"username": "account_sid", "password": "auth_token"}}
        }))
        .unwrap();
        assert_eq!(c.base_url, "https://api.twilio.com");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(matches!(c.auth, Some(ApiAuth::Basic { .. })));
        let c = parse(json!({
            "base_url": "https://api.example.com/v2", "credential": "switchboard/acme/vendor",
            "auth": {"oauth2": {"grant": "client_credentials", "token_url": "https://auth.example.com/oauth/token", "client_auth": "post"}}
        }))
        .unwrap();
        let Some(ApiAuth::OAuth2(o)) = c.auth else {
            panic!("not oauth2")
        };
        assert_eq!(
            (o.grant, o.client_auth),
            (Grant::ClientCredentials, ClientAuth::Post)
        );
        let c = parse(json!({
            "base_url": "https://www.googleapis.com/calendar/v3", "credential": "switchboard/acme/google",
            "auth": {"oauth2": {"grant": "jwt_bearer", "scope": "https://www.googleapis.com/auth/calendar", "subject": "desk@acme.test"}}
        }))
        .unwrap();
        assert!(matches!(
            c.auth,
            Some(ApiAuth::OAuth2(OAuth2 {
                grant: Grant::JwtBearer,
                token_url: None,
                ..
            }))
        ));
        let c = parse(json!({"base_url": "https://x.test", "credential": "switchboard/acme/k", "auth": {"bearer": "token"}})).unwrap();
        assert!(matches!(c.auth, Some(ApiAuth::Key(Auth::Bearer { .. }))));
    }

    #[test]
    fn every_problem_is_named_by_pointer() {
        assert_eq!(
            parse(json!({"auth": {"oauth2": {"grant": "password", "subject": 3}}, "extra": 1}))
                .unwrap_err(),
            [
                "/extra",
                "/base_url",
                "/auth/oauth2/grant",
                "/auth/oauth2/token_url",
                "/auth/oauth2/subject",
                "/credential"
            ]
        );
        assert_eq!(
            parse(json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
                "auth": {"oauth2": {"grant": "refresh_token", "token_url": "ftp://x", "subject": "u"}}})).unwrap_err(),
            ["/auth/oauth2/token_url", "/auth/oauth2/subject"]
        );
        assert_eq!(
            parse(
                json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
                "auth": {"basic": {"username": ""}, "bearer": "t"}})
            )
            .unwrap_err(),
            ["/auth"]
        );
        assert_eq!(
            parse(
                json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
                "auth": {"basic": {"username": "", "pw": "x"}}})
            )
            .unwrap_err(),
            [
                "/auth/basic/pw",
                "/auth/basic/username",
                "/auth/basic/password"
            ]
        );
        assert_eq!(
            parse(json!({"base_url": "https://x.test", "auth": {"bearer": "t"}})).unwrap_err(),
            ["/credential"]
        );
    }

    #[test]
    fn the_secret_must_hold_what_the_grant_needs() {
        let cc = parse(json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
            "auth": {"oauth2": {"grant": "client_credentials", "token_url": "https://x.test/token"}}})).unwrap();
        assert!(
            cc.check_secret(&secret(json!({"client_id": "i", "client_secret": "s"})))
                .is_ok()
        );
        let e = cc
            .check_secret(&secret(json!({"client_id": "i"})))
            .unwrap_err();
        assert!(e.message.contains("'client_secret'"), "{}", e.message);
        let jwt = parse(
            json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
            "auth": {"oauth2": {"grant": "jwt_bearer"}}}),
        )
        .unwrap();
        let e = jwt
            .check_secret(&secret(json!({"private_key": "k", "client_email": "e"})))
            .unwrap_err();
        assert!(e.message.contains("'token_uri'"), "{}", e.message);
        let basic = parse(
            json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
            "auth": {"basic": {"username": "u", "password": "p"}}}),
        )
        .unwrap();
        let e = basic
            .check_secret(&secret(json!({"u": "a:b", "p": "secret-value"})))
            .unwrap_err();
        assert!(!e.message.contains("secret-value") && e.message.contains("'u'"));
    }

    #[test]
    fn a_private_token_endpoint_is_refused_when_written() {
        let c = parse(json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
            "auth": {"oauth2": {"grant": "client_credentials", "token_url": "http://127.0.0.1:9/token"}}})).unwrap();
        let e = c.check_upstream(&Egress::public_only()).unwrap_err();
        assert_eq!(e.path, "/auth/oauth2/token_url");
        // Credentials never go over plain http to a public host either.
        let c = parse(
            json!({"base_url": "http://api.example.com", "credential": "switchboard/a/b",
            "auth": {"bearer": "token"}}),
        )
        .unwrap();
        let e = c.check_upstream(&Egress::public_only()).unwrap_err();
        assert_eq!(e.path, "/base_url");
        assert!(e.message.contains("https://"), "{}", e.message);
        assert!(c.check_upstream(&Egress::new(true)).is_ok());
        // A key file's own token_uri is held to the same rules.
        let jwt = parse(
            json!({"base_url": "https://x.test", "credential": "switchboard/a/b",
            "auth": {"oauth2": {"grant": "jwt_bearer"}}}),
        )
        .unwrap();
        let public = Egress::public_only();
        for (uri, ok) in [
            ("https://oauth2.googleapis.com/token", true),
            ("http://oauth2.googleapis.com/token", false),
            ("https://127.0.0.1/token", false),
            ("https://user:pw@oauth2.googleapis.com/token", false),
        ] {
            let r = jwt.check_secret_upstream(&secret(json!({"token_uri": uri})), &public);
            assert_eq!(r.is_ok(), ok, "{uri}: {r:?}");
        }
    }
}
