//! `mqtrigger drain`: a mapping's queue taken off into a file of Lambda
//! records, without invoking its function, for a poison flood (#29): the
//! queue is emptied at the broker's pace, and what it held can be looked
//! at, filtered and put back later (`mqtrigger publish --from`).
//!
//! The consumer is opened as the engine opens one (`wiring::Configured`,
//! with the config file the service runs), so each record is what the
//! function would have been given. A message is acked only once its line
//! is on disk: a drain killed at any moment loses nothing, and one killed
//! between a sync and its ack leaves those messages in the file and in the
//! queue both (at least once, as everything in mqtrigger).

use anyhow::{Context, Result, bail};
use clap::Args;
use mqtrigger::api::EventSourceMappingConfiguration;
use mqtrigger::api::remote::Remote;
use mqtrigger::config::Config;
use mqtrigger::engine::wiring::{Configured, Consumer, Wires, Wiring};
use mqtrigger::mapping::{Mapping, MappingSpec, State};
use mqtrigger::secrets::Secrets;
use mqtrigger::source::rabbitmq::LargeFrames;
use mqtrigger::source::{DeliveryTag, SeenBefore, Source, SourceError};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// What `mqtrigger drain --help` says after the options.
pub const AFTER_HELP: &str = "\
Each message becomes one line, {\"record\": RECORD}, RECORD being what the
function would have been given (aws:rmq or aws:mq). Lines are synced to disk
before their messages are acked, a group at a time, so a drain that is
killed loses nothing: what was not acked goes back to the queue. A kill
between a sync and its ack leaves those messages both in FILE and in the
queue (at least once): the next drain appends them again. A line cut short
by a kill is removed by the next drain (its message was never acked).

The mapping must be paused (mqtrigger mappings pause UUID) or disabled.
Put the messages back with: mqtrigger publish --from FILE --broker URL --queue Q";

#[derive(Args)]
pub struct DrainArgs {
    /// The mapping whose queue is drained (its UUID).
    #[arg(long)]
    mapping: uuid::Uuid,
    /// The file the records are appended to (JSON Lines).
    #[arg(long, value_name = "FILE.jsonl")]
    to: PathBuf,
    /// Take at most this many messages; without it, the drain ends when the
    /// queue has stayed empty for 2 s.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max: Option<u64>,
    /// The config file the service runs with: the brokers and secrets the
    /// consumer is opened with.
    #[arg(long, short, default_value = "mqtrigger.toml")]
    config: PathBuf,
    /// The running service's API, which says what the mapping reads and
    /// whether it is paused.
    #[arg(
        long,
        env = "MQTRIGGER_ENDPOINT",
        default_value = "http://127.0.0.1:9001"
    )]
    endpoint: String,
}

/// Unacked messages the broker may push: enough to keep a group coming
/// while the last one is synced, few enough to hand back quickly.
const PREFETCH: u32 = 100;
/// Lines written and synced at once, then acked together.
const GROUP: usize = 50;
/// A queue empty for this long is drained.
const IDLE: Duration = Duration::from_secs(2);
/// A group that waits this long for its next message is written as it is:
/// the queue is running dry, and what was taken should be acked.
const LULL: Duration = Duration::from_millis(20);

