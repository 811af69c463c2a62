//! Values for people, shared by the CLI's tables and the console.

use chrono::{DateTime, Utc};

/// How long from `a` to `b` (or to now), for people: `850ms`, `12.5s`, `3m07s`.
pub fn took(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> String {
    let Some(a) = a else { return "-".into() };
    let ms = (b.unwrap_or_else(Utc::now) - a).num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 120_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
