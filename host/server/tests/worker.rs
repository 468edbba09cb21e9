//! The job worker: retries with backoff, dead-letters what keeps failing, never loses a job.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pix_core::clock::SystemClock;
use pix_server::config::Config;
use pix_server::worker::{JobError, JobFuture, JobHandler, Worker};
use pix_store::jobs::{Job, JobStatus, NewJob};
use pix_store::testing::TestStore;
use tokio_util::sync::CancellationToken;

/// Fails `failures` times with a retryable error, then succeeds; counts every attempt.
struct Flaky {
    failures: usize,
    attempts: AtomicUsize,
}

impl JobHandler for Flaky {
    fn handle<'a>(&'a self, _job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.failures { Err(JobError::Retry(format!("upstream 503 #{n}"))) } else { Ok(()) }
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
    let flaky = Arc::new(Flaky { failures: 3, attempts: AtomicUsize::new(0) });
    let hopeless = Arc::new(Flaky { failures: usize::MAX, attempts: AtomicUsize::new(0) });
    let now = chrono::Utc::now();
    let recovers = db.enqueue_job(&NewJob::new("q", "flaky", serde_json::json!({})), now).await.unwrap().unwrap();
    let dies = db
        .enqueue_job(&NewJob::new("q", "hopeless", serde_json::json!({})).with_max_attempts(4), now)
        .await
        .unwrap()
        .unwrap();
    let orphan = db.enqueue_job(&NewJob::new("q", "unknown-kind", serde_json::json!({})), now).await.unwrap().unwrap();

    let shutdown = CancellationToken::new();
    let worker = Worker::new(db.store.clone(), Arc::new(SystemClock), "q", config)
        .handle("flaky", flaky.clone())
        .handle("hopeless", hopeless.clone());
    let running = tokio::spawn(worker.run(shutdown.clone(), Duration::from_secs(5)));

    let done = wait_for(&db, recovers, JobStatus::Done).await;
    assert_eq!(done.attempts, 4, "three retries, then success");
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 4);
    let dead = wait_for(&db, dies, JobStatus::Dead).await;
    assert_eq!(hopeless.attempts.load(Ordering::SeqCst), 4, "stops at max_attempts");
    assert!(dead.last_error.unwrap().contains("upstream 503"));
    let orphan = wait_for(&db, orphan, JobStatus::Dead).await;
    assert!(orphan.last_error.unwrap().contains("no handler"), "unknown kinds are dead-lettered, not dropped");
    shutdown.cancel();
    running.await.unwrap();
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
