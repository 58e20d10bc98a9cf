//! Voice platforms' request signatures, verified over the raw body in constant time.
//!
//! - Retell: `X-Retell-Signature: v=<unix ms>,d=<hex HMAC-SHA256(api key, body ‖ ms)>`, the
//!   timestamp within [`WINDOW`] of the platform's clock.
//! - Vapi: a server credential, sent as `Authorization: Bearer <secret>`, as the legacy
//!   `X-Vapi-Secret: <secret>`, or as an HMAC credential with its defaults
//!   (`X-Signature: <hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, `X-Timestamp` in seconds
//!   or milliseconds, within [`WINDOW`]). Every scheme a request presents must verify.
//! - Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1(auth token, url ‖ sorted form pairs)>`
//!   over the public URL it requested; a JSON body is signed through the URL's
//!   `bodySHA256` instead. It carries no timestamp, so a replay verifies: a webhook's
//!   function must be safe to repeat (the signature, as its idempotency key, answers a
//!   repeat from the record only while that lasts).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from the platform's clock, either way.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Why a request's signature was refused: said in the 401 and the log, never with a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No header of the platform's scheme.
    Missing(&'static str),
    /// The header is not in the scheme's format.
    Malformed(&'static str),
    /// The signed timestamp is further than [`WINDOW`] from now.
    Stale { skew_secs: u64 },
    /// Well-formed, in time, and not made with this connection's secret.
    Mismatch,
    /// The body is not the one the URL's `bodySHA256` was signed for.
    BodyHash,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(what) => write!(f, "the request carries no {what}"),
            Self::Malformed(what) => write!(f, "the {what} is malformed"),
            Self::Stale { skew_secs } => write!(
                f,
                "the signature's timestamp is {skew_secs} s from now, outside the {} s window; check the sender's clock, or this is a replay",
                WINDOW.as_secs()
            ),
            Self::Mismatch => f.write_str(
                "the signature does not match this connection's secret (another connection's URL, or a rotated secret not yet stored)",
            ),
            Self::BodyHash => f.write_str(
                "the body's SHA-256 is not the bodySHA256 the URL was signed with (the body changed on the way)",
            ),
        }
    }
}

/// The headers the voice platforms sign with, as the request carried them (a value that is
/// not visible ASCII is passed as `Some("")`, so it reads as malformed, not missing).
#[derive(Debug, Default, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    pub retell_signature: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub vapi_secret: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub twilio_signature: Option<&'a str>,
}

/// HMAC-SHA256 of the concatenated `parts`; `None` only if the key were refused, which
/// HMAC (any key length) never does. Verifiers treat `None` as a mismatch: fail closed.
fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    for p in parts {
        mac.update(p);
    }
    Some(mac)
}

fn verify_mac(mac: Option<Hmac<Sha256>>, digest: &[u8; 32]) -> Result<(), Refusal> {
    match mac {
        Some(mac) => mac.verify_slice(digest).map_err(|_| Refusal::Mismatch),
        None => Err(Refusal::Mismatch),
    }
}

fn mac_hex(mac: Option<Hmac<Sha256>>) -> String {
    mac.map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Lowercase or uppercase hex of exactly `N` bytes.
fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

fn millis(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_millis()).unwrap_or(i128::MAX),
    }
}

