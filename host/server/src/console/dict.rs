//! DICT: the VSync state per key type, the reconciliation jobs with their counts, and the open
//! claims with their deadlines, for one tenant (the same store queries as `/v1/dict/*`).

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use maud::{Markup, html};
use pix_core::dict::ClaimStatus;
use pix_core::pix_key::PixKeyType;
use pix_store::dict::{ClaimFilter, ReconciliationFilter};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{self, opt_time, time};
use super::{ConsoleResult, Operator};
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/dict", get(page))
}

#[derive(Deserialize)]
pub struct DictQuery {
    tenant: Option<Uuid>,
}

async fn page(State(state): State<AppState>, operator: Operator, Query(q): Query<DictQuery>) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.tenant(&state, q.tenant).await?;
    let tenants = if operator.viewer.is_admin() { state.store.list_tenants().await? } else { Vec::new() };
    let now = state.clock.now();
    let mut vsync = Vec::new();
    for kt in PixKeyType::ALL {
        vsync.push(state.store.vsync_state(tenant.id, kt.as_str(), now).await?);
    }
    let jobs_filter = ReconciliationFilter { descending: true, ..Default::default() };
    let (jobs, jobs_total) = state.store.list_reconciliation_jobs(tenant.id, &jobs_filter, 50, 0).await?;
    let mut claims = Vec::new();
    for status in [ClaimStatus::Open, ClaimStatus::WaitingResolution, ClaimStatus::Confirmed] {
        let filter = ClaimFilter { status: Some(status.as_str().into()), ..Default::default() };
        claims.extend(state.store.list_dict_claims(tenant.id, &filter, 100, 0).await?.0);
    }
    claims.sort_by_key(|c| c.resolution_period_end);
    let body = html! {
        (view::tenant_picker(&operator, &tenants, tenant.id, "/console/dict"))
        h2 { "VSync per key type" }
        table #vsync {
            thead { tr { th { "Key type" } th { "Status" } th { "Local VSync" } th { "DICT's VSync" } th { "Last check" } th { "Last full reconciliation" } } }
            tbody {
                @for v in &vsync {
                    tr {
                        td { (v.key_type) }
                        td { span class=(if v.last_sync_status == "SYNCED" { "badge good" } else { "badge bad" }) { (v.last_sync_status) } }
                        td { code { (v.local_vsync) } }
                        td { code { (v.remote_vsync.as_deref().unwrap_or("—")) } }
                        td { (opt_time(v.last_sync_check)) }
                        td { (opt_time(v.last_full_reconciliation)) }
                    }
                }
            }
        }
        h2 { "Reconciliation jobs (" (jobs_total) ", newest 50)" }
        table {
            thead { tr { th { "Created" } th { "Type" } th { "Key type" } th { "Status" } th.num { "Items" } th.num { "Added" }
                th.num { "Removed" } th.num { "Repaired" } th.num { "Orphans" } th { "Error" } } }
            tbody {
                @for j in &jobs {
                    tr {
                        td { (time(j.created_at)) }
                        td { (j.job_type) }
                        td { (j.key_type) }
                        td { (j.status.as_str()) }
                        td.num { (j.processed_items) "/" (j.total_items) }
                        td.num { (j.entries_added) }
                        td.num { (j.entries_removed) }
                        td.num { (j.entries_repaired) }
                        td.num { (j.orphan_entries) }
                        td { (j.error_message.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Open claims (" (claims.len()) ")" }
        table {
            thead { tr { th { "Key" } th { "Type" } th { "Role" } th { "Status" } th { "Resolution deadline" } th { "Completion deadline" } } }
            tbody {
                @for c in &claims {
                    tr {
                        td { code { (c.key) } " (" (c.key_type) ")" }
                        td { (c.claim_type) }
                        td { (c.role) }
                        td { (c.status) }
                        td { (time(c.resolution_period_end)) @if c.resolution_period_end < now { " " span.badge.bad { "passed" } } }
                        td { (opt_time(c.completion_period_end)) }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console/dict", "DICT", body))
}
