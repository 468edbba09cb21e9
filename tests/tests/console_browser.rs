//! The operator console in headless Chromium, driven through chromedriver (WebDriver): sign in,
//! upload a policy (a wrong kind is refused inline), shadow it and see the disagreements, activate
//! it and see the fee change on a quote, approve a transfer held for review, and redeliver a dead
//! webhook. Screenshots of the main pages go to `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`; CI
//! installs them). Without them the test prints why and passes, except under CI, where it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests, shipped_policies};
use pix_server::webhooks::EngineSettings;
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(an_operator_runs_the_tested_flows_in_a_browser);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Option<Driver> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium and chromium-driver (.ci/run does)");
        println!(
            "SKIPPED: console browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok_and(|r| r.status().is_success()) {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {}", driver.url);
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&driver.url).await.expect("a Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page as it stands, saved as `<name>.png` (SQLite run only: one set of pictures).
async fn shot(b: &Client, app: &TestApp, name: &str) {
    if app.db.store.backend().as_str() == "sqlite" {
        std::fs::write(screenshots().join(format!("{name}.png")), b.screenshot().await.unwrap()).unwrap();
    }
}

async fn text(b: &Client, css: &str) -> String {
    b.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

/// Clicks the form button at `css` and waits for the page it loads: an element found right after
/// the click could still be the old page's and go stale while it is read.
async fn click(b: &Client, css: &str) {
    let old_page = b.find(Locator::Css("html")).await.unwrap();
    b.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    for _ in 0..200 {
        match old_page.tag_name().await {
            Err(e) if e.is_stale_element_reference() => return,
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("{css}: no page loaded within 5 s");
}

async fn sign_in(b: &Client, app: &TestApp, token: &str) {
    b.goto(&format!("{}/console/login", app.url)).await.unwrap();
    b.find(Locator::Id("token")).await.unwrap().send_keys(token).await.unwrap();
    click(b, "form button[type=submit]").await;
    b.wait().for_element(Locator::Css("form.signout")).await.unwrap();
}

async fn sign_out(b: &Client) {
    click(b, "form.signout button").await;
    b.wait().for_element(Locator::Id("token")).await.unwrap();
}

/// The fee the console's quote form shows for R$ 500 to a merchant.
async fn quote_in_console(b: &Client, app: &TestApp) -> String {
    b.goto(&format!("{}/console/quote", app.url)).await.unwrap();
    click(b, "form.grid button[type=submit]").await;
    text(b, "#fee").await
}

fn manifest_sha(kind: &str) -> String {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(shipped_policies().join("manifest.json")).unwrap()).unwrap();
    let entry = manifest["policies"].as_array().unwrap().iter().find(|p| p["kind"] == kind).unwrap();
    entry["sha256"].as_str().unwrap().to_owned()
}

/// Picks `sha` and `kind` in the "activate, shadow or replay" form, fills the params and presses
/// the button for `action`.
async fn act(b: &Client, sha: &str, kind: &str, params: &str, action: &str) {
    b.find(Locator::Id("act-sha")).await.unwrap().select_by_value(sha).await.unwrap();
    b.find(Locator::Id("act-kind")).await.unwrap().select_by_value(kind).await.unwrap();
    let field = b.find(Locator::Id("act-params")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(params).await.unwrap();
    click(b, &format!("button[name=action][value={action}]")).await;
}

async fn upload(b: &Client, app: &TestApp, file: &str, kind: &str) {
    if !b.current_url().await.unwrap().path().starts_with("/console/policies") {
        b.goto(&format!("{}/console/policies", app.url)).await.unwrap();
    }
    let path = shipped_policies().join(file).canonicalize().unwrap();
    b.find(Locator::Id("component")).await.unwrap().send_keys(path.to_str().unwrap()).await.unwrap();
    b.find(Locator::Id("upload-kind")).await.unwrap().select_by_value(kind).await.unwrap();
    click(b, "form[action='/console/policies/upload'] button").await;
}

/// A webhook receiver that answers 500 until `healthy` is set, then 200.
async fn receiver(healthy: Arc<AtomicBool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let healthy = healthy.clone();
            async move {
                if healthy.load(Ordering::SeqCst) {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    // Generous: the machine may be busy; a healthy run takes well under a second here.
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

async fn an_operator_runs_the_tested_flows_in_a_browser(app: &TestApp) {
    let Some(driver) = start_driver().await else { return };
    let bank = Bank::open(app).await;
    let b = browser(&driver).await;

    // Sign in as the tenant's operator: today's fee is the shipped policy's 0.99 %.
    b.goto(&format!("{}/console/login", app.url)).await.unwrap();
    shot(&b, app, "login").await;
    sign_in(&b, app, &bank.tenant.token).await;
    assert_eq!(quote_in_console(&b, app).await, "4.95");
    sign_out(&b).await;

    // The admin uploads: a component of the wrong kind is refused inline, the right one accepted.
    sign_in(&b, app, &app.admin_token).await;
    shot(&b, app, "overview").await;
    upload(&b, app, "default-refund-split.wasm", "fee").await;
    let refused = text(&b, "#upload-error").await;
    assert!(refused.contains("does not export the fee decision"), "{refused}");
    // A limit that is not a number is refused inline too, and what was typed stays.
    b.find(Locator::Id("upload-fuel")).await.unwrap().send_keys("lots").await.unwrap();
    upload(&b, app, "example-institution.wasm", "fee").await;
    let refused = text(&b, "#upload-error").await;
    assert!(refused.contains("Fuel") && refused.contains("not a whole number"), "{refused}");
    let fuel = b.find(Locator::Id("upload-fuel")).await.unwrap();
    assert_eq!(fuel.prop("value").await.unwrap().as_deref(), Some("lots"));
    fuel.clear().await.unwrap();
    upload(&b, app, "example-institution.wasm", "fee").await;
    let uploaded = text(&b, "p.notice").await;
    assert!(uploaded.contains("fc7cdde51ec2"), "{uploaded}");
    let candidate = "fc7cdde51ec292dbbe0bfceb6cb2687b1119146a0f3bdf4599c623109eaf6c01";

    // Shadow it: live quotes keep the active answer, and the console shows the disagreements.
    act(&b, candidate, "fee", "", "shadow").await;
    assert_eq!(text(&b, "#compared").await, "0");
    for _ in 0..2 {
        let quote = app.merchant_quote(&bank.tenant.token).await;
        assert_eq!(quote["fee"], "4.95", "a shadow never changes the answer");
    }
    b.refresh().await.unwrap();
    assert_eq!(text(&b, "#disagreed").await, "2");
    let rows = b.find_all(Locator::Css("#disagreements tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 2);
    let row = rows[0].text().await.unwrap();
    assert!(row.contains("495") && row.contains("395"), "active 4.95 and candidate 3.95 side by side: {row}");
    shot(&b, app, "shadow").await;

    // Activate it: the tenant's next quote is 3.95.
    b.goto(&format!("{}/console/policies?tenant={}", app.url, bank.tenant.id)).await.unwrap();
    act(&b, candidate, "fee", "", "activate").await;
    assert!(text(&b, "p.notice").await.contains("Activated fc7cdde51ec2 as the fee policy"));
    let fee_row = text(&b, "#tenant-bindings tr[data-kind=fee]").await;
    assert!(fee_row.contains("via console"), "who activated it is shown: {fee_row}");
    let default_row = text(&b, "#default-bindings tr[data-kind=fee]").await;
    assert!(default_row.contains("shipped"), "the default binding is shown: {default_row}");
    shot(&b, app, "policies").await;
    b.goto(&format!("{}/console/decisions?tenant={}&kind=fee", app.url, bank.tenant.id)).await.unwrap();
    shot(&b, app, "decisions").await;
    sign_out(&b).await;
    sign_in(&b, app, &bank.tenant.token).await;
    assert_eq!(quote_in_console(&b, app).await, "3.95");
    shot(&b, app, "quote").await;
    sign_out(&b).await;

    // Fraud triage with the review threshold at 0 (set from the console): a payment waits for
    // review, and the admin approves it from the queue.
    sign_in(&b, app, &app.admin_token).await;
    b.goto(&format!("{}/console/policies?tenant={}", app.url, bank.tenant.id)).await.unwrap();
    act(
        &b,
        &manifest_sha("fraud-triage"),
        "fraud-triage",
        r#"{"review-threshold": 0, "block-threshold": 1001}"#,
        "activate",
    )
    .await;
    assert!(text(&b, "p.notice").await.contains("fraud-triage"));
    let held = bank.pay("@maria", "11.00").await;
    assert_eq!(held["status"], "IN_REVIEW");
    let id = held["id"].as_str().unwrap();
    b.goto(&format!("{}/console/reviews", app.url)).await.unwrap();
    shot(&b, app, "reviews").await;
    click(&b, &format!("tr[data-transfer='{id}'] button[value=RELEASE]")).await;
    assert!(text(&b, "p.notice").await.contains(id));
    bank.wait_transfer("@maria", id, "COMPLETED").await;
    b.goto(&format!("{}/console/transfers/{id}?tenant={}", app.url, bank.tenant.id)).await.unwrap();
    let timeline = text(&b, "ol.timeline").await;
    assert!(timeline.contains("Review released"), "{timeline}");
    assert!(timeline.contains("BTG call initiate_payment: ok"), "the BTG calls are on the timeline: {timeline}");
    shot(&b, app, "transfer").await;
    b.execute("document.querySelector('ol.timeline li:nth-child(5)').scrollIntoView()", Vec::new()).await.unwrap();
    shot(&b, app, "transfer-timeline").await;
    b.goto(&format!("{}/console/transfers?tenant={}", app.url, bank.tenant.id)).await.unwrap();
    shot(&b, app, "transfers").await;

    // A webhook that failed its only attempt is a dead letter; redelivered, it arrives.
    let healthy = Arc::new(AtomicBool::new(false));
    let hooks = app.tenant("Webhook Receiver").await;
    let url = receiver(healthy.clone()).await;
    let endpoint = app
        .request(Method::POST, "/v1/webhooks/endpoints", &hooks.token)
        .header("X-Idempotency", "console-browser-endpoint")
        .json(&json!({"url": url, "flowType": "TRANSFER"}))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), 201);
    app.run_webhook_engine(EngineSettings {
        schedule: Vec::new(),
        poll_interval: Duration::from_millis(10),
        ..EngineSettings::default()
    });
    app.record_event(hooks.id, "TRANSFER", "CASHOUT", "tr-dead", &json!({"entity": "tr-dead"})).await;
    let filter = pix_store::deliveries::DeliveryFilter { tenant_id: Some(hooks.id), ..Default::default() };
    let dead = eventually("the delivery is dead-lettered", async || {
        let (items, _) = app.db.store.list_deliveries(&filter, 10, 0).await.unwrap();
        items.into_iter().find(|d| d.status.as_str() == "failed")
    })
    .await;
    b.goto(&format!("{}/console/webhooks?tenant={}", app.url, hooks.id)).await.unwrap();
    shot(&b, app, "webhooks").await;
    healthy.store(true, Ordering::SeqCst);
    click(&b, &format!("tr[data-delivery='{}'] button", dead.id)).await;
    assert!(text(&b, "p.notice").await.contains(&format!("Delivery {} queued for redelivery", dead.id)));
    eventually("the redelivered webhook arrives", async || {
        let d = app.db.store.delivery(dead.id).await.unwrap().unwrap();
        (d.status.as_str() == "delivered").then_some(())
    })
    .await;

    // The remaining pages render for the admin.
    for (page, name) in [("stuck", "stuck"), ("dict", "dict"), ("health", "health")] {
        b.goto(&format!("{}/console/{page}?tenant={}", app.url, bank.tenant.id)).await.unwrap();
        b.wait().for_element(Locator::Css("main h1")).await.unwrap();
        shot(&b, app, name).await;
    }
    let breaker = text(&b, &format!("#breakers tr[data-tenant='{}'][data-upstream=btg]", bank.tenant.id)).await;
    assert!(breaker.contains("closed"), "the tenant's BTG breaker: {breaker}");

    // Another tenant's operator reaches none of it, by direct URL either.
    sign_out(&b).await;
    sign_in(&b, app, &hooks.token).await;
    b.goto(&format!("{}/console/transfers/{id}", app.url)).await.unwrap();
    assert!(text(&b, "main h1").await.starts_with("404"));
    assert!(!b.source().await.unwrap().contains(held["endToEndId"].as_str().unwrap()));
    b.goto(&format!("{}/console/transfers?tenant={}", app.url, bank.tenant.id)).await.unwrap();
    assert!(text(&b, "main h1").await.starts_with("403"));
    b.goto(&format!("{}/console/reviews", app.url)).await.unwrap();
    assert!(text(&b, "main h1").await.starts_with("403"));
    b.close().await.unwrap();
}
