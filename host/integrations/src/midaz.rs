//! Midaz v3 ledger client: accounts, balances and transactions (holds with commit/cancel,
//! reverts, inflow/outflow), following integrations.md §3.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::config::MidazConfig;
use crate::domain::Money;
use crate::error::{IntegrationError, Result, Upstream};
use crate::lerian_auth::LerianTokenSource;
use crate::transport::{Idempotence, TokenSource, Transport, build_client, parse_base, url};

/// Flat metadata map (Midaz forbids nesting).
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// `{code, description}` status object used on accounts and transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusObject {
    /// `ACTIVE`, `PENDING`, `APPROVED`, …
    pub code: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A Midaz account (subset of the response fields the host uses).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerAccount {
    /// Account UUID (the `X-Account-Id` of the Pix API).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Alias, e.g. `@acc_0001`.
    #[serde(default)]
    pub alias: Option<String>,
    /// Asset code (`BRL`).
    pub asset_code: String,
    /// Free-text account type (`deposit`, `external`, …).
    #[serde(rename = "type")]
    pub account_type: String,
    /// CRM holder id, when set at creation.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Status object.
    #[serde(default)]
    pub status: Option<StatusObject>,
    /// Blocked accounts cannot transact.
    #[serde(default)]
    pub blocked: Option<bool>,
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// A balance of an account (`default` key unless extra balances were added).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// Balance id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Account alias.
    #[serde(default)]
    pub alias: Option<String>,
    /// Balance key (`default`).
    pub key: String,
    /// Asset code.
    pub asset_code: String,
    /// Spendable amount.
    #[serde(with = "pix_core::money::upstream")]
    pub available: Money,
    /// Amount reserved by pending transactions.
    #[serde(with = "pix_core::money::upstream")]
    pub on_hold: Money,
    /// Optimistic-lock version; increments on every change.
    pub version: i64,
    /// Whether the balance may be a source.
    #[serde(default = "yes")]
    pub allow_sending: bool,
    /// Whether the balance may be a destination.
    #[serde(default = "yes")]
    pub allow_receiving: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
}

/// Leg amount `{asset, value}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegAmount {
    /// Asset code.
    pub asset: String,
    /// Decimal-string value.
    #[serde(with = "pix_core::money::upstream")]
    pub value: Money,
}

/// Percentage share of the total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Whole percent.
    pub percentage: u32,
    /// Percentage of the percentage, when nested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_percentage: Option<u32>,
}

/// One source or destination leg (`FromTo`); exactly one of `amount`, `share`, `remaining`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leg {
    /// `@alias`, `@external/BRL` or `alias#balanceKey`.
    pub account_alias: String,
    /// Balance key (Midaz default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_key: Option<String>,
    /// Fixed amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<LegAmount>,
    /// Percentage of the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    /// `"remaining"`: whatever is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<String>,
    /// Leg description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Leg metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

impl Leg {
    /// A leg with a fixed amount.
    pub fn amount(alias: impl Into<String>, asset: impl Into<String>, value: Money) -> Self {
        Leg {
            account_alias: alias.into(),
            balance_key: None,
            amount: Some(LegAmount { asset: asset.into(), value }),
            share: None,
            remaining: None,
            description: None,
            metadata: None,
        }
    }

    /// A leg taking a whole-percent share of the total.
    pub fn share(alias: impl Into<String>, percentage: u32) -> Self {
        Leg { share: Some(Share { percentage, percentage_of_percentage: None }), amount: None, ..Leg::remaining(alias) }
    }

    /// A leg taking whatever the other legs leave.
    pub fn remaining(alias: impl Into<String>) -> Self {
        Leg {
            account_alias: alias.into(),
            balance_key: None,
            amount: None,
            share: None,
            remaining: Some("remaining".to_owned()),
            description: None,
            metadata: None,
        }
    }
}

/// `send.source`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Debited legs.
    pub from: Vec<Leg>,
}

