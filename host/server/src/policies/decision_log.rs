//! The policy decision log, written in batches: `decide` hands its record to a bounded channel
//! and a background writer inserts what has gathered in one transaction (on size or after a short
//! interval). A full channel falls back to a direct insert, so back-pressure slows decisions down
//! rather than dropping records.
//!
//! Durability trade-off: records still in the channel when the process dies are lost. The log is
//! for audit, shadow comparison and replay; the money facts a decision produced (a transfer's fee
//! and fraud verdict) are stored on the transfer itself.

use std::time::Duration;

use pix_store::Store;
use pix_store::policies::Decision;
use tokio::sync::{mpsc, oneshot};

/// Records waiting to be written at most; beyond this `record` inserts directly.
const CHANNEL_CAPACITY: usize = 4_096;
/// Records per transaction at most.
const MAX_BATCH: usize = 256;
/// How long the writer waits for a batch to fill once it holds a record.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

enum Command {
    Record(Box<Decision>),
    /// Answered once every record sent before it is written.
    Flush(oneshot::Sender<()>),
}

pub struct DecisionLog {
    store: Store,
    sender: mpsc::Sender<Command>,
}

impl DecisionLog {
    /// Starts the writer on the current Tokio runtime; it stops when the log is dropped, after
    /// writing what it holds.
    pub fn spawn(store: Store) -> DecisionLog {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(write_batches(store.clone(), receiver));
        DecisionLog { store, sender }
    }

    /// Queues `decision` for the writer, or inserts it at once when the queue is full or gone.
    pub async fn record(&self, decision: Decision) {
        let decision = match self.sender.try_send(Command::Record(Box::new(decision))) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(Command::Record(d)))
            | Err(mpsc::error::TrySendError::Closed(Command::Record(d))) => d,
            Err(_) => unreachable!("only records are sent here"),
        };
        metrics::counter!("pix_policy_decision_direct_writes_total").increment(1);
        if let Err(e) = self.store.record_policy_decision(&decision).await {
            // The decision stands; only its record is missing.
            tracing::error!(error = %e, "could not record policy decision");
        }
    }

    /// Waits until every decision recorded so far is in the database (before reading the log,
    /// and on shutdown).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Command>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        take(first, &mut batch, &mut waiters);
        let deadline = tokio::time::sleep(FLUSH_INTERVAL);
        tokio::pin!(deadline);
        while batch.len() < MAX_BATCH && waiters.is_empty() {
            tokio::select! {
                command = receiver.recv() => match command {
                    Some(command) => take(command, &mut batch, &mut waiters),
                    None => break,
                },
                () = &mut deadline => break,
            }
        }
        if !batch.is_empty()
            && let Err(e) = store.record_policy_decisions(&batch).await
        {
            tracing::error!(error = %e, lost = batch.len(), "could not record a batch of policy decisions");
        }
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

fn take(command: Command, batch: &mut Vec<Decision>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match command {
        Command::Record(decision) => batch.push(*decision),
        Command::Flush(waiter) => waiters.push(waiter),
    }
}

#[cfg(test)]
mod tests {
    use pix_store::testing::TestStore;
    use uuid::Uuid;

    use super::*;

    fn decision(tenant: Uuid, n: i64) -> Decision {
        Decision {
            id: 0,
            tenant_id: tenant,
            kind: "fee".into(),
            sha256: "abc".into(),
            input_sha256: format!("input-{n}"),
            input: serde_json::json!({ "n": n }),
            output: serde_json::json!({ "fee": n }),
            outcome: "policy".into(),
            duration_us: 1,
            shadow_sha256: None,
            shadow_output: None,
            shadow_agrees: None,
            decided_at: chrono::Utc::now(),
        }
    }

    async fn every_record_is_written_once_and_flush_waits_for_them(db: TestStore) {
        let new = pix_store::tenants::NewTenant {
            name: "acme".into(),
            ispb: "12345678".into(),
            midaz_organization_id: None,
            midaz_ledger_id: None,
            settings: serde_json::json!({}),
            btg: None,
        };
        let tenant = db.create_tenant(new, chrono::Utc::now()).await.unwrap().id;
        let log = DecisionLog::spawn(db.store.clone());
        for n in 0..600 {
            log.record(decision(tenant, n)).await;
        }
        log.flush().await;
        let written = db.store.recent_policy_decisions(tenant, "fee", 10_000).await.unwrap();
        assert_eq!(written.len(), 600, "every queued decision is written, none twice");
        let mut inputs: Vec<_> = written.iter().map(|d| d.input["n"].as_i64().unwrap()).collect();
        inputs.sort_unstable();
        assert_eq!(inputs, (0..600).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn batches_on_sqlite() {
        every_record_is_written_once_and_flush_waits_for_them(TestStore::sqlite().await).await;
    }

    #[tokio::test]
    async fn batches_on_postgres() {
        let Some(db) = TestStore::postgres().await else { return };
        every_record_is_written_once_and_flush_waits_for_them(db).await;
    }
}
