//! `--plot DIR`: SVG charts of one run's report, for docs/performance.md.
//!
//! Each chart reads the JSON report the run prints with `--json`, so the
//! charts and the tables always come from the same numbers. Both axes are
//! logarithmic: scales go from 1k to 1M and latencies span three orders of
//! magnitude. Files are named after the backend (`sqlite-lists.svg`).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

/// One line of a chart: its legend and its (x, y) points.
type Series = (String, Vec<(f64, f64)>);

/// Writes every chart the report has data for into `dir`; returns the files.
pub fn write(dir: &Path, report: &Value) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let backend = report["backend"].as_str().unwrap_or("db");
    let charts = [
        (
            "lists",
            "First page p95 against scale, per list shape",
            "executions in the table",
            "p95 ms",
            YAxis::Log,
            lists(report),
            None,
        ),
        (
            "orm",
            "Store (SeaORM) p50 / raw sqlx p50",
            "executions in the table",
            "ratio",
            YAxis::Linear,
            ratios(report),
            None,
        ),
        (
            "transitions",
            "Versioned transitions per second against writers",
            "concurrent writers",
            "transitions/s",
            YAxis::Linear,
            transitions(report),
            None,
        ),
        (
            "drain",
            "Engine drain (4 workers, run: true) against backlog",
            "executions queued",
            "executions/s",
            YAxis::Linear,
            drain(report),
            report["spawnFloorPerSec"]
                .as_f64()
                .map(|v| ("spawn floor: 4 x sh -c true".to_owned(), v)),
        ),
    ];
    let mut written = Vec::new();
    for (name, title, x, y, axis, series, floor) in charts {
        if series.iter().all(|(_, p)| p.is_empty()) {
            continue;
        }
        let file = dir.join(format!("{backend}-{name}.svg"));
        chart(
            &file,
            &format!("{backend}: {title}"),
            (x, y),
            axis,
            &series,
            floor,
        )
        .map_err(|e| format!("draw {}: {e}", file.display()))?;
        written.push(file.display().to_string());
    }
    Ok(written)
}

/// The rows of section `name` at each scale, with that scale's size.
fn section_rows<'a>(report: &'a Value, name: &str) -> Vec<(f64, &'a Value)> {
    let mut out = Vec::new();
    for scale in report["scales"].as_array().into_iter().flatten() {
        let n = scale["executions"].as_f64().unwrap_or(0.0);
        for s in scale["sections"].as_array().into_iter().flatten() {
            if s["section"] == name {
                for r in s["rows"].as_array().into_iter().flatten() {
                    out.push((n, r));
                }
            }
        }
    }
    out
}

/// Adds `(x, y)` to the series called `label`, keeping first-seen order.
fn push(series: &mut Vec<Series>, label: &str, x: f64, y: f64) {
    if !(x > 0.0 && y > 0.0) {
        return;
    }
    // Legends stay short: "filtered first page (page + ...) vs raw page".
    let label = label.split(" (").next().unwrap_or(label);
    let label = label.split(" vs ").next().unwrap_or(label);
    match series.iter_mut().find(|(l, _)| l == label) {
        Some((_, points)) => points.push((x, y)),
        None => series.push((label.to_owned(), vec![(x, y)])),
    }
}

/// p95 of each list shape's first page against the table's size. Counts and
/// raw OFFSET rows are left out: they measure what the store refuses or caps.
fn lists(report: &Value) -> Vec<Series> {
    let mut series = Vec::new();
    for (n, r) in section_rows(report, "5. lists") {
        let label = r["scenario"].as_str().unwrap_or("");
        if label.starts_with("count") || label.starts_with("raw OFFSET") {
            continue;
        }
        // "keyset page 10000 deep (offset 500000)" changes name with scale.
        let label = if label.starts_with("keyset page") {
            "keyset page half-way down"
        } else {
            label
        };
        push(
            &mut series,
            label,
            n,
            r["store"]["p95Ms"].as_f64().unwrap_or(0.0),
        );
    }
    series
}

/// The ORM's p50 over the raw statement's, for the operations whose raw
/// side runs the same statements (the lists' "vs raw page" rows compare a
/// page and its count with the page alone, so they are left out).
fn ratios(report: &Value) -> Vec<Series> {
    let mut series = Vec::new();
    for section in ["1. ORM tax", "4. logs"] {
        for (n, r) in section_rows(report, section) {
            if let Some(ratio) = r["ratioP50"].as_f64() {
                let label = r["scenario"].as_str().unwrap_or("");
                push(&mut series, label, n, ratio);
            }
        }
    }
    series
}

