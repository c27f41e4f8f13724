//! The console's state, and the one place it changes: [`App::update`].

use super::action::{Action, Effect};
use crate::engine::EngineEvent;
use crate::mapping::{MAX_BATCH_SIZE, MIN_BATCH_SIZE, Mapping};
use crate::store::DeadLetter;
use chrono::{DateTime, Utc};
use ratatui_textarea::TextArea;
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// Recent batches kept per mapping.
const BATCHES_KEPT: usize = 50;
/// Function errors kept per mapping.
const ERRORS_KEPT: usize = 5;
/// Recent batches per mapping whose whole event is kept for the inspector.
const EVENTS_KEPT: usize = 5;
/// Seconds of message rate the sparkline shows.
const RATE_HISTORY: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Mappings,
    Batches,
    DeadLetters,
}

pub enum Mode {
    Normal,
    Confirm(Effect),
    BatchPrompt {
        input: Box<TextArea<'static>>,
        error: Option<String>,
    },
    Help,
    /// The dead letter at this index of the selected mapping's list.
    Inspect(usize),
    /// The batch at this index of the selected mapping's batches: its whole event.
    InspectBatch(usize),
    /// `f`: the FilterCriteria editor, with the error of the text so far.
    FilterEditor {
        input: Box<TextArea<'static>>,
        error: Option<String>,
    },
    /// `n`: the add-mapping form.
    Form(Box<super::form::MappingForm>),
    /// `/`: the mappings table shows only rows containing the text.
    Filter {
        input: Box<TextArea<'static>>,
    },
    /// `:`: a command line (`enable`, `disable`, `batch 50`, `replay`, …).
    Command {
        input: Box<TextArea<'static>>,
        error: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Queue,
    State,
    Function,
    DeadLetters,
}

impl SortBy {
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Queue => "queue",
            SortBy::State => "state",
            SortBy::Function => "function",
            SortBy::DeadLetters => "dead letters",
        }
    }

    fn next(self) -> SortBy {
        match self {
            SortBy::Queue => SortBy::State,
            SortBy::State => SortBy::Function,
            SortBy::Function => SortBy::DeadLetters,
            SortBy::DeadLetters => SortBy::Queue,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    InFlight,
    Ok,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct BatchView {
    pub started: DateTime<Utc>,
    pub messages: usize,
    pub bytes: usize,
    pub attempt: u32,
    pub outcome: Outcome,
    pub latency_ms: Option<u64>,
    /// The event the function saw; kept for the newest batches only.
    pub event: Option<bytes::Bytes>,
}

/// Counted since the console started.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub succeeded: u64,
    pub failed_batches: u64,
    pub dead_lettered: u64,
    /// Messages the mapping's filters kept from the function.
    pub filtered: u64,
    pub in_flight: usize,
    /// Messages acked per second, oldest first.
    pub rate: VecDeque<u64>,
    this_second: u64,
    /// Messages acked after 0, 1, … 5 redeliveries.
    pub by_redeliveries: [u64; 6],
    /// The newest function errors, newest first.
    pub errors: VecDeque<String>,
}

pub struct App {
    pub mappings: Vec<Mapping>,
    pub selected: usize,
    pub focus: Focus,
    pub mode: Mode,
    pub stats: HashMap<Uuid, Stats>,
    pub batches: HashMap<Uuid, VecDeque<BatchView>>,
    pub dead_letters: Vec<DeadLetter>,
    pub dead_letter_selected: usize,
    pub batch_selected: usize,
    /// Lines scrolled in the inspector.
    pub scroll: u16,
    pub toast: Option<String>,
    pub filter: String,
    pub sort: SortBy,
    /// What the add-mapping form may pick from.
    pub choices: super::form::Choices,
    /// When each mapping last changed, so the table can mark fresh changes.
    pub changed_at: HashMap<Uuid, DateTime<Utc>>,
    /// The time rendering measures ages against (set on each tick, so drawing stays pure).
    pub now: DateTime<Utc>,
    pub quit: bool,
}

impl Default for App {
    fn default() -> Self {
        App {
            mappings: Vec::new(),
            selected: 0,
            focus: Focus::Mappings,
            mode: Mode::Normal,
            stats: HashMap::new(),
            batches: HashMap::new(),
            dead_letters: Vec::new(),
            dead_letter_selected: 0,
            batch_selected: 0,
            scroll: 0,
            toast: None,
            filter: String::new(),
            sort: SortBy::default(),
            choices: Default::default(),
            changed_at: HashMap::new(),
            now: Utc::now(),
            quit: false,
        }
    }
}

impl App {
    /// The mappings the table shows: filtered, then sorted.
    pub fn visible(&self) -> Vec<&Mapping> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&Mapping> = self
            .mappings
            .iter()
            .filter(|m| {
                needle.is_empty()
                    || [
                        m.spec.queue(),
                        m.spec.function_name.as_str(),
                        &m.state.to_string(),
                        &m.uuid.to_string(),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
            })
            .collect();
        let dead = |m: &Mapping| {
            self.stats
                .get(&m.uuid)
                .map(|s| s.dead_lettered)
                .unwrap_or(0)
        };
        match self.sort {
            SortBy::Queue => rows.sort_by(|a, b| a.spec.queue().cmp(b.spec.queue())),
            SortBy::State => rows.sort_by_key(|m| m.state.to_string()),
            SortBy::Function => {
                rows.sort_by(|a, b| a.spec.function_name.cmp(&b.spec.function_name))
            }
            SortBy::DeadLetters => rows.sort_by_key(|m| std::cmp::Reverse(dead(m))),
        }
        rows
    }

    pub fn selected_mapping(&self) -> Option<&Mapping> {
        self.visible().get(self.selected).copied()
    }

    /// Dead letters of the selected mapping, newest first.
    pub fn selected_dead_letters(&self) -> Vec<&DeadLetter> {
        let Some(m) = self.selected_mapping() else {
            return Vec::new();
        };
        self.dead_letters
            .iter()
            .filter(|d| d.mapping == m.uuid)
            .collect()
    }

    pub fn update(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => self.quit = true,
            Action::Tick => self.tick(),
            Action::Loaded {
                mappings,
                dead_letters,
            } => {
                self.mappings = mappings;
                self.clamp_selection();
                self.dead_letters = dead_letters;
            }
            Action::Engine(event) => self.engine_event(event),
            Action::Done(result) => {
                self.toast = Some(match result {
                    Ok(text) => text,
                    Err(text) => format!("failed: {text}"),
                })
            }
            other => return self.user_action(other),
        }
        None
    }

    fn user_action(&mut self, action: Action) -> Option<Effect> {
        let uuid = self.selected_mapping().map(|m| m.uuid);
        match (&mut self.mode, action) {
            (Mode::BatchPrompt { input, error }, Action::PromptKey(key)) => {
                input.input(key);
                *error = batch_size_error(&input.lines().join(""));
            }
            (Mode::BatchPrompt { input, error }, Action::Confirm) => {
                let text = input.lines().join("");
                match (batch_size_error(&text), uuid) {
                    (None, Some(uuid)) => {
                        self.mode = Mode::Normal;
                        return Some(Effect::SetBatchSize(uuid, text.trim().parse().ok()?));
                    }
                    (e, _) => *error = e,
                }
            }
            (Mode::FilterEditor { input, error }, Action::PromptKey(key)) => {
                input.input(key);
                *error = criteria_from_text(&input.lines().join("\n")).err();
            }
            (Mode::FilterEditor { input, error }, Action::Apply) => {
                match (criteria_from_text(&input.lines().join("\n")), uuid) {
                    (Ok(criteria), Some(uuid)) => {
                        self.mode = Mode::Normal;
                        return Some(Effect::SetFilter(uuid, criteria));
                    }
                    (Err(e), _) => *error = Some(e),
                    _ => {}
                }
            }
            (Mode::Form(form), Action::PromptKey(key)) => form.input(key),
            (Mode::Form(form), Action::NextField) => form.move_focus(true),
            (Mode::Form(form), Action::PrevField) => form.move_focus(false),
            (Mode::Form(form), Action::Confirm) => {
                if let Ok(spec) = form.spec() {
                    self.mode = Mode::Normal;
                    return Some(Effect::Create(Box::new(spec)));
                }
            }
            (Mode::Filter { input }, Action::PromptKey(key)) => {
                input.input(key);
                self.filter = input.lines().join("");
                self.selected = 0;
            }
            (Mode::Filter { .. }, Action::Confirm) => self.mode = Mode::Normal,
            (Mode::Filter { .. }, Action::Back) => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            (Mode::Command { input, .. }, Action::PromptKey(key)) => {
                input.input(key);
            }
            (Mode::Command { input, .. }, Action::Confirm) => {
                let line = input.lines().join("");
                match self.command(&line) {
                    Ok(effect) => {
                        if !self.quit {
                            self.mode = Mode::Normal;
                        }
                        return effect;
                    }
                    Err(e) => {
                        if let Mode::Command { error, .. } = &mut self.mode {
                            *error = Some(e);
                        }
                    }
                }
            }
            (Mode::Confirm(effect), Action::Confirm) => {
                let effect = effect.clone();
                self.mode = Mode::Normal;
                return Some(effect);
            }
            (Mode::Inspect(_) | Mode::InspectBatch(_), Action::Up) => {
                self.scroll = self.scroll.saturating_sub(1)
            }
            (Mode::Inspect(_) | Mode::InspectBatch(_), Action::Down) => {
                self.scroll = self.scroll.saturating_add(1)
            }
            (Mode::Inspect(index), Action::Save) => {
                let index = *index;
                return self.selected_dead_letters().get(index).map(|d| {
                    Effect::Save(
                        format!("dead-letter-{}.body", d.id),
                        bytes::Bytes::from(d.body.clone()),
                    )
                });
            }
            (Mode::InspectBatch(index), Action::Save) => {
                let index = *index;
                let batch = uuid
                    .and_then(|u| self.batches.get(&u))
                    .and_then(|b| b.get(index));
                let name = format!("batch-{}.json", self.now.format("%Y%m%dT%H%M%S"));
                return batch
                    .and_then(|b| b.event.clone())
                    .map(|event| Effect::Save(name, event));
            }
            (_, Action::Back) => self.mode = Mode::Normal,
            (Mode::Normal, action) => return self.normal_action(action, uuid),
            _ => {}
        }
        None
    }

    fn normal_action(&mut self, action: Action, uuid: Option<Uuid>) -> Option<Effect> {
        let batch_size = self
            .selected_mapping()
            .map(|m| m.spec.batch_size())
            .unwrap_or(0);
        match action {
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::Mappings => Focus::Batches,
                    Focus::Batches => Focus::DeadLetters,
                    Focus::DeadLetters => Focus::Mappings,
                }
            }
            Action::Help => self.mode = Mode::Help,
            Action::AskFilter => {
                let mut input = TextArea::new(vec![self.filter.clone()]);
                input.move_cursor(ratatui_textarea::CursorMove::End);
                self.mode = Mode::Filter {
                    input: Box::new(input),
                };
            }
            Action::EditFilter if uuid.is_some() => {
                let text = self
                    .selected_mapping()
                    .and_then(|m| {
                        m.spec
                            .filters()
                            .ok()
                            .flatten()
                            .map(|_| m.spec.filter_criteria.clone())
                    })
                    .flatten()
                    .map(|c| patterns_text(&c))
                    .unwrap_or_default();
                let input = TextArea::new(text.lines().map(str::to_owned).collect());
                self.mode = Mode::FilterEditor {
                    input: Box::new(input),
                    error: None,
                };
            }
            Action::AskNew => {
                self.mode = Mode::Form(Box::new(super::form::MappingForm::new(
                    self.choices.clone(),
                )))
            }
            Action::AskCommand => {
                self.mode = Mode::Command {
                    input: Box::new(TextArea::default()),
                    error: None,
                };
            }
            Action::Sort => self.sort = self.sort.next(),
            Action::Select(index) if index < self.visible().len() => {
                self.selected = index;
                self.focus = Focus::Mappings;
                self.dead_letter_selected = 0;
            }
            Action::Inspect if self.focus == Focus::Batches => {
                let has_event = self
                    .selected_mapping()
                    .and_then(|m| self.batches.get(&m.uuid))
                    .and_then(|b| b.get(self.batch_selected))
                    .is_some_and(|b| b.event.is_some());
                if has_event {
                    self.scroll = 0;
                    self.mode = Mode::InspectBatch(self.batch_selected);
                } else {
                    self.toast = Some("only the newest batches keep their event".into());
                }
            }
            Action::Inspect if !self.selected_dead_letters().is_empty() => {
                self.scroll = 0;
                self.mode = Mode::Inspect(self.dead_letter_selected);
            }
            Action::Enable => return uuid.map(Effect::Enable),
            Action::AskDisable => {
                if let Some(uuid) = uuid {
                    self.mode = Mode::Confirm(Effect::Disable(uuid));
                }
            }
            Action::AskDelete => {
                if let Some(uuid) = uuid {
                    self.mode = Mode::Confirm(Effect::Delete(uuid));
                }
            }
            Action::AskReplay if self.focus == Focus::Batches => {
                let batch = uuid
                    .and_then(|u| self.batches.get(&u))
                    .and_then(|b| b.get(self.batch_selected));
                match (uuid, batch.and_then(|b| b.event.clone())) {
                    (Some(u), Some(event)) => {
                        self.mode = Mode::Confirm(Effect::ReplayEvent(u, event))
                    }
                    _ => self.toast = Some("only the newest batches keep their event".into()),
                }
            }
            Action::AskReplay | Action::AskRepublish => {
                let letter = self
                    .selected_dead_letters()
                    .get(self.dead_letter_selected)
                    .map(|d| (d.mapping, d.id));
                match (letter, action) {
                    (Some((m, id)), Action::AskReplay) => {
                        self.mode = Mode::Confirm(Effect::Replay(m, id))
                    }
                    (Some((m, id)), _) => self.mode = Mode::Confirm(Effect::Republish(m, id)),
                    (None, _) => {
                        self.toast =
                            Some("no dead letter selected (Tab to the dead letters)".into())
                    }
                }
            }
            Action::BatchUp if batch_size < MAX_BATCH_SIZE => {
                return uuid.map(|u| Effect::SetBatchSize(u, step(batch_size, true)));
            }
            Action::BatchDown if batch_size > MIN_BATCH_SIZE => {
                return uuid.map(|u| Effect::SetBatchSize(u, step(batch_size, false)));
            }
            Action::AskBatchSize if uuid.is_some() => {
                let mut input = TextArea::new(vec![batch_size.to_string()]);
                input.move_cursor(ratatui_textarea::CursorMove::End);
                self.mode = Mode::BatchPrompt {
                    input: Box::new(input),
                    error: None,
                };
            }
            _ => {}
        }
        None
    }

    fn move_by(&mut self, delta: isize) {
        let letters = self.selected_dead_letters().len();
        let rows = self.visible().len();
        let batches = self
            .selected_mapping()
            .and_then(|m| self.batches.get(&m.uuid))
            .map_or(0, |b| b.len());
        let (index, len) = match self.focus {
            Focus::DeadLetters => (&mut self.dead_letter_selected, letters),
            Focus::Batches => (&mut self.batch_selected, batches),
            _ => (&mut self.selected, rows),
        };
        if len == 0 {
            return;
        }
        *index = (*index as isize + delta).clamp(0, len as isize - 1) as usize;
        if self.focus == Focus::Mappings {
            self.dead_letter_selected = 0;
            self.batch_selected = 0;
        }
    }

    fn tick(&mut self) {
        self.now = Utc::now();
        for stats in self.stats.values_mut() {
            stats.rate.push_back(std::mem::take(&mut stats.this_second));
            while stats.rate.len() > RATE_HISTORY {
                stats.rate.pop_front();
            }
        }
    }

    fn engine_event(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::MappingChanged(m) => {
                self.changed_at.insert(m.uuid, Utc::now());
                match self.mappings.iter_mut().find(|x| x.uuid == m.uuid) {
                    Some(slot) => *slot = *m,
                    None => self.mappings.push(*m),
                }
            }
            EngineEvent::MappingDeleted(uuid) => {
                self.mappings.retain(|m| m.uuid != uuid);
                self.clamp_selection();
            }
            EngineEvent::BatchStarted {
                mapping,
                messages,
                bytes,
                attempt,
                event,
            } => {
                self.stats.entry(mapping).or_default().in_flight = messages;
                let batches = self.batches.entry(mapping).or_default();
                batches.push_front(BatchView {
                    started: Utc::now(),
                    messages,
                    bytes,
                    attempt,
                    outcome: Outcome::InFlight,
                    latency_ms: None,
                    event: Some(event),
                });
                batches.truncate(BATCHES_KEPT);
                // Events can be 6 MB each: only the newest few stay inspectable.
                for old in batches.iter_mut().skip(EVENTS_KEPT) {
                    old.event = None;
                }
            }
            EngineEvent::BatchSucceeded {
                mapping,
                messages,
                latency,
                attempts,
            } => {
                let stats = self.stats.entry(mapping).or_default();
                stats.in_flight = 0;
                let redeliveries = (attempts.max(1) - 1).min(5) as usize;
                stats.by_redeliveries[redeliveries] += messages as u64;
                stats.succeeded += messages as u64;
                stats.this_second += messages as u64;
                self.finish_batch(mapping, Outcome::Ok, latency.as_millis() as u64);
            }
            EngineEvent::BatchFailed { mapping, error, .. } => {
                let stats = self.stats.entry(mapping).or_default();
                stats.in_flight = 0;
                stats.failed_batches += 1;
                stats.errors.push_front(error.clone());
                stats.errors.truncate(ERRORS_KEPT);
                self.finish_batch(mapping, Outcome::Failed(error), 0);
            }
            EngineEvent::DeadLettered {
                mapping, messages, ..
            } => {
                self.stats.entry(mapping).or_default().dead_lettered += messages as u64;
            }
            EngineEvent::Filtered { mapping, messages } => {
                self.stats.entry(mapping).or_default().filtered += messages as u64;
            }
            EngineEvent::SettleFailed { .. } | EngineEvent::Received { .. } => {}
        }
    }

    fn clamp_selection(&mut self) {
        self.selected = self.selected.min(self.visible().len().saturating_sub(1));
    }

    /// Runs a `:` command line on the selected mapping (or the one it names).
    fn command(&mut self, line: &str) -> Result<Option<Effect>, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let target = |arg: Option<&&str>| -> Result<Uuid, String> {
            match arg {
                Some(id) => id
                    .parse()
                    .map_err(|_| format!("`{id}` is not a mapping UUID")),
                None => self
                    .selected_mapping()
                    .map(|m| m.uuid)
                    .ok_or_else(|| "no mapping selected".to_owned()),
            }
        };
        let letter = || {
            self.selected_dead_letters()
                .get(self.dead_letter_selected)
                .map(|d| (d.mapping, d.id))
                .ok_or_else(|| "no dead letter selected".to_owned())
        };
        Ok(Some(match words.as_slice() {
            [] => return Ok(None),
            ["q" | "quit"] => {
                self.quit = true;
                return Ok(None);
            }
            ["enable", rest @ ..] => Effect::Enable(target(rest.first())?),
            ["disable", rest @ ..] => Effect::Disable(target(rest.first())?),
            ["delete", rest @ ..] => Effect::Delete(target(rest.first())?),
            ["batch", n, rest @ ..] => {
                if let Some(e) = batch_size_error(n) {
                    return Err(e);
                }
                Effect::SetBatchSize(
                    target(rest.first())?,
                    n.parse().map_err(|_| "not a number".to_owned())?,
                )
            }
            ["replay"] => {
                let (m, id) = letter()?;
                Effect::Replay(m, id)
            }
            ["republish"] => {
                let (m, id) = letter()?;
                Effect::Republish(m, id)
            }
            _ => {
                return Err(format!(
                    "unknown command `{line}`: enable|disable|delete [UUID], batch N [UUID], replay, republish, q"
                ));
            }
        }))
    }

    /// The next batch may start before the last one is settled, so an end
    /// belongs to the oldest batch still in flight, not to the newest.
    fn finish_batch(&mut self, mapping: Uuid, outcome: Outcome, latency_ms: u64) {
        if let Some(b) = self
            .batches
            .get_mut(&mapping)
            .and_then(|b| b.iter_mut().rev().find(|b| b.outcome == Outcome::InFlight))
        {
            b.outcome = outcome;
            b.latency_ms = Some(latency_ms);
        }
    }
}

