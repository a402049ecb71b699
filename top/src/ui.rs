//! The terminal view: a tab per runtime, its tree as a table, keys to move, fold and quit.
//! [`App`] holds what is shown and what the user chose; [`App::draw`] paints one frame
//! on any ratatui backend (a terminal, or a `TestBackend` for `--once` text).

use std::collections::HashSet;
use std::path::PathBuf;

use procession::inspect::ActorState;
use procession::Exit;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table, TableState, Tabs};
use ratatui::Frame;

use crate::model::{Row, RuntimeFrame};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The next runtime (Tab, →).
    NextRuntime,
    /// The previous runtime (Shift-Tab, ←).
    PrevRuntime,
    /// The row above (↑, k).
    Up,
    /// The row below (↓, j).
    Down,
    /// The first row (Home, g).
    First,
    /// The last row (End, G).
    Last,
    /// Collapse or expand the subtree under the selected row (Enter, space).
    Toggle,
    /// Quit (q, Esc, Ctrl-C).
    Quit,
}

impl Key {
    /// The action of a terminal key event, if it has one.
    pub fn of(event: &ratatui::crossterm::event::KeyEvent) -> Option<Key> {
        use ratatui::crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        Some(match event.code {
            KeyCode::Char('c') if ctrl => Key::Quit,
            KeyCode::Char('q') | KeyCode::Esc => Key::Quit,
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => Key::NextRuntime,
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => Key::PrevRuntime,
            KeyCode::Up | KeyCode::Char('k') => Key::Up,
            KeyCode::Down | KeyCode::Char('j') => Key::Down,
            KeyCode::Home | KeyCode::Char('g') => Key::First,
            KeyCode::End | KeyCode::Char('G') => Key::Last,
            KeyCode::Enter | KeyCode::Char(' ') => Key::Toggle,
            _ => return None,
        })
    }
}

/// The view's state: the latest frames, the runtime and row selected, the folded
/// subtrees.
#[derive(Debug, Default)]
pub struct App {
    frames: Vec<RuntimeFrame>,
    /// The selected runtime, by directory (stable while others come and go).
    selected: Option<PathBuf>,
    /// The selected row's actor id, so the selection follows it as rows move.
    cursor: Option<u64>,
    collapsed: HashSet<(PathBuf, u64)>,
    table: TableState,
    /// Set by [`Key::Quit`].
    pub quit: bool,
}

impl App {
    /// An empty view.
    pub fn new() -> App {
        App::default()
    }

    /// Shows a new refresh. The selection stays on the same runtime and actor while they
    /// are there.
    pub fn update(&mut self, frames: Vec<RuntimeFrame>) {
        self.frames = frames;
        if self.selected_index().is_none() {
            self.selected = self.frames.first().map(|f| f.runtime.dir.clone());
            self.cursor = None;
        }
        let live: HashSet<(PathBuf, u64)> = self
            .frames
            .iter()
            .flat_map(|f| {
                f.actors
                    .iter()
                    .map(|r| (f.runtime.dir.clone(), r.actor.stats.id))
            })
            .collect();
        self.collapsed.retain(|k| live.contains(k));
    }

    /// The frames shown.
    pub fn frames(&self) -> &[RuntimeFrame] {
        &self.frames
    }

    /// Selects the runtime at `index` in [`frames`](Self::frames).
    pub fn select_runtime(&mut self, index: usize) {
        if let Some(f) = self.frames.get(index) {
            self.selected = Some(f.runtime.dir.clone());
            self.cursor = None;
        }
    }

    fn selected_index(&self) -> Option<usize> {
        let dir = self.selected.as_ref()?;
        self.frames.iter().position(|f| &f.runtime.dir == dir)
    }

    /// The rows of the selected runtime that are not folded away.
    fn visible(&self) -> Vec<&Row> {
        let Some(frame) = self.selected_index().map(|i| &self.frames[i]) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut hide_below: Option<usize> = None;
        for row in &frame.actors {
            if let Some(d) = hide_below {
                if row.depth > d {
                    continue;
                }
                hide_below = None;
            }
            if self
                .collapsed
                .contains(&(frame.runtime.dir.clone(), row.actor.stats.id))
            {
                hide_below = Some(row.depth);
            }
            out.push(row);
        }
        out
    }

