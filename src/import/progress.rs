//! How an import shows that it is moving: a progress bar on a terminal (indicatif: bytes of the
//! file, items so far, rate, time left), a plain line every few seconds otherwise, and a row in
//! the database for imports started from `/admin/import`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::Report;

pub trait Progress: Send {
    /// `done` of `total` units of the source (bytes of a file, rows of a database) have been
    /// read; `report` says what has been done with them.
    fn tick(&mut self, done: u64, total: u64, report: &Report);
    fn finish(&mut self) {}
}

/// Nothing shown (tests, the check pass).
pub struct Silent;

impl Progress for Silent {
    fn tick(&mut self, _: u64, _: u64, _: &Report) {}
}

/// The progress of a command: a bar when standard error is a terminal, else periodic lines.
pub fn for_command() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::new())
    } else {
        Box::new(Lines::every(Duration::from_secs(5)))
    }
}

pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new() -> Bar {
        Bar { bar: None }
    }
}

impl Progress for Bar {
    fn tick(&mut self, done: u64, total: u64, report: &Report) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {percent:>3}% {msg} · {per_sec} · {eta} left",
            ) {
                bar.set_style(style);
            }
            bar
        });
        bar.set_length(total.max(done));
        bar.set_position(done);
        bar.set_message(report.progress_line());
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A line on standard error every `every`: percent of the source read and items so far.
pub struct Lines {
    every: Duration,
    last: Instant,
    started: Instant,
}

impl Lines {
    pub fn every(every: Duration) -> Lines {
        let now = Instant::now();
        Lines {
            every,
            last: now,
            started: now,
        }
    }
}

pub fn percent(done: u64, total: u64) -> u64 {
    (done.saturating_mul(100) / total.max(1)).min(100)
}

impl Progress for Lines {
    fn tick(&mut self, done: u64, total: u64, report: &Report) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        eprintln!(
            "import: {}% read, {} ({}s)",
            percent(done, total),
            report.progress_line(),
            self.started.elapsed().as_secs()
        );
    }
}
