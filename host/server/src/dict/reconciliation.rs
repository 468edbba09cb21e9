//! Reconciliation with DICT: the VSync of each key type (XOR of the CIDs of our active entries,
//! maintained with every entry change) against DICT's, and full reconciliation from CID files.
//!
//! BTG's contract offers CID files but not DICT's `sync-verifications`, so both the scheduled
//! check (`EVENT_SYNC` jobs) and a full reconciliation (`FULL_RECONCILIATION` jobs) ask for a CID
//! file and finish when its `DICT_CID_FILE` event arrives: the check compares VSyncs and marks the
//! key type SYNCED or OUT_OF_SYNC; the full run also repairs our entries from DICT (reason
//! RECONCILIATION) and records what it did: entries DICT no longer has are deactivated, entries it
//! holds differently are repaired, and CIDs that match none of ours are resolved through DICT's
//! CID lookup and added to the Midaz account CRM maps their branch and number to.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::dict::{Cid, EntryStatus, ReconciliationStatus, VSync};
use pix_core::mask::mask_raw_key;
use pix_core::pix_key::PixKeyType;
use pix_integrations::IntegrationError;
use pix_integrations::btg::{BtgEvent, CidFile, CidFileStatus, DictEntry};
use pix_store::dict::{
    Entry, ReconciliationFilter, ReconciliationJob, VSyncCheck, VSyncState, insert_entry, save_reconciliation_job,
    toggle_vsync,
};
use pix_store::inbound::InboundEvent;
use pix_store::tenants::Tenant;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Dict;
use super::entries::{adopt, btg_key_type, deactivate, parse_key_type};
use super::{btg_error, descending, invalid, paging, record_event, retry, settings, timestamp};
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppQuery;
use crate::inbound::InboundHandler;
use crate::integrations::TenantClients;
use crate::routes::{ErrorResponse, Page};
use crate::worker::{JobError, JobFuture};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_full_reconciliation))
        .routes(routes!(list_reconciliation_jobs))
        .routes(routes!(list_vsync))
}

