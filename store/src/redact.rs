//! Keeping passwords out of every message: the one place that knows what a
//! secret inside a database URL looks like.
//!
//! - [`redact_url`] hides the password of one URL (and the values of
//!   password-like query parameters). It never parses the URL strictly, so it
//!   works on broken URLs too: raw `/ ? # @ % :` in the password, no `//`,
//!   unclosed `[`, ports out of range. When in doubt it hides more (the host
//!   too), never less.
//! - [`secrets_of`] lists the strings a URL carries that must never be shown.
//! - [`redact_text`] cleans a free-form message (a driver error, a log line, a
//!   `Debug` dump): every URL inside it goes through [`redact_url`], every
//!   `password=...` / `password: "..."` value is hidden, and every known secret
//!   is replaced by `***`.
//! - A process-wide registry, filled by [`register_secrets_from_url`], lets
//!   deep code paths (a tracing writer, a driver error) call [`redact`]
//!   without the URL being passed down. The configuration registers the
//!   secrets of every server URL it is given
//!   ([`StorageConfig::with_url`](crate::config::StorageConfig::with_url) and
//!   the `storage.postgres.url` / `storage.mysql.url` keys), accepted or not.
//!
//! Short secrets: a password of one to three characters is still a secret,
//! but replacing every `a` of a message would make it unreadable. Secrets
//! shorter than [`MIN_FREE_SECRET_CHARS`] are therefore replaced only where
//! they stand as a value: right after a quote, `=` or `:` and right before
//! the end, a quote, whitespace, `@`, `&`, `,`, `;` or `)`. URLs holding them
//! are redacted whole by [`redact_url`] anyway.

use percent_encoding::percent_decode_str;
use std::sync::RwLock;

/// What a hidden value is replaced with.
pub const HIDDEN: &str = "***";

/// Secrets with at least this many characters are replaced wherever they
/// occur; shorter ones only where they stand as a value (see the module docs).
pub const MIN_FREE_SECRET_CHARS: usize = 4;

/// Characters that end the user name inside a URL's userinfo.
const USER_END: &[u8] = b":@/?#&;=[";

/// The URL with its password replaced by `***`, safe for logs and messages.
///
/// - Userinfo: when the part after `scheme:` (and `//`, when present)
///   contains an `@`, everything up to the last `@` is the userinfo. The user
///   name (up to the first `:`, `@`, `/`, `?`, `#`, `&`, `;`, `=`, `[` or
///   whitespace) is kept and the rest becomes `:***`, so a password holding
///   raw `/ ? # @ % :` is hidden whole; the host may be hidden with it, which
///   is acceptable.
/// - Query: the value of the first parameter whose key contains `pass`,
///   `pwd`, `secret` or `token` (any case, e.g. `password`, `sslpassword`,
///   `sslkey_password`, `PWD`) is hidden up to the end of the string, since a
///   raw password may itself hold `&`, `=` or `#`.
/// - A string without `scheme:` is treated the same way, and so is one whose
///   "scheme" is not a database's and is followed neither by `//` nor by
///   another `:` before the `@` (it is then a user name): `user:pw@host`
///   becomes `user:***@host`. Anything without `...@` comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let parts = Parts::of(url);
    let mut cuts: Vec<(usize, usize, &str)> = Vec::new();
    if let Some((start, end)) = parts.userinfo_range(url) {
        cuts.push((start, end, ":***"));
    }
    if let Some(value_start) = secret_params(url, parts.body).next() {
        cuts.push((value_start, url.len(), HIDDEN));
    }
    apply_cuts(url, cuts)
}

