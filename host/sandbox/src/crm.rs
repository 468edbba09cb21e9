//! Lerian CRM simulator: holders and aliases (integrations.md §4).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Shared;
use crate::sim::ApiError;

/// CRM state: holders and aliases as stored JSON.
#[derive(Default)]
pub struct CrmState {
    pub holders: BTreeMap<Uuid, Value>,
    pub aliases: BTreeMap<Uuid, Value>,
}

fn crm_err(code: &str, message: &str) -> ApiError {
    let status = match code {
        "CRM-0006" | "CRM-0008" => StatusCode::NOT_FOUND,
        "CRM-0010" | "CRM-0013" => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError(status, json!({"code": code, "title": message, "message": message}))
}

/// Every CRM route needs `X-Organization-Id` (CRM-0018).
async fn require_org(request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/v1/") && !request.headers().contains_key("X-Organization-Id") {
        return crm_err("CRM-0018", "X-Organization-Id header is required").into_response();
    }
    next.run(request).await
}

/// Router for the CRM simulator.
pub fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(|| async { "healthy" }))
        .route("/v1/holders", post(create_holder).get(list_holders))
        .route("/v1/holders/{id}", get(get_holder))
        .route("/v1/holders/{id}/aliases", post(create_alias))
        .route("/v1/holders/{holder}/aliases/{alias}", get(get_alias).patch(update_alias))
        .route("/v1/aliases", get(list_aliases))
        .layer(axum::middleware::from_fn(require_org))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::midaz::lerian_auth))
        .with_state(state)
}

impl Shared {
    fn crm(&self) -> std::sync::MutexGuard<'_, crate::crm::CrmState> {
        self.crm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a holder (also used by the demo seed).
    pub fn crm_create_holder(&self, body: &Value) -> Result<Value, ApiError> {
        let (Some(kind), Some(name), Some(document)) =
            (body["type"].as_str(), body["name"].as_str(), body["document"].as_str())
        else {
            return Err(crm_err("CRM-0001", "type, name and document are required"));
        };
        if kind != "NATURAL_PERSON" && kind != "LEGAL_PERSON" {
            return Err(crm_err("CRM-0001", "type must be NATURAL_PERSON or LEGAL_PERSON"));
        }
        let id = self.sim.uuid();
        let now = self.sim.clock.now();
        let mut st = self.crm();
        if st.holders.values().any(|h| h["document"] == document) {
            return Err(crm_err("CRM-0010", "A document can only be associated with one holder."));
        }
        let mut holder = body.clone();
        holder["id"] = json!(id);
        holder["name"] = json!(name);
        holder["createdAt"] = json!(now);
        holder["updatedAt"] = json!(now);
        holder["deletedAt"] = Value::Null;
        st.holders.insert(id, holder.clone());
        Ok(holder)
    }

    /// Creates an alias for a holder; `document` and `type` are copied from the holder.
    pub fn crm_create_alias(&self, holder_id: Uuid, body: &Value) -> Result<Value, ApiError> {
        let (Some(ledger), Some(account)) = (body["ledgerId"].as_str(), body["accountId"].as_str()) else {
            return Err(crm_err("CRM-0001", "ledgerId and accountId are required"));
        };
        let id = self.sim.uuid();
        let now = self.sim.clock.now();
        let mut st = self.crm();
        let holder = st.holders.get(&holder_id).cloned().ok_or_else(|| crm_err("CRM-0006", "Holder not found"))?;
        if st.aliases.values().any(|a| a["accountId"] == account && a["ledgerId"] == ledger) {
            return Err(crm_err(
                "CRM-0013",
                "An accountId from ledger can only be associated with a single related account on CRM.",
            ));
        }
        let mut alias = body.clone();
        alias["id"] = json!(id);
        alias["holderId"] = json!(holder_id);
        alias["document"] = holder["document"].clone();
        alias["type"] = holder["type"].clone();
        alias["createdAt"] = json!(now);
        alias["updatedAt"] = json!(now);
        alias["deletedAt"] = Value::Null;
        st.aliases.insert(id, alias.clone());
        Ok(alias)
    }
}

