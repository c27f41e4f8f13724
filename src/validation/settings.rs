//! The rules of the config's settings that are not a mapping's: a
//! broker's `admin_url`, `[engine]`'s ranges, `[api]`'s lists and region.
//! The config file says their errors at the key they are about.

use super::{InvalidSetting, MAX_MAX_REDELIVERIES};
use crate::config::{ApiSettings, EngineSettings};

/// `[engine] max_redeliveries` is 0 to 20.
pub fn max_redeliveries(n: u32) -> Result<(), InvalidSetting> {
    if n > MAX_MAX_REDELIVERIES {
        return Err(InvalidSetting {
            key: "max_redeliveries",
            message: format!(
                "max_redeliveries {n} is out of range: it must be 0 to {MAX_MAX_REDELIVERIES}. RabbitMQ 4's quorum queues dead-letter a message at 20 deliveries themselves, and the retries of one message must end well within RabbitMQ's 30-minute consumer_timeout"
            ),
        });
    }
    Ok(())
}

/// A broker's `admin_url`: ActiveMQ's web console, by http or https.
pub fn check_admin(broker: &crate::config::BrokerConfig) -> Result<(), String> {
    let Some(url) = &broker.admin_url else {
        return match broker.admin_secret {
            Some(_) => Err(
                "`admin_secret` is for the web console at `admin_url`; give admin_url too".into(),
            ),
            None => Ok(()),
        };
    };
    if broker.engine != crate::config::BrokerEngine::Activemq {
        return Err("`admin_url` is ActiveMQ's web console; a RabbitMQ broker's backlog needs none (a passive queue.declare counts it)".into());
    }
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`admin_url` {url} must be the web console's http:// or https:// URL, e.g. http://HOST:8161"
        ));
    }
    Ok(())
}

/// Every `[engine]` setting that has a range.
pub fn check_engine(settings: &EngineSettings) -> Result<(), InvalidSetting> {
    max_redeliveries(settings.max_redeliveries)
}

/// `[api]`'s lists and region: each entry must be something a request can
/// carry, so a typo is said at start rather than refusing every request.
/// The error is the key it is about, and what to fix.
pub fn check_api(api: &ApiSettings) -> Result<(), (&'static str, String)> {
    if let Some(region) = &api.region {
        let fits = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if region.is_empty() || !region.chars().all(fits) {
            return Err((
                "region",
                format!("region `{region}` is not an AWS region name (like `us-east-1`)"),
            ));
        }
    }
    for host in &api.allowed_hosts {
        if let Err(why) = check_allowed_host(host) {
            return Err(("allowed_hosts", format!("allowed_hosts `{host}`: {why}")));
        }
    }
    for origin in &api.allowed_origins {
        if let Err(why) = check_allowed_origin(origin) {
            return Err((
                "allowed_origins",
                format!("allowed_origins `{origin}`: {why}"),
            ));
        }
    }
    Ok(())
}

/// `name`, `name:port` or `[v6]:port`, lowercase: the host and the port.
pub fn split_host(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')? + 2;
            (&value[..end], &value[end..])
        }
        None => match value.find(':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, ""),
        },
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    match port {
        "" => Some((host, None)),
        p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
    }
}

/// An `[api] allowed_hosts` entry must be what a Host header carries.
pub fn check_allowed_host(host: &str) -> Result<(), String> {
    let plain = !host.contains("://") && !host.contains(['/', ' ', '*']);
    if plain && split_host(&host.to_ascii_lowercase()).is_some() {
        Ok(())
    } else {
        Err("write it as the Host header carries it, a name or name:port (`ops-1`, `ops-1:9001`), without a scheme, path or wildcard".into())
    }
}

/// An `[api] allowed_origins` entry must be an origin as a browser sends it.
pub fn check_allowed_origin(origin: &str) -> Result<(), String> {
    if origin == "null" {
        return Err("`null` is the origin of sandboxed pages and local files: any page can send it, so it cannot be allowed".into());
    }
    let well_formed = origin.split_once("://").is_some_and(|(scheme, rest)| {
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        scheme_ok
            && split_host(rest).is_some()
            && !rest.contains(['/', '?', '#', '*', ' '])
            && rest == rest.to_ascii_lowercase()
    });
    if well_formed {
        Ok(())
    } else {
        Err("write it as a browser sends it, scheme://host[:port] in lowercase without a path or trailing slash (`http://ops-ui:8080`); there is no wildcard".into())
    }
}
