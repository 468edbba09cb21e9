//! The operations a history is made of, drawn from the seeded RNG, and how each is driven
//! against the host: through its HTTP API as a client would, or through the simulators as BTG
//! and other banks would. Targets (which transfer to refund, which cash-out to unblock) are
//! drawn as numbers and resolved against what the database holds when the operation runs.

use std::collections::HashSet;

use axum::http::Method;
use pix_core::brcode::BrCode;
use pix_core::money::Money;
use pix_core::pix_key::PixKey;
use pix_core::transfer::{Direction, TransferStatus};
use pix_store::refunds::RefundFilter;
use pix_store::transfers::{Transfer, TransferFilter};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use super::host::{Answer, Call, SimHost};

/// The demo customers (`@maria` and `@joao` are people, `@acme` a company).
pub const CUSTOMERS: [&str; 3] = ["@maria", "@joao", "@acme"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Key,
    Manual,
    QrCode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A Pix to another bank.
    CashOut {
        payer: usize,
        via: Via,
        amount: i64,
    },
    /// A Pix to another customer of the institution (MANUAL, or KEY when the payee has one).
    IntraPsp {
        payer: usize,
        payee: usize,
        amount: i64,
    },
    /// A Pix from another bank.
    CashIn {
        payee: usize,
        amount: i64,
    },
    /// A (partial) return of a completed cash-in; `distributed` names the debited accounts.
    Refund {
        pick: usize,
        percent: i64,
        distributed: bool,
    },
    /// The receiving bank returns (part of) a completed cash-out.
    InboundReversal {
        pick: usize,
        percent: i64,
    },
    /// An operator asks for a stuck cash-out to be finished.
    Unblock {
        pick: usize,
        allow_not_found: bool,
    },
    /// … or a stuck refund.
    UnblockRefund {
        pick: usize,
    },
    /// An admin activates a shipped policy with other parameters.
    ActivatePolicy {
        choice: usize,
    },
    /// A customer registers an EVP key, or deletes one.
    DictCreate {
        owner: usize,
    },
    DictDelete {
        pick: usize,
    },
    /// A fraud reviewer decides a cash-out in review.
    Review {
        pick: usize,
        release: bool,
    },
    /// A client retries an earlier request with its idempotency key.
    Replay {
        pick: usize,
    },
    /// Time passes (past the job lease of 60 s, and the sweeper's thresholds, when long).
    Tick {
        secs: u64,
    },
    /// The host process is killed between two operations and starts again.
    Restart,
}

impl Op {
    pub fn draw(rng: &mut StdRng) -> Op {
        let customer = |rng: &mut StdRng| rng.random_range(0..CUSTOMERS.len());
        match rng.random_range(0..100) {
            0..18 => Op::CashOut {
                payer: customer(rng),
                via: [Via::Key, Via::Key, Via::Manual, Via::QrCode][rng.random_range(0..4)],
                amount: amount(rng),
            },
            18..26 => {
                let payer = customer(rng);
                Op::IntraPsp { payer, payee: (payer + rng.random_range(1..3)) % 3, amount: amount(rng) }
            }
            26..44 => Op::CashIn { payee: customer(rng), amount: amount(rng) * 2 },
            44..52 => Op::Refund {
                pick: rng.random_range(0..1_000_000),
                percent: rng.random_range(10..=100),
                distributed: rng.random(),
            },
            52..56 => Op::InboundReversal { pick: rng.random_range(0..1_000_000), percent: rng.random_range(10..=100) },
            56..61 => Op::Unblock { pick: rng.random_range(0..1_000_000), allow_not_found: rng.random_bool(0.3) },
            61..63 => Op::UnblockRefund { pick: rng.random_range(0..1_000_000) },
            63..66 => Op::ActivatePolicy { choice: rng.random_range(0..POLICIES.len()) },
            66..69 => Op::DictCreate { owner: customer(rng) },
            69..70 => Op::DictDelete { pick: rng.random_range(0..1_000_000) },
            70..74 => Op::Review { pick: rng.random_range(0..1_000_000), release: rng.random() },
            74..81 => Op::Replay { pick: rng.random_range(0..1_000_000) },
            81..96 => Op::Tick { secs: [1, 5, 30, 61, 125, 601][rng.random_range(0..6)] },
            _ => Op::Restart,
        }
    }

