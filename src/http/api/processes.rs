//! `/api/v1/processes`: list, status, define, delete, start/stop/restart/kill, signal and logs, each
//! the registry request of the socket command of the same name.

use actix_web::{web, HttpResponse};
use pm_actors::registry::{
    Applied, DeleteProcess, GetProcessLogPage, GetStatus, KillProcess, ListJson, RestartProcess,
    SignalProcess, StartProcess, StopProcess,
};
use pm_protocol::logs::LogPage;
use pm_protocol::response::{self, logs_json, status_json, Operation};
use pm_protocol::stack::StackOptions;
use pm_protocol::{PmError, ProcessInfo, ProcessSpec};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ask, durable, json_text, Done};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::{read_body, HttpState};

/// A process definition: `name` and the keys of a stack file entry (`command`, `program`, `args`,
/// `env`, `log`, `restarts`, `cron`, ...).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"name": "web", "command": "sleep 600", "log": true}))]
pub struct Definition {
    /// The process name.
    pub name: String,
    /// The options, as a stack file names them.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl Definition {
    /// The spec the stack file entry `name: options` would give, checked as a stack's is.
    pub fn to_spec(&self) -> Result<ProcessSpec, PmError> {
        let options: StackOptions =
            serde_json::from_value(serde_json::Value::Object(self.options.clone()))
                .map_err(|e| PmError::Invalid(format!("process '{}': {e}", self.name)))?;
        // One definition alone: its `after` names processes the daemon has (or will have).
        options.to_spec(&self.name)
    }
}

/// The body of `POST /processes/{name}/signal`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"signal": "HUP"}))]
pub struct SignalRequest {
    /// `HUP`, `SIGHUP` or a number.
    pub signal: String,
    /// To the whole process group.
    #[serde(default)]
    pub group: bool,
}

/// The query of `GET /processes/{name}/logs`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only the lines after this number (the `next` of an earlier page).
    pub after: Option<u64>,
    /// At most this many of the newest lines.
    pub lines: Option<usize>,
}

/// `GET /api/v1/processes`: every process, the objects of `list format:json`, sorted by name.
#[utoipa::path(get, path = "/api/v1/processes", tag = "processes",
    responses((status = 200, description = "Every process (`list format:json`)", body = [ProcessInfo])))]
pub async fn list(state: web::Data<HttpState>) -> Result<HttpResponse, ApiError> {
    let all = ask(Operation::List, &state.registry.list_json, ListJson).await?;
    Ok(json_text(all))
}

/// `GET /api/v1/processes/{name}`: one process (`status format:json`).
#[utoipa::path(get, path = "/api/v1/processes/{name}", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    responses(
        (status = 200, description = "The process (`status format:json`)", body = ProcessInfo),
        (status = 404, description = "No such process", body = ErrorBody),
    ))]
pub async fn status(
    name: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let msg = GetStatus {
        name: name.into_inner(),
    };
    let info = ask(Operation::Status, &state.registry.status, msg).await?;
    Ok(json_text(status_json(&info)))
}

/// `POST /api/v1/processes`: defines a process and starts it (`!!process.start`).
#[utoipa::path(post, path = "/api/v1/processes", tag = "processes",
    request_body = Definition,
    responses(
        (status = 201, description = "Defined and started", body = Done),
        (status = 400, description = "A bad definition", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
pub async fn create(
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, &state.settings).await?;
    let definition: Definition = serde_json::from_slice(&body)
        .map_err(|e| ApiError::from_pm(Operation::Start, &PmError::Invalid(e.to_string())))?;
    let spec = definition
        .to_spec()
        .map_err(|e| ApiError::from_pm(Operation::Start, &e))?;
    let name = spec.name.clone();
    let msg = Applied(StartProcess {
        spec,
        template: None,
    });
    ask(Operation::Start, &state.registry.start, msg).await?;
    durable(&state.registry).await;
    Ok(HttpResponse::Created().json(done(Operation::Start, &name)))
}

/// Sends a request that changes process `name`, waits for the state file to hold the change, and
/// answers the socket's sentence for it.
async fn changed<M, T>(
    op: Operation,
    name: &str,
    state: &HttpState,
    to: &actix::Recipient<M>,
    msg: M,
) -> Result<web::Json<Done>, ApiError>
where
    M: actix::Message<Result = Result<T, PmError>> + Send + 'static,
    T: Send + 'static,
{
    ask(op, to, msg).await?;
    durable(&state.registry).await;
    Ok(web::Json(done(op, name)))
}

fn done(op: Operation, name: &str) -> Done {
    Done {
        message: response::success(op, name).trim_end().to_string(),
    }
}

/// `DELETE /api/v1/processes/{name}`: stops and forgets a process (`!!process.delete`).
#[utoipa::path(delete, path = "/api/v1/processes/{name}", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 404, description = "No such process", body = ErrorBody),
    ))]
pub async fn delete(
    name: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<web::Json<Done>, ApiError> {
    let name = name.into_inner();
    let msg = Applied(DeleteProcess { name: name.clone() });
    changed(
        Operation::Delete,
        &name,
        &state,
        &state.registry.delete,
        msg,
    )
    .await
}

/// `POST /api/v1/processes/{name}/start`: starts a defined process that is not running (409 when it
/// is); the registry's restart does it, as the socket's hint says.
#[utoipa::path(post, path = "/api/v1/processes/{name}/start", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    responses(
        (status = 200, description = "Started", body = Done),
        (status = 404, description = "No such process", body = ErrorBody),
        (status = 409, description = "Already running", body = ErrorBody),
    ))]
