//! The wasmtime engine: configuration, loading and validation, and one decision per fresh instance.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasData, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::contract::{ContractVersion, Guests, WitParams};
use crate::decide::Decide;
use crate::error::{Outcome, PolicyError};
use crate::limits::ComponentLimits;
use crate::types::{
    CashinDecision, CashinInput, FeeDecision, FeeInput, FraudDecision, FraudInput, Params, PolicyKind,
    RefundSplitDecision, RefundSplitInput,
};
use crate::{conformance, limits};

/// Per-engine limits: the defaults a component gets when it declares none, and the host maxima
/// any component's own [`ComponentLimits`] must stay within.
#[derive(Clone, Debug)]
pub struct PolicyLimits {
    /// Default instruction budget per decision (wasmtime fuel). 10 M is about 1–1.5 ms of pure
    /// compute.
    pub fuel: u64,
    /// Default wall-clock backstop per decision, enforced with epochs.
    pub deadline: Duration,
    /// Epoch tick of the background ticker thread; the deadline's resolution.
    pub epoch_tick: Duration,
    /// Default linear-memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Host maximum of a component's fuel.
    pub max_fuel: u64,
    /// Host maximum of a component's deadline.
    pub max_deadline: Duration,
    /// Host maximum of a component's memory cap; also the size of every pooled memory slot.
    pub max_memory_bytes: usize,
    /// Instances that may be alive at once (pool size); a decision beyond it fails with
    /// [`PolicyError::Instantiate`].
    pub max_concurrent_instances: u32,
    /// Bytes of guest stdout/stderr kept per decision (the rest is dropped).
    pub max_stdio_bytes: usize,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000,
            deadline: Duration::from_millis(50),
            epoch_tick: Duration::from_millis(1),
            memory_bytes: 16 << 20,
            // An interpreter (JavaScript, Python) needs 10–20 MiB and ~0.3 M fuel per decision;
            // the maxima leave room for heavier rules without letting one starve a worker.
            max_fuel: 100_000_000,
            max_deadline: Duration::from_millis(250),
            max_memory_bytes: 128 << 20,
            max_concurrent_instances: 128,
            max_stdio_bytes: 4096,
        }
    }
}

/// Interfaces a guest may import. Rust `std` on wasm32-wasip2 imports the cli/io ones even for a
/// pure function (stdio and exit in its panic path); they are linked to an empty context with
/// captured stdio. Anything else (filesystem, sockets, clocks, random, http) is refused at load.
const ALLOWED_IMPORTS: &[&str] = &[
    "pix:policy/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
];

/// Core instances and tables one component may create (see [`Limiter`]).
const MAX_CORE_INSTANCES: u32 = 64;
const MAX_TABLES: u32 = 32;

/// A caller's extra rule on a policy answer (e.g. a tenant's fee cap); `Err` says what it broke.
pub type Check<'a, T> = dyn Fn(&T) -> Result<(), String> + Send + Sync + 'a;

/// The policy runtime: one per process, cheap to clone, shared by every tenant.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    limits: PolicyLimits,
    /// The ticker's period: a deadline is a whole number of ticks.
    tick: Duration,
    // Compiled components by sha256 of their bytes, process-wide: loading the same bytes again
    // (another tenant, a re-activation, a rollback) neither recompiles nor deserializes.
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    /// Hex tag of this engine's compiled-code format (see [`PolicyEngine::artifact_tag`]).
    artifact_tag: String,
    _ticker: Ticker,
}

/// A validated component, ready to decide. Cheap to clone; in-flight decisions keep the version
/// they started with alive.
#[derive(Clone)]
pub struct LoadedPolicy {
    sha256: Arc<str>,
    kinds: Arc<[PolicyKind]>,
    compiled: Arc<Compiled>,
    params: Params,
    wit_params: Arc<WitParams>,
    limits: Limits,
}

/// A component's limits resolved against the engine's defaults and maxima.
#[derive(Clone, Copy, Debug)]
struct Limits {
    fuel: u64,
    deadline: Duration,
    deadline_ticks: u64,
    memory_bytes: usize,
}

pub(crate) struct Compiled {
    pre: InstancePre<HostState>,
    pub(crate) guests: Guests,
}

impl LoadedPolicy {
    /// Hex sha256 of the component bytes (its identity in the registry and the decision log).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Decisions this component implements (one, or all four for an `institution`).
    pub fn kinds(&self) -> &[PolicyKind] {
        &self.kinds
    }

