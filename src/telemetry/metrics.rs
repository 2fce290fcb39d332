//! What `/metrics` reports, in the Prometheus text format. Each server keeps its own registry
//! (tests run many servers in one process); counters move where things happen, and the
//! gauges that describe the current state (the outbox, the pool, the cache, the process) are
//! read when the metrics are asked for.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Upper bounds of the latency buckets, in seconds: a cached page answers in well under a
/// millisecond, a comment with its fsync in a few.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    comments: IntCounterVec,
    comments_refused: IntCounterVec,
    comments_held: IntCounterVec,
    mail_sent: IntCounter,
    smtp_errors: IntCounterVec,
    outbox: IntGaugeVec,
    outbox_oldest: IntGauge,
    db_connections: IntGaugeVec,
    db_wait: Histogram,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    cache_bytes: IntGauge,
    pages_hits: IntCounter,
    pages_misses: IntCounter,
    pages_bytes: IntGauge,
    listener_live: IntGauge,
    listener_notifications: IntGauge,
    listener_connections: IntGauge,
    logins_failed: IntCounter,
    logins_throttled: IntCounter,
    resident_bytes: IntGauge,
    open_fds: IntGauge,
}

/// The state read at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Snapshot {
    pub outbox_queued: i64,
    pub outbox_sending: i64,
    pub outbox_failed: i64,
    pub outbox_oldest_queued_secs: i64,
    pub db_in_use: i64,
    pub db_idle: i64,
    pub cache_bytes: i64,
    pub page_cache_bytes: i64,
    /// PostgreSQL's change listener: (listening, notifications, connections).
    pub listener: Option<(bool, u64, u64)>,
}

/// "2xx", "4xx", …: the label a status code is counted under.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    register(registry, name, metric)
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    register(registry, name, metric)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    register(registry, name, metric)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    register(registry, name, metric)
}

