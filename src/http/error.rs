//! The JSON error every route answers: the socket's sentence, a machine-readable kind, and the HTTP
//! status that goes with it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use pm_protocol::response::{self, Operation};
use pm_protocol::PmError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"error": "Error stopping process: process 'web' not found", "kind": "not_found"}))]
pub struct ErrorBody {
    /// The same sentence the socket answers (`Error stopping process: process 'web' not found`).
    pub error: String,
    /// What went wrong, for programs: `not_found`, `already_exists`, `unauthorized`, ...
    pub kind: String,
}

/// An error answer: a status and its [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What the client reads.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error of `status` with `kind` and the sentence `error`.
    pub fn new(status: StatusCode, kind: &str, error: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                kind: kind.to_string(),
            },
        }
    }

    /// 401: no secret, or a wrong one.
    pub fn unauthorized(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", error)
    }

    /// 400: a request that cannot be read.
    pub fn bad_request(error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", error)
    }

    /// The registry's refusal of `op`, worded as the socket words it.
    pub fn from_pm(op: Operation, err: &PmError) -> Self {
        let sentence = response::failure(op, err);
        ApiError::new(status_of(err), &kind_of(err), sentence.trim_end())
    }
}

/// The snake_case name [`PmError`] serializes as (`not_found`), so HTTP and JSON name it alike.
pub fn kind_of(err: &PmError) -> String {
    serde_json::to_value(err)
        .ok()
        .and_then(|v| v.get("error").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "internal".to_string())
}

/// The HTTP status for a registry error.
pub fn status_of(err: &PmError) -> StatusCode {
    match err {
        PmError::NotFound(_) => StatusCode::NOT_FOUND,
        PmError::AlreadyExists { .. }
        | PmError::AlreadyRunning(_)
        | PmError::NotRunning(_)
        | PmError::NoLogCapture(_) => StatusCode::CONFLICT,
        PmError::InvalidName(_)
        | PmError::InvalidCron { .. }
        | PmError::InvalidSignal(_)
        | PmError::NoSuchPid { .. }
        | PmError::UnknownUser(_)
        | PmError::Template(_)
        | PmError::Invalid(_)
        | PmError::Spawn { .. } => StatusCode::BAD_REQUEST,
        PmError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        PmError::Io(_) | PmError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.body.error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_error_keeps_the_socket_sentence() {
        let e = ApiError::from_pm(Operation::Stop, &PmError::NotFound("web".into()));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.body.kind, "not_found");
        assert_eq!(
            e.body.error,
            "Error stopping process: process 'web' not found"
        );
        let e = ApiError::from_pm(Operation::Start, &PmError::already_exists("web"));
        assert_eq!(
            (e.status, e.body.kind.as_str()),
            (StatusCode::CONFLICT, "already_exists")
        );
        let e = ApiError::from_pm(Operation::Start, &PmError::ShuttingDown);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
