//! The authorization matrix, generated from `/openapi.json`: every documented operation is called
//! with no token, with the wrong kind of token, and (tenant routes) by another tenant on the first
//! tenant's real resources. A route added without auth, or answering another tenant's ids with
//! anything but 404, fails here. Also checks that the document declares what the server does.

#[macro_use]
mod dict_common;

use std::collections::BTreeMap;

use dict_common::{Dx, eventually, settled_cash_out};
use pix_core::transfer::{Direction, TransferStatus};
use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(every_operation_refuses_missing_wrong_and_foreign_credentials);

/// Routes without a bearer token, on purpose. Anything else undocumented-as-secured fails.
/// Health and metrics, and the two signed ingresses (BTG's webhooks, this service's own
/// intra-PSP deliveries), which authenticate by HMAC rather than by bearer token. The collection
/// locations and their key set are fetched by any payer's PSP: the unguessable token is the secret.
const UNSECURED: &[&str] = &[
    "/health",
    "/readyz",
    "/metrics",
    "/v1/inbound/btg/{tenant_id}",
    "/v1/payment/webhooks/intra-psp/events",
    "/qr/v2/cob/{token}",
    "/qr/v2/cobv/{token}",
    "/qr/v2/jwks",
];

/// DICT lookups read the shared directory (any participant's keys and persons), not a tenant's
/// records.
const GLOBAL_READS: &[&str] =
    &["/v1/dict/keys/{key}", "/v1/dict/statistics/keys/{key}", "/v1/dict/statistics/persons/{taxId}"];

const ANA_EMAIL: &str = "ana.pereira@example.com";

struct Operation {
    method: Method,
    path: String,
    /// The security scheme required (`tenant_token` or `admin_token`), if any.
    scheme: Option<String>,
    responses: Vec<String>,
    has_path_params: bool,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let scheme = op["security"]
                .as_array()
                .and_then(|reqs| reqs.iter().flat_map(|r| r.as_object().unwrap().keys()).next().cloned());
            ops.push(Operation {
                method,
                path: path.clone(),
                scheme,
                responses: op["responses"].as_object().unwrap().keys().cloned().collect(),
                has_path_params: path.contains('{'),
            });
        }
    }
    ops
}

/// Tenant A's resources, by the path they are addressed under.
struct Owned {
    ids: Vec<(&'static str, String)>,
    /// Strings that belong to tenant A only (ids, keys, URLs, secrets).
    secrets: Vec<String>,
    end_to_end_id: String,
    account: String,
}

impl Owned {
    fn fill(&self, path: &str) -> String {
        let (_, id) = self
            .ids
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .unwrap_or_else(|| panic!("no resource of the first tenant for {path}: add one to the matrix"));
        let start = path.find('{').unwrap();
        let end = path[start..].find('}').unwrap() + start;
        format!("{}{id}{}", &path[..start], &path[end + 1..])
    }
}

async fn created(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "creating {what}: {status} {body}");
    body
}

