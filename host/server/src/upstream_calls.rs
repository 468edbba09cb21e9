//! A [`Btg`] that records every payment call it makes (cash-out, read-back, refusal, reversal,
//! the DICT lookup of a payment) in `upstream_calls`, by the tenant and the payment's
//! EndToEndId: the console's transfer timeline lists them. Every other call passes through
//! untouched. Only the operation, its outcome, the error class and the duration are kept.

use std::sync::Arc;
use std::time::Instant;

use pix_core::clock::Clock;
use pix_integrations::btg::*;
use pix_integrations::{Btg, IntegrationError, Result};
use pix_store::Store;
use pix_store::upstream_calls::{CallOutcome, CallUpstream, NewUpstreamCall};
use uuid::Uuid;

/// Where calls are recorded: the store and the clock of the application state.
#[derive(Clone)]
pub struct CallLog {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl CallLog {
    /// Records one finished call of `tenant` for the payment `end_to_end_id`. A failure to write
    /// is logged, never returned: the record is for operators, the call's result is what counts.
    pub async fn record<T>(
        &self,
        tenant: Uuid,
        end_to_end_id: &str,
        operation: &str,
        started: (chrono::DateTime<chrono::Utc>, Instant),
        result: &Result<T>,
    ) {
        let (outcome, detail) = match result {
            Ok(_) => (CallOutcome::Ok, None),
            Err(e) => classify(e),
        };
        let call = NewUpstreamCall {
            tenant_id: tenant,
            end_to_end_id,
            upstream: CallUpstream::Btg,
            operation,
            outcome,
            detail: detail.as_deref(),
            duration_ms: i64::try_from(started.1.elapsed().as_millis()).unwrap_or(i64::MAX),
            called_at: started.0,
        };
        if let Err(e) = self.store.record_upstream_call(&call).await {
            tracing::warn!(error = %e, %tenant, operation, "recording a BTG call failed");
        }
    }

    pub fn start(&self) -> (chrono::DateTime<chrono::Utc>, Instant) {
        (self.clock.now(), Instant::now())
    }
}

/// The outcome of a failed call and a short description without upstream messages (which may
/// carry personal data): the error class, HTTP status and upstream code.
fn classify(e: &IntegrationError) -> (CallOutcome, Option<String>) {
    let (outcome, detail) = match e {
        IntegrationError::NotFound { code, .. } => (CallOutcome::Rejected, format!("not found {code}")),
        IntegrationError::Conflict { code, .. } => (CallOutcome::Rejected, format!("conflict {code}")),
        IntegrationError::Rejected { status, code, .. } => (CallOutcome::Rejected, format!("rejected {status} {code}")),
        IntegrationError::Timeout { after, .. } => (CallOutcome::Failed, format!("timeout after {after:?}")),
        IntegrationError::Unavailable { status, .. } => match status {
            Some(s) => (CallOutcome::Failed, format!("unavailable (status {s})")),
            None => (CallOutcome::Failed, "unavailable".to_owned()),
        },
        IntegrationError::CircuitOpen { .. } => (CallOutcome::Failed, "circuit open (not sent)".to_owned()),
        IntegrationError::InFlight { .. } => (CallOutcome::Failed, "same request still in flight".to_owned()),
        IntegrationError::Unauthorized { status, .. } => {
            (CallOutcome::Failed, format!("credentials refused ({status})"))
        }
        IntegrationError::Decode { .. } => (CallOutcome::Failed, "undecodable answer".to_owned()),
        IntegrationError::Transport { .. } => (CallOutcome::Failed, "transport error".to_owned()),
        IntegrationError::Config(_) => (CallOutcome::Failed, "client configuration".to_owned()),
    };
    (outcome, Some(detail.trim().to_owned()))
}

/// The tenant's BTG client, recording its payment calls.
pub struct RecordingBtg {
    inner: Arc<dyn Btg>,
    tenant: Uuid,
    log: CallLog,
}

impl RecordingBtg {
    pub fn new(inner: Arc<dyn Btg>, tenant: Uuid, log: CallLog) -> RecordingBtg {
        RecordingBtg { inner, tenant, log }
    }

    async fn record<T>(
        &self,
        operation: &str,
        end_to_end_id: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = self.log.start();
        let result = call.await;
        self.log.record(self.tenant, end_to_end_id, operation, started, &result).await;
        result
    }
}

#[async_trait::async_trait]
impl Btg for RecordingBtg {
    async fn create_entry(&self, entry: &NewEntry) -> Result<DictEntry> {
        self.inner.create_entry(entry).await
    }

    async fn entry(&self, key: &str) -> Result<DictEntry> {
        self.inner.entry(key).await
    }

    async fn update_entry(&self, key: &str, update: &EntryUpdate) -> Result<DictEntry> {
        self.inner.update_entry(key, update).await
    }

    async fn delete_entry(&self, key: &str, reason: Reason) -> Result<()> {
        self.inner.delete_entry(key, reason).await
    }

    async fn lookup_key(&self, key: &str, end_to_end_id: Option<&str>) -> Result<KeyLookup> {
        let Some(e2e) = end_to_end_id else { return self.inner.lookup_key(key, end_to_end_id).await };
        self.record("lookup_key", e2e, self.inner.lookup_key(key, end_to_end_id)).await
    }

    async fn check_keys(&self, keys: &[String]) -> Result<Vec<KeyCheck>> {
        self.inner.check_keys(keys).await
    }

    async fn create_claim(&self, claim: &NewClaim) -> Result<Claim> {
        self.inner.create_claim(claim).await
    }

    async fn claim(&self, id: &str) -> Result<Claim> {
        self.inner.claim(id).await
    }

