//! The released versions of the `pix:policy` contract, and the adapters between them.
//!
//! Each version's WIT is compiled into its own bindings module: `v0_1` from `wit/0.1.0/`,
//! `v0_2` from `wit/`. At load, every decision a component exports is matched once to the version
//! in its interface name (`pix:policy/fee@0.1.0` or `…@0.2.0`); a call only follows that stored
//! choice. The host always builds the newest input; for an older component the adapter leaves out
//! the fields its version lacks (down) and converts its answer to the host types (up). The rule
//! this implements is in docs/policies.md, "The contract and its versions".

use std::fmt;

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use crate::engine::HostState;
use crate::types::{
    CashinDecision, CashinInput, FeeDecision, FeeInput, FraudDecision, FraudInput, Params, PolicyKind,
    RefundSplitDecision, RefundSplitInput,
};

/// A released version of the `pix:policy` WIT package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContractVersion {
    /// `pix:policy@0.1.0`: the four decisions.
    V0_1,
    /// `pix:policy@0.2.0`: `fraud-input.account-segment`.
    V0_2,
}

impl ContractVersion {
    /// Every version this host accepts, oldest first.
    pub const ALL: [ContractVersion; 2] = [ContractVersion::V0_1, ContractVersion::V0_2];
    /// The version new components should be built against (`wit/policy.wit`).
    pub const LATEST: ContractVersion = ContractVersion::V0_2;

    /// Semver, as in the WIT package name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }
}

