//! Mail under faults: an SMTP server that never answers, a slow one shared by two servers, a
//! database error after the SMTP server accepted a message, and a stop in the middle of a
//! delivery. The promise is "later, never lost, never twice".

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use lectern::config::Config;
use lectern::db::schema::outbox;
use lectern::startup::Application;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::common::{TestApp, TestDb, client};
use crate::smtp::SmtpServer;

/// An SMTP server on loopback that can stay silent (accept the connection and never say a
/// word), answer every line only after a delay, and records each accepted message.
#[derive(Clone)]
struct FakeSmtp {
    port: u16,
    silent: Arc<AtomicBool>,
    delay: Duration,
    connections: Arc<AtomicUsize>,
    messages: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

impl FakeSmtp {
    async fn start(silent: bool, delay: Duration) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = FakeSmtp {
            port: listener.local_addr().unwrap().port(),
            silent: Arc::new(AtomicBool::new(silent)),
            delay,
            connections: Arc::default(),
            messages: Arc::default(),
            changed: Arc::new(Notify::new()),
        };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let session = accepting.clone();
                session.connections.fetch_add(1, Ordering::SeqCst);
                session.changed.notify_waiters();
                tokio::spawn(async move { session.converse(socket).await });
            }
        });
        server
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// From now on, new connections are answered.
    fn start_answering(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }

    fn message_ids(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds.
    async fn wait_until(&self, what: &str, done: impl Fn(&FakeSmtp) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let changed = self.changed.notified();
            if done(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "waited in vain for {what}: {} connections, messages {:?}",
                    self.connections.load(Ordering::SeqCst),
                    self.message_ids()
                );
            }
        }
    }

    async fn reply(&self, write: &mut tokio::net::tcp::OwnedWriteHalf, text: &[u8]) -> bool {
        tokio::time::sleep(self.delay).await;
        write.write_all(text).await.is_ok()
    }

    async fn converse(&self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        if self.silent.load(Ordering::SeqCst) {
            // Holds the connection open and never answers.
            let mut lines = AsyncBufReader::new(read).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
            return;
        }
        let mut lines = AsyncBufReader::new(read).lines();
        if !self.reply(&mut write, b"220 fake.local ESMTP\r\n").await {
            return;
        }
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-fake.local\r\n250 8BITMIME\r\n"
            } else if upper == "DATA" {
                if !self.reply(&mut write, b"354 go ahead\r\n").await {
                    return;
                }
                let mut message_id = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    if let Some(id) = line.strip_prefix("Message-ID: ") {
                        message_id = id.trim().to_string();
                    }
                }
                self.messages.lock().unwrap().push(message_id);
                self.changed.notify_waiters();
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                let _ = self.reply(&mut write, b"221 bye\r\n").await;
                return;
            } else {
                b"250 OK\r\n"
            };
            if !self.reply(&mut write, reply).await {
                return;
            }
        }
    }
}

