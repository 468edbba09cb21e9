//! Collections (lerian-plugin-api §4.2): static BR Codes (`POST|GET /v1/brcode/static`) and
//! immediate (`/v1/collections/immediate`, COB) and due-date (`/v1/collections/duedate`, COBV)
//! charges, each created, listed, read, updated and deleted. A charge's EMV points at its
//! location on this host (`location.rs`); its lifecycle is `pix_app::collections`.

pub mod location;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use pix_app::collections::{CollectionView, expiry, transition};
use pix_core::brcode::{
    AdditionalInfo, BrCode, BrCodeError, DatedRate, DiscountRule, DueDateRules, MAX_VALUE_LEN, Rate, Rule, TagPath,
    fold_to_ascii,
};
use pix_core::clock::brasilia_date;
use pix_core::collection::{
    AmountModality, CollectionDetails, CollectionEvent, CollectionKind, CollectionStatus, Debtor, DiscountModalityName,
    InterestModalityName, Merchant, Metadata, Schedule, is_valid_charge_txid,
};
use pix_core::dict::EntryStatus;
use pix_core::document::Document;
use pix_core::error::ErrorCode;
use pix_core::ids::new_id;
use pix_core::money::{Amount, Money};
use pix_core::pix_key::PixKey;
use pix_store::StoreError;
use pix_store::collections::{Collection, CollectionFilter, StaticBrCode, save_collection};
use pix_store::tenants::Tenant;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppJson, AppPath, AppQuery};
use crate::routes::{ErrorResponse, Page, PageQuery};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_static, list_static))
        .routes(routes!(create_immediate, list_immediate))
        .routes(routes!(get_immediate, update_immediate, delete_immediate))
        .routes(routes!(create_due_date, list_due_date))
        .routes(routes!(get_due_date, update_due_date, delete_due_date))
}

const MAX_NAME_LEN: usize = 25;
const MAX_CITY_LEN: usize = 15;
const MAX_STATIC_TXID_LEN: usize = 25;
/// API Pix `solicitacaoPagador`.
const MAX_DESCRIPTION_LEN: usize = 140;
const MAX_ADDITIONAL_INFO: usize = 50;
const MAX_METADATA_KEYS: usize = 50;
const MAX_TAGS: usize = 20;
const MAX_TAG_LEN: usize = 50;
const DEFAULT_VALID_AFTER_DUE: u32 = 30;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, message)
}

// ---------------------------------------------------------------------------------------------
// Shared inputs and their checks

/// The merchant fields of the BR Code; each one omitted is taken from the account holder.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MerchantInput {
    /// Field 59, ≤25 characters once folded to ASCII (default: the holder's trade name or name).
    #[serde(alias = "merchantName")]
    pub name: Option<String>,
    /// Field 60, ≤15 characters once folded (default: `[collections] default_merchant_city`).
    #[serde(alias = "merchantCity")]
    pub city: Option<String>,
    /// Field 52, a 4-digit MCC (default `0000`).
    pub category_code: Option<String>,
    /// Field 61, a CEP of 8 digits.
    pub postal_code: Option<String>,
}

/// Folds `text` to the BR Code character set and checks its length: never truncated.
fn folded(field: &str, text: &str, max: usize) -> ApiResult<String> {
    let text = fold_to_ascii(text.trim());
    let len = text.chars().count();
    if len == 0 {
        return Err(invalid(format!("{field}: must not be empty")));
    }
    if len > max {
        return Err(invalid(format!("{field}: at most {max} characters once folded to ASCII, got {len}")));
    }
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(invalid(format!("{field}: the BR Code character set has no {c:?}")));
    }
    Ok(text)
}

fn merchant(
    state: &AppState,
    field: &str,
    input: Option<&MerchantInput>,
    account: &OwnedAccount,
) -> ApiResult<Merchant> {
    let input = input.cloned().unwrap_or_default();
    let holder = &account.holder;
    let name = input.name.unwrap_or_else(|| holder.trade_name.clone().unwrap_or_else(|| holder.name.clone()));
    let city = input.city.unwrap_or_else(|| state.config.collections.default_merchant_city.clone());
    let category_code = input.category_code.unwrap_or_else(|| "0000".into());
    if category_code.len() != 4 || !category_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("{field}.categoryCode: a 4-digit merchant category code")));
    }
    if let Some(cep) = &input.postal_code
        && (cep.len() != 8 || !cep.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(format!("{field}.postalCode: a CEP of 8 digits")));
    }
    Ok(Merchant {
        name: folded(&format!("{field}.name"), &name, MAX_NAME_LEN)?,
        city: folded(&format!("{field}.city"), &city, MAX_CITY_LEN)?,
        category_code,
        postal_code: input.postal_code,
    })
}

