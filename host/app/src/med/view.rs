//! A cautionary block as clients and webhooks see it (the CAUTIONARY_BLOCK event carries the
//! same shape as the `cautionaryBlocks` items of a transfer).

use chrono::{DateTime, Utc};
use pix_core::med::BlockStatus;
use pix_core::money::Money;
use pix_store::cautionary_blocks::CautionaryBlock;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CautionaryBlockView {
    pub id: Uuid,
    /// The infraction report against the payment (`/v1/dict/infraction-reports/{id}`).
    pub infraction_report_id: Uuid,
    /// The cash-in blocked.
    pub transfer_id: Uuid,
    pub end_to_end_id: String,
    /// What the report asked to block: DICT's `InfractionAmount`, else what was left to refund.
    #[schema(value_type = String, example = "100.00")]
    pub requested_amount: Money,
    /// What is (or was) held: the requested amount up to the available balance; absent until
    /// fixed, `0.00` when nothing was available.
    #[schema(value_type = Option<String>, example = "100.00")]
    pub amount: Option<Money>,
    /// `REQUESTED`, `PLACING`, `HELD`, `RELEASING`, `RELEASED`, `RETURNED` or `UNFUNDED`.
    #[schema(value_type = String, example = "HELD")]
    pub status: BlockStatus,
    /// The pending Midaz transaction that holds the amount.
    pub hold_transaction_id: Option<String>,
    /// RETURNED: the refund (type CASHOUT) that took the hold over and returns the money.
    pub refund_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&CautionaryBlock> for CautionaryBlockView {
    fn from(b: &CautionaryBlock) -> CautionaryBlockView {
        CautionaryBlockView {
            id: b.id,
            infraction_report_id: b.infraction_report_id,
            transfer_id: b.transfer_id,
            end_to_end_id: b.end_to_end_id.clone(),
            requested_amount: Money::from_centavos(b.requested_amount),
            amount: b.state.amount().map(Money::from_centavos),
            status: b.status(),
            hold_transaction_id: b.state.hold().map(|h| h.0.clone()),
            refund_id: b.state.refund_id(),
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}
