//! The distribution spec's error responses: a code from the spec's table (plus `TAG_INVALID`, which ECR and
//! the reference registry use), the HTTP status that goes with it, a human message and an optional detail.

use crate::digest::DigestError;
use crate::RegistryError;
use http::StatusCode;

/// An error answered to a registry client.
#[derive(Debug)]
pub struct DistError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<serde_json::Value>,
}

impl DistError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> DistError {
        DistError { status, code, message: message.into(), detail: None }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> DistError {
        self.detail = Some(detail);
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> DistError {
        self.message = message.into();
        self
    }

    pub fn blob_unknown(digest: &str) -> DistError {
        DistError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry")
            .with_detail(serde_json::json!({ "digest": digest }))
    }

    pub fn blob_upload_unknown(id: &str) -> DistError {
        DistError::new(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            .with_detail(serde_json::json!({ "uuid": id }))
    }

    pub fn blob_upload_invalid(message: impl Into<String>) -> DistError {
        DistError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", message)
    }

    pub fn digest_invalid(message: impl Into<String>) -> DistError {
        DistError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }

    pub fn manifest_invalid(message: impl Into<String>) -> DistError {
        DistError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
    }

    pub fn manifest_unknown(reference: &str) -> DistError {
        DistError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown to registry")
            .with_detail(serde_json::json!({ "reference": reference }))
    }

    pub fn manifest_blob_unknown(digest: &str, what: &str) -> DistError {
        DistError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            format!("manifest references {what} {digest} that is not in this repository"),
        )
        .with_detail(serde_json::json!({ "digest": digest }))
    }

    pub fn name_invalid(name: &str) -> DistError {
        DistError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name: lowercase [a-z0-9] components joined by '.', '_', '__' or '-', separated by '/', 2-256 characters",
        )
        .with_detail(serde_json::json!({ "name": name.chars().take(300).collect::<String>() }))
    }

    pub fn name_unknown(name: &str) -> DistError {
        DistError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("The repository with name '{name}' does not exist in the registry; create it with `aws ecr create-repository`"),
        )
    }

    pub fn tag_invalid(message: impl Into<String>) -> DistError {
        DistError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", message)
    }

    pub fn unsupported(status: StatusCode, message: impl Into<String>) -> DistError {
        DistError::new(status, "UNSUPPORTED", message)
    }

    pub fn internal(err: &RegistryError) -> DistError {
        tracing::error!("registry request failed: {err}");
        DistError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal registry error; see the server log")
    }

    pub fn into_response(self) -> http::Response<crate::Body> {
        let body = serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": self.detail }]
        })
        .to_string();
        crate::http_api::json_response(self.status, body)
    }
}

impl From<RegistryError> for DistError {
    fn from(err: RegistryError) -> DistError {
        DistError::internal(&err)
    }
}

impl From<skiff_store::StoreError> for DistError {
    fn from(err: skiff_store::StoreError) -> DistError {
        DistError::internal(&RegistryError::Store(err))
    }
}

impl From<DigestError> for DistError {
    fn from(err: DigestError) -> DistError {
        DistError::digest_invalid(err.to_string())
    }
}
