//! Who may use the HTTP server: the daemon's secret as a bearer token, or a browser session made by
//! `POST /login` (an HttpOnly, SameSite=Strict cookie, and a CSRF token for every mutating request).
//! Wrong secrets are throttled per client address with the socket's own [`SecretThrottle`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use pm_actors::session::secret_check::{secret_matches, SecretThrottle, WrongSecrets};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::{lock, read_body, HttpState};
use crate::secret::Secret;

/// The name of the browser session's cookie.
pub const SESSION_COOKIE: &str = "pm_session";
/// The header a cookie-authenticated mutating request carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// How long a browser session lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Browser sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 1024;
/// How long a client that used up its tries is answered 429 after its last wrong secret.
const LOCKOUT: Duration = Duration::from_secs(60);
/// Client addresses whose wrong secrets are remembered at once.
const MAX_TRACKED_CLIENTS: usize = 4096;

/// How a request proved it may be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// A browser session cookie (its CSRF token already checked where needed).
    Session,
}

/// The secret, the browser sessions, and the wrong secrets per client.
pub struct Auth {
    secret: String,
    throttle: SecretThrottle,
    sessions: Mutex<HashMap<String, BrowserSession>>,
    wrong: Mutex<HashMap<IpAddr, (WrongSecrets, Instant)>>,
    /// Whether `GET /metrics` is served without the secret.
    pub metrics_public: bool,
}

struct BrowserSession {
    csrf: String,
    created: Instant,
}

/// The answer to a login, and to `GET /api/v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"csrf": "5f0c...e1"}))]
pub struct CsrfToken {
    /// Send it back as `X-CSRF-Token` with every POST, PUT and DELETE of this session.
    pub csrf: String,
}

/// The body of `POST /login` (JSON, or the same key urlencoded).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"secret": "the daemon's secret"}))]
pub struct LoginForm {
    /// The daemon's secret.
    pub secret: String,
}

impl Auth {
    /// Checks callers against `secret`, wrong tries slowed as `throttle` says.
    pub fn new(secret: impl Into<String>, throttle: SecretThrottle, metrics_public: bool) -> Self {
        Auth {
            secret: secret.into(),
            throttle,
            sessions: Mutex::default(),
            wrong: Mutex::default(),
            metrics_public,
        }
    }

    /// Checks a secret from `client`: 429 while its tries are used up, 401 (after the throttle's
    /// delay) when wrong.
    pub async fn check_secret(
        &self,
        client: Option<IpAddr>,
        attempt: &str,
    ) -> Result<(), ApiError> {
        if self.locked_out(client) {
            return Err(too_many_attempts());
        }
        if secret_matches(attempt, &self.secret) {
            if let Some(ip) = client {
                lock(&self.wrong).remove(&ip);
            }
            return Ok(());
        }
        let count = self.record_wrong(client);
        tracing::warn!(attempt = count, client = ?client, "HTTP: wrong secret");
        // A timer, not a sleep of the thread: the worker serves other requests meanwhile.
        tokio::time::sleep(self.throttle.delay).await;
        Err(ApiError::unauthorized("Error: invalid secret"))
    }

    fn locked_out(&self, client: Option<IpAddr>) -> bool {
        let Some(ip) = client else { return false };
        let mut wrong = lock(&self.wrong);
        match wrong.get(&ip) {
            Some((tries, last)) if tries.exhausted(&self.throttle) => {
                if last.elapsed() < LOCKOUT {
                    return true;
                }
                wrong.remove(&ip);
                false
            }
            _ => false,
        }
    }

    fn record_wrong(&self, client: Option<IpAddr>) -> u32 {
        let Some(ip) = client else { return 1 };
        let mut wrong = lock(&self.wrong);
        if wrong.len() >= MAX_TRACKED_CLIENTS {
            wrong.retain(|_, (_, last)| last.elapsed() < LOCKOUT);
        }
        let entry = wrong
            .entry(ip)
            .or_insert_with(|| (WrongSecrets::default(), Instant::now()));
        entry.0.record(&self.throttle);
        entry.1 = Instant::now();
        entry.0.count()
    }

    /// Opens a browser session: its cookie value and its CSRF token.
    fn open_session(&self) -> Result<(String, String), ApiError> {
        let token = random_token()?;
        let csrf = random_token()?;
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.created.elapsed() < SESSION_LIFETIME);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            token.clone(),
            BrowserSession {
                csrf: csrf.clone(),
                created: Instant::now(),
            },
        );
        Ok((token, csrf))
    }

    /// The CSRF token of the live session `token`.
    fn session_csrf(&self, token: &str) -> Option<String> {
        let sessions = lock(&self.sessions);
        // Looked up by the map's hash, then compared in constant time, so that timing tells nothing.
        let (key, session) = sessions.get_key_value(token)?;
        (secret_matches(token, key) && session.created.elapsed() < SESSION_LIFETIME)
            .then(|| session.csrf.clone())
    }

    fn close_session(&self, token: &str) {
        lock(&self.sessions).remove(token);
    }
}

