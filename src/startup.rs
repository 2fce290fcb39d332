//! Building the application: database, secret, routes, middleware, and the bound listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::Method;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use url::Url;

use crate::config::{Config, ConfigError};
use crate::crypto::Signer;
use crate::db::{Db, DbError, Waits};
use crate::http::{errors, middleware};
use crate::notify::transport::Transport;
use crate::notify::worker::Worker;
use crate::state::{AppState, Clock, MailContext, MailFaults};
use crate::thread_cache::ThreadCache;
use crate::{comments, posts, site};

/// What the rendered comment threads may weigh: the hundred-comment threads of a few dozen
/// busy posts, well inside the server's memory target.
const THREAD_CACHE_BYTES: usize = 6 << 20;

/// What the pages kept for anonymous readers may weigh (a 100-comment post page with its
/// compressed forms is about 150 KB).
const PAGE_CACHE_BYTES: usize = 12 << 20;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    setup_token: Option<String>,
    worker: tokio::task::JoinHandle<()>,
    /// Tells the mail worker to release what it has not handed over and stop.
    stop_mail: tokio::sync::watch::Sender<bool>,
    /// How long the mail worker may take to finish a message being handed over.
    mail_grace: std::time::Duration,
    scheduler: tokio::task::JoinHandle<()>,
    retention: tokio::task::JoinHandle<()>,
    identity_refresh: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Checks the mail settings, binds the listener, opens the database (running migrations
    /// and the first-start work) and prepares the server. A bad setting or a port in use stops
    /// start-up before anything is written to the database.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        tune_allocator();
        let from: lettre::message::Mailbox = config.mail_from.parse().map_err(|e| ConfigError {
            name: "LECTERN_MAIL_FROM",
            problem: format!("{e}"),
        })?;
        let transport = Arc::new(
            Transport::from_settings(
                config.smtp_url.as_ref(),
                &config.mail_dir,
                config.smtp_timeout,
            )
            .map_err(setting_error)?,
        );

        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("LECTERN_BIND: cannot listen on {}", config.bind))?;
        let local = listener.local_addr()?;
        let base_url = match &config.base_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local}/"))?,
        };
        if config.base_url.is_none() && local.ip().is_unspecified() {
            tracing::warn!(
                "listening on every interface without LECTERN_BASE_URL: links in emails and feeds \
                 will use {base_url}; set LECTERN_BASE_URL to the site's public address"
            );
        }
        let origin = base_url.origin().ascii_serialization();
        let secure_cookies = base_url.scheme() == "https";

        let url = config.database_url.clone();
        let sync = config.sqlite_sync;
        let pool_size = config.pool_size;
        let waits = Waits {
            busy: config.database_timeout,
            probe: config.database_probe,
        };
        let configured_secret = config.secret_key.clone();
        let default_title = config.site_title.clone();
        type Opened = (Db, Vec<u8>, Option<String>, site::identity::SiteIdentity);
        let (mut db, secret, setup_token, identity) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<Opened> {
                let db = Db::open_with(&url, sync, pool_size, waits)?;
                let secret =
                    db.write_blocking(|conn| site::secret_key(conn, configured_secret.as_deref()))?;
                let signer = Signer::new(secret.clone());
                if db.write_blocking(|conn| crate::welcome::publish_if_new_site(conn, &signer))? {
                    tracing::info!("new site: published the welcome post");
                }
                // Author avatars were drawn from the secret; each user keeps theirs (000017).
                db.write_blocking(|conn| crate::users::fill_avatar_seeds(conn, &signer))?;
                // A bulk import stopped half-way leaves the comments' indexes set aside until
                // it runs again; a server does not wait for that.
                let built = db.write_blocking(|conn| {
                    crate::import::bulk::build_left_aside(conn).map_err(|e| match e {
                        crate::import::ImportError::Db(e) => e,
                        other => DbError::Task(other.to_string()),
                    })
                })?;
                if built > 0 {
                    tracing::warn!(
                        indexes = built,
                        "an import stopped half-way had set the comments' indexes aside; built them again"
                    );
                }
                let setup_token = db.write_blocking(|conn| {
                    crate::auth::handlers::issue_setup_token(conn, &signer)
                })?;
                let identity = db.read_blocking(|conn| {
                    site::identity::SiteIdentity::load(conn, &default_title)
                })?;
                Ok((db, secret, setup_token, identity))
            })
            .await
            .context("opening the database")?
            .context("LECTERN_DATABASE_URL")?;

        crate::http::assets::prepare();
        // SQLite has one writer and one fsync per commit: comments are stored in batches.
        let group_commit = match db.backend() {
            crate::db::Backend::Sqlite => Some(Arc::new(
                crate::db::GroupCommit::start(db.clone())
                    .context("starting the comment writer thread")?,
            )),
            crate::db::Backend::Postgres => None,
        };
        let metrics = Arc::new(crate::telemetry::Metrics::new());
        db.record_waits_in(metrics.pool_wait());
        let mail_transport = transport.describe();
        tracing::info!("mail goes to {mail_transport}");
        // In the background: a server that accepts connections and never answers must not
        // delay serving by even one deadline. Not a bad setting either way: mail waits in the
        // outbox until the server answers.
        let checked = transport.clone();
        tokio::spawn(async move {
            match checked.check().await {
                Ok(()) => tracing::info!("the mail server answers"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "the mail server does not answer yet; mail will be queued"
                ),
            }
        });
        let signer = Signer::new(secret);
        let mail = MailContext {
            signer: signer.clone(),
            base_url: base_url.as_str().trim_end_matches('/').to_string(),
            site_title: config.site_title.clone(),
            domain: from.email.domain().to_string(),
        };
        let mail_wakeup = Arc::new(tokio::sync::Notify::new());
        let clock = Clock::default();
        let retry_secs = config.mail_retry_secs;
        let step_timeout = config.smtp_timeout;
        let mail_faults = Arc::new(MailFaults::default());
        let (stop_mail, mail_shutdown) = tokio::sync::watch::channel(false);

        let page_caches = config.page_caches;
        let state = web::Data::new(AppState {
            db,
            config,
            base_url,
            origin,
            signer,
            secure_cookies,
            clock: clock.clone(),
            passwords: crate::users::password::PasswordWorkers::start(2)
                .context("starting the password hashing threads")?,
            mail,
            mail_wakeup: mail_wakeup.clone(),
            mail_faults: mail_faults.clone(),
            mail_transport,
            publish_wakeup: Arc::new(tokio::sync::Notify::new()),
            thread_cache: Arc::new(ThreadCache::new(if page_caches {
                THREAD_CACHE_BYTES
            } else {
                0
            })),
            retention_wakeup: Arc::new(tokio::sync::Notify::new()),
            metrics: metrics.clone(),
            group_commit,
            identity: Arc::new(crate::state::IdentityCell::new(identity)),
        });
        let identity_refresh = tokio::spawn(crate::state::refresh_identity(
            state.db.clone(),
            state.identity.clone(),
            state.config.site_title.clone(),
        ));
        let scheduler = tokio::spawn(crate::posts::scheduler::run(
            state.db.clone(),
            state.clock.clone(),
            state.publish_wakeup.clone(),
        ));
        let retention = tokio::spawn(crate::moderation::retention::run(
            state.db.clone(),
            state.clock.clone(),
            state.retention_wakeup.clone(),
        ));
        let worker = tokio::spawn(
            Worker {
                db: state.db.clone(),
                transport,
                from,
                clock,
                retry_secs,
                step_timeout,
                wakeup: mail_wakeup,
                shutdown: mail_shutdown,
                faults: mail_faults,
                metrics,
            }
            .run(),
        );

        let app_state = state.clone();
        let freshness = web::Data::new(match state.db.backend() {
            crate::db::Backend::Sqlite => crate::db::Freshness::sqlite(
                state.config.database_url.trim_start_matches("sqlite://"),
            )
            .context("LECTERN_DATABASE_URL")?,
            crate::db::Backend::Postgres => {
                crate::db::Freshness::postgres(&state.config.database_url, state.db.write_counter())
            }
        });
        let page_cache = web::Data::new(crate::http::page_cache::PageCache::new(
            if state.config.page_caches {
                PAGE_CACHE_BYTES
            } else {
                0
            },
        ));
        let kept_dashboard = web::Data::new(crate::moderation::handlers::KeptDashboard::new(
            state.config.page_caches,
            1,
        ));
        let kept_queue = web::Data::new(crate::moderation::handlers::KeptQueue::new(
            state.config.page_caches,
            crate::moderation::handlers::KEPT_QUEUE_READINGS,
        ));
        let kept_sessions =
            web::Data::new(crate::auth::kept::Sessions::new(state.config.page_caches));
        let media_cache = web::Data::new(crate::media::serve::MediaCache::new(
            crate::media::serve::CACHE_BYTES,
        ));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(page_cache.clone())
                .app_data(kept_dashboard.clone())
                .app_data(kept_queue.clone())
                .app_data(kept_sessions.clone())
                .app_data(media_cache.clone())
                .app_data(freshness.clone())
                .wrap(from_fn(crate::import::redirects::old_addresses))
                .wrap(from_fn(middleware::head_as_get))
                .wrap(from_fn(middleware::body_deadline))
                .wrap(ErrorHandlers::new().default_handler(errors::render_error_page))
                .wrap(from_fn(middleware::refuse_cross_site_posts))
                // Inside the security headers, so kept pages get them too.
                .wrap(from_fn(crate::http::page_cache::deliver))
                .wrap(from_fn(middleware::security_headers))
                .wrap(from_fn(middleware::observe_requests))
                // Outermost: a kept picture is answered before the rest of the stack runs.
                .wrap(from_fn(crate::media::serve::answer_kept_files))
                .configure(routes)
        })
        // Responses may leave in several writes (headers, then the body). With Nagle's
        // algorithm on, a later write waits for the ACK of the first, which a kept-alive client
        // delays by ~40 ms: every compressed page paid it when bodies were compressed as they
        // streamed out.
        .tcp_nodelay(true)
        .listen(listener)?
        // Database jobs are bounded by the pool size (`Db::read`), so more blocking threads
        // than that per worker would only sit idle, each with its own stack and malloc arena.
        .worker_max_blocking_threads(pool_size as usize)
        .shutdown_timeout(10)
        .run();

        Ok(Application {
            port: local.port(),
            server,
            state,
            setup_token,
            worker,
            stop_mail,
            // The final reply of a message being handed over, and its database write.
            mail_grace: step_timeout + std::time::Duration::from_secs(5),
            scheduler,
            retention,
            identity_refresh,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn base_url(&self) -> String {
        self.state.base_url.to_string()
    }

    /// While no enabled admin exists: the single-use link that creates the first one.
    pub fn setup_url(&self) -> Option<String> {
        self.setup_token
            .as_ref()
            .map(|token| self.state.absolute(&format!("/admin/setup?token={token}")))
    }

    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let result = self.server.await;
        // A message not yet handed over is released at once (due now, so the next server or
        // the restarted one sends it without waiting for the lease to end); one being handed
        // over is finished and recorded, within a grace period.
        let _ = self.stop_mail.send(true);
        if tokio::time::timeout(self.mail_grace, &mut self.worker)
            .await
            .is_err()
        {
            tracing::warn!(
                "the mail worker did not finish in time; its message waits for its lease"
            );
            self.worker.abort();
        }
        self.scheduler.abort();
        self.retention.abort();
        self.identity_refresh.abort();
        result
    }

    /// A handle that stops the server (and with it the mail worker) from elsewhere.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// The process's malloc settings (glibc), the one place they are made. By default glibc maps a
/// block of its own only above a threshold that rises to the size of the largest such block
/// freed, up to 32 MiB: after one decoded photograph (36 MB for 12 megapixels) the next ones'
/// pixels and copies landed in the heaps, and a server that had processed four at once stayed
/// 20-30 MB larger for good. With the threshold fixed at 1 MiB, such blocks go back to the
/// system when freed; smaller ones (response buffers of a few hundred kB, database pages) stay
/// in the heaps, so serving never maps memory per request. The trim threshold is what glibc
/// itself pairs with a threshold (twice it), which fixing the threshold would otherwise leave
/// at 128 KiB, returning and refaulting the heaps' tops under load.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation settings; it is safe at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 << 20);
    }
}

