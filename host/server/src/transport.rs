//! The main HTTP listener: hyper with a header-read timeout (a client trickling its headers —
//! slowloris — or sending nothing at all is cut off) and a cap on open connections (one beyond it
//! is closed at once, before anything is read). Graceful: on shutdown, stop accepting, let
//! in-flight requests finish.
//!
//! HTTP/1.1 only: hyper's version sniffing (`auto`) waits for the first bytes without any timer,
//! so a silent client would hold a connection slot forever. HTTP/2 belongs to the TLS-terminating
//! proxy in front.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Limits of the listener (`server.header_read_timeout_ms`, `server.max_connections`).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl HttpLimits {
    pub fn from_config(config: &Config) -> HttpLimits {
        HttpLimits { header_read_timeout: config.header_read_timeout(), max_connections: config.server.max_connections }
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits::from_config(&Config::default())
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` fires; requests already accepted
/// are answered first.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    limits: HttpLimits,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Per-connection failures (reset before accept) and fd exhaustion: keep
                    // serving; back off briefly on the latter so the loop does not spin.
                    tracing::warn!(error = %e, "accept failed");
                    if !matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total").increment(1);
            tracing::debug!(%peer, "connection refused: server.max_connections reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
