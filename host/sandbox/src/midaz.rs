//! Midaz v3 simulator: organizations, ledgers, assets, accounts, balances and transactions with
//! X-Idempotency semantics (integrations.md §3).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Shared;
use crate::ledger::{
    Account, Ledger, LedgerError, NewTransaction, Posting, err, flat_metadata, parse_amount, resolve_legs,
};
use crate::sim::{ApiError, bearer};

/// One ledger with its metadata.
pub struct LedgerRec {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub ledger: Ledger,
    pub assets: Vec<Value>,
}

struct IdemEntry {
    response: Option<Value>,
    ready_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Midaz state.
#[derive(Default)]
pub struct MidazState {
    pub organizations: BTreeMap<Uuid, Value>,
    pub ledgers: BTreeMap<(Uuid, Uuid), LedgerRec>,
    idempotency: HashMap<String, IdemEntry>,
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        ApiError(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({"code": e.code, "title": e.title, "message": e.message, "entityType": "Transaction"}),
        )
    }
}

type ApiResult = Result<Response, ApiError>;

fn parse_uuid(raw: &str, code: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::from(err(code, format!("{raw} is not a valid id"))))
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::from(err("0094", format!("invalid JSON body: {e}"))))
}

/// Requires a Lerian token when the sandbox has Lerian auth configured.
pub async fn lerian_auth(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if state.config.lerian_auth.is_some() && !request.uri().path().starts_with("/v1/login/") {
        let ok = bearer(request.headers())
            .is_some_and(|t| state.sim.lerian_tokens.lock().unwrap_or_else(|e| e.into_inner()).contains(t));
        if !ok {
            return ApiError(
                StatusCode::UNAUTHORIZED,
                json!({"code": "0041", "title": "Token Missing", "message": "a valid bearer token is required"}),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Lerian `POST /v1/login/oauth/access_token` (camelCase JSON body).
pub async fn lerian_token(State(state): State<Arc<Shared>>, Json(body): Json<Value>) -> ApiResult {
    let creds = state.config.lerian_auth.clone().unwrap_or_default();
    let matches = body["grantType"] == "client_credentials"
        && body["clientId"] == creds.client_id.as_str()
        && body["clientSecret"] == creds.client_secret.as_str();
    if !matches {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            json!({"code": "AUT-0001", "title": "Invalid credentials", "message": "invalid client credentials"}),
        ));
    }
    let token = state.sim.token();
    state.sim.lerian_tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone());
    Ok(Json(json!({"accessToken": token, "tokenType": "Bearer", "expiresIn": 3600})).into_response())
}

/// Router for the Midaz simulator.
pub fn router(state: Arc<Shared>) -> Router {
    let p = "/v1/organizations/{org}/ledgers/{ledger}";
    Router::new()
        .route("/v1/login/oauth/access_token", post(lerian_token))
        .route("/health", get(|| async { "healthy" }))
        .route("/v1/organizations", post(create_org).get(list_orgs))
        .route("/v1/organizations/{org}", get(get_org))
        .route("/v1/organizations/{org}/ledgers", post(create_ledger))
        .route(p, get(get_ledger))
        .route(&format!("{p}/assets"), post(create_asset).get(list_assets))
        .route(&format!("{p}/accounts"), post(create_account).get(list_accounts))
        .route(&format!("{p}/accounts/{{id}}"), get(get_account))
        .route(&format!("{p}/accounts/alias/{{alias}}"), get(get_account_by_alias))
        .route(&format!("{p}/accounts/{{id}}/balances"), get(get_balances))
        .route(&format!("{p}/accounts/alias/{{alias}}/balances"), get(get_balances_by_alias))
        .route(&format!("{p}/transactions/json"), post(tx_json))
        .route(&format!("{p}/transactions/inflow"), post(tx_inflow))
        .route(&format!("{p}/transactions/outflow"), post(tx_outflow))
        .route(&format!("{p}/transactions/{{id}}"), get(get_transaction))
        .route(&format!("{p}/transactions/{{id}}/commit"), post(commit))
        .route(&format!("{p}/transactions/{{id}}/cancel"), post(cancel))
        .route(&format!("{p}/transactions/{{id}}/revert"), post(revert))
        .layer(axum::middleware::from_fn_with_state(state.clone(), lerian_auth))
        .with_state(state)
}

impl Shared {
    fn midaz(&self) -> std::sync::MutexGuard<'_, MidazState> {
        self.midaz.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an organization (also used by the demo seed).
    pub fn create_organization(&self, legal_name: &str, legal_document: &str) -> Uuid {
        let id = self.sim.uuid();
        let now = self.sim.clock.now();
        self.midaz().organizations.insert(
            id,
            json!({"id": id, "legalName": legal_name, "legalDocument": legal_document,
                   "doingBusinessAs": legal_name, "status": {"code": "ACTIVE", "description": null},
                   "address": null, "metadata": null, "createdAt": now, "updatedAt": now, "deletedAt": null}),
        );
        id
    }

    /// Creates a ledger in an organization.
    pub fn create_ledger(&self, org: Uuid, name: &str) -> Result<Uuid, ApiError> {
        let id = self.sim.uuid();
        let mut st = self.midaz();
        if !st.organizations.contains_key(&org) {
            return Err(err("0007", "organization not found").into());
        }
        st.ledgers.insert(
            (org, id),
            LedgerRec {
                name: name.to_owned(),
                created_at: self.sim.clock.now(),
                ledger: Ledger::default(),
                assets: Vec::new(),
            },
        );
        Ok(id)
    }

    /// Creates an asset; like Midaz, this also creates `@external/<CODE>`.
    pub fn create_asset(&self, org: Uuid, ledger: Uuid, code: &str, name: &str) -> Result<Value, ApiError> {
        let (asset_id, ext_id, bal_id) = (self.sim.uuid(), self.sim.uuid(), self.sim.uuid());
        let now = self.sim.clock.now();
        let mut st = self.midaz();
        let rec = st.ledgers.get_mut(&(org, ledger)).ok_or_else(|| ApiError::from(err("0007", "ledger not found")))?;
        let asset = json!({"id": asset_id, "name": name, "type": "currency", "code": code,
            "organizationId": org, "ledgerId": ledger, "status": {"code": "ACTIVE"},
            "createdAt": now, "updatedAt": now, "deletedAt": null, "metadata": null});
        rec.ledger.create_account(Account {
            id: ext_id,
            name: Some(format!("External {code}")),
            alias: format!("@external/{code}"),
            asset_code: code.to_owned(),
            account_type: "external".to_owned(),
            entity_id: None,
            blocked: false,
            allow_receiving: true,
            metadata: json!({}),
            balance_id: bal_id,
            available: 0,
            on_hold: 0,
            version: 0,
            created_at: now,
        })?;
        rec.assets.push(asset.clone());
        Ok(asset)
    }

    /// Creates an account (alias unique per ledger).
    pub fn create_account(&self, org: Uuid, ledger: Uuid, body: &Value) -> Result<Value, ApiError> {
        let (id, bal_id) = (self.sim.uuid(), self.sim.uuid());
        let now = self.sim.clock.now();
        let asset = body["assetCode"].as_str().ok_or_else(|| ApiError::from(err("0047", "assetCode is required")))?;
        let kind = body["type"].as_str().ok_or_else(|| ApiError::from(err("0047", "type is required")))?;
        let alias = body["alias"].as_str().map(str::to_owned).unwrap_or_else(|| id.to_string());
        if alias.starts_with("@external/") {
            return Err(err("0074", "the @external/ prefix is reserved").into());
        }
        if alias.len() > 100 || !alias.chars().all(|c| c.is_ascii_alphanumeric() || "@:_-".contains(c)) {
            return Err(err("0047", "invalid alias").into());
        }
        let metadata = flat_metadata(body.get("metadata"))?;
        let mut st = self.midaz();
        let rec = st.ledgers.get_mut(&(org, ledger)).ok_or_else(|| ApiError::from(err("0007", "ledger not found")))?;
        if !rec.assets.iter().any(|a| a["code"] == asset) {
            return Err(err("0007", format!("asset {asset} not found")).into());
        }
        let account = rec
            .ledger
            .create_account(Account {
                id,
                name: body["name"].as_str().map(str::to_owned),
                alias,
                asset_code: asset.to_owned(),
                account_type: kind.to_owned(),
                entity_id: body["entityId"].as_str().map(str::to_owned),
                blocked: body["blocked"].as_bool().unwrap_or(false),
                allow_receiving: true,
                metadata,
                balance_id: bal_id,
                available: 0,
                on_hold: 0,
                version: 0,
                created_at: now,
            })?
            .clone();
        Ok(rec.ledger.account_json(&account, &org.to_string(), &ledger.to_string()))
    }

    fn with_ledger<T>(
        &self,
        org: &str,
        ledger: &str,
        f: impl FnOnce(&mut LedgerRec, &mut dyn FnMut() -> Uuid, DateTime<Utc>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let key = (parse_uuid(org, "0007")?, parse_uuid(ledger, "0007")?);
        let now = self.sim.clock.now();
        let sim = &self.sim;
        let mut ids = || sim.uuid();
        let mut st = self.midaz();
        let rec = st.ledgers.get_mut(&key).ok_or_else(|| ApiError::from(err("0007", "ledger not found")))?;
        f(rec, &mut ids, now)
    }

    /// Posts a transaction body (json/inflow/outflow) under idempotency; used by the seed too.
    pub fn post_transaction(
        &self,
        org: &str,
        ledger: &str,
        endpoint: &str,
        body: &Value,
        idempotency: Option<(&str, i64)>,
    ) -> Result<(Value, bool), ApiError> {
        let now = self.sim.clock.now();
        let raw_key = match idempotency {
            Some((k, _)) => k.to_owned(),
            // Midaz uses the body hash when no key is sent.
            None => hex::encode(Sha256::digest(body.to_string().as_bytes())),
        };
        let ttl = idempotency.map(|(_, t)| t).filter(|t| *t > 0).unwrap_or(300);
        let internal = format!("{org}:{ledger}:{raw_key}");
        {
            let mut st = self.midaz();
            st.idempotency.retain(|_, e| e.expires_at > now);
            if let Some(entry) = st.idempotency.get(&internal) {
                return match &entry.response {
                    Some(v) if now >= entry.ready_at => Ok((v.clone(), true)),
                    _ => Err(err("0084", "the idempotency key is still being processed").into()),
                };
            }
            st.idempotency.insert(
                internal.clone(),
                IdemEntry { response: None, ready_at: now, expires_at: now + chrono::Duration::seconds(ttl) },
            );
        }
        let result = self.with_ledger(org, ledger, |rec, ids, now| {
            let req = build_request(endpoint, body)?;
            let pending = req.pending;
            let id = rec.ledger.create(req, now, ids)?;
            let tx = &rec.ledger.transactions[&id];
            Ok(rec.ledger.transaction_json(tx, org, ledger, (!pending).then_some("CREATED")))
        });
        let mut st = self.midaz();
        match result {
            Ok(v) => {
                let delay = chrono::Duration::milliseconds(self.config.midaz_idempotency_store_delay_ms as i64);
                if let Some(e) = st.idempotency.get_mut(&internal) {
                    e.response = Some(v.clone());
                    e.ready_at = self.sim.clock.now() + delay;
                }
                Ok((v, false))
            }
            Err(e) => {
                // Failed requests free the key so that a corrected retry can proceed.
                st.idempotency.remove(&internal);
                Err(e)
            }
        }
    }

    /// Sets the `allowReceiving` of the balance of `alias` in every ledger holding it; `false`
    /// when no account has the alias.
    pub fn midaz_set_allow_receiving(&self, alias: &str, allow: bool) -> bool {
        let mut st = self.midaz();
        let mut found = false;
        for rec in st.ledgers.values_mut() {
            for a in rec.ledger.accounts.values_mut().filter(|a| a.alias == alias) {
                a.allow_receiving = allow;
                found = true;
            }
        }
        found
    }

    /// Every ledger with its accounts and journal, keyed by (organization, ledger).
    pub fn midaz_ledgers(&self) -> BTreeMap<(Uuid, Uuid), Ledger> {
        self.midaz().ledgers.iter().map(|(key, rec)| (*key, rec.ledger.clone())).collect()
    }

    /// Ledger snapshot for `/_control/midaz/state`.
    pub fn midaz_state(&self) -> Value {
        let st = self.midaz();
        let ledgers: Vec<Value> = st
            .ledgers
            .iter()
            .map(|((org, id), rec)| {
                let accounts: Vec<Value> = rec
                    .ledger
                    .accounts
                    .values()
                    .map(|a| {
                        json!({"id": a.id, "alias": a.alias, "type": a.account_type,
                        "available": crate::ledger::midaz_decimal(a.available),
                        "onHold": crate::ledger::midaz_decimal(a.on_hold),
                        "availableCentavos": a.available, "onHoldCentavos": a.on_hold})
                    })
                    .collect();
                let pending =
                    rec.ledger.transactions.values().filter(|t| t.status == crate::ledger::Status::Pending).count();
                json!({"organizationId": org, "ledgerId": id, "name": rec.name, "accounts": accounts,
                       "transactions": rec.ledger.transactions.len(), "pendingTransactions": pending,
                       "totalCentavos": rec.ledger.total()})
            })
            .collect();
        json!({ "ledgers": ledgers })
    }
}

fn build_request(endpoint: &str, body: &Value) -> Result<NewTransaction, LedgerError> {
    let send = body.get("send").ok_or_else(|| err("0047", "send is required"))?;
    let asset = send["asset"].as_str().ok_or_else(|| err("0047", "send.asset is required"))?.to_owned();
    let value = parse_amount(&send["value"]).ok_or_else(|| err("0047", "send.value must be a decimal"))?;
    let legs = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let external = vec![Posting { alias: format!("@external/{asset}"), amount: value }];
    let (from, to, pending) = match endpoint {
        "inflow" => (external, resolve_legs(&legs(&send["distribute"]["to"]), value)?, false),
        "outflow" => {
            (resolve_legs(&legs(&send["source"]["from"]), value)?, external, body["pending"].as_bool().unwrap_or(false))
        }
        _ => (
            resolve_legs(&legs(&send["source"]["from"]), value)?,
            resolve_legs(&legs(&send["distribute"]["to"]), value)?,
            body["pending"].as_bool().unwrap_or(false),
        ),
    };
    if pending && body.get("transactionDate").is_some_and(|v| !v.is_null()) {
        return Err(err("0122", "transactionDate cannot be used with a pending transaction"));
    }
    Ok(NewTransaction {
        description: body["description"].as_str().map(str::to_owned),
        code: body["code"].as_str().map(str::to_owned),
        pending,
        asset,
        value,
        from,
        to,
        metadata: flat_metadata(body.get("metadata"))?,
    })
}

async fn create_org(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let b = body_json(&body)?;
    let (Some(name), Some(doc)) = (b["legalName"].as_str(), b["legalDocument"].as_str()) else {
        return Err(err("0047", "legalName and legalDocument are required").into());
    };
    let id = s.create_organization(name, doc);
    let v = s.midaz().organizations[&id].clone();
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list_orgs(State(s): State<Arc<Shared>>) -> ApiResult {
    let items: Vec<Value> = s.midaz().organizations.values().cloned().collect();
    Ok(Json(json!({"items": items, "page": 1, "limit": 100})).into_response())
}

async fn get_org(State(s): State<Arc<Shared>>, Path(org): Path<String>) -> ApiResult {
    let id = parse_uuid(&org, "0007")?;
    let v = s
        .midaz()
        .organizations
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::from(err("0007", "organization not found")))?;
    Ok(Json(v).into_response())
}

fn ledger_json(org: &Uuid, id: &Uuid, rec: &LedgerRec) -> Value {
    json!({"id": id, "organizationId": org, "name": rec.name, "status": {"code": "ACTIVE"},
           "metadata": null, "createdAt": rec.created_at, "updatedAt": rec.created_at, "deletedAt": null})
}

async fn create_ledger(State(s): State<Arc<Shared>>, Path(org): Path<String>, body: Bytes) -> ApiResult {
    let b = body_json(&body)?;
    let name = b["name"].as_str().ok_or_else(|| ApiError::from(err("0047", "name is required")))?;
    let org = parse_uuid(&org, "0007")?;
    let id = s.create_ledger(org, name)?;
    let v = ledger_json(&org, &id, &s.midaz().ledgers[&(org, id)]);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn get_ledger(State(s): State<Arc<Shared>>, Path((org, ledger)): Path<(String, String)>) -> ApiResult {
    let key = (parse_uuid(&org, "0007")?, parse_uuid(&ledger, "0007")?);
    let st = s.midaz();
    let rec = st.ledgers.get(&key).ok_or_else(|| ApiError::from(err("0007", "ledger not found")))?;
    Ok(Json(ledger_json(&key.0, &key.1, rec)).into_response())
}

async fn create_asset(
    State(s): State<Arc<Shared>>,
    Path((org, ledger)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let b = body_json(&body)?;
    let (Some(code), Some(name)) = (b["code"].as_str(), b["name"].as_str()) else {
        return Err(err("0047", "name, type and code are required").into());
    };
    let v = s.create_asset(parse_uuid(&org, "0007")?, parse_uuid(&ledger, "0007")?, code, name)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list_assets(State(s): State<Arc<Shared>>, Path((org, ledger)): Path<(String, String)>) -> ApiResult {
    s.with_ledger(&org, &ledger, |rec, _, _| {
        Ok(Json(json!({"items": rec.assets, "page": 1, "limit": 100})).into_response())
    })
}

async fn create_account(
    State(s): State<Arc<Shared>>,
    Path((org, ledger)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let b = body_json(&body)?;
    let v = s.create_account(parse_uuid(&org, "0007")?, parse_uuid(&ledger, "0007")?, &b)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list_accounts(State(s): State<Arc<Shared>>, Path((org, ledger)): Path<(String, String)>) -> ApiResult {
    s.with_ledger(&org, &ledger, |rec, _, _| {
        let items: Vec<Value> =
            rec.ledger.accounts.values().map(|a| rec.ledger.account_json(a, &org, &ledger)).collect();
        Ok(Json(json!({"items": items, "page": 1, "limit": 100})).into_response())
    })
}

async fn get_account(
    State(s): State<Arc<Shared>>,
    Path((org, ledger, id)): Path<(String, String, String)>,
) -> ApiResult {
    let id = parse_uuid(&id, "0052")?;
    s.with_ledger(&org, &ledger, |rec, _, _| {
        let a = rec.ledger.accounts.get(&id).ok_or_else(|| ApiError::from(err("0052", "account not found")))?;
        Ok(Json(rec.ledger.account_json(a, &org, &ledger)).into_response())
    })
}

async fn get_account_by_alias(
    State(s): State<Arc<Shared>>,
    Path((org, ledger, alias)): Path<(String, String, String)>,
) -> ApiResult {
    s.with_ledger(&org, &ledger, |rec, _, _| {
        let a = rec.ledger.by_alias(&alias).ok_or_else(|| ApiError::from(err("0085", "account alias not found")))?;
        Ok(Json(rec.ledger.account_json(a, &org, &ledger)).into_response())
    })
}

fn balances_page(rec: &LedgerRec, a: &Account, org: &str, ledger: &str) -> Response {
    Json(json!({"items": [rec.ledger.balance_json(a, org, ledger)], "limit": 10, "next_cursor": null, "prev_cursor": null})).into_response()
}

async fn get_balances(
    State(s): State<Arc<Shared>>,
    Path((org, ledger, id)): Path<(String, String, String)>,
) -> ApiResult {
    let id = parse_uuid(&id, "0052")?;
    s.with_ledger(&org, &ledger, |rec, _, _| {
        let a = rec.ledger.accounts.get(&id).ok_or_else(|| ApiError::from(err("0052", "account not found")))?;
        Ok(balances_page(rec, a, &org, &ledger))
    })
}

async fn get_balances_by_alias(
    State(s): State<Arc<Shared>>,
    Path((org, ledger, alias)): Path<(String, String, String)>,
) -> ApiResult {
    s.with_ledger(&org, &ledger, |rec, _, _| {
        let a = rec.ledger.by_alias(&alias).ok_or_else(|| ApiError::from(err("0085", "account alias not found")))?;
        Ok(balances_page(rec, a, &org, &ledger))
    })
}

fn idempotency_header(headers: &HeaderMap) -> Option<(String, i64)> {
    let key = headers.get("X-Idempotency")?.to_str().ok()?.to_owned();
    let ttl = headers.get("X-TTL").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(300);
    Some((key, ttl))
}

async fn create_tx(
    s: Arc<Shared>,
    org: String,
    ledger: String,
    headers: HeaderMap,
    body: Bytes,
    endpoint: &str,
) -> ApiResult {
    let b = body_json(&body)?;
    let idem = idempotency_header(&headers);
    let (v, replayed) =
        s.post_transaction(&org, &ledger, endpoint, &b, idem.as_ref().map(|(k, t)| (k.as_str(), *t)))?;
    Ok((StatusCode::CREATED, [("X-Idempotency-Replayed", if replayed { "true" } else { "false" })], Json(v))
        .into_response())
}

async fn tx_json(
    State(s): State<Arc<Shared>>,
    Path((org, ledger)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    create_tx(s, org, ledger, headers, body, "json").await
}

async fn tx_inflow(
    State(s): State<Arc<Shared>>,
    Path((org, ledger)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    create_tx(s, org, ledger, headers, body, "inflow").await
}

async fn tx_outflow(
    State(s): State<Arc<Shared>>,
    Path((org, ledger)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    create_tx(s, org, ledger, headers, body, "outflow").await
}

async fn get_transaction(
    State(s): State<Arc<Shared>>,
    Path((org, ledger, id)): Path<(String, String, String)>,
) -> ApiResult {
    let id = parse_uuid(&id, "0070")?;
    s.with_ledger(&org, &ledger, |rec, _, _| {
        let tx =
            rec.ledger.transactions.get(&id).ok_or_else(|| ApiError::from(err("0070", "transaction not found")))?;
        Ok(Json(rec.ledger.transaction_json(tx, &org, &ledger, None)).into_response())
    })
}

async fn commit(State(s): State<Arc<Shared>>, Path((org, ledger, id)): Path<(String, String, String)>) -> ApiResult {
    let id = parse_uuid(&id, "0070")?;
    s.with_ledger(&org, &ledger, |rec, ids, now| {
        rec.ledger.commit(id, now, ids)?;
        let tx = &rec.ledger.transactions[&id];
        Ok((StatusCode::CREATED, Json(rec.ledger.transaction_json(tx, &org, &ledger, None))).into_response())
    })
}

async fn cancel(State(s): State<Arc<Shared>>, Path((org, ledger, id)): Path<(String, String, String)>) -> ApiResult {
    let id = parse_uuid(&id, "0070")?;
    s.with_ledger(&org, &ledger, |rec, ids, now| {
        rec.ledger.cancel(id, now, ids)?;
        let tx = &rec.ledger.transactions[&id];
        Ok((StatusCode::CREATED, Json(rec.ledger.transaction_json(tx, &org, &ledger, None))).into_response())
    })
}

async fn revert(
    State(s): State<Arc<Shared>>,
    Path((org, ledger, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let id = parse_uuid(&id, "0070")?;
    // Revert is a create-type endpoint: X-Idempotency applies (key defaults to the parent id).
    let (key, ttl) = idempotency_header(&headers).unwrap_or_else(|| (format!("revert-{id}"), 300));
    let internal = format!("{org}:{ledger}:{key}");
    let now = s.sim.clock.now();
    if let Some(v) =
        s.midaz().idempotency.get(&internal).filter(|e| e.expires_at > now).and_then(|e| e.response.clone())
    {
        return Ok((StatusCode::CREATED, [("X-Idempotency-Replayed", "true")], Json(v)).into_response());
    }
    let v = s.with_ledger(&org, &ledger, |rec, ids, now| {
        let child = rec.ledger.revert(id, now, ids)?;
        Ok(rec.ledger.transaction_json(&rec.ledger.transactions[&child], &org, &ledger, None))
    })?;
    s.midaz().idempotency.insert(
        internal,
        IdemEntry { response: Some(v.clone()), ready_at: now, expires_at: now + chrono::Duration::seconds(ttl) },
    );
    Ok((StatusCode::CREATED, [("X-Idempotency-Replayed", "false")], Json(v)).into_response())
}
