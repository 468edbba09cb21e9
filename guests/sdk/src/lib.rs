//! SDK for pix-host policy components.
//!
//! A policy is a type implementing one (or all four) of [`FeePolicy`], [`RefundSplitPolicy`],
//! [`CashinAcceptancePolicy`] and [`FraudTriagePolicy`], exported with the matching macro:
//!
//! ```ignore
//! use pix_policy_sdk::prelude::*;
//!
//! struct FlatFee;
//! impl FeePolicy for FlatFee {
//!     fn decide(input: FeeInput, _params: Params) -> Result<FeeDecision, PolicyError> {
//!         Ok(FeeDecision::on_top(100, "@fees_revenue", "flat-1-real"))
//!     }
//! }
//! pix_policy_sdk::export_fee!(FlatFee);
//! ```
//!
//! The export macros generate the component bindings in the calling crate (so the component
//! exports exactly one world) from the WIT at `../../wit/0.1.0` relative to the crate, or from the
//! path given as `export_fee!(FlatFee, wit = "path/to/wit")`.
//!
//! The SDK speaks `pix:policy@0.1.0`, which every host keeps accepting; it keeps the shipped
//! components on 0.1.0, and they are the proof of that. A rule that needs a 0.2.0 field
//! (`FraudInput::account_segment`) uses wit-bindgen on `wit/policy.wit` directly, like
//! `guests/segment-fraud-triage` and the projects `pix-host policy new` creates.
//!
//! The default rules of pix-host are in [`defaults`], so an institution can start from them and
//! change only what differs.

pub mod defaults;
mod helpers;

#[doc(hidden)]
pub use wit_bindgen;

/// Generated WIT types (shared by every world).
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        inline: "package pix:sdk; world types-only { import pix:policy/types@0.1.0; }",
        path: "../../wit/0.1.0",
        world: "pix:sdk/types-only",
        generate_all,
        generate_unused_types: true,
        additional_derives: [PartialEq, Eq],
    });
}

pub use bindings::pix::policy::types::*;
pub use helpers::{Params, Rounding, apply_bps, hm, reais};

/// Everything a policy usually needs.
pub mod prelude {
    pub use crate::{
        AccountRole, AccountStatus, CashinAcceptancePolicy, CashinDecision, CashinDenial, CashinInput, Centavos,
        DictStatistics, Direction, DocumentType, FeeCharge, FeeDecision, FeeInput, FeePolicy, FraudAction,
        FraudDecision, FraudInput, FraudTriagePolicy, Initiation, KeyType, LocalTime, Operation, OriginalOperation,
        Params, PersonType, PolicyError, Purpose, RefundPortion, RefundRejection, RefundSplitDecision,
        RefundSplitInput, RefundSplitPolicy, Rounding, Velocity, Weekday, apply_bps, hm, reais,
    };
}

/// Fee for a cash-out, cash-in, refund or intra-PSP transfer.
pub trait FeePolicy {
    /// Compute the fee; `Err` makes the host apply its fee fail-safe.
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError>;
}

/// Default split of a refund requested without `operations`.
pub trait RefundSplitPolicy {
    /// Split the refund or reject it; `Err` makes the host apply its fail-safe.
    fn decide(input: RefundSplitInput, params: Params) -> Result<RefundSplitDecision, PolicyError>;
}

/// Acceptance of an incoming Pix.
pub trait CashinAcceptancePolicy {
    /// Accept or deny; `Err` makes the host apply its fail-safe (deny).
    fn decide(input: CashinInput, params: Params) -> Result<CashinDecision, PolicyError>;
}

/// Fraud score and action.
pub trait FraudTriagePolicy {
    /// Score the payment; `Err` makes the host apply its fail-safe (review).
    fn decide(input: FraudInput, params: Params) -> Result<FraudDecision, PolicyError>;
}

/// Export a [`FeePolicy`] as a `fee-policy` component.
#[macro_export]
macro_rules! export_fee {
    ($ty:ident) => {
        $crate::export_fee!($ty, wit = "../../wit/0.1.0");
    };
    ($ty:ident, wit = $wit:literal) => {
        $crate::__export_one!($ty, $wit, "fee-policy", fee, FeePolicy, FeeInput, FeeDecision);
    };
}

