//! Logs and metrics. Logs: tracing to standard error, filtered by `RUST_LOG` (default `info`),
//! as readable text or as one JSON object per line (`LECTERN_LOG_FORMAT`). Metrics: the
//! counters and gauges `/metrics` reports, kept per server (`Metrics`).

mod json;
mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use metrics::{Metrics, Snapshot, status_class};

/// Installs the global subscriber once; later calls (tests) keep the first.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(json::SpanFields)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(json::JsonLines)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    // Colour codes only for a person at a terminal, never in a file or a log
                    // collector.
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
}
