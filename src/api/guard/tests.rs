//! The guard's rules, one request at a time.

use super::*;
use crate::api::sigv4::AccessKey;

const LISTEN: &str = "127.0.0.1:9001";

fn keyless() -> ApiSettings {
    ApiSettings::default()
}

fn keyed() -> ApiSettings {
    ApiSettings {
        access_keys: vec![AccessKey {
            id: "AKID".into(),
            secret: "secret".into(),
        }],
        ..ApiSettings::default()
    }
}

fn guard(settings: ApiSettings) -> Guard {
    Guard::new(&settings, LISTEN.parse().unwrap())
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).unwrap().into_parts().0
}

fn head(g: &Guard, headers: &[(&str, &str)]) -> Result<(), Refused> {
    g.check_head(&request(
        "GET",
        "/2015-03-31/event-source-mappings/",
        headers,
    ))
}

fn write(g: &Guard, method: &str, headers: &[(&str, &str)], body: bool) -> Result<(), Refused> {
    let parts = request(method, "/2015-03-31/event-source-mappings/", headers);
    g.check_head(&parts)?;
    g.check_body(&parts, !body)
}

#[test]
fn the_host_must_be_this_apis_address_or_an_allowed_host() {
    let g = guard(keyless());
    for host in [
        "127.0.0.1:9001",
        "localhost:9001",
        "LOCALHOST:9001",
        "[::1]:9001",
        "127.0.0.1",
        "localhost",
    ] {
        assert_eq!(head(&g, &[("host", host)]), Ok(()), "{host}");
    }
    for host in [
        "evil.example:9001",
        "evil.example",
        "localhost:9002",
        "127.0.0.1:9002",
        "localhost.evil.example:9001",
        "localhost:",
        "[::1",
        "ops-1:9001",
    ] {
        let refused = head(&g, &[("host", host)]).unwrap_err();
        assert_eq!(refused.rule(), Rule::Host, "{host}");
        assert!(refused.to_string().contains("host rule"), "{refused}");
        assert!(refused.to_string().contains("allowed_hosts"), "{refused}");
    }
    assert!(matches!(head(&g, &[]), Err(Refused::NoHost { .. })));
    let two = head(&g, &[("host", "127.0.0.1:9001"), ("host", "evil.example")]);
    assert!(matches!(two, Err(Refused::NoHost { .. })));
    // An absolute-form target names a host too.
    let absolute = request(
        "GET",
        "http://evil.example:9001/",
        &[("host", "127.0.0.1:9001")],
    );
    assert!(matches!(g.check_head(&absolute), Err(Refused::Host { .. })));

    let allowed = guard(ApiSettings {
        allowed_hosts: vec!["ops-1".into(), "Ops-1:9001".into()],
        ..keyless()
    });
    for host in ["ops-1", "ops-1:9001", "OPS-1:9001", "127.0.0.1:9001"] {
        assert_eq!(head(&allowed, &[("host", host)]), Ok(()), "{host}");
    }
    // Each entry as the header carries it: another port is another host.
    assert!(head(&allowed, &[("host", "ops-1:9002")]).is_err());
}

#[test]
fn the_address_listened_on_is_a_host_of_its_own() {
    let settings = keyless();
    let g = Guard::new(&settings, "127.0.0.2:9001".parse().unwrap());
    assert_eq!(head(&g, &[("host", "127.0.0.2:9001")]), Ok(()));
    let g = Guard::new(&settings, "[::1]:9001".parse().unwrap());
    assert_eq!(head(&g, &[("host", "[::1]:9001")]), Ok(()));
    assert_eq!(head(&g, &[("host", "localhost:9001")]), Ok(()));
}

#[test]
fn a_request_from_a_web_page_needs_an_allowed_origin() {
    let g = guard(keyless());
    let host = ("host", LISTEN);
    let refused = head(&g, &[host, ("origin", "http://evil.example")]).unwrap_err();
    assert_eq!(refused, Refused::Origin("http://evil.example".into()));
    let text = refused.to_string();
    assert!(
        text.starts_with(
            "refused by the API's cross-site rule: a request with Origin http://evil.example"
        ) && text.contains("[api] allowed_origins"),
        "{text}"
    );
    // Sandboxed pages say `null`; it is refused like any other.
    assert!(head(&g, &[host, ("origin", "null")]).is_err());
    for site in ["cross-site", "same-site", "Cross-Site"] {
        let refused = head(&g, &[host, ("sec-fetch-site", site)]).unwrap_err();
        assert_eq!(refused.rule(), Rule::CrossSite, "{site}");
    }
    for site in ["same-origin", "none"] {
        assert_eq!(
            head(&g, &[host, ("sec-fetch-site", site)]),
            Ok(()),
            "{site}"
        );
    }

    let allowed = guard(ApiSettings {
        allowed_origins: vec!["http://ops-ui:8080".into()],
        ..keyless()
    });
    let from_ui = [
        host,
        ("origin", "http://ops-ui:8080"),
        ("sec-fetch-site", "cross-site"),
    ];
    assert_eq!(head(&allowed, &from_ui), Ok(()));
    // Exactly that origin: not another port, not another scheme.
    for other in [
        "http://ops-ui:8081",
        "https://ops-ui:8080",
        "http://ops-ui:8080/",
    ] {
        assert!(
            head(&allowed, &[host, ("origin", other)]).is_err(),
            "{other}"
        );
    }
    // A page that sends no Origin is not the allowed one.
    assert!(head(&allowed, &[host, ("sec-fetch-site", "cross-site")]).is_err());
    // Every Origin header must be allowed, not just the first.
    let both = [
        host,
        ("origin", "http://ops-ui:8080"),
        ("origin", "http://evil.example"),
    ];
    assert!(head(&allowed, &both).is_err());
}

