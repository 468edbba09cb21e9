//! trck.002 reporting of intra-PSP settlements (issue #14): each completed intra-PSP transfer or
//! refund is recorded here in the transaction that completes it, and reported to BACEN through
//! BTG by the reporter (`pix_app::reports`), never blocking or rolling back the money.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{StoreResult, Tx};

/// What a settlement is, for BACEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalKind {
    Transfer,
    Refund,
}

/// One intra-PSP settlement to report.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalSettlement {
    pub tenant_id: Uuid,
    /// The transfer's EndToEndId (a refund: the original's).
    pub end_to_end_id: String,
    /// A refund's return id (`D…`); none for a transfer.
    pub return_identification: Option<String>,
    pub kind: InternalKind,
    /// Centavos.
    pub amount: i64,
    pub debtor_tax_id: String,
    pub creditor_tax_id: String,
    pub settled_at: DateTime<Utc>,
}

/// Records a settlement to report, in the transaction that completes it. Idempotent per
/// (tenant, EndToEndId, return identification).
pub async fn record_internal_settlement(_tx: &mut Tx, _s: &InternalSettlement) -> StoreResult<()> {
    // Interface placeholder: the reporter's storage lands with the trck.002 work of issue #14.
    Ok(())
}
