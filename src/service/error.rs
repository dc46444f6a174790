//! What a use case can answer besides success. One enum for the service floor, mapped to the
//! Graph envelope in one place (`http::error`): a use case says what went wrong in product
//! terms, the HTTP edge decides the status and code.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input breaks a rule of the product (400 `BadRequest`); the message names what.
    #[error("{0}")]
    Invalid(String),
    /// The object does not exist in the caller's tenant (404); the message names it.
    #[error("{0}")]
    NotFound(String),
    /// The object exists already, or is in a state that refuses the change (409).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Someone else holds what the use case needs for too long; the caller may retry (503).
    #[error("{0}")]
    Busy(String),
    /// The use case may not be asked this way (400 with Graph's own code and message).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The request was admitted with the replica's cache entry unchecked, and the use case's
    /// statement found it outdated: the request must be served again (see `service::cache`).
    #[error("the tenant changed since this replica cached it")]
    StaleCache,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] crate::identity::keys::KeyError),
}

impl ServiceError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ServiceError::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ServiceError::Forbidden(message.into())
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
