//! The translation plugin through the test kit, with the real AWS SDK client against a
//! loopback server that speaks Amazon Translate's JSON protocol (`X-Amz-Target:
//! AWSShineFrontendService_20170701.TranslateText`, `application/x-amz-json-1.1`) and checks
//! each request's SigV4 signature with the test credentials, as AWS does: a request signed
//! with another key is refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard::settings::AwsSettings;
use switchboard_testkit::Harness;
use translation::AwsTranslate;

const KEY_ID: &str = "AKIDTRANSLATETEST";
const SECRET: &str = "translate-test-secret";
const REGION: &str = "us-east-1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Why a request's SigV4 signature is not AWS's for `SECRET`, if it is not.
fn signature_problem(parts: &http::request::Parts, body: &[u8]) -> Result<(), String> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let auth = header("authorization").ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not an AWS4-HMAC-SHA256 signature")?;
    let mut fields = BTreeMap::new();
    for kv in rest.split(", ") {
        let (k, v) = kv.split_once('=').ok_or("malformed Authorization")?;
        fields.insert(k, v);
    }
    let field = |k: &str| fields.get(k).copied().ok_or(format!("no {k}"));
    let scope: Vec<&str> = field("Credential")?.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("malformed credential scope {scope:?}"));
    };
    if (*key_id, *region, *service) != (KEY_ID, REGION, "translate") {
        return Err(format!("scope {key_id}/{region}/{service}"));
    }
    let amz_date = header("x-amz-date").ok_or("no X-Amz-Date")?;
    if !amz_date.starts_with(date) {
        return Err("X-Amz-Date is not the scope's date".into());
    }
    let signed = field("SignedHeaders")?;
    for required in ["host", "x-amz-date", "x-amz-target", "content-type"] {
        if !signed.split(';').any(|h| h == required) {
            return Err(format!("{required} is not signed"));
        }
    }
    let canonical_headers: String = signed
        .split(';')
        .map(|h| format!("{h}:{}\n", header(h).unwrap_or_default().trim()))
        .collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        parts.method,
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        hex(&Sha256::digest(body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{REGION}/translate/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{SECRET}").as_bytes(), date);
    for part in [REGION, "translate", "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, &to_sign));
    if field("Signature")? == expected {
        Ok(())
    } else {
        Err("signature mismatch".into())
    }
}

/// The requests' JSON bodies, in order.
type Seen = Arc<Mutex<Vec<Value>>>;

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

fn answer(req: &Value) -> (u16, Value) {
    let text = req["Text"].as_str().unwrap_or_default();
    let target = req["TargetLanguageCode"].as_str().unwrap_or_default();
    let source = match req["SourceLanguageCode"].as_str() {
        Some("auto") if text.contains("cita") => "es",
        Some("auto") => "en",
        Some(s) => s,
        None => return (400, json!({"__type": "ValidationException"})),
    };
    if target == "xx" {
        return (
            400,
            json!({"__type": "UnsupportedLanguagePairException", "message": "Unsupported language pair: en to xx."}),
        );
    }
    let translated = match (source, target, text) {
        (s, t, _) if s == t => text.to_owned(),
        ("en", "es", "Your appointment is on Tuesday at 10:00.") => {
            "Su cita es el martes a las 10:00.".to_owned()
        }
        _ => format!("[{target}] {text}"),
    };
    (
        200,
        json!({"TranslatedText": translated, "SourceLanguageCode": source, "TargetLanguageCode": target}),
    )
}

async fn serve(req: Request<Incoming>, seen: Seen) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    if target != Some("AWSShineFrontendService_20170701.TranslateText")
        || parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            != Some("application/x-amz-json-1.1")
    {
        return reply(400, json!({"__type": "UnknownOperationException"}));
    }
    if let Err(problem) = signature_problem(&parts, &body) {
        return reply(
            403,
            json!({"__type": "InvalidSignatureException", "message": problem}),
        );
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push(value.clone());
    let (status, out) = answer(&value);
    reply(status, out)
}

async fn translate_server() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = shared.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let seen = seen.clone();
                    async move { Ok::<_, std::convert::Infallible>(serve(req, seen).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await
                {
                    eprintln!("translate server connection: {e}");
                }
            });
        }
    });
    (url, seen)
}

fn harness(url: &str, secret: &str) -> Harness {
    let aws = AwsSettings {
        region: Some(REGION.into()),
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(secret.into()),
        session_token: None,
        endpoint_url: None,
        lambda_endpoint_url: None,
    };
    let sdk = switchboard_aws::sdk_config(&aws, switchboard_aws::tls_config().unwrap()).unwrap();
    let translate = Arc::new(AwsTranslate::new(&sdk, Some(url)));
    Harness::new(
        translation::plugin_with(translate).unwrap(),
        "translate-acme",
    )
}

#[tokio::test]
async fn text_is_translated_and_languages_detected_by_signed_requests() {
    let (url, seen) = translate_server().await;
    let h = harness(&url, SECRET);
    let out = h
        .ok(
            "TranslateText",
            json!({"text": "Your appointment is on Tuesday at 10:00.", "targetLanguage": "es-US", "sourceLanguage": "en"}),
        )
        .await;
    assert_eq!(
        out,
        json!({"translatedText": "Su cita es el martes a las 10:00.", "sourceLanguage": "en", "targetLanguage": "es"})
    );
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        sent,
        json!({"Text": "Your appointment is on Tuesday at 10:00.", "SourceLanguageCode": "en",
            "TargetLanguageCode": "es", "Settings": {"Formality": "FORMAL"}})
    );

    let detected = h
        .ok(
            "DetectLanguage",
            json!({"text": "Necesito cambiar mi cita."}),
        )
        .await;
    assert_eq!(detected, json!({"language": "es"}));
    let english = h
        .ok(
            "DetectLanguage",
            json!({"text": "I need to move my appointment."}),
        )
        .await;
    assert_eq!(english, json!({"language": "en"}));

    // The same language both ways: nothing to ask Translate.
    let before = seen.lock().unwrap().len();
    let same = h
        .ok(
            "TranslateText",
            json!({"text": "Hola", "targetLanguage": "es-MX", "sourceLanguage": "es-mx"}),
        )
        .await;
    assert_eq!(same["translatedText"], "Hola");
    assert_eq!(seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn refusals_map_to_the_contract_and_a_bad_signature_is_refused() {
    let (url, seen) = translate_server().await;
    let h = harness(&url, SECRET);
    let (status, _, paths) = h
        .fails(
            "TranslateText",
            json!({"text": "Hello", "targetLanguage": "xx"}),
        )
        .await;
    assert_eq!((status, paths), (422, vec!["/targetLanguage".to_owned()]));

    // Signed with another secret: the server refuses the signature, and no text is seen.
    let before = seen.lock().unwrap().len();
    let wrong = harness(&url, "not-the-secret");
    let e = wrong
        .call(
            "TranslateText",
            json!({"text": "Hello", "targetLanguage": "es"}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (502, "upstream_error"), "{e}");
    assert!(e.to_string().contains("InvalidSignatureException"), "{e}");
    assert!(!e.to_string().contains("not-the-secret"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), before);

    // Translate unreachable: a 503 naming it.
    let gone = harness("http://127.0.0.1:9", SECRET);
    let e = gone
        .call(
            "TranslateText",
            json!({"text": "Hello", "targetLanguage": "es"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (503, "dependency_unavailable"),
        "{e}"
    );
}
