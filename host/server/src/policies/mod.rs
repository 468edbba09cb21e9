//! The policy registry on the server: upload and validation, activation and rollback per
//! (tenant, kind), shadow runs and replay (admin API), the fee quote (tenant API), and the
//! background work that keeps every instance on the active versions.

pub mod admin;
mod decision_log;
mod port;
pub mod quote;
pub mod runtime;
pub mod sync;

pub use runtime::PolicyRuntime;

use pix_core::error::ErrorCode;
use pix_policy::{Params, PolicyKind};

use crate::error::ApiError;

/// `{"fee-account": "@tarifas", "nightly-limit": 50000}` → policy parameters (integers or text).
pub fn params_from_json(value: &serde_json::Value) -> Result<Params, ApiError> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidField, m);
    let object = match value {
        serde_json::Value::Null => return Ok(Params::default()),
        serde_json::Value::Object(o) => o,
        _ => return Err(invalid("params must be an object of integers and strings".into())),
    };
    object.iter().try_fold(Params::default(), |params, (name, v)| match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(|i| params.with_int(name, i))
            .ok_or_else(|| invalid(format!("params.{name}: must be an integer"))),
        serde_json::Value::String(s) => Ok(params.with_text(name, s)),
        _ => Err(invalid(format!("params.{name}: must be an integer or a string"))),
    })
}

pub fn parse_kind(kind: &str) -> Result<PolicyKind, ApiError> {
    PolicyKind::parse(kind).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidField, "kind: one of fee, refund-split, cashin-acceptance, fraud-triage")
    })
}
