//! Reading YAML that people and programs hand us, within bounds: files of
//! at most [`MAX_FILE_BYTES`], nested at most [`MAX_NESTING`] levels, refused
//! before the parser sees them, and parser errors shown cut and escaped. The
//! configuration (this crate and the engine's section) and workflow files
//! all go through here.

use crate::text::shown;
use std::path::Path;

/// The largest workflow or configuration file read: 10 MiB.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// The deepest YAML nesting read; a workflow needs four or five levels.
pub const MAX_NESTING: usize = 64;

/// Checks `text` before it is parsed: at most [`MAX_FILE_BYTES`] and nested
/// at most [`MAX_NESTING`] levels. `what` names it in the message ("the
/// workflow", "the configuration").
pub fn check(text: &str, what: &str) -> Result<(), String> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{what} is {} bytes; the most is 10 MB ({MAX_FILE_BYTES} bytes)",
            text.len()
        ));
    }
    if nesting_depth_exceeds(text, MAX_NESTING) {
        return Err(format!(
            "{what} nests YAML more than {MAX_NESTING} levels deep; it needs only a few levels"
        ));
    }
    Ok(())
}

/// Reads a file of at most [`MAX_FILE_BYTES`], refusing a bigger one from its
/// size before reading it (and reading no more than the limit if it grows or
/// reports no size, as a pipe does). The error is a message naming the problem.
pub fn read_bounded(path: &Path) -> std::result::Result<String, String> {
    use std::io::Read;
    let too_big =
        |n: u64| format!("the file is {n} bytes; the most is 10 MB ({MAX_FILE_BYTES} bytes)");
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is over 10 MB ({MAX_FILE_BYTES} bytes); the most is 10 MB"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read the file: it is not UTF-8 text (byte {} is not valid UTF-8)",
            e.utf8_error().valid_up_to()
        )
    })
}

/// A YAML error as a message shows it: the parser's text through [`shown`]
/// (so a long or hostile key it quotes is cut and escaped), then the line and
/// column.
pub fn error(e: &serde_yaml_ng::Error) -> String {
    let full = e.to_string();
    match e.location() {
        Some(at) => {
            let suffix = format!(" at line {} column {}", at.line(), at.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full);
            format!("{}{suffix}", shown(message))
        }
        None => shown(&full),
    }
}

/// True when `text` nests YAML collections deeper than `limit` levels, by a
/// single pass that never builds the document. The YAML parser takes time
/// quadratic in the depth, so a file of 50,000 `[` would otherwise take
/// seconds to refuse.
///
/// The pass splits the text into tokens the way the parser's scanner does
/// and counts the levels it would open: a block collection where a `- `,
/// `? ` or `key:` starts further right than the enclosing one, a flow
/// collection at each `[` or `{` that starts a token. Brackets inside quoted,
/// plain or block scalars and comments are text, so `[ -f x ]`, `${VAR}` or
/// `awk '{print $1}'` in a command never count. Where it could differ from
/// the parser it counts more, and only on text the parser refuses anyway.
pub fn nesting_depth_exceeds(text: &str, limit: usize) -> bool {
    let mut scan = Scan::new(text.as_bytes());
    while scan.skip_to_token() {
        let col = scan.start_token();
        if scan.skip_directive_or_marker(col) {
            continue;
        }
        if let Some(at) = scan.token(col) {
            scan.open_block(at);
        }
        if scan.depth() > limit {
            return true;
        }
    }
    false
}

/// Where [`nesting_depth_exceeds`] is in the text and what it has open.
struct Scan<'a> {
    b: &'a [u8],
    /// The next byte to read.
    i: usize,
    /// Where the current line starts.
    line: usize,
    /// How many flow collections are open.
    flow: usize,
    /// The open block collections' columns (the current one in `indent`).
    indents: Vec<isize>,
    indent: isize,
    /// Whether a key may start here, and where the last one that might be
    /// a block mapping's key started (column, line).
    key_allowed: bool,
    key: Option<(isize, usize)>,
}

