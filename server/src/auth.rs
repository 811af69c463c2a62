//! Who may change things. Reads are open to whoever reaches the listener;
//! a mutation (submit, cancel) needs the configured bearer token, or, when
//! none is configured, a loopback listener. Whatever the token, a browser
//! request whose `Origin` is another site is refused: a page elsewhere must
//! not cancel executions through a console open in the same browser.

use crate::error::{Result, ServerError};
use axum::http::{header, HeaderMap};
use flowstate_engine::ServerConfig;

/// Whether the request may mutate. `form_token` is the token a console form
/// carried, for browsers that cannot set a header on a form post.
pub(crate) fn allow_mutation(
    config: &ServerConfig,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<()> {
    refuse_cross_site(headers)?;
    let Some(token) = &config.token else {
        if config.open_mutations() {
            return Ok(());
        }
        return Err(ServerError::Forbidden(format!(
            "this server listens on {}, which other machines reach, and has no token: changes are refused; set server.token or FLOWSTATE_API_TOKEN",
            config.listen
        )));
    };
    match bearer(headers).or(form_token.filter(|t| !t.is_empty())) {
        Some(given) if same(given.as_bytes(), token.expose().as_bytes()) => Ok(()),
        Some(_) => Err(ServerError::Unauthorized(
            "the token does not match this server's; send the one in server.token or FLOWSTATE_API_TOKEN"
                .into(),
        )),
        None => Err(ServerError::Unauthorized(
            "this server needs a token for changes; send Authorization: Bearer TOKEN".into(),
        )),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Refuses a request whose `Origin` names another host and port than the
/// one it was sent to. Requests without `Origin` (curl, scripts) pass:
/// browsers send it with every POST.
fn refuse_cross_site(headers: &HeaderMap) -> Result<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(ServerError::Forbidden(
        "a change sent from another site's page is refused; use the console served here, or send the request without an Origin header".into(),
    ))
}

/// Compares in time that does not depend on where the first difference is,
/// so the token cannot be found byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstate_engine::server_config::Token;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_rules_for_changes() {
        let open = ServerConfig::default();
        let wide = ServerConfig {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..ServerConfig::default()
        };
        let guarded = ServerConfig {
            token: Some(Token::new("t", "0123456789abcdef0123").unwrap()),
            ..wide.clone()
        };
        let local = [("host", "127.0.0.1:8080")];
        let same_site = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ];
        let other_site = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ];
        let good = [("authorization", "Bearer 0123456789abcdef0123")];
        let bad = [("authorization", "Bearer 0123456789abcdef0124")];
        let kind = |r: Result<()>| r.map_err(|e| e.status().1);
        assert_eq!(kind(allow_mutation(&open, &headers(&local), None)), Ok(()));
        assert_eq!(
            kind(allow_mutation(&open, &headers(&same_site), None)),
            Ok(())
        );
        assert_eq!(
            kind(allow_mutation(&open, &headers(&other_site), None)),
            Err("forbidden")
        );
        assert_eq!(
            kind(allow_mutation(&wide, &headers(&local), None)),
            Err("forbidden")
        );
        assert_eq!(
            kind(allow_mutation(&guarded, &headers(&local), None)),
            Err("unauthorized")
        );
        assert_eq!(
            kind(allow_mutation(&guarded, &headers(&bad), None)),
            Err("unauthorized")
        );
        assert_eq!(
            kind(allow_mutation(&guarded, &headers(&good), None)),
            Ok(())
        );
        let form = Some("0123456789abcdef0123");
        assert_eq!(
            kind(allow_mutation(&guarded, &headers(&same_site), form)),
            Ok(())
        );
        assert_eq!(
            kind(allow_mutation(&guarded, &headers(&other_site), form)),
            Err("forbidden")
        );
    }
}
