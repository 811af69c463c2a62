//! The `storage:` section of the configuration file.
//!
//! Everything is checked before anything connects:
//! - the file: at most [`MAX_FILE_BYTES`], and nested at most
//!   [`MAX_NESTING`] levels, checked by [`crate::yaml`] before the YAML
//!   parser (which slows down badly on deep flow nesting) ever sees it;
//! - the YAML tree is read key by key with small typed accessors, so every
//!   error names the key path, what it found and what it expected; unknown
//!   keys are named with their full path and the closest valid key;
//! - server URLs are parsed and must name a host, a port in range (when given)
//!   and a database; their passwords are registered with [`crate::redact`]
//!   and never appear in a message.

use crate::error::{Result, StoreError};
use crate::redact::register_secrets_from_url;
use crate::text::shown;
use crate::yaml::{describe, echo};
use serde_yaml_ng::{Mapping, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use crate::redact::redact_url;

/// The environment variable whose URL overrides the configured database.
pub const DATABASE_URL_ENV: &str = "FLOWSTATE_DATABASE_URL";

/// Where the embedded database lives when nothing else is configured.
pub const DEFAULT_SQLITE_PATH: &str = "./data/flowstate.db";

pub use crate::yaml::{MAX_FILE_BYTES, MAX_NESTING};

/// The longest `storage.sqlite.busyTimeoutMs`: ten minutes.
pub const MAX_BUSY_TIMEOUT_MS: u64 = 600_000;

/// Top-level sections of the configuration file. `engine` belongs to the
/// engine crate; it is accepted here so the same file serves both.
const TOP_LEVEL_KEYS: &[&str] = &["storage", "engine", "server"];
/// The keys of the `storage:` section.
pub const STORAGE_KEYS: &[&str] = &[
    "type",
    "sqlite",
    "postgres",
    "mysql",
    "maxConnections",
    "autoMigrate",
    "retentionDays",
];
const SQLITE_KEYS: &[&str] = &["path", "busyTimeoutMs", "maxSizeMb"];
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
                shown(&redact_url(url))
            ))),
        }
    }

    /// The shape of a URL for this backend, for messages.
    fn example_url(&self) -> &'static str {
        match self {
            StorageType::Sqlite => "sqlite://PATH",
            StorageType::Postgres => "postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            StorageType::Mysql => "mysql://USER:PASSWORD@HOST:PORT/DATABASE",
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
                "unknown storage.type '{}'; expected one of {}{}",
                echo(other),
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
    /// How long a connection waits for a lock before giving up, in
    /// milliseconds: 0 to [`MAX_BUSY_TIMEOUT_MS`] (600000, ten minutes). The
    /// configuration refuses more, well before SQLite's 32-bit limit (past
    /// which the driver panics after creating the file).
    pub busy_timeout_ms: u64,
    /// The most the database file may grow to, in MiB (`None`: as far as the
    /// disk allows). Past it writes fail as "database or disk is full", the
    /// way a full disk fails them; deleting rows frees room for more.
    pub max_size_mb: Option<u64>,
}

/// The largest `storage.sqlite.maxSizeMb`: 16 TiB, far under SQLite's own
/// page-count limit.
pub const MAX_SQLITE_SIZE_MB: u64 = 16 * 1024 * 1024;

/// The validated `storage:` section.
///
/// Its `Debug` output shows [`url`](Self::url) with the password redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Which backend to use.
    pub kind: StorageType,
    /// SQLite settings (used when `kind` is SQLite).
    pub sqlite: SqliteConfig,
    /// The server URL (used when `kind` is PostgreSQL or MySQL).
    pub url: Option<String>,
    /// Size of the connection pool: 1 to 1000.
    pub max_connections: u32,
    /// Apply pending migrations when the store opens.
    pub auto_migrate: bool,
    /// Terminal executions older than this many days (1 to 36500) are purged
    /// by retention.
    pub retention_days: u32,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("kind", &self.kind)
            .field("sqlite", &self.sqlite)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("max_connections", &self.max_connections)
            .field("auto_migrate", &self.auto_migrate)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: StorageType::Sqlite,
            sqlite: SqliteConfig {
                path: PathBuf::from(DEFAULT_SQLITE_PATH),
                busy_timeout_ms: 5000,
                max_size_mb: None,
            },
            url: None,
            max_connections: 10,
            auto_migrate: true,
            retention_days: 30,
        }
    }
}

