//! flowstate's HTTP front-end: a versioned JSON API and a server-rendered
//! web console, both answered from the store with the same queries as the
//! CLI. `flowstate serve` runs it beside the engine, `flowstate console`
//! alone.
//!
//! Layout, in the order a request flows:
//! - [`Server::bind`] opens the listener (before the database, so a taken
//!   port fails first) and [`Server::run`] serves until shutdown.
//! - `router` maps paths to handlers; `auth` decides who may change things.
//! - `api`: `/api/v1`, JSON in the CLI's `--json` shapes ([`json`]), with
//!   query parameters parsed by [`params`] like the CLI's flags.
//! - `sse`: a log that follows new lines as Server-Sent Events until the
//!   execution ends.
//! - `console`: HTML pages (`html` escapes every value, `charts` draws the
//!   timeline and the graph as SVG), with the CSS and JavaScript embedded.
//! - `coalesce`: identical list reads arriving together share one query.
//! - `health`: `/healthz`, `/readyz` and `/metrics`.
//! - [`ServerError`]: every failure as a status and `{error, message}`.
//!
//! Shutdown is explicit: [`Server::run`] takes a future; when it resolves
//! the listener closes, open log streams end, and requests in flight finish.

mod api;
mod auth;
mod coalesce;
mod console;
mod error;
mod health;
pub mod human;
pub mod json;
pub mod params;
mod sse;

pub use api::{list_page, task_run_id_of, workflow_at, workflows_named};
pub use error::{Result, ServerError};

use axum::routing::{get, post};
use axum::Router;
use flowstate_engine::ServerConfig;
use flowstate_store::StateStore;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// What every handler shares.
pub(crate) struct App {
    pub store: Arc<dyn StateStore>,
    pub config: ServerConfig,
    /// The Prometheus recorder's handle, when this process records metrics.
    pub metrics: Option<PrometheusHandle>,
    /// Flips to true at shutdown: log streams end.
    pub stopping: watch::Receiver<bool>,
    /// What runs here, shown in the console's header ("engine" or "console").
    pub role: &'static str,
    /// The API's execution lists, shared by requests that arrive together.
    pub lists: coalesce::Coalesce,
    /// The console's executions pages, likewise.
    pub pages: coalesce::Coalesce,
}

/// The HTTP server of one process.
pub struct Server {
    listener: tokio::net::TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Opens the listener of `config.listen`.
    pub async fn bind(config: &ServerConfig) -> Result<Server> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        Ok(Server {
            listener,
            config: config.clone(),
        })
    }

    /// The address it listens on (the port chosen when `listen` gave 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves until `shutdown` resolves, then stops taking connections,
    /// ends the log streams and waits for the requests in flight. `role`
    /// says what else runs in this process ("engine" or "console").
    pub async fn run(
        self,
        store: Arc<dyn StateStore>,
        metrics: Option<PrometheusHandle>,
        role: &'static str,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (stop_tx, stopping) = watch::channel(false);
        let app = Arc::new(App {
            store,
            config: self.config,
            metrics,
            stopping,
            role,
            lists: Default::default(),
            pages: Default::default(),
        });
        let stop = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        axum::serve(self.listener, router(app))
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| ServerError::Internal(format!("the HTTP server failed: {e}")))
    }
}

/// Every route.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/executions", get(api::list).post(api::submit))
        .route("/api/v1/executions/{id}", get(api::inspect))
        .route("/api/v1/executions/{id}/logs", get(api::logs))
        .route("/api/v1/executions/{id}/logs/stream", get(sse::follow))
        .route("/api/v1/executions/{id}/cancel", post(api::cancel))
        .route("/api/v1/workflows", get(api::workflows))
        .route("/api/v1/workflows/{name}", get(api::workflow))
        .route("/api/v1/workflows/{name}/versions", get(api::versions))
        .route("/api/{*rest}", get(api::not_found).post(api::not_found))
        .merge(console::routes())
        .with_state(app)
}
