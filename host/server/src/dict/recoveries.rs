//! MED 2.0 funds recoveries (spec 003): the payer's participant of a fraudulent Pix opens one at
//! DICT through BTG, which tracks where the money went, has the receiving participants block and
//! analyse it, and on request opens the refund requests. We store the recoveries we opened (with
//! the account that paid), keep them current from BTG's `FUNDS_RECOVERY` events with a merge that
//! never moves one backwards, record a `FUNDS_RECOVERY` outbound event with every change, and pass
//! `FUNDS_RECOVERY_EVENTS` notifications through as `FUNDS_RECOVERY_EVENT`. See
//! docs/med.md.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::med::{FundsRecoveryStatus, FundsRecoveryTransitionError, HopWindow, SituationType};
use pix_core::money::{Amount, Money};
use pix_core::transfer::{Direction, TransferStatus};
use pix_integrations::btg::{
    self, BtgEvent, ContactInformation, FundsRecoveryUpdate, NewFundsRecovery, TrackingGraphParameters,
};
use pix_store::StoreError;
use pix_store::dict::{InfractionFilter, RefundFilter};
use pix_store::events::{OutboundEvent, route_and_record};
use pix_store::inbound::InboundEvent;
use pix_store::recoveries::{
    FundsRecovery, FundsRecoveryFilter, TrackingParameters, insert_funds_recovery, link_to_recovery,
    save_funds_recovery,
};
use pix_store::tenants::Tenant;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::med::{InfractionReportView, RefundRequestView};
use super::{Dict, btg_error, descending, invalid, missing, paging, parse_enum, record_event, retry, timestamp};
use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppJson, AppPath, AppQuery};
use crate::inbound::InboundHandler;
use crate::routes::{ErrorResponse, Page};
use crate::worker::{JobError, JobFuture};

/// Outbound entity type of a recovery's changes.
const FUNDS_RECOVERY: &str = "FUNDS_RECOVERY";
/// Outbound entity type of DICT's lifecycle notifications, passed through.
const FUNDS_RECOVERY_EVENT: &str = "FUNDS_RECOVERY_EVENT";
/// Reports and refund requests of one recovery listed at once: DICT follows at most
/// `maxTransactions` (≤ 1000) payments, each with one report and at most one request.
const LINKED_MAX: i64 = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_funds_recovery, list_funds_recoveries))
        .routes(routes!(get_funds_recovery, update_funds_recovery))
        .routes(routes!(cancel_funds_recovery))
        .routes(routes!(tracking_graph))
        .routes(routes!(recovery_infraction_reports))
        .routes(routes!(refund_funds_recovery))
        .routes(routes!(recovery_refunds))
}