impl fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A guest's `policy-error`, whatever its version.
pub(crate) struct GuestError {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// A guest call: the outer error is a trap or host error, the inner one the guest's own.
pub(crate) type Call<T> = wasmtime::Result<Result<T, GuestError>>;

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

/// Everything that is the same in every version: the bindings, the enum and record conversions,
/// and one call per decision. `fraud_extra` lists the `fraud-input` fields added after 0.1.0
/// that this version has; `fraud_by` is `&` when the bindings take `fraud-input` by reference
/// (they do once it holds a string).
macro_rules! contract_version {
    ($version:ident, $wit:literal, fraud_extra: [$($extra:ident),*], fraud_by: ($($by:tt)?)) => {
        pub(crate) mod $version {
            mod bindings {
                wasmtime::component::bindgen!({ path: $wit, world: "institution" });
            }

            pub(crate) use bindings::exports::pix::policy::{cashin_acceptance, fee, fraud_triage, refund_split};
            use bindings::pix::policy::types as wit;
            pub(crate) use wit::Param;

            use super::{Call, GuestError, HostState, Instance, Store};
            use crate::types::*;

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

            pub(crate) fn params(params: &Params) -> Vec<Param> {
                params
                    .iter()
                    .map(|(name, value)| Param {
                        name: name.to_owned(),
                        value: match value {
                            ParamValue::Int(i) => wit::ParamValue::Int(*i),
                            ParamValue::Text(t) => wit::ParamValue::Text(t.clone()),
                        },
                    })
                    .collect()
            }

            fn guest_error(e: wit::PolicyError) -> GuestError {
                GuestError { code: e.code, message: e.message }
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

            pub(crate) fn fee(
                indices: &fee::GuestIndices,
                store: &mut Store<HostState>,
                instance: &Instance,
                i: &FeeInput,
                params: &[Param],
            ) -> Call<FeeDecision> {
                let input = wit::FeeInput {
                    operation: i.operation.into(),
                    initiation: i.initiation.into(),
                    purpose: i.purpose.into(),
                    amount: i.amount,
                    payer_type: i.payer_type.into(),
                    payee_type: i.payee_type.into(),
                    account_segment: i.account_segment.clone(),
                    intra_psp: i.intra_psp,
                    local_time: time(&i.local_time),
                    month_count: i.month_count,
                    month_volume: i.month_volume,
                };
                let guest = indices.load(&mut *store, instance)?;
                Ok(guest.call_decide(&mut *store, &input, params)?.map_err(guest_error).map(|o| FeeDecision {
                    fee: o.fee,
                    fee_account: o.fee_account,
                    charge: o.charge.into(),
                    label: o.label,
                }))
            }

            pub(crate) fn refund_split(
                indices: &refund_split::GuestIndices,
                store: &mut Store<HostState>,
                instance: &Instance,
                i: &RefundSplitInput,
                params: &[Param],
            ) -> Call<RefundSplitDecision> {
                let input = wit::RefundSplitInput {
                    refund_amount: i.refund_amount,
                    original_amount: i.original_amount,
                    already_refunded: i.already_refunded,
                    operations: i
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
                let guest = indices.load(&mut *store, instance)?;
                Ok(guest.call_decide(&mut *store, &input, params)?.map_err(guest_error).map(|o| match o {
                    wit::RefundSplitDecision::Split(portions) => RefundSplitDecision::Split {
                        portions: portions
                            .into_iter()
                            .map(|p| RefundPortion { account_alias: p.account_alias, amount: p.amount })
                            .collect(),
                    },
                    wit::RefundSplitDecision::Reject(r) => RefundSplitDecision::Reject { code: r.code, message: r.message },
                }))
            }

            pub(crate) fn cashin_acceptance(
                indices: &cashin_acceptance::GuestIndices,
                store: &mut Store<HostState>,
                instance: &Instance,
                i: &CashinInput,
                params: &[Param],
            ) -> Call<CashinDecision> {
                let input = wit::CashinInput {
                    amount: i.amount,
                    payee_status: i.payee_status.into(),
                    payee_type: i.payee_type.into(),
                    payer_ispb: i.payer_ispb.clone(),
                    payer_document_type: i.payer_document_type.into(),
                    same_owner: i.same_owner,
                    intra_psp: i.intra_psp,
                    local_time: time(&i.local_time),
                    day_count: i.day_count,
                    day_volume: i.day_volume,
                };
                let guest = indices.load(&mut *store, instance)?;
                Ok(guest.call_decide(&mut *store, &input, params)?.map_err(guest_error).map(|o| match o {
                    wit::CashinDecision::Accept => CashinDecision::Accept,
                    wit::CashinDecision::Deny(d) => {
                        CashinDecision::Deny { code: d.code, spi_reason: d.spi_reason, message: d.message }
                    }
                }))
            }

            pub(crate) fn fraud_triage(
                indices: &fraud_triage::GuestIndices,
                store: &mut Store<HostState>,
                instance: &Instance,
                i: &FraudInput,
                params: &[Param],
            ) -> Call<FraudDecision> {
                let input = wit::FraudInput {
                    direction: i.direction.into(),
                    amount: i.amount,
                    key_type: i.key_type.map(Into::into),
                    key_age_days: i.key_age_days,
                    key_statistics: i.key_statistics.as_ref().map(stats),
                    owner_statistics: i.owner_statistics.as_ref().map(stats),
                    counterparty_type: i.counterparty_type.into(),
                    first_time_counterparty: i.first_time_counterparty,
                    account_age_days: i.account_age_days,
                    velocity: wit::Velocity {
                        count_1h: i.velocity.count_1h,
                        amount_1h: i.velocity.amount_1h,
                        count_24h: i.velocity.count_24h,
                        amount_24h: i.velocity.amount_24h,
                        distinct_counterparties_24h: i.velocity.distinct_counterparties_24h,
                    },
                    local_time: time(&i.local_time),
                    $($extra: i.$extra.clone(),)*
                };
                let guest = indices.load(&mut *store, instance)?;
                Ok(guest.call_decide(&mut *store, $($by)? input, params)?.map_err(guest_error).map(|o| FraudDecision {
                    score: o.score,
                    action: o.action.into(),
                    reasons: o.reasons,
                }))
            }
        }
    };
}

contract_version!(v0_1, "../../wit/0.1.0", fraud_extra: [], fraud_by: ());
contract_version!(v0_2, "../../wit", fraud_extra: [account_segment], fraud_by: (&));

/// One exported decision, bound at load to the contract version it was built against.
pub(crate) enum Export<A, B> {
    V0_1(A),
    V0_2(B),
}

impl<A, B> Export<A, B> {
    /// The newest version the component exports this decision in.
    fn resolve(newest: Option<B>, older: impl FnOnce() -> Option<A>) -> Option<Self> {
        newest.map(Export::V0_2).or_else(|| older().map(Export::V0_1))
    }

    fn version(&self) -> ContractVersion {
        match self {
            Export::V0_1(_) => ContractVersion::V0_1,
            Export::V0_2(_) => ContractVersion::V0_2,
        }
    }
}

/// The tenant's parameters in every version's types, built once when they are bound.
pub(crate) struct WitParams {
    v0_1: Vec<v0_1::Param>,
    v0_2: Vec<v0_2::Param>,
}

impl WitParams {
    pub(crate) fn new(params: &Params) -> WitParams {
        WitParams { v0_1: v0_1::params(params), v0_2: v0_2::params(params) }
    }
}

/// Export lookups resolved once at load; `None` when the component lacks that decision.
pub(crate) struct Guests {
    fee: Option<Export<v0_1::fee::GuestIndices, v0_2::fee::GuestIndices>>,
    refund_split: Option<Export<v0_1::refund_split::GuestIndices, v0_2::refund_split::GuestIndices>>,
    cashin_acceptance: Option<Export<v0_1::cashin_acceptance::GuestIndices, v0_2::cashin_acceptance::GuestIndices>>,
    fraud_triage: Option<Export<v0_1::fraud_triage::GuestIndices, v0_2::fraud_triage::GuestIndices>>,
}

impl Guests {
    /// Find each decision's export, newest version first.
    pub(crate) fn resolve(pre: &InstancePre<HostState>) -> Guests {
        Guests {
            fee: Export::resolve(v0_2::fee::GuestIndices::new(pre).ok(), || v0_1::fee::GuestIndices::new(pre).ok()),
            refund_split: Export::resolve(v0_2::refund_split::GuestIndices::new(pre).ok(), || {
                v0_1::refund_split::GuestIndices::new(pre).ok()
            }),
            cashin_acceptance: Export::resolve(v0_2::cashin_acceptance::GuestIndices::new(pre).ok(), || {
                v0_1::cashin_acceptance::GuestIndices::new(pre).ok()
            }),
            fraud_triage: Export::resolve(v0_2::fraud_triage::GuestIndices::new(pre).ok(), || {
                v0_1::fraud_triage::GuestIndices::new(pre).ok()
            }),
        }
    }

    /// The decisions exported, each with the contract version it was built against.
    pub(crate) fn exported(&self) -> Vec<(PolicyKind, ContractVersion)> {
        [
            (PolicyKind::Fee, self.fee.as_ref().map(Export::version)),
            (PolicyKind::RefundSplit, self.refund_split.as_ref().map(Export::version)),
            (PolicyKind::CashinAcceptance, self.cashin_acceptance.as_ref().map(Export::version)),
            (PolicyKind::FraudTriage, self.fraud_triage.as_ref().map(Export::version)),
        ]
        .into_iter()
        .filter_map(|(kind, version)| Some((kind, version?)))
        .collect()
    }
}

/// One method per decision: call its export in the version it was resolved to at load.
macro_rules! dispatch {
    ($($kind:ident: $input:ty => $output:ty;)*) => {
        impl Guests {$(
            pub(crate) fn $kind(
                &self,
                store: &mut Store<HostState>,
                instance: &Instance,
                input: &$input,
                params: &WitParams,
            ) -> Option<Call<$output>> {
                Some(match self.$kind.as_ref()? {
                    Export::V0_1(i) => v0_1::$kind(i, store, instance, input, &params.v0_1),
                    Export::V0_2(i) => v0_2::$kind(i, store, instance, input, &params.v0_2),
                })
            }
        )*}
    };
}

dispatch! {
    fee: FeeInput => FeeDecision;
    refund_split: RefundSplitInput => RefundSplitDecision;
    cashin_acceptance: CashinInput => CashinDecision;
    fraud_triage: FraudInput => FraudDecision;
}