/// Gives tenant A one of everything a tenant can own.
async fn first_tenant_resources(dx: &Dx) -> Owned {
    let account = dx.account("@maria");
    let entry = dx.create_entry("@maria", json!({"keyType": "EVP"})).await;
    let pix = dx.app.sandbox.handle.inbound_pix(&json!({"key": entry["key"], "amount": "250.00"})).unwrap();
    let e2e = pix["endToEndId"].as_str().unwrap().to_owned();
    let store = &dx.app.db.store;
    let find = || store.transfer_by_end_to_end_id(dx.tenant.id, Direction::Cashin, &e2e);
    eventually("the cash-in recorded", || async { find().await.unwrap().is_some() }).await;
    let credited = || async { find().await.unwrap().is_some_and(|t| t.status() == TransferStatus::Completed) };
    eventually("the cash-in credited", credited).await;
    let transfer = find().await.unwrap().unwrap();
    let post = |path: &str, body: Value| dx.call(Method::POST, path).json(&body).send();
    let marker = created(
        post("/v1/dict/fraud-markers", json!({"taxIdNumber": "12345678909", "fraudType": "MULE_ACCOUNT"}))
            .await
            .unwrap(),
        "fraud marker",
    )
    .await;
    let report = created(
        post(
            "/v1/dict/infraction-reports",
            json!({"transactionId": e2e, "reason": "REFUND_REQUEST", "situationType": "SCAM"}),
        )
        .await
        .unwrap(),
        "infraction report",
    )
    .await;
    let refund = created(
        post("/v1/dict/refund-requests", json!({"transactionId": e2e, "amount": "100.00", "reason": "OPERATIONAL_FLAW", "refundDetails": "wrong amount"}))
            .await
            .unwrap(),
        "refund request",
    )
    .await;
    let claim = created(
        dx.as_account(Method::POST, "/v1/dict/claims", "@joao")
            .json(&json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"}))
            .send()
            .await
            .unwrap(),
        "claim",
    )
    .await;
    let returned = created(
        dx.as_account(Method::POST, &format!("/v1/transfers/{}/refunds", transfer.id), "@maria")
            .header("X-Reason", "MD06")
            .json(&json!({"amount": "10.00"}))
            .send()
            .await
            .unwrap(),
        "refund",
    )
    .await;
    let root = settled_cash_out(dx).await;
    let recovery = created(
        dx.as_account(Method::POST, "/v1/dict/funds-recoveries", "@maria")
            .json(&json!({"rootTransactionId": root, "situationType": "SCAM",
                          "contactInformation": {"email": "fraud-ops@example.com"}}))
            .send()
            .await
            .unwrap(),
        "funds recovery",
    )
    .await;
    let tx_id = |n: u32| format!("AUTHZMATRIX{n:010}ABCDEFGHIJ");
    let as_maria = |path: &str, body: Value| dx.as_account(Method::POST, path, "@maria").json(&body).send();
    let cob = created(
        as_maria(
            "/v1/collections/immediate",
            json!({"amount": "5.00", "expirationSeconds": 3600, "receiverKey": entry["key"], "txId": tx_id(1)}),
        )
        .await
        .unwrap(),
        "immediate collection",
    )
    .await;
    let due_date = chrono::Utc::now().date_naive() + chrono::Days::new(5);
    let cobv = created(
        as_maria(
            "/v1/collections/duedate",
            json!({"amount": {"original": "5.00"}, "dueDate": due_date, "receiverKey": entry["key"], "txId": tx_id(2),
                "debtor": {"document": "11144477735", "name": "Fulano de Tal"}}),
        )
        .await
        .unwrap(),
        "due-date collection",
    )
    .await;
    let hook_url = "https://hooks.first-tenant.example/pix";
    let endpoint =
        created(post("/v1/webhooks/endpoints", json!({"url": hook_url})).await.unwrap(), "webhook endpoint").await;

    let s = |v: &Value| v.as_str().unwrap().to_owned();
    let ids = vec![
        ("/v1/webhooks/endpoints/", s(&endpoint["id"])),
        ("/v1/dict/entries/", s(&entry["id"])),
        ("/v1/dict/claims/", s(&claim["id"])),
        ("/v1/dict/fraud-markers/", s(&marker["id"])),
        ("/v1/dict/infraction-reports/", s(&report["id"])),
        ("/v1/dict/refund-requests/", s(&refund["id"])),
        ("/v1/transfers/", transfer.id.to_string()),
        ("/v1/refunds/", s(&returned["id"])),
        ("/v1/dict/funds-recoveries/", s(&recovery["id"])),
        ("/v1/collections/immediate/", s(&cob["id"])),
        ("/v1/collections/duedate/", s(&cobv["id"])),
    ];
    let mut secrets: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    secrets.extend([s(&entry["key"]), hook_url.to_owned(), dx.tenant.id.to_string(), s(&report["bacenInfractionId"])]);
    secrets.push(s(&refund["bacenRefundId"]));
    secrets.push(s(&recovery["externalId"]));
    secrets.extend([tx_id(1), tx_id(2), s(&cob["emv"]), s(&cobv["emv"])]);
    if let Some(secret) = endpoint["secret"].as_str() {
        secrets.push(secret.to_owned());
    }
    Owned { ids, secrets, end_to_end_id: e2e, account }
}

/// A body that passes each action's validation, so what answers is the ownership check.
fn valid_body(method: &Method, path: &str) -> Option<Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    Some(match path {
        p if p.ends_with("/infraction-reports/{infraction_id}/close") => json!({"analysisResult": "DISAGREED"}),
        p if p.ends_with("/refund-requests/{refund_id}/close") => {
            json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "OTHER"})
        }
        p if p.ends_with("/entries/{entry_id}") => {
            json!({"account": {"branch": "0001", "number": "123456", "type": "CACC"},
                                                          "owner": {"name": "Maria"}})
        }
        p if p.ends_with("/claims/{claim_id}/cancel") => json!({"reason": "USER_REQUESTED"}),
        p if p.ends_with("/funds-recoveries/{id}") => json!({"situationType": "SCAM"}),
        p if p.ends_with("/refunds") => json!({"amount": "1.00"}),
        _ => json!({}),
    })
}

