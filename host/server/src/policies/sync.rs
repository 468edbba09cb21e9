//! Keeping an instance on the active policy versions: PostgreSQL `LISTEN/NOTIFY` wakes it at
//! once; polling a generation value catches whatever a lost notification (or SQLite, which has
//! none) would miss. In development, `policies.watch` also reloads `policies/` when it changes.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use pix_store::{Notifications, Notified};

use crate::app::AppState;

pub const CHANNEL: &str = "pix_policy_changes";

/// Reloads bindings whenever another instance changes them.
pub async fn follow_changes(state: AppState, shutdown: CancellationToken) {
    let poll = Duration::from_millis(state.config.policies.poll_interval_ms);
    let mut listener = listen(&state).await;
    // Unknown at first: the runtime loaded the bindings before LISTEN began, so a change committed
    // in between would otherwise be missed; the first check reloads (unchanged bindings are skipped).
    let mut seen: Option<String> = None;
    loop {
        match state.store.policy_generation().await {
            Ok(current) if seen.as_ref() != Some(&current) => match state.policies.reload().await {
                Ok(()) => seen = Some(current),
                Err(e) => tracing::error!(error = %e, "reloading policies failed; keeping the current versions"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading policy generation failed"),
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => Some(l.recv().await),
                None => std::future::pending().await,
            }
        };
        let woke = tokio::select! {
            _ = shutdown.cancelled() => return,
            woke = notified => woke,
            _ = tokio::time::sleep(poll) => None,
        };
        match woke {
            Some(Ok(Notified::Payload(_))) => {}
            // Notifications sent while the connection was down are lost: the next check catches up.
            Some(Ok(Notified::Reconnected)) => tracing::info!("policy change listener reconnected"),
            // The database is unreachable: poll (and LISTEN again) instead of spinning on the error.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "policy change listener failed; polling until LISTEN works again");
                listener = None;
            }
            None if listener.is_none() => listener = listen(&state).await,
            None => {}
        }
    }
}

/// `LISTEN` on the policy channel; `None` on SQLite, or while PostgreSQL refuses (then polling
/// carries on alone and the next poll tries again).
async fn listen(state: &AppState) -> Option<Notifications> {
    state.store.db().listen(CHANNEL).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "LISTEN failed; polling only for now");
        None
    })
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

/// Deletes decision records (and the payments' BTG call records) past the retention period, daily.
pub async fn retention(state: AppState, shutdown: CancellationToken) {
    let keep = chrono::Duration::days(i64::from(state.config.policies.decision_retention_days));
    loop {
        match state.store.purge_policy_decisions(state.clock.now() - keep).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old policy decisions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging policy decisions failed"),
        }
        // The payments' BTG call records (console timeline) share the decision log's retention.
        match state.store.purge_upstream_calls(state.clock.now() - keep).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old upstream call records removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging upstream call records failed"),
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
