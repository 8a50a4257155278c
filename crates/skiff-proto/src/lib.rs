//! `skiff-proto` owns the AWS wire formats and nothing else: AWS JSON 1.1 and the query protocol (form
//! bodies in, XML out), SigV4 signing and verification, ARNs, timestamps and the mapping of typed errors to
//! the error bodies real AWS clients parse. It never touches the store, the network or the clock on its own
//! (callers pass `now`), so every function here is pure and unit-testable.
//!
//! Only this crate knows what an AWS request or response looks like on the wire; handlers elsewhere take
//! typed input and return typed output or an [`ApiError`].

pub mod arn;
pub mod error;
pub mod json;
pub mod query;
pub mod sigv4;
mod strict;
pub mod timestamp;

pub use error::ApiError;

/// The two request/response dialects Skiff speaks on its single listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.1: `X-Amz-Target` names the operation, errors are `{"__type", "message"}`.
    Json,
    /// AWS query: form-encoded `Action=…&Version=…`, XML responses and `<ErrorResponse>` errors.
    Query,
}

/// A fresh request id, as every response carries one (`x-amzn-RequestId` / `<RequestId>`).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
