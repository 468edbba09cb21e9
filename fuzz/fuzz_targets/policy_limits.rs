//! The contract checks on policy answers (`pix_policy::limits`), structured with `arbitrary`.
//!
//! For inputs and parameters that pass the input checks (as the engine requires before a call):
//! - an answer the output check accepts keeps the invariants money relies on (a refund split
//!   sums to the refund from accounts that received at least as much, a deducted fee is within
//!   the amount, a denial carries a real pacs.002 code, a score is within 0..=1000);
//! - the native defaults, which are also the fail-safes, always pass the output check;
//! - nothing panics, `truncate` included.

#![no_main]

use std::collections::HashSet;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use pix_policy::limits::{self, MAX_ALIAS, MAX_REASONS, MAX_SHORT_TEXT, MAX_SPI_MESSAGE, PACS002_REASONS};
use pix_policy::native;
use pix_policy::*;

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});

fn check(u: &mut Unstructured<'_>) -> Result<()> {
    let text: String = u.arbitrary()?;
    let max = u.int_in_range(0..=300)?;
    let cut = limits::truncate(&text, max);
    assert!(text.starts_with(&cut) && cut.len() <= max && (text.len() <= max || cut.len() + 4 > max));

    let params = params(u)?;
    if limits::check_params(&params).is_err() {
        return Ok(());
    }
    match u.int_in_range(0..=3)? {
        0 => fee(u, &params),
        1 => refund_split(u, &params),
        2 => cashin(u, &params),
        _ => fraud(u, &params),
    }
}

fn fee(u: &mut Unstructured<'_>, params: &Params) -> Result<()> {
    let input = FeeInput {
        operation: *u.choose(&[Operation::CashOut, Operation::CashIn, Operation::Refund, Operation::IntraPsp])?,
        initiation: *u.choose(&[Initiation::Key, Initiation::QrCode, Initiation::Manual])?,
        purpose: *u.choose(&[
            Purpose::Transfer,
            Purpose::Change,
            Purpose::Withdrawal,
            Purpose::RefundAutomaticPix,
            Purpose::InstantPaymentRefund,
            Purpose::InstallmentPix,
        ])?,
        amount: centavos(u)?,
        payer_type: person(u)?,
        payee_type: person(u)?,
        account_segment: u.arbitrary()?,
        intra_psp: u.arbitrary()?,
        local_time: local_time(u)?,
        month_count: u.arbitrary()?,
        month_volume: centavos(u)?,
    };
    if limits::fee_input(&input).is_err() {
        return Ok(());
    }
    let default = native::fee(&input, params);
    assert_eq!(limits::fee_output(&input, &default), Ok(()), "native fee {default:?} for {input:?} {params:?}");
    let answer = FeeDecision {
        fee: centavos(u)?,
        fee_account: alias(u)?,
        charge: *u.choose(&[FeeCharge::Deducted, FeeCharge::OnTop])?,
        label: u.arbitrary()?,
    };
    if limits::fee_output(&input, &answer).is_ok() {
        assert!(answer.fee >= 0 && (answer.fee == 0 || !answer.fee_account.is_empty()));
        assert!(answer.charge == FeeCharge::OnTop || answer.fee <= input.amount);
        assert!(answer.fee_account.len() <= MAX_ALIAS && answer.label.len() <= MAX_SHORT_TEXT);
    }
    Ok(())
}

fn refund_split(u: &mut Unstructured<'_>, params: &Params) -> Result<()> {
    let mut operations = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        operations.push(OriginalOperation {
            account_alias: alias(u)?,
            role: *u.choose(&[AccountRole::Customer, AccountRole::Fee, AccountRole::Other])?,
            credited: centavos(u)?,
            available: centavos(u)?,
        });
    }
    let input = RefundSplitInput {
        refund_amount: centavos(u)?,
        original_amount: centavos(u)?,
        already_refunded: centavos(u)?,
        operations,
    };
    if limits::refund_split_input(&input).is_err() {
        return Ok(());
    }
    let default = native::refund_split(&input, params);
    assert_eq!(limits::refund_split_output(&input, &default), Ok(()), "native split {default:?} for {input:?}");
    let answer = if u.arbitrary()? {
        let mut portions = Vec::new();
        for _ in 0..u.int_in_range(0..=5)? {
            portions.push(RefundPortion { account_alias: alias(u)?, amount: centavos(u)? });
        }
        RefundSplitDecision::Split { portions }
    } else {
        RefundSplitDecision::Reject { code: u.arbitrary()?, message: u.arbitrary()? }
    };
    if limits::refund_split_output(&input, &answer).is_ok()
        && let RefundSplitDecision::Split { portions } = &answer
    {
        let aliases: HashSet<&str> = portions.iter().map(|p| p.account_alias.as_str()).collect();
        assert_eq!(aliases.len(), portions.len(), "an account debited twice");
        assert!(!portions.is_empty());
        let total: i128 = portions.iter().map(|p| i128::from(p.amount)).sum();
        assert_eq!(total, i128::from(input.refund_amount));
        for p in portions {
            let op = input.operations.iter().find(|op| op.account_alias == p.account_alias).expect("an original account");
            assert!(0 < p.amount && p.amount <= op.credited, "{p:?} from {op:?}");
        }
    }
    Ok(())
}

