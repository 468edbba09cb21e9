//! What intra-PSP transfers and refunds share (spec 001): the delivery the engine queues for
//! itself in the transaction of the state that needs it, and that the inbound worker posts,
//! signed, to the intra-PSP endpoint.

use chrono::{DateTime, Utc};
use pix_store::Tx;
use pix_store::inbound::{NewInboundEvent, record_inbound_event};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppError, AppResult};

/// The inbound records' source and event types (Lerian's intra-PSP kinds).
pub const SOURCE: &str = "intra-psp";
pub const TRANSFER: &str = "PAYMENT_INTRA_PSP_TRANSFER";
pub const REFUND: &str = "PAYMENT_INTRA_PSP_REFUND";

/// The settlement a delivery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Settlement {
    /// The internal cash-in of an intra-PSP cash-out.
    #[serde(rename_all = "camelCase")]
    Transfer { transfer_id: Uuid },
    /// The internal return of an intra-PSP refund to the original payer.
    #[serde(rename_all = "camelCase")]
    Refund { refund_id: Uuid },
}

/// The body of a delivery (and the payload of its inbound record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub tenant_id: Uuid,
    #[serde(flatten)]
    pub settlement: Settlement,
}

/// Queues `delivery` in the inbound queue within `tx` (once per settlement).
pub async fn queue(tx: &mut Tx, delivery: &Delivery, now: DateTime<Utc>) -> AppResult<()> {
    let payload = serde_json::to_value(delivery).map_err(|e| AppError::Internal(e.to_string()))?;
    let (event_type, id) = match delivery.settlement {
        Settlement::Transfer { transfer_id } => (TRANSFER, transfer_id),
        Settlement::Refund { refund_id } => (REFUND, refund_id),
    };
    let id = id.to_string();
    let event =
        NewInboundEvent { tenant_id: delivery.tenant_id, source: SOURCE, event_id: &id, event_type, payload: &payload };
    record_inbound_event(tx, &event, now).await?;
    Ok(())
}
