//! The API's one error type and its mapping to HTTP: every failure becomes a status and a
//! `{"error": "..."}` body (an invalid service catalog adds its `errors`). Internal errors are
//! logged here, once, and shown only as "internal server error".

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ralf_catalog::api::InvalidCatalogBody;
use ralf_core::api::ErrorBody;
use ralf_core::validate::Invalid;
use ralf_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// A service ralf called on the caller's behalf failed (a notification channel).
    #[error("{0}")]
    BadGateway(String),
    /// A service catalog with errors: a 400 listing each with its file, line and column.
    #[error("{}", .0.error)]
    InvalidCatalog(InvalidCatalogBody),
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    pub fn forbidden() -> Self {
        ApiError::Forbidden("you are not allowed to do that".into())
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidCatalog(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        if let ApiError::InvalidCatalog(body) = self {
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
        (
            self.status(),
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Conflict(m) | StoreError::InUse(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            // A row the store cannot read is the server's fault: a 500, with the detail in the
            // log (`IntoResponse` logs every internal error) and not in the response.
            corrupt @ StoreError::Corrupt(_) => ApiError::Internal(corrupt.into()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::catalog::CatalogFailure> for ApiError {
    fn from(e: crate::catalog::CatalogFailure) -> Self {
        use crate::catalog::CatalogFailure;
        match e {
            CatalogFailure::Invalid(errors) => ApiError::InvalidCatalog((&errors).into()),
            CatalogFailure::Refused(m) => ApiError::BadRequest(m),
            // A repository that cannot be fetched is the project's state, which its owner
            // fixes (the URL, the key, the remote), not a fault of ralf's: no 5xx.
            CatalogFailure::NotConfigured
            | CatalogFailure::Conflict(_)
            | CatalogFailure::Unreadable(_) => ApiError::Conflict(e.to_string()),
            CatalogFailure::Store(e) => e.into(),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::BadRequest(e.0)
    }
}

/// Store lookups of one object: a missing row becomes a 404 that names what was looked for.
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str) -> ApiResult<T>;
}

impl<T> OrNotFound<T> for Result<T, StoreError> {
    fn or_not_found(self, what: &str) -> ApiResult<T> {
        self.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(what),
            other => other.into(),
        })
    }
}

impl<T> OrNotFound<T> for Result<T, crate::catalog::CatalogFailure> {
    fn or_not_found(self, what: &str) -> ApiResult<T> {
        self.map_err(|e| match e {
            crate::catalog::CatalogFailure::Store(StoreError::NotFound) => {
                ApiError::not_found(what)
            }
            other => other.into(),
        })
    }
}
