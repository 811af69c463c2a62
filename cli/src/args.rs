//! Parsing what people type: ids, times, durations, states, `k=v` inputs.

use chrono::{DateTime, Utc};
use flowstate_engine::duration::parse_duration;
use flowstate_store::types::ExecutionState;
use std::time::Duration;
use uuid::Uuid;

/// An execution id.
pub fn id(text: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text.trim()).map_err(|_| {
        format!(
            "'{text}' is not an execution id; ids look like 019a2f6c-5b1e-7d3a-9c4e-2f1b3a4c5d6e"
        )
    })
}

/// An RFC 3339 instant, or a duration ago (`90m`, `7d`).
pub fn time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = parse_duration(text).map_err(|_| {
        format!(
            "bad time '{text}'; use RFC 3339 (2026-11-29T08:00:00Z) or a duration ago (90m, 7d)"
        )
    })?;
    let ago = chrono::Duration::from_std(ago).map_err(|_| format!("'{text}' is too long ago"))?;
    Ok(Utc::now() - ago)
}

/// A duration (`30d`, `12h`).
pub fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

/// An execution state, in any case.
pub fn state(text: &str) -> Result<ExecutionState, String> {
    text.parse::<ExecutionState>().map_err(|e| e.to_string())
}

/// `key=value`.
pub fn input(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("bad input '{text}'; use key=value")),
    }
}

/// The `--sort` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// `created`: oldest first.
    Created,
    /// `-created`: newest first.
    NewestFirst,
}

/// `created` or `-created`.
pub fn sort(text: &str) -> Result<Sort, String> {
    match text {
        "created" => Ok(Sort::Created),
        "-created" => Ok(Sort::NewestFirst),
        _ => Err(format!(
            "bad sort '{text}'; use created (oldest first) or -created (newest first)"
        )),
    }
}
