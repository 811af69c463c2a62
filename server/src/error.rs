//! The server's one error type: what a request or the listener can fail
//! with, and how each becomes an HTTP status with a JSON body
//! `{"error": KIND, "message": TEXT}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flowstate_engine::EngineError;
use flowstate_store::redact::redact;
use flowstate_store::StoreError;

/// What went wrong, from the caller's side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A parameter, a path or a body is not valid: fix the request (400).
    #[error("{0}")]
    BadRequest(String),
    /// A mutation came without the configured bearer token, or with a wrong
    /// one: send `Authorization: Bearer TOKEN` (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The request is refused whatever it carries: a mutation on a listener
    /// other machines reach while no token is configured, or a form posted
    /// from another site (403).
    #[error("{0}")]
    Forbidden(String),
    /// The execution, workflow or version does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state: cancelling an
    /// execution that has ended, submitting a deleted workflow (409).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached or is full: try again later (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; the message says what (500).
    #[error("{0}")]
    Internal(String),
    /// The listener could not be opened: choose another `server.listen`,
    /// or turn the server off with `server.enabled: false`.
    #[error("cannot listen on {addr}: {source}; set server.listen to a free address, or server.enabled: false")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl ServerError {
    /// The HTTP status and the `error` kind of the body.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ServerError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ServerError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ServerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServerError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ServerError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ServerError::Internal(_) | ServerError::Listen { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    /// The message, with every registered secret and URL password hidden.
    pub fn message(&self) -> String {
        redact(&self.to_string())
    }
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        let text = e.to_string();
        match e {
            StoreError::NotFound { .. } => ServerError::NotFound(text),
            StoreError::Conflict { .. }
            | StoreError::InvalidTransition { .. }
            | StoreError::Duplicate(_) => ServerError::Conflict(text),
            StoreError::InvalidInput(_) | StoreError::Config(_) => ServerError::BadRequest(text),
            StoreError::StorageFull(_) => ServerError::Unavailable(text),
            e if e.is_unavailable() => ServerError::Unavailable(text),
            _ => ServerError::Internal(text),
        }
    }
}

impl From<EngineError> for ServerError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(e) => e.into(),
            e if e.is_input_error() => ServerError::BadRequest(e.to_string()),
            e => ServerError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self.message(), "request failed");
        }
        let body = serde_json::json!({"error": kind, "message": self.message()});
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What a handler returns.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;