/// The text of a configuration file, refused when over [`MAX_FILE_BYTES`]
/// (checked on its metadata before reading, and again while reading for
/// files whose size the metadata does not tell) or not UTF-8.
pub fn read_config_file(path: &Path) -> Result<String> {
    crate::yaml::read_bounded(path).map_err(|e| {
        StoreError::Config(format!(
            "config file '{}': {e}",
            shown(&path.display().to_string())
        ))
    })
}

impl StorageConfig {
    /// Reads the `storage:` section of a YAML file (see [`read_config_file`]
    /// for the size limit). An empty file means every default.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_with(path, true)
    }

    fn from_file_with(path: &Path, url_required: bool) -> Result<Self> {
        let text = read_config_file(path)?;
        Self::from_text_with(path, &text, url_required)
    }

    /// The section of a file's text, errors prefixed with the file's name.
    fn from_text_with(path: &Path, text: &str, url_required: bool) -> Result<Self> {
        Self::from_yaml_with(text, url_required).map_err(|e| match e {
            StoreError::Config(m) => {
                StoreError::Config(format!("{}: {m}", shown(&path.display().to_string())))
            }
            other => other,
        })
    }

    /// Parses and validates the `storage:` section of a YAML document. Empty
    /// or whitespace-only text means every default.
    pub fn from_yaml(text: &str) -> Result<Self> {
        Self::from_yaml_with(text, true)
    }

    fn from_yaml_with(text: &str, url_required: bool) -> Result<Self> {
        crate::yaml::check(text, "the configuration").map_err(StoreError::Config)?;
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let tree: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| StoreError::Config(format!("not valid YAML: {e}")))?;
        Self::from_tree(&tree, url_required)
    }

    /// The configuration in effect: the file's section if a file is given, else
    /// the embedded default, then `FLOWSTATE_DATABASE_URL` on top (ignored when
    /// empty or only whitespace). With that variable set, the file need not
    /// name a server URL.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let text = path.map(read_config_file).transpose()?;
        Self::load_text(path.zip(text.as_deref()))
    }

    /// [`load`](Self::load) for a file already read (`(path, text)`), so a
    /// caller that needs the file's other sections reads it once: a pipe
    /// such as `--config /dev/stdin` can only be read once.
    pub fn load_text(file: Option<(&Path, &str)>) -> Result<Self> {
        let env_url = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty());
        let mut config = match file {
            Some((path, text)) => Self::from_text_with(path, text, env_url.is_none())?,
            None => Self::default(),
        };
        if let Some(url) = env_url {
            config = config.with_url(&url).map_err(|e| match e {
                StoreError::Config(m) => StoreError::Config(format!("{DATABASE_URL_ENV}: {m}")),
                other => other,
            })?;
        }
        Ok(config)
    }

    /// This configuration pointed at `url`; the backend is taken from its
    /// scheme. The URL is checked before anything connects: a SQLite URL must
    /// name a file (not `:memory:`, no NUL); a server URL must use `//`, have
    /// no `#` fragment, parse, and name a host, a port from 1 to 65535 (when
    /// given) and a database. Its secrets are registered with
    /// [`crate::redact::register_secrets_from_url`] whether it is accepted or
    /// not, and no error shows its password.
    pub fn with_url(mut self, url: &str) -> Result<Self> {
        register_secrets_from_url(url);
        let url = url.trim();
        self.kind = StorageType::from_url(url)?;
        match self.kind {
            StorageType::Sqlite => {
                let path = url
                    .split_once(':')
                    .map_or("", |(_, rest)| rest)
                    .trim_start_matches("//")
                    .split('?')
                    .next()
                    .unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return Err(StoreError::Config(format!(
                        "the SQLite URL '{}' names no file; use sqlite://PATH (an in-memory database would lose every execution)",
                        shown(&redact_url(url))
                    )));
                }
                if path.contains('\0') {
                    return Err(StoreError::Config(format!(
                        "the SQLite URL '{}' has a NUL character in its path; use sqlite://PATH",
                        shown(&redact_url(url))
                    )));
                }
                self.sqlite.path = PathBuf::from(path);
                self.url = None;
            }
            kind => {
                check_server_url(kind, url, "the database URL")?;
                self.url = Some(url.to_owned());
            }
        }
        Ok(self)
    }

    fn from_tree(tree: &Value, url_required: bool) -> Result<Self> {
        let Some(top) = top_mapping(tree)? else {
            return Ok(Self::default());
        };
        // Before anything can fail, so every message can hide them.
        register_server_secrets(top);
        check_keys(top, "", TOP_LEVEL_KEYS)?;
        let Some(storage) = section(Some(top), "storage", "storage", STORAGE_KEYS)? else {
            return Ok(Self::default());
        };
        let storage = Some(storage);
        let sqlite = section(storage, "sqlite", "storage.sqlite", SQLITE_KEYS)?;
        let postgres = section(storage, "postgres", "storage.postgres", SERVER_KEYS)?;
        let mysql = section(storage, "mysql", "storage.mysql", SERVER_KEYS)?;

        let kind = storage_kind(storage)?;
        let mut config = StorageConfig {
            kind,
            sqlite: sqlite_config(sqlite)?,
            ..Self::default()
        };
        read_settings(storage, &mut config)?;
        config.url = server_urls(kind, postgres, mysql, url_required)?;
        Ok(config)
    }

    /// Where this configuration connects, safe to print: password
    /// redacted, cut to a readable length, control characters escaped.
    pub fn display_target(&self) -> String {
        match (&self.kind, &self.url) {
            (StorageType::Sqlite, _) => shown(&format!("sqlite://{}", self.sqlite.path.display())),
            (_, Some(url)) => shown(&redact_url(url)),
            (kind, None) => format!("{kind} (no url)"),
        }
    }
}

