//! ActiveMQ for the tests: where its STOMP listeners are, and a plain STOMP
//! client on the project's own codec that sends with receipts and takes
//! the messages a test is after.

use super::unique;
use std::time::Duration;

pub fn stomp_endpoint() -> String {
    std::env::var("MQTRIGGER_TEST_STOMP").unwrap_or_else(|_| "stomp://127.0.0.1:61613".into())
}

/// The test broker with the admin's login, as `mqtrigger publish` takes it.
pub fn stomp_url() -> String {
    stomp_endpoint().replace("stomp://", "stomp://admin:admin@")
}

/// The test CA that signed the stomp+ssl listener's certificate (for "localhost").
pub fn stomp_ca() -> String {
    std::env::var("MQTRIGGER_TEST_STOMP_CA")
        .unwrap_or_else(|_| "/etc/activemq/instances-available/mqtrigger/tls/ca.pem".into())
}

/// A plain STOMP client for the tests, on the project's codec.
pub struct Stomp {
    framed: mqtrigger::source::stomp_link::Conn,
    receipts: u32,
}

impl Stomp {
    pub async fn connect(login: &str, passcode: &str) -> Stomp {
        use mqtrigger::config::Secret;
        use mqtrigger::source::stomp_link::open;
        let secret = Secret {
            username: login.to_owned(),
            password: passcode.to_owned(),
        };
        let opened = open(&stomp_endpoint(), &secret, None, "for the tests", None)
            .await
            .expect("ActiveMQ must run (scripts/brokers up) and let the tests' user in");
        Stomp {
            framed: opened.framed,
            receipts: 0,
        }
    }

    /// The next frame, or None after `wait` of silence.
    pub async fn frame_within(
        &mut self,
        wait: Duration,
    ) -> Option<mqtrigger::source::stomp::Frame> {
        use futures::StreamExt;
        use mqtrigger::source::stomp::Inbound;
        loop {
            match tokio::time::timeout(wait, self.framed.next()).await {
                Ok(Some(Ok(Inbound::Frame(f)))) => return Some(f),
                Ok(Some(Ok(Inbound::HeartBeat))) => continue,
                Ok(other) => panic!("STOMP connection ended: {other:?}"),
                Err(_) => return None,
            }
        }
    }

    pub async fn frame(&mut self) -> Option<mqtrigger::source::stomp::Frame> {
        self.frame_within(Duration::from_secs(30)).await
    }

    /// Sends a message and waits for the broker's receipt.
    pub async fn send(
        &mut self,
        queue: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        bytes_message: bool,
    ) {
        use futures::SinkExt;
        use mqtrigger::source::stomp::Frame;
        self.receipts += 1;
        let receipt = format!("r{}", self.receipts);
        let mut frame = Frame::new("SEND").header("destination", &format!("/queue/{queue}"));
        for (k, v) in headers {
            frame = frame.header(k, v);
        }
        if bytes_message {
            frame = frame.header("content-length", &body.len().to_string());
        }
        frame = frame.header("receipt", &receipt).body(body.to_vec());
        self.framed.send(frame).await.unwrap();
        let answer = self.frame().await.unwrap();
        assert_eq!(
            answer.get("receipt-id"),
            Some(receipt.as_str()),
            "{answer:?}"
        );
    }

    /// Takes the messages of `queue` for which `mine` holds (acking them) until
    /// `wait` passes without one; others are left for their owners.
    pub async fn take(
        &mut self,
        queue: &str,
        wait: Duration,
        mine: impl Fn(&mqtrigger::source::stomp::Frame) -> bool,
    ) -> Vec<mqtrigger::source::stomp::Frame> {
        use futures::SinkExt;
        use mqtrigger::source::stomp::Frame;
        let id = unique("sub");
        let subscribe = Frame::new("SUBSCRIBE")
            .header("id", &id)
            .header("destination", &format!("/queue/{queue}"))
            .header("ack", "client-individual");
        self.framed.send(subscribe).await.unwrap();
        let mut taken = Vec::new();
        while let Some(f) = self.frame_within(wait).await {
            if f.command() != "MESSAGE" {
                continue;
            }
            if mine(&f) {
                let ack = Frame::new("ACK").header("id", f.get("ack").unwrap());
                self.framed.send(ack).await.unwrap();
                taken.push(f);
            }
        }
        self.framed
            .send(Frame::new("UNSUBSCRIBE").header("id", &id))
            .await
            .unwrap();
        taken
    }
}