async fn every_operation_refuses_missing_wrong_and_foreign_credentials(dx: &Dx) {
    let app = &dx.app;
    let doc: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    let ops = operations(&doc);
    assert!(ops.len() > 50, "the document lists the API: {}", ops.len());
    let owned = first_tenant_resources(dx).await;
    let other = app.tenant("other").await;
    let url = |path: &str| format!("{}{path}", app.url);

    // 1. No token: 401 everywhere a token is required; the unsecured list is closed.
    for op in &ops {
        let Some(scheme) = &op.scheme else {
            assert!(UNSECURED.contains(&op.path.as_str()), "{} {} has no bearer auth", op.method, op.path);
            continue;
        };
        assert!(["tenant_token", "admin_token"].contains(&scheme.as_str()), "{scheme}");
        let response = app.http.request(op.method.clone(), url(&op.path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{} {} without a token", op.method, op.path);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert!(op.responses.contains(&"401".to_owned()), "{} {} documents 401", op.method, op.path);
        let bogus = app.request(op.method.clone(), &op.path, "not-a-real-token").send().await.unwrap();
        assert_eq!(bogus.status(), 401, "{} {} with an unknown token", op.method, op.path);
    }

    // BTG's ingress takes no bearer token: an unsigned event is refused whatever token comes with it.
    let inbound = format!("/v1/inbound/btg/{}", dx.tenant.id);
    let event = json!({"webhookId": "w-1", "event": "PIX_PAYMENT_INBOUND", "data": {}});
    for token in [None, Some(&dx.tenant.token), Some(&app.admin_token)] {
        let mut request = app.http.post(url(&inbound)).json(&event);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "unsigned inbound event (token: {})", token.is_some());
    }

    // 2. The wrong kind of token: 403, as documented.
    for op in ops.iter().filter(|op| op.scheme.is_some()) {
        let token = if op.scheme.as_deref() == Some("admin_token") { &dx.tenant.token } else { &app.admin_token };
        let response = app.request(op.method.clone(), &op.path, token).send().await.unwrap();
        assert_eq!(response.status(), 403, "{} {} with the wrong kind of token", op.method, op.path);
        assert_eq!(pix_e2e::error_code(response).await, "PIX-0010");
        assert!(op.responses.contains(&"403".to_owned()), "{} {} documents 403", op.method, op.path);
    }

    // 3. Another tenant. Lists first: they answer, without the first tenant's records.
    let as_other = |method: Method, path: &str| {
        app.request(method, path, &other.token)
            .header("X-Account-Id", &owned.account)
            .header("X-Reason", if path.ends_with("/refunds") { "MD06" } else { "USER_REQUESTED" })
    };
    let tenant_ops: Vec<&Operation> = ops.iter().filter(|op| op.scheme.as_deref() == Some("tenant_token")).collect();
    for op in tenant_ops.iter().filter(|op| op.method == Method::GET && !op.has_path_params) {
        let query = if op.path == "/v1/dict/fraud-markers" { "?tax_id=12345678909" } else { "" };
        let response = as_other(Method::GET, &format!("{}{query}", op.path)).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        // 404: the first tenant's account is not one of the other's (once ledgers are per tenant).
        assert!([200, 400, 404].contains(&status.as_u16()), "GET {} by another tenant: {status} {text}", op.path);
        for secret in &owned.secrets {
            assert!(!text.contains(secret.as_str()), "GET {} shows the first tenant's {secret}: {text}", op.path);
        }
    }

    // From here no request of the other tenant may reach BTG: any call would fail with 5xx.
    app.sandbox.handle.add_fault(FaultRule {
        id: String::new(),
        upstream: FaultTarget::Btg,
        path_prefix: String::new(),
        method: None,
        kind: FaultKind::Status { status: 500 },
        count: None,
        probability: None,
    });
    let mut checked = BTreeMap::new();
    for op in tenant_ops.iter().filter(|op| op.has_path_params && !GLOBAL_READS.contains(&op.path.as_str())) {
        let path = owned.fill(&op.path);
        let mut request = as_other(op.method.clone(), &path);
        let body = valid_body(&op.method, &op.path);
        if let Some(b) = &body {
            request = request.json(b);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 404, "{} {path} by another tenant: {text}", op.method);
        assert!(op.responses.contains(&"404".to_owned()), "{} {} documents 404", op.method, op.path);
        for secret in owned.secrets.iter().filter(|s| !path.contains(s.as_str())) {
            assert!(!text.contains(secret.as_str()), "{} {path} shows the first tenant's {secret}: {text}", op.method);
        }
        checked.insert(format!("{} {}", op.method, op.path), status.as_u16());
    }
    assert!(checked.len() >= 15, "resource routes checked: {checked:?}");

    // MED requests on the first tenant's payment: refused before BTG is asked.
    for (path, body) in [
        (
            "/v1/dict/infraction-reports",
            json!({"transactionId": owned.end_to_end_id, "reason": "REFUND_REQUEST", "situationType": "SCAM"}),
        ),
        ("/v1/dict/refund-requests", json!({"transactionId": owned.end_to_end_id, "amount": "1.00"})),
    ] {
        let response = as_other(Method::POST, path).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path} on another tenant's payment");
        assert_eq!(pix_e2e::error_code(response).await, "PIX-0035", "{path}");
    }
    app.sandbox.handle.clear_faults();

    // The first tenant still sees all of it, untouched.
    let marker = &owned.ids.iter().find(|(p, _)| p.contains("fraud-markers")).unwrap().1;
    let markers = dx.get_json("/v1/dict/fraud-markers?tax_id=12345678909").await;
    let mine = markers["items"].as_array().unwrap().iter().find(|m| m["id"] == json!(marker)).expect("still listed");
    assert_eq!(mine["status"], "REGISTERED", "the other tenant could not cancel it");
    for (prefix, id) in &owned.ids {
        if prefix.starts_with("/v1/dict/fraud-markers") {
            continue;
        }
        let account = if prefix.contains("claims") { dx.account("@joao") } else { owned.account.clone() };
        let response = dx.call(Method::GET, &format!("{prefix}{id}")).header("X-Account-Id", account);
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 200, "the first tenant reads {prefix}{id}");
    }
}

