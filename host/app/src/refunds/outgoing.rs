//! Returning a Pix we received (type CASHOUT): admission (`create`: the original, the window, the
//! remaining amount, the accounts to debit), then the money steps (Midaz hold on those accounts →
//! one pacs.004 at BTG for the total) and BTG's verdict, which commits or releases the hold.

use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::ids::new_id;
use pix_core::refund::{
    OperationsError, OutgoingEvent, OutgoingRefund, RefundOperation, RefundReason, RefundState, SplitSource,
    check_operations,
};
use pix_core::transfer::{CashinState, Direction, Failure, LedgerTxId, TransferState};
use pix_integrations::btg::{Reversal, ReversalOrder, ReversalReason};
use pix_integrations::midaz::TransactionRequest;
use pix_integrations::{IntegrationError, Money as UpstreamMoney};
use pix_policy::{AccountRole, OriginalOperation, RefundSplitDecision, RefundSplitInput};
use pix_store::cautionary_blocks::CautionaryBlock;
use pix_store::refunds::{Metadata, Refund, insert_refund, reserve_refund, save_refund};
use pix_store::tenants::Tenant;
use pix_store::transfers::Transfer;
use uuid::Uuid;

use super::{REFUND_WINDOW_DAYS, record_event, reload, save};
use crate::transfers::{ASSET, EXTERNAL, ledger_key, ledger_refusal, leg, refuse_short_balance};
use crate::{App, AppError, AppResult, TenantClients};

/// A request to return (part of) a received Pix.
pub struct RefundRequest<'a> {
    pub tenant: &'a Tenant,
    /// The account that received the Pix (the caller's `X-Account-Id`).
    pub account_id: Uuid,
    pub transfer_id: Uuid,
    pub reason: RefundReason,
    /// Centavos, > 0.
    pub amount: i64,
    pub description: Option<String>,
    pub metadata: Metadata,
    /// A distributed refund's accounts; `None` lets the single-account flow or the tenant's
    /// refund-split policy choose.
    pub operations: Option<Vec<RefundOperation>>,
    /// A MED cautionary block HELD for exactly `amount` on the Pix: the refund takes its hold
    /// over (debiting the blocked account only) instead of placing one, and the block is marked
    /// RETURNED in the refund's insert transaction (see `crate::med::adoptable`).
    pub adopt: Option<&'a CautionaryBlock>,
    /// The request's `X-Idempotency` key. The refund's id is derived from it, so a retry of that
    /// request after a crash (the key's lock lapsed before its answer was stored) gets the refund
    /// back instead of returning the same money a second time.
    pub idempotency_key: Option<&'a str>,
}

