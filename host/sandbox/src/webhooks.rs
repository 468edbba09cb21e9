//! BTG → host webhook delivery: envelope `{webhookId, event, data}`, HMAC-SHA256 signature over
//! `"{timestamp}.{body}"`, retries with exponential backoff until a 2xx, and the webhook faults
//! (drop, duplicate, reorder).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::sim::{FaultKind, FaultTarget, Sim};

/// Header names and scheme (documented in docs/integrations.md).
pub const HEADER_SIGNATURE: &str = "x-signature";
/// Unix seconds of the attempt; part of the signed string.
pub const HEADER_TIMESTAMP: &str = "x-signature-timestamp";
/// Equals `webhookId`; stable across retries.
pub const HEADER_CORRELATION: &str = "x-correlation-id";

/// `sha256=` + hex(HMAC-SHA256(secret, "{timestamp}.{body}")).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Where webhooks go.
#[derive(Clone, Debug, Default)]
pub struct WebhookTarget {
    /// Host webhook URL; events wait (retrying) while it is unset.
    pub url: Option<String>,
    /// HMAC secret.
    pub secret: String,
}

/// One delivery attempt, for `/_control/btg/webhooks`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Event id.
    pub webhook_id: String,
    /// Event name.
    pub event: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// HTTP status, if any.
    pub status: Option<u16>,
    /// `delivered`, `failed`, `dropped`, `duplicated`, `held`.
    pub outcome: String,
    /// When.
    pub at: DateTime<Utc>,
}

struct Outgoing {
    /// The participant the event is about: its own target if it has one, else the default.
    ispb: Option<String>,
    webhook_id: String,
    event: String,
    body: Vec<u8>,
}

/// Retry schedule for deliveries.
#[derive(Clone, Copy, Debug)]
pub struct RetrySchedule {
    /// First retry delay.
    pub base: Duration,
    /// Cap.
    pub max: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
}

/// The dispatcher handle.
pub struct Webhooks {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Default target (the host institution).
    pub target: Arc<Mutex<WebhookTarget>>,
    /// Targets of further participants (other institutions served by the same host), by ISPB.
    pub participants: Arc<Mutex<HashMap<String, WebhookTarget>>>,
    /// Delivery log.
    pub log: Arc<Mutex<Vec<Delivery>>>,
    /// Events emitted and not yet delivered, dropped or given up on (queued, held for a
    /// reorder, or between retries).
    pub outstanding: Arc<AtomicUsize>,
    sim: Arc<Sim>,
}

impl Webhooks {
    /// Starts the dispatcher task.
    pub fn start(sim: Arc<Sim>, target: WebhookTarget, schedule: RetrySchedule) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let target = Arc::new(Mutex::new(target));
        let participants = Arc::new(Mutex::new(HashMap::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let outstanding = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // Below the host's header-read timeout, which also closes idle keep-alive
            // connections: never reuse one the host is about to close.
            .pool_idle_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        tokio::spawn(dispatch(
            rx,
            Dispatcher {
                client,
                target: target.clone(),
                participants: participants.clone(),
                log: log.clone(),
                outstanding: outstanding.clone(),
                sim: sim.clone(),
                schedule,
            },
        ));
        Webhooks { tx, target, participants, log, outstanding, sim }
    }

    /// Queues an event about participant `ispb` (to its own target when it has one); returns its
    /// webhook id.
    pub fn emit(&self, ispb: Option<&str>, event: &str, data: Value) -> String {
        let webhook_id = self.sim.uuid().to_string();
        let body = json!({"webhookId": webhook_id, "event": event, "data": data});
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // The receiver lives as long as the runtime; a send error only happens at shutdown.
        let outgoing =
            Outgoing { ispb: ispb.map(str::to_owned), webhook_id: webhook_id.clone(), event: event.to_owned(), body };
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(outgoing);
        webhook_id
    }
}

#[derive(Clone)]
struct Dispatcher {
    client: reqwest::Client,
    target: Arc<Mutex<WebhookTarget>>,
    participants: Arc<Mutex<HashMap<String, WebhookTarget>>>,
    log: Arc<Mutex<Vec<Delivery>>>,
    outstanding: Arc<AtomicUsize>,
    sim: Arc<Sim>,
    schedule: RetrySchedule,
}

impl Dispatcher {
    fn record(&self, o: &Outgoing, attempt: u32, status: Option<u16>, outcome: &str) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(Delivery {
            webhook_id: o.webhook_id.clone(),
            event: o.event.clone(),
            attempt,
            status,
            outcome: outcome.to_owned(),
            at: Utc::now(),
        });
    }

    async fn deliver(self, o: Arc<Outgoing>) {
        for attempt in 1..=self.schedule.max_attempts {
            let own = o
                .ispb
                .as_ref()
                .and_then(|ispb| self.participants.lock().unwrap_or_else(|e| e.into_inner()).get(ispb).cloned());
            let target = own.unwrap_or_else(|| self.target.lock().unwrap_or_else(|e| e.into_inner()).clone());
            let status = match &target.url {
                None => None,
                Some(url) => {
                    // Signed with wall-clock time, which the receiver checks against its own clock.
                    let ts = Utc::now().timestamp();
                    let result = self
                        .client
                        .post(url)
                        .header("content-type", "application/json")
                        .header(HEADER_CORRELATION, &o.webhook_id)
                        .header(HEADER_TIMESTAMP, ts.to_string())
                        .header(HEADER_SIGNATURE, sign(target.secret.as_bytes(), ts, &o.body))
                        .body(o.body.clone())
                        .send()
                        .await;
                    result.ok().map(|r| r.status().as_u16())
                }
            };
            if status.is_some_and(|s| (200..300).contains(&s)) {
                self.record(&o, attempt, status, "delivered");
                self.settled();
                return;
            }
            self.record(&o, attempt, status, "failed");
            let exp = self.schedule.base.saturating_mul(1 << (attempt - 1).min(16));
            tokio::time::sleep(exp.min(self.schedule.max)).await;
        }
        tracing::warn!(webhook_id = %o.webhook_id, event = %o.event, "webhook undeliverable");
        self.settled();
    }

    /// One event (or copy of a duplicated one) is no longer on its way.
    fn settled(&self) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }

    fn send(&self, o: Arc<Outgoing>) {
        tokio::spawn(self.clone().deliver(o));
    }

    /// Sends a held event a little later, so that the one released before it arrives first.
    fn send_later(&self, o: Arc<Outgoing>) {
        let d = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            d.deliver(o).await;
        });
    }
}

async fn dispatch(mut rx: mpsc::UnboundedReceiver<Outgoing>, d: Dispatcher) {
    let mut held: Option<Arc<Outgoing>> = None;
    loop {
        let next = if held.is_some() {
            // A held event goes out after the next one, or on its own after a short wait.
            match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Some(h) = held.take() {
                        d.send(h);
                    }
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(o) = next else { return };
        let o = Arc::new(o);
        match d.sim.take_fault(FaultTarget::Webhooks, "POST", &o.event) {
            Some(FaultKind::Drop) => {
                d.record(&o, 0, None, "dropped");
                d.settled();
            }
            Some(FaultKind::Duplicate) => {
                d.record(&o, 0, None, "duplicated");
                d.outstanding.fetch_add(1, Ordering::SeqCst);
                d.send(o.clone());
                d.send(o);
            }
            Some(FaultKind::Reorder) if held.is_none() => {
                d.record(&o, 0, None, "held");
                held = Some(o);
                continue;
            }
            _ => d.send(o),
        }
        if let Some(h) = held.take() {
            d.send_later(h);
        }
    }
}