/// `send.distribute`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribute {
    /// Credited legs.
    pub to: Vec<Leg>,
}

/// `send`: the total must equal the sum of the source legs and of the destination legs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendBlock {
    /// Asset code.
    pub asset: String,
    /// Total.
    #[serde(with = "pix_core::money::upstream")]
    pub value: Money,
    /// Absent on inflow (the source is `@external/{asset}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Absent on outflow (the destination is `@external/{asset}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribute: Option<Distribute>,
}

/// A transaction request body (json, inflow or outflow endpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionRequest {
    /// ≤256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ≤100 characters; we put the EndToEndId or initiation id here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Hold only: sources go ON_HOLD until commit or cancel.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Flat metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Amounts and legs.
    pub send: SendBlock,
}

impl TransactionRequest {
    /// A double-entry transfer for the json endpoint; `send.value` is the sum of the source
    /// legs' fixed amounts.
    pub fn transfer(asset: &str, from: Vec<Leg>, to: Vec<Leg>) -> Self {
        let value = sum_fixed(&from);
        TransactionRequest::new(asset, value, Some(from), Some(to))
    }

    /// An inflow (source implicitly `@external/{asset}`).
    pub fn inflow(asset: &str, to: Vec<Leg>) -> Self {
        let value = sum_fixed(&to);
        TransactionRequest::new(asset, value, None, Some(to))
    }

    /// An outflow (destination implicitly `@external/{asset}`).
    pub fn outflow(asset: &str, from: Vec<Leg>) -> Self {
        let value = sum_fixed(&from);
        TransactionRequest::new(asset, value, Some(from), None)
    }

    fn new(asset: &str, value: Money, from: Option<Vec<Leg>>, to: Option<Vec<Leg>>) -> Self {
        TransactionRequest {
            description: None,
            code: None,
            pending: false,
            metadata: None,
            send: SendBlock {
                asset: asset.to_owned(),
                value,
                source: from.map(|from| Source { from }),
                distribute: to.map(|to| Distribute { to }),
            },
        }
    }

    /// Marks the transaction as a hold.
    pub fn pending(mut self) -> Self {
        self.pending = true;
        self
    }

    /// Sets `description`.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Sets `code`.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds a metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.get_or_insert_with(Metadata::new).insert(key.into(), value.into());
        self
    }
}

fn sum_fixed(legs: &[Leg]) -> Money {
    Money::from_centavos(legs.iter().filter_map(|l| l.amount.as_ref().map(|a| a.value.centavos())).sum())
}

/// Transaction status as Midaz reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Returned by create (persisted as APPROVED).
    Created,
    /// A hold awaiting commit or cancel.
    Pending,
    /// Settled.
    Approved,
    /// Hold released.
    Canceled,
    /// Annotation only.
    Noted,
    /// A value this client does not know.
    Other(String),
}

impl TransactionStatus {
    fn parse(code: &str) -> Self {
        match code {
            "CREATED" => TransactionStatus::Created,
            "PENDING" => TransactionStatus::Pending,
            "APPROVED" => TransactionStatus::Approved,
            "CANCELED" => TransactionStatus::Canceled,
            "NOTED" => TransactionStatus::Noted,
            other => TransactionStatus::Other(other.to_owned()),
        }
    }
}

/// Operation amount `{value}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationAmount {
    /// Decimal-string value.
    #[serde(with = "pix_core::money::upstream")]
    pub value: Money,
}

/// One posting of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Operation id.
    pub id: String,
    /// `DEBIT`, `CREDIT`, `ON_HOLD`, `RELEASE`, …
    #[serde(rename = "type")]
    pub operation_type: String,
    /// Account id.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Account alias.
    pub account_alias: String,
    /// Amount.
    pub amount: OperationAmount,
}

