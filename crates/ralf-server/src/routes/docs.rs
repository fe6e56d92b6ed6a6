//! `/api/docs`: the OpenAPI document (`/api/openapi.json`) in a browsable viewer (Swagger UI),
//! whose files are compiled into the binary: the page works without reaching the internet. Only
//! the files the page loads are carried (`build.rs` takes them from the vendored release).

use axum::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// The viewer's page: ours, with absolute links, since the server serves it without a trailing
/// slash (it trims those).
const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>ralf API</title>
    <link rel="stylesheet" type="text/css" href="/api/docs/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="/api/docs/favicon-16x16.png" sizes="16x16" />
    <style>html { box-sizing: border-box; overflow-y: scroll; } body { margin: 0; }</style>
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/api/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/api/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/api/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"##;

/// Points the viewer at our document.
const INITIALIZER: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  });
};
"##;

macro_rules! swagger_ui_file {
    ($name:literal, $content_type:literal) => {
        (
            $name,
            $content_type,
            include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/", $name)).as_slice(),
        )
    };
}

/// Every file under `/api/docs/`: name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 7] = [
    ("index.html", "text/html; charset=utf-8", PAGE.as_bytes()),
    (
        "swagger-initializer.js",
        "text/javascript; charset=utf-8",
        INITIALIZER.as_bytes(),
    ),
    swagger_ui_file!("swagger-ui.css", "text/css; charset=utf-8"),
    swagger_ui_file!("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    swagger_ui_file!(
        "swagger-ui-standalone-preset.js",
        "text/javascript; charset=utf-8"
    ),
    swagger_ui_file!("favicon-32x32.png", "image/png"),
    swagger_ui_file!("favicon-16x16.png", "image/png"),
];

/// The viewer's page and its files.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/docs", get(|| viewer_file(String::new())))
        .route(
            "/api/docs/{*file}",
            get(|Path(file): Path<String>| viewer_file(file)),
        )
}

async fn viewer_file(file: String) -> Response {
    let wanted = if file.is_empty() { "index.html" } else { &file };
    match FILES.iter().find(|(name, _, _)| *name == wanted) {
        Some((_, content_type, bytes)) => ([(CONTENT_TYPE, *content_type)], *bytes).into_response(),
        None => ApiError::NotFound(format!("the API viewer has no file {file:?}")).into_response(),
    }
}
