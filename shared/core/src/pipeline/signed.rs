//! `POST /channels/{platform}/{connection}/{plugin}`: a voice platform's tool call, or
//! Twilio's webhook, signed instead of carrying an API key. API Gateway runs no authorizer
//! here (an authorizer never sees the body); the connection names the org and channel, its
//! credential the secret, and the signature over the raw body (Twilio's: and the public URL)
//! decides. Then the call runs like any other, as the connection's org and channel with
//! `plugins:call` only; a webhook runs the plugin's webhook function for that platform.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::audit::Subject;
use crate::auth::TenantContext;
use crate::error::Error;
use crate::ids::{ConnectionId, VoicePlatform};
use crate::registry::Connection;
use crate::secrets::{CredentialRef, SecretValue};
use crate::signature::{self, Refusal, SignatureHeaders, TwilioBody};

use super::{CALL_SCOPE, CallInput, CallOutput, MAX_BODY_BYTES, Platform, PluginService, Shape};

/// A signed call as the route received it.
pub struct SignedCall<'a> {
    /// The `{platform}` path segment.
    pub platform: &'a str,
    /// The `{connection}` path segment.
    pub connection: &'a str,
    pub headers: SignatureHeaders<'a>,
    /// The raw body, base64 already decoded: the bytes that were signed.
    pub body: &'a [u8],
    /// The public URL the platform requested, query included, as it signed it (Twilio):
    /// rebuilt from the request API Gateway handed the function.
    pub url: &'a str,
    pub request_id: &'a str,
}

impl Platform {
    /// The connection `id`, cached like instances. Unknown ids are remembered in a cache of
    /// their own, so made-up ids (this route has no authorizer in front) cannot crowd the
    /// real connections out.
    async fn connection(&self, id: &ConnectionId) -> Result<Option<Arc<Connection>>, Error> {
        if let Some(hit) = self.connections.get(id) {
            return Ok(Some(hit));
        }
        if self.unknown_connections.get(id).is_some() {
            return Ok(None);
        }
        match self.registry.get_connection(id).await? {
            Some(found) => {
                let found = Arc::new(found);
                self.connections.insert(id.clone(), found.clone());
                Ok(Some(found))
            }
            None => {
                self.unknown_connections.insert(id.clone(), ());
                Ok(None)
            }
        }
    }

