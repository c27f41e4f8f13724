//! The console's state, and the one place it changes: [`App::update`].

use super::action::{Action, Effect};
use crate::engine::stats::BatchRow;
use crate::engine::{BatchId, EngineEvent, EngineStats, FeedItem, MappingStats, Snapshot};
use crate::mapping::{MAX_BATCH_SIZE, MIN_BATCH_SIZE, Mapping};
use crate::store::DeadLetter;
use chrono::{DateTime, Utc};
use ratatui_textarea::TextArea;
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

pub use crate::engine::stats::AttemptOutcome as Outcome;

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
    /// The dead letter with this id.
    Inspect(i64),
    /// One attempt of a batch: its whole event, read once when opened.
    InspectBatch(Box<InspectedBatch>),
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

/// One attempt of one batch: what the Batches panel selects by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchKey {
    pub batch: BatchId,
    pub attempt: u32,
}

impl BatchKey {
    pub fn of(row: &BatchRow) -> BatchKey {
        BatchKey {
            batch: row.batch,
            attempt: row.attempt,
        }
    }
}

/// A batch's event taken apart once, when the inspector opens: the lines
/// the inspector shows and the event itself, to save or replay.
#[derive(Debug, Clone)]
pub struct InspectedBatch {
    pub key: BatchKey,
    pub event: bytes::Bytes,
    pub lines: Vec<String>,
}

/// Messages acked per second, from the differences of the engine's count.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    /// `succeeded` at the last tick.
    last: u64,
    /// Oldest first.
    pub per_second: VecDeque<u64>,
}

pub struct App {
    pub mappings: Vec<Mapping>,
    pub selected: usize,
    pub focus: Focus,
    pub mode: Mode,
    /// The engine's counts: a snapshot, and the events since applied to it.
    pub stats: EngineStats,
    pub rates: HashMap<Uuid, Rate>,
    /// The newest batches' events per mapping, for the inspector.
    pub events: HashMap<Uuid, VecDeque<(BatchKey, bytes::Bytes)>>,
    /// What the function logged for the newest batches, per mapping.
    pub logs: HashMap<Uuid, VecDeque<(BatchKey, Vec<String>)>>,
    pub dead_letters: Vec<DeadLetter>,
    /// Rows are chosen by id: the lists grow at the front.
    pub dead_letter_selected: Option<i64>,
    pub batch_selected: Option<BatchKey>,
    /// What a mapping without counts shows.
    no_stats: MappingStats,
    /// How many redeliveries come before a dead letter (`[engine] max_redeliveries`).
    pub max_redeliveries: u32,
    /// Lines scrolled in the inspector.
    pub scroll: u16,
    pub toast: Option<String>,
    /// Where the engine runs (None: in this process), for the title bar.
    pub endpoint: Option<String>,
    /// The engine refuses changes (`--readonly`).
    pub readonly: bool,
    /// With a shared store: the instance driven; the table shows each
    /// mapping's owner.
    pub instance: Option<Uuid>,
    /// Why the service cannot be reached, while it cannot: the screen
    /// shows the last picture until a snapshot replaces it.
    pub lost: Option<String>,
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
            stats: EngineStats::default(),
            rates: HashMap::new(),
            events: HashMap::new(),
            logs: HashMap::new(),
            dead_letters: Vec::new(),
            dead_letter_selected: None,
            batch_selected: None,
            no_stats: MappingStats::default(),
            max_redeliveries: crate::mapping::MAX_REDELIVERIES,
            scroll: 0,
            toast: None,
            endpoint: None,
            readonly: false,
            instance: None,
            lost: None,
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
    pub fn new(choices: super::form::Choices, max_redeliveries: u32) -> App {
        App {
            choices,
            max_redeliveries,
            ..App::default()
        }
    }

    /// The console for the engine `described` says.
    pub fn for_engine(described: super::driver::Described) -> App {
        App {
            endpoint: described.endpoint,
            readonly: described.readonly,
            instance: described.instance,
            toast: described.notice,
            ..App::new(described.choices, described.max_redeliveries)
        }
    }

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
        let dead = |m: &Mapping| self.stats_of(m.uuid).dead_lettered;
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

    /// A mapping's counts (zeros for one the engine has not counted yet).
    pub fn stats_of(&self, mapping: Uuid) -> &MappingStats {
        self.stats.mappings.get(&mapping).unwrap_or(&self.no_stats)
    }

