//! Per-kind glue: conversion between the public types and the generated bindings, the contract
//! checks to apply, and the kind's fail-safe.

use wasmtime::Store;
use wasmtime::component::Instance;

use crate::bindings::pix::policy::types as wit;
use crate::engine::{Guests, HostState};
use crate::limits;
use crate::native;
use crate::types::*;

/// What the engine needs to run one kind of decision.
pub(crate) trait Decide {
    type Output;
    const KIND: PolicyKind;

    fn check_input(&self) -> Result<(), String>;

    /// Call the guest; `None` when the component does not export this kind.
    fn invoke(
        &self,
        guests: &Guests,
        store: &mut Store<HostState>,
        instance: &Instance,
        params: &[wit::Param],
    ) -> Option<wasmtime::Result<Result<Self::Output, wit::PolicyError>>>;

    fn check_output(&self, output: &Self::Output) -> Result<(), String>;

    /// The documented fail-safe answer when the policy fails.
    fn failsafe(&self, params: &Params) -> Self::Output;
}

pub(crate) fn wit_params(params: &Params) -> Vec<wit::Param> {
    params
        .iter()
        .map(|(name, value)| wit::Param {
            name: name.to_owned(),
            value: match value {
                ParamValue::Int(i) => wit::ParamValue::Int(*i),
                ParamValue::Text(t) => wit::ParamValue::Text(t.clone()),
            },
        })
        .collect()
}

/// `From` both ways between a public enum and its generated twin (same variant names).
macro_rules! enum_map {
    ($($ty:ident { $($v:ident),+ })*) => {$(
        impl From<$ty> for wit::$ty {
            fn from(x: $ty) -> Self {
                match x { $($ty::$v => wit::$ty::$v),+ }
            }
        }
        impl From<wit::$ty> for $ty {
            fn from(x: wit::$ty) -> Self {
                match x { $(wit::$ty::$v => $ty::$v),+ }
            }
        }
    )*};
}

enum_map! {
    PersonType { Natural, Legal }
    Weekday { Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday }
    Operation { CashOut, CashIn, Refund, IntraPsp }
    Initiation { Key, QrCode, Manual }
    Purpose { Transfer, Change, Withdrawal, RefundAutomaticPix, InstantPaymentRefund, InstallmentPix }
    FeeCharge { Deducted, OnTop }
    AccountRole { Customer, Fee, Other }
    AccountStatus { Active, Blocked, Closed }
    DocumentType { Cpf, Cnpj }
    Direction { CashOut, CashIn }
    KeyType { Cpf, Cnpj, Phone, Email, Evp }
    FraudAction { Allow, Review, Block }
}

fn time(t: &LocalTime) -> wit::LocalTime {
    wit::LocalTime { minute_of_day: t.minute_of_day, weekday: t.weekday.into() }
}

fn stats(s: &DictStatistics) -> wit::DictStatistics {
    wit::DictStatistics {
        settlements_d90: s.settlements_d90,
        application_frauds: s.application_frauds,
        mule_accounts: s.mule_accounts,
        scammer_accounts: s.scammer_accounts,
        other_frauds: s.other_frauds,
        unknown_frauds: s.unknown_frauds,
        total_fraud_amount: s.total_fraud_amount,
        distinct_fraud_reporters: s.distinct_fraud_reporters,
        open_reports: s.open_reports,
        open_reports_distinct_reporters: s.open_reports_distinct_reporters,
        rejected_reports: s.rejected_reports,
    }
}

impl Decide for FeeInput {
    type Output = FeeDecision;
    const KIND: PolicyKind = PolicyKind::Fee;

    fn check_input(&self) -> Result<(), String> {
        limits::fee_input(self)
    }

    fn invoke(
        &self,
        guests: &Guests,
        store: &mut Store<HostState>,
        instance: &Instance,
        params: &[wit::Param],
    ) -> Option<wasmtime::Result<Result<FeeDecision, wit::PolicyError>>> {
        let indices = guests.fee.as_ref()?;
        let input = wit::FeeInput {
            operation: self.operation.into(),
            initiation: self.initiation.into(),
            purpose: self.purpose.into(),
            amount: self.amount,
            payer_type: self.payer_type.into(),
            payee_type: self.payee_type.into(),
            account_segment: self.account_segment.clone(),
            intra_psp: self.intra_psp,
            local_time: time(&self.local_time),
            month_count: self.month_count,
            month_volume: self.month_volume,
        };
        Some(indices.load(&mut *store, instance).and_then(|guest| guest.call_decide(&mut *store, &input, params)).map(
            |r| {
                r.map(|o| FeeDecision {
                    fee: o.fee,
                    fee_account: o.fee_account,
                    charge: o.charge.into(),
                    label: o.label,
                })
            },
        ))
    }

    fn check_output(&self, output: &FeeDecision) -> Result<(), String> {
        limits::fee_output(self, output)
    }

    /// The native default fee table, with the tenant's parameters.
    fn failsafe(&self, params: &Params) -> FeeDecision {
        native::fee(self, params)
    }
}

impl Decide for RefundSplitInput {
    type Output = RefundSplitDecision;
    const KIND: PolicyKind = PolicyKind::RefundSplit;

    fn check_input(&self) -> Result<(), String> {
        limits::refund_split_input(self)
    }

