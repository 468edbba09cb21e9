//! The embedded default: with no configuration, seed a demo tenant and credentials once and
//! keep them in `data/demo.json` (mode 0600) so every start can print them again.

use std::path::{Path, PathBuf};

use pix_core::clock::Clock;
use pix_store::Store;
use pix_store::tenants::NewTenant;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a newcomer needs to call the demo; also read by scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Demo {
    pub api_url: String,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub ispb: String,
    pub tenant_token: String,
    pub admin_token: String,
    /// The simulated institution (accounts, aliases, the other participant's keys, control URL);
    /// refreshed at every start since the simulators live in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<pix_sandbox::DemoData>,
}

pub const DEMO_TENANT: &str = "Demo Institution";
pub const DEMO_ISPB: &str = "12345678";

pub fn demo_file(data_dir: &Path) -> PathBuf {
    data_dir.join("demo.json")
}

/// Creates the demo tenant on an empty database, or reloads the demo file of an earlier start.
/// Returns `None` when the database has tenants but no demo file (a real deployment).
pub async fn ensure_demo(
    store: &Store,
    clock: &dyn Clock,
    data_dir: &Path,
    api_url: &str,
) -> anyhow::Result<Option<Demo>> {
    let file = demo_file(data_dir);
    if file.exists() {
        let mut demo: Demo = serde_json::from_slice(&std::fs::read(&file)?)?;
        if store.tenant(demo.tenant_id).await?.is_some() {
            if demo.api_url != api_url {
                demo.api_url = api_url.to_owned();
                write_private(&file, &serde_json::to_vec_pretty(&demo)?)?;
            }
            return Ok(Some(demo));
        }
    }
    if !store.list_tenants().await?.is_empty() {
        return Ok(None);
    }
    let now = clock.now();
    let tenant = store
        .create_tenant(
            NewTenant {
                name: DEMO_TENANT.into(),
                ispb: DEMO_ISPB.into(),
                midaz_organization_id: None,
                midaz_ledger_id: None,
                settings: serde_json::json!({}),
                btg: None,
            },
            now,
        )
        .await?;
    let tenant_token = store.issue_token(Some(tenant.id), "demo", now).await?;
    let admin_token = store.issue_token(None, "demo admin", now).await?;
    let demo = Demo {
        api_url: api_url.to_owned(),
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        ispb: tenant.ispb,
        tenant_token: tenant_token.token,
        admin_token: admin_token.token,
        sandbox: None,
    };
    std::fs::create_dir_all(data_dir)?;
    write_private(&file, &serde_json::to_vec_pretty(&demo)?)?;
    Ok(Some(demo))
}

/// Saves the demo with the simulators' current data.
pub fn save_demo(data_dir: &Path, demo: &Demo) -> anyhow::Result<()> {
    write_private(&demo_file(data_dir), &serde_json::to_vec_pretty(demo)?)?;
    Ok(())
}

/// The demo file holds bearer tokens (and `secret.key` a key): readable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// The in-process simulators of the embedded default, and the configuration that points the
/// clients at them.
pub struct EmbeddedSandbox {
    pub handle: pix_sandbox::SandboxHandle,
    pub data: pix_sandbox::DemoData,
    pub integrations: crate::config::IntegrationsConfig,
}

/// Starts the simulators, seeds the demo institution, and sends BTG webhooks to `webhook_url`
/// signed with `webhook_secret`.
pub async fn start_sandbox(
    seed: u64,
    webhook_url: Option<String>,
    webhook_secret: &str,
) -> anyhow::Result<EmbeddedSandbox> {
    let config = pix_sandbox::SandboxConfig {
        seed,
        ispb: DEMO_ISPB.into(),
        webhook_url,
        webhook_secret: webhook_secret.to_owned(),
        ..Default::default()
    };
    let credentials = config.btg_credentials.clone();
    let handle = pix_sandbox::Sandbox::start(config).await?;
    let data = pix_sandbox::seed_demo(&handle)?;
    let integrations: crate::config::IntegrationsConfig = serde_json::from_value(serde_json::json!({
        "midaz": { "onboarding_url": data.midaz_url, "organization_id": data.organization_id, "ledger_id": data.ledger_id },
        "crm": { "base_url": data.crm_url, "organization_id": data.organization_id, "ledger_id": data.ledger_id },
        "btg": { "base_url": data.btg_url, "client_id": credentials.client_id, "client_secret": credentials.client_secret, "ispb": data.ispb },
    }))?;
    Ok(EmbeddedSandbox { handle, data, integrations })
}
