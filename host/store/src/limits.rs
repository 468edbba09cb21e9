//! Per-tenant transfer limits: the largest transfer a tenant allows, the largest fee its policy
//! may return and the Midaz accounts that fee may go to.
//!
//! A tenant without a stored row has [`TransferLimits::default`]: no maximum amount, no fee cap
//! and an empty allow-list. The tenant's default fee account (the one its fee fail-safe uses, set
//! by the operator in the policy binding's `fee-account` parameter) is always allowed; the list
//! adds others. So a policy cannot send fee money to an alias no operator chose, and the
//! fail-safe answer never breaks the allow-list.

use chrono::{DateTime, Utc};
use pix_core::money::{Amount, Money, MoneyError};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx};

/// Most aliases an allow-list may hold: it is checked on every fee decision.
pub const MAX_FEE_ACCOUNTS: usize = 50;
/// Longest alias accepted, the same bound the policy engine puts on a fee answer's alias.
pub const MAX_ALIAS_LEN: usize = 128;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLimits {
    /// `None`: the tenant sets no maximum per transfer.
    pub max_transfer_amount: Option<Money>,
    /// `None`: any fee the policy returns is accepted.
    pub max_fee: Option<Money>,
    /// Midaz aliases a fee policy may name besides the tenant's default fee account.
    pub fee_accounts: Vec<String>,
}

impl TransferLimits {
    /// Why these limits cannot be stored; messages are safe to show to the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_transfer_amount.is_some_and(|max| !max.is_positive()) {
            return Err("maxTransferAmount must be greater than zero".into());
        }
        if self.max_fee.is_some_and(Money::is_negative) {
            return Err("maxFee must not be negative".into());
        }
        if self.fee_accounts.len() > MAX_FEE_ACCOUNTS {
            return Err(format!("feeAccounts: at most {MAX_FEE_ACCOUNTS} aliases"));
        }
        for (i, alias) in self.fee_accounts.iter().enumerate() {
            if !is_alias(alias) {
                return Err(format!(
                    "feeAccounts[{i}]: a Midaz alias is '@' followed by 1 to {} visible characters",
                    MAX_ALIAS_LEN - 1
                ));
            }
            if self.fee_accounts[..i].contains(alias) {
                return Err(format!("feeAccounts[{i}]: {alias} is listed twice"));
            }
        }
        Ok(())
    }

    /// The amount, if the tenant's maximum allows it (equal to the maximum is allowed).
    pub fn check_amount(&self, amount: Amount) -> Result<Amount, MoneyError> {
        match self.max_transfer_amount {
            Some(max) => amount.ensure_at_most(max),
            None => Ok(amount),
        }
    }

    /// Whether a fee leg may be posted to `alias`; `default_fee_account` is the tenant's own.
    pub fn allows_fee_account(&self, alias: &str, default_fee_account: &str) -> bool {
        alias == default_fee_account || self.fee_accounts.iter().any(|allowed| allowed == alias)
    }
}

fn is_alias(alias: &str) -> bool {
    alias.len() <= MAX_ALIAS_LEN
        && alias.strip_prefix('@').is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()))
}

#[derive(sqlx::FromRow)]
struct Row {
    max_transfer_amount: Option<i64>,
    max_fee: Option<i64>,
    fee_accounts: Json<Vec<String>>,
}

impl Store {
    /// The tenant's limits, or the defaults when none were set.
    pub async fn transfer_limits(&self, tenant: Uuid) -> StoreResult<TransferLimits> {
        let mut tx = self.begin().await?;
        let limits = transfer_limits(&mut tx, tenant).await?;
        tx.commit().await?;
        Ok(limits)
    }

