//! Logs (`tracing`, pretty or JSON) and Prometheus metrics.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init_logging(config: &LogConfig) {
    let _ = tracing_subscriber::registry().with(log_layer(config, std::io::stdout)).try_init();
}

/// The log output `config` describes (filter and format), written to `writer`: stdout in
/// production, a buffer in the test that checks logs for PII.
pub fn log_layer<S, W>(config: &LogConfig, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_span_events(FmtSpan::NONE);
    match config.format {
        LogFormat::Json => layer.json().flatten_event(true).with_current_span(true).with_filter(filter).boxed(),
        LogFormat::Pretty => layer.compact().with_filter(filter).boxed(),
    }
}

/// The process-wide Prometheus recorder (metrics macros write to one global recorder).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .expect("static bucket list is not empty")
                // trck.002 reporting latency, around its 300 s p99 SLA (alert before it).
                .set_buckets_for_metric(
                    Matcher::Full("pix_trck002_report_latency_seconds".into()),
                    &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0, 600.0],
                )
                .expect("static bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding test); keep ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The route template a request matched (`/v1/dict/keys/{key}`), or `unmatched`: what logs and
/// metrics name a request by, since its path may carry personal data.
pub fn route(req: &Request) -> &str {
    req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str)
}

/// Counts requests and records latency by method, matched route and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = route(&req).to_owned();
    let response = next.run(req).await;
    let labels = [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}