    /// Whether another client may run this while the first runs its operation.
    pub fn can_run_beside(&self) -> bool {
        !matches!(self, Op::Tick { .. } | Op::Restart)
    }

    /// Whether a crash in the middle of the operation's request means something (it is one
    /// request to the host).
    pub fn is_request(&self) -> bool {
        !matches!(self, Op::CashIn { .. } | Op::InboundReversal { .. } | Op::Tick { .. } | Op::Restart)
    }
}

/// R$ 1.00 to R$ 400.00; some end in .13 (BTG rejects them).
fn amount(rng: &mut StdRng) -> i64 {
    let reais = rng.random_range(1..400);
    let cents = if rng.random_bool(0.1) { pix_sandbox::REJECT_CENTS } else { rng.random_range(0..100) };
    not_stuck(reais * 100 + cents)
}

/// No amount ends in .66: BTG never settles those payments and returns.
fn not_stuck(centavos: i64) -> i64 {
    if centavos % 100 == pix_sandbox::STUCK_CENTS { centavos - 1 } else { centavos }
}

fn money(centavos: i64) -> String {
    Money::from_centavos(centavos).to_string()
}

/// Parameter sets the activations choose from: (kind, params).
const POLICIES: [(&str, &str); 5] = [
    ("fee", r#"{"pj-cash-in-bps": 200, "pj-cash-in-max": 100000}"#),
    ("fee", r#"{}"#),
    ("fraud-triage", r#"{"review-threshold": 100}"#),
    ("fraud-triage", r#"{"block-threshold": 100}"#),
    ("fraud-triage", r#"{}"#),
];

/// An idempotent request sent during the history and the first answer it got (none when the
/// process crashed under it, or when the answer is one the host does not keep: 409, 429, 5xx).
#[derive(Debug, Clone)]
pub struct Sent {
    pub call: Call,
    pub first: Option<Answer>,
}

/// What a history remembers between operations.
#[derive(Default)]
pub struct Memory {
    pub sent: Vec<Sent>,
    /// Keys registered by customers: (entry id, owner, key).
    pub keys: Vec<(String, usize, String)>,
    /// Cash-outs an operator asked to release on BTG's 404 (`allowNotFoundUnblock`), whether or
    /// not the request got through.
    pub not_found_overrides: HashSet<Uuid>,
    /// Answers the host must never give (500s), as violations.
    pub violations: Vec<String>,
}

/// The code of the 409 that tells a retry its key is still held by the first attempt.
const IN_FLIGHT: &str = "PIX-0018";

/// The answer kinds the idempotency layer stores and replays.
pub fn is_kept(answer: &Answer) -> bool {
    !(answer.status >= 500 || answer.status == 409 || answer.status == 429)
}

impl Memory {
    /// Takes in what a second client remembered while it ran beside this one.
    pub fn absorb(&mut self, other: Memory) {
        let Memory { sent, keys, not_found_overrides, violations } = other;
        self.sent.extend(sent);
        self.keys.extend(keys);
        self.not_found_overrides.extend(not_found_overrides);
        self.violations.extend(violations);
    }

    /// A fresh idempotency key (random: keys of concurrent clients must not collide).
    fn key(&self) -> String {
        format!("sim-{}", Uuid::new_v4())
    }

    /// Records an answer: a 500 is a violation (the host may answer 502/503/504 when an
    /// upstream fails, never an internal error).
    fn check(&mut self, what: &str, answer: &Answer) {
        if answer.status == 500 {
            self.violations.push(format!("{what} answered 500: {}", answer.text()));
        }
    }
}

/// Runs `op`. With `crash`, its request is dropped after that many polls; returns whether the
/// process must be restarted (the request was cut short).
pub async fn run(host: &SimHost, memory: &mut Memory, op: &Op, crash: Option<u32>) -> bool {
    let data = &host.sandbox.data;
    let account = |i: usize| data.accounts.iter().find(|a| a.alias == CUSTOMERS[i]).expect("demo customer");
    match op {
        Op::CashOut { payer, via, amount } => {
            let ana = &data.other_participant.keys[0];
            let body = match via {
                Via::Key => json!({"type": "KEY", "key": ana.key, "amount": money(*amount)}),
                Via::Manual => {
                    json!({"type": "MANUAL", "amount": money(*amount), "destination": {"ispb": data.other_participant.ispb,
                    "branch": "0042", "account": "7001", "accountType": "CACC", "document": ana.tax_id, "name": ana.owner_name}})
                }
                Via::QrCode => {
                    let key = PixKey::infer(&ana.key).expect("Ana's key parses");
                    let code = BrCode::static_code(key, "Ana Pereira", "Sao Paulo")
                        .amount(Money::from_centavos(*amount))
                        .build()
                        .expect("a valid BR Code")
                        .encode();
                    json!({"type": "QR_CODE", "emv": code})
                }
            };
            pay(host, memory, *payer, body, crash).await
        }
        Op::IntraPsp { payer, payee, amount } => {
            let key = memory.keys.iter().find(|(_, owner, _)| owner == payee).map(|(_, _, k)| k.clone());
            let body = match key {
                Some(key) => json!({"type": "KEY", "key": key, "amount": money(*amount)}),
                None => {
                    let a = account(*payee);
                    json!({"type": "MANUAL", "amount": money(*amount), "destination": {"ispb": data.ispb,
                        "branch": a.branch, "account": a.number, "accountType": "CACC",
                        "document": a.document, "name": a.name}})
                }
            };
            pay(host, memory, *payer, body, crash).await
        }
        Op::CashIn { payee, amount } => {
            let a = account(*payee);
            let creditor = json!({"branch": a.branch, "account": a.number, "accountType": "CACC",
                "taxId": a.document, "name": a.name});
            if let Err(e) = host.sandbox.handle.inbound_pix(&json!({"amount": money(*amount), "creditor": creditor})) {
                memory.violations.push(format!("BTG refused a cash-in to a demo account: {e}"));
            }
            false
        }
        Op::Refund { pick, percent, distributed } => {
            let Some(t) =
                pick_transfer(host, *pick, Direction::Cashin, |t| t.status() == TransferStatus::Completed).await
            else {
                return false;
            };
            let refunded = host.db.refunded_amount(host.tenant, t.id).await.unwrap_or(t.amount);
            let left = t.amount - refunded;
            if left <= 0 {
                return false;
            }
            let amount = not_stuck((left * percent / 100).max(1));
            let alias = alias_of(host, t.account_id);
            let mut body = json!({"amount": money(amount), "description": "simulated refund"});
            if *distributed {
                // The fee account gives back what it can of its fee, the customer the rest.
                let from_fee = (t.fee).min(amount - 1).max(0);
                let mut operations = vec![json!({"accountAlias": alias, "amount": money(amount - from_fee)})];
                if from_fee > 0 {
                    operations.push(json!({"accountAlias": data.fee_account.alias, "amount": money(from_fee)}));
                }
                body["operations"] = Value::Array(operations);
            }
            let call = Call::new(Method::POST, format!("/v1/transfers/{}/refunds", t.id))
                .header("X-Account-Id", t.account_id.to_string())
                .header("X-Reason", "MD06")
                .header("X-Idempotency", memory.key())
                .json(body);
            send_kept(host, memory, "refund", call, crash).await
        }
        Op::InboundReversal { pick, percent } => {
            let completed = |t: &Transfer| t.status() == TransferStatus::Completed && !t.is_intra_psp;
            if let Some(t) = pick_transfer(host, *pick, Direction::Cashout, completed).await {
                let amount = (t.amount * percent / 100).max(1);
                // Refused when more than what is left would be returned: nothing happens then.
                let _ = host
                    .sandbox
                    .handle
                    .inbound_reversal(&json!({"originalEndToEndId": t.end_to_end_id, "amount": money(amount)}));
            }
            false
        }
        Op::Unblock { pick, allow_not_found } => {
            let Some(t) = pick_transfer(host, *pick, Direction::Cashout, |t| !t.is_final()).await else { return false };
            if *allow_not_found {
                memory.not_found_overrides.insert(t.id);
            }
            let call = Call::new(Method::POST, format!("/v1/transfers/{}/unblock", t.id))
                .header("X-Account-Id", t.account_id.to_string())
                .json(json!({"allowNotFoundUnblock": allow_not_found}));
            send(host, memory, "unblock", &call, crash).await.is_none()
        }
        Op::UnblockRefund { pick } => {
            let mut open = Vec::new();
            for a in customer_ids(host) {
                let filter = RefundFilter { kind: Some(Direction::Cashout), ..Default::default() };
                if let Ok((refunds, _)) = host.db.list_refunds(host.tenant, Some(a), &filter, 500, 0).await {
                    open.extend(refunds.into_iter().filter(|r| !r.is_final()));
                }
            }
            if open.is_empty() {
                return false;
            }
            let r = &open[pick % open.len()];
            let call = Call::new(Method::POST, format!("/v1/refunds/{}/unblock", r.id))
                .header("X-Account-Id", r.account_id.to_string());
            send(host, memory, "refund unblock", &call, crash).await.is_none()
        }
        Op::ActivatePolicy { choice } => {
            let (kind, params) = POLICIES[*choice];
            let params: Value = serde_json::from_str(params).expect("valid parameters");
            let sha = crate::shipped_sha256(kind);
            let call = Call::new(Method::POST, format!("/v1/admin/policies/{sha}/activate"))
                .admin()
                .json(json!({"kind": kind, "tenantId": host.tenant, "params": params}));
            send(host, memory, "policy activation", &call, crash).await.is_none()
        }
        Op::DictCreate { owner } => {
            let call = Call::new(Method::POST, "/v1/dict/entries")
                .header("X-Account-Id", account(*owner).account_id.clone())
                .header("X-Idempotency", memory.key())
                .json(json!({"keyType": "EVP"}));
            let cut = send_kept(host, memory, "DICT entry", call, crash).await;
            if let Some(Sent { first: Some(answer), .. }) = memory.sent.last()
                && answer.status == 201
            {
                let entry = answer.json();
                if let (Some(id), Some(key)) = (entry["id"].as_str(), entry["key"].as_str()) {
                    memory.keys.push((id.to_owned(), *owner, key.to_owned()));
                }
            }
            cut
        }
        Op::DictDelete { pick } => {
            if memory.keys.is_empty() {
                return false;
            }
            let (id, owner, _) = memory.keys.remove(pick % memory.keys.len());
            let call = Call::new(Method::DELETE, format!("/v1/dict/entries/{id}"))
                .header("X-Account-Id", account(owner).account_id.clone())
                .header("X-Reason", "USER_REQUESTED");
            send(host, memory, "DICT delete", &call, crash).await.is_none()
        }
        Op::Review { pick, release } => {
            let mut queue = host.db.transfers_with_status(TransferStatus::InReview, 500).await.unwrap_or_default();
            queue.retain(|t| t.tenant_id == host.tenant);
            if queue.is_empty() {
                return false;
            }
            let t = &queue[pick % queue.len()];
            let decision = if *release { "RELEASE" } else { "REJECT" };
            let call = Call::new(Method::POST, format!("/v1/admin/tenants/{}/transfers/{}/review", host.tenant, t.id))
                .admin()
                .json(json!({"decision": decision, "note": "simulated reviewer"}));
            send(host, memory, "review", &call, crash).await.is_none()
        }
        Op::Replay { pick } => {
            if memory.sent.is_empty() {
                return false;
            }
            let index = pick % memory.sent.len();
            let call = memory.sent[index].call.clone();
            let Some(answer) = send(host, memory, "replay", &call, crash).await else { return true };
            match &memory.sent[index].first {
                Some(first) => {
                    if answer.status == 409 {
                        // The first request's key is still locked by a crashed holder: retry later.
                    } else if answer.status != first.status || answer.body != first.body || !answer.replayed {
                        memory.violations.push(format!(
                            "replay of {} {} (key {}) answered {} (replayed: {}) {}; the first answer was {} {}",
                            call.method,
                            call.path,
                            call.idempotency_key().unwrap_or_default(),
                            answer.status,
                            answer.replayed,
                            answer.text(),
                            first.status,
                            first.text()
                        ));
                    }
                }
                None if is_kept(&answer) => memory.sent[index].first = Some(answer),
                // The first attempt died unanswered: its retry may be told to wait while the dead
                // holder's lock lasts (PIX-0018), never that its own request conflicts.
                None if answer.status == 409 && answer.json()["code"] != IN_FLIGHT => {
                    memory.violations.push(format!(
                        "retry of {} {} (key {}) after a lost answer got a conflict: {}",
                        call.method,
                        call.path,
                        call.idempotency_key().unwrap_or_default(),
                        answer.text()
                    ));
                }
                None => {}
            }
            false
        }
        Op::Tick { secs } => {
            host.advance(std::time::Duration::from_secs(*secs));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            false
        }
        Op::Restart => true,
    }
}

/// Initiates a cash-out from `payer` and processes it with an idempotency key.
async fn pay(host: &SimHost, memory: &mut Memory, payer: usize, body: Value, crash: Option<u32>) -> bool {
    let account = host.sandbox.data.accounts.iter().find(|a| a.alias == CUSTOMERS[payer]).expect("demo customer");
    let initiate = Call::new(Method::POST, "/v1/transfers/cashout/initiate")
        .header("X-Account-Id", account.account_id.clone())
        .json(body);
    let Some(initiated) = send(host, memory, "initiate", &initiate, None).await else { return true };
    if initiated.status != 201 {
        return false;
    }
    let process = Call::new(Method::POST, "/v1/transfers/cashout/process")
        .header("X-Account-Id", account.account_id.clone())
        .header("X-Idempotency", memory.key())
        .json(json!({"initiationId": initiated.json()["initiationId"]}));
    send_kept(host, memory, "process", process, crash).await
}

/// Sends a call; `None` when it was cut short by the crash budget.
async fn send(host: &SimHost, memory: &mut Memory, what: &str, call: &Call, crash: Option<u32>) -> Option<Answer> {
    let answer = host.send_or_crash(call, crash).await?;
    memory.check(what, &answer);
    Some(answer)
}

/// Sends an idempotent call and remembers it for replays; returns whether it was cut short.
async fn send_kept(host: &SimHost, memory: &mut Memory, what: &str, call: Call, crash: Option<u32>) -> bool {
    let answer = send(host, memory, what, &call, crash).await;
    let cut = answer.is_none();
    memory.sent.push(Sent { call, first: answer.filter(is_kept) });
    cut
}

/// The demo customers' account ids.
pub fn customer_ids(host: &SimHost) -> Vec<Uuid> {
    CUSTOMERS
        .iter()
        .filter_map(|alias| host.sandbox.data.accounts.iter().find(|a| a.alias == *alias))
        .filter_map(|a| a.account_id.parse().ok())
        .collect()
}

/// The Midaz alias of a demo account.
pub fn alias_of(host: &SimHost, account: Uuid) -> String {
    let id = account.to_string();
    host.sandbox.data.accounts.iter().find(|a| a.account_id == id).map(|a| a.alias.clone()).unwrap_or_default()
}

/// Every transfer of the tenant's customers.
pub async fn all_transfers(host: &SimHost) -> Vec<Transfer> {
    let mut all = Vec::new();
    for a in customer_ids(host) {
        if let Ok((page, _)) = host.db.list_transfers(host.tenant, Some(a), &TransferFilter::default(), 10_000, 0).await
        {
            all.extend(page);
        }
    }
    all
}

/// Every refund of the tenant's customers.
pub async fn all_refunds(host: &SimHost) -> Vec<pix_store::refunds::Refund> {
    let mut all = Vec::new();
    for a in customer_ids(host) {
        if let Ok((page, _)) = host.db.list_refunds(host.tenant, Some(a), &RefundFilter::default(), 10_000, 0).await {
            all.extend(page);
        }
    }
    all
}

/// The `pick`-th (modulo) transfer of `direction` satisfying `keep`.
async fn pick_transfer(
    host: &SimHost,
    pick: usize,
    direction: Direction,
    keep: impl Fn(&Transfer) -> bool,
) -> Option<Transfer> {
    let mut found: Vec<Transfer> =
        all_transfers(host).await.into_iter().filter(|t| t.direction() == direction && keep(t)).collect();
    found.sort_by_key(|t| t.id);
    (!found.is_empty()).then(|| found.swap_remove(pick % found.len()))
}
