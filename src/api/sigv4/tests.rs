//! AWS's SigV4 test vectors, round trips of Lambda's requests, and the
//! credential scope.

use super::*;
use axum::http::HeaderName;
use chrono::TimeZone;

const ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const SCOPE: &str = "20150830/us-east-1/service/aws4_request";
const LAMBDA: &str = "20150830/us-east-1/lambda/aws4_request";
/// AWS's test suite signs for a service called "service".
const VECTORS: Scope = Scope {
    service: "service",
    region: None,
};

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
    sign_for(LAMBDA, method, uri, canonical_uri, query, body)
}

/// [`sign`] with another credential scope.
fn sign_for(
    scope: &str,
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
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(SECRET, scope)).unwrap();
    mac.update(string_to_sign(DATE, scope, &canonical).as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    let pairs = [("host", "localhost:9000"), ("x-amz-date", DATE)];
    (
        uri.parse().unwrap(),
        headers(&pairs, "host;x-amz-date", scope, &sig),
    )
}

// The three vectors are from AWS's SigV4 test suite.
#[test]
fn get_vanilla() {
    let good = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let (uri, h) = vector("/", good);
    assert_eq!(
        verify(&Method::GET, &uri, &h, b"", &keys(), VECTORS, at()),
        Ok(ID.into())
    );
    let bad = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf32";
    let (uri, h) = vector("/", bad);
    let refused = verify(&Method::GET, &uri, &h, b"", &keys(), VECTORS, at());
    assert_eq!(refused, Err(SigError::Mismatch));
}

#[test]
fn get_vanilla_query_order_key_case() {
    let sig = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
    let (uri, h) = vector("/?Param2=value2&Param1=value1", sig);
    assert_eq!(
        verify(&Method::GET, &uri, &h, b"", &keys(), VECTORS, at()),
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
    let ok = verify(
        &Method::POST,
        &uri,
        &h,
        b"Param1=value1",
        &keys(),
        VECTORS,
        at(),
    );
    assert_eq!(ok, Ok(ID.into()));
    let changed = verify(
        &Method::POST,
        &uri,
        &h,
        b"Param1=value2",
        &keys(),
        VECTORS,
        at(),
    );
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
        verify(
            &Method::GET,
            &uri,
            &h,
            b"",
            &keys(),
            Scope::lambda(None),
            at()
        ),
        Ok(ID.into())
    );
    // The SDKs escape a path's escapes again; older signers do not.
    let sent = format!("/2015-03-31/functions/{arn}/configuration");
    for canonical in [sent.replace('%', "%25"), sent.clone()] {
        let (uri, h) = sign("GET", &sent, &canonical, "", b"");
        assert_eq!(
            verify(
                &Method::GET,
                &uri,
                &h,
                b"",
                &keys(),
                Scope::lambda(None),
                at()
            ),
            Ok(ID.into())
        );
    }
    let path = "/2015-03-31/event-source-mappings/14e0db71-5d35-4eb5-b481-8945cf9d10c2";
    let body = br#"{"BatchSize":10}"#;
    let (uri, h) = sign("PUT", path, path, "", body);
    assert_eq!(
        verify(
            &Method::PUT,
            &uri,
            &h,
            body,
            &keys(),
            Scope::lambda(None),
            at()
        ),
        Ok(ID.into())
    );
    let changed = verify(
        &Method::PUT,
        &uri,
        &h,
        br#"{"BatchSize":1000}"#,
        &keys(),
        Scope::lambda(None),
        at(),
    );
    assert_eq!(changed, Err(SigError::Mismatch));
}

#[test]
fn unknown_keys_stale_dates_and_missing_headers_are_refused() {
    let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let (uri, h) = vector("/", sig);
    let check = |h: &HeaderMap, keys: &[AccessKey], now| {
        verify(&Method::GET, &uri, h, b"", keys, VECTORS, now)
    };
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

/// Each signature here is valid for its own scope: what refuses it is
/// the scope alone.
#[test]
fn the_scope_must_be_lambdas_and_the_configured_region() {
    let path = "/2015-03-31/event-source-mappings/";
    let signed_for = |scope: &str| sign_for(scope, "GET", path, path, "", b"");
    let check = |(uri, h): (Uri, HeaderMap), region: Option<&str>| {
        verify(
            &Method::GET,
            &uri,
            &h,
            b"",
            &keys(),
            Scope::lambda(region),
            at(),
        )
    };
    assert_eq!(check(signed_for(LAMBDA), None), Ok(ID.into()));
    assert_eq!(check(signed_for(LAMBDA), Some("us-east-1")), Ok(ID.into()));

    // Another region: any is fine without [api] region, only that one with it.
    let ireland = "20150830/eu-west-1/lambda/aws4_request";
    assert_eq!(check(signed_for(ireland), None), Ok(ID.into()));
    assert_eq!(check(signed_for(ireland), Some("eu-west-1")), Ok(ID.into()));
    let refused = check(signed_for(ireland), Some("us-east-1")).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Credential should be scoped to a valid region."
    );
    assert_eq!(refused.error_type(), "InvalidSignatureException");
    let detail = refused.detail().unwrap();
    assert!(
        detail.contains("eu-west-1") && detail.contains("us-east-1"),
        "{detail}"
    );

    // Another service: refused whatever the region setting.
    for region in [None, Some("us-east-1")] {
        let refused = check(signed_for("20150830/us-east-1/s3/aws4_request"), region);
        let refused = refused.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "Credential should be scoped to correct service: 'lambda'."
        );
        assert_eq!(refused.error_type(), "InvalidSignatureException");
        assert!(refused.detail().unwrap().contains("`s3`"));
    }
}

#[test]
fn errors_never_hold_the_secret() {
    let (uri, h) = vector("/", "00");
    let e = verify(&Method::GET, &uri, &h, b"", &keys(), VECTORS, at()).unwrap_err();
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