/// What the document promises, for every operation: auth declared and attached, and the failures
/// the middleware can answer with listed.
#[test]
fn the_openapi_document_declares_auth_and_failures() {
    let doc = serde_json::to_value(pix_server::app::openapi()).unwrap();
    for scheme in ["tenant_token", "admin_token"] {
        let declared = &doc["components"]["securitySchemes"][scheme];
        assert_eq!(declared["type"], "http", "{scheme}");
        assert_eq!(declared["scheme"], "bearer", "{scheme}");
    }
    for op in operations(&doc) {
        let name = format!("{} {}", op.method, op.path);
        let has = |status: &str| op.responses.iter().any(|s| s == status);
        for status in ["500", "503", "504"] {
            assert!(has(status), "{name} documents {status}");
        }
        let raw = &doc["paths"][&op.path][op.method.as_str().to_lowercase()];
        let has_body = raw["requestBody"].is_object();
        if has_body {
            for status in ["400", "413", "415"] {
                assert!(has(status), "{name} documents {status}");
            }
        }
        if raw["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
            assert!(has("400"), "{name} documents 400");
        }
        match op.scheme.as_deref() {
            Some(scheme) => {
                let expected = if op.path.starts_with("/v1/admin/") { "admin_token" } else { "tenant_token" };
                assert_eq!(scheme, expected, "{name}");
                for status in ["401", "403"] {
                    assert!(has(status), "{name} documents {status}");
                }
                if op.has_path_params {
                    assert!(has("404"), "{name} documents 404");
                }
                if scheme == "tenant_token" {
                    assert!(has("429"), "{name} documents 429");
                    if op.method != Method::GET {
                        assert!(has("409"), "{name} documents 409 (idempotency)");
                    }
                }
            }
            None => assert!(UNSECURED.contains(&op.path.as_str()), "{name} has no security requirement"),
        }
        let security = raw["security"].as_array().map(Vec::len).unwrap_or_default();
        assert!(op.scheme.is_none() || security == 1, "{name}: one security requirement");
        for (status, response) in raw["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let content = &response["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    content.is_string() || op.path == "/metrics",
                    "{name} {status} has the error schema: {response}"
                );
            }
        }
    }
}

