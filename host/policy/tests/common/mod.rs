//! Shared helpers for the integration tests (included with `mod common;`).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;
use std::sync::OnceLock;

use pix_policy::{LoadedPolicy, PolicyEngine, PolicyError, PolicyLimits};

pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

pub fn wasm(name: &str) -> Vec<u8> {
    let path = policies_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One engine per test binary, with the default limits except a generous deadline: these tests
/// check answers, not timing, and a thread preempted on a busy 2-core CI machine must not turn a
/// correct decision into a deadline error. The limit tests build engines of their own.
pub fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let limits = PolicyLimits { deadline: std::time::Duration::from_secs(10), ..PolicyLimits::default() };
        PolicyEngine::new(limits).expect("engine")
    })
}

pub fn load(name: &str) -> Result<LoadedPolicy, PolicyError> {
    engine().load(&wasm(name))
}