/// The secret strings a URL carries, for [`redact_text`]: the password as
/// written and percent-decoded (and as the `url` crate normalises it), and
/// the values of password-like query parameters (see [`redact_url`]), raw
/// and decoded, both up to the next `&` or `#` (what a driver sees) and up to
/// the end of the URL (what the user meant). Every non-empty string is
/// returned, however short; [`redact_text`] decides how short ones are
/// replaced. Order is longest first; there are no duplicates.
pub fn secrets_of(url: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let parts = Parts::of(url);
    if let Some(at) = parts.at {
        if let Some((_, password)) = url[parts.body..at].split_once(':') {
            push_variants(&mut out, password);
        }
    }
    for value_start in secret_params(url, parts.body) {
        let value = &url[value_start..];
        push_variants(&mut out, value);
        for stops in [&['&'][..], &['#'][..], &['&', '#'][..]] {
            if let Some(i) = value.find(stops) {
                push_variants(&mut out, &value[..i]);
            }
        }
    }
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(password) = parsed.password() {
            push_variants(&mut out, password);
        }
        for (key, value) in parsed.query_pairs() {
            if is_secret_param(&key) {
                push_variants(&mut out, &value);
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// `text` with (1) every occurrence of each secret (and of its escaped forms,
/// as `Debug` and [`crate::text::shown`] print it) replaced by `***`, longest
/// first; (2) every URL-looking substring — `scheme://...`, or `postgres:`,
/// `postgresql:`, `mysql:`, `mariadb:` followed by `user...@` — up to the
/// next whitespace or quote passed through [`redact_url`]; and (3) the value
/// of every `password=...`, `password: ...`, `"password": "..."` or
/// `password: Some("...")` hidden (keys containing `password`, `passwd` or
/// `passphrase`, or ending in `pass`, `pwd` or `secret`). Secrets shorter than
/// [`MIN_FREE_SECRET_CHARS`] are only replaced where they stand as a value.
pub fn redact_text(text: &str, secrets: &[String]) -> String {
    let replaced = replace_secrets(text, secrets);
    redact_spans(&replaced)
}

static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds the secrets of `url` (see [`secrets_of`]) to the process-wide list
/// that [`redact`] hides. Called by the configuration for every server URL it
/// is given; call it for any other URL that may end up in a message.
pub fn register_secrets_from_url(url: &str) {
    let secrets = secrets_of(url);
    if secrets.is_empty() {
        return;
    }
    let mut registered = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    for secret in secrets {
        if !registered.contains(&secret) {
            registered.push(secret);
        }
    }
}

/// Adds one secret (an API token, say) to the process-wide list that
/// [`redact`] hides.
pub fn register_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let mut registered = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    if !registered.iter().any(|s| s == secret) {
        registered.push(secret.to_owned());
        registered.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }
}

/// [`redact_text`] with every secret registered so far in this process.
pub fn redact(text: &str) -> String {
    let registered = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
    redact_text(text, &registered)
}

/// Where the pieces of a URL-ish string are, found without parsing it.
struct Parts {
    /// Start of what follows `scheme:` and `//` (0 without a scheme).
    body: usize,
    /// The last `@` after `body`, if any.
    at: Option<usize>,
}

impl Parts {
    fn of(s: &str) -> Parts {
        let b = s.as_bytes();
        let mut body = 0;
        if b.first().is_some_and(u8::is_ascii_alphabetic) {
            let end = b
                .iter()
                .position(|c| !is_scheme_byte(*c))
                .unwrap_or(b.len());
            if b.get(end) == Some(&b':') {
                body = end + 1;
                if s[body..].starts_with("//") {
                    body += 2;
                } else if !is_database_scheme(&s[..end]) {
                    // `user:password@host` looks like `scheme:...`: unless
                    // the scheme is a database's, read it as the user name
                    // when what follows holds no other ':' before the '@'.
                    if let Some(at) = s[body..].rfind('@') {
                        if !s[body..body + at].contains(':') {
                            body = 0;
                        }
                    }
                }
            }
        }
        let at = s[body..].rfind('@').map(|i| body + i);
        Parts { body, at }
    }

    /// The byte range between the user name and the last `@`, when not empty.
    fn userinfo_range(&self, s: &str) -> Option<(usize, usize)> {
        let at = self.at?;
        let user_end = s.as_bytes()[self.body..at]
            .iter()
            .position(|c| USER_END.contains(c) || c.is_ascii_whitespace())
            .map_or(at, |i| self.body + i);
        (user_end < at).then_some((user_end, at))
    }
}

fn is_database_scheme(scheme: &str) -> bool {
    let scheme = scheme.to_ascii_lowercase();
    matches!(
        scheme.as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite"
    )
}

fn is_scheme_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-')
}

/// Start of the value of every password-like `?key=` / `&key=` / `;key=`
/// after `from`, in order.
fn secret_params(s: &str, from: usize) -> impl Iterator<Item = usize> + '_ {
    let b = s.as_bytes();
    (from..b.len())
        .filter(move |&i| matches!(b[i], b'?' | b'&' | b';'))
        .filter_map(move |i| {
            let key_start = i + 1;
            let key_len = b[key_start..]
                .iter()
                .position(|c| {
                    matches!(c, b'=' | b'&' | b'?' | b';' | b'#' | b'/') || c.is_ascii_whitespace()
                })
                .unwrap_or(b.len() - key_start);
            let key_end = key_start + key_len;
            (key_len > 0
                && b.get(key_end) == Some(&b'=')
                && is_secret_param(&s[key_start..key_end]))
            .then_some(key_end + 1)
        })
}

