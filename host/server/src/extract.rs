//! Extractors whose rejections speak our error catalogue instead of axum's plain text.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use pix_core::error::ErrorCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// JSON body. Missing fields → PIX-0003, bad values → PIX-0004, wrong types → PIX-0005,
/// unknown fields → PIX-0006 (bodies use `deny_unknown_fields`); the field path is named.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the request body must be sent with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body exceeds the size limit")
            } else {
                ApiError::new(ErrorCode::InvalidField, format!("cannot read the request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Deserializes a JSON body, classifying the failure into the catalogue.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        // serde's messages are stable: "missing field `x`", "unknown field `x`", "invalid type: …".
        let (code, message) = if inner.is_syntax() || inner.is_eof() {
            (ErrorCode::InvalidField, format!("malformed JSON: {text}"))
        } else if let Some(field) = backticked(&text, "missing field `") {
            (ErrorCode::MissingField, format!("missing field: {}", join(&path, &field)))
        } else if let Some(field) = backticked(&text, "unknown field `") {
            // Here the path already ends at the unknown field itself.
            let named = if path.is_empty() || path == "." { field } else { path };
            (ErrorCode::UnexpectedField, format!("unexpected field: {named}"))
        } else if text.starts_with("invalid type") {
            (ErrorCode::InvalidFieldType, format!("{}: {}", field_name(&path), strip_position(&text)))
        } else {
            (ErrorCode::InvalidField, format!("{}: {}", field_name(&path), strip_position(&text)))
        };
        ApiError::new(code, message)
    })
}

fn backticked(text: &str, prefix: &str) -> Option<String> {
    let rest = text.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_owned())
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." { field.to_owned() } else { format!("{path}.{field}") }
}

fn field_name(path: &str) -> &str {
    if path.is_empty() || path == "." { "body" } else { path }
}

fn strip_position(text: &str) -> &str {
    text.rfind(" at line ").map_or(text, |i| &text[..i])
}

/// Path parameters; a malformed one (e.g. not a UUID) → PIX-0008.
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state).await.map(|Path(v)| AppPath(v)).map_err(|e| match e {
            PathRejection::FailedToDeserializePathParams(e) => {
                ApiError::new(ErrorCode::InvalidPathParameter, e.body_text())
            }
            other => ApiError::new(ErrorCode::MissingPathParameter, other.body_text()),
        })
    }
}

/// Query string; a bad parameter → PIX-0004 naming it.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(v)| AppQuery(v)).map_err(|e: QueryRejection| {
            ApiError::new(ErrorCode::InvalidField, format!("query string: {}", e.body_text()))
        })
    }
}

/// `X-Account-Id`: the Midaz account the request acts on. Required where extracted; missing →
/// PIX-0001, not a UUID → PIX-0002. (Ownership is checked against Midaz/CRM by the integrations.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountId(pub Uuid);

pub const ACCOUNT_ID_HEADER: &str = "x-account-id";

impl<S: Send + Sync> FromRequestParts<S> for AccountId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(ACCOUNT_ID_HEADER)
            .ok_or_else(|| ApiError::new(ErrorCode::MissingHeader, "missing header: X-Account-Id"))?;
        value
            .to_str()
            .ok()
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .map(AccountId)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidHeader, "X-Account-Id must be a UUID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "fields exist to be deserialized")]
    struct Body {
        url: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "fields exist to be deserialized")]
    struct Inner {
        count: u8,
    }

    fn code_of(json: &str) -> (&'static str, String) {
        let e = parse_json::<Body>(json.as_bytes()).unwrap_err().0;
        (e.code.code(), e.message)
    }

    #[test]
    fn json_failures_map_to_catalogue_codes_naming_the_field() {
        assert_eq!(code_of("{}"), ("PIX-0003", "missing field: url".into()));
        let (code, msg) = code_of(r#"{"url":"x","extra":1}"#);
        assert_eq!((code, msg.as_str()), ("PIX-0006", "unexpected field: extra"));
        let (code, msg) = code_of(r#"{"url":5}"#);
        assert_eq!(code, "PIX-0005");
        assert!(msg.starts_with("url: invalid type"), "{msg}");
        let (code, msg) = code_of(r#"{"url":"x","inner":{"count":300}}"#);
        assert_eq!(code, "PIX-0004");
        assert!(msg.starts_with("inner.count: invalid value"), "{msg}");
        let (code, msg) = code_of(r#"{"url":"x","inner":{}}"#);
        assert_eq!((code, msg.as_str()), ("PIX-0003", "missing field: inner.count"));
        assert_eq!(code_of("{not json").0, "PIX-0004");
    }
}
