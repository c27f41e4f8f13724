//! Checks AWS Signature Version 4 on API requests, as Lambda does.
//!
//! The client signs a canonical form of the request with a key derived from
//! its secret; we rebuild the same canonical form from what arrived and
//! compare. Only the `Authorization` header form is accepted (the SDKs and
//! the CLI use it); presigned URLs are not. The credential scope must name
//! Lambda's service ([`SERVICE`]) and, when `[api] region` is set, that
//! region: a signature made for another service or region is not a
//! signature for this API, as AWS has it.

use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How far a request's clock may be from ours, as on AWS.
const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service every request must be signed for: Lambda's, which the SDKs,
/// the AWS CLI and mqtrigger's own clients (`api::remote`, `api::client`)
/// sign `/mqtrigger/v1` requests for too.
pub const SERVICE: &str = "lambda";

pub use crate::config::AccessKey;

/// Why a request was refused. The texts are AWS's; none holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("The security token included in the request is invalid (unknown access key {0})")]
    UnknownKey(String),
    /// AWS's whole text: expired, or not yet current.
    #[error("{0}")]
    Expired(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    Mismatch,
    /// AWS's text; `given` is the scope's service, for the server's log.
    #[error("Credential should be scoped to correct service: '{SERVICE}'.")]
    WrongService { given: String },
    /// AWS's text; the regions are for the server's log.
    #[error("Credential should be scoped to a valid region.")]
    WrongRegion { given: String, expected: String },
}

impl SigError {
    /// The exception name for `x-amzn-ErrorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::Malformed(_) => "IncompleteSignatureException",
            SigError::UnknownKey(_) => "UnrecognizedClientException",
            SigError::Expired(_)
            | SigError::Mismatch
            | SigError::WrongService { .. }
            | SigError::WrongRegion { .. } => "InvalidSignatureException",
        }
    }

    /// What the server's log adds to AWS's text: AWS's words name neither
    /// the scope that came nor the one expected, which an operator needs.
    pub fn detail(&self) -> Option<String> {
        match self {
            SigError::WrongService { given } => Some(format!(
                "the request was signed for service `{given}`, not `{SERVICE}`"
            )),
            SigError::WrongRegion { given, expected } => Some(format!(
                "the request was signed for region `{given}`; [api] region is `{expected}`"
            )),
            _ => None,
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    key_id: &'a str,
    scope: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
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
    let parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, "aws4_request"] = parts[..] else {
        return Err(SigError::Malformed(format!(
            "credential scope {scope} is not date/region/service/aws4_request"
        )));
    };
    Ok(Authorization {
        key_id,
        scope,
        date,
        region,
        service,
        signed_headers: signed
            .ok_or_else(|| missing("SignedHeaders"))?
            .split(';')
            .collect(),
        signature: signature.ok_or_else(|| missing("Signature"))?,
    })
}

/// What a request's credential scope must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub service: &'a str,
    /// `[api] region`; any region when None.
    pub region: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// Lambda's service, in `region` (`[api] region`) or any.
    pub fn lambda(region: Option<&'a str>) -> Scope<'a> {
        Scope {
            service: SERVICE,
            region,
        }
    }
}

/// Verifies a request; answers the access key id that signed it.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[AccessKey],
    scope: Scope<'_>,
    now: DateTime<Utc>,
) -> Result<String, SigError> {
    let header = headers
        .get("authorization")
        .ok_or(SigError::Missing)?
        .to_str()
        .map_err(|_| SigError::Malformed("not ASCII".into()))?;
    let auth = parse_authorization(header)?;
    // Before the key: as on AWS, a signature for another service or region
    // is refused for that, whoever made it.
    if auth.service != scope.service {
        return Err(SigError::WrongService {
            given: auth.service.to_owned(),
        });
    }
    if let Some(expected) = scope.region.filter(|r| *r != auth.region) {
        return Err(SigError::WrongRegion {
            given: auth.region.to_owned(),
            expected: expected.to_owned(),
        });
    }
    let key = keys
        .iter()
        .find(|k| k.id == auth.key_id)
        .ok_or_else(|| SigError::UnknownKey(auth.key_id.to_owned()))?;
    let amz_date = header_text(headers, "x-amz-date")
        .ok_or_else(|| SigError::Malformed("no X-Amz-Date header".into()))?;
    let signed_at = NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| SigError::Malformed(format!("X-Amz-Date {amz_date} is not yyyymmddThhmmssZ")))?
        .and_utc();
    if amz_date.get(..8) != Some(auth.date) {
        return Err(SigError::Malformed(
            "the credential scope's date is not X-Amz-Date's".into(),
        ));
    }
    if (now - signed_at).abs() > MAX_SKEW {
        let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ");
        let n = stamp(now);
        return Err(SigError::Expired(if signed_at < now {
            let limit = stamp(now - MAX_SKEW);
            format!("Signature expired: {amz_date} is now earlier than {limit} ({n} - 5 min.)")
        } else {
            let limit = stamp(now + MAX_SKEW);
            format!(
                "Signature not yet current: {amz_date} is still later than {limit} ({n} + 5 min.)"
            )
        }));
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
    let given = hex::decode(auth.signature).map_err(|_| SigError::Mismatch)?;
    let signing_key = signing_key(&key.secret, auth.scope);
    let query = canonical_query(uri.query().unwrap_or_default());
    // The SDKs encode the path once more before signing; older signers do
    // not. Either is the client's honest signature.
    let path = Some(uri.path()).filter(|p| !p.is_empty()).unwrap_or("/");
    for canonical_path in [encode(path.as_bytes(), true), path.to_owned()] {
        let canonical_request = format!(
            "{method}\n{canonical_path}\n{query}\n{canonical_headers}\n{}\n{payload_hash}",
            auth.signed_headers.join(";")
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key).expect("any key length");
        mac.update(string_to_sign(&amz_date, auth.scope, &canonical_request).as_bytes());
        // verify_slice compares in constant time.
        if mac.verify_slice(&given).is_ok() {
            return Ok(key.id.clone());
        }
    }
    Err(SigError::Mismatch)
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{hash}")
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
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// SigV4's URI encoding: unreserved characters stay, the rest is %XX.
fn encode(bytes: &[u8], keep_slash: bool) -> String {
    let keep =
        |b: u8| b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/');
    bytes
        .iter()
        .map(|&b| {
            if keep(b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Bytes, not text: an escape need not be UTF-8, and must survive as sent.
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let digit = |i: usize| bytes.get(i).and_then(|&c| char::from(c).to_digit(16));
    let (mut out, mut i) = (Vec::with_capacity(bytes.len()), 0);
    while i < bytes.len() {
        match (bytes[i], digit(i + 1), digit(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 2;
            }
            (b'+', ..) => out.push(b' '),
            (b, ..) => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
