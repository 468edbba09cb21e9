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
use pix_integrations::btg::{BtgEvent, parse_webhook};
use pix_integrations::{Secret, SecretRef};
use pix_store::Store;
use pix_store::inbound::{InboundEvent, InboundStatus, NewInboundEvent, Recorded};
use pix_store::jobs::Job;
use pix_store::tenants::Tenant;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::mtls::ClientCertificate;
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
    params(("tenant_id" = Uuid, Path), ("x-signature" = Option<String>, Header, description = "sha256=hex(HMAC(the tenant's secret, timestamp.body))"),
           ("x-signature-timestamp" = Option<i64>, Header, description = "Unix seconds")),
    responses((status = 202, body = Received), (status = 400, body = crate::routes::ErrorResponse),
               (status = 401, body = crate::routes::ErrorResponse, description = "unknown tenant, or not authenticated for it"),
               (status = 403, body = crate::routes::ErrorResponse, description = "the event concerns another institution")))]
pub async fn receive_btg_event(
    State(state): State<AppState>,
    channel: axum::Extension<Channel>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    AppPath(tenant_id): AppPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Received>)> {
    // An unknown tenant answers like a bad signature: the URL does not reveal which tenants exist.
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| rejected("webhook not authenticated"))?;
    authenticate(&state, &tenant, channel.0, certificate.as_ref().map(|c| &c.0), &headers, &body).await?;
    let envelope: WebhookEnvelope = crate::extract::parse_json(&body)?;
    if envelope.webhook_id.trim().is_empty() || envelope.event.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidField, "webhookId and event must not be empty"));
    }
    if !concerns(&tenant, &body) {
        metrics::counter!("inbound_events_rejected_total", "reason" => "other_participant").increment(1);
        tracing::warn!(tenant = %tenant.id, event_type = %envelope.event, event_id = %envelope.webhook_id,
            "inbound event names another institution; refused");
        return Err(ApiError::new(ErrorCode::Forbidden, "the event concerns another institution than this tenant"));
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

/// A webhook is the tenant's when its client certificate carries the tenant's pinned name (on the
/// mTLS listener, if a pin is set) and its signature verifies with one of the tenant's secrets
/// (current or still in its rotation overlap). A tenant without secrets is vouched for only by a
/// pinned certificate, or in demo mode by any certificate from the CA or the simulators' secret.
async fn authenticate(
    state: &AppState,
    tenant: &Tenant,
    channel: Channel,
    certificate: Option<&ClientCertificate>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<()> {
    let pin = tenant.inbound_client_subject.as_deref();
    if channel == Channel::MutualTls
        && let Some(pin) = pin
        && !certificate.is_some_and(|c| c.carries(pin))
    {
        return Err(rejected("the client certificate is not the one pinned for this tenant"));
    }
    let secrets = tenant_secrets(state, tenant).await?;
    if secrets.is_empty() {
        let vouched = channel == Channel::MutualTls && (pin.is_some() || state.config.demo);
        return if vouched {
            Ok(())
        } else {
            Err(rejected("no secret or pinned certificate authenticates this tenant"))
        };
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut outcome = Err(SignatureError::Mismatch);
    for secret in &secrets {
        outcome = verify_webhook(
            secret.expose().as_bytes(),
            header(HEADER_SIGNATURE_TIMESTAMP),
            header(HEADER_SIGNATURE),
            body,
            state.clock.now(),
            state.config.btg_webhook.timestamp_tolerance_secs,
        );
        // Only a mismatch depends on the secret: try the next one (rotation overlap).
        if !matches!(outcome, Err(SignatureError::Mismatch)) {
            break;
        }
    }
    outcome.map_err(|e| {
        rejected(match e {
            SignatureError::Stale => "webhook signature timestamp is outside the tolerance",
            SignatureError::Mismatch => "webhook signature does not match",
            SignatureError::Malformed(_) => "webhook signature headers are missing or malformed",
        })
    })
}

/// The tenant's valid inbound secrets, read from their references. In demo mode a tenant without
/// any uses the simulators' shared secret.
async fn tenant_secrets(state: &AppState, tenant: &Tenant) -> ApiResult<Vec<Secret>> {
    let stored = state.store.inbound_secrets(tenant.id, state.clock.now()).await?;
    let mut secrets = Vec::with_capacity(stored.len());
    for s in &stored {
        match s.secret_ref.parse::<SecretRef>().and_then(|r| r.resolve()) {
            Ok(secret) => secrets.push(secret),
            Err(e) => tracing::error!(tenant = %tenant.id, reference = %s.secret_ref, error = %e,
                "an inbound webhook secret cannot be read; webhooks signed with it are refused"),
        }
    }
    if stored.is_empty()
        && state.config.demo
        && let Some(shared) = &state.config.btg_webhook.hmac_secret
    {
        secrets.push(Secret::new(shared.clone()));
    }
    Ok(secrets)
}

fn rejected(message: &str) -> ApiError {
    metrics::counter!("inbound_events_rejected_total", "reason" => "authentication").increment(1);
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// Whether the event is about this tenant's institution: BTG sends a participant only events
/// that name it (the payee of a Pix received, the payer of ours in its EndToEndId, a side of a
/// claim or infraction report). So an event replayed to another tenant's URL is refused even if
/// it were signed with a secret both know. An event that does not decode names no one; it is
/// stored and its handler fails it without moving money.
fn concerns(tenant: &Tenant, body: &[u8]) -> bool {
    let Ok((_, event)) = parse_webhook(body) else {
        return true;
    };
    // EndToEndId and return ids: one letter, then the ISPB of the participant that issued them.
    let issuer = |id: &str| id.get(1..9).map(str::to_owned);
    let named: Vec<String> = match event {
        BtgEvent::Payment(p) => issuer(&p.end_to_end_id).into_iter().collect(),
        BtgEvent::PaymentInbound(p) => vec![p.creditor.ispb],
        BtgEvent::Reversal(r) => issuer(&r.return_end_to_end_id).into_iter().collect(),
        BtgEvent::ReversalInbound(r) => issuer(&r.original_end_to_end_id).into_iter().collect(),
        BtgEvent::Claim(c) => vec![c.claimer_participant, c.donor_participant],
        BtgEvent::InfractionReport(r) => vec![r.reporter_participant, r.counterparty_participant],
        _ => return true,
    };
    named.contains(&tenant.ispb)
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
                Err(e @ (JobError::Retry(_) | JobError::Deferred { .. })) => return Err(e),
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
