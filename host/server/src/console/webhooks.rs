//! Webhooks: the tenant's endpoints (never their secrets) and, for admins, deliveries by status
//! (failed ones are the dead letters) with redelivery, through the `/v1/admin/webhooks` handlers.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{self, csrf, opt_time, time};
use super::{ConsoleResult, Operator};
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::extract::{AppPath, AppQuery};
use crate::webhooks::admin::{self, DeliveryQuery};

pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks", get(page)).route("/webhooks/redeliver", post(redeliver))
}

#[derive(Deserialize)]
pub struct WebhookQuery {
    tenant: Option<Uuid>,
    /// pending, delivered or failed (default: failed, the dead letters).
    status: Option<String>,
    notice: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<WebhookQuery>,
) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.tenant(&state, q.tenant).await?;
    let tenants = if operator.viewer.is_admin() { state.store.list_tenants().await? } else { Vec::new() };
    let (endpoints, _) = state.store.list_webhook_endpoints(tenant.id, 100, 0).await?;
    let status = q.status.clone().unwrap_or_else(|| "failed".into());
    let deliveries = if let Ok(credential_id) = operator.viewer.require_admin() {
        let query = DeliveryQuery {
            status: Some(status.clone()),
            tenant_id: Some(tenant.id),
            endpoint_id: None,
            flow_type: None,
            entity_type: None,
            entity_id: None,
            page: None,
            limit: Some(100),
        };
        Some(admin::list_deliveries(State(state.clone()), CurrentAdmin { credential_id }, AppQuery(query)).await?.0)
    } else {
        None
    };
    let body = html! {
        (view::tenant_picker(&operator, &tenants, tenant.id, "/console/webhooks"))
        (view::notices(q.notice.as_deref(), None))
        h2 { "Endpoints of " (tenant.name) }
        table {
            thead { tr { th { "URL" } th { "Flow" } th { "Entity" } th { "Enabled" } th { "Created" } } }
            tbody {
                @for e in &endpoints {
                    tr {
                        td { code { (e.url) } }
                        td { (e.flow_type.as_deref().unwrap_or("every flow")) }
                        td { (e.entity_type.as_deref().unwrap_or("every entity")) }
                        td { (if e.enabled { "yes" } else { "no (disabled)" }) }
                        td { (time(e.created_at)) }
                    }
                }
            }
        }
        @if let Some(page) = deliveries {
            h2 { "Deliveries" }
            form.filters method="get" action="/console/webhooks" {
                input type="hidden" name="tenant" value=(tenant.id);
                label { "Status " select name="status" {
                    @for s in ["failed", "pending", "delivered"] {
                        option value=(s) selected[s == status] { (if s == "failed" { "failed (dead letters)" } else { s }) }
                    }
                } }
                button type="submit" { "Show" }
            }
            p { (page.total) " " (status) " deliveries." }
            table #deliveries {
                thead { tr { th { "Id" } th { "Event" } th { "Entity" } th.num { "Attempts" } th { "Last answer" } th { "Failed at" } th {} } }
                tbody {
                    @for d in &page.items {
                        tr data-delivery=(d.id) {
                            td { (d.id) }
                            td { (d.flow_type) " / " (d.entity_type) }
                            td { code { (d.entity_id) } }
                            td.num { (d.attempts) " (+" (d.redeliveries) " rounds)" }
                            td {
                                @match (&d.last_error, d.last_status_code) {
                                    (Some(e), _) => { (e) }
                                    (None, Some(c)) => { "HTTP " (c) }
                                    (None, None) => { "—" }
                                }
                            }
                            td { (opt_time(d.failed_at)) }
                            td {
                                @if d.status == "failed" {
                                    form.inline method="post" action="/console/webhooks/redeliver" {
                                        (csrf(&operator.csrf))
                                        input type="hidden" name="tenant" value=(tenant.id);
                                        input type="hidden" name="delivery" value=(d.id);
                                        button type="submit" { "Redeliver" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } @else {
            p.muted { "Deliveries and dead letters are operator data across tenants (/v1/admin/webhooks): sign in with an admin token." }
        }
    };
    Ok(view::page(&operator, "/console/webhooks", "Webhooks", body))
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    tenant: Uuid,
    delivery: i64,
}

async fn redeliver(
    State(state): State<AppState>,
    operator: Operator,
    Form(f): Form<RedeliverForm>,
) -> ConsoleResult<Response> {
    let credential_id = operator.viewer.require_admin()?;
    let (_, delivery) = admin::redeliver_one(State(state), CurrentAdmin { credential_id }, AppPath(f.delivery)).await?;
    let notice = format!("Delivery {} queued for redelivery ({})", delivery.id, delivery.status);
    Ok(view::redirect_with_notice(&format!("/console/webhooks?tenant={}", f.tenant), &notice))
}