/// Admits a refund and runs its money steps inline. Returns it as it stands: PROCESSING once BTG
/// accepted the reversal, PENDING while a step's outcome is unknown (the sweeper finishes it),
/// or FAILED. Every refusal happens before anything is held or sent.
pub async fn create(app: &App, req: RefundRequest<'_>) -> AppResult<Refund> {
    let RefundRequest {
        tenant,
        account_id,
        transfer_id,
        reason,
        amount,
        description,
        metadata,
        operations,
        adopt,
        idempotency_key,
    } = req;
    let id = idempotency_key.map_or_else(new_id, |key| keyed_id(tenant.id, transfer_id, key));
    if idempotency_key.is_some()
        && let Some(retried) = app.store.refund(tenant.id, id).await?
        && retried.account_id == account_id
    {
        return answer(retried);
    }
    let now = app.clock.now();
    let original =
        app.store.transfer(tenant.id, transfer_id).await?.filter(|t| t.account_id == account_id).ok_or_else(|| {
            AppError::refused(ErrorCode::TransferNotFound, "no transfer with this id for this account")
        })?;
    let credit = refundable(&original, now)?;
    if let Some(ops) = &operations {
        check_operations(amount, ops).map_err(operations_refused)?;
    }
    let clients = app.upstreams.for_tenant(tenant)?;
    let credits = original_credits(&clients, &original, credit).await?;
    if let Some(block) = adopt
        && (!crate::med::adoptable(block, amount) || block.transfer_id != original.id)
    {
        return Err(AppError::Internal(format!("cautionary block {} cannot be adopted by this refund", block.id)));
    }
    let (operations, split) = match (adopt, operations) {
        (Some(block), _) => (
            in_original(vec![RefundOperation { account_alias: block.account_alias.clone(), amount }], &credits)?,
            SplitSource::CautionaryBlock,
        ),
        (None, Some(ops)) => (in_original(ops, &credits)?, SplitSource::Request),
        (None, None) if credits.len() == 1 => (
            vec![RefundOperation { account_alias: credits[0].account_alias.clone(), amount }],
            SplitSource::SingleAccount,
        ),
        (None, None) => policy_split(app, &clients, tenant, &original, amount, credits).await?,
    };
    let mut refund = Refund {
        id,
        tenant_id: tenant.id,
        account_id,
        transfer_id: original.id,
        state: RefundState::Outgoing(OutgoingRefund::New),
        original_end_to_end_id: original.end_to_end_id.clone(),
        amount,
        reason,
        description,
        metadata,
        operations,
        split,
        is_intra_psp: original.is_intra_psp,
        version: 0,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    let mut tx = app.store.begin().await?;
    if !reserve_refund(&mut tx, tenant.id, original.id, amount).await? {
        drop(tx);
        let taken = app.store.refunded_amount(tenant.id, original.id).await?;
        return Err(AppError::refused(
            ErrorCode::RefundExceedsRemaining,
            format!(
                "the refund of {} exceeds the {} left to refund of this transfer; nothing was held",
                UpstreamMoney::from_centavos(amount),
                UpstreamMoney::from_centavos((original.amount - taken).max(0))
            ),
        ));
    }
    if let Some(block) = adopt {
        // Recorded NEW then HELD, as if it had placed the hold itself.
        insert_refund(&mut tx, &refund).await?;
        record_event(&mut tx, &refund, now).await?;
        let hold = crate::med::adopt_in(&mut tx, block, refund.id, now).await?;
        apply(&mut refund, OutgoingEvent::HoldPlaced(hold))?;
        if !save_refund(&mut tx, &refund).await? {
            return Err(AppError::Internal(format!("refund {} moved inside its insert transaction", refund.id)));
        }
        refund.version += 1;
        record_event(&mut tx, &refund, now).await?;
    } else {
        insert_refund(&mut tx, &refund).await?;
        record_event(&mut tx, &refund, now).await?;
    }
    tx.commit().await?;
    tracing::info!(refund = %refund.id, transfer = %original.id, amount, "refund admitted");
    let steps = if refund.is_intra_psp {
        super::intra::advance(app, &clients, tenant, refund.clone()).await
    } else {
        advance(app, &clients, refund.clone()).await
    };
    let refund = match steps {
        Ok(r) => r,
        Err(e) if !e.is_permanent() => {
            tracing::warn!(refund = %refund.id, error = %e, "refund step outcome unknown; left to the sweeper");
            app.store.refund(tenant.id, refund.id).await?.unwrap_or(refund)
        }
        Err(e) => return Err(e),
    };
    answer(refund)
}

/// The id of a refund created by a request with an `X-Idempotency` key: the same tenant, transfer
/// and key always name the same refund. Keys are per tenant, so nothing here is guessable by
/// another tenant, and refunds are listed by creation time, never by id.
fn keyed_id(tenant: Uuid, transfer: Uuid, key: &str) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"pix-host refund\0")
        .chain_update(tenant.as_bytes())
        .chain_update(transfer.as_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// What `create` answers for a refund it admitted: the refund, or the refusal a hold that found
/// too little balance stands for.
fn answer(refund: Refund) -> AppResult<Refund> {
    let short = "the debited accounts' available balance does not cover the refund; nothing was held";
    refuse_short_balance(refund.state.failure(), short)?;
    Ok(refund)
}

/// The Midaz credit of `t` if it is a cash-in that may still be refunded.
fn refundable(t: &Transfer, now: DateTime<Utc>) -> AppResult<&LedgerTxId> {
    let TransferState::Cashin(CashinState::Credited { credit }) = &t.state else {
        return Err(AppError::refused(
            ErrorCode::TransferNotRefundable,
            format!("only COMPLETED cash-ins can be refunded; this is a {} {}", t.status(), t.direction()),
        ));
    };
    let settled = t.completed_at.unwrap_or(t.created_at);
    if now - settled > chrono::Duration::days(REFUND_WINDOW_DAYS) {
        return Err(AppError::refused(
            ErrorCode::RefundWindowExpired,
            format!("the refund window of {REFUND_WINDOW_DAYS} days after settlement closed"),
        ));
    }
    Ok(credit)
}

fn operations_refused(e: OperationsError) -> AppError {
    let code = match e {
        OperationsError::NotPositive(_) => ErrorCode::InvalidField,
        OperationsError::DuplicateAlias(_) => ErrorCode::DuplicateAccountAlias,
        OperationsError::SumMismatch { .. } => ErrorCode::OperationsSumMismatch,
    };
    AppError::refused(code, e.to_string())
}

/// One account the original cash-in credited.
#[derive(Debug, Clone)]
struct OriginalCredit {
    account_alias: String,
    role: AccountRole,
    /// Centavos.
    credited: i64,
}

/// An alias as written by Midaz or by a client (with or without the leading `@`).
fn same_alias(a: &str, b: &str) -> bool {
    a.trim_start_matches('@') == b.trim_start_matches('@')
}

/// The accounts the original cash-in's Midaz transaction credited, in posting order.
async fn original_credits(
    clients: &TenantClients,
    t: &Transfer,
    credit: &LedgerTxId,
) -> AppResult<Vec<OriginalCredit>> {
    let tx = match clients.ledger.transaction(&credit.0).await {
        Ok(tx) => tx,
        Err(IntegrationError::NotFound { .. }) => {
            return Err(AppError::refused(
                ErrorCode::OriginalTransactionNotFound,
                "the original transaction does not exist in Midaz",
            ));
        }
        Err(e) => return Err(AppError::Upstream { what: "reading the original transaction", source: e }),
    };
    let customer = t.details.ledger_alias.as_deref().unwrap_or_default();
    let fee = t.details.fee.as_ref().map(|f| f.account.as_str()).unwrap_or_default();
    let mut credits: Vec<OriginalCredit> = Vec::new();
    for op in
        tx.operations.iter().filter(|op| op.operation_type == "CREDIT" && !op.account_alias.starts_with("@external"))
    {
        let amount = op.amount.value.centavos();
        match credits.iter_mut().find(|c| same_alias(&c.account_alias, &op.account_alias)) {
            Some(c) => c.credited += amount,
            None => credits.push(OriginalCredit {
                account_alias: op.account_alias.clone(),
                role: if same_alias(&op.account_alias, customer) {
                    AccountRole::Customer
                } else if same_alias(&op.account_alias, fee) {
                    AccountRole::Fee
                } else {
                    AccountRole::Other
                },
                credited: amount,
            }),
        }
    }
    if credits.is_empty() {
        return Err(AppError::refused(
            ErrorCode::OriginalTransactionNotFound,
            "the original Midaz transaction credited no account",
        ));
    }
    Ok(credits)
}

/// The client's operations, each on an account the original credited (written as Midaz has it).
fn in_original(ops: Vec<RefundOperation>, credits: &[OriginalCredit]) -> AppResult<Vec<RefundOperation>> {
    ops.into_iter()
        .map(|op| match credits.iter().find(|c| same_alias(&c.account_alias, &op.account_alias)) {
            Some(c) => Ok(RefundOperation { account_alias: c.account_alias.clone(), amount: op.amount }),
            None => Err(AppError::refused(
                ErrorCode::AccountAliasNotInOriginalTransaction,
                format!("account alias {} did not take part in the original transaction", op.account_alias),
            )),
        })
        .collect()
}

/// The tenant's refund-split policy over the original credits and today's balances. Its answer
/// is checked again here (aliases of the original, once each, each within its credit, summing
/// to the amount): the policy layer falls back to its fail-safe on an invalid answer, and this
/// is the last line before money moves.
async fn policy_split(
    app: &App,
    clients: &TenantClients,
    tenant: &Tenant,
    original: &Transfer,
    amount: i64,
    credits: Vec<OriginalCredit>,
) -> AppResult<(Vec<RefundOperation>, SplitSource)> {
    let mut operations = Vec::with_capacity(credits.len());
    for c in &credits {
        operations.push(OriginalOperation {
            account_alias: c.account_alias.clone(),
            role: c.role,
            credited: c.credited,
            available: available(clients, &c.account_alias).await?,
        });
    }
    let input = RefundSplitInput {
        refund_amount: amount,
        original_amount: original.amount,
        already_refunded: app.store.refunded_amount(tenant.id, original.id).await?,
        operations,
    };
    let decided = app.policies.refund_split(tenant.id, &input).await;
    let portions = match decided.output {
        RefundSplitDecision::Split { portions } => portions,
        RefundSplitDecision::Reject { code, message } => {
            return Err(AppError::refused(
                ErrorCode::PolicyRejected,
                format!("{code}: the refund-split policy rejected the refund: {message}"),
            ));
        }
    };
    let ops: Vec<RefundOperation> =
        portions.into_iter().map(|p| RefundOperation { account_alias: p.account_alias, amount: p.amount }).collect();
    check_operations(amount, &ops).map_err(|e| AppError::Internal(format!("refund-split answer: {e}")))?;
    for op in &ops {
        let within = credits.iter().any(|c| same_alias(&c.account_alias, &op.account_alias) && op.amount <= c.credited);
        if !within {
            return Err(AppError::Internal(format!(
                "refund-split answer: {} is not a credit it may debit",
                op.account_alias
            )));
        }
    }
    Ok((in_original(ops, &credits)?, SplitSource::Policy { policy_sha256: decided.policy_sha256 }))
}

/// An account's available BRL balance now, in centavos.
pub(crate) async fn available(clients: &TenantClients, alias: &str) -> AppResult<i64> {
    let account = clients.ledger.account_by_alias(alias).await.map_err(AppError::upstream("reading an account"))?;
    let balances = clients.ledger.balances(&account.id).await.map_err(AppError::upstream("reading balances"))?;
    Ok(balances.iter().filter(|b| b.asset_code == ASSET && b.key == "default").map(|b| b.available.centavos()).sum())
}

// ------------------------------------------------------------------------------ the steps

pub(super) fn outgoing(r: &Refund) -> AppResult<&OutgoingRefund> {
    match &r.state {
        RefundState::Outgoing(s) => Ok(s),
        RefundState::Incoming(_) => Err(AppError::Internal(format!("refund {} is not one we send", r.id))),
    }
}

/// Applies `event` to the outgoing refund `r` (the state machine refuses impossible moves).
pub(super) fn apply(r: &mut Refund, event: OutgoingEvent) -> AppResult<()> {
    r.state = RefundState::Outgoing(outgoing(r)?.on(event)?);
    Ok(())
}

/// Moves a refund forward from wherever it stopped, until it waits for BTG or is final. An
/// unknown outcome is an `Err` that is not permanent: the same call may be made again.
pub async fn advance(app: &App, clients: &TenantClients, mut r: Refund) -> AppResult<Refund> {
    loop {
        let before = r.state.clone();
        match outgoing(&r)? {
            OutgoingRefund::New => match place_hold(clients, &r).await {
                Ok(hold) => apply(&mut r, OutgoingEvent::HoldPlaced(hold))?,
                Err(AppError::Upstream { source, .. }) if source.is_definite() => {
                    let failure = ledger_refusal(&source);
                    apply(&mut r, OutgoingEvent::HoldRefused(failure))?;
                }
                Err(e) => return Err(e),
            },
            OutgoingRefund::Held { .. } => match send_reversal(clients, &r).await {
                Ok(return_id) => apply(&mut r, OutgoingEvent::Accepted { return_id })?,
                Err(e) => {
                    // BTG refused a retry, or its answer was lost: whether an earlier attempt got
                    // through is unknown, so ask BTG before touching the hold.
                    tracing::warn!(refund = %r.id, error = %e, "BTG did not accept the reversal; reading it back");
                    let refusal = match &e {
                        AppError::Upstream { source, .. } if source.is_definite() => {
                            Some(Failure::new(source.code().unwrap_or("BTG_REFUSED").to_owned(), source.to_string()))
                        }
                        _ => None,
                    };
                    return match read_back(app, clients, &r, refusal).await {
                        BtgSays::Verdict(verdict) => on_verdict(app, clients, r, verdict).await,
                        BtgSays::Unknown(why) => Err(AppError::Unknown(format!("BTG: {e}; read-back: {why}"))),
                    };
                }
            },
            _ => return Ok(r),
        }
        if !save(app, &mut r, &before).await? {
            // Someone else (a webhook, the sweeper) moved it: continue from what they wrote.
            r = reload(app, &r).await?;
        }
    }
}

/// The pending Midaz transaction: each debited account's part on hold, destined to
/// `@external/BRL` (what leaves for the payer's participant).
async fn place_hold(clients: &TenantClients, r: &Refund) -> AppResult<LedgerTxId> {
    let request = refund_legs(r).pending().description(format!("Pix refund of {}", r.original_end_to_end_id));
    let tx = clients
        .ledger
        .create_transaction(&request, &ledger_key(format!("refund-hold-{}", r.id)))
        .await
        .map_err(AppError::upstream("placing the refund hold"))?;
    Ok(LedgerTxId(tx.id))
}

/// A refund's movement: each debited account's part → `@external/BRL`.
pub(super) fn refund_legs(r: &Refund) -> TransactionRequest {
    let from = r.operations.iter().map(|op| leg(&op.account_alias, op.amount)).collect();
    TransactionRequest::transfer(ASSET, from, vec![leg(EXTERNAL, r.amount)]).code(r.original_end_to_end_id.clone())
}

/// Asks BTG to return the total (one pacs.004); the refund id is the idempotency key, and BTG
/// keeps it on the reversal as its `requestId`.
async fn send_reversal(clients: &TenantClients, r: &Refund) -> AppResult<String> {
    let order = ReversalOrder {
        amount: UpstreamMoney::from_centavos(r.amount),
        reason: reversal_reason(r.reason),
        description: r.description.clone(),
    };
    let accepted = clients
        .btg
        .initiate_reversal(&r.original_end_to_end_id, &order, &r.id.to_string())
        .await
        .map_err(AppError::upstream("sending the reversal to BTG"))?;
    Ok(accepted.end_to_end_id)
}

pub(super) fn reversal_reason(reason: RefundReason) -> ReversalReason {
    match reason {
        RefundReason::Be08 => ReversalReason::Be08,
        RefundReason::Fr01 => ReversalReason::Fr01,
        RefundReason::Md06 => ReversalReason::Md06,
        RefundReason::Sl02 => ReversalReason::Sl02,
    }
}

// ------------------------------------------------------------------------- BTG's verdict

/// What BTG says of a reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted, not settled yet.
    InFlight { return_id: String },
    /// Returned (settled at SPI).
    Returned { return_id: String, settled_at: Option<DateTime<Utc>> },
    /// Certainly not returned.
    Refused(Failure),
}