/// A Midaz transaction (response subset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Transaction id.
    pub id: String,
    /// Set on a revert: the transaction it reverses.
    #[serde(default)]
    pub parent_transaction_id: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Status object; see [`Transaction::status`].
    #[serde(rename = "status")]
    pub status_object: StatusObject,
    /// Total.
    #[serde(default, with = "pix_core::money::upstream::option")]
    pub amount: Option<Money>,
    /// Asset code.
    #[serde(default)]
    pub asset_code: Option<String>,
    /// Source aliases.
    #[serde(default)]
    pub source: Vec<String>,
    /// Destination aliases.
    #[serde(default)]
    pub destination: Vec<String>,
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Postings.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// `true` when Midaz answered from its idempotency store (`X-Idempotency-Replayed`).
    #[serde(skip)]
    pub replayed: bool,
}

impl Transaction {
    /// The parsed status.
    pub fn status(&self) -> TransactionStatus {
        TransactionStatus::parse(&self.status_object.code)
    }
}

/// `X-Idempotency` key plus optional `X-TTL`. Derive keys from our own ids (`pix-out-<id>`) and
/// never reuse one for a different body: Midaz replays the first result without comparing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key.
    pub key: String,
    /// How long Midaz keeps the result (default 300 s upstream).
    pub ttl: Option<Duration>,
}

impl IdempotencyKey {
    /// A key with Midaz's default TTL.
    pub fn new(key: impl Into<String>) -> Self {
        IdempotencyKey { key: key.into(), ttl: None }
    }

    /// Sets `X-TTL`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// The ledger of record.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// `GET …/accounts/{id}`.
    async fn account(&self, account_id: &str) -> Result<LedgerAccount>;
    /// `GET …/accounts/alias/{alias}`.
    async fn account_by_alias(&self, alias: &str) -> Result<LedgerAccount>;
    /// `GET …/accounts/{id}/balances`.
    async fn balances(&self, account_id: &str) -> Result<Vec<Balance>>;
    /// `POST …/transactions/json` (may be `pending`).
    async fn create_transaction(&self, request: &TransactionRequest, key: &IdempotencyKey) -> Result<Transaction>;
    /// `POST …/transactions/inflow` (no source; cannot be pending).
    async fn inflow(&self, request: &TransactionRequest, key: &IdempotencyKey) -> Result<Transaction>;
    /// `POST …/transactions/outflow` (no distribute; may be pending).
    async fn outflow(&self, request: &TransactionRequest, key: &IdempotencyKey) -> Result<Transaction>;
    /// `GET …/transactions/{id}`.
    async fn transaction(&self, id: &str) -> Result<Transaction>;
    /// `POST …/transactions/{id}/commit`: a repeat (422 `0099`) that finds the transaction
    /// APPROVED is a success.
    async fn commit(&self, id: &str) -> Result<Transaction>;
    /// `POST …/transactions/{id}/cancel`: a repeat that finds it CANCELED is a success.
    async fn cancel(&self, id: &str) -> Result<Transaction>;
    /// `POST …/transactions/{id}/revert`: returns the new mirror transaction.
    async fn revert(&self, id: &str, key: &IdempotencyKey) -> Result<Transaction>;
}

/// reqwest implementation of [`Ledger`].
pub struct MidazClient {
    transport: Transport,
    ledger_prefix: Url,
    tx_prefix: Url,
}

impl MidazClient {
    /// Builds the client; fails on malformed URLs.
    pub fn new(config: &MidazConfig) -> Result<Self> {
        let onboarding = parse_base(&config.onboarding_url)?;
        let transactions = parse_base(config.transaction_url.as_deref().unwrap_or(&config.onboarding_url))?;
        let prefix = ["v1", "organizations", config.organization_id.as_str(), "ledgers", config.ledger_id.as_str()];
        let auth = config
            .auth
            .as_ref()
            .map(|a| LerianTokenSource::new(a).map(|s| Box::new(s) as Box<dyn TokenSource>))
            .transpose()?;
        let client = build_client(&config.http, None)?;
        Ok(MidazClient {
            transport: Transport::new(Upstream::Midaz, &config.http, client, auth),
            ledger_prefix: url(&onboarding, &prefix)?,
            tx_prefix: url(&transactions, &prefix)?,
        })
    }

