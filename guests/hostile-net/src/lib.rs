//! Hostile test guest: opens a TCP connection (imports wasi:sockets, so the host must refuse it).
//! Behaves like the default fee rule except when `account-segment` is "hostile", so it passes
//! the load-time conformance fixtures and misbehaves only when a test asks it to.

use pix_policy_sdk::prelude::*;

struct Hostile;

impl FeePolicy for Hostile {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        if input.account_segment == "hostile" {
            let ok = std::net::TcpStream::connect("10.0.0.1:80").is_ok();
            return Ok(FeeDecision::free(if ok { "connected" } else { "refused" }));
        }
        Ok(pix_policy_sdk::defaults::fee(&input, &params))
    }
}

pix_policy_sdk::export_fee!(Hostile);
