//! Background job workers: claim jobs from a queue, run their handler, record the outcome.
//!
//! Handlers must be idempotent: delivery is at least once (a worker that dies mid-job leaves a
//! lease that expires, and the job runs again). Retryable failures come back after an exponential
//! delay with jitter; permanent failures and exhausted jobs go to `dead` for an operator. A
//! handler that runs past `workers.job_timeout_ms` is stopped and retried like any retryable
//! failure.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use pix_core::clock::Clock;
use pix_store::Store;
use pix_store::jobs::{Job, retry_delay};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::WorkerConfig;

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again later (an upstream timeout, a 5xx…).
    #[error("retryable: {0}")]
    Retry(String),
    /// Try again later without spending an attempt: an upstream's circuit breaker refused the
    /// call, so nothing was tried. A long outage makes jobs wait for the upstream instead of
    /// dying; the breaker's probes, which do call, still count.
    #[error("deferred for {retry_after:?}: {reason}")]
    Deferred { reason: String, retry_after: Duration },
    /// Retrying cannot help (bad payload, business rejection).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A refusal is final; a short-circuited call is deferred; anything else (an upstream, the
/// database, an unknown outcome) is retried.
impl From<pix_app::AppError> for JobError {
    fn from(e: pix_app::AppError) -> JobError {
        if e.is_permanent() {
            JobError::Permanent(e.to_string())
        } else if let Some(retry_after) = e.short_circuited() {
            JobError::Deferred { reason: e.to_string(), retry_after }
        } else {
            JobError::Retry(e.to_string())
        }
    }
}

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send + 'a>>;

/// Runs one kind of job.
pub trait JobHandler: Send + Sync {
    fn handle<'a>(&'a self, job: &'a Job) -> JobFuture<'a>;
}