    /// True when the component implements `kind`.
    pub fn implements(&self, kind: PolicyKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The `pix:policy` version each exported decision was built against.
    pub fn contract(&self) -> Vec<(PolicyKind, ContractVersion)> {
        self.compiled.guests.exported()
    }

    /// Tenant parameters passed on every call.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The limits every decision of this component runs under (all set: declared or default).
    pub fn limits(&self) -> ComponentLimits {
        declared(self.limits.memory_bytes, self.limits.fuel, self.limits.deadline)
    }
}

/// Engine-side limits in the units a component declares them in (memory rounded up to MiB).
fn declared(memory_bytes: usize, fuel: u64, deadline: Duration) -> ComponentLimits {
    ComponentLimits {
        memory_mib: Some(u32::try_from(memory_bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX)),
        fuel: Some(fuel),
        deadline_ms: Some(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// Stored compiled code for [`PolicyEngine::load_with_artifact`]: what [`PolicyEngine::artifact`]
/// returned, and the hex sha256 of the component bytes it was compiled from (it is ignored for
/// any other bytes).
#[derive(Clone, Copy, Debug)]
pub struct Artifact<'a> {
    pub sha256: &'a str,
    pub code: &'a [u8],
}

/// Where [`PolicyEngine::load_with_artifact`] took a component's compiled code from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// This process had it compiled already (same bytes loaded before).
    Cached,
    /// The stored artifact.
    Deserialized,
    /// Compiled now: there was no artifact, or wasmtime refused it. Store a fresh one.
    Compiled,
}

/// Hex sha256 of wasmtime's compatibility hash of `engine` (version and code-generation settings).
fn artifact_tag(engine: &Engine) -> String {
    use std::hash::Hash;
    /// Feeds what `Hash` writes into sha256: stable across processes and builds, unlike
    /// `DefaultHasher`, which is only promised stable within one.
    struct ShaHasher(Sha256);
    impl std::hash::Hasher for ShaHasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

impl fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("sha256", &self.sha256)
            .field("kinds", &self.kinds)
            .field("params", &self.params)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Store data of one instance: limits and a WASI context with no capabilities.
pub(crate) struct HostState {
    limiter: Limiter,
    wasi: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Fuel the last call into the guest used.
    fuel_used: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps memory growth and remembers that it did, so the resulting trap is reported as
/// [`PolicyError::MemoryLimit`] rather than a generic trap.
struct Limiter {
    memory_bytes: usize,
    memory_exceeded: bool,
    /// Largest linear memory the instance asked for (its initial size included).
    peak_bytes: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.peak_bytes = self.peak_bytes.max(desired);
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded (asked for {desired})",
                self.memory_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    // A Rust guest has a handful of core instances; componentize-py links libpython, libc and
    // friends as separate core modules (~20 instances, ~10 tables).
    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }

    fn memories(&self) -> usize {
        8
    }
}

/// Advances the engine epoch every tick; stopped and joined when the engine is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("pix-policy-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop, handle: Some(handle) })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            // The thread only sleeps and ticks; joining cannot block for more than one tick.
            let _ = handle.join();
        }
    }
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Link the WASI interfaces Rust std needs, and nothing else.
fn link_stdio(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, sync::io};

    let view = <HostState as WasiCliView>::cli;
    cli::environment::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(linker, view)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(linker, view)?;
    io::error::add_to_linker::<HostState, HasTable>(linker, |s| &mut s.table)?;
    io::poll::add_to_linker::<HostState, HasTable>(linker, |s| &mut s.table)?;
    io::streams::add_to_linker::<HostState, HasTable>(linker, |s| &mut s.table)?;
    Ok(())
}

