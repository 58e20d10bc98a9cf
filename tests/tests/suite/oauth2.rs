//! The `api` adapter's OAuth2 credentials against a real provider: oidc-provider on loopback,
//! started by `scripts/test` (`scripts/oauth.sh`; clients and test-only routes at the top of
//! `tests/fixtures/oauth/provider.mjs`). The provider's `/test/resource` is the protected API:
//! it checks each access token with the provider itself and counts its uses, so a test sees
//! which token each call carried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::OrgId;
use switchboard::api::ApiRequest;
use switchboard::ports::{Api, SecretStore};
use switchboard::secrets::{CredentialRef, SecretValue, Secrets};
use switchboard::spec::ApiConfig;
use switchboard_embedded::Embedded;
use switchboard_rest::{RestClient, Tokens, VendorApi};
use switchboard_tests::http::send;

/// The provider's issuer URL, set by `scripts/test`. Without it these tests fail.
fn issuer() -> String {
    match std::env::var("SWITCHBOARD_TEST_OAUTH") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "SWITCHBOARD_TEST_OAUTH is not set: the OAuth2 tests run against oidc-provider, \
             which scripts/test installs and starts (scripts/oauth.sh). Run scripts/test."
        ),
    }
}

fn provider() -> SocketAddr {
    issuer()
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("the issuer is not http://IP:PORT: {e}"))
}

fn org() -> OrgId {
    OrgId::parse("oauth-acme").unwrap()
}

fn secret(v: Value) -> SecretValue {
    match v {
        Value::Object(m) => SecretValue::new(m),
        other => panic!("not an object: {other}"),
    }
}

/// A container: its secret resolver over the shared `store`, and its token cache.
struct Container {
    secrets: Arc<Secrets>,
    tokens: Tokens,
}

fn container(store: &Arc<dyn SecretStore>) -> Container {
    Container {
        secrets: Arc::new(Secrets::new(
            store.clone(),
            Duration::from_secs(300),
            "switchboard",
        )),
        tokens: Tokens::default(),
    }
}

fn store() -> Arc<dyn SecretStore> {
    Embedded::in_memory().unwrap().secret_store()
}

/// A secret store holding the client-credentials client as `cc`.
async fn store_with_client() -> Arc<dyn SecretStore> {
    let store = store();
    put(
        &store,
        "cc",
        json!({"client_id": "switchboard-cc", "client_secret": "cc-secret"}),
    )
    .await;
    store
}

async fn put(store: &Arc<dyn SecretStore>, label: &str, value: Value) -> CredentialRef {
    store
        .put(&format!("switchboard/oauth-acme/{label}"), &secret(value))
        .await
        .unwrap()
}

fn api(c: &Container, label: &str, oauth2: Value) -> VendorApi {
    let settings = json!({
        "base_url": issuer(),
        "credential": format!("switchboard/oauth-acme/{label}"),
        "auth": {"oauth2": oauth2},
    });
    let Value::Object(m) = settings else {
        unreachable!()
    };
    let config = ApiConfig::parse(&m).unwrap_or_else(|p| panic!("config refused: {p:?}"));
    VendorApi::new(
        RestClient::new(switchboard_tests::egress(), switchboard_tests::tls()),
        Arc::new(config),
        c.secrets.clone(),
        org(),
        c.tokens.clone(),
    )
}

