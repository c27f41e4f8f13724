//! Checks AWS Signature Version 4 on API requests, as Lambda does.
//!
//! The client signs a canonical form of the request with a key derived from
//! its secret; we rebuild the same canonical form from what arrived and
//! compare. Only the `Authorization` header form is accepted (the SDKs and
//! the CLI use it); presigned URLs are not.

use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// How far a request's clock may be from ours, as on AWS.
const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// An `[api] access_keys` entry.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a request was refused. The texts are AWS's; none holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("The security token included in the request is invalid (unknown access key {0})")]
    UnknownKey(String),
    #[error("Signature expired: {0}")]
    Expired(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    Mismatch,
}

impl SigError {
    /// The exception name for `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::Malformed(_) => "IncompleteSignatureException",
            SigError::UnknownKey(_) => "UnrecognizedClientException",
            SigError::Expired(_) | SigError::Mismatch => "InvalidSignatureException",
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    key_id: &'a str,
    scope: &'a str,
    date: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or(SigError::Missing)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let missing = |what: &str| SigError::Malformed(format!("no {what}"));
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let (key_id, scope) = credential
        .split_once('/')
        .ok_or_else(|| missing("credential scope"))?;
    let date = scope.split('/').next().unwrap_or_default();
    if scope.split('/').count() != 4 || !scope.ends_with("/aws4_request") {
        return Err(SigError::Malformed(format!(
            "credential scope {scope} is not date/region/service/aws4_request"
        )));
    }
    Ok(Authorization {
        key_id,
        scope,
        date,
        signed_headers: signed
            .ok_or_else(|| missing("SignedHeaders"))?
            .split(';')
            .collect(),
        signature: signature.ok_or_else(|| missing("Signature"))?,
    })
}

/// Verifies a request; answers the access key id that signed it.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[AccessKey],
    now: DateTime<Utc>,
) -> Result<String, SigError> {
    let header = headers
        .get("authorization")
        .ok_or(SigError::Missing)?
        .to_str()
        .map_err(|_| SigError::Malformed("not ASCII".into()))?;
    let auth = parse_authorization(header)?;
    let key = keys
        .iter()
        .find(|k| k.id == auth.key_id)
        .ok_or_else(|| SigError::UnknownKey(auth.key_id.to_owned()))?;
    let amz_date = header_text(headers, "x-amz-date")
        .ok_or_else(|| SigError::Malformed("no X-Amz-Date header".into()))?;
    let signed_at = NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| SigError::Malformed(format!("X-Amz-Date {amz_date} is not yyyymmddThhmmssZ")))?
        .and_utc();
    if !amz_date.starts_with(auth.date) {
        return Err(SigError::Malformed(
            "the credential scope's date is not X-Amz-Date's".into(),
        ));
    }
    if (now - signed_at).abs() > MAX_SKEW {
        return Err(SigError::Expired(format!(
            "{amz_date} is more than 5 minutes from the server's time {}",
            now.format("%Y%m%dT%H%M%SZ")
        )));
    }
    let body_hash = hex::encode(Sha256::digest(body));
    let payload_hash = match header_text(headers, "x-amz-content-sha256") {
        Some(h) if h == "UNSIGNED-PAYLOAD" => h,
        Some(h) if h == body_hash => h,
        Some(_) => return Err(SigError::Mismatch),
        None => body_hash,
    };
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(SigError::Malformed(format!(
                "signed header {name} is missing"
            )));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let signing_key = signing_key(&key.secret, auth.scope);
    let query = canonical_query(uri.query().unwrap_or_default());
    // The SDKs encode the path once more before signing; older signers do
    // not. Either is the client's honest signature.
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    for canonical_path in [encode(path, false), path.to_owned()] {
        let canonical_request = format!(
            "{method}\n{canonical_path}\n{query}\n{canonical_headers}\n{}\n{payload_hash}",
            auth.signed_headers.join(";")
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}\n{}",
            auth.scope,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key).expect("any key length");
        mac.update(string_to_sign.as_bytes());
        let Ok(given) = hex::decode(auth.signature) else {
            return Err(SigError::Mismatch);
        };
        if mac.verify_slice(&given).is_ok() {
            return Ok(key.id.clone());
        }
    }
    Err(SigError::Mismatch)
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signing_key(secret: &str, scope: &str) -> Vec<u8> {
    let hmac = |key: &[u8], data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac(&key, part);
    }
    key
}

