//! The test harness: the real application on port 0 with a fresh database, and an HTTP client
//! that keeps cookies and does not follow redirects.

use std::collections::HashMap;

use actix_web::web;
use lectern::config::Config;
use lectern::startup::Application;
use lectern::state::AppState;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub handle: actix_web::dev::ServerHandle,
    pub database_url: String,
    pub test_db: Option<TestDb>,
    /// The `setup: URL` line start-up printed, while no admin exists.
    pub setup_url: Option<String>,
}

/// A fresh database for one test: a SQLite file in a temporary folder, or, when
/// `LECTERN_TEST_DATABASE_URL` names a PostgreSQL server, a new database cloned from a
/// migrated template (fast), dropped again when the test ends.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

/// The PostgreSQL server the suite runs against, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("LECTERN_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

fn with_database(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("LECTERN_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn admin_sql(server: &str, sql: &str) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn =
        diesel::pg::PgConnection::establish(server).expect("the PostgreSQL test server answers");
    conn.batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Creates (once per test process) a migrated template database and returns its name.
fn template(server: &str) -> &'static str {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use diesel::prelude::*;
        // Databases left by an interrupted earlier run.
        let mut conn = diesel::pg::PgConnection::establish(server).expect("the PostgreSQL test server answers");
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            datname: String,
        }
        let stale: Vec<Name> = diesel::sql_query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'lectern\\_t\\_%' OR datname LIKE 'lectern\\_tpl\\_%'",
        )
        .load(&mut conn)
        .unwrap();
        drop(conn);
        // Only those of test processes that are gone: suites from other checkouts may be
        // running against the same server right now.
        let stale = stale
            .into_iter()
            .filter(|db| !owner_is_running(&db.datname));
        for db in stale {
            admin_sql(server, &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.datname));
        }
        let name = format!("lectern_tpl_{}", std::process::id());
        admin_sql(server, &format!("CREATE DATABASE \"{name}\""));
        let manager = lectern::db::ConnectionManager::new(&with_database(server, &name), lectern::config::SqliteSync::Normal);
        let mut conn = manager.connect().expect("the template database answers");
        lectern::db::run_migrations(&mut conn).expect("migrations run on PostgreSQL");
        name
    })
}

/// `lectern_t_{pid}_{random}`: the process id lets another run tell a database in use from one
/// left behind.
fn test_database_name() -> String {
    format!(
        "lectern_t_{}_{}",
        std::process::id(),
        lectern::crypto::random_token(9)
            .to_lowercase()
            .replace(['-', '_'], "x")
    )
}

/// Whether the test process that made a `lectern_t_{pid}_…` or `lectern_tpl_{pid}` database is
/// still alive (names without a process id are from older runs).
fn owner_is_running(datname: &str) -> bool {
    let rest = datname
        .strip_prefix("lectern_tpl_")
        .or_else(|| datname.strip_prefix("lectern_t_"))
        .unwrap_or_default();
    let pid = rest.split('_').next().and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) => {
            pid != std::process::id() && std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        None => false,
    }
}

impl TestDb {
    /// A PostgreSQL database with nothing in it (not even migrations), for start-up races.
    pub fn empty_postgres(server: &str) -> TestDb {
        let name = test_database_name();
        admin_sql(server, &format!("CREATE DATABASE \"{name}\""));
        TestDb {
            url: with_database(server, &name),
            dir: tempfile::tempdir().unwrap(),
            postgres: Some((server.to_string(), name)),
        }
    }