pub async fn drain(args: DrainArgs) -> Result<()> {
    let remote = Remote::new(&args.endpoint).await?;
    let uuid = args.mapping;
    let answer = remote
        .mapping(uuid)
        .await
        .with_context(|| format!("cannot read mapping {uuid} from {}", args.endpoint))?;
    let paused = answer.mqtrigger.as_ref().is_some_and(|m| m.paused);
    if !paused && answer.state != State::Disabled {
        bail!(
            "mapping {uuid} is consuming: pause it first (mqtrigger mappings pause {uuid}), or its consumer and the drain take turns"
        );
    }
    let config = Config::load(&args.config)?;
    let mapping = mapping_of(answer);
    let queue = mapping.spec.queue().to_owned();
    if config.broker(&mapping.spec.event_source_arn).is_none() {
        bail!(
            "mapping {uuid} reads broker {}, which {} does not name: give --config the file the service runs",
            mapping.spec.event_source_arn,
            args.config.display()
        );
    }
    let secrets = Secrets::new(&config);
    let wires = Wires {
        config: &config,
        secrets: &secrets,
    };
    let wiring = Configured::default();
    let mut out = Output::open(&args.to)?;
    let large_frames = LargeFrames::default();
    let prefetch = args
        .max
        .map_or(PREFETCH, |max| max.min(u64::from(PREFETCH)) as u32);
    let mut taken = Taken {
        drained: 0,
        max: args.max,
    };
    let mut stops = Stops::new()?;
    let end = loop {
        let consumer = Consumer {
            mapping: &mapping,
            prefetch,
            seen_before: SeenBefore::default(),
            large_frames: large_frames.clone(),
            in_order: false,
        };
        let had_large_frames = large_frames.needed();
        let mut source = wiring
            .connect(wires, consumer)
            .await
            .with_context(|| format!("cannot consume from queue {queue}"))?;
        let end = take(&mut *source, &mut out, &mut taken, &mut stops).await;
        // Whatever was not acked goes back to the queue now.
        source.close().await;
        match end {
            // A message's headers need the broker's frame size: the
            // source asked for it, and the next connection has it.
            Ok(End::Lost(_)) if !had_large_frames && large_frames.needed() => continue,
            other => break other,
        }
    };
    let summary = format!(
        "drained {} message(s) from {queue} to {}",
        taken.drained,
        args.to.display()
    );
    match end {
        Ok(End::Empty) => eprintln!("{summary} (the queue stayed empty for {IDLE:?})"),
        Ok(End::Max) => eprintln!("{summary} (--max reached)"),
        Ok(End::Interrupted) => {
            eprintln!("{summary}");
            bail!("interrupted: what was not written to the file is back in the queue");
        }
        Ok(End::Lost(e)) => {
            eprintln!("{summary}");
            bail!(
                "the consumer on {queue} ended: {e}; what was not written to the file is back in the queue: run the drain again"
            );
        }
        Err(e) => {
            eprintln!("{summary}");
            return Err(e);
        }
    }
    Ok(())
}

/// The mapping the API described, as the wiring opens a consumer for it.
fn mapping_of(c: EventSourceMappingConfiguration) -> Mapping {
    let spec = MappingSpec {
        function_name: c.function_arn.rsplit(':').next().unwrap_or_default().into(),
        event_source_arn: c.event_source_arn,
        queues: c.queues,
        batch_size: Some(c.batch_size),
        maximum_batching_window_in_seconds: c.maximum_batching_window_in_seconds,
        enabled: Some(c.state != State::Disabled),
        filter_criteria: c.filter_criteria,
        source_access_configurations: c.source_access_configurations,
        scaling_config: c.scaling_config,
        function_response_types: c.function_response_types,
        destination_config: c.destination_config,
        tags: None,
        metrics_config: c.metrics_config,
        kms_key_arn: None,
    };
    let mut mapping = Mapping::new(spec, c.function_arn);
    mapping.uuid = c.uuid;
    mapping
}

/// Why a consumer stopped taking messages.
enum End {
    /// The queue stayed empty for [`IDLE`].
    Empty,
    /// `--max` messages are in the file.
    Max,
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The broker or the connection ended the consumer.
    Lost(SourceError),
}

/// How many messages are in the file and acked, and how many may be.
struct Taken {
    drained: u64,
    max: Option<u64>,
}

