//! The `storage:` section of the configuration file.
//!
//! Parsing goes in two steps: the YAML is first walked as a tree so unknown keys
//! are reported by their full path with the closest valid key, then it is
//! deserialised into plain structs and validated as a whole.

use crate::error::{Result, StoreError};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The environment variable whose URL overrides the configured database.
pub const DATABASE_URL_ENV: &str = "FLOWSTATE_DATABASE_URL";

/// Where the embedded database lives when nothing else is configured.
pub const DEFAULT_SQLITE_PATH: &str = "./data/flowstate.db";

/// Top-level sections of the configuration file. `engine` belongs to the
/// engine crate; it is accepted here so the same file serves both.
const TOP_LEVEL_KEYS: &[&str] = &["storage", "engine"];
const STORAGE_KEYS: &[&str] = &[
    "type",
    "sqlite",
    "postgres",
    "mysql",
    "maxConnections",
    "autoMigrate",
    "retentionDays",
];
const SQLITE_KEYS: &[&str] = &["path", "busyTimeoutMs"];
const SERVER_KEYS: &[&str] = &["url"];

/// Which database backend the store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// An embedded SQLite file: one machine, zero set-up.
    Sqlite,
    /// A PostgreSQL server: several engine processes on several machines.
    Postgres,
    /// A MySQL or MariaDB server.
    Mysql,
}

impl StorageType {
    /// Every type, as spelled in the configuration.
    pub const NAMES: &'static [&'static str] = &["sqlite", "postgres", "mysql"];

    /// The configuration spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageType::Sqlite => "sqlite",
            StorageType::Postgres => "postgres",
            StorageType::Mysql => "mysql",
        }
    }

    /// The type a database URL's scheme names.
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(StorageType::Sqlite),
            "postgres" | "postgresql" => Ok(StorageType::Postgres),
            "mysql" | "mariadb" => Ok(StorageType::Mysql),
            _ => Err(StoreError::Config(format!(
                "unsupported database URL '{}'; it must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://",
                redact_url(url)
            ))),
        }
    }
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StorageType {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sqlite" => Ok(StorageType::Sqlite),
            "postgres" => Ok(StorageType::Postgres),
            "mysql" => Ok(StorageType::Mysql),
            other => Err(StoreError::Config(format!(
                "unknown storage.type '{other}'; expected one of {}{}",
                Self::NAMES.join(", "),
                did_you_mean(other, Self::NAMES)
            ))),
        }
    }
}

/// Settings of the embedded SQLite backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file; its folder is created when missing.
    pub path: PathBuf,
    /// How long a connection waits for a lock before giving up.
    pub busy_timeout_ms: u64,
}

