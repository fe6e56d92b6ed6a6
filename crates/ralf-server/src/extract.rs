//! Request extractors whose failures speak the API's error shape: JSON bodies and path ids.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body; malformed JSON, wrong types, missing fields and NUL characters in strings are
/// 400s that say which.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let req = Request::from_parts(parts, Body::from(bytes.clone()));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => {
                ralf_core::validate::no_nul_in_json(&bytes)?;
                Ok(JsonBody(value))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "the body must be JSON (Content-Type: application/json)",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(format!(
                "malformed JSON: {}",
                e.body_text_inner()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad_request(format!(
                "invalid request body: {}",
                e.body_text_inner()
            ))),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

trait InnerText {
    fn body_text_inner(&self) -> String;
}

impl<E: std::error::Error> InnerText for E {
    /// axum prefixes its messages with "Failed to deserialize the JSON body into the target
    /// type: "; the part after it is what the user needs.
    fn body_text_inner(&self) -> String {
        let text = self.to_string();
        let source = std::error::Error::source(self).map(|s| s.to_string());
        source.unwrap_or(text)
    }
}

/// Path parameters (ids); a non-numeric id or a NUL character is a 400 that names the parameter.
pub struct Ids<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        ralf_core::validate::no_nul_in_url(parts.uri.path(), None)?;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Ids(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::bad_request(
                format!("invalid id in path: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Query parameters; a wrong type or a NUL character is a 400 that names the parameter.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        ralf_core::validate::no_nul_in_url("", parts.uri.query())?;
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("invalid query: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Checks the `id` a PUT body carries against the id in its path, as Semaphore does.
pub fn same_id(body_id: Option<i64>, path_id: i64, what: &str) -> Result<(), ApiError> {
    match body_id {
        Some(id) if id != path_id => Err(ApiError::bad_request(format!(
            "{what} ID in body and URL must be the same"
        ))),
        _ => Ok(()),
    }
}
