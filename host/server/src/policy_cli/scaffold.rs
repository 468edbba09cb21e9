//! `pix-host policy new`: a ready policy project (source, build script, README, fixtures and the
//! contract's WIT) for one kind, or all four (`institution`), in Rust, JavaScript or Python.
//!
//! The templates are compiled into the binary (`templates/policy-new/`), so the command works
//! anywhere. Each language has a skeleton with the helpers and one rule file per kind; an
//! `institution` project gets all four rules in one source file. The fixtures are shared: the
//! starter rule of a kind decides the same in every language. Substitution is a fixed handful of
//! `{{placeholder}}`s, nothing conditional, so plain replacement is enough.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use pix_policy::{ContractVersion, PolicyKind};

/// What the project implements: one decision, or all four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProjectKind {
    Fee,
    RefundSplit,
    CashinAcceptance,
    FraudTriage,
    Institution,
}

impl ProjectKind {
    pub const ALL: [ProjectKind; 5] = [
        ProjectKind::Fee,
        ProjectKind::RefundSplit,
        ProjectKind::CashinAcceptance,
        ProjectKind::FraudTriage,
        ProjectKind::Institution,
    ];

    /// The decisions the component exports.
    pub fn kinds(self) -> Vec<PolicyKind> {
        match self {
            ProjectKind::Fee => vec![PolicyKind::Fee],
            ProjectKind::RefundSplit => vec![PolicyKind::RefundSplit],
            ProjectKind::CashinAcceptance => vec![PolicyKind::CashinAcceptance],
            ProjectKind::FraudTriage => vec![PolicyKind::FraudTriage],
            ProjectKind::Institution => PolicyKind::ALL.to_vec(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectKind::Institution => "institution",
            one => one.kinds()[0].as_str(),
        }
    }

    /// The WIT world the component targets.
    fn world(self) -> String {
        match self {
            ProjectKind::Institution => "institution".into(),
            one => format!("{}-policy", one.as_str()),
        }
    }
}

/// The language of the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Rust, Lang::Js, Lang::Python];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
        }
    }

    /// What `policy test` needs beyond the production limits to run this language's component:
    /// an interpreter (JavaScript, Python) carries a heap snapshot of ~10 MiB and spends far more
    /// fuel per decision than a Rust rule.
    pub fn test_flags(self) -> &'static str {
        match self {
            Lang::Rust => "",
            Lang::Js | Lang::Python => " --memory-mib 64 --fuel 100000000 --deadline-ms 250",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        }
    }
}

const WIT: &str = include_str!("../../../../wit/policy.wit");

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../../templates/policy-new/", $path))
    };
}

/// One kind's starter rule in each language, and its fixtures.
struct Rule {
    kind: PolicyKind,
    rust: &'static str,
    js: &'static str,
    python: &'static str,
    fixtures: &'static str,
}

const RULES: [Rule; 4] = [
    Rule {
        kind: PolicyKind::Fee,
        rust: template!("rust/fee.rs"),
        js: template!("js/fee.js"),
        python: template!("python/fee.py"),
        fixtures: template!("fixtures/fee.toml"),
    },
    Rule {
        kind: PolicyKind::RefundSplit,
        rust: template!("rust/refund-split.rs"),
        js: template!("js/refund-split.js"),
        python: template!("python/refund-split.py"),
        fixtures: template!("fixtures/refund-split.toml"),
    },
    Rule {
        kind: PolicyKind::CashinAcceptance,
        rust: template!("rust/cashin-acceptance.rs"),
        js: template!("js/cashin-acceptance.js"),
        python: template!("python/cashin-acceptance.py"),
        fixtures: template!("fixtures/cashin-acceptance.toml"),
    },
    Rule {
        kind: PolicyKind::FraudTriage,
        rust: template!("rust/fraud-triage.rs"),
        js: template!("js/fraud-triage.js"),
        python: template!("python/fraud-triage.py"),
        fixtures: template!("fixtures/fraud-triage.toml"),
    },
];

