//! `pix-host policy new` for every kind × language: the project builds with its own build script
//! into a component that passes `validate`, and its fixtures pass `policy test`.
//!
//! Toolchains: Rust needs the wasm32-wasip2 target, JavaScript Node.js ≥ 20 with npm, Python
//! python3 with venv (the project's build script installs the pinned componentize-js and
//! componentize-py; here they are installed once into target/policy-new/ and shared). CI (.ci/run)
//! installs all three; a test whose toolchain is missing prints why and passes without building.

use std::path::{Path, PathBuf};
use std::process::Command;

use pix_server::policy_cli::scaffold::{Lang, ProjectKind};
use pix_server::policy_cli::{self, PolicyCliError};

macro_rules! projects {
    ($($(#[$attr:meta])* $test:ident: $kind:ident in $lang:ident,)*) => {$(
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            new_project_builds_validates_and_passes_its_fixtures(ProjectKind::$kind, Lang::$lang).await;
        }
    )*};
}

projects! {
    rust_fee: Fee in Rust,
    rust_refund_split: RefundSplit in Rust,
    rust_cashin_acceptance: CashinAcceptance in Rust,
    rust_fraud_triage: FraudTriage in Rust,
    rust_institution: Institution in Rust,
    js_fee: Fee in Js,
    js_refund_split: RefundSplit in Js,
    js_cashin_acceptance: CashinAcceptance in Js,
    js_fraud_triage: FraudTriage in Js,
    js_institution: Institution in Js,
    python_fee: Fee in Python,
    python_refund_split: RefundSplit in Python,
    python_cashin_acceptance: CashinAcceptance in Python,
    python_fraud_triage: FraudTriage in Python,
    python_institution: Institution in Python,
}

/// Shared toolchain installs and build outputs, kept between runs (under the workspace target).
fn cache() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    let dir = target.join("policy-new");
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

fn succeeds(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why `lang`'s toolchain is unusable here, if it is.
fn missing_toolchain(lang: Lang) -> Option<String> {
    match lang {
        Lang::Rust => {
            let installed = succeeds("rustup", &["target", "list", "--installed"]).unwrap_or_default();
            (!installed.lines().any(|t| t.trim() == "wasm32-wasip2"))
                .then(|| "the wasm32-wasip2 target is not installed (rustup target add wasm32-wasip2)".into())
        }
        Lang::Js => {
            let node = succeeds("node", &["-p", "process.versions.node.split('.')[0]"]);
            let major: u32 = node.as_deref().map(str::trim).and_then(|v| v.parse().ok()).unwrap_or(0);
            if major < 20 || succeeds("npm", &["--version"]).is_none() {
                return Some("Node.js 20+ with npm is not installed".into());
            }
            None
        }
        Lang::Python => succeeds("python3", &["-c", "import venv, sys; assert sys.version_info >= (3, 10)"])
            .is_none()
            .then(|| "python3 (3.10+) with venv is not installed".into()),
    }
}

/// Runs `f` holding an exclusive lock on `name` in the cache: the tests run as parallel
/// processes and must install each toolchain once.
fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let lock = std::fs::File::create(cache().join(format!("{name}.lock"))).expect("lock file");
    lock.lock().expect("lock");
    let result = f();
    lock.unlock().expect("unlock");
    result
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The environment of `build.sh`: shared toolchains, so fifteen projects install them once.
fn build_env(lang: Lang, project: &Path) -> Vec<(String, String)> {
    let cache = cache();
    match lang {
        Lang::Rust => vec![("CARGO_TARGET_DIR".into(), cache.join("rust-target").display().to_string())],
        Lang::Js => {
            let shared = cache.join("js");
            locked("js", || {
                if !shared.join("node_modules/.bin/componentize-js").exists() {
                    std::fs::create_dir_all(&shared).unwrap();
                    std::fs::copy(project.join("package.json"), shared.join("package.json")).unwrap();
                    run(
                        Command::new("npm").args(["install", "--no-audit", "--no-fund"]).current_dir(&shared),
                        "npm install (componentize-js)",
                    );
                }
            });
            std::os::unix::fs::symlink(shared.join("node_modules"), project.join("node_modules")).unwrap();
            vec![]
        }
        Lang::Python => {
            let venv = cache.join("python-venv");
            locked("python", || {
                if !venv.join("bin/componentize-py").exists() {
                    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
                    run(
                        Command::new(venv.join("bin/pip"))
                            .args(["install", "--quiet", "-r"])
                            .arg(project.join("requirements.txt")),
                        "pip install componentize-py",
                    );
                }
            });
            let path = std::env::var("PATH").unwrap_or_default();
            vec![("PATH".into(), format!("{}:{path}", venv.join("bin").display()))]
        }
    }
}

async fn cli(words: &[&str]) -> Result<String, PolicyCliError> {
    let args = policy_cli::parse(words).unwrap_or_else(|e| panic!("{words:?} does not parse: {e}"));
    let mut out = Vec::new();
    let result = policy_cli::execute(&args, &mut out).await;
    let text = String::from_utf8(out).expect("utf-8 output");
    // On failure the report is the useful part of the panic message.
    result.map(|()| text.clone()).inspect_err(|_| eprintln!("{text}"))
}

async fn new_project_builds_validates_and_passes_its_fixtures(kind: ProjectKind, lang: Lang) {
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("my-{}", kind.as_str());
    let project = dir.path().join(&name);
    let path = project.display().to_string();
    let out = cli(&["new", &path, "--kind", kind.as_str(), "--lang", lang.as_str()]).await.expect("policy new");
    assert!(out.contains("README.md") && out.contains("fixtures.toml"), "{out}");
    for file in ["README.md", "fixtures.toml", "build.sh", "wit/policy.wit"] {
        assert!(project.join(file).is_file(), "{file} is missing");
    }
    let again = cli(&["new", &path, "--kind", kind.as_str(), "--lang", lang.as_str()]).await;
    assert!(matches!(&again, Err(PolicyCliError::Usage(m)) if m.contains("not empty")), "{again:?}");

    if let Some(why) = missing_toolchain(lang) {
        println!("SKIPPED building the {} project: {why}", lang.as_str());
        return;
    }
    let env = build_env(lang, &project);
    run(Command::new(project.join("build.sh")).envs(env), &format!("{name}/build.sh"));
    let wasm = project.join(format!("{name}.wasm"));
    let wasm = wasm.display().to_string();

    // An interpreter (JavaScript, Python) runs under the limits its README gives.
    let limits: Vec<&str> = lang.test_flags().split_whitespace().collect();
    for k in kind.kinds() {
        let mut words = vec!["validate", wasm.as_str(), "--kind", k.as_str()];
        words.extend(&limits);
        let out = cli(&words).await.unwrap_or_else(|e| panic!("validate: {e}"));
        assert!(out.contains(&format!("{k} @0.2.0")), "built against 0.2.0: {out}");
    }
    let fixtures = project.join("fixtures.toml").display().to_string();
    let mut words = vec!["test", wasm.as_str(), fixtures.as_str()];
    words.extend(&limits);
    let out = cli(&words).await.unwrap_or_else(|e| panic!("policy test: {e}"));
    for k in kind.kinds() {
        assert!(out.contains(&format!("{k}: pix:policy@0.2.0")), "built against 0.2.0: {out}");
    }
    let cases = std::fs::read_to_string(&fixtures).unwrap().matches("[[case]]").count();
    assert!(cases >= 3 * kind.kinds().len(), "{cases} cases");
    assert!(out.ends_with(&format!("{cases} cases: {cases} passed, 0 failed\n")), "{out}");
}
