//! The `mqtrigger` command line.

mod cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use cli::logging::{LogFormat, attached_log, discarded_log, init_logging, open_log};
use cli::remote::{MappingsCommand, Output, instances, mappings};
use cli::serve::{Metrics, bind_api, listen_addr, serve, wait_for_signal};
use mqtrigger::config::Config;
use mqtrigger::engine::Control;
use mqtrigger::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
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

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum BenchFunction {
    Lambda,
    Command,
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
    /// A mapping's dead letters, chosen by text, reason and time: listed,
    /// replayed, republished, deleted or exported, through a running API.
    DeadLetters {
        /// The API's URL.
        #[arg(
            long,
            global = true,
            env = "MQTRIGGER_ENDPOINT",
            default_value = "http://127.0.0.1:9001"
        )]
        endpoint: String,
        #[command(subcommand)]
        command: cli::letters::LettersCommand,
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
    /// Send messages to a queue: made up here, or the records of a JSON Lines file (--from).
    Publish(cli::publish::PublishArgs),
    /// Take a paused or disabled mapping's messages off its queue into a
    /// file of Lambda records, without invoking its function (a poison
    /// flood): each line synced before its message is acked.
    #[command(after_help = cli::drain::AFTER_HELP)]
    Drain(cli::drain::DrainArgs),
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
        /// Write each batch's stage timestamps here (`batch stage ns` lines,
        /// read by scripts/compare/stages.py).
        #[arg(long)]
        stages: Option<PathBuf>,
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
            let _spans = mqtrigger::telemetry::start(&config.telemetry).await?;
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
        Command::DeadLetters { endpoint, command } => {
            cli::letters::dead_letters(&endpoint, command).await
        }
        Command::Publish(args) => cli::publish::publish(args).await,
        Command::Drain(args) => cli::drain::drain(args).await,
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
            stages,
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
                stages,
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