/// The receiver key must be an ACTIVE DICT key of the `X-Account-Id` account.
async fn owned_key(state: &AppState, tenant: &Tenant, account: &OwnedAccount, key: &str) -> ApiResult<String> {
    let parsed = PixKey::infer(key.trim()).map_err(|e| invalid(format!("receiverKey: {e}")))?;
    let entry = state.store.live_dict_entry_by_key(tenant.id, parsed.value()).await?;
    match entry {
        Some(e) if e.status == EntryStatus::Active && e.account_id == Some(account.id) => Ok(parsed.value().to_owned()),
        _ => Err(ApiError::new(
            ErrorCode::ReceiverKeyNotOwned,
            "receiverKey: not an ACTIVE DICT key of the X-Account-Id account",
        )),
    }
}

fn description(text: Option<String>) -> ApiResult<Option<String>> {
    match text {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => {
            Err(invalid(format!("description: at most {MAX_DESCRIPTION_LEN} characters")))
        }
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// `infoAdicionais`: at most 50 `{name ≤50, value ≤200}`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdditionalInfoInput {
    pub name: String,
    pub value: String,
}

fn additional_info(items: Option<Vec<AdditionalInfoInput>>) -> ApiResult<Vec<AdditionalInfo>> {
    let items = items.unwrap_or_default();
    if items.len() > MAX_ADDITIONAL_INFO {
        return Err(invalid(format!("additionalInfo: at most {MAX_ADDITIONAL_INFO} items")));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let (name_len, value_len) = (item.name.chars().count(), item.value.chars().count());
            if !(1..=50).contains(&name_len) || !(1..=200).contains(&value_len) {
                return Err(invalid(format!("additionalInfo[{i}]: name 1-50 and value 1-200 characters")));
            }
            Ok(AdditionalInfo { name: item.name, value: item.value })
        })
        .collect()
}

fn metadata(m: Option<Metadata>) -> ApiResult<Metadata> {
    let m = m.unwrap_or_default();
    if m.len() > MAX_METADATA_KEYS {
        return Err(invalid(format!("metadata: at most {MAX_METADATA_KEYS} keys, got {}", m.len())));
    }
    Ok(m)
}

fn tags(t: Option<Vec<String>>) -> ApiResult<Vec<String>> {
    let t = t.unwrap_or_default();
    if t.len() > MAX_TAGS {
        return Err(invalid(format!("tags: at most {MAX_TAGS}")));
    }
    if let Some(i) = t.iter().position(|tag| tag.is_empty() || tag.chars().count() > MAX_TAG_LEN) {
        return Err(invalid(format!("tags[{i}]: 1 to {MAX_TAG_LEN} characters")));
    }
    Ok(t)
}

fn document(field: &str, value: &str) -> ApiResult<String> {
    Document::parse(value.trim()).map(|d| d.as_str().to_owned()).map_err(|e| invalid(format!("{field}: {e}")))
}

fn name(field: &str, value: &str) -> ApiResult<String> {
    let len = value.trim().chars().count();
    if (1..=200).contains(&len) {
        Ok(value.trim().to_owned())
    } else {
        Err(invalid(format!("{field}: 1 to 200 characters")))
    }
}

