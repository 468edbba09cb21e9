//! A refund as clients and webhooks see it (`REFUND/CASHOUT` and `REFUND/CASHIN` events carry
//! the same shape as `GET /v1/refunds/{id}`).

use chrono::{DateTime, Utc};
use pix_core::money::Money;
use pix_core::refund::{RefundReason, RefundStatus, SplitSource};
use pix_core::transfer::Direction;
use pix_store::refunds::{Metadata, Refund};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// One debited (or credited) account of a refund.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundOperationView {
    pub account_alias: String,
    #[schema(value_type = String, example = "1000.00")]
    pub amount: Money,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub id: Uuid,
    /// The transfer being returned: a cash-in of ours (CASHOUT) or a cash-out returned to us
    /// (CASHIN).
    pub transfer_id: Uuid,
    /// `CASHOUT` (we return a received Pix) or `CASHIN` (another participant returned one of
    /// our cash-outs).
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "CASHOUT")]
    pub refund_type: Direction,
    /// `CREATED`, `PENDING`, `PROCESSING`, `COMPLETED`, `FAILED` (or `CANCELLED`, never set:
    /// a submitted refund cannot be cancelled).
    #[schema(value_type = String, example = "PROCESSING")]
    pub status: RefundStatus,
    pub original_end_to_end_id: String,
    /// The `D…` id of the pacs.004, once BTG has given it.
    pub return_end_to_end_id: Option<String>,
    #[schema(value_type = String, example = "100.00")]
    pub amount: Money,
    /// `BE08`, `FR01`, `MD06` or `SL02`.
    #[schema(value_type = String, example = "MD06")]
    pub reason: RefundReason,
    pub description: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    pub operations: Vec<RefundOperationView>,
    /// How the debited accounts were chosen: `SINGLE_ACCOUNT`, `REQUEST`, `POLICY` (with the
    /// refund-split component's SHA-256) or `CAUTIONARY_BLOCK` (a MED block's hold taken over).
    #[schema(value_type = Object)]
    pub split: SplitSource,
    /// A refund of an intra-PSP cash-in (settled internally, reported by trck.002).
    #[serde(rename = "isIntraPSP")]
    pub is_intra_psp: bool,
    pub failure_code: Option<String>,
    pub failed_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> RefundView {
        let failure = r.state.failure();
        RefundView {
            id: r.id,
            transfer_id: r.transfer_id,
            refund_type: r.kind(),
            status: r.status(),
            original_end_to_end_id: r.original_end_to_end_id.clone(),
            return_end_to_end_id: r.return_end_to_end_id().map(str::to_owned),
            amount: Money::from_centavos(r.amount),
            reason: r.reason,
            description: r.description.clone(),
            metadata: r.metadata.clone(),
            operations: r
                .operations
                .iter()
                .map(|op| RefundOperationView {
                    account_alias: op.account_alias.clone(),
                    amount: Money::from_centavos(op.amount),
                })
                .collect(),
            split: r.split.clone(),
            is_intra_psp: r.is_intra_psp,
            failure_code: failure.map(|f| f.code.clone()),
            failed_reason: failure.map(|f| f.reason.clone()),
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        }
    }
}
