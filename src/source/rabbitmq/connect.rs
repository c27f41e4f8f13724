//! How a RabbitMQ connection is opened: the URI of an endpoint with its
//! credentials, vhost and frame size, TLS, and a lease on a shared
//! connection (`super::super::shared`).

use super::classify;
use crate::config::Secret;
use crate::source::SourceError;
use crate::source::shared::{AmqpConnections, ConnectionKey, Lease};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

/// The AMQP frame size a mapping starts with (an endpoint's `?frame_max=`
/// wins; see [`LargeFrames`]).
pub const FRAME_MAX: u32 = 8192;

/// The URI for one endpoint with the secret's credentials and the vhost;
/// small frames unless `large_frames`, then the broker's.
pub fn amqp_uri(
    endpoint: &str,
    secret: &Secret,
    vhost: &str,
    large_frames: bool,
) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = endpoint
        .parse()
        .map_err(|e| format!("endpoint `{endpoint}` is not a valid AMQP URL: {e}"))?;
    uri.authority.userinfo.username = secret.username.clone();
    uri.authority.userinfo.password = secret.password.clone();
    uri.vhost = vhost.to_owned();
    if uri.query.heartbeat.is_none() {
        // Notice a dead broker within a minute instead of the TCP timeout.
        uri.query.heartbeat = Some(20);
    }
    if uri.query.frame_max.is_none() && !large_frames {
        // Bigger bodies just take more frames; see LargeFrames for headers.
        uri.query.frame_max = Some(FRAME_MAX);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(10_000);
    }
    Ok(uri)
}

/// The TLS settings for amqps://: the system's roots plus `ca_file`.
fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<lapin::tcp::OwnedTLSConfig, SourceError> {
    let cert_chain = match ca_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            SourceError::Config(format!(
                "cannot read the broker's ca_file {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    Ok(lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain,
    })
}

/// Where an AMQP connection goes, and as whom.
#[derive(Clone, Copy)]
pub struct AmqpTarget<'a> {
    pub endpoint: &'a str,
    pub secret: &'a Secret,
    pub vhost: &'a str,
    pub ca_file: Option<&'a std::path::Path>,
    /// The broker's frame size rather than [`FRAME_MAX`].
    pub large_frames: bool,
}

/// A connection to `target` from the pool the mappings share, opened if
/// there is none: the one way mqtrigger connects to RabbitMQ. `what`
/// names the user and broker in its errors.
pub async fn lease(
    connections: &AmqpConnections,
    target: AmqpTarget<'_>,
    what: &str,
) -> Result<Lease<Connection>, SourceError> {
    let uri = amqp_uri(
        target.endpoint,
        target.secret,
        target.vhost,
        target.large_frames,
    )
    .map_err(SourceError::Config)?;
    let key = ConnectionKey {
        endpoint: target.endpoint.to_owned(),
        username: target.secret.username.clone(),
        password: target.secret.password.clone(),
        vhost: target.vhost.to_owned(),
        large_frames: target.large_frames,
        ca_file: target.ca_file.map(ToOwned::to_owned),
    };
    connections
        .lease(&key, || async {
            let properties = ConnectionProperties::default()
                // No `enable_auto_recover`: with it, lapin 4.12 waits
                // silently and forever when a broker is stopped (seen
                // with `rabbitmqctl stop_app`). The engine reconnects
                // itself, with back-off, and shows the outage in
                // LastProcessingResult.
                .with_connection_name("mqtrigger".into());
            let tls = tls_config(target.ca_file)?;
            let runtime = lapin::runtime::default_runtime()
                .map_err(|e| SourceError::Connection(format!("no runtime for lapin: {e}")))?;
            Connection::connect_uri_with_config(uri, properties, tls, runtime)
                .await
                .map_err(|e| classify(&e, what))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_vhost_go_into_the_uri() {
        let secret = Secret {
            username: "app".into(),
            password: "p@ss/word".into(),
        };
        let uri = amqp_uri("amqp://127.0.0.1:5672", &secret, "/", false).unwrap();
        assert_eq!(uri.authority.userinfo.username, "app");
        assert_eq!(uri.authority.userinfo.password, "p@ss/word");
        assert_eq!(uri.vhost, "/");
        assert_eq!(uri.authority.port, 5672);
    }
}
