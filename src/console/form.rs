//! The add-mapping form (`n`): each field checked as Lambda checks
//! CreateEventSourceMapping, with the error beside the field.

use crate::config::{BrokerEngine, Config};
use crate::mapping::{
    MAX_BATCH_SIZE, MAX_BATCHING_WINDOW_SECS, MIN_BATCH_SIZE, MappingSpec,
    SourceAccessConfiguration, SourceAccessType,
};
use ratatui_textarea::TextArea;

/// What the config offers the form: brokers (name, ARN, engine), functions, secrets.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub brokers: Vec<(String, String, BrokerEngine)>,
    pub functions: Vec<String>,
    pub secrets: Vec<String>,
}

impl Choices {
    pub fn from_config(config: &Config) -> Choices {
        Choices {
            brokers: config
                .brokers
                .iter()
                .map(|b| (b.name.clone(), b.arn.clone(), b.engine))
                .collect(),
            functions: config.functions.keys().cloned().collect(),
            secrets: config.secrets.keys().cloned().collect(),
        }
    }
}

pub const LABELS: [&str; 8] = [
    "Broker",
    "Queue",
    "FunctionName",
    "BatchSize",
    "Window (s)",
    "BASIC_AUTH secret",
    "VIRTUAL_HOST",
    "Filter pattern",
];
const BROKER: usize = 0;
const QUEUE: usize = 1;
const FUNCTION: usize = 2;
const BATCH: usize = 3;
const WINDOW: usize = 4;
const SECRET: usize = 5;
const VHOST: usize = 6;
const FILTER: usize = 7;

pub struct MappingForm {
    pub fields: Vec<TextArea<'static>>,
    pub errors: Vec<Option<String>>,
    pub focused: usize,
    choices: Choices,
}

fn field(text: &str) -> TextArea<'static> {
    let mut input = TextArea::new(vec![text.to_owned()]);
    input.move_cursor(ratatui_textarea::CursorMove::End);
    input
}

impl MappingForm {
    pub fn new(choices: Choices) -> MappingForm {
        let first = |v: &[String]| v.first().cloned().unwrap_or_default();
        let broker = choices
            .brokers
            .first()
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let values = [
            broker,
            String::new(),
            first(&choices.functions),
            "100".into(),
            String::new(),
            first(&choices.secrets),
            "/".into(),
            String::new(),
        ];
        let mut form = MappingForm {
            fields: values.iter().map(|v| field(v)).collect(),
            errors: vec![None; LABELS.len()],
            focused: QUEUE,
            choices,
        };
        form.check();
        form
    }

    pub fn value(&self, i: usize) -> String {
        self.fields[i].lines().join("").trim().to_owned()
    }

    pub fn move_focus(&mut self, forward: bool) {
        let n = self.fields.len();
        self.focused = if forward {
            (self.focused + 1) % n
        } else {
            (self.focused + n - 1) % n
        };
    }

    pub fn input(&mut self, key: crossterm::event::KeyEvent) {
        self.fields[self.focused].input(key);
        self.check();
    }

    /// Checks every field; the errors show beside them.
    pub fn check(&mut self) {
        let broker = self
            .choices
            .brokers
            .iter()
            .find(|b| b.0 == self.value(BROKER))
            .cloned();
        let names = |v: &[String]| v.join(", ");
        let brokers: Vec<String> = self.choices.brokers.iter().map(|b| b.0.clone()).collect();
        let number = |i: usize| self.value(i).parse::<u32>().ok();
        self.errors = vec![
            broker
                .is_none()
                .then(|| format!("one of: {}", names(&brokers))),
            match self.value(QUEUE).len() {
                0 => Some("required".into()),
                n if n > 1000 => Some("at most 1000 characters".into()),
                _ => None,
            },
            (!self.choices.functions.contains(&self.value(FUNCTION)))
                .then(|| format!("one of: {}", names(&self.choices.functions))),
            (!number(BATCH).is_some_and(|n| (MIN_BATCH_SIZE..=MAX_BATCH_SIZE).contains(&n)))
                .then(|| format!("{MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}")),
            (!self.value(WINDOW).is_empty()
                && number(WINDOW).is_none_or(|n| n > MAX_BATCHING_WINDOW_SECS))
            .then(|| format!("whole seconds, 0 to {MAX_BATCHING_WINDOW_SECS}; empty for 0.5 s")),
            (!self.choices.secrets.contains(&self.value(SECRET)))
                .then(|| "a secret ARN of [secrets]".into()),
            match broker.map(|b| b.2) {
                Some(BrokerEngine::Activemq) if !self.value(VHOST).is_empty() => {
                    Some("RabbitMQ only: leave empty for ActiveMQ".into())
                }
                _ => None,
            },
            super::app::criteria_from_text(&self.value(FILTER))
                .err()
                .map(|e| {
                    e.trim_start_matches(
                        "InvalidParameterValueException: Invalid filter pattern definition: ",
                    )
                    .to_owned()
                }),
        ];
    }

    /// The mapping to create, when every field is right.
    pub fn spec(&self) -> Option<MappingSpec> {
        if self.errors.iter().any(Option::is_some) {
            return None;
        }
        let (_, arn, _) = self
            .choices
            .brokers
            .iter()
            .find(|b| b.0 == self.value(BROKER))?;
        let mut access = vec![SourceAccessConfiguration {
            kind: SourceAccessType::BasicAuth,
            uri: self.value(SECRET),
        }];
        if !self.value(VHOST).is_empty() {
            access.push(SourceAccessConfiguration {
                kind: SourceAccessType::VirtualHost,
                uri: self.value(VHOST),
            });
        }
        let spec = MappingSpec {
            function_name: self.value(FUNCTION),
            event_source_arn: arn.clone(),
            queues: vec![self.value(QUEUE)],
            batch_size: self.value(BATCH).parse().ok(),
            maximum_batching_window_in_seconds: self.value(WINDOW).parse().ok(),
            enabled: Some(true),
            filter_criteria: super::app::criteria_from_text(&self.value(FILTER))
                .ok()
                .flatten(),
            source_access_configurations: access,
            scaling_config: None,
        };
        spec.validate().ok().map(|()| spec)
    }
}
