//! The configuration file: the store's `storage:` section, the engine's
//! `engine:` section and the HTTP server's `server:` section
//! ([`crate::server_config`]), validated the same way.

use crate::duration::{format_duration, parse_duration};
use crate::error::{EngineError, Result};
pub use crate::server_config::ServerConfig;
use flowstate_store::config::did_you_mean;
use flowstate_store::text::shown;
use flowstate_store::yaml::{self, describe};
use flowstate_store::StorageConfig;
use serde_yaml_ng::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The shortest and longest `engine.pollInterval`.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);
/// The longest `engine.shutdownGrace`.
const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(3600);

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

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The `storage:` section.
    pub storage: StorageConfig,
    /// The `engine:` section.
    pub engine: EngineConfig,
    /// The `server:` section (`FLOWSTATE_API_TOKEN` applied).
    pub server: ServerConfig,
}

impl Config {
    /// Reads a configuration file; `None` means every default (embedded
    /// SQLite). `FLOWSTATE_DATABASE_URL` applies on top either way. A file
    /// over 10 MB is refused from its size, before it is read.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        // Read once: both sections come from the same text, and a pipe
        // (`--config /dev/stdin`) can only be read once.
        let text = path
            .map(flowstate_store::config::read_config_file)
            .transpose()?;
        let file = path.zip(text.as_deref());
        let storage = StorageConfig::load_text(file)?;
        let in_file = |e: String| match path {
            Some(p) => EngineError::Config(format!("{}: {e}", shown(&p.display().to_string()))),
            None => EngineError::Config(e),
        };
        let (engine, server) = match file {
            None => (EngineConfig::default(), ServerConfig::default()),
            Some((_, text)) => (
                EngineConfig::from_yaml(text).map_err(in_file)?,
                ServerConfig::from_yaml(text).map_err(in_file)?,
            ),
        };
        let server = server.with_env().map_err(EngineError::Config)?;
        Ok(Config {
            storage,
            engine,
            server,
        })
    }
}

/// A whole number in `range`, else a message naming `key` and what it is.
fn whole_number(
    key: &str,
    v: &Value,
    range: std::ops::RangeInclusive<i64>,
) -> std::result::Result<i64, String> {
    let expected = format!(
        "expected a whole number between {} and {}",
        range.start(),
        range.end()
    );
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) if range.contains(&i) => Ok(i),
            Some(_) => Err(format!("engine.{key} is {n}; {expected}")),
            None if n.as_u64().is_some() => Err(format!("engine.{key} is {n}; {expected}")),
            None => Err(format!("engine.{key} is {}; {expected}", describe(v))),
        },
        _ => Err(format!("engine.{key} is {}; {expected}", describe(v))),
    }
}

/// A duration (`500ms`; a bare number is seconds) of at most `most`.
fn duration(key: &str, v: &Value, most: Duration) -> std::result::Result<Duration, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(format!(
                "engine.{key} is {}; expected a duration such as 500ms, 2s or 1m",
                describe(v)
            ))
        }
    };
    let d = parse_duration(&text).map_err(|e| format!("engine.{key}: {e}"))?;
    if d > most {
        return Err(format!(
            "engine.{key} is {}; the most is {}",
            shown(&text),
            format_duration(most)
        ));
    }
    Ok(d)
}

/// A string, else a message naming `key`, what it is and `expected`.
fn string<'a>(key: &str, v: &'a Value, expected: &str) -> std::result::Result<&'a str, String> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(format!("engine.{key} is {}; {expected}", describe(v))),
    }
}