impl PolicyEngine {
    /// Build the engine: Cranelift, component model, pooling allocator sized by `limits`, fuel,
    /// epoch interruption with a background ticker thread.
    pub fn new(limits: PolicyLimits) -> Result<PolicyEngine, PolicyError> {
        let setup = |e: wasmtime::Error| PolicyError::Link(format!("engine setup: {e:#}"));
        // A maximum below its default is raised to it (an engine built with a long default
        // deadline, as the tests do, keeps working).
        let limits = PolicyLimits {
            max_fuel: limits.max_fuel.max(limits.fuel),
            max_deadline: limits.max_deadline.max(limits.deadline),
            max_memory_bytes: limits.max_memory_bytes.max(limits.memory_bytes),
            ..limits
        };
        let n = limits.max_concurrent_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust component has a handful of core instances (main module plus adapter shims),
        // one memory and a few tables; an interpreter component (componentize-py links libpython,
        // libc and its shims as separate modules) has ~20 instances and a table of ~30k
        // functions. Slots are sized for the largest; only what an instance touches is resident.
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .max_core_instances_per_component(MAX_CORE_INSTANCES)
            .max_tables_per_component(MAX_TABLES)
            .table_elements(100_000)
            .max_memory_size(limits.max_memory_bytes)
            .max_unused_warm_slots(n)
            // Batch decommits: without this, fresh-instance throughput drops when two threads
            // instantiate at once (kernel VM-lock contention).
            .decommit_batch_size(16);
        // Reset used slots by rewriting only their dirty pages (found with Linux's PAGEMAP_SCAN,
        // kernel 6.7+) and keep them resident, instead of madvise + page faults on the next use:
        // a policy dirties a few dozen KiB, and the madvise batches were the p99 tail (fresh
        // decision p50 ~19 → ~9 µs, p99 ~55 → ~15–40 µs). 2 MiB covers a Rust guest's 1 MiB stack
        // plus its data and heap; whatever a guest dirties beyond it is decommitted as before.
        // Without the ioctl, keeping memory resident would mean a memset of all of it: leave it off.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Auto).linear_memory_keep_resident(2 << 20).table_keep_resident(1 << 20);
        }
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            // Copy-on-write heap images: an interpreter's snapshot (its heap after Wizer ran the
            // initialisation at build time) is 10+ MiB, which is mapped, not copied, per instance;
            // a reused slot keeps the mapping and only the pages a decision dirtied are reset.
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(setup)?;
        let mut linker = Linker::new(&engine);
        link_stdio(&mut linker).map_err(setup)?;
        let tick = limits.epoch_tick.max(Duration::from_micros(100));
        let ticker = Ticker::start(engine.clone(), tick)
            .map_err(|e| PolicyError::Link(format!("cannot start the epoch ticker: {e}")))?;
        let artifact_tag = artifact_tag(&engine);
        Ok(PolicyEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                limits,
                tick,
                compiled: Mutex::new(HashMap::new()),
                artifact_tag,
                _ticker: ticker,
            }),
        })
    }

    /// The limits this engine enforces.
    pub fn limits(&self) -> &PolicyLimits {
        &self.inner.limits
    }

    /// The host maxima as [`ComponentLimits`] (what a component or a tenant may ask for at most).
    pub fn maxima(&self) -> ComponentLimits {
        let l = &self.inner.limits;
        declared(l.max_memory_bytes, l.max_fuel, l.max_deadline)
    }

    /// [`Self::load_with`] the engine's default limits.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedPolicy, PolicyError> {
        self.load_with(bytes, ComponentLimits::default())
    }

    /// Identifies the format of this engine's compiled code: the wasmtime version and every
    /// engine setting that affects code generation (hex sha256 of wasmtime's
    /// `precompile_compatibility_hash`). An [artifact](Self::artifact) is stored under the
    /// component's sha256 and this tag, so a host with another wasmtime or configuration never
    /// even tries another's artifacts (and wasmtime refuses them if it did).
    pub fn artifact_tag(&self) -> &str {
        &self.inner.artifact_tag
    }

    /// The compiled code of a loaded component in wasmtime's serialized form, to be stored beside
    /// the component (keyed by its sha256 and [`Self::artifact_tag`]) so that other instances load
    /// it with [`Self::load_with_artifact`] in milliseconds instead of compiling it again.
    pub fn artifact(&self, policy: &LoadedPolicy) -> Result<Vec<u8>, PolicyError> {
        policy.compiled.pre.component().serialize().map_err(|e| PolicyError::Compile(format!("serializing: {e:#}")))
    }

    /// [`Self::load_with`], taking the compiled code from `artifact` (written by
    /// [`Self::artifact`] of an engine with the same [`Self::artifact_tag`]) instead of compiling,
    /// unless this process already has the component compiled. An artifact wasmtime refuses (other
    /// version or configuration, damaged) is ignored and the component compiled; the answer says
    /// which happened, so the caller can store a fresh artifact.
    ///
    /// The artifact is native code and is trusted as such: pass only what this host's own
    /// registry stored for exactly these component bytes (see the safety note in `deserialize`).
    pub fn load_with_artifact(
        &self,
        bytes: &[u8],
        artifact: Option<Artifact<'_>>,
        limits: ComponentLimits,
    ) -> Result<(LoadedPolicy, CodeSource), PolicyError> {
        let mut source = CodeSource::Compiled;
        let result = self.resolve(limits).and_then(|limits| {
            let digest: [u8; 32] = Sha256::digest(bytes).into();
            // Only the artifact of exactly these bytes.
            let artifact = artifact.filter(|a| a.sha256.eq_ignore_ascii_case(&hex::encode(digest))).map(|a| a.code);
            let component = match (self.cached(&digest), artifact) {
                (Some(component), _) => {
                    source = CodeSource::Cached;
                    component
                }
                (None, Some(artifact)) => match self.deserialize(digest, artifact) {
                    Some(component) => {
                        source = CodeSource::Deserialized;
                        component
                    }
                    None => self.compile(digest, bytes)?,
                },
                (None, None) => self.compile(digest, bytes)?,
            };
            self.validate(digest, component, limits)
        });
        self.count_load(&result);
        result.map(|policy| (policy, source))
    }

    /// Compile and validate a component that runs under `limits` (its own, each within the host
    /// maximum): it must compile, import nothing outside [`ALLOWED_IMPORTS`], export at least one
    /// decision interface, and pass every exported kind's conformance fixtures within the limits.
    pub fn load_with(&self, bytes: &[u8], limits: ComponentLimits) -> Result<LoadedPolicy, PolicyError> {
        let result = self.resolve(limits).and_then(|limits| {
            let digest: [u8; 32] = Sha256::digest(bytes).into();
            let component = self.compile(digest, bytes)?;
            self.validate(digest, component, limits)
        });
        self.count_load(&result);
        result
    }

    fn count_load<T>(&self, result: &Result<T, PolicyError>) {
        let outcome = if result.is_ok() { "ok" } else { "rejected" };
        metrics::counter!("pix_policy_loads_total", "result" => outcome).increment(1);
        if let Err(e) = result {
            tracing::warn!(error = %e, "policy component rejected");
        }
    }

    /// `limits` with the defaults filled in, or the first one above the host maximum.
    fn resolve(&self, limits: ComponentLimits) -> Result<Limits, PolicyError> {
        let host = &self.inner.limits;
        let memory_bytes = limits.memory_mib.map_or(host.memory_bytes, |m| (m as usize) << 20);
        let fuel = limits.fuel.unwrap_or(host.fuel);
        let deadline = limits.deadline_ms.map_or(host.deadline, Duration::from_millis);
        if let Some((limit, asked, maximum)) = declared(memory_bytes, fuel, deadline).above(&self.maxima()) {
            return Err(PolicyError::LimitAboveMaximum { limit, asked, maximum });
        }
        if memory_bytes == 0 || fuel == 0 || deadline.is_zero() {
            return Err(PolicyError::InvalidInput("component limits must be > 0".into()));
        }
        let deadline_ticks =
            u64::try_from(deadline.as_nanos().div_ceil(self.inner.tick.as_nanos())).unwrap_or(u64::MAX).max(1);
        Ok(Limits { fuel, deadline, deadline_ticks, memory_bytes })
    }

    /// Import check, linking, exported kinds and conformance of a compiled component.
    fn validate(&self, digest: [u8; 32], component: Component, limits: Limits) -> Result<LoadedPolicy, PolicyError> {
        let forbidden: Vec<String> = component
            .component_type()
            .imports(&self.inner.engine)
            .map(|(name, _)| name.to_owned())
            .filter(|name| {
                let base = name.split('@').next().unwrap_or(name);
                !ALLOWED_IMPORTS.contains(&base)
            })
            .collect();
        if !forbidden.is_empty() {
            return Err(PolicyError::ForbiddenImport { imports: forbidden });
        }
        let pre = self.inner.linker.instantiate_pre(&component).map_err(|e| PolicyError::Link(format!("{e:#}")))?;
        let guests = Guests::resolve(&pre);
        let kinds: Vec<PolicyKind> = guests.exported().into_iter().map(|(kind, _)| kind).collect();
        if kinds.is_empty() {
            return Err(PolicyError::NoDecisionExported);
        }
        let policy = LoadedPolicy {
            sha256: hex::encode(digest).into(),
            kinds: kinds.into(),
            compiled: Arc::new(Compiled { pre, guests }),
            params: Params::default(),
            wit_params: Arc::new(WitParams::new(&Params::default())),
            limits,
        };
        conformance::check(self, &policy)?;
        Ok(policy)
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Component> {
        self.inner.compiled.lock().unwrap_or_else(|poison| poison.into_inner()).get(digest).cloned()
    }

    fn remember(&self, digest: [u8; 32], component: &Component) {
        self.inner.compiled.lock().unwrap_or_else(|poison| poison.into_inner()).insert(digest, component.clone());
    }

    fn compile(&self, digest: [u8; 32], bytes: &[u8]) -> Result<Component, PolicyError> {
        if let Some(component) = self.cached(&digest) {
            return Ok(component);
        }
        // Compile outside the lock: tens of milliseconds for a Rust component, seconds for an
        // interpreter.
        let started = Instant::now();
        let component =
            Component::new(&self.inner.engine, bytes).map_err(|e| PolicyError::Compile(format!("{e:#}")))?;
        tracing::debug!(sha256 = %hex::encode(digest), ms = started.elapsed().as_millis() as u64, "policy component compiled");
        self.remember(digest, &component);
        Ok(component)
    }

    /// The component from a serialized artifact, or `None` when wasmtime refuses it (another
    /// version or configuration, or damaged): the caller compiles instead.
    #[allow(unsafe_code)]
    fn deserialize(&self, digest: [u8; 32], artifact: &[u8]) -> Option<Component> {
        let started = Instant::now();
        // SAFETY: `Component::deserialize` is unsafe because the bytes become executable code
        // without being validated as WebAssembly: a forged artifact could run anything in this
        // process. The artifacts passed here are only ever ones this host produced with
        // `Component::serialize` (`PolicyEngine::artifact`) after the component passed the full
        // load (compile, import check, conformance), stored in the policy registry under the
        // sha256 of those component bytes and the engine tag, and read back for the component
        // whose bytes hash to that sha256. The registry is trusted exactly as the component bytes
        // and the bindings in it are (whoever can write it can already choose which code decides);
        // artifacts are never accepted from the API, files or the network. Wasmtime itself checks
        // the header (its version and the engine's code-generation settings) and refuses any
        // mismatch, which lands in the `Err` arm below.
        match unsafe { Component::deserialize(&self.inner.engine, artifact) } {
            Ok(component) => {
                tracing::debug!(sha256 = %hex::encode(digest), ms = started.elapsed().as_millis() as u64,
                    "policy component deserialized");
                self.remember(digest, &component);
                Some(component)
            }
            Err(e) => {
                tracing::warn!(sha256 = %hex::encode(digest), error = %format!("{e:#}"),
                    "stored compiled policy refused; compiling the component instead");
                None
            }
        }
    }

    /// `policy` with a wall-clock deadline of at least `floor` (for the conformance fixtures).
    pub(crate) fn with_deadline_at_least(&self, policy: &LoadedPolicy, floor: Duration) -> LoadedPolicy {
        if policy.limits.deadline >= floor {
            return policy.clone();
        }
        let deadline_ticks =
            u64::try_from(floor.as_nanos().div_ceil(self.inner.tick.as_nanos())).unwrap_or(u64::MAX).max(1);
        LoadedPolicy { limits: Limits { deadline: floor, deadline_ticks, ..policy.limits }, ..policy.clone() }
    }

    /// The same component with tenant parameters bound to it. The parameters are checked
    /// against the size limits and the conformance fixtures run again with them.
    pub fn with_params(&self, policy: &LoadedPolicy, params: Params) -> Result<LoadedPolicy, PolicyError> {
        limits::check_params(&params).map_err(PolicyError::InvalidInput)?;
        let bound = LoadedPolicy { wit_params: Arc::new(WitParams::new(&params)), params, ..policy.clone() };
        conformance::check(self, &bound)?;
        Ok(bound)
    }

    /// Fee decision in a fresh instance.
    pub fn decide_fee(&self, policy: &LoadedPolicy, input: &FeeInput) -> Result<FeeDecision, PolicyError> {
        self.decide(policy, input)
    }

    /// Refund split in a fresh instance.
    pub fn decide_refund_split(
        &self,
        policy: &LoadedPolicy,
        input: &RefundSplitInput,
    ) -> Result<RefundSplitDecision, PolicyError> {
        self.decide(policy, input)
    }

    /// Cash-in acceptance in a fresh instance.
    pub fn decide_cashin_acceptance(
        &self,
        policy: &LoadedPolicy,
        input: &CashinInput,
    ) -> Result<CashinDecision, PolicyError> {
        self.decide(policy, input)
    }

    /// Fraud triage in a fresh instance.
    pub fn decide_fraud_triage(&self, policy: &LoadedPolicy, input: &FraudInput) -> Result<FraudDecision, PolicyError> {
        self.decide(policy, input)
    }

    /// Fee, or on any failure the native default fee table ([`crate::native::fee`]).
    pub fn fee_or_failsafe(&self, policy: &LoadedPolicy, input: &FeeInput) -> (FeeDecision, Outcome) {
        self.decide_or_failsafe(policy, input)
    }

    /// Refund split, or on any failure the whole refund from the first customer account (the
    /// plugin's single-account flow).
    pub fn refund_split_or_failsafe(
        &self,
        policy: &LoadedPolicy,
        input: &RefundSplitInput,
    ) -> (RefundSplitDecision, Outcome) {
        self.decide_or_failsafe(policy, input)
    }

    /// Cash-in acceptance, or on any failure a denial (`POLICY_UNAVAILABLE`, pacs.002 `AG03`).
    pub fn cashin_acceptance_or_failsafe(
        &self,
        policy: &LoadedPolicy,
        input: &CashinInput,
    ) -> (CashinDecision, Outcome) {
        self.decide_or_failsafe(policy, input)
    }

    /// Fraud triage, or on any failure `review` (manual analysis) with reason
    /// `POLICY_UNAVAILABLE`.
    pub fn fraud_triage_or_failsafe(&self, policy: &LoadedPolicy, input: &FraudInput) -> (FraudDecision, Outcome) {
        self.decide_or_failsafe(policy, input)
    }

    /// [`Self::fee_or_failsafe`] where the answer must also pass `check` (the tenant's limits);
    /// an answer that fails it counts as an invalid answer and the fail-safe applies.
    pub fn fee_or_failsafe_checked(
        &self,
        policy: &LoadedPolicy,
        input: &FeeInput,
        check: &Check<'_, FeeDecision>,
    ) -> (FeeDecision, Outcome) {
        self.decide_or_failsafe_checked(policy, input, check)
    }

    /// [`Self::refund_split_or_failsafe`] with a caller check on the answer.
    pub fn refund_split_or_failsafe_checked(
        &self,
        policy: &LoadedPolicy,
        input: &RefundSplitInput,
        check: &Check<'_, RefundSplitDecision>,
    ) -> (RefundSplitDecision, Outcome) {
        self.decide_or_failsafe_checked(policy, input, check)
    }

    /// [`Self::cashin_acceptance_or_failsafe`] with a caller check on the answer.
    pub fn cashin_acceptance_or_failsafe_checked(
        &self,
        policy: &LoadedPolicy,
        input: &CashinInput,
        check: &Check<'_, CashinDecision>,
    ) -> (CashinDecision, Outcome) {
        self.decide_or_failsafe_checked(policy, input, check)
    }

    /// [`Self::fraud_triage_or_failsafe`] with a caller check on the answer.
    pub fn fraud_triage_or_failsafe_checked(
        &self,
        policy: &LoadedPolicy,
        input: &FraudInput,
        check: &Check<'_, FraudDecision>,
    ) -> (FraudDecision, Outcome) {
        self.decide_or_failsafe_checked(policy, input, check)
    }

    /// A long-lived instance of `policy` for very hot, pure rules: about 1 µs per call instead
    /// of a fresh instance's ~25 µs, but guest state persists between calls. Fuel and the
    /// deadline are reset per call; after any trap the instance is replaced.
    pub fn session(&self, policy: &LoadedPolicy) -> Session {
        Session { engine: self.clone(), policy: policy.clone(), live: None }
    }

    fn decide<D: Decide>(&self, policy: &LoadedPolicy, input: &D) -> Result<D::Output, PolicyError> {
        self.decide_checked(policy, input, &|_| Ok(()))
    }

    /// A decision whose answer must also pass the caller's `check` (a tenant's limits): an answer
    /// that fails it is an invalid answer like any other, with the same metrics and log.
    fn decide_checked<D: Decide>(
        &self,
        policy: &LoadedPolicy,
        input: &D,
        check: &Check<'_, D::Output>,
    ) -> Result<D::Output, PolicyError> {
        let started = Instant::now();
        let result = self
            .run(policy, input)
            .and_then(|output| check(&output).map(|()| output).map_err(PolicyError::InvalidOutput));
        let kind = D::KIND.as_str();
        metrics::histogram!("pix_policy_decision_seconds", "kind" => kind).record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => {
                metrics::counter!("pix_policy_decisions_total", "kind" => kind, "outcome" => "ok").increment(1);
            }
            Err(e) => {
                metrics::counter!("pix_policy_decisions_total", "kind" => kind, "outcome" => "error").increment(1);
                metrics::counter!("pix_policy_errors_total", "kind" => kind, "error" => e.class()).increment(1);
                tracing::warn!(kind, sha256 = policy.sha256(), error = %e, "policy decision failed");
            }
        }
        result
    }

    fn decide_or_failsafe<D: Decide>(&self, policy: &LoadedPolicy, input: &D) -> (D::Output, Outcome) {
        self.decide_or_failsafe_checked(policy, input, &|_| Ok(()))
    }

    fn decide_or_failsafe_checked<D: Decide>(
        &self,
        policy: &LoadedPolicy,
        input: &D,
        check: &Check<'_, D::Output>,
    ) -> (D::Output, Outcome) {
        match self.decide_checked(policy, input, check) {
            Ok(output) => (output, Outcome::Policy),
            Err(e) => {
                metrics::counter!("pix_policy_failsafe_total", "kind" => D::KIND.as_str()).increment(1);
                (input.failsafe(policy.params()), Outcome::FailSafe(e))
            }
        }
    }

    /// One decision in a fresh store and instance, without metrics (conformance uses it too).
    pub(crate) fn run<D: Decide>(&self, policy: &LoadedPolicy, input: &D) -> Result<D::Output, PolicyError> {
        input.check_input().map_err(PolicyError::InvalidInput)?;
        if !policy.implements(D::KIND) {
            return Err(PolicyError::NotExported(D::KIND));
        }
        let mut store = self.new_store(policy);
        let instance = self.instantiate(&mut store, policy)?;
        let result = self.call(&mut store, &instance, policy, input);
        forward_stdio(store.data(), policy, D::KIND);
        result
    }

    fn new_store(&self, policy: &LoadedPolicy) -> Store<HostState> {
        let max_stdio = self.inner.limits.max_stdio_bytes;
        let stdout = MemoryOutputPipe::new(max_stdio);
        let stderr = MemoryOutputPipe::new(max_stdio);
        let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).build();
        let state = HostState {
            limiter: Limiter { memory_bytes: policy.limits.memory_bytes, memory_exceeded: false, peak_bytes: 0 },
            wasi,
            table: ResourceTable::new(),
            stdout,
            stderr,
            fuel_used: 0,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    fn instantiate(&self, store: &mut Store<HostState>, policy: &LoadedPolicy) -> Result<Instance, PolicyError> {
        arm(store, policy)?;
        policy.compiled.pre.instantiate(&mut *store).map_err(|e| match classify_trap(&e, store, policy) {
            Some(error) => error,
            None => PolicyError::Instantiate(format!("{e:#}")),
        })
    }

    fn call<D: Decide>(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        policy: &LoadedPolicy,
        input: &D,
    ) -> Result<D::Output, PolicyError> {
        arm(store, policy)?;
        let raw = input.invoke(&policy.compiled.guests, store, instance, &policy.wit_params);
        if let Ok(left) = store.get_fuel() {
            let used = policy.limits.fuel.saturating_sub(left);
            store.data_mut().fuel_used = used;
            metrics::histogram!("pix_policy_fuel_consumed", "kind" => D::KIND.as_str()).record(used as f64);
        }
        match raw {
            None => Err(PolicyError::NotExported(D::KIND)),
            Some(Err(e)) => Err(classify_trap(&e, store, policy)
                .unwrap_or_else(|| PolicyError::Trap { message: format!("{e:#}"), stderr: stderr_text(store.data()) })),
            Some(Ok(Err(guest))) => Err(PolicyError::Guest {
                code: limits::truncate(&guest.code, 64),
                message: limits::truncate(&guest.message, 256),
            }),
            Some(Ok(Ok(output))) => {
                input.check_output(&output).map_err(PolicyError::InvalidOutput)?;
                Ok(output)
            }
        }
    }
}

