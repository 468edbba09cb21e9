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

/// Alternates `old` and `new` as the active `kind` policy of tenant "t1" `swaps` times while
/// `threads` threads decide in a loop; every answer must be the one of the version the decision
/// pinned (`decide` gives each version's answer, computed up front). Returns how many decisions
/// each version served; the last swap leaves `old` active when `swaps` is even.
pub fn swap_under_load<T>(
    kind: pix_policy::PolicyKind,
    old: &LoadedPolicy,
    new: &LoadedPolicy,
    swaps: usize,
    threads: usize,
    decide: impl Fn(&LoadedPolicy) -> T + Send + Sync + 'static,
) -> (std::sync::Arc<pix_policy::PolicySet>, [usize; 2])
where
    T: PartialEq + std::fmt::Debug + Send + Sync + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let decide = Arc::new(decide);
    let (old_answer, new_answer) = (Arc::new(decide(old)), Arc::new(decide(new)));
    assert_ne!(old_answer, new_answer, "versions must be distinguishable");
    let set = Arc::new(pix_policy::PolicySet::new());
    set.activate("t1", kind, old.clone()).expect("activate");
    let done = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicUsize::new(0));
    let deciders: Vec<_> = (0..threads)
        .map(|_| {
            let (set, done, decided, decide) =
                (Arc::clone(&set), Arc::clone(&done), Arc::clone(&decided), Arc::clone(&decide));
            let (old_sha, old_answer, new_answer) =
                (old.sha256().to_owned(), Arc::clone(&old_answer), Arc::clone(&new_answer));
            std::thread::spawn(move || {
                let mut served = [0usize; 2];
                while !done.load(Ordering::Acquire) || served[0] + served[1] < 10 {
                    let policy = set.require("t1", kind).expect("always active");
                    let answer = decide(&policy);
                    // The answer must be the one of the version this call pinned.
                    let is_old = policy.sha256() == old_sha;
                    assert_eq!(&answer, if is_old { &*old_answer } else { &*new_answer });
                    served[usize::from(!is_old)] += 1;
                    decided.fetch_add(1, Ordering::Relaxed);
                }
                served
            })
        })
        .collect();
    for i in 0..swaps {
        let next = if i % 2 == 0 { new } else { old };
        set.activate("t1", kind, next.clone()).expect("swap");
        // Let a few decisions start on this version before the next swap (bounded wait), so
        // swaps land between and during decisions on a loaded machine too.
        let before = decided.load(Ordering::Relaxed);
        let waited = std::time::Instant::now();
        while decided.load(Ordering::Relaxed) < before + 3 && waited.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::yield_now();
        }
    }
    done.store(true, Ordering::Release);
    let served = deciders
        .into_iter()
        .map(|d| d.join().expect("no decider panicked"))
        .fold([0, 0], |a, b| [a[0] + b[0], a[1] + b[1]]);
    assert_eq!(served[0] + served[1], decided.load(Ordering::Relaxed));
    (set, served)
}
