//! The optional Prometheus endpoint for the `metrics` facade.

use crate::error::{EngineError, Result};
use std::net::SocketAddr;

/// Serves every metric the engine and store record at `http://ADDR/metrics`.
pub fn serve_prometheus(addr: SocketAddr) -> Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| EngineError::Config(format!("engine.metricsAddr {addr}: {e}")))
}
