//! BTG Pactual, the direct participant: DICT and SPI behind [`Btg`], with a reqwest client.
//! The wire contract lives in [`wire`] only.

mod types;
pub mod wire;

use std::time::Duration;

use reqwest::Url;

pub use types::*;
pub use wire::{BtgEvent, SignatureError, WebhookEnvelope, parse_webhook, sign_webhook, verify_webhook};

use crate::config::{BtgConfig, Secret};
use crate::domain::mask_key;
use crate::error::{IntegrationError, Result, Upstream};
use crate::transport::{Idempotence, TokenSource, Transport, build_client, parse_base, status_error, url};
use wire::WireRequest;

/// Token lifetime assumed when BTG omits `expires_in` (BTG Id issues 24 h tokens).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// BTG's DICT and SPI operations used by the host.
#[async_trait::async_trait]
pub trait Btg: Send + Sync {
    // --- DICT entries and keys
    /// Registers a key for one of our accounts.
    async fn create_entry(&self, entry: &NewEntry) -> Result<DictEntry>;
    /// Reads one of our entries.
    async fn entry(&self, key: &str) -> Result<DictEntry>;
    /// Changes account or names of one of our entries.
    async fn update_entry(&self, key: &str, update: &EntryUpdate) -> Result<DictEntry>;
    /// Removes one of our entries.
    async fn delete_entry(&self, key: &str, reason: Reason) -> Result<()>;
    /// Looks a key up for a payment; `end_to_end_id` is ours if we generated one.
    async fn lookup_key(&self, key: &str, end_to_end_id: Option<&str>) -> Result<KeyLookup>;
    /// Whether each key has an entry (1–200 keys).
    async fn check_keys(&self, keys: &[String]) -> Result<Vec<KeyCheck>>;
    // --- claims
    /// Opens a claim for a key held elsewhere.
    async fn create_claim(&self, claim: &NewClaim) -> Result<Claim>;
    /// Reads a claim.
    async fn claim(&self, id: &str) -> Result<Claim>;
    /// Lists claims.
    async fn list_claims(&self, filter: &ClaimFilter) -> Result<Vec<Claim>>;
    /// Acknowledges, confirms, cancels or completes a claim.
    async fn claim_action(&self, id: &str, action: ClaimAction) -> Result<Claim>;
    // --- MED
    /// Registers a fraud marker.
    async fn create_fraud_marker(&self, tax_id: &str, fraud_type: FraudType, key: Option<&str>) -> Result<FraudMarker>;
    /// Fraud markers of a person.
    async fn fraud_markers(&self, tax_id: &str) -> Result<Vec<FraudMarker>>;
    /// Cancels a fraud marker.
    async fn cancel_fraud_marker(&self, id: &str) -> Result<FraudMarker>;
    /// Opens an infraction report.
    async fn create_infraction_report(&self, report: &NewInfractionReport) -> Result<InfractionReport>;
    /// Reads an infraction report.
    async fn infraction_report(&self, id: &str) -> Result<InfractionReport>;
    /// Acknowledges a report against us.
    async fn acknowledge_infraction_report(&self, id: &str) -> Result<InfractionReport>;
    /// Closes a report against us with our analysis.
    async fn close_infraction_report(&self, id: &str, agreed: bool, details: Option<&str>) -> Result<InfractionReport>;
    /// Cancels a report we opened.
    async fn cancel_infraction_report(&self, id: &str) -> Result<InfractionReport>;
    /// Opens a MED refund request.
    async fn create_refund_request(&self, request: &NewRefundRequest) -> Result<RefundRequest>;
    /// Reads a refund request.
    async fn refund_request(&self, id: &str) -> Result<RefundRequest>;
    /// Closes a refund request against us.
    async fn close_refund_request(&self, id: &str, close: &RefundClose) -> Result<RefundRequest>;
    /// Cancels a refund request we opened.
    async fn cancel_refund_request(&self, id: &str) -> Result<RefundRequest>;
    /// Anti-fraud statistics of a key.
    async fn key_statistics(&self, key: &str) -> Result<Statistics>;
    /// Anti-fraud statistics of a person.
    async fn person_statistics(&self, tax_id: &str) -> Result<Statistics>;
    // --- reconciliation
    /// Asks for a CID file of our entries of one key type.
    async fn request_cid_file(&self, key_type: KeyType) -> Result<CidFile>;
    /// Reads a CID file.
    async fn cid_file(&self, id: &str) -> Result<CidFile>;
    /// The entry of ours behind a CID, with its creation RequestId (DICT's "consulta de vínculo
    /// por CID"); NotFound when DICT has no entry of ours with that CID.
    async fn entry_by_cid(&self, cid: &str) -> Result<DictEntry>;
    // --- MED 2.0
    /// Opens a funds recovery.
    async fn create_funds_recovery(&self, recovery: &NewFundsRecovery) -> Result<FundsRecovery>;
    /// Reads a funds recovery.
    async fn funds_recovery(&self, id: &str) -> Result<FundsRecovery>;
    /// Replaces a funds recovery's situation type, details and contact (BTG's PUT).
    async fn update_funds_recovery(&self, id: &str, update: &FundsRecoveryUpdate) -> Result<FundsRecovery>;
    /// Cancels a funds recovery (before REFUNDING).
    async fn cancel_funds_recovery(&self, id: &str) -> Result<FundsRecovery>;
    /// Asks DICT to open the refund requests of an ANALYSED funds recovery (→ REFUNDING).
    async fn refund_funds_recovery(&self, id: &str) -> Result<FundsRecovery>;
    /// The money trail DICT built.
    async fn tracking_graph(&self, id: &str) -> Result<TrackingGraph>;
    // --- SPI
    /// Sends a cash-out. Never retried on timeout: read back with [`Btg::payment`].
    async fn initiate_payment(&self, order: &PaymentOrder, idempotency_key: &str) -> Result<PaymentAccepted>;
    /// Status of a cash-out.
    async fn payment(&self, end_to_end_id: &str) -> Result<Payment>;
    /// Returns (part of) a payment we received. Never retried on timeout.
    async fn initiate_reversal(
        &self,
        original_end_to_end_id: &str,
        order: &ReversalOrder,
        idempotency_key: &str,
    ) -> Result<PaymentAccepted>;
    /// Declines a Pix received for one of our accounts: BTG, which settled it, returns the funds
    /// to the payer's participant. Idempotent by EndToEndId (a repeat returns the same payment,
    /// REJECTED with `rejection_code` = `reason_code`); an outbound or unknown payment is a 4xx.
    async fn refuse_inbound_payment(&self, end_to_end_id: &str, refusal: &InboundRefusal) -> Result<Payment>;
    /// Status of a reversal.
    async fn reversal(&self, original_end_to_end_id: &str, return_end_to_end_id: &str) -> Result<Reversal>;
    /// Every reversal of a payment we received; ours carry the idempotency key we sent as their
    /// `request_id`, which is how one whose answer was lost is found.
    async fn reversals(&self, original_end_to_end_id: &str) -> Result<Vec<Reversal>>;
    /// Submits a trck.002 report of intra-PSP transfers.
    async fn submit_internal_transactions_report(&self, report: &InternalTransactionsReport) -> Result<ReportReceipt>;
    /// Status of a submitted report.
    async fn internal_transactions_report(&self, id: &str) -> Result<ReportReceipt>;
}

