//! The rules a request must pass before the API reads it: against the web
//! pages that a browser on this machine may be showing.
//!
//! A keyless API (no `[api] access_keys`) listens on loopback only
//! ([`super::check_listen`]) and trusts whoever reaches it. But a browser
//! on this machine reaches it too, on behalf of every page it shows. A page
//! may send a "simple" request (a GET, or a POST of `text/plain`, a form or
//! an untyped body) to any address without asking first, and a name of the
//! page's own that it makes resolve to 127.0.0.1 (DNS rebinding) lets it
//! read the answers as its own. Three rules close that, as the tools that
//! serve local APIs do (Docker's socket, Jupyter, the Kubernetes API
//! server's allowed hosts):
//!
//! - the **host rule**: `Host` must be this API's own address (`127.0.0.1`,
//!   `[::1]`, `localhost` or the address it listens on, with its port or
//!   none) or one of `[api] allowed_hosts`. A rebound page's requests carry
//!   the page's name, so it can neither read nor change anything.
//! - the **cross-site rule**: a request with an `Origin` header, or with
//!   `Sec-Fetch-Site: cross-site` or `same-site`, comes from a web page;
//!   it is refused unless `[api] allowed_origins` names that origin. The
//!   AWS CLI, the SDKs and mqtrigger's own clients send neither.
//! - the **content-type rule**: a change (any method but GET, HEAD and
//!   OPTIONS) must say `Content-Type: application/json`, which no page can
//!   send without a CORS preflight; we answer no preflight with CORS
//!   headers, so the browser never sends the request itself. Only a
//!   bodyless PUT, PATCH or DELETE may come without a Content-Type.
//!
//! With access_keys every request must be signed, which a page cannot do (it
//! does not have the secret): neither a forged request nor a rebound one
//! gets past the signature. So the cross-site and content-type rules do not
//! apply there, and the host rule applies only when `[api] allowed_hosts`
//! is set: a signed service is reached by names (`ops-1:9001`, a load
//! balancer's) that mqtrigger cannot know, and refusing them by default
//! would break it for no gain.

use crate::config::ApiSettings;
use crate::sync::Unpoisoned;
use crate::validation::split_host;
pub use crate::validation::{check_allowed_host, check_allowed_origin};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// The one content type a keyless API takes changes in: what the AWS CLI,
/// botocore (boto3), aws-sdk-lambda and mqtrigger's console send with a
/// body (checked against each of them). It is safe because it is not one
/// of the three a page may send without a preflight (`text/plain`,
/// `application/x-www-form-urlencoded`, `multipart/form-data`).
const JSON: &str = "application/json";

/// How many (rule, peer) pairs are remembered as logged: past that, a
/// refusal is logged at debug, so a flood of peers cannot grow the set.
const LOGGED_LIMIT: usize = 1024;

/// A header value as a refusal quotes it: a page chooses it, so it is cut short.
const QUOTED_LIMIT: usize = 200;

/// Which rule refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Host,
    CrossSite,
    ContentType,
}

/// Why a request was refused: the rule's name and what to do, for the
/// caller (a 403 `AccessDeniedException`) and the log alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "refused by the API's host rule: Host {host} is not this API's address ({accepted}), and a name that leads here may be a web page's own (DNS rebinding); if it is a name of this machine, add it to [api] allowed_hosts"
    )]
    Host { host: String, accepted: String },
    #[error(
        "refused by the API's host rule: a request must carry one Host header, this API's address ({accepted})"
    )]
    NoHost { accepted: String },
    #[error(
        "refused by the API's cross-site rule: a request with Origin {0} comes from a web page, and this API trusts the tools of this machine only; if that page may use it, add {0} to [api] allowed_origins"
    )]
    Origin(String),
    #[error(
        "refused by the API's cross-site rule: a request with Sec-Fetch-Site: {0} comes from another site's web page, and this API trusts the tools of this machine only; a page whose Origin is in [api] allowed_origins may use it"
    )]
    FetchSite(String),
    #[error(
        "refused by the API's content-type rule: a {method} {sent}; this API takes changes with Content-Type: application/json only, which a web page cannot send without asking first"
    )]
    ContentType { method: Method, sent: String },
}

impl Refused {
    pub fn rule(&self) -> Rule {
        match self {
            Refused::Host { .. } | Refused::NoHost { .. } => Rule::Host,
            Refused::Origin(_) | Refused::FetchSite(_) => Rule::CrossSite,
            Refused::ContentType { .. } => Rule::ContentType,
        }
    }
}

/// The rules of one API, for the address it listens on.
#[derive(Debug)]
pub struct Guard {
    keyless: bool,
    port: u16,
    /// This API's own host names and addresses, lowercase, without a port.
    own_hosts: Vec<String>,
    /// `[api] allowed_hosts`, lowercase: each matches a Host exactly.
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    /// The (rule, peer) pairs whose refusal was logged at warn.
    logged: Mutex<HashSet<(Rule, Option<IpAddr>)>>,
}

