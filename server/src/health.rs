//! `/healthz` (the process answers), `/readyz` (the database answers and its
//! schema is the one this build expects) and `/metrics` (Prometheus text).

use crate::error::{Result, ServerError};
use crate::App;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /healthz`: 200 while the process serves.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the database answers and needs no migration,
/// else 503 saying which.
pub(crate) async fn readyz(State(app): State<Arc<App>>) -> Result<Json<Value>> {
    let status = app
        .store
        .migration_status()
        .await
        .map_err(|e| ServerError::Unavailable(format!("the database does not answer: {e}")))?;
    if !status.is_current() {
        return Err(ServerError::Unavailable(format!(
            "the schema is not current: {} pending, {} unknown migrations; run flowstate-migrate status",
            status.pending.len(),
            status.unknown.len()
        )));
    }
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: every metric the engine and the store record.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    match &app.metrics {
        Some(handle) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ServerError::NotFound("this process records no metrics".into()).into_response(),
    }
}