/// Whether a URL query key names a secret.
fn is_secret_param(key: &str) -> bool {
    let key = percent_decode_str(key).decode_utf8_lossy().to_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|w| key.contains(w))
}

/// Whether a word of free text, followed by `=` or `:`, names a secret.
fn is_secret_word(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    ["password", "passwd", "passphrase"]
        .iter()
        .any(|p| w.contains(p))
        || ["pass", "pwd", "secret"].iter().any(|p| w.ends_with(p))
}

fn push_variants(out: &mut Vec<String>, raw: &str) {
    if raw.is_empty() {
        return;
    }
    out.push(raw.to_owned());
    out.push(percent_decode_str(raw).decode_utf8_lossy().into_owned());
    if raw.contains('+') {
        let spaced = raw.replace('+', " ");
        out.push(percent_decode_str(&spaced).decode_utf8_lossy().into_owned());
    }
}

/// `s` with each `(start, end, replacement)` applied; overlapping ranges are
/// merged into the first one's replacement.
fn apply_cuts(s: &str, mut cuts: Vec<(usize, usize, &str)>) -> String {
    if cuts.is_empty() {
        return s.to_owned();
    }
    cuts.sort_by_key(|c| c.0);
    let mut merged: Vec<(usize, usize, &str)> = Vec::with_capacity(cuts.len());
    for cut in cuts {
        match merged.last_mut() {
            Some(last) if cut.0 < last.1 => last.1 = last.1.max(cut.1),
            _ => merged.push(cut),
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    for (start, end, replacement) in merged {
        out.push_str(&s[copied..start]);
        out.push_str(replacement);
        copied = end;
    }
    out.push_str(&s[copied..]);
    out
}

/// Step (1) of [`redact_text`].
fn replace_secrets(text: &str, secrets: &[String]) -> String {
    let mut patterns: Vec<String> = Vec::with_capacity(secrets.len() * 2);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        patterns.push(secret.clone());
        patterns.push(secret.escape_debug().to_string());
        patterns.push(crate::text::escape_controls(secret));
        let shown = crate::text::shown(secret);
        if secret.chars().count() > crate::text::MAX_SHOWN {
            // What `shown` prints before its "... (N characters)" note.
            if let Some(cut) = shown.rfind("... (") {
                patterns.push(shown[..cut].to_owned());
            }
        }
    }
    patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    patterns.dedup();
    let mut out = text.to_owned();
    for pattern in &patterns {
        if !out.contains(pattern.as_str()) {
            continue;
        }
        out = if pattern.chars().count() >= MIN_FREE_SECRET_CHARS {
            out.replace(pattern.as_str(), HIDDEN)
        } else {
            replace_standalone(&out, pattern)
        };
    }
    out
}

/// `text` with the occurrences of a short `pattern` that stand as a value
/// replaced (see the module docs).
fn replace_standalone(text: &str, pattern: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (i, _) in text.match_indices(pattern) {
        if i < copied {
            continue;
        }
        let before = text[..i].chars().next_back();
        let after = text[i + pattern.len()..].chars().next();
        let opens = matches!(before, Some('"' | '\'' | '`' | '=' | ':'));
        let closes = match after {
            None => true,
            Some(c) => {
                c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '@' | '&' | ',' | ';' | ')')
            }
        };
        if opens && closes {
            out.push_str(&text[copied..i]);
            out.push_str(HIDDEN);
            copied = i + pattern.len();
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Steps (2) and (3) of [`redact_text`].
fn redact_spans(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let starts_word = b[i].is_ascii_alphabetic() && (i == 0 || !is_scheme_byte(b[i - 1]));
        if !starts_word {
            i += 1;
            continue;
        }
        let run_end = i + b[i..]
            .iter()
            .position(|c| !is_scheme_byte(*c))
            .unwrap_or(b.len() - i);
        if let Some(end) = url_at(text, i, run_end) {
            out.push_str(&text[copied..i]);
            out.push_str(&redact_url(&text[i..end]));
            copied = end;
            i = end;
            continue;
        }
        let key_end = i + b[i..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')))
            .unwrap_or(b.len() - i);
        if is_secret_word(&text[i..key_end]) {
            if let Some((start, end)) = pair_value(text, key_end) {
                out.push_str(&text[copied..start]);
                out.push_str(HIDDEN);
                copied = end;
                i = end;
                continue;
            }
        }
        i = run_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The end of the URL that starts at `start` with the scheme `text[start..run_end]`,
/// if it is one worth redacting.
fn url_at(text: &str, start: usize, run_end: usize) -> Option<usize> {
    if text.as_bytes().get(run_end) != Some(&b':') {
        return None;
    }
    let after = run_end + 1;
    let slashes = text[after..].starts_with("//");
    let database = is_database_scheme(&text[start..run_end]);
    if !slashes && !database {
        return None;
    }
    let mut end = token_end(text, after, true);
    if !text[after..end].contains('@') {
        // A quote inside the password must not leave its end unredacted.
        let to_space = token_end(text, end, false);
        if text[end..to_space].contains('@') {
            end = to_space;
        }
    }
    (slashes || text[after..end].contains('@')).then_some(end)
}

/// The first whitespace (or quote, with `quotes`) at or after `from`.
fn token_end(text: &str, from: usize, quotes: bool) -> usize {
    text[from..]
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || (quotes && matches!(c, '"' | '\'' | '`')))
        .map_or(text.len(), |(i, _)| from + i)
}

/// The byte range of the value after a secret key ending at `key_end`:
/// `key=value`, `key: value`, `"key": "value"`, `key: Some("value")`.
fn pair_value(text: &str, key_end: usize) -> Option<(usize, usize)> {
    let rest = &text[key_end..];
    let mut j = 0;
    let rb = rest.as_bytes();
    if matches!(rb.first(), Some(b'"' | b'\'')) {
        j += 1;
    }
    while rb.get(j) == Some(&b' ') {
        j += 1;
    }
    if !matches!(rb.get(j), Some(b'=' | b':')) {
        return None;
    }
    j += 1;
    while rb.get(j) == Some(&b' ') {
        j += 1;
    }
    if rest[j..].starts_with("Some(") {
        j += 5;
    }
    let value = &rest[j..];
    let (start, end) = match value.chars().next() {
        Some(q @ ('"' | '\'' | '`')) => {
            let body = &value[1..];
            let mut escaped = false;
            let close = body
                .char_indices()
                .find(|&(_, c)| {
                    let found = !escaped && c == q;
                    escaped = !escaped && c == '\\';
                    found
                })
                .map(|(i, _)| i)
                .unwrap_or_else(|| body.find('\n').unwrap_or(body.len()));
            (j + 1, j + 1 + close)
        }
        _ => {
            let len = value
                .char_indices()
                .find(|&(_, c)| {
                    c.is_whitespace() || matches!(c, ',' | ';' | ')' | '}' | ']' | '"' | '\'' | '`')
                })
                .map_or(value.len(), |(i, _)| i);
            if matches!(&value[..len], "None" | "null" | "NULL") {
                return None;
            }
            (j, j + len)
        }
    };
    (start < end).then_some((key_end + start, key_end + end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_shapes() {
        let cases: &[(&str, &str)] = &[
            ("mysql://root:pw@h:3306/db", "mysql://root:***@h:3306/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://u:p@ss@h/db?x=1", "postgres://u:***@h/db?x=1"),
            (
                "postgres://u:p/a?b#c@d@host:5432/db",
                "postgres://u:***@host:5432/db",
            ),
            ("postgres://u:p%40ss%2F@h/db", "postgres://u:***@h/db"),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?sslmode=require&password=hunter2",
                "postgres://u@h/db?sslmode=require&password=***",
            ),
            (
                "postgres://u@h/db?password=a&b=c",
                "postgres://u@h/db?password=***",
            ),
            (
                "postgres://h/db?sslmode=require&sslpassword=k3y&sslrootcert=/ca",
                "postgres://h/db?sslmode=require&sslpassword=***",
            ),
            ("mysql://h/db?PASS=x", "mysql://h/db?PASS=***"),
            ("mysql://h/db?pwd=x", "mysql://h/db?pwd=***"),
            (
                "postgres://h/db?sslkey_password=x",
                "postgres://h/db?sslkey_password=***",
            ),
            (
                "postgres://h/db?%70assword=x",
                "postgres://h/db?%70assword=***",
            ),
            ("postgres:u:secret@host/db", "postgres:u:***@host/db"),
            ("mysql:root:pw@127.0.0.1/x", "mysql:root:***@127.0.0.1/x"),
            (
                "postgres://u:pw@[::1]:5432/db",
                "postgres://u:***@[::1]:5432/db",
            ),
            ("postgres://u:pw@[::1/db", "postgres://u:***@[::1/db"),
            ("postgres://u:pw@h:99999/db", "postgres://u:***@h:99999/db"),
            ("postgres://h:99999/db", "postgres://h:99999/db"),
            ("oracle://a:pw@h/db", "oracle://a:***@h/db"),
            ("sqlite:///tmp/x.db?mode=rwc", "sqlite:///tmp/x.db?mode=rwc"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("not a url", "not a url"),
            ("", ""),
            ("bob@example.com", "bob@example.com"),
            ("u:secret@host", "u:***@host"),
            // A password-like parameter whose value holds the last '@': both
            // readings are hidden.
            ("postgres://u@h/db?password=a@b", "postgres://u:***"),
            // A raw password that looks like a query: both are hidden.
            ("postgres://u:x?password=y@h/db", "postgres://u:***"),
            // An '@' in a harmless parameter: the host is hidden too (safe side).
            ("postgres://u@h/db?app=me@x", "postgres://u:***@x"),
            ("postgres://u:pw@h/db#frag", "postgres://u:***@h/db#frag"),
            ("postgres://ünï:pässwörd@h/db", "postgres://ünï:***@h/db"),
        ];
        for (url, want) in cases {
            assert_eq!(&redact_url(url), want, "redact_url({url:?})");
        }
    }

    #[test]
    fn secrets_of_a_url() {
        let s = secrets_of("postgres://u:p%40ss@h/db?sslpassword=a%26b&x=1");
        for want in ["p%40ss", "p@ss", "a%26b", "a&b", "a%26b&x=1"] {
            assert!(s.iter().any(|x| x == want), "{want} in {s:?}");
        }
        assert!(secrets_of("postgres://u@h/db").is_empty());
        assert!(secrets_of("no url here").is_empty());
        let s = secrets_of("postgres://u:p/a?b#c@d@host:5432/db");
        assert!(s.iter().any(|x| x == "p/a?b#c@d"), "{s:?}");
        let s = secrets_of("mysql:root:pw@127.0.0.1/x");
        assert_eq!(s, vec!["pw".to_owned()]);
    }

    #[test]
    fn text_is_cleaned() {
        let url = "postgres://u:hunter2@db:5432/fs";
        let secrets = secrets_of(url);
        let cases: &[(&str, &str)] = &[
            (
                "error connecting to postgres://u:hunter2@db:5432/fs: refused",
                "error connecting to postgres://u:***@db:5432/fs: refused",
            ),
            (
                "PgConnectOptions { host: \"db\", password: Some(\"hunter2\") }",
                "PgConnectOptions { host: \"db\", password: Some(\"***\") }",
            ),
            ("the password hunter2 is wrong", "the password *** is wrong"),
            ("url='mysql://r:x@h/d'", "url='mysql://r:***@h/d'"),
            ("jdbc:postgresql://a:b@h/d", "jdbc:postgresql://a:***@h/d"),
            (
                "see mysql:root:pw@127.0.0.1/x now",
                "see mysql:root:***@127.0.0.1/x now",
            ),
            (
                "host=h password=s3cr3t dbname=x",
                "host=h password=*** dbname=x",
            ),
            (
                "{\"password\":\"p w\",\"a\":1}",
                "{\"password\":\"***\",\"a\":1}",
            ),
            ("password: None", "password: None"),
            ("PGPASSWORD=abc ./run", "PGPASSWORD=*** ./run"),
            ("3 tests passed: ok", "3 tests passed: ok"),
            ("listening on 127.0.0.1:5432", "listening on 127.0.0.1:5432"),
            (
                "postgres: connection refused",
                "postgres: connection refused",
            ),
            ("plain text", "plain text"),
        ];
        for (text, want) in cases {
            assert_eq!(&redact_text(text, &secrets), want, "redact_text({text:?})");
        }
        // Debug-escaped and control-escaped forms of a secret are hidden too.
        let odd = vec!["a\"b\\c\nd".to_owned()];
        let dumped = format!("{:?}", "a\"b\\c\nd");
        assert!(!redact_text(&dumped, &odd).contains("b\\\\c"), "{dumped}");
        // A quote inside a password does not stop the URL early.
        let t = "bad url postgres://u:ab\"cd@h/db here";
        assert_eq!(redact_text(t, &[]), "bad url postgres://u:***@h/db here");
    }

    #[test]
    fn short_secrets_are_replaced_only_as_values() {
        let secrets = vec!["pw".to_owned()];
        assert_eq!(
            redact_text("pwd pw upw password=\"pw\" x:pw@h", &secrets),
            "pwd pw upw password=\"***\" x:***@h"
        );
    }

    #[test]
    fn the_registry_hides_registered_secrets() {
        register_secrets_from_url("postgres://u:Zq9-registry-secret@h/db");
        let m = redact("driver: authentication failed for Zq9-registry-secret");
        assert!(!m.contains("Zq9-registry-secret"), "{m}");
        assert!(m.contains("authentication failed for ***"), "{m}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "",
            ":",
            "@",
            "a:",
            "a:@",
            "a://",
            "a://@",
            "a://:@",
            "?",
            "?password=",
            "x?password",
            "é:é@é",
            "postgres:@",
            "postgres://[",
            "password=",
            "password:\"",
            "password: Some(",
            "\u{0}postgres://u:p@h",
            "p\u{301}ostgres://u:p@h",
        ] {
            let _ = redact_url(s);
            let _ = secrets_of(s);
            let _ = redact_text(s, &[s.to_owned(), "a".to_owned()]);
        }
    }
}
