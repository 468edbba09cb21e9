//! A transfer as clients and webhooks see it (`TRANSFER/CASHOUT` and `TRANSFER/CASHIN` events
//! carry the same shape as `GET /v1/transfers/{id}`).

use chrono::{DateTime, Utc};
use pix_core::mask::mask_document;
use pix_core::money::Money;
use pix_core::transfer::{
    Counterparty, Direction, FraudVerdict, IncidentRecord, InitiationType, Purpose, TransferStatus,
};
use pix_store::transfers::Transfer;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::med::CautionaryBlockView;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    pub id: Uuid,
    pub end_to_end_id: String,
    /// `CASHOUT` or `CASHIN`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "CASHOUT")]
    pub transfer_type: Direction,
    /// `PENDING`, `IN_REVIEW`, `PROCESSING`, `COMPLETED`, `FAILED`, `CANCELLED` or
    /// `RECONCILIATION_REQUIRED` (BTG contradicted the outcome; see `incident`).
    #[schema(value_type = String, example = "COMPLETED")]
    pub status: TransferStatus,
    #[schema(value_type = String, example = "100.00")]
    pub amount: Money,
    /// What the fee policy charged.
    #[schema(value_type = String, example = "0.00")]
    pub fee: Money,
    /// `TRANSFER` or `INSTANT_PAYMENT_REFUND`.
    #[schema(value_type = String, example = "TRANSFER")]
    pub purpose: Purpose,
    #[serde(rename = "isIntraPSP")]
    pub is_intra_psp: bool,
    /// Cash-outs: `KEY`, `QR_CODE` or `MANUAL`.
    #[schema(value_type = Option<String>)]
    pub initiation_type: Option<InitiationType>,
    pub initiation_id: Option<Uuid>,
    /// The other side: participant, branch, account, masked document, name, key.
    #[schema(value_type = Object)]
    pub counterparty: Counterparty,
    pub description: Option<String>,
    /// QR code txid, when there is one.
    pub tx_id: Option<String>,
    pub failure_code: Option<String>,
    pub failed_reason: Option<String>,
    /// The fraud-triage decision (score, action, reasons).
    #[schema(value_type = Option<Object>)]
    pub fraud: Option<FraudVerdict>,
    /// The contradiction with BTG, when the status is RECONCILIATION_REQUIRED.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub incident: Option<IncidentRecord>,
    /// Cash-ins an infraction report named: the MED cautionary blocks on the credited account,
    /// oldest first (`GET /v1/transfers` and `GET /v1/transfers/{id}`; not in TRANSFER events,
    /// which CAUTIONARY_BLOCK events complement).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cautionary_blocks: Vec<CautionaryBlockView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Transfer> for TransferView {
    fn from(t: &Transfer) -> TransferView {
        let d = &t.details;
        let mut counterparty = d.counterparty.clone();
        counterparty.tax_id = mask_document(&counterparty.tax_id);
        counterparty.key_ownership_date = None;
        let failure = t.state.failure();
        TransferView {
            id: t.id,
            end_to_end_id: t.end_to_end_id.clone(),
            transfer_type: t.direction(),
            status: t.status(),
            amount: Money::from_centavos(t.amount),
            fee: Money::from_centavos(t.fee),
            purpose: t.purpose,
            is_intra_psp: t.is_intra_psp,
            initiation_type: d.initiation_type,
            initiation_id: t.initiation_id,
            counterparty,
            description: d.description.clone(),
            tx_id: d.tx_id.clone(),
            failure_code: failure.map(|f| f.code.clone()),
            failed_reason: failure.map(|f| f.reason.clone()),
            fraud: d.fraud.clone(),
            incident: d.incident.clone(),
            cautionary_blocks: Vec::new(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
        }
    }
}