    /// Replaces the tenant's limits. Invalid limits are a `Conflict` carrying the reason (the API
    /// validates first; this keeps a bad row out whoever calls). An unknown tenant is `NotFound`.
    pub async fn set_transfer_limits(
        &self,
        tenant: Uuid,
        limits: &TransferLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        limits.validate().map_err(StoreError::Conflict)?;
        if self.tenant(tenant).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO tenant_transfer_limits (tenant_id, max_transfer_amount, max_fee, fee_accounts, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET max_transfer_amount = $2, max_fee = $3,
                        fee_accounts = $4, updated_at = $5",
            )
            .bind(tenant.to_string())
            .bind(limits.max_transfer_amount.map(Money::centavos))
            .bind(limits.max_fee.map(Money::centavos))
            .bind(Json(&limits.fee_accounts))
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

/// The tenant's limits (the defaults when it set none), read in `tx`.
pub async fn transfer_limits(tx: &mut Tx, tenant: Uuid) -> StoreResult<TransferLimits> {
    let row: Option<Row> = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT max_transfer_amount, max_fee, fee_accounts FROM tenant_transfer_limits WHERE tenant_id = $1",
        )
        .bind(tenant.to_string())
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.map_or_else(TransferLimits::default, |r| TransferLimits {
        max_transfer_amount: r.max_transfer_amount.map(Money::from_centavos),
        max_fee: r.max_fee.map(Money::from_centavos),
        fee_accounts: r.fee_accounts.0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(centavos: i64) -> Money {
        Money::from_centavos(centavos)
    }

    fn limits(max: Option<i64>, fee: Option<i64>, accounts: &[&str]) -> TransferLimits {
        TransferLimits {
            max_transfer_amount: max.map(m),
            max_fee: fee.map(m),
            fee_accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn accepts_sensible_limits_and_the_defaults() {
        assert_eq!(TransferLimits::default().validate(), Ok(()));
        assert_eq!(limits(Some(1), Some(0), &["@fees_revenue", "@tarifas"]).validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_limits_naming_the_field() {
        let long = format!("@{}", "a".repeat(MAX_ALIAS_LEN));
        let many: Vec<String> = (0..=MAX_FEE_ACCOUNTS).map(|i| format!("@fee{i}")).collect();
        let cases = [
            (limits(Some(0), None, &[]), "maxTransferAmount"),
            (limits(Some(-100), None, &[]), "maxTransferAmount"),
            (limits(None, Some(-1), &[]), "maxFee"),
            (limits(None, None, &["fees"]), "feeAccounts[0]"),
            (limits(None, None, &["@"]), "feeAccounts[0]"),
            (limits(None, None, &["@ok", "@has space"]), "feeAccounts[1]"),
            (limits(None, None, &[long.as_str()]), "feeAccounts[0]"),
            (limits(None, None, &["@a", "@a"]), "listed twice"),
            (TransferLimits { fee_accounts: many, ..TransferLimits::default() }, "at most"),
        ];
        for (bad, expected) in cases {
            let err = bad.validate().unwrap_err();
            assert!(err.contains(expected), "{bad:?}: {err}");
        }
    }

    #[test]
    fn amount_check_allows_up_to_the_maximum() {
        let amount = Amount::new(m(10_000)).unwrap();
        assert_eq!(TransferLimits::default().check_amount(amount), Ok(amount), "no maximum set");
        assert_eq!(limits(Some(10_000), None, &[]).check_amount(amount), Ok(amount));
        assert_eq!(
            limits(Some(9_999), None, &[]).check_amount(amount),
            Err(MoneyError::AboveMaximum { max: m(9_999) })
        );
    }

    #[test]
    fn the_default_fee_account_is_always_allowed_and_the_list_adds_others() {
        let empty = TransferLimits::default();
        assert!(empty.allows_fee_account("@fees_revenue", "@fees_revenue"));
        assert!(!empty.allows_fee_account("@someone_else", "@fees_revenue"), "empty list: default only");
        let listed = limits(None, None, &["@tarifas"]);
        assert!(listed.allows_fee_account("@tarifas", "@fees_revenue"));
        assert!(listed.allows_fee_account("@fees_revenue", "@fees_revenue"));
        assert!(!listed.allows_fee_account("@someone_else", "@fees_revenue"));
    }
}