fn random_token() -> Result<String, ApiError> {
    Secret::generate()
        .map(|s| s.expose().to_string())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

fn too_many_attempts() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        "Error: too many wrong secrets; try again later",
    )
}

/// Whether a path is served to anyone: the liveness probe, the page and its assets, the login, and
/// `/metrics` when pm.conf says `metrics-public: true`.
fn is_public(method: &Method, path: &str, auth: &Auth) -> bool {
    match path {
        "/healthz" | "/" => true,
        "/login" | "/logout" => *method == Method::POST,
        "/api/v1/session" => true,
        "/metrics" => auth.metrics_public,
        _ => path.starts_with("/assets/"),
    }
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware in front of every route: a public path passes; otherwise a bearer secret or a
/// session cookie (with its CSRF token on a mutating request), else 401 or 403.
pub async fn require_auth<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<HttpState>>().cloned() else {
        return Err(ApiError::unauthorized("Error: not authenticated").into());
    };
    let auth = &state.auth;
    if !is_public(req.method(), req.path(), auth) {
        match authenticate(req.request(), auth).await {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
            }
            // An answer, not an error, so that the outer middleware (the security headers) sees it.
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn authenticate(req: &HttpRequest, auth: &Auth) -> Result<Caller, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let given = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("Error: use Authorization: Bearer <secret>"))?;
        auth.check_secret(client_ip(req), given.trim()).await?;
        return Ok(Caller::Bearer);
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Err(ApiError::unauthorized(
            "Error: not authenticated: send Authorization: Bearer <secret>, or log in",
        ));
    };
    let csrf = auth
        .session_csrf(cookie.value())
        .ok_or_else(|| ApiError::unauthorized("Error: the session has ended; log in again"))?;
    if is_mutating(req.method()) {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !secret_matches(given, &csrf) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("Error: a request from a browser session needs the {CSRF_HEADER} header"),
            ));
        }
    }
    Ok(Caller::Session)
}

fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// `POST /login`: the secret as a form (`secret=...`) or JSON (`{"secret": ...}`); answers the CSRF
/// token and sets the session cookie.
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body(content = LoginForm, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in; the `pm_session` cookie is set", body = CsrfToken),
        (status = 401, description = "Wrong secret", body = super::error::ErrorBody),
        (status = 429, description = "Too many wrong secrets", body = super::error::ErrorBody),
    ))]
pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, &state.settings).await?;
    let form: LoginForm = if is_json(&req) {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Error: invalid login body: {e}")))?
    } else {
        serde_urlencoded_secret(&body)?
    };
    state
        .auth
        .check_secret(client_ip(&req), &form.secret)
        .await?;
    let (token, csrf) = state.auth.open_session()?;
    let cookie = Cookie::build(SESSION_COOKIE, token)
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(CsrfToken { csrf }))
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Reads `secret` from an urlencoded form body.
fn serde_urlencoded_secret(body: &[u8]) -> Result<LoginForm, ApiError> {
    web::Query::<LoginForm>::from_query(&String::from_utf8_lossy(body))
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request(format!("Error: invalid login form: {e}")))
}

/// `POST /logout`: ends the session and clears its cookie.
#[utoipa::path(post, path = "/logout", tag = "auth",
    responses((status = 204, description = "The session, if any, has ended")))]
pub async fn logout(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        state.auth.close_session(cookie.value());
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    HttpResponse::NoContent().cookie(gone).finish()
}

/// `GET /api/v1/session`: the CSRF token of the session cookie sent, 401 without a live one.
#[utoipa::path(get, path = "/api/v1/session", tag = "auth",
    responses(
        (status = 200, description = "The session is live", body = CsrfToken),
        (status = 401, description = "No live session", body = super::error::ErrorBody),
    ))]
pub async fn session(
    req: HttpRequest,
    state: web::Data<HttpState>,
) -> Result<web::Json<CsrfToken>, ApiError> {
    req.cookie(SESSION_COOKIE)
        .and_then(|c| state.auth.session_csrf(c.value()))
        .map(|csrf| web::Json(CsrfToken { csrf }))
        .ok_or_else(|| ApiError::unauthorized("Error: no live session; log in"))
}

/// Mounts the login, logout and session routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/api/v1/session", web::get().to(session));
}
