//! Contract checks on what crosses the sandbox boundary. Inputs are capped before the call
//! (the canonical ABI copies whatever is passed); answers are checked after it, so a guest can
//! never hand the host a split that does not sum, a score out of range or an oversized string.

use std::collections::HashSet;

use crate::types::{
    CashinDecision, CashinInput, FeeCharge, FeeDecision, FeeInput, FraudDecision, FraudInput, LocalTime, ParamValue,
    Params, RefundSplitDecision, RefundSplitInput,
};

/// Labels, codes, reasons, segments, parameter names.
pub const MAX_SHORT_TEXT: usize = 64;
/// Midaz account aliases.
pub const MAX_ALIAS: usize = 128;
/// Free-text messages and text parameters.
pub const MAX_MESSAGE: usize = 256;
/// pacs.002 `AddtlInf` is at most 105 characters.
pub const MAX_SPI_MESSAGE: usize = 105;
/// Original operations of a refund split.
pub const MAX_OPERATIONS: usize = 32;
/// Fraud reasons per decision.
pub const MAX_REASONS: usize = 16;
/// Parameters bound to a policy.
pub const MAX_PARAMS: usize = 32;

/// pacs.002 reason codes (SPI catalogue 5.13.1, XSD 1.17).
pub const PACS002_REASONS: &[&str] = &[
    "AB03", "AB09", "AB11", "AC03", "AC06", "AC07", "AC14", "AG03", "AG12", "AG13", "AGNT", "AM01", "AM02", "AM04",
    "AM09", "AM12", "AM18", "AM23", "BE01", "BE05", "BE15", "BE17", "CH11", "CH16", "CN01", "DS02", "DS04", "DS0G",
    "DS27", "DT02", "DT05", "DU03", "DUPL", "ED05", "FF07", "FF08", "FRAD", "INDT", "MD01", "RC09", "RC10", "RR04",
    "RR06", "SL02", "UPAY",
];

type Check = Result<(), String>;

/// Limits a component declares when it is uploaded: a property of the component, stored with it,
/// because an interpreter (JavaScript, Python) needs more memory and fuel than a Rust guest.
/// `None` takes the engine's default ([`crate::PolicyLimits`]); any value must stay within the
/// host maxima (and, for a tenant's binding, the tenant's maxima).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentLimits {
    /// Linear-memory cap per instance, in MiB.
    pub memory_mib: Option<u32>,
    /// Instruction budget per decision (wasmtime fuel).
    pub fuel: Option<u64>,
    /// Wall-clock deadline per decision, in milliseconds.
    pub deadline_ms: Option<u64>,
}

impl ComponentLimits {
    /// The first limit above `max`'s (a tenant's maxima), as `(name, asked, maximum)`.
    pub fn above(&self, max: &ComponentLimits) -> Option<(&'static str, u64, u64)> {
        let pairs = [
            ("memoryMib", self.memory_mib.map(u64::from), max.memory_mib.map(u64::from)),
            ("fuel", self.fuel, max.fuel),
            ("deadlineMs", self.deadline_ms, max.deadline_ms),
        ];
        pairs.into_iter().find_map(|(name, asked, max)| match (asked, max) {
            (Some(a), Some(m)) if a > m => Some((name, a, m)),
            _ => None,
        })
    }
}

fn text(field: &str, value: &str, max: usize) -> Check {
    if value.len() > max {
        return Err(format!("{field} is {} bytes, limit {max}", value.len()));
    }
    Ok(())
}

fn non_empty_text(field: &str, value: &str, max: usize) -> Check {
    if value.is_empty() {
        return Err(format!("{field} is empty"));
    }
    text(field, value, max)
}

fn positive(field: &str, value: i64) -> Check {
    if value <= 0 {
        return Err(format!("{field} must be > 0, got {value}"));
    }
    Ok(())
}

fn non_negative(field: &str, value: i64) -> Check {
    if value < 0 {
        return Err(format!("{field} must be >= 0, got {value}"));
    }
    Ok(())
}

fn time(t: &LocalTime) -> Check {
    if t.minute_of_day > 1439 {
        return Err(format!("local-time.minute-of-day is {}, max 1439", t.minute_of_day));
    }
    Ok(())
}

/// Cut `s` to at most `max` bytes on a character boundary (for guest-provided error text).
pub fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

pub fn check_params(params: &Params) -> Check {
    if params.len() > MAX_PARAMS {
        return Err(format!("{} parameters, limit {MAX_PARAMS}", params.len()));
    }
    for (name, value) in params.iter() {
        non_empty_text("parameter name", name, MAX_SHORT_TEXT)?;
        if let ParamValue::Text(t) = value {
            text(&format!("parameter {name}"), t, MAX_MESSAGE)?;
        }
    }
    // The fee fail-safe charges fees to this account: one the fee output check would refuse
    // would make the fail-safe itself invalid (found by the policy_limits fuzz target).
    if let Some(account) = params.text("fee-account") {
        non_empty_text("parameter fee-account", account, MAX_ALIAS)?;
    }
    Ok(())
}