// ============================================================================================ views

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactInformationBody {
    /// E-mail address (at most 254 characters).
    #[schema(max_length = 254, example = "fraud-ops@example.com")]
    pub email: Option<String>,
    /// E.164 phone.
    #[schema(pattern = r"^\+[1-9]\d{1,14}$", example = "+5511999999999")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrackingGraphParametersBody {
    /// Positive decimal with at most two places.
    #[schema(example = "10.00", pattern = r"^[0-9]{1,15}(\.[0-9]{1,2})?$")]
    pub min_transaction_amount: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    pub max_transactions: Option<i64>,
    /// Positive ISO 8601 duration in weeks, days, hours, minutes and seconds, at most `P90D`.
    #[schema(example = "PT24H")]
    pub hop_window: Option<String>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_hops: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateFundsRecovery {
    /// EndToEndId of a settled cash-out of the account in `X-Account-Id`.
    #[schema(pattern = "^[A-Za-z0-9]{32}$", example = "E12345678202601011200abcdefghijk")]
    pub root_transaction_id: String,
    #[schema(pattern = "^(SCAM|ACCOUNT_TAKEOVER|COERCION|FRAUDULENT_ACCESS|OTHER|UNKNOWN)$")]
    pub situation_type: String,
    /// An `email` and/or a `phone`.
    pub contact_information: ContactInformationBody,
    /// Up to 2,000 characters; required with `OTHER`.
    #[schema(max_length = 2000)]
    pub report_details: Option<String>,
    pub tracking_graph_parameters: Option<TrackingGraphParametersBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateFundsRecovery {
    #[schema(pattern = "^(SCAM|ACCOUNT_TAKEOVER|COERCION|FRAUDULENT_ACCESS|OTHER|UNKNOWN)$")]
    pub situation_type: Option<String>,
    /// Replaces the contact: an `email` and/or a `phone`.
    pub contact_information: Option<ContactInformationBody>,
    /// Up to 2,000 characters (needed to change to `OTHER` when the recovery has none).
    #[schema(max_length = 2000)]
    pub report_details: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FundsRecoveryView {
    pub id: Uuid,
    /// BTG's (DICT's) id of the recovery.
    pub external_id: String,
    /// The same as `externalId`, under the reference's name.
    pub bacen_funds_recovery_id: String,
    /// The account that paid the root transaction.
    pub account_id: Uuid,
    /// `CREATED`, `TRACKED`, `AWAITING_ANALYSIS`, `ANALYSED`, `REFUNDING`, `COMPLETED`, `CANCELLED`.
    #[schema(value_type = String)]
    pub status: FundsRecoveryStatus,
    pub root_transaction_id: String,
    #[schema(value_type = String)]
    pub situation_type: SituationType,
    pub reporter_participant: String,
    pub contact_information: ContactInformationBody,
    pub report_details: Option<String>,
    /// As sent at creation (DICT's defaults apply to those absent).
    pub tracking_graph_parameters: Option<TrackingGraphParametersBody>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&FundsRecovery> for FundsRecoveryView {
    fn from(r: &FundsRecovery) -> Self {
        let t = &r.tracking;
        let tracking = (*t != TrackingParameters::default()).then(|| TrackingGraphParametersBody {
            min_transaction_amount: t.min_transaction_amount.map(|c| Money::from_centavos(c).to_string()),
            max_transactions: t.max_transactions,
            hop_window: t.hop_window.clone(),
            max_hops: t.max_hops,
        });
        FundsRecoveryView {
            id: r.id,
            external_id: r.btg_id.clone(),
            bacen_funds_recovery_id: r.btg_id.clone(),
            account_id: r.account_id,
            status: r.status,
            root_transaction_id: r.root_transaction_id.clone(),
            situation_type: r.situation_type,
            reporter_participant: r.reporter_participant.clone(),
            contact_information: ContactInformationBody {
                email: r.contact_email.clone(),
                phone: r.contact_phone.clone(),
            },
            report_details: r.report_details.clone(),
            tracking_graph_parameters: tracking,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

// ============================================================================================ validation

/// The spec's table, checked before anything is asked of BTG.
struct ValidCreate {
    root: String,
    situation: SituationType,
    contact: ContactInformation,
    details: Option<String>,
    tracking: Option<(TrackingGraphParameters, TrackingParameters)>,
}

fn situation(value: &str) -> ApiResult<SituationType> {
    parse_enum("situationType", value)
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

/// `^\+[1-9]\d{1,14}$` (E.164).
fn valid_phone(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

fn contact(body: &ContactInformationBody) -> ApiResult<ContactInformation> {
    let email = body.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let phone = body.phone.as_deref().map(str::trim).filter(|p| !p.is_empty());
    if email.is_none() && phone.is_none() {
        return Err(missing("contactInformation.email or contactInformation.phone"));
    }
    if email.is_some_and(|e| !valid_email(e)) {
        return Err(invalid("contactInformation.email: must be an e-mail address"));
    }
    if phone.is_some_and(|p| !valid_phone(p)) {
        return Err(invalid(r"contactInformation.phone: must match ^\+[1-9]\d{1,14}$ (E.164)"));
    }
    Ok(ContactInformation { email: email.map(str::to_owned), phone: phone.map(str::to_owned) })
}

/// Details are optional but `OTHER` needs them (DICT); at most 2,000 characters.
fn details(details: Option<&str>, situation: SituationType) -> ApiResult<Option<String>> {
    let details = details.map(str::trim).filter(|d| !d.is_empty());
    if details.is_some_and(|d| d.chars().count() > 2000) {
        return Err(invalid("reportDetails: at most 2000 characters"));
    }
    if situation == SituationType::Other && details.is_none() {
        return Err(missing("reportDetails (required with situationType OTHER)"));
    }
    Ok(details.map(str::to_owned))
}

fn tracking(body: &TrackingGraphParametersBody) -> ApiResult<(TrackingGraphParameters, TrackingParameters)> {
    let field = |name: &str| format!("trackingGraphParameters.{name}");
    let min = body
        .min_transaction_amount
        .as_deref()
        .map(|a| {
            Amount::parse(a).map(Amount::money).map_err(|e| {
                invalid(format!("{}: a positive decimal with at most 2 places ({e})", field("minTransactionAmount")))
            })
        })
        .transpose()?;
    let within = |name: &str, value: Option<i64>, max: i64| -> ApiResult<Option<u32>> {
        match value {
            None => Ok(None),
            Some(v) if (1..=max).contains(&v) => Ok(u32::try_from(v).ok()),
            Some(_) => Err(invalid(format!("{}: must be between 1 and {max}", field(name)))),
        }
    };
    let max_transactions = within("maxTransactions", body.max_transactions, 1000)?;
    let max_hops = within("maxHops", body.max_hops, 10)?;
    let hop_window = body
        .hop_window
        .as_deref()
        .map(|w| HopWindow::parse(w).map_err(|e| invalid(format!("{}: {e}", field("hopWindow")))))
        .transpose()?;
    let wire = TrackingGraphParameters {
        min_transaction_amount: min.map(|m| pix_integrations::Money::from_centavos(m.centavos())),
        max_transactions,
        hop_window: hop_window.map(|w| w.to_string()),
        max_hops,
    };
    let stored = TrackingParameters {
        min_transaction_amount: min.map(Money::centavos),
        max_transactions: max_transactions.map(i64::from),
        hop_window: wire.hop_window.clone(),
        max_hops: max_hops.map(i64::from),
    };
    Ok((wire, stored))
}

fn validate_create(body: &CreateFundsRecovery) -> ApiResult<ValidCreate> {
    let root = body.root_transaction_id.trim();
    if root.len() != 32 || !root.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("rootTransactionId: must be 32 alphanumeric characters (an EndToEndId)"));
    }
    let situation = situation(&body.situation_type)?;
    let contact = contact(&body.contact_information)?;
    let details = details(body.report_details.as_deref(), situation)?;
    let tracking = body.tracking_graph_parameters.as_ref().map(tracking).transpose()?;
    Ok(ValidCreate { root: root.to_owned(), situation, contact, details, tracking })
}

// ============================================================================================ service

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::FundsRecoveryNotFound, "funds recovery not found")
}

fn refused(e: FundsRecoveryTransitionError) -> ApiError {
    ApiError::new(ErrorCode::InvalidFundsRecoveryStatus, e.to_string())
}

fn btg_of(state: &Dict, tenant: &Tenant) -> ApiResult<std::sync::Arc<dyn pix_integrations::Btg>> {
    Ok(state.integrations.for_tenant(tenant)?.btg.clone())
}

/// One of the account's recoveries by our id: malformed → `PIX-0212`; unknown, another tenant's
/// or another account's → `PIX-0210`.
async fn find(state: &Dict, tenant: &Tenant, account: Uuid, id: &str) -> ApiResult<FundsRecovery> {
    let id = Uuid::parse_str(id)
        .map_err(|_| ApiError::new(ErrorCode::InvalidFundsRecoveryId, "funds recovery id must be a UUID"))?;
    state.store.funds_recovery(tenant.id, id).await?.filter(|r| r.account_id == account).ok_or_else(not_found)
}

/// Copies what BTG says of a recovery onto ours: the status only forward
/// ([`FundsRecoveryStatus::merge`]), the information only from a BTG version no older than ours. `false` when
/// nothing changed.
fn merge_remote(local: &mut FundsRecovery, remote: &btg::FundsRecovery) -> bool {
    let mut changed = false;
    if let Some(next) = local.status.merge(remote.status) {
        local.status = next;
        changed = true;
    }
    if remote.updated_at >= local.btg_updated_at {
        let info = (remote.situation_type, &remote.report_details, &remote.contact.email, &remote.contact.phone);
        if info != (local.situation_type, &local.report_details, &local.contact_email, &local.contact_phone) {
            local.situation_type = remote.situation_type;
            local.report_details.clone_from(&remote.report_details);
            local.contact_email.clone_from(&remote.contact.email);
            local.contact_phone.clone_from(&remote.contact.phone);
            changed = true;
        }
        local.btg_updated_at = remote.updated_at;
    }
    changed
}

/// Applies `change` to the stored recovery and, when it changed something, saves it with its
/// FUNDS_RECOVERY event in one transaction. A concurrent write (an API call and a BTG event at
/// once) makes it read again and re-apply, so neither change is lost.
async fn change_recorded(
    state: &Dict,
    tenant: Uuid,
    id: Uuid,
    mut change: impl FnMut(&mut FundsRecovery) -> bool,
) -> ApiResult<FundsRecovery> {
    for _ in 0..5 {
        let mut r = state.store.funds_recovery(tenant, id).await?.ok_or_else(not_found)?;
        if !change(&mut r) {
            return Ok(r);
        }
        r.updated_at = state.clock.now();
        let mut tx = state.store.begin().await?;
        if save_funds_recovery(&mut tx, &r).await? {
            r.version += 1;
            record_event(&mut tx, tenant, FUNDS_RECOVERY, r.id, &FundsRecoveryView::from(&r), r.updated_at).await?;
            tx.commit().await?;
            return Ok(r);
        }
    }
    Err(ApiError::new(ErrorCode::IdempotencyInFlight, "the funds recovery is changing; try again"))
}

/// Records a recovery new to us, with its event, and links the reports and requests that named
/// it by BTG's id. `Ok(None)` when it is already recorded (a concurrent create or event).
async fn insert_recorded(state: &Dict, r: &FundsRecovery) -> ApiResult<Option<FundsRecovery>> {
    let mut tx = state.store.begin().await?;
    match insert_funds_recovery(&mut tx, r).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    link_to_recovery(&mut tx, r.tenant_id, &r.btg_id, r.id).await?;
    record_event(&mut tx, r.tenant_id, FUNDS_RECOVERY, r.id, &FundsRecoveryView::from(r), r.updated_at).await?;
    tx.commit().await?;
    Ok(Some(r.clone()))
}

/// Our id of the recovery BTG calls `btg_id`, or BTG's when we do not have it (a recovery another
/// participant opened).
pub(super) async fn local_recovery_id(
    state: &Dict,
    tenant: Uuid,
    btg_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let Some(btg_id) = btg_id else { return Ok(None) };
    Ok(Some(match state.store.funds_recovery_by_btg_id(tenant, btg_id).await? {
        Some(r) => r.id.to_string(),
        None => btg_id.to_owned(),
    }))
}

// ============================================================================================ routes

/// Open a funds recovery of a settled cash-out of the account (MED 2.0).
#[utoipa::path(post, path = "/v1/dict/funds-recoveries", tag = "MED", request_body = CreateFundsRecovery,
    params(("X-Account-Id" = Uuid, Header)),
    security(("tenant_token" = [])),
    responses((status = 201, body = FundsRecoveryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn create_funds_recovery(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppJson(body): AppJson<CreateFundsRecovery>,
) -> ApiResult<(StatusCode, Json<FundsRecoveryView>)> {
    let v = validate_create(&body)?;
    // The payer's participant opens it: the root must be a Pix this account sent.
    let root = state
        .store
        .transfer_by_end_to_end_id(tenant.id, Direction::Cashout, &v.root)
        .await?
        .filter(|t| t.account_id == account.id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PaymentNotFound,
                "rootTransactionId: no cash-out of this account has this EndToEndId",
            )
        })?;
    if root.status() != TransferStatus::Completed {
        return Err(ApiError::new(
            ErrorCode::RootTransactionNotSettled,
            format!("rootTransactionId: the cash-out is {}, only a COMPLETED one can be recovered", root.status()),
        ));
    }
    if let Some(open) = state.store.open_funds_recoveries_of_root(tenant.id, &v.root).await?.first() {
        return Err(ApiError::new(
            ErrorCode::FundsRecoveryAlreadyOpen,
            format!("funds recovery {} of this transaction is {}", open.id, open.status),
        ));
    }
    let id = pix_core::ids::new_id();
    let remote = btg_of(&state, &tenant)?
        .create_funds_recovery(&NewFundsRecovery {
            request_id: id.to_string(),
            root_end_to_end_id: v.root.clone(),
            situation_type: v.situation,
            report_details: v.details.clone(),
            contact: v.contact.clone(),
            tracking: v.tracking.as_ref().map(|(wire, _)| wire.clone()),
        })
        .await
        .map_err(|e| btg_error("opening the funds recovery", e))?;
    let now = state.clock.now();
    let recovery = FundsRecovery {
        id,
        tenant_id: tenant.id,
        account_id: account.id,
        btg_id: remote.id.clone(),
        status: remote.status,
        root_transaction_id: v.root,
        situation_type: v.situation,
        reporter_participant: remote.reporter_participant.clone(),
        contact_email: v.contact.email,
        contact_phone: v.contact.phone,
        report_details: v.details,
        tracking: v.tracking.map(|(_, stored)| stored).unwrap_or_default(),
        btg_updated_at: remote.updated_at,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    let recovery = match insert_recorded(&state, &recovery).await? {
        Some(r) => r,
        // BTG's first event about it was recorded first (see `adopt`): that record stands.
        None => state.store.funds_recovery_by_btg_id(tenant.id, &remote.id).await?.ok_or_else(not_found)?,
    };
    tracing::info!(recovery = %recovery.id, situation = %recovery.situation_type, "funds recovery opened");
    Ok((StatusCode::CREATED, Json(FundsRecoveryView::from(&recovery))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FundsRecoveryQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
    #[param(pattern = "^(CREATED|TRACKED|AWAITING_ANALYSIS|ANALYSED|REFUNDING|COMPLETED|CANCELLED)$")]
    pub status: Option<String>,
    #[param(pattern = "^(SCAM|ACCOUNT_TAKEOVER|COERCION|FRAUDULENT_ACCESS|OTHER|UNKNOWN)$")]
    pub situation_type: Option<String>,
    #[param(pattern = "^[A-Za-z0-9]{32}$")]
    pub root_transaction_id: Option<String>,
    /// RFC 3339; recoveries changed after it.
    #[param(format = DateTime)]
    pub modified_after: Option<String>,
    /// RFC 3339; recoveries changed before it.
    #[param(format = DateTime)]
    pub modified_before: Option<String>,
}

/// The account's funds recoveries, newest first by default.
#[utoipa::path(get, path = "/v1/dict/funds-recoveries", tag = "MED",
    params(FundsRecoveryQuery, ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = Page<FundsRecoveryView>), (status = 400, body = ErrorResponse)))]
async fn list_funds_recoveries(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppQuery(q): AppQuery<FundsRecoveryQuery>,
) -> ApiResult<Json<Page<FundsRecoveryView>>> {
    let (limit, offset, page, size) = paging(q.page, q.limit)?;
    if q.root_transaction_id.as_ref().is_some_and(|t| t.len() != 32) {
        return Err(invalid("root_transaction_id must have 32 characters"));
    }
    let filter = FundsRecoveryFilter {
        status: q.status.as_deref().map(|s| parse_enum("status", s)).transpose()?,
        situation_type: q.situation_type.as_deref().map(|s| parse_enum("situation_type", s)).transpose()?,
        root_transaction_id: q.root_transaction_id,
        modified_after: timestamp("modified_after", q.modified_after.as_deref())?,
        modified_before: timestamp("modified_before", q.modified_before.as_deref())?,
        descending: descending(q.sort_order.as_deref(), true)?,
    };
    let (items, total) = state.store.list_funds_recoveries(tenant.id, account, &filter, limit, offset).await?;
    Ok(Json(Page { items: items.iter().map(FundsRecoveryView::from).collect(), page, limit: size, total }))
}

/// One funds recovery of the account.
#[utoipa::path(get, path = "/v1/dict/funds-recoveries/{id}", tag = "MED",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = FundsRecoveryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_funds_recovery(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<FundsRecoveryView>> {
    Ok(Json(FundsRecoveryView::from(&find(&state, &tenant, account, &id).await?)))
}

/// Change the situation type, the contact (and the details) of a recovery that is not final
/// (BTG's PUT: the whole information is sent).
#[utoipa::path(patch, path = "/v1/dict/funds-recoveries/{id}", tag = "MED", request_body = UpdateFundsRecovery,
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = FundsRecoveryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn update_funds_recovery(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<UpdateFundsRecovery>,
) -> ApiResult<Json<FundsRecoveryView>> {
    if body.situation_type.is_none() && body.contact_information.is_none() && body.report_details.is_none() {
        return Err(missing("situationType, contactInformation or reportDetails"));
    }
    let situation_type = body.situation_type.as_deref().map(situation).transpose()?;
    let new_contact = body.contact_information.as_ref().map(contact).transpose()?;
    let r = find(&state, &tenant, account, &id).await?;
    r.status.update_information().map_err(refused)?;
    let situation_type = situation_type.unwrap_or(r.situation_type);
    let details = details(body.report_details.as_deref().or(r.report_details.as_deref()), situation_type)?;
    let contact = new_contact
        .unwrap_or_else(|| ContactInformation { email: r.contact_email.clone(), phone: r.contact_phone.clone() });
    let remote = btg_of(&state, &tenant)?
        .update_funds_recovery(&r.btg_id, &FundsRecoveryUpdate { situation_type, report_details: details, contact })
        .await
        .map_err(|e| btg_error("updating the funds recovery", e))?;
    let r = change_recorded(&state, tenant.id, r.id, |local| merge_remote(local, &remote)).await?;
    Ok(Json(FundsRecoveryView::from(&r)))
}

/// Cancel a recovery before its refund started (before REFUNDING; afterwards `PIX-0211`).
#[utoipa::path(post, path = "/v1/dict/funds-recoveries/{id}/cancel", tag = "MED",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = FundsRecoveryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn cancel_funds_recovery(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<FundsRecoveryView>> {
    let r = find(&state, &tenant, account, &id).await?;
    r.status.cancel().map_err(refused)?;
    let remote = btg_of(&state, &tenant)?
        .cancel_funds_recovery(&r.btg_id)
        .await
        .map_err(|e| btg_error("cancelling the funds recovery", e))?;
    let r = change_recorded(&state, tenant.id, r.id, |local| merge_remote(local, &remote)).await?;
    tracing::info!(recovery = %r.id, "funds recovery cancelled");
    Ok(Json(FundsRecoveryView::from(&r)))
}

/// Ask DICT to open the refund requests (ANALYSED → REFUNDING; otherwise `PIX-0211`). When our
/// record is not ANALYSED yet, BTG's is read first: its event may still be on its way.
#[utoipa::path(post, path = "/v1/dict/funds-recoveries/{id}/refund", tag = "MED",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = FundsRecoveryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn refund_funds_recovery(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<FundsRecoveryView>> {
    let mut r = find(&state, &tenant, account, &id).await?;
    let btg = btg_of(&state, &tenant)?;
    if r.status.request_refund().is_err() && !r.status.is_final() {
        let current = btg.funds_recovery(&r.btg_id).await.map_err(|e| btg_error("reading the funds recovery", e))?;
        r = change_recorded(&state, tenant.id, r.id, |local| merge_remote(local, &current)).await?;
    }
    r.status.request_refund().map_err(refused)?;
    let remote = btg.refund_funds_recovery(&r.btg_id).await.map_err(|e| btg_error("requesting the refunds", e))?;
    let r = change_recorded(&state, tenant.id, r.id, |local| merge_remote(local, &remote)).await?;
    tracing::info!(recovery = %r.id, status = %r.status, "funds recovery refund requested");
    Ok(Json(FundsRecoveryView::from(&r)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingParametersView {
    #[schema(value_type = Option<String>, example = "200.00")]
    pub min_transaction_amount: Option<Money>,
    pub max_transactions: Option<u32>,
    pub hop_window: Option<String>,
    pub max_hops: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedPersonView {
    pub id: String,
    /// `NATURAL_PERSON` or `LEGAL_PERSON`.
    #[serde(rename = "type")]
    pub person_type: String,
    pub tax_id_number: String,
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedAccountView {
    pub id: String,
    /// ISPB of the account's participant.
    pub participant: String,
    pub branch: Option<String>,
    pub number: Option<String>,
    #[serde(rename = "type")]
    pub account_type: Option<String>,
    /// The holder, one of `persons`.
    pub owner_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedTransactionView {
    /// EndToEndId.
    pub id: String,
    pub debtor_account_id: String,
    pub creditor_account_id: String,
    #[schema(value_type = String, example = "100.00")]
    pub amount: Money,
    /// What can still be returned from it.
    #[schema(value_type = String, example = "50.00")]
    pub refundable_amount: Money,
    pub settlement_time: DateTime<Utc>,
}

/// DICT v2's tracking graph.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingGraphView {
    pub parameters: TrackingParametersView,
    pub persons: Vec<TrackedPersonView>,
    pub accounts: Vec<TrackedAccountView>,
    pub transactions: Vec<TrackedTransactionView>,
}

fn money(m: pix_integrations::Money) -> Money {
    Money::from_centavos(m.centavos())
}

impl From<btg::TrackingGraph> for TrackingGraphView {
    fn from(g: btg::TrackingGraph) -> Self {
        TrackingGraphView {
            parameters: TrackingParametersView {
                min_transaction_amount: g.parameters.min_transaction_amount.map(money),
                max_transactions: g.parameters.max_transactions,
                hop_window: g.parameters.hop_window,
                max_hops: g.parameters.max_hops,
            },
            persons: g
                .persons
                .into_iter()
                .map(|p| TrackedPersonView {
                    id: p.id,
                    person_type: p.person_type.as_str().to_owned(),
                    tax_id_number: p.tax_id_number,
                    name: p.name,
                })
                .collect(),
            accounts: g
                .accounts
                .into_iter()
                .map(|a| TrackedAccountView {
                    id: a.id,
                    participant: a.participant,
                    branch: a.branch,
                    number: a.number,
                    account_type: a.account_type.map(|t| t.as_str().to_owned()),
                    owner_id: a.owner_id,
                })
                .collect(),
            transactions: g
                .transactions
                .into_iter()
                .map(|t| TrackedTransactionView {
                    id: t.id,
                    debtor_account_id: t.debtor_account_id,
                    creditor_account_id: t.creditor_account_id,
                    amount: money(t.amount),
                    refundable_amount: money(t.refundable_amount),
                    settlement_time: t.settlement_time,
                })
                .collect(),
        }
    }
}

/// Where the money went, read from DICT at every call (never stored). Before TRACKED DICT has no
/// graph yet: `PIX-0117`.
#[utoipa::path(get, path = "/v1/dict/funds-recoveries/{id}/tracking-graph", tag = "MED",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = TrackingGraphView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn tracking_graph(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<TrackingGraphView>> {
    let r = find(&state, &tenant, account, &id).await?;
    let graph = btg_of(&state, &tenant)?
        .tracking_graph(&r.btg_id)
        .await
        .map_err(|e| btg_error("reading the tracking graph", e))?;
    Ok(Json(TrackingGraphView::from(graph)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryInfractionReports {
    pub infraction_reports: Vec<InfractionReportView>,
}

/// The infraction reports of the recovery (as recorded from BTG's events), oldest first.
#[utoipa::path(get, path = "/v1/dict/funds-recoveries/{id}/infraction-reports", tag = "MED",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = RecoveryInfractionReports), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn recovery_infraction_reports(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<RecoveryInfractionReports>> {
    let r = find(&state, &tenant, account, &id).await?;
    let filter = InfractionFilter { fund_recovery_id: Some(r.id.to_string()), ..InfractionFilter::default() };
    let (items, _) = state.store.list_infraction_reports(tenant.id, &filter, LINKED_MAX, 0).await?;
    Ok(Json(RecoveryInfractionReports { infraction_reports: items.iter().map(InfractionReportView::from).collect() }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryRefunds {
    pub refunds: Vec<RefundRequestView>,
}

/// The refund requests DICT opened for the recovery, oldest first.
#[utoipa::path(get, path = "/v1/dict/funds-recoveries/{id}/refunds", tag = "MED",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = RecoveryRefunds), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn recovery_refunds(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<RecoveryRefunds>> {
    let r = find(&state, &tenant, account, &id).await?;
    let filter = RefundFilter { fund_recovery_id: Some(r.id.to_string()), ..RefundFilter::default() };
    let (items, _) = state.store.list_refund_requests(tenant.id, &filter, LINKED_MAX, 0).await?;
    Ok(Json(RecoveryRefunds { refunds: items.iter().map(RefundRequestView::from).collect() }))
}

// ============================================================================================ BTG events

/// A recovery BTG reports that we have no record of, although its root is one of our cash-outs:
/// we opened it and lost BTG's answer (a crash or timeout after BTG created it). Recorded with
/// the account that paid; the tracking parameters sent are unknown.
async fn adopt(state: &Dict, tenant: &Tenant, remote: &btg::FundsRecovery) -> ApiResult<()> {
    let Some(root) =
        state.store.transfer_by_end_to_end_id(tenant.id, Direction::Cashout, &remote.root_end_to_end_id).await?
    else {
        tracing::warn!(btg_id = %remote.id, "FUNDS_RECOVERY of a recovery that is not ours: ignored");
        return Ok(());
    };
    let now = state.clock.now();
    let recovery = FundsRecovery {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        account_id: root.account_id,
        btg_id: remote.id.clone(),
        status: remote.status,
        root_transaction_id: remote.root_end_to_end_id.clone(),
        situation_type: remote.situation_type,
        reporter_participant: remote.reporter_participant.clone(),
        contact_email: remote.contact.email.clone(),
        contact_phone: remote.contact.phone.clone(),
        report_details: remote.report_details.clone(),
        tracking: TrackingParameters::default(),
        btg_updated_at: remote.updated_at,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    if insert_recorded(state, &recovery).await?.is_none() {
        // Recorded meanwhile by the create: merge into that record instead.
        let local = state.store.funds_recovery_by_btg_id(tenant.id, &remote.id).await?.ok_or_else(not_found)?;
        change_recorded(state, tenant.id, local.id, |r| merge_remote(r, remote)).await?;
    }
    Ok(())
}

async fn event_tenant(state: &Dict, event: &InboundEvent) -> Result<Tenant, JobError> {
    state
        .store
        .tenant(event.tenant_id)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Permanent("unknown tenant".into()))
}

/// `FUNDS_RECOVERY`: a recovery changed at DICT. Merged (never backwards), then FUNDS_RECOVERY is
/// recorded with the whole recovery in the same transaction; a redelivery changes nothing and
/// records nothing.
pub struct FundsRecoveryEvents(pub Dict);

impl InboundHandler for FundsRecoveryEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let state = &self.0;
            let tenant = event_tenant(state, event).await?;
            let BtgEvent::FundsRecovery(remote) = super::decode_event(event)? else {
                return Err(JobError::Permanent("FUNDS_RECOVERY without a funds recovery".into()));
            };
            let local = state.store.funds_recovery_by_btg_id(tenant.id, &remote.id).await.map_err(retry)?;
            match local {
                Some(local) => {
                    change_recorded(state, tenant.id, local.id, |r| merge_remote(r, &remote)).await.map(drop)
                }
                None => adopt(state, &tenant, &remote).await,
            }
            .map_err(|e| retry(e.0))
        })
    }
}

/// The `FUNDS_RECOVERY_EVENT` payload: DICT's notification, naming our recovery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryNotice<'a> {
    id: &'a str,
    event: pix_core::med::FundsRecoveryEventType,
    entity_type: &'a str,
    entity_id: Uuid,
    timestamp: DateTime<Utc>,
}

/// `FUNDS_RECOVERY_EVENTS`: DICT's lifecycle notifications, passed through as FUNDS_RECOVERY_EVENT
/// with our recovery id and no change to the recovery. Those of recoveries we do not have are
/// dropped. A redelivered webhook is deduplicated by its id before it reaches here.
pub struct FundsRecoveryNotices(pub Dict);

impl InboundHandler for FundsRecoveryNotices {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let state = &self.0;
            let tenant = event_tenant(state, event).await?;
            let BtgEvent::FundsRecoveryEvents(notice) = super::decode_event(event)? else {
                return Err(JobError::Permanent("FUNDS_RECOVERY_EVENTS without a notification".into()));
            };
            let Some(recovery) =
                state.store.funds_recovery_by_btg_id(tenant.id, &notice.entity_id).await.map_err(retry)?
            else {
                tracing::warn!(btg_id = %notice.entity_id, "FUNDS_RECOVERY_EVENTS of a recovery we do not have: dropped");
                return Ok(());
            };
            let payload = RecoveryNotice {
                id: &notice.id,
                event: notice.event,
                entity_type: FUNDS_RECOVERY,
                entity_id: recovery.id,
                timestamp: notice.timestamp,
            };
            let payload = serde_json::to_value(&payload).map_err(|e| JobError::Permanent(e.to_string()))?;
            let entity_id = recovery.id.to_string();
            let mut tx = state.store.begin().await.map_err(retry)?;
            let outbound = OutboundEvent {
                tenant_id: tenant.id,
                flow_type: "DICT",
                entity_type: FUNDS_RECOVERY_EVENT,
                entity_id: &entity_id,
                payload: &payload,
            };
            let now = state.clock.now();
            route_and_record(&mut tx, passed_through_id(event), &outbound, now, now).await.map_err(retry)?;
            tx.commit().await.map_err(retry)?;
            Ok(())
        })
    }
}

/// The outbound event id of a passed-through notification, derived from the inbound event: a
/// handler run again for the same webhook (a job retried after its commit) records nothing new.
/// A UUIDv7 of the webhook's arrival, so that events keep their time order as the others do.
fn passed_through_id(event: &InboundEvent) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}|{}|{}", event.tenant_id, event.source, event.event_id));
    let mut rest = [0u8; 10];
    rest.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(event.received_at.timestamp_millis()).unwrap_or_default();
    uuid::Builder::from_unix_timestamp_millis(millis, &rest).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts() {
        for ok in ["fraud-ops@example.com", "a.b+c@sub.example.com.br"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in
            ["", "no-at.example.com", "@example.com", "a@localhost", "a@b@example.com", "a b@example.com", "a@.com"]
        {
            assert!(!valid_email(bad), "{bad}");
        }
        for ok in ["+5511999999999", "+12", "+123456789012345"] {
            assert!(valid_phone(ok), "{ok}");
        }
        for bad in ["5511999999999", "+0511999999", "+1", "+1234567890123456", "+55 11 99999", "+55119999x"] {
            assert!(!valid_phone(bad), "{bad}");
        }
    }
}