impl<'a> Scan<'a> {
    /// At the start of `b`, past a byte order mark.
    fn new(b: &'a [u8]) -> Self {
        let i = usize::from(b.starts_with(b"\xEF\xBB\xBF")) * 3;
        Scan {
            b,
            i,
            line: i,
            flow: 0,
            indents: Vec::new(),
            indent: -1,
            key_allowed: true,
            key: None,
        }
    }

    /// Past blanks, comments and line breaks up to the next token; false at
    /// the end of the text.
    fn skip_to_token(&mut self) -> bool {
        let b = self.b;
        loop {
            if self.i >= b.len() {
                return false;
            }
            let k = line_break(b, self.i);
            if k > 0 {
                self.i += k;
                self.line = self.i;
                if self.flow == 0 {
                    self.key_allowed = true;
                }
            } else if matches!(b[self.i], b' ' | b'\t') {
                self.i += 1;
            } else if b[self.i] == b'#' {
                self.i = end_of_line(b, self.i);
            } else {
                return true;
            }
        }
    }

    /// The column of the token here; in block context, the block
    /// collections further right than it are closed.
    fn start_token(&mut self) -> isize {
        let col = (self.i - self.line) as isize;
        if self.flow == 0 {
            while self.indent > col {
                self.indent = self.indents.pop().unwrap_or(-1);
            }
        }
        col
    }

    /// Past a directive or a document marker (which closes every block
    /// collection) if the token here in column `col` is one; false if not.
    fn skip_directive_or_marker(&mut self, col: isize) -> bool {
        let (b, i) = (self.b, self.i);
        if col == 0 && b[i] == b'%' {
            self.i = end_of_line(b, i);
            return true;
        }
        if col == 0 && document_marker(b, i) {
            // A document starts or ends. (Inside a flow collection that is an
            // error the parser meets before going deeper; keep counting.)
            self.indents.clear();
            self.indent = -1;
            self.key = None;
            self.key_allowed = true;
            self.i += 3;
            return true;
        }
        false
    }

    /// Past the token here, in column `col`; the column of the block
    /// collection it may open (`- `, `? ` or a key's `: `), if any.
    fn token(&mut self, col: isize) -> Option<isize> {
        let b = self.b;
        let indicator = blankz(b, self.i + 1);
        let mut roll = None;
        match b[self.i] {
            b'[' | b'{' => {
                self.note_key(col);
                self.flow += 1;
                self.key_allowed = true;
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.key_allowed = false;
            }
            b',' => self.key_allowed = true,
            b'-' if indicator => {
                roll = Some(col);
                self.key_allowed = true;
            }
            b'?' if self.flow > 0 || indicator => {
                roll = Some(col);
                self.key_allowed = true;
            }
            b':' if self.flow > 0 || indicator => {
                roll = Some(self.key_column(col));
                self.key_allowed = self.flow == 0;
            }
            b'|' | b'>' if self.flow == 0 => {
                self.i = block_scalar(b, self.i, self.indent, &mut self.line);
                self.key_allowed = true;
                return None;
            }
            _ => {
                self.scalar(col);
                return None;
            }
        }
        self.i += 1;
        roll
    }

    /// Where the key that a `:` in column `col` ends started: the last
    /// possible key if it is on this line, else the `:` itself.
    fn key_column(&mut self, col: isize) -> isize {
        match self.key.take() {
            Some((at, on)) if on == self.line => at,
            _ => col,
        }
    }

    /// Notes that a block mapping's key may start here, in column `col`.
    fn note_key(&mut self, col: isize) {
        if self.flow == 0 && self.key_allowed {
            self.key = Some((col, self.line));
        }
    }

    /// Past the anchor, alias, tag or scalar here, in column `col`.
    fn scalar(&mut self, col: isize) {
        self.note_key(col);
        self.key_allowed = false;
        let (b, i) = (self.b, self.i);
        self.i = match b[i] {
            b'&' | b'*' => end_of_name(b, i + 1),
            b'!' => end_of_tag(b, i + 1, self.flow),
            b'\'' | b'"' => quoted_scalar(b, i, &mut self.line),
            _ => plain_scalar(b, i, &mut self.line, self.flow, self.indent),
        };
    }

