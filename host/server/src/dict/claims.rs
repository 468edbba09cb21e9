//! Claims (`/v1/dict/claims`) in both roles: as claimer (we ask another participant for a key)
//! and as donor (another participant claims one of ours; it arrives as a BTG `DICT_CLAIM`
//! event). Every status change is applied together with its effect on our entries (donor
//! confirmation deactivates ours, completion creates the claimer's), its VSync change and an
//! outbound CLAIM event, in one transaction.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use pix_core::dict::{
    ClaimReason, ClaimRole, ClaimStatus, ClaimType, EntryStatus, check_acknowledge, check_cancel, check_complete,
    check_confirm, claim_allowed, max_keys_per_account, ownership_completion_period, resolution_period,
};
use pix_core::document::PersonType;
use pix_core::error::ErrorCode;
use pix_core::mask::mask_raw_key;
use pix_core::pix_key::{PixKey, PixKeyType};
use pix_integrations::btg::{self, BtgEvent, ClaimAction, DictAccount, DictOwner, NewClaim, Reason};
use pix_store::dict::{Claim, ClaimFilter, Entry, insert_claim, insert_entry, save_claim, save_entry, toggle_vsync};
use pix_store::inbound::InboundEvent;
use pix_store::tenants::Tenant;
use pix_store::{StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Dict;
use super::entries::{account_type, btg_key_type, opening_date, parse_key_type};
use super::{btg_error, descending, header, invalid, paging, parse_enum, record_event, required_header, retry};
use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppJson, AppPath, AppQuery};
use crate::inbound::InboundHandler;
use crate::routes::{ErrorResponse, Page};
use crate::worker::{JobError, JobFuture};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_claim, list_claims))
        .routes(routes!(get_claim))
        .routes(routes!(acknowledge_claim))
        .routes(routes!(confirm_claim))
        .routes(routes!(cancel_claim))
        .routes(routes!(complete_claim))
}