    /// The selected mapping's recent attempts, newest first.
    pub fn selected_batches(&self) -> &VecDeque<BatchRow> {
        match self.selected_mapping() {
            Some(m) => &self.stats_of(m.uuid).recent,
            None => &self.no_stats.recent,
        }
    }

    /// Where the selected batch row is now (the first when none is chosen).
    pub fn batch_index(&self) -> usize {
        let rows = self.selected_batches();
        self.batch_selected
            .and_then(|k| rows.iter().position(|r| BatchKey::of(r) == k))
            .unwrap_or(0)
    }

    /// Where the selected dead letter is now (the first when none is chosen).
    pub fn dead_letter_index(&self) -> usize {
        let letters = self.selected_dead_letters();
        self.dead_letter_selected
            .and_then(|id| letters.iter().position(|d| d.id == id))
            .unwrap_or(0)
    }

    fn selected_dead_letter(&self) -> Option<&DeadLetter> {
        self.selected_dead_letters()
            .get(self.dead_letter_index())
            .copied()
    }

    /// The kept event of the selected batch row.
    fn selected_event(&self) -> Option<(BatchKey, bytes::Bytes)> {
        let m = self.selected_mapping()?;
        let key = BatchKey::of(self.selected_batches().get(self.batch_index())?);
        self.events
            .get(&m.uuid)?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(k, e)| (*k, e.clone()))
    }

    /// The inspector's first lines: what the function logged for the batch, if it was kept.
    fn function_log(&self, key: BatchKey) -> Vec<String> {
        let Some(m) = self.selected_mapping() else {
            return Vec::new();
        };
        let Some((_, lines)) = self
            .logs
            .get(&m.uuid)
            .and_then(|kept| kept.iter().find(|(k, _)| *k == key))
        else {
            return Vec::new();
        };
        let mut out = vec![String::new(), "the function's log".to_owned()];
        // Lambda's lines hold tabs; awslambdaric keeps a traceback in one
        // record by ending its lines with \r.
        for line in lines {
            for part in line.split('\r') {
                out.push(format!("  {}", part.replace('\t', "  ")));
            }
        }
        out
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
            Action::Feed(item) => self.feed(item),
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
            // r and R act on what the inspector shows.
            (Mode::Inspect(id), ask @ (Action::AskReplay | Action::AskRepublish)) => {
                let id = *id;
                let letter = self.dead_letters.iter().find(|d| d.id == id);
                if let Some(mapping) = letter.map(|d| d.mapping) {
                    self.mode = Mode::Confirm(match ask {
                        Action::AskReplay => Effect::Replay(mapping, id),
                        _ => Effect::Republish(mapping, id),
                    });
                }
            }
            (Mode::InspectBatch(inspected), Action::AskReplay) => {
                if let Some(u) = uuid {
                    let event = inspected.event.clone();
                    self.mode = Mode::Confirm(Effect::ReplayEvent(u, event));
                }
            }
            (Mode::InspectBatch(_), Action::AskRepublish) => {
                self.toast =
                    Some("R republishes a dead letter; a batch can be replayed with r".into())
            }
            (Mode::Inspect(id), Action::Save) => {
                let id = *id;
                return self.dead_letters.iter().find(|d| d.id == id).map(|d| {
                    Effect::Save(
                        format!("dead-letter-{}.body", d.id),
                        bytes::Bytes::from(d.body.clone()),
                    )
                });
            }
            (Mode::InspectBatch(inspected), Action::Save) => {
                let name = format!("batch-{}.json", self.now.format("%Y%m%dT%H%M%S"));
                return Some(Effect::Save(name, inspected.event.clone()));
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
                self.dead_letter_selected = None;
                self.batch_selected = None;
            }
            Action::Inspect if self.focus == Focus::Batches => match self.selected_event() {
                Some((key, event)) => {
                    self.scroll = 0;
                    let filters = self
                        .selected_mapping()
                        .and_then(|m| m.spec.filters().ok().flatten());
                    let mut lines = self.function_log(key);
                    lines.extend(super::ui::inspected_batch_lines(&event, filters.as_ref()));
                    self.mode = Mode::InspectBatch(Box::new(InspectedBatch { key, event, lines }));
                }
                None => self.toast = Some("only the newest batches keep their event".into()),
            },
            Action::Inspect => {
                if let Some(id) = self.selected_dead_letter().map(|d| d.id) {
                    self.scroll = 0;
                    self.mode = Mode::Inspect(id);
                }
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
                match (uuid, self.selected_event()) {
                    (Some(u), Some((_, event))) => {
                        self.mode = Mode::Confirm(Effect::ReplayEvent(u, event))
                    }
                    _ => self.toast = Some("only the newest batches keep their event".into()),
                }
            }
            Action::AskReplay | Action::AskRepublish => {
                let letter = self.selected_dead_letter().map(|d| (d.mapping, d.id));
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
                // Empty, the current size as a hint: typed digits are the
                // new size, never appended to the old one (7, then 0, is not 70).
                let mut input = TextArea::default();
                input.set_placeholder_text(format!("{batch_size} now; type the new BatchSize"));
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
        let step = |index: usize, len: usize| -> Option<usize> {
            (len > 0).then(|| (index as isize + delta).clamp(0, len as isize - 1) as usize)
        };
        match self.focus {
            Focus::DeadLetters => {
                let letters = self.selected_dead_letters();
                if let Some(i) = step(self.dead_letter_index(), letters.len()) {
                    self.dead_letter_selected = Some(letters[i].id);
                }
            }
            Focus::Batches => {
                let rows = self.selected_batches();
                if let Some(i) = step(self.batch_index(), rows.len()) {
                    self.batch_selected = Some(BatchKey::of(&rows[i]));
                }
            }
            Focus::Mappings => {
                if let Some(i) = step(self.selected, self.visible().len()) {
                    self.selected = i;
                    self.dead_letter_selected = None;
                    self.batch_selected = None;
                }
            }
        }
    }

    fn tick(&mut self) {
        self.now = Utc::now();
        for (uuid, stats) in &self.stats.mappings {
            // A rate starts at the count the console first saw (an engine
            // attached to may have run for days): no spike of its total.
            let rate = self.rates.entry(*uuid).or_insert_with(|| Rate {
                last: stats.succeeded,
                per_second: VecDeque::new(),
            });
            rate.per_second
                .push_back(stats.succeeded.saturating_sub(rate.last));
            rate.last = stats.succeeded;
            while rate.per_second.len() > RATE_HISTORY {
                rate.per_second.pop_front();
            }
        }
    }

    fn feed(&mut self, item: FeedItem) {
        match item {
            FeedItem::Synced(snapshot) => {
                let Snapshot {
                    stats,
                    mappings,
                    dead_letters,
                } = *snapshot;
                if self.lost.is_some() {
                    // Back after a gap: a second's difference would hold the gap's.
                    self.rates.clear();
                }
                self.stats = stats;
                self.mappings = mappings;
                self.dead_letters = dead_letters;
                // Kept events of mappings that are gone go with them.
                let known = |uuid: &Uuid| self.mappings.iter().any(|m| m.uuid == *uuid);
                self.events.retain(|uuid, _| known(uuid));
                self.logs.retain(|uuid, _| known(uuid));
                self.clamp_selection();
                self.lost = None;
            }
            FeedItem::Event(event) => self.engine_event(event),
            FeedItem::DeadLetters(letters) => self.dead_letters = letters,
            FeedItem::Lost(why) => self.lost = Some(why),
        }
    }

    /// Counts the event the way the engine does, and keeps what only the
    /// stream carries: the mappings as they change, and the newest events.
    fn engine_event(&mut self, event: EngineEvent) {
        self.stats.apply(&event);
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
                self.events.remove(&uuid);
                self.logs.remove(&uuid);
                self.rates.remove(&uuid);
                self.clamp_selection();
            }
            EngineEvent::BatchStarted {
                mapping,
                batch,
                attempt,
                event,
                ..
            } => {
                // Events can be 6 MB each: only the newest few stay inspectable.
                let kept = self.events.entry(mapping).or_default();
                kept.push_front((BatchKey { batch, attempt }, event));
                kept.truncate(EVENTS_KEPT);
            }
            EngineEvent::FunctionLog {
                mapping,
                batch,
                attempt,
                lines,
            } => {
                let kept = self.logs.entry(mapping).or_default();
                kept.push_front((BatchKey { batch, attempt }, lines));
                kept.truncate(EVENTS_KEPT);
            }
            _ => {}
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
            self.selected_dead_letter()
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
    for (_, event) in app.events.get(&m.uuid).into_iter().flatten() {
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