/// Names and labels are constants of this file, each registered once in a fresh registry:
/// a failure here is a mistake in this file, caught by the first test that starts a server.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    name: &str,
    metric: M,
) -> M {
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        unreachable!("metric {name}: {e}");
    }
    metric
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "lectern_http_request_duration_seconds",
                "Time from a request's arrival to its response, by route pattern",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .unwrap_or_else(|e| unreachable!("latency histogram: {e}"));
        let http_seconds = register(&r, "latency", http_seconds);
        let db_wait = Histogram::with_opts(
            HistogramOpts::new(
                "lectern_db_pool_wait_seconds",
                "Time spent waiting for a database connection from the pool",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|e| unreachable!("pool wait histogram: {e}"));
        let db_wait = register(&r, "pool wait", db_wait);
        let build = gauge_vec(
            &r,
            "lectern_build_info",
            "The running version of lectern (always 1)",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Metrics {
            http_requests: counter_vec(
                &r,
                "lectern_http_requests_total",
                "HTTP requests answered, by route pattern, method and status class",
                &["route", "method", "status_class"],
            ),
            http_seconds,
            comments: counter_vec(
                &r,
                "lectern_comments_total",
                "Comments submitted through the form, by outcome (approved, pending, spam, refused)",
                &["outcome"],
            ),
            comments_refused: counter_vec(
                &r,
                "lectern_comments_refused_total",
                "Comment submissions refused, by the status code of the answer",
                &["status"],
            ),
            comments_held: counter_vec(
                &r,
                "lectern_comments_held_total",
                "Comments held for moderation or marked as spam, by the rule that held them",
                &["outcome", "reason"],
            ),
            mail_sent: counter(
                &r,
                "lectern_mail_sent_total",
                "Messages handed to the SMTP server (or written as .eml files)",
            ),
            smtp_errors: counter_vec(
                &r,
                "lectern_smtp_errors_total",
                "Failed delivery attempts, by class: unreachable (connection or timeout, retried), \
                 deferred (4xx, retried), rejected (5xx, failed)",
                &["class"],
            ),
            outbox: gauge_vec(
                &r,
                "lectern_outbox_messages",
                "Messages in the outbox by state",
                &["state"],
            ),
            outbox_oldest: gauge(
                &r,
                "lectern_outbox_oldest_queued_seconds",
                "Age of the oldest message waiting to be sent (0 when none waits)",
            ),
            db_connections: gauge_vec(
                &r,
                "lectern_db_pool_connections",
                "Database connections of this server's pool, by state",
                &["state"],
            ),
            db_wait,
            cache_hits: counter(
                &r,
                "lectern_thread_cache_hits_total",
                "Post pages served with a kept rendered thread",
            ),
            cache_misses: counter(
                &r,
                "lectern_thread_cache_misses_total",
                "Post pages whose thread had to be rendered",
            ),
            cache_bytes: gauge(
                &r,
                "lectern_thread_cache_bytes",
                "Bytes of rendered threads kept in memory",
            ),
            pages_hits: counter(
                &r,
                "lectern_page_cache_hits_total",
                "Anonymous page views served from a kept page without the database",
            ),
            pages_misses: counter(
                &r,
                "lectern_page_cache_misses_total",
                "Anonymous page views that made (and kept) their page",
            ),
            pages_bytes: gauge(
                &r,
                "lectern_page_cache_bytes",
                "Bytes of kept pages, their compressed forms included",
            ),
            listener_live: gauge(
                &r,
                "lectern_change_listener_live",
                "PostgreSQL: 1 while the change-notification connection listens (kept pages are \
                 then served without the database), 0 otherwise",
            ),
            listener_notifications: gauge(
                &r,
                "lectern_change_notifications",
                "PostgreSQL: change notifications received since start",
            ),
            listener_connections: gauge(
                &r,
                "lectern_change_listener_connections",
                "PostgreSQL: times the change-notification connection was (re)established",
            ),
            logins_failed: counter(
                &r,
                "lectern_login_failures_total",
                "Logins refused for wrong credentials",
            ),
            logins_throttled: counter(
                &r,
                "lectern_login_throttled_total",
                "Logins refused because of too many recent failures",
            ),
            resident_bytes: gauge(
                &r,
                "process_resident_memory_bytes",
                "Resident memory of the lectern process",
            ),
            open_fds: gauge(
                &r,
                "process_open_fds",
                "Open file descriptors of the lectern process",
            ),
            registry: r,
        }
    }

    /// One answered request. `route` is the matched pattern, never the raw path.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, method, status_class(status)])
            .inc();
        self.http_seconds
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// A comment stored as `outcome` (approved, pending or spam); `reason` names the rule that
    /// held it, if one did.
    pub fn comment_stored(&self, outcome: &str, reason: Option<&str>) {
        self.comments.with_label_values(&[outcome]).inc();
        if let Some(reason) = reason {
            self.comments_held
                .with_label_values(&[outcome, reason])
                .inc();
        }
    }

    pub fn comment_refused(&self, status: u16) {
        self.comments.with_label_values(&["refused"]).inc();
        self.comments_refused
            .with_label_values(&[status.to_string().as_str()])
            .inc();
    }

    pub fn mail_sent(&self) {
        self.mail_sent.inc();
    }

    /// `class`: unreachable, deferred or rejected.
    pub fn smtp_error(&self, class: &str) {
        self.smtp_errors.with_label_values(&[class]).inc();
    }

    pub fn login_failed(&self) {
        self.logins_failed.inc();
    }

    pub fn login_throttled(&self) {
        self.logins_throttled.inc();
    }

    /// The histogram the database pool records its waits in.
    pub fn pool_wait(&self) -> Histogram {
        self.db_wait.clone()
    }

    pub fn thread_cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub fn thread_cache_miss(&self) {
        self.cache_misses.inc();
    }

    pub fn page_cache_hit(&self) {
        self.pages_hits.inc();
    }

    pub fn page_cache_miss(&self) {
        self.pages_misses.inc();
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self, now: &Snapshot) -> String {
        self.outbox
            .with_label_values(&["queued"])
            .set(now.outbox_queued);
        self.outbox
            .with_label_values(&["sending"])
            .set(now.outbox_sending);
        self.outbox
            .with_label_values(&["failed"])
            .set(now.outbox_failed);
        self.outbox_oldest.set(now.outbox_oldest_queued_secs);
        self.db_connections
            .with_label_values(&["in_use"])
            .set(now.db_in_use);
        self.db_connections
            .with_label_values(&["idle"])
            .set(now.db_idle);
        self.cache_bytes.set(now.cache_bytes);
        self.pages_bytes.set(now.page_cache_bytes);
        if let Some((live, notifications, connections)) = now.listener {
            self.listener_live.set(i64::from(live));
            self.listener_notifications.set(notifications as i64);
            self.listener_connections.set(connections as i64);
        }
        if let Some(process) = ProcessStats::read() {
            self.resident_bytes.set(process.resident_bytes);
            self.open_fds.set(process.open_fds);
        }
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding our own well-formed families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The process's resident memory and open files, from `/proc` (Linux); elsewhere absent.
struct ProcessStats {
    resident_bytes: i64,
    open_fds: i64,
}

impl ProcessStats {
    fn read() -> Option<ProcessStats> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib: i64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
        Some(ProcessStats {
            resident_bytes: kib * 1024,
            open_fds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_and_render_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.observe_request("/posts/:slug", "GET", 200, Duration::from_millis(2));
        metrics.comment_stored("pending", Some("moderated"));
        metrics.comment_refused(429);
        let text = metrics.render(&Snapshot::default());
        assert!(text.contains(
            "lectern_http_requests_total{method=\"GET\",route=\"/posts/:slug\",status_class=\"2xx\"} 1"
        ));
        assert!(text.contains("lectern_comments_refused_total{status=\"429\"} 1"));
        assert!(text.contains("# TYPE lectern_http_request_duration_seconds histogram"));
        assert!(text.contains("process_resident_memory_bytes"));
    }
}