struct BtgTokenSource {
    endpoint: Url,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
}

#[async_trait::async_trait]
impl TokenSource for BtgTokenSource {
    async fn fetch(&self, transport: &Transport) -> Result<(String, Duration)> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let request = transport
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&form);
        let response = transport.send(request).await?;
        if !response.status.is_success() {
            return Err(match status_error(Upstream::Btg, &response) {
                e @ IntegrationError::Unavailable { .. } => e,
                _ => IntegrationError::Unauthorized { upstream: Upstream::Btg, status: response.status.as_u16() },
            });
        }
        let token: wire::TokenResponse = wire::decode(&response.body)?;
        let lifetime = token.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok((token.access_token, lifetime))
    }
}

/// reqwest implementation of [`Btg`]: OAuth2 client credentials, optional mTLS.
pub struct BtgClient {
    transport: Transport,
    base: Url,
    ispb: String,
}

impl BtgClient {
    /// Builds the client; fails on malformed URLs or unreadable certificates.
    pub fn new(config: &BtgConfig) -> Result<Self> {
        let base = parse_base(&config.base_url)?;
        let auth_base = match &config.auth_url {
            Some(u) => parse_base(u)?,
            None => base.clone(),
        };
        let source = BtgTokenSource {
            endpoint: url(&auth_base, wire::TOKEN_PATH)?,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scope.clone(),
        };
        let client = build_client(&config.http, config.mtls.as_ref())?;
        Ok(BtgClient {
            transport: Transport::new(Upstream::Btg, &config.http, client, Some(Box::new(source))),
            base,
            ispb: config.ispb.clone(),
        })
    }