/// Fresh fuel and deadline for the next guest entry.
fn arm(store: &mut Store<HostState>, policy: &LoadedPolicy) -> Result<(), PolicyError> {
    store.set_fuel(policy.limits.fuel).map_err(|e| PolicyError::Instantiate(format!("{e:#}")))?;
    store.set_epoch_deadline(policy.limits.deadline_ticks);
    Ok(())
}

/// Map a wasmtime error to the limit that caused it, if any; `None` for other errors.
fn classify_trap(error: &wasmtime::Error, store: &Store<HostState>, policy: &LoadedPolicy) -> Option<PolicyError> {
    let limits = &policy.limits;
    if store.data().limiter.memory_exceeded {
        return Some(PolicyError::MemoryLimit { bytes: limits.memory_bytes });
    }
    match error.downcast_ref::<Trap>()? {
        Trap::OutOfFuel => Some(PolicyError::OutOfFuel { fuel: limits.fuel }),
        Trap::Interrupt => {
            Some(PolicyError::Deadline { millis: u64::try_from(limits.deadline.as_millis()).unwrap_or(u64::MAX) })
        }
        _ => Some(PolicyError::Trap { message: format!("{error:#}"), stderr: stderr_text(store.data()) }),
    }
}

fn stderr_text(state: &HostState) -> String {
    String::from_utf8_lossy(&state.stderr.contents()).trim().to_owned()
}

