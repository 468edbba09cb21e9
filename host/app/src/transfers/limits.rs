//! A tenant's transfer limits: the maximum amount of a cash-out, and the check on what its fee
//! policy may answer (a failed check is a policy error: the fail-safe applies).

use pix_core::error::ErrorCode;
use pix_core::money::{Amount, Money};
use pix_policy::FeeDecision;
use pix_store::Tx;
use pix_store::limits::{TransferLimits, transfer_limits};
use uuid::Uuid;

use crate::{App, AppError, AppResult};

/// A tenant's limits and its default fee account, read once per operation.
pub(super) struct TenantLimits {
    limits: TransferLimits,
    default_fee_account: String,
}

impl TenantLimits {
    pub(super) async fn read(app: &App, tx: &mut Tx, tenant: Uuid) -> AppResult<TenantLimits> {
        Ok(TenantLimits {
            limits: transfer_limits(tx, tenant).await?,
            default_fee_account: app.policies.default_fee_account(tenant),
        })
    }

    /// Refuses a cash-out above the tenant's maximum (422 `PIX-0415`) before anything is held.
    pub(super) fn check_amount(&self, centavos: i64) -> AppResult<()> {
        let above = |_| {
            AppError::refused(
                ErrorCode::AmountAboveMaximum,
                format!(
                    "the amount is above the institution's maximum per transfer of {}",
                    self.limits.max_transfer_amount.map(|m| m.to_string()).unwrap_or_default()
                ),
            )
        };
        Amount::new(Money::from_centavos(centavos)).and_then(|a| self.limits.check_amount(a)).map(drop).map_err(above)
    }

    /// The check on what the fee policy may answer.
    pub(super) fn fee_check(&self) -> impl Fn(&FeeDecision) -> Result<(), String> + Send + Sync + '_ {
        fee_within_limits(&self.limits, &self.default_fee_account)
    }
}

/// `Err` when the fee is above the tenant's `max_fee`, or when a fee is charged to an account that
/// is neither the tenant's default fee account nor in its allow-list. A zero fee posts no leg, so
/// its account does not matter. The alias is not repeated in the message: it may name a person.
pub fn fee_within_limits(
    limits: &TransferLimits,
    default_fee_account: &str,
) -> impl Fn(&FeeDecision) -> Result<(), String> + Send + Sync {
    move |decision| {
        if let Some(max) = limits.max_fee
            && decision.fee > max.centavos()
        {
            return Err(format!(
                "fee {} is above the tenant's maximum fee of {max}",
                Money::from_centavos(decision.fee)
            ));
        }
        if decision.fee > 0 && !limits.allows_fee_account(&decision.fee_account, default_fee_account) {
            return Err("fee account is not one of the tenant's fee accounts".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use pix_policy::FeeCharge;

    use super::*;

    fn decision(fee: i64, account: &str) -> FeeDecision {
        FeeDecision { fee, fee_account: account.into(), charge: FeeCharge::OnTop, label: "t".into() }
    }

    fn limits(max_fee: Option<i64>, accounts: &[&str]) -> TransferLimits {
        TransferLimits {
            max_transfer_amount: None,
            max_fee: max_fee.map(Money::from_centavos),
            fee_accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn fees_up_to_the_cap_pass_and_above_it_fail() {
        let capped = limits(Some(250), &[]);
        let check = fee_within_limits(&capped, "@fees_revenue");
        assert_eq!(check(&decision(250, "@fees_revenue")), Ok(()), "equal to the cap is allowed");
        let err = check(&decision(251, "@fees_revenue")).unwrap_err();
        assert_eq!(err, "fee 2.51 is above the tenant's maximum fee of 2.50");
        let zero_cap = limits(Some(0), &[]);
        assert!(fee_within_limits(&zero_cap, "@fees_revenue")(&decision(1, "@fees_revenue")).is_err());
        let uncapped = TransferLimits::default();
        assert_eq!(fee_within_limits(&uncapped, "@fees_revenue")(&decision(i64::MAX, "@fees_revenue")), Ok(()));
    }

    #[test]
    fn fees_go_only_to_the_default_or_listed_accounts() {
        let listed = limits(None, &["@tarifas"]);
        let check = fee_within_limits(&listed, "@fees_revenue");
        assert_eq!(check(&decision(100, "@fees_revenue")), Ok(()));
        assert_eq!(check(&decision(100, "@tarifas")), Ok(()));
        let err = check(&decision(100, "@maria")).unwrap_err();
        assert!(!err.contains("maria"), "the alias is not echoed: {err}");
        assert_eq!(check(&decision(0, "")), Ok(()), "a free decision names no account");
        let default_only = TransferLimits::default();
        assert!(fee_within_limits(&default_only, "@fees_revenue")(&decision(100, "@tarifas")).is_err());
    }
}
