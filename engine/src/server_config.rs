//! The `server:` section of the configuration file: where `flowstate serve`
//! and `flowstate console` listen for the HTTP API and the web console, and
//! the token that guards their mutations. Checked with the rest of the file,
//! before anything is opened; the HTTP server itself is `flowstate-server`'s.

use flowstate_store::config::did_you_mean;
use flowstate_store::text::shown;
use flowstate_store::yaml::{self, describe};
use serde_yaml_ng::Value;
use std::net::SocketAddr;

/// The environment variable that gives the API token (wins over `server.token`).
pub const API_TOKEN_ENV: &str = "FLOWSTATE_API_TOKEN";

/// The shortest token accepted: a bearer token is a password sent with every
/// mutation, and a short one is guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

const SERVER_KEYS: &[&str] = &["enabled", "listen", "token"];

/// A bearer token. Its `Debug` hides it, so printing the configuration never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Checks a token: at least [`MIN_TOKEN_CHARS`] printable characters
    /// without blanks. The message names `what` (the key or the variable).
    pub fn new(what: &str, text: &str) -> Result<Token, String> {
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "{what} contains a blank or a control character; use printable characters only"
            ));
        }
        let n = text.chars().count();
        if n < MIN_TOKEN_CHARS {
            return Err(format!(
                "{what} is {n} characters; use at least {MIN_TOKEN_CHARS} (for example the output of `openssl rand -hex 24`)"
            ));
        }
        flowstate_store::redact::register_secret(text);
        Ok(Token(text.to_owned()))
    }

    /// The token's text, to compare with a request's.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The validated `server:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Whether `flowstate serve` serves HTTP at all (`flowstate console`
    /// always does).
    pub enabled: bool,
    /// The address to listen on; port 0 takes a free port, which is logged.
    pub listen: SocketAddr,
    /// The bearer token that mutations need; `None`: mutations are allowed
    /// without one, but only on a loopback address.
    pub token: Option<Token>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
        }
    }
}

impl ServerConfig {
    /// Parses and validates the `server:` section of a YAML document.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        yaml::check(text, "the configuration")?;
        let tree: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| format!("not valid YAML: {}", yaml::error(&e)))?;
        let section = match tree.get("server") {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Mapping(map)) => map,
            Some(other) => {
                return Err(format!(
                    "server is {}; expected a mapping of settings such as 'listen: 127.0.0.1:8080'",
                    describe(other)
                ))
            }
        };
        let mut config = Self::default();
        for (key, v) in section {
            let Some(key) = key.as_str() else {
                return Err(format!(
                    "server has the key {}; keys are names such as listen",
                    describe(key)
                ));
            };
            if !SERVER_KEYS.contains(&key) {
                return Err(unknown_key(key));
            }
            if v.is_null() {
                continue;
            }
            match key {
                "enabled" => match v {
                    Value::Bool(b) => config.enabled = *b,
                    _ => {
                        return Err(format!(
                            "server.enabled is {}; expected true or false",
                            describe(v)
                        ))
                    }
                },
                "listen" => config.listen = listen(v)?,
                _ => {
                    let Value::String(s) = v else {
                        return Err(format!(
                            "server.token is {}; expected a string",
                            describe(v)
                        ));
                    };
                    config.token = Some(Token::new("server.token", s)?);
                }
            }
        }
        Ok(config)
    }

    /// Applies `FLOWSTATE_API_TOKEN` when it is set and not blank.
    pub fn with_env(mut self) -> Result<Self, String> {
        if let Some(v) = std::env::var_os(API_TOKEN_ENV) {
            let v = v.to_string_lossy();
            if !v.trim().is_empty() {
                self.token = Some(Token::new(API_TOKEN_ENV, &v)?);
            }
        }
        Ok(self)
    }

    /// Whether mutations may be served without a token: only when none is
    /// configured and the listener takes no connection from another machine.
    pub fn open_mutations(&self) -> bool {
        self.token.is_none() && self.listen.ip().is_loopback()
    }
}

fn listen(v: &Value) -> Result<SocketAddr, String> {
    let Value::String(a) = v else {
        return Err(format!(
            "server.listen is {}; expected HOST:PORT such as 127.0.0.1:8080",
            describe(v)
        ));
    };
    a.parse::<SocketAddr>().map_err(|_| {
        format!(
            "server.listen '{}' is not an address; use IP:PORT such as 127.0.0.1:8080 or 0.0.0.0:8080",
            shown(a)
        )
    })
}

fn unknown_key(key: &str) -> String {
    format!(
        "unknown key 'server.{}'{}; valid keys here are {}",
        shown(key),
        did_you_mean(&key.chars().take(64).collect::<String>(), SERVER_KEYS),
        SERVER_KEYS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read_and_defaults_fill_the_rest() {
        let c = ServerConfig::from_yaml(
            "server:\n  enabled: false\n  listen: 0.0.0.0:9000\n  token: abcdefghijklmnopqrstuvwxyz\n",
        )
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(
            c.token.as_ref().unwrap().expose(),
            "abcdefghijklmnopqrstuvwxyz"
        );
        assert!(!format!("{c:?}").contains("abcdefghij"));
        assert!(!c.open_mutations());
        let d = ServerConfig::from_yaml("storage:\n  type: sqlite\n").unwrap();
        assert_eq!(d, ServerConfig::default());
        assert!(d.open_mutations());
        assert_eq!(ServerConfig::from_yaml("server:\n").unwrap(), d);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (body, want) in [
            ("server: 5\n", "server is the number 5; expected a mapping"),
            (
                "server:\n  listen: nope\n",
                "server.listen 'nope' is not an address",
            ),
            (
                "server:\n  listen: 8080\n",
                "server.listen is the number 8080; expected HOST:PORT",
            ),
            (
                "server:\n  enabled: yes please\n",
                "server.enabled is the string",
            ),
            (
                "server:\n  token: short\n",
                "server.token is 5 characters; use at least 16",
            ),
            (
                "server:\n  token: 'has a blank inside it'\n",
                "server.token contains a blank",
            ),
            (
                "server:\n  token: 12\n",
                "server.token is the number 12; expected a string",
            ),
            (
                "server:\n  lisen: x\n",
                "unknown key 'server.lisen' (did you mean 'listen'?)",
            ),
        ] {
            let e = ServerConfig::from_yaml(body).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
            assert!(
                !e.contains("short") || !body.contains("token: short"),
                "{e}"
            );
        }
    }
}
