//! The API's errors and the one place they become HTTP statuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Everything a request can fail with. Each variant maps to exactly one HTTP status in
/// [`ApiError::status`], so a handler never picks a status code itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No such cluster, service or task.
    #[error("{0} not found")]
    NotFound(String),
    /// A query parameter is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No bearer token, or a wrong one, while tokens are configured.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A mutating endpoint while no token is configured.
    #[error("mutating endpoints are disabled: configure an API token (--api-token-file)")]
    MutationsDisabled,
    /// The request names several things where one was expected.
    #[error("{0}")]
    Ambiguous(String),
    /// The request cannot be carried out in the current state (e.g. nothing to reconcile).
    #[error("{0}")]
    Conflict(String),
    /// Too many open watch streams.
    #[error("too many open watch streams; try again later")]
    Busy,
    /// The request took longer than the server allows.
    #[error("request timed out")]
    Timeout,
    /// The request body is larger than the server accepts.
    #[error("request body over {0} bytes")]
    TooLarge(usize),
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// The HTTP status code, repeated for clients that only keep the body.
    pub status: u16,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MutationsDisabled => StatusCode::FORBIDDEN,
            Self::Ambiguous(_) | Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: self.to_string(),
            status: status.as_u16(),
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ecsdns\""),
            );
        }
        response
    }
}
