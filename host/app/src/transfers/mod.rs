//! Transfers: cash-out admission and its money steps, BTG's verdicts, cash-in, fraud review,
//! contradictions with BTG, and the sweeper that finishes whatever was left in flight.
//!
//! Money moves in idempotent steps whose keys derive from the transfer id (Midaz hold, BTG
//! payment), and each state a client or a later step depends on is saved before it is acted on.
//! Whatever a request could not finish (an upstream timeout, a crash), the sweeper finishes by
//! reading the state back from BTG and Midaz and calling the same functions (docs/transfers.md).

pub mod cashin;
pub mod cashout;
pub mod incidents;
pub mod intra;
pub mod limits;
pub mod review;
pub mod sweeper;
pub mod unblock;
mod view;

use std::time::Duration;

use chrono::{DateTime, Utc};
use pix_core::clock::{brasilia_date, brasilia_day_start};
use pix_core::document::PersonType;
use pix_core::error::ErrorCode;
use pix_core::transfer::{CashinState, Failure, FraudVerdict, TransferDetails, TransferState};
use pix_integrations::midaz::{LedgerAccount, Leg};
use pix_integrations::{IdempotencyKey, IntegrationError, Money as UpstreamMoney};
use pix_store::events::{OutboundEvent, record_outbound_event};
use pix_store::transfers::{Activity, StaleAfter, Transfer, save_transfer};
use pix_store::{StoreError, Tx};
use serde_json::Value;

pub use view::TransferView;

use crate::{App, AppError, AppResult};

/// Pix is BRL only: the Midaz asset, and the account money leaves to and arrives from.
pub(crate) const ASSET: &str = "BRL";
pub(crate) const EXTERNAL: &str = "@external/BRL";

/// How the engine waits for BTG and when the sweeper steps in.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// BTG saying "no such payment" releases a hold only once the cash-out is this old: a
    /// payment accepted a moment ago may not be readable yet.
    pub btg_not_found_grace: chrono::Duration,
    /// How long after a release on BTG's "not found" the sweeper keeps reading the payment back
    /// (every `stale_after.sent`), in case BTG confirms it after all.
    pub not_found_watch: chrono::Duration,
    /// How long each in-flight step may stay untouched before the sweeper reads it back.
    pub stale_after: StaleAfter,
    /// How often the sweeper looks, and how many transfers it takes at a time.
    pub sweep_every: Duration,
    pub sweep_batch: i64,
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            btg_not_found_grace: chrono::Duration::minutes(2),
            not_found_watch: chrono::Duration::hours(24),
            stale_after: StaleAfter {
                pending: chrono::Duration::minutes(2),
                sent: chrono::Duration::minutes(10),
                review: chrono::Duration::days(3),
                incident: chrono::Duration::minutes(30),
            },
            sweep_every: Duration::from_secs(30),
            sweep_batch: 100,
        }
    }
}

/// Whether clients hear of a save (a status change) or not (a step only the engine cares for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notify {
    Event,
    Quiet,
}

/// Saves `t` (optimistically, by version) with its event when `notify`, in one transaction;
/// `false` when another writer moved the row first (the caller reloads and re-decides).
async fn save(app: &App, t: &mut Transfer, notify: Notify) -> AppResult<bool> {
    let now = app.clock.now();
    t.updated_at = now;
    let mut tx = app.store.begin().await?;
    if !save_transfer(&mut tx, t).await? {
        return Ok(false);
    }
    if notify == Notify::Event {
        record_event(&mut tx, t, now).await?;
    }
    // A credited cash-in concludes the collection its txid names, in the same transaction.
    if let (TransferState::Cashin(CashinState::Credited { .. }), Some(tx_id)) = (&t.state, &t.details.tx_id) {
        crate::collections::conclude_in(&mut tx, t.tenant_id, tx_id, &t.end_to_end_id, now).await?;
    }
    tx.commit().await?;
    t.version += 1;
    Ok(true)
}

/// The row as it is now, after a save lost to another writer.
async fn reload(app: &App, t: &Transfer) -> AppResult<Transfer> {
    app.store.transfer(t.tenant_id, t.id).await?.ok_or_else(|| AppError::Store(StoreError::NotFound))
}

/// Records the TRANSFER/{CASHOUT|CASHIN} event of `t`'s current state in `tx`.
async fn record_event(tx: &mut Tx, t: &Transfer, now: DateTime<Utc>) -> AppResult<()> {
    let payload = serde_json::to_value(TransferView::from(t)).map_err(|e| AppError::Internal(e.to_string()))?;
    let id = t.id.to_string();
    let event = OutboundEvent {
        tenant_id: t.tenant_id,
        flow_type: "TRANSFER",
        entity_type: t.direction().as_str(),
        entity_id: &id,
        payload: &payload,
    };
    record_outbound_event(tx, &event, now).await?;
    Ok(())
}

