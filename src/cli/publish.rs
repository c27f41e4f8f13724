//! `mqtrigger publish`: messages onto a queue, made up on the command line.

use anyhow::{Context, Result};
use clap::Args;
use mqtrigger::publish::{self, Message};
use std::path::PathBuf;

#[derive(Args)]
pub struct PublishArgs {
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
}

pub async fn publish(args: PublishArgs) -> Result<()> {
    let body = match (args.body, args.file) {
        (Some(b), _) => b.into_bytes(),
        (None, Some(path)) => {
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, None) => Vec::new(),
    };
    let message = Message {
        body,
        headers: args.headers,
        properties: args.properties,
        table: None,
    };
    let (queue, count) = (&args.queue, args.count);
    publish::publish(&args.broker, queue, &message, count, args.bytes_message).await?;
    eprintln!("published {count} message(s) to {queue}");
    Ok(())
}
