//! Shared HTTP plumbing: one `reqwest::Client` per upstream, per-attempt timeouts, retries of
//! idempotent calls, the circuit breaker, bearer tokens with caching and one refresh on 401, and
//! the mapping of HTTP statuses to [`IntegrationError`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::{HttpConfig, MtlsConfig, RetryConfig};
use crate::error::{IntegrationError, Result, Upstream};
use crate::resilience::{CircuitBreaker, backoff_delay};

/// A complete response: the body is read inside the attempt's timeout.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: DeserializeOwned>(&self, upstream: Upstream) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| IntegrationError::Decode { upstream, message: e.to_string() })
    }
}

/// Whether a call may be repeated without repeating its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotence {
    /// Reads, and writes protected by an upstream idempotency key: retried with backoff.
    Idempotent,
    /// Money-moving calls whose outcome must be reconciled by reading back: never retried here.
    Once,
}

/// A base URL plus path segments, each percent-encoded (keys contain `@` and `+`).
pub(crate) fn url(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| IntegrationError::Config(format!("{base} cannot be a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

pub(crate) fn parse_base(raw: &str) -> Result<Url> {
    Url::parse(raw).map_err(|e| IntegrationError::Config(format!("invalid URL {raw:?}: {e}")))
}

/// Builds the `reqwest::Client` for one upstream; with `mtls`, the client certificate is loaded
/// from PEM (validated with rustls-pki-types) and, if a CA file is given, only that CA is trusted.
pub(crate) fn build_client(http: &HttpConfig, mtls: Option<&MtlsConfig>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(http.connect_timeout_ms))
        // The attempt timeout is enforced around send + body read; this is a backstop.
        .timeout(http.timeout() + Duration::from_secs(1))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90));
    if let Some(mtls) = mtls {
        let (identity, roots) = crate::tls::load_mtls(mtls)?;
        builder = builder.identity(identity);
        if let Some(roots) = roots {
            builder = builder.tls_certs_only(roots);
        }
    }
    builder.build().map_err(|e| IntegrationError::Config(format!("HTTP client: {e}")))
}

/// Upstream error bodies: Midaz/CRM `{code,title,message}`, BTG `{code,message}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Maps a non-2xx response to a typed error.
pub(crate) fn status_error(upstream: Upstream, response: &Response) -> IntegrationError {
    let body: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
    let code = match body.code {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let message = body.message.or(body.title).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&response.body);
        text.chars().take(200).collect()
    });
    let status = response.status.as_u16();
    match status {
        404 => IntegrationError::NotFound { upstream, code, message },
        409 if upstream == Upstream::Midaz && code == "0084" => IntegrationError::InFlight { upstream },
        409 => IntegrationError::Conflict { upstream, code, message },
        401 | 403 => IntegrationError::Unauthorized { upstream, status },
        408 | 429 | 500..=599 => IntegrationError::Unavailable { upstream, status: Some(status), message },
        _ => IntegrationError::Rejected { upstream, status, code, message },
    }
}

fn transport_error(upstream: Upstream, err: &reqwest::Error, after: Duration) -> IntegrationError {
    if err.is_timeout() {
        IntegrationError::Timeout { upstream, after }
    } else if err.is_connect() {
        IntegrationError::Unavailable { upstream, status: None, message: format!("connect: {err}") }
    } else {
        IntegrationError::Transport { upstream, message: err.to_string() }
    }
}

/// Cached bearer token. Refreshes happen under the lock so that concurrent callers share one
/// token request.
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl TokenCache {
    /// Returns the cached token, or fetches one; `fetch` yields the token and its lifetime.
    pub async fn get(&self, fetch: impl AsyncFnOnce() -> Result<(String, Duration)>) -> Result<String> {
        let mut slot = self.slot.lock().await;
        if let Some((token, refresh_at)) = slot.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch().await?;
        // Refresh a little early so that a token never expires on its way to the upstream.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        *slot = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }

    /// Drops `stale` if it is still the cached token (a 401 proved it is no longer accepted).
    pub async fn invalidate(&self, stale: &str) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|(t, _)| t == stale) {
            *slot = None;
        }
    }
}

/// How a client obtains its bearer token.
#[async_trait::async_trait]
pub(crate) trait TokenSource: Send + Sync {
    /// Requests a fresh token: `(access_token, lifetime)`.
    async fn fetch(&self, transport: &Transport) -> Result<(String, Duration)>;
}