fn in_window(signed_ms: i128, now: SystemTime) -> Result<(), Refusal> {
    let skew = (millis(now) - signed_ms).unsigned_abs();
    if skew > WINDOW.as_millis() {
        return Err(Refusal::Stale {
            skew_secs: u64::try_from(skew / 1000).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

/// Verifies Retell's `X-Retell-Signature` over `body` with the org's Retell API key.
pub fn verify_retell(
    api_key: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    const WHAT: &str = "X-Retell-Signature header (v=<unix ms>,d=<hex HMAC-SHA256>)";
    let header = header.ok_or(Refusal::Missing(WHAT))?;
    let (mut ts, mut digest) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("v", v)) if ts.is_none() => ts = Some(v),
            Some(("d", d)) if digest.is_none() => digest = Some(d),
            _ => return Err(Refusal::Malformed(WHAT)),
        }
    }
    let (Some(ts), Some(digest)) = (ts, digest) else {
        return Err(Refusal::Malformed(WHAT));
    };
    let signed_ms = parse_digits(ts).ok_or(Refusal::Malformed(WHAT))?;
    let digest = hex32(digest).ok_or(Refusal::Malformed(WHAT))?;
    in_window(signed_ms, now)?;
    verify_mac(hmac_sha256(api_key, &[body, ts.as_bytes()]), &digest)
}

/// 1 to 16 ASCII digits (a millisecond timestamp has 13).
fn parse_digits(s: &str) -> Option<i128> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `presented` equals `secret`, in time independent of both (digests compared, so
/// not even the length leaks).
fn same_secret(presented: &str, secret: &[u8]) -> bool {
    Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(secret))
        .into()
}

/// Verifies a Vapi request against the connection's server credential `secret`.
pub fn verify_vapi(
    secret: &[u8],
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    let mut presented = false;
    if let Some(sig) = headers.signature {
        presented = true;
        const WHAT: &str = "X-Signature header (hex HMAC-SHA256 of \"<timestamp>.<body>\")";
        const TS: &str = "X-Timestamp header (unix seconds or milliseconds)";
        let ts = headers.timestamp.ok_or(Refusal::Missing(TS))?;
        let value = parse_digits(ts).ok_or(Refusal::Malformed(TS))?;
        // Seconds until the year 5138; anything longer is milliseconds.
        let signed_ms = if value < 100_000_000_000 {
            value * 1000
        } else {
            value
        };
        let sig = sig.strip_prefix("sha256=").unwrap_or(sig);
        let digest = hex32(sig).ok_or(Refusal::Malformed(WHAT))?;
        in_window(signed_ms, now)?;
        verify_mac(hmac_sha256(secret, &[ts.as_bytes(), b".", body]), &digest)?;
    }
    if let Some(v) = headers.vapi_secret {
        presented = true;
        if !same_secret(v, secret) {
            return Err(Refusal::Mismatch);
        }
    }
    if let Some(auth) = headers.authorization {
        presented = true;
        const WHAT: &str = "Authorization header (Bearer <secret>)";
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .ok_or(Refusal::Malformed(WHAT))?;
        if !same_secret(token.trim(), secret) {
            return Err(Refusal::Mismatch);
        }
    }
    if presented {
        Ok(())
    } else {
        Err(Refusal::Missing(
            "Vapi credential (Authorization: Bearer, X-Vapi-Secret, or X-Signature with X-Timestamp)",
        ))
    }
}

/// How a verified Twilio request's body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioBody {
    /// `application/x-www-form-urlencoded`, its pairs signed after the URL.
    Form,
    /// JSON, its SHA-256 signed as the URL's `bodySHA256`.
    Json,
}

const TWILIO_WHAT: &str = "X-Twilio-Signature header (base64 HMAC-SHA1)";

/// Verifies Twilio's `X-Twilio-Signature` with the account's auth token. `url` is the
/// public URL Twilio requested, query included. A URL with `bodySHA256` signs a JSON body
/// through that hash; otherwise the body is a form whose pairs, sorted, follow the URL.
/// Twilio's own validators take the URL with or without the scheme's default port, so both
/// are tried.
pub fn verify_twilio(
    auth_token: &[u8],
    header: Option<&str>,
    url: &str,
    body: &[u8],
) -> Result<TwilioBody, Refusal> {
    let header = header.ok_or(Refusal::Missing(TWILIO_WHAT))?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()
        .filter(|d| d.len() == 20)
        .ok_or(Refusal::Malformed(TWILIO_WHAT))?;
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let body_hash = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    let (kind, signed_pairs) = match &body_hash {
        Some(hash) => {
            const WHAT: &str = "bodySHA256 URL parameter (hex SHA-256 of the body)";
            let expected = hex32(hash).ok_or(Refusal::Malformed(WHAT))?;
            if !bool::from(Sha256::digest(body).as_slice().ct_eq(&expected)) {
                return Err(Refusal::BodyHash);
            }
            (TwilioBody::Json, String::new())
        }
        None => (TwilioBody::Form, sorted_pairs(body)),
    };
    for candidate in [Some(url.to_owned()), other_port_form(url)]
        .into_iter()
        .flatten()
    {
        let mac = hmac_sha1(auth_token, &[candidate.as_bytes(), signed_pairs.as_bytes()]);
        if mac.is_some_and(|m| m.verify_slice(&digest).is_ok()) {
            return Ok(kind);
        }
    }
    Err(Refusal::Mismatch)
}