    /// In block context, opens a block collection at column `at` if it is
    /// further right than the current one.
    fn open_block(&mut self, at: isize) {
        if self.flow == 0 && self.indent < at {
            self.indents.push(self.indent);
            self.indent = at;
        }
    }

    /// How many collections are open.
    fn depth(&self) -> usize {
        self.indents.len() + self.flow
    }
}

/// A document marker (`---` or `...` before a blank) at `i`.
fn document_marker(b: &[u8], i: usize) -> bool {
    (b[i..].starts_with(b"---") || b[i..].starts_with(b"...")) && blankz(b, i + 3)
}

/// The end of the anchor or alias name starting at `j`.
fn end_of_name(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'-')) {
        j += 1;
    }
    j
}

/// The end of the tag whose text starts at `j`: a blank, or in flow context
/// (`flow` open collections) a flow indicator.
fn end_of_tag(b: &[u8], mut j: usize, flow: usize) -> usize {
    let ends =
        |j: usize| blankz(b, j) || (flow > 0 && matches!(b[j], b',' | b'[' | b']' | b'{' | b'}'));
    while !ends(j) {
        j += 1;
    }
    j
}

/// The length of the line break at `i` (YAML 1.1: CR, LF, CR LF, NEL, LS,
/// PS), or 0.
fn line_break(b: &[u8], i: usize) -> usize {
    match b.get(i..).unwrap_or_default() {
        [b'\r', b'\n', ..] => 2,
        [b'\r' | b'\n', ..] => 1,
        [0xC2, 0x85, ..] => 2,
        [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
        _ => 0,
    }
}

/// A blank, a line break or the end of the text at `i`.
fn blankz(b: &[u8], i: usize) -> bool {
    i >= b.len() || matches!(b[i], b' ' | b'\t' | 0) || line_break(b, i) > 0
}

/// Where the line holding `i` ends (its line break, or the end of the text).
fn end_of_line(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        if matches!(b[i], b'\r' | b'\n' | 0xC2 | 0xE2) && line_break(b, i) > 0 {
            return i;
        }
        i += 1;
    }
    i
}

