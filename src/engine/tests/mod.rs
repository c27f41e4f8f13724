//! The engine on an in-memory broker, with tokio's paused clock: batching,
//! retries, dead letters, settling and stopping, with no broker running.
//! Every test builds a [`Harness`]: one mapping of a function written in
//! Rust ([`Function`]) to a [`MemoryBroker`] queue.

mod batching;
mod bulk;
mod changes;
mod destinations;
mod history;
mod item_failures;
mod pausing;
mod retries;
mod settling;
mod stopping;

use crate::config::Config;
use crate::engine::wiring::{Consumer, Wires, Wiring};
use crate::engine::{Control, MappingStats};
use crate::event::bodies;
use crate::invoke::{InvokeError, Invoker};
use crate::mapping::Mapping;
use crate::source::memory::MemoryBroker;
use crate::source::{Source, SourceError};
use crate::store::Store;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

pub const BROKER_ARN: &str =
    "arn:aws:mq:us-east-1:000000000000:broker:memory:b-00000000-0000-0000-0000-00000000000a";
pub const SECRET: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:memory";

/// One invocation as the function saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Since the harness started (paused time: exact).
    pub at: Duration,
    pub bodies: Vec<String>,
    /// The `redelivered` flag of each record.
    pub redelivered: Vec<bool>,
}

type Behaviour = dyn Fn(&Call) -> Result<(), InvokeError> + Send + Sync;
/// What a successful call answers (`null` unless the test says).
type Answer = dyn Fn(&Call) -> String + Send + Sync;

/// A function that takes `duration` per batch and answers what `behaviour` says.
pub struct Function {
    pub duration: Duration,
    behaviour: Box<Behaviour>,
    answer: Box<Answer>,
    calls: Mutex<Vec<Call>>,
    running: Mutex<usize>,
    most_at_once: Mutex<usize>,
    epoch: Instant,
}

impl Function {
    pub fn new(
        duration: Duration,
        behaviour: impl Fn(&Call) -> Result<(), InvokeError> + Send + Sync + 'static,
    ) -> Arc<Function> {
        Arc::new(Function {
            duration,
            behaviour: Box::new(behaviour),
            answer: Box::new(|_| "null".into()),
            calls: Mutex::default(),
            running: Mutex::default(),
            most_at_once: Mutex::default(),
            epoch: Instant::now(),
        })
    }

    /// Succeeds at once, answering what `answer` makes of the call (a
    /// function that reports batch item failures).
    pub fn answering(answer: impl Fn(&Call) -> String + Send + Sync + 'static) -> Arc<Function> {
        Arc::new(Function {
            duration: Duration::ZERO,
            behaviour: Box::new(|_| Ok(())),
            answer: Box::new(answer),
            calls: Mutex::default(),
            running: Mutex::default(),
            most_at_once: Mutex::default(),
            epoch: Instant::now(),
        })
    }

    /// Succeeds at once.
    pub fn ok() -> Arc<Function> {
        Self::new(Duration::ZERO, |_| Ok(()))
    }

    /// Fails every batch that holds a body for which `fails` is true.
    pub fn failing_on(fails: impl Fn(&str) -> bool + Send + Sync + 'static) -> Arc<Function> {
        Self::new(Duration::ZERO, move |call| {
            if call.bodies.iter().any(|b| fails(b)) {
                Err(function_error())
            } else {
                Ok(())
            }
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The most batches it had at the same time.
    pub fn most_at_once(&self) -> usize {
        *self.most_at_once.lock().unwrap()
    }
}

pub fn function_error() -> InvokeError {
    InvokeError::Function {
        error_type: "Unhandled".into(),
        payload: r#"{"errorMessage":"boom"}"#.into(),
    }
}

impl Invoker for Function {
    fn invoke(&self, event: Bytes) -> BoxFuture<'_, Result<Bytes, InvokeError>> {
        Box::pin(async move {
            let json: serde_json::Value = serde_json::from_slice(&event).expect("event JSON");
            let call = Call {
                at: self.epoch.elapsed(),
                bodies: bodies(&event)
                    .into_iter()
                    .map(|b| String::from_utf8(b).unwrap())
                    .collect(),
                redelivered: json["messages"]
                    .as_array()
                    .expect("an aws:mq event")
                    .iter()
                    .map(|m| m["redelivered"].as_bool().unwrap())
                    .collect(),
            };
            self.calls.lock().unwrap().push(call.clone());
            {
                let mut running = self.running.lock().unwrap();
                *running += 1;
                let mut most = self.most_at_once.lock().unwrap();
                *most = (*most).max(*running);
            }
            tokio::time::sleep(self.duration).await;
            *self.running.lock().unwrap() -= 1;
            (self.behaviour)(&call).map(|()| Bytes::from((self.answer)(&call)))
        })
    }

    fn describe(&self) -> String {
        "a test function".into()
    }
}

/// The memory broker and the test's function, for every mapping.
pub struct MemoryWiring {
    broker: MemoryBroker,
    function: Arc<dyn Invoker>,
    /// What the next invoker request answers instead of the function.
    invoker_error: Mutex<Option<InvokeError>>,
    /// What DestinationConfig destinations were given: (ARN, record).
    pub destinations: Mutex<Vec<(String, Bytes)>>,
    /// Why the destinations refuse, while they do.
    pub refuse_destinations: Mutex<Option<String>>,
}

impl Wiring for MemoryWiring {
    fn on_failure<'a>(
        &'a self,
        _wires: Wires<'a>,
        _mapping: &'a Mapping,
        destination: &'a crate::mapping::Destination,
        record: Bytes,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if let Some(why) = self.refuse_destinations.lock().unwrap().clone() {
                return Err(why);
            }
            let arn = destination.arn().to_owned();
            self.destinations.lock().unwrap().push((arn, record));
            Ok(())
        })
    }

    fn connect<'a>(
        &'a self,
        _wires: Wires<'a>,
        consumer: Consumer<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Source>, SourceError>> {
        Box::pin(async move {
            let source = self.broker.connect(consumer.prefetch)?;
            Ok(Box::new(source) as Box<dyn Source>)
        })
    }

    fn backlog<'a>(
        &'a self,
        _wires: Wires<'a>,
        _mapping: &'a Mapping,
    ) -> BoxFuture<'a, crate::source::backlog::Backlog> {
        let ready = self.broker.ready() as u64;
        Box::pin(async move { crate::source::backlog::Backlog::Messages(ready) })
    }

    fn invoker<'a>(
        &'a self,
        _wires: Wires<'a>,
        _mapping: &'a Mapping,
    ) -> BoxFuture<'a, Result<Arc<dyn Invoker>, InvokeError>> {
        Box::pin(async move {
            if let Some(e) = self.invoker_error.lock().unwrap().take() {
                return Err(e);
            }
            Ok(self.function.clone())
        })
    }
}