/// The editor's text as FilterCriteria: one pattern (a JSON object), or a
/// JSON list of up to five; empty removes the filter.
pub fn criteria_from_text(text: &str) -> Result<Option<serde_json::Value>, String> {
    let criteria = filter_criteria_of_text(text)?;
    if let Some(c) = &criteria {
        let patterns: Vec<&str> = c["Filters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["Pattern"].as_str())
            .collect();
        crate::filter::Filters::parse(&patterns)?;
    }
    Ok(criteria)
}

/// The FilterCriteria of one pattern or a list of patterns as typed, not
/// yet checked; an error only when the text is not JSON.
pub fn filter_criteria_of_text(text: &str) -> Result<Option<serde_json::Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON yet: {e}"))?;
    let patterns: Vec<String> = match value {
        serde_json::Value::Array(list) => list.iter().map(|p| p.to_string()).collect(),
        one => vec![one.to_string()],
    };
    let filters: Vec<serde_json::Value> = patterns
        .iter()
        .map(|p| serde_json::json!({ "Pattern": p }))
        .collect();
    Ok(Some(serde_json::json!({ "Filters": filters })))
}

/// FilterCriteria as the editor shows it: the patterns, pretty.
pub fn patterns_text(criteria: &serde_json::Value) -> String {
    let patterns: Vec<serde_json::Value> = criteria["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            f["Pattern"]
                .as_str()
                .and_then(|p| serde_json::from_str(p).ok())
        })
        .collect();
    let shown = if patterns.len() == 1 {
        patterns[0].clone()
    } else {
        serde_json::Value::Array(patterns)
    };
    serde_json::to_string_pretty(&shown).unwrap_or_default()
}

/// Bodies the dry run tries a filter on: the messages of the newest batches,
/// then the dead letters.
pub fn sample_bodies(app: &App) -> Vec<(String, Vec<u8>)> {
    let Some(m) = app.selected_mapping() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for batch in app.batches.get(&m.uuid).into_iter().flatten() {
        let Some(event) = &batch.event else { continue };
        for body in crate::event::bodies(event) {
            out.push(("message".to_owned(), body));
        }
    }
    for d in app.selected_dead_letters() {
        out.push((format!("dead letter {}", d.id), d.body.clone()));
    }
    out
}

/// Doubles or halves, as a quick way across 1..=10000.
fn step(size: u32, up: bool) -> u32 {
    if up {
        (size * 2).min(MAX_BATCH_SIZE)
    } else {
        (size / 2).max(MIN_BATCH_SIZE)
    }
}

/// Lambda's rule for BatchSize (crate::validation), as the sentence shown under the prompt.
pub fn batch_size_error(text: &str) -> Option<String> {
    crate::validation::parse_batch_size(text)
        .err()
        .map(|e| e.message)
}