fn hmac_sha1(secret: &[u8], parts: &[&[u8]]) -> Option<Hmac<Sha1>> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret).ok()?;
    for p in parts {
        mac.update(p);
    }
    Some(mac)
}

/// A form body's distinct decoded pairs sorted by key, then value, each as key ‖ value.
fn sorted_pairs(body: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    // As Twilio's own validators: a pair repeated exactly counts once.
    pairs.sort();
    pairs.dedup();
    pairs.into_iter().map(|(k, v)| k + &v).collect()
}

/// `url` with its scheme's default port added, or removed if it has it; `None` if neither
/// applies (another port, or not http(s)).
fn other_port_form(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // A colon after an IPv6 literal's `]` (or in a name) starts the port.
    let port_at = authority
        .rfind(':')
        .filter(|&i| !authority[i..].contains(']'));
    let authority = match port_at {
        Some(i) if &authority[i + 1..] == default => authority[..i].to_owned(),
        Some(_) => return None,
        None => format!("{authority}:{default}"),
    };
    Some(format!("{scheme}://{authority}{tail}"))
}

/// Twilio's `X-Twilio-Signature` for a form `body` posted to `url`, or for a JSON body
/// when `url` carries its `bodySHA256` (tests, the sample events).
pub fn sign_twilio(auth_token: &[u8], url: &str, body: &[u8]) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let json = form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "bodySHA256");
    let pairs = if json {
        String::new()
    } else {
        sorted_pairs(body)
    };
    hmac_sha1(auth_token, &[url.as_bytes(), pairs.as_bytes()])
        .map(|m| base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// A Retell signature header for `body` at `at` (tests, the sample events, `bench`).
pub fn sign_retell(api_key: &[u8], body: &[u8], at: SystemTime) -> String {
    let ts = millis(at).to_string();
    let digest = mac_hex(hmac_sha256(api_key, &[body, ts.as_bytes()]));
    format!("v={ts},d={digest}")
}

/// Vapi HMAC headers `(X-Signature, X-Timestamp)` for `body` at `at`, in seconds.
pub fn sign_vapi(secret: &[u8], body: &[u8], at: SystemTime) -> (String, String) {
    let ts = (millis(at) / 1000).to_string();
    (
        mac_hex(hmac_sha256(secret, &[ts.as_bytes(), b".", body])),
        ts,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// Twilio's published vectors: a form, and a JSON body signed through `bodySHA256`.
    #[test]
    fn twilio_vectors_verify_and_their_tampered_forms_do_not() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        // The vector's parameters, in another order and encoded as Twilio posts them.
        let form = b"To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(sign_twilio(b"12345", url, form), sig);
        let ok = |url: &str, body: &[u8], sig: &str| verify_twilio(b"12345", Some(sig), url, body);
        assert_eq!(ok(url, form, sig), Ok(TwilioBody::Form));
        // With the default port, as some proxies report the URL.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(ok(with_port, form, sig), Ok(TwilioBody::Form));
        assert_eq!(other_port_form(url).as_deref(), Some(with_port));
        assert_eq!(other_port_form(with_port).as_deref(), Some(url));
        assert_eq!(other_port_form("https://h:8443/x"), None);
        assert_eq!(
            other_port_form("http://[::1]/x").as_deref(),
            Some("http://[::1]:80/x")
        );
        for (url, body, sig, refusal) in [
            (url, &form[..], "RSOYDt4T1cUTdK1PDd93/VVr8B8=", None),
            (url, b"To=%2B18005551213&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE", sig, Some(Refusal::Mismatch)),
            ("https://mycompany.com/myapp.php?foo=1&bar=3", form, sig, Some(Refusal::Mismatch)),
            ("https://mycompany.com:8443/myapp.php?foo=1&bar=2", form, sig, Some(Refusal::Mismatch)),
            (url, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8", Some(Refusal::Malformed(TWILIO_WHAT))),
            (url, form, "c2hvcnQ=", Some(Refusal::Malformed(TWILIO_WHAT))),
        ] {
            assert_eq!(ok(url, body, sig).err(), refusal, "{url} {sig}");
        }
        assert_eq!(
            verify_twilio(b"12346", Some(sig), url, form),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify_twilio(b"12345", None, url, form),
            Err(Refusal::Missing(TWILIO_WHAT))
        );

        let body = br#"{"property": "value", "boolean": true}"#;
        let hashed = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert_eq!(sign_twilio(b"12345", hashed, body), sig);
        assert_eq!(ok(hashed, body, sig), Ok(TwilioBody::Json));
        assert_eq!(
            ok(hashed, br#"{"property": "value", "boolean": false}"#, sig),
            Err(Refusal::BodyHash)
        );
        assert_eq!(
            ok(&hashed.replace("6620", "66"), body, sig),
            Err(Refusal::Malformed(
                "bodySHA256 URL parameter (hex SHA-256 of the body)"
            ))
        );
    }

    /// Retell's published vector.
    #[test]
    fn retell_vector_verifies_and_its_tampered_forms_do_not() {
        let body = br#"{"event":"call_ended","call":{"call_id":"abc"}}"#;
        let header =
            "v=1700000000000,d=3ff1aecb352d020e0b3c12ec93648c80ba9d1186c8d0c412e8a998291fe35c9c";
        let now = at_ms(1_700_000_000_000 + 1000);
        assert_eq!(verify_retell(b"key_test", Some(header), body, now), Ok(()));
        assert_eq!(
            sign_retell(b"key_test", body, at_ms(1_700_000_000_000)),
            header
        );
        // Uppercase hex is the same digest.
        assert_eq!(
            verify_retell(
                b"key_test",
                Some(
                    &header
                        .to_uppercase()
                        .replace("V=", "v=")
                        .replace("D=", "d=")
                ),
                body,
                now
            ),
            Ok(())
        );

        assert_eq!(
            verify_retell(b"key_other", Some(header), body, now),
            Err(Refusal::Mismatch)
        );
        let mut tampered = body.to_vec();
        tampered[30] ^= 1;
        assert_eq!(
            verify_retell(b"key_test", Some(header), &tampered, now),
            Err(Refusal::Mismatch)
        );
        // The timestamp is signed: moving it breaks the digest.
        let moved = header.replace("v=1700000000000", "v=1700000000001");
        assert_eq!(
            verify_retell(b"key_test", Some(&moved), body, now),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn retell_window_is_five_minutes_either_way() {
        let body = b"{}";
        let t = 1_800_000_000_000;
        let header = sign_retell(b"k", body, at_ms(t));
        for (now, ok) in [
            (t + 300_000, true),
            (t - 300_000, true),
            (t + 300_001, false),
            (t - 300_001, false),
        ] {
            let got = verify_retell(b"k", Some(&header), body, at_ms(now));
            assert_eq!(got.is_ok(), ok, "{now}: {got:?}");
            if !ok {
                assert_eq!(got, Err(Refusal::Stale { skew_secs: 300 }));
            }
        }
    }

    #[test]
    fn retell_headers_out_of_format_are_malformed_or_missing() {
        let now = at_ms(1_700_000_000_000);
        let d = "d=3ff1aecb352d020e0b3c12ec93648c80ba9d1186c8d0c412e8a998291fe35c9c";
        assert!(matches!(
            verify_retell(b"k", None, b"", now),
            Err(Refusal::Missing(_))
        ));
        for bad in [
            "",
            "v=1700000000000",
            d,
            &format!("v=,{d}"),
            &format!("v=-1,{d}"),
            &format!("v=17e11,{d}"),
            "v=1700000000000,d=xyz",
            "v=1700000000000,d=3ff1",
            &format!("v=1700000000000,{d},x=1"),
            &format!("v=1,v=1700000000000,{d}"),
        ] {
            assert!(
                matches!(
                    verify_retell(b"k", Some(bad), b"", now),
                    Err(Refusal::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    /// Vapi publishes no vector: signing and verifying agree, and every tampering fails.
    #[test]
    fn vapi_hmac_bearer_and_secret_header() {
        let secret = b"vapi-secret";
        let body = br#"{"message":{"type":"tool-calls"}}"#;
        let now = at_ms(1_800_000_000_000);
        let (sig, ts) = sign_vapi(secret, body, now);
        let h = SignatureHeaders {
            signature: Some(&sig),
            timestamp: Some(&ts),
            ..Default::default()
        };
        assert_eq!(verify_vapi(secret, &h, body, now), Ok(()));
        // Milliseconds and a GitHub-style prefix are the same signature scheme.
        let ms = "1800000000000";
        let prefixed = format!(
            "sha256={}",
            mac_hex(hmac_sha256(secret, &[ms.as_bytes(), b".", body]))
        );
        let h_ms = SignatureHeaders {
            signature: Some(&prefixed),
            timestamp: Some(ms),
            ..Default::default()
        };
        assert_eq!(verify_vapi(secret, &h_ms, body, now), Ok(()));
        assert_eq!(verify_vapi(b"other", &h, body, now), Err(Refusal::Mismatch));
        assert!(matches!(
            verify_vapi(secret, &h, body, at_ms(1_800_000_400_000)),
            Err(Refusal::Stale { .. })
        ));
        let no_ts = SignatureHeaders {
            signature: Some(&sig),
            ..Default::default()
        };
        assert!(matches!(
            verify_vapi(secret, &no_ts, body, now),
            Err(Refusal::Missing(_))
        ));

        let bearer = SignatureHeaders {
            authorization: Some("Bearer vapi-secret"),
            ..Default::default()
        };
        assert_eq!(verify_vapi(secret, &bearer, body, now), Ok(()));
        let wrong = SignatureHeaders {
            authorization: Some("Bearer vapi-secreT"),
            ..Default::default()
        };
        assert_eq!(
            verify_vapi(secret, &wrong, body, now),
            Err(Refusal::Mismatch)
        );
        let basic = SignatureHeaders {
            authorization: Some("Basic dmFwaQ=="),
            ..Default::default()
        };
        assert!(matches!(
            verify_vapi(secret, &basic, body, now),
            Err(Refusal::Malformed(_))
        ));
        let legacy = SignatureHeaders {
            vapi_secret: Some("vapi-secret"),
            ..Default::default()
        };
        assert_eq!(verify_vapi(secret, &legacy, body, now), Ok(()));
        // A right bearer does not excuse a wrong HMAC next to it.
        let mixed = SignatureHeaders {
            authorization: Some("Bearer vapi-secret"),
            signature: Some(&"0".repeat(64)),
            timestamp: Some(&ts),
            ..Default::default()
        };
        assert_eq!(
            verify_vapi(secret, &mixed, body, now),
            Err(Refusal::Mismatch)
        );
        let bearer_and_wrong_legacy = SignatureHeaders {
            authorization: Some("Bearer vapi-secret"),
            vapi_secret: Some("not-it"),
            ..Default::default()
        };
        assert_eq!(
            verify_vapi(secret, &bearer_and_wrong_legacy, body, now),
            Err(Refusal::Mismatch)
        );
        assert!(matches!(
            verify_vapi(secret, &SignatureHeaders::default(), body, now),
            Err(Refusal::Missing(_))
        ));
    }

    #[test]
    fn hmac_matches_the_public_sha256_vector() {
        assert_eq!(
            mac_hex(hmac_sha256(b"secret", &[b"test"])),
            "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        );
    }
}