/// What a test changes from the defaults.
#[derive(Default)]
pub struct Setup {
    /// Extra lines of the `[[mappings]]` table (`BatchSize = 10`).
    pub mapping: &'static str,
    /// Extra lines of `[engine]`; retries default to 1 s, 2 s, … here too.
    pub engine: &'static str,
    pub invoker_error: Option<InvokeError>,
    /// Messages published before the engine starts.
    pub bodies: Vec<String>,
}

pub struct Harness {
    pub control: Control,
    config: Config,
    pub wiring: Arc<MemoryWiring>,
    pub broker: MemoryBroker,
    pub function: Arc<Function>,
    pub mapping: Uuid,
    pub epoch: Instant,
    _state: tempfile::TempDir,
}

impl Harness {
    pub async fn start(function: Arc<Function>, setup: Setup) -> Harness {
        Self::start_with(function.clone(), function, setup).await
    }

    /// With `invoker` as the mapping's function; `function` is what the
    /// test looks at (the invoker may wrap it).
    pub async fn start_with(
        function: Arc<Function>,
        invoker: Arc<dyn Invoker>,
        setup: Setup,
    ) -> Harness {
        let state = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[[brokers]]
name = "memory"
engine = "activemq"
arn = "{BROKER_ARN}"
endpoints = ["stomp://127.0.0.1:1"]

[secrets]
"{SECRET}" = {{ username = "u", password = "p" }}

[functions.f]
command = ["true"]

[functions.sink]
command = ["true"]

[engine]
{engine}

[[mappings]]
FunctionName = "f"
EventSourceArn = "{BROKER_ARN}"
Queues = ["q"]
SourceAccessConfigurations = [ {{ Type = "BASIC_AUTH", URI = "{SECRET}" }} ]
{mapping}
"#,
            engine = setup.engine,
            mapping = setup.mapping,
        );
        let path = state.path().join("mqtrigger.toml");
        let config = Config::parse(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let broker = MemoryBroker::new();
        for body in &setup.bodies {
            broker.publish(body.clone());
        }
        let wiring = Arc::new(MemoryWiring {
            broker: broker.clone(),
            function: invoker,
            invoker_error: Mutex::new(setup.invoker_error),
            destinations: Mutex::default(),
            refuse_destinations: Mutex::default(),
        });
        let control = engine(&state, &config, &wiring).await;
        let mapping = control.list().unwrap()[0].uuid;
        Harness {
            control,
            config,
            wiring,
            broker,
            function,
            mapping,
            epoch: Instant::now(),
            _state: state,
        }
    }

    /// Stops the engine and starts a new one on the same state, config,
    /// broker and function, as a restarted `serve` would.
    pub async fn restarted(self) -> Harness {
        let old = self.control;
        old.shutdown().await;
        // The old engine lets go of the state directory.
        drop(old);
        Harness {
            control: engine(&self._state, &self.config, &self.wiring).await,
            ..self
        }
    }

    pub fn stats(&self) -> MappingStats {
        self.control.stats(self.mapping)
    }

    pub fn mapping(&self) -> Mapping {
        self.control.get(self.mapping).unwrap()
    }

    pub fn publish(&self, bodies: impl IntoIterator<Item = impl Into<String>>) {
        for b in bodies {
            self.broker.publish(b.into());
        }
    }

    /// Waits (in paused time: instantly) until `done` holds; fails the test
    /// with `what` if an hour passes first.
    pub async fn until(&self, what: &str, done: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(3600);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "an hour passed and not: {what}; stats {:?}",
                self.stats()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Since the harness started.
    pub fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }
}

/// An engine on the harness's state directory, config and wiring.
async fn engine(state: &tempfile::TempDir, config: &Config, wiring: &Arc<MemoryWiring>) -> Control {
    let store = Store::open(&state.path().join("state")).unwrap();
    Control::start_wired(config.clone(), store, wiring.clone())
        .await
        .unwrap()
}

/// `n` bodies named `m1` … `mn` (as the broker names their ids too).
pub fn numbered(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("m{i}")).collect()
}