/// Past the quoted scalar starting at `i`: `'` with `''` inside, or `"` with
/// backslash escapes; to the end of the text if it is never closed.
fn quoted_scalar(b: &[u8], i: usize, line: &mut usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        let k = line_break(b, j);
        if k > 0 {
            j += k;
            *line = j;
            continue;
        }
        match b[j] {
            b'\\' if quote == b'"' => {
                j += 1;
                if line_break(b, j) == 0 {
                    j += 1;
                }
            }
            b'\'' if quote == b'\'' && b.get(j + 1) == Some(&b'\'') => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// Up to the end of the plain scalar starting at `i`: a `:` before a blank,
/// a ` #` comment, in flow context a flow indicator, and at a line break
/// unless the next line continues it (in block context, indented past the
/// enclosing collection's column `indent`).
fn plain_scalar(b: &[u8], mut i: usize, line: &mut usize, flow: usize, indent: isize) -> usize {
    let n = b.len();
    loop {
        while i < n && line_break(b, i) == 0 {
            match b[i] {
                b':' if blankz(b, i + 1) => return i,
                b',' | b'[' | b']' | b'{' | b'}' if flow > 0 => return i,
                b'#' if matches!(b[i - 1], b' ' | b'\t') => return i,
                _ => i += 1,
            }
        }
        // A line break: find the next line with text.
        let end = i;
        let mut at_line = *line;
        while i < n {
            let k = line_break(b, i);
            if k > 0 {
                i += k;
                at_line = i;
            } else if matches!(b[i], b' ' | b'\t') {
                i += 1;
            } else {
                break;
            }
        }
        let col = (i - at_line) as isize;
        let marker = col == 0 && document_marker(b, i);
        if i >= n || (flow == 0 && col <= indent) || marker || b[i] == b'#' {
            return end;
        }
        *line = at_line;
    }
}

/// Past the block scalar (`|` or `>`) whose header is at `i`, in a block
/// collection at column `indent`: its text is the lines indented at least as
/// far as its first line (or as its indentation indicator says).
fn block_scalar(b: &[u8], i: usize, indent: isize, line: &mut usize) -> usize {
    let n = b.len();
    let mut increment = 0isize;
    for &c in b[i + 1..].iter().take(2) {
        match c {
            b'1'..=b'9' => increment = isize::from(c - b'0'),
            b'+' | b'-' => {}
            _ => break,
        }
    }
    let mut width: isize = match increment {
        0 => 0,
        k if indent >= 0 => indent + k,
        k => k,
    };
    let mut at = end_of_line(b, i);
    if at >= n {
        return n;
    }
    at += line_break(b, at);
    *line = at;
    // Empty lines first; the first line with text sets the width if the
    // header did not.
    let mut widest = 0isize;
    let mut j;
    loop {
        j = at;
        while j < n && b[j] == b' ' && (width == 0 || ((j - at) as isize) < width) {
            j += 1;
        }
        widest = widest.max((j - at) as isize);
        let k = line_break(b, j);
        if k == 0 {
            break;
        }
        at = j + k;
        *line = at;
    }
    if width == 0 {
        width = widest.max(indent + 1).max(1);
    }
    // Lines of text, each with empty lines after it.
    loop {
        if j >= n {
            return n;
        }
        if ((j - at) as isize) < width {
            return at;
        }
        let end = end_of_line(b, j);
        if end >= n {
            return n;
        }
        at = end + line_break(b, end);
        *line = at;
        loop {
            j = at;
            while j < n && b[j] == b' ' && ((j - at) as isize) < width {
                j += 1;
            }
            let k = line_break(b, j);
            if k == 0 {
                break;
            }
            at = j + k;
            *line = at;
        }
    }
}

/// A value someone typed, as a message shows it: secrets hidden, cut and
/// escaped by [`shown`].
pub fn echo(value: &str) -> String {
    shown(&crate::redact::redact_text(
        value,
        &crate::redact::secrets_of(value),
    ))
}

/// What a YAML value is, for "KEY is ...; expected ..." messages.
pub fn describe(value: &serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value;
    match value {
        Value::Null => "empty".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {}", shown(&n.to_string())),
        Value::String(s) => format!("the string \"{}\"", echo(s)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", echo(&t.tag.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_files_are_not_too_deep() {
        let ordinary = [
            include_str!("../../examples/hello.yaml"),
            include_str!("../../examples/flaky.yaml"),
            include_str!("../../examples/report.yaml"),
            include_str!("../../config.example.yaml"),
        ];
        for text in ordinary {
            assert!(!nesting_depth_exceeds(text, 4), "{text}");
        }
        // Brackets in commands, quoted or not, on one line or many.
        let mut yaml = String::from("name: x\ntasks:\n");
        let commands = [
            "run: test -f x && [ -d y ] || { echo no; exit 1; }",
            "run: '[[ -f x ]] && awk ''{print $1}'' f'",
            "run: \"echo ${A:-{}} [ \\\" {\"",
            "run: awk '{print $1}' f | sed 's/[{]//'",
            "run: [ -f x ]",
            "run: |\n      if [ -f x ]; then {\n        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n      }\n",
            "run: >-\n      {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n\n      [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
            "run: echo one\n      [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ two\n      {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
            "run: echo it's # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            "run: 'it''s [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n      {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{'",
            "run: \"a \\\" [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"",
            "env: { A: '{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{', B: \"x[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\" }\n    run: x",
            "needs: [a, 'b[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[']\n    run: x",
        ];
        for (i, command) in commands.iter().enumerate() {
            let one = format!("name: x\ntasks:\n  - id: t{i}\n    {command}\n");
            assert!(!nesting_depth_exceeds(&one, 8), "{one}");
            yaml.push_str(&format!("  - id: t{i}\n    {command}\n"));
        }
        assert!(!nesting_depth_exceeds(&yaml, 8), "{yaml}");
        let tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(tree["tasks"].as_sequence().unwrap().len(), commands.len());
    }

    #[test]
    fn deep_nesting_is_found_however_it_is_written() {
        let deep = |depth: usize| -> Vec<String> {
            let mut block_seq = String::new();
            let mut block_map = String::new();
            for i in 0..depth {
                block_seq.push_str(&format!("{}- x\n{}-\n", " ".repeat(i), " ".repeat(i)));
                block_map.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
            }
            vec![
                format!("tasks: {}", "[".repeat(depth)),
                format!("tasks: {}", "{a: ".repeat(depth)),
                format!("tasks:\n{}x", "- ".repeat(depth)),
                format!("tasks:\n{}x", "? ".repeat(depth)),
                format!("--- {}", "[".repeat(depth)),
                format!("a: &x !!seq {}", "[".repeat(depth)),
                format!("a: [b, [c, {{d: {}", "[e, ".repeat(depth)),
                format!("a: [\"x\", 'y''', {}", "[".repeat(depth)),
                format!("a: |\n  text\nb: {}", "[".repeat(depth)),
                format!("a: b\n  c\nd: {}", "[".repeat(depth)),
                format!("a: 'x\n  y'\nb: {}", "[".repeat(depth)),
                format!("# a comment\u{2028}{}", "[".repeat(depth)),
                format!("a: \"x\"\r{}", "[".repeat(depth)),
                format!("a: [x #y\n{}", "[".repeat(depth)),
                format!(
                    "a: {}\n---\n{}",
                    "[".repeat(depth / 2),
                    "[".repeat(depth / 2 + 1)
                ),
                format!("a: !t[ {}", "[".repeat(depth)),
                format!("a: [!t[{}", "[".repeat(depth)),
                format!("a: |2\n   x\n  y\n b: {}", "[".repeat(depth)),
                format!("- - a: |\n     x\n    b: {}", "[".repeat(depth)),
                format!("a:\n  b\n\n  c\n{}", "[".repeat(depth)),
                format!("\u{feff}{}", "[".repeat(depth)),
                format!("x: y\u{85}{}", "[".repeat(depth)),
                block_seq,
                block_map,
            ]
        };
        for text in deep(70) {
            assert!(nesting_depth_exceeds(&text, 64), "{text}");
        }
        for text in deep(30) {
            assert!(!nesting_depth_exceeds(&text, 64), "{text}");
        }
    }

    #[test]
    fn the_scan_agrees_with_the_parser_on_generated_documents() {
        fn nested(depth: usize, seed: usize) -> serde_yaml_ng::Value {
            let leaf = serde_yaml_ng::Value::String(
                [
                    "[x", "{y}", "a: b", "- c", "'q", "\"", "# h", "|", "p\nq [", "",
                ][seed % 10]
                    .to_owned(),
            );
            (0..depth).fold(leaf, |v, i| {
                if (i + seed).is_multiple_of(2) {
                    serde_yaml_ng::Value::Sequence(vec![v, "[".into()])
                } else {
                    let mut m = serde_yaml_ng::Mapping::new();
                    m.insert(format!("k{i}{{").into(), v);
                    serde_yaml_ng::Value::Mapping(m)
                }
            })
        }
        for seed in 0..40 {
            for depth in [1, 10, 40, 63] {
                let text = serde_yaml_ng::to_string(&nested(depth, seed)).unwrap();
                assert!(!nesting_depth_exceeds(&text, 66), "{depth}: {text}");
            }
            // A list under a key may start in the key's column, so the
            // parser (and the scan) sees only every other level there.
            let text = serde_yaml_ng::to_string(&nested(140, seed)).unwrap();
            assert!(nesting_depth_exceeds(&text, 64), "{text}");
        }
    }
}
