//! The process's Prometheus recorder for the `metrics` facade.

use crate::error::{EngineError, Result};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::time::Duration;

/// Installs the recorder of every metric the engine and store record and
/// returns its handle, which renders them (the HTTP server's `/metrics`).
/// With `addr` (`engine.metricsAddr`) they are also served at
/// `http://ADDR/metrics` by a listener of their own. Call once, inside the
/// runtime.
pub fn install(addr: Option<SocketAddr>) -> Result<PrometheusHandle> {
    let failed = |e: &dyn std::fmt::Display| match addr {
        Some(addr) => EngineError::Config(format!("engine.metricsAddr {addr}: {e}")),
        None => EngineError::Config(format!("cannot record metrics: {e}")),
    };
    let builder = PrometheusBuilder::new();
    let Some(addr) = addr else {
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|e| failed(&e))?;
        // What `build` does for an exporter: histograms are drained on a timer.
        let upkeep = handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        });
        return Ok(handle);
    };
    let (recorder, exporter) = builder
        .with_http_listener(addr)
        .build()
        .map_err(|e| failed(&e))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        if exporter.await.is_err() {
            tracing::error!(%addr, "the metrics listener stopped");
        }
    });
    Ok(handle)
}