pub fn fee_input(i: &FeeInput) -> Check {
    positive("amount", i.amount)?;
    non_negative("month-volume", i.month_volume)?;
    text("account-segment", &i.account_segment, MAX_SHORT_TEXT)?;
    time(&i.local_time)
}

pub fn fee_output(i: &FeeInput, o: &FeeDecision) -> Check {
    non_negative("fee", o.fee)?;
    if o.charge == FeeCharge::Deducted && o.fee > i.amount {
        return Err(format!("deducted fee {} exceeds the amount {}", o.fee, i.amount));
    }
    text("fee-account", &o.fee_account, MAX_ALIAS)?;
    if o.fee > 0 && o.fee_account.is_empty() {
        return Err("fee > 0 without a fee-account".into());
    }
    text("label", &o.label, MAX_SHORT_TEXT)
}

pub fn refund_split_input(i: &RefundSplitInput) -> Check {
    positive("refund-amount", i.refund_amount)?;
    positive("original-amount", i.original_amount)?;
    non_negative("already-refunded", i.already_refunded)?;
    if i.operations.is_empty() || i.operations.len() > MAX_OPERATIONS {
        return Err(format!("{} original operations, expected 1..={MAX_OPERATIONS}", i.operations.len()));
    }
    let mut seen = HashSet::new();
    for op in &i.operations {
        non_empty_text("account-alias", &op.account_alias, MAX_ALIAS)?;
        non_negative("credited", op.credited)?;
        if !seen.insert(op.account_alias.as_str()) {
            return Err(format!("account-alias {} repeats", op.account_alias));
        }
    }
    Ok(())
}

/// The spec's own rules for `operations` (OPERATIONS_SUM_MISMATCH, DUPLICATE_ACCOUNT_ALIAS,
/// ACCOUNT_ALIAS_NOT_IN_ORIGINAL_TRANSACTION, amounts > 0) plus "no more than it received".
pub fn refund_split_output(i: &RefundSplitInput, o: &RefundSplitDecision) -> Check {
    match o {
        RefundSplitDecision::Reject { code, message } => {
            non_empty_text("rejection code", code, MAX_SHORT_TEXT)?;
            text("rejection message", message, MAX_MESSAGE)
        }
        RefundSplitDecision::Split { portions } => {
            if portions.is_empty() || portions.len() > i.operations.len() {
                return Err(format!("{} portions for {} original operations", portions.len(), i.operations.len()));
            }
            let mut seen = HashSet::new();
            let mut sum: i128 = 0;
            for p in portions {
                text("portion alias", &p.account_alias, MAX_ALIAS)?;
                let Some(op) = i.operations.iter().find(|op| op.account_alias == p.account_alias) else {
                    return Err(format!("alias {} was not in the original cash-in", p.account_alias));
                };
                if !seen.insert(p.account_alias.as_str()) {
                    return Err(format!("alias {} appears twice", p.account_alias));
                }
                positive("portion amount", p.amount)?;
                if p.amount > op.credited {
                    return Err(format!(
                        "portion {} for {} exceeds what it received ({})",
                        p.amount, p.account_alias, op.credited
                    ));
                }
                sum += i128::from(p.amount);
            }
            if sum != i128::from(i.refund_amount) {
                return Err(format!("portions sum to {sum}, refund is {}", i.refund_amount));
            }
            Ok(())
        }
    }
}

pub fn cashin_input(i: &CashinInput) -> Check {
    positive("amount", i.amount)?;
    non_negative("day-volume", i.day_volume)?;
    if i.payer_ispb.len() != 8 || !i.payer_ispb.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("payer-ispb {:?} is not 8 digits", i.payer_ispb));
    }
    time(&i.local_time)
}

pub fn cashin_output(o: &CashinDecision) -> Check {
    match o {
        CashinDecision::Accept => Ok(()),
        CashinDecision::Deny { code, spi_reason, message } => {
            non_empty_text("denial code", code, MAX_SHORT_TEXT)?;
            if !PACS002_REASONS.contains(&spi_reason.as_str()) {
                return Err(format!(
                    "spi-reason {:?} is not a pacs.002 reason code",
                    truncate(spi_reason, MAX_SHORT_TEXT)
                ));
            }
            text("denial message", message, MAX_SPI_MESSAGE)
        }
    }
}

pub fn fraud_input(i: &FraudInput) -> Check {
    positive("amount", i.amount)?;
    non_negative("velocity.amount-1h", i.velocity.amount_1h)?;
    non_negative("velocity.amount-24h", i.velocity.amount_24h)?;
    text("account-segment", &i.account_segment, MAX_SHORT_TEXT)?;
    time(&i.local_time)
}