/// The local time a policy sees (America/Sao_Paulo).
pub fn sao_paulo(now: DateTime<Utc>) -> pix_policy::LocalTime {
    use chrono::{Datelike, Timelike};
    use pix_policy::Weekday;
    let local = pix_core::clock::brasilia(now);
    let weekday = match local.weekday() {
        chrono::Weekday::Mon => Weekday::Monday,
        chrono::Weekday::Tue => Weekday::Tuesday,
        chrono::Weekday::Wed => Weekday::Wednesday,
        chrono::Weekday::Thu => Weekday::Thursday,
        chrono::Weekday::Fri => Weekday::Friday,
        chrono::Weekday::Sat => Weekday::Saturday,
        chrono::Weekday::Sun => Weekday::Sunday,
    };
    let minute_of_day = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
    pix_policy::LocalTime { minute_of_day, weekday }
}

/// Midnight starting the Brasília day of `now`.
fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    brasilia_day_start(brasilia_date(now))
}

/// Days since a `YYYY-MM-DD` (or RFC 3339) date; `None` when unknown.
fn days_since(date: Option<&str>, now: DateTime<Utc>) -> Option<u32> {
    let date = date?;
    let day = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    u32::try_from((now.date_naive() - day).num_days().max(0)).ok()
}

fn policy_person(p: PersonType) -> pix_policy::PersonType {
    match p {
        PersonType::Natural => pix_policy::PersonType::Natural,
        PersonType::Legal => pix_policy::PersonType::Legal,
    }
}

/// The velocity part of a fraud-triage input, from the last hour's and last day's activity.
fn velocity(hour: &Activity, day: &Activity) -> pix_policy::Velocity {
    pix_policy::Velocity {
        count_1h: sat(hour.count),
        amount_1h: hour.volume,
        count_24h: sat(day.count),
        amount_24h: day.volume,
        distinct_counterparties_24h: sat(day.distinct_counterparties),
    }
}

/// A fraud-triage decision as kept on the transfer.
fn fraud_verdict(fraud: &pix_policy::FraudDecision, policy_sha256: &str) -> FraudVerdict {
    FraudVerdict {
        score: fraud.score,
        action: fraud.action,
        reasons: fraud.reasons.clone(),
        policy_sha256: policy_sha256.to_owned(),
    }
}

/// The account's Midaz segment (fee tiers by segment), from account metadata `segment`.
fn account_segment(ledger: &LedgerAccount) -> String {
    ledger.metadata.as_ref().and_then(|m| m.get("segment")).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Blocked in Midaz (flag or status): it may neither send nor receive.
fn ledger_blocked(ledger: &LedgerAccount) -> bool {
    ledger.blocked == Some(true) || ledger.status.as_ref().is_some_and(|s| s.code == "BLOCKED")
}

/// Counts for policy inputs (`u32`), saturating.
fn sat(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A Midaz idempotency key for a money-moving step, kept long enough to outlive any retry: with
/// Midaz's default of 300 s, a step resumed after an outage could post the same hold twice.
pub(crate) fn ledger_key(key: String) -> IdempotencyKey {
    IdempotencyKey::new(key).with_ttl(Duration::from_secs(7 * 24 * 3600))
}

/// The failure a hold or debit Midaz definitely refused stands for (its code 0018: the balance
/// is too low). Cash-outs, refunds and their intra-PSP forms record the same codes.
pub(crate) fn ledger_refusal(source: &IntegrationError) -> Failure {
    match source.code() {
        Some("0018") => Failure::new(INSUFFICIENT_BALANCE, "insufficient balance"),
        _ => Failure::new("LEDGER_REJECTED", source.to_string()),
    }
}

const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";

/// A request that admitted an operation answers its hold's balance refusal as a 422 (nothing
/// was held) rather than as the failed operation.
pub(crate) fn refuse_short_balance(failure: Option<&Failure>, message: &'static str) -> AppResult<()> {
    if failure.is_some_and(|f| f.code == INSUFFICIENT_BALANCE) {
        return Err(AppError::refused(ErrorCode::InsufficientBalance, message));
    }
    Ok(())
}

pub(crate) fn leg(alias: &str, centavos: i64) -> Leg {
    Leg::amount(alias, ASSET, UpstreamMoney::from_centavos(centavos))
}

/// The customer's Midaz alias of a transfer whose account is known.
fn ledger_alias(t: &Transfer) -> AppResult<&str> {
    t.details
        .ledger_alias
        .as_deref()
        .ok_or_else(|| AppError::Internal(format!("transfer {} has no ledger alias", t.id)))
}

/// The fee account of a transfer that charged a fee.
fn fee_account(details: &TransferDetails) -> &str {
    details.fee.as_ref().map_or("", |f| f.account.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn account_age_from_dates() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(days_since(Some("2026-03-01"), now), Some(9));
        assert_eq!(days_since(Some("2026-03-01T10:00:00Z"), now), Some(9));
        assert_eq!(days_since(Some("garbage"), now), None);
        assert_eq!(days_since(None, now), None);
    }
}