    /// The tenant a signed request runs as and, for Twilio, how its body reads; or why it
    /// does not run.
    async fn verify(&self, call: &SignedCall<'_>) -> Result<(TenantContext, Shape), Error> {
        let rid = call.request_id;
        let shown = call.connection.chars().take(64).collect::<String>();
        let unknown = |why: &str| {
            tracing::info!(request_id = rid, connection = %shown, platform = call.platform, why, "signed call refused: unknown connection");
            Error::NotFound {
                code: "unknown_connection",
                message: format!(
                    "no {} connection '{shown}'; create one with `switchboard channel connect {} <channel> --credential <name>` and use the URL it prints",
                    call.platform, call.platform,
                ),
            }
        };
        let platform = VoicePlatform::parse(call.platform).ok_or_else(|| Error::NotFound {
            code: "unknown_platform",
            message: format!(
                "no platform '{}'; signed routes are /channels/retell/…, /channels/vapi/… and /channels/twilio/…",
                call.platform.chars().take(64).collect::<String>()
            ),
        })?;
        let id =
            ConnectionId::parse(call.connection).ok_or_else(|| unknown("not a connection id"))?;
        let conn = self
            .connection(&id)
            .await?
            .ok_or_else(|| unknown("no such connection"))?;
        // A Vapi connection's URL under /retell/ is a URL pasted into the wrong platform.
        if conn.platform != platform {
            return Err(unknown("the connection is another platform's"));
        }
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            Error::internal("this function was built without a secret resolver for signed routes")
        })?;
        let reference = CredentialRef::parse(secrets.name_for(&conn.org, &conn.credential))
            .map_err(|e| Error::internal(format!("connection {id}: {e}")))?;
        // The caller holds only a URL: the reason (which names the secret) goes to the log.
        let cannot = |why: String| {
            tracing::error!(request_id = rid, connection = %id, org = %conn.org, credential = %conn.credential, %why, "signed call refused: the connection cannot verify");
            Error::Unauthenticated(format!(
                "connection {id} cannot verify requests: its organization must fix its signing credential (the log says why)"
            ))
        };
        let value = match secrets.resolve(&conn.org, &reference).await {
            Ok(v) => v,
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
            Err(e) => return Err(cannot(e.to_string())),
        };
        let field = platform.secret_field();
        let check = |secret: &SecretValue| match secret.field(field) {
            Some(s) if !s.is_empty() => Ok(self.check_signature(platform, s.as_bytes(), call)),
            _ => Err(cannot(format!("the credential has no '{field}' field"))),
        };
        let mut outcome = check(&value)?;
        // A mismatch may be a secret rotated since it was cached: fetch it again, at most once
        // per refresh interval whatever the traffic.
        if outcome.as_ref().err() == Some(&Refusal::Mismatch) {
            match secrets.refresh(&conn.org, &reference, &value).await {
                Ok(Some(fresh)) => outcome = check(&fresh)?,
                Ok(None) => {}
                Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(e),
                Err(e) => return Err(cannot(e.to_string())),
            }
        }
        let body = match outcome {
            Ok(body) => body,
            Err(refusal) => {
                tracing::warn!(request_id = rid, connection = %id, org = %conn.org, platform = %platform, reason = %refusal, "signed call refused");
                return Err(Error::Unauthenticated(format!(
                    "the {platform} signature did not verify: {refusal}"
                )));
            }
        };
        let tenant = TenantContext {
            org: conn.org.clone(),
            scopes: vec![CALL_SCOPE.to_owned()],
            channel: Some(conn.channel.clone()),
            key_id: Some(id.to_string()),
            key_rate_limit: None,
        };
        // A webhook's repeat is known by its signature: the same URL and fields sign the
        // same, and unlike Twilio's own idempotency header it cannot be changed on the way.
        let shape = match body {
            Some(body) => {
                use sha2::Digest;
                let signature = call.headers.twilio_signature.unwrap_or_default().trim();
                let hash = sha2::Sha256::digest(signature.as_bytes());
                let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
                Shape::Webhook(platform, body, format!("{platform}:{hex}"))
            }
            None => Shape::Platform(platform),
        };
        Ok((tenant, shape))
    }

    /// The URL of `call`'s route under the configured public URL, with its query: what
    /// Twilio was given when the platform sits behind a custom domain or proxy.
    fn public_twilio_url(&self, call: &SignedCall<'_>) -> Option<String> {
        let base = self.public_url.as_deref()?;
        let (path, query) = match call.url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (call.url, None),
        };
        // The plugin is the path's last segment.
        let plugin = path.rsplit('/').next().unwrap_or_default();
        let mut url = format!(
            "{base}/channels/{}/{}/{plugin}",
            call.platform, call.connection
        );
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        Some(url)
    }

    fn check_signature(
        &self,
        platform: VoicePlatform,
        secret: &[u8],
        call: &SignedCall<'_>,
    ) -> Result<Option<TwilioBody>, Refusal> {
        let now = self.now();
        match platform {
            VoicePlatform::Retell => {
                signature::verify_retell(secret, call.headers.retell_signature, call.body, now)
                    .map(|()| None)
            }
            VoicePlatform::Vapi => {
                signature::verify_vapi(secret, &call.headers, call.body, now).map(|()| None)
            }
            VoicePlatform::Twilio => {
                // The request's own URL first, then the one under the configured public URL
                // (a custom domain's mapping or a proxy may have rewritten the path).
                let verify = |url: &str| {
                    signature::verify_twilio(secret, call.headers.twilio_signature, url, call.body)
                };
                let first = verify(call.url);
                if first != Err(Refusal::Mismatch) {
                    return first.map(Some);
                }
                match self.public_twilio_url(call) {
                    Some(url) if url != call.url => verify(&url).map(Some),
                    _ => first.map(Some),
                }
            }
        }
    }
}

