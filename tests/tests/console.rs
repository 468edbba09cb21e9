//! The operator console over plain HTTP: sign-in and its cookie, the API's authorization (a
//! tenant operator never reaches another tenant's pages or data, direct URLs included, nor the
//! admin pages), and CSRF refusal of every form post without the session's token. The browser
//! flows are in console_browser.rs.

use pix_core::clock::Clock;
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

api_tests!(
    sign_in_sets_a_sealed_strict_http_only_cookie_and_refuses_bad_tokens,
    a_tenant_operator_never_reaches_another_tenants_pages_or_data,
    form_posts_without_the_sessions_csrf_token_are_refused,
    bindings_record_who_changed_them_in_the_api_and_the_console,
    an_admin_manages_the_default_binding_and_a_tenant_operator_cannot,
    the_transfer_timeline_lists_its_btg_calls_for_its_tenant_only,
    circuit_breakers_are_exported_and_shown_to_their_own_tenant,
    a_candidate_is_replayed_over_a_time_window,
    the_upload_form_takes_limits_and_shows_their_errors_inline,
);

/// A browser-like client of the console: its session cookie and the CSRF token of its forms.
struct Console<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pix_console="))
        .map(str::to_owned)
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl<'a> Console<'a> {
    /// An anonymous session: the sign-in form and its cookie.
    async fn visit(app: &'a TestApp) -> Console<'a> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let form = http.get(format!("{}/console/login", app.url)).send().await.unwrap();
        assert_eq!(form.status(), 200);
        let cookie = session_cookie(&form).expect("the sign-in form sets a session cookie");
        let csrf = csrf_of(&form.text().await.unwrap());
        Console { app, http, cookie: cookie.split(';').next().unwrap().to_owned(), csrf }
    }

    async fn sign_in(app: &'a TestApp, token: &str) -> Console<'a> {
        let mut console = Console::visit(app).await;
        let response = console.post("/console/login", &[("token", token)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signing in");
        console.cookie = session_cookie(&response).unwrap().split(';').next().unwrap().to_owned();
        let home = console.get("/console").await;
        assert_eq!(home.status(), 200);
        console.csrf = csrf_of(&home.text().await.unwrap());
        console
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.app.url)).header(COOKIE, &self.cookie).send().await.unwrap()
    }

    async fn text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        (response.status(), response.text().await.unwrap())
    }

    /// A form post carrying this session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        self.post_raw(path, &form).await
    }

    async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.app.url)).header(COOKIE, &self.cookie).form(form).send().await.unwrap()
    }

    /// The upload form, as a browser sends it (multipart, with this session's CSRF token).
    async fn upload(&self, component: &[u8], fields: &[(&str, &str)]) -> reqwest::Response {
        let mut body = Vec::new();
        for (name, value) in fields.iter().chain([("csrf", self.csrf.as_str())].iter()) {
            body.extend_from_slice(
                format!("--b0undary\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--b0undary\r\nContent-Disposition: form-data; name=\"component\"; filename=\"c.wasm\"\r\n\
              Content-Type: application/wasm\r\n\r\n",
        );
        body.extend_from_slice(component);
        body.extend_from_slice(b"\r\n--b0undary--\r\n");
        self.http
            .post(format!("{}/console/policies/upload", self.app.url))
            .header(COOKIE, &self.cookie)
            .header("content-type", "multipart/form-data; boundary=b0undary")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

async fn sign_in_sets_a_sealed_strict_http_only_cookie_and_refuses_bad_tokens(app: &TestApp) {
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = anonymous.get(format!("{}/console/policies", app.url)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "pages need a session");
    assert_eq!(page.headers()[LOCATION], "/console/login");

    let mut console = Console::visit(app).await;
    let refused = console.post("/console/login", &[("token", "pix_not-a-token")]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("invalid, expired or revoked token"));

    console.csrf = csrf_of(&console.text("/console/login").await.1);
    let response = console.post("/console/login", &[("token", &app.admin_token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let csp = response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    let cookie = session_cookie(&response).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains(&app.admin_token), "the token is sealed, not readable in the cookie");

    // A cookie that was tampered with does not open: back to the sign-in form.
    let value = cookie.split(';').next().unwrap();
    let mut tampered = value.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(format!("{}/console", app.url)).header(COOKIE, &tampered).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let page = http.get(format!("{}/console", app.url)).header(COOKIE, value).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // Signing out ends the session.
    console.cookie = value.to_owned();
    console.csrf = csrf_of(&console.text("/console").await.1);
    let out = console.post("/console/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&out).unwrap().contains("Max-Age=0"));
}

async fn a_tenant_operator_never_reaches_another_tenants_pages_or_data(app: &TestApp) {
    let bank = Bank::open(app).await;
    let paid = bank.pay("@maria", "12.34").await;
    let transfer = paid["id"].as_str().unwrap();
    let e2e = paid["endToEndId"].as_str().unwrap();
    let url = "https://hooks.example.com/bank-only";
    let created = app
        .request(reqwest::Method::POST, "/v1/webhooks/endpoints", &bank.tenant.token)
        .header("X-Idempotency", "console-endpoint")
        .json(&json!({"url": url, "flowType": "TRANSFER"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let other = app.tenant("Outro Banco").await;

    // The owner sees its transfer and endpoint.
    let owner = Console::sign_in(app, &bank.tenant.token).await;
    let (status, page) = owner.text(&format!("/console/transfers/{transfer}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(e2e));
    assert!(owner.text("/console/transfers").await.1.contains(e2e));
    assert!(owner.text("/console/webhooks").await.1.contains(url));

    // The other tenant's operator: not by direct URL, not by naming the tenant, not in lists.
    let outsider = Console::sign_in(app, &other.token).await;
    let (status, page) = outsider.text(&format!("/console/transfers/{transfer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains(e2e));
    let tenant = bank.tenant.id;
    for path in [
        format!("/console/transfers/{transfer}?tenant={tenant}"),
        format!("/console/transfers?tenant={tenant}"),
        format!("/console/refunds?tenant={tenant}"),
        format!("/console/webhooks?tenant={tenant}"),
        format!("/console/dict?tenant={tenant}"),
    ] {
        let (status, page) = outsider.text(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!page.contains(e2e) && !page.contains(url), "{path} shows nothing of the other tenant");
    }
    for path in ["/console/transfers", "/console/stuck", "/console/webhooks", "/console/refunds"] {
        let (status, page) = outsider.text(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!page.contains(e2e) && !page.contains(url), "{path} lists only the operator's own tenant");
    }
    // Admin pages and actions are the admin API's: refused to any tenant operator.
    for path in [
        "/console/policies",
        "/console/decisions",
        "/console/reviews",
        &format!("/console/policies/shadow?tenant={tenant}&kind=fee"),
    ] {
        assert_eq!(outsider.get(path).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Health shows a tenant operator its own circuit breakers only: not the other tenant's
    // (whose clients the payment above built), nor the process-wide numbers.
    let (status, page) = outsider.text("/console/health").await;
    assert_eq!(status, 200);
    assert!(!page.contains(&tenant.to_string()) && !page.contains("Job queues"), "{page}");
    let tenant = tenant.to_string();
    let review = [("tenant", tenant.as_str()), ("transfer", transfer), ("decision", "REJECT")];
    assert_eq!(outsider.post("/console/reviews/decide", &review).await.status(), StatusCode::FORBIDDEN);
    let rollback = [("tenant", tenant.as_str()), ("kind", "fee")];
    assert_eq!(outsider.post("/console/policies/rollback", &rollback).await.status(), StatusCode::FORBIDDEN);
    let unblock = outsider.post(&format!("/console/transfers/{transfer}/unblock"), &[]).await;
    assert_eq!(unblock.status(), StatusCode::NOT_FOUND, "another tenant's transfer cannot be unblocked");

    // An admin sees every tenant, and picks which.
    let admin = Console::sign_in(app, &app.admin_token).await;
    let (status, page) = admin.text(&format!("/console/transfers/{transfer}?tenant={tenant}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(e2e));
    assert_eq!(admin.get("/console/health").await.status(), 200);
}

async fn form_posts_without_the_sessions_csrf_token_are_refused(app: &TestApp) {
    let t = app.tenant("acme").await;
    let admin = Console::sign_in(app, &app.admin_token).await;
    let tenant = t.id.to_string();
    let fields = [("tenant", tenant.as_str()), ("kind", "fee")];
    // Without the token, with another value, and with another session's token: 403, nothing done.
    let missing = admin.post_raw("/console/policies/rollback", &fields).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(missing.text().await.unwrap().contains("CSRF"));
    let wrong = [("tenant", tenant.as_str()), ("kind", "fee"), ("csrf", "forged")];
    assert_eq!(admin.post_raw("/console/policies/rollback", &wrong).await.status(), StatusCode::FORBIDDEN);
    let another = Console::sign_in(app, &app.admin_token).await;
    let foreign = [("tenant", tenant.as_str()), ("kind", "fee"), ("csrf", another.csrf.as_str())];
    assert_eq!(admin.post_raw("/console/policies/rollback", &foreign).await.status(), StatusCode::FORBIDDEN);
    // A multipart upload without the token is refused too.
    let body = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nfee\r\n\
         --b0undary\r\nContent-Disposition: form-data; name=\"tenant\"\r\n\r\n{tenant}\r\n--b0undary--\r\n"
    );
    let upload = admin
        .http
        .post(format!("{}/console/policies/upload", app.url))
        .header(COOKIE, &admin.cookie)
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);
    // The sign-in form needs its anonymous session's token as well.
    let http = reqwest::Client::new();
    let login =
        http.post(format!("{}/console/login", app.url)).form(&[("token", &app.admin_token)]).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);

    // Nothing was rolled back: activate, then the same post with the right token works once.
    let fee = default_fee();
    let activate = [
        ("tenant", tenant.as_str()),
        ("sha256", fee.as_str()),
        ("kind", "fee"),
        ("params", ""),
        ("action", "activate"),
    ];
    assert_eq!(admin.post("/console/policies/act", &activate).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(admin.post_raw("/console/policies/rollback", &fields).await.status(), StatusCode::FORBIDDEN);
    let history = app.db.store.policy_binding_history(Some(t.id), "fee", 10).await.unwrap();
    assert_eq!(history.len(), 1, "refused posts changed nothing");
    assert_eq!(admin.post("/console/policies/rollback", &fields).await.status(), StatusCode::SEE_OTHER);
    let history = app.db.store.policy_binding_history(Some(t.id), "fee", 10).await.unwrap();
    assert!(history[0].removed, "the rollback with the token went through");
}

fn default_fee() -> String {
    let manifest = std::fs::read_to_string(pix_e2e::shipped_policies().join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    manifest["policies"][0]["sha256"].as_str().unwrap().to_owned()
}

/// The id of the admin credential behind `token` (what bindings record; the token never is).
async fn admin_credential(app: &TestApp, token: &str) -> String {
    let credential = app.db.store.credential_at(token, app.clock.now()).await.unwrap().unwrap();
    match credential.principal {
        pix_store::tenants::Principal::Admin { credential_id } => credential_id.to_string(),
        other => panic!("not an admin credential: {other:?}"),
    }
}

const EXAMPLE: &str = "fc7cdde51ec292dbbe0bfceb6cb2687b1119146a0f3bdf4599c623109eaf6c01";

async fn quote_fee(app: &TestApp, token: &str) -> String {
    let quote = app.merchant_quote(token).await;
    quote["fee"].as_str().unwrap_or_else(|| panic!("a quote: {quote}")).to_owned()
}

async fn bindings_record_who_changed_them_in_the_api_and_the_console(app: &TestApp) {
    let t = app.tenant("acme").await;
    let credential = admin_credential(app, &app.admin_token).await;
    // Through the API: the answer and the history name the admin credential, never its token.
    let activated: serde_json::Value = app
        .request(reqwest::Method::POST, &format!("/v1/admin/policies/{EXAMPLE}/activate"), &app.admin_token)
        .json(&json!({"kind": "fee", "tenantId": t.id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(activated["actor"], format!("admin:{credential}"), "{activated}");
    assert!(!activated.to_string().contains(&app.admin_token));
    // Through the console, by another admin credential: recorded as that one, via the console.
    let other = app.db.issue_token(None, "second operator", app.clock.now()).await.unwrap().token;
    let other_credential = admin_credential(app, &other).await;
    let admin = Console::sign_in(app, &other).await;
    let tenant = t.id.to_string();
    let rollback = admin.post("/console/policies/rollback", &[("tenant", &tenant), ("kind", "fee")]).await;
    assert_eq!(rollback.status(), StatusCode::SEE_OTHER);
    let history: serde_json::Value = app
        .request(
            reqwest::Method::GET,
            &format!("/v1/admin/policy-bindings?kind=fee&tenantId={tenant}"),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actors: Vec<&str> = history.as_array().unwrap().iter().map(|b| b["actor"].as_str().unwrap()).collect();
    assert_eq!(actors, [format!("admin:{other_credential} via console"), format!("admin:{credential}")]);
    assert_eq!(history[0]["removed"], true);
    // The policies page shows both, with when.
    let (status, page) = admin.text(&format!("/console/policies?tenant={tenant}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("admin:{other_credential} via console")), "the rollback's actor is shown");
    assert!(page.contains(&format!("admin:{credential}")), "the activation's actor is shown");
    assert!(!page.contains(&other) && !page.contains(&app.admin_token), "no token is ever shown");
}

async fn an_admin_manages_the_default_binding_and_a_tenant_operator_cannot(app: &TestApp) {
    let t = app.tenant("acme").await;
    let tenant = t.id.to_string();
    assert_eq!(quote_fee(app, &t.token).await, "4.95", "the shipped fee policy");

    // A tenant operator can neither activate nor roll back the default: 403, nothing changes.
    let operator = Console::sign_in(app, &t.token).await;
    let default_activation = [
        ("tenant", tenant.as_str()),
        ("sha256", EXAMPLE),
        ("kind", "fee"),
        ("scope", "default"),
        ("action", "activate"),
    ];
    assert_eq!(operator.post("/console/policies/act", &default_activation).await.status(), StatusCode::FORBIDDEN);
    let default_rollback = [("tenant", tenant.as_str()), ("kind", "fee"), ("scope", "default")];
    assert_eq!(operator.post("/console/policies/rollback", &default_rollback).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(operator.get("/console/policies").await.status(), StatusCode::FORBIDDEN);
    assert!(app.db.store.policy_binding_history(None, "fee", 10).await.unwrap().is_empty());

    // The admin activates the default from the console: every tenant without its own binding
    // gets it, and the page shows it with who and when.
    let admin = Console::sign_in(app, &app.admin_token).await;
    let response = admin.post("/console/policies/act", &default_activation).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let default = app.db.store.policy_binding_history(None, "fee", 10).await.unwrap();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0].sha256, EXAMPLE);
    assert!(default[0].actor.ends_with(" via console"), "{}", default[0].actor);
    assert!(app.db.store.policy_binding_history(Some(t.id), "fee", 10).await.unwrap().is_empty());
    assert_eq!(quote_fee(app, &t.token).await, "3.95", "the tenant inherits the new default");
    let (_, page) = admin.text(&format!("/console/policies?tenant={tenant}")).await;
    let defaults = &page[page.find("id=\"default-bindings\"").expect("the default bindings table")..];
    let fee_row = &defaults[defaults.find("data-kind=\"fee\"").unwrap()..];
    let fee_row = &fee_row[..fee_row.find("</tr>").unwrap()];
    assert!(fee_row.contains(&EXAMPLE[..12]) && fee_row.contains("via console"), "{fee_row}");
    assert!(fee_row.contains("Roll back"), "the default can be rolled back from the page");

    // Shadows and replays compare a tenant's decisions: the default scope is refused for them.
    let shadow =
        [("tenant", tenant.as_str()), ("sha256", EXAMPLE), ("kind", "fee"), ("scope", "default"), ("action", "shadow")];
    assert_eq!(admin.post("/console/policies/act", &shadow).await.status(), StatusCode::BAD_REQUEST);

    // Rolling the default back removes it: the shipped policy applies again.
    let response = admin.post("/console/policies/rollback", &default_rollback).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let default = app.db.store.policy_binding_history(None, "fee", 10).await.unwrap();
    assert!(default[0].removed);
    assert_eq!(quote_fee(app, &t.token).await, "4.95");
}

async fn the_transfer_timeline_lists_its_btg_calls_for_its_tenant_only(app: &TestApp) {
    use pix_sandbox::{FaultKind, FaultTarget};
    let bank = Bank::open(app).await;
    // BTG refuses the payment's three attempts: the timeline shows each failed call.
    bank.fault(FaultTarget::Btg, "/pix/payments", Some("POST"), FaultKind::Status { status: 503 }, Some(3));
    let paid = bank.pay("@maria", "12.34").await;
    assert_eq!(paid["status"], "PENDING", "{paid}");
    let (transfer, e2e) = (paid["id"].as_str().unwrap(), paid["endToEndId"].as_str().unwrap());

    let calls = app.db.store.upstream_calls_of(bank.tenant.id, e2e).await.unwrap();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert!(operations.contains(&"lookup_key"), "{operations:?}");
    assert!(operations.contains(&"key_statistics"), "{operations:?}");
    let initiated: Vec<_> = calls.iter().filter(|c| c.operation == "initiate_payment").collect();
    assert_eq!(initiated.len(), 1, "one call (its retries are the client's): {operations:?}");
    assert_eq!(initiated[0].outcome.as_str(), "failed");
    assert!(initiated[0].detail.as_deref().unwrap_or_default().contains("503"), "{:?}", initiated[0].detail);

    let owner = Console::sign_in(app, &bank.tenant.token).await;
    let (status, page) = owner.text(&format!("/console/transfers/{transfer}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("BTG call lookup_key: ok"), "the DICT lookup of the payment is listed");
    assert!(page.contains("BTG call initiate_payment: failed"), "the failed cash-out call is listed");
    assert!(page.contains("unavailable (status 503)"));

    // Another tenant has no record of them and cannot open the page.
    let other = app.tenant("Outro Banco").await;
    assert!(app.db.store.upstream_calls_of(other.id, e2e).await.unwrap().is_empty());
    let outsider = Console::sign_in(app, &other.token).await;
    let (status, page) = outsider.text(&format!("/console/transfers/{transfer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("initiate_payment"));
}

async fn circuit_breakers_are_exported_and_shown_to_their_own_tenant(app: &TestApp) {
    use pix_sandbox::{FaultKind, FaultTarget};
    let bank = Bank::open(app).await;
    bank.pay("@maria", "1.00").await;
    let tenant = bank.tenant.id;
    let metrics = || async { reqwest::get(format!("{}/metrics", app.url)).await.unwrap().text().await.unwrap() };
    let sample = |state: &str| {
        format!("pix_upstream_circuit_breaker_state{{tenant=\"{tenant}\",upstream=\"btg\",state=\"{state}\"}}")
    };
    let text = metrics().await;
    assert!(text.contains(&format!("{} 1", sample("closed"))), "{text}");
    assert!(text.contains(&format!("{} 0", sample("open"))), "{text}");

    // BTG fails every call: after five failures in a row the tenant's BTG breaker opens.
    bank.fault(FaultTarget::Btg, "", None, FaultKind::Status { status: 503 }, None);
    for _ in 0..10 {
        let _ = bank.initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": "1.00"})).await;
        if metrics().await.contains(&format!("{} 1", sample("open"))) {
            break;
        }
    }
    let text = metrics().await;
    assert!(text.contains(&format!("{} 1", sample("open"))), "{text}");
    assert!(text.contains(&format!("{} 0", sample("closed"))), "{text}");

    // The console: the tenant's operator sees its own breakers (and not the process numbers),
    // another tenant's operator none of them, the admin all.
    let owner = Console::sign_in(app, &bank.tenant.token).await;
    let (status, page) = owner.text("/console/health").await;
    assert_eq!(status, 200);
    let row = &page[page.find(&format!("data-tenant=\"{tenant}\" data-upstream=\"btg\"")).expect("its BTG breaker")..];
    assert!(row[..row.find("</tr>").unwrap()].contains(">open<"), "{row}");
    assert!(!page.contains("Job queues") && !page.contains("jobs_processed_total"));
    let other = app.tenant("Outro Banco").await;
    let outsider = Console::sign_in(app, &other.token).await;
    let (status, page) = outsider.text("/console/health").await;
    assert_eq!(status, 200);
    assert!(!page.contains(&tenant.to_string()), "another tenant's breakers are not shown");
    let admin = Console::sign_in(app, &app.admin_token).await;
    let (_, page) = admin.text("/console/health").await;
    assert!(page.contains(&format!("data-tenant=\"{tenant}\" data-upstream=\"btg\"")));
    assert!(page.contains("Job queues"));
    assert!(!page.contains("not exported yet"));
}

async fn a_candidate_is_replayed_over_a_time_window(app: &TestApp) {
    let t = app.tenant("acme").await;
    let tenant = t.id.to_string();
    let start = app.clock.now();
    for _ in 0..2 {
        quote_fee(app, &t.token).await;
    }
    app.clock.advance(chrono::Duration::hours(1));
    for _ in 0..3 {
        quote_fee(app, &t.token).await;
    }
    app.clock.advance(chrono::Duration::hours(1));
    quote_fee(app, &t.token).await;
    let at = |h: i64, m: i64| start + chrono::Duration::hours(h) + chrono::Duration::minutes(m);
    let (from, to) = (at(0, 30), at(1, 30));

    // The admin API: the window holds the three decisions of the second hour, all different
    // under the candidate (3.95 instead of 4.95).
    let path = format!(
        "/v1/admin/policies/{EXAMPLE}/replay?kind=fee&tenantId={tenant}&from={}&to={}",
        urlencode(&from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        urlencode(&to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let report: serde_json::Value =
        app.request(reqwest::Method::POST, &path, &app.admin_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["replayed"], 3, "{report}");
    assert_eq!(report["different"], 3, "{report}");
    let everything = format!("/v1/admin/policies/{EXAMPLE}/replay?kind=fee&tenantId={tenant}");
    let report: serde_json::Value =
        app.request(reqwest::Method::POST, &everything, &app.admin_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["replayed"], 6, "without a window: the last decisions, {report}");
    let reversed = format!(
        "/v1/admin/policies/{EXAMPLE}/replay?kind=fee&tenantId={tenant}&from={}&to={}",
        urlencode(&to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        urlencode(&from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let refused = app.request(reqwest::Method::POST, &reversed, &app.admin_token).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(pix_e2e::error_code(refused).await, "PIX-0004");

    // The console: the same window from its datetime-local fields (UTC), the summary inline.
    let admin = Console::sign_in(app, &app.admin_token).await;
    let local = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let (from, to) = (local(from), local(to));
    let form = [
        ("tenant", tenant.as_str()),
        ("sha256", EXAMPLE),
        ("kind", "fee"),
        ("action", "replay"),
        ("limit", "1000"),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ];
    let response = admin.post("/console/policies/act", &form).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let summary = &page[page.find("id=\"replay-summary\"").expect("the replay summary")..];
    assert!(summary.contains("<strong>3</strong> decisions replayed"), "{summary}");
    assert!(page.contains("id=\"replay-window\""));
    let garbage = [
        ("tenant", tenant.as_str()),
        ("sha256", EXAMPLE),
        ("kind", "fee"),
        ("action", "replay"),
        ("from", "yesterday"),
    ];
    assert_eq!(admin.post("/console/policies/act", &garbage).await.status(), StatusCode::BAD_REQUEST);
    // Without the CSRF token the replay is refused like any other form.
    assert_eq!(admin.post_raw("/console/policies/act", &form).await.status(), StatusCode::FORBIDDEN);
}

/// An instant as a query value: RFC 3339 in UTC (`Z`, so nothing needs escaping).
fn urlencode(s: &str) -> String {
    assert!(!s.contains('+'), "{s}");
    s.to_owned()
}

async fn the_upload_form_takes_limits_and_shows_their_errors_inline(app: &TestApp) {
    let t = app.tenant("acme").await;
    let tenant = t.id.to_string();
    let component = std::fs::read(pix_e2e::shipped_policies().join("examples/segment-fraud-triage.wasm")).unwrap();
    let maxima = app
        .request(reqwest::Method::PUT, &format!("/v1/admin/tenants/{tenant}/policy-limits"), &app.admin_token)
        .json(&json!({"memoryMib": 32}))
        .send()
        .await
        .unwrap();
    assert_eq!(maxima.status(), 200);
    let admin = Console::sign_in(app, &app.admin_token).await;
    let (_, page) = admin.text(&format!("/console/policies?tenant={tenant}")).await;
    for field in ["name=\"memory_mib\"", "name=\"fuel\"", "name=\"deadline_ms\"", "at most 32"] {
        assert!(page.contains(field), "{field} on the upload form");
    }
    let inline_error = |page: &str| {
        let start = page.find("id=\"upload-error\"").expect("an inline upload error");
        page[start..start + page[start..].find("</p>").unwrap()].to_owned()
    };
    let upload = |memory: &'static str, fuel: &'static str, deadline: &'static str| {
        let (admin, component, tenant) = (&admin, &component, tenant.clone());
        async move {
            let fields = [
                ("tenant", tenant.as_str()),
                ("kind", "fraud-triage"),
                ("name", "segment triage"),
                ("memory_mib", memory),
                ("fuel", fuel),
                ("deadline_ms", deadline),
            ];
            let response = admin.upload(component, &fields).await;
            (response.status(), response.text().await.unwrap())
        }
    };
    // Not a number: refused inline, what was typed kept.
    let (status, page) = upload("", "lots", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(inline_error(&page).contains("Fuel"), "{}", inline_error(&page));
    assert!(page.contains("value=\"lots\""), "the typed value is kept");
    // Above the tenant's maximum, and above the host's.
    let (status, page) = upload("64", "", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(inline_error(&page).contains("above acme's maximum of 32"), "{}", inline_error(&page));
    let (status, page) = upload("", "", "100000").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(inline_error(&page).contains("maximum"), "{}", inline_error(&page));
    let (status, page) = upload("0", "", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(inline_error(&page).contains("above zero"), "{}", inline_error(&page));
    let components = app.db.store.list_policy_components().await.unwrap();
    assert!(!components.iter().any(|c| c.name == "segment triage"), "nothing refused was stored");

    // Within the limits: stored with them.
    let (status, _) = upload("24", "20000000", "40").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let components = app.db.store.list_policy_components().await.unwrap();
    let stored = components.iter().find(|c| c.name == "segment triage").expect("the upload is stored");
    assert_eq!(
        (stored.limits.memory_mib, stored.limits.fuel, stored.limits.deadline_ms),
        (Some(24), Some(20_000_000), Some(40))
    );
}