/// The top of the configuration as a mapping; `None` for an empty document.
fn top_mapping(tree: &Value) -> Result<Option<&Mapping>> {
    match tree {
        Value::Null => Ok(None),
        Value::Mapping(m) => Ok(Some(m)),
        other => Err(StoreError::Config(format!(
            "the configuration must be a YAML mapping with a 'storage:' section; it is {}",
            describe(other)
        ))),
    }
}

/// Registers the passwords of `storage.postgres.url` and `storage.mysql.url`
/// (whatever else is wrong with the file) so no message shows them.
fn register_server_secrets(top: &Mapping) {
    for server in ["postgres", "mysql"] {
        let url = top
            .get("storage")
            .and_then(|s| s.get(server))
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str);
        if let Some(url) = url {
            register_secrets_from_url(url);
        }
    }
}

/// `storage.type`, SQLite when absent.
fn storage_kind(storage: Option<&Mapping>) -> Result<StorageType> {
    match string(
        storage,
        "type",
        "storage.type",
        "one of sqlite, postgres, mysql",
    )? {
        None => Ok(StorageType::Sqlite),
        Some(t) => t.parse(),
    }
}

/// The `storage.sqlite` section, defaults filled in.
fn sqlite_config(sqlite: Option<&Mapping>) -> Result<SqliteConfig> {
    let defaults = StorageConfig::default().sqlite;
    let path = match string(
        sqlite,
        "path",
        "storage.sqlite.path",
        "a file path (a string)",
    )? {
        None => defaults.path,
        Some("") => {
            return Err(StoreError::Config(
                "storage.sqlite.path is empty; give the database file's path".into(),
            ))
        }
        Some(p) if p.contains('\0') => {
            return Err(StoreError::Config(format!(
                "storage.sqlite.path '{}' contains a NUL character; give the database file's path",
                echo(p)
            )))
        }
        Some(p) => PathBuf::from(p),
    };
    let busy_timeout_ms = whole(
        sqlite,
        "busyTimeoutMs",
        "storage.sqlite.busyTimeoutMs",
        (0, MAX_BUSY_TIMEOUT_MS as i64),
        " of milliseconds",
        "between 0 and 600000 milliseconds (10 minutes)",
    )?
    .map_or(defaults.busy_timeout_ms, |n| n as u64);
    let max_size_mb = whole(
        sqlite,
        "maxSizeMb",
        "storage.sqlite.maxSizeMb",
        (1, MAX_SQLITE_SIZE_MB as i64),
        " of MiB",
        "between 1 and 16777216 MiB (16 TiB)",
    )?
    .map(|n| n as u64);
    Ok(SqliteConfig {
        path,
        busy_timeout_ms,
        max_size_mb,
    })
}

