//! Outbound events for a tenant's webhooks. A feature records an event in the same transaction
//! as the state change it reports, already routed to the tenant's endpoints; the webhook engine
//! delivers it. Deliveries of one entity share an ordering key, so they go in the order recorded.
//! (Events recorded by earlier versions wait as `DELIVER_EVENT` jobs on [`WEBHOOK_QUEUE`]; the
//! engine's routing worker drains them through [`route_and_record`].)

use chrono::{DateTime, Utc};
use uuid::Uuid;

use serde::Serialize;

use crate::deliveries::{EventRouting, NewWebhookEvent, insert_webhook_event, route_candidates, set_event_routing};
use crate::routing::{Route, route};
use crate::{StoreError, StoreResult, Tx};

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

/// The body every delivery attempt of an event sends.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
    pub entity_type: &'a str,
    pub flow_type: &'a str,
    pub payload: &'a serde_json::Value,
}

/// Records `event` inside `tx`, routed to the tenant's endpoints (one pending delivery each,
/// see [`crate::routing`]); returns its event id (the Standard Webhooks `webhook-id`). Routing
/// in the caller's transaction costs a read, not a commit of its own.
pub async fn record_outbound_event(tx: &mut Tx, event: &OutboundEvent<'_>, now: DateTime<Utc>) -> StoreResult<Uuid> {
    let event_id = pix_core::ids::new_id();
    route_and_record(tx, event_id, event, now, now).await?;
    Ok(event_id)
}

/// Routes `event` and records it with its deliveries in `tx`; `false` when `event_id` was
/// already recorded.
pub async fn route_and_record(
    tx: &mut Tx,
    event_id: Uuid,
    event: &OutboundEvent<'_>,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let envelope = Envelope { entity_type: event.entity_type, flow_type: event.flow_type, payload: event.payload };
    let body = serde_json::to_string(&envelope).map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    let new = NewWebhookEvent {
        id: event_id,
        tenant_id: event.tenant_id,
        flow_type: event.flow_type,
        entity_type: event.entity_type,
        entity_id: event.entity_id,
        body: &body,
        occurred_at,
    };
    // The write first: on SQLite a transaction that read before its first write cannot write
    // once another connection has, so the event row takes the lock before the endpoints are read.
    if !insert_webhook_event(tx, &new, EventRouting::NotRouted, &[], now).await? {
        return Ok(false);
    }
    let candidates = route_candidates(tx, event.tenant_id, event.flow_type, event.entity_type).await?;
    let routing = match route(&candidates, event.flow_type, event.entity_type) {
        Route::Deliver(endpoints) => {
            set_event_routing(tx, &new, EventRouting::Routed, &endpoints, now).await?;
            EventRouting::Routed
        }
        Route::Disabled => {
            set_event_routing(tx, &new, EventRouting::Disabled, &[], now).await?;
            EventRouting::Disabled
        }
        Route::NotRouted => EventRouting::NotRouted,
    };
    metrics::counter!("webhook_events_total", "flow_type" => event.flow_type.to_owned(),
        "entity_type" => event.entity_type.to_owned(), "routing" => routing.as_str())
    .increment(1);
    Ok(true)
}
