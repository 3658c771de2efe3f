//! The probes: `/healthz` (the daemon serves) and `/readyz` (the state file is loaded and the startup
//! templates are started).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use pm_actors::registry::IsReady;
use pm_protocol::response::Operation;
use pm_protocol::PmError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::HttpState;

/// The body of both probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// `ok`.
    pub status: String,
}

fn ok() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// `GET /healthz`: 200 while the daemon serves; needs no secret.
#[utoipa::path(get, path = "/healthz", tag = "probes", security(()),
    responses((status = 200, description = "The daemon serves", body = Health)))]
pub async fn healthz() -> HttpResponse {
    ok()
}

/// `GET /readyz`: 200 once the registry has loaded the state file and started the startup
/// templates; 503 before, and while the daemon shuts down.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "The state is loaded", body = Health),
        (status = 503, description = "Starting or shutting down", body = crate::http::error::ErrorBody),
    ))]
pub async fn readyz(state: web::Data<HttpState>) -> Result<HttpResponse, ApiError> {
    match state.ready.send(IsReady).await {
        Ok(true) => Ok(ok()),
        Ok(false) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "Error: the daemon is still starting",
        )),
        Err(_) => Err(ApiError::from_pm(Operation::List, &PmError::ShuttingDown)),
    }
}

/// Mounts the probes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}
