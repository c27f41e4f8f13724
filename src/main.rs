//! The `mqtrigger` command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use mqtrigger::config::Config;
use mqtrigger::engine::Control;
use mqtrigger::publish::{self, Message};
use mqtrigger::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Subcommand)]
enum Command {
    /// The operations console: mappings, live batches, dead letters; enable,
    /// disable and resize from the keyboard. Logs go to STATE/mqtrigger.log.
    Console {
        #[arg(long, short, default_value = "mqtrigger.toml")]
        config: PathBuf,
        #[arg(long, default_value = ".state")]
        state: PathBuf,
    },
    /// Run every enabled mapping headless until SIGINT or SIGTERM.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Where mappings and the journal are kept.
        #[arg(long, default_value = ".state")]
        state: PathBuf,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Console {
        config: "mqtrigger.toml".into(),
        state: ".state".into(),
    });
    // The console owns the terminal: its logs go to a file in the state directory.
    let log_file = match &command {
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
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqtrigger: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_log(state: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(state)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("mqtrigger.log"))
}

fn init_logging(format: LogFormat, file: Option<std::fs::File>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=off,aws=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format, file) {
        (LogFormat::Text, None) => builder.with_writer(std::io::stderr).init(),
        (LogFormat::Json, None) => builder.json().with_writer(std::io::stderr).init(),
        (LogFormat::Text, Some(f)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        (LogFormat::Json, Some(f)) => builder.json().with_writer(std::sync::Mutex::new(f)).init(),
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve { config, state } => serve(config, state).await,
        Command::Console { config, state } => {
            let config = Config::load(&config)?;
            let store = Store::open(&state)?;
            let control = Control::start(config, store).await?;
            let result = mqtrigger::console::run(control.clone()).await;
            control.shutdown().await;
            result
        }
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
            };
            if broker.starts_with("stomp://") {
                publish::publish_stomp(&broker, &queue, &message, count, bytes_message).await?;
            } else if broker.starts_with("amqp://") || broker.starts_with("amqps://") {
                publish::publish_amqp(&broker, &queue, &message, count).await?;
            } else {
                bail!(
                    "--broker `{broker}`: give amqp://user:pass@host:port/vhost or stomp://user:pass@host:port"
                );
            }
            eprintln!("published {count} message(s) to {queue}");
            Ok(())
        }
        Command::LambdaServer { listen } => {
            use mqtrigger::invoke::lambda_server::{LambdaServer, Reply};
            let server = LambdaServer::start_on(listen, |name, payload| {
                tracing::info!(function = name, bytes = payload.len(), "invoked");
                Reply::Ok(bytes::Bytes::from_static(b"{}"))
            })
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

async fn serve(config_path: PathBuf, state: PathBuf) -> Result<()> {
    let config = Config::load(&config_path)?;
    let store = Store::open(&state)?;
    let control = Control::start(config, store).await?;
    let mappings = control.list()?;
    tracing::info!(mappings = mappings.len(), state = %state.display(), "serving");
    for m in &mappings {
        tracing::info!(uuid = %m.uuid, function = %m.spec.function_name, queue = m.spec.queue(), state = %m.state, "mapping");
    }
    wait_for_signal().await?;
    tracing::info!("stopping: finishing invocations under way, returning the rest to the brokers");
    control.shutdown().await;
    tracing::info!("stopped");
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
