//! The JSON API under `/api/v1` and the probes: each route builds the registry request a socket
//! session would send for the same command, and answers the same JSON objects as `format:json`.
//!
//! Groups: [`processes`] (list, status, define, delete, start/stop/restart/kill/signal, logs),
//! [`apply`] (a stack as a diff), [`health`] (`/healthz`, `/readyz`).

pub mod apply;
pub mod health;
pub mod processes;

use actix::prelude::*;
use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use pm_actors::registry::Durable;
use pm_actors::session::RegistryLink;
use pm_protocol::response::Operation;
use pm_protocol::PmError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;

/// The answer to a request that changed something: the socket's sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"message": "Process 'web' stopped successfully"}))]
pub struct Done {
    /// The same sentence the socket answers (`Process 'web' stopped successfully`).
    pub message: String,
}

/// Sends `msg` to the registry; its refusal (or a registry that is gone: the daemon is shutting
/// down) is the error answer of `op`.
pub(crate) async fn ask<M, T>(op: Operation, to: &Recipient<M>, msg: M) -> Result<T, ApiError>
where
    M: Message<Result = Result<T, PmError>> + Send + 'static,
    T: Send + 'static,
{
    to.send(msg)
        .await
        .unwrap_or(Err(PmError::ShuttingDown))
        .map_err(|e| ApiError::from_pm(op, &e))
}

/// Waits until every change made so far is in the state file, as a socket answer waits.
pub(crate) async fn durable(registry: &RegistryLink) {
    let _ = registry.durable.send(Durable).await;
}

/// An answer whose body is JSON already rendered by the protocol crate (the socket's `format:json`).
pub(crate) fn json_text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(body)
}

/// Mounts `/healthz`, `/readyz` and everything under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    processes::routes(cfg);
    apply::routes(cfg);
}