impl Verdict {
    pub fn of(reversal: &Reversal) -> Verdict {
        use pix_integrations::btg::PaymentStatus;
        let return_id = reversal.return_end_to_end_id.clone();
        match reversal.status {
            PaymentStatus::Processing => Verdict::InFlight { return_id },
            PaymentStatus::Confirmed => Verdict::Returned { return_id, settled_at: reversal.settled_at },
            PaymentStatus::Rejected => Verdict::Refused(Failure::new(
                reversal.rejection_code.clone().unwrap_or_else(|| "BTG_REJECTED".into()),
                "the reversal was rejected at SPI",
            )),
        }
    }
}

/// The outcome of reading a reversal back from BTG.
pub(super) enum BtgSays {
    Verdict(Verdict),
    /// Nothing certain yet: try again later, hold untouched.
    Unknown(String),
}

/// Our reversal among the original's at BTG (found by the refund id BTG keeps as `requestId`).
pub(super) async fn find_reversal(clients: &TenantClients, r: &Refund) -> Result<Option<Reversal>, IntegrationError> {
    let id = r.id.to_string();
    Ok(clients
        .btg
        .reversals(&r.original_end_to_end_id)
        .await?
        .into_iter()
        .find(|rev| rev.request_id.as_deref() == Some(id.as_str())))
}