impl Shared {
    /// Merges `patch` into an alias (`bankingDetails` field by field, as CRM's PATCH does).
    pub(crate) fn crm_update_alias(&self, alias_id: Uuid, patch: &Value) -> Result<Value, ApiError> {
        let now = self.sim.clock.now();
        let mut st = self.crm();
        let alias = st.aliases.get_mut(&alias_id).ok_or_else(|| crm_err("CRM-0008", "Alias not found"))?;
        if let Some(closing) = patch["bankingDetails"]["closingDate"].as_str() {
            let created = alias["createdAt"].as_str().and_then(|c| c.get(..10)).unwrap_or_default();
            if chrono::NaiveDate::parse_from_str(closing, "%Y-%m-%d").is_err() {
                return Err(crm_err("CRM-0001", "closingDate must be YYYY-MM-DD"));
            }
            if closing < created {
                return Err(crm_err("CRM-0023", "closingDate cannot be before the alias creation"));
            }
        }
        for (field, value) in patch.as_object().into_iter().flatten() {
            match (field.as_str(), value.as_object()) {
                ("id" | "holderId" | "ledgerId" | "accountId" | "document" | "type" | "createdAt", _) => {}
                ("bankingDetails", Some(details)) => {
                    if !alias["bankingDetails"].is_object() {
                        alias["bankingDetails"] = json!({});
                    }
                    for (k, v) in details {
                        alias["bankingDetails"][k] = v.clone();
                    }
                }
                _ => alias[field.as_str()] = value.clone(),
            }
        }
        alias["updatedAt"] = json!(now);
        Ok(alias.clone())
    }

    /// Closes the account behind a Midaz account id: its alias gets today's (simulated)
    /// `bankingDetails.closingDate`. Returns the alias, or `None` when no alias has the account.
    pub(crate) fn crm_close_account(&self, account_id: &str) -> Option<Value> {
        let alias_id = self.crm().aliases.iter().find(|(_, a)| a["accountId"] == account_id).map(|(id, _)| *id)?;
        let today = self.sim.clock.now().format("%Y-%m-%d").to_string();
        self.crm_update_alias(alias_id, &json!({"bankingDetails": {"closingDate": today}})).ok()
    }
}

fn parse(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| crm_err("CRM-0001", "invalid JSON body"))
}

fn page(items: Vec<Value>) -> Response {
    Json(json!({"items": items, "page": 1, "limit": 10})).into_response()
}

async fn create_holder(State(s): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let v = s.crm_create_holder(&parse(&body)?)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list_holders(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let items = s
        .crm()
        .holders
        .values()
        .filter(|h| q.get("document").is_none_or(|d| h["document"] == d.as_str()))
        .filter(|h| q.get("external_id").is_none_or(|d| h["externalId"] == d.as_str()))
        .cloned()
        .collect();
    page(items)
}

async fn get_holder(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| crm_err("CRM-0006", "Holder not found"))?;
    let h = s.crm().holders.get(&id).cloned().ok_or_else(|| crm_err("CRM-0006", "Holder not found"))?;
    Ok(Json(h).into_response())
}

async fn create_alias(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| crm_err("CRM-0006", "Holder not found"))?;
    let v = s.crm_create_alias(id, &parse(&body)?)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn get_alias(
    State(s): State<Arc<Shared>>,
    Path((holder, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || crm_err("CRM-0008", "Alias not found");
    let alias = Uuid::parse_str(&alias).map_err(|_| not_found())?;
    let a = s.crm().aliases.get(&alias).cloned().ok_or_else(not_found)?;
    if a["holderId"] != holder.as_str() {
        return Err(not_found());
    }
    Ok(Json(a).into_response())
}

async fn update_alias(
    State(s): State<Arc<Shared>>,
    Path((holder, alias)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let not_found = || crm_err("CRM-0008", "Alias not found");
    let alias = Uuid::parse_str(&alias).map_err(|_| not_found())?;
    if s.crm().aliases.get(&alias).is_none_or(|a| a["holderId"] != holder.as_str()) {
        return Err(not_found());
    }
    Ok(Json(s.crm_update_alias(alias, &parse(&body)?)?).into_response())
}

async fn list_aliases(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let matches = |a: &Value, param: &str, field: &str| q.get(param).is_none_or(|v| a[field] == v.as_str());
    let items = s
        .crm()
        .aliases
        .values()
        .filter(|a| {
            matches(a, "account_id", "accountId")
                && matches(a, "ledger_id", "ledgerId")
                && matches(a, "holder_id", "holderId")
                && matches(a, "document", "document")
                && q.get("banking_details_branch").is_none_or(|v| a["bankingDetails"]["branch"] == v.as_str())
                && q.get("banking_details_account").is_none_or(|v| a["bankingDetails"]["account"] == v.as_str())
        })
        .cloned()
        .collect();
    page(items)
}