// ------------------------------------------------------------------------------------ wire

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateClaim {
    /// `PORTABILITY` (CPF, CNPJ, PHONE, EMAIL) or `OWNERSHIP` (PHONE only).
    #[serde(rename = "type")]
    #[schema(example = "PORTABILITY", pattern = "^(PORTABILITY|OWNERSHIP)$")]
    pub claim_type: String,
    #[schema(example = "+5511987654321", min_length = 1, max_length = 77)]
    pub key: String,
    #[schema(example = "PHONE", pattern = "^(CPF|CNPJ|EMAIL|PHONE)$")]
    pub key_type: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CancelClaim {
    /// `USER_REQUESTED` (default), `ACCOUNT_CLOSURE`, `DEFAULT_OPERATION`, `FRAUD`,
    /// `RECONCILIATION` or `RFB_VALIDATION`.
    #[schema(pattern = "^(USER_REQUESTED|ACCOUNT_CLOSURE|DEFAULT_OPERATION|FRAUD|RECONCILIATION|RFB_VALIDATION)$")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    pub id: Uuid,
    /// The claim's id at DICT.
    pub bacen_claim_id: String,
    pub key: String,
    pub key_type: String,
    #[serde(rename = "type")]
    pub claim_type: String,
    /// `OPEN`, `WAITING_RESOLUTION`, `CONFIRMED`, `CANCELLED`, `COMPLETED`.
    pub status: String,
    /// Our side: `CLAIMER` or `DONOR`.
    pub role: String,
    pub claimer_participant: String,
    pub donor_participant: String,
    pub account_id: Option<Uuid>,
    pub entry_id: Option<Uuid>,
    /// D+7: until then the donor may answer.
    pub resolution_period_end: DateTime<Utc>,
    /// Ownership: D+30 (earlier when the donor confirms with USER_REQUESTED).
    pub completion_period_end: Option<DateTime<Utc>>,
    pub confirm_reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Claim> for ClaimView {
    fn from(c: &Claim) -> Self {
        ClaimView {
            id: c.id,
            bacen_claim_id: c.btg_claim_id.clone(),
            key: c.key.clone(),
            key_type: c.key_type.clone(),
            claim_type: c.claim_type.clone(),
            status: c.status.clone(),
            role: c.role.clone(),
            claimer_participant: c.claimer_participant.clone(),
            donor_participant: c.donor_participant.clone(),
            account_id: c.account_id,
            entry_id: c.entry_id,
            resolution_period_end: c.resolution_period_end,
            completion_period_end: c.completion_period_end,
            confirm_reason: c.confirm_reason.clone(),
            cancel_reason: c.cancel_reason.clone(),
            cancelled_by: c.cancelled_by.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClaimQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[serde(rename = "type")]
    #[param(schema_with = crate::openapi::one_of::<pix_core::dict::ClaimType>)]
    pub claim_type: Option<String>,
    #[param(schema_with = crate::openapi::one_of::<pix_core::dict::ClaimStatus>)]
    pub status: Option<String>,
    pub key_value: Option<String>,
    #[param(schema_with = crate::openapi::one_of::<pix_core::dict::ClaimRole>)]
    pub role: Option<String>,
    pub bacen_claim_id: Option<String>,
    /// `desc` by default.
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
}

// ------------------------------------------------------------------------------------ helpers

fn claim_not_found() -> ApiError {
    ApiError::new(ErrorCode::ClaimNotFound, "claim not found")
}

fn refused(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidClaimStatus, message)
}

struct Parsed {
    role: ClaimRole,
    claim_type: ClaimType,
    status: ClaimStatus,
}

fn parsed(c: &Claim) -> ApiResult<Parsed> {
    Ok(Parsed {
        role: c.role.parse().map_err(ApiError::internal)?,
        claim_type: c.claim_type.parse().map_err(ApiError::internal)?,
        status: c.status.parse().map_err(ApiError::internal)?,
    })
}

fn btg_reason(r: ClaimReason) -> Reason {
    match r {
        ClaimReason::UserRequested => Reason::UserRequested,
        ClaimReason::AccountClosure => Reason::AccountClosure,
        ClaimReason::DefaultOperation => Reason::DefaultOperation,
        ClaimReason::Fraud => Reason::Fraud,
        ClaimReason::Reconciliation => Reason::Reconciliation,
        ClaimReason::RfbValidation => Reason::RfbValidation,
    }
}

fn account_json(a: &DictAccount) -> Value {
    json!({"participant": a.participant, "branch": a.branch, "number": a.number,
           "type": a.account_type.as_str(), "openingDate": a.opening_date})
}

fn owner_json(o: &DictOwner) -> Value {
    json!({"type": o.person_type.as_str(), "taxIdNumber": o.tax_id, "name": o.name, "tradeName": o.trade_name})
}

fn text(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_owned()
}

/// The claim's own account (a claim of ours in `X-Account-Id`).
async fn owned_claim(state: &Dict, tenant: &Tenant, account: Uuid, id: Uuid) -> ApiResult<Claim> {
    state
        .store
        .dict_claim(tenant.id, id)
        .await?
        .filter(|c| c.account_id.is_none_or(|a| a == account))
        .ok_or_else(claim_not_found)
}

/// Deadlines: D+7 for the donor's answer; ownership completion D+30 from creation (spec 002).
fn periods(claim_type: ClaimType, remote: &btg::Claim, now: DateTime<Utc>) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let resolution_end = remote.resolution_period_end.unwrap_or(now + resolution_period());
    let created = resolution_end - resolution_period();
    let completion_end = (claim_type == ClaimType::Ownership).then(|| created + ownership_completion_period());
    (resolution_end, completion_end)
}

fn new_claim_row(tenant: &Tenant, role: ClaimRole, remote: &btg::Claim, now: DateTime<Utc>) -> ApiResult<Claim> {
    let claim_type: ClaimType = remote.claim_type.as_str().parse().map_err(ApiError::internal)?;
    let (resolution_end, completion_end) = periods(claim_type, remote, now);
    Ok(Claim {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        btg_claim_id: remote.id.clone(),
        role: role.as_str().to_owned(),
        claim_type: claim_type.as_str().to_owned(),
        key: remote.key.clone(),
        key_type: remote.key_type.as_str().to_owned(),
        status: ClaimStatus::Open.as_str().to_owned(),
        claimer_participant: remote.claimer_participant.clone(),
        donor_participant: remote.donor_participant.clone(),
        account_id: None,
        entry_id: None,
        claimer_account: account_json(&remote.claimer_account),
        claimer: owner_json(&remote.claimer),
        resolution_period_end: resolution_end,
        completion_period_end: completion_end,
        confirm_reason: None,
        cancel_reason: None,
        cancelled_by: None,
        completion_request_id: None,
        btg_last_modified: remote.last_modified,
        version: 0,
        created_at: now,
        updated_at: now,
    })
}

/// Applies DICT's view of a claim to our record, with its effects on our entries, in `tx`.
/// Returns whether anything changed.
async fn apply_remote(
    state: &Dict,
    tx: &mut Tx,
    tenant: &Tenant,
    claim: &mut Claim,
    remote: &btg::Claim,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    let old: ClaimStatus = claim.status.parse().map_err(ApiError::internal)?;
    let new: ClaimStatus = remote.status.as_str().parse().map_err(ApiError::internal)?;
    if remote.last_modified < claim.btg_last_modified || (old.is_final() && new != old) {
        return Ok(false); // A reordered, older event.
    }
    let role: ClaimRole = claim.role.parse().map_err(ApiError::internal)?;
    let claim_type: ClaimType = claim.claim_type.parse().map_err(ApiError::internal)?;
    claim.btg_last_modified = remote.last_modified;
    claim.confirm_reason = remote.confirm_reason.map(|r| r.as_str().to_owned()).or(claim.confirm_reason.take());
    claim.cancel_reason = remote.cancel_reason.map(|r| r.as_str().to_owned()).or(claim.cancel_reason.take());
    claim.cancelled_by = remote.cancelled_by.clone().or(claim.cancelled_by.take());
    if new == old {
        return Ok(false);
    }
    claim.status = new.as_str().to_owned();
    claim.updated_at = now;
    // USER_REQUESTED moves the ownership completion period up to the confirmation.
    if new == ClaimStatus::Confirmed
        && claim_type == ClaimType::Ownership
        && remote.confirm_reason == Some(Reason::UserRequested)
    {
        claim.completion_period_end = Some(now);
    }
    match (role, new) {
        (ClaimRole::Donor, ClaimStatus::Confirmed | ClaimStatus::Completed) => {
            let reason = claim.confirm_reason.clone().unwrap_or_else(|| "USER_REQUESTED".into());
            release_donated_entry(state, tx, tenant, claim, &reason, now).await?;
        }
        (ClaimRole::Claimer, ClaimStatus::Completed) => create_claimed_entry(tx, tenant, claim, now).await?,
        _ => {}
    }
    Ok(true)
}

/// The donor's side of a confirmation: our entry goes INACTIVE and its CID leaves the VSync.
async fn release_donated_entry(
    state: &Dict,
    tx: &mut Tx,
    tenant: &Tenant,
    claim: &mut Claim,
    reason: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    // Read outside `tx` to find the row; the write below is fenced by the entry's version.
    let entry = match claim.entry_id {
        Some(id) => state.store.dict_entry(tenant.id, id).await?,
        None => state.store.live_dict_entry_by_key(tenant.id, &claim.key).await?,
    };
    let Some(mut entry) = entry.filter(|e| e.status == EntryStatus::Active) else {
        return Ok(());
    };
    let old = entry.cid.take();
    entry.status = EntryStatus::Inactive;
    entry.reason = reason.to_owned();
    entry.deleted_at = Some(now);
    entry.updated_at = now;
    entry.pending_op = None;
    entry.pending_payload = None;
    entry.pending_since = None;
    if save_entry(tx, &entry).await? {
        toggle_vsync(tx, tenant.id, &entry.key_type, old.as_deref(), None, now).await?;
        tracing::info!(claim = %claim.id, entry = %entry.id, "donated key released");
    }
    Ok(())
}

/// The claimer's side of a completion: a new ACTIVE entry for the claiming account, keyed by the
/// completion's RequestId, its CID added to the VSync.
async fn create_claimed_entry(tx: &mut Tx, tenant: &Tenant, claim: &mut Claim, now: DateTime<Utc>) -> ApiResult<()> {
    let account = &claim.claimer_account;
    let owner = &claim.claimer;
    let request_id =
        claim.completion_request_id.as_deref().and_then(|r| Uuid::parse_str(r).ok()).unwrap_or_else(Uuid::new_v4);
    let mut entry = Entry {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        account_id: claim.account_id,
        key: Some(claim.key.clone()),
        key_type: claim.key_type.clone(),
        status: EntryStatus::Active,
        pending_op: None,
        pending_payload: None,
        pending_since: None,
        participant: tenant.ispb.clone(),
        branch: text(account, "branch"),
        account_number: text(account, "number"),
        account_type: account["type"].as_str().unwrap_or("CACC").to_owned(),
        opening_date: account["openingDate"]
            .as_str()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.to_utc()),
        owner_type: owner["type"].as_str().unwrap_or(PersonType::Natural.as_str()).to_owned(),
        owner_tax_id: text(owner, "taxIdNumber"),
        owner_name: text(owner, "name"),
        owner_trade_name: owner["tradeName"].as_str().map(str::to_owned),
        request_id,
        cid: None,
        reason: "USER_REQUESTED".into(),
        metadata: json!({"claimId": claim.id}),
        key_ownership_date: Some(now),
        version: 0,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    entry.cid = entry.compute_cid().map(|c| c.to_hex());
    match insert_entry(tx, &entry).await {
        Ok(()) => {
            toggle_vsync(tx, tenant.id, &entry.key_type, None, entry.cid.as_deref(), now).await?;
            claim.entry_id = Some(entry.id);
            tracing::info!(claim = %claim.id, entry = %entry.id, key = %mask_raw_key(&claim.key), "claimed key registered");
            Ok(())
        }
        // Already registered here (a repeated completion): nothing to add.
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Saves the claim (fenced by its version) and records its CLAIM event, in `tx`. `false` when
/// another writer got there first (a newer version, or the same claim inserted): read it again.
async fn save_with_event(tx: &mut Tx, claim: &mut Claim, insert: bool, now: DateTime<Utc>) -> ApiResult<bool> {
    if insert {
        match insert_claim(tx, claim).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    } else if !save_claim(tx, claim).await? {
        return Ok(false);
    } else {
        claim.version += 1;
    }
    record_event(tx, claim.tenant_id, "CLAIM", claim.id, &ClaimView::from(&*claim), now).await?;
    Ok(true)
}

// ------------------------------------------------------------------------------------ create

/// Open a claim for a key held at another participant, for the account in `X-Account-Id`.
#[utoipa::path(post, path = "/v1/dict/claims", tag = "DICT", request_body = CreateClaim,
    params(("X-Account-Id" = Uuid, Header)),
    security(("tenant_token" = [])),
    responses((status = 201, body = ClaimView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn create_claim(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppJson(body): AppJson<CreateClaim>,
) -> ApiResult<(StatusCode, Json<ClaimView>)> {
    let claim_type: ClaimType = parse_enum("type", &body.claim_type)?;
    let kt = parse_key_type("keyType", &body.key_type)?;
    let key = PixKey::parse(kt, &body.key).map_err(|e| invalid(format!("key: {e}")))?.value().to_owned();
    if !claim_allowed(kt, claim_type) {
        return Err(ApiError::new(
            ErrorCode::ClaimNotAllowed,
            format!("{claim_type} claims are not allowed for {kt} keys (OWNERSHIP: PHONE only; EVP: never)"),
        ));
    }
    let holder = &account.holder;
    if matches!(kt, PixKeyType::Cpf | PixKeyType::Cnpj) && key != holder.document {
        return Err(ApiError::new(
            ErrorCode::KeyHolderMismatch,
            format!("a {kt} key can only be claimed by its holder"),
        ));
    }
    if state.store.live_dict_entry_by_key(tenant.id, &key).await?.is_some() {
        return Err(ApiError::new(ErrorCode::EntryAlreadyExists, "the key is already registered at this institution"));
    }
    if let Some(open) = state.store.locking_dict_claim(tenant.id, &key).await? {
        return Err(ApiError::new(
            ErrorCode::ClaimAlreadyOpen,
            format!("claim {} is already open for this key", open.id),
        ));
    }
    let limit = max_keys_per_account(holder.person_type);
    if state.store.count_live_dict_entries(tenant.id, account.id).await? >= limit as i64 {
        return Err(ApiError::new(ErrorCode::EntryLimitExceeded, format!("the account already has {limit} keys")));
    }
    let request = NewClaim {
        claim_type: if claim_type == ClaimType::Ownership {
            btg::ClaimType::Ownership
        } else {
            btg::ClaimType::Portability
        },
        key: key.clone(),
        key_type: btg_key_type(kt),
        claimer_account: DictAccount {
            participant: tenant.ispb.clone(),
            branch: holder.branch.clone(),
            number: holder.account_number.clone(),
            account_type: account_type(&holder.account_type).unwrap_or(btg::AccountType::Cacc),
            opening_date: opening_date(holder.opening_date.as_deref()),
        },
        claimer: DictOwner {
            person_type: holder.person_type,
            tax_id: holder.document.clone(),
            name: holder.name.clone(),
            trade_name: holder.trade_name.clone().filter(|_| holder.person_type == PersonType::Legal),
        },
        request_id: Uuid::new_v4(),
    };
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    let remote = btg.create_claim(&request).await.map_err(|e| btg_error("opening the claim", e))?;
    let claim = record_opened(&state, &tenant, account.id, &remote).await?;
    tracing::info!(claim = %claim.id, claim_type = %claim_type, key = %mask_raw_key(&key), "claim opened");
    Ok((StatusCode::CREATED, Json(ClaimView::from(&claim))))
}

/// Records the claim BTG opened for `account`. Its DICT_CLAIM event may be processed first or at
/// the same time: then that record is completed with the account, and a lost race (the event
/// inserted or saved it meanwhile) reads it again instead of failing the request.
async fn record_opened(state: &Dict, tenant: &Tenant, account: Uuid, remote: &btg::Claim) -> ApiResult<Claim> {
    for _ in 0..5 {
        let now = state.clock.now();
        let mut tx = state.store.begin().await?;
        let claim = match state.store.dict_claim_by_btg_id(tenant.id, &remote.id).await? {
            Some(mut existing) => {
                existing.account_id = Some(account);
                if !save_claim(&mut tx, &existing).await? {
                    continue;
                }
                existing.version += 1;
                existing
            }
            None => {
                let mut claim = new_claim_row(tenant, ClaimRole::Claimer, remote, now)?;
                claim.account_id = Some(account);
                claim.status = remote.status.as_str().to_owned();
                if !save_with_event(&mut tx, &mut claim, true, now).await? {
                    continue;
                }
                claim
            }
        };
        tx.commit().await?;
        return Ok(claim);
    }
    Err(ApiError::new(ErrorCode::InvalidClaimStatus, "the claim keeps changing at DICT; ask for it again"))
}

// ------------------------------------------------------------------------------------ read

/// The tenant's claims in both roles, newest first by default.
#[utoipa::path(get, path = "/v1/dict/claims", tag = "DICT", params(ClaimQuery), security(("tenant_token" = [])),
    responses((status = 200, body = Page<ClaimView>), (status = 400, body = ErrorResponse)))]
async fn list_claims(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(q): AppQuery<ClaimQuery>,
) -> ApiResult<Json<Page<ClaimView>>> {
    let (limit, offset, page, size) = paging(q.page, q.limit)?;
    if let Some(t) = &q.claim_type {
        parse_enum::<ClaimType>("type", t)?;
    }
    if let Some(s) = &q.status {
        parse_enum::<ClaimStatus>("status", s)?;
    }
    if let Some(r) = &q.role {
        parse_enum::<ClaimRole>("role", r)?;
    }
    let filter = ClaimFilter {
        claim_type: q.claim_type,
        status: q.status,
        key: q.key_value,
        role: q.role,
        btg_claim_id: q.bacen_claim_id,
        descending: descending(q.sort_order.as_deref(), true)?,
    };
    let (items, total) = state.store.list_dict_claims(tenant.id, &filter, limit, offset).await?;
    Ok(Json(Page { items: items.iter().map(ClaimView::from).collect(), page, limit: size, total }))
}

/// One claim.
#[utoipa::path(get, path = "/v1/dict/claims/{claim_id}", tag = "DICT",
    params(("claim_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = ClaimView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_claim(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<ClaimView>> {
    Ok(Json(ClaimView::from(&owned_claim(&state, &tenant, account, id).await?)))
}

// ------------------------------------------------------------------------------------ actions

/// Sends `action` to BTG and applies the answer (plus `before_save` edits) to the claim.
async fn act(
    state: &Dict,
    tenant: &Tenant,
    mut claim: Claim,
    action: ClaimAction,
    before_save: impl FnOnce(&mut Claim),
) -> ApiResult<Claim> {
    let btg = state.integrations.for_tenant(tenant)?.btg.clone();
    let remote = btg.claim_action(&claim.btg_claim_id, action).await.map_err(|e| btg_error("claim operation", e))?;
    let now = state.clock.now();
    before_save(&mut claim);
    let mut tx = state.store.begin().await?;
    if apply_remote(state, &mut tx, tenant, &mut claim, &remote, now).await? {
        if !save_with_event(&mut tx, &mut claim, false, now).await? {
            // BTG's DICT_CLAIM event of this very change was applied first: that record stands.
            drop(tx);
            return state.store.dict_claim(tenant.id, claim.id).await?.ok_or_else(claim_not_found);
        }
        tx.commit().await?;
    }
    Ok(claim)
}

/// Donor: acknowledge a claim (OPEN → WAITING_RESOLUTION); repeating it is harmless.
#[utoipa::path(post, path = "/v1/dict/claims/{claim_id}/acknowledge", tag = "DICT",
    params(("claim_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = ClaimView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn acknowledge_claim(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<ClaimView>> {
    let claim = owned_claim(&state, &tenant, account, id).await?;
    let p = parsed(&claim)?;
    if !check_acknowledge(p.role, p.status).map_err(refused)? {
        return Ok(Json(ClaimView::from(&claim)));
    }
    let claim = act(&state, &tenant, claim, ClaimAction::Acknowledge, |_| {}).await?;
    Ok(Json(ClaimView::from(&claim)))
}

const CONFIRM_REASONS: [(&str, ClaimReason); 5] = [
    ("USER_REQUESTED", ClaimReason::UserRequested),
    ("ACCOUNT_CLOSURE", ClaimReason::AccountClosure),
    ("DEFAULT_OPERATION", ClaimReason::DefaultOperation),
    ("FRAUD", ClaimReason::Fraud),
    ("RECONCILIATION", ClaimReason::Reconciliation),
];

/// Donor: release the key (WAITING_RESOLUTION → CONFIRMED); our entry becomes INACTIVE.
#[utoipa::path(post, path = "/v1/dict/claims/{claim_id}/confirm", tag = "DICT",
    params(("claim_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header),
           ("X-Reason" = String, Header, pattern = "^(USER_REQUESTED|ACCOUNT_CLOSURE|DEFAULT_OPERATION|FRAUD|RECONCILIATION)$")),
    security(("tenant_token" = [])),
    responses((status = 200, body = ClaimView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn confirm_claim(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<ClaimView>> {
    let reason = required_header(&headers, "X-Reason", &CONFIRM_REASONS)?;
    let claim = owned_claim(&state, &tenant, account, id).await?;
    let p = parsed(&claim)?;
    check_confirm(p.role, p.claim_type, p.status, reason, state.clock.now(), claim.resolution_period_end)
        .map_err(refused)?;
    let claim = act(&state, &tenant, claim, ClaimAction::Confirm(btg_reason(reason)), |_| {}).await?;
    Ok(Json(ClaimView::from(&claim)))
}

/// Claimer or donor: cancel the claim (who may, with which reason and when: see DICT's table).
#[utoipa::path(post, path = "/v1/dict/claims/{claim_id}/cancel", tag = "DICT", request_body = CancelClaim,
    params(("claim_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = ClaimView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn cancel_claim(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ClaimView>> {
    // The body is optional (`{}` or nothing).
    let body: CancelClaim = if body.is_empty() { CancelClaim::default() } else { crate::extract::parse_json(&body)? };
    let reason: ClaimReason = match body.reason.as_deref() {
        None => ClaimReason::UserRequested,
        Some(r) => parse_enum("reason", r)?,
    };
    let claim = owned_claim(&state, &tenant, account, id).await?;
    let p = parsed(&claim)?;
    check_cancel(p.role, p.claim_type, p.status, reason, state.clock.now(), claim.resolution_period_end)
        .map_err(refused)?;
    let claim = act(&state, &tenant, claim, ClaimAction::Cancel(btg_reason(reason)), |_| {}).await?;
    Ok(Json(ClaimView::from(&claim)))
}

/// Claimer: complete a CONFIRMED claim (ownership: after the completion period); the key is
/// registered to the claiming account. `X-Request-Id` makes it idempotent.
#[utoipa::path(post, path = "/v1/dict/claims/{claim_id}/complete", tag = "DICT",
    params(("claim_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header),
           ("X-Request-Id" = Option<Uuid>, Header, description = "RequestId of the new entry")),
    security(("tenant_token" = [])),
    responses((status = 200, body = ClaimView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn complete_claim(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<ClaimView>> {
    let requested = match header(&headers, "x-request-id") {
        None => None,
        Some(v) => Some(
            Uuid::parse_str(v).map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "X-Request-Id must be a UUID"))?,
        ),
    };
    let mut claim = owned_claim(&state, &tenant, account, id).await?;
    let p = parsed(&claim)?;
    if !check_complete(p.role, p.claim_type, p.status, state.clock.now(), claim.completion_period_end)
        .map_err(refused)?
    {
        return Ok(Json(ClaimView::from(&claim)));
    }
    let request_id = keep_completion_request_id(&state, &tenant, &mut claim, account, requested).await?;
    let claim = act(&state, &tenant, claim, ClaimAction::Complete(request_id), |c| {
        c.account_id = c.account_id.or(Some(account));
    })
    .await?;
    Ok(Json(ClaimView::from(&claim)))
}

/// The RequestId of the entry a completion creates keys its CID at DICT and here alike, so it is
/// stored on the claim before BTG is called: the `DICT_CLAIM` event of the completion may be
/// applied before BTG's answer, and a retry after a lost answer must send the same one. The first
/// RequestId stored stands.
async fn keep_completion_request_id(
    state: &Dict,
    tenant: &Tenant,
    claim: &mut Claim,
    account: Uuid,
    requested: Option<Uuid>,
) -> ApiResult<Uuid> {
    for _ in 0..3 {
        if let Some(kept) = claim.completion_request_id.as_deref().and_then(|r| Uuid::parse_str(r).ok()) {
            return Ok(kept);
        }
        let request_id = requested.unwrap_or_else(Uuid::new_v4);
        claim.completion_request_id = Some(request_id.to_string());
        claim.account_id = claim.account_id.or(Some(account));
        let mut tx = state.store.begin().await?;
        if save_claim(&mut tx, claim).await? {
            tx.commit().await?;
            claim.version += 1;
            return Ok(request_id);
        }
        drop(tx);
        // Changed meanwhile (an event was applied): read it again.
        *claim = state.store.dict_claim(tenant.id, claim.id).await?.ok_or_else(claim_not_found)?;
    }
    Err(ApiError::new(ErrorCode::InvalidClaimStatus, "the claim keeps changing; retry"))
}

// ------------------------------------------------------------------------------------ events and deadlines

/// Records what DICT says about a claim: a new claim against one of our keys, or a change of a
/// claim we know.
async fn absorb(state: &Dict, tenant: &Tenant, remote: &btg::Claim) -> ApiResult<()> {
    let role = if remote.claimer_participant == tenant.ispb {
        ClaimRole::Claimer
    } else if remote.donor_participant == tenant.ispb {
        ClaimRole::Donor
    } else {
        tracing::warn!(claim = %remote.id, "DICT_CLAIM for a claim this institution is not part of; ignored");
        return Ok(());
    };
    // A claim action may save the same claim meanwhile: a lost version race reads it again, so
    // that the event is applied on top of the action rather than dropped.
    for _ in 0..5 {
        if absorb_once(state, tenant, role, remote).await? != Absorbed::Raced {
            return Ok(());
        }
    }
    Err(ApiError::new(ErrorCode::InvalidClaimStatus, "the claim keeps changing; the event is retried"))
}

#[derive(PartialEq)]
enum Absorbed {
    Applied,
    Unchanged,
    Raced,
}

async fn absorb_once(state: &Dict, tenant: &Tenant, role: ClaimRole, remote: &btg::Claim) -> ApiResult<Absorbed> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let outcome = match state.store.dict_claim_by_btg_id(tenant.id, &remote.id).await? {
        Some(mut claim) => {
            if !apply_remote(state, &mut tx, tenant, &mut claim, remote, now).await? {
                Absorbed::Unchanged
            } else if save_with_event(&mut tx, &mut claim, false, now).await? {
                Absorbed::Applied
            } else {
                Absorbed::Raced
            }
        }
        None => {
            let mut claim = new_claim_row(tenant, role, remote, now)?;
            if role == ClaimRole::Donor
                && let Some(entry) = state.store.live_dict_entry_by_key(tenant.id, &remote.key).await?
            {
                claim.entry_id = Some(entry.id);
                claim.account_id = entry.account_id;
            }
            apply_remote(state, &mut tx, tenant, &mut claim, remote, now).await?;
            if save_with_event(&mut tx, &mut claim, true, now).await? {
                tracing::info!(claim = %claim.id, role = %role, key = %mask_raw_key(&claim.key), "claim recorded from DICT");
                Absorbed::Applied
            } else {
                Absorbed::Raced // our create recorded it meanwhile
            }
        }
    };
    if outcome == Absorbed::Applied {
        tx.commit().await?;
    }
    Ok(outcome)
}

/// `DICT_CLAIM` events.
pub struct ClaimEvents(pub Dict);

impl InboundHandler for ClaimEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let Some(tenant) = self.0.store.tenant(event.tenant_id).await.map_err(retry)? else {
                return Err(JobError::Permanent("unknown tenant".into()));
            };
            let claim = match super::decode_event(event)? {
                BtgEvent::Claim(c) => c,
                _ => return Err(JobError::Permanent("DICT_CLAIM without a claim".into())),
            };
            absorb(&self.0, &tenant, &claim).await.map_err(|e| retry(e.0))
        })
    }
}

/// Time-driven transitions: for every unfinished claim whose resolution period ended (by the
/// injected clock), read DICT's state; where we are the donor and nobody answered, apply the
/// default operation (ownership: confirm; portability: cancel) as DICT's manual requires.
pub async fn run_claim_deadlines(state: &Dict) {
    let now = state.clock.now();
    let due = match state.store.dict_claims_due(now).await {
        Ok(due) => due,
        Err(e) => return tracing::warn!(error = %e, "reading due claims failed"),
    };
    for claim in due {
        if let Err(e) = settle_deadline(state, &claim).await {
            tracing::warn!(claim = %claim.id, error = %e.0, "claim deadline not settled; retried on the next tick");
        }
    }
}

async fn settle_deadline(state: &Dict, claim: &Claim) -> ApiResult<()> {
    let Some(tenant) = state.store.tenant(claim.tenant_id).await? else {
        return Ok(());
    };
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    let mut remote = btg.claim(&claim.btg_claim_id).await.map_err(|e| btg_error("reading the claim", e))?;
    let open = matches!(remote.status, btg::ClaimStatus::Open | btg::ClaimStatus::WaitingResolution);
    if open && claim.role == ClaimRole::Donor.as_str() {
        let default = Reason::DefaultOperation;
        remote = if claim.claim_type == ClaimType::Ownership.as_str() {
            if remote.status == btg::ClaimStatus::Open {
                btg.claim_action(&claim.btg_claim_id, ClaimAction::Acknowledge)
                    .await
                    .map_err(|e| btg_error("acknowledge", e))?;
            }
            btg.claim_action(&claim.btg_claim_id, ClaimAction::Confirm(default)).await
        } else {
            btg.claim_action(&claim.btg_claim_id, ClaimAction::Cancel(default)).await
        }
        .map_err(|e| btg_error("default operation", e))?;
        tracing::info!(claim = %claim.id, status = %remote.status, "resolution period ended: default operation applied");
    }
    absorb(state, &tenant, &remote).await
}