/// `storage.maxConnections`, `storage.autoMigrate` and
/// `storage.retentionDays`, read in that order into `config` when present.
fn read_settings(storage: Option<&Mapping>, config: &mut StorageConfig) -> Result<()> {
    if let Some(n) = whole(
        storage,
        "maxConnections",
        "storage.maxConnections",
        (1, 1000),
        "",
        "between 1 and 1000",
    )? {
        config.max_connections = n as u32;
    }
    match storage.and_then(|m| get(m, "autoMigrate")) {
        None => {}
        Some(Value::Bool(b)) => config.auto_migrate = *b,
        Some(other) => {
            return Err(StoreError::Config(format!(
                "storage.autoMigrate is {}; expected true or false",
                describe(other)
            )))
        }
    }
    if let Some(n) = whole(
        storage,
        "retentionDays",
        "storage.retentionDays",
        (1, 36_500),
        " of days",
        "at least 1 (and at most 36500)",
    )? {
        config.retention_days = n as u32;
    }
    Ok(())
}

/// Both `storage.<server>.url` keys are type-checked; the active backend's
/// is then checked in full by [`server_url`]. `None` for SQLite.
fn server_urls(
    kind: StorageType,
    postgres: Option<&Mapping>,
    mysql: Option<&Mapping>,
    url_required: bool,
) -> Result<Option<String>> {
    let server = |kind: StorageType| format!("a database URL such as {}", kind.example_url());
    let postgres_url = string(
        postgres,
        "url",
        "storage.postgres.url",
        &server(StorageType::Postgres),
    )?;
    let mysql_url = string(
        mysql,
        "url",
        "storage.mysql.url",
        &server(StorageType::Mysql),
    )?;
    match kind {
        StorageType::Sqlite => Ok(None),
        StorageType::Postgres => server_url(kind, postgres_url, url_required),
        StorageType::Mysql => server_url(kind, mysql_url, url_required),
    }
}

/// The `storage.<kind>.url` of the active backend, checked.
fn server_url(kind: StorageType, url: Option<&str>, required: bool) -> Result<Option<String>> {
    let key = format!("storage.{kind}.url");
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => {
            let scheme_kind = StorageType::from_url(url).map_err(|e| match e {
                StoreError::Config(m) => StoreError::Config(format!("{key}: {m}")),
                other => other,
            })?;
            if scheme_kind != kind {
                return Err(StoreError::Config(format!(
                    "{key} '{}' is a {scheme_kind} URL; use a {kind} URL or set storage.type to {scheme_kind}",
                    shown(&redact_url(url))
                )));
            }
            check_server_url(kind, url, &key)?;
            Ok(Some(url.to_owned()))
        }
        None if required => Err(StoreError::Config(format!(
            "storage.type is {kind} but {key} is missing; set it (or {DATABASE_URL_ENV})"
        ))),
        None => Ok(None),
    }
}

/// Refuses a PostgreSQL or MySQL URL that cannot work, naming `what` (the key
/// or "the database URL") and showing the URL redacted.
fn check_server_url(kind: StorageType, url: &str, what: &str) -> Result<()> {
    let example = kind.example_url();
    let fail = |why: String| {
        Err(StoreError::Config(format!(
            "{what} '{}' {why}",
            shown(&redact_url(url))
        )))
    };
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    if !rest.starts_with("//") {
        return fail(format!(
            "has no '//' after '{}:'; use {example}",
            shown(scheme)
        ));
    }
    if url.contains('#') {
        return fail(
            "contains '#', which would end the URL there; percent-encode '#' in the password as %23"
                .into(),
        );
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(url::ParseError::InvalidPort) => {
            return fail(
                "has an invalid port; it must be a number from 1 to 65535 (percent-encode any '/', '?' or '@' in the password as %2F, %3F, %40)"
                    .into(),
            )
        }
        Err(url::ParseError::InvalidIpv6Address) => {
            return fail(
                "has an unclosed '[' or an invalid IPv6 address as its host; write an IPv6 host in brackets, e.g. [::1]"
                    .into(),
            )
        }
        Err(url::ParseError::EmptyHost) => return fail(format!("names no host; use {example}")),
        Err(e) => {
            return fail(format!(
                "is not a valid URL ({e}); use {example} with special characters in the password percent-encoded"
            ))
        }
    };
    let has_param = |names: &[&str]| {
        parsed
            .query_pairs()
            .any(|(k, v)| names.contains(&k.as_ref()) && !v.is_empty())
    };
    let socket_params: &[&str] = match kind {
        StorageType::Postgres => &["host", "hostaddr"],
        _ => &["socket"],
    };
    if parsed.host_str().is_none_or(str::is_empty) && !has_param(socket_params) {
        return fail(format!("names no host; use {example}"));
    }
    if parsed.port() == Some(0) {
        return fail("has port 0; use a port from 1 to 65535".into());
    }
    let no_database = parsed.path().trim_matches('/').is_empty();
    if no_database && !(kind == StorageType::Postgres && has_param(&["dbname"])) {
        return fail(format!(
            "names no database; add it after the host: {example}"
        ));
    }
    Ok(())
}

