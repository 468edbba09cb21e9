//! Refund routes and BTG's reversal events: thin adapters (parse → call → render) over the use
//! cases in `pix_app::refunds`, which hold every state transition (docs/refunds.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use pix_app::refunds::outgoing::{RefundRequest, create, reversal_event};
use pix_app::refunds::unblock::unblock;
use pix_app::refunds::{RefundView, incoming};
use pix_core::error::ErrorCode;
use pix_core::money::Amount;
use pix_core::refund::{RefundOperation, RefundReason, RefundStatus};
use pix_core::transfer::{BtgStatus, Direction};
use pix_integrations::btg::BtgEvent;
use pix_store::inbound::InboundEvent;
use pix_store::refunds::{RefundFilter, UnmatchedReturn};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{CurrentAdmin, CurrentTenant};
use crate::dict::decode_event;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppJson, AppPath, AppQuery};
use crate::idempotency::request_key;
use crate::inbound::InboundHandler;
use crate::list_query::ListQuery;
use crate::routes::ErrorResponse;
use crate::transfers::event_tenant;
use crate::worker::{JobError, JobFuture};

/// Tenant routes (bearer auth and idempotency are applied by the router).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_refund))
        .routes(routes!(list_refunds))
        .routes(routes!(get_refund))
        .routes(routes!(unblock_refund))
}

/// Operator routes.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_unmatched_returns))
}

/// Handlers for BTG's reversal events.
pub fn inbound_handlers(state: &AppState) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    vec![
        ("PIX_REVERSAL", Arc::new(ReversalEvents(state.clone()))),
        ("PIX_REVERSAL_INBOUND", Arc::new(InboundReturns(state.clone()))),
    ]
}

// ------------------------------------------------------------------------------ create

/// At most this many `metadata` keys and `operations`.
const MAX_METADATA_KEYS: usize = 50;
const MAX_OPERATIONS: usize = 32;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRefund {
    /// The amount to return, > 0 with at most 2 decimals; with `operations`, their sum.
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Amount,
    #[schema(max_length = 140)]
    pub description: Option<String>,
    /// Free-form, at most 50 keys; kept on the refund and sent with its events.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<BTreeMap<String, Value>>,
    /// A distributed refund: debit each account for its part (BTG still receives one pacs.004
    /// for the total). Each alias once, each a credited account of the original.
    #[schema(min_items = 1, max_items = 32)]
    pub operations: Option<Vec<RefundOperationIn>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefundOperationIn {
    #[schema(min_length = 1, max_length = 256)]
    pub account_alias: String,
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Amount,
}

const REASONS: &str = "BE08, FR01, MD06 or SL02";

/// `X-Reason`: the pacs.004 return reason.
fn reason(headers: &HeaderMap) -> ApiResult<RefundReason> {
    let value = headers.get("x-reason").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Err(ApiError::new(ErrorCode::MissingHeader, format!("missing header: X-Reason ({REASONS})")));
    }
    value.parse().map_err(|_| ApiError::new(ErrorCode::InvalidHeader, format!("X-Reason must be {REASONS}")))
}

