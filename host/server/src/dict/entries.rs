//! Entries (`/v1/dict/entries`): keys registered to the tenant's accounts.
//!
//! A write to BTG and the local record must never disagree, even when BTG's answer is lost.
//! Every write first marks the entry with the pending operation and enqueues a settle job in the
//! same transaction, then calls BTG, then applies the answer. When the answer never arrives the
//! job, after a grace period longer than any request, settles the operation from BTG's side:
//! a registration is compensated (removed at BTG if it got there, dropped locally), an update
//! adopts whatever BTG holds, a delete is finished.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use pix_core::dict::{EntryStatus, KeySource, key_source, max_keys_per_account};
use pix_core::document::{Document, PersonType};
use pix_core::error::ErrorCode;
use pix_core::mask::mask_raw_key;
use pix_core::pix_key::{PixKey, PixKeyType};
use pix_integrations::btg::{AccountType, DictAccount, DictEntry, DictOwner, EntryUpdate, KeyType, NewEntry, Reason};
use pix_integrations::{Btg, IntegrationError};
use pix_store::dict::{Entry, EntryFilter, discard_entry, insert_entry, save_entry, toggle_vsync};
use pix_store::jobs::{Job, NewJob, enqueue};
use pix_store::tenants::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Dict;
use super::{DICT_QUEUE, btg_error, ensure_writable, invalid, missing, paging, required_header, retry};
use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppJson, AppPath, AppQuery};
use crate::routes::{ErrorResponse, Page};
use crate::worker::{JobError, JobFuture, JobHandler};

pub const SETTLE_ENTRY: &str = "dict_settle_entry";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_entry, list_entries)).routes(routes!(
        get_entry,
        update_entry,
        delete_entry
    ))
}

