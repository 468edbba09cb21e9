//! Transfers and refunds: the searchable list, a transfer's page with its state timeline, the
//! review queue (admin: release or reject), stuck and incident transfers (a tenant operator
//! unblocks its own, as in the tenant API), and the fee quote.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use pix_app::transfers::{TransferView, incidents, review};
use pix_core::transfer::{Direction, TransferStatus};
use pix_store::deliveries::DeliveryFilter;
use pix_store::refunds::RefundFilter;
use pix_store::transfers::{Transfer, TransferFilter};
use pix_store::upstream_calls::CallOutcome;
use serde::Deserialize;
use uuid::Uuid;

use super::session::Viewer;
use super::view::{self, csrf, json, money, opt_time, short, time};
use super::{ConsoleError, ConsoleResult, Operator};
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::extract::AppJson;
use crate::policies::quote::{FeeQuoteRequest, quote_fee};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/transfers", get(list))
        .route("/transfers/{id}", get(detail))
        .route("/transfers/{id}/unblock", post(unblock))
        .route("/refunds", get(refunds))
        .route("/reviews", get(reviews))
        .route("/reviews/decide", post(decide))
        .route("/stuck", get(stuck))
        .route("/quote", get(quote_form).post(quote))
}

fn parse<T: std::str::FromStr>(field: &str, value: Option<&str>) -> ConsoleResult<Option<T>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ConsoleError::BadRequest(format!("{field}: invalid value {v:?}"))),
    }
}

#[derive(Deserialize)]
pub struct Search {
    tenant: Option<Uuid>,
    account: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    direction: Option<String>,
    end_to_end: Option<String>,
    page: Option<i64>,
}

fn status_badge(status: TransferStatus) -> Markup {
    let class = match status {
        TransferStatus::Completed => "badge good",
        TransferStatus::Failed | TransferStatus::ReconciliationRequired | TransferStatus::Cancelled => "badge bad",
        _ => "badge",
    };
    html! { span class=(class) { (status.as_str()) } }
}

fn transfer_table(rows: &[Transfer]) -> Markup {
    html! {
        table.transfers {
            thead { tr { th { "Created" } th { "Type" } th { "Status" } th.num { "Amount" } th.num { "Fee" } th { "EndToEndId" } th { "Account" } } }
            tbody {
                @for t in rows {
                    tr {
                        td { a href=(format!("/console/transfers/{}?tenant={}", t.id, t.tenant_id)) { (time(t.created_at)) } }
                        td { (t.direction().as_str()) }
                        td { (status_badge(t.status())) }
                        td.num { (money(t.amount)) }
                        td.num { (money(t.fee)) }
                        td { code { (t.end_to_end_id) } }
                        td { code { (t.account_id) } }
                    }
                }
            }
        }
    }
}

/// The tenant's transfers, every account or one, newest first, 50 a page.
async fn list(State(state): State<AppState>, operator: Operator, Query(q): Query<Search>) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.tenant(&state, q.tenant).await?;
    let tenants = if operator.viewer.is_admin() { state.store.list_tenants().await? } else { Vec::new() };
    let status: Option<TransferStatus> = parse("status", q.status.as_deref())?;
    let direction: Option<Direction> = parse("type", q.direction.as_deref())?;
    let account: Option<Uuid> = parse("account", q.account.as_deref())?;
    let end_to_end = q.end_to_end.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let filter =
        TransferFilter { status, direction, end_to_end_id: end_to_end.clone(), descending: true, ..Default::default() };
    let page = q.page.unwrap_or(1).max(1);
    let (rows, total) = state.store.list_transfers(tenant.id, account, &filter, 50, (page - 1) * 50).await?;
    let body = html! {
        form.filters method="get" action="/console/transfers" {
            @if operator.viewer.is_admin() {
                label { "Tenant " select name="tenant" {
                    @for t in &tenants { option value=(t.id) selected[t.id == tenant.id] { (t.name) } }
                } }
            }
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in TransferStatus::ALL { option value=(s.as_str()) selected[status == Some(*s)] { (s.as_str()) } }
            } }
            label { "Type " select name="type" {
                option value="" { "any" }
                @for d in [Direction::Cashout, Direction::Cashin] { option value=(d.as_str()) selected[direction == Some(d)] { (d.as_str()) } }
            } }
            label { "EndToEndId " input type="text" name="end_to_end" value=[end_to_end.as_deref()] size="34"; }
            label { "Account " input type="text" name="account" value=[account] size="36" placeholder="any"; }
            button type="submit" { "Search" }
        }
        p { (total) " transfers of " (tenant.name) "; page " (page) "." }
        (transfer_table(&rows))
        @if page * 50 < total {
            a href=(format!("/console/transfers?tenant={}&status={}&type={}&end_to_end={}&page={}", tenant.id,
                status.map(|s| s.as_str()).unwrap_or(""), direction.map(|d| d.as_str()).unwrap_or(""),
                end_to_end.as_deref().unwrap_or(""), page + 1)) { "Next page →" }
        }
    };
    Ok(view::page(&operator, "/console/transfers", "Transfers", body))
}

