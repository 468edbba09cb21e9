//! The Midaz ledger engine, kept free of HTTP so that its invariants can be property-tested:
//! double-entry postings, pending holds, commit, cancel and revert with Midaz v3's status machine
//! and error codes (integrations.md §3.9, §3.11).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use pix_core::money::Money;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// A Midaz error: code, HTTP status, title (the body is `{code,title,message}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerError {
    /// 4-digit code.
    pub code: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Title.
    pub title: &'static str,
    /// Message.
    pub message: String,
}

pub(crate) fn err(code: &'static str, message: impl Into<String>) -> LedgerError {
    let (status, title) = match code {
        "0007" => (404, "Entity Not Found"),
        "0018" => (422, "Insufficient Funds Error"),
        "0020" => (409, "Alias Unavailability Error"),
        "0024" => (400, "Account Status Transaction Restriction"),
        "0052" => (404, "Account ID Not Found"),
        "0070" => (404, "Transaction ID Not Found"),
        "0073" => (400, "Transaction Value Mismatch"),
        "0074" => (400, "External Account Modification Prohibited"),
        "0084" => (409, "Duplicate Idempotency Key"),
        "0085" => (404, "Account Alias Not Found"),
        "0087" => (400, "Transaction Revert Already Exist"),
        "0088" => (400, "Transaction Is Already A Reversal"),
        "0089" => (400, "Transaction Can't Be Reverted"),
        "0090" => (400, "Transaction Ambiguous Account"),
        "0098" => (422, "Invalid Pending Transaction"),
        "0099" => (422, "Invalid Transaction Status"),
        _ => (400, "Bad Request"),
    };
    LedgerError { code, status, title, message: message.into() }
}

/// Midaz decimals are shopspring `String()`: trailing zeros stripped (`"100"`, `"99.5"`).
pub fn midaz_decimal(centavos: i64) -> String {
    Money::from_centavos(centavos).to_decimal().normalize().to_string()
}

/// Reads a decimal string or number into centavos (at most two places), as Midaz does.
pub fn parse_amount(v: &Value) -> Option<i64> {
    pix_core::money::upstream::deserialize(v).ok().map(Money::centavos)
}

/// An account with its `default` balance.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub name: Option<String>,
    pub alias: String,
    pub asset_code: String,
    pub account_type: String,
    pub entity_id: Option<String>,
    pub blocked: bool,
    /// The balance's `allowReceiving` (a control switch; credits are not refused by it here).
    pub allow_receiving: bool,
    pub metadata: Value,
    pub balance_id: Uuid,
    pub available: i64,
    pub on_hold: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl Account {
    fn is_external(&self) -> bool {
        self.account_type == "external"
    }
}

/// Transaction status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Canceled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Approved => "APPROVED",
            Status::Canceled => "CANCELED",
        }
    }
}

/// One posting.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: Uuid,
    pub kind: &'static str,
    pub alias: String,
    pub account_id: Uuid,
    pub amount: i64,
    pub available_after: i64,
    pub on_hold_after: i64,
}

/// A stored transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: Uuid,
    pub parent: Option<Uuid>,
    pub child: Option<Uuid>,
    pub description: Option<String>,
    pub code: Option<String>,
    pub status: Status,
    pub asset: String,
    pub amount: i64,
    pub from: Vec<(String, i64)>,
    pub to: Vec<(String, i64)>,
    pub metadata: Value,
    pub operations: Vec<Operation>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A leg with its amount already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub alias: String,
    pub amount: i64,
}

/// Request to create a transaction, legs resolved to fixed amounts.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub description: Option<String>,
    pub code: Option<String>,
    pub pending: bool,
    pub asset: String,
    pub value: i64,
    pub from: Vec<Posting>,
    pub to: Vec<Posting>,
    pub metadata: Value,
}

/// One ledger (organization + ledger pair).
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    pub accounts: BTreeMap<Uuid, Account>,
    alias_index: HashMap<String, Uuid>,
    pub transactions: BTreeMap<Uuid, Transaction>,
}