/// Export a [`RefundSplitPolicy`] as a `refund-split-policy` component.
#[macro_export]
macro_rules! export_refund_split {
    ($ty:ident) => {
        $crate::export_refund_split!($ty, wit = "../../wit/0.1.0");
    };
    ($ty:ident, wit = $wit:literal) => {
        $crate::__export_one!(
            $ty,
            $wit,
            "refund-split-policy",
            refund_split,
            RefundSplitPolicy,
            RefundSplitInput,
            RefundSplitDecision
        );
    };
}

/// Export a [`CashinAcceptancePolicy`] as a `cashin-acceptance-policy` component.
#[macro_export]
macro_rules! export_cashin_acceptance {
    ($ty:ident) => {
        $crate::export_cashin_acceptance!($ty, wit = "../../wit/0.1.0");
    };
    ($ty:ident, wit = $wit:literal) => {
        $crate::__export_one!(
            $ty,
            $wit,
            "cashin-acceptance-policy",
            cashin_acceptance,
            CashinAcceptancePolicy,
            CashinInput,
            CashinDecision
        );
    };
}

/// Export a [`FraudTriagePolicy`] as a `fraud-triage-policy` component.
#[macro_export]
macro_rules! export_fraud_triage {
    ($ty:ident) => {
        $crate::export_fraud_triage!($ty, wit = "../../wit/0.1.0");
    };
    ($ty:ident, wit = $wit:literal) => {
        $crate::__export_one!(
            $ty,
            $wit,
            "fraud-triage-policy",
            fraud_triage,
            FraudTriagePolicy,
            FraudInput,
            FraudDecision
        );
    };
}

/// Export a type implementing all four traits as an `institution` component.
#[macro_export]
macro_rules! export_institution {
    ($ty:ident) => { $crate::export_institution!($ty, wit = "../../wit/0.1.0"); };
    ($ty:ident, wit = $wit:literal) => {
        mod __pix_policy_bindings {
            $crate::wit_bindgen::generate!({
                path: $wit,
                world: "pix:policy/institution",
                with: { "pix:policy/types@0.1.0": pix_policy_sdk::bindings::pix::policy::types },
                runtime_path: "pix_policy_sdk::wit_bindgen::rt",
            });
        }
        $crate::__impl_guest!($ty, fee, FeePolicy, FeeInput, FeeDecision);
        $crate::__impl_guest!(
            $ty, refund_split, RefundSplitPolicy, RefundSplitInput, RefundSplitDecision
        );
        $crate::__impl_guest!(
            $ty, cashin_acceptance, CashinAcceptancePolicy, CashinInput, CashinDecision
        );
        $crate::__impl_guest!($ty, fraud_triage, FraudTriagePolicy, FraudInput, FraudDecision);
        __pix_policy_bindings::export!($ty with_types_in __pix_policy_bindings);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_one {
    ($ty:ident, $wit:literal, $world:literal, $iface:ident, $trait:ident, $in:ident, $out:ident) => {
        mod __pix_policy_bindings {
            $crate::wit_bindgen::generate!({
                path: $wit,
                world: $world,
                with: { "pix:policy/types@0.1.0": pix_policy_sdk::bindings::pix::policy::types },
                runtime_path: "pix_policy_sdk::wit_bindgen::rt",
            });
        }
        $crate::__impl_guest!($ty, $iface, $trait, $in, $out);
        __pix_policy_bindings::export!($ty with_types_in __pix_policy_bindings);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_guest {
    ($ty:ident, $iface:ident, $trait:ident, $input:ident, $output:ident) => {
        impl __pix_policy_bindings::exports::pix::policy::$iface::Guest for $ty {
            fn decide(
                input: $crate::$input,
                params: ::std::vec::Vec<$crate::Param>,
            ) -> ::core::result::Result<$crate::$output, $crate::PolicyError> {
                <$ty as $crate::$trait>::decide(input, $crate::Params::new(params))
            }
        }
    };
}