impl EngineConfig {
    /// Parses and validates the `engine:` section of a YAML document (the
    /// `storage:` section is the store's to check). Every message names the
    /// key and echoes the value through [`shown`].
    pub fn from_yaml(text: &str) -> std::result::Result<Self, String> {
        yaml::check(text, "the configuration")?;
        let tree: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| format!("not valid YAML: {}", yaml::error(&e)))?;
        let section = match tree.get("engine") {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Mapping(map)) => map,
            Some(other) => {
                return Err(format!(
                    "engine is {}; expected a mapping of settings such as 'workers: 4'",
                    describe(other)
                ))
            }
        };
        let mut config = Self::default();
        for (key, v) in section {
            let Some(key) = key.as_str() else {
                return Err(format!(
                    "engine has the key {}; keys are names such as workers",
                    describe(key)
                ));
            };
            if v.is_null() {
                // Written but left empty: the default.
                if !ENGINE_KEYS.contains(&key) {
                    return Err(unknown_key(key));
                }
                continue;
            }
            match key {
                "workers" => config.workers = whole_number(key, v, 1..=1024)? as usize,
                "leaseSeconds" => {
                    config.lease = Duration::from_secs(whole_number(key, v, 3..=86_400)? as u64)
                }
                "pollInterval" => {
                    let d = duration(key, v, MAX_POLL_INTERVAL)?;
                    if d < MIN_POLL_INTERVAL {
                        return Err(format!(
                            "engine.pollInterval is {}; it must be at least 10ms",
                            format_duration(d)
                        ));
                    }
                    config.poll_interval = d;
                }
                "shutdownGrace" => config.shutdown_grace = duration(key, v, MAX_SHUTDOWN_GRACE)?,
                "nodeId" => {
                    let id = string(key, v, "expected a string of 1 to 255 characters")?;
                    config.node_id = Some(node_id(id)?);
                }
                "metricsAddr" => {
                    let a = string(key, v, "expected HOST:PORT such as 127.0.0.1:9464")?;
                    let addr = a.parse::<SocketAddr>().map_err(|_| {
                        format!(
                            "engine.metricsAddr '{}' is not an address; use HOST:PORT such as 127.0.0.1:9464",
                            shown(a)
                        )
                    })?;
                    config.metrics_addr = Some(addr);
                }
                _ => return Err(unknown_key(key)),
            }
        }
        Ok(config)
    }
}

fn unknown_key(key: &str) -> String {
    format!(
        "unknown key 'engine.{}'{}; valid keys here are {}",
        shown(key),
        did_you_mean(&key.chars().take(64).collect::<String>(), ENGINE_KEYS),
        ENGINE_KEYS.join(", ")
    )
}