/// `map[key]`, with an explicit `null` (`key:` and nothing) read as absent.
fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// The mapping at `parent[key]` (whose full path is `path`), its keys
/// checked against `keys`; `None` when absent.
fn section<'a>(
    parent: Option<&'a Mapping>,
    key: &str,
    path: &str,
    keys: &[&str],
) -> Result<Option<&'a Mapping>> {
    match parent.and_then(|p| get(p, key)) {
        None => Ok(None),
        Some(Value::Mapping(m)) => {
            check_keys(m, path, keys)?;
            Ok(Some(m))
        }
        Some(other) => Err(StoreError::Config(format!(
            "{path} is {}; expected a mapping with the keys {}",
            describe(other),
            keys.join(", ")
        ))),
    }
}

/// The string at `map[key]`, or a message naming `path` and `expected`.
fn string<'a>(
    map: Option<&'a Mapping>,
    key: &str,
    path: &str,
    expected: &str,
) -> Result<Option<&'a str>> {
    match map.and_then(|m| get(m, key)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(StoreError::Config(format!(
            "{path} is {}; expected {expected}",
            describe(other)
        ))),
    }
}

/// The whole number at `map[key]` within `lo..=hi`. Messages: "PATH is
/// VALUE; expected a whole number{of} between LO and HI" for another type,
/// "PATH is N; it must be {range}" out of range.
fn whole(
    map: Option<&Mapping>,
    key: &str,
    path: &str,
    (lo, hi): (i64, i64),
    of: &str,
    range: &str,
) -> Result<Option<i64>> {
    let out_of_range = |n: String| {
        Err(StoreError::Config(format!(
            "{path} is {}; it must be {range}",
            shown(&n)
        )))
    };
    match map.and_then(|m| get(m, key)) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(i) if (lo..=hi).contains(&i) => Ok(Some(i)),
            _ => out_of_range(n.to_string()),
        },
        Some(other) => Err(StoreError::Config(format!(
            "{path} is {}; expected a whole number{of} between {lo} and {hi}",
            describe(other)
        ))),
    }
}

