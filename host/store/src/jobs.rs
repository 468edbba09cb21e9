//! Durable jobs and the transactional outbox.
//!
//! A job is enqueued in the same transaction as the state change that needs it, so a side effect
//! is recorded if and only if the change commits. Workers claim jobs under a lease: on PostgreSQL
//! with `FOR UPDATE SKIP LOCKED` so concurrent workers never take the same job; a worker that
//! dies leaves its lease to expire and the job is claimed again. Completion is fenced by
//! `locked_by`, so a worker whose lease was taken over cannot complete someone else's claim.
//! Jobs sharing an `ordering_key` run one at a time, oldest first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Backend, Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Ready,
    Running,
    Done,
    Dead,
}

impl JobStatus {
    fn parse(s: &str) -> StoreResult<JobStatus> {
        Ok(match s {
            "ready" => JobStatus::Ready,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "dead" => JobStatus::Dead,
            other => return Err(StoreError::Corrupt(format!("job status {other:?}"))),
        })
    }
}

/// A job to enqueue. Build with [`NewJob::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant_id: Option<Uuid>,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Enqueuing a second job with the same key is a no-op: the natural idempotency of effects.
    pub dedupe_key: Option<String>,
    pub ordering_key: Option<String>,
    /// `None` means "as soon as possible" (the enqueue time).
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(queue: &str, kind: &str, payload: serde_json::Value) -> NewJob {
        NewJob {
            tenant_id: None,
            queue: queue.to_owned(),
            kind: kind.to_owned(),
            payload,
            dedupe_key: None,
            ordering_key: None,
            run_at: None,
            max_attempts: 10,
        }
    }
    pub fn with_tenant(mut self, tenant: Uuid) -> Self {
        self.tenant_id = Some(tenant);
        self
    }
    pub fn with_dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
    pub fn with_ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }
    pub fn with_run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
    pub fn with_max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub tenant_id: Option<Uuid>,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub dedupe_key: Option<String>,
    pub ordering_key: Option<String>,
    pub run_at: DateTime<Utc>,
    /// Claims so far, including the current one while running.
    pub attempts: i32,
    pub max_attempts: i32,
    pub status: JobStatus,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    tenant_id: Option<String>,
    queue: String,
    kind: String,
    payload: Json<serde_json::Value>,
    dedupe_key: Option<String>,
    ordering_key: Option<String>,
    run_at: DateTime<Utc>,
    attempts: i32,
    max_attempts: i32,
    status: String,
    locked_by: Option<String>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> StoreResult<Job> {
        Ok(Job {
            id: r.id,
            tenant_id: r.tenant_id.as_deref().map(parse_uuid).transpose()?,
            queue: r.queue,
            kind: r.kind,
            payload: r.payload.0,
            dedupe_key: r.dedupe_key,
            ordering_key: r.ordering_key,
            run_at: r.run_at,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            status: JobStatus::parse(&r.status)?,
            locked_by: r.locked_by,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const JOB_COLUMNS: &str = "id, tenant_id, queue, kind, payload, dedupe_key, ordering_key, run_at, \
     attempts, max_attempts, status, locked_by, last_error, created_at, updated_at";

/// Enqueues `job` inside `tx`. Returns `None` when a job with the same `dedupe_key` exists.
pub async fn enqueue(tx: &mut Tx, job: &NewJob, now: DateTime<Utc>) -> StoreResult<Option<i64>> {
    let id: Option<i64> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO jobs (tenant_id, queue, kind, payload, dedupe_key, ordering_key, run_at,
                               max_attempts, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ready', $9, $9)
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING id",
        )
        .bind(job.tenant_id.map(|t| t.to_string()))
        .bind(&job.queue)
        .bind(&job.kind)
        .bind(Json(&job.payload))
        .bind(&job.dedupe_key)
        .bind(&job.ordering_key)
        .bind(job.run_at.unwrap_or(now))
        .bind(job.max_attempts)
        .bind(now)
        .fetch_optional(conn)
        .await
    })?;
    Ok(id)
}

/// Delay before retry number `attempt` (1-based): exponential from `base`, capped, with full
/// jitter in the upper half so a burst of failures does not retry in lockstep.
pub fn retry_delay(attempt: i32, base: Duration, cap: Duration, rng: &mut impl Rng) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.clamp(1, 20).saturating_sub(1));
    let ceiling = exp.min(cap);
    let half = ceiling / 2;
    half + ceiling.saturating_sub(half).mul_f64(rng.random::<f64>())
}

/// Counts of jobs per status in one queue, for operators and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub ready: i64,
    pub running: i64,
    pub done: i64,
    pub dead: i64,
}

