//! The add-mapping form (`n`): each field checked as Lambda checks
//! CreateEventSourceMapping, with the error beside the field.

use super::Reaction;
use crate::console::action::{Action, Effect};
use crate::console::text::filter_criteria_of_text;
use crate::console::view::Choices;
use crate::console::widgets::{centred, panel};
use crate::mapping::{MappingSpec, SourceAccessConfiguration, SourceAccessType};
use crate::validation;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui_textarea::TextArea;

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

    pub fn on(&mut self, action: Action) -> Reaction {
        match action {
            Action::PromptKey(key) => self.input(key),
            Action::NextField => self.move_focus(true),
            Action::PrevField => self.move_focus(false),
            Action::Confirm => {
                if let Ok(spec) = self.spec() {
                    return Reaction::Run(Effect::Create(Box::new(spec)));
                }
            }
            _ => {}
        }
        Reaction::Stay
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
            filter_criteria: filter_criteria_of_text(&self.value(FILTER)).ok().flatten(),
            source_access_configurations: access,
            scaling_config: None,
            ..Default::default()
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
            match filter_criteria_of_text(&self.value(FILTER)) {
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

/// The form over the screen: each field, its error beside it, and the
/// focused field's error in full below.
pub fn draw(frame: &mut Frame, form: &MappingForm) {
    // Beside a field there is room for a short sentence only.
    const FULL_ERROR_ROWS: u16 = 3;
    let area = centred(
        frame.area(),
        100,
        LABELS.len() as u16 * 2 + 2 + FULL_ERROR_ROWS,
    );
    frame.render_widget(Clear, area);
    let block = panel("New mapping", true);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [fields, full_error] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(FULL_ERROR_ROWS)]).areas(inner);
    if let Some(e) = form.focused_error() {
        frame.render_widget(
            Paragraph::new(e)
                .style(Style::new().fg(Color::Red))
                .wrap(Wrap { trim: true }),
            full_error,
        );
    }
    let rows = Layout::vertical(vec![Constraint::Length(2); LABELS.len()]).split(fields);
    for (i, label) in LABELS.iter().enumerate() {
        let [name, value, error] = Layout::horizontal([
            Constraint::Length(19),
            Constraint::Length(40),
            Constraint::Fill(1),
        ])
        .areas(rows[i]);
        let style = if i == form.focused {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        frame.render_widget(Span::styled(format!("{label:>17}: "), style), name);
        frame.render_widget(&form.fields[i], value);
        if let Some(e) = &form.errors[i] {
            frame.render_widget(
                Paragraph::new(e.as_str())
                    .style(Style::new().fg(Color::Red))
                    .wrap(Wrap { trim: true }),
                error,
            );
        }
    }
}
