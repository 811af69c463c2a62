//! Properties of the redaction module: a password put into any URL shape never
//! comes out of `redact_url`, `redact_text` or a configuration error, and
//! nothing panics on arbitrary input.

use flowstate_store::config::StorageConfig;
use flowstate_store::redact::{redact, redact_text, redact_url, secrets_of};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;

/// Printable passwords of 4 to 24 characters, rich in URL delimiters.
fn password() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '/', '?', '#', '@', '%', ':', '[', ']', '&', '=', '+', ' ', '"', '\'', '\\', ';', ',', '*',
        '`', 'é', '☃', '😀', '\u{a0}',
    ]);
    let printable = any::<char>().prop_filter("printable", |c| !c.is_control());
    let ch = prop_oneof![
        3 => special,
        4 => proptest::char::range('!', '~'),
        1 => printable,
    ];
    prop::collection::vec(ch, 4..24).prop_map(|v| v.into_iter().collect())
}

const SCHEMES: &[&str] = &["postgres", "postgresql", "mysql", "mariadb"];
const HOSTS: &[&str] = &[
    "db.example:5432",
    "[::1]:5432",
    "[::1",
    "h:99999",
    "127.0.0.1",
];

/// The URL shapes: `{pw}` is the password as written, `{enc}` percent-encoded.
const SHAPES: &[&str] = &[
    "{scheme}://u:{pw}@{host}/fs",
    "{scheme}:u:{pw}@{host}/fs",
    "{scheme}://u:{enc}@{host}/fs",
    "{scheme}:u:{enc}@{host}/fs",
    "{scheme}://u@{host}/fs?password={pw}",
    "{scheme}://u@{host}/fs?sslmode=require&sslpassword={pw}",
    "{scheme}://u@{host}/fs?sslpassword={pw}&application_name=x",
    "{scheme}://u@{host}/fs?password={enc}&application_name=x",
    "{scheme}://u@{host}/fs?sslkey_password={enc}",
    "{scheme}://u:{pw}@{host}/fs?sslpassword={pw}",
];

fn fill(shape: &str, scheme: &str, host: &str, pw: &str, enc: &str) -> String {
    shape
        .replace("{scheme}", scheme)
        .replace("{host}", host)
        .replace("{enc}", enc)
        .replace("{pw}", pw)
}

fn message(url: &str) -> String {
    format!("driver said: cannot parse {url} here")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn passwords_never_come_out(
        pw in password(),
        shape in prop::sample::select(SHAPES),
        scheme in prop::sample::select(SCHEMES),
        host in prop::sample::select(HOSTS),
    ) {
        let enc = utf8_percent_encode(&pw, NON_ALPHANUMERIC).to_string();
        let url = fill(shape, scheme, host, &pw, &enc);
        // What the output may legitimately hold: everything but the password.
        let skeleton = message(&fill(shape, scheme, host, "***", "***"));
        let forbidden: Vec<&str> = [pw.as_str(), enc.as_str()]
            .into_iter()
            .filter(|p| !skeleton.contains(p))
            .collect();
        prop_assume!(forbidden.contains(&pw.as_str()));

        let redacted = redact_url(&url);
        let text = redact_text(&message(&url), &secrets_of(&url));
        let config = match StorageConfig::default().with_url(&url) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        let yaml = format!(
            "storage:\n  type: postgres\n  postgres:\n    url: '{}'\n",
            url.replace('\'', "''")
        );
        let from_yaml = match StorageConfig::from_yaml(&yaml) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        for secret in &forbidden {
            prop_assert!(!redacted.contains(secret), "redact_url({url:?}) = {redacted:?}");
            prop_assert!(!text.contains(secret), "redact_text for {url:?} = {text:?}");
            prop_assert!(!config.contains(secret), "with_url({url:?}) = {config:?}");
            prop_assert!(!from_yaml.contains(secret), "from_yaml for {url:?} = {from_yaml:?}");
        }
        // The configuration registered the URL's secrets for deep code paths.
        let registered = redact(&message(&url));
        prop_assert!(!registered.contains(&pw), "redact for {url:?} = {registered:?}");
    }

    #[test]
    fn nothing_panics_on_arbitrary_strings(s in any::<String>(), secret in any::<String>()) {
        let _ = redact_url(&s);
        let _ = secrets_of(&s);
        let _ = redact_text(&s, &[secret.clone(), s.clone()]);
        for prefix in ["", "postgres://", "mysql:", "sqlite://", "postgres://u:"] {
            let url = format!("{prefix}{s}");
            let _ = redact_url(&url);
            let _ = secrets_of(&url);
            let _ = redact_text(&message(&url), &secrets_of(&url));
            let _ = StorageConfig::default().with_url(&url);
        }
        let _ = StorageConfig::from_yaml(&s);
        let _ = StorageConfig::from_yaml(&format!("storage:\n  {s}"));
    }

    #[test]
    fn yaml_made_of_brackets_and_quotes_never_panics_and_is_quick(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                "[", "]", "{", "}", "'", "\"", "#", "\n", " ", ":", ": ", "- ", "a", "|", ",", "\\",
                "  ",
            ]),
            0..400,
        )
    ) {
        let text: String = parts.concat();
        let started = std::time::Instant::now();
        let _ = StorageConfig::from_yaml(&text);
        let _ = StorageConfig::from_yaml(&format!("storage:\n  type: {text}"));
        prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