impl Guard {
    pub fn new(settings: &ApiSettings, listen: SocketAddr) -> Guard {
        let mut own_hosts: Vec<String> =
            ["localhost", "127.0.0.1", "[::1]"].map(String::from).into();
        // An address that means every interface is no name of this API.
        if !listen.ip().is_unspecified() {
            let literal = match listen.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            };
            if !own_hosts.contains(&literal) {
                own_hosts.push(literal);
            }
        }
        Guard {
            keyless: settings.access_keys.is_empty(),
            port: listen.port(),
            own_hosts,
            allowed_hosts: settings
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: settings.allowed_origins.clone(),
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// The rules that need only the request's head: host, then cross-site.
    pub fn check_head(&self, parts: &Parts) -> Result<(), Refused> {
        if self.keyless || !self.allowed_hosts.is_empty() {
            self.check_host(parts)?;
        }
        if self.keyless {
            self.check_cross_site(&parts.headers)?;
        }
        Ok(())
    }

    /// The content-type rule, once the body has been read.
    pub fn check_body(&self, parts: &Parts, body_is_empty: bool) -> Result<(), Refused> {
        if self.keyless {
            check_content_type(&parts.method, &parts.headers, body_is_empty)?;
        }
        Ok(())
    }

    /// Logs a refusal at warn the first time its rule refuses this peer,
    /// at debug after that: a page that retries must not flood the log.
    pub fn log(&self, refused: &Refused, peer: Option<IpAddr>, parts: &Parts) {
        let first = {
            let mut logged = self.logged.locked();
            logged.len() < LOGGED_LIMIT && logged.insert((refused.rule(), peer))
        };
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        let (method, path) = (&parts.method, parts.uri.path());
        if first {
            tracing::warn!(%peer, %method, path, "API request refused: {refused} (later refusals of this peer by this rule are logged at debug)");
        } else {
            tracing::debug!(%peer, %method, path, "API request refused: {refused}");
        }
    }

    fn check_host(&self, parts: &Parts) -> Result<(), Refused> {
        let accepted = || self.accepted_hosts();
        let mut hosts = parts.headers.get_all(header::HOST).iter();
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return Err(Refused::NoHost {
                accepted: accepted(),
            });
        };
        let host = String::from_utf8_lossy(host.as_bytes());
        // A request in absolute form (`GET http://name/…`) names a host of
        // its own too; both must be this API's.
        let target = parts.uri.authority().map(|a| a.as_str());
        for name in std::iter::once(host.as_ref()).chain(target) {
            if !self.is_own_host(name) {
                return Err(Refused::Host {
                    host: quoted(name),
                    accepted: accepted(),
                });
            }
        }
        Ok(())
    }

    fn is_own_host(&self, value: &str) -> bool {
        let value = value.to_ascii_lowercase();
        if self.allowed_hosts.contains(&value) {
            return true;
        }
        // HTTP lets Host leave out the port: then it names the default
        // port, but a client that reached us names us all the same.
        split_host(&value).is_some_and(|(host, port)| {
            self.own_hosts.iter().any(|own| own == host) && port.is_none_or(|p| p == self.port)
        })
    }

    fn accepted_hosts(&self) -> String {
        let mut accepted: Vec<String> = self
            .own_hosts
            .iter()
            .map(|h| format!("{h}:{}", self.port))
            .collect();
        accepted.extend(self.allowed_hosts.iter().cloned());
        accepted.join(", ")
    }

    fn check_cross_site(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let mut origins = headers.get_all(header::ORIGIN).iter().peekable();
        let has_origin = origins.peek().is_some();
        for origin in origins {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self.allowed_origins.iter().any(|o| *o == origin) {
                return Err(Refused::Origin(quoted(&origin)));
            }
        }
        // A browser that sends no Origin (a GET of an image, a script)
        // still says where the request comes from here. `same-site` is
        // refused too: a page on another port of localhost is same-site.
        // A request from an allowed origin is accepted whatever it says.
        for site in headers.get_all("sec-fetch-site") {
            let site = String::from_utf8_lossy(site.as_bytes()).to_ascii_lowercase();
            let from_a_page = site != "same-origin" && site != "none";
            if from_a_page && !has_origin {
                return Err(Refused::FetchSite(quoted(&site)));
            }
        }
        Ok(())
    }
}

/// The content-type rule. Why each case is safe, or not:
/// - `application/json` (with parameters such as a charset): a page can
///   send it only after a CORS preflight, which we never answer with CORS
///   headers, so the browser never sends the request. The AWS CLI,
///   botocore, aws-sdk-lambda and the console send it with every body.
/// - `text/plain`, a form, or anything else: refused. The first three are
///   what a page sends without a preflight; the rest no client of ours
///   sends, and refusing them costs nothing.
/// - no Content-Type on a POST: refused, even without a body. A page's
///   `fetch(url, {method: "POST", mode: "no-cors"})`, with no body or with
///   bytes, sends exactly that without a preflight.
/// - no Content-Type on a bodyless PUT, PATCH or DELETE: accepted. A page
///   cannot send these methods to another origin without a preflight, which
///   fails; the cross-site rule refuses it besides (a browser sends Origin
///   with every such request). botocore and aws-sdk-lambda send DELETE so.
fn check_content_type(
    method: &Method,
    headers: &HeaderMap,
    body_is_empty: bool,
) -> Result<(), Refused> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refuse = |sent: String| Refused::ContentType {
        method: method.clone(),
        sent,
    };
    let mut types = headers.get_all(header::CONTENT_TYPE).iter();
    match (types.next(), types.next()) {
        (Some(value), None) => {
            let text = String::from_utf8_lossy(value.as_bytes());
            let essence = text.split(';').next().unwrap_or_default().trim();
            if essence.eq_ignore_ascii_case(JSON) {
                Ok(())
            } else {
                Err(refuse(format!("with Content-Type {}", quoted(&text))))
            }
        }
        (Some(_), Some(_)) => Err(refuse("with more than one Content-Type".into())),
        (None, _) if *method == Method::POST => Err(refuse("without a Content-Type".into())),
        (None, _) if !body_is_empty => Err(refuse("with a body but without a Content-Type".into())),
        (None, _) => Ok(()),
    }
}

fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_LIMIT) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests;
