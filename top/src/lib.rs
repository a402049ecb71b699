//! `procession-top`: a live view of the procession runtimes of this user on this machine.
//!
//! The binary attaches to every runtime under `/dev/shm` (or `--dir`), or to one root
//! (`--pid`), and shows each tree with its counters about once a second. It reads through
//! [`procession::inspect`], which maps each mailbox read-only: it takes no lock, writes no
//! counter and wakes no one, so the program it watches runs as it would unwatched.
//!
//! This library is the binary's inside, public so that its tests and benchmark can drive
//! it: [`model`] samples the runtimes and computes rates, [`ui`] draws them.

pub mod model;
pub mod ui;

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use model::RuntimeFrame;

/// The view of each runtime in `frames` as plain text, `width` columns wide, one block
/// per runtime (what `--once` prints).
///
/// ```
/// let text = procession_top::text(Vec::new(), 80);
/// assert!(text.contains("no runtime is running"));
/// ```
pub fn text(frames: Vec<RuntimeFrame>, width: u16) -> String {
    let count = frames.len().max(1);
    let mut out = String::new();
    for i in 0..count {
        let height = frames.get(i).map_or(0, |f| f.actors.len()) as u16 + 6;
        let mut app = ui::App::new();
        app.update(frames.clone());
        app.select_runtime(i);
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test backend");
        terminal
            .draw(|f| app.draw(f))
            .expect("drawing on a test backend");
        let buffer = terminal.backend().buffer();
        for y in 0..buffer.area.height {
            let line: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if i + 1 < count {
            out.push('\n');
        }
    }
    out
}
