//! What the CLI prints: the stable JSON shapes (camelCase, RFC 3339 UTC) and
//! aligned human tables (local time, colour only on a terminal).

use chrono::{DateTime, Local, Utc};
pub use flowstate_server::human::took;
pub use flowstate_server::json::{detail, execution, log_line};
use flowstate_store::text::escape_controls;
use serde_json::Value;
use std::io::IsTerminal;

/// What `-o` (or `--json`) asks a command to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables and lines for people (the default).
    #[default]
    Table,
    /// One JSON document (`--json` is the same).
    Json,
    /// The same document as YAML.
    Yaml,
    /// One id per line (names for workflows), for shell pipelines.
    Ids,
}

/// Prints a command's document as `g.format` asks: JSON on one line, YAML,
/// or the `key` of each item of a list (of the document itself otherwise).
pub fn doc(g: &crate::Globals, v: &Value, key: &str) {
    match g.format {
        Format::Yaml => {
            let text = serde_yaml_ng::to_string(v).unwrap_or_default();
            outln!("{}", text.trim_end());
        }
        Format::Ids => {
            let items = match v.get("items").or_else(|| v.get("versions")) {
                Some(Value::Array(items)) => items.iter().collect(),
                _ => vec![v],
            };
            for item in items {
                match item.get(key) {
                    Some(Value::String(s)) => outln!("{s}"),
                    Some(other) => outln!("{other}"),
                    None => {}
                }
            }
        }
        _ => outln!("{v}"),
    }
}

/// A time for people: local, to the second, with its UTC offset so that a
/// table read later or elsewhere says which zone it shows.
pub fn local(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| {
            t.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        },
    )
}

/// Whether to colour stdout.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A state name, padded to `width`, coloured when `colour` is set.
pub fn state(name: &str, width: usize, colour: bool) -> String {
    let padded = format!("{name:width$}");
    if !colour {
        return padded;
    }
    let code = match name {
        "SUCCEEDED" => "32",
        "FAILED" => "31",
        "RUNNING" => "36",
        "WAITING" | "PENDING" => "33",
        _ => "2",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}

/// Prints rows under headers with every column aligned. A column named
/// `STATE` is coloured on a terminal. Control characters in cells (task
/// output, error text) are escaped: a table never moves the cursor.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let colour = colour();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_controls(c)).collect())
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let last = i + 1 == cells.len();
            let w = if last { 0 } else { widths[i] };
            if headers[i] == "STATE" && cell != "STATE" {
                out.push_str(&state(cell, w, colour));
            } else {
                out.push_str(&format!("{cell:w$}"));
            }
            if !last {
                out.push_str("  ");
            }
        }
        outln!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}