/// A BR Code error in the terms of the request.
fn emv_error(e: BrCodeError) -> ApiError {
    invalid(format!("the BR Code cannot be built: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Static BR Codes

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateStaticBrCode {
    /// An ACTIVE DICT key of the `X-Account-Id` account.
    #[schema(schema_with = crate::openapi::pix_key)]
    pub receiver_key: String,
    /// Absent: the payer types the amount.
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Option<Amount>,
    /// Field 26.02, shown to the payer.
    pub description: Option<String>,
    /// Field 62.05: letters and digits, at most 25 (`***` means none).
    pub tx_id: Option<String>,
    pub merchant: Option<MerchantInput>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StaticQuery {
    /// Also return the QR code as a base64 PNG.
    #[serde(default)]
    pub include_base64: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticBrCodeView {
    pub id: Uuid,
    /// The BR Code ("Pix Copia e Cola").
    pub emv: String,
    /// A PNG of the QR code, base64, when `include_base64=true`.
    pub base64: Option<String>,
    pub receiver_key: String,
    #[schema(value_type = Option<String>, example = "25.90")]
    pub amount: Option<Money>,
    pub description: Option<String>,
    pub tx_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl StaticBrCodeView {
    fn new(c: StaticBrCode, base64: Option<String>) -> StaticBrCodeView {
        StaticBrCodeView {
            id: c.id,
            emv: c.emv,
            base64,
            receiver_key: c.receiver_key,
            amount: c.amount.map(Money::from_centavos),
            description: c.description,
            tx_id: c.tx_id,
            created_at: c.created_at,
        }
    }
}

/// A PNG of `emv` as a QR code (EC level M, 4 modules of quiet zone, 8 pixels a module).
fn qr_png(emv: &str) -> ApiResult<String> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::with_error_correction_level(emv.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(format!("QR encoding: {e}")))?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = ((i % width + QUIET) * SCALE, (i / width + QUIET) * SCALE);
            for row in pixels.chunks_mut(side).skip(y).take(SCALE) {
                if let Some(run) = row.get_mut(x..x + SCALE) {
                    run.fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).map_err(ApiError::internal)?;
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(ApiError::internal)?;
        writer.write_image_data(&pixels).map_err(ApiError::internal)?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Create a static BR Code for one of the account's keys: reusable, no expiry.
#[utoipa::path(post, path = "/v1/brcode/static", tag = "QR Codes", request_body = CreateStaticBrCode,
    params(("X-Account-Id" = Uuid, Header, description = "The receiving account"), StaticQuery),
    security(("tenant_token" = [])),
    responses((status = 201, body = StaticBrCodeView),
        (status = 400, body = ErrorResponse, description = "A field is invalid; the message names it"),
        (status = 404, body = ErrorResponse),
        (status = 422, body = ErrorResponse, description = "PIX-0307: the key is not an ACTIVE key of the account"),
        (status = 502, body = ErrorResponse, description = "PIX-0021: the ledger or CRM could not be reached")))]
async fn create_static(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppQuery(query): AppQuery<StaticQuery>,
    AppJson(body): AppJson<CreateStaticBrCode>,
) -> ApiResult<(StatusCode, Json<StaticBrCodeView>)> {
    let key = owned_key(&state, &tenant, &account, &body.receiver_key).await?;
    let merchant = merchant(&state, "merchant", body.merchant.as_ref(), &account)?;
    let tx_id = body.tx_id.filter(|t| t != pix_core::brcode::NO_TXID);
    if let Some(t) = &tx_id
        && (t.is_empty() || t.len() > MAX_STATIC_TXID_LEN || !t.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid(format!("txId: 1 to {MAX_STATIC_TXID_LEN} letters and digits")));
    }
    let description = match body.description {
        Some(d) => Some(folded("description", &d, MAX_VALUE_LEN)?),
        None => None,
    };
    let parsed = PixKey::infer(&key).map_err(|e| invalid(format!("receiverKey: {e}")))?;
    let mut builder =
        BrCode::static_code(parsed, &merchant.name, &merchant.city).merchant_category_code(&merchant.category_code);
    if let Some(amount) = body.amount {
        builder = builder.amount(amount.money());
    }
    if let Some(t) = &tx_id {
        builder = builder.txid(t);
    }
    if let Some(d) = &description {
        builder = builder.description(d);
    }
    if let Some(cep) = &merchant.postal_code {
        builder = builder.postal_code(cep);
    }
    let emv = builder
        .build()
        .map_err(|e| match e {
            // Field 26 holds the GUI, the key and the description: a long key leaves less room.
            BrCodeError::ValueTooLong { tag, .. } if tag == TagPath::root(26) => {
                invalid(format!("description: too long for this key ({e})"))
            }
            other => emv_error(other),
        })?
        .encode();
    let code = StaticBrCode {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: account.id,
        receiver_key: key,
        amount: body.amount.map(|a| a.money().centavos()),
        description,
        tx_id,
        emv,
        created_at: state.clock.now(),
    };
    state.store.insert_static_brcode(&code).await?;
    let png = if query.include_base64 { Some(qr_png(&code.emv)?) } else { None };
    Ok((StatusCode::CREATED, Json(StaticBrCodeView::new(code, png))))
}

/// The account's static BR Codes, newest first.
#[utoipa::path(get, path = "/v1/brcode/static", tag = "QR Codes",
    params(("X-Account-Id" = Uuid, Header, description = "The receiving account"), PageQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<StaticBrCodeView>), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 502, body = ErrorResponse, description = "PIX-0021: the ledger or CRM could not be reached")))]
