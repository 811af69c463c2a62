//! The configuration file: the store's `storage:` section and the engine's
//! `engine:` section, validated the same way.

use crate::duration::parse_duration;
use crate::error::{EngineError, Result};
use flowstate_store::config::did_you_mean;
use flowstate_store::StorageConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ENGINE_KEYS: &[&str] = &[
    "workers",
    "nodeId",
    "leaseSeconds",
    "pollInterval",
    "shutdownGrace",
    "metricsAddr",
];

/// The validated `engine:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// How many tasks run at once in this process.
    pub workers: usize,
    /// This process's name in leases; `None` means the stable default
    /// (host name and database, see [`crate::node::default_node_id`]).
    pub node_id: Option<String>,
    /// How long a claim lasts without renewal; renewed every third of it.
    pub lease: Duration,
    /// How often the scheduler looks for due work when idle.
    pub poll_interval: Duration,
    /// How long running tasks get to finish on shutdown before they are killed.
    pub shutdown_grace: Duration,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 4,
            node_id: None,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(30),
            metrics_addr: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawEngine {
    workers: Option<i64>,
    node_id: Option<String>,
    lease_seconds: Option<i64>,
    poll_interval: Option<String>,
    shutdown_grace: Option<String>,
    metrics_addr: Option<String>,
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The `storage:` section.
    pub storage: StorageConfig,
    /// The `engine:` section.
    pub engine: EngineConfig,
}

impl Config {
    /// Reads a configuration file; `None` means every default (embedded
    /// SQLite). `FLOWSTATE_DATABASE_URL` applies on top either way.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let storage = StorageConfig::load(path)?;
        let engine = match path {
            None => EngineConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    EngineError::Config(format!("cannot read config file '{}': {e}", p.display()))
                })?;
                EngineConfig::from_yaml(&text)
                    .map_err(|e| EngineError::Config(format!("{}: {e}", p.display())))?
            }
        };
        Ok(Config { storage, engine })
    }
}

impl EngineConfig {
    /// Parses and validates the `engine:` section of a YAML document (the
    /// `storage:` section is the store's to check).
    pub fn from_yaml(text: &str) -> std::result::Result<Self, String> {
        let tree: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
        let Some(section) = tree.get("engine") else {
            return Ok(Self::default());
        };
        if let serde_yaml_ng::Value::Mapping(map) = section {
            for key in map.keys() {
                let key = key.as_str().unwrap_or("<non-string key>");
                if !ENGINE_KEYS.contains(&key) {
                    return Err(format!(
                        "unknown key 'engine.{key}'{}; valid keys here are {}",
                        did_you_mean(key, ENGINE_KEYS),
                        ENGINE_KEYS.join(", ")
                    ));
                }
            }
        }
        let raw: RawEngine = if section.is_null() {
            RawEngine::default()
        } else {
            serde_yaml_ng::from_value(section.clone()).map_err(|e| format!("engine: {e}"))?
        };
        let d = Self::default();
        let workers = match raw.workers {
            None => d.workers,
            Some(n) if (1..=1024).contains(&n) => n as usize,
            Some(n) => {
                return Err(format!(
                    "engine.workers is {n}; it must be between 1 and 1024"
                ))
            }
        };
        let lease = match raw.lease_seconds {
            None => d.lease,
            Some(n) if (3..=86_400).contains(&n) => Duration::from_secs(n as u64),
            Some(n) => {
                return Err(format!(
                    "engine.leaseSeconds is {n}; it must be between 3 and 86400"
                ))
            }
        };
        let duration = |key: &str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(s) => parse_duration(&s).map_err(|e| format!("engine.{key}: {e}")),
        };
        let poll_interval = duration("pollInterval", raw.poll_interval, d.poll_interval)?;
        if poll_interval < Duration::from_millis(10) {
            return Err("engine.pollInterval must be at least 10ms".into());
        }
        let shutdown_grace = duration("shutdownGrace", raw.shutdown_grace, d.shutdown_grace)?;
        let node_id = match raw.node_id {
            Some(id) if id.trim().is_empty() || id.len() > 255 => {
                return Err(format!("engine.nodeId '{id}' must be 1 to 255 characters"))
            }
            other => other,
        };
        let metrics_addr = raw
            .metrics_addr
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    format!("engine.metricsAddr '{a}' is not an address; use HOST:PORT such as 127.0.0.1:9464")
                })
            })
            .transpose()?;
        Ok(EngineConfig {
            workers,
            node_id,
            lease,
            poll_interval,
            shutdown_grace,
            metrics_addr,
        })
    }
}
