//! The Flow panel: the selected mapping's last minute as charts: messages
//! acked per second, the function's latency (median and 99th percentile),
//! and how many redeliveries the acked messages needed, as bars.

use super::focused;
use crate::console::app::App;
use crate::console::lists::Focus;
use crate::console::view::HISTORY_SECONDS;
use crate::console::widgets::panel;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Block, Chart, Dataset, GraphType, Sparkline,
};

/// Below this many rows inside a chart's border, a sparkline says more
/// than a chart with axes.
const CHART_ROWS: u16 = 5;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let is_focused = focused(app, Focus::Flow);
    let Some(m) = app.selected_mapping() else {
        frame.render_widget(panel("Flow", is_focused), area);
        return;
    };
    let [rate_area, latency_area, bars_area] = Layout::horizontal([
        Constraint::Percentage(40),
        Constraint::Percentage(40),
        Constraint::Percentage(20),
    ])
    .areas(area);
    let rates: Vec<u64> = app
        .view
        .rates
        .get(&m.uuid)
        .map(|r| r.per_second.iter().copied().collect())
        .unwrap_or_default();
    let minute: u64 = rates.iter().sum();
    let now = rates.last().copied().unwrap_or(0);
    let title = fitting(
        rate_area.width,
        [
            format!("Acked msg/s · {now} now · {minute} in the last minute"),
            format!("Acked msg/s · {now} now · {minute} last minute"),
            format!("Acked/s · {now} now · {minute}/min"),
            format!("Acked/s {now} · {minute}/min"),
            format!("{now}/s"),
        ],
    );
    series(
        frame,
        rate_area,
        panel(title, is_focused),
        &[(rates.iter().map(|r| Some(*r)).collect(), Color::Cyan)],
    );

    let latencies: Vec<_> = app
        .view
        .latencies
        .get(&m.uuid)
        .map(|l| l.per_second.iter().copied().collect())
        .unwrap_or_default();
    let last = latencies.iter().rev().flatten().next();
    let title = match last {
        Some(l) => fitting(
            latency_area.width,
            [
                format!("Latency ms · p50 {} · p99 {}", l.p50, l.p99),
                format!("ms · p50 {} · p99 {}", l.p50, l.p99),
                format!("p50 {} p99 {}", l.p50, l.p99),
                format!("p99 {}ms", l.p99),
            ],
        ),
        None => fitting(
            latency_area.width,
            [
                "Latency ms · no attempt ended in the last minute".to_owned(),
                "Latency ms · none in the last minute".to_owned(),
                "Latency ms".to_owned(),
            ],
        ),
    };
    series(
        frame,
        latency_area,
        panel(title, is_focused),
        &[
            (
                latencies.iter().map(|l| l.map(|l| l.p99)).collect(),
                Color::Yellow,
            ),
            (
                latencies.iter().map(|l| l.map(|l| l.p50)).collect(),
                Color::Cyan,
            ),
        ],
    );

    let stats = app.view.stats_of(m.uuid);
    let counts: Vec<u64> = (0..=app.view.max_redeliveries as usize)
        .map(|i| stats.by_redeliveries.get(i).copied().unwrap_or(0))
        .collect();
    redeliveries(
        frame,
        bars_area,
        panel(
            fitting(
                bars_area.width,
                [
                    "Acked after N redeliveries".to_owned(),
                    "Acked after N redeliv.".to_owned(),
                    "By redeliveries".to_owned(),
                    "Redeliveries".to_owned(),
                    "Redeliv.".to_owned(),
                ],
            ),
            is_focused,
        ),
        &counts,
    );
}

/// The first of `titles` (most said first) that fits on the top border of
/// a panel `width` wide, corners included, so no number is cut; the last
/// one when none does.
fn fitting<const N: usize>(width: u16, titles: [String; N]) -> String {
    let room = usize::from(width.saturating_sub(2));
    let last = titles.last().cloned().unwrap_or_default();
    titles
        .into_iter()
        .find(|t| t.chars().count() <= room)
        .unwrap_or(last)
}

/// Lines over the last minute (oldest on the left, a point per second),
/// each its colour; a sparkline of the first when the panel is low.
fn series(
    frame: &mut Frame,
    area: Rect,
    block: Block<'static>,
    lines: &[(Vec<Option<u64>>, Color)],
) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let top = lines
        .iter()
        .flat_map(|(points, _)| points.iter().flatten())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    if inner.height < CHART_ROWS {
        let first: Vec<u64> = lines
            .first()
            .map(|(p, _)| p.iter().map(|v| v.unwrap_or(0)).collect())
            .unwrap_or_default();
        let color = lines.first().map_or(Color::Cyan, |(_, c)| *c);
        frame.render_widget(
            Sparkline::default()
                .data(&first)
                .max(top)
                .style(Style::new().fg(color)),
            inner,
        );
        return;
    }
    // Seconds ago, from -60 to 0: the newest point is at 0.
    let points: Vec<Vec<(f64, f64)>> = lines
        .iter()
        .map(|(values, _)| {
            let n = values.len();
            values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| ((i as f64) - (n as f64 - 1.0), v as f64)))
                .collect()
        })
        .collect();
    let datasets: Vec<Dataset> = points
        .iter()
        .zip(lines)
        .map(|(data, (_, color))| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(data)
        })
        .collect();
    let seconds = HISTORY_SECONDS as f64 - 1.0;
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .bounds([-seconds, 0.0])
                .labels([Line::from("-60s"), Line::from("now")])
                .style(Style::new().fg(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top as f64])
                .labels([Line::from("0"), Line::from(top.to_string())])
                .style(Style::new().fg(Color::DarkGray)),
        );
    frame.render_widget(chart, inner);
}

/// A bar per redelivery count, 0 to `max_redeliveries`, its number on it.
fn redeliveries(frame: &mut Frame, area: Rect, block: Block<'static>, counts: &[u64]) {
    let inner = block.inner(area);
    let n = counts.len().max(1) as u16;
    let width = (inner.width.saturating_sub(n - 1) / n).max(1);
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Bar::default()
                .value(*c)
                .label(Line::from(i.to_string()))
                .text_value(c.to_string())
        })
        .collect();
    frame.render_widget(
        BarChart::default()
            .block(block)
            .data(BarGroup::default().bars(&bars))
            .bar_width(width)
            .bar_gap(1)
            .bar_style(Style::new().fg(Color::Green))
            .value_style(Style::new().fg(Color::Black).bg(Color::Green)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::fitting;

    #[test]
    fn a_title_is_the_longest_that_fits_and_never_cuts_a_number() {
        let titles = || ["12 in the last minute".to_owned(), "12/min".to_owned()];
        assert_eq!(fitting(40, titles()), "12 in the last minute");
        assert_eq!(fitting(20, titles()), "12/min");
        assert_eq!(
            fitting(3, titles()),
            "12/min",
            "the shortest when none fits"
        );
    }
}
