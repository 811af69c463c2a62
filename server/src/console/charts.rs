//! The execution page's two pictures, drawn on the server as inline SVG
//! (no script needed): the timeline, a Gantt of every attempt coloured by
//! its state with retries side by side on their task's row, and the
//! dependency graph, tasks in columns by depth coloured by their state.

use super::html::{esc, took};
use chrono::{DateTime, Utc};
use flowstate_store::types::TaskRunDetail;
use std::collections::HashMap;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LABEL: f64 = 170.0;
const ROW: f64 = 26.0;

/// The timeline of `runs` up to `now` (for attempts still running).
pub fn timeline(runs: &[TaskRunDetail], now: DateTime<Utc>) -> String {
    let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
        .iter()
        .flat_map(|t| &t.attempts)
        .map(|a| (a.started_at, a.finished_at.unwrap_or(now)))
        .collect();
    let (Some(start), Some(end)) = (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) else {
        return "<p class=\"muted\">No attempt has started yet.</p>".into();
    };
    let total = ((end - start).num_milliseconds().max(1)) as f64;
    let scale = (WIDTH - LABEL - 10.0) / total;
    let height = ROW * runs.len() as f64 + 24.0;
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline of attempts\">"
    );
    for (row, t) in runs.iter().enumerate() {
        let y = ROW * row as f64;
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{}\" class=\"label\">{}</text>",
            y + 17.0,
            esc(&clip(&t.task_run.task_key, 24))
        );
        for a in &t.attempts {
            let x = LABEL + (a.started_at - start).num_milliseconds() as f64 * scale;
            let to = a.finished_at.unwrap_or(now);
            let w = ((to - a.started_at).num_milliseconds() as f64 * scale).max(3.0);
            let state = a.state.as_str();
            let _ = write!(
                svg,
                "<rect class=\"bar s-{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"18\" rx=\"3\"><title>{} attempt {}: {} in {}</title></rect>",
                state.to_ascii_lowercase(),
                y + 4.0,
                esc(&t.task_run.task_key),
                a.number,
                state,
                took(Some(a.started_at), a.finished_at)
            );
            if a.number > 1 && w > 22.0 {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"retry\">#{}</text>",
                    x + 3.0,
                    y + 17.0,
                    a.number
                );
            }
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{LABEL}\" y=\"{}\" class=\"axis\">0</text><text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text></svg>",
        height - 4.0,
        WIDTH - 10.0,
        height - 4.0,
        took(Some(start), Some(end))
    );
    svg
}