impl Ledger {
    /// Creates an account; aliases are unique per ledger (409 `0020`).
    pub fn create_account(&mut self, account: Account) -> Result<&Account, LedgerError> {
        if self.alias_index.contains_key(&account.alias) {
            return Err(err("0020", format!("alias {} is already in use", account.alias)));
        }
        self.alias_index.insert(account.alias.clone(), account.id);
        let id = account.id;
        self.accounts.insert(id, account);
        Ok(&self.accounts[&id])
    }

    /// Account by alias.
    pub fn by_alias(&self, alias: &str) -> Option<&Account> {
        self.alias_index.get(alias).and_then(|id| self.accounts.get(id))
    }

    fn alias_id(&self, alias: &str) -> Result<Uuid, LedgerError> {
        // `alias#key` addresses a balance key; only `default` exists here.
        let alias = alias.split('#').next().unwrap_or(alias);
        self.alias_index.get(alias).copied().ok_or_else(|| err("0085", format!("account alias {alias} not found")))
    }

    /// Sum of `available + onHold` over every account: constant under every operation.
    pub fn total(&self) -> i64 {
        self.accounts.values().map(|a| a.available + a.on_hold).sum()
    }

    fn op(
        &mut self,
        kind: &'static str,
        alias: &str,
        amount: i64,
        (d_avail, d_hold): (i64, i64),
        ops: &mut Vec<Operation>,
        id: Uuid,
    ) {
        let account_id = self.alias_index[alias.split('#').next().unwrap_or(alias)];
        let acc = self.accounts.get_mut(&account_id).expect("indexed account exists");
        acc.available += d_avail;
        acc.on_hold += d_hold;
        acc.version += 1;
        ops.push(Operation {
            id,
            kind,
            alias: acc.alias.clone(),
            account_id,
            amount,
            available_after: acc.available,
            on_hold_after: acc.on_hold,
        });
    }

    /// Validates and applies a new transaction. `ids` supplies fresh ids (seeded RNG).
    pub fn create(
        &mut self,
        req: NewTransaction,
        now: DateTime<Utc>,
        ids: &mut dyn FnMut() -> Uuid,
    ) -> Result<Uuid, LedgerError> {
        if req.value <= 0 {
            return Err(err("0073", "send.value must be positive"));
        }
        let sum = |p: &[Posting]| p.iter().map(|l| l.amount).sum::<i64>();
        if sum(&req.from) != req.value || sum(&req.to) != req.value {
            return Err(err("0073", "the sum of the legs does not match the transaction value"));
        }
        for p in req.from.iter().chain(&req.to) {
            if p.amount <= 0 {
                return Err(err("0073", "every leg must be positive"));
            }
            let id = self.alias_id(&p.alias)?;
            let acc = &self.accounts[&id];
            if acc.asset_code != req.asset {
                return Err(err("0024", format!("{} holds another asset", acc.alias)));
            }
            if acc.blocked {
                return Err(err("0024", format!("account {} is blocked", acc.alias)));
            }
        }
        if req.from.iter().any(|f| req.to.iter().any(|t| t.alias == f.alias)) {
            return Err(err("0090", "the same account is both source and destination"));
        }
        // A source listed twice must be checked against its total.
        let mut debits: HashMap<Uuid, i64> = HashMap::new();
        for p in &req.from {
            *debits.entry(self.alias_id(&p.alias)?).or_default() += p.amount;
        }
        for (id, total) in &debits {
            let acc = &self.accounts[id];
            if acc.is_external() {
                if req.pending {
                    return Err(err("0098", "an external account cannot be a pending source"));
                }
            } else if acc.available < *total {
                return Err(err("0018", "insufficient funds"));
            }
        }

        let tx_id = ids();
        let mut ops = Vec::new();
        for p in &req.from {
            let id = ids();
            if req.pending {
                self.op("ON_HOLD", &p.alias, p.amount, (-p.amount, p.amount), &mut ops, id);
            } else {
                self.op("DEBIT", &p.alias, p.amount, (-p.amount, 0), &mut ops, id);
            }
        }
        if !req.pending {
            for p in &req.to {
                let id = ids();
                self.op("CREDIT", &p.alias, p.amount, (p.amount, 0), &mut ops, id);
            }
        }
        self.transactions.insert(
            tx_id,
            Transaction {
                id: tx_id,
                parent: None,
                child: None,
                description: req.description,
                code: req.code,
                status: if req.pending { Status::Pending } else { Status::Approved },
                asset: req.asset,
                amount: req.value,
                from: req.from.into_iter().map(|p| (p.alias, p.amount)).collect(),
                to: req.to.into_iter().map(|p| (p.alias, p.amount)).collect(),
                metadata: req.metadata,
                operations: ops,
                created_at: now,
                updated_at: now,
            },
        );
        Ok(tx_id)
    }

