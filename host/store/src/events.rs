//! Outbound events for a tenant's webhooks. A feature records an event in the same transaction
//! as the state change it reports; the webhook engine (a worker on [`WEBHOOK_QUEUE`]) delivers
//! it. Events of one entity share an ordering key, so they are delivered in the order recorded.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::jobs::{NewJob, enqueue};
use crate::{StoreResult, Tx};

pub const WEBHOOK_QUEUE: &str = "webhooks";
pub const DELIVER_EVENT: &str = "deliver_event";

/// One event: `{entityType, flowType, payload}` on the wire, plus identifiers for ordering.
#[derive(Debug, Clone)]
pub struct OutboundEvent<'a> {
    pub tenant_id: Uuid,
    /// `DICT`, `TRANSFER`, `REFUND`, …
    pub flow_type: &'a str,
    /// `CLAIM`, `INFRACTION_REPORT`, `REFUND`, `CASHOUT`, …
    pub entity_type: &'a str,
    /// The entity's own id (claim id, transfer id…): events of one entity stay in order.
    pub entity_id: &'a str,
    pub payload: &'a serde_json::Value,
}

/// Records `event` inside `tx`; returns its event id (the Standard Webhooks `webhook-id`).
pub async fn record_outbound_event(tx: &mut Tx, event: &OutboundEvent<'_>, now: DateTime<Utc>) -> StoreResult<Uuid> {
    let event_id = pix_core::ids::new_id();
    let body = serde_json::json!({
        "eventId": event_id,
        "flowType": event.flow_type,
        "entityType": event.entity_type,
        "entityId": event.entity_id,
        "occurredAt": now,
        "payload": event.payload,
    });
    let job = NewJob::new(WEBHOOK_QUEUE, DELIVER_EVENT, body)
        .with_tenant(event.tenant_id)
        .with_dedupe_key(format!("event:{event_id}"))
        .with_ordering_key(format!(
            "{}:{}:{}:{}",
            event.tenant_id, event.flow_type, event.entity_type, event.entity_id
        ));
    enqueue(tx, &job, now).await?;
    Ok(event_id)
}