    /// An SQLite database in a temporary folder, whatever the suite's backend.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        TestDb {
            url: format!("sqlite://{}", dir.path().join("test.db").display()),
            dir,
            postgres: None,
        }
    }

    pub fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match postgres_server() {
            None => TestDb {
                url: format!("sqlite://{}", dir.path().join("test.db").display()),
                dir,
                postgres: None,
            },
            Some(server) => {
                let template = template(&server);
                let name = test_database_name();
                admin_sql(
                    &server,
                    &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                );
                TestDb {
                    url: with_database(&server, &name),
                    dir,
                    postgres: Some((server, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // FORCE ends the connections the finished test's pool still holds.
            admin_sql(
                &server,
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            );
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// Starts lectern with `settings` on top of test defaults, on a fresh database.
    pub async fn spawn_with(settings: &[(&str, &str)]) -> TestApp {
        let db = TestDb::new();
        let mut app = TestApp::spawn_on(&db.url, db.dir.path(), settings).await;
        app.test_db = Some(db);
        app
    }

    /// Starts lectern on an existing database (a restart).
    pub async fn spawn_on(
        database_url: &str,
        dir: &std::path::Path,
        settings: &[(&str, &str)],
    ) -> TestApp {
        let mut values: HashMap<String, String> = HashMap::new();
        values.insert("LECTERN_DATABASE_URL".into(), database_url.to_string());
        values.insert("LECTERN_BIND".into(), "127.0.0.1:0".into());
        values.insert(
            "LECTERN_MAIL_DIR".into(),
            dir.join("mail").display().to_string(),
        );
        values.insert("LECTERN_DATABASE_POOL_SIZE".into(), "4".into());
        for (k, v) in settings {
            values.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_values(&values).expect("test config");
        let app = Application::build(config).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let handle = app.handle();
        let setup_url = app.setup_url();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: client(),
            state,
            handle,
            database_url: database_url.to_string(),
            test_db: None,
            setup_url,
        }
    }

    /// Stops the server and its mail worker, as a process exit would.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    /// Moves the clock past any retry back-off and wakes the mail worker, again until `n`
    /// messages have reached `smtp` (an attempt may still be under way when the clock moves).
    pub async fn deliver_mail(
        &self,
        smtp: &crate::smtp::SmtpServer,
        n: usize,
    ) -> Vec<crate::smtp::Mail> {
        for _ in 0..100 {
            self.advance(2 * 3600);
            self.state.mail_wakeup.notify_one();
            if smtp
                .arrived_within(n, std::time::Duration::from_millis(200))
                .await
            {
                return smtp.mails();
            }
        }
        panic!("expected {n} emails, got {}", smtp.mails().len());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// The value of an unlabelled metric on `/metrics` (which answers loopback), when present.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        self.get_text("/metrics").await.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// `get_text` from another browser (`http` keeps its own cookies).
    pub async fn get_text_as(&self, http: &reqwest::Client, path: &str) -> String {
        let response = http.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Moves lectern's clock forward instead of sleeping.
    pub fn advance(&self, secs: i64) {
        self.state.clock.advance(secs);
    }

    /// Renders the post's form, then lets the minimum fill-in time pass, as a person would.
    pub async fn form_token(&self, slug: &str) -> String {
        self.form_token_as(&self.client, slug).await
    }

    async fn form_token_as(&self, http: &reqwest::Client, slug: &str) -> String {
        let page = self.get_text_as(http, &format!("/posts/{slug}")).await;
        let token = hidden_value(&page, "form_token").expect("the page has a comment form");
        self.advance(5);
        token
    }

    /// Submits a comment with a fresh, valid form token.
    pub async fn comment(&self, slug: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.comment_as(&self.client, slug, fields).await
    }

    /// `comment` from another reader's browser (`http` keeps that reader's cookies).
    pub async fn comment_as(
        &self,
        http: &reqwest::Client,
        slug: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.form_token_as(http, slug).await;
        submit_comment_form(self, http, slug, &token, fields).await
    }

    /// Sends the comment form of `slug` with a `token` from a page opened earlier, as a reader
    /// who kept the page open (or a bot reusing a token) would.
    pub async fn comment_with_token(
        &self,
        slug: &str,
        token: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        submit_comment_form(self, &self.client, slug, token, fields).await
    }

    /// Runs a query against the app's database.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut lectern::db::DbConn) -> Result<T, lectern::db::DbError> + Send + 'static,
    ) -> T {
        self.state.db.read(f).await.unwrap()
    }

    pub async fn comment_count(&self) -> i64 {
        use diesel::prelude::*;
        use lectern::db::schema::comments;
        self.db(|conn| Ok(comments::table.count().get_result(conn)?))
            .await
    }

    /// (status, held_reason, body) of a stored comment.
    pub async fn stored_comment(&self, id: i32) -> (String, Option<String>, String) {
        use diesel::prelude::*;
        use lectern::db::schema::comments;
        self.db(move |conn| {
            Ok(comments::table
                .find(id)
                .select((comments::status, comments::held_reason, comments::body))
                .first(conn)?)
        })
        .await
    }
}

async fn submit_comment_form(
    app: &TestApp,
    http: &reqwest::Client,
    slug: &str,
    token: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![("form_token", token)];
    form.extend_from_slice(fields);
    http.post(app.url(&format!("/posts/{slug}/comments")))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The `value` of `<input ... name="NAME" value="...">` in a page.
pub fn hidden_value(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_string())
}

/// The comment id in a `Location: /posts/slug#comment-ID` redirect.
pub fn comment_id_from(response: &reqwest::Response) -> i32 {
    let location = response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap();
    location
        .rsplit_once("#comment-")
        .expect("points at a comment")
        .1
        .parse()
        .unwrap()
}

pub const WELCOME: &str = "welcome-to-lectern";

impl TestApp {
    /// Creates a staff user directly (the CLI path is tested on its own).
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        role: &str,
        password: &str,
    ) -> lectern::db::ids::UserId {
        use lectern::users::password::{Password, hash_password};
        let hash = hash_password(&Password::parse(password).unwrap()).unwrap();
        let (email, name) = (email.to_string(), name.to_string());
        let role = lectern::users::Role::parse(role).expect("the role is admin or moderator");
        self.state
            .db
            .write(
                move |conn| -> Result<lectern::db::ids::UserId, lectern::db::DbError> {
                    let now = lectern::db::now();
                    let slug = lectern::users::unused_slug(conn, &name)?;
                    Ok(lectern::users::insert(
                        conn,
                        &lectern::users::NewUser {
                            email: &email,
                            display_name: &name,
                            slug: &slug,
                            bio: "",
                            role,
                            password_hash: &hash,
                            disabled: false,
                            created_at: now,
                            updated_at: now,
                        },
                    )?
                    .id)
                },
            )
            .await
            .unwrap()
    }

    /// A new client logged in as an existing user.
    pub async fn login_client(&self, email: &str, password: &str) -> reqwest::Client {
        let http = client();
        let page = http
            .get(self.url("/admin/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden_value(&page, "csrf_token").expect("login form has a csrf token");
        let response = http
            .post(self.url("/admin/login"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "login as {email} succeeds");
        http
    }

    /// Creates a user with `role` and returns a client logged in as them.
    pub async fn staff_client(&self, role: &str) -> reqwest::Client {
        let email = format!("{role}@example.com");
        self.create_user(&email, &format!("Test {role}"), role, PASSWORD)
            .await;
        self.login_client(&email, PASSWORD).await
    }

    /// POSTs an admin form as `http`'s session, adding that session's CSRF token.
    pub async fn staff_post(
        &self,
        http: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.csrf(http).await;
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        http.post(self.url(path)).form(&form).send().await.unwrap()
    }

    /// The session's CSRF token, read from an admin page.
    pub async fn csrf(&self, http: &reqwest::Client) -> String {
        let page = http
            .get(self.url("/admin"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        hidden_value(&page, "csrf_token").expect("admin pages carry the csrf token")
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The settings form as the page sends it with the defaults, with `changes` on top; a field
/// changed to "" is left out (an unticked checkbox).
pub fn settings_form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("trust_returning_commenters", "1"),
        ("link_limit", "2"),
        ("moderation_keywords", ""),
        ("disallowed_keywords", ""),
        ("close_after_days", ""),
        ("thread_depth", "5"),
        ("comments_per_page", ""),
        ("comment_order", "oldest"),
        ("flood_interval_secs", "15"),
        ("flood_per_hour", "10"),
        ("retention_days", "30"),
        ("edit_window_minutes", "15"),
    ];
    for (name, value) in changes {
        form.retain(|(n, _)| n != name);
        let checkbox = matches!(*name, "require_approval" | "trust_returning_commenters");
        if !(checkbox && value.is_empty()) {
            form.push((name, value));
        }
    }
    form
}

/// What lectern logs in this test process, from the first call on, formatted as the server
/// writes it at the default level (`info`). One global subscriber serves the whole process, so
/// tests running at the same time log into it too: use it for "this never appears" checks with
/// values unique to the test.
pub fn captured_log() -> LogCapture {
    use std::sync::{Arc, Mutex, OnceLock};
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the test process");
        buffer
    });
    LogCapture(buffer.clone())
}

pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `href` of the first link with `rel="{rel}"` in `page`, HTML entities decoded.
pub fn hidden_href(page: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}
