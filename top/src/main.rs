//! `procession-top`: see the crate docs, or `procession-top --help`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use procession_top::model::{RuntimeFrame, Source, Tracker};
use procession_top::ui::{App, Key};
use ratatui::crossterm::event::{self, Event};

/// A live view of the procession runtimes of this user: each tree, its queues, rates,
/// restarts, memory and CPU. Reads only: the programs it watches are not disturbed.
#[derive(Parser, Debug)]
#[command(name = "procession-top", version)]
struct Args {
    /// Print once and exit (two samples one interval apart, so rates are filled in).
    #[arg(long)]
    once: bool,
    /// JSON instead of the terminal view: one line per refresh (with --once, one line).
    #[arg(long)]
    json: bool,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
    interval: f64,
    /// Watch only the runtime whose root process has this pid. With --json, exit once it
    /// has ended (after a last line that says so).
    #[arg(long)]
    pid: Option<u32>,
    /// Where runtime directories are (default: $PROCESSION_SHM_DIR, or /dev/shm).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Width of the --once text view.
    #[arg(long, default_value_t = 132)]
    width: u16,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=3600.0).contains(&v) => Ok(v),
        _ => Err("expected seconds between 0.01 and 3600".into()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut source = Source::all();
    if let Some(dir) = &args.dir {
        source.base = dir.clone();
    }
    source.pid = args.pid;
    if let Some(pid) = args.pid {
        if source.list().is_empty() {
            eprintln!(
                "procession-top: no procession runtime of this user has root pid {pid} (under {})",
                source.base.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let interval = Duration::from_secs_f64(args.interval);
    let mut tracker = Tracker::new(source);
    let result = if args.once {
        once(&mut tracker, interval, &args)
    } else if args.json {
        stream(&mut tracker, interval, args.pid.is_some())
    } else {
        interactive(&mut tracker, interval)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever read our output went away (`| head`): nothing to report.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("procession-top: {e}");
            ExitCode::FAILURE
        }
    }
}

fn json_line(frames: &[RuntimeFrame]) -> std::io::Result<String> {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let value = serde_json::json!({ "time": time, "runtimes": frames });
    serde_json::to_string(&value).map_err(std::io::Error::other)
}

fn once(tracker: &mut Tracker, interval: Duration, args: &Args) -> std::io::Result<()> {
    tracker.refresh();
    std::thread::sleep(interval);
    let frames = tracker.refresh();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", json_line(&frames)?)?;
    } else {
        write!(out, "{}", procession_top::text(frames, args.width))?;
    }
    out.flush()
}

fn stream(tracker: &mut Tracker, interval: Duration, one: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    loop {
        let started = Instant::now();
        let frames = tracker.refresh();
        writeln!(out, "{}", json_line(&frames)?)?;
        out.flush()?;
        if one && frames.iter().all(|f| f.ended) {
            return Ok(());
        }
        std::thread::sleep(interval.saturating_sub(started.elapsed()));
    }
}

fn interactive(tracker: &mut Tracker, interval: Duration) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = run(&mut terminal, tracker, interval);
    ratatui::restore();
    result
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    tracker: &mut Tracker,
    interval: Duration,
) -> std::io::Result<()> {
    let mut app = App::new();
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next {
            app.update(tracker.refresh());
            next = Instant::now() + interval;
        }
        terminal.draw(|f| app.draw(f))?;
        // Keys until the next refresh; each one redraws at once.
        if event::poll(next.saturating_duration_since(Instant::now()))? {
            if let Event::Key(k) = event::read()? {
                if let Some(key) = Key::of(&k) {
                    app.key(key);
                }
            }
        }
        if app.quit {
            return Ok(());
        }
    }
}