    /// Our ISPB.
    pub fn ispb(&self) -> &str {
        &self.ispb
    }

    /// The client's circuit breaker, shared (its state is exported in `/metrics`).
    pub fn breaker(&self) -> std::sync::Arc<crate::resilience::CircuitBreaker> {
        self.transport.breaker.clone()
    }

    /// The circuit breaker state.
    pub fn breaker_state(&self) -> crate::resilience::BreakerState {
        self.transport.breaker.state()
    }

    /// Runs one contract operation. Creating POSTs carry `x-idempotency-key` (given, or derived
    /// from a fresh UUID for naturally idempotent actions) so that retries cannot duplicate them.
    async fn exec(
        &self,
        op: &'static str,
        idempotence: Idempotence,
        idempotency_key: Option<&str>,
        request: WireRequest,
    ) -> Result<Vec<u8>> {
        let segments: Vec<&str> = request.path.iter().map(String::as_str).collect();
        let target = url(&self.base, &segments)?;
        let correlation = uuid::Uuid::now_v7().to_string();
        let key = idempotency_key
            .map(str::to_owned)
            .or_else(|| (request.method == reqwest::Method::POST).then(|| uuid::Uuid::now_v7().to_string()));
        let client = &self.transport.client;
        let build = || {
            let mut b = client
                .request(request.method.clone(), target.clone())
                .header(wire::HEADER_CORRELATION, &correlation)
                .query(&request.query);
            for (name, value) in &request.headers {
                b = b.header(*name, value);
            }
            if let Some(k) = &key {
                b = b.header(wire::HEADER_IDEMPOTENCY, k);
            }
            if let Some(body) = &request.body {
                b = b.json(body);
            }
            b
        };
        let response = self.transport.call(op, idempotence, &build).await?;
        Ok(response.body)
    }

    async fn read(&self, op: &'static str, request: WireRequest) -> Result<Vec<u8>> {
        self.exec(op, Idempotence::Idempotent, None, request).await
    }

    async fn write(&self, op: &'static str, key: Option<&str>, request: WireRequest) -> Result<Vec<u8>> {
        self.exec(op, Idempotence::Idempotent, key, request).await
    }
}

#[async_trait::async_trait]
impl Btg for BtgClient {
    #[tracing::instrument(name = "btg.create_entry", skip_all, fields(key_type = %entry.key_type, key = entry.key.as_deref().map(mask_key)))]
    async fn create_entry(&self, entry: &NewEntry) -> Result<DictEntry> {
        let key = entry.request_id.to_string();
        let body = self.write("create_entry", Some(&key), wire::create_entry(entry)).await?;
        wire::decode_entry(&body)
    }

