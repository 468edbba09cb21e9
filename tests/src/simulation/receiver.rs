//! The institution's webhook receiver: records every event the host delivers (by `webhook-id`)
//! and, while the history runs, refuses some attempts (a 503) so that deliveries are retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone)]
struct Shared {
    /// Event ids answered 2xx, in arrival order.
    delivered: Arc<Mutex<Vec<String>>>,
    flaky: Arc<AtomicBool>,
    rng: Arc<Mutex<StdRng>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(seed: u64) -> anyhow::Result<Receiver> {
        let shared = Shared {
            delivered: Arc::default(),
            flaky: Arc::new(AtomicBool::new(true)),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed))),
        };
        let app = axum::Router::new().fallback(receive).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { url, shared, task })
    }

    /// From now on every attempt is accepted.
    pub fn heal(&self) {
        self.shared.flaky.store(false, Ordering::SeqCst);
    }

    /// Event ids accepted, in arrival order.
    pub fn delivered(&self) -> Vec<String> {
        self.shared.delivered.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap) -> StatusCode {
    let refuse =
        shared.flaky.load(Ordering::SeqCst) && shared.rng.lock().unwrap_or_else(|e| e.into_inner()).random_bool(0.2);
    if refuse {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    shared.delivered.lock().unwrap_or_else(|e| e.into_inner()).push(id);
    StatusCode::NO_CONTENT
}