/// A job that never gets its file is abandoned after this long (Lerian's job timeout).
const JOB_TIMEOUT_HOURS: i64 = 2;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationJobView {
    pub id: Uuid,
    /// `EVENT_SYNC` or `FULL_RECONCILIATION`.
    pub job_type: String,
    pub key_type: String,
    /// `WAITING_FILE`, `PENDING`, `PROCESSING`, `COMPLETED`, `FAILED`, `CANCELLED`.
    #[schema(value_type = String)]
    pub status: ReconciliationStatus,
    pub file_id: Option<String>,
    pub total_items: i64,
    pub processed_items: i64,
    pub entries_added: i64,
    pub entries_removed: i64,
    pub entries_repaired: i64,
    /// CIDs at DICT that match no entry of ours and cannot be resolved to one.
    pub orphan_entries: i64,
    pub sync_from: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub error_message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&ReconciliationJob> for ReconciliationJobView {
    fn from(j: &ReconciliationJob) -> Self {
        ReconciliationJobView {
            id: j.id,
            job_type: j.job_type.clone(),
            key_type: j.key_type.clone(),
            status: j.status,
            file_id: j.file_id.clone(),
            total_items: j.total_items,
            processed_items: j.processed_items,
            entries_added: j.entries_added,
            entries_removed: j.entries_removed,
            entries_repaired: j.entries_repaired,
            orphan_entries: j.orphan_entries,
            sync_from: j.sync_from,
            reason: j.reason.clone(),
            error_message: j.error_message.clone(),
            started_at: j.started_at,
            completed_at: j.completed_at,
            expires_at: j.expires_at,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedJob {
    pub job_id: Uuid,
    pub key_type: String,
    #[schema(value_type = String)]
    pub status: ReconciliationStatus,
    pub file_request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedKeyType {
    pub key_type: String,
    pub reason: String,
    pub sync_status: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FullReconciliation {
    pub jobs: Vec<StartedJob>,
    pub message: String,
    pub skipped_key_types: Vec<SkippedKeyType>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VSyncView {
    pub id: Uuid,
    pub key_type: String,
    /// 64 hex digits: XOR of the CIDs of our active entries of this type.
    pub local_v_sync: String,
    /// DICT's VSync at the last comparison.
    pub remote_v_sync: Option<String>,
    /// `SYNCED`, `OUT_OF_SYNC`, `RECONCILING` or `ERROR`.
    pub last_sync_status: String,
    pub last_sync_check: Option<DateTime<Utc>>,
    pub last_sync_timestamp: Option<DateTime<Utc>>,
    pub last_cid_created_at: Option<DateTime<Utc>>,
    pub last_full_reconciliation: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&VSyncState> for VSyncView {
    fn from(v: &VSyncState) -> Self {
        VSyncView {
            id: v.id,
            key_type: v.key_type.clone(),
            local_v_sync: v.local_vsync.clone(),
            remote_v_sync: v.remote_vsync.clone(),
            last_sync_status: v.last_sync_status.clone(),
            last_sync_check: v.last_sync_check,
            last_sync_timestamp: v.last_sync_timestamp,
            last_cid_created_at: v.last_cid_created_at,
            last_full_reconciliation: v.last_full_reconciliation,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// Asks BTG for a CID file of `key_type` and records the job that waits for it.
async fn request_file(
    state: &Dict,
    tenant: &Tenant,
    key_type: PixKeyType,
    job_type: &str,
    reason: &str,
) -> ApiResult<ReconciliationJob> {
    let btg = state.integrations.for_tenant(tenant)?.btg.clone();
    let file = btg.request_cid_file(btg_key_type(key_type)).await.map_err(|e| btg_error("requesting a CID file", e))?;
    let now = state.clock.now();
    let job = ReconciliationJob {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        job_type: job_type.to_owned(),
        key_type: key_type.as_str().to_owned(),
        status: ReconciliationStatus::WaitingFile,
        file_id: Some(file.id),
        total_items: 0,
        processed_items: 0,
        entries_added: 0,
        entries_removed: 0,
        entries_repaired: 0,
        orphan_entries: 0,
        sync_from: None,
        reason: Some(reason.to_owned()),
        error_message: None,
        started_at: Some(now),
        completed_at: None,
        expires_at: Some(now + chrono::Duration::hours(JOB_TIMEOUT_HOURS)),
        created_at: now,
        updated_at: now,
    };
    save_job(state, &job, None).await?;
    Ok(job)
}

/// Saves a job and, when its status changed (`before` is the status it was loaded with), records
/// its DICT_RECONCILIATION_JOB event in the same transaction.
async fn save_job(state: &Dict, job: &ReconciliationJob, before: Option<ReconciliationStatus>) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    save_reconciliation_job(&mut tx, job).await?;
    if before != Some(job.status) {
        let view = ReconciliationJobView::from(job);
        record_event(&mut tx, job.tenant_id, "DICT_RECONCILIATION_JOB", job.id, &view, job.updated_at).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Start a full reconciliation of every key type whose VSync is OUT_OF_SYNC (or ERROR): one CID
/// file per key type. 202 with the jobs, or 200 when everything is synced.
#[utoipa::path(post, path = "/v1/dict/reconciliation/full", tag = "DICT Reconciliation", security(("tenant_token" = [])),
    responses((status = 202, body = FullReconciliation), (status = 200, body = FullReconciliation),
               (status = 502, body = ErrorResponse)))]
async fn start_full_reconciliation(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
) -> ApiResult<(StatusCode, Json<FullReconciliation>)> {
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for kt in PixKeyType::ALL {
        let vsync = state.store.vsync_state(tenant.id, kt.as_str(), state.clock.now()).await?;
        let running = !state
            .store
            .open_reconciliation_jobs(tenant.id, kt.as_str())
            .await?
            .iter()
            .all(|j| j.job_type != "FULL_RECONCILIATION");
        let skip = match vsync.last_sync_status.as_str() {
            _ if running => Some("a full reconciliation of this key type is already running"),
            "OUT_OF_SYNC" | "ERROR" => None,
            _ => Some("already in sync"),
        };
        if let Some(reason) = skip {
            skipped.push(SkippedKeyType {
                key_type: kt.as_str().into(),
                reason: reason.into(),
                sync_status: vsync.last_sync_status,
            });
            continue;
        }
        let job = request_file(&state, &tenant, kt, "FULL_RECONCILIATION", "VSync out of sync").await?;
        mark(&state, &tenant, kt.as_str(), "RECONCILING", None, false, false).await?;
        tracing::info!(job = %job.id, key_type = %kt, "full reconciliation requested");
        jobs.push(StartedJob {
            job_id: job.id,
            key_type: job.key_type,
            status: job.status,
            file_request_id: job.file_id,
            created_at: job.created_at,
            expires_at: job.expires_at,
        });
    }
    let (status, message) = if jobs.is_empty() {
        (StatusCode::OK, "every key type is in sync; nothing to reconcile".to_owned())
    } else {
        (
            StatusCode::ACCEPTED,
            format!("{} reconciliation job(s) started; they finish when DICT delivers the CID files", jobs.len()),
        )
    };
    Ok((status, Json(FullReconciliation { jobs, message, skipped_key_types: skipped })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(pattern = "^(CPF|CNPJ|EMAIL|PHONE|EVP)$")]
    pub key_type: Option<String>,
    #[param(pattern = "^(EVENT_SYNC|FULL_RECONCILIATION)$")]
    pub job_type: Option<String>,
    pub status: Option<String>,
    /// `desc` by default.
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
    #[param(format = DateTime)]
    pub start_date: Option<String>,
    #[param(format = DateTime)]
    pub end_date: Option<String>,
}

/// Reconciliation jobs, newest first by default.
#[utoipa::path(get, path = "/v1/dict/reconciliation", tag = "DICT Reconciliation", params(JobQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<ReconciliationJobView>), (status = 400, body = ErrorResponse)))]
async fn list_reconciliation_jobs(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(q): AppQuery<JobQuery>,
) -> ApiResult<Json<Page<ReconciliationJobView>>> {
    let (limit, offset, page, size) = paging(q.page, q.limit)?;
    if let Some(kt) = &q.key_type {
        parse_key_type("key_type", kt)?;
    }
    if let Some(t) = &q.job_type
        && t != "EVENT_SYNC"
        && t != "FULL_RECONCILIATION"
    {
        return Err(invalid("job_type must be EVENT_SYNC or FULL_RECONCILIATION"));
    }
    let filter = ReconciliationFilter {
        key_type: q.key_type,
        job_type: q.job_type,
        status: q.status,
        start_date: timestamp("start_date", q.start_date.as_deref())?,
        end_date: timestamp("end_date", q.end_date.as_deref())?,
        descending: descending(q.sort_order.as_deref(), true)?,
    };
    let (items, total) = state.store.list_reconciliation_jobs(tenant.id, &filter, limit, offset).await?;
    Ok(Json(Page { items: items.iter().map(ReconciliationJobView::from).collect(), page, limit: size, total }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VSyncQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Default 5 (one page holds every key type).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(pattern = "^(CPF|CNPJ|EMAIL|PHONE|EVP)$")]
    pub key_type: Option<String>,
    #[param(pattern = "^(SYNCED|OUT_OF_SYNC|RECONCILING|ERROR)$")]
    pub status: Option<String>,
    /// `asc` by default.
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
}

/// The VSync state of each key type.
#[utoipa::path(get, path = "/v1/dict/vsync", tag = "DICT Reconciliation", params(VSyncQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<VSyncView>), (status = 400, body = ErrorResponse)))]
async fn list_vsync(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(q): AppQuery<VSyncQuery>,
) -> ApiResult<Json<Page<VSyncView>>> {
    let (limit, offset, page, size) = paging(q.page, Some(q.limit.unwrap_or(5)))?;
    if let Some(kt) = &q.key_type {
        parse_key_type("key_type", kt)?;
    }
    if let Some(s) = &q.status
        && !["SYNCED", "OUT_OF_SYNC", "RECONCILING", "ERROR"].contains(&s.as_str())
    {
        return Err(invalid("status must be SYNCED, OUT_OF_SYNC, RECONCILING or ERROR"));
    }
    for kt in PixKeyType::ALL {
        state.store.vsync_state(tenant.id, kt.as_str(), state.clock.now()).await?;
    }
    let desc = descending(q.sort_order.as_deref(), false)?;
    let (items, total) = state
        .store
        .list_vsync_states(tenant.id, q.key_type.as_deref(), q.status.as_deref(), desc, limit, offset)
        .await?;
    Ok(Json(Page { items: items.iter().map(VSyncView::from).collect(), page, limit: size, total }))
}

async fn mark(
    state: &Dict,
    tenant: &Tenant,
    key_type: &str,
    status: &str,
    remote: Option<&str>,
    synced: bool,
    full: bool,
) -> ApiResult<()> {
    let check = VSyncCheck { status, remote_vsync: remote, synced, full_reconciliation: full };
    state.store.record_vsync_check(tenant.id, key_type, &check, state.clock.now()).await?;
    Ok(())
}

/// The scheduled comparison: for every tenant whose interval elapsed (tenant setting
/// `dict.vsyncCheckIntervalSecs`), request a CID file per key type; the comparison completes
/// when the files arrive.
pub async fn run_scheduled_vsync_checks(state: &Dict) {
    let tenants = match state.store.list_tenants().await {
        Ok(t) => t,
        Err(e) => return tracing::warn!(error = %e, "listing tenants for VSync checks failed"),
    };
    for tenant in tenants {
        if let Err(e) = check_tenant(state, &tenant).await {
            tracing::warn!(tenant = %tenant.id, error = %e.0, "scheduled VSync check failed; retried on the next tick");
        }
    }
}

async fn check_tenant(state: &Dict, tenant: &Tenant) -> ApiResult<()> {
    let now = state.clock.now();
    for kt in PixKeyType::ALL {
        state.store.vsync_state(tenant.id, kt.as_str(), now).await?;
    }
    let last = state.store.last_vsync_check(tenant.id).await?;
    if last.is_some_and(|t| now - t < settings(tenant).vsync_interval) {
        return Ok(());
    }
    for kt in PixKeyType::ALL {
        let open = state.store.open_reconciliation_jobs(tenant.id, kt.as_str()).await?;
        expire(state, open, now).await?;
        let vsync = state.store.vsync_state(tenant.id, kt.as_str(), now).await?;
        if vsync.last_sync_status == "RECONCILING" {
            continue;
        }
        request_file(state, tenant, kt, "EVENT_SYNC", "scheduled VSync check").await?;
        mark(state, tenant, kt.as_str(), &vsync.last_sync_status, None, false, false).await?;
    }
    Ok(())
}

/// Jobs whose file never came are FAILED once they expire.
async fn expire(state: &Dict, jobs: Vec<ReconciliationJob>, now: DateTime<Utc>) -> ApiResult<()> {
    for mut job in jobs.into_iter().filter(|j| j.expires_at.is_some_and(|t| t <= now)) {
        let before = job.status;
        job.status = ReconciliationStatus::Failed;
        job.error_message = Some("the CID file did not arrive before the job expired".into());
        job.completed_at = Some(now);
        job.updated_at = now;
        save_job(state, &job, Some(before)).await?;
        if job.job_type == "FULL_RECONCILIATION" {
            let tenant = state
                .store
                .tenant(job.tenant_id)
                .await?
                .ok_or_else(|| ApiError::internal("job of a missing tenant"))?;
            mark(state, &tenant, &job.key_type, "ERROR", None, false, false).await?;
        }
    }
    Ok(())
}

/// `DICT_CID_FILE` events: finish the job that waits for the file.
pub struct CidFileEvents(pub Dict);

impl InboundHandler for CidFileEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let state = &self.0;
            let Some(tenant) = state.store.tenant(event.tenant_id).await.map_err(retry)? else {
                return Err(JobError::Permanent("unknown tenant".into()));
            };
            let BtgEvent::CidFile(file) = super::decode_event(event)? else {
                return Err(JobError::Permanent("DICT_CID_FILE without a file".into()));
            };
            let Some(job) = state.store.reconciliation_job_by_file(tenant.id, &file.id).await.map_err(retry)? else {
                tracing::warn!(file = %file.id, "CID file for no known job; ignored");
                return Ok(());
            };
            process_file(state, &tenant, job, &file).await.map_err(|e| retry(e.0))
        })
    }
}

async fn process_file(state: &Dict, tenant: &Tenant, mut job: ReconciliationJob, file: &CidFile) -> ApiResult<()> {
    if job.status.is_final() {
        return Ok(());
    }
    let now = state.clock.now();
    let before = job.status;
    job.updated_at = now;
    match file.status {
        CidFileStatus::Requested | CidFileStatus::Processing => {
            job.status = ReconciliationStatus::Pending;
            return save_job(state, &job, Some(before)).await;
        }
        CidFileStatus::Unavailable | CidFileStatus::Error => {
            job.status = ReconciliationStatus::Failed;
            job.error_message = Some(format!("DICT could not produce the CID file ({})", file.status));
            job.completed_at = Some(now);
            save_job(state, &job, Some(before)).await?;
            return mark(state, tenant, &job.key_type, "ERROR", None, false, false).await;
        }
        CidFileStatus::Available => {}
    }
    let mut remote = HashSet::new();
    for hex in &file.cids {
        remote.insert(
            Cid::from_hex(hex).ok_or_else(|| ApiError::internal(format!("malformed CID in file {}", file.id)))?,
        );
    }
    let remote_vsync = VSync::of(&remote);
    job.status = ReconciliationStatus::Processing;
    job.total_items = remote.len() as i64;
    save_job(state, &job, Some(before)).await?;
    let full = job.job_type == "FULL_RECONCILIATION";
    if full {
        repair(state, tenant, &mut job, &remote).await?;
    }
    let local = state.store.recompute_vsync(tenant.id, &job.key_type, state.clock.now()).await?;
    let synced = local == remote_vsync;
    let status = match (synced, full) {
        (true, _) => "SYNCED",
        (false, false) => "OUT_OF_SYNC",
        (false, true) => "ERROR",
    };
    mark(state, tenant, &job.key_type, status, Some(&remote_vsync.to_hex()), synced, full).await?;
    job.processed_items = remote.len() as i64;
    job.status = ReconciliationStatus::Completed;
    job.completed_at = Some(state.clock.now());
    job.updated_at = state.clock.now();
    if !synced && full {
        job.error_message = Some(format!("{} CID(s) at DICT could not be matched to an entry", job.orphan_entries));
    }
    save_job(state, &job, Some(ReconciliationStatus::Processing)).await?;
    tracing::info!(job = %job.id, key_type = %job.key_type, status, added = job.entries_added,
        removed = job.entries_removed, repaired = job.entries_repaired, orphans = job.orphan_entries, "CID file processed");
    Ok(())
}

/// Makes our entries of the job's key type agree with DICT, which is authoritative: an entry
/// DICT no longer has becomes INACTIVE, an entry DICT holds differently takes DICT's data, and an
/// entry DICT holds that we do not know is added (all with reason RECONCILIATION). DICT's CIDs
/// that still match nothing are counted as orphans.
async fn repair(state: &Dict, tenant: &Tenant, job: &mut ReconciliationJob, remote: &HashSet<Cid>) -> ApiResult<()> {
    let clients = state.integrations.for_tenant(tenant)?;
    let btg = clients.btg.clone();
    let mut matched = HashSet::new();
    let mut repaired = HashSet::new();
    for mut entry in state.store.active_dict_entries(tenant.id, &job.key_type).await? {
        let cid = entry.cid.as_deref().and_then(Cid::from_hex);
        if let Some(c) = cid.filter(|c| remote.contains(c)) {
            matched.insert(c);
            continue;
        }
        if entry.pending_op.is_some() {
            continue; // The settle job owns it.
        }
        let Some(key) = entry.key.clone() else { continue };
        let now = state.clock.now();
        match btg.entry(&key).await {
            Err(IntegrationError::NotFound { .. }) => {
                deactivate(state, &mut entry, "RECONCILIATION", now).await?;
                job.entries_removed += 1;
                tracing::warn!(entry = %entry.id, "reconciliation: entry missing at DICT deactivated");
            }
            Ok(at_dict) => {
                let old = entry.cid.clone();
                adopt(&mut entry, &at_dict);
                entry.cid = entry.compute_cid().map(|c| c.to_hex());
                if entry.cid != old {
                    entry.reason = "RECONCILIATION".into();
                    finish_repair(state, &mut entry, old.as_deref(), now).await?;
                    repaired.insert(entry.id);
                    tracing::warn!(entry = %entry.id, "reconciliation: entry repaired from DICT");
                }
                if let Some(c) = entry.cid.as_deref().and_then(Cid::from_hex).filter(|c| remote.contains(c)) {
                    matched.insert(c);
                }
            }
            Err(e) => return Err(btg_error("reading an entry for reconciliation", e)),
        }
    }
    // Sorted, so that a rerun visits DICT's CIDs in the same order.
    let mut unmatched: Vec<String> = remote.iter().filter(|c| !matched.contains(c)).map(Cid::to_hex).collect();
    unmatched.sort();
    for cid in unmatched {
        match resolve_remote(state, tenant, &clients, job, &cid).await? {
            Resolved::Added => job.entries_added += 1,
            Resolved::Repaired(id) => {
                repaired.insert(id);
            }
            Resolved::Orphan(why) => {
                job.orphan_entries += 1;
                tracing::warn!(job = %job.id, %cid, why, "reconciliation: CID at DICT matches no entry of ours");
            }
        }
    }
    job.entries_repaired = repaired.len() as i64;
    Ok(())
}

/// What became of a CID DICT holds and we did not.
enum Resolved {
    /// A new local entry.
    Added,
    /// A local entry of the same key took DICT's data and RequestId.
    Repaired(Uuid),
    /// Nothing could be done; why.
    Orphan(&'static str),
}

/// Resolves a CID of DICT's to its entry ("consulta de vínculo por CID") and mirrors it locally:
/// on the live entry of the same key when there is one (DICT's RequestId replaces ours, e.g.
/// after a claim completion whose RequestId was lost), else as a new entry of the Midaz account
/// whose CRM alias has the entry's branch and account number.
async fn resolve_remote(
    state: &Dict,
    tenant: &Tenant,
    clients: &TenantClients,
    job: &ReconciliationJob,
    cid: &str,
) -> ApiResult<Resolved> {
    let at_dict = match clients.btg.entry_by_cid(cid).await {
        Ok(e) => e,
        Err(IntegrationError::NotFound { .. }) => return Ok(Resolved::Orphan("DICT no longer has an entry with it")),
        Err(e) => return Err(btg_error("reading an entry by CID", e)),
    };
    if at_dict.account.participant != tenant.ispb {
        return Ok(Resolved::Orphan("the entry belongs to another participant"));
    }
    if at_dict.key_type.as_str() != job.key_type {
        return Ok(Resolved::Orphan("the entry is of another key type"));
    }
    let Some(request_id) = at_dict.request_id else {
        return Ok(Resolved::Orphan("DICT did not return the entry's RequestId"));
    };
    let now = state.clock.now();
    if let Some(mut entry) = state.store.live_dict_entry_by_key(tenant.id, &at_dict.key).await? {
        if entry.status != EntryStatus::Active || entry.pending_op.is_some() {
            return Ok(Resolved::Orphan("a change of the local entry is being settled"));
        }
        let old = entry.cid.clone();
        adopt(&mut entry, &at_dict);
        entry.request_id = request_id;
        entry.cid = entry.compute_cid().map(|c| c.to_hex());
        if entry.cid.as_deref() != Some(cid) {
            return Ok(Resolved::Orphan("DICT's data does not reproduce the CID"));
        }
        entry.reason = "RECONCILIATION".into();
        finish_repair(state, &mut entry, old.as_deref(), now).await?;
        tracing::warn!(entry = %entry.id, "reconciliation: entry re-keyed with DICT's RequestId");
        return Ok(Resolved::Repaired(entry.id));
    }
    let (branch, number) = (&at_dict.account.branch, &at_dict.account.number);
    let alias = match clients.holders.alias_by_banking_details(branch, number).await {
        Ok(a) => a,
        Err(IntegrationError::NotFound { .. }) => {
            return Ok(Resolved::Orphan("no account of ours has the entry's branch and number"));
        }
        Err(e) => return Err(crate::integrations::upstream_error("mapping a DICT entry to an account", e)),
    };
    let Ok(account_id) = Uuid::parse_str(&alias.account_id) else {
        return Ok(Resolved::Orphan("the CRM alias has no valid Midaz account id"));
    };
    let entry = learnt_entry(tenant, job, &at_dict, request_id, account_id, now);
    if entry.cid.as_deref() != Some(cid) {
        return Ok(Resolved::Orphan("DICT's data does not reproduce the CID"));
    }
    let mut tx = state.store.begin().await?;
    match insert_entry(&mut tx, &entry).await {
        Ok(()) => {}
        Err(pix_store::StoreError::Conflict(_)) => {
            return Ok(Resolved::Orphan("the key was registered here meanwhile"));
        }
        Err(e) => return Err(e.into()),
    }
    toggle_vsync(&mut tx, tenant.id, &entry.key_type, None, entry.cid.as_deref(), now).await?;
    tx.commit().await?;
    tracing::warn!(entry = %entry.id, key = %mask_raw_key(&at_dict.key), account = %account_id,
        "reconciliation: entry registered at DICT behind our back added");
    Ok(Resolved::Added)
}

/// A local ACTIVE entry mirroring one DICT holds, keyed by its creation RequestId.
fn learnt_entry(
    tenant: &Tenant,
    job: &ReconciliationJob,
    at_dict: &DictEntry,
    request_id: Uuid,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Entry {
    let mut entry = Entry {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        account_id: Some(account_id),
        key: None,
        key_type: job.key_type.clone(),
        status: EntryStatus::Active,
        pending_op: None,
        pending_payload: None,
        pending_since: None,
        participant: String::new(),
        branch: String::new(),
        account_number: String::new(),
        account_type: String::new(),
        opening_date: None,
        owner_type: String::new(),
        owner_tax_id: String::new(),
        owner_name: String::new(),
        owner_trade_name: None,
        request_id,
        cid: None,
        reason: "RECONCILIATION".into(),
        metadata: serde_json::json!({"source": "RECONCILIATION", "reconciliationJobId": job.id}),
        key_ownership_date: None,
        version: 0,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    adopt(&mut entry, at_dict);
    entry.key_ownership_date = entry.key_ownership_date.or(at_dict.created_at).or(Some(now));
    entry.cid = entry.compute_cid().map(|c| c.to_hex());
    entry
}

async fn finish_repair(
    state: &Dict,
    entry: &mut pix_store::dict::Entry,
    old_cid: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    entry.updated_at = now;
    let mut tx = state.store.begin().await?;
    if pix_store::dict::save_entry(&mut tx, entry).await? {
        entry.version += 1;
        pix_store::dict::toggle_vsync(&mut tx, entry.tenant_id, &entry.key_type, old_cid, entry.cid.as_deref(), now)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