    fn cursor_index(&self, visible: &[&Row]) -> usize {
        self.cursor
            .and_then(|id| visible.iter().position(|r| r.actor.stats.id == id))
            .unwrap_or(0)
    }

    /// Acts on a key.
    pub fn key(&mut self, key: Key) {
        let n = self.frames.len();
        let visible: Vec<(u64, usize)> = self
            .visible()
            .iter()
            .map(|r| (r.actor.stats.id, r.children))
            .collect();
        let at = self
            .cursor
            .and_then(|id| visible.iter().position(|(v, _)| *v == id))
            .unwrap_or(0);
        let go = |i: usize| visible.get(i).map(|(id, _)| *id);
        match key {
            Key::Quit => self.quit = true,
            Key::NextRuntime | Key::PrevRuntime if n > 0 => {
                let i = self.selected_index().unwrap_or(0);
                let next = if key == Key::NextRuntime {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.select_runtime(next);
            }
            Key::Up => self.cursor = go(at.saturating_sub(1)).or(self.cursor),
            Key::Down => self.cursor = go((at + 1).min(visible.len().saturating_sub(1))),
            Key::First => self.cursor = go(0),
            Key::Last => self.cursor = go(visible.len().saturating_sub(1)),
            Key::Toggle => {
                if let (Some(&(id, children)), Some(dir)) = (visible.get(at), &self.selected) {
                    if children > 0 && !self.collapsed.remove(&(dir.clone(), id)) {
                        self.collapsed.insert((dir.clone(), id));
                    }
                }
            }
            _ => {}
        }
    }

    /// Paints the view on `frame`.
    pub fn draw(&mut self, frame: &mut Frame) {
        let [title, tabs, table, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(frame.area());

        let live = self.frames.iter().filter(|f| !f.ended).count();
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("procession top", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!(
                    "  {live} runtime{} of this user",
                    if live == 1 { "" } else { "s" }
                )),
            ])),
            title,
        );

        let titles: Vec<Line> = self
            .frames
            .iter()
            .map(|f| {
                let program = f.runtime.program.as_deref().unwrap_or("?");
                let mut t = format!("{} {}", f.runtime.root_pid, program);
                if f.ended {
                    t.push_str(" (ended)");
                }
                Line::from(t)
            })
            .collect();
        if titles.is_empty() {
            frame.render_widget(Paragraph::new("no runtime is running"), tabs);
        } else {
            frame.render_widget(
                Tabs::new(titles)
                    .select(self.selected_index())
                    .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
                tabs,
            );
        }

        let rows = self.visible();
        let selected = self.cursor_index(&rows);
        let dir = self.selected.clone().unwrap_or_default();
        let body: Vec<TableRow> = rows
            .iter()
            .map(|r| table_row(r, self.collapsed.contains(&(dir.clone(), r.actor.stats.id))))
            .collect();
        let count = rows.len();
        let header = TableRow::new(HEADER.iter().map(|(h, _)| Cell::from(*h)))
            .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
        let widths = HEADER.iter().map(|(_, w)| *w);
        let widget = Table::new(body, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        self.table
            .select(if count == 0 { None } else { Some(selected) });
        frame.render_stateful_widget(widget, table, &mut self.table);

        let status = match self.selected_index().map(|i| &self.frames[i]) {
            Some(f) if f.ended => format!(
                "runtime {} ended; its last view is kept  ·  q quit",
                f.runtime.root_pid
            ),
            Some(f) => format!(
                "{} actors  ·  {}  ·  Tab/←→ runtime  ↑↓ move  Enter fold  q quit",
                f.actors.len(),
                f.runtime.dir.display()
            ),
            None => "q quit".to_string(),
        };
        frame.render_widget(
            Paragraph::new(status).style(Style::new().add_modifier(Modifier::DIM)),
            footer,
        );
    }
}

