//! Building HTML by hand, safely: every value from the database goes
//! through [`esc`] (text and attributes alike), so a task that prints
//! `<script>` shows that text. Pages share one [`layout`].

pub use crate::human::took;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write;

/// `text` escaped for HTML text and for quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped for a URL's query value or path segment.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A time as `<time>`: UTC text that the page's script shows in the
/// browser's zone.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "-".into(),
        Some(t) => format!(
            "<time datetime=\"{}\">{}</time>",
            t.to_rfc3339_opts(SecondsFormat::Millis, true),
            t.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    }
}

/// A state as a coloured badge.
pub fn badge(state: &str) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        esc(&state.to_ascii_lowercase()),
        esc(state)
    )
}

/// The whole page around `body`.
pub fn layout(title: &str, role: &str, nav: &str, body: &str) -> String {
    let mut page = String::with_capacity(body.len() + 1024);
    let tab = |name: &str, href: &str| {
        let on = if nav == name { " class=\"on\"" } else { "" };
        format!("<a href=\"{href}\"{on}>{name}</a>")
    };
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · flowstate</title><link rel=\"stylesheet\" href=\"/assets/console.css\">\
<script src=\"/assets/console.js\" defer></script></head>\n<body><header>\
<a class=\"brand\" href=\"/executions\">flowstate</a><nav>{}{}</nav>\
<span class=\"role\">{}</span></header>\n<main>\n{}\n</main></body></html>\n",
        esc(title),
        tab("Executions", "/executions"),
        tab("Workflows", "/workflows"),
        esc(role),
        body
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_become_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(url("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(
            badge("FAILED"),
            "<span class=\"badge s-failed\">FAILED</span>"
        );
        let page = layout("<b>", "engine", "Workflows", "<p>x</p>");
        assert!(page.contains("<title>&lt;b&gt; · flowstate</title>"));
        assert!(page.contains("<a href=\"/workflows\" class=\"on\">Workflows</a>"));
    }
}