impl PluginService {
    /// The audit entry of a signed call refused before it ran, under the organization of the
    /// connection it names, if that exists (a made-up URL belongs to nobody).
    async fn audit_refused(
        &self,
        call: &SignedCall<'_>,
        e: &Error,
        (started_at, started): (std::time::SystemTime, std::time::Instant),
        arrived: tokio::time::Instant,
    ) {
        // Only a signature refused for an existing connection of this platform is the
        // organization's (a credential it must know about); a wrong URL or body is nobody's.
        if self.platform.audit.is_none() || !matches!(e, Error::Unauthenticated(_)) {
            return;
        }
        let Some(id) = ConnectionId::parse(call.connection) else {
            return;
        };
        // Cached by the verification that just ran; a failed lookup already made it fail.
        let Ok(Some(conn)) = self.platform.connection(&id).await else {
            return;
        };
        if VoicePlatform::parse(call.platform) != Some(conn.platform) {
            return;
        }
        let subject = Subject {
            channel: Some(conn.channel.to_string()),
            key_id: Some(format!("connection:{id}")),
            route: conn.platform.to_string(),
            plugin: Some(self.plugin().name().to_string()),
            request_id: call.request_id.to_owned(),
            ..Subject::default()
        };
        let entry = subject.refused(&conn.org, started_at, started, e);
        self.platform
            .write_audit(&conn.org, entry, 0, arrived + super::ANSWER_BUDGET)
            .await;
    }

    /// Verifies a signed call, then runs it as the connection's org and channel. A refused
    /// signature runs nothing and writes nothing but its audit entry (not even an
    /// idempotency record).
    pub async fn respond_signed(&self, call: SignedCall<'_>) -> CallOutput {
        let started_at = self.platform.now();
        let started = std::time::Instant::now();
        // The budget counts the verification (connection, signing secret) too.
        let arrived = tokio::time::Instant::now();
        // Refused before any lookup or hashing: a body no call may have.
        let verified = if call.body.len() > MAX_BODY_BYTES {
            Err(Error::PayloadTooLarge {
                size: call.body.len(),
                limit: MAX_BODY_BYTES,
            })
        } else {
            super::within(arrived + super::CALL_BUDGET, self.platform.verify(&call)).await
        };
        let (tenant, shape) = match verified {
            Ok(t) => t,
            Err(e) => {
                if let Error::Internal(cause) = &e {
                    tracing::error!(request_id = call.request_id, cause = %cause, "signed call failed: internal");
                }
                self.audit_refused(&call, &e, (started_at, started), arrived)
                    .await;
                return CallOutput {
                    status: e.status(),
                    body: e.to_body(),
                    replayed: false,
                };
            }
        };
        self.respond_from(
            CallInput {
                tenant: Some(tenant),
                body: call.body,
                request_id: call.request_id,
                idempotency_key: None,
            },
            shape,
            call.platform,
            arrived,
        )
        .await
    }
}

/// A verified Twilio webhook's fields: a form's pairs (a repeated key's values as an array,
/// in order) or a JSON body's object. Each becomes a parameter of the webhook function.
pub(super) fn webhook_fields(kind: TwilioBody, body: &[u8]) -> Result<Map<String, Value>, Error> {
    match kind {
        TwilioBody::Json => match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => Ok(fields),
            _ => Err(Error::invalid_request(
                "the webhook's JSON body must be an object",
            )),
        },
        TwilioBody::Form => {
            let mut fields = Map::new();
            let mut seen = std::collections::HashSet::new();
            let mut pairs: Vec<(String, String)> =
                form_urlencoded::parse(body).into_owned().collect();
            // Sorted as signed: a repeated field's values are in one order, whatever order
            // they came in (the signature, and so the idempotency key, cannot tell).
            pairs.sort();
            for (k, v) in pairs {
                // The signature counts a repeated pair once, so its copies are not signed.
                if !seen.insert((k.clone(), v.clone())) {
                    return Err(Error::invalid_request(format!(
                        "the webhook repeats field '{}' with the same value; send each pair once",
                        k.chars().take(64).collect::<String>()
                    )));
                }
                match fields.get_mut(&k) {
                    None => {
                        fields.insert(k, Value::String(v));
                    }
                    Some(Value::Array(values)) => values.push(Value::String(v)),
                    Some(first) => *first = Value::Array(vec![first.take(), Value::String(v)]),
                }
            }
            Ok(fields)
        }
    }
}
