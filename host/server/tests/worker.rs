//! The job worker: retries with backoff, dead-letters what keeps failing, never loses a job,
//! defers without spending attempts while an upstream's circuit is open, and stops a handler
//! that runs past its timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pix_core::clock::SystemClock;
use pix_server::config::Config;
use pix_server::worker::{JobError, JobFuture, JobHandler, Worker};
use pix_store::jobs::{Job, JobStatus, NewJob};
use pix_store::testing::TestStore;
use tokio_util::sync::CancellationToken;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Fails `failures` times with `error(n)`, then succeeds; counts every attempt.
struct Flaky {
    failures: usize,
    error: fn(usize) -> JobError,
    attempts: AtomicUsize,
}

impl Flaky {
    /// An upstream answering 503: each run spends an attempt.
    fn upstream_503(failures: usize) -> Arc<Flaky> {
        Arc::new(Flaky { failures, error: |n| JobError::Retry(format!("upstream 503 #{n}")), attempts: 0.into() })
    }

    /// An upstream whose circuit is open: nothing is called, so no attempt is spent.
    fn behind_open_circuit(failures: usize) -> Arc<Flaky> {
        let error =
            |n| JobError::Deferred { reason: format!("circuit open #{n}"), retry_after: Duration::from_millis(5) };
        Arc::new(Flaky { failures, error, attempts: 0.into() })
    }
}

impl JobHandler for Flaky {
    fn handle<'a>(&'a self, _job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.failures { Err((self.error)(n)) } else { Ok(()) }
        })
    }
}

/// Sleeps far past the job timeout on its first `slow_attempts` attempts, then succeeds at once.
struct Sleepy {
    slow_attempts: usize,
    attempts: AtomicUsize,
}

impl JobHandler for Sleepy {
    fn handle<'a>(&'a self, _job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            if self.attempts.fetch_add(1, Ordering::SeqCst) < self.slow_attempts {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(())
        })
    }
}

