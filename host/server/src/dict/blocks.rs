//! MED cautionary blocks, the server's part (docs/med.md): the hooks MED calls in
//! the transactions that save a report or a refund request (decide to block, decide to
//! release), the job that performs the Midaz steps, and the release a MED refund needs first when
//! it cannot adopt the block. The use cases are `pix_app::med`.

use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::med::BlockState;
use pix_core::med::{AnalysisResult, InfractionStatus, ReportRole, RequestRole};
use pix_store::Tx;
use pix_store::cautionary_blocks::{CautionaryBlock, block_of_report_in, live_blocks_of_payment};
use pix_store::dict::{InfractionReport, RefundRequest};
use pix_store::jobs::{Job, NewJob, enqueue};
use pix_store::tenants::Tenant;
use serde_json::json;
use uuid::Uuid;

use super::{DICT_QUEUE, Dict, retry};
use crate::error::{ApiError, ApiResult};
use crate::worker::{JobError, JobFuture, JobHandler};

/// The job kind that runs a block's Midaz steps (payload `{tenantId, blockId}`).
pub const ADVANCE_BLOCK: &str = "dict_cautionary_block";

/// A block holds money: its job keeps trying (backoff capped by `workers.retry_cap_ms`) for
/// about a day before an operator is needed.
const BLOCK_JOB_ATTEMPTS: i32 = 120;

/// The job that moves `block` on from the state just saved (one per saved state; jobs of one
/// block run one at a time).
async fn enqueue_advance(tx: &mut Tx, block: &CautionaryBlock, now: DateTime<Utc>) -> ApiResult<()> {
    let job = NewJob::new(DICT_QUEUE, ADVANCE_BLOCK, json!({"tenantId": block.tenant_id, "blockId": block.id}))
        .with_tenant(block.tenant_id)
        .with_dedupe_key(format!("med-block:{}:{}", block.id, block.version))
        .with_ordering_key(format!("med-block:{}", block.id))
        .with_max_attempts(BLOCK_JOB_ATTEMPTS);
    enqueue(tx, &job, now).await?;
    Ok(())
}

/// A report against us first saved: block what it reports when it names a cash-in of ours.
pub(super) async fn on_new_report(
    tx: &mut Tx,
    state: &Dict,
    report: &InfractionReport,
    infraction_amount: Option<i64>,
) -> ApiResult<()> {
    if report.role != ReportRole::Counterparty || report.status.is_final() {
        return Ok(());
    }
    let request = pix_app::med::BlockRequest {
        tenant: report.tenant_id,
        infraction_report_id: report.id,
        end_to_end_id: &report.transaction_id,
        infraction_amount,
    };
    if let Some(block) = pix_app::med::open(tx, &state.store, &request, report.updated_at).await? {
        enqueue_advance(tx, &block, report.updated_at).await?;
    }
    Ok(())
}

/// A report saved: closed DISAGREED or cancelled, its block is released.
pub(super) async fn on_report_saved(tx: &mut Tx, report: &InfractionReport) -> ApiResult<()> {
    let released = matches!(
        (report.status, report.analysis_result),
        (InfractionStatus::Closed, Some(AnalysisResult::Disagreed)) | (InfractionStatus::Cancelled, _)
    );
    if released && let Some(block) = block_of_report_in(tx, report.tenant_id, report.id).await? {
        release(tx, block, report.updated_at).await?;
    }
    Ok(())
}

/// A refund request against us saved: once it is closed (rejected, or accepted with funds
/// returned some other way) or cancelled, the blocks still on its payment are released. A block
/// a MED refund adopted is RETURNED by then and stays so.
pub(super) async fn on_request_saved(tx: &mut Tx, request: &RefundRequest) -> ApiResult<()> {
    if request.role != RequestRole::Contested || !request.status.is_final() {
        return Ok(());
    }
    for block in live_blocks_of_payment(tx, request.tenant_id, &request.transaction_id).await? {
        release(tx, block, request.updated_at).await?;
    }
    Ok(())
}

async fn release(tx: &mut Tx, block: CautionaryBlock, now: DateTime<Utc>) -> ApiResult<()> {
    if let Some(releasing) = pix_app::med::request_release(tx, block, now).await? {
        enqueue_advance(tx, &releasing, now).await?;
    }
    Ok(())
}

/// Before a MED refund of `amount` of the payment `end_to_end_id` is created: the block it may
/// adopt (HELD for exactly that amount), else none, once every block still on the payment is
/// released here and now (so the refund's own hold finds the money). A release whose outcome is
/// not certain yet answers `PIX-0220`: nothing is refunded until it is.
pub(super) async fn before_med_refund(
    state: &Dict,
    tenant: &Tenant,
    end_to_end_id: &str,
    amount: i64,
) -> ApiResult<Option<CautionaryBlock>> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let live = live_blocks_of_payment(&mut tx, tenant.id, end_to_end_id).await?;
    if let Some(block) = live.iter().find(|b| pix_app::med::adoptable(b, amount)) {
        return Ok(Some(block.clone()));
    }
    let mut releasing = Vec::new();
    for block in live {
        if let Some(r) = pix_app::med::request_release(&mut tx, block, now).await? {
            enqueue_advance(&mut tx, &r, now).await?;
            releasing.push(r);
        }
    }
    tx.commit().await?;
    let clients = state.integrations.for_tenant(tenant)?;
    for block in releasing {
        let id = block.id;
        let done = pix_app::med::advance(&state.store, state.clock.as_ref(), &clients, block).await;
        if !matches!(done, Ok(CautionaryBlock { state: BlockState::Released { .. }, .. })) {
            if let Err(e) = done {
                tracing::warn!(block = %id, error = %e, "cautionary block release not certain yet");
            }
            return Err(ApiError::new(
                ErrorCode::CautionaryBlockReleasing,
                format!(
                    "cautionary block {id} on this payment is being released and Midaz has not confirmed it yet; \
                     nothing was refunded: close again shortly"
                ),
            ));
        }
    }
    Ok(None)
}

/// Runs a block's Midaz steps ([`ADVANCE_BLOCK`]).
pub struct AdvanceBlock(pub Dict);

impl JobHandler for AdvanceBlock {
    fn handle<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            let state = &self.0;
            let field = |name: &str| {
                job.payload[name]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| JobError::Permanent(format!("cautionary block job lacks {name}")))
            };
            let (tenant_id, block_id) = (field("tenantId")?, field("blockId")?);
            let Some(tenant) = state.store.tenant(tenant_id).await.map_err(retry)? else {
                return Err(JobError::Permanent("unknown tenant".into()));
            };
            let Some(block) = state.store.cautionary_block(tenant_id, block_id).await.map_err(retry)? else {
                return Err(JobError::Permanent(format!("no cautionary block {block_id}")));
            };
            let clients = state.integrations.for_tenant(&tenant)?;
            pix_app::med::advance(&state.store, state.clock.as_ref(), &clients, block).await?;
            Ok(())
        })
    }
}