/// A node id: 1 to 255 characters, none of them control characters, and no
/// blank at either end.
fn node_id(id: &str) -> std::result::Result<String, String> {
    if id.trim().is_empty() {
        return Err(
            "engine.nodeId is empty; give 1 to 255 characters, or remove the key for the default"
                .into(),
        );
    }
    let chars = id.chars().count();
    if chars > 255 {
        return Err(format!(
            "engine.nodeId is {chars} characters; the most is 255"
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(format!(
            "engine.nodeId '{}' contains a control character; use printable characters only",
            shown(id)
        ));
    }
    if id.trim() != id {
        return Err(format!(
            "engine.nodeId '{}' starts or ends with a blank; remove it",
            shown(id)
        ));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(body: &str) -> std::result::Result<EngineConfig, String> {
        EngineConfig::from_yaml(&format!("engine:\n{body}"))
    }

    #[test]
    fn every_key_is_read() {
        let c = engine("  workers: 8\n  nodeId: worker-1\n  leaseSeconds: 60\n  pollInterval: 250ms\n  shutdownGrace: 5\n  metricsAddr: 127.0.0.1:9464\n").unwrap();
        assert_eq!(c.workers, 8);
        assert_eq!(c.node_id.as_deref(), Some("worker-1"));
        assert_eq!(c.lease, Duration::from_secs(60));
        assert_eq!(c.poll_interval, Duration::from_millis(250));
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(
            EngineConfig::from_yaml("").unwrap(),
            EngineConfig::default()
        );
        assert_eq!(
            EngineConfig::from_yaml("engine:\n").unwrap(),
            EngineConfig::default()
        );
        assert_eq!(engine("  workers:\n").unwrap(), EngineConfig::default());
        let c = engine("  pollInterval: 0.5\n  shutdownGrace: '2s'\n").unwrap();
        assert_eq!(c.poll_interval, Duration::from_millis(500));
        assert_eq!(c.shutdown_grace, Duration::from_secs(2));
    }

    #[test]
    fn type_errors_name_the_key_and_the_expected_type() {
        let long = "x".repeat(100_000);
        let cases: Vec<(String, &str)> = vec![
            ("  workers: ten\n".into(), "engine.workers is the string \"ten\"; expected a whole number between 1 and 1024"),
            ("  workers: 0\n".into(), "engine.workers is 0; expected a whole number between 1 and 1024"),
            ("  workers: 2000\n".into(), "engine.workers is 2000; expected"),
            ("  workers: 18446744073709551615\n".into(), "engine.workers is 18446744073709551615; expected"),
            ("  workers: 1.5\n".into(), "engine.workers is the number 1.5; expected a whole number"),
            ("  workers: [4]\n".into(), "engine.workers is a list; expected a whole number between 1 and 1024"),
            ("  workers: true\n".into(), "engine.workers is the boolean true; expected"),
            ("  workers: !x 4\n".into(), "engine.workers is a value tagged !x; expected"),
            ("  leaseSeconds: 1\n".into(), "engine.leaseSeconds is 1; expected a whole number between 3 and 86400"),
            ("  leaseSeconds: {a: 1}\n".into(), "engine.leaseSeconds is a mapping; expected a whole number between 3 and 86400"),
            ("  pollInterval: abc\n".into(), "engine.pollInterval: bad duration 'abc'; use a number with a unit"),
            ("  pollInterval: 1ms\n".into(), "engine.pollInterval is 1ms; it must be at least 10ms"),
            ("  pollInterval: 0.5ms\n".into(), "engine.pollInterval: duration '0.5ms' is under 1ms; the smallest duration is 1ms"),
            ("  pollInterval: 2h\n".into(), "engine.pollInterval is 2h; the most is 1h"),
            ("  pollInterval: true\n".into(), "engine.pollInterval is the boolean true; expected a duration such as 500ms, 2s or 1m"),
            ("  shutdownGrace: -5s\n".into(), "engine.shutdownGrace: bad duration '-5s'"),
            ("  shutdownGrace: 3601\n".into(), "engine.shutdownGrace is 3601; the most is 1h"),
            ("  shutdownGrace: [1]\n".into(), "engine.shutdownGrace is a list; expected a duration"),
            (format!("  shutdownGrace: {long}\n"), "engine.shutdownGrace: bad duration 'xxxx"),
            ("  metricsAddr: nope\n".into(), "engine.metricsAddr 'nope' is not an address; use HOST:PORT such as 127.0.0.1:9464"),
            ("  metricsAddr: 9464\n".into(), "engine.metricsAddr is the number 9464; expected HOST:PORT such as 127.0.0.1:9464"),
            ("  nodeId: ''\n".into(), "engine.nodeId is empty; give 1 to 255 characters, or remove the key for the default"),
            ("  nodeId: '  '\n".into(), "engine.nodeId is empty"),
            ("  nodeId: ' a'\n".into(), "engine.nodeId ' a' starts or ends with a blank; remove it"),
            ("  nodeId: \"a\\e[2J\"\n".into(), "engine.nodeId 'a\\u{1b}[2J' contains a control character; use printable characters only"),
            ("  nodeId: \"a\\nb\"\n".into(), "engine.nodeId 'a\\nb' contains a control character"),
            (format!("  nodeId: {}\n", "n".repeat(256)), "engine.nodeId is 256 characters; the most is 255"),
            ("  nodeId: [a]\n".into(), "engine.nodeId is a list; expected a string of 1 to 255 characters"),
            ("  nodeId: 42\n".into(), "engine.nodeId is the number 42; expected a string"),
            ("  wrokers: 4\n".into(), "unknown key 'engine.wrokers' (did you mean 'workers'?); valid keys here are workers, nodeId, leaseSeconds, pollInterval, shutdownGrace, metricsAddr"),
            ("  wrokers:\n".into(), "unknown key 'engine.wrokers'"),
            (format!("  ? {long}\n  : 1\n"), "unknown key 'engine.xxxx"),
            ("  \"\\e]0;x\\a\": 1\n".into(), "unknown key 'engine.\\u{1b}]0;x\\u{7}'"),
            ("  1: 1\n".into(), "engine has the key the number 1; keys are names such as workers"),
        ];
        for (body, want) in cases {
            let e = engine(&body).unwrap_err();
            assert!(e.contains(want), "{}: {e}", shown(&body));
            assert!(e.chars().count() < 1000, "{}", e.len());
            assert!(!e.chars().any(char::is_control), "{e}");
        }
    }

    #[test]
    fn the_section_and_the_text_are_checked_whole() {
        for (text, want) in [
            (
                "engine: 5\n".to_owned(),
                "engine is the number 5; expected a mapping of settings such as 'workers: 4'",
            ),
            (
                "engine: [1]\n".to_owned(),
                "engine is a list; expected a mapping",
            ),
            ("engine: [\n".to_owned(), "not valid YAML: "),
            (
                format!("engine: {}", "[".repeat(50_000)),
                "the configuration nests YAML more than 64 levels deep",
            ),
            (
                format!("engine:\n  workers: 4\n{}", "# pad\n".repeat(2_000_000)),
                "bytes; the most is 10 MB (10485760 bytes)",
            ),
        ] {
            let e = EngineConfig::from_yaml(&text).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