    #[tracing::instrument(name = "btg.entry", skip_all, fields(key = %mask_key(key)))]
    async fn entry(&self, key: &str) -> Result<DictEntry> {
        wire::decode_entry(&self.read("entry", wire::get_entry(key)).await?)
    }

    #[tracing::instrument(name = "btg.update_entry", skip_all, fields(key = %mask_key(key)))]
    async fn update_entry(&self, key: &str, update: &EntryUpdate) -> Result<DictEntry> {
        let body = self.write("update_entry", None, wire::update_entry(key, update)).await?;
        wire::decode_entry(&body)
    }

    #[tracing::instrument(name = "btg.delete_entry", skip_all, fields(key = %mask_key(key), %reason))]
    async fn delete_entry(&self, key: &str, reason: Reason) -> Result<()> {
        self.write("delete_entry", None, wire::delete_entry(key, reason)).await.map(drop)
    }

    #[tracing::instrument(name = "btg.lookup_key", skip_all, fields(key = %mask_key(key)))]
    async fn lookup_key(&self, key: &str, end_to_end_id: Option<&str>) -> Result<KeyLookup> {
        let body = self.read("lookup_key", wire::lookup_key(key, end_to_end_id)).await?;
        wire::decode_lookup(&body)
    }

    #[tracing::instrument(name = "btg.check_keys", skip_all, fields(count = keys.len()))]
    async fn check_keys(&self, keys: &[String]) -> Result<Vec<KeyCheck>> {
        if keys.is_empty() || keys.len() > 200 {
            return Err(IntegrationError::Config("check_keys takes 1 to 200 keys".into()));
        }
        // A pure read despite being a POST: safe to retry.
        let body = self.write("check_keys", None, wire::check_keys(keys)).await?;
        wire::decode_check(&body)
    }

    #[tracing::instrument(name = "btg.create_claim", skip_all, fields(key = %mask_key(&claim.key), claim_type = %claim.claim_type))]
    async fn create_claim(&self, claim: &NewClaim) -> Result<Claim> {
        let key = claim.request_id.to_string();
        let body = self.write("create_claim", Some(&key), wire::create_claim(claim)).await?;
        wire::decode_claim(&body)
    }

    #[tracing::instrument(name = "btg.claim", skip_all, fields(claim_id = %id))]
    async fn claim(&self, id: &str) -> Result<Claim> {
        wire::decode_claim(&self.read("claim", wire::get_claim(id)).await?)
    }

    #[tracing::instrument(name = "btg.list_claims", skip_all)]
    async fn list_claims(&self, filter: &ClaimFilter) -> Result<Vec<Claim>> {
        wire::decode_claims(&self.read("list_claims", wire::list_claims(filter)).await?)
    }

    #[tracing::instrument(name = "btg.claim_action", skip_all, fields(claim_id = %id, action = ?action))]
    async fn claim_action(&self, id: &str, action: ClaimAction) -> Result<Claim> {
        let key = format!("claim-{id}-{action:?}");
        let body = self.write("claim_action", Some(&key), wire::claim_action(id, action)).await?;
        wire::decode_claim(&body)
    }

    #[tracing::instrument(name = "btg.create_fraud_marker", skip_all, fields(tax_id = %crate::domain::mask_document(tax_id), %fraud_type))]
    async fn create_fraud_marker(&self, tax_id: &str, fraud_type: FraudType, key: Option<&str>) -> Result<FraudMarker> {
        let body = self.write("create_fraud_marker", None, wire::create_fraud_marker(tax_id, fraud_type, key)).await?;
        wire::decode_fraud_marker(&body)
    }

