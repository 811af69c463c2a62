//! Parsing what people type, on the command line and in API queries: ids,
//! times, durations, states, `k=v` inputs.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use flowstate_engine::duration::parse_duration;
use flowstate_store::text::shown;
use flowstate_store::types::{ExecutionState, Reason};
use std::time::Duration;
use uuid::Uuid;

/// An execution id.
pub fn id(text: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text.trim()).map_err(|_| {
        format!(
            "'{}' is not an execution id; ids look like 019a2f6c-5b1e-7d3a-9c4e-2f1b3a4c5d6e",
            shown(text)
        )
    })
}

/// An execution id or a prefix of one (8 to 32 hex digits, dashes
/// ignored), in lower case; which execution it names is asked of the store.
pub fn id_or_prefix(text: &str) -> Result<String, String> {
    flowstate_store::query::id_prefix_range(text)
        .map(|_| text.trim().to_ascii_lowercase())
        .map_err(|_| {
            format!(
                "'{}' is not an execution id or a prefix of one; give the id, or at least its first 8 hex digits",
                shown(text)
            )
        })
}

/// The short forms of ids that a table shows: each at least 18
/// characters (the creation time to the millisecond and the first digits
/// after it: `01a2292a-44a7-7182`), and longer where it must be to differ
/// from every other id shown. Ids made in the same millisecond differ only
/// further on, and they are listed next to each other.
pub fn short_ids(ids: &[Uuid]) -> Vec<String> {
    let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let shared = texts
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && *o != t)
                .map(|(_, o)| t.bytes().zip(o.bytes()).take_while(|(a, b)| a == b).count())
                .max()
                .unwrap_or(0);
            let mut n = (shared + 1).max(18).min(t.len());
            // Never end on a dash.
            if t.as_bytes()[n - 1] == b'-' {
                n += 1;
            }
            t[..n].to_owned()
        })
        .collect()
}

/// An instant: RFC 3339 (`2026-11-29T08:00:00Z`), a date and time without
/// an offset (`2026-11-29 08:00:00`, read as UTC), a date (`2026-11-29`,
/// midnight UTC), or a duration ago (`90m`, `7d`).
pub fn time(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(date.and_time(NaiveTime::MIN).and_utc());
    }
    let ago = parse_duration(text).map_err(|_| {
        format!(
            "bad time '{}'; use RFC 3339 (2026-11-29T08:00:00Z), a date (2026-11-29, UTC) or a duration ago (90m, 7d)",
            shown(text)
        )
    })?;
    let ago = chrono::Duration::from_std(ago)
        .map_err(|_| format!("'{}' is too long ago", shown(text)))?;
    Ok(Utc::now() - ago)
}

/// A duration (`30d`, `12h`).
pub fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

/// An execution state, in any case.
pub fn state(text: &str) -> Result<ExecutionState, String> {
    text.parse::<ExecutionState>().map_err(|_| {
        format!(
            "unknown execution state '{}'; use one of {STATES}",
            shown(text)
        )
    })
}

/// Why an execution ended (`CRASH_RECOVERY`, `TASK_FAILED`, ...), in any case.
pub fn reason(text: &str) -> Result<Reason, String> {
    text.trim().parse::<Reason>().map_err(|_| {
        let known: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        format!(
            "unknown reason '{}'; use one of {}",
            shown(text),
            known.join(", ")
        )
    })
}

const STATES: &str = "PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED";

/// `key=value`, where the key becomes an environment variable of every task
/// and so must be a portable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn input(text: &str) -> Result<(String, String), String> {
    let Some((k, v)) = text.split_once('=') else {
        return Err(format!("bad input '{}'; use key=value", shown(text)));
    };
    if !flowstate_engine::workflow::valid_env_name(k) {
        return Err(format!(
            "bad input name '{}'; use letters, digits and '_', not starting with a digit (it becomes an environment variable)",
            shown(k)
        ));
    }
    if v.len() > 128 * 1024 {
        return Err(format!(
            "input '{k}' is {} bytes; the most is 131072",
            v.len()
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
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
            "bad sort '{}'; use created (oldest first) or -created (newest first)",
            shown(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_as_long_as_they_must_be() {
        let ids: Vec<Uuid> = [
            "01a2292a-44a7-7182-a24a-e102150d8b97",
            "01a2292a-44a7-7182-a24a-e102150d8c00",
            "01a2292a-44a8-7000-8000-000000000000",
            "01a2292b-0000-7000-8000-000000000000",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(
            short_ids(&ids),
            [
                "01a2292a-44a7-7182-a24a-e102150d8b",
                "01a2292a-44a7-7182-a24a-e102150d8c",
                "01a2292a-44a8-7000",
                "01a2292b-0000-7000",
            ]
        );
        // Differing first at a dash's neighbour: the cut moves past the dash.
        let pair: Vec<Uuid> = [
            "01a2292a-44a7-7182-a24a-e102150d8b97",
            "01a2292a-44a7-7182-b24a-e102150d8b97",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(
            short_ids(&pair),
            ["01a2292a-44a7-7182-a", "01a2292a-44a7-7182-b"]
        );
        assert!(short_ids(&[]).is_empty());
        let same = [ids[0], ids[0]];
        assert_eq!(short_ids(&same)[0], "01a2292a-44a7-7182");
    }
}
