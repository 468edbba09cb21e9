//! The trck.002 reporter (issue #14): reports every recorded intra-PSP settlement
//! (`pix_store::internal_reports`) to BACEN through the tenant's BTG, and settles each report's
//! status from BTG's camt.025 (`on_receipt`) or, when that webhook is missed, by asking BTG.
//!
//! It only reads and writes report rows: a report that fails is retried with capped exponential
//! backoff and never touches money. Several reporters may run (one per instance): each claims
//! whole reports under a lease (`claim_due_reports`), and a retried report keeps its id, which is
//! BTG's idempotency key, so a report is never submitted twice as two reports.

use std::collections::BTreeMap;
use std::time::Duration;

use pix_integrations::Money;
use pix_integrations::btg::{InternalTransaction, InternalTransactionsReport, ReportOutcome, ReportReceipt};
use pix_store::internal_reports::{self as store, InternalReport, ReportState};
use pix_store::tenants::Tenant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{App, AppResult};

/// The SLA gauge's age: settlements completed longer ago than this and not accepted by BTG.
pub const UNREPORTED_AFTER: chrono::Duration = chrono::Duration::seconds(240);

/// How the reporter batches, retries and falls back.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// How often the reporter looks (real time).
    pub poll_every: Duration,
    /// Settlements per report.
    pub batch_size: i64,
    /// Reports submitted (or queried) per pass.
    pub reports_per_pass: i64,
    /// Retry delay after the first failed submission; doubled each time up to `backoff_cap`.
    pub backoff_base: chrono::Duration,
    pub backoff_cap: chrono::Duration,
    /// How long a claimed report is left to its reporter before another may take it.
    pub lease: chrono::Duration,
    /// A report BTG accepted with no camt.025 after this long is asked for at BTG (and again
    /// every `confirm_after` while it is still processing).
    pub confirm_after: chrono::Duration,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            poll_every: Duration::from_secs(5),
            batch_size: 20,
            reports_per_pass: 50,
            backoff_base: chrono::Duration::seconds(5),
            backoff_cap: chrono::Duration::seconds(60),
            lease: chrono::Duration::seconds(60),
            confirm_after: chrono::Duration::seconds(120),
        }
    }
}