async fn list_static(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppQuery(query): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<StaticBrCodeView>>> {
    let (limit, offset) = query.limit_offset()?;
    let (items, total) = state.store.list_static_brcodes(tenant.id, account.id, limit, offset).await?;
    Ok(Json(Page {
        items: items.into_iter().map(|c| StaticBrCodeView::new(c, None)).collect(),
        page: query.page.unwrap_or(1),
        limit: query.limit.unwrap_or(10),
        total,
    }))
}

// ---------------------------------------------------------------------------------------------
// Charges: what COB and COBV share

/// A charge's fields once checked, before it gets an id and a location.
struct NewCharge {
    kind: CollectionKind,
    tx_id: String,
    receiver_key: String,
    amount: Money,
    details: CollectionDetails,
}

fn check_txid(tx_id: &str) -> ApiResult<String> {
    if is_valid_charge_txid(tx_id) {
        Ok(tx_id.to_owned())
    } else {
        Err(invalid("txId: 26 to 35 letters and digits (API Pix)"))
    }
}

/// Builds the EMV pointing at a fresh location and stores the charge; a txId in use → 409.
async fn insert_charge(
    state: &AppState,
    tenant: &Tenant,
    account: &OwnedAccount,
    new: NewCharge,
) -> ApiResult<Collection> {
    let now = state.clock.now();
    let token = Uuid::new_v4().simple().to_string();
    let location = pix_app::collections::location(&location::location_base(state), new.kind, &token);
    let merchant = &new.details.merchant;
    let mut builder =
        BrCode::dynamic_code(&location, &merchant.name, &merchant.city).merchant_category_code(&merchant.category_code);
    if let Some(cep) = &merchant.postal_code {
        builder = builder.postal_code(cep);
    }
    let emv = builder.build().map_err(emv_error)?.encode();
    let expires_at = expiry(now, &new.details.schedule).ok_or_else(|| invalid("the charge would never expire"))?;
    let c = Collection {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: account.id,
        kind: new.kind,
        status: CollectionStatus::Active,
        tx_id: new.tx_id,
        receiver_key: new.receiver_key,
        amount: new.amount.centavos(),
        details: new.details,
        location_token: token,
        location,
        emv,
        revision: 0,
        expires_at,
        paid_end_to_end_id: None,
        version: 0,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    match state.store.insert_collection(&c).await {
        Ok(()) => Ok(c),
        Err(StoreError::Conflict(_)) => Err(ApiError::new(
            ErrorCode::CollectionTxIdInUse,
            format!("txId: {} is already used by another collection", c.tx_id),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The charge `id` of `kind` if it is the account's: another account's, kind's or tenant's is 404.
async fn find_charge(
    state: &AppState,
    tenant: &Tenant,
    account: Uuid,
    kind: CollectionKind,
    id: Uuid,
) -> ApiResult<Collection> {
    match state.store.collection(tenant.id, kind, id).await? {
        Some(c) if c.account_id == account => Ok(c),
        _ => Err(ApiError::new(ErrorCode::CollectionNotFound, format!("no {kind} collection {id} for this account"))),
    }
}

/// Applies `change` to an ACTIVE charge and saves it with its revision bumped.
async fn update_charge(
    state: &AppState,
    tenant: &Tenant,
    account: Uuid,
    kind: CollectionKind,
    id: Uuid,
    change: impl FnOnce(&mut Collection) -> ApiResult<()>,
) -> ApiResult<Collection> {
    let mut c = find_charge(state, tenant, account, kind, id).await?;
    if c.status != CollectionStatus::Active {
        return Err(ApiError::new(
            ErrorCode::CollectionNotUpdatable,
            format!("the collection is {}: only an ACTIVE collection can be updated", c.status),
        ));
    }
    change(&mut c)?;
    c.revision += 1;
    c.updated_at = state.clock.now();
    c.expires_at = expiry(c.created_at, &c.details.schedule).ok_or_else(|| invalid("the charge would never expire"))?;
    let mut tx = state.store.begin().await?;
    if !save_collection(&mut tx, &c).await? {
        return Err(ApiError::new(
            ErrorCode::CollectionNotUpdatable,
            "the collection changed meanwhile; read it again",
        ));
    }
    tx.commit().await?;
    c.version += 1;
    Ok(c)
}

/// DELETE: ACTIVE → REMOVED_BY_RECEIVER, with its event; anything else is refused (PIX-0104).
async fn delete_charge(
    state: &AppState,
    tenant: &Tenant,
    account: Uuid,
    kind: CollectionKind,
    id: Uuid,
) -> ApiResult<Collection> {
    let mut c = find_charge(state, tenant, account, kind, id).await?;
    if c.status != CollectionStatus::Active {
        return Err(ApiError::new(
            ErrorCode::CollectionNotDeletable,
            format!("the collection is {}: only an ACTIVE collection can be deleted", c.status),
        ));
    }
    let mut tx = state.store.begin().await?;
    if !transition(&mut tx, &mut c, CollectionEvent::DeletedByReceiver, state.clock.now()).await? {
        return Err(ApiError::new(
            ErrorCode::CollectionNotDeletable,
            "the collection changed meanwhile; read it again",
        ));
    }
    tx.commit().await?;
    Ok(c)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CollectionQuery {
    #[param(minimum = 1, default = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<u32>,
    #[param(pattern = "^(ACTIVE|CONCLUDED|REMOVED_BY_RECEIVER|REMOVED_BY_PSP)$")]
    pub status: Option<String>,
    #[serde(rename = "txId")]
    #[param(rename = "txId")]
    pub tx_id: Option<String>,
    /// Created at or after (RFC 3339).
    pub start_date: Option<DateTime<Utc>>,
    /// Created at or before (RFC 3339).
    pub end_date: Option<DateTime<Utc>>,
    /// `asc` (default) or `desc`, by creation.
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
}

async fn list_charges(
    state: &AppState,
    tenant: &Tenant,
    account: &OwnedAccount,
    kind: CollectionKind,
    q: CollectionQuery,
) -> ApiResult<Json<Page<CollectionView>>> {
    let (limit, offset) = PageQuery { page: q.page, limit: q.limit }.limit_offset()?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<CollectionStatus>)
        .transpose()
        .map_err(|e| invalid(format!("status: {e}")))?;
    let descending = match q.sort_order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid("sort_order: asc or desc")),
    };
    let filter =
        CollectionFilter { status, tx_id: q.tx_id, created_from: q.start_date, created_to: q.end_date, descending };
    let (items, total) = state.store.list_collections(tenant.id, account.id, kind, &filter, limit, offset).await?;
    Ok(Json(Page {
        items: items.iter().map(CollectionView::new).collect(),
        page: q.page.unwrap_or(1),
        limit: q.limit.unwrap_or(10),
        total,
    }))
}

// ---------------------------------------------------------------------------------------------
// COB

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateImmediate {
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Amount,
    /// Seconds after creation the charge may be paid (API Pix `calendario.expiracao`).
    #[serde(alias = "expirationInSeconds")]
    pub expiration_seconds: u32,
    #[schema(schema_with = crate::openapi::pix_key)]
    pub receiver_key: String,
    /// Unique across all of the tenant's collections.
    #[schema(pattern = "^[A-Za-z0-9]{26,35}$")]
    pub tx_id: String,
    pub additional_info: Option<Vec<AdditionalInfoInput>>,
    /// CPF or CNPJ; with `debtorName`, or neither.
    pub debtor_document: Option<String>,
    pub debtor_name: Option<String>,
    /// `solicitacaoPagador`, ≤140.
    pub description: Option<String>,
    pub location_information: Option<MerchantInput>,
    /// At most 50 keys.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    pub tags: Option<Vec<String>>,
    /// Pix Troco: the purchase part of `amount`.
    #[schema(schema_with = crate::openapi::amount)]
    pub purchase_amount: Option<Amount>,
    /// Pix Saque/Troco: the cash handed over, part of `amount`.
    #[schema(schema_with = crate::openapi::amount)]
    pub withdrawal_amount: Option<Amount>,
}

fn cob_debtor(document_in: Option<&str>, name_in: Option<&str>) -> ApiResult<Option<Debtor>> {
    match (document_in, name_in) {
        (None, None) => Ok(None),
        (Some(d), Some(n)) => Ok(Some(Debtor {
            document: document("debtorDocument", d)?,
            name: name("debtorName", n)?,
            email: None,
            address: None,
            city: None,
            state: None,
            zip_code: None,
        })),
        _ => Err(invalid("debtorDocument and debtorName: both or neither")),
    }
}

fn expiration(seconds: u32) -> ApiResult<u32> {
    if seconds == 0 { Err(invalid("expirationSeconds: greater than zero")) } else { Ok(seconds) }
}

/// Pix Saque/Troco parts must fit the amount: withdrawal ≤ amount, and purchase + withdrawal =
/// amount when both are given.
fn troco(amount: Money, purchase: Option<Money>, withdrawal: Option<Money>) -> ApiResult<()> {
    if let Some(w) = withdrawal
        && w > amount
    {
        return Err(invalid("withdrawalAmount: at most amount"));
    }
    if let (Some(p), Some(w)) = (purchase, withdrawal)
        && p.checked_add(w) != Some(amount)
    {
        return Err(invalid("purchaseAmount + withdrawalAmount must equal amount"));
    }
    if purchase.is_some() && withdrawal.is_none() {
        return Err(invalid("purchaseAmount: only with withdrawalAmount (Pix Troco)"));
    }
    Ok(())
}

/// Create an immediate charge (COB).
#[utoipa::path(post, path = "/v1/collections/immediate", tag = "Collections", request_body = CreateImmediate,
    params(("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 201, body = CollectionView),
        (status = 400, body = ErrorResponse, description = "A field is invalid; the message names it"),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse, description = "PIX-0306: the txId is already used"),
        (status = 422, body = ErrorResponse, description = "PIX-0307: the key is not an ACTIVE key of the account"),
        (status = 502, body = ErrorResponse, description = "PIX-0021: the ledger or CRM could not be reached")))]
async fn create_immediate(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppJson(body): AppJson<CreateImmediate>,
) -> ApiResult<(StatusCode, Json<CollectionView>)> {
    let tx_id = check_txid(&body.tx_id)?;
    let amount = body.amount.money();
    let (purchase, withdrawal) = (body.purchase_amount.map(Amount::money), body.withdrawal_amount.map(Amount::money));
    troco(amount, purchase, withdrawal)?;
    let details = CollectionDetails {
        schedule: Schedule::Immediate { expiration_seconds: expiration(body.expiration_seconds)? },
        debtor: cob_debtor(body.debtor_document.as_deref(), body.debtor_name.as_deref())?,
        description: description(body.description)?,
        additional_info: additional_info(body.additional_info)?,
        merchant: merchant(&state, "locationInformation", body.location_information.as_ref(), &account)?,
        receiver_document: account.holder.document.clone(),
        metadata: metadata(body.metadata)?,
        tags: tags(body.tags)?,
        purchase_amount: purchase,
        withdrawal_amount: withdrawal,
    };
    let receiver_key = owned_key(&state, &tenant, &account, &body.receiver_key).await?;
    let new = NewCharge { kind: CollectionKind::Immediate, tx_id, receiver_key, amount, details };
    let c = insert_charge(&state, &tenant, &account, new).await?;
    Ok((StatusCode::CREATED, Json(CollectionView::new(&c))))
}

/// The account's immediate charges.
#[utoipa::path(get, path = "/v1/collections/immediate", tag = "Collections",
    params(("X-Account-Id" = Uuid, Header, description = "The receiving account"), CollectionQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<CollectionView>), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 502, body = ErrorResponse, description = "PIX-0021: the ledger or CRM could not be reached")))]
