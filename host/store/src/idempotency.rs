//! Client idempotency keys (`X-Idempotency`), scoped per tenant.
//!
//! The first request with a key claims it (`in_progress`, with a lock deadline); its response is
//! stored when it finishes. A later request with the same key and the same fingerprint replays
//! that response; a different fingerprint is a key reuse; a request that arrives while the first
//! is still running is told so. A claim whose holder crashed is taken over once its lock lapses,
//! and an expired key behaves as if it had never been used.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Store, StoreResult, on_pool};

/// A response as it was sent, to be replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to do with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: run the request, then `idempotency_complete` or `idempotency_release`.
    Proceed,
    /// The same request already completed: send this back.
    Replay(StoredResponse),
    /// The same key is being processed right now.
    InFlight { retry_after: Duration },
    /// The key was used for a different request.
    Mismatch,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Store {
    pub async fn idempotency_claim(
        &self,
        tenant: Uuid,
        key: &str,
        fingerprint: &str,
        lock_for: Duration,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Claim> {
        let tenant = tenant.to_string();
        let locked_until = now + chrono(lock_for);
        let expires_at = now + chrono(ttl);
        let inserted = on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO idempotency_keys
                    (tenant_id, key, request_sha256, state, locked_until, created_at, expires_at)
                 VALUES ($1, $2, $3, 'in_progress', $4, $5, $6)
                 ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .bind(&tenant)
            .bind(key)
            .bind(fingerprint)
            .bind(locked_until)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 1 {
            return Ok(Claim::Proceed);
        }
        // Take over an expired key, or the same request whose previous holder died mid-flight.
        let taken = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE idempotency_keys SET request_sha256 = $3, state = 'in_progress',
                        locked_until = $4, response_status = NULL, response_headers = NULL,
                        response_body = NULL, created_at = $5, expires_at = $6
                 WHERE tenant_id = $1 AND key = $2
                   AND (expires_at <= $5
                        OR (state = 'in_progress' AND locked_until <= $5 AND request_sha256 = $3))",
            )
            .bind(&tenant)
            .bind(key)
            .bind(fingerprint)
            .bind(locked_until)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if taken == 1 {
            return Ok(Claim::Proceed);
        }
        type Row = (String, String, DateTime<Utc>, Option<i32>, Option<Json<Vec<(String, String)>>>, Option<Vec<u8>>);
        let row: Option<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT request_sha256, state, locked_until, response_status, response_headers, response_body
                 FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            )
            .bind(&tenant)
            .bind(key)
            .fetch_optional(pool)
            .await
        })?;
        Ok(match row {
            // Deleted between our statements (released by its holder): the key is free again.
            None => {
                Box::pin(self.idempotency_claim(crate::parse_uuid(&tenant)?, key, fingerprint, lock_for, ttl, now))
                    .await?
            }
            Some((stored, _, _, _, _, _)) if stored != fingerprint => Claim::Mismatch,
            Some((_, state, locked_until, status, headers, body)) => match (state.as_str(), status) {
                ("completed", Some(status)) => Claim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    headers: headers.map(|h| h.0).unwrap_or_default(),
                    body: body.unwrap_or_default(),
                }),
                _ => Claim::InFlight { retry_after: (locked_until - now).to_std().unwrap_or(Duration::from_secs(1)) },
            },
        })
    }

    /// Stores the response of a claimed key so later requests replay it.
    pub async fn idempotency_complete(&self, tenant: Uuid, key: &str, response: &StoredResponse) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE idempotency_keys SET state = 'completed', response_status = $3,
                        response_headers = $4, response_body = $5
                 WHERE tenant_id = $1 AND key = $2 AND state = 'in_progress'",
            )
            .bind(tenant.to_string())
            .bind(key)
            .bind(i32::from(response.status))
            .bind(Json(&response.headers))
            .bind(&response.body)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Frees a claimed key without storing a response (the request failed in a retryable way).
    pub async fn idempotency_release(&self, tenant: Uuid, key: &str) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'in_progress'",
            )
            .bind(tenant.to_string())
            .bind(key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes keys past their TTL (retention); they would be treated as unused anyway.
    pub async fn purge_expired_idempotency_keys(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}
