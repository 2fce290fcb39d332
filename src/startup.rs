//! Building the application: database, secret, routes, middleware, and the bound listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{Compress, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use chrono::NaiveDateTime;
use url::Url;

use crate::config::Config;
use crate::crypto::Signer;
use crate::db::Db;
use crate::http::{errors, middleware};
use crate::{comments, posts, site};

/// The time as lectern sees it. Tests move it forward instead of sleeping.
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> NaiveDateTime {
        crate::db::now() + chrono::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    pub fn unix(&self) -> i64 {
        self.now().and_utc().timestamp()
    }

    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub config: Config,
    pub base_url: Url,
    /// `scheme://host[:port]` of the base URL, for the origin check.
    pub origin: String,
    pub signer: Signer,
    /// Over an https base URL: Secure cookies, `__Host-` names and HSTS.
    pub secure_cookies: bool,
    pub clock: Clock,
}

impl AppState {
    /// An absolute URL for a site path (emails and feeds).
    pub fn absolute(&self, path: &str) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the database (running migrations), binds the listener and prepares the server.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let url = config.database_url.clone();
        let sync = config.sqlite_sync;
        let pool_size = config.pool_size;
        let configured_secret = config.secret_key.clone();
        let (db, secret) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Db, Vec<u8>)> {
            let db = Db::open(&url, sync, pool_size)?;
            let secret =
                db.write_blocking(|conn| site::secret_key(conn, configured_secret.as_deref()))?;
            let signer = Signer::new(secret.clone());
            if db.write_blocking(|conn| site::welcome::publish_if_new_site(conn, &signer))? {
                tracing::info!("new site: published the welcome post");
            }
            Ok((db, secret))
        })
        .await
        .context("opening the database")??;

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

        let state = web::Data::new(AppState {
            db,
            config,
            base_url,
            origin,
            signer: Signer::new(secret),
            secure_cookies,
            clock: Clock::default(),
        });

        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(ErrorHandlers::new().default_handler(errors::render_error_page))
                .wrap(from_fn(middleware::refuse_cross_site_posts))
                .wrap(from_fn(middleware::security_headers))
                .wrap(Compress::default())
                .wrap(from_fn(middleware::log_requests))
                .configure(routes)
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();

        Ok(Application {
            port: local.port(),
            server,
            state,
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(posts::handlers::index))
        .route("/posts/{slug}", web::get().to(posts::handlers::show_post))
        .route(
            "/posts/{slug}/comments",
            web::post().to(comments::handlers::submit_comment),
        )
        .route("/pages/{slug}", web::get().to(posts::handlers::show_page))
        .route("/tags/{tag}", web::get().to(posts::handlers::tag_index))
        .route(
            "/authors/{slug}",
            web::get().to(posts::handlers::author_index),
        )
        .route("/healthz", web::get().to(healthz))
        .route("/static/style.css", web::get().to(stylesheet))
        .route("/robots.txt", web::get().to(robots))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, crate::error::AppError> {
    Err(crate::error::AppError::NotFound)
}

/// 200 when the database answers, else 503.
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let answer = state
        .db
        .read(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1")
                .map_err(crate::db::DbError::from)
        })
        .await;
    let (status, body) = match answer {
        Ok(()) => (StatusCode::OK, "ok\ndatabase: ok\n".to_string()),
        Err(e) => {
            tracing::error!(error = %e, "health check: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable\ndatabase: down\n".to_string(),
            )
        }
    };
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

const STYLESHEET: &str = include_str!("../static/style.css");

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

async fn robots(state: web::Data<AppState>) -> HttpResponse {
    let body = format!(
        "User-agent: *\nDisallow: /admin/\nDisallow: /moderate/\nDisallow: /confirm/\nDisallow: /unsubscribe/\n\nSitemap: {}\n",
        state.absolute("/sitemap.xml")
    );
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
