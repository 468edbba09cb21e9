//! No PII in the logs: every flow is driven with recognisable CPFs, names, Pix keys and account
//! numbers while the host logs through its production log setup (`telemetry::log_layer` with the
//! default filter, in both formats) into a buffer; then none of those values may appear unmasked.
//! Error paths are driven too (an unknown key, a failing DICT lookup, undeliverable webhooks),
//! since errors are where request data tends to end up in messages.

#[macro_use]
mod dict_common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dict_common::{Dx, cash_in, cash_out, deliver, eventually, settled_cash_out};
use pix_core::brcode::BrCode;
use pix_core::money::Money;
use pix_core::pix_key::PixKey;
use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use pix_server::config::{Config, LogConfig, LogFormat};
use pix_server::telemetry::log_layer;
use reqwest::Method;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

dict_tests!(every_flow_logs_pii_only_masked);

/// Maria, our customer, and the keys she registers.
const MARIA_NAME: &str = "Maria Silva";
const MARIA_CPF: &str = "11144477735";
const MARIA_ACCOUNT: &str = "100001";
const MARIA_EMAIL: &str = "maria.canary@example.com";
const MARIA_PHONE: &str = "+5511955554444";
/// Ana and Carlos, customers of the other participant.
const ANA_NAME: &str = "Ana Pereira";
const ANA_CPF: &str = "52998224725";
const ANA_EMAIL: &str = "ana.pereira@example.com";
const CARLOS_NAME: &str = "Carlos Lima";
const CARLOS_PHONE: &str = "+5511987654321";
/// A manual destination's account number and a key nobody registered.
const MANUAL_ACCOUNT: &str = "4455667788";
const UNKNOWN_KEY: &str = "nobody.canary@example.com";

/// What the host logged in this process, in both formats, at the default filter.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let default = Config::default().log;
        let writer = |logs: &Arc<Mutex<Vec<u8>>>| {
            let logs = logs.clone();
            move || Buffer(logs.clone())
        };
        tracing_subscriber::registry()
            .with(log_layer(&LogConfig { format: LogFormat::Json, ..default.clone() }, writer(&logs)))
            .with(log_layer(&LogConfig { format: LogFormat::Pretty, ..default }, writer(&logs)))
            .try_init()
            .expect("no other subscriber in this test binary");
        logs
    })
}

struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn every_flow_logs_pii_only_masked(dx: &Dx) {
    let logs = captured_logs();
    assert_eq!(Config::default().log.filter, "info", "the production default this test runs at");
    dx.app.run_webhook_engine(pix_server::webhooks::EngineSettings {
        schedule: vec![Duration::from_millis(50)],
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    });
    // Every event goes to an endpoint that refuses connections: deliveries fail and are logged.
    let endpoint = dx.call(Method::POST, "/v1/webhooks/endpoints").json(&json!({"url": "http://127.0.0.1:9/pix"}));
    assert_eq!(endpoint.send().await.unwrap().status(), 201);

    dict_entries_and_lookups(dx).await;
    cash_outs(dx).await;
    // The other participant returns part of a cash-out (before MED marks Ana as a fraudster,
    // which would hold payments to her for review).
    let outbound = settled_cash_out(dx).await;
    deliver(
        dx,
        "PIX_REVERSAL_INBOUND",
        json!({"returnEndToEndId": format!("D87654321{}", &outbound[9..]),
        "originalEndToEndId": outbound, "amount": "1.00", "reason": "MD06", "status": "CONFIRMED"}),
    )
    .await;
    let received = cash_in(dx, &json!(MARIA_EMAIL), "120.00").await;
    refund_and_med(dx, &received).await;
    claims(dx).await;
    // Every BTG event processed and outbound events attempted at the endpoint: the workers have
    // logged what they do with all of it.
    let store = &dx.app.db.store;
    let mine = pix_store::deliveries::DeliveryFilter { tenant_id: Some(dx.tenant.id), ..Default::default() };
    eventually("BTG events processed and webhooks attempted", || async {
        let inbound = store.queue_counts(pix_store::inbound::INBOUND_QUEUE).await.unwrap();
        let (deliveries, _) = store.list_deliveries(&mine, 100, 0).await.unwrap();
        inbound.ready + inbound.running == 0 && deliveries.iter().any(|d| d.attempts > 0)
    })
    .await;

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let tenant = dx.tenant.id.to_string();
    assert!(text.contains("inbound event stored") && text.contains(&tenant), "the capture sees the host's logs");
    assert!(text.contains(r#""route":"/v1/dict/keys/{key}""#), "requests are named by their route, not their path");
    let pii = [
        MARIA_NAME,
        MARIA_CPF,
        "111.444.777-35",
        MARIA_ACCOUNT,
        MARIA_EMAIL,
        MARIA_PHONE,
        &MARIA_PHONE[1..],
        ANA_NAME,
        ANA_CPF,
        "529.982.247-25",
        ANA_EMAIL,
        CARLOS_NAME,
        CARLOS_PHONE,
        &CARLOS_PHONE[1..],
        MANUAL_ACCOUNT,
        UNKNOWN_KEY,
    ];
    let leaks: Vec<String> = text
        .lines()
        .filter(|line| pii.iter().any(|value| line.contains(value)))
        .map(|line| line.chars().take(600).collect())
        .collect();
    assert!(leaks.is_empty(), "{} log lines carry PII unmasked:\n{}", leaks.len(), leaks.join("\n"));
}

/// Maria registers an e-mail, a phone and her CPF; keys are looked up (found, unknown, and with
/// DICT failing) and statistics read.
async fn dict_entries_and_lookups(dx: &Dx) {
    for (key_type, key) in [("EMAIL", MARIA_EMAIL), ("PHONE", MARIA_PHONE)] {
        dx.create_entry("@maria", json!({"keyType": key_type, "key": key})).await;
    }
    // A CPF key is the holder's document (MARIA_CPF), which the host reads from CRM.
    dx.create_entry("@maria", json!({"keyType": "CPF"})).await;
    let lookup = |key: &str| dx.as_account(Method::GET, &format!("/v1/dict/keys/{key}"), "@joao").send();
    assert_eq!(lookup(ANA_EMAIL).await.unwrap().status(), 200);
    assert_eq!(lookup(UNKNOWN_KEY).await.unwrap().status(), 404);
    dx.app.sandbox.handle.add_fault(FaultRule {
        id: String::new(),
        upstream: FaultTarget::Btg,
        path_prefix: "/dict/keys/".into(),
        method: Some("GET".into()),
        kind: FaultKind::Status { status: 500 },
        count: None,
        probability: None,
    });
    assert!(lookup(CARLOS_PHONE).await.unwrap().status().is_server_error(), "DICT fails the lookup");
    dx.app.sandbox.handle.clear_faults();
    for path in [format!("/v1/dict/statistics/keys/{ANA_EMAIL}"), format!("/v1/dict/statistics/persons/{ANA_CPF}")] {
        assert!(dx.as_account(Method::GET, &path, "@maria").send().await.unwrap().status().is_success(), "{path}");
    }
}

/// Maria pays by key, by manual account details and by QR code, and tries an unknown key.
async fn cash_outs(dx: &Dx) {
    let ana = PixKey::infer(ANA_EMAIL).unwrap();
    let qr = BrCode::static_code(ana, ANA_NAME, "Sao Paulo").amount(Money::parse("3.25").unwrap()).build().unwrap();
    let manual = json!({"ispb": "87654321", "branch": "0042", "account": MANUAL_ACCOUNT, "accountType": "CACC",
                        "document": ANA_CPF, "name": ANA_NAME});
    for body in [
        json!({"type": "KEY", "key": ANA_CPF, "amount": "2.10"}),
        json!({"type": "KEY", "key": CARLOS_PHONE, "amount": "2.20"}),
        json!({"type": "MANUAL", "amount": "2.30", "destination": manual}),
        json!({"type": "QR_CODE", "emv": qr.encode()}),
    ] {
        cash_out(dx, body).await;
    }
    let unknown = dx
        .as_account(Method::POST, "/v1/transfers/cashout/initiate", "@maria")
        .json(&json!({"type": "KEY", "key": UNKNOWN_KEY, "amount": "1.00"}))
        .send()
        .await
        .unwrap();
    assert!(unknown.status().is_client_error(), "{}", unknown.status());
}

/// The Pix Maria received is partly returned; it is reported (MED) and the other participant
/// reports one against us too.
async fn refund_and_med(dx: &Dx, received: &str) {
    let (store, tenant) = (&dx.app.db.store, dx.tenant.id);
    let transfer = store
        .transfer_by_end_to_end_id(tenant, pix_core::transfer::Direction::Cashin, received)
        .await
        .unwrap()
        .expect("the cash-in");
    let refund = dx
        .as_account(Method::POST, &format!("/v1/transfers/{}/refunds", transfer.id), "@maria")
        .header("X-Reason", "MD06")
        .json(&json!({"amount": "20.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 201);
    let report = dx
        .call(Method::POST, "/v1/dict/infraction-reports")
        .json(&json!({"transactionId": received, "reason": "REFUND_REQUEST", "situationType": "SCAM",
                      "reportDetails": format!("{ANA_NAME} ({ANA_CPF}) called about it")}))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 201);
    dx.control(Method::POST, "/_control/btg/infraction-reports", json!({"endToEndId": received})).await;
    let marker = dx
        .call(Method::POST, "/v1/dict/fraud-markers")
        .json(&json!({"taxIdNumber": ANA_CPF, "fraudType": "SCAMMER_ACCOUNT", "key": ANA_EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(marker.status(), 201);
    eventually("the report against us", || async {
        let page = dx.get_json("/v1/dict/infraction-reports?counterparty_participant=12345678").await;
        page["total"].as_i64().unwrap_or(0) > 0
    })
    .await;
}

/// Maria claims Ana's e-mail; the other participant claims Maria's phone.
async fn claims(dx: &Dx) {
    let ours = dx
        .as_account(Method::POST, "/v1/dict/claims", "@maria")
        .json(&json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 201);
    dx.control(Method::POST, "/_control/btg/claims", json!({"key": MARIA_PHONE, "type": "PORTABILITY"})).await;
    eventually("the claim against us", || async {
        dx.get_json("/v1/dict/claims?role=DONOR").await["items"].as_array().is_some_and(|items| !items.is_empty())
    })
    .await;
}