/// Return (part of) a Pix this account received (pacs.004).
///
/// Only COMPLETED cash-ins of the account, within 90 days of settlement, while all refunds of
/// the transfer stay within its amount. Answers 201 with the refund: PROCESSING with its
/// `returnEndToEndId` once BTG accepted it, PENDING while BTG's answer is unknown (the sweeper
/// finishes it), FAILED when the ledger refused the hold. A refund cannot be cancelled.
#[utoipa::path(post, path = "/v1/transfers/{transfer_id}/refunds", tag = "Refunds", request_body = CreateRefund,
    params(("transfer_id" = Uuid, Path, description = "The cash-in to return"),
           ("X-Account-Id" = Uuid, Header, description = "The account that received it"),
           ("X-Reason" = String, Header, description = "The pacs.004 return reason", pattern = "^(BE08|FR01|MD06|SL02)$")),
    security(("tenant_token" = [])),
    responses((status = 201, body = RefundView), (status = 400, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
              (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn create_refund(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    headers: HeaderMap,
    AppPath(transfer_id): AppPath<Uuid>,
    AppJson(body): AppJson<CreateRefund>,
) -> ApiResult<(StatusCode, Json<RefundView>)> {
    let reason = reason(&headers)?;
    if body.description.as_ref().is_some_and(|d| d.chars().count() > 140) {
        return Err(ApiError::new(ErrorCode::InvalidField, "description: at most 140 characters"));
    }
    let metadata = body.metadata.unwrap_or_default();
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(ApiError::new(ErrorCode::InvalidField, format!("metadata: at most {MAX_METADATA_KEYS} keys")));
    }
    if body.operations.as_ref().is_some_and(|ops| ops.is_empty() || ops.len() > MAX_OPERATIONS) {
        return Err(ApiError::new(ErrorCode::InvalidField, format!("operations: 1 to {MAX_OPERATIONS} entries")));
    }
    let operations = body.operations.map(|ops| {
        ops.into_iter()
            .map(|op| RefundOperation { account_alias: op.account_alias, amount: op.amount.money().centavos() })
            .collect()
    });
    let request = RefundRequest {
        tenant: &tenant,
        account_id: account,
        transfer_id,
        reason,
        amount: body.amount.money().centavos(),
        description: body.description,
        metadata,
        operations,
        adopt: None,
        idempotency_key: request_key(&headers),
    };
    let refund = create(&state.app, request).await?;
    Ok((StatusCode::CREATED, Json(RefundView::from(&refund))))
}

// ------------------------------------------------------------------------------ queries

const QUERY: ListQuery = ListQuery(ErrorCode::InvalidRefundQuery);

/// Every value is text so that a malformed one is reported as `PIX-0441` with its name.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundQuery {
    /// Default 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    pub page: Option<String>,
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// By creation time, `desc` by default.
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
    /// The original or the return EndToEndId.
    pub end_to_end: Option<String>,
    #[param(schema_with = crate::openapi::one_of::<pix_core::refund::RefundStatus>)]
    pub status: Option<String>,
    /// `CASHOUT` (we returned) or `CASHIN` (returned to us).
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = crate::openapi::one_of::<pix_core::transfer::Direction>)]
    pub refund_type: Option<String>,
    /// RFC 3339; refunds updated after it.
    #[param(format = DateTime)]
    pub modified_after: Option<String>,
    /// RFC 3339; refunds updated before it.
    #[param(format = DateTime)]
    pub modified_before: Option<String>,
    /// `true`: only intra-PSP ones (settled inside this institution); `false`: only the others.
    #[param(value_type = Option<bool>)]
    pub is_intra_psp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundPage {
    pub items: Vec<RefundView>,
    pub limit: i64,
    pub page: i64,
    pub total: i64,
}

/// The account's refunds, newest first unless `sort_order=asc`.
#[utoipa::path(get, path = "/v1/refunds", tag = "Refunds",
    params(RefundQuery, ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = RefundPage), (status = 400, body = ErrorResponse)))]
async fn list_refunds(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppQuery(q): AppQuery<RefundQuery>,
) -> ApiResult<Json<RefundPage>> {
    let page = QUERY.number("page", q.page.as_deref(), 1, 1..=i64::from(i32::MAX))?;
    let limit = QUERY.number("limit", q.limit.as_deref(), 10, 1..=100)?;
    let filter = RefundFilter {
        end_to_end_id: q.end_to_end,
        status: QUERY.one_of::<RefundStatus>("status", q.status.as_deref())?,
        kind: QUERY.one_of::<Direction>("type", q.refund_type.as_deref())?,
        modified_after: QUERY.instant("modified_after", q.modified_after.as_deref())?,
        modified_before: QUERY.instant("modified_before", q.modified_before.as_deref())?,
        is_intra_psp: QUERY.boolean("is_intra_psp", q.is_intra_psp.as_deref())?,
        descending: QUERY.descending(q.sort_order.as_deref())?,
    };
    let (items, total) = state.store.list_refunds(tenant.id, Some(account), &filter, limit, (page - 1) * limit).await?;
    Ok(Json(RefundPage { items: items.iter().map(RefundView::from).collect(), limit, page, total }))
}

fn refund_not_found() -> ApiError {
    ApiError::new(ErrorCode::RefundNotFound, "no refund with this id for this account")
}