/// Guest output goes to tracing (target `pix_policy::guest`), never to the process's stdio.
fn forward_stdio(state: &HostState, policy: &LoadedPolicy, kind: PolicyKind) {
    let stdout = state.stdout.contents();
    if !stdout.is_empty() {
        tracing::debug!(target: "pix_policy::guest", kind = kind.as_str(), sha256 = policy.sha256(),
            stdout = %String::from_utf8_lossy(&stdout).trim(), "guest stdout");
    }
    let stderr = state.stderr.contents();
    if !stderr.is_empty() {
        tracing::warn!(target: "pix_policy::guest", kind = kind.as_str(), sha256 = policy.sha256(),
            stderr = %String::from_utf8_lossy(&stderr).trim(), "guest stderr");
    }
}

/// A reused instance (see [`PolicyEngine::session`]). Not shared between threads.
pub struct Session {
    engine: PolicyEngine,
    policy: LoadedPolicy,
    live: Option<(Store<HostState>, Instance)>,
}

impl Session {
    /// Fee decision on the reused instance.
    pub fn decide_fee(&mut self, input: &FeeInput) -> Result<FeeDecision, PolicyError> {
        self.decide(input)
    }

    /// Refund split on the reused instance.
    pub fn decide_refund_split(&mut self, input: &RefundSplitInput) -> Result<RefundSplitDecision, PolicyError> {
        self.decide(input)
    }

