//! The BTG calls made for each payment, by its EndToEndId and tenant: what the console's
//! transfer timeline shows (issue #19). One row per call, written after it returns; no request
//! or response bodies, only the operation, its outcome and how long it took.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, on_pool};

/// The upstream a call went to (only BTG's payment calls are recorded today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallUpstream {
    Btg,
}

impl CallUpstream {
    pub fn as_str(self) -> &'static str {
        match self {
            CallUpstream::Btg => "btg",
        }
    }

    pub fn parse(s: &str) -> Option<CallUpstream> {
        (s == "btg").then_some(CallUpstream::Btg)
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The upstream answered with success.
    Ok,
    /// The upstream answered with a business refusal or "not found" (a 4xx).
    Rejected,
    /// No usable answer: timeout, transport error, 5xx or an open circuit.
    Failed,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CallOutcome> {
        Some(match s {
            "ok" => CallOutcome::Ok,
            "rejected" => CallOutcome::Rejected,
            "failed" => CallOutcome::Failed,
            _ => return None,
        })
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamCall {
    pub id: i64,
    pub tenant_id: Uuid,
    pub end_to_end_id: String,
    pub upstream: CallUpstream,
    /// The client operation, e.g. `initiate_payment`, `payment`, `lookup_key`.
    pub operation: String,
    pub outcome: CallOutcome,
    /// The error, for a call that did not succeed (never a body or a secret).
    pub detail: Option<String>,
    pub duration_ms: i64,
    pub called_at: DateTime<Utc>,
}

/// A call to record.
#[derive(Debug, Clone)]
pub struct NewUpstreamCall<'a> {
    pub tenant_id: Uuid,
    pub end_to_end_id: &'a str,
    pub upstream: CallUpstream,
    pub operation: &'a str,
    pub outcome: CallOutcome,
    pub detail: Option<&'a str>,
    pub duration_ms: i64,
    pub called_at: DateTime<Utc>,
}

type CallRow = (i64, String, String, String, String, String, Option<String>, i64, DateTime<Utc>);

fn call(r: CallRow) -> StoreResult<UpstreamCall> {
    Ok(UpstreamCall {
        id: r.0,
        tenant_id: crate::parse_uuid(&r.1)?,
        end_to_end_id: r.2,
        upstream: CallUpstream::parse(&r.3).ok_or_else(|| StoreError::Corrupt(format!("upstream {:?}", r.3)))?,
        operation: r.4,
        outcome: CallOutcome::parse(&r.5).ok_or_else(|| StoreError::Corrupt(format!("call outcome {:?}", r.5)))?,
        detail: r.6,
        duration_ms: r.7,
        called_at: r.8,
    })
}

impl Store {
    pub async fn record_upstream_call(&self, c: &NewUpstreamCall<'_>) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO upstream_calls
                    (tenant_id, end_to_end_id, upstream, operation, outcome, detail, duration_ms, called_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(c.tenant_id.to_string())
            .bind(c.end_to_end_id)
            .bind(c.upstream.as_str())
            .bind(c.operation)
            .bind(c.outcome.as_str())
            .bind(c.detail)
            .bind(c.duration_ms)
            .bind(c.called_at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The tenant's calls for one payment, oldest first (at most 200).
    pub async fn upstream_calls_of(&self, tenant: Uuid, end_to_end_id: &str) -> StoreResult<Vec<UpstreamCall>> {
        let rows: Vec<CallRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, end_to_end_id, upstream, operation, outcome, detail, duration_ms, called_at
                 FROM upstream_calls WHERE tenant_id = $1 AND end_to_end_id = $2 ORDER BY id LIMIT 200",
            )
            .bind(tenant.to_string())
            .bind(end_to_end_id)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(call).collect()
    }

    /// Deletes calls older than `before` (retention, with the decision log's).
    pub async fn purge_upstream_calls(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(on_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM upstream_calls WHERE called_at < $1")
                .bind(before)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?)
    }
}
