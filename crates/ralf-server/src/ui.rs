//! The web UI: a small client (HTML, CSS and plain ES modules, no build step) compiled into the
//! binary and served at `/` and under `/ui/`. Every page is the same `index.html`; the client
//! routes in the browser and does everything through the REST API with the session cookie, so
//! it can do nothing the API refuses the user. See docs/ui.md.

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One file of the client.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! assets {
    ($($name:literal => $type:literal),* $(,)?) => {
        &[$(Asset { name: $name, content_type: $type, body: include_str!(concat!("../ui/", $name)) }),*]
    };
}

const ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "log.js" => "text/javascript; charset=utf-8",
    "pages.js" => "text/javascript; charset=utf-8",
    "resources.js" => "text/javascript; charset=utf-8",
    "session.js" => "text/javascript; charset=utf-8",
    "catalog.js" => "text/javascript; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
];

/// What the pages may load and where they may connect: this server only, no inline script
/// or style, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The ETag of each asset: a hash of its content, the same for the life of the binary.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| format!("\"{:016x}\"", fnv1a(asset.body.as_bytes())))
            .collect()
    })
}

/// FNV-1a, 64 bits: enough to tell two versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The page every UI route answers with: the client reads the path and shows the page.
pub async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// A file of the client, `/ui/{name}`.
pub async fn asset(
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file",
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let out = response.headers_mut();
    out.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        out.insert(ETAG, etag);
    }
    // Modules import each other by plain names, so every file is revalidated (a 304 when
    // unchanged) rather than cached blindly across an upgrade.
    out.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    out.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_and_tagged() {
        for asset in ASSETS {
            let response = serve(asset.name, &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            let etag = response.headers()[ETAG].clone();
            let mut again = HeaderMap::new();
            again.insert(IF_NONE_MATCH, etag);
            assert_eq!(serve(asset.name, &again).status(), StatusCode::NOT_MODIFIED);
        }
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
