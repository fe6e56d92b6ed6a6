//! Request extractors whose failures speak the API's error shape: JSON bodies and path ids.
//! A body's `null` members are absent members, for every route, as in Semaphore (Go).

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON body; malformed JSON, wrong types, missing fields and NUL characters in strings are
/// 400s that say which. Object members whose value is `null` are dropped before the body is
/// read, at every depth: Semaphore's Go server reads `null` as the zero value, so clients send
/// it for "not given".
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError::bad_request(
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            Err(JsonRejection::JsonSyntaxError(e)) => {
                return Err(ApiError::bad_request(format!(
                    "malformed JSON: {}",
                    e.body_text_inner()
                )));
            }
            Err(e) => return Err(ApiError::bad_request(e.body_text())),
        };
        read_body(value).map(JsonBody)
    }
}

/// A JSON body that may be left out (Semaphore's clients send none to some routes): an empty
/// body is `T::default()`. Otherwise read as [`JsonBody`] reads, without asking for a
/// `Content-Type`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        read_body(value).map(OptionalJsonBody)
    }
}

/// Reads a parsed body into `T`: NUL characters refused, `null` members dropped; errors name
/// the field.
fn read_body<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    ralf_core::validate::no_nul_in_value(&value)?;
    drop_null_members(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Members whose value is the user's own data (a task's extra variables given as an object),
/// where `null` is a value and is kept.
const FREE_FORM_MEMBERS: [&str; 2] = ["environment", "secret"];

/// Removes every object member whose value is `null`, in nested objects and arrays too, except
/// inside [`FREE_FORM_MEMBERS`]. `null` elements of arrays stay (their position means something).
pub fn drop_null_members(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, v| !v.is_null());
            for (name, member) in members.iter_mut() {
                if !FREE_FORM_MEMBERS.contains(&name.as_str()) {
                    drop_null_members(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_members),
        _ => {}
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
