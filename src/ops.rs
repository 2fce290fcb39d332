//! What operators and their machines ask of a running server: `/healthz` for load balancers
//! and uptime checks, `/metrics` for Prometheus.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::notify::outbox;
use crate::state::AppState;
use crate::telemetry::Snapshot;

/// 200 when the database answers, else 503; the body also says how much mail failed, how much
/// waits to be sent and for how long the oldest of it has waited (a dead SMTP server shows here
/// as a growing age long before anyone notices missing mail).
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let (status, body) = match state.db.probe(outbox::queue_summary).await {
        Ok(mail) => (
            StatusCode::OK,
            format!(
                "ok\ndatabase: ok\nfailed_emails: {}\nqueued_emails: {}\noldest_queued_secs: {}\n",
                mail.failed,
                mail.queued,
                mail.oldest_queued_secs(now)
            ),
        ),
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
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Whether this request may read the metrics: a bearer token equal to
/// `LECTERN_METRICS_TOKEN`, or a client on loopback (the socket peer, or the address a trusted
/// proxy forwarded; a proxy on loopback forwarding an outside client does not count).
fn may_read_metrics(state: &AppState, req: &HttpRequest) -> bool {
    if let Some(expected) = &state.config.metrics_token {
        let offered = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(offered) = offered
            && bool::from(offered.as_bytes().ct_eq(expected.as_bytes()))
        {
            return true;
        }
    }
    crate::http::client_ip(req, &state.config.trusted_proxies).is_some_and(|ip| ip.is_loopback())
}

/// `GET /metrics`: the Prometheus text format, never cached.
pub async fn metrics(
    state: web::Data<AppState>,
    pages: web::Data<crate::http::page_cache::PageCache>,
    freshness: web::Data<crate::db::Freshness>,
    req: HttpRequest,
) -> HttpResponse {
    if !may_read_metrics(&state, &req) {
        let mut refused = HttpResponse::Forbidden();
        refused
            .content_type("text/plain; charset=utf-8")
            .insert_header((CACHE_CONTROL, "no-store"));
        if state.config.metrics_token.is_some() {
            refused.status(StatusCode::UNAUTHORIZED);
            refused.insert_header((WWW_AUTHENTICATE, "Bearer realm=\"metrics\""));
            return refused.body("The metrics need the bearer token (LECTERN_METRICS_TOKEN).\n");
        }
        return refused.body(
            "The metrics answer loopback clients only; set LECTERN_METRICS_TOKEN to read them \
             from elsewhere.\n",
        );
    }
    let now = state.clock.now();
    // The outbox figures need the database; without it the rest is still worth reading.
    let mail = match state.db.probe(outbox::queue_summary).await {
        Ok(mail) => Some(mail),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the outbox could not be read");
            None
        }
    };
    let (in_use, idle) = state.db.pool_state();
    let (_, cache_bytes) = state.thread_cache.usage();
    let snapshot = Snapshot {
        outbox_queued: mail.as_ref().map_or(0, |m| m.queued - m.sending),
        outbox_sending: mail.as_ref().map_or(0, |m| m.sending),
        outbox_failed: mail.as_ref().map_or(0, |m| m.failed),
        outbox_oldest_queued_secs: mail.as_ref().map_or(0, |m| m.oldest_queued_secs(now)),
        db_in_use: i64::from(in_use),
        db_idle: i64::from(idle),
        cache_bytes: cache_bytes as i64,
        page_cache_bytes: pages.usage().1 as i64,
        listener: freshness.listener_stats(),
    };
    let body = state.metrics.render(&snapshot);
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}