async fn wait_for(db: &TestStore, id: i64, status: JobStatus) -> Job {
    for _ in 0..400 {
        let job = db.job(id).await.unwrap().unwrap();
        if job.status == status {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never reached {status:?}: {:?}", db.job(id).await.unwrap());
}

async fn check(db: TestStore) {
    let mut config = Config::default().workers;
    config.poll_interval_ms = 10;
    config.retry_base_ms = 10;
    config.retry_cap_ms = 40;
    let flaky = Flaky::upstream_503(3);
    let hopeless = Flaky::upstream_503(usize::MAX);
    let now = chrono::Utc::now();
    let recovers = db.enqueue_job(&NewJob::new("q", "flaky", serde_json::json!({})), now).await.unwrap().unwrap();
    let dies = db
        .enqueue_job(&NewJob::new("q", "hopeless", serde_json::json!({})).with_max_attempts(4), now)
        .await
        .unwrap()
        .unwrap();
    let orphan = db.enqueue_job(&NewJob::new("q", "unknown-kind", serde_json::json!({})), now).await.unwrap().unwrap();
    // An outage that outlasts the attempt budget: short-circuited runs do not spend it.
    let waiting = Flaky::behind_open_circuit(6);
    let waits = db
        .enqueue_job(&NewJob::new("q", "waiting", serde_json::json!({})).with_max_attempts(2), now)
        .await
        .unwrap()
        .unwrap();

    let shutdown = CancellationToken::new();
    let worker = Worker::new(db.store.clone(), Arc::new(SystemClock), "q", config)
        .handle("flaky", flaky.clone())
        .handle("hopeless", hopeless.clone())
        .handle("waiting", waiting.clone());
    let running = tokio::spawn(worker.run(shutdown.clone(), Duration::from_secs(5)));

    let done = wait_for(&db, recovers, JobStatus::Done).await;
    assert_eq!(done.attempts, 4, "three retries, then success");
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 4);
    let dead = wait_for(&db, dies, JobStatus::Dead).await;
    assert_eq!(hopeless.attempts.load(Ordering::SeqCst), 4, "stops at max_attempts");
    assert!(dead.last_error.unwrap().contains("upstream 503"));
    let orphan = wait_for(&db, orphan, JobStatus::Dead).await;
    assert!(orphan.last_error.unwrap().contains("no handler"), "unknown kinds are dead-lettered, not dropped");
    let waited = wait_for(&db, waits, JobStatus::Done).await;
    assert_eq!(waiting.attempts.load(Ordering::SeqCst), 7, "six deferrals past a budget of two, then success");
    assert_eq!(waited.attempts, 1, "only the run that called spent an attempt");
    assert_eq!(waited.last_error.as_deref(), Some("circuit open #5"));
    shutdown.cancel();
    running.await.unwrap();
}

async fn check_timeout(db: TestStore) {
    let mut config = Config::default().workers;
    config.poll_interval_ms = 10;
    config.retry_base_ms = 10;
    config.retry_cap_ms = 40;
    config.job_timeout_ms = 100;
    let once = Arc::new(Sleepy { slow_attempts: 1, attempts: AtomicUsize::new(0) });
    let always = Arc::new(Sleepy { slow_attempts: usize::MAX, attempts: AtomicUsize::new(0) });
    let now = chrono::Utc::now();
    let recovers = db.enqueue_job(&NewJob::new("q", "once", serde_json::json!({})), now).await.unwrap().unwrap();
    let hangs = db
        .enqueue_job(&NewJob::new("q", "always", serde_json::json!({})).with_max_attempts(2), now)
        .await
        .unwrap()
        .unwrap();

    let shutdown = CancellationToken::new();
    let worker = Worker::new(db.store.clone(), Arc::new(SystemClock), "q", config)
        .handle("once", once.clone())
        .handle("always", always.clone());
    let started = std::time::Instant::now();
    let running = tokio::spawn(worker.run(shutdown.clone(), Duration::from_secs(5)));

    let done = wait_for(&db, recovers, JobStatus::Done).await;
    assert_eq!(done.attempts, 2, "the timed-out attempt was retried");
    assert_eq!(once.attempts.load(Ordering::SeqCst), 2);
    let dead = wait_for(&db, hangs, JobStatus::Dead).await;
    assert_eq!(always.attempts.load(Ordering::SeqCst), 2, "a hung handler is retried up to max_attempts");
    assert_eq!(dead.last_error.as_deref(), Some("timed out after 100 ms"));
    assert!(started.elapsed() < Duration::from_secs(10), "the hour-long sleeps were cut short");
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_handler_past_its_timeout_is_retried() {
    check_timeout(TestStore::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_handler_past_its_timeout_is_retried() {
    if let Some(db) = TestStore::postgres().await {
        check_timeout(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retries_then_completes_or_dead_letters() {
    check(TestStore::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retries_then_completes_or_dead_letters() {
    if let Some(db) = TestStore::postgres().await {
        check(db).await;
    }
}

/// Yields once so that jobs interleave on the thread, then succeeds.
struct Yielding;

impl JobHandler for Yielding {
    fn handle<'a>(&'a self, _job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
    }
}

/// Records the parent of every `job` span as it is created.
#[derive(Clone, Default)]
struct JobSpanParents(Arc<Mutex<Vec<Option<String>>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for JobSpanParents {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() == "job" {
            let parent = ctx.span(id).and_then(|span| span.parent()).map(|p| format!("{}{:?}", p.name(), p.id()));
            self.0.lock().unwrap().push(parent);
        }
    }
}

/// One thread, so interleaved jobs share it: a span guard held across an `.await` would make each
/// new job a child of the one that was suspended there (`job:job:job:…` in the log).
#[tokio::test]
async fn concurrent_jobs_get_sibling_spans_not_nested_ones() {
    let parents = JobSpanParents::default();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(parents.clone()));
    let db = TestStore::sqlite().await;
    let mut config = Config::default().workers;
    config.poll_interval_ms = 10;
    config.concurrency = 4;
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(db.enqueue_job(&NewJob::new("q", "yield", serde_json::json!({})), now).await.unwrap().unwrap());
    }
    let shutdown = CancellationToken::new();
    let worker = Worker::new(db.store.clone(), Arc::new(SystemClock), "q", config).handle("yield", Arc::new(Yielding));
    let running = tokio::spawn(worker.run(shutdown.clone(), Duration::from_secs(5)));
    for id in ids {
        wait_for(&db, id, JobStatus::Done).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    let parents = parents.0.lock().unwrap().clone();
    assert_eq!(parents.len(), 6, "one span per job");
    assert!(parents.iter().all(Option::is_none), "job spans must not nest: {parents:?}");
}