/// Each task's column: 0 for a task that needs nothing, else one more than
/// the deepest task it needs. Unknown needs count as depth 0.
pub fn depths(tasks: &[(String, Vec<String>)]) -> HashMap<String, usize> {
    let index: HashMap<&str, &Vec<String>> = tasks.iter().map(|(k, n)| (k.as_str(), n)).collect();
    let mut depth: HashMap<String, usize> = HashMap::new();
    fn visit<'a>(
        key: &'a str,
        index: &HashMap<&'a str, &'a Vec<String>>,
        depth: &mut HashMap<String, usize>,
        seen: usize,
    ) -> usize {
        if let Some(d) = depth.get(key) {
            return *d;
        }
        // A definition is checked acyclic; the bound only guards the page.
        let d = match index.get(key) {
            Some(needs) if seen < 1024 => needs
                .iter()
                .map(|n| visit(n, index, depth, seen + 1) + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        depth.insert(key.to_owned(), d);
        d
    }
    for (k, _) in tasks {
        visit(k, &index, &mut depth, 0);
    }
    depth
}

/// The dependency graph of `tasks` (key, needs), each node coloured by
/// `states` (a task without one is drawn as pending).
pub fn graph(tasks: &[(String, Vec<String>)], states: &HashMap<String, String>) -> String {
    if tasks.is_empty() {
        return String::new();
    }
    let depth = depths(tasks);
    let (node_w, node_h, col_w, row_h) = (150.0, 30.0, 190.0, 44.0);
    let mut rows_in: HashMap<usize, usize> = HashMap::new();
    let mut at: HashMap<&str, (f64, f64)> = HashMap::new();
    for (k, _) in tasks {
        let d = depth[k];
        let row = rows_in.entry(d).or_default();
        at.insert(k, (10.0 + d as f64 * col_w, 10.0 + *row as f64 * row_h));
        *row += 1;
    }
    let cols = depth.values().max().copied().unwrap_or(0) + 1;
    let rows = rows_in.values().max().copied().unwrap_or(1);
    let (w, h) = (cols as f64 * col_w + 10.0, rows as f64 * row_h + 10.0);
    let mut svg = format!(
        "<svg class=\"graph\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" role=\"img\" aria-label=\"task dependencies\">"
    );
    for (k, needs) in tasks {
        let (x2, y2) = at[k.as_str()];
        for n in needs {
            let Some((x1, y1)) = at.get(n.as_str()) else {
                continue;
            };
            let (sx, sy, ex, ey) = (x1 + node_w, y1 + node_h / 2.0, x2, y2 + node_h / 2.0);
            let mid = (sx + ex) / 2.0;
            let _ = write!(
                svg,
                "<path class=\"edge\" d=\"M{sx:.1},{sy:.1} C{mid:.1},{sy:.1} {mid:.1},{ey:.1} {ex:.1},{ey:.1}\"/>"
            );
        }
    }
    for (k, _) in tasks {
        let (x, y) = at[k.as_str()];
        let state = states.get(k).map_or("PENDING", String::as_str);
        let _ = write!(
            svg,
            "<g class=\"node s-{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{node_w}\" height=\"{node_h}\" rx=\"5\"/><text x=\"{}\" y=\"{}\">{}</text><title>{}: {}</title></g>",
            esc(&state.to_ascii_lowercase()),
            x + 8.0,
            y + 19.0,
            esc(&clip(k, 20)),
            esc(k),
            esc(state)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// At most `n` characters, with an ellipsis when cut.
fn clip(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(n - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks with their needs.
    type Tasks = Vec<(String, Vec<String>)>;

    fn tasks(spec: &[(&str, &[&str])]) -> Tasks {
        spec.iter()
            .map(|(k, n)| (k.to_string(), n.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn depth_is_the_longest_chain_of_needs() {
        let cases: Vec<(Tasks, Vec<(&str, usize)>)> = vec![
            (tasks(&[("a", &[])]), vec![("a", 0)]),
            (
                tasks(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]),
                vec![("a", 0), ("b", 1), ("c", 2)],
            ),
            // A diamond: d waits for the longer side.
            (
                tasks(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["a", "c"])]),
                vec![("a", 0), ("b", 1), ("c", 2), ("d", 3)],
            ),
            // Listed before what it needs.
            (
                tasks(&[("z", &["y"]), ("y", &[])]),
                vec![("z", 1), ("y", 0)],
            ),
            // A need that is not a task of the workflow.
            (tasks(&[("a", &["ghost"])]), vec![("a", 1)]),
            (
                tasks(&[("a", &[]), ("b", &[]), ("c", &["a", "b"])]),
                vec![("a", 0), ("b", 0), ("c", 1)],
            ),
        ];
        for (t, want) in cases {
            let d = depths(&t);
            for (k, n) in want {
                assert_eq!(d[k], n, "{k} in {t:?}");
            }
        }
    }

    #[test]
    fn names_in_pictures_are_escaped_and_clipped() {
        let t = tasks(&[("<script>", &[]), ("b", &["<script>"])]);
        let svg = graph(
            &t,
            &HashMap::from([("b".to_string(), "FAILED".to_string())]),
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("node s-failed"));
        assert!(svg.contains("node s-pending"));
        assert_eq!(clip("abcdef", 4), "abc…");
        assert!(timeline(&[], Utc::now()).contains("No attempt"));
    }
}