    #[tracing::instrument(name = "btg.fraud_markers", skip_all, fields(tax_id = %crate::domain::mask_document(tax_id)))]
    async fn fraud_markers(&self, tax_id: &str) -> Result<Vec<FraudMarker>> {
        let body = self.read("fraud_markers", wire::list_fraud_markers(tax_id)).await?;
        wire::decode_fraud_markers(&body)
    }

    #[tracing::instrument(name = "btg.cancel_fraud_marker", skip_all, fields(id = %id))]
    async fn cancel_fraud_marker(&self, id: &str) -> Result<FraudMarker> {
        let body = self.write("cancel_fraud_marker", None, wire::cancel_fraud_marker(id)).await?;
        wire::decode_fraud_marker(&body)
    }

    #[tracing::instrument(name = "btg.create_infraction_report", skip_all, fields(end_to_end_id = %report.end_to_end_id))]
    async fn create_infraction_report(&self, report: &NewInfractionReport) -> Result<InfractionReport> {
        let body = self.write("create_infraction_report", None, wire::create_infraction_report(report)).await?;
        wire::decode_infraction_report(&body)
    }

    #[tracing::instrument(name = "btg.infraction_report", skip_all, fields(id = %id))]
    async fn infraction_report(&self, id: &str) -> Result<InfractionReport> {
        let body = self.read("infraction_report", wire::get_infraction_report(id)).await?;
        wire::decode_infraction_report(&body)
    }

    #[tracing::instrument(name = "btg.acknowledge_infraction_report", skip_all, fields(id = %id))]
    async fn acknowledge_infraction_report(&self, id: &str) -> Result<InfractionReport> {
        let body = self
            .write(
                "acknowledge_infraction_report",
                None,
                wire::infraction_action(id, "acknowledge", serde_json::json!({})),
            )
            .await?;
        wire::decode_infraction_report(&body)
    }

    #[tracing::instrument(name = "btg.close_infraction_report", skip_all, fields(id = %id, agreed))]
    async fn close_infraction_report(&self, id: &str, agreed: bool, details: Option<&str>) -> Result<InfractionReport> {
        let body = self
            .write(
                "close_infraction_report",
                None,
                wire::infraction_action(id, "close", wire::close_infraction_body(agreed, details)),
            )
            .await?;
        wire::decode_infraction_report(&body)
    }

    #[tracing::instrument(name = "btg.cancel_infraction_report", skip_all, fields(id = %id))]
    async fn cancel_infraction_report(&self, id: &str) -> Result<InfractionReport> {
        let body = self
            .write("cancel_infraction_report", None, wire::infraction_action(id, "cancel", serde_json::json!({})))
            .await?;
        wire::decode_infraction_report(&body)
    }

    #[tracing::instrument(name = "btg.create_refund_request", skip_all, fields(end_to_end_id = %request.end_to_end_id))]
    async fn create_refund_request(&self, request: &NewRefundRequest) -> Result<RefundRequest> {
        let body = self.write("create_refund_request", None, wire::create_refund_request(request)).await?;
        wire::decode_refund_request(&body)
    }

    #[tracing::instrument(name = "btg.refund_request", skip_all, fields(id = %id))]
    async fn refund_request(&self, id: &str) -> Result<RefundRequest> {
        let body = self.read("refund_request", wire::get_refund_request(id)).await?;
        wire::decode_refund_request(&body)
    }

    #[tracing::instrument(name = "btg.close_refund_request", skip_all, fields(id = %id))]
    async fn close_refund_request(&self, id: &str, close: &RefundClose) -> Result<RefundRequest> {
        let body = self.write("close_refund_request", None, wire::close_refund_request(id, close)).await?;
        wire::decode_refund_request(&body)
    }

    #[tracing::instrument(name = "btg.cancel_refund_request", skip_all, fields(id = %id))]
    async fn cancel_refund_request(&self, id: &str) -> Result<RefundRequest> {
        let body = self.write("cancel_refund_request", None, wire::cancel_refund_request(id)).await?;
        wire::decode_refund_request(&body)
    }

