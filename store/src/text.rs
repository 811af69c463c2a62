//! Showing values people typed inside messages: cut to a readable length and
//! with control characters escaped, so a 100k-character name or a terminal
//! escape sequence in a workflow file cannot flood or repaint the terminal.

/// The most characters of a value a message shows.
pub const MAX_SHOWN: usize = 200;

/// `value` as a message shows it: control characters escaped (`\n`, `\u{1b}`),
/// and past [`MAX_SHOWN`] characters cut with the full length noted.
pub fn shown(value: &str) -> String {
    let total = value.chars().count();
    let mut out = String::with_capacity(value.len().min(MAX_SHOWN * 2));
    for c in value.chars().take(MAX_SHOWN) {
        push_escaped(&mut out, c);
    }
    if total > MAX_SHOWN {
        out.push_str(&format!("... ({total} characters)"));
    }
    out
}

/// `text` with every control character escaped; nothing is cut. For whole
/// messages that already passed their values through [`shown`].
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_escapes() {
        assert_eq!(shown("hello"), "hello");
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        let long = "x".repeat(100_000);
        let s = shown(&long);
        assert!(s.len() < 250, "{}", s.len());
        assert!(s.ends_with("... (100000 characters)"));
        assert_eq!(escape_controls("ok\ttab"), "ok\\ttab");
    }
}