    /// Cash-in acceptance on the reused instance.
    pub fn decide_cashin_acceptance(&mut self, input: &CashinInput) -> Result<CashinDecision, PolicyError> {
        self.decide(input)
    }

    /// Fraud triage on the reused instance.
    pub fn decide_fraud_triage(&mut self, input: &FraudInput) -> Result<FraudDecision, PolicyError> {
        self.decide(input)
    }

    fn decide<D: Decide>(&mut self, input: &D) -> Result<D::Output, PolicyError> {
        input.check_input().map_err(PolicyError::InvalidInput)?;
        if !self.policy.implements(D::KIND) {
            return Err(PolicyError::NotExported(D::KIND));
        }
        let (mut store, instance) = match self.live.take() {
            Some(live) => live,
            None => self.start()?,
        };
        let result = self.engine.call(&mut store, &instance, &self.policy, input);
        // A trap poisons the instance ("cannot enter component instance"): drop it and start
        // afresh next time. Business-level errors leave it usable.
        let trapped = matches!(
            result,
            Err(PolicyError::Trap { .. }
                | PolicyError::OutOfFuel { .. }
                | PolicyError::Deadline { .. }
                | PolicyError::MemoryLimit { .. })
        );
        if !trapped {
            self.live = Some((store, instance));
        }
        result
    }

    fn start(&self) -> Result<(Store<HostState>, Instance), PolicyError> {
        let mut store = self.engine.new_store(&self.policy);
        let instance = self.engine.instantiate(&mut store, &self.policy)?;
        Ok((store, instance))
    }

    /// Instantiate now rather than on the first decision (no-op when an instance is live), so
    /// the first decision does not pay for it.
    pub fn warm(&mut self) -> Result<(), PolicyError> {
        if self.live.is_none() {
            self.live = Some(self.start()?);
        }
        Ok(())
    }

    /// Largest linear memory the live instance has asked for, in bytes (`None` without one):
    /// what a decision of this component costs in memory, for sizing its limit.
    pub fn memory_bytes(&self) -> Option<usize> {
        self.live.as_ref().map(|(store, _)| store.data().limiter.peak_bytes)
    }

    /// Fuel the live instance's last decision used (`None` without one), for sizing the budget.
    pub fn fuel_used(&self) -> Option<u64> {
        self.live.as_ref().map(|(store, _)| store.data().fuel_used)
    }
}