/// `/test/resource` through `api`: (client id, how many times this token was used).
async fn resource(api: &VendorApi) -> (String, u64) {
    let r = api.send(ApiRequest::get("/test/resource")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    (
        r.body["client_id"].as_str().unwrap().to_owned(),
        r.body["requests"].as_u64().unwrap(),
    )
}

async fn revoke(client_id: &str) -> u64 {
    let r = send(
        provider(),
        "POST",
        &format!("/test/revoke?client_id={client_id}"),
        None,
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["revoked"].as_u64().unwrap()
}

#[tokio::test]
async fn client_credentials_tokens_are_cached_and_replaced_after_a_401() {
    let store = store_with_client().await;
    let a = container(&store);
    let settings = json!({"grant": "client_credentials", "token_url": format!("{}/token", issuer()), "scope": "calendar leads"});
    let first = api(&a, "cc", settings.clone());
    assert_eq!(resource(&first).await, ("switchboard-cc".into(), 1));
    // The same token from the container's cache, for any adapter of the container.
    assert_eq!(resource(&first).await.1, 2);
    assert_eq!(resource(&api(&a, "cc", settings.clone())).await.1, 3);
    // Another container asks for its own.
    let b = container(&store);
    assert_eq!(resource(&api(&b, "cc", settings.clone())).await.1, 1);

    // The provider revokes every token: the next call's 401 is answered with a new token.
    assert!(revoke("switchboard-cc").await >= 2);
    assert_eq!(resource(&first).await, ("switchboard-cc".into(), 1));

    // client_secret_post, for providers that take the client in the body.
    put(
        &store,
        "cc-post",
        json!({"client_id": "switchboard-cc-post", "client_secret": "cc-secret"}),
    )
    .await;
    let post = json!({"grant": "client_credentials", "token_url": format!("{}/token", issuer()), "client_auth": "post"});
    assert_eq!(
        resource(&api(&a, "cc-post", post)).await.0,
        "switchboard-cc-post"
    );
}

#[tokio::test]
async fn concurrent_calls_wait_for_one_token_request() {
    let store = store_with_client().await;
    let c = container(&store);
    let api = Arc::new(api(
        &c,
        "cc",
        json!({"grant": "client_credentials", "token_url": format!("{}/token", issuer())}),
    ));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { resource(&api).await.1 })
        })
        .collect();
    let mut uses = Vec::new();
    for c in calls {
        uses.push(c.await.unwrap());
    }
    uses.sort_unstable();
    // One token carried all eight calls: its use counts are 1 to 8.
    assert_eq!(uses, (1..=8).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_rotated_refresh_token_is_written_back_for_every_container() {
    let minted = send(provider(), "POST", "/test/refresh-token", None, b"").await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let r0 = minted.body["refresh_token"].as_str().unwrap().to_owned();
    let store = store();
    let reference = put(
        &store,
        "rt",
        json!({"client_id": "switchboard-rt", "client_secret": "rt-secret", "refresh_token": r0, "note": "kept"}),
    )
    .await;
    let settings = json!({"grant": "refresh_token", "token_url": format!("{}/token", issuer())});
    let stored = || async { store.fetch(&reference).await.unwrap() };

    let a = container(&store);
    assert_eq!(
        resource(&api(&a, "rt", settings.clone())).await.0,
        "switchboard-rt"
    );
    // The provider rotated the refresh token: the new one is in the secret, the other
    // fields as they were.
    let r1 = stored().await.field("refresh_token").unwrap().to_owned();
    assert_ne!(r1, r0);
    assert_eq!(stored().await.field("note"), Some("kept"));

    // A new container starts from the stored token (the provider refuses a spent one and
    // then revokes the whole grant, so the old one would end the credential).
    let b = container(&store);
    assert_eq!(
        resource(&api(&b, "rt", settings.clone())).await.0,
        "switchboard-rt"
    );
    let r2 = stored().await.field("refresh_token").unwrap().to_owned();
    assert_ne!(r2, r1);

    // The first container's token is revoked; it refreshes with what the store holds now,
    // not the token it wrote itself.
    assert!(revoke("switchboard-rt").await >= 1);
    assert_eq!(resource(&api(&a, "rt", settings.clone())).await.1, 1);
    let r3 = stored().await.field("refresh_token").unwrap().to_owned();
    assert_ne!(r3, r2);
}

#[tokio::test]
async fn the_jwt_bearer_grant_signs_an_assertion_the_provider_verifies() {
    let account = send(provider(), "GET", "/test/service-account", None, b"").await;
    assert_eq!(account.status, 200, "{}", account.body);
    let store = store();
    // The service account's key file, stored as it is.
    put(&store, "google", account.body.clone()).await;
    let c = container(&store);
    let jwt = json!({"grant": "jwt_bearer", "scope": "calendar leads"});
    assert_eq!(
        resource(&api(&c, "google", jwt.clone())).await.0,
        "switchboard-jwt"
    );

    // An assertion for another audience is refused: a 502 naming the credential and the
    // provider's error code, and nothing of the key.
    let wrong = json!({"grant": "jwt_bearer", "scope": "calendar", "audience": "https://elsewhere.test/token"});
    let e = api(&c, "google", wrong)
        .send(ApiRequest::get("/test/resource"))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    let text = e.to_body().to_string();
    assert!(
        text.contains("switchboard/oauth-acme/google") && text.contains("invalid_grant"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // A key that is not PKCS#8 PEM is the organization's to fix: 422 naming the field.
    let mut broken = account.body.clone();
    broken["private_key"] = json!(format!(
        "-----BEGIN {0}-----\nbm90IGEga2V5\n-----END {0}-----\n",
        "PRIVATE KEY"
    ));
    put(&store, "google-broken", broken).await;
    let e = api(&c, "google-broken", jwt)
        .send(ApiRequest::get("/test/resource"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422, "{e}");
    assert!(e.to_string().contains("'private_key'"), "{e}");
}

#[tokio::test]
async fn a_refused_client_is_a_502_that_shows_no_secret() {
    let store = store();
    put(
        &store,
        "bad",
        json!({"client_id": "switchboard-cc", "client_secret": "not-the-secret-4711"}),
    )
    .await;
    let c = container(&store);
    let e = api(
        &c,
        "bad",
        json!({"grant": "client_credentials", "token_url": format!("{}/token", issuer())}),
    )
    .send(ApiRequest::get("/test/resource"))
    .await
    .unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    let text = e.to_body().to_string();
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("not-the-secret-4711"), "{text}");

    // A spent refresh token: invalid_grant, and the store holds nothing newer to retry with.
    let minted = send(provider(), "POST", "/test/refresh-token", None, b"").await;
    let r0 = minted.body["refresh_token"].as_str().unwrap().to_owned();
    put(
        &store,
        "spent",
        json!({"client_id": "switchboard-rt", "client_secret": "rt-secret", "refresh_token": r0}),
    )
    .await;
    let settings = json!({"grant": "refresh_token", "token_url": format!("{}/token", issuer())});
    let fresh = container(&store);
    resource(&api(&fresh, "spent", settings.clone())).await;
    // Put the spent token back, as a restore from an old backup would.
    put(
        &store,
        "spent",
        json!({"client_id": "switchboard-rt", "client_secret": "rt-secret", "refresh_token": r0}),
    )
    .await;
    let e = api(&container(&store), "spent", settings)
        .send(ApiRequest::get("/test/resource"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 502, "{e}");
    assert!(e.to_string().contains("invalid_grant"), "{e}");
}

/// Zoom's Server-to-Server OAuth: `account_credentials` with the secret's `account_id`, the
/// client in HTTP Basic; a token per account (a secret moved to another account does not
/// keep the first one's token), and an account the app is not in refused as `invalid_grant`.
#[tokio::test]
async fn the_account_credentials_grant_names_the_account() {
    let store = store();
    let zoom = json!({"client_id": "switchboard-zoom", "client_secret": "zoom-secret", "account_id": "zoom-account-1"});
    put(&store, "zoom", zoom.clone()).await;
    let c = container(&store);
    let settings =
        json!({"grant": "account_credentials", "token_url": format!("{}/token", issuer())});
    let first = api(&c, "zoom", settings.clone());
    assert_eq!(resource(&first).await, ("switchboard-zoom".into(), 1));
    assert_eq!(resource(&first).await.1, 2, "cached");

    let mut other = zoom.clone();
    other["account_id"] = json!("zoom-account-2");
    put(&store, "zoom", other).await;
    // The same token cache, the secret read afresh: the cached token is not the new account's.
    let moved = Container {
        tokens: c.tokens.clone(),
        ..container(&store)
    };
    let e = api(&moved, "zoom", settings.clone())
        .send(ApiRequest::get("/test/resource"))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    assert!(e.to_string().contains("invalid_grant"), "{e}");
    assert!(!e.to_body().to_string().contains("zoom-secret"), "{e}");

    // The secret must hold the account: refused at write time, before any request.
    let config = ApiConfig::parse(
        json!({"base_url": issuer(), "credential": "switchboard/oauth-acme/zoom", "auth": {"oauth2": settings}})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    let detail = config
        .check_secret(&secret(
            json!({"client_id": "switchboard-zoom", "client_secret": "zoom-secret"}),
        ))
        .unwrap_err();
    assert!(
        detail.message.contains("'account_id'"),
        "{}",
        detail.message
    );
}
