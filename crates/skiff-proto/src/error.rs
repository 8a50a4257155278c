//! The one error type every API handler returns, and how it is rendered per protocol.

use std::borrow::Cow;

/// An error as AWS reports it: a code (the `__type` of JSON 1.1, the `<Code>` of the query protocol),
/// an HTTP status and a human message naming what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: Cow<'static, str>,
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<Cow<'static, str>>, status: u16, message: impl Into<String>) -> Self {
        ApiError { code: code.into(), status, message: message.into() }
    }

    /// A 400 error with the given code.
    pub fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, 400, message)
    }

    /// `InvalidParameterException` (400), the error ECS, ECR and Logs use for a bad request member.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::client("InvalidParameterException", message)
    }

    /// `ClientException` (400), the error ECS uses for requests it refuses on semantic grounds.
    pub fn client_exception(message: impl Into<String>) -> Self {
        Self::client("ClientException", message)
    }

    /// A server-side failure (`ServerException`, 500). The message must still say what failed.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new("ServerException", 500, message)
    }

    /// Whether the fault is the sender's (`Sender`) or ours (`Receiver`), as the query protocol reports it.
    pub fn is_sender_fault(&self) -> bool {
        self.status < 500
    }
}