/// Transitions per second against writers, one line per scale and sync mode.
fn transitions(report: &Value) -> Vec<Series> {
    let mut series = Vec::new();
    for (n, r) in section_rows(report, "3. transitions") {
        let label = r["scenario"].as_str().unwrap_or("");
        let writers: f64 = label
            .split(", ")
            .nth(1)
            .and_then(|w| w.split(' ').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or(0.0);
        let mode = if label.contains("FULL") {
            " synchronous FULL"
        } else {
            ""
        };
        let name = format!("{}{mode}", short(n));
        push(
            &mut series,
            &name,
            writers,
            r["store"]["perSec"].as_f64().unwrap_or(0.0),
        );
    }
    series
}

/// Drain rate against backlog.
fn drain(report: &Value) -> Vec<Series> {
    let mut series = Vec::new();
    for r in report["drain"].as_array().into_iter().flatten() {
        let backlog: f64 = r["scenario"]
            .as_str()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        push(
            &mut series,
            "executions/s",
            backlog,
            r["perSec"].as_f64().unwrap_or(0.0),
        );
    }
    series
}

/// 1000 -> "1k", 2500 -> "2.5k", 1000000 -> "1M".
fn short(n: f64) -> String {
    if n >= 1e6 {
        format!("{}M", (n / 1e6 * 10.0).round() / 10.0)
    } else if n >= 1e4 {
        format!("{}k", (n / 1e3).round())
    } else if n >= 1e3 {
        format!("{}k", (n / 1e2).round() / 10.0)
    } else {
        format!("{n}")
    }
}

/// Strong, distinct colours (Tableau 10): plotters' palettes include pale
/// yellows that vanish on white.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `i`-th series, in the chart and in its legend.
fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// A number with at most three significant digits and no trailing zeros.
fn compact(v: f64) -> String {
    if v >= 1000.0 {
        return short(v);
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 4) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The bounds of every point and of the reference line.
fn bounds(series: &[Series], floor: Option<f64>) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in series.iter().flat_map(|(_, p)| p.iter()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if let Some(f) = floor {
        (y0, y1) = (y0.min(f), y1.max(f));
    }
    (x0 / 1.5, x1 * 1.5, y0 / 1.5, y1 * 1.5)
}

/// How a chart's y axis is scaled.
#[derive(Clone, Copy)]
enum YAxis {
    /// Logarithmic: for latencies, which span orders of magnitude.
    Log,
    /// Linear from zero: for rates and ratios, so that bar heights compare.
    Linear,
}

/// Draws `series` against a logarithmic x axis, with an optional horizontal
/// reference line, and the legend in a panel of its own on the right so that
/// it never hides a point.
fn chart(
    file: &Path,
    title: &str,
    descs: (&str, &str),
    y_axis: YAxis,
    series: &[Series],
    floor: Option<(String, f64)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (x0, x1, y0, y1) = bounds(series, floor.as_ref().map(|f| f.1));
    let root = SVGBackend::new(file, (900, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(600);
    let mut legend: Vec<(String, RGBColor)> = series
        .iter()
        .enumerate()
        .map(|(i, (l, _))| (l.clone(), color(i)))
        .collect();
    let x = (x0..x1).log_scale();
    match y_axis {
        YAxis::Log => plot_on(&left, x, (y0..y1).log_scale(), descs, series, &floor)?,
        YAxis::Linear => plot_on(&left, x, 0.0..y1 * 1.1, descs, series, &floor)?,
    }
    if let Some((label, _)) = floor {
        legend.push((label, BLACK));
    }
    for (i, (label, color)) in legend.iter().enumerate() {
        let y = 30 + 20 * i as i32;
        right.draw(&PathElement::new(
            vec![(4, y), (24, y)],
            color.stroke_width(2),
        ))?;
        right.draw(&Text::new(label.clone(), (30, y - 7), ("sans-serif", 13)))?;
    }
    root.present()?;
    Ok(())
}

/// The plotting area of [`chart`], for either kind of y axis.
fn plot_on<X, Y>(
    area: &DrawingArea<SVGBackend, Shift>,
    x: X,
    y: Y,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    floor: &Option<(String, f64)>,
) -> Result<(), Box<dyn std::error::Error>>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut c = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)?;
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| short(*x))
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    for (i, (_, pts)) in series.iter().enumerate() {
        let color = color(i);
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        c.draw_series(PointSeries::of_element(
            pts.clone(),
            3,
            color,
            &|p, s, st| Circle::new(p, s, st.filled()),
        ))?;
    }
    if let Some((_, f)) = floor {
        let xs = c.x_range();
        c.draw_series(LineSeries::new(
            vec![(xs.start, *f), (xs.end, *f)],
            BLACK.stroke_width(1),
        ))?;
    }
    Ok(())
}