    fn pending(&self, id: Uuid) -> Result<&Transaction, LedgerError> {
        let tx = self.transactions.get(&id).ok_or_else(|| err("0070", "transaction not found"))?;
        if tx.status != Status::Pending {
            return Err(err("0099", format!("transaction is {}, not PENDING", tx.status.as_str())));
        }
        Ok(tx)
    }

    /// PENDING → APPROVED: holds are debited, destinations credited.
    pub fn commit(&mut self, id: Uuid, now: DateTime<Utc>, ids: &mut dyn FnMut() -> Uuid) -> Result<(), LedgerError> {
        let tx = self.pending(id)?.clone();
        let mut ops = Vec::new();
        for (alias, amount) in &tx.from {
            self.op("DEBIT", alias, *amount, (0, -amount), &mut ops, ids());
        }
        for (alias, amount) in &tx.to {
            self.op("CREDIT", alias, *amount, (*amount, 0), &mut ops, ids());
        }
        let stored = self.transactions.get_mut(&id).expect("checked above");
        stored.status = Status::Approved;
        stored.updated_at = now;
        stored.operations.extend(ops);
        Ok(())
    }

    /// PENDING → CANCELED: holds are released.
    pub fn cancel(&mut self, id: Uuid, now: DateTime<Utc>, ids: &mut dyn FnMut() -> Uuid) -> Result<(), LedgerError> {
        let tx = self.pending(id)?.clone();
        let mut ops = Vec::new();
        for (alias, amount) in &tx.from {
            self.op("RELEASE", alias, *amount, (*amount, -amount), &mut ops, ids());
        }
        let stored = self.transactions.get_mut(&id).expect("checked above");
        stored.status = Status::Canceled;
        stored.updated_at = now;
        stored.operations.extend(ops);
        Ok(())
    }

    /// Creates the mirror of an APPROVED transaction (only once, never of a revert).
    pub fn revert(&mut self, id: Uuid, now: DateTime<Utc>, ids: &mut dyn FnMut() -> Uuid) -> Result<Uuid, LedgerError> {
        let tx = self.transactions.get(&id).ok_or_else(|| err("0070", "transaction not found"))?.clone();
        if tx.parent.is_some() {
            return Err(err("0088", "the transaction is already a reversal"));
        }
        if tx.child.is_some() {
            return Err(err("0087", "the transaction was already reverted"));
        }
        if tx.status != Status::Approved {
            return Err(err("0099", "only APPROVED transactions can be reverted"));
        }
        let posting = |v: &Vec<(String, i64)>| {
            v.iter().map(|(alias, amount)| Posting { alias: alias.clone(), amount: *amount }).collect()
        };
        let child = self.create(
            NewTransaction {
                description: Some(format!("Revert of {id}")),
                code: tx.code.clone(),
                pending: false,
                asset: tx.asset.clone(),
                value: tx.amount,
                from: posting(&tx.to),
                to: posting(&tx.from),
                metadata: tx.metadata.clone(),
            },
            now,
            ids,
        )?;
        self.transactions.get_mut(&child).expect("just created").parent = Some(id);
        self.transactions.get_mut(&id).expect("exists").child = Some(child);
        Ok(child)
    }