/// The transport names the setting it could not use at the start of its message; as a
/// `ConfigError`, it exits like every other bad setting.
fn setting_error(message: String) -> anyhow::Error {
    for name in ["LECTERN_SMTP_URL", "LECTERN_MAIL_DIR"] {
        if let Some(problem) = message
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(": "))
        {
            return ConfigError {
                name,
                problem: problem.to_string(),
            }
            .into();
        }
    }
    anyhow::anyhow!(message)
}

/// A route's handler, as a plain function so the table below can list it.
pub type RouteFactory = fn() -> actix_web::Route;

/// Every route under `/admin`, relative to it. The router is built from this table, and the
/// tests walk it, so no admin POST can escape the CSRF and access checks.
pub fn admin_routes() -> Vec<(Method, &'static str, RouteFactory)> {
    use crate::admin::mail;
    use crate::auth::handlers as auth;
    use crate::auth::reset;
    use crate::moderation::handlers as moderation;
    vec![
        (Method::GET, "", || web::get().to(moderation::dashboard)),
        (Method::GET, "/login", || web::get().to(auth::login_form)),
        (Method::POST, "/login", || web::post().to(auth::login)),
        (Method::POST, "/logout", || web::post().to(auth::logout)),
        (Method::GET, "/setup", || web::get().to(auth::setup_form)),
        (Method::POST, "/setup", || web::post().to(auth::setup)),
        (Method::GET, "/comments", || {
            web::get().to(moderation::queue)
        }),
        (Method::POST, "/comments/bulk", || {
            web::post().to(moderation::bulk)
        }),
        (Method::GET, "/comments/{id}/edit", || {
            web::get().to(moderation::edit_form)
        }),
        (Method::POST, "/comments/{id}/edit", || {
            web::post().to(moderation::edit)
        }),
        (Method::POST, "/comments/{id}/reply", || {
            web::post().to(moderation::reply)
        }),
        (Method::POST, "/comments/{id}/{action}", || {
            web::post().to(moderation::act)
        }),
        (Method::POST, "/undo", || {
            web::post().to(moderation::undo_action)
        }),
        (Method::GET, "/audit", || web::get().to(moderation::audit)),
        (Method::GET, "/blocks", || {
            web::get().to(crate::moderation::blocks::list)
        }),
        (Method::POST, "/blocks", || {
            web::post().to(crate::moderation::blocks::change)
        }),
        (Method::GET, "/password-reset", || {
            web::get().to(reset::reset_request_page)
        }),
        (Method::POST, "/password-reset", || {
            web::post().to(reset::reset_request)
        }),
        (Method::GET, "/password-reset/{token}", || {
            web::get().to(reset::reset_form)
        }),
        (Method::POST, "/password-reset/{token}", || {
            web::post().to(reset::reset)
        }),
        (Method::GET, "/mail", || web::get().to(mail::mail_page)),
        (Method::POST, "/mail/test", || {
            web::post().to(mail::send_test)
        }),
        (Method::POST, "/mail/{id}/retry", || {
            web::post().to(mail::retry)
        }),
        (Method::POST, "/mail/release", || {
            web::post().to(mail::release)
        }),
        (Method::GET, "/export", || {
            web::get().to(crate::archive::handlers::page)
        }),
        (Method::GET, "/export/archive", || {
            web::get().to(crate::archive::handlers::archive)
        }),
        (Method::GET, "/export/wordpress", || {
            web::get().to(crate::archive::handlers::wordpress)
        }),
        (Method::GET, "/users", || {
            web::get().to(crate::admin::users::list)
        }),
        (Method::POST, "/users", || {
            web::post().to(crate::admin::users::add)
        }),
        (Method::POST, "/users/{id}/role", || {
            web::post().to(crate::admin::users::change_role)
        }),
        (Method::POST, "/users/{id}/disable", || {
            web::post().to(crate::admin::users::disable)
        }),
        (Method::POST, "/users/{id}/enable", || {
            web::post().to(crate::admin::users::enable)
        }),
        (Method::GET, "/settings", || {
            web::get().to(crate::admin::settings::form)
        }),
        (Method::POST, "/settings", || {
            web::post().to(crate::admin::settings::save)
        }),
        (Method::GET, "/profile", || {
            web::get().to(crate::admin::profile::form)
        }),
        (Method::GET, "/site", || {
            web::get().to(crate::admin::site::form)
        }),
        (Method::POST, "/site", || {
            web::post().to(crate::admin::site::save)
        }),
        (Method::GET, "/posts", || {
            web::get().to(crate::admin::posts::list)
        }),
        (Method::GET, "/posts/new", || {
            web::get().to(crate::admin::posts::new_form)
        }),
        (Method::POST, "/posts/new", || {
            web::post().to(crate::admin::posts::create)
        }),
        (Method::GET, "/posts/{id}/edit", || {
            web::get().to(crate::admin::posts::edit_form)
        }),
        (Method::POST, "/posts/{id}/edit", || {
            web::post().to(crate::admin::posts::update)
        }),
        (Method::POST, "/posts/{id}/preview", || {
            web::post().to(crate::admin::posts::preview)
        }),
        (Method::POST, "/posts/{id}/trash", || {
            web::post().to(crate::admin::posts::trash)
        }),
        (Method::POST, "/posts/{id}/restore", || {
            web::post().to(crate::admin::posts::restore)
        }),
        (Method::POST, "/profile", || {
            web::post().to(crate::admin::profile::save)
        }),
        (Method::GET, "/privacy", || {
            web::get().to(crate::privacy::admin::page)
        }),
        (Method::POST, "/privacy", || {
            web::post().to(crate::privacy::admin::act)
        }),
        (Method::GET, "/media", || {
            web::get().to(crate::admin::media::library)
        }),
        (Method::POST, "/media", || {
            web::post().to(crate::admin::media::upload)
        }),
        (Method::POST, "/media/{id}/alt", || {
            web::post().to(crate::admin::media::set_alt)
        }),
        (Method::POST, "/media/{id}/delete", || {
            web::post().to(crate::admin::media::delete)
        }),
        (Method::GET, "/import", || {
            web::get().to(crate::import::handlers::page)
        }),
        (Method::POST, "/import", || {
            web::post().to(crate::import::handlers::upload)
        }),
        (Method::GET, "/import/{id}", || {
            web::get().to(crate::import::handlers::run_page)
        }),
        (Method::POST, "/import/{id}/start", || {
            web::post().to(crate::import::handlers::start)
        }),
    ]
}