/// The files of a `lang` project (paths relative to its directory); `{{rules}}` is where the
/// kinds' rules go in the source skeleton.
fn skeleton(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", template!("rust/Cargo.toml")),
            ("Cargo.lock", template!("rust/Cargo.lock")),
            ("build.sh", template!("rust/build.sh")),
            (".gitignore", template!("rust/gitignore")),
            ("src/lib.rs", template!("rust/lib.rs")),
        ],
        Lang::Js => vec![
            ("package.json", template!("js/package.json")),
            ("build.sh", template!("js/build.sh")),
            (".gitignore", template!("js/gitignore")),
            ("policy.js", template!("js/policy.js")),
        ],
        Lang::Python => vec![
            ("requirements.txt", template!("python/requirements.txt")),
            ("build.sh", template!("python/build.sh")),
            (".gitignore", template!("python/gitignore")),
            ("app.py", template!("python/app.py")),
        ],
    }
}

const README: &str = template!("README.md");
const BUILD_STEPS: [(Lang, &str); 3] = [
    (Lang::Rust, template!("rust/README-build.md")),
    (Lang::Js, template!("js/README-build.md")),
    (Lang::Python, template!("python/README-build.md")),
];

/// A project name: lowercase letters, digits and dashes, starting with a letter (a valid Cargo
/// package, npm package and file name alike).
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a project name: use lowercase letters, digits and dashes, starting with a letter"))
    }
}

/// Write the project into `dir` (which must not exist yet, or be empty); returns the files
/// written, relative to `dir`.
pub fn create(dir: &Path, kind: ProjectKind, lang: Lang) -> Result<Vec<PathBuf>, String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} does not end in a project name", dir.display()))?;
    check_name(name)?;
    if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let rules: Vec<&Rule> = RULES.iter().filter(|r| kind.kinds().contains(&r.kind)).collect();
    let source: String = rules
        .iter()
        .map(|r| match lang {
            Lang::Rust => r.rust,
            Lang::Js => r.js,
            Lang::Python => r.python,
        })
        .collect();
    let fixtures = format!(
        "# Cases for `pix-host policy test {name}.wasm fixtures.toml`: an input and the decision the policy\n\
         # must return (`expect`), or the error class it must fail with so the host applies the kind's\n\
         # fail-safe (`failsafe`; \"any\" for any failure). Inputs are written as in the decision log.\n{}",
        rules.iter().map(|r| r.fixtures).collect::<String>()
    );
    let build_steps = BUILD_STEPS.iter().find(|(l, _)| *l == lang).map_or("", |(_, text)| text);
    let vars = [
        ("{{rules}}", source.as_str()),
        ("{{build}}", build_steps),
        ("{{name}}", name),
        ("{{crate}}", &name.replace('-', "_")),
        ("{{world}}", &kind.world()),
        ("{{kind}}", kind.as_str()),
        ("{{upload_kind}}", kind.kinds()[0].as_str()),
        ("{{lang}}", lang.title()),
        ("{{test_flags}}", lang.test_flags()),
        ("{{contract}}", ContractVersion::LATEST.as_str()),
    ];
    let render = |text: &str| vars.iter().fold(text.to_owned(), |text, (key, value)| text.replace(key, value));
    let mut files: Vec<(PathBuf, String)> =
        skeleton(lang).into_iter().map(|(path, text)| (PathBuf::from(path), render(text))).collect();
    files.push(("README.md".into(), render(README)));
    files.push(("fixtures.toml".into(), fixtures));
    files.push(("wit/policy.wit".into(), WIT.to_owned()));

    let io = |path: &Path, e: std::io::Error| format!("cannot write {}: {e}", path.display());
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&full, text).map_err(|e| io(&full, e))?;
        if path.as_os_str() == "build.sh" {
            make_executable(&full).map_err(|e| io(&full, e))?;
        }
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