    fn invoke(
        &self,
        guests: &Guests,
        store: &mut Store<HostState>,
        instance: &Instance,
        params: &[wit::Param],
    ) -> Option<wasmtime::Result<Result<RefundSplitDecision, wit::PolicyError>>> {
        let indices = guests.refund_split.as_ref()?;
        let input = wit::RefundSplitInput {
            refund_amount: self.refund_amount,
            original_amount: self.original_amount,
            already_refunded: self.already_refunded,
            operations: self
                .operations
                .iter()
                .map(|op| wit::OriginalOperation {
                    account_alias: op.account_alias.clone(),
                    role: op.role.into(),
                    credited: op.credited,
                    available: op.available,
                })
                .collect(),
        };
        Some(indices.load(&mut *store, instance).and_then(|guest| guest.call_decide(&mut *store, &input, params)).map(
            |r| {
                r.map(|o| match o {
                    wit::RefundSplitDecision::Split(portions) => RefundSplitDecision::Split {
                        portions: portions
                            .into_iter()
                            .map(|p| RefundPortion { account_alias: p.account_alias, amount: p.amount })
                            .collect(),
                    },
                    wit::RefundSplitDecision::Reject(r) => {
                        RefundSplitDecision::Reject { code: r.code, message: r.message }
                    }
                })
            },
        ))
    }

    fn check_output(&self, output: &RefundSplitDecision) -> Result<(), String> {
        limits::refund_split_output(self, output)
    }

    /// The plugin's single-account flow: the whole refund from the first customer account (or
    /// the first account when none is marked customer). Midaz still enforces the balance.
    fn failsafe(&self, _params: &Params) -> RefundSplitDecision {
        let account =
            self.operations.iter().find(|op| op.role == AccountRole::Customer).or_else(|| self.operations.first());
        match account {
            Some(op) => RefundSplitDecision::Split {
                portions: vec![RefundPortion { account_alias: op.account_alias.clone(), amount: self.refund_amount }],
            },
            None => RefundSplitDecision::Reject {
                code: "POLICY_UNAVAILABLE".into(),
                message: "no original operation to refund from".into(),
            },
        }
    }
}

impl Decide for CashinInput {
    type Output = CashinDecision;
    const KIND: PolicyKind = PolicyKind::CashinAcceptance;

    fn check_input(&self) -> Result<(), String> {
        limits::cashin_input(self)
    }

    fn invoke(
        &self,
        guests: &Guests,
        store: &mut Store<HostState>,
        instance: &Instance,
        params: &[wit::Param],
    ) -> Option<wasmtime::Result<Result<CashinDecision, wit::PolicyError>>> {
        let indices = guests.cashin_acceptance.as_ref()?;
        let input = wit::CashinInput {
            amount: self.amount,
            payee_status: self.payee_status.into(),
            payee_type: self.payee_type.into(),
            payer_ispb: self.payer_ispb.clone(),
            payer_document_type: self.payer_document_type.into(),
            same_owner: self.same_owner,
            intra_psp: self.intra_psp,
            local_time: time(&self.local_time),
            day_count: self.day_count,
            day_volume: self.day_volume,
        };
        Some(indices.load(&mut *store, instance).and_then(|guest| guest.call_decide(&mut *store, &input, params)).map(
            |r| {
                r.map(|o| match o {
                    wit::CashinDecision::Accept => CashinDecision::Accept,
                    wit::CashinDecision::Deny(d) => {
                        CashinDecision::Deny { code: d.code, spi_reason: d.spi_reason, message: d.message }
                    }
                })
            },
        ))
    }

    fn check_output(&self, output: &CashinDecision) -> Result<(), String> {
        limits::cashin_output(output)
    }

    /// Fail closed: deny. AG03 ("transaction type not supported/authorized") tells the payer's
    /// PSP the refusal is on our side, not the payee's account.
    fn failsafe(&self, _params: &Params) -> CashinDecision {
        CashinDecision::Deny {
            code: "POLICY_UNAVAILABLE".into(),
            spi_reason: "AG03".into(),
            message: "acceptance policy unavailable".into(),
        }
    }
}

impl Decide for FraudInput {
    type Output = FraudDecision;
    const KIND: PolicyKind = PolicyKind::FraudTriage;

    fn check_input(&self) -> Result<(), String> {
        limits::fraud_input(self)
    }

    fn invoke(
        &self,
        guests: &Guests,
        store: &mut Store<HostState>,
        instance: &Instance,
        params: &[wit::Param],
    ) -> Option<wasmtime::Result<Result<FraudDecision, wit::PolicyError>>> {
        let indices = guests.fraud_triage.as_ref()?;
        let input = wit::FraudInput {
            direction: self.direction.into(),
            amount: self.amount,
            key_type: self.key_type.map(Into::into),
            key_age_days: self.key_age_days,
            key_statistics: self.key_statistics.as_ref().map(stats),
            owner_statistics: self.owner_statistics.as_ref().map(stats),
            counterparty_type: self.counterparty_type.into(),
            first_time_counterparty: self.first_time_counterparty,
            account_age_days: self.account_age_days,
            velocity: wit::Velocity {
                count_1h: self.velocity.count_1h,
                amount_1h: self.velocity.amount_1h,
                count_24h: self.velocity.count_24h,
                amount_24h: self.velocity.amount_24h,
                distinct_counterparties_24h: self.velocity.distinct_counterparties_24h,
            },
            local_time: time(&self.local_time),
        };
        Some(
            indices
                .load(&mut *store, instance)
                .and_then(|guest| guest.call_decide(&mut *store, input, params))
                .map(|r| r.map(|o| FraudDecision { score: o.score, action: o.action.into(), reasons: o.reasons })),
        )
    }

    fn check_output(&self, output: &FraudDecision) -> Result<(), String> {
        limits::fraud_output(output)
    }

    /// Route to manual review: the payment is held, not lost, and not waved through.
    fn failsafe(&self, _params: &Params) -> FraudDecision {
        FraudDecision { score: 500, action: FraudAction::Review, reasons: vec!["POLICY_UNAVAILABLE".into()] }
    }
}