/// A worker for one queue, with a handler per job kind.
pub struct Worker {
    store: Store,
    clock: Arc<dyn Clock>,
    queue: String,
    id: String,
    config: WorkerConfig,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Worker {
    pub fn new(store: Store, clock: Arc<dyn Clock>, queue: &str, config: WorkerConfig) -> Worker {
        let id = format!("{}-{}-{}", hostname(), std::process::id(), pix_core::ids::new_id().simple());
        Worker { store, clock, queue: queue.to_owned(), id, config, handlers: HashMap::new() }
    }

    pub fn handle(mut self, kind: &str, handler: Arc<dyn JobHandler>) -> Worker {
        self.handlers.insert(kind.to_owned(), handler);
        self
    }

    /// Runs until `shutdown` fires, then waits (up to `grace`) for the jobs it is running.
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let worker = Arc::new(self);
        let mut running = JoinSet::new();
        let poll = Duration::from_millis(worker.config.poll_interval_ms);
        tracing::info!(queue = %worker.queue, worker = %worker.id, "worker started");
        while !shutdown.is_cancelled() {
            while running.try_join_next().is_some() {}
            let free = worker.config.concurrency.saturating_sub(running.len());
            let claimed = if free == 0 {
                Vec::new()
            } else {
                let lease = Duration::from_secs(worker.config.lease_secs);
                match worker.store.claim_jobs(&worker.queue, &worker.id, lease, free as i64, worker.clock.now()).await {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::error!(error = %e, queue = %worker.queue, "claiming jobs failed");
                        Vec::new()
                    }
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(poll) => {}
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
                continue;
            }
            for job in claimed {
                let worker = worker.clone();
                running.spawn(async move { worker.execute(job).await });
            }
        }
        if tokio::time::timeout(grace, async { while running.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!(queue = %worker.queue, left = running.len(), "shutdown grace elapsed; leases will expire");
        }
        tracing::info!(queue = %worker.queue, "worker stopped");
    }

    /// Runs one job inside its span. `instrument` enters the span only while this future is
    /// polled; a guard from `span.enter()` held across an `.await` would stay entered on the
    /// thread while other jobs run there, nesting their spans (`job:job:job:…`).
    async fn execute(&self, job: Job) {
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
        self.run_job(job).instrument(span).await;
    }

    async fn run_job(&self, job: Job) {
        let outcome = match self.handlers.get(&job.kind) {
            Some(handler) => self.handle_within_timeout(handler.as_ref(), &job).await,
            None => Err(JobError::Permanent(format!("no handler for job kind {:?}", job.kind))),
        };
        let now = self.clock.now();
        let result = match &outcome {
            Ok(()) => self.store.complete_job(job.id, &self.id, now).await.map(|ok| ok.then_some("done")),
            Err(JobError::Retry(e)) => {
                let base = Duration::from_millis(self.config.retry_base_ms);
                let cap = Duration::from_millis(self.config.retry_cap_ms);
                let delay = retry_delay(job.attempts, base, cap, &mut rand::rng());
                let retry_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                self.store.fail_job(job.id, &self.id, e, Some(retry_at), now).await.map(|s| s.map(status_label))
            }
            Err(JobError::Deferred { reason, retry_after }) => {
                // Jittered up to half again, so the jobs an outage held back do not all come
                // back at the instant the breaker lets one probe through.
                let delay = retry_after.mul_f64(1.0 + rand::random::<f64>() / 2.0);
                let retry_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                self.store.defer_job(job.id, &self.id, reason, retry_at, now).await.map(|ok| ok.then_some("deferred"))
            }
            Err(JobError::Permanent(e)) => {
                self.store.fail_job(job.id, &self.id, e, None, now).await.map(|s| s.map(status_label))
            }
        };
        let label = match result {
            Ok(Some(label)) => label,
            Ok(None) => "lost_lease",
            Err(e) => {
                tracing::error!(error = %e, "recording job outcome failed; the lease will expire and it runs again");
                "unrecorded"
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, outcome = label, "job failed");
        }
        metrics::counter!("jobs_processed_total", "queue" => self.queue.clone(), "kind" => job.kind.clone(), "outcome" => label)
            .increment(1);
    }

    /// The handler's outcome, or a retryable failure once `job_timeout_ms` passes. The timeout is
    /// shorter than the lease (checked at start), so a hung handler gives its job back through
    /// the retry schedule before another worker could claim it while this one still runs it.
    /// Dropping the handler mid-way is safe for the same reason a crash is: handlers are
    /// idempotent and an ambiguous upstream call is resolved by reading back on the retry.
    async fn handle_within_timeout(&self, handler: &dyn JobHandler, job: &Job) -> Result<(), JobError> {
        let limit = Duration::from_millis(self.config.job_timeout_ms);
        match tokio::time::timeout(limit, handler.handle(job)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                metrics::counter!("jobs_timed_out_total", "queue" => self.queue.clone(), "kind" => job.kind.clone())
                    .increment(1);
                tracing::warn!(timeout_ms = self.config.job_timeout_ms, "job handler timed out; it will be retried");
                Err(JobError::Retry(format!("timed out after {} ms", self.config.job_timeout_ms)))
            }
        }
    }
}

fn status_label(status: pix_store::jobs::JobStatus) -> &'static str {
    match status {
        pix_store::jobs::JobStatus::Ready => "retry",
        pix_store::jobs::JobStatus::Dead => "dead",
        pix_store::jobs::JobStatus::Running => "running",
        pix_store::jobs::JobStatus::Done => "done",
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "pix-host".into())
}

/// Retention housekeeping: expired idempotency keys and old finished jobs.
pub async fn housekeeping(store: Store, clock: Arc<dyn Clock>, every: Duration, shutdown: CancellationToken) {
    loop {
        let now = clock.now();
        match store.purge_expired_idempotency_keys(now).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
        match store.purge_done_jobs(now - chrono::Duration::days(7)).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "finished jobs older than 7 days removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging finished jobs failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