#[test]
fn changes_must_be_json_or_a_bodyless_non_post() {
    let g = guard(keyless());
    let host = ("host", LISTEN);
    let json = ("content-type", "application/json");
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        assert_eq!(write(&g, method, &[host, json], true), Ok(()), "{method}");
        let charset = ("content-type", "Application/JSON; charset=utf-8");
        assert_eq!(
            write(&g, method, &[host, charset], true),
            Ok(()),
            "{method}"
        );
        for simple in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/x-amz-json-1.1",
            "text/plain, application/json",
        ] {
            let refused = write(&g, method, &[host, ("content-type", simple)], true);
            let refused = refused.unwrap_err();
            assert_eq!(refused.rule(), Rule::ContentType, "{method} {simple}");
            assert!(
                refused.to_string().contains("content-type rule"),
                "{refused}"
            );
        }
    }
    // A POST must say JSON, even without a body.
    for body in [true, false] {
        let refused = write(&g, "POST", &[host], body).unwrap_err();
        assert_eq!(refused.rule(), Rule::ContentType);
    }
    // The SDKs' DELETE has neither body nor Content-Type.
    for method in ["DELETE", "PUT", "PATCH"] {
        assert_eq!(write(&g, method, &[host], false), Ok(()), "{method}");
        assert!(write(&g, method, &[host], true).is_err(), "{method}");
    }
    let two = [host, json, ("content-type", "text/plain")];
    assert!(write(&g, "POST", &two, true).is_err());
    // Reads need no Content-Type.
    assert_eq!(
        write(&g, "GET", &[host, ("content-type", "text/plain")], false),
        Ok(())
    );
}

#[test]
fn with_access_keys_only_the_host_rule_applies_and_only_when_asked() {
    let g = guard(keyed());
    let hostile = [
        ("host", "ops-1:9001"),
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("content-type", "text/plain"),
    ];
    assert_eq!(write(&g, "POST", &hostile, true), Ok(()));
    let pinned = guard(ApiSettings {
        allowed_hosts: vec!["ops-1:9001".into()],
        ..keyed()
    });
    assert_eq!(write(&pinned, "POST", &hostile, true), Ok(()));
    let refused = head(&pinned, &[("host", "evil.example:9001")]).unwrap_err();
    assert_eq!(refused.rule(), Rule::Host);
}

#[test]
fn a_refusal_is_logged_at_warn_once_per_rule_and_peer() {
    let g = guard(keyless());
    let parts = request("GET", "/", &[]);
    let peer: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
    let origin = Refused::Origin("http://evil.example".into());
    for _ in 0..3 {
        g.log(&origin, peer, &parts);
    }
    g.log(&Refused::FetchSite("cross-site".into()), peer, &parts);
    g.log(&origin, Some("::1".parse().unwrap()), &parts);
    let logged = g.logged.lock().unwrap();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(logged.contains(&(Rule::CrossSite, peer)));
}

#[test]
fn allowed_hosts_and_origins_are_checked_when_read() {
    for good in ["ops-1", "ops-1:9001", "10.0.0.5:9001", "[fd00::5]:9001"] {
        assert_eq!(check_allowed_host(good), Ok(()), "{good}");
    }
    for bad in ["http://ops-1", "ops-1/", "ops-1:port", "*", "", "ops 1"] {
        assert!(check_allowed_host(bad).is_err(), "{bad}");
    }
    for good in [
        "http://ops-ui:8080",
        "https://ops.example.com",
        "http://[::1]:3000",
    ] {
        assert_eq!(check_allowed_origin(good), Ok(()), "{good}");
    }
    for bad in [
        "null",
        "*",
        "ops-ui:8080",
        "http://ops-ui:8080/",
        "http://Ops-UI",
        "http://ops-ui/path",
        "http://",
    ] {
        assert!(check_allowed_origin(bad).is_err(), "{bad}");
    }
}