/// Rejects keys the schema does not know, naming their path and a likely fix.
fn check_keys(map: &Mapping, path: &str, allowed: &[&str]) -> Result<()> {
    for key in map.keys() {
        let name = match key {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => format!("<{}>", describe(other)),
        };
        if !allowed.contains(&name.as_str()) {
            let full = if path.is_empty() {
                echo(&name)
            } else {
                format!("{path}.{}", echo(&name))
            };
            return Err(StoreError::Config(format!(
                "unknown key '{full}'{}; valid keys here are {}",
                did_you_mean(&name, allowed),
                allowed.join(", ")
            )));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        match StorageConfig::from_yaml(yaml) {
            Ok(c) => panic!("expected an error for {yaml:?}, got {c:?}"),
            Err(StoreError::Config(m)) => m,
            Err(other) => panic!("expected a config error, got {other:?}"),
        }
    }

    fn url_err(url: &str) -> String {
        match StorageConfig::default().with_url(url) {
            Ok(c) => panic!("expected an error for {url:?}, got {c:?}"),
            Err(StoreError::Config(m)) => m,
            Err(other) => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_comment_only_files_are_the_defaults() {
        for text in ["", "  \n\t\n", "# nothing\n", "storage:\n", "storage: ~\n"] {
            assert_eq!(
                StorageConfig::from_yaml(text).unwrap(),
                StorageConfig::default()
            );
        }
    }

    /// (tests/tests/config.rs reads every key; here: what Debug shows.)
    #[test]
    fn debug_output_hides_the_password() {
        let c = StorageConfig::from_yaml(
            "storage:\n  type: postgres\n  postgres:\n    url: postgres://u:secret@db:5432/fs\n",
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("postgres://u:***@db:5432/fs"), "{debug}");
    }

    #[test]
    fn wrong_types_name_the_key_the_value_and_the_expected_type() {
        let cases: &[(&str, &str)] = &[
            (
                "storage:\n  maxConnections: ten\n",
                "storage.maxConnections is the string \"ten\"; expected a whole number between 1 and 1000",
            ),
            (
                "storage:\n  autoMigrate: sometimes\n",
                "storage.autoMigrate is the string \"sometimes\"; expected true or false",
            ),
            (
                "storage:\n  retentionDays: 2.5\n",
                "storage.retentionDays is the number 2.5; expected a whole number of days between 1 and 36500",
            ),
            (
                "storage:\n  sqlite:\n    busyTimeoutMs: [1]\n",
                "storage.sqlite.busyTimeoutMs is a list; expected a whole number of milliseconds between 0 and 600000",
            ),
            (
                "storage:\n  type: 5\n",
                "storage.type is the number 5; expected one of sqlite, postgres, mysql",
            ),
            (
                "storage:\n  sqlite:\n    path: {a: 1}\n",
                "storage.sqlite.path is a mapping; expected a file path (a string)",
            ),
            (
                "storage:\n  postgres:\n    url: true\n",
                "storage.postgres.url is the boolean true; expected a database URL such as postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            (
                "storage: 5\n",
                "storage is the number 5; expected a mapping with the keys type, sqlite, postgres, mysql, maxConnections, autoMigrate, retentionDays",
            ),
            (
                "storage:\n  sqlite: [1]\n",
                "storage.sqlite is a list; expected a mapping with the keys path, busyTimeoutMs, maxSizeMb",
            ),
            (
                "storage:\n  mysql: x\n",
                "storage.mysql is the string \"x\"; expected a mapping with the keys url",
            ),
            (
                "- a\n- b\n",
                "the configuration must be a YAML mapping with a 'storage:' section; it is a list",
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(&err(yaml), want, "{yaml:?}");
        }
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let cases: &[(&str, &str)] = &[
            (
                "storage:\n  retentionDays: 0\n",
                "storage.retentionDays is 0; it must be at least 1 (and at most 36500)",
            ),
            (
                "storage:\n  maxConnections: 0\n",
                "storage.maxConnections is 0; it must be between 1 and 1000",
            ),
            (
                "storage:\n  maxConnections: 1001\n",
                "storage.maxConnections is 1001; it must be between 1 and 1000",
            ),
            (
                "storage:\n  sqlite:\n    busyTimeoutMs: -1\n",
                "storage.sqlite.busyTimeoutMs is -1; it must be between 0 and 600000 milliseconds (10 minutes)",
            ),
            (
                "storage:\n  sqlite:\n    busyTimeoutMs: 2147483648\n",
                "storage.sqlite.busyTimeoutMs is 2147483648; it must be between 0 and 600000 milliseconds (10 minutes)",
            ),
            (
                "storage:\n  sqlite:\n    busyTimeoutMs: 18446744073709551615\n",
                "storage.sqlite.busyTimeoutMs is 18446744073709551615; it must be between 0 and 600000 milliseconds (10 minutes)",
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(&err(yaml), want, "{yaml:?}");
        }
        let c =
            StorageConfig::from_yaml("storage:\n  sqlite:\n    busyTimeoutMs: 600000\n").unwrap();
        assert_eq!(c.sqlite.busy_timeout_ms, 600_000);
    }

    #[test]
    fn sqlite_paths_are_checked() {
        assert_eq!(
            err("storage:\n  sqlite:\n    path: ''\n"),
            "storage.sqlite.path is empty; give the database file's path"
        );
        assert_eq!(
            err("storage:\n  sqlite:\n    path: \"a\\0b\"\n"),
            "storage.sqlite.path 'a\\u{0}b' contains a NUL character; give the database file's path"
        );
        let long = "x".repeat(5000);
        let m = err(&format!("storage:\n  type: {long}\n"));
        assert!(m.len() < 400 && m.contains("(5000 characters)"), "{m}");
    }

    #[test]
    fn a_password_in_the_wrong_place_is_not_echoed() {
        for yaml in [
            "storage: postgres://u:hunter22@h/db\n",
            "storage:\n  postgres: postgres://u:hunter22@h/db\n",
            "storage:\n  type: postgres://u:hunter22@h/db\n",
            "storage:\n  postgres:\n    postgres://u:hunter22@h/db: 1\n",
            "storage:\n  type: postgres\n  postgres:\n    url: oracle://u:hunter22@h/db\n",
            "storage:\n  type: mysql\n  mysql:\n    url: postgres://u:hunter22@h/db\n",
            "storage:\n  type: postgres\n  postgres:\n    url: postgres://u:hunter22@h:99999/db\n",
        ] {
            let m = err(yaml);
            assert!(!m.contains("hunter22"), "{m}");
        }
    }

    #[test]
    fn server_urls_are_checked_before_connecting() {
        let cases: &[(&str, &str)] = &[
            (
                "postgres:u:hunter22@host/db",
                "the database URL 'postgres:u:***@host/db' has no '//' after 'postgres:'; use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            (
                "mysql:root:hunter22@127.0.0.1/x",
                "the database URL 'mysql:root:***@127.0.0.1/x' has no '//' after 'mysql:'; use mysql://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            (
                "postgres://u:p/a?b#c@d@host:5432/db",
                "the database URL 'postgres://u:***@host:5432/db' contains '#', which would end the URL there; percent-encode '#' in the password as %23",
            ),
            (
                "postgres://u:hunter22@h:99999/db",
                "the database URL 'postgres://u:***@h:99999/db' has an invalid port; it must be a number from 1 to 65535 (percent-encode any '/', '?' or '@' in the password as %2F, %3F, %40)",
            ),
            (
                "postgres://u:hunter22@[::1/db",
                "the database URL 'postgres://u:***@[::1/db' has an unclosed '[' or an invalid IPv6 address as its host; write an IPv6 host in brackets, e.g. [::1]",
            ),
            (
                "postgres://u:hunter22@h:5432",
                "the database URL 'postgres://u:***@h:5432' names no database; add it after the host: postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            (
                "mysql://u:hunter22@h:3306/",
                "the database URL 'mysql://u:***@h:3306/' names no database; add it after the host: mysql://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            (
                "postgres:///db",
                "the database URL 'postgres:///db' names no host; use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            (
                "mysql://u:hunter22@h:0/db",
                "the database URL 'mysql://u:***@h:0/db' has port 0; use a port from 1 to 65535",
            ),
            (
                "sqlite://",
                "the SQLite URL 'sqlite://' names no file; use sqlite://PATH (an in-memory database would lose every execution)",
            ),
            (
                "sqlite://a\0b",
                "the SQLite URL 'sqlite://a\\u{0}b' has a NUL character in its path; use sqlite://PATH",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(&url_err(url), want, "{url:?}");
        }
        assert!(url_err("sqlite::memory:").contains("names no file"));
        let m = url_err("oracle://a:pw@h/db");
        assert!(
            m.contains("oracle://a:***@h/db") && !m.contains("pw"),
            "{m}"
        );
        let m = err("storage:\n  type: postgres\n  postgres:\n    url: 'postgres://u:a#b@h/db'\n");
        assert!(
            m.starts_with("storage.postgres.url 'postgres://u:***@h/db' contains '#'"),
            "{m}"
        );

        let ok = |url: &str| StorageConfig::default().with_url(url).unwrap();
        assert_eq!(ok("postgresql://a@h/db").kind, StorageType::Postgres);
        assert_eq!(ok("mariadb://a@h/db").kind, StorageType::Mysql);
        assert_eq!(
            ok("postgres://u:p@ss@h:5432/db").url.as_deref(),
            Some("postgres://u:p@ss@h:5432/db")
        );
        ok("postgres://u:p%23ss@[::1]:5432/db?sslmode=disable");
        ok("postgres:///db?host=/run/postgresql");
        ok("postgres://u@h/?dbname=fs");
        ok("mysql://root@127.0.0.1:3306/test");
        ok("  postgres://u@h/db\n");
        let c = ok("sqlite:///tmp/x/fs.db?mode=rwc");
        assert_eq!(c.kind, StorageType::Sqlite);
        assert_eq!(c.sqlite.path, PathBuf::from("/tmp/x/fs.db"));
    }

    #[test]
    fn urls_that_fail_still_register_their_secrets() {
        let _ = url_err("postgres://u:Reg1stered-pw@h:99999/db");
        let m = crate::redact::redact("driver: bad password Reg1stered-pw");
        assert!(!m.contains("Reg1stered-pw"), "{m}");
        let _ = err("storage:\n  postgres:\n    url: 'postgres://u:Reg2stered-pw@h/db'\n  maxConnections: x\n");
        let m = crate::redact::redact("Reg2stered-pw");
        assert_eq!(m, "***");
    }

    #[test]
    fn a_database_url_from_the_environment_may_stand_in_for_the_file_url() {
        let c = StorageConfig::from_yaml_with("storage:\n  type: postgres\n", false).unwrap();
        assert_eq!(c.url, None);
        let c = c.with_url("postgres://u@h/db").unwrap();
        assert_eq!(c.url.as_deref(), Some("postgres://u@h/db"));
    }

    #[test]
    fn big_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let Err(StoreError::Config(m)) = StorageConfig::from_file(&path) else {
            panic!()
        };
        assert!(
            m.ends_with("the file is 10485761 bytes; the most is 10 MB (10485760 bytes)"),
            "{m}"
        );
        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "\n  \n").unwrap();
        assert_eq!(
            StorageConfig::from_file(&empty).unwrap(),
            StorageConfig::default()
        );
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "storage:\n  maxConnections: 0\n").unwrap();
        let Err(StoreError::Config(m)) = StorageConfig::from_file(&bad) else {
            panic!()
        };
        assert!(
            m.ends_with("bad.yaml: storage.maxConnections is 0; it must be between 1 and 1000"),
            "{m}"
        );
    }

    fn deep(open: &str, close: &str, n: usize) -> String {
        format!("storage:\n  type: {}{}\n", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn deep_nesting_is_refused_at_once() {
        for text in [
            format!("storage: {}", "[".repeat(50_000)),
            format!("storage: {}", "{a: ".repeat(50_000)),
            format!("storage: {}", "[{".repeat(25_000)),
            deep("[", "]", 50_000),
            deep("[", "]", 65),
            // Brackets in strings and plain scalars, then a deep collection.
            format!("a: it's\nb: {}\n", "[".repeat(100)),
            format!(
                "a: |\n  [ 'foo\nb: {} 'x {}' {}\n",
                "[".repeat(70),
                "]".repeat(70),
                "]".repeat(70)
            ),
            format!(
                "a: x\n  [ 'foo\nb: {} 'x {}' {}\n",
                "[".repeat(70),
                "]".repeat(70),
                "]".repeat(70)
            ),
            format!("a: [\"{}\", {}]\n", "]".repeat(70), "[".repeat(70)),
            format!("a: {}\n", "[[]".repeat(100)),
        ] {
            // Refused, by the pre-scan or (for what it lets through) by
            // the parser or the typed reading, never parsed deep.
            let _ = err(&text);
        }
        assert!(crate::yaml::nesting_depth_exceeds(
            &"[".repeat(MAX_FILE_BYTES as usize),
            MAX_NESTING
        ));
        assert!(err(&deep("[", "]", 50_000)).contains("more than 64 levels deep"));
    }

    #[test]
    fn brackets_that_do_not_nest_pass() {
        let many = "[a]".repeat(100);
        // Two block levels (storage, type) and 62 flow levels: 64 in all.
        for text in [
            deep("[", "]", 62),
            format!("# {}\nstorage:\n  type: sqlite\n", "[".repeat(100)),
            format!("storage:\n  sqlite:\n    path: \"{}\"\n", "[".repeat(100)),
            format!("storage:\n  sqlite:\n    path: '{}'\n", "{".repeat(100)),
            format!("engine: {{a: [{many}], b: \"[[[[\", c: '{{{{'}}\n"),
            format!("engine: [{}]\n", vec!["[1, {a: 2}]"; 100].join(", ")),
            format!("engine:\n{}", "  - [1, [2, [3]]]\n".repeat(100)),
        ] {
            assert!(
                !crate::yaml::nesting_depth_exceeds(&text, MAX_NESTING),
                "{text}"
            );
        }
        let m = err(&deep("[", "]", 62));
        assert!(m.starts_with("storage.type is a list"), "{m}");
    }
}
