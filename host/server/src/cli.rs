//! The `pix-host` command line: `serve` (default), `migrate`, `admin-token`, `sandbox`, `policy`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use pix_core::clock::{Clock, SystemClock};
use pix_store::{DbOptions, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::{AppState, router};
use crate::config::Config;
use crate::inbound::InboundDispatcher;
use crate::integrations::Integrations;
use crate::{embedded, telemetry, worker};
use pix_store::inbound::{INBOUND_QUEUE, PROCESS_INBOUND};

#[derive(Debug, Parser)]
#[command(name = "pix-host", version, about = "Pix indirect participant host (BTG, Midaz, CRM, WebAssembly policies)")]
pub struct Cli {
    /// TOML configuration file; `PIX_*` environment variables override it.
    #[arg(long, global = true, env = "PIX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Which parts this process runs: the HTTP API, the background workers, or both.
    #[arg(long, global = true, value_enum, default_value_t = Role::All)]
    pub role: Role,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Api,
    Workers,
    All,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and/or workers (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Issue a new admin credential and print its token (shown once).
    AdminToken {
        #[arg(long, default_value = "operator")]
        label: String,
    },
    /// Run the BTG, Midaz and CRM simulators alone, so a host can be pointed at them by URL.
    Sandbox {
        /// Midaz listens here, CRM on +1, BTG on +2, the control API on +3.
        #[arg(long, default_value_t = 4020)]
        base_port: u16,
        /// Where BTG webhooks go, e.g. http://127.0.0.1:4014/v1/inbound/btg/<tenant id>.
        #[arg(long)]
        webhook_url: Option<String>,
        /// HMAC secret of the webhook signature (the host's `btg_webhook.hmac_secret`).
        #[arg(long, env = "PIX_SANDBOX_WEBHOOK_SECRET", default_value = "sandbox-webhook-secret")]
        webhook_secret: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Validate, upload, activate, roll back, shadow and replay WebAssembly policies.
    Policy(crate::policy_cli::PolicyArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // A client of a running host (or offline validation): no server configuration involved.
    let command = match cli.command {
        Some(Command::Policy(args)) => return crate::policy_cli::run(args).await,
        other => other,
    };
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init_logging(&config.log);
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, cli.role).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied ({})", store.backend().as_str());
            Ok(())
        }
        Command::Sandbox { base_port, webhook_url, webhook_secret, seed } => {
            let port = |offset: u16| base_port.checked_add(offset).context("--base-port too high");
            pix_sandbox::run(pix_sandbox::SandboxConfig {
                seed,
                midaz_port: port(0)?,
                crm_port: port(1)?,
                btg_port: port(2)?,
                control_port: port(3)?,
                webhook_url,
                webhook_secret,
                ..Default::default()
            })
            .await
        }
        Command::AdminToken { label } => {
            let store = open_store(&config).await?;
            store.migrate().await.context("applying migrations")?;
            let issued = store.issue_token(None, &label, SystemClock.now()).await?;
            println!("{}", issued.token);
            Ok(())
        }
        Command::Policy(args) => crate::policy_cli::run(args).await,
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.is_embedded() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    }
    let options = DbOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
        statement_timeout: Duration::from_millis(config.database.statement_timeout_ms),
        schema: None,
    };
    let store = Store::connect(&config.database_url(), &options).await.context("connecting to the database")?;
    Ok(store.with_credential_ttl(config.cache.credential_ttl()))
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests and jobs.
pub async fn serve(mut config: Config, role: Role) -> anyhow::Result<()> {
    let store = open_store(&config).await?.with_sealer(secret_sealer(&config)?);
    store.migrate().await.context("applying migrations")?;
    let sealed = store.seal_plaintext_webhook_secrets().await.context("sealing stored webhook secrets")?;
    if sealed > 0 {
        tracing::info!(sealed, "webhook signing secrets stored in plaintext are now sealed");
    }
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding server.listen {}", config.server.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    // Where this instance's inbound worker delivers intra-PSP settlements: itself, on loopback
    // when it listens on every address.
    let self_url = {
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    // Only in demo mode is a tenant seeded and an admin token printed; otherwise
    // `pix-host admin-token` is the only way to obtain one.
    let mut demo = match config.demo_enabled() {
        true => embedded::ensure_demo(&store, clock.as_ref(), &config.data_dir, &url).await?,
        false => None,
    };
    // Without real upstreams, the simulators run in-process and the demo tenant is wired to them.
    let mut sandbox = None;
    let integrations = match config.integrations.clone() {
        Some(real) => real,
        None => {
            let secret = config.btg_webhook.hmac_secret.get_or_insert_with(random_secret).clone();
            let webhook_url = demo.as_ref().map(|d| format!("{url}/v1/inbound/btg/{}", d.tenant_id));
            let embedded = embedded::start_sandbox(config.sandbox.seed, webhook_url, &secret).await?;
            if let Some(d) = demo.as_mut() {
                let data = &embedded.data;
                store.set_tenant_ledger(d.tenant_id, &data.organization_id, &data.ledger_id, clock.now()).await?;
                d.sandbox = Some(data.clone());
                embedded::save_demo(&config.data_dir, d)?;
            }
            // The demo's dynamic QR codes point at the simulated PSP on loopback: that one socket
            // is exempt from the outbound policy, nothing else on loopback is.
            if let Some(qr) = url::Url::parse(&embedded.handle.qr_url).ok().and_then(|u| u.socket_addrs(|| None).ok()) {
                config.outbound.allow_sockets.extend(qr);
            }
            // The demo's collections are served by this host itself (`[collections] location_base`
            // unset): decoding one fetches it from the listen socket.
            if config.collections.location_base.is_empty() {
                config.outbound.allow_sockets.push(config.server.listen);
            }
            let integrations = embedded.integrations.clone();
            sandbox = Some(embedded);
            integrations
        }
    };
    if let Some(d) = &demo {
        print_demo(d, &config);
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let policies =
        crate::policies::PolicyRuntime::with_default_limits(store.clone(), clock.clone(), &config.policies.dir).await?;
    let policy_runtime = policies.clone();
    let integrations = Arc::new(
        Integrations::new(integrations)
            .with_shared_btg_identity(config.demo)
            .with_account_ttl(config.cache.account_ttl()),
    );
    let state = AppState::new(store.clone(), config, clock.clone(), integrations, policies);

    let mut background = tokio::task::JoinSet::new();
    // Every role decides (the API on requests, workers on events), so every role follows policy changes.
    crate::policies::sync::spawn(&state, &shutdown, &mut background);
    if role != Role::Api {
        spawn_workers(&state, &self_url, &shutdown, grace, &mut background);
    }
    if role != Role::Workers
        && let Some(mtls) = &state.config.btg_webhook.mtls
    {
        let ingress = crate::app::mtls_ingress_router(state.clone());
        let (addr, task) = crate::mtls::serve(mtls, ingress, shutdown.clone(), grace).await?;
        println!("BTG webhook mTLS listener on https://{addr}");
        background.spawn(async move {
            let _ = task.await;
        });
    }
    let state_config = state.config.clone();
    let app = match role {
        Role::Workers => crate::app::health_router(state),
        Role::Api | Role::All => router(state),
    };
    tracing::info!(%url, role = ?role, backend = store.backend().as_str(), "pix-host listening");
    println!("pix-host listening on {url}  (API docs: {url}/docs)");
    crate::transport::serve(listener, app, shutdown.clone(), crate::transport::HttpLimits::from_config(&state_config))
        .await?;
    shutdown.cancel();
    while background.join_next().await.is_some() {}
    policy_runtime.flush_decisions().await;
    if let Some(embedded) = sandbox {
        embedded.handle.shutdown();
    }
    store.db().close().await;
    tracing::info!("pix-host stopped");
    Ok(())
}

/// What the workers role runs in the background (money, DICT, webhooks, housekeeping), each
/// task in `background` and stopping at `shutdown` within `grace`. `self_url` is where this
/// instance's HTTP API is reached (the intra-PSP delivery posts to it).
pub fn spawn_workers(
    state: &AppState,
    self_url: &str,
    shutdown: &CancellationToken,
    grace: Duration,
    background: &mut tokio::task::JoinSet<()>,
) {
    background.spawn(worker::housekeeping(
        state.store.clone(),
        state.clock.clone(),
        Duration::from_secs(600),
        shutdown.clone(),
    ));
    background.spawn(
        worker::Worker::new(state.store.clone(), state.clock.clone(), "default", state.config.workers.clone())
            .run(shutdown.clone(), grace),
    );
    let mut inbound = InboundDispatcher::new(state.store.clone(), state.clock.clone());
    for (event_type, handler) in
        crate::dict::inbound_handlers(state).into_iter().chain(crate::transfers::inbound_handlers(state, self_url))
    {
        inbound = inbound.register(event_type, handler);
    }
    let inbound = Arc::new(inbound);
    crate::dict::spawn_workers(state, shutdown, background);
    crate::transfers::spawn_workers(state, shutdown, background);
    crate::webhooks::spawn_workers(state, shutdown, background);
    background.spawn(
        worker::Worker::new(state.store.clone(), state.clock.clone(), INBOUND_QUEUE, state.config.workers.clone())
            .handle(PROCESS_INBOUND, inbound)
            .run(shutdown.clone(), grace),
    );
}

/// Serves `app` until `shutdown` fires, with the default transport limits (header-read timeout,
/// connection cap: see `transport`); requests already accepted are answered first.
pub async fn serve_http(listener: TcpListener, app: axum::Router, shutdown: CancellationToken) -> std::io::Result<()> {
    crate::transport::serve(listener, app, shutdown, crate::transport::HttpLimits::default()).await
}

/// The key sealing secrets at rest: `security.secret_key`, or in demo mode (where validation
/// lets it be absent) one generated once and kept in `data_dir/secret.key` (mode 0600).
fn secret_sealer(config: &Config) -> anyhow::Result<pix_store::sealed::Sealer> {
    use pix_store::sealed::Sealer;
    if let Some(key) = &config.security.secret_key {
        return Sealer::from_base64(key).map_err(|e| anyhow::anyhow!("security.secret_key: {e}"));
    }
    anyhow::ensure!(config.demo_enabled(), "security.secret_key: required outside demo mode");
    let file = config.data_dir.join("secret.key");
    if file.exists() {
        let key = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        return Sealer::from_base64(&key).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()));
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    let key = Sealer::generate_key();
    embedded::write_private(&file, key.as_bytes()).with_context(|| format!("writing {}", file.display()))?;
    tracing::info!(file = %file.display(), "demo mode: generated the key sealing secrets at rest");
    Sealer::from_base64(&key).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn signal_shutdown(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested; draining");
    shutdown.cancel();
}

/// A webhook secret for the embedded simulators when none is configured.
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The operator console's address on the API's base URL.
pub fn console_url(api_url: &str) -> String {
    format!("{}/console", api_url.trim_end_matches('/'))
}

/// What the demo prints when it starts: the tenant, both tokens, where they are saved, the
/// console's address and a first call to try.
pub fn demo_banner(demo: &embedded::Demo, data_dir: &std::path::Path) -> String {
    [
        String::new(),
        format!("  Demo tenant   {} (ISPB {})", demo.tenant_name, demo.ispb),
        format!("  Tenant token  {}", demo.tenant_token),
        format!("  Admin token   {}", demo.admin_token),
        format!("  Saved in      {}", embedded::demo_file(data_dir).display()),
        format!("  Console       {} (sign in with either token)", console_url(&demo.api_url)),
        format!(
            "  Try:          curl -H \"Authorization: Bearer {}\" {}/v1/webhooks/endpoints",
            demo.tenant_token, demo.api_url
        ),
        String::new(),
    ]
    .join("\n")
}

fn print_demo(demo: &embedded::Demo, config: &Config) {
    println!("{}", demo_banner(demo, &config.data_dir));
}

#[cfg(test)]
mod banner_tests {
    use super::*;

    #[test]
    fn the_demo_banner_names_the_console_and_both_tokens() {
        let demo = embedded::Demo {
            api_url: "http://127.0.0.1:4014/".into(),
            tenant_id: uuid::Uuid::nil(),
            tenant_name: "Demo Institution".into(),
            ispb: "12345678".into(),
            tenant_token: "pix_tenant".into(),
            admin_token: "pixadm_admin".into(),
            sandbox: None,
        };
        let banner = demo_banner(&demo, std::path::Path::new("data"));
        assert!(banner.contains("Console       http://127.0.0.1:4014/console (sign in with either token)"), "{banner}");
        assert!(banner.contains("pix_tenant") && banner.contains("pixadm_admin"), "{banner}");
    }
}
