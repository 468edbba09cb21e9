//! `X-Idempotency` / `X-TTL` for mutating endpoints (Lerian's header names, stricter semantics):
//! a replay returns the stored status, headers and body with `X-Idempotency-Replayed: true`;
//! the same key with a different request (method, path, body, `X-Account-Id` or `X-Purpose`)
//! → 422 `IDEMPOTENCY_KEY_REUSE`; the same key while the first request is still running → 409
//! with `Retry-After`. Keys are per tenant. Server errors and transient refusals (409, 429, 5xx)
//! are not stored, so the client can retry them.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pix_core::error::ErrorCode;
use pix_store::idempotency::{Claim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::ApiError;
use crate::extract::ACCOUNT_ID_HEADER;

pub const KEY_HEADER: &str = "x-idempotency";
pub const TTL_HEADER: &str = "x-ttl";
pub const REPLAYED_HEADER: &str = "x-idempotency-replayed";
/// The cash-out's purpose (`TRANSFER`, `INSTANT_PAYMENT_REFUND`).
pub const PURPOSE_HEADER: &str = "x-purpose";

/// Headers that describe one transmission rather than the response itself.
const NOT_REPLAYED: &[&str] = &["x-request-id", "date", "content-length", REPLAYED_HEADER];

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    run(&state, req, next).await.unwrap_or_else(IntoResponse::into_response)
}

async fn run(state: &AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.run(req).await);
    }
    let Some(key) = header_str(req.headers(), KEY_HEADER)? else {
        return Ok(next.run(req).await);
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(reject(ErrorCode::InvalidHeader, "X-Idempotency must be 1-255 visible ASCII characters"));
    }
    let ttl = ttl(state, req.headers())?;
    let tenant = req
        .extensions()
        .get::<CurrentTenant>()
        .map(|t| t.0.id)
        .ok_or_else(|| ApiError::internal("idempotency layer runs before authentication"))?;

    let (parts, body) = req.into_parts();
    let body = to_bytes(body, state.config.server.body_limit_bytes)
        .await
        .map_err(|_| reject(ErrorCode::PayloadTooLarge, "the request body exceeds the size limit"))?;
    let fingerprint = fingerprint(&parts.method, &parts.uri, &parts.headers, &body);

    let lock = Duration::from_secs(state.config.idempotency.lock_secs);
    let claim = state
        .store
        .idempotency_claim(tenant, &key, &fingerprint, lock, ttl, state.clock.now())
        .await
        .map_err(ApiError::from)?;
    match claim {
        Claim::Proceed => {}
        Claim::Replay(stored) => return Ok(replay(stored)),
        Claim::InFlight { retry_after } => {
            let mut response = reject(
                ErrorCode::IdempotencyInFlight,
                "a request with this X-Idempotency key is still being processed",
            )
            .into_response();
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(response);
        }
        Claim::Mismatch => {
            return Err(reject(
                ErrorCode::IdempotencyKeyReuse,
                "this X-Idempotency key was already used for a different request",
            ));
        }
    }

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (mut parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            let _ = state.store.idempotency_release(tenant, &key).await;
            return Err(ApiError::internal(format!("reading response body: {e}")));
        }
    };
    let status = parts.status;
    let outcome = if is_final(status) {
        let stored = StoredResponse {
            status: status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter(|(n, _)| !NOT_REPLAYED.contains(&n.as_str()))
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: body.to_vec(),
        };
        state.store.idempotency_complete(tenant, &key, &stored).await
    } else {
        state.store.idempotency_release(tenant, &key).await
    };
    if let Err(e) = outcome {
        // The operation itself succeeded; a lost record only means a retry is not recognised.
        tracing::error!(error = %e, "could not record idempotency outcome");
    }
    parts.headers.insert(REPLAYED_HEADER, HeaderValue::from_static("false"));
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Headers that change what a request does, so they are part of what a key stands for: the same
/// key reused with another account or purpose is a different request (422), not a replay.
const FINGERPRINTED_HEADERS: &[&str] = &[ACCOUNT_ID_HEADER, PURPOSE_HEADER];

/// SHA-256 of method, path and query, the [`FINGERPRINTED_HEADERS`] and the body. Every header
/// gets a line whether present or not (`name:value` or a bare `name`), and neither a path nor a
/// header value can hold a newline, so no two different requests encode to the same bytes.
fn fingerprint(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b"\n");
    h.update(uri.path_and_query().map_or("", |p| p.as_str()));
    h.update(b"\n");
    for name in FINGERPRINTED_HEADERS {
        h.update(name);
        if let Some(value) = headers.get(*name) {
            h.update(b":");
            h.update(value.as_bytes());
        }
        h.update(b"\n");
    }
    h.update(body);
    hex::encode(h.finalize())
}

/// Whether a response is the operation's answer (stored) or a transient refusal (not stored).
fn is_final(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT)
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(n, v);
        }
    }
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn ttl(state: &AppState, headers: &HeaderMap) -> Result<Duration, ApiError> {
    let c = &state.config.idempotency;
    let secs =
        match header_str(headers, TTL_HEADER)? {
            None => c.default_ttl_secs,
            Some(v) => v.parse::<u64>().ok().filter(|&s| s > 0).ok_or_else(|| {
                reject(ErrorCode::InvalidHeader, "X-TTL must be a positive integer number of seconds")
            })?,
        };
    Ok(Duration::from_secs(secs.clamp(c.min_ttl_secs, c.max_ttl_secs)))
}

/// The request's `X-Idempotency` key, for handlers that record it on what they create (the
/// layer has already refused a malformed one).
pub fn request_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn header_str(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(|s| s.trim().to_owned())
                .map_err(|_| reject(ErrorCode::InvalidHeader, &format!("{name} must be visible ASCII")))
        })
        .transpose()
}

fn reject(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(headers: &[(&'static str, &'static str)], body: &str) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        fingerprint(&Method::POST, &Uri::from_static("/v1/transfers?x=1"), &map, body.as_bytes())
    }

    #[test]
    fn account_and_purpose_are_part_of_the_request() {
        let base = print(&[("x-account-id", "a"), ("x-purpose", "TRANSFER")], "{}");
        assert_eq!(
            base,
            print(&[("x-purpose", "TRANSFER"), ("x-account-id", "a")], "{}"),
            "header order is irrelevant"
        );
        assert_ne!(base, print(&[("x-account-id", "b"), ("x-purpose", "TRANSFER")], "{}"));
        assert_ne!(base, print(&[("x-account-id", "a"), ("x-purpose", "INSTANT_PAYMENT_REFUND")], "{}"));
        assert_ne!(base, print(&[("x-account-id", "a")], "{}"), "absent is not the default purpose");
        assert_eq!(base, print(&[("x-account-id", "a"), ("x-purpose", "TRANSFER"), ("x-other", "1")], "{}"));
    }

    #[test]
    fn absent_empty_and_body_borne_headers_do_not_collide() {
        assert_ne!(print(&[], "{}"), print(&[("x-account-id", "")], "{}"));
        assert_ne!(print(&[("x-account-id", "a")], "{}"), print(&[], "x-account-id:a\n{}"));
    }
}
