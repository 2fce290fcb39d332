//! What operators read: `/metrics` in the Prometheus text format (parsed here by a Prometheus
//! text parser), who may read it, request ids, and JSON log lines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{TestApp, TestDb, WELCOME, client, hidden_value};

/// The samples of one scrape, by name and labels.
struct Scrape(Vec<prometheus_parse::Sample>);

impl Scrape {
    async fn of(app: &TestApp) -> (Scrape, String) {
        let response = client().get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let text = response.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
        (Scrape(scrape.samples), text)
    }

    /// The value of the sample `name` whose labels include `labels`; 0 when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.0
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().map(|b| b.count as u64).max().unwrap_or(0)
                }
                _ => 0,
            })
            .sum()
    }
}

const POST_ROUTE: &[(&str, &str)] = &[
    ("route", "/posts/:slug"),
    ("method", "GET"),
    ("status_class", "2xx"),
];

#[tokio::test]
async fn metrics_are_prometheus_text_and_their_counters_move_with_requests() {
    let app = TestApp::spawn().await;
    // On PostgreSQL, kept pages are trusted once the change listener is live.
    if app.database_url.starts_with("postgres") {
        while Scrape::of(&app)
            .await
            .0
            .value("lectern_change_listener_live", &[])
            != 1.0
        {
            tokio::task::yield_now().await;
        }
    }
    let (before, _) = Scrape::of(&app).await;
    let reader = client();
    for _ in 0..3 {
        let page = reader
            .get(app.url(&format!("/posts/{WELCOME}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
    }
    assert_eq!(
        client()
            .get(app.url("/no/such/page"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (viewed, _) = Scrape::of(&app).await;
    let viewed_moved = |name: &str, labels: &[(&str, &str)]| {
        viewed.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(viewed_moved("lectern_http_requests_total", POST_ROUTE), 3.0);
    assert_eq!(
        viewed.histogram_count(
            "lectern_http_request_duration_seconds",
            &[("route", "/posts/:slug"), ("method", "GET")]
        ) - before.histogram_count(
            "lectern_http_request_duration_seconds",
            &[("route", "/posts/:slug"), ("method", "GET")]
        ),
        3
    );
    assert_eq!(
        viewed_moved(
            "lectern_http_requests_total",
            &[("route", "unmatched"), ("status_class", "4xx")]
        ),
        1.0
    );
    // The first anonymous view made the page and kept it; the next two were served from it
    // (on PostgreSQL a background task's write in between may make one again).
    let (misses, hits) = (
        viewed_moved("lectern_page_cache_misses_total", &[]),
        viewed_moved("lectern_page_cache_hits_total", &[]),
    );
    assert_eq!(misses + hits, 3.0);
    assert!(misses >= 1.0);
    if app.database_url.starts_with("sqlite") {
        assert_eq!(hits, 2.0);
    }
    assert_eq!(viewed_moved("lectern_thread_cache_misses_total", &[]), 1.0);
    assert!(viewed.value("lectern_page_cache_bytes", &[]) > 0.0);

    // One comment held for moderation, one refused as a duplicate, one refused as invalid.
    app.advance(60);
    let fields = [
        ("name", "Metric Reader"),
        ("email", "metric@example.com"),
        ("body", "Counting things is fun."),
    ];
    assert_eq!(app.comment(WELCOME, &fields).await.status(), 303);
    assert_eq!(app.comment(WELCOME, &fields).await.status(), 409);
    let invalid = [("name", ""), ("email", "nobody"), ("body", "x")];
    assert_eq!(app.comment(WELCOME, &invalid).await.status(), 422);
    // A failed login.
    let login = reader.get(app.url("/admin/login")).send().await.unwrap();
    let csrf = hidden_value(&login.text().await.unwrap(), "csrf_token").unwrap();
    let refused = reader
        .post(app.url("/admin/login"))
        .form(&[
            ("email", "nobody@example.com"),
            ("password", "not the password at all"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let (after, text) = Scrape::of(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    // Route patterns only: no slug, no raw path.
    assert!(
        !text.contains(WELCOME),
        "a raw path leaked into the metrics"
    );
    assert!(!text.contains("/no/such/page"));
    assert!(!text.contains("metric@example.com"));

    assert_eq!(
        moved("lectern_comments_total", &[("outcome", "pending")]),
        1.0
    );
    assert_eq!(
        moved(
            "lectern_comments_held_total",
            &[("outcome", "pending"), ("reason", "first_comment")]
        ),
        1.0
    );
    assert_eq!(
        moved("lectern_comments_total", &[("outcome", "refused")]),
        2.0
    );
    assert_eq!(
        moved("lectern_comments_refused_total", &[("status", "409")]),
        1.0
    );
    assert_eq!(
        moved("lectern_comments_refused_total", &[("status", "422")]),
        1.0
    );
    assert_eq!(moved("lectern_login_failures_total", &[]), 1.0);
    assert!(after.value("lectern_thread_cache_bytes", &[]) > 0.0);
    // The held comment notified the moderators: the message waits in the outbox.
    assert!(after.value("lectern_outbox_messages", &[("state", "queued")]) >= 0.0);
    assert!(after.value("lectern_db_pool_connections", &[("state", "idle")]) >= 1.0);
    assert!(after.histogram_count("lectern_db_pool_wait_seconds", &[]) > 0);
    assert!(after.value("process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(after.value("process_open_fds", &[]) > 3.0);
    assert_eq!(after.value("lectern_build_info", &[]), 1.0);
}

#[tokio::test]
async fn mail_counters_follow_the_outbox() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    let (before, _) = Scrape::of(&app).await;
    let admin = app.staff_client("admin").await;
    let csrf = app.csrf(&admin).await;
    let sent = admin
        .post(app.url("/admin/mail/test"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 303);
    smtp.wait_for(1).await;
    // The worker records the message as sent right after the server's reply.
    let mut after;
    loop {
        after = Scrape::of(&app).await.0;
        if after.value("lectern_mail_sent_total", &[])
            > before.value("lectern_mail_sent_total", &[])
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        after.value("lectern_mail_sent_total", &[]) - before.value("lectern_mail_sent_total", &[]),
        1.0
    );

    smtp.set_mode(crate::smtp::Mode::Reject);
    let csrf = app.csrf(&admin).await;
    admin
        .post(app.url("/admin/mail/test"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    loop {
        after = Scrape::of(&app).await.0;
        if after.value("lectern_outbox_messages", &[("state", "failed")]) >= 1.0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        after.value("lectern_smtp_errors_total", &[("class", "rejected")]),
        1.0
    );
}

#[tokio::test]
async fn metrics_answer_loopback_or_the_bearer_token_and_nobody_else() {
    // Behind a trusted proxy, the client is the forwarded address, not the proxy's.
    let app = TestApp::spawn_with(&[("LECTERN_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let outside = client()
        .get(app.url("/metrics"))
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 403);
    assert!(!outside.text().await.unwrap().contains("lectern_"));
    let local = client()
        .get(app.url("/metrics"))
        .header("X-Forwarded-For", "127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);

    let token = "a-long-enough-metrics-token";
    let app = TestApp::spawn_with(&[
        ("LECTERN_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("LECTERN_METRICS_TOKEN", token),
    ])
    .await;
    let ask = |bearer: Option<&'static str>| {
        let mut request = client()
            .get(app.url("/metrics"))
            .header("X-Forwarded-For", "198.51.100.4");
        if let Some(bearer) = bearer {
            request = request.header("Authorization", format!("Bearer {bearer}"));
        }
        request.send()
    };
    let none = ask(None).await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
    assert_eq!(
        ask(Some("a-long-enough-wrong-token"))
            .await
            .unwrap()
            .status(),
        401
    );
    let right = ask(Some("a-long-enough-metrics-token")).await.unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(right.headers()["cache-control"], "no-store");
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("lectern_http_requests_total")
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_trusted_proxy_may_supply_it() {
    let app = TestApp::spawn().await;
    let first = app.get("/").await;
    let second = app.get("/").await;
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!id(&first).is_empty());
    assert_ne!(id(&first), id(&second), "each request has its own id");
    // Not from a trusted proxy: the header is ignored.
    let ignored = client()
        .get(app.url("/"))
        .header("X-Request-Id", "from-anyone-123")
        .send()
        .await
        .unwrap();
    assert_ne!(id(&ignored), "from-anyone-123");

    let proxied = TestApp::spawn_with(&[("LECTERN_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let kept = client()
        .get(proxied.url("/"))
        .header("X-Request-Id", "edge-7f3a.42")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&kept), "edge-7f3a.42");
    // A value that could forge log structure is replaced.
    let replaced = client()
        .get(proxied.url("/"))
        .header("X-Request-Id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(id(&replaced), "a b\"c");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let db = TestDb::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .current_dir(db.dir.path())
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env("LECTERN_BIND", "127.0.0.1:0")
        .env("LECTERN_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut out = BufReader::new(stdout).lines();
    let address = loop {
        let line = out.next().expect("lectern printed its address").unwrap();
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.to_string();
        }
    };
    std::thread::spawn(move || out.for_each(drop));

    let response = client()
        .get(format!("{address}/posts/{WELCOME}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut found: Option<HashMap<String, serde_json::Value>> = None;
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        assert!(!line.contains('\u{1b}'), "no escape codes: {line}");
        let object: HashMap<String, serde_json::Value> =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(object.contains_key(key), "{key} missing: {line}");
        }
        lines.push(line);
        if object.get("request_id").and_then(|v| v.as_str()) == Some(request_id.as_str())
            && object.get("message").and_then(|v| v.as_str()) == Some("request")
        {
            found = Some(object);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no request line for {request_id}: {lines:#?}"));
    assert_eq!(line["route"], "/posts/:slug");
    assert_eq!(line["status"], 200);
    assert_eq!(line["level"], "INFO");
    assert!(line["latency_ms"].as_f64().is_some());
}
