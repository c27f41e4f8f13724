//! `mqtrigger publish`: messages onto a queue, made up on the command line,
//! or put back from a file of Lambda records (`--from`, what `mqtrigger
//! drain` and `dead-letters export` write).

use anyhow::{Context, Result, bail};
use clap::Args;
use mqtrigger::publish::{self, Message, Publisher};
use mqtrigger::source::original;
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PublishArgs {
    /// amqp://user:pass@host:port/vhost or stomp://user:pass@host:port
    #[arg(long)]
    broker: String,
    #[arg(long)]
    queue: String,
    #[arg(long, default_value_t = 1, conflicts_with = "from")]
    count: usize,
    #[arg(long, conflicts_with_all = ["file", "from"])]
    body: Option<String>,
    #[arg(long, conflicts_with = "from")]
    file: Option<PathBuf>,
    /// A message header, key=value (value may be int:5, bool:true, float:1.5).
    #[arg(long = "header", value_parser = publish::parse_pair, conflicts_with = "from")]
    headers: Vec<(String, String)>,
    /// A basic property, e.g. content_type=application/json, priority=5, expiration=60000.
    #[arg(long = "property", value_parser = publish::parse_pair, conflicts_with = "from")]
    properties: Vec<(String, String)>,
    /// STOMP only: send content-length, so ActiveMQ makes a BytesMessage.
    #[arg(long, conflicts_with = "from")]
    bytes_message: bool,
    /// Put back the records of a JSON Lines file (from `mqtrigger drain` or
    /// `mqtrigger dead-letters export`), resumably.
    ///
    /// Each line's `record` goes out as the message it was: its body, and
    /// its basicProperties (RabbitMQ) or properties (ActiveMQ), marked
    /// x-mqtrigger-republished. Each message is confirmed by the broker
    /// before the next is sent. FILE.jsonl.published keeps how many lines
    /// are done, so a run cut short, run again, goes on after the last
    /// confirmed line: a line may go twice (one confirmed as the run was
    /// killed, or the last 16 after a power loss), none is skipped. Delete
    /// FILE.jsonl.published to publish the file again from its first line.
    #[arg(long, value_name = "FILE.jsonl")]
    from: Option<PathBuf>,
}

pub async fn publish(args: PublishArgs) -> Result<()> {
    if let Some(from) = &args.from {
        return publish_from(from, &args.broker, &args.queue).await;
    }
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

/// How many confirmed lines may be noted in FILE.published before it is
/// synced to disk: a machine that loses power sends at most these again.
/// A killed process loses nothing of it, as every line is written at once.
const SYNC_EVERY: usize = 16;

/// Which broker a record is for, and so how it becomes a message again.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `aws:rmq`: the record's basicProperties.
    Rabbitmq,
    /// `aws:mq`: the record's JMS fields and properties.
    Activemq,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rabbitmq => "an aws:rmq record (RabbitMQ)",
            Kind::Activemq => "an aws:mq record (ActiveMQ)",
        }
    }
}

async fn publish_from(path: &Path, broker: &str, queue: &str) -> Result<()> {
    let kind = if broker.starts_with("stomp") {
        Kind::Activemq
    } else {
        Kind::Rabbitmq
    };
    // RabbitMQ refuses a user_id that is not the publisher's: from_rmq
    // keeps the record's only when it is this user.
    let user = broker
        .parse::<lapin::uri::AMQPUri>()
        .map(|uri| uri.authority.userinfo.username)
        .unwrap_or_default();
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut progress = Progress::open(path)?;
    let before = progress.done;
    let mut publisher = Publisher::connect(broker, queue, &Message::default(), false).await?;
    let mut published = 0;
    let mut lines = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        lines = i + 1;
        if i < before {
            continue;
        }
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if !line.trim().is_empty() {
            let at = || format!("{}:{lines}", path.display());
            let (message, bytes_message) = message_of(&line, kind, &user).with_context(at)?;
            publisher
                .send_confirmed(&message, bytes_message)
                .await
                .with_context(|| {
                    format!(
                        "{}: not published; {} line(s) published by this run; run it again to go on from this line",
                        at(),
                        published
                    )
                })?;
            published += 1;
        }
        progress.note(lines)?;
    }
    progress.sync()?;
    if lines < before {
        bail!(
            "{} says {before} line(s) of {} were published, but it has {lines}: is it another file? Delete {0} to publish this one from its first line",
            progress.path.display(),
            path.display()
        );
    }
    publisher.finish().await?;
    eprintln!(
        "published {published} message(s) from {} to {queue}",
        path.display()
    );
    if before > 0 {
        eprintln!(
            "(the first {before} line(s) were published by an earlier run, as {} says)",
            progress.path.display()
        );
    }
    Ok(())
}