// ------------------------------------------------------------------------------------ wire

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEntry {
    /// `CPF`, `CNPJ`, `EMAIL`, `PHONE` or `EVP`.
    #[schema(example = "EMAIL", pattern = "^(CPF|CNPJ|EMAIL|PHONE|EVP)$")]
    pub key_type: String,
    /// Only for EMAIL (≤ 77, lowercase) and PHONE (`+55…`); CPF/CNPJ come from the holder, EVP is
    /// generated.
    #[schema(example = "maria@example.com", min_length = 1, max_length = 77)]
    pub key: Option<String>,
    /// `USER_REQUESTED` (default) or `RECONCILIATION`.
    #[schema(pattern = "^(USER_REQUESTED|RECONCILIATION)$")]
    pub reason: Option<String>,
    /// Free JSON object kept with the entry.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccountChange {
    /// Branch, 1–4 digits.
    #[schema(example = "0001", pattern = "^[0-9]{1,4}$")]
    pub branch: String,
    /// Account number with check digit, 1–20 letters or digits.
    #[schema(example = "123456", pattern = "^[A-Za-z0-9]{1,20}$")]
    pub number: String,
    /// `CACC`, `TRAN`, `SLRY`, `SVGS` or `OTHR`.
    #[serde(rename = "type")]
    #[schema(example = "CACC", pattern = "^(CACC|TRAN|SLRY|SVGS|OTHR)$")]
    pub account_type: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OwnerChange {
    pub name: String,
    /// Legal persons only.
    pub trade_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateEntry {
    pub account: AccountChange,
    pub owner: OwnerChange,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryAccountView {
    pub participant: String,
    pub branch: String,
    pub number: String,
    #[serde(rename = "type")]
    pub account_type: String,
    pub opening_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryOwnerView {
    pub name: String,
    pub trade_name: Option<String>,
    pub tax_id_number: String,
    /// `NATURAL_PERSON` or `LEGAL_PERSON`.
    #[serde(rename = "type")]
    pub person_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    pub id: Uuid,
    pub key: Option<String>,
    pub key_type: String,
    /// `ACTIVE` or `INACTIVE`.
    #[schema(value_type = String, example = "ACTIVE")]
    pub status: EntryStatus,
    pub account_id: Option<Uuid>,
    pub account: EntryAccountView,
    pub owner: EntryOwnerView,
    pub reason: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub key_ownership_date: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        EntryView {
            id: e.id,
            key: e.key,
            key_type: e.key_type,
            status: e.status,
            account_id: e.account_id,
            account: EntryAccountView {
                participant: e.participant,
                branch: e.branch,
                number: e.account_number,
                account_type: e.account_type,
                opening_date: e.opening_date,
            },
            owner: EntryOwnerView {
                name: e.owner_name,
                trade_name: e.owner_trade_name,
                tax_id_number: e.owner_tax_id,
                person_type: e.owner_type,
            },
            reason: e.reason,
            metadata: e.metadata,
            key_ownership_date: e.key_ownership_date,
            created_at: e.created_at,
            updated_at: e.updated_at,
            deleted_at: e.deleted_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntryQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(pattern = "^(CPF|CNPJ|EMAIL|PHONE|EVP)$")]
    pub key_type: Option<String>,
    pub key_value: Option<String>,
    pub entry_id: Option<Uuid>,
    #[param(pattern = "^(ACTIVE|INACTIVE)$")]
    pub status: Option<String>,
}

// ------------------------------------------------------------------------------------ helpers

pub(super) fn btg_key_type(kt: PixKeyType) -> KeyType {
    match kt {
        PixKeyType::Cpf => KeyType::Cpf,
        PixKeyType::Cnpj => KeyType::Cnpj,
        PixKeyType::Email => KeyType::Email,
        PixKeyType::Phone => KeyType::Phone,
        PixKeyType::Evp => KeyType::Evp,
    }
}

pub(super) fn parse_key_type(field: &str, value: &str) -> ApiResult<PixKeyType> {
    value.parse().map_err(|_| invalid(format!("{field}: must be one of CPF, CNPJ, EMAIL, PHONE, EVP")))
}

const ACCOUNT_TYPES: [(&str, AccountType); 5] = [
    ("CACC", AccountType::Cacc),
    ("TRAN", AccountType::Tran),
    ("SLRY", AccountType::Slry),
    ("SVGS", AccountType::Svgs),
    ("OTHR", AccountType::Othr),
];

pub(super) fn account_type(text: &str) -> Option<AccountType> {
    ACCOUNT_TYPES.iter().find(|(t, _)| *t == text).map(|(_, a)| *a)
}

fn person_type(text: &str) -> PersonType {
    if text == PersonType::Legal.as_str() { PersonType::Legal } else { PersonType::Natural }
}

/// A `YYYY-MM-DD` opening date as the start of that day in Brasília (03:00 UTC).
pub(super) fn opening_date(date: Option<&str>) -> Option<DateTime<Utc>> {
    let day = NaiveDate::parse_from_str(date?, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(3, 0, 0)?.and_utc())
}

fn dict_account(e: &Entry) -> DictAccount {
    DictAccount {
        participant: e.participant.clone(),
        branch: e.branch.clone(),
        number: e.account_number.clone(),
        account_type: account_type(&e.account_type).unwrap_or(AccountType::Cacc),
        opening_date: e.opening_date,
    }
}

fn new_entry(e: &Entry) -> ApiResult<NewEntry> {
    let kt: PixKeyType = e.key_type.parse().map_err(ApiError::internal)?;
    Ok(NewEntry {
        key: e.key.clone(),
        key_type: btg_key_type(kt),
        account: dict_account(e),
        owner: DictOwner {
            person_type: person_type(&e.owner_type),
            tax_id: e.owner_tax_id.clone(),
            name: e.owner_name.clone(),
            trade_name: e.owner_trade_name.clone(),
        },
        reason: if e.reason == "RECONCILIATION" { Reason::Reconciliation } else { Reason::UserRequested },
        request_id: e.request_id,
    })
}

/// Copies what DICT holds about an entry onto the local row.
pub(super) fn adopt(entry: &mut Entry, from: &DictEntry) {
    entry.key = Some(from.key.clone());
    entry.participant.clone_from(&from.account.participant);
    entry.branch.clone_from(&from.account.branch);
    entry.account_number.clone_from(&from.account.number);
    entry.account_type = from.account.account_type.as_str().to_owned();
    if from.account.opening_date.is_some() {
        entry.opening_date = from.account.opening_date;
    }
    entry.owner_type = from.owner.person_type.as_str().to_owned();
    entry.owner_tax_id.clone_from(&from.owner.tax_id);
    entry.owner_name.clone_from(&from.owner.name);
    entry.owner_trade_name.clone_from(&from.owner.trade_name);
    if from.key_ownership_date.is_some() {
        entry.key_ownership_date = from.key_ownership_date;
    }
}

/// Longer than any request may take, so a settle job never races the request it backs up.
fn settle_grace(state: &Dict) -> chrono::Duration {
    chrono::Duration::milliseconds(2 * state.config.server.request_timeout_ms as i64).max(chrono::Duration::seconds(60))
}

/// Marks `entry` with a pending operation and enqueues its settle job, in one transaction.
/// `false` when the entry changed meanwhile.
async fn begin_pending(state: &Dict, entry: &mut Entry, op: &str, payload: Value) -> ApiResult<bool> {
    let now = state.clock.now();
    entry.pending_op = Some(op.to_owned());
    entry.pending_payload = Some(payload);
    entry.pending_since = Some(now);
    let mut tx = state.store.begin().await?;
    if entry.status == EntryStatus::Pending && entry.version == 0 && op == "CREATE" {
        insert_entry(&mut tx, entry).await.map_err(|e| match e {
            pix_store::StoreError::Conflict(_) => {
                ApiError::new(ErrorCode::EntryAlreadyExists, "the key already has an entry at this institution")
            }
            other => other.into(),
        })?;
    } else if !save_entry(&mut tx, entry).await? {
        return Ok(false);
    } else {
        entry.version += 1;
    }
    enqueue(&mut tx, &settle_job(state, entry, now), now).await?;
    tx.commit().await?;
    Ok(true)
}

fn settle_job(state: &Dict, entry: &Entry, now: DateTime<Utc>) -> NewJob {
    NewJob::new(DICT_QUEUE, SETTLE_ENTRY, json!({"tenantId": entry.tenant_id, "entryId": entry.id}))
        .with_tenant(entry.tenant_id)
        .with_dedupe_key(format!("dict-settle:{}:{}", entry.id, entry.version))
        .with_run_at(now + settle_grace(state))
}

fn pending_error(what: &str, e: IntegrationError) -> ApiError {
    tracing::warn!(error = %e, "BTG outcome unknown; the settle job will finish or undo the operation");
    let mut err = btg_error(what, e);
    err.0.message.push_str(" (the operation will be settled automatically; read the entry again later)");
    err
}

fn entry_not_found() -> ApiError {
    ApiError::new(ErrorCode::EntryNotFound, "entry not found")
}

/// The visible entry `id` of the account in `X-Account-Id`.
async fn owned_entry(state: &Dict, tenant: &Tenant, account: Uuid, id: Uuid) -> ApiResult<Entry> {
    state
        .store
        .dict_entry(tenant.id, id)
        .await?
        .filter(|e| e.status != EntryStatus::Pending && e.account_id == Some(account))
        .ok_or_else(entry_not_found)
}

async fn ensure_no_claim_lock(state: &Dict, tenant: &Tenant, key: &str) -> ApiResult<()> {
    if let Some(claim) = state.store.locking_dict_claim(tenant.id, key).await? {
        return Err(ApiError::new(
            ErrorCode::EntryLockedByClaim,
            format!("the key is locked by claim {} ({})", claim.id, claim.status),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ create

/// Register a key for the account in `X-Account-Id`.
#[utoipa::path(post, path = "/v1/dict/entries", tag = "DICT", request_body = CreateEntry,
    params(("X-Account-Id" = Uuid, Header, description = "Midaz account")),
    security(("tenant_token" = [])),
    responses((status = 201, body = EntryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse),
               (status = 503, body = ErrorResponse)))]
async fn create_entry(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppJson(body): AppJson<CreateEntry>,
) -> ApiResult<(StatusCode, Json<EntryView>)> {
    let kt = parse_key_type("keyType", &body.key_type)?;
    let reason = match body.reason.as_deref() {
        None | Some("USER_REQUESTED") => "USER_REQUESTED",
        Some("RECONCILIATION") => "RECONCILIATION",
        Some(_) => return Err(invalid("reason: must be USER_REQUESTED or RECONCILIATION")),
    };
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        return Err(invalid("metadata: must be a JSON object"));
    }
    let now = state.clock.now();
    ensure_writable(&tenant, now)?;
    let holder = &account.holder;
    let document = Document::parse(&holder.document).map_err(|_| {
        ApiError::new(ErrorCode::KeyHolderMismatch, "the account holder's document is not a valid CPF/CNPJ")
    })?;
    let key = match key_source(kt) {
        KeySource::HolderDocument => {
            if body.key.is_some() {
                return Err(ApiError::new(
                    ErrorCode::KeyNotAccepted,
                    format!("key: a {kt} key is the holder's document; do not send it"),
                ));
            }
            let matches =
                matches!((&document, kt), (Document::Cpf(_), PixKeyType::Cpf) | (Document::Cnpj(_), PixKeyType::Cnpj));
            if !matches {
                return Err(ApiError::new(
                    ErrorCode::KeyHolderMismatch,
                    format!("a {kt} key needs a holder with a {kt}; this holder is a {}", document.person_type()),
                ));
            }
            Some(document.as_str().to_owned())
        }
        KeySource::Client => {
            let raw = body.key.as_deref().ok_or_else(|| missing("key"))?;
            Some(PixKey::parse(kt, raw).map_err(|e| invalid(format!("key: {e}")))?.value().to_owned())
        }
        KeySource::Generated => {
            if body.key.is_some() {
                return Err(ApiError::new(
                    ErrorCode::KeyNotAccepted,
                    "key: EVP keys are generated by DICT; do not send one",
                ));
            }
            None
        }
    };
    if document.person_type() != holder.person_type {
        return Err(ApiError::new(
            ErrorCode::KeyHolderMismatch,
            "the holder's document does not match its person type",
        ));
    }
    if let Some(key) = &key {
        ensure_no_claim_lock(&state, &tenant, key).await?;
        if let Some(existing) = state.store.live_dict_entry_by_key(tenant.id, key).await? {
            return Err(if existing.pending_op.is_some() {
                ApiError::new(ErrorCode::EntryOperationPending, "a registration of this key is still being settled")
            } else {
                ApiError::new(ErrorCode::EntryAlreadyExists, "the key already has an entry at this institution")
            });
        }
    }
    let limit = max_keys_per_account(holder.person_type);
    if state.store.count_live_dict_entries(tenant.id, account.id).await? >= limit as i64 {
        return Err(ApiError::new(
            ErrorCode::EntryLimitExceeded,
            format!("the account already has {limit} keys, the most a {} may have", holder.person_type),
        ));
    }
    let mut entry = Entry {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        account_id: Some(account.id),
        key,
        key_type: kt.as_str().to_owned(),
        status: EntryStatus::Pending,
        pending_op: None,
        pending_payload: None,
        pending_since: None,
        participant: tenant.ispb.clone(),
        branch: holder.branch.clone(),
        account_number: holder.account_number.clone(),
        account_type: holder.account_type.clone(),
        opening_date: opening_date(holder.opening_date.as_deref()),
        owner_type: holder.person_type.as_str().to_owned(),
        owner_tax_id: document.as_str().to_owned(),
        owner_name: holder.name.clone(),
        owner_trade_name: holder.trade_name.clone().filter(|_| holder.person_type == PersonType::Legal),
        // DICT wants a UUIDv4 RequestId; it also keys the entry's CID.
        request_id: Uuid::new_v4(),
        cid: None,
        reason: reason.to_owned(),
        metadata,
        key_ownership_date: None,
        version: 0,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    begin_pending(&state, &mut entry, "CREATE", json!({})).await?;
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    let request = new_entry(&entry)?;
    match btg.create_entry(&request).await {
        Ok(registered) => {
            activate(&state, &mut entry, &registered, state.clock.now()).await?;
            tracing::info!(entry = %entry.id, key_type = %kt, key = %entry.key.as_deref().map(mask_raw_key).unwrap_or_default(), "DICT entry registered");
            Ok((StatusCode::CREATED, Json(entry.into())))
        }
        Err(e) if e.is_definite() => {
            let mut tx = state.store.begin().await?;
            discard_entry(&mut tx, tenant.id, entry.id, entry.version).await?;
            tx.commit().await?;
            Err(btg_error("registering the key", e))
        }
        Err(e) => Err(pending_error("registering the key", e)),
    }
}

/// PENDING → ACTIVE with DICT's data, its CID added to the VSync.
async fn activate(state: &Dict, entry: &mut Entry, registered: &DictEntry, now: DateTime<Utc>) -> ApiResult<()> {
    adopt(entry, registered);
    entry.status = EntryStatus::Active;
    entry.pending_op = None;
    entry.pending_payload = None;
    entry.pending_since = None;
    entry.cid = entry.compute_cid().map(|c| c.to_hex());
    entry.key_ownership_date = entry.key_ownership_date.or(Some(now));
    entry.updated_at = now;
    let mut tx = state.store.begin().await?;
    if !save_entry(&mut tx, entry).await? {
        return Err(ApiError::new(
            ErrorCode::UpstreamUnavailable,
            "the registration took too long and is being settled; read the entry again later",
        ));
    }
    entry.version += 1;
    toggle_vsync(&mut tx, entry.tenant_id, &entry.key_type, None, entry.cid.as_deref(), now).await?;
    tx.commit().await?;
    Ok(())
}

// ------------------------------------------------------------------------------------ read

/// The tenant's entries (of the account in `X-Account-Id` when sent), oldest first.
#[utoipa::path(get, path = "/v1/dict/entries", tag = "DICT", params(EntryQuery,
        ("X-Account-Id" = Option<Uuid>, Header, description = "Only this account's entries")),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<EntryView>), (status = 400, body = ErrorResponse)))]
async fn list_entries(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    headers: HeaderMap,
    AppQuery(q): AppQuery<EntryQuery>,
) -> ApiResult<Json<Page<EntryView>>> {
    let (limit, offset, page, size) = paging(q.page, q.limit)?;
    let account_id = match super::header(&headers, crate::extract::ACCOUNT_ID_HEADER) {
        None => None,
        Some(v) => Some(
            Uuid::parse_str(v).map_err(|_| ApiError::new(ErrorCode::InvalidHeader, "X-Account-Id must be a UUID"))?,
        ),
    };
    if let Some(kt) = &q.key_type {
        parse_key_type("key_type", kt)?;
    }
    if let Some(s) = &q.status
        && s != "ACTIVE"
        && s != "INACTIVE"
    {
        return Err(invalid("status must be ACTIVE or INACTIVE"));
    }
    let filter =
        EntryFilter { account_id, key_type: q.key_type, key: q.key_value, entry_id: q.entry_id, status: q.status };
    let (items, total) = state.store.list_dict_entries(tenant.id, &filter, limit, offset).await?;
    Ok(Json(Page { items: items.into_iter().map(EntryView::from).collect(), page, limit: size, total }))
}

/// One entry of the account in `X-Account-Id`.
#[utoipa::path(get, path = "/v1/dict/entries/{entry_id}", tag = "DICT",
    params(("entry_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = EntryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_entry(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<EntryView>> {
    Ok(Json(owned_entry(&state, &tenant, account, id).await?.into()))
}

// ------------------------------------------------------------------------------------ update

const UPDATE_REASONS: [(&str, Reason); 3] = [
    ("USER_REQUESTED", Reason::UserRequested),
    ("BRANCH_TRANSFER", Reason::BranchTransfer),
    ("RECONCILIATION", Reason::Reconciliation),
];

fn validate_update(body: &UpdateEntry, entry: &Entry) -> ApiResult<()> {
    let a = &body.account;
    if a.branch.is_empty() || a.branch.len() > 4 || !a.branch.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("account.branch: 1 to 4 digits"));
    }
    if a.number.is_empty() || a.number.len() > 20 || !a.number.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("account.number: 1 to 20 letters or digits"));
    }
    if account_type(&a.account_type).is_none() {
        return Err(invalid("account.type: must be one of CACC, TRAN, SLRY, SVGS, OTHR"));
    }
    let name = body.owner.name.trim();
    if name.is_empty() || name.chars().count() > 150 {
        return Err(invalid("owner.name: 1 to 150 characters"));
    }
    match &body.owner.trade_name {
        Some(_) if entry.owner_type != PersonType::Legal.as_str() => {
            Err(invalid("owner.tradeName: only legal persons have a trade name"))
        }
        Some(t) if t.chars().count() > 100 => Err(invalid("owner.tradeName: at most 100 characters")),
        _ => Ok(()),
    }
}