/// Every route outside `/admin`, in matching order (a literal path before a pattern that would
/// also match it).
pub fn public_routes() -> Vec<(Method, &'static str, RouteFactory)> {
    use crate::feeds;
    vec![
        // First: the router tries patterns in order, each a regular expression, and pictures
        // are the most requested files (a page with five pictures is six requests).
        (Method::GET, "/media/{file}", || {
            web::get().to(crate::media::serve::media_file)
        }),
        (Method::GET, "/", || web::get().to(posts::handlers::index)),
        (Method::GET, "/posts/{slug}", || {
            web::get().to(comments::page::show_post)
        }),
        (Method::POST, "/posts/{slug}/comments", || {
            web::post().to(comments::handlers::submit_comment)
        }),
        (Method::GET, "/pages/{slug}", || {
            web::get().to(comments::page::show_page)
        }),
        (Method::GET, "/feed.xml", || {
            web::get().to(feeds::posts_feed)
        }),
        (Method::GET, "/comments/feed.xml", || {
            web::get().to(feeds::comments_feed)
        }),
        (Method::GET, "/posts/{slug}/feed.xml", || {
            web::get().to(feeds::post_comments_feed)
        }),
        (Method::GET, "/tags/{tag}/feed.xml", || {
            web::get().to(feeds::tag_feed)
        }),
        (Method::GET, "/sitemap.xml", || {
            web::get().to(feeds::sitemap)
        }),
        (Method::GET, "/sitemaps/{file}", || {
            web::get().to(feeds::sitemap_file)
        }),
        (Method::GET, "/search", || {
            web::get().to(posts::search::search_page)
        }),
        (Method::GET, "/tags/{tag}", || {
            web::get().to(posts::handlers::tag_index)
        }),
        (Method::GET, "/authors/{slug}", || {
            web::get().to(posts::handlers::author_index)
        }),
        (Method::GET, "/healthz", || {
            web::get().to(crate::ops::healthz)
        }),
        (Method::GET, "/metrics", || {
            web::get().to(crate::ops::metrics)
        }),
        (Method::GET, "/moderate/{token}", || {
            web::get().to(crate::moderation::links::moderate_page)
        }),
        (Method::POST, "/moderate/{token}", || {
            web::post().to(crate::moderation::links::moderate)
        }),
        (Method::GET, "/confirm/{token}", || {
            web::get().to(crate::notify::links::confirm_page)
        }),
        (Method::POST, "/confirm/{token}", || {
            web::post().to(crate::notify::links::confirm)
        }),
        (Method::GET, "/unsubscribe/{token}", || {
            web::get().to(crate::notify::links::unsubscribe_page)
        }),
        (Method::POST, "/unsubscribe/{token}", || {
            web::post().to(crate::notify::links::unsubscribe)
        }),
        (Method::GET, "/privacy", || {
            web::get().to(crate::privacy::policy::show)
        }),
        (Method::GET, "/my-comments", || {
            web::get().to(crate::privacy::handlers::request_form)
        }),
        (Method::POST, "/my-comments", || {
            web::post().to(crate::privacy::handlers::request_link)
        }),
        (Method::GET, "/my-comments/{token}", || {
            web::get().to(crate::privacy::handlers::manage_page)
        }),
        (Method::POST, "/my-comments/{token}/download", || {
            web::post().to(crate::privacy::handlers::download)
        }),
        (
            Method::POST,
            "/my-comments/{token}/comments/{id}/delete",
            || web::post().to(crate::privacy::handlers::delete_comment),
        ),
        (Method::POST, "/my-comments/{token}/erase", || {
            web::post().to(crate::privacy::handlers::erase)
        }),
        (Method::GET, "/comments/{id}/edit", || {
            web::get().to(crate::privacy::own_comment::edit_form)
        }),
        (Method::POST, "/comments/{id}/edit", || {
            web::post().to(crate::privacy::own_comment::edit)
        }),
        (Method::POST, "/comments/{id}/delete", || {
            web::post().to(crate::privacy::own_comment::delete)
        }),
        // The site's own stylesheet (a fingerprint of its text) before the built-in files.
        (Method::GET, "/static/site-{hash}.css", || {
            web::get().to(crate::admin::site::stylesheet)
        }),
        (Method::GET, "/static/{file}", || {
            web::get().to(crate::http::assets::serve)
        }),
        (Method::GET, "/favicon.ico", || web::get().to(favicon)),
        (Method::GET, "/robots.txt", || web::get().to(robots)),
    ]
}