async fn list_immediate(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppQuery(q): AppQuery<CollectionQuery>,
) -> ApiResult<Json<Page<CollectionView>>> {
    list_charges(&state, &tenant, &account, CollectionKind::Immediate, q).await
}

/// One immediate charge.
#[utoipa::path(get, path = "/v1/collections/immediate/{id}", tag = "Collections",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse, description = "PIX-0305")))]
async fn get_immediate(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<CollectionView>> {
    Ok(Json(CollectionView::new(&find_charge(&state, &tenant, account, CollectionKind::Immediate, id).await?)))
}

/// Fields of an ACTIVE immediate charge to change; absent ones are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateImmediate {
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Option<Amount>,
    #[serde(alias = "expirationInSeconds")]
    pub expiration_seconds: Option<u32>,
    pub debtor_document: Option<String>,
    pub debtor_name: Option<String>,
    pub description: Option<String>,
    pub additional_info: Option<Vec<AdditionalInfoInput>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    pub tags: Option<Vec<String>>,
}

/// Update an ACTIVE immediate charge (its revision goes up by one).
#[utoipa::path(patch, path = "/v1/collections/immediate/{id}", tag = "Collections", request_body = UpdateImmediate,
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse, description = "PIX-0305"),
        (status = 422, body = ErrorResponse, description = "PIX-0022: a CONCLUDED (or removed) collection cannot be updated")))]
