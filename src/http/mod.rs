//! The daemon's HTTP server: one actix-web `App` served on the daemon's own thread, with the same
//! registry behind it that socket sessions use. This module binds it, sets its limits and security
//! headers, and builds the one `App` from [`routes`], which mounts every part.
//!
//! Parts: [`auth`] (bearer secret, browser sessions, CSRF), [`api`] (the JSON API under `/api/v1`,
//! `/healthz`, `/readyz`), [`events`] (Server-Sent Events), [`openapi`] (the OpenAPI document),
//! [`metrics`] (`/metrics` for Prometheus), [`error`] (the JSON error answer), [`dashboard`] (the page
//! at `/` and its files), [`serve`] (the accept loop on the daemon's thread).

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod metrics;
pub mod openapi;
pub mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App};
use futures_util::StreamExt;
use pm_actors::registry::IsReady;
use pm_actors::session::RegistryLink;

use auth::Auth;
use error::ApiError;
use events::EventHub;

/// The largest request body the server reads, as the socket's largest script.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// HTTP connections served at once (beyond them the server stops accepting until one closes).
pub const MAX_HTTP_CONNECTIONS: usize = 256;

/// How the HTTP server is set up.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The largest request body read; a longer one is answered 413.
    pub max_body: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// A request whose head, or whose body, has not arrived within this time is cut off.
    pub request_timeout: Duration,
    /// Events an SSE reader may be behind before its stream is closed.
    pub events_backlog: usize,
}

impl HttpSettings {
    /// The defaults for a server on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        HttpSettings {
            addr,
            max_body: MAX_BODY_BYTES,
            max_connections: MAX_HTTP_CONNECTIONS,
            request_timeout: Duration::from_secs(10),
            events_backlog: events::DEFAULT_BACKLOG,
        }
    }
}

/// What every route reaches through `web::Data<HttpState>`.
pub struct HttpState {
    /// The registry, the same one socket sessions send to.
    pub registry: RegistryLink,
    /// The registry's answer to whether its startup is over (for `/readyz`).
    pub ready: actix::Recipient<IsReady>,
    /// The secret, browser sessions and throttle.
    pub auth: Auth,
    /// The numbered event stream behind `/api/v1/events`.
    pub events: EventHub,
    /// The limits.
    pub settings: HttpSettings,
}

/// Mounts every route of the server: auth, the JSON API, the events, the OpenAPI document. The
/// metrics (`GET /metrics`) and the dashboard (`GET /`, `/assets/...`) mount themselves here too.
pub fn routes(cfg: &mut web::ServiceConfig) {
    auth::routes(cfg);
    api::routes(cfg);
    events::routes(cfg);
    openapi::routes(cfg);
    metrics::routes(cfg);
    dashboard::routes(cfg);
}

/// The headers every answer carries: no framing, no sniffing, no referrer, only the server's own
/// scripts and styles. No CORS header is ever sent, so other origins cannot read answers.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cache-Control", "no-store"))
}

/// Binds the server and serves it on the current thread of the daemon's actix system (see [`serve`])
/// until it is stopped. A non-loopback address is allowed but logged as a warning.
pub async fn start(state: HttpState) -> Result<serve::Serving, String> {
    let settings = state.settings.clone();
    let state = web::Data::new(state);
    let body_limit = settings.max_body;
    let app = move || {
        App::new()
            .app_data(state)
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::JsonConfig::default().limit(body_limit))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::bad_request(format!("Error: invalid query: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                ApiError::bad_request(format!("Error: invalid path: {e}")).into()
            }))
            .wrap(from_fn(auth::require_auth))
            .wrap(security_headers())
            .configure(routes)
            .default_service(web::to(not_found))
    };
    let serving = serve::serve(
        settings.addr,
        settings.max_connections,
        settings.request_timeout,
        app,
    )
    .await?;
    let addr = serving.addr;
    tracing::info!("HTTP server listening on http://{addr}");
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "the HTTP server listens on {addr}, which is not a loopback address: anyone who can \
             reach it may try the secret; prefer 127.0.0.1 behind a TLS proxy"
        );
    }
    Ok(serving)
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Error: no such route",
    ))
}

/// Reads a request body of at most `max_body` bytes (else 413) that arrives within the request
/// timeout (else 408): a client that trickles its body in is cut off.
pub async fn read_body(
    mut payload: web::Payload,
    settings: &HttpSettings,
) -> Result<web::Bytes, ApiError> {
    let limit = settings.max_body;
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| payload_error(&e, limit))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(settings.request_timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "Error: the request body did not arrive in time",
            ))
        })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("Error: request body longer than {limit} bytes"),
    )
}

fn payload_error(e: &actix_web::error::PayloadError, limit: usize) -> ApiError {
    match e {
        actix_web::error::PayloadError::Overflow => too_large(limit),
        other => ApiError::bad_request(format!("Error: cannot read the request body: {other}")),
    }
}

/// A lock that a panic elsewhere does not make unusable: the maps it guards stay consistent at every
/// step.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