pub async fn start(
    name: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<web::Json<Done>, ApiError> {
    let name = name.into_inner();
    let info = ask(
        Operation::Start,
        &state.registry.status,
        GetStatus { name: name.clone() },
    )
    .await?;
    if info.status.is_alive() {
        return Err(ApiError::from_pm(
            Operation::Start,
            &PmError::AlreadyRunning(name),
        ));
    }
    let msg = Applied(RestartProcess { name: name.clone() });
    changed(
        Operation::Start,
        &name,
        &state,
        &state.registry.restart,
        msg,
    )
    .await
}

/// `POST /api/v1/processes/{name}/stop` (`!!process.stop`).
#[utoipa::path(post, path = "/api/v1/processes/{name}/stop", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    responses(
        (status = 200, description = "Stopped", body = Done),
        (status = 404, description = "No such process", body = ErrorBody),
        (status = 409, description = "Not running", body = ErrorBody),
    ))]
pub async fn stop(
    name: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<web::Json<Done>, ApiError> {
    let name = name.into_inner();
    let msg = Applied(StopProcess { name: name.clone() });
    changed(Operation::Stop, &name, &state, &state.registry.stop, msg).await
}

/// `POST /api/v1/processes/{name}/restart` (`!!process.restart`).
#[utoipa::path(post, path = "/api/v1/processes/{name}/restart", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    responses(
        (status = 200, description = "Restarted", body = Done),
        (status = 404, description = "No such process", body = ErrorBody),
    ))]
pub async fn restart(
    name: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<web::Json<Done>, ApiError> {
    let name = name.into_inner();
    let msg = Applied(RestartProcess { name: name.clone() });
    changed(
        Operation::Restart,
        &name,
        &state,
        &state.registry.restart,
        msg,
    )
    .await
}

/// `POST /api/v1/processes/{name}/kill` (`!!process.kill`).
#[utoipa::path(post, path = "/api/v1/processes/{name}/kill", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    responses(
        (status = 200, description = "Killed", body = Done),
        (status = 404, description = "No such process", body = ErrorBody),
        (status = 409, description = "Not running", body = ErrorBody),
    ))]
pub async fn kill(
    name: web::Path<String>,
    state: web::Data<HttpState>,
) -> Result<web::Json<Done>, ApiError> {
    let name = name.into_inner();
    let msg = Applied(KillProcess { name: name.clone() });
    changed(Operation::Kill, &name, &state, &state.registry.kill, msg).await
}

/// `POST /api/v1/processes/{name}/signal` (`!!process.signal`).
#[utoipa::path(post, path = "/api/v1/processes/{name}/signal", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web")),
    request_body = SignalRequest,
    responses(
        (status = 200, description = "Signalled", body = Done),
        (status = 400, description = "Not a signal", body = ErrorBody),
        (status = 404, description = "No such process", body = ErrorBody),
        (status = 409, description = "Not running", body = ErrorBody),
    ))]
pub async fn signal(
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<HttpState>,
) -> Result<web::Json<Done>, ApiError> {
    let name = name.into_inner();
    let body = read_body(payload, &state.settings).await?;
    let asked: SignalRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::from_pm(Operation::Signal, &PmError::Invalid(e.to_string())))?;
    let msg = SignalProcess {
        name: name.clone(),
        signal: asked.signal,
        group: asked.group,
    };
    ask(Operation::Signal, &state.registry.signal, msg).await?;
    Ok(web::Json(done(Operation::Signal, &name)))
}

/// `GET /api/v1/processes/{name}/logs?after=N&lines=M`: a page of captured lines, as
/// `!!process.logs format:json` answers it.
#[utoipa::path(get, path = "/api/v1/processes/{name}/logs", tag = "processes",
    params(("name" = String, Path, description = "The process name", example = "web"), LogsQuery),
    responses(
        (status = 200, description = "A page of lines (`logs format:json`)", body = LogPage),
        (status = 404, description = "No such process", body = ErrorBody),
        (status = 409, description = "The process does not capture its output", body = ErrorBody),
    ))]
pub async fn logs(
    name: web::Path<String>,
    query: web::Query<LogsQuery>,
    state: web::Data<HttpState>,
) -> Result<HttpResponse, ApiError> {
    let msg = GetProcessLogPage {
        name: name.into_inner(),
        after: query.after,
        lines: query.lines,
    };
    let page = ask(Operation::Logs, &state.registry.logs, msg).await?;
    Ok(json_text(logs_json(&page)))
}

/// Mounts the process routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Full paths, not a scope: the OpenAPI test reads every route from these lines.
    cfg.route("/api/v1/processes", web::get().to(list))
        .route("/api/v1/processes", web::post().to(create))
        .route("/api/v1/processes/{name}", web::get().to(status))
        .route("/api/v1/processes/{name}", web::delete().to(delete))
        .route("/api/v1/processes/{name}/start", web::post().to(start))
        .route("/api/v1/processes/{name}/stop", web::post().to(stop))
        .route("/api/v1/processes/{name}/restart", web::post().to(restart))
        .route("/api/v1/processes/{name}/kill", web::post().to(kill))
        .route("/api/v1/processes/{name}/signal", web::post().to(signal))
        .route("/api/v1/processes/{name}/logs", web::get().to(logs));
}
