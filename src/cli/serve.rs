//! `mqtrigger serve`: the engine headless, with its API and metrics, until
//! SIGINT or SIGTERM.

use anyhow::{Context, Result};
use mqtrigger::config::Config;
use mqtrigger::engine::Control;
use mqtrigger::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds the API's address (`--api`, else `[api] listen`) before anything
/// starts, so a bad address fails at once.
pub async fn bind_api(config: &Config, flag: Option<SocketAddr>) -> Result<Option<TcpListener>> {
    match flag.or(config.api.listen) {
        Some(addr) => Ok(Some(
            mqtrigger::api::bind(addr, &config.api.access_keys).await?,
        )),
        None => Ok(None),
    }
}

/// `--metrics` and whether `--metrics-public` lets it leave loopback.
pub struct Metrics {
    pub addr: SocketAddr,
    pub public: bool,
}

pub async fn serve(
    config_path: PathBuf,
    state: PathBuf,
    store_url: Option<String>,
    api: Option<SocketAddr>,
    metrics: Option<Metrics>,
    readonly: bool,
) -> Result<()> {
    let config = Config::load(&config_path)?;
    let api_listener = bind_api(&config, api).await?;
    let metrics_listener = match metrics {
        Some(Metrics { addr, public }) => {
            mqtrigger::metrics::check_listen(addr, public)?;
            Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for metrics"))?,
            )
        }
        None => None,
    };
    let store = Store::choose(store_url.as_deref(), &config, &state)?;
    if store.is_fresh() {
        tracing::warn!("{}", store.fresh_notice());
    }
    let _spans = mqtrigger::telemetry::start(&config.telemetry).await?;
    let control = Control::start(config, store).await?;
    if readonly {
        control.make_readonly();
    }
    let stop = CancellationToken::new();
    if let Some(listener) = api_listener {
        tracing::info!(addr = %listener.local_addr()?, "serving Lambda's event-source-mapping API");
        tokio::spawn(mqtrigger::api::serve(
            control.clone(),
            listener,
            stop.clone(),
        ));
    }
    if let Some(listener) = metrics_listener {
        tracing::info!(addr = %listener.local_addr()?, "serving metrics at /metrics");
        tokio::spawn(mqtrigger::metrics::serve(
            control.clone(),
            listener,
            stop.clone(),
        ));
    }
    let mappings = control.list()?;
    tracing::info!(mappings = mappings.len(), store = %control.store().place(), "serving");
    for m in &mappings {
        tracing::info!(uuid = %m.uuid, function = %m.spec.function_name, queue = m.spec.queue(), state = %m.state, "mapping");
    }
    wait_for_signal().await?;
    let under_way: u64 = control
        .all_stats()
        .mappings
        .values()
        .map(|s| s.in_flight_batches)
        .sum();
    tracing::info!(
        "stopping: waiting for {under_way} invocation(s) under way to finish and be settled; \
         the rest goes back to the brokers (Ctrl-C again to stop at once)"
    );
    stop.cancel();
    tokio::select! {
        _ = control.shutdown() => tracing::info!("stopped"),
        _ = wait_for_signal() => {
            // Nothing is lost: what is not settled goes back to the broker,
            // and the batches under way come again marked redelivered.
            tracing::warn!("stopped at once: the batches under way will be delivered again");
            std::process::exit(130);
        }
    }
    Ok(())
}

/// `--api` and `--metrics`: an address, or a host name and a port (`localhost:9001`).
pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("`{text}` is not HOST:PORT ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{text}` names no address"))
}

pub async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