async fn update_immediate(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateImmediate>,
) -> ApiResult<Json<CollectionView>> {
    let c = update_charge(&state, &tenant, account, CollectionKind::Immediate, id, |c| {
        if let Some(amount) = body.amount {
            c.amount = amount.money().centavos();
        }
        if let Some(seconds) = body.expiration_seconds {
            c.details.schedule = Schedule::Immediate { expiration_seconds: expiration(seconds)? };
        }
        if body.debtor_document.is_some() || body.debtor_name.is_some() {
            c.details.debtor = cob_debtor(body.debtor_document.as_deref(), body.debtor_name.as_deref())?;
        }
        apply_common(&mut c.details, body.description, body.additional_info, body.metadata, body.tags)?;
        troco(Money::from_centavos(c.amount), c.details.purchase_amount, c.details.withdrawal_amount)
    })
    .await?;
    Ok(Json(CollectionView::new(&c)))
}

fn apply_common(
    details: &mut CollectionDetails,
    text: Option<String>,
    info: Option<Vec<AdditionalInfoInput>>,
    meta: Option<Metadata>,
    tag_list: Option<Vec<String>>,
) -> ApiResult<()> {
    if text.is_some() {
        details.description = description(text)?;
    }
    if info.is_some() {
        details.additional_info = additional_info(info)?;
    }
    if meta.is_some() {
        details.metadata = metadata(meta)?;
    }
    if tag_list.is_some() {
        details.tags = tags(tag_list)?;
    }
    Ok(())
}

/// Delete an ACTIVE immediate charge (REMOVED_BY_RECEIVER).
#[utoipa::path(delete, path = "/v1/collections/immediate/{id}", tag = "Collections",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse, description = "PIX-0305"),
        (status = 422, body = ErrorResponse, description = "PIX-0104: a CONCLUDED (or removed) collection cannot be deleted")))]