/// Query parameters decoded, re-encoded the SigV4 way, and sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), true), encode(&decode(v), true))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4's URI encoding: unreserved characters stay, the rest is %XX;
/// `/` stays in paths.
fn encode(text: &str, slash_too: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !slash_too);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys() -> Vec<AccessKey> {
        vec![AccessKey {
            id: ID.into(),
            secret: SECRET.into(),
        }]
    }

    fn vector(uri: &str, signature: &str) -> (Uri, HeaderMap) {
        let mut h = HeaderMap::new();
        h.insert("host", "example.amazonaws.com".parse().unwrap());
        h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={ID}/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
        );
        h.insert("authorization", auth.parse().unwrap());
        (uri.parse().unwrap(), h)
    }

    fn at_vector_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
    }

    // From AWS's SigV4 test suite.
    #[test]
    fn get_vanilla() {
        let good = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (uri, h) = vector("/", good);
        let ok = verify(&Method::GET, &uri, &h, b"", &keys(), at_vector_time());
        assert_eq!(ok, Ok(ID.to_owned()));
        let bad = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf32";
        let (uri, h) = vector("/", bad);
        let refused = verify(&Method::GET, &uri, &h, b"", &keys(), at_vector_time());
        assert_eq!(refused, Err(SigError::Mismatch));
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let sig = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
        let (uri, h) = vector("/?Param2=value2&Param1=value1", sig);
        let ok = verify(&Method::GET, &uri, &h, b"", &keys(), at_vector_time());
        assert_eq!(ok, Ok(ID.to_owned()));
    }

    #[test]
    fn unknown_keys_stale_dates_and_missing_headers_are_refused() {
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (uri, h) = vector("/", sig);
        let nobody = vec![AccessKey {
            id: "AKIDOTHER".into(),
            secret: SECRET.into(),
        }];
        let unknown = verify(&Method::GET, &uri, &h, b"", &nobody, at_vector_time());
        assert_eq!(unknown, Err(SigError::UnknownKey(ID.into())));
        let later = at_vector_time() + chrono::Duration::minutes(6);
        let expired = verify(&Method::GET, &uri, &h, b"", &keys(), later).unwrap_err();
        assert!(matches!(expired, SigError::Expired(_)));
        assert_eq!(expired.error_type(), "InvalidSignatureException");
        let missing = verify(&Method::GET, &uri, &HeaderMap::new(), b"", &keys(), later);
        assert_eq!(missing, Err(SigError::Missing));
        let mut no_host = h.clone();
        no_host.remove("host");
        let malformed = verify(&Method::GET, &uri, &no_host, b"", &keys(), at_vector_time());
        assert!(matches!(malformed, Err(SigError::Malformed(_))));
    }

    #[test]
    fn errors_never_hold_the_secret() {
        let sig = "00";
        let (uri, h) = vector("/", sig);
        let e = verify(&Method::GET, &uri, &h, b"", &keys(), at_vector_time()).unwrap_err();
        assert!(!format!("{e} {e:?} {:?}", keys()).contains(SECRET));
    }

    #[test]
    fn encoding_is_sigv4s() {
        assert_eq!(encode("a b/c~", false), "a%20b/c~");
        assert_eq!(encode("arn:aws/x", true), "arn%3Aaws%2Fx");
        assert_eq!(canonical_query("b=2&a=x%3Ay&c"), "a=x%3Ay&b=2&c=");
    }
}
