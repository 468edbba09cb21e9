//! The API error type: every failure leaves as `{"code","title","message"}` JSON.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pix_core::error::{ErrorCode, PixError};
use pix_store::StoreError;

/// A handler error. Anything that is not a client error is logged and answered as PIX-0000.
#[derive(Debug)]
pub struct ApiError(pub PixError);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(PixError::new(code, message))
    }

    /// Logs `cause` (with the request span's id) and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError(PixError::internal())
    }
}

/// `CODE: message`, for logs and job errors (an internal error's cause was logged already).
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code.code(), self.0.message)
    }
}

impl From<PixError> for ApiError {
    fn from(e: PixError) -> Self {
        ApiError(e)
    }
}

impl From<pix_app::AppError> for ApiError {
    fn from(e: pix_app::AppError) -> ApiError {
        use pix_app::AppError;
        match e {
            AppError::Refused { code, message } => ApiError::new(code, message),
            AppError::Upstream { what, source } => crate::integrations::upstream_error(what, source),
            AppError::Unknown(why) => {
                tracing::warn!(%why, "outcome unknown");
                ApiError::new(ErrorCode::UpstreamUnavailable, "the outcome is not known yet; read the resource again")
            }
            AppError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::new(ErrorCode::ResourceNotFound, "resource not found"),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::InvalidField, m),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

pub fn error_response(e: &PixError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&e.body()).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The catalogue entry for a bare error status produced below our handlers (body limit, timeout,
/// load shedding, unknown method…), so that no plain-text default body reaches a client.
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        s if s.is_client_error() => ErrorCode::InvalidField,
        _ => ErrorCode::Internal,
    }
}

fn default_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::RouteNotFound => "no route matches this path",
        ErrorCode::MethodNotAllowed => "this route does not accept this method",
        ErrorCode::PayloadTooLarge => "the request body exceeds the size limit",
        ErrorCode::UnsupportedMediaType => "the request body must be application/json",
        ErrorCode::RequestTimeout => "the request took too long and was abandoned",
        ErrorCode::ServiceUnavailable => "the service is overloaded; retry later",
        ErrorCode::Internal => "an unexpected error occurred; it has been logged",
        _ => "the request was rejected",
    }
}

/// Middleware body: rewrites any error response that is not already JSON into our envelope.
pub async fn ensure_json_errors<B>(response: Response<B>) -> Response
where
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = response.status();
    // The console's error pages are HTML of their own; everything else answers JSON.
    let own_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html"));
    if status.as_u16() < 400 || own_body {
        return response.map(axum::body::Body::new);
    }
    let code = code_for_status(status);
    let mut rewritten = error_response(&PixError::new(code, default_message(code)));
    // Keep the original status (e.g. 408 vs 504) and headers such as Allow or Retry-After.
    *rewritten.status_mut() = status;
    let (parts, _) = response.into_parts();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

/// `CatchPanicLayer` hook: a panicking handler answers PIX-0000 without internals.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic");
    tracing::error!(panic = detail, "handler panicked");
    error_response(&PixError::internal())
}