async fn delete_immediate(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<CollectionView>> {
    Ok(Json(CollectionView::new(&delete_charge(&state, &tenant, account, CollectionKind::Immediate, id).await?)))
}

// ---------------------------------------------------------------------------------------------
// COBV

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountRuleInput {
    /// `FIXED_AMOUNT` or `PERCENT` (of the original).
    #[schema(value_type = String, example = "PERCENT")]
    pub modality: AmountModality,
    /// `\d{1,10}\.\d{2}`: reais or percent by modality.
    #[schema(value_type = String, example = "2.00")]
    pub value: Rate,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InterestRuleInput {
    /// `AMOUNT_PER_CALENDAR_DAY`, `PERCENTAGE_PER_{DAY|MONTH|YEAR}_CALENDAR_DAYS`,
    /// `AMOUNT_PER_BUSINESS_DAY`, `PERCENTAGE_PER_{DAY|MONTH|YEAR}_BUSINESS_DAYS`.
    #[schema(value_type = String, example = "PERCENTAGE_PER_MONTH_CALENDAR_DAYS")]
    pub modality: InterestModalityName,
    #[schema(value_type = String, example = "1.00")]
    pub value: Rate,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatedValueInput {
    pub date: NaiveDate,
    #[schema(value_type = String, example = "10.00")]
    pub value: Rate,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscountInput {
    /// `FIXED_AMOUNT_UNTIL_DATE` and `PERCENTAGE_UNTIL_DATE` take `discountDateFixed`;
    /// `{AMOUNT|PERCENTAGE}_ADVANCE_{CALENDAR|BUSINESS}_DAY` take `value`.
    #[schema(value_type = String, example = "AMOUNT_ADVANCE_BUSINESS_DAY")]
    pub modality: DiscountModalityName,
    #[serde(default)]
    pub discount_date_fixed: Vec<DatedValueInput>,
    #[schema(value_type = Option<String>)]
    pub value: Option<Rate>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DueDateAmountInput {
    #[schema(schema_with = crate::openapi::amount)]
    pub original: Amount,
    pub fine: Option<AmountRuleInput>,
    pub interest: Option<InterestRuleInput>,
    pub discount: Option<DiscountInput>,
    pub abatement: Option<AmountRuleInput>,
}

impl DueDateAmountInput {
    fn rules(self) -> ApiResult<DueDateRules> {
        let amount_rule = |r: AmountRuleInput| Rule { modality: r.modality.api_pix(), value: r.value };
        let rules = DueDateRules {
            original: self.original.money(),
            fine: self.fine.map(amount_rule),
            interest: self.interest.map(|r| Rule { modality: r.modality.api_pix(), value: r.value }),
            abatement: self.abatement.map(amount_rule),
            discount: self.discount.map(|d| DiscountRule {
                modality: d.modality.api_pix(),
                fixed_dates: d
                    .discount_date_fixed
                    .into_iter()
                    .map(|x| DatedRate { date: x.date, value: x.value })
                    .collect(),
                value: d.value,
            }),
        };
        rules.validate().map_err(|e| invalid(format!("amount: {e}")))?;
        Ok(rules)
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DebtorInput {
    /// CPF or CNPJ.
    pub document: String,
    pub name: String,
    pub address: Option<String>,
    pub city: Option<String>,
    pub email: Option<String>,
    /// Two-letter UF.
    pub state: Option<String>,
    /// CEP, 8 digits.
    pub zip_code: Option<String>,
}

fn cobv_debtor(d: DebtorInput) -> ApiResult<Debtor> {
    if let Some(email) = &d.email
        && (!email.contains('@') || email.len() > 77)
    {
        return Err(invalid("debtor.email: an e-mail address"));
    }
    if let Some(uf) = &d.state
        && (uf.len() != 2 || !uf.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(invalid("debtor.state: a two-letter UF such as SP"));
    }
    if let Some(cep) = &d.zip_code
        && (cep.len() != 8 || !cep.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid("debtor.zipCode: a CEP of 8 digits"));
    }
    let text = |field: &str, v: Option<String>| match v {
        Some(t) if t.chars().count() > 200 => Err(invalid(format!("debtor.{field}: at most 200 characters"))),
        other => Ok(other),
    };
    Ok(Debtor {
        document: document("debtor.document", &d.document)?,
        name: name("debtor.name", &d.name)?,
        email: d.email,
        address: text("address", d.address)?,
        city: text("city", d.city)?,
        state: d.state,
        zip_code: d.zip_code,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDueDate {
    pub amount: DueDateAmountInput,
    pub debtor: DebtorInput,
    /// YYYY-MM-DD, today or later.
    pub due_date: NaiveDate,
    pub receiver_key: String,
    /// Unique across all of the tenant's collections.
    #[schema(pattern = "^[A-Za-z0-9]{26,35}$")]
    pub tx_id: String,
    /// Calendar days after the due date it may still be paid (default 30).
    pub valid_after_due: Option<u32>,
    pub additional_info: Option<Vec<AdditionalInfoInput>>,
    pub description: Option<String>,
    pub location_information: Option<MerchantInput>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    pub tags: Option<Vec<String>>,
}

/// A due date given in a request must not be in the past.
fn new_due_date(state: &AppState, due_date: NaiveDate) -> ApiResult<NaiveDate> {
    let today = brasilia_date(state.clock.now());
    if due_date < today {
        return Err(invalid(format!("dueDate: {due_date} is in the past (today is {today} in Brasília)")));
    }
    Ok(due_date)
}

fn due_schedule(due_date: NaiveDate, valid_after_due: u32, rules: DueDateRules) -> ApiResult<Schedule> {
    if valid_after_due > 3650 {
        return Err(invalid("validAfterDue: at most 3650 days"));
    }
    Ok(Schedule::DueDate { due_date, valid_after_due, rules })
}

/// Create a due-date charge (COBV).
#[utoipa::path(post, path = "/v1/collections/duedate", tag = "Collections", request_body = CreateDueDate,
    params(("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 201, body = CollectionView),
        (status = 400, body = ErrorResponse, description = "A field is invalid; the message names it"),
        (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse, description = "PIX-0306: the txId is already used"),
        (status = 422, body = ErrorResponse, description = "PIX-0307: the key is not an ACTIVE key of the account"),
        (status = 502, body = ErrorResponse, description = "PIX-0021: the ledger or CRM could not be reached")))]
async fn create_due_date(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppJson(body): AppJson<CreateDueDate>,
) -> ApiResult<(StatusCode, Json<CollectionView>)> {
    let tx_id = check_txid(&body.tx_id)?;
    let amount = body.amount.original.money();
    let rules = body.amount.rules()?;
    let due_date = new_due_date(&state, body.due_date)?;
    let schedule = due_schedule(due_date, body.valid_after_due.unwrap_or(DEFAULT_VALID_AFTER_DUE), rules)?;
    let details = CollectionDetails {
        schedule,
        debtor: Some(cobv_debtor(body.debtor)?),
        description: description(body.description)?,
        additional_info: additional_info(body.additional_info)?,
        merchant: merchant(&state, "locationInformation", body.location_information.as_ref(), &account)?,
        receiver_document: account.holder.document.clone(),
        metadata: metadata(body.metadata)?,
        tags: tags(body.tags)?,
        purchase_amount: None,
        withdrawal_amount: None,
    };
    let receiver_key = owned_key(&state, &tenant, &account, &body.receiver_key).await?;
    let new = NewCharge { kind: CollectionKind::DueDate, tx_id, receiver_key, amount, details };
    let c = insert_charge(&state, &tenant, &account, new).await?;
    Ok((StatusCode::CREATED, Json(CollectionView::new(&c))))
}

/// The account's due-date charges.
#[utoipa::path(get, path = "/v1/collections/duedate", tag = "Collections",
    params(("X-Account-Id" = Uuid, Header, description = "The receiving account"), CollectionQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<CollectionView>), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 502, body = ErrorResponse, description = "PIX-0021: the ledger or CRM could not be reached")))]
async fn list_due_date(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppQuery(q): AppQuery<CollectionQuery>,
) -> ApiResult<Json<Page<CollectionView>>> {
    list_charges(&state, &tenant, &account, CollectionKind::DueDate, q).await
}

/// One due-date charge.
#[utoipa::path(get, path = "/v1/collections/duedate/{id}", tag = "Collections",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse, description = "PIX-0305")))]
async fn get_due_date(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<CollectionView>> {
    Ok(Json(CollectionView::new(&find_charge(&state, &tenant, account, CollectionKind::DueDate, id).await?)))
}

/// Fields of an ACTIVE due-date charge to change; absent ones are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDueDate {
    /// Replaces the whole amount (original and rules).
    pub amount: Option<DueDateAmountInput>,
    pub debtor: Option<DebtorInput>,
    pub due_date: Option<NaiveDate>,
    pub valid_after_due: Option<u32>,
    pub description: Option<String>,
    pub additional_info: Option<Vec<AdditionalInfoInput>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    pub tags: Option<Vec<String>>,
}

/// Update an ACTIVE due-date charge (its revision goes up by one).
#[utoipa::path(patch, path = "/v1/collections/duedate/{id}", tag = "Collections", request_body = UpdateDueDate,
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse, description = "PIX-0305"),
        (status = 422, body = ErrorResponse, description = "PIX-0022: a CONCLUDED (or removed) collection cannot be updated")))]