impl Store {
    /// Enqueues one job in its own transaction (for effects with no accompanying state change).
    pub async fn enqueue_job(&self, job: &NewJob, now: DateTime<Utc>) -> StoreResult<Option<i64>> {
        let mut tx = self.begin().await?;
        let id = enqueue(&mut tx, job, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Claims up to `limit` runnable jobs of `queue` for `worker` until `now + lease`.
    pub async fn claim_jobs(
        &self,
        queue: &str,
        worker: &str,
        lease: Duration,
        limit: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>> {
        let locked_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        // SQLite runs one writer at a time, so the single statement is already exclusive there.
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2,
                    attempts = attempts + 1, updated_at = $3
             WHERE id IN (
                 SELECT j.id FROM jobs j
                 WHERE j.queue = $4 AND j.run_at <= $3
                   AND (j.status = 'ready' OR (j.status = 'running' AND j.locked_until < $3))
                   AND (j.ordering_key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM jobs o
                        WHERE o.ordering_key = j.ordering_key AND o.id < j.id
                          AND o.status IN ('ready', 'running')))
                 ORDER BY j.run_at, j.id
                 LIMIT $5 {lock})
             RETURNING {JOB_COLUMNS}"
        );
        let rows: Vec<JobRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(worker)
                .bind(locked_until)
                .bind(now)
                .bind(queue)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        let mut jobs = rows.into_iter().map(Job::try_from).collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    /// Marks a claimed job done. `false` means the claim was lost (lease expired and re-claimed).
    pub async fn complete_job(&self, id: i64, worker: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, updated_at = $3
                 WHERE id = $1 AND locked_by = $2 AND status = 'running'",
            )
            .bind(id)
            .bind(worker)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Records a failed attempt. With `retry_at` and attempts left the job is ready again at
    /// that time; otherwise it is dead. Returns the new status, or `None` if the claim was lost.
    pub async fn fail_job(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<JobStatus>> {
        let status: Option<String> = on_pool!(self.db(), pool => {
            sqlx::query_scalar(
                "UPDATE jobs SET
                    status = CASE WHEN $4 AND attempts < max_attempts THEN 'ready' ELSE 'dead' END,
                    run_at = CASE WHEN $4 AND attempts < max_attempts THEN $5 ELSE run_at END,
                    last_error = $3, locked_by = NULL, locked_until = NULL, updated_at = $6
                 WHERE id = $1 AND locked_by = $2 AND status = 'running'
                 RETURNING status",
            )
            .bind(id)
            .bind(worker)
            .bind(error)
            .bind(retry_at.is_some())
            .bind(retry_at.unwrap_or(now))
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        status.as_deref().map(JobStatus::parse).transpose()
    }

    /// Gives a claimed job back, ready at `run_at`, without spending the attempt its claim
    /// counted (the handler could not try: an upstream's circuit was open). `false` means the
    /// claim was lost.
    pub async fn defer_job(
        &self,
        id: i64,
        worker: &str,
        reason: &str,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let deferred = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE jobs SET status = 'ready', attempts = attempts - 1, run_at = $4, last_error = $3,
                    locked_by = NULL, locked_until = NULL, updated_at = $5
                 WHERE id = $1 AND locked_by = $2 AND status = 'running'",
            )
            .bind(id)
            .bind(worker)
            .bind(reason)
            .bind(run_at)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(deferred == 1)
    }

    /// Puts a dead job back in the queue with a fresh attempt budget (operator action).
    pub async fn requeue_dead_job(&self, id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE jobs SET status = 'ready', attempts = 0, run_at = $2, updated_at = $2
                 WHERE id = $1 AND status = 'dead'",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    pub async fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobRow> = on_pool!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await)?;
        row.map(Job::try_from).transpose()
    }

    /// The payloads of a queue's jobs (any status) in enqueue order: what a feature put in its
    /// outbox, e.g. the events recorded for the webhook engine.
    pub async fn queued_job_payloads(&self, queue: &str) -> StoreResult<Vec<serde_json::Value>> {
        let rows: Vec<(Json<serde_json::Value>,)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT payload FROM jobs WHERE queue = $1 ORDER BY id").bind(queue).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(|(p,)| p.0).collect())
    }

    pub async fn queue_counts(&self, queue: &str) -> StoreResult<QueueCounts> {
        let rows: Vec<(String, i64)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs WHERE queue = $1 GROUP BY status")
                .bind(queue)
                .fetch_all(pool)
                .await
        })?;
        let mut counts = QueueCounts::default();
        for (status, n) in rows {
            match JobStatus::parse(&status)? {
                JobStatus::Ready => counts.ready = n,
                JobStatus::Running => counts.running = n,
                JobStatus::Done => counts.done = n,
                JobStatus::Dead => counts.dead = n,
            }
        }
        Ok(counts)
    }

    /// Deletes finished jobs last touched before `before` (retention).
    pub async fn purge_done_jobs(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM jobs WHERE status = 'done' AND updated_at < $1")
                .bind(before)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}
