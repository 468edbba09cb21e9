//! `policies/manifest.json`: the built components shipped with the host (written by
//! `guests/build.sh`).

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::engine::{LoadedPolicy, PolicyEngine};
use crate::error::PolicyError;
use crate::limits::ComponentLimits;
use crate::types::PolicyKind;

/// One shipped component.
#[derive(Clone, Debug, Deserialize)]
pub struct ManifestEntry {
    /// Crate name of the guest, e.g. `default-fee`.
    pub name: String,
    /// A [`PolicyKind`] name, or `institution` for a component with all four.
    pub kind: String,
    /// WIT world it was built for.
    pub world: String,
    /// File name relative to the manifest.
    pub file: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// The component's own limits (absent: the engine defaults).
    #[serde(default)]
    pub limits: ComponentLimits,
}

#[derive(Deserialize)]
struct Manifest {
    policies: Vec<ManifestEntry>,
}

/// Load every component listed in `dir/manifest.json`, checking each file's sha256 and that it
/// exports exactly the kinds its entry claims.
pub fn load_manifest(engine: &PolicyEngine, dir: &Path) -> Result<Vec<(ManifestEntry, LoadedPolicy)>, PolicyError> {
    load_manifest_where(engine, dir, |_| true)
}

/// [`load_manifest`] for the entries `wanted` selects only (compiling an interpreter component
/// takes seconds, so a caller that needs one loads one).
pub fn load_manifest_where(
    engine: &PolicyEngine,
    dir: &Path,
    wanted: impl Fn(&ManifestEntry) -> bool,
) -> Result<Vec<(ManifestEntry, LoadedPolicy)>, PolicyError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| PolicyError::Manifest(format!("cannot read {}: {e}", path.display())))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| PolicyError::Manifest(format!("{}: {e}", path.display())))?;
    manifest
        .policies
        .into_iter()
        .filter(|entry| wanted(entry))
        .map(|entry| {
            let file = dir.join(&entry.file);
            let bytes = std::fs::read(&file)
                .map_err(|e| PolicyError::Manifest(format!("cannot read {}: {e}", file.display())))?;
            let sha = hex::encode(Sha256::digest(&bytes));
            if sha != entry.sha256 {
                return Err(PolicyError::Manifest(format!(
                    "{}: sha256 is {sha}, manifest says {}",
                    file.display(),
                    entry.sha256
                )));
            }
            let expected: Vec<PolicyKind> = match entry.kind.as_str() {
                "institution" => PolicyKind::ALL.to_vec(),
                name => vec![
                    PolicyKind::parse(name)
                        .ok_or_else(|| PolicyError::Manifest(format!("{}: unknown kind {name}", entry.name)))?,
                ],
            };
            let policy = engine.load_with(&bytes, entry.limits)?;
            if policy.kinds() != expected.as_slice() {
                return Err(PolicyError::Manifest(format!(
                    "{}: exports {:?}, manifest says {}",
                    entry.name,
                    policy.kinds(),
                    entry.kind
                )));
            }
            Ok((entry, policy))
        })
        .collect()
}