/// Change the account or names of an entry (`X-Reason`: USER_REQUESTED, BRANCH_TRANSFER,
/// RECONCILIATION).
#[utoipa::path(patch, path = "/v1/dict/entries/{entry_id}", tag = "DICT", request_body = UpdateEntry,
    params(("entry_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header),
           ("X-Reason" = String, Header, pattern = "^(USER_REQUESTED|BRANCH_TRANSFER|RECONCILIATION)$")),
    security(("tenant_token" = [])),
    responses((status = 200, body = EntryView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 409, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn update_entry(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateEntry>,
) -> ApiResult<Json<EntryView>> {
    let reason = required_header(&headers, "X-Reason", &UPDATE_REASONS)?;
    let mut entry = owned_entry(&state, &tenant, account, id).await?;
    if entry.key_type == "EVP" && reason == Reason::UserRequested {
        return Err(ApiError::new(
            ErrorCode::InvalidHeader,
            "X-Reason: EVP entries cannot be updated with USER_REQUESTED",
        ));
    }
    validate_update(&body, &entry)?;
    if let Some(m) = &body.metadata
        && !m.is_object()
    {
        return Err(invalid("metadata: must be a JSON object"));
    }
    if entry.status != EntryStatus::Active {
        return Err(ApiError::new(ErrorCode::EntryNotFound, "the entry is inactive"));
    }
    if entry.pending_op.is_some() {
        return Err(ApiError::new(ErrorCode::EntryOperationPending, "another change of this entry is being settled"));
    }
    ensure_writable(&tenant, state.clock.now())?;
    let key = entry.key.clone().ok_or_else(entry_not_found)?;
    let update = EntryUpdate {
        account: DictAccount {
            participant: tenant.ispb.clone(),
            branch: body.account.branch.clone(),
            number: body.account.number.clone(),
            account_type: account_type(&body.account.account_type).unwrap_or(AccountType::Cacc),
            opening_date: entry.opening_date,
        },
        name: body.owner.name.trim().to_owned(),
        trade_name: body.owner.trade_name.clone(),
        reason,
    };
    if !begin_pending(&state, &mut entry, "UPDATE", json!({"reason": reason.as_str()})).await? {
        return Err(ApiError::new(ErrorCode::EntryOperationPending, "the entry changed meanwhile; retry"));
    }
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    match btg.update_entry(&key, &update).await {
        Ok(updated) => {
            let now = state.clock.now();
            let old_cid = entry.cid.clone();
            adopt(&mut entry, &updated);
            entry.cid = entry.compute_cid().map(|c| c.to_hex());
            entry.reason = reason.as_str().to_owned();
            if let Some(m) = body.metadata {
                entry.metadata = m;
            }
            finish(&state, &mut entry, old_cid.as_deref(), now).await?;
            tracing::info!(entry = %entry.id, key = %mask_raw_key(&key), %reason, "DICT entry updated");
            Ok(Json(entry.into()))
        }
        Err(e) if e.is_definite() => {
            let old = entry.cid.clone();
            finish(&state, &mut entry, old.as_deref(), state.clock.now()).await?;
            Err(btg_error("updating the entry", e))
        }
        Err(e) => Err(pending_error("updating the entry", e)),
    }
}

/// Clears the pending mark and saves the entry, moving its CID in the VSync from `old_cid` to
/// the current one.
async fn finish(state: &Dict, entry: &mut Entry, old_cid: Option<&str>, now: DateTime<Utc>) -> ApiResult<()> {
    entry.pending_op = None;
    entry.pending_payload = None;
    entry.pending_since = None;
    entry.updated_at = now;
    let mut tx = state.store.begin().await?;
    if !save_entry(&mut tx, entry).await? {
        return Err(ApiError::new(ErrorCode::UpstreamUnavailable, "the change took too long and is being settled"));
    }
    entry.version += 1;
    if old_cid != entry.cid.as_deref() {
        toggle_vsync(&mut tx, entry.tenant_id, &entry.key_type, old_cid, entry.cid.as_deref(), now).await?;
    }
    tx.commit().await?;
    Ok(())
}

// ------------------------------------------------------------------------------------ delete

const DELETE_REASONS: [(&str, Reason); 5] = [
    ("USER_REQUESTED", Reason::UserRequested),
    ("ACCOUNT_CLOSURE", Reason::AccountClosure),
    ("RECONCILIATION", Reason::Reconciliation),
    ("FRAUD", Reason::Fraud),
    ("RFB_VALIDATION", Reason::RfbValidation),
];

/// Remove an entry from DICT; the record stays, INACTIVE (`X-Reason` required).
#[utoipa::path(delete, path = "/v1/dict/entries/{entry_id}", tag = "DICT",
    params(("entry_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header),
           ("X-Reason" = String, Header, pattern = "^(USER_REQUESTED|ACCOUNT_CLOSURE|RECONCILIATION|FRAUD|RFB_VALIDATION)$")),
    security(("tenant_token" = [])),
    responses((status = 204), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 409, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn delete_entry(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    let reason = required_header(&headers, "X-Reason", &DELETE_REASONS)?;
    let mut entry = owned_entry(&state, &tenant, account, id).await?;
    if entry.status == EntryStatus::Inactive {
        return Ok(StatusCode::NO_CONTENT);
    }
    if entry.pending_op.is_some() {
        return Err(ApiError::new(ErrorCode::EntryOperationPending, "another change of this entry is being settled"));
    }
    let key = entry.key.clone().ok_or_else(entry_not_found)?;
    ensure_no_claim_lock(&state, &tenant, &key).await?;
    ensure_writable(&tenant, state.clock.now())?;
    if !begin_pending(&state, &mut entry, "DELETE", json!({"reason": reason.as_str()})).await? {
        return Err(ApiError::new(ErrorCode::EntryOperationPending, "the entry changed meanwhile; retry"));
    }
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    match btg.delete_entry(&key, reason).await {
        Ok(()) | Err(IntegrationError::NotFound { .. }) => {
            deactivate(&state, &mut entry, reason.as_str(), state.clock.now()).await?;
            tracing::info!(entry = %entry.id, key = %mask_raw_key(&key), %reason, "DICT entry deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) if e.is_definite() => {
            let cid = entry.cid.clone();
            finish(&state, &mut entry, cid.as_deref(), state.clock.now()).await?;
            Err(btg_error("deleting the entry", e))
        }
        Err(e) => Err(pending_error("deleting the entry", e)),
    }
}

/// ACTIVE → INACTIVE, its CID removed from the VSync.
pub(super) async fn deactivate(state: &Dict, entry: &mut Entry, reason: &str, now: DateTime<Utc>) -> ApiResult<()> {
    let old = entry.cid.take();
    entry.status = EntryStatus::Inactive;
    entry.reason = reason.to_owned();
    entry.deleted_at = Some(now);
    finish(state, entry, old.as_deref(), now).await
}

// ------------------------------------------------------------------------------------ settle job

/// Settles a BTG write whose answer never came back (payload `{tenantId, entryId}`).
pub struct SettleEntry(pub Dict);

impl JobHandler for SettleEntry {
    fn handle<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(settle(&self.0, job))
    }
}

async fn settle(state: &Dict, job: &Job) -> Result<(), JobError> {
    let field = |name: &str| {
        job.payload[name]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| JobError::Permanent(format!("settle job lacks {name}")))
    };
    let (tenant_id, entry_id) = (field("tenantId")?, field("entryId")?);
    let Some(tenant) = state.store.tenant(tenant_id).await.map_err(retry)? else {
        return Ok(());
    };
    let Some(mut entry) = state.store.dict_entry(tenant_id, entry_id).await.map_err(retry)? else {
        return Ok(()); // A failed registration already discarded.
    };
    let Some(op) = entry.pending_op.clone() else {
        return Ok(()); // The request finished on its own.
    };
    let btg = state.integrations.for_tenant(&tenant).map_err(retry)?.btg.clone();
    let now = state.clock.now();
    let outcome = match op.as_str() {
        "CREATE" => compensate_create(state, btg.as_ref(), &mut entry).await,
        "UPDATE" => match btg.entry(entry.key.as_deref().unwrap_or_default()).await {
            Ok(current) => {
                let old = entry.cid.clone();
                adopt(&mut entry, &current);
                entry.cid = entry.compute_cid().map(|c| c.to_hex());
                finish(state, &mut entry, old.as_deref(), now).await.map_err(|e| retry(e.0))
            }
            Err(IntegrationError::NotFound { .. }) => {
                deactivate(state, &mut entry, "RECONCILIATION", now).await.map_err(|e| retry(e.0))
            }
            Err(e) => Err(retry(e)),
        },
        _ => {
            let reason = entry
                .pending_payload
                .as_ref()
                .and_then(|p| p["reason"].as_str())
                .unwrap_or("USER_REQUESTED")
                .to_owned();
            let btg_reason =
                DELETE_REASONS.iter().find(|(t, _)| *t == reason.as_str()).map_or(Reason::UserRequested, |(_, r)| *r);
            match btg.delete_entry(entry.key.as_deref().unwrap_or_default(), btg_reason).await {
                Ok(()) | Err(IntegrationError::NotFound { .. }) => {
                    deactivate(state, &mut entry, &reason, now).await.map_err(|e| retry(e.0))
                }
                Err(e) if e.is_definite() => {
                    let cid = entry.cid.clone();
                    finish(state, &mut entry, cid.as_deref(), now).await.map_err(|e| retry(e.0))
                }
                Err(e) => Err(retry(e)),
            }
        }
    };
    if outcome.is_ok() {
        tracing::info!(entry = %entry.id, op = %op, "unsettled DICT entry operation settled");
    }
    outcome
}

/// Undoes a registration whose answer was lost: the client was told it failed, so the key must
/// not stay registered at BTG either.
async fn compensate_create(state: &Dict, btg: &dyn Btg, entry: &mut Entry) -> Result<(), JobError> {
    let registered = match &entry.key {
        Some(key) => match btg.entry(key).await {
            Ok(e) => Some(e),
            Err(IntegrationError::NotFound { .. }) => None,
            Err(e) => return Err(retry(e)),
        },
        // EVP: only DICT knows the key. Replaying the create with the same RequestId (BTG's
        // idempotency key) returns it whether or not the first attempt got through.
        None => match btg.create_entry(&new_entry(entry).map_err(|e| retry(e.0))?).await {
            Ok(e) => Some(e),
            Err(e) if e.is_definite() => None,
            Err(e) => return Err(retry(e)),
        },
    };
    if let Some(r) = registered
        && r.account.participant == entry.participant
        && r.account.number == entry.account_number
    {
        match btg.delete_entry(&r.key, Reason::Reconciliation).await {
            Ok(()) | Err(IntegrationError::NotFound { .. }) => {}
            Err(e) => return Err(retry(e)),
        }
        tracing::warn!(entry = %entry.id, key = %mask_raw_key(&r.key), "registration compensated: removed from DICT");
    }
    let mut tx = state.store.begin().await.map_err(retry)?;
    discard_entry(&mut tx, entry.tenant_id, entry.id, entry.version).await.map_err(retry)?;
    tx.commit().await.map_err(retry)?;
    Ok(())
}