#[derive(Deserialize)]
pub struct TenantQuery {
    tenant: Option<Uuid>,
    notice: Option<String>,
}

/// One step of a transfer's timeline.
struct Step {
    at: DateTime<Utc>,
    what: String,
    detail: Option<Markup>,
}

async fn timeline(state: &AppState, t: &Transfer) -> ConsoleResult<Vec<Step>> {
    let d = &t.details;
    let mut steps = vec![Step {
        at: t.created_at,
        what: format!("{} created: {} ({})", t.direction().as_str(), money(t.amount), d.initiation_method),
        detail: None,
    }];
    if let Some(fee) = &d.fee {
        steps.push(Step {
            at: t.created_at,
            what: format!("Fee policy charged {}", money(t.fee)),
            detail: Some(
                html! { "component " code { (short(&fee.policy_sha256)) } " · " (fee.label) " · to " (fee.account) },
            ),
        });
    }
    if let Some(fraud) = &d.fraud {
        steps.push(Step {
            at: t.created_at,
            what: "Fraud triage decided".into(),
            detail: Some(html! { (json(fraud)) }),
        });
    }
    if let Some(a) = &d.acceptance {
        let verdict = if a.accepted { "accepted" } else { "refused" };
        steps.push(Step {
            at: t.created_at,
            what: format!("Cash-in acceptance policy {verdict}"),
            detail: Some(html! { "component " code { (short(&a.policy_sha256)) } }),
        });
    }
    if let Some(r) = &d.review {
        let verdict = if r.released { "released" } else { "rejected" };
        let by = r.by.map(|b| b.to_string()).unwrap_or_else(|| "the review deadline".into());
        steps.push(Step {
            at: r.at,
            what: format!("Review {verdict} by {by}"),
            detail: r.note.as_ref().map(|n| html! { (n) }),
        });
    }
    let columns = t.state.columns();
    let mut ledger = Vec::new();
    if let Some(tx) = &columns.ledger_tx_id {
        ledger.push(format!("Midaz transaction {tx}"));
    }
    if let Some(tx) = &columns.correction_tx_id {
        ledger.push(format!("correction transaction {tx}"));
    }
    steps.push(Step {
        at: t.updated_at,
        what: format!(
            "Now {} at step {} (BTG EndToEndId {})",
            t.status().as_str(),
            columns.step.as_str(),
            t.end_to_end_id
        ),
        detail: (!ledger.is_empty()).then(|| html! { (ledger.join(" · ")) }),
    });
    if let Some(i) = &d.incident {
        steps.push(Step {
            at: i.detected_at,
            what: format!("Incident {} detected", i.kind),
            detail: Some(html! { (i.note) }),
        });
    }
    if let Some(f) = t.state.failure() {
        steps.push(Step { at: t.updated_at, what: format!("Failed: {}", f.code), detail: Some(html! { (f.reason) }) });
    }
    if let Some(at) = t.completed_at {
        steps.push(Step { at, what: format!("Final: {}", t.status().as_str()), detail: None });
    }
    for call in state.store.upstream_calls_of(t.tenant_id, &t.end_to_end_id).await? {
        let outcome = if call.outcome == CallOutcome::Ok { "ok" } else { call.outcome.as_str() };
        steps.push(Step {
            at: call.called_at,
            what: format!("BTG call {}: {outcome}", call.operation),
            detail: Some(html! {
                span.btg-call data-operation=(call.operation) data-outcome=(call.outcome.as_str()) {
                    (call.duration_ms) " ms" @if let Some(d) = &call.detail { " · " (d) }
                }
            }),
        });
    }
    for r in state.store.refunds_of_transfer(t.tenant_id, t.id).await? {
        steps.push(Step {
            at: r.created_at,
            what: format!("Refund {} of {}: {}", r.id, money(r.amount), r.status().as_str()),
            detail: None,
        });
    }
    let events =
        DeliveryFilter { tenant_id: Some(t.tenant_id), entity_id: Some(t.id.to_string()), ..Default::default() };
    for delivery in state.store.list_deliveries(&events, 100, 0).await?.0 {
        steps.push(Step {
            at: delivery.created_at,
            what: format!("{} event {} to endpoint {}: {}", delivery.flow_type, delivery.event_id, delivery.endpoint_id,
                delivery.status.as_str()),
            detail: Some(html! { (delivery.attempts) " attempts" @if let Some(c) = delivery.last_status_code { ", last HTTP " (c) } }),
        });
    }
    steps.sort_by_key(|s| s.at);
    Ok(steps)
}

