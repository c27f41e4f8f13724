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
    /// AWS's whole text: expired, or not yet current.
    #[error("{0}")]
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
mod tests {
    use super::*;
    use axum::http::HeaderName;
    use chrono::TimeZone;

    const ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";
    const SCOPE: &str = "20150830/us-east-1/service/aws4_request";
    const LAMBDA: &str = "20150830/us-east-1/lambda/aws4_request";

    fn keys() -> Vec<AccessKey> {
        vec![AccessKey {
            id: ID.into(),
            secret: SECRET.into(),
        }]
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
    }

    fn headers(pairs: &[(&str, &str)], signed: &str, scope: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let auth =
            format!("{ALGORITHM} Credential={ID}/{scope}, SignedHeaders={signed}, Signature={sig}");
        h.insert("authorization", auth.parse().unwrap());
        h
    }

    fn vector(uri: &str, sig: &str) -> (Uri, HeaderMap) {
        let pairs = [("host", "example.amazonaws.com"), ("x-amz-date", DATE)];
        (
            uri.parse().unwrap(),
            headers(&pairs, "host;x-amz-date", SCOPE, sig),
        )
    }

    /// Signs a canonical request written out by hand, so the round trips
    /// check our canonical form against an independent statement of it.
    fn sign(
        method: &str,
        uri: &str,
        canonical_uri: &str,
        query: &str,
        body: &[u8],
    ) -> (Uri, HeaderMap) {
        let body_hash = hex::encode(Sha256::digest(body));
        let canonical = format!(
            "{method}\n{canonical_uri}\n{query}\nhost:localhost:9000\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{body_hash}"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(SECRET, LAMBDA)).unwrap();
        mac.update(string_to_sign(DATE, LAMBDA, &canonical).as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        let pairs = [("host", "localhost:9000"), ("x-amz-date", DATE)];
        (
            uri.parse().unwrap(),
            headers(&pairs, "host;x-amz-date", LAMBDA, &sig),
        )
    }

    // The three vectors are from AWS's SigV4 test suite.
    #[test]
    fn get_vanilla() {
        let good = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (uri, h) = vector("/", good);
        assert_eq!(
            verify(&Method::GET, &uri, &h, b"", &keys(), at()),
            Ok(ID.into())
        );
        let bad = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf32";
        let (uri, h) = vector("/", bad);
        let refused = verify(&Method::GET, &uri, &h, b"", &keys(), at());
        assert_eq!(refused, Err(SigError::Mismatch));
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let sig = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
        let (uri, h) = vector("/?Param2=value2&Param1=value1", sig);
        assert_eq!(
            verify(&Method::GET, &uri, &h, b"", &keys(), at()),
            Ok(ID.into())
        );
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        let sig = "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b";
        let body_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
        let pairs = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "example.amazonaws.com"),
            ("content-length", "13"),
            ("x-amz-date", DATE),
            ("x-amz-content-sha256", body_hash),
        ];
        let signed = "content-length;content-type;host;x-amz-content-sha256;x-amz-date";
        let (h, uri) = (headers(&pairs, signed, SCOPE, sig), Uri::from_static("/"));
        let ok = verify(&Method::POST, &uri, &h, b"Param1=value1", &keys(), at());
        assert_eq!(ok, Ok(ID.into()));
        let changed = verify(&Method::POST, &uri, &h, b"Param1=value2", &keys(), at());
        assert_eq!(changed, Err(SigError::Mismatch));
    }

    #[test]
    fn lambda_requests_round_trip() {
        let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho";
        let uri = format!("/2015-03-31/event-source-mappings/?MaxItems=2&FunctionName={arn}");
        let query = format!("FunctionName={arn}&MaxItems=2");
        let (uri, h) = sign(
            "GET",
            &uri,
            "/2015-03-31/event-source-mappings/",
            &query,
            b"",
        );
        assert_eq!(
            verify(&Method::GET, &uri, &h, b"", &keys(), at()),
            Ok(ID.into())
        );
        // The SDKs escape a path's escapes again; older signers do not.
        let sent = format!("/2015-03-31/functions/{arn}/configuration");
        for canonical in [sent.replace('%', "%25"), sent.clone()] {
            let (uri, h) = sign("GET", &sent, &canonical, "", b"");
            assert_eq!(
                verify(&Method::GET, &uri, &h, b"", &keys(), at()),
                Ok(ID.into())
            );
        }
        let path = "/2015-03-31/event-source-mappings/14e0db71-5d35-4eb5-b481-8945cf9d10c2";
        let body = br#"{"BatchSize":10}"#;
        let (uri, h) = sign("PUT", path, path, "", body);
        assert_eq!(
            verify(&Method::PUT, &uri, &h, body, &keys(), at()),
            Ok(ID.into())
        );
        let changed = verify(
            &Method::PUT,
            &uri,
            &h,
            br#"{"BatchSize":1000}"#,
            &keys(),
            at(),
        );
        assert_eq!(changed, Err(SigError::Mismatch));
    }

    #[test]
    fn unknown_keys_stale_dates_and_missing_headers_are_refused() {
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let (uri, h) = vector("/", sig);
        let check =
            |h: &HeaderMap, keys: &[AccessKey], now| verify(&Method::GET, &uri, h, b"", keys, now);
        let other = [AccessKey {
            id: "AKIDOTHER".into(),
            secret: SECRET.into(),
        }];
        assert_eq!(
            check(&h, &other, at()),
            Err(SigError::UnknownKey(ID.into()))
        );
        let six = chrono::Duration::minutes(6);
        let expired = check(&h, &keys(), at() + six).unwrap_err();
        let text = "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T124200Z - 5 min.)";
        assert_eq!(expired, SigError::Expired(text.into()));
        assert_eq!(expired.error_type(), "InvalidSignatureException");
        let early = check(&h, &keys(), at() - six);
        assert!(
            matches!(early, Err(SigError::Expired(t)) if t.starts_with("Signature not yet current"))
        );
        assert_eq!(
            check(&HeaderMap::new(), &keys(), at()),
            Err(SigError::Missing)
        );
        let mut basic = h.clone();
        basic.insert("authorization", "Basic QUtJRDpzZWNyZXQ=".parse().unwrap());
        assert_eq!(check(&basic, &keys(), at()), Err(SigError::Missing));
        let mut no_host = h.clone();
        no_host.remove("host");
        assert!(matches!(
            check(&no_host, &keys(), at()),
            Err(SigError::Malformed(_))
        ));
        let pairs = [("host", "example.amazonaws.com"), ("x-amz-date", DATE)];
        let next_day = headers(
            &pairs,
            "host;x-amz-date",
            "20150831/us-east-1/service/aws4_request",
            sig,
        );
        assert!(matches!(
            check(&next_day, &keys(), at()),
            Err(SigError::Malformed(_))
        ));
    }

    #[test]
    fn errors_never_hold_the_secret() {
        let (uri, h) = vector("/", "00");
        let e = verify(&Method::GET, &uri, &h, b"", &keys(), at()).unwrap_err();
        assert!(!format!("{e} {e:?} {:?}", keys()).contains(SECRET));
    }

    #[test]
    fn encoding_is_sigv4s() {
        assert_eq!(encode(b"a b/c~", true), "a%20b/c~");
        assert_eq!(encode(b"arn:aws/x", false), "arn%3Aaws%2Fx");
        assert_eq!(
            canonical_query("b=2&a=x%3Ay&c&d=%FF%+1"),
            "a=x%3Ay&b=2&c=&d=%FF%25%201"
        );
        // The test suite's double-encode-path canonical URI.
        let path = encode(b"/test/@connections/JBDvjfGEIAMCERw%3D", true);
        assert_eq!(path, "/test/%40connections/JBDvjfGEIAMCERw%253D");
    }
}