/// One resource per path with all of its methods, in the table's order. Any other method on
/// a known path is 405 with `Allow` (GET implies HEAD, which `head_as_get` answers), not the
/// 404 that separate one-method routes would fall through to.
fn resources(table: Vec<(Method, &'static str, RouteFactory)>) -> Vec<actix_web::Resource> {
    let mut paths: Vec<(&'static str, Vec<(Method, RouteFactory)>)> = Vec::new();
    for (method, path, route) in table {
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => paths.push((path, vec![(method, route)])),
        }
    }
    paths
        .into_iter()
        .map(|(path, routes)| {
            let mut allow: Vec<String> = Vec::new();
            let mut resource = web::resource(path);
            for (method, route) in routes {
                if method == Method::GET {
                    allow.extend(["GET".to_string(), "HEAD".to_string()]);
                } else {
                    allow.push(method.to_string());
                }
                resource = resource.route(route());
            }
            let allow = allow.join(", ");
            resource.default_service(web::to(move || {
                let allow = allow.clone();
                async move {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((actix_web::http::header::ALLOW, allow))
                        .content_type("text/plain; charset=utf-8")
                        .body("This address does not answer that method.\n")
                }
            }))
        })
        .collect()
}

fn routes(cfg: &mut web::ServiceConfig) {
    let mut admin = web::scope("/admin").wrap(from_fn(crate::auth::guard::admin_guard));
    for resource in resources(admin_routes()) {
        admin = admin.service(resource);
    }
    cfg.app_data(
        web::FormConfig::default()
            .limit(crate::auth::guard::MAX_ADMIN_FORM_BYTES)
            .error_handler(|err, _| {
                crate::error::AppError::Unprocessable(format!("The form could not be read: {err}"))
                    .into()
            }),
    )
    .app_data(web::PayloadConfig::default().limit(crate::auth::guard::MAX_ADMIN_FORM_BYTES))
    .service(admin);
    for resource in resources(public_routes()) {
        cfg.service(resource);
    }
    cfg.default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, crate::error::AppError> {
    Err(crate::error::AppError::NotFound)
}

const FAVICON: &str = include_str!("../static/favicon.svg");

/// The site's icon where browsers and crawlers look without a link (`/favicon.ico`): an SVG,
/// which browsers accept there. Pages link its fingerprinted copy under `/static/`.
async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(FAVICON)
}

async fn robots(state: web::Data<AppState>) -> HttpResponse {
    let body = format!(
        "User-agent: *\nDisallow: /admin/\nDisallow: /moderate/\nDisallow: /confirm/\nDisallow: /unsubscribe/\nDisallow: /my-comments/\n\nSitemap: {}\n",
        state.absolute("/sitemap.xml")
    );
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