pub fn fraud_output(o: &FraudDecision) -> Check {
    if o.score > 1000 {
        return Err(format!("score {} is above 1000", o.score));
    }
    if o.reasons.len() > MAX_REASONS {
        return Err(format!("{} reasons, limit {MAX_REASONS}", o.reasons.len()));
    }
    for r in &o.reasons {
        non_empty_text("reason", r, MAX_SHORT_TEXT)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::types::{FraudAction, RefundPortion};

    fn split(portions: &[(&str, i64)]) -> RefundSplitDecision {
        RefundSplitDecision::Split {
            portions: portions
                .iter()
                .map(|(a, amount)| RefundPortion { account_alias: (*a).into(), amount: *amount })
                .collect(),
        }
    }

    #[test]
    fn refund_split_answers_must_follow_the_spec_rules() {
        // cappta: 100_082 from alias-conta-cliente (credited 4_900_000) / alias-conta-fee (100_000).
        let input = fixtures::refund_split().remove(0).1;
        let ok = split(&[("alias-conta-cliente", 82), ("alias-conta-fee", 100_000)]);
        assert_eq!(refund_split_output(&input, &ok), Ok(()));
        let cases = [
            (
                split(&[("alias-conta-cliente", 82), ("alias-conta-fee", 99_999)]),
                "portions sum to 100081, refund is 100082",
            ),
            (
                split(&[("alias-conta-cliente", 82), ("@elsewhere", 100_000)]),
                "alias @elsewhere was not in the original cash-in",
            ),
            (split(&[("alias-conta-fee", 82), ("alias-conta-fee", 100_000)]), "alias alias-conta-fee appears twice"),
            (
                split(&[("alias-conta-fee", 100_082)]),
                "portion 100082 for alias-conta-fee exceeds what it received (100000)",
            ),
            (split(&[("alias-conta-cliente", 100_083), ("alias-conta-fee", -1)]), "portion amount must be > 0, got -1"),
            (split(&[]), "0 portions for 2 original operations"),
        ];
        for (answer, why) in cases {
            assert_eq!(refund_split_output(&input, &answer), Err(why.to_owned()));
        }
    }

    /// The fee fail-safe (the native table) charges to the `fee-account` parameter, so a value
    /// its own answers would fail the output check with is refused when the parameters are bound.
    #[test]
    fn a_fee_account_parameter_the_fail_safe_could_not_use_is_refused() {
        use crate::types::Params;
        let input = fixtures::fee().remove(0).1;
        for (account, refused) in [("@tarifas", false), ("", true), (&*"a".repeat(MAX_ALIAS + 1), true)] {
            let params = Params::default().with_text("fee-account", account);
            assert_eq!(check_params(&params).is_err(), refused, "fee-account {account:?}");
            if !refused {
                assert_eq!(fee_output(&input, &crate::native::fee(&input, &params)), Ok(()));
            }
        }
        assert_eq!(check_params(&Params::default().with_int("fee-account", 7)), Ok(()), "not text: the default");
    }

    #[test]
    fn fee_answers_are_bounded() {
        let input = fixtures::fee().remove(0).1; // amount 10_000
        let fee = |fee, charge, account: &str, label: &str| FeeDecision {
            fee,
            charge,
            fee_account: account.into(),
            label: label.into(),
        };
        assert_eq!(fee_output(&input, &fee(10_000, FeeCharge::Deducted, "@f", "ok")), Ok(()));
        assert!(fee_output(&input, &fee(10_001, FeeCharge::Deducted, "@f", "x")).is_err());
        assert!(fee_output(&input, &fee(10_001, FeeCharge::OnTop, "@f", "x")).is_ok());
        assert!(fee_output(&input, &fee(1, FeeCharge::OnTop, "", "x")).is_err());
        assert!(fee_output(&input, &fee(-1, FeeCharge::OnTop, "@f", "x")).is_err());
        assert!(fee_output(&input, &fee(0, FeeCharge::OnTop, "", &"x".repeat(65))).is_err());
    }

    #[test]
    fn cashin_denials_need_a_real_pacs002_code() {
        let deny = |spi: &str, message: &str| CashinDecision::Deny {
            code: "RECIPIENT_CANNOT_RECEIVE".into(),
            spi_reason: spi.into(),
            message: message.into(),
        };
        assert_eq!(cashin_output(&deny("AM02", "limit")), Ok(()));
        assert!(cashin_output(&deny("XX99", "limit")).is_err());
        assert!(cashin_output(&deny("AM02", &"m".repeat(106))).is_err());
    }

    #[test]
    fn fraud_scores_and_reasons_are_bounded() {
        let d = |score, reasons: usize| FraudDecision {
            score,
            action: FraudAction::Allow,
            reasons: vec!["R".into(); reasons],
        };
        assert_eq!(fraud_output(&d(1000, 16)), Ok(()));
        assert!(fraud_output(&d(1001, 0)).is_err());
        assert!(fraud_output(&d(0, 17)).is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ação", 2), "a");
        assert_eq!(truncate("ação", 3), "aç");
    }
}