    #[tracing::instrument(name = "btg.key_statistics", skip_all, fields(key = %mask_key(key)))]
    async fn key_statistics(&self, key: &str) -> Result<Statistics> {
        wire::decode_statistics(&self.read("key_statistics", wire::key_statistics(key)).await?)
    }

    #[tracing::instrument(name = "btg.person_statistics", skip_all, fields(tax_id = %crate::domain::mask_document(tax_id)))]
    async fn person_statistics(&self, tax_id: &str) -> Result<Statistics> {
        let body = self.read("person_statistics", wire::person_statistics(tax_id)).await?;
        wire::decode_statistics(&body)
    }

    #[tracing::instrument(name = "btg.request_cid_file", skip_all, fields(%key_type))]
    async fn request_cid_file(&self, key_type: KeyType) -> Result<CidFile> {
        let body = self.write("request_cid_file", None, wire::request_cid_file(key_type)).await?;
        wire::decode_cid_file(&body)
    }

    #[tracing::instrument(name = "btg.cid_file", skip_all, fields(id = %id))]
    async fn cid_file(&self, id: &str) -> Result<CidFile> {
        wire::decode_cid_file(&self.read("cid_file", wire::get_cid_file(id)).await?)
    }

    #[tracing::instrument(name = "btg.entry_by_cid", skip_all, fields(cid = %cid))]
    async fn entry_by_cid(&self, cid: &str) -> Result<DictEntry> {
        wire::decode_entry(&self.read("entry_by_cid", wire::entry_by_cid(cid)).await?)
    }

    #[tracing::instrument(name = "btg.create_funds_recovery", skip_all, fields(root = %recovery.root_end_to_end_id))]
    async fn create_funds_recovery(&self, recovery: &NewFundsRecovery) -> Result<FundsRecovery> {
        // A retry of this call cannot open a second recovery.
        let key = format!("funds-recovery-{}", recovery.request_id);
        let body = self.write("create_funds_recovery", Some(&key), wire::create_funds_recovery(recovery)).await?;
        wire::decode_funds_recovery(&body)
    }

    #[tracing::instrument(name = "btg.funds_recovery", skip_all, fields(id = %id))]
    async fn funds_recovery(&self, id: &str) -> Result<FundsRecovery> {
        let body = self.read("funds_recovery", wire::get_funds_recovery(id)).await?;
        wire::decode_funds_recovery(&body)
    }

    #[tracing::instrument(name = "btg.update_funds_recovery", skip_all, fields(id = %id))]
    async fn update_funds_recovery(&self, id: &str, update: &FundsRecoveryUpdate) -> Result<FundsRecovery> {
        let body = self.write("update_funds_recovery", None, wire::update_funds_recovery(id, update)).await?;
        wire::decode_funds_recovery(&body)
    }

    #[tracing::instrument(name = "btg.refund_funds_recovery", skip_all, fields(id = %id))]
    async fn refund_funds_recovery(&self, id: &str) -> Result<FundsRecovery> {
        // Naturally idempotent at DICT (only ANALYSED moves to REFUNDING); the key covers retries.
        let key = format!("funds-recovery-refund-{id}");
        let body = self.write("refund_funds_recovery", Some(&key), wire::refund_funds_recovery(id)).await?;
        wire::decode_funds_recovery(&body)
    }

    #[tracing::instrument(name = "btg.cancel_funds_recovery", skip_all, fields(id = %id))]
    async fn cancel_funds_recovery(&self, id: &str) -> Result<FundsRecovery> {
        let body = self.write("cancel_funds_recovery", None, wire::cancel_funds_recovery(id)).await?;
        wire::decode_funds_recovery(&body)
    }

    #[tracing::instrument(name = "btg.tracking_graph", skip_all, fields(id = %id))]
    async fn tracking_graph(&self, id: &str) -> Result<TrackingGraph> {
        wire::decode_tracking_graph(&self.read("tracking_graph", wire::tracking_graph(id)).await?)
    }

