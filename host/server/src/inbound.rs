//! Inbound BTG webhooks: authenticate, store raw, answer 2xx; a worker processes each event
//! once, by type. Handlers for event types are registered by the features that own them; an
//! event nobody handles is kept as `unhandled` and counted, never dropped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use pix_core::clock::Clock;
use pix_core::error::ErrorCode;
use pix_integrations::btg::wire::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_TIMESTAMP, SignatureError, WebhookEnvelope, verify_webhook,
};
use pix_store::Store;
use pix_store::inbound::{InboundEvent, InboundStatus, NewInboundEvent, Recorded};
use pix_store::jobs::Job;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::worker::{JobError, JobFuture, JobHandler};

pub const BTG_SOURCE: &str = "btg";

/// How a request reached the ingress: the mTLS listener has already verified the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Plain,
    MutualTls,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub event_id: String,
    /// True when this event id was already received (the sender retried).
    pub duplicate: bool,
}

/// `POST /v1/inbound/btg/{tenantId}`: one BTG event.
#[utoipa::path(post, path = "/v1/inbound/btg/{tenant_id}", tag = "Inbound",
    request_body(content = serde_json::Value, description = "BTG envelope: {webhookId, event, data}"),
    params(("tenant_id" = Uuid, Path), ("x-signature" = Option<String>, Header, description = "sha256=hex(HMAC(secret, timestamp.body))"),
           ("x-signature-timestamp" = Option<i64>, Header, description = "Unix seconds")),
    responses((status = 202, body = Received), (status = 400, body = crate::routes::ErrorResponse),
               (status = 401, body = crate::routes::ErrorResponse), (status = 404, body = crate::routes::ErrorResponse)))]
pub async fn receive_btg_event(
    State(state): State<AppState>,
    channel: axum::Extension<Channel>,
    AppPath(tenant_id): AppPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Received>)> {
    authenticate(&state, channel.0, &headers, &body)?;
    if state.store.tenant(tenant_id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "unknown tenant"));
    }
    let envelope: WebhookEnvelope = crate::extract::parse_json(&body)?;
    if envelope.webhook_id.trim().is_empty() || envelope.event.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidField, "webhookId and event must not be empty"));
    }
    let payload = serde_json::json!({ "event": envelope.event, "data": envelope.data });
    let recorded = state
        .store
        .record_inbound_event(
            &NewInboundEvent {
                tenant_id,
                source: BTG_SOURCE,
                event_id: &envelope.webhook_id,
                event_type: &envelope.event,
                payload: &payload,
            },
            state.clock.now(),
        )
        .await?;
    let duplicate = matches!(recorded, Recorded::Duplicate(_));
    metrics::counter!("inbound_events_received_total", "type" => envelope.event.clone(), "duplicate" => duplicate.to_string())
        .increment(1);
    tracing::info!(event_type = %envelope.event, event_id = %envelope.webhook_id, duplicate, "inbound event stored");
    Ok((StatusCode::ACCEPTED, Json(Received { event_id: envelope.webhook_id, duplicate })))
}

fn authenticate(state: &AppState, channel: Channel, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    let config = &state.config.btg_webhook;
    let Some(secret) = &config.hmac_secret else {
        // Without a shared secret only the mTLS listener can vouch for the sender.
        return match channel {
            Channel::MutualTls => Ok(()),
            Channel::Plain => Err(ApiError::new(ErrorCode::Unauthorized, "this endpoint only accepts mTLS clients")),
        };
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    verify_webhook(
        secret.as_bytes(),
        header(HEADER_SIGNATURE_TIMESTAMP),
        header(HEADER_SIGNATURE),
        body,
        state.clock.now(),
        config.timestamp_tolerance_secs,
    )
    .map_err(|e| {
        metrics::counter!("inbound_events_rejected_total").increment(1);
        let message = match e {
            SignatureError::Stale => "webhook signature timestamp is outside the tolerance",
            SignatureError::Mismatch => "webhook signature does not match",
            SignatureError::Malformed(_) => "webhook signature headers are missing or malformed",
        };
        ApiError::new(ErrorCode::Unauthorized, message)
    })
}

/// Processes one stored event of a given type. Must be idempotent (at-least-once delivery).
pub trait InboundHandler: Send + Sync {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a>;
}

/// The job handler of the `inbound` queue: routes each stored event to its type's handler.
pub struct InboundDispatcher {
    store: Store,
    clock: Arc<dyn Clock>,
    handlers: HashMap<String, Arc<dyn InboundHandler>>,
}

impl InboundDispatcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> InboundDispatcher {
        InboundDispatcher { store, clock, handlers: HashMap::new() }
    }

    pub fn register(mut self, event_type: &str, handler: Arc<dyn InboundHandler>) -> InboundDispatcher {
        self.handlers.insert(event_type.to_owned(), handler);
        self
    }

    async fn process(&self, job: &Job) -> Result<(), JobError> {
        let id = job.payload["inboundEventId"]
            .as_i64()
            .ok_or_else(|| JobError::Permanent("job payload lacks inboundEventId".into()))?;
        let event = self
            .store
            .inbound_event(id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?
            .ok_or_else(|| JobError::Permanent(format!("inbound event {id} does not exist")))?;
        if event.status != InboundStatus::Pending {
            return Ok(()); // Already settled by an earlier run of this job.
        }
        let (status, error, outcome) = match self.handlers.get(&event.event_type) {
            None => {
                tracing::warn!(event_type = %event.event_type, id, "no handler for inbound event type; kept as unhandled");
                metrics::counter!("inbound_events_unhandled_total", "type" => event.event_type.clone()).increment(1);
                (InboundStatus::Unhandled, None, Ok(()))
            }
            Some(handler) => match handler.handle(&event).await {
                Ok(()) => (InboundStatus::Processed, None, Ok(())),
                Err(JobError::Retry(e)) => return Err(JobError::Retry(e)),
                Err(JobError::Permanent(e)) => (InboundStatus::Failed, Some(e.clone()), Err(JobError::Permanent(e))),
            },
        };
        self.store
            .finish_inbound_event(id, status, error.as_deref(), self.clock.now())
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        outcome
    }
}

impl JobHandler for InboundDispatcher {
    fn handle<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(self.process(job))
    }
}