fn cashin(u: &mut Unstructured<'_>, params: &Params) -> Result<()> {
    let input = CashinInput {
        amount: centavos(u)?,
        payee_status: *u.choose(&[AccountStatus::Active, AccountStatus::Blocked, AccountStatus::Closed])?,
        payee_type: person(u)?,
        payer_ispb: if u.arbitrary()? { "12345678".to_owned() } else { u.arbitrary()? },
        payer_document_type: *u.choose(&[DocumentType::Cpf, DocumentType::Cnpj])?,
        same_owner: u.arbitrary()?,
        intra_psp: u.arbitrary()?,
        local_time: local_time(u)?,
        day_count: u.arbitrary()?,
        day_volume: centavos(u)?,
    };
    if limits::cashin_input(&input).is_err() {
        return Ok(());
    }
    let default = native::cashin_acceptance(&input, params);
    assert_eq!(limits::cashin_output(&default), Ok(()), "native acceptance {default:?}");
    let answer = if u.arbitrary()? {
        CashinDecision::Accept
    } else {
        let spi_reason = if u.arbitrary()? { (*u.choose(PACS002_REASONS)?).to_owned() } else { u.arbitrary()? };
        CashinDecision::Deny { code: u.arbitrary()?, spi_reason, message: u.arbitrary()? }
    };
    if limits::cashin_output(&answer).is_ok()
        && let CashinDecision::Deny { code, spi_reason, message } = &answer
    {
        assert!(PACS002_REASONS.contains(&spi_reason.as_str()));
        assert!(!code.is_empty() && code.len() <= MAX_SHORT_TEXT && message.len() <= MAX_SPI_MESSAGE);
    }
    Ok(())
}

fn fraud(u: &mut Unstructured<'_>, params: &Params) -> Result<()> {
    let input = FraudInput {
        direction: *u.choose(&[Direction::CashOut, Direction::CashIn])?,
        amount: centavos(u)?,
        key_type: u.choose(&[None, Some(KeyType::Cpf), Some(KeyType::Email), Some(KeyType::Evp)]).copied()?,
        key_age_days: u.arbitrary()?,
        key_statistics: statistics(u)?,
        owner_statistics: statistics(u)?,
        counterparty_type: person(u)?,
        first_time_counterparty: u.arbitrary()?,
        account_age_days: u.arbitrary()?,
        velocity: Velocity {
            count_1h: u.arbitrary()?,
            amount_1h: centavos(u)?,
            count_24h: u.arbitrary()?,
            amount_24h: centavos(u)?,
            distinct_counterparties_24h: u.arbitrary()?,
        },
        local_time: local_time(u)?,
        account_segment: u.arbitrary()?,
    };
    if limits::fraud_input(&input).is_err() {
        return Ok(());
    }
    let default = native::fraud_triage(&input, params);
    assert_eq!(limits::fraud_output(&default), Ok(()), "native triage {default:?}");
    let mut reasons = Vec::new();
    for _ in 0..u.int_in_range(0..=MAX_REASONS + 1)? {
        reasons.push(u.arbitrary()?);
    }
    let answer = FraudDecision {
        score: u.arbitrary()?,
        action: *u.choose(&[FraudAction::Allow, FraudAction::Review, FraudAction::Block])?,
        reasons,
    };
    if limits::fraud_output(&answer).is_ok() {
        assert!(answer.score <= 1000 && answer.reasons.len() <= MAX_REASONS);
        assert!(answer.reasons.iter().all(|r| !r.is_empty() && r.len() <= MAX_SHORT_TEXT));
    }
    Ok(())
}

/// Amounts near the edges as often as anywhere else.
fn centavos(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.int_in_range(-2..=1_000)?,
        1 => *u.choose(&[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX])?,
        _ => u.arbitrary()?,
    })
}

/// A few shared aliases (so that answers can name the original accounts), or any text.
fn alias(u: &mut Unstructured<'_>) -> Result<String> {
    if u.arbitrary()? { Ok((*u.choose(&["@customer", "@fees", "@other", ""])?).to_owned()) } else { u.arbitrary() }
}

fn person(u: &mut Unstructured<'_>) -> Result<PersonType> {
    u.choose(&[PersonType::Natural, PersonType::Legal]).copied()
}

fn local_time(u: &mut Unstructured<'_>) -> Result<LocalTime> {
    Ok(LocalTime {
        minute_of_day: u.int_in_range(0..=1500)?,
        weekday: *u.choose(&[
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ])?,
    })
}

fn statistics(u: &mut Unstructured<'_>) -> Result<Option<DictStatistics>> {
    if !u.arbitrary::<bool>()? {
        return Ok(None);
    }
    Ok(Some(DictStatistics {
        settlements_d90: u.arbitrary()?,
        application_frauds: u.arbitrary()?,
        mule_accounts: u.arbitrary()?,
        scammer_accounts: u.arbitrary()?,
        other_frauds: u.arbitrary()?,
        unknown_frauds: u.arbitrary()?,
        total_fraud_amount: centavos(u)?,
        distinct_fraud_reporters: u.arbitrary()?,
        open_reports: u.arbitrary()?,
        open_reports_distinct_reporters: u.arbitrary()?,
        rejected_reports: u.arbitrary()?,
    }))
}

/// Parameters the shipped policies read, with integer or text values.
fn params(u: &mut Unstructured<'_>) -> Result<Params> {
    let mut params = Params::default();
    for _ in 0..u.int_in_range(0..=4)? {
        let name = *u.choose(&[
            "fee-account",
            "pj-cash-in-bps",
            "pj-cash-in-min",
            "pj-cash-in-max",
            "nightly-limit",
            "night-start",
            "night-end",
            "block-threshold",
            "review-threshold",
        ])?;
        params = if u.arbitrary()? { params.with_int(name, centavos(u)?) } else { params.with_text(name, &alias(u)?) };
    }
    Ok(params)
}