    #[tracing::instrument(name = "btg.initiate_payment", skip_all, fields(end_to_end_id = %order.end_to_end_id, amount = %order.amount, creditor_ispb = %order.creditor.ispb))]
    async fn initiate_payment(&self, order: &PaymentOrder, idempotency_key: &str) -> Result<PaymentAccepted> {
        // Money moves: one attempt only; on Timeout the caller reconciles with `payment`.
        let body = self
            .exec("initiate_payment", Idempotence::Once, Some(idempotency_key), wire::initiate_payment(order))
            .await?;
        wire::decode_payment_accepted(&body)
    }

    #[tracing::instrument(name = "btg.payment", skip_all, fields(end_to_end_id = %end_to_end_id))]
    async fn payment(&self, end_to_end_id: &str) -> Result<Payment> {
        wire::decode_payment(&self.read("payment", wire::get_payment(end_to_end_id)).await?)
    }

    #[tracing::instrument(name = "btg.initiate_reversal", skip_all, fields(original_end_to_end_id = %original_end_to_end_id, amount = %order.amount, reason = %order.reason))]
    async fn initiate_reversal(
        &self,
        original_end_to_end_id: &str,
        order: &ReversalOrder,
        idempotency_key: &str,
    ) -> Result<PaymentAccepted> {
        let body = self
            .exec(
                "initiate_reversal",
                Idempotence::Once,
                Some(idempotency_key),
                wire::initiate_reversal(original_end_to_end_id, order),
            )
            .await?;
        wire::decode_reversal_accepted(&body)
    }

    #[tracing::instrument(name = "btg.refuse_inbound_payment", skip_all, fields(end_to_end_id = %end_to_end_id, reason_code = %refusal.reason_code, reason = %refusal.reason))]
    async fn refuse_inbound_payment(&self, end_to_end_id: &str, refusal: &InboundRefusal) -> Result<Payment> {
        // Idempotent by EndToEndId at BTG, so retrying on a timeout cannot refuse twice.
        let key = format!("refusal-{end_to_end_id}");
        let body = self
            .write("refuse_inbound_payment", Some(&key), wire::refuse_inbound_payment(end_to_end_id, refusal))
            .await?;
        wire::decode_payment(&body)
    }

    #[tracing::instrument(name = "btg.reversal", skip_all, fields(original_end_to_end_id = %original_end_to_end_id, return_end_to_end_id = %return_end_to_end_id))]
    async fn reversal(&self, original_end_to_end_id: &str, return_end_to_end_id: &str) -> Result<Reversal> {
        let body = self.read("reversal", wire::get_reversal(original_end_to_end_id, return_end_to_end_id)).await?;
        wire::decode_reversal(&body)
    }

    #[tracing::instrument(name = "btg.reversals", skip_all, fields(original_end_to_end_id = %original_end_to_end_id))]
    async fn reversals(&self, original_end_to_end_id: &str) -> Result<Vec<Reversal>> {
        wire::decode_reversals(&self.read("reversals", wire::list_reversals(original_end_to_end_id)).await?)
    }

    #[tracing::instrument(name = "btg.submit_report", skip_all, fields(report_id = %report.report_id, count = report.transactions.len()))]
    async fn submit_internal_transactions_report(&self, report: &InternalTransactionsReport) -> Result<ReportReceipt> {
        let body = self
            .write("submit_internal_transactions_report", Some(&report.report_id), wire::submit_report(report))
            .await?;
        wire::decode_report(&body)
    }

    #[tracing::instrument(name = "btg.report", skip_all, fields(id = %id))]
    async fn internal_transactions_report(&self, id: &str) -> Result<ReportReceipt> {
        wire::decode_report(&self.read("internal_transactions_report", wire::get_report(id)).await?)
    }
}