/// The validated `storage:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Which backend to use.
    pub kind: StorageType,
    /// SQLite settings (used when `kind` is SQLite).
    pub sqlite: SqliteConfig,
    /// The server URL (used when `kind` is PostgreSQL or MySQL).
    pub url: Option<String>,
    /// Size of the connection pool.
    pub max_connections: u32,
    /// Apply pending migrations when the store opens.
    pub auto_migrate: bool,
    /// Terminal executions older than this many days are purged by retention.
    pub retention_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: StorageType::Sqlite,
            sqlite: SqliteConfig {
                path: PathBuf::from(DEFAULT_SQLITE_PATH),
                busy_timeout_ms: 5000,
            },
            url: None,
            max_connections: 10,
            auto_migrate: true,
            retention_days: 30,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawFile {
    storage: Option<RawStorage>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawStorage {
    #[serde(rename = "type")]
    kind: Option<String>,
    sqlite: Option<RawSqlite>,
    postgres: Option<RawServer>,
    mysql: Option<RawServer>,
    max_connections: Option<i64>,
    auto_migrate: Option<bool>,
    retention_days: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSqlite {
    path: Option<PathBuf>,
    busy_timeout_ms: Option<i64>,
}

#[derive(Deserialize, Default)]
struct RawServer {
    url: Option<String>,
}

impl StorageConfig {
    /// Reads the `storage:` section of a YAML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StoreError::Config(format!("cannot read config file '{}': {e}", path.display()))
        })?;
        Self::from_yaml(&text).map_err(|e| match e {
            StoreError::Config(m) => StoreError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses and validates the `storage:` section of a YAML document.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| StoreError::Config(format!("not valid YAML: {e}")))?;
        check_keys(&tree)?;
        let raw: RawFile = if tree.is_null() {
            RawFile::default()
        } else {
            serde_yaml_ng::from_value(tree).map_err(|e| StoreError::Config(e.to_string()))?
        };
        Self::from_raw(raw.storage.unwrap_or_default())
    }

    /// The configuration in effect: the file's section if a file is given, else
    /// the embedded default, then `FLOWSTATE_DATABASE_URL` on top.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut config = match path {
            Some(p) => Self::from_file(p)?,
            None => Self::default(),
        };
        if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
            if !url.trim().is_empty() {
                config = config.with_url(&url)?;
            }
        }
        Ok(config)
    }

    /// This configuration pointed at `url`; the backend is taken from its scheme.
    pub fn with_url(mut self, url: &str) -> Result<Self> {
        self.kind = StorageType::from_url(url)?;
        match self.kind {
            StorageType::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite:")
                    .trim_start_matches("//")
                    .split('?')
                    .next()
                    .unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return Err(StoreError::Config(format!(
                        "the SQLite URL '{url}' names no file; use sqlite://PATH (an in-memory database would lose every execution)"
                    )));
                }
                self.sqlite.path = PathBuf::from(path);
                self.url = None;
            }
            _ => self.url = Some(url.to_owned()),
        }
        Ok(self)
    }

    fn from_raw(raw: RawStorage) -> Result<Self> {
        let defaults = Self::default();
        let kind = match raw.kind.as_deref() {
            None => StorageType::Sqlite,
            Some(t) => t.parse()?,
        };
        let sqlite = raw.sqlite.unwrap_or_default();
        let busy_timeout_ms = match sqlite.busy_timeout_ms {
            None => defaults.sqlite.busy_timeout_ms,
            Some(ms) if ms >= 0 => ms as u64,
            Some(ms) => {
                return Err(StoreError::Config(format!(
                    "storage.sqlite.busyTimeoutMs is {ms}; it must be 0 or more milliseconds"
                )))
            }
        };
        let sqlite = SqliteConfig {
            path: sqlite.path.unwrap_or(defaults.sqlite.path),
            busy_timeout_ms,
        };
        if sqlite.path.as_os_str().is_empty() {
            return Err(StoreError::Config(
                "storage.sqlite.path is empty; give the database file's path".into(),
            ));
        }
        let url = match kind {
            StorageType::Sqlite => None,
            StorageType::Postgres => Some(server_url(kind, raw.postgres)?),
            StorageType::Mysql => Some(server_url(kind, raw.mysql)?),
        };
        let max_connections = match raw.max_connections {
            None => defaults.max_connections,
            Some(n) if (1..=1000).contains(&n) => n as u32,
            Some(n) => {
                return Err(StoreError::Config(format!(
                    "storage.maxConnections is {n}; it must be between 1 and 1000"
                )))
            }
        };
        let retention_days = match raw.retention_days {
            None => defaults.retention_days,
            Some(n) if (1..=36_500).contains(&n) => n as u32,
            Some(n) => {
                return Err(StoreError::Config(format!(
                    "storage.retentionDays is {n}; it must be at least 1 (and at most 36500)"
                )))
            }
        };
        Ok(StorageConfig {
            kind,
            sqlite,
            url,
            max_connections,
            auto_migrate: raw.auto_migrate.unwrap_or(defaults.auto_migrate),
            retention_days,
        })
    }

    /// Where this configuration connects, safe to print (password redacted).
    pub fn display_target(&self) -> String {
        match (&self.kind, &self.url) {
            (StorageType::Sqlite, _) => format!("sqlite://{}", self.sqlite.path.display()),
            (_, Some(url)) => redact_url(url),
            (kind, None) => format!("{kind} (no url)"),
        }
    }
}

fn server_url(kind: StorageType, section: Option<RawServer>) -> Result<String> {
    match section.and_then(|s| s.url).filter(|u| !u.trim().is_empty()) {
        Some(url) => {
            let scheme_kind = StorageType::from_url(&url)?;
            if scheme_kind != kind {
                return Err(StoreError::Config(format!(
                    "storage.{kind}.url '{}' is a {scheme_kind} URL; use a {kind} URL or set storage.type to {scheme_kind}",
                    redact_url(&url)
                )));
            }
            Ok(url)
        }
        None => Err(StoreError::Config(format!(
            "storage.type is {kind} but storage.{kind}.url is missing; set it (or {DATABASE_URL_ENV})"
        ))),
    }
}

/// Rejects keys the schema does not know, naming their path and a likely fix.
fn check_keys(tree: &serde_yaml_ng::Value) -> Result<()> {
    use serde_yaml_ng::Value;
    fn walk(value: &Value, path: &str, allowed: &[&str]) -> Result<()> {
        let Value::Mapping(map) = value else {
            return Ok(());
        };
        for key in map.keys() {
            let key = key.as_str().unwrap_or("<non-string key>");
            if !allowed.contains(&key) {
                let full = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                return Err(StoreError::Config(format!(
                    "unknown key '{full}'{}; valid keys here are {}",
                    did_you_mean(key, allowed),
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }
    if !matches!(tree, Value::Mapping(_) | Value::Null) {
        return Err(StoreError::Config(
            "the configuration must be a YAML mapping with a 'storage:' section".into(),
        ));
    }
    walk(tree, "", TOP_LEVEL_KEYS)?;
    if let Some(storage) = tree.get("storage") {
        walk(storage, "storage", STORAGE_KEYS)?;
        if let Some(s) = storage.get("sqlite") {
            walk(s, "storage.sqlite", SQLITE_KEYS)?;
        }
        for server in ["postgres", "mysql"] {
            if let Some(s) = storage.get(server) {
                walk(s, &format!("storage.{server}"), SERVER_KEYS)?;
            }
        }
    }
    Ok(())
}

/// " (did you mean 'x'?)" when a candidate is close enough to be a typo.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word_lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min()
        .map(|(_, c)| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The URL with any password replaced by `***`, safe for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