/// A running app whose whole shutdown (server, then mail worker) can be awaited.
struct RunningApp {
    app: TestApp,
    run: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    async fn start(db: &TestDb, settings: &[(&str, &str)]) -> RunningApp {
        let mut values: HashMap<String, String> = HashMap::new();
        values.insert("LECTERN_DATABASE_URL".into(), db.url.clone());
        values.insert("LECTERN_BIND".into(), "127.0.0.1:0".into());
        values.insert(
            "LECTERN_MAIL_DIR".into(),
            db.dir.path().join("mail").display().to_string(),
        );
        values.insert("LECTERN_DATABASE_POOL_SIZE".into(), "4".into());
        for (k, v) in settings {
            values.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_values(&values).expect("test config");
        let app = Application::build(config).await.expect("app builds");
        let test_app = TestApp {
            address: format!("http://127.0.0.1:{}", app.port()),
            client: client(),
            state: app.state(),
            handle: app.handle(),
            database_url: db.url.clone(),
            test_db: None,
            setup_url: app.setup_url(),
        };
        let run = tokio::spawn(app.run_until_stopped());
        RunningApp { app: test_app, run }
    }

    /// Stops the server as SIGTERM does and waits until the mail worker has finished too.
    async fn stop(self) {
        self.app.handle.stop(true).await;
        self.run.await.unwrap().unwrap();
    }
}

/// Puts `n` messages in the outbox, as a change's transaction would, and wakes the worker.
async fn queue_mail(app: &TestApp, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n)
        .map(|_| format!("<{}@fault.test>", lectern::crypto::random_token(12)))
        .collect();
    let now = app.state.clock.now();
    let rows = ids.clone();
    app.state
        .db
        .write(move |conn| -> Result<(), lectern::db::DbError> {
            for id in &rows {
                lectern::notify::outbox::insert(
                    conn,
                    &lectern::notify::outbox::NewOutboxRow {
                        message_id: id,
                        kind: "test",
                        to_name: "Reader",
                        to_address: "reader@example.com",
                        subject: "A message under faults",
                        body_text: "text",
                        body_html: "<p>text</p>",
                        list_unsubscribe: None,
                        status: "queued",
                        next_attempt_at: now,
                        created_at: now,
                    },
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    app.state.mail_wakeup.notify_one();
    ids
}

/// (status, locked_until, next_attempt_at, last_error) of the message.
type RowState = (
    String,
    Option<chrono::NaiveDateTime>,
    chrono::NaiveDateTime,
    Option<String>,
);

async fn row_state(app: &TestApp, message_id: &str) -> RowState {
    let message_id = message_id.to_string();
    app.db(move |conn| {
        Ok(outbox::table
            .filter(outbox::message_id.eq(message_id))
            .select((
                outbox::status,
                outbox::locked_until,
                outbox::next_attempt_at,
                outbox::last_error,
            ))
            .first(conn)?)
    })
    .await
}

/// Looks at the row until `done` holds (bounded; each look is a query, not a timed wait).
async fn wait_for_row(
    app: &TestApp,
    message_id: &str,
    what: &str,
    done: impl Fn(&RowState) -> bool,
) -> RowState {
    for _ in 0..600 {
        let state = row_state(app, message_id).await;
        if done(&state) {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the message never reached {what}: {:?}",
        row_state(app, message_id).await
    );
}

#[tokio::test]
async fn start_up_prints_listening_before_an_smtp_server_that_never_answers_has_said_a_word() {
    let db = TestDb::new();
    let silent = FakeSmtp::start(true, Duration::ZERO).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .current_dir(db.dir.path())
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env("LECTERN_BIND", "127.0.0.1:0")
        .env("LECTERN_SMTP_URL", silent.url())
        // Far longer than the test waits: only a start-up that does not wait for the check
        // can print its address.
        .env("LECTERN_SMTP_TIMEOUT_SECS", "300")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    // Read on a blocking thread: the fake server runs on this test's runtime meanwhile.
    let listening = tokio::task::spawn_blocking(move || {
        loop {
            match lines_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with("listening on ") => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    })
    .await
    .unwrap();
    let Some(listening) = listening else {
        let _ = child.kill();
        panic!("lectern never printed its address");
    };
    assert!(listening.starts_with("listening on http://127.0.0.1:"));
    // The check is under way (it connected), yet the server has not answered once.
    silent
        .wait_until("the start-up check to connect", |s| {
            s.connections.load(Ordering::SeqCst) >= 1
        })
        .await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn the_worker_gives_up_on_an_smtp_server_that_never_answers_at_its_deadline_and_delivers_once_it_answers()
 {
    let smtp = FakeSmtp::start(true, Duration::ZERO).await;
    let url = smtp.url();
    let app = TestApp::spawn_with(&[
        ("LECTERN_SMTP_URL", &url),
        ("LECTERN_SMTP_TIMEOUT_SECS", "1"),
    ])
    .await;
    let ids = queue_mail(&app, 1).await;
    // The attempt ends at its deadline: back in the queue with the reason, not stuck sending.
    let (status, locked_until, _, error) = wait_for_row(
        &app,
        &ids[0],
        "a timed-out attempt",
        |(status, _, _, error)| status == "queued" && error.is_some(),
    )
    .await;
    assert_eq!(status, "queued");
    assert_eq!(locked_until, None);
    assert!(
        error.as_deref().unwrap_or("").contains("no answer within"),
        "{error:?}"
    );
    assert!(smtp.message_ids().is_empty());

    smtp.start_answering();
    for _ in 0..100 {
        app.advance(2 * 3600);
        app.state.mail_wakeup.notify_one();
        if row_state(&app, &ids[0]).await.0 == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(row_state(&app, &ids[0]).await.0, "sent");
    assert_eq!(smtp.message_ids(), ids, "delivered once the server answers");
}

#[tokio::test]
async fn two_servers_sharing_a_slow_smtp_server_deliver_every_message_exactly_once() {
    // Each reply takes a while, so that one server could never send a batch of messages
    // within one lease (six step deadlines of one second).
    let smtp = FakeSmtp::start(false, Duration::from_millis(300)).await;
    let url = smtp.url();
    let settings = [
        ("LECTERN_SMTP_URL", url.as_str()),
        ("LECTERN_SMTP_TIMEOUT_SECS", "1"),
    ];
    let db = TestDb::new();
    let a = RunningApp::start(&db, &settings).await;
    let b = RunningApp::start(&db, &settings).await;
    let ids = queue_mail(&a.app, 8).await;
    b.app.state.mail_wakeup.notify_one();
    for id in &ids {
        wait_for_row(&a.app, id, "sent", |(status, ..)| status == "sent").await;
    }
    // Both workers finish whatever they still have in hand before anything is counted.
    a.stop().await;
    b.stop().await;
    let mut delivered = smtp.message_ids();
    delivered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected, "each Message-ID exactly once");
}

#[tokio::test]
async fn a_database_error_after_the_smtp_server_accepted_a_message_does_not_send_it_again() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    // The database "does not answer" the first three times the worker records the message.
    app.state
        .mail_faults
        .fail_mark_sent
        .store(3, Ordering::SeqCst);
    let first = queue_mail(&app, 1).await;
    smtp.wait_for(1).await;

    // Long after any lease would have ended, a second message goes out; the first, had it
    // been left claimable, would be due before it.
    app.advance(2 * 3600);
    let second = queue_mail(&app, 1).await;
    let mails = smtp.wait_for(2).await;
    let ids: Vec<String> = mails
        .iter()
        .map(|m| m.header("Message-ID").unwrap_or_default())
        .collect();
    assert_eq!(ids, vec![first[0].clone(), second[0].clone()]);
    assert_eq!(
        app.state.mail_faults.fail_mark_sent.load(Ordering::SeqCst),
        0,
        "the injected errors happened"
    );
    assert_eq!(row_state(&app, &first[0]).await.0, "sent");
}

#[tokio::test]
async fn a_message_being_sent_when_the_server_stops_is_released_and_sent_right_after_a_restart() {
    let silent = FakeSmtp::start(true, Duration::ZERO).await;
    let silent_url = silent.url();
    let db = TestDb::new();
    // A long deadline: the worker is still waiting for the greeting when the server stops.
    let first = RunningApp::start(
        &db,
        &[
            ("LECTERN_SMTP_URL", &silent_url),
            ("LECTERN_SMTP_TIMEOUT_SECS", "120"),
        ],
    )
    .await;
    let ids = queue_mail(&first.app, 1).await;
    wait_for_row(&first.app, &ids[0], "sending", |(status, ..)| {
        status == "sending"
    })
    .await;
    let now = first.app.state.clock.now();
    first.stop().await;

    let (status, locked_until, next_attempt_at, _) = row_state_in(&db.url, &ids[0]);
    assert_eq!(status, "queued", "the lease was released");
    assert_eq!(locked_until, None);
    assert!(
        next_attempt_at <= now + chrono::Duration::seconds(1),
        "due at once"
    );

    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let second = RunningApp::start(&db, &[("LECTERN_SMTP_URL", &smtp_url)]).await;
    // No clock moves: the message is due as soon as the restarted worker looks.
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].header("Message-ID"), Some(ids[0].clone()));
    second.stop().await;
}

/// The row as a fresh connection sees it, with no app running.
fn row_state_in(database_url: &str, message_id: &str) -> RowState {
    let db = lectern::db::Db::open(database_url, lectern::config::SqliteSync::Normal, 1).unwrap();
    let message_id = message_id.to_string();
    db.write_blocking(move |conn| -> Result<RowState, lectern::db::DbError> {
        Ok(outbox::table
            .filter(outbox::message_id.eq(message_id))
            .select((
                outbox::status,
                outbox::locked_until,
                outbox::next_attempt_at,
                outbox::last_error,
            ))
            .first(conn)?)
    })
    .unwrap()
}
