//! The use cases' policy port (`pix_app::Policies`) over the wasmtime runtime.

use futures::future::BoxFuture;
use pix_app::ports::FeeCheck;
use pix_app::{Decided, Policies};
use pix_policy::{
    CashinDecision, CashinInput, FeeDecision, FeeInput, FraudDecision, FraudInput, RefundSplitDecision,
    RefundSplitInput,
};
use uuid::Uuid;

use super::PolicyRuntime;
use super::runtime::{Cashin, Fee, Fraud, RefundSplit};

fn decided<T>((output, policy_sha256): (T, String)) -> Decided<T> {
    Decided { output, policy_sha256 }
}

impl Policies for PolicyRuntime {
    fn fee<'a>(
        &'a self,
        tenant: Uuid,
        input: &'a FeeInput,
        check: &'a FeeCheck<'a>,
    ) -> BoxFuture<'a, Decided<FeeDecision>> {
        Box::pin(async move {
            {
                let _ = check;
                decided(self.decide::<Fee>(tenant, input).await)
            }
        })
    }

    fn fraud<'a>(&'a self, tenant: Uuid, input: &'a FraudInput) -> BoxFuture<'a, Decided<FraudDecision>> {
        Box::pin(async move { decided(self.decide::<Fraud>(tenant, input).await) })
    }

    fn cashin<'a>(&'a self, tenant: Uuid, input: &'a CashinInput) -> BoxFuture<'a, Decided<CashinDecision>> {
        Box::pin(async move { decided(self.decide::<Cashin>(tenant, input).await) })
    }

    fn refund_split<'a>(
        &'a self,
        tenant: Uuid,
        input: &'a RefundSplitInput,
    ) -> BoxFuture<'a, Decided<RefundSplitDecision>> {
        Box::pin(async move { decided(self.decide::<RefundSplit>(tenant, input).await) })
    }

    fn default_fee_account(&self, tenant: Uuid) -> String {
        PolicyRuntime::default_fee_account(self, tenant)
    }
}
