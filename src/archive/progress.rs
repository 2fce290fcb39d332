//! How export, backup and restore show that they are moving: a progress bar on a terminal, a
//! plain line every few seconds otherwise (as imports do).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub trait Progress: Send {
    /// `done` of `total` units (bytes of the file, or records) so far; `records` records have
    /// been `verb` ("written", "checked", "restored").
    fn tick(&mut self, done: u64, total: u64, verb: &str, records: u64);
    fn finish(&mut self) {}
}

/// Nothing shown (tests, the web).
pub struct Silent;

impl Progress for Silent {
    fn tick(&mut self, _: u64, _: u64, _: &str, _: u64) {}
}

/// A bar when standard error is a terminal, else a line every five seconds, named `command`.
pub fn for_command(command: &'static str) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar { bar: None })
    } else {
        Box::new(Lines::every(command, Duration::from_secs(5)))
    }
}

pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress for Bar {
    fn tick(&mut self, done: u64, total: u64, verb: &str, records: u64) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} · {eta} left")
            {
                bar.set_style(style);
            }
            bar
        });
        bar.set_length(total.max(done));
        bar.set_position(done);
        bar.set_message(format!("{records} records {verb}"));
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

pub struct Lines {
    command: &'static str,
    every: Duration,
    last: Instant,
    started: Instant,
}

impl Lines {
    pub fn every(command: &'static str, every: Duration) -> Lines {
        let now = Instant::now();
        Lines {
            command,
            every,
            last: now,
            started: now,
        }
    }
}

impl Progress for Lines {
    fn tick(&mut self, done: u64, total: u64, verb: &str, records: u64) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        eprintln!(
            "{}: {}%, {records} records {verb} ({}s)",
            self.command,
            (done.saturating_mul(100) / total.max(1)).min(100),
            self.started.elapsed().as_secs()
        );
    }
}
