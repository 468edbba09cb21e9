//! Keeping an instance on the active policy versions: PostgreSQL `LISTEN/NOTIFY` wakes it at
//! once; polling a generation value catches whatever a lost notification (or SQLite, which has
//! none) would miss. In development, `policies.watch` also reloads `policies/` when it changes.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::app::AppState;

pub const CHANNEL: &str = "pix_policy_changes";

/// Reloads bindings whenever another instance changes them.
pub async fn follow_changes(state: AppState, shutdown: CancellationToken) {
    let poll = Duration::from_millis(state.config.policies.poll_interval_ms);
    let mut listener = state.store.db().listen(CHANNEL).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "LISTEN failed; polling only");
        None
    });
    let mut seen = state.store.policy_generation().await.ok();
    loop {
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = notified => {}
            _ = tokio::time::sleep(poll) => {}
        }
        let current = match state.store.policy_generation().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "reading policy generation failed");
                continue;
            }
        };
        if seen.as_ref() != Some(&current) {
            match state.policies.reload().await {
                Ok(()) => seen = Some(current),
                Err(e) => tracing::error!(error = %e, "reloading policies failed; keeping the current versions"),
            }
        }
    }
}

/// Development mode: reload the shipped components when `policies/manifest.json` changes.
pub async fn watch_directory(state: AppState, shutdown: CancellationToken) {
    let manifest = state.config.policies.dir.join("manifest.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(&manifest);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let now = modified(&manifest);
        if now != seen {
            seen = now;
            match state.policies.load_shipped(&state.config.policies.dir).await {
                Ok(()) => tracing::info!(dir = %state.config.policies.dir.display(), "shipped policies reloaded"),
                Err(e) => tracing::error!(error = %e, "reloading shipped policies failed; keeping the current ones"),
            }
        }
    }
}

/// Deletes decision records past the retention period, daily.
pub async fn retention(state: AppState, shutdown: CancellationToken) {
    let keep = chrono::Duration::days(i64::from(state.config.policies.decision_retention_days));
    loop {
        match state.store.purge_policy_decisions(state.clock.now() - keep).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old policy decisions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging policy decisions failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(24 * 3600)) => {}
        }
    }
}

pub fn spawn(state: &AppState, shutdown: &CancellationToken, tasks: &mut tokio::task::JoinSet<()>) {
    tasks.spawn(follow_changes(state.clone(), shutdown.clone()));
    tasks.spawn(retention(state.clone(), shutdown.clone()));
    if state.config.policies.watch {
        tasks.spawn(watch_directory(state.clone(), shutdown.clone()));
    }
}
