//! Refuses cross-site use of the session cookie. A browser sends the `semaphore` cookie with
//! requests another site makes it send; such a request cannot carry a JSON content type
//! without the server's consent (CORS, which ralf does not grant), and it carries that site's
//! `Origin`. So a request authenticated by the cookie alone (no bearer token) that changes
//! something needs a JSON content type or a same-origin `Origin` (or, as programs that are not
//! browsers send it, neither an `Origin` nor a body's content type), and a WebSocket handshake
//! with the cookie needs a same-origin `Origin` when it has one (programs that are not
//! browsers send none). Bearer-token clients are not affected: no site can make a browser
//! send a token.

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, UPGRADE};
use axum::http::{HeaderMap, Method, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{bearer_token, session_cookie};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn guard(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let headers = request.headers();
    let by_cookie = session_cookie(headers).is_some() && bearer_token(headers).is_none();
    if by_cookie {
        let web_host = &state.settings.web_host;
        let websocket = headers
            .get(UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let refusal = if websocket {
            (headers.contains_key(ORIGIN) && !same_origin(headers, web_host)).then_some(
                "a WebSocket with the session cookie must come from this site's own pages \
                 (the Origin header names another site)",
            )
        } else {
            let changes = !matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            );
            // A program that is not a browser (Semaphore's clients log in with the cookie and
            // then POST with no body at all) sends neither `Origin` nor a content type; a
            // browser sends `Origin` with every request that changes something, and a form
            // always has a content type.
            let bodiless_program =
                !headers.contains_key(ORIGIN) && !headers.contains_key(CONTENT_TYPE);
            (changes && !bodiless_program && !json_body(headers) && !same_origin(headers, web_host))
                .then_some(
                    "a request authenticated by the session cookie must send JSON \
                 (Content-Type: application/json) or come from this site (Origin)",
                )
        };
        if let Some(refusal) = refusal {
            return ApiError::Forbidden(refusal.into()).into_response();
        }
    }
    next.run(request).await
}

/// `application/json` or any `+json` type.
fn json_body(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether the `Origin` names this server: the host the request was sent to (`Host`), or the
/// configured public URL (`web_host`).
fn same_origin(headers: &HeaderMap, web_host: &str) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((_, origin_authority)) = split_origin(origin) else {
        return false;
    };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|host| host.eq_ignore_ascii_case(origin_authority)) {
        return true;
    }
    split_origin(web_host).is_some_and(|(scheme, authority)| {
        origin
            .to_ascii_lowercase()
            .starts_with(&scheme.to_ascii_lowercase())
            && authority.eq_ignore_ascii_case(origin_authority)
    })
}

/// `https://example.com:8443/sub` → ("https", "example.com:8443").
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !authority.is_empty()).then_some((scheme, authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins_match_the_host_or_the_public_url() {
        let here = headers(&[
            ("host", "ralf.example:3000"),
            ("origin", "http://ralf.example:3000"),
        ]);
        assert!(same_origin(&here, ""));
        let there = headers(&[
            ("host", "ralf.example:3000"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!same_origin(&there, ""));
        let proxied = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://ralf.example"),
        ]);
        assert!(same_origin(&proxied, "https://ralf.example/"));
        assert!(!same_origin(&proxied, "http://other.example"));
        let null = headers(&[("host", "ralf.example"), ("origin", "null")]);
        assert!(!same_origin(&null, ""));
    }

    #[test]
    fn json_types_are_recognised() {
        assert!(json_body(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(json_body(&headers(&[(
            "content-type",
            "application/merge-patch+json"
        )])));
        assert!(!json_body(&headers(&[("content-type", "text/plain")])));
        assert!(!json_body(&HeaderMap::new()));
    }
}
