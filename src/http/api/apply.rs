//! `POST /api/v1/apply`: a stack file (YAML or JSON) applied as a diff, as `!!process.apply` does.

use actix_web::{web, HttpResponse};
use pm_actors::counters;
use pm_actors::registry::ApplyStack;
use pm_protocol::plan::ApplyPlan;
use pm_protocol::stack::StackFile;
use pm_protocol::PmError;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{durable, json_text};
use crate::http::error::{kind_of, status_of, ApiError, ErrorBody};
use crate::http::{read_body, HttpState};

/// The query of `POST /apply`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyQuery {
    /// Delete the processes the stack leaves out.
    #[serde(default)]
    pub prune: bool,
    /// Only answer the plan.
    #[serde(default)]
    pub dry_run: bool,
}

/// The socket's sentence for a stack that cannot be applied.
fn apply_error(e: &PmError) -> ApiError {
    ApiError::new(
        status_of(e),
        &kind_of(e),
        format!("Error applying the stack: {e}"),
    )
}

/// `POST /api/v1/apply?prune=&dry_run=`: the body is a stack file; answers the plan
/// (`!!process.apply format:json`). Relative paths in it are taken as the socket takes them.
#[utoipa::path(post, path = "/api/v1/apply", tag = "processes",
    params(ApplyQuery),
    request_body(content = String, content_type = "application/yaml",
        example = "processes:\n  web:\n    command: sleep 600\n    log: true\n"),
    responses(
        (status = 200, description = "The plan, carried out unless dry_run", body = ApplyPlan),
        (status = 400, description = "A stack that cannot be read", body = ErrorBody),
    ))]
pub async fn apply(
    query: web::Query<ApplyQuery>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, &state.settings).await?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| apply_error(&PmError::Invalid("the stack is not UTF-8".into())))?;
    let stack = StackFile::parse(&text).map_err(|e| apply_error(&e))?;
    let specs = stack
        .to_specs()
        .map_err(|e| apply_error(&e))?
        .into_iter()
        .map(|p| p.spec)
        .collect();
    let msg = ApplyStack {
        specs,
        prune: query.prune,
        dry_run: query.dry_run,
    };
    let plan = {
        // Counted as the socket counts it: until the registry answers, before the disk.
        let _timed = counters::daemon().requests.time_action("process.apply");
        state
            .registry
            .apply
            .send(msg)
            .await
            .unwrap_or(Err(PmError::ShuttingDown))
            .map_err(|e| apply_error(&e))?
    };
    durable(&state.registry).await;
    Ok(json_text(plan.json()))
}

/// Mounts `POST /api/v1/apply`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/apply", web::post().to(apply));
}