    /// Account JSON (Midaz shape).
    pub fn account_json(&self, a: &Account, org: &str, ledger: &str) -> Value {
        json!({
            "id": a.id, "name": a.name, "parentAccountId": null, "entityId": a.entity_id,
            "assetCode": a.asset_code, "organizationId": org, "ledgerId": ledger,
            "portfolioId": null, "segmentId": null,
            "status": {"code": "ACTIVE", "description": null},
            "alias": a.alias, "type": a.account_type, "blocked": a.blocked,
            "metadata": a.metadata, "createdAt": a.created_at, "updatedAt": a.created_at,
            "deletedAt": null,
        })
    }

    /// Balance JSON (Midaz shape, decimals without trailing zeros).
    pub fn balance_json(&self, a: &Account, org: &str, ledger: &str) -> Value {
        json!({
            "id": a.balance_id, "organizationId": org, "ledgerId": ledger, "accountId": a.id,
            "alias": a.alias, "key": "default", "assetCode": a.asset_code,
            "available": midaz_decimal(a.available), "onHold": midaz_decimal(a.on_hold),
            "version": a.version, "accountType": a.account_type,
            "allowSending": true, "allowReceiving": a.allow_receiving, "overdraftUsed": "0",
            "createdAt": a.created_at, "updatedAt": a.created_at, "deletedAt": null,
            "metadata": null,
        })
    }

    /// Transaction JSON (Midaz shape). `status_override` shows `CREATED` on create responses.
    pub fn transaction_json(&self, tx: &Transaction, org: &str, ledger: &str, status_override: Option<&str>) -> Value {
        let status = status_override.unwrap_or(tx.status.as_str());
        let ops: Vec<Value> = tx
            .operations
            .iter()
            .map(|o| {
                json!({
                    "id": o.id, "transactionId": tx.id, "type": o.kind,
                    "assetCode": tx.asset, "accountId": o.account_id, "accountAlias": o.alias,
                    "balanceKey": "default", "amount": {"value": midaz_decimal(o.amount)},
                    "balanceAfter": {"available": midaz_decimal(o.available_after),
                                     "onHold": midaz_decimal(o.on_hold_after)},
                    "balanceAffected": true, "status": {"code": "ACTIVE"}, "metadata": {},
                })
            })
            .collect();
        let mut v = json!({
            "id": tx.id, "description": tx.description,
            "status": {"code": status, "description": status},
            "amount": midaz_decimal(tx.amount), "assetCode": tx.asset,
            "chartOfAccountsGroupName": "", "code": tx.code,
            "source": tx.from.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
            "destination": tx.to.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
            "ledgerId": ledger, "organizationId": org, "route": "",
            "metadata": tx.metadata, "createdAt": tx.created_at, "updatedAt": tx.updated_at,
            "deletedAt": null, "operations": ops,
        });
        if let Some(parent) = tx.parent {
            v["parentTransactionId"] = json!(parent);
        }
        v
    }
}

/// Resolves Midaz `FromTo` legs (amount | share | remaining) against a total.
pub fn resolve_legs(legs: &[Value], total: i64) -> Result<Vec<Posting>, LedgerError> {
    let mut out = Vec::with_capacity(legs.len());
    let mut remaining_at = None;
    let mut assigned = 0i64;
    for (i, leg) in legs.iter().enumerate() {
        let alias = leg
            .get("accountAlias")
            .and_then(Value::as_str)
            .ok_or_else(|| err("0047", "accountAlias is required"))?
            .to_owned();
        let amount = if let Some(a) = leg.get("amount").filter(|v| !v.is_null()) {
            parse_amount(a.get("value").unwrap_or(&Value::Null)).ok_or_else(|| err("0047", "invalid leg amount"))?
        } else if let Some(s) = leg.get("share").filter(|v| !v.is_null()) {
            let pct = s.get("percentage").and_then(Value::as_i64).unwrap_or(0);
            total * pct / 100
        } else if leg.get("remaining").is_some_and(|v| !v.is_null()) {
            remaining_at = Some(i);
            0
        } else {
            return Err(err("0047", "each leg needs amount, share or remaining"));
        };
        assigned += amount;
        out.push(Posting { alias, amount });
    }
    if let Some(i) = remaining_at {
        out[i].amount = total - assigned;
    }
    Ok(out)
}

