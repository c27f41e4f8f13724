//! The add-mapping form (`n`): each field checked as Lambda checks
//! CreateEventSourceMapping, with the error beside the field.

use crate::config::Config;
use crate::mapping::{MappingSpec, SourceAccessConfiguration, SourceAccessType};
use crate::validation;
use ratatui_textarea::TextArea;
use std::sync::Arc;

/// What the form checks against and picks from: the config's brokers,
/// functions and secrets.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub config: Arc<Config>,
}

impl Choices {
    pub fn from_config(config: &Config) -> Choices {
        Choices {
            config: Arc::new(config.clone()),
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
        let config = &choices.config;
        let first = |names: Vec<&String>| names.first().map(|n| (*n).clone()).unwrap_or_default();
        let values = [
            first(config.brokers.iter().map(|b| &b.name).collect()),
            String::new(),
            first(config.functions.keys().collect()),
            "100".into(),
            String::new(),
            first(config.secrets.keys().collect()),
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

    /// The mapping the fields describe, each read as far as it can be; the
    /// rules of [`validation`] decide whether it is acceptable.
    fn candidate(&self) -> MappingSpec {
        let broker = self.value(BROKER);
        // A broker is picked by name; an ARN is taken as it is.
        let event_source_arn = self
            .choices
            .config
            .brokers
            .iter()
            .find(|b| b.name == broker)
            .map_or(broker.clone(), |b| b.arn.clone());
        let mut access = Vec::new();
        if !self.value(SECRET).is_empty() {
            access.push(SourceAccessConfiguration {
                kind: SourceAccessType::BasicAuth,
                uri: self.value(SECRET),
            });
        }
        if !self.value(VHOST).is_empty() {
            access.push(SourceAccessConfiguration {
                kind: SourceAccessType::VirtualHost,
                uri: self.value(VHOST),
            });
        }
        MappingSpec {
            function_name: self.value(FUNCTION),
            event_source_arn,
            queues: vec![self.value(QUEUE)],
            batch_size: validation::parse_batch_size(&self.value(BATCH)).ok(),
            maximum_batching_window_in_seconds: validation::parse_batching_window(
                &self.value(WINDOW),
            )
            .ok()
            .flatten(),
            enabled: Some(true),
            filter_criteria: super::app::filter_criteria_of_text(&self.value(FILTER))
                .ok()
                .flatten(),
            source_access_configurations: access,
            scaling_config: None,
        }
    }

    /// Checks every field with the rules the file and the API use; the
    /// errors show beside the fields.
    pub fn check(&mut self) {
        let spec = self.candidate();
        let config = &self.choices.config;
        let broker = validation::event_source_arn(&spec.event_source_arn, config);
        let engine = broker.as_ref().ok().map(|b| b.engine);
        let message =
            |checked: Result<(), validation::InvalidMapping>| checked.err().map(|e| e.message);
        self.errors = vec![
            message(broker.map(drop)),
            message(validation::queues(&spec.queues)),
            message(validation::function_name(&spec.function_name, config)),
            message(validation::parse_batch_size(&self.value(BATCH)).map(drop)),
            message(validation::parse_batching_window(&self.value(WINDOW)).map(drop)),
            message(validation::basic_auth(
                &spec.source_access_configurations,
                config,
            )),
            message(validation::virtual_host(
                &spec.source_access_configurations,
                engine,
            )),
            match super::app::filter_criteria_of_text(&self.value(FILTER)) {
                Err(not_json) => Some(not_json),
                Ok(_) => message(validation::filter_criteria(&spec)),
            },
        ];
    }

    /// The mapping to create, or the first field's error.
    pub fn spec(&self) -> Result<MappingSpec, String> {
        if let Some(e) = self.errors.iter().flatten().next() {
            return Err(e.clone());
        }
        let spec = self.candidate();
        validation::check_mapping(&spec, &self.choices.config).map_err(|e| e.message)?;
        Ok(spec)
    }

    /// The error of the field being edited, shown in full under the fields.
    pub fn focused_error(&self) -> Option<&str> {
        self.errors[self.focused].as_deref()
    }
}