const HEADER: [(&str, Constraint); 11] = [
    ("NAME", Constraint::Min(16)),
    ("ACTOR", Constraint::Length(12)),
    ("ID", Constraint::Length(16)),
    ("PID", Constraint::Length(7)),
    ("STATE", Constraint::Length(10)),
    ("QUEUE", Constraint::Length(11)),
    ("MSG/S", Constraint::Length(8)),
    ("RESTARTS", Constraint::Length(8)),
    ("LAST EXIT", Constraint::Length(14)),
    ("RSS", Constraint::Length(7)),
    ("CPU%", Constraint::Length(6)),
];

fn table_row(r: &Row, collapsed: bool) -> TableRow<'static> {
    let s = &r.actor.stats;
    let fold = match (r.children, collapsed) {
        (0, _) => "  ",
        (_, true) => "▸ ",
        (_, false) => "▾ ",
    };
    let name = format!("{}{fold}{}", "  ".repeat(r.depth.min(16)), r.display);
    let (state, colour) = state_text(r.actor.state);
    let restarts = Cell::from(s.restarts.to_string()).style(if s.restarts > 0 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    });
    let short_type = short_name(&s.name).to_string();
    TableRow::new(vec![
        Cell::from(name),
        Cell::from(short_type),
        Cell::from(format!("{:x}", s.id)),
        Cell::from(if s.pid == 0 {
            "-".to_string()
        } else {
            s.pid.to_string()
        }),
        Cell::from(state).style(Style::new().fg(colour)),
        Cell::from(format!("{}/{}", s.queued, s.capacity)),
        Cell::from(r.msg_per_s.map_or("-".into(), rate)),
        restarts,
        Cell::from(s.last_exit.as_ref().map_or("-".into(), exit_text)),
        Cell::from(s.rss_bytes.map_or("-".into(), bytes)),
        Cell::from(r.cpu_percent.map_or("-".into(), |c| format!("{c:.1}"))),
    ])
}

fn state_text(state: ActorState) -> (&'static str, Color) {
    match state {
        ActorState::Starting => ("starting", Color::Cyan),
        ActorState::Running => ("running", Color::Green),
        ActorState::Restarting => ("restarting", Color::Yellow),
        ActorState::Exited => ("exited", Color::Red),
    }
}

/// A type's name without its module path.
pub fn short_name(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// A short form of an exit for the table (the JSON has the whole of it).
pub fn exit_text(e: &Exit) -> String {
    match e {
        Exit::Normal => "normal".into(),
        Exit::Stopped => "stopped".into(),
        Exit::Panicked { .. } => "panicked".into(),
        Exit::Signaled(sig) => match nix::sys::signal::Signal::try_from(*sig) {
            Ok(signal) => signal.as_str().to_string(),
            Err(_) => format!("signal {sig}"),
        },
        Exit::Failed(_) => "failed".into(),
        Exit::Shutdown(_) => "shutdown".into(),
        Exit::RuntimeLost => "runtime lost".into(),
        Exit::HostLost { .. } => "host lost".into(),
        Exit::Exited(n) => format!("exit {n}"),
        Exit::Ignored => "ignored".into(),
        Exit::OutOfMemory { .. } => "out of memory".into(),
    }
}

/// A message rate, short.
pub fn rate(per_s: f64) -> String {
    if per_s >= 10_000_000.0 {
        format!("{:.0}M", per_s / 1e6)
    } else if per_s >= 10_000.0 {
        format!("{:.0}k", per_s / 1e3)
    } else if per_s >= 10.0 {
        format!("{per_s:.0}")
    } else {
        format!("{per_s:.1}")
    }
}

/// A byte count, short (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_are_short() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(3 << 20), "3.0M");
        assert_eq!(bytes(300 << 20), "300M");
        assert_eq!(rate(2.5), "2.5");
        assert_eq!(rate(1234.0), "1234");
        assert_eq!(rate(56_000.0), "56k");
        assert_eq!(exit_text(&Exit::Signaled(9)), "SIGKILL");
        assert_eq!(exit_text(&Exit::Signaled(40)), "signal 40");
    }
}
