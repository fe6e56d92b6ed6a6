//! `/api/docs`: the OpenAPI document (`/api/openapi.json`) in a browsable viewer (Swagger UI),
//! whose files are compiled into the binary: the page works without reaching the internet.

use std::sync::{Arc, LazyLock};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::state::AppState;

const BASE: &str = "/api/docs";

static CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::from("/api/openapi.json")));

/// The viewer's page and its files. The page is served without a trailing slash (the server
/// trims those), so its relative links are made absolute.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(BASE, get(|| viewer_file(String::new())))
        .route(
            "/api/docs/{*file}",
            get(|Path(file): Path<String>| viewer_file(file)),
        )
}

async fn viewer_file(file: String) -> Response {
    let found = match utoipa_swagger_ui::serve(&file, CONFIG.clone()) {
        Ok(found) => found,
        Err(e) => {
            return ApiError::Internal(anyhow::anyhow!("the API viewer's {file:?}: {e}"))
                .into_response();
        }
    };
    let Some(found) = found else {
        return ApiError::NotFound(format!("the API viewer has no file {file:?}")).into_response();
    };
    let mut bytes = found.bytes.into_owned();
    if file.is_empty() || file == "index.html" {
        let page = String::from_utf8_lossy(&bytes).replace("\"./", &format!("\"{BASE}/"));
        bytes = page.into_bytes();
    }
    (StatusCode::OK, [(CONTENT_TYPE, found.content_type)], bytes).into_response()
}