/// A transfer with its timeline. The transfer is looked up within the viewer's tenant only, so
/// another tenant's id is "not found" for a tenant operator.
async fn detail(
    State(state): State<AppState>,
    operator: Operator,
    axum::extract::Path(id): axum::extract::Path<Uuid>,
    Query(q): Query<TenantQuery>,
) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.tenant(&state, q.tenant).await?;
    let t = state.store.transfer(tenant.id, id).await?.ok_or(ConsoleError::NotFound("no such transfer"))?;
    let v = TransferView::from(&t);
    let steps = timeline(&state, &t).await?;
    let stuck = matches!(t.status(), TransferStatus::Pending | TransferStatus::Processing)
        && t.direction() == Direction::Cashout;
    let body = html! {
        (view::notices(q.notice.as_deref(), None))
        table.facts {
            tr { th { "Tenant" } td { (tenant.name) } }
            tr { th { "Status" } td #status { (status_badge(t.status())) } }
            tr { th { "Type" } td { (t.direction().as_str()) @if t.is_intra_psp { " (intra-PSP)" } } }
            tr { th { "Amount / fee" } td { (money(t.amount)) " / " (money(t.fee)) } }
            tr { th { "EndToEndId" } td { code { (t.end_to_end_id) } } }
            tr { th { "Account" } td { code { (t.account_id) } } }
            tr { th { "Counterparty" } td { (v.counterparty.name) " · " (v.counterparty.tax_id) " · ISPB " (v.counterparty.ispb) } }
            tr { th { "Created / updated / completed" } td { (time(t.created_at)) " / " (time(t.updated_at)) " / " (opt_time(t.completed_at)) } }
        }
        @if t.status() == TransferStatus::InReview && operator.viewer.is_admin() {
            (review_forms(&operator, &t))
        }
        @if stuck {
            @if let Viewer::Tenant(_) = operator.viewer {
                form method="post" action=(format!("/console/transfers/{}/unblock", t.id)) {
                    (csrf(&operator.csrf))
                    label { input type="checkbox" name="allow_not_found" value="true"; " release the hold if BTG has no record of it" }
                    " " button type="submit" { "Unblock (read the outcome back from BTG)" }
                }
            } @else {
                p.muted { "Unblocking is a tenant action (POST /v1/transfers/{id}/unblock): sign in with the tenant's token." }
            }
        }
        h2 { "Timeline" }
        ol.timeline {
            @for s in &steps {
                li { time { (time(s.at)) } (s.what) @if let Some(d) = &s.detail { div.muted { (d) } } }
            }
        }
    };
    Ok(view::page(&operator, "/console/transfers", &format!("Transfer {}", t.id), body))
}

fn review_forms(operator: &Operator, t: &Transfer) -> Markup {
    html! {
        form.inline.review method="post" action="/console/reviews/decide" {
            (csrf(&operator.csrf))
            input type="hidden" name="tenant" value=(t.tenant_id);
            input type="hidden" name="transfer" value=(t.id);
            input type="text" name="note" placeholder="note (optional)" size="22";
            " "
            button type="submit" name="decision" value="RELEASE" { "Approve" }
            " "
            button.danger type="submit" name="decision" value="REJECT" data-confirm="Reject this transfer?" { "Reject" }
        }
    }
}