/// One refund of the account.
#[utoipa::path(get, path = "/v1/refunds/{refund_id}", tag = "Refunds",
    params(("refund_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = RefundView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_refund(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(refund_id): AppPath<Uuid>,
) -> ApiResult<Json<RefundView>> {
    match state.store.refund(tenant.id, refund_id).await? {
        Some(r) if r.account_id == account => Ok(Json(RefundView::from(&r))),
        _ => Err(refund_not_found()),
    }
}

// ------------------------------------------------------------------------------ unblock

/// The optional body of an unblock.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnblockRequest {
    /// When BTG has no record: release the hold and fail the refund (default `false`: an error,
    /// nothing changed).
    #[serde(default)]
    pub allow_not_found_unblock: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnblockedRefund {
    pub refund: RefundView,
    /// `PROCESSING`, `CONFIRMED`, `REJECTED` or `NOT_FOUND`; null for an intra-PSP refund
    /// (settled from local records, without BTG).
    #[schema(value_type = Option<String>, example = "CONFIRMED")]
    pub btg_status: Option<BtgStatus>,
    pub message: String,
}

/// Re-read a refund stuck in flight from BTG and settle it to BTG's status.
///
/// CONFIRMED commits the hold (COMPLETED), REJECTED releases it (FAILED), PROCESSING changes
/// nothing. BTG's record must match the refund (`PIX-0420` otherwise, nothing settled). When BTG
/// has no record: `PIX-1012`, unless `allowNotFoundUnblock` releases the hold.
#[utoipa::path(post, path = "/v1/refunds/{refund_id}/unblock", tag = "Refunds", request_body = Option<UnblockRequest>,
    params(("refund_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = UnblockedRefund), (status = 400, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
              (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn unblock_refund(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(refund_id): AppPath<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<Json<UnblockedRefund>> {
    // The body is optional (`{}` or nothing).
    let body: UnblockRequest =
        if body.is_empty() { UnblockRequest::default() } else { crate::extract::parse_json(&body)? };
    let done = unblock(&state.app, &tenant, account, refund_id, body.allow_not_found_unblock).await?;
    Ok(Json(UnblockedRefund {
        refund: RefundView::from(&done.refund),
        btg_status: done.btg_status,
        message: done.message,
    }))
}

// ------------------------------------------------------------------------------ operators

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnmatchedReturnView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub return_end_to_end_id: String,
    pub original_end_to_end_id: String,
    #[schema(value_type = String, example = "100.00")]
    pub amount: pix_core::money::Money,
    pub reason: String,
    /// Why it was not credited.
    pub why: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

impl From<&UnmatchedReturn> for UnmatchedReturnView {
    fn from(u: &UnmatchedReturn) -> UnmatchedReturnView {
        UnmatchedReturnView {
            id: u.id,
            tenant_id: u.tenant_id,
            return_end_to_end_id: u.return_end_to_end_id.clone(),
            original_end_to_end_id: u.original_end_to_end_id.clone(),
            amount: pix_core::money::Money::from_centavos(u.amount),
            reason: u.reason.clone(),
            why: u.why.clone(),
            received_at: u.received_at,
        }
    }
}

/// Returns BTG reported for an original that is no completed cash-out of the tenant (unknown,
/// another institution's, or more than was sent): credited to nobody, newest first (at most 100).
#[utoipa::path(get, path = "/v1/admin/unmatched-returns", tag = "Refunds", security(("admin_token" = [])),
    responses((status = 200, body = Vec<UnmatchedReturnView>), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse)))]
async fn list_unmatched_returns(
    State(state): State<AppState>,
    _admin: CurrentAdmin,
) -> ApiResult<Json<Vec<UnmatchedReturnView>>> {
    let returns = state.store.unmatched_returns(100).await?;
    Ok(Json(returns.iter().map(UnmatchedReturnView::from).collect()))
}

// ------------------------------------------------------------------------------ BTG events

/// `PIX_REVERSAL`: BTG's verdict on a reversal we sent.
pub struct ReversalEvents(pub AppState);

impl InboundHandler for ReversalEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::Reversal(reversal) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_REVERSAL event without a reversal".into()));
            };
            let tenant = event_tenant(&self.0, event.tenant_id).await?;
            Ok(reversal_event(&self.0.app, &tenant, &reversal).await?)
        })
    }
}

/// `PIX_REVERSAL_INBOUND`: another participant returned one of our cash-outs.
pub struct InboundReturns(pub AppState);

impl InboundHandler for InboundReturns {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::ReversalInbound(reversal) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_REVERSAL_INBOUND event without a reversal".into()));
            };
            let tenant = event_tenant(&self.0, event.tenant_id).await?;
            incoming::receive(&self.0.app, &tenant, &reversal).await?;
            let dict = crate::dict::Dict::from_ref(&self.0);
            crate::dict::on_return_received(&dict, &tenant, &reversal.return_end_to_end_id)
                .await
                .map_err(|e| JobError::Retry(e.0.to_string()))?;
            Ok(())
        })
    }
}
