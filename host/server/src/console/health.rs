//! Health: for an admin, readiness, the depth of every job queue, job failures, every tenant's
//! upstream circuit breakers and the numbers `/metrics` exports (read from the same Prometheus
//! recorder); for a tenant operator, its own circuit breakers only.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use pix_integrations::BreakerState;

use super::session::Viewer;
use super::view;
use super::{ConsoleResult, Operator};
use crate::app::AppState;
use crate::integrations::{BreakerReading, export_breaker_metrics};

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(page))
}

/// The queues the workers of `serve` drain.
const QUEUES: &[&str] =
    &["default", pix_store::inbound::INBOUND_QUEUE, pix_store::events::WEBHOOK_QUEUE, crate::dict::DICT_QUEUE];

/// `name{labels} value` lines of the exposition format (comments and histograms' buckets left out).
fn samples(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter(|l| !l.starts_with('#') && !l.contains("_bucket{")).filter_map(|l| l.rsplit_once(' ')).collect()
}

fn state_badge(state: BreakerState) -> Markup {
    let class = match state {
        BreakerState::Closed => "badge good",
        BreakerState::Open => "badge bad",
        BreakerState::HalfOpen => "badge",
    };
    html! { span class=(class) { (state.as_str()) } }
}

/// The circuit breakers of the given readings, with the tenant's name.
async fn breakers_table(state: &AppState, readings: &[BreakerReading]) -> ConsoleResult<Markup> {
    let tenants = state.store.list_tenants().await?;
    let name =
        |id: uuid::Uuid| tenants.iter().find(|t| t.id == id).map(|t| t.name.clone()).unwrap_or_else(|| id.to_string());
    Ok(html! {
        h2 { "Upstream circuit breakers" }
        @if readings.is_empty() {
            p.muted #no-breakers { "No upstream client has been built since this process started (they are built on a tenant's first call), so every breaker is closed." }
        } @else {
            table #breakers {
                thead { tr { th { "Tenant" } th { "Upstream" } th { "State" } } }
                tbody {
                    @for r in readings {
                        tr data-tenant=(r.tenant) data-upstream=(r.upstream.to_string()) {
                            td { (name(r.tenant)) } td { (r.upstream.to_string()) } td { (state_badge(r.state)) }
                        }
                    }
                }
            }
            p.muted { "Per tenant and upstream, in this process: closed (calls flow), open (calls refused until the cooldown ends), half_open (one probe at a time). Exported as "
                code { "pix_upstream_circuit_breaker_state" } " in /metrics." }
        }
    })
}

async fn page(State(state): State<AppState>, operator: Operator) -> ConsoleResult<Markup> {
    export_breaker_metrics(&state.integrations);
    let readings = state.integrations.breaker_states();
    if let Viewer::Tenant(own) = &operator.viewer {
        // A tenant operator sees its own breakers, never the process-wide numbers.
        let own: Vec<BreakerReading> = readings.into_iter().filter(|r| r.tenant == own.id).collect();
        let body = breakers_table(&state, &own).await?;
        return Ok(view::page(&operator, "/console/health", "Health", body));
    }
    let ready = state.store.readiness().await.is_ok();
    let mut queues = Vec::new();
    for queue in QUEUES {
        queues.push((*queue, state.store.queue_counts(queue).await?));
    }
    let rendered = state.metrics.render();
    let all = samples(&rendered);
    let failures: Vec<&(&str, &str)> = all
        .iter()
        .filter(|(name, _)| name.starts_with("jobs_processed_total") && !name.contains("outcome=\"ok\""))
        .collect();
    let breakers = breakers_table(&state, &readings).await?;
    let body = html! {
        div.cards {
            div.card { div.big { (if ready { "ready" } else { "not ready" }) } "database and migrations (/readyz)" }
            div.card { div.big { (state.store.backend().as_str()) } "storage backend" }
        }
        h2 { "Job queues" }
        table #queues {
            thead { tr { th { "Queue" } th.num { "Ready" } th.num { "Running" } th.num { "Dead" } th.num { "Done" } } }
            tbody {
                @for (queue, c) in &queues {
                    tr { td { (queue) } td.num { (c.ready) } td.num { (c.running) }
                         td.num { @if c.dead > 0 { span.badge.bad { (c.dead) } } @else { (c.dead) } } td.num { (c.done) } }
                }
            }
        }
        h2 { "Job failures since start" }
        @if failures.is_empty() { p.muted { "None recorded by this process." } }
        table {
            tbody { @for (name, value) in &failures { tr { td { code { (name) } } td.num { (value) } } } }
        }
        (breakers)
        h2 { "Metrics (/metrics, this process)" }
        table {
            tbody { @for (name, value) in &all { tr { td { code { (name) } } td.num { (value) } } } }
        }
    };
    Ok(view::page(&operator, "/console/health", "Health", body))
}