/// One upstream: client, timeouts, retry policy, breaker and optional token source.
pub(crate) struct Transport {
    pub upstream: Upstream,
    pub client: reqwest::Client,
    timeout: Duration,
    retry: RetryConfig,
    pub breaker: Arc<CircuitBreaker>,
    auth: Option<Box<dyn TokenSource>>,
    tokens: TokenCache,
}

impl Transport {
    pub fn new(
        upstream: Upstream,
        http: &HttpConfig,
        client: reqwest::Client,
        auth: Option<Box<dyn TokenSource>>,
    ) -> Self {
        Transport {
            upstream,
            client,
            timeout: http.timeout(),
            retry: http.retry.clone(),
            breaker: Arc::new(CircuitBreaker::new(upstream, http.breaker.clone())),
            auth,
            tokens: TokenCache::default(),
        }
    }

    /// Sends one request and reads the whole body (no timeout of its own: callers run inside
    /// [`Transport::call`]).
    pub async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await.map_err(|e| transport_error(self.upstream, &e, self.timeout))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| transport_error(self.upstream, &e, self.timeout))?.to_vec();
        Ok(Response { status, headers, body })
    }

    async fn token(&self) -> Result<Option<String>> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        self.tokens.get(async || auth.fetch(self).await).await.map(Some)
    }

    /// One attempt: attaches the bearer token, and on a 401 refreshes it once and resends.
    async fn attempt(&self, build: &(dyn Fn() -> RequestBuilder + Sync)) -> Result<Response> {
        let token = self.token().await?;
        let with_token = |token: &Option<String>| match token {
            Some(t) => build().bearer_auth(t),
            None => build(),
        };
        let mut response = self.send(with_token(&token)).await?;
        if response.status == StatusCode::UNAUTHORIZED
            && let Some(stale) = &token
        {
            self.tokens.invalidate(stale).await;
            let fresh = self.token().await?;
            response = self.send(with_token(&fresh)).await?;
        }
        if response.status.is_success() { Ok(response) } else { Err(status_error(self.upstream, &response)) }
    }

    /// Runs a call through the breaker with a per-attempt timeout, retrying transient failures
    /// with jittered exponential backoff when the call is idempotent.
    pub async fn call(
        &self,
        op: &'static str,
        idempotence: Idempotence,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let max_attempts = match idempotence {
            Idempotence::Idempotent => self.retry.max_attempts.max(1),
            Idempotence::Once => 1,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = self.breaker.acquire()?;
            let outcome = match tokio::time::timeout(self.timeout, self.attempt(build)).await {
                Ok(result) => result,
                Err(_) => Err(IntegrationError::Timeout { upstream: self.upstream, after: self.timeout }),
            };
            let failed = outcome.as_ref().err().is_some_and(IntegrationError::is_upstream_failure);
            self.breaker.record(permit, failed);
            match outcome {
                Ok(response) => return Ok(response),
                Err(err) if err.is_transient() && attempt < max_attempts => {
                    let delay = backoff_delay(&self.retry, attempt - 1);
                    tracing::debug!(upstream = %self.upstream, op, attempt, ?delay, error = %err, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(err) => {
                    tracing::debug!(upstream = %self.upstream, op, attempt, error = %err, "call failed");
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_segments_are_encoded() {
        let base = parse_base("http://h:1/api/").unwrap();
        let u = url(&base, &["dict", "keys", "+55 11/x@y.com"]).unwrap();
        assert_eq!(u.as_str(), "http://h:1/api/dict/keys/+55%2011%2Fx@y.com");
    }

    #[test]
    fn status_mapping() {
        let resp = |status: u16, body: &str| Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let e = status_error(
            Upstream::Midaz,
            &resp(409, r#"{"code":"0084","title":"Duplicate Idempotency Key","message":"m"}"#),
        );
        assert_eq!(e, IntegrationError::InFlight { upstream: Upstream::Midaz });
        let e = status_error(Upstream::Midaz, &resp(422, r#"{"code":"0018","message":"no funds"}"#));
        assert!(matches!(e, IntegrationError::Rejected { status: 422, ref code, .. } if code == "0018"));
        let e = status_error(Upstream::Btg, &resp(503, "down"));
        assert!(matches!(e, IntegrationError::Unavailable { status: Some(503), .. }));
        assert!(e.is_transient());
        let e = status_error(Upstream::Crm, &resp(404, r#"{"code":"CRM-0008","message":"x"}"#));
        assert_eq!(e.code(), Some("CRM-0008"));
    }
}