/// Reads the reversal back from BTG. "No such reversal" counts as never received only when BTG
/// certainly refused our last request (`refusal`) and the refund is older than the configured
/// grace; otherwise it may still be in flight and the hold stays.
pub(super) async fn read_back(app: &App, clients: &TenantClients, r: &Refund, refusal: Option<Failure>) -> BtgSays {
    let now = app.clock.now();
    match find_reversal(clients, r).await {
        Ok(Some(reversal)) => BtgSays::Verdict(Verdict::of(&reversal)),
        Ok(None) => match refusal {
            Some(failure) if now - r.created_at >= app.settings.btg_not_found_grace => {
                BtgSays::Verdict(Verdict::Refused(failure))
            }
            _ => BtgSays::Unknown("BTG has no record of the reversal (yet)".into()),
        },
        Err(e) => BtgSays::Unknown(e.to_string()),
    }
}

/// BTG's verdict on a refund, from its webhook or read back: commits or releases the hold.
/// Duplicates and stale verdicts change nothing.
pub async fn on_verdict(app: &App, clients: &TenantClients, mut r: Refund, verdict: Verdict) -> AppResult<Refund> {
    loop {
        let before = r.state.clone();
        let event = match (outgoing(&r)?.clone(), &verdict) {
            // BTG has it, so the hold was placed; placing it again returns the same one.
            (OutgoingRefund::New, _) => {
                let hold = place_hold(clients, &r).await?;
                apply(&mut r, OutgoingEvent::HoldPlaced(hold))?;
                continue;
            }
            (
                OutgoingRefund::Held { hold } | OutgoingRefund::Sent { hold, .. },
                Verdict::Returned { return_id, settled_at },
            ) => {
                clients.ledger.commit(&hold.0).await.map_err(AppError::upstream("committing the refund hold"))?;
                r.completed_at = Some(settled_at.unwrap_or_else(|| app.clock.now()));
                OutgoingEvent::Confirmed { return_id: return_id.clone() }
            }
            (OutgoingRefund::Held { hold } | OutgoingRefund::Sent { hold, .. }, Verdict::Refused(failure)) => {
                clients.ledger.cancel(&hold.0).await.map_err(AppError::upstream("releasing the refund hold"))?;
                OutgoingEvent::Rejected(failure.clone())
            }
            (OutgoingRefund::Held { .. }, Verdict::InFlight { return_id }) => {
                OutgoingEvent::Accepted { return_id: return_id.clone() }
            }
            (OutgoingRefund::Released { .. }, Verdict::Returned { .. })
            | (OutgoingRefund::Settled { .. }, Verdict::Refused(_)) => {
                // Never produced by this engine (no release on an ambiguous answer); if BTG says
                // so anyway, an operator must look.
                metrics::counter!("pix_refund_contradictions_total").increment(1);
                tracing::error!(refund = %r.id, status = %r.status(), ?verdict, "BTG contradicts a final refund");
                return Ok(r);
            }
            // Duplicates and stale PROCESSING.
            _ => return Ok(r),
        };
        apply(&mut r, event)?;
        if save(app, &mut r, &before).await? {
            tracing::info!(refund = %r.id, status = %r.status(), "refund verdict applied");
            return Ok(r);
        }
        r = reload(app, &r).await?;
    }
}

/// A `PIX_REVERSAL` webhook: BTG's verdict on one of the tenant's refunds, found by its return
/// id or, when the webhook overtook BTG's answer to us, by the refund id BTG echoes.
pub async fn reversal_event(app: &App, tenant: &Tenant, reversal: &Reversal) -> AppResult<()> {
    let mut refund =
        app.store.refund_by_return_id(tenant.id, Direction::Cashout, &reversal.return_end_to_end_id).await?;
    if refund.is_none()
        && let Some(id) = reversal.request_id.as_deref().and_then(|id| Uuid::parse_str(id).ok())
    {
        refund = app.store.refund(tenant.id, id).await?;
    }
    let Some(r) = refund.filter(|r| r.original_end_to_end_id == reversal.original_end_to_end_id) else {
        tracing::warn!(return_id = %reversal.return_end_to_end_id, "PIX_REVERSAL for an unknown refund; ignored");
        return Ok(());
    };
    let clients = app.upstreams.for_tenant(tenant)?;
    on_verdict(app, &clients, r, Verdict::of(reversal)).await.map(drop)
}
