//! Per-kind glue: which guest export to call, the contract checks to apply, and the kind's
//! fail-safe. The conversions to and from each contract version's bindings are in `contract`.

use wasmtime::Store;
use wasmtime::component::Instance;

use crate::contract::{Call, Guests, WitParams};
use crate::engine::HostState;
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
        params: &WitParams,
    ) -> Option<Call<Self::Output>>;

    fn check_output(&self, output: &Self::Output) -> Result<(), String>;

    /// The documented fail-safe answer when the policy fails.
    fn failsafe(&self, params: &Params) -> Self::Output;
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
        params: &WitParams,
    ) -> Option<Call<Self::Output>> {
        guests.fee(store, instance, self, params)
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
        params: &WitParams,
    ) -> Option<Call<Self::Output>> {
        guests.refund_split(store, instance, self, params)
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
        params: &WitParams,
    ) -> Option<Call<Self::Output>> {
        guests.cashin_acceptance(store, instance, self, params)
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
        params: &WitParams,
    ) -> Option<Call<Self::Output>> {
        guests.fraud_triage(store, instance, self, params)
    }

    fn check_output(&self, output: &FraudDecision) -> Result<(), String> {
        limits::fraud_output(output)
    }

    /// Route to manual review: the payment is held, not lost, and not waved through.
    fn failsafe(&self, _params: &Params) -> FraudDecision {
        FraudDecision { score: 500, action: FraudAction::Review, reasons: vec!["POLICY_UNAVAILABLE".into()] }
    }
}