/// Midaz metadata must be flat.
pub fn flat_metadata(v: Option<&Value>) -> Result<Value, LedgerError> {
    match v {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(Value::Object(m)) if m.values().all(|x| !x.is_object() && !x.is_array()) => Ok(Value::Object(m.clone())),
        Some(_) => Err(err("0047", "metadata must be a flat object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn account(alias: &str, kind: &str, n: u128) -> Account {
        Account {
            id: Uuid::from_u128(n),
            name: None,
            alias: alias.into(),
            asset_code: "BRL".into(),
            account_type: kind.into(),
            entity_id: None,
            blocked: false,
            allow_receiving: true,
            metadata: json!({}),
            balance_id: Uuid::from_u128(n + 1000),
            available: 0,
            on_hold: 0,
            version: 0,
            created_at: Utc::now(),
        }
    }

    fn setup() -> (Ledger, impl FnMut() -> Uuid) {
        let mut l = Ledger::default();
        l.create_account(account("@external/BRL", "external", 1)).unwrap();
        for (i, a) in ["@a", "@b", "@c"].iter().enumerate() {
            l.create_account(account(a, "deposit", 10 + i as u128)).unwrap();
        }
        let mut n = 100_000u128;
        let ids = move || {
            n += 1;
            Uuid::from_u128(n)
        };
        (l, ids)
    }

    fn tx(from: &str, to: &str, amount: i64, pending: bool) -> NewTransaction {
        NewTransaction {
            description: None,
            code: None,
            pending,
            asset: "BRL".into(),
            value: amount,
            from: vec![Posting { alias: from.into(), amount }],
            to: vec![Posting { alias: to.into(), amount }],
            metadata: json!({}),
        }
    }

    #[test]
    fn hold_commit_cancel_revert_codes() {
        let (mut l, mut ids) = setup();
        let now = Utc::now();
        l.create(tx("@external/BRL", "@a", 10_000, false), now, &mut ids).unwrap();
        assert_eq!(l.by_alias("@a").unwrap().available, 10_000);
        assert_eq!(l.by_alias("@external/BRL").unwrap().available, -10_000);

        let hold = l.create(tx("@a", "@external/BRL", 4_000, true), now, &mut ids).unwrap();
        let a = l.by_alias("@a").unwrap();
        assert_eq!((a.available, a.on_hold), (6_000, 4_000));
        l.commit(hold, now, &mut ids).unwrap();
        assert_eq!(l.commit(hold, now, &mut ids).unwrap_err().code, "0099");
        assert_eq!(l.cancel(hold, now, &mut ids).unwrap_err().code, "0099");
        let a = l.by_alias("@a").unwrap();
        assert_eq!((a.available, a.on_hold), (6_000, 0));

        let r = l.revert(hold, now, &mut ids).unwrap();
        assert_eq!(l.revert(hold, now, &mut ids).unwrap_err().code, "0087");
        assert_eq!(l.revert(r, now, &mut ids).unwrap_err().code, "0088");
        assert_eq!(l.by_alias("@a").unwrap().available, 10_000);

        assert_eq!(l.create(tx("@a", "@b", 20_000, false), now, &mut ids).unwrap_err().code, "0018");
        assert_eq!(l.create(tx("@external/BRL", "@b", 1, true), now, &mut ids).unwrap_err().code, "0098");
        assert_eq!(l.create(tx("@a", "@zz", 1, false), now, &mut ids).unwrap_err().code, "0085");
        assert_eq!(l.total(), 0);
    }

    #[test]
    fn decimals_strip_trailing_zeros() {
        assert_eq!(midaz_decimal(10_000), "100");
        assert_eq!(midaz_decimal(9_950), "99.5");
        assert_eq!(midaz_decimal(10_050), "100.5");
        assert_eq!(midaz_decimal(7), "0.07");
        assert_eq!(midaz_decimal(-1_005), "-10.05");
        assert_eq!(midaz_decimal(0), "0");
    }

    #[test]
    fn amounts_are_read_from_strings_or_numbers_with_two_places_at_most() {
        assert_eq!(parse_amount(&json!("10.5")), Some(1_050));
        assert_eq!(parse_amount(&json!(100)), Some(10_000));
        assert_eq!(parse_amount(&json!(99.99)), Some(9_999));
        assert_eq!(parse_amount(&json!("-0.07")), Some(-7));
        for bad in [json!("1.234"), json!("1,00"), json!(null), json!(true), json!("")] {
            assert_eq!(parse_amount(&bad), None, "{bad}");
        }
    }

    #[test]
    fn share_and_remaining() {
        let legs = vec![
            json!({"accountAlias":"@a","share":{"percentage":60}}),
            json!({"accountAlias":"@b","remaining":"remaining"}),
        ];
        let p = resolve_legs(&legs, 1_001).unwrap();
        assert_eq!((p[0].amount, p[1].amount), (600, 401));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Hold { from: usize, to: usize, amount: i64 },
        Transfer { from: usize, to: usize, amount: i64 },
        Commit(usize),
        Cancel(usize),
        Revert(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3usize, 0..4usize, 1..20_000i64).prop_map(|(from, to, amount)| Step::Hold { from, to, amount }),
            (0..4usize, 0..4usize, 1..20_000i64).prop_map(|(from, to, amount)| Step::Transfer { from, to, amount }),
            (0..64usize).prop_map(Step::Commit),
            (0..64usize).prop_map(Step::Cancel),
            (0..64usize).prop_map(Step::Revert),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// After any sequence of holds, commits, cancels and reverts (valid or not), the sum of all
        /// balances is unchanged, no non-external available balance goes negative, and holds equal
        /// the sum of pending transactions.
        #[test]
        fn ledger_invariants(steps in proptest::collection::vec(step(), 1..60)) {
            let (mut l, mut ids) = setup();
            let now = Utc::now();
            let aliases = ["@a", "@b", "@c", "@external/BRL"];
            l.create(NewTransaction {
                description: None, code: None, pending: false, asset: "BRL".into(), value: 90_000,
                from: vec![Posting { alias: "@external/BRL".into(), amount: 90_000 }],
                to: vec![
                    Posting { alias: "@a".into(), amount: 30_000 },
                    Posting { alias: "@b".into(), amount: 30_000 },
                    Posting { alias: "@c".into(), amount: 30_000 },
                ],
                metadata: json!({}),
            }, now, &mut ids).unwrap();
            let total = l.total();
            let mut created: Vec<Uuid> = Vec::new();
            for s in steps {
                let outcome = match s {
                    Step::Hold { from, to, amount } => l.create(tx(aliases[from], aliases[to], amount, true), now, &mut ids).map(|id| created.push(id)),
                    Step::Transfer { from, to, amount } => l.create(tx(aliases[from], aliases[to], amount, false), now, &mut ids).map(|id| created.push(id)),
                    Step::Commit(i) if !created.is_empty() => l.commit(created[i % created.len()], now, &mut ids),
                    Step::Cancel(i) if !created.is_empty() => l.cancel(created[i % created.len()], now, &mut ids),
                    Step::Revert(i) if !created.is_empty() => l.revert(created[i % created.len()], now, &mut ids).map(|id| created.push(id)),
                    _ => Ok(()),
                };
                // Errors must leave no trace; the invariants are checked either way.
                let _ = outcome;
                prop_assert_eq!(l.total(), total);
                for acc in l.accounts.values().filter(|a| !a.is_external()) {
                    prop_assert!(acc.available >= 0, "{} went negative", acc.alias);
                    prop_assert!(acc.on_hold >= 0);
                }
                let pending_sum: i64 = l.transactions.values().filter(|t| t.status == Status::Pending).map(|t| t.amount).sum();
                let holds: i64 = l.accounts.values().map(|a| a.on_hold).sum();
                prop_assert_eq!(pending_sum, holds);
            }
        }
    }
}