    async fn list_claims(&self, filter: &ClaimFilter) -> Result<Vec<Claim>> {
        self.inner.list_claims(filter).await
    }

    async fn claim_action(&self, id: &str, action: ClaimAction) -> Result<Claim> {
        self.inner.claim_action(id, action).await
    }

    async fn create_fraud_marker(&self, tax_id: &str, fraud_type: FraudType, key: Option<&str>) -> Result<FraudMarker> {
        self.inner.create_fraud_marker(tax_id, fraud_type, key).await
    }

    async fn fraud_markers(&self, tax_id: &str) -> Result<Vec<FraudMarker>> {
        self.inner.fraud_markers(tax_id).await
    }

    async fn cancel_fraud_marker(&self, id: &str) -> Result<FraudMarker> {
        self.inner.cancel_fraud_marker(id).await
    }

    async fn create_infraction_report(&self, report: &NewInfractionReport) -> Result<InfractionReport> {
        self.inner.create_infraction_report(report).await
    }

    async fn infraction_report(&self, id: &str) -> Result<InfractionReport> {
        self.inner.infraction_report(id).await
    }

    async fn acknowledge_infraction_report(&self, id: &str) -> Result<InfractionReport> {
        self.inner.acknowledge_infraction_report(id).await
    }

    async fn close_infraction_report(&self, id: &str, agreed: bool, details: Option<&str>) -> Result<InfractionReport> {
        self.inner.close_infraction_report(id, agreed, details).await
    }

    async fn cancel_infraction_report(&self, id: &str) -> Result<InfractionReport> {
        self.inner.cancel_infraction_report(id).await
    }

    async fn create_refund_request(&self, request: &NewRefundRequest) -> Result<RefundRequest> {
        self.inner.create_refund_request(request).await
    }

    async fn refund_request(&self, id: &str) -> Result<RefundRequest> {
        self.inner.refund_request(id).await
    }

    async fn close_refund_request(&self, id: &str, close: &RefundClose) -> Result<RefundRequest> {
        self.inner.close_refund_request(id, close).await
    }

    async fn cancel_refund_request(&self, id: &str) -> Result<RefundRequest> {
        self.inner.cancel_refund_request(id).await
    }

    async fn key_statistics(&self, key: &str) -> Result<Statistics> {
        self.inner.key_statistics(key).await
    }

    async fn person_statistics(&self, tax_id: &str) -> Result<Statistics> {
        self.inner.person_statistics(tax_id).await
    }

    async fn request_cid_file(&self, key_type: KeyType) -> Result<CidFile> {
        self.inner.request_cid_file(key_type).await
    }

    async fn cid_file(&self, id: &str) -> Result<CidFile> {
        self.inner.cid_file(id).await
    }

    async fn entry_by_cid(&self, cid: &str) -> Result<DictEntry> {
        self.inner.entry_by_cid(cid).await
    }

    async fn create_funds_recovery(&self, recovery: &NewFundsRecovery) -> Result<FundsRecovery> {
        self.inner.create_funds_recovery(recovery).await
    }

    async fn funds_recovery(&self, id: &str) -> Result<FundsRecovery> {
        self.inner.funds_recovery(id).await
    }

    async fn update_funds_recovery(&self, id: &str, update: &FundsRecoveryUpdate) -> Result<FundsRecovery> {
        self.inner.update_funds_recovery(id, update).await
    }

    async fn cancel_funds_recovery(&self, id: &str) -> Result<FundsRecovery> {
        self.inner.cancel_funds_recovery(id).await
    }

    async fn refund_funds_recovery(&self, id: &str) -> Result<FundsRecovery> {
        self.inner.refund_funds_recovery(id).await
    }

    async fn tracking_graph(&self, id: &str) -> Result<TrackingGraph> {
        self.inner.tracking_graph(id).await
    }

    async fn initiate_payment(&self, order: &PaymentOrder, idempotency_key: &str) -> Result<PaymentAccepted> {
        self.record("initiate_payment", &order.end_to_end_id, self.inner.initiate_payment(order, idempotency_key)).await
    }

    async fn payment(&self, end_to_end_id: &str) -> Result<Payment> {
        self.record("payment", end_to_end_id, self.inner.payment(end_to_end_id)).await
    }

    async fn initiate_reversal(
        &self,
        original_end_to_end_id: &str,
        order: &ReversalOrder,
        idempotency_key: &str,
    ) -> Result<PaymentAccepted> {
        self.record(
            "initiate_reversal",
            original_end_to_end_id,
            self.inner.initiate_reversal(original_end_to_end_id, order, idempotency_key),
        )
        .await
    }

    async fn refuse_inbound_payment(&self, end_to_end_id: &str, refusal: &InboundRefusal) -> Result<Payment> {
        self.record("refuse_inbound_payment", end_to_end_id, self.inner.refuse_inbound_payment(end_to_end_id, refusal))
            .await
    }

    async fn reversal(&self, original_end_to_end_id: &str, return_end_to_end_id: &str) -> Result<Reversal> {
        self.record(
            "reversal",
            original_end_to_end_id,
            self.inner.reversal(original_end_to_end_id, return_end_to_end_id),
        )
        .await
    }

    async fn reversals(&self, original_end_to_end_id: &str) -> Result<Vec<Reversal>> {
        self.record("reversals", original_end_to_end_id, self.inner.reversals(original_end_to_end_id)).await
    }

    async fn submit_internal_transactions_report(&self, report: &InternalTransactionsReport) -> Result<ReportReceipt> {
        self.inner.submit_internal_transactions_report(report).await
    }

    async fn internal_transactions_report(&self, id: &str) -> Result<ReportReceipt> {
        self.inner.internal_transactions_report(id).await
    }
}