/// One line of the file as the message its record was made from.
fn message_of(line: &str, kind: Kind, user: &str) -> Result<(Message, bool)> {
    let line: serde_json::Value =
        serde_json::from_str(line).context("the line is not JSON (a line cut short?)")?;
    let record = &line["record"];
    if !record.is_object() {
        bail!("the line has no \"record\" object");
    }
    if !record["data"].is_string() {
        bail!("the record has no \"data\" (the body, base64)");
    }
    let is = if record.get("basicProperties").is_some() {
        Kind::Rabbitmq
    } else {
        Kind::Activemq
    };
    if is != kind {
        bail!(
            "the record is {}, but --broker is {}: its properties would not carry over",
            is.name(),
            match kind {
                Kind::Rabbitmq => "a RabbitMQ broker",
                Kind::Activemq => "an ActiveMQ broker",
            }
        );
    }
    let body = mqtrigger::event::record_body(record);
    let bytes = serde_json::to_vec(record)?;
    Ok(match kind {
        Kind::Rabbitmq => (original::from_rmq(&bytes, None, &body, user), false),
        Kind::Activemq => {
            let now = chrono::Utc::now().timestamp_millis();
            original::from_mq(&bytes, &body, now)
        }
    })
}

/// FILE.published: how many lines of FILE are done (published, or blank).
/// The number is written in place, at a fixed width, after every line, so
/// the file always holds one whole number, whenever the process is killed.
struct Progress {
    file: std::fs::File,
    path: PathBuf,
    done: usize,
    unsynced: usize,
}

impl Progress {
    fn open(of: &Path) -> Result<Progress> {
        let mut name = of.as_os_str().to_owned();
        name.push(".published");
        let path = PathBuf::from(name);
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let done = match text.trim() {
            "" => 0,
            n => n.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{} should hold how many lines are published; it holds {text:?}: correct or delete it",
                    path.display()
                )
            })?,
        };
        if !existed {
            // The new file's name must outlive a power loss too.
            sync_dir(&path)?;
        }
        Ok(Progress {
            file,
            path,
            done,
            unsynced: 0,
        })
    }

    /// The first `lines` lines are done.
    fn note(&mut self, lines: usize) -> Result<()> {
        self.file
            .write_all_at(format!("{lines:>20}\n").as_bytes(), 0)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.done = lines;
        self.unsynced += 1;
        if self.unsynced >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .with_context(|| format!("cannot sync {}", self.path.display()))?;
        self.unsynced = 0;
        Ok(())
    }
}

/// Makes a new file's name in its directory durable.
pub fn sync_dir(file: &Path) -> Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead-letter export's line reads as a drain's: `deadLetter` is
    /// passed over, and the record gives the body and the properties.
    #[test]
    fn an_exported_letter_is_the_message_it_was() {
        let line = r#"{"record": {"basicProperties": {"messageId": "m-1", "contentType": "text/plain", "deliveryMode": 2, "headers": {"tries": 3}}, "redelivered": false, "data": "aGk="}, "deadLetter": {"id": 7, "reason": "function failed 6 times"}}"#;
        let (m, bytes) = message_of(line, Kind::Rabbitmq, "guest").unwrap();
        assert!(!bytes);
        assert_eq!(m.body, b"hi");
        let has = |list: &[(String, String)], k: &str, v: &str| {
            list.iter().any(|(a, b)| a == k && b == v)
        };
        assert!(has(&m.properties, "message_id", "m-1"));
        assert!(has(&m.properties, "delivery_mode", "2"));
        assert!(has(&m.headers, "tries", "int:3"));
        assert!(has(&m.headers, original::REPUBLISHED_HEADER, "true"));
    }

    #[test]
    fn a_line_that_is_not_a_record_for_this_broker_is_refused() {
        let mq = r#"{"record": {"messageID": "ID:1", "messageType": "jms/text-message", "data": "aGk="}}"#;
        let why = message_of(mq, Kind::Rabbitmq, "guest").unwrap_err();
        assert!(why.to_string().contains("aws:mq"), "{why}");
        let (m, _) = message_of(mq, Kind::Activemq, "").unwrap();
        assert_eq!(m.body, b"hi");
        for line in [
            r#"{"record": {"messageID": "ID:1"}}"#,
            r#"{"deadLetter": {}}"#,
            r#"{"rec"#,
        ] {
            assert!(message_of(line, Kind::Activemq, "").is_err(), "{line}");
        }
    }
}