/// Request schemas carry the limits the handlers enforce, so generated requests reach them.
#[test]
fn request_schemas_carry_the_handlers_limits() {
    let doc = serde_json::to_value(pix_server::app::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    // A real minute (days 01–28, so that every value the pattern describes is a real date).
    let e2e = json!(concat!(
        r"^E[0-9]{8}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])([01][0-9]|2[0-3])[0-5][0-9]",
        r"[A-Za-z0-9]{11}$"
    ));
    for (schema, field, rule, expected) in [
        ("CreateInfractionReport", "transactionId", "pattern", e2e.clone()),
        ("CreateInfractionReport", "reportDetails", "maxLength", json!(2000)),
        ("CreateInfractionReport", "reason", "pattern", json!("^(REFUND_REQUEST|REFUND_CANCELLED)$")),
        ("CreateRefundRequest", "transactionId", "pattern", e2e),
        ("CreateRefundRequest", "amount", "pattern", json!(r"^[0-9]{1,15}(\.[0-9]{1,2})?$")),
        ("CreateFraudMarker", "taxIdNumber", "pattern", json!(r"^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2})$")),
        ("CreateFraudMarker", "key", "maxLength", json!(77)),
        ("CloseRefundRequest", "refundTransactionId", "pattern", json!(r"^D[0-9]{20}[A-Za-z0-9]{11}$")),
        ("CreateClaim", "type", "pattern", json!("^(PORTABILITY|OWNERSHIP)$")),
        ("CreateEntry", "keyType", "pattern", json!("^(CPF|CNPJ|EMAIL|PHONE|EVP)$")),
        ("InitiateCashout", "description", "maxLength", json!(140)),
        ("ManualDestination", "ispb", "pattern", json!("^[0-9]{8}$")),
        ("CreateTenant", "ispb", "pattern", json!("^[0-9]{8}$")),
        ("CreateTenant", "name", "maxLength", json!(100)),
        ("CreateTenant", "midazLedgerId", "format", json!("uuid")),
        ("BtgIdentityIn", "clientSecretRef", "pattern", json!("^(env:[A-Za-z0-9_]+|file:/.+)$")),
        ("InboundSecretIn", "previousValidForSecs", "maximum", json!(604800)),
        ("CreateEndpoint", "flowType", "pattern", json!("^(DICT|TRANSFER|REFUND|RECURRING|SCHEDULE|REPORT)$")),
        ("CreateEndpoint", "description", "maxLength", json!(200)),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(property[rule], expected, "{schema}.{field}.{rule}: {property}");
    }
    let markers = &doc["paths"]["/v1/dict/fraud-markers"]["get"]["parameters"];
    let tax_id = markers.as_array().unwrap().iter().find(|p| p["name"] == "tax_id").unwrap();
    assert_eq!(tax_id["required"], true, "{tax_id}");
    assert!(tax_id["schema"]["pattern"].is_string(), "{tax_id}");
    let reports = &doc["paths"]["/v1/dict/infraction-reports"]["get"]["parameters"];
    let limit = reports.as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["maximum"], 100, "{limit}");
}
