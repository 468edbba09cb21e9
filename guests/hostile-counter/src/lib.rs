//! Test guest: counts its calls in a static and returns the count as the fee. With a fresh
//! instance per decision the host must see 1 every time.

use std::sync::atomic::{AtomicI64, Ordering};

use pix_policy_sdk::prelude::*;

static CALLS: AtomicI64 = AtomicI64::new(0);

struct Counter;

impl FeePolicy for Counter {
    fn decide(_input: FeeInput, _params: Params) -> Result<FeeDecision, PolicyError> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(FeeDecision::on_top(n, "@fees_revenue", "call-count"))
    }
}

pix_policy_sdk::export_fee!(Counter);
