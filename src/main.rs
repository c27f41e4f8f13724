//! The `mqtrigger` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use mqtrigger::config::Config;
use mqtrigger::engine::Control;
use mqtrigger::publish::{self, Message};
use mqtrigger::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "mqtrigger",
    version,
    about = "Lambda's Amazon MQ trigger for any RabbitMQ or ActiveMQ broker and any function"
)]
struct Cli {
    /// Without a subcommand: the console on ./mqtrigger.toml.
    #[command(subcommand)]
    command: Option<Command>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum BenchFunction {
    Lambda,
    Command,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum MappingsCommand {
    /// Every mapping (all pages), optionally of one function or broker.
    List {
        #[arg(long)]
        function_name: Option<String>,
        #[arg(long)]
        event_source_arn: Option<String>,
        /// Page size asked of the API.
        #[arg(long)]
        max_items: Option<i32>,
    },
    Get {
        uuid: String,
    },
    Create {
        #[arg(long)]
        function_name: String,
        #[arg(long)]
        event_source_arn: String,
        #[arg(long)]
        queue: String,
        /// The BASIC_AUTH secret's ARN.
        #[arg(long)]
        secret: String,
        /// RabbitMQ only.
        #[arg(long)]
        virtual_host: Option<String>,
        #[arg(long)]
        batch_size: Option<i32>,
        /// MaximumBatchingWindowInSeconds.
        #[arg(long)]
        batching_window: Option<i32>,
        /// A FilterCriteria pattern; repeat for several.
        #[arg(long = "filter-pattern")]
        filter_patterns: Vec<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    Update {
        uuid: String,
        #[arg(long)]
        function_name: Option<String>,
        #[arg(long)]
        batch_size: Option<i32>,
        #[arg(long)]
        batching_window: Option<i32>,
        #[arg(long = "filter-pattern")]
        filter_patterns: Vec<String>,
        /// Remove the filters.
        #[arg(long, conflicts_with = "filter_patterns")]
        no_filter: bool,
        #[arg(long)]
        secret: Option<String>,
    },
    Delete {
        uuid: String,
    },
    Enable {
        uuid: String,
    },
    Disable {
        uuid: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// The operations console: mappings, live batches, dead letters; enable,
    /// disable and resize from the keyboard. Logs go to STATE/mqtrigger.log.
    Console {
        /// The config of the engine the console runs (default mqtrigger.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long, default_value = ".state")]
        state: PathBuf,
        /// Keep mappings and the journal in PostgreSQL, postgres://user@host:port/database
        /// (overrides [store] url), instead of SQLite in the state directory.
        #[arg(long)]
        store: Option<String>,
        /// Also serve Lambda's event-source-mapping API here, HOST:PORT (overrides [api] listen).
        #[arg(long, value_parser = listen_addr)]
        api: Option<SocketAddr>,
        /// Watch only: no change, replay or republish, from the keys or the API.
        #[arg(long)]
        readonly: bool,
        /// Attach to a running `serve --api` (or `console --api`) at this URL
        /// instead of running an engine; MQTRIGGER_ENDPOINT says the same
        /// when --config is not given. Requests are signed with the AWS CLI's
        /// credentials.
        #[arg(long, conflicts_with_all = ["config", "api", "readonly"])]
        endpoint: Option<String>,
        /// With --endpoint: write the console's log to this file (else none is kept).
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Run every enabled mapping headless until SIGINT or SIGTERM.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Where mappings and the journal are kept (SQLite).
        #[arg(long, default_value = ".state")]
        state: PathBuf,
        /// Keep mappings and the journal in PostgreSQL instead,
        /// postgres://user@host:port/database (overrides [store] url).
        #[arg(long)]
        store: Option<String>,
        /// Serve Lambda's event-source-mapping API here, HOST:PORT (overrides [api] listen).
        #[arg(long, value_parser = listen_addr)]
        api: Option<SocketAddr>,
        /// Serve Prometheus metrics at http://HOST:PORT/metrics (loopback
        /// only, unless --metrics-public).
        #[arg(long, value_parser = listen_addr)]
        metrics: Option<SocketAddr>,
        /// Let --metrics listen beyond loopback: anyone who can reach it
        /// reads the names of the queues, functions and mappings.
        #[arg(long, requires = "metrics")]
        metrics_public: bool,
        /// The API may read but not change anything.
        #[arg(long)]
        readonly: bool,
    },
    /// Manage the mappings of a running `serve --api` or `console --api`.
    Mappings {
        /// The API's URL.
        #[arg(
            long,
            global = true,
            env = "MQTRIGGER_ENDPOINT",
            default_value = "http://127.0.0.1:9001"
        )]
        endpoint: String,
        #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: MappingsCommand,
    },
    /// The instances sharing a PostgreSQL store (ask any of them): what
    /// each runs, and when each was last seen.
    Instances {
        /// The API's URL.
        #[arg(
            long,
            env = "MQTRIGGER_ENDPOINT",
            default_value = "http://127.0.0.1:9001"
        )]
        endpoint: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Send sample messages to a queue.
    Publish {
        /// amqp://user:pass@host:port/vhost
        #[arg(long)]
        broker: String,
        #[arg(long)]
        queue: String,
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long, conflicts_with = "file")]
        body: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        /// A message header, key=value (value may be int:5, bool:true, float:1.5).
        #[arg(long = "header", value_parser = publish::parse_pair)]
        headers: Vec<(String, String)>,
        /// A basic property, e.g. content_type=application/json, priority=5, expiration=60000.
        #[arg(long = "property", value_parser = publish::parse_pair)]
        properties: Vec<(String, String)>,
        /// STOMP only: send content-length, so ActiveMQ makes a BytesMessage.
        #[arg(long)]
        bytes_message: bool,
    },
    /// A minimal Lambda Invoke API on loopback that answers every invoke with `{}`:
    /// try the `lambda` runtime (endpoint_url) without an AWS account.
    LambdaServer {
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: std::net::SocketAddr,
        /// bench: log each message's publish→invoke latency here.
        #[arg(long, hide = true)]
        latency_log: Option<PathBuf>,
        /// bench: log when each request arrived and was answered here.
        #[arg(long, hide = true)]
        timing_log: Option<PathBuf>,
        /// bench: take this long per invoke.
        #[arg(long, hide = true, default_value_t = 0)]
        sleep_ms: u64,
    },
    /// Measure the engine against the broker's own ceiling (see BENCHMARKS.md).
    Bench {
        /// amqp://user:pass@host:port/vhost or stomp://user:pass@host:port
        #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
        broker: String,
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// Body size in bytes (at least 20: the publish time).
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[arg(long, default_value_t = 100)]
        batch_size: u32,
        /// MaximumBatchingWindowInSeconds (default: Lambda's 0.5 s).
        #[arg(long)]
        window: Option<u32>,
        #[arg(long, value_enum, default_value_t = BenchFunction::Lambda)]
        function: BenchFunction,
        /// With `--function lambda`: invoke this Lambda-compatible endpoint
        /// instead of starting one (scripts/compare's Python endpoint).
        #[arg(long)]
        endpoint_url: Option<String>,
        /// Where that endpoint logs "arrived_ns answered_ns" per request, for
        /// the function's busy share and the gap between invocations.
        #[arg(long, requires = "endpoint_url")]
        timing_log: Option<PathBuf>,
        /// ScalingConfig.MaximumConcurrency.
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
        /// The function takes this long per batch.
        #[arg(long, default_value_t = 0)]
        function_sleep_ms: u64,
        /// Publish at this many messages/s while consuming (measures latency),
        /// instead of filling the queue first.
        #[arg(long)]
        rate: Option<u32>,
        /// Only the engine, no ceiling run.
        #[arg(long)]
        no_ceiling: bool,
        /// Instead: start this many mappings on empty queues and measure what they cost.
        #[arg(long)]
        idle_mappings: Option<usize>,
        /// How long idle mappings are watched.
        #[arg(long, default_value_t = 10)]
        idle_seconds: u64,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// bench's command function: logs latencies from the event on stdin.
    #[command(hide = true)]
    BenchSink {
        #[arg(long)]
        latency_log: PathBuf,
        /// Log when the process began and answered here.
        #[arg(long)]
        timing_log: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        sleep_ms: u64,
        /// Fail the batch when a message body starts with this (scripts/soak).
        #[arg(long)]
        fail_on: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut command = cli.command.unwrap_or(Command::Console {
        config: None,
        state: ".state".into(),
        store: None,
        api: None,
        readonly: false,
        endpoint: None,
        log: None,
    });
    if let Command::Console {
        config: None,
        endpoint: endpoint @ None,
        ..
    } = &mut command
    {
        *endpoint = std::env::var("MQTRIGGER_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty());
    }
    // A console whose config cannot be read creates nothing (no state
    // directory, no log file) before it says so.
    let console_config = match &command {
        Command::Console {
            config,
            endpoint: None,
            ..
        } => match Config::load(config.as_deref().unwrap_or("mqtrigger.toml".as_ref())) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("mqtrigger: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    // The console owns the terminal: its logs go to a file in the state directory.
    let log_file = match &command {
        Command::Console {
            endpoint: Some(_),
            log,
            ..
        } => match log
            .as_deref()
            .map(attached_log)
            .unwrap_or_else(discarded_log)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("mqtrigger: cannot open the console's --log file: {e}");
                return ExitCode::FAILURE;
            }
        },
        Command::Console { state, .. } => match open_log(state) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!(
                    "mqtrigger: cannot open the log file in {}: {e}",
                    state.display()
                );
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    init_logging(cli.log_format, log_file);
    // `lambda-server` stands in for a function: on one thread, as the
    // lanes do (`invoke::lanes`), an answer and the next request wait for
    // no other worker's wake-up.
    let runtime = match &command {
        Command::LambdaServer { .. } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Runtime::new(),
    }
    .expect("a tokio runtime");
    match runtime.block_on(run(command, console_config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqtrigger: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// An attached console's log, appended to.
fn attached_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// The console owns the terminal: without --log, its log goes nowhere.
fn discarded_log() -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).open("/dev/null")
}

fn open_log(state: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::DirBuilderExt;
    // The state holds message bodies: only this user may read it (as `serve` has it).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state)?;
    mqtrigger::store::private_file(&state.join("mqtrigger.log"))
}

/// What is logged unless RUST_LOG says otherwise. The SDK's instance
/// metadata client warns in a multi-kilobyte Debug dump when there is no
/// instance metadata (any machine but EC2); mqtrigger says what it means
/// for a function in one line of its own (`invoke::lambda`).
const LOG_FILTER: &str = "info,lapin=off,aws=warn,aws_config::imds=error";

fn init_logging(format: LogFormat, file: Option<std::fs::File>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format, file) {
        // Colours only for a person at a terminal, not in a file.
        (LogFormat::Text, None) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
        (LogFormat::Json, None) => builder.json().with_writer(std::io::stderr).init(),
        (LogFormat::Text, Some(f)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        (LogFormat::Json, Some(f)) => builder.json().with_writer(std::sync::Mutex::new(f)).init(),
    }
}

/// `console_config` is the console's config, read before anything else.
async fn run(command: Command, console_config: Option<Config>) -> Result<()> {
    match command {
        Command::Serve {
            config,
            state,
            api,
            metrics,
            metrics_public,
            readonly,
            store,
        } => {
            let metrics = metrics.map(|addr| Metrics {
                addr,
                public: metrics_public,
            });
            serve(config, state, store, api, metrics, readonly).await
        }
        Command::Console {
            endpoint: Some(endpoint),
            ..
        } => {
            mqtrigger::console::needs_a_terminal()?;
            let remote = mqtrigger::api::remote::Remote::new(&endpoint).await?;
            mqtrigger::console::run(remote).await
        }
        Command::Console {
            state,
            store,
            api,
            readonly,
            ..
        } => {
            let config = console_config.expect("read in main");
            // An address the API may not listen on is said before the
            // terminal is asked for: it is a mistake in the command line.
            let api_listener = bind_api(&config, api).await?;
            mqtrigger::console::needs_a_terminal()?;
            let store = Store::choose(store.as_deref(), &config, &state)?;
            let control = Control::start(config, store).await?;
            if readonly {
                control.make_readonly();
            }
            let stop = CancellationToken::new();
            if let Some(listener) = api_listener {
                tokio::spawn(mqtrigger::api::serve(
                    control.clone(),
                    listener,
                    stop.clone(),
                ));
            }
            let result = mqtrigger::console::run(control.clone()).await;
            stop.cancel();
            control.shutdown().await;
            result
        }
        Command::Mappings {
            endpoint,
            output,
            command,
        } => mappings(&endpoint, output, command).await,
        Command::Instances { endpoint, output } => instances(&endpoint, output).await,
        Command::Publish {
            broker,
            queue,
            count,
            body,
            file,
            headers,
            properties,
            bytes_message,
        } => {
            let body = match (body, file) {
                (Some(b), _) => b.into_bytes(),
                (None, Some(path)) => std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                (None, None) => Vec::new(),
            };
            let message = Message {
                body,
                headers,
                properties,
                table: None,
            };
            publish::publish(&broker, &queue, &message, count, bytes_message).await?;
            eprintln!("published {count} message(s) to {queue}");
            Ok(())
        }
        Command::BenchSink {
            latency_log,
            sleep_ms,
            fail_on,
            timing_log,
        } => mqtrigger::bench::sink(
            &latency_log,
            timing_log.as_deref(),
            std::time::Duration::from_millis(sleep_ms),
            fail_on.as_deref(),
        ),
        Command::Bench {
            broker,
            messages,
            size,
            batch_size,
            window,
            function,
            endpoint_url,
            timing_log,
            concurrency,
            function_sleep_ms,
            rate,
            no_ceiling,
            idle_mappings,
            idle_seconds,
            output,
        } => {
            if let Some(m) = idle_mappings {
                let report = mqtrigger::bench::idle(&broker, m, idle_seconds).await?;
                match output {
                    Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                    Output::Table => print!("{report}"),
                }
                return Ok(());
            }
            let options = mqtrigger::bench::BenchOptions {
                broker,
                messages,
                size,
                batch_size,
                window_secs: window,
                function: match function {
                    BenchFunction::Lambda => mqtrigger::bench::FunctionKind::Lambda,
                    BenchFunction::Command => mqtrigger::bench::FunctionKind::Command,
                },
                endpoint: endpoint_url.map(|url| mqtrigger::bench::Endpoint { url, timing_log }),
                concurrency,
                function_sleep: std::time::Duration::from_millis(function_sleep_ms),
                rate,
                skip_ceiling: no_ceiling,
            };
            let report = mqtrigger::bench::run(&options).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Table => print!("{report}"),
            }
            Ok(())
        }
        Command::LambdaServer {
            listen,
            latency_log,
            timing_log,
            sleep_ms,
        } => {
            use mqtrigger::invoke::lambda_server::{LambdaServer, Reply, SpanHook};
            let delay = std::time::Duration::from_millis(sleep_ms);
            let on_span = timing_log.map(|log| -> std::sync::Arc<SpanHook> {
                let log = mqtrigger::bench::probe::SpanLog::start(log);
                std::sync::Arc::new(move |arrived, answered| log.record(arrived, answered))
            });
            let server = LambdaServer::start_timed(
                listen,
                move |name, payload| {
                    if let Some(log) = &latency_log {
                        let at = mqtrigger::bench::probe::now_ns();
                        let stamps = mqtrigger::bench::probe::stamps_in_event(&payload);
                        if let Err(e) = mqtrigger::bench::probe::log_latencies(log, &stamps, at) {
                            tracing::warn!("cannot write {}: {e}", log.display());
                        }
                    } else {
                        tracing::info!(function = name, bytes = payload.len(), "invoked");
                    }
                    let answer = Reply::Ok(bytes::Bytes::from_static(b"{}"));
                    if delay.is_zero() {
                        answer
                    } else {
                        Reply::Delay(delay, Box::new(answer))
                    }
                },
                on_span,
            )
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
            eprintln!(
                "Lambda Invoke API on {} (endpoint_url = \"{}\"); Ctrl-C stops it",
                server.addr, server.url
            );
            wait_for_signal().await
        }
    }
}

/// Binds the API's address (`--api`, else `[api] listen`) before anything
/// starts, so a bad address fails at once.
async fn bind_api(config: &Config, flag: Option<SocketAddr>) -> Result<Option<TcpListener>> {
    match flag.or(config.api.listen) {
        Some(addr) => Ok(Some(
            mqtrigger::api::bind(addr, &config.api.access_keys).await?,
        )),
        None => Ok(None),
    }
}

/// `--metrics` and whether `--metrics-public` lets it leave loopback.
struct Metrics {
    addr: SocketAddr,
    public: bool,
}

async fn serve(
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
fn listen_addr(text: &str) -> Result<SocketAddr, String> {
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

async fn mappings(endpoint: &str, output: Output, command: MappingsCommand) -> Result<()> {
    use mqtrigger::api::client::{self, Change, Request};
    let patterns = |p: Vec<String>, none: bool| match (p.is_empty(), none) {
        (_, true) => Some(Vec::new()),
        (true, false) => None,
        (false, false) => Some(p),
    };
    let request = match command {
        MappingsCommand::List {
            function_name,
            event_source_arn,
            max_items,
        } => Request::List {
            function_name,
            event_source_arn,
            max_items,
        },
        MappingsCommand::Get { uuid } => Request::Get(uuid),
        MappingsCommand::Create {
            function_name,
            event_source_arn,
            queue,
            secret,
            virtual_host,
            batch_size,
            batching_window,
            filter_patterns,
            disabled,
        } => Request::Create(Box::new(Change {
            function_name: Some(function_name),
            event_source_arn: Some(event_source_arn),
            queue: Some(queue),
            secret: Some(secret),
            virtual_host,
            batch_size,
            batching_window,
            filter_patterns: patterns(filter_patterns, false),
            enabled: Some(!disabled),
        })),
        MappingsCommand::Update {
            uuid,
            function_name,
            batch_size,
            batching_window,
            filter_patterns,
            no_filter,
            secret,
        } => Request::Update(
            uuid,
            Box::new(Change {
                function_name,
                batch_size,
                batching_window,
                filter_patterns: patterns(filter_patterns, no_filter),
                secret,
                ..Change::default()
            }),
        ),
        MappingsCommand::Delete { uuid } => Request::Delete(uuid),
        MappingsCommand::Enable { uuid } => Request::Enable(uuid),
        MappingsCommand::Disable { uuid } => Request::Disable(uuid),
    };
    let mut answer = client::run(endpoint, request).await?;
    if answer.get("EventSourceMappings").is_some() || answer.get("UUID").is_some() {
        // mqtrigger's own numbers beside Lambda's fields; an endpoint
        // that is Lambda itself has none.
        match mqtrigger::api::remote::Remote::new(endpoint)
            .await?
            .stats()
            .await
        {
            Ok(stats) => match answer.get_mut("EventSourceMappings") {
                Some(serde_json::Value::Array(all)) => client::add_counts(all, &stats),
                _ => client::add_counts(std::slice::from_mut(&mut answer), &stats),
            },
            Err(e) => eprintln!("(no counts: {e})"),
        }
    }
    let text = match (output, answer.get("EventSourceMappings")) {
        (Output::Json, _) => serde_json::to_string_pretty(&answer)? + "\n",
        (Output::Table, Some(all)) => {
            client::table(all.as_array().map(Vec::as_slice).unwrap_or_default())
        }
        (Output::Table, None) => client::table(std::slice::from_ref(&answer)),
    };
    print!("{text}");
    Ok(())
}

async fn instances(endpoint: &str, output: Output) -> Result<()> {
    let remote = mqtrigger::api::remote::Remote::new(endpoint).await?;
    let answer = remote.instances().await?;
    let text = match output {
        Output::Json => serde_json::to_string_pretty(&answer)? + "\n",
        Output::Table => mqtrigger::api::client::instances_table(&answer, chrono::Utc::now()),
    };
    print!("{text}");
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