    /// The client's circuit breaker, shared (its state is exported in `/metrics`).
    pub fn breaker(&self) -> std::sync::Arc<crate::resilience::CircuitBreaker> {
        self.transport.breaker.clone()
    }

    /// The circuit breaker state (for health and metrics).
    pub fn breaker_state(&self) -> crate::resilience::BreakerState {
        self.transport.breaker.state()
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, op: &'static str, target: Url) -> Result<T> {
        let client = &self.transport.client;
        let response = self.transport.call(op, Idempotence::Idempotent, &|| client.get(target.clone())).await?;
        response.json(Upstream::Midaz)
    }

    async fn post_transaction(
        &self,
        op: &'static str,
        endpoint: &str,
        request: &TransactionRequest,
        key: &IdempotencyKey,
    ) -> Result<Transaction> {
        let target = url(&self.tx_prefix, &["transactions", endpoint])?;
        let client = &self.transport.client;
        let build = || {
            let mut b = client.post(target.clone()).header("X-Idempotency", &key.key).json(request);
            if let Some(ttl) = key.ttl {
                b = b.header("X-TTL", ttl.as_secs().to_string());
            }
            b
        };
        // The idempotency key makes a retry replay the first result instead of posting twice.
        let response = self.transport.call(op, Idempotence::Idempotent, &build).await?;
        let mut tx: Transaction = response.json(Upstream::Midaz)?;
        tx.replayed =
            response.headers.get("X-Idempotency-Replayed").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        Ok(tx)
    }

    async fn settle(&self, id: &str, action: &'static str, target: TransactionStatus) -> Result<Transaction> {
        let endpoint = url(&self.tx_prefix, &["transactions", id, action])?;
        let client = &self.transport.client;
        // Commit/cancel are safe to repeat: a repeat is reconciled below.
        let outcome = self.transport.call(action, Idempotence::Idempotent, &|| client.post(endpoint.clone())).await;
        match outcome {
            Ok(response) => response.json(Upstream::Midaz),
            Err(err) if err.code() == Some("0099") => {
                // Midaz keeps its commit/cancel lock after success, so a retried call gets 0099:
                // read the transaction back and accept it if it already reached the target.
                let current = self.transaction(id).await?;
                if current.status() == target {
                    tracing::info!(transaction_id = id, action, "already settled; reconciled");
                    Ok(current)
                } else {
                    Err(err)
                }
            }
            Err(err) => Err(err),
        }
    }
}

#[async_trait::async_trait]
impl Ledger for MidazClient {
    #[tracing::instrument(name = "midaz.account", skip_all, fields(account_id = %account_id))]
    async fn account(&self, account_id: &str) -> Result<LedgerAccount> {
        self.get("account", url(&self.ledger_prefix, &["accounts", account_id])?).await
    }

    #[tracing::instrument(name = "midaz.account_by_alias", skip_all, fields(alias = %alias))]
    async fn account_by_alias(&self, alias: &str) -> Result<LedgerAccount> {
        self.get("account_by_alias", url(&self.ledger_prefix, &["accounts", "alias", alias])?).await
    }

    #[tracing::instrument(name = "midaz.balances", skip_all, fields(account_id = %account_id))]
    async fn balances(&self, account_id: &str) -> Result<Vec<Balance>> {
        let page: Page<Balance> =
            self.get("balances", url(&self.ledger_prefix, &["accounts", account_id, "balances"])?).await?;
        Ok(page.items)
    }

    #[tracing::instrument(name = "midaz.create_transaction", skip_all, fields(idempotency_key = %key.key, pending = request.pending))]
    async fn create_transaction(&self, request: &TransactionRequest, key: &IdempotencyKey) -> Result<Transaction> {
        if request.send.source.is_none() || request.send.distribute.is_none() {
            return Err(IntegrationError::Config("json transactions need both source and distribute".into()));
        }
        self.post_transaction("create_transaction", "json", request, key).await
    }