async fn update_due_date(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateDueDate>,
) -> ApiResult<Json<CollectionView>> {
    let c = update_charge(&state, &tenant, account, CollectionKind::DueDate, id, |c| {
        let Schedule::DueDate { due_date, valid_after_due, rules } = c.details.schedule.clone() else {
            return Err(ApiError::internal(format!("collection {} is not a due-date charge", c.id)));
        };
        let rules = match body.amount {
            Some(amount) => {
                c.amount = amount.original.money().centavos();
                amount.rules()?
            }
            None => rules,
        };
        // A charge already past its due date (and still payable) keeps it; a new one must be ahead.
        let due_date = match body.due_date {
            Some(date) => new_due_date(&state, date)?,
            None => due_date,
        };
        c.details.schedule = due_schedule(due_date, body.valid_after_due.unwrap_or(valid_after_due), rules)?;
        if let Some(debtor) = body.debtor {
            c.details.debtor = Some(cobv_debtor(debtor)?);
        }
        apply_common(&mut c.details, body.description, body.additional_info, body.metadata, body.tags)
    })
    .await?;
    Ok(Json(CollectionView::new(&c)))
}

/// Delete an ACTIVE due-date charge (REMOVED_BY_RECEIVER).
#[utoipa::path(delete, path = "/v1/collections/duedate/{id}", tag = "Collections",
    params(("id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The receiving account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse, description = "PIX-0305"),
        (status = 422, body = ErrorResponse, description = "PIX-0104: a CONCLUDED (or removed) collection cannot be deleted")))]
async fn delete_due_date(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<CollectionView>> {
    Ok(Json(CollectionView::new(&delete_charge(&state, &tenant, account, CollectionKind::DueDate, id).await?)))
}