impl ReportSettings {
    /// The delay before the next submission after `failures` failed ones (≥ 1).
    pub fn backoff(&self, failures: i64) -> chrono::Duration {
        let exponent = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let millis = self.backoff_base.num_milliseconds().saturating_mul(1_i64 << exponent);
        chrono::Duration::milliseconds(millis.min(self.backoff_cap.num_milliseconds()))
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReportPass {
    /// Reports accepted by BTG.
    pub submitted: usize,
    /// Reports whose submission failed (retried later).
    pub failed: usize,
    /// Submitted reports asked for at BTG (missed camt.025).
    pub queried: usize,
    /// Settlements completed more than 240 s ago and not accepted yet, across tenants.
    pub unreported_over_240s: i64,
}

impl ReportPass {
    fn busy(&self, settings: &ReportSettings) -> bool {
        (self.submitted + self.failed + self.queried) as i64 >= settings.reports_per_pass
    }
}

/// Reports until `shutdown`: at once while there is a full pass of work, else every `poll_every`.
pub async fn run(app: App, settings: ReportSettings, shutdown: CancellationToken) {
    tracing::info!(every = ?settings.poll_every, batch = settings.batch_size, "trck.002 reporter started");
    loop {
        match report_once(&app, &settings).await {
            Ok(pass) if pass.busy(&settings) => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "trck.002 reporter pass failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(settings.poll_every) => {}
        }
    }
    tracing::info!("trck.002 reporter stopped");
}

/// One pass: batch new settlements, submit due reports, ask BTG about reports whose camt.025 is
/// overdue, refresh the SLA gauge.
pub async fn report_once(app: &App, settings: &ReportSettings) -> AppResult<ReportPass> {
    let mut pass = ReportPass::default();
    // New settlements into reports of `batch_size`, per tenant, at most `reports_per_pass` new
    // reports a pass (the rest wait for the next pass, which comes at once when this one was full).
    let mut formed = 0;
    for tenant in store::tenants_with_unbatched(&app.store, settings.reports_per_pass).await? {
        while formed < settings.reports_per_pass {
            let n = store::form_batch(&app.store, tenant, &Uuid::now_v7().to_string(), settings.batch_size).await?;
            formed += 1;
            if (n as i64) < settings.batch_size {
                break;
            }
        }
    }

    let now = app.clock.now();
    let due = store::claim_due_reports(
        &app.store,
        ReportState::Pending,
        now,
        now + settings.lease,
        settings.reports_per_pass,
    )
    .await?;
    for ((tenant, report_id), rows) in by_report(due) {
        match submit(app, settings, tenant, &report_id, &rows).await {
            Ok(true) => pass.submitted += 1,
            Ok(false) => pass.failed += 1,
            Err(e) => {
                pass.failed += 1;
                tracing::warn!(%tenant, report = %report_id, error = %e, "trck.002 report not submitted; retried after its lease");
            }
        }
    }

    let now = app.clock.now();
    let overdue = store::claim_due_reports(
        &app.store,
        ReportState::Submitted,
        now,
        now + settings.lease,
        settings.reports_per_pass,
    )
    .await?;
    for ((tenant, report_id), rows) in by_report(overdue) {
        pass.queried += 1;
        if let Err(e) = query(app, settings, tenant, &report_id, &rows).await {
            tracing::warn!(%tenant, report = %report_id, error = %e, "trck.002 status query failed; asked again after its lease");
        }
    }

    pass.unreported_over_240s = store::count_unreported(&app.store, app.clock.now() - UNREPORTED_AFTER).await?;
    metrics::gauge!("pix_trck002_unreported_over_240s").set(pass.unreported_over_240s as f64);
    Ok(pass)
}

fn by_report(rows: Vec<InternalReport>) -> BTreeMap<(Uuid, String), Vec<InternalReport>> {
    let mut reports: BTreeMap<(Uuid, String), Vec<InternalReport>> = BTreeMap::new();
    for r in rows {
        if let Some(report_id) = r.report_id.clone() {
            reports.entry((r.settlement.tenant_id, report_id)).or_default().push(r);
        }
    }
    reports
}

async fn tenant_of(app: &App, tenant: Uuid) -> AppResult<Option<Tenant>> {
    let found = app.store.tenant(tenant).await?;
    if found.is_none() {
        tracing::error!(%tenant, "trck.002 rows of a tenant that no longer exists are left unreported");
    }
    Ok(found)
}

/// The wire form of a report's rows.
pub fn report_of(report_id: &str, rows: &[InternalReport]) -> InternalTransactionsReport {
    InternalTransactionsReport {
        report_id: report_id.to_owned(),
        transactions: rows
            .iter()
            .map(|r| InternalTransaction {
                end_to_end_id: r.settlement.end_to_end_id.clone(),
                amount: Money::from_centavos(r.settlement.amount),
                settled_at: r.settlement.settled_at,
                debtor_tax_id: r.settlement.debtor_tax_id.clone(),
                creditor_tax_id: r.settlement.creditor_tax_id.clone(),
                kind: r.settlement.kind.as_str().to_owned(),
                return_identification: r.settlement.return_identification.clone(),
            })
            .collect(),
    }
}

/// Submits one claimed report; `Ok(false)` when BTG did not accept it (retried with backoff).
async fn submit(
    app: &App,
    settings: &ReportSettings,
    tenant: Uuid,
    report_id: &str,
    rows: &[InternalReport],
) -> AppResult<bool> {
    let Some(t) = tenant_of(app, tenant).await? else { return Ok(false) };
    let clients = app.upstreams.for_tenant(&t)?;
    let report = report_of(report_id, rows);
    match clients.btg.submit_internal_transactions_report(&report).await {
        Ok(receipt) => {
            let now = app.clock.now();
            let moved =
                store::mark_submitted(&app.store, tenant, report_id, &receipt.id, now, now + settings.confirm_after)
                    .await?;
            for r in &moved {
                observe_latency(r);
            }
            tracing::info!(%tenant, report = %report_id, btg = %receipt.id, count = moved.len(), "trck.002 report accepted by BTG");
            metrics::counter!("pix_trck002_reports_total", "outcome" => "accepted").increment(1);
            if receipt.outcome() != ReportOutcome::Processing {
                on_receipt(app, tenant, &receipt).await?;
            }
            Ok(true)
        }
        Err(e) => {
            let failures = rows.iter().map(|r| r.attempts).max().unwrap_or(0) + 1;
            let now = app.clock.now();
            let retry_at = now + settings.backoff(failures);
            store::mark_failed(&app.store, tenant, report_id, &e.to_string(), now, retry_at).await?;
            tracing::warn!(%tenant, report = %report_id, failures, %retry_at, error = %e, "trck.002 report refused or unanswered; retried with backoff");
            metrics::counter!("pix_trck002_reports_total", "outcome" => "failed").increment(1);
            Ok(false)
        }
    }
}

fn observe_latency(r: &InternalReport) {
    if let Some(accepted) = r.accepted_at {
        let seconds = (accepted - r.recorded_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("pix_trck002_report_latency_seconds").record(seconds);
    }
}

/// The fallback for a missed camt.025: asks BTG how the report stands.
async fn query(
    app: &App,
    settings: &ReportSettings,
    tenant: Uuid,
    report_id: &str,
    rows: &[InternalReport],
) -> AppResult<()> {
    let Some(t) = tenant_of(app, tenant).await? else { return Ok(()) };
    let Some(btg_id) = rows.iter().find_map(|r| r.btg_report_id.clone()) else {
        return Err(crate::AppError::Internal(format!("submitted report {report_id} without BTG's id")));
    };
    let clients = app.upstreams.for_tenant(&t)?;
    let receipt = clients
        .btg
        .internal_transactions_report(&btg_id)
        .await
        .map_err(crate::AppError::upstream("trck.002 report status"))?;
    if receipt.report_id != report_id {
        return Err(crate::AppError::Internal(format!(
            "BTG report {btg_id} is {} for BTG, {report_id} for us",
            receipt.report_id
        )));
    }
    metrics::counter!("pix_trck002_status_queries_total").increment(1);
    if receipt.outcome() == ReportOutcome::Processing {
        let now = app.clock.now();
        store::recheck_later(&app.store, tenant, report_id, now, now + settings.confirm_after).await?;
        return Ok(());
    }
    tracing::warn!(%tenant, report = %report_id, status = %receipt.status, "trck.002 camt.025 missed; status read from BTG");
    on_receipt(app, tenant, &receipt).await
}

/// A camt.025 (`PIX_INTERNAL_TRANSACTIONS_REPORT`, or the status BTG answers a query with) for
/// one of the tenant's reports. Confirmed: the rows are CONFIRMED. Rejected: rows rejected for
/// the first time are reported again, each alone; rows rejected again are ERROR (operators are
/// told by the log and `pix_trck002_rejected_total`). A receipt still processing, for an unknown
/// report, or delivered again changes nothing.
pub async fn on_receipt(app: &App, tenant: Uuid, receipt: &ReportReceipt) -> AppResult<()> {
    let now = app.clock.now();
    match receipt.outcome() {
        ReportOutcome::Processing => {}
        ReportOutcome::Confirmed => {
            let moved = store::confirm(
                &app.store,
                tenant,
                &receipt.report_id,
                &receipt.id,
                receipt.receipt_code.as_deref(),
                now,
            )
            .await?;
            for r in moved.iter().filter(|r| r.accepted_at == r.answered_at) {
                // Its acceptance answer was lost: the confirmation is the acceptance.
                observe_latency(r);
            }
            if !moved.is_empty() {
                tracing::info!(%tenant, report = %receipt.report_id, count = moved.len(), "trck.002 report confirmed (camt.025)");
                metrics::counter!("pix_trck002_settlements_total", "outcome" => "confirmed")
                    .increment(moved.len() as u64);
            }
        }
        ReportOutcome::Rejected => {
            let r = store::reject(&app.store, tenant, &receipt.report_id, receipt.receipt_code.as_deref(), now).await?;
            if r.requeued > 0 {
                tracing::warn!(%tenant, report = %receipt.report_id, code = ?receipt.receipt_code, count = r.requeued,
                    "trck.002 report rejected (camt.025); each settlement is reported again alone");
                metrics::counter!("pix_trck002_settlements_total", "outcome" => "requeued").increment(r.requeued);
            }
            if r.failed > 0 {
                tracing::error!(%tenant, report = %receipt.report_id, code = ?receipt.receipt_code, count = r.failed,
                    "trck.002 settlement rejected twice (camt.025): left in ERROR for operators");
                metrics::counter!("pix_trck002_rejected_total").increment(r.failed);
            }
        }
    }
    Ok(())
}