/// The review queue, oldest first (admin, as `GET /v1/admin/transfer-reviews`).
async fn reviews(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<TenantQuery>,
) -> ConsoleResult<Markup> {
    operator.viewer.require_admin()?;
    let waiting = review::waiting(&state.app, 100).await?;
    let tenants = state.store.list_tenants().await?;
    let name = |id: Uuid| tenants.iter().find(|t| t.id == id).map(|t| t.name.clone()).unwrap_or_default();
    let body = html! {
        (view::notices(q.notice.as_deref(), None))
        p { (waiting.len()) " cash-outs wait for a decision. Nothing is held while they wait." }
        table #reviews {
            thead { tr { th { "Created" } th { "Tenant" } th.num { "Amount" } th { "Fraud triage" } th { "Decision" } } }
            tbody {
                @for t in &waiting {
                    tr data-transfer=(t.id) {
                        td { a href=(format!("/console/transfers/{}?tenant={}", t.id, t.tenant_id)) { (time(t.created_at)) } }
                        td { (name(t.tenant_id)) }
                        td.num { (money(t.amount)) }
                        td { @if let Some(f) = &t.details.fraud { (json(f)) } }
                        td { (review_forms(&operator, t)) }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console/reviews", "Review queue", body))
}

#[derive(Deserialize)]
pub struct DecideForm {
    tenant: Uuid,
    transfer: Uuid,
    decision: String,
    #[serde(default)]
    note: String,
}

/// Release or reject: the use case behind `POST /v1/admin/tenants/{t}/transfers/{id}/review`.
async fn decide(
    State(state): State<AppState>,
    operator: Operator,
    Form(f): Form<DecideForm>,
) -> ConsoleResult<Response> {
    let by = operator.viewer.require_admin()?;
    let release = match f.decision.as_str() {
        "RELEASE" => true,
        "REJECT" => false,
        _ => return Err(ConsoleError::BadRequest("decision must be RELEASE or REJECT".into())),
    };
    let tenant = operator.viewer.tenant(&state, Some(f.tenant)).await?;
    let note = Some(f.note.trim().to_owned()).filter(|n| !n.is_empty());
    let t = review::decide(&state.app, &tenant, f.transfer, review::ReviewDecision { release, note, by }).await?;
    let notice = format!("Transfer {} is now {}", t.id, t.status().as_str());
    Ok(view::redirect_with_notice("/console/reviews", &notice))
}

/// Cash-outs still PENDING or PROCESSING (the tenant's, or every tenant's for an admin) and
/// those in an incident (RECONCILIATION_REQUIRED).
async fn stuck(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<TenantQuery>,
) -> ConsoleResult<Markup> {
    let (mut pending, incident) = match &operator.viewer {
        Viewer::Admin { .. } => {
            let mut pending = state.store.transfers_with_status(TransferStatus::Pending, 100).await?;
            pending.extend(state.store.transfers_with_status(TransferStatus::Processing, 100).await?);
            (pending, incidents::list(&state.app, 100).await?)
        }
        Viewer::Tenant(tenant) => {
            let mut found = Vec::new();
            for status in [TransferStatus::Pending, TransferStatus::Processing, TransferStatus::ReconciliationRequired]
            {
                let filter = TransferFilter { status: Some(status), ..Default::default() };
                found.extend(state.store.list_transfers(tenant.id, None, &filter, 100, 0).await?.0);
            }
            found.into_iter().partition(|t| t.status() != TransferStatus::ReconciliationRequired)
        }
    };
    pending.retain(|t| t.direction() == Direction::Cashout);
    let body = html! {
        (view::notices(q.notice.as_deref(), None))
        h2 { "Pending or processing cash-outs (oldest first)" }
        p.muted { "Open one to unblock it: the host reads the payment back from BTG and follows BTG's answer." }
        (transfer_table(&pending))
        h2 { "Incidents: BTG contradicted the outcome" }
        table {
            thead { tr { th { "Transfer" } th { "Incident" } th { "Detected" } th { "What was done" } } }
            tbody {
                @for t in &incident {
                    tr {
                        td { a href=(format!("/console/transfers/{}?tenant={}", t.id, t.tenant_id)) { code { (t.end_to_end_id) } } }
                        @if let Some(i) = &t.details.incident {
                            td { (i.kind.as_str()) } td { (time(i.detected_at)) } td { (i.note) }
                        } @else { td {} td {} td {} }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console/stuck", "Stuck transfers and incidents", body))
}

#[derive(Deserialize)]
pub struct UnblockForm {
    allow_not_found: Option<String>,
}

/// The tenant's unblock (as `POST /v1/transfers/{id}/unblock`; admins cannot act as a tenant).
async fn unblock(
    State(state): State<AppState>,
    operator: Operator,
    axum::extract::Path(id): axum::extract::Path<Uuid>,
    Form(f): Form<UnblockForm>,
) -> ConsoleResult<Response> {
    let tenant = operator.viewer.require_tenant()?;
    let t = state.store.transfer(tenant.id, id).await?.ok_or(ConsoleError::NotFound("no such transfer"))?;
    let done =
        pix_app::transfers::unblock::unblock(&state.app, tenant, t.account_id, id, f.allow_not_found.is_some()).await?;
    Ok(view::redirect_with_notice(&format!("/console/transfers/{id}"), &done.message))
}

#[derive(Deserialize)]
pub struct RefundSearch {
    tenant: Option<Uuid>,
    end_to_end: Option<String>,
}

async fn refunds(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<RefundSearch>,
) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.tenant(&state, q.tenant).await?;
    let tenants = if operator.viewer.is_admin() { state.store.list_tenants().await? } else { Vec::new() };
    let end_to_end = q.end_to_end.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let filter = RefundFilter { end_to_end_id: end_to_end.clone(), descending: true, ..Default::default() };
    let (rows, total) = state.store.list_refunds(tenant.id, None, &filter, 100, 0).await?;
    let body = html! {
        (view::tenant_picker(&operator, &tenants, tenant.id, "/console/refunds"))
        form.filters method="get" action="/console/refunds" {
            input type="hidden" name="tenant" value=(tenant.id);
            label { "EndToEndId (original or return) " input type="text" name="end_to_end" value=[end_to_end.as_deref()] size="34"; }
            button type="submit" { "Search" }
        }
        p { (total) " refunds of " (tenant.name) " (newest 100 shown)." }
        table {
            thead { tr { th { "Created" } th { "Kind" } th { "Status" } th.num { "Amount" } th { "Reason" } th { "Original transfer" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td { (time(r.created_at)) }
                        td { (r.kind().as_str()) }
                        td { (r.status().as_str()) }
                        td.num { (money(r.amount)) }
                        td { (r.reason.as_str()) }
                        td { a href=(format!("/console/transfers/{}?tenant={}", r.transfer_id, r.tenant_id)) { code { (r.original_end_to_end_id) } } }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console/refunds", "Refunds", body))
}

fn quote_page(operator: &Operator, result: Option<Markup>) -> Markup {
    view::page(
        operator,
        "/console/quote",
        "Fee quote",
        html! {
            p.muted { "What the tenant's active fee policy charges for an operation (POST /v1/fees/quote)." }
            form.grid method="post" action="/console/quote" {
                (csrf(&operator.csrf))
                label for="operation" { "Operation" }
                select #operation name="operation" {
                    @for o in ["CASH_IN", "CASH_OUT", "REFUND", "INTRA_PSP"] { option value=(o) { (o) } }
                }
                label for="amount" { "Amount (R$)" }
                input #amount type="text" name="amount" value="500.00" required;
                label for="payeeType" { "Payee" }
                select #payeeType name="payeeType" { option value="LEGAL" { "LEGAL" } option value="NATURAL" { "NATURAL" } }
                label for="accountSegment" { "Account segment" }
                input #accountSegment type="text" name="accountSegment" value="merchant";
                button type="submit" { "Quote" }
            }
            @if let Some(r) = result { (r) }
        },
    )
}

async fn quote_form(operator: Operator) -> ConsoleResult<Markup> {
    operator.viewer.require_tenant()?;
    Ok(quote_page(&operator, None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteForm {
    operation: String,
    amount: String,
    payee_type: String,
    account_segment: String,
}

/// The quote handler itself, given the form as its JSON body.
async fn quote(State(state): State<AppState>, operator: Operator, Form(f): Form<QuoteForm>) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.require_tenant()?.clone();
    let body = serde_json::json!({"operation": f.operation, "amount": f.amount, "payeeType": f.payee_type,
        "accountSegment": f.account_segment});
    let request: FeeQuoteRequest = crate::extract::parse_json(body.to_string().as_bytes())?;
    let Json(q) = quote_fee(State(state), CurrentTenant(tenant), AppJson(request)).await?;
    let result = html! {
        section #quote-result {
            h2 { "Quote" }
            table.facts {
                tr { th { "Fee" } td #fee { (q.fee) } }
                tr { th { "Charge" } td { (q.charge.as_str()) } }
                tr { th { "Fee account" } td { (q.fee_account) } }
                tr { th { "Label" } td { (q.label) } }
                tr { th { "Component" } td { code #quote-sha { (q.policy_sha256) } } }
            }
        }
    };
    Ok(quote_page(&operator, Some(result)))
}
