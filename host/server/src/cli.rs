//! The `pix-host` command line: `serve` (default), `migrate`, `admin-token`.

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
use crate::{embedded, telemetry, worker};

#[derive(Debug, Parser)]
#[command(
    name = "pix-host",
    version,
    about = "Pix indirect participant host (BTG, Midaz, CRM, WebAssembly policies)"
)]
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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init_logging(&config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, cli.role).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied ({})", store.backend().as_str());
            Ok(())
        }
        Command::AdminToken { label } => {
            let store = open_store(&config).await?;
            store.migrate().await.context("applying migrations")?;
            let issued = store.issue_token(None, &label, SystemClock.now()).await?;
            println!("{}", issued.token);
            Ok(())
        }
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
    Store::connect(&config.database_url(), &options)
        .await
        .context("connecting to the database")
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests and jobs.
pub async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    store.migrate().await.context("applying migrations")?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding server.listen {}", config.server.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    if config.demo
        && let Some(demo) =
            embedded::ensure_demo(&store, clock.as_ref(), &config.data_dir, &url).await?
    {
        print_demo(&demo, &config);
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let state = AppState {
        store: store.clone(),
        config: Arc::new(config),
        clock: clock.clone(),
        metrics: telemetry::metrics_handle(),
    };

    let mut background = tokio::task::JoinSet::new();
    if role != Role::Api {
        background.spawn(worker::housekeeping(
            store.clone(),
            clock.clone(),
            Duration::from_secs(600),
            shutdown.clone(),
        ));
        background.spawn(
            worker::Worker::new(
                store.clone(),
                clock.clone(),
                "default",
                state.config.workers.clone(),
            )
            .run(shutdown.clone(), grace),
        );
    }
    let app = match role {
        Role::Workers => crate::app::health_router(state),
        Role::Api | Role::All => router(state),
    };
    tracing::info!(%url, role = ?role, backend = store.backend().as_str(), "pix-host listening");
    println!("pix-host listening on {url}  (API docs: {url}/docs)");
    serve_http(listener, app, shutdown.clone()).await?;
    shutdown.cancel();
    while background.join_next().await.is_some() {}
    store.db().close().await;
    tracing::info!("pix-host stopped");
    Ok(())
}

/// Serves `app` until `shutdown` fires; requests already accepted are answered first.
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
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

fn print_demo(demo: &embedded::Demo, config: &Config) {
    println!();
    println!("  Demo tenant   {} (ISPB {})", demo.tenant_name, demo.ispb);
    println!("  Tenant token  {}", demo.tenant_token);
    println!("  Admin token   {}", demo.admin_token);
    println!(
        "  Saved in      {}",
        embedded::demo_file(&config.data_dir).display()
    );
    println!(
        "  Try:          curl -H \"Authorization: Bearer {}\" {}/v1/webhooks/endpoints",
        demo.tenant_token, demo.api_url
    );
    println!();
}