/// SIGINT and SIGTERM, for as long as the drain runs: a group being
/// written is finished and acked before the drain stops.
struct Stops {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stops {
    fn new() -> Result<Stops> {
        Ok(Stops {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn any(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Takes messages into the file, a group at a time: written, synced, then
/// acked. A group not yet synced when the drain stops is not acked either.
async fn take(
    source: &mut dyn Source,
    out: &mut Output,
    taken: &mut Taken,
    stops: &mut Stops,
) -> Result<End> {
    let mut tags: Vec<DeliveryTag> = Vec::with_capacity(GROUP);
    let mut lines: Vec<u8> = Vec::new();
    loop {
        let total = taken.drained + tags.len() as u64;
        if taken.max.is_some_and(|max| total >= max) {
            settle(source, out, &mut tags, &mut lines, taken).await?;
            return Ok(End::Max);
        }
        let wait = if tags.is_empty() { IDLE } else { LULL };
        let next = tokio::select! {
            _ = stops.any() => return Ok(End::Interrupted),
            next = tokio::time::timeout(wait, source.next()) => next,
        };
        match next {
            Err(_) if tags.is_empty() => return Ok(End::Empty),
            Err(_) => settle(source, out, &mut tags, &mut lines, taken).await?,
            Ok(Err(e)) => return Ok(End::Lost(e)),
            Ok(Ok(delivery)) => {
                line(&delivery.record, &mut lines)?;
                tags.push(delivery.tag);
                if tags.len() >= GROUP {
                    settle(source, out, &mut tags, &mut lines, taken).await?;
                }
            }
        }
    }
}

/// Writes and syncs the group's lines, then acks its messages.
async fn settle(
    source: &mut dyn Source,
    out: &mut Output,
    tags: &mut Vec<DeliveryTag>,
    lines: &mut Vec<u8>,
    taken: &mut Taken,
) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    tokio::task::block_in_place(|| out.append(lines))?;
    source.ack(tags).await.map_err(|e| {
        anyhow::anyhow!(
            "{e}: those {} message(s) are in {} and, unacked, go back to the queue: a next drain writes them again",
            tags.len(),
            out.path.display()
        )
    })?;
    taken.drained += tags.len() as u64;
    tags.clear();
    lines.clear();
    Ok(())
}

/// One line of the file: `{"record": …}`, the record as the source
/// rendered it (JSON already, so it is copied, not parsed and written again).
fn line(record: &[u8], lines: &mut Vec<u8>) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        record: &'a serde_json::value::RawValue,
    }
    let raw: &serde_json::value::RawValue =
        serde_json::from_slice(record).context("a message's record is not JSON")?;
    if record.contains(&b'\n') {
        // A JSON Lines file has one line per value.
        let value: serde_json::Value = serde_json::from_slice(record)?;
        serde_json::to_writer(&mut *lines, &serde_json::json!({ "record": value }))?;
    } else {
        serde_json::to_writer(&mut *lines, &Line { record: raw })?;
    }
    lines.push(b'\n');
    Ok(())
}

/// The file the records go to, opened to append.
struct Output {
    file: std::fs::File,
    path: PathBuf,
}

impl Output {
    /// Opens (or makes) the file; a last line cut short by a kill is cut
    /// off, as its message was never acked and will be drained again.
    fn open(path: &Path) -> Result<Output> {
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        let whole = whole_lines(&file, len)?;
        if whole < len {
            file.set_len(whole)?;
            file.sync_data()?;
            eprintln!(
                "{}: removed a last line cut short ({} bytes; an earlier drain was stopped while writing it; its message was not acked)",
                path.display(),
                len - whole
            );
        }
        if !existed {
            super::publish::sync_dir(path)?;
        }
        Ok(Output {
            file,
            path: path.to_owned(),
        })
    }

    fn append(&mut self, lines: &[u8]) -> Result<()> {
        self.file
            .write_all(lines)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// How many bytes of the file are whole lines (up to its last newline).
fn whole_lines(file: &std::fs::File, len: u64) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_holds_the_record_as_it_was() {
        let mut lines = Vec::new();
        line(br#"{"data":"aGk=","redelivered":false}"#, &mut lines).unwrap();
        line(b"{\n\"data\": \"eA==\"}", &mut lines).unwrap();
        let text = String::from_utf8(lines).unwrap();
        let mut each = text.lines();
        assert_eq!(
            each.next(),
            Some(r#"{"record":{"data":"aGk=","redelivered":false}}"#)
        );
        assert_eq!(each.next(), Some(r#"{"record":{"data":"eA=="}}"#));
        assert_eq!(each.next(), None);
    }

    #[test]
    fn a_line_cut_short_is_not_counted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"{\"record\":{}}\n{\"rec").unwrap();
        let out = Output::open(&path).unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"record\":{}}\n");
        std::fs::write(&path, b"{\"rec").unwrap();
        drop(Output::open(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }
}