    #[tracing::instrument(name = "midaz.inflow", skip_all, fields(idempotency_key = %key.key))]
    async fn inflow(&self, request: &TransactionRequest, key: &IdempotencyKey) -> Result<Transaction> {
        if request.pending || request.send.source.is_some() {
            return Err(IntegrationError::Config("an inflow has no source and cannot be pending".into()));
        }
        self.post_transaction("inflow", "inflow", request, key).await
    }

    #[tracing::instrument(name = "midaz.outflow", skip_all, fields(idempotency_key = %key.key, pending = request.pending))]
    async fn outflow(&self, request: &TransactionRequest, key: &IdempotencyKey) -> Result<Transaction> {
        if request.send.distribute.is_some() {
            return Err(IntegrationError::Config("an outflow has no distribute".into()));
        }
        self.post_transaction("outflow", "outflow", request, key).await
    }

    #[tracing::instrument(name = "midaz.transaction", skip_all, fields(transaction_id = %id))]
    async fn transaction(&self, id: &str) -> Result<Transaction> {
        self.get("transaction", url(&self.tx_prefix, &["transactions", id])?).await
    }

    #[tracing::instrument(name = "midaz.commit", skip_all, fields(transaction_id = %id))]
    async fn commit(&self, id: &str) -> Result<Transaction> {
        self.settle(id, "commit", TransactionStatus::Approved).await
    }

    #[tracing::instrument(name = "midaz.cancel", skip_all, fields(transaction_id = %id))]
    async fn cancel(&self, id: &str) -> Result<Transaction> {
        self.settle(id, "cancel", TransactionStatus::Canceled).await
    }

    #[tracing::instrument(name = "midaz.revert", skip_all, fields(transaction_id = %id, idempotency_key = %key.key))]
    async fn revert(&self, id: &str, key: &IdempotencyKey) -> Result<Transaction> {
        let target = url(&self.tx_prefix, &["transactions", id, "revert"])?;
        let client = &self.transport.client;
        let build = || {
            let mut b = client.post(target.clone()).header("X-Idempotency", &key.key);
            if let Some(ttl) = key.ttl {
                b = b.header("X-TTL", ttl.as_secs().to_string());
            }
            b
        };
        let response = self.transport.call("revert", Idempotence::Idempotent, &build).await?;
        response.json(Upstream::Midaz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_b_body_shape() {
        let m = |s: &str| s.parse::<Money>().unwrap();
        let req = TransactionRequest::transfer(
            "BRL",
            vec![Leg::amount("@acc_0001", "BRL", m("100.50"))],
            vec![Leg::amount("@external/BRL", "BRL", m("100.00")), Leg::amount("@fees_revenue", "BRL", m("0.50"))],
        )
        .pending()
        .description("Pix cash-out")
        .code("init-1")
        .meta("flow", "CASHOUT");
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "description":"Pix cash-out","code":"init-1","pending":true,
                "metadata":{"flow":"CASHOUT"},
                "send":{"asset":"BRL","value":"100.50",
                  "source":{"from":[{"accountAlias":"@acc_0001","amount":{"asset":"BRL","value":"100.50"}}]},
                  "distribute":{"to":[
                    {"accountAlias":"@external/BRL","amount":{"asset":"BRL","value":"100.00"}},
                    {"accountAlias":"@fees_revenue","amount":{"asset":"BRL","value":"0.50"}}]}}
            })
        );
        let inflow =
            serde_json::to_value(TransactionRequest::inflow("BRL", vec![Leg::amount("@acc_0001", "BRL", m("100"))]))
                .unwrap();
        assert!(inflow.get("pending").is_none());
        assert!(inflow["send"].get("source").is_none());
    }
}
