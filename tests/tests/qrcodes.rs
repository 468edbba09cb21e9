//! `POST /v1/qrcodes/decode` over HTTP: static codes, dynamic codes fetched (signed JWS) from the
//! simulated receiving PSP, due-date amounts on a payment date, and each error with its code.

use chrono::{Days, NaiveDate};
use pix_core::brcode::{BrCode, ChargeStatus, crc16_ccitt_false};
use pix_core::clock::Clock;
use pix_core::money::Money;
use pix_core::pix_key::PixKey;
use pix_e2e::{TestApp, TestTenant, api_tests, error_code};
use pix_sandbox::{QrCharge, QrChargeKind, QrChargeRequest, QrServing};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    static_codes_with_and_without_amount,
    immediate_dynamic_code_is_fetched_and_verified,
    due_date_code_applies_fine_and_interest,
    due_date_code_applies_discount_and_abatement,
    malformed_codes_name_the_problem,
    unreachable_or_broken_locations_are_502,
    expired_paid_or_removed_charges_are_422,
    requests_are_validated,
    txids_are_shown_literally_with_a_forwarding_flag,
    a_pix_template_naming_no_one_is_refused,
);

const ANA_EMAIL: &str = "ana.pereira@example.com";

struct Qx<'a> {
    app: &'a TestApp,
    tenant: TestTenant,
    account: String,
}

impl<'a> Qx<'a> {
    async fn new(app: &'a TestApp) -> Qx<'a> {
        let tenant = app.tenant("qr").await;
        let account = app.sandbox.data.accounts[0].account_id.clone();
        Qx { app, tenant, account }
    }

    async fn decode(&self, body: Value) -> reqwest::Response {
        self.app
            .request(Method::POST, "/v1/qrcodes/decode", &self.tenant.token)
            .header("X-Account-Id", &self.account)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn decode_ok(&self, body: Value) -> Value {
        let response = self.decode(body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Code and message of an error answer.
    async fn decode_err(&self, body: Value) -> (u16, String, String) {
        let response = self.decode(body).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or_default().into(), body["message"].as_str().unwrap_or_default().into())
    }

    /// Today in Brasília by the host's clock.
    fn today(&self) -> NaiveDate {
        pix_server::qrcodes::brasilia_date(self.app.clock.now())
    }

    fn charge(&self, request: QrChargeRequest) -> QrCharge {
        self.app.sandbox.handle.create_qr_charge(request).expect("charge created")
    }
}

fn immediate(amount: &str) -> QrChargeRequest {
    QrChargeRequest {
        kind: QrChargeKind::Immediate,
        key: ANA_EMAIL.into(),
        merchant_name: "Ana Pereira".into(),
        merchant_city: "SAO PAULO".into(),
        txid: None,
        description: Some("Pedido 42".into()),
        amount: Some(Money::parse(amount).unwrap()),
        expires_in_seconds: Some(3600),
        payer_may_change_amount: false,
        due_date: None,
        valid_after_due: None,
        value: None,
        debtor: None,
    }
}

fn due_date(due: NaiveDate, valid_after_due: u32, value: Value) -> QrChargeRequest {
    QrChargeRequest {
        kind: QrChargeKind::DueDate,
        due_date: Some(due),
        valid_after_due: Some(valid_after_due),
        value: Some(serde_json::from_value(value).unwrap()),
        amount: None,
        expires_in_seconds: None,
        description: Some("Mensalidade".into()),
        ..immediate("1.00")
    }
}

fn static_code(amount: Option<&str>, txid: Option<&str>) -> String {
    let mut builder =
        BrCode::static_code(PixKey::infer(ANA_EMAIL).unwrap(), "Ana Pereira", "São Paulo").description("Cafe");
    if let Some(amount) = amount {
        builder = builder.amount(Money::parse(amount).unwrap());
    }
    if let Some(txid) = txid {
        builder = builder.txid(txid);
    }
    builder.build().unwrap().encode()
}

/// `body` + `6304` + its CRC: a payload whose only fault is the one the test put in.
fn with_crc(body: &str) -> String {
    let body = format!("{body}6304");
    let crc = crc16_ccitt_false(body.as_bytes());
    format!("{body}{crc:04X}")
}

fn plus_days(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap()
}

async fn static_codes_with_and_without_amount(app: &TestApp) {
    let qx = Qx::new(app).await;
    let decoded = qx.decode_ok(json!({"emv": static_code(Some("25.90"), Some("PEDIDO123"))})).await;
    assert_eq!(decoded["type"], "STATIC");
    assert_eq!(decoded["receiverKey"], ANA_EMAIL);
    assert_eq!(decoded["amount"], "25.90");
    assert_eq!(decoded["txId"], "PEDIDO123");
    assert_eq!(decoded["description"], "Cafe");
    assert_eq!(decoded["merchantName"], "Ana Pereira");
    assert_eq!(decoded["merchantCity"], "Sao Paulo", "names are folded to ASCII when emitted");
    assert_eq!(decoded["status"], Value::Null, "static codes fetch nothing");

    let open = qx.decode_ok(json!({"emv": static_code(None, None)})).await;
    assert_eq!(open["amount"], Value::Null, "the payer types the amount");
    assert_eq!(open["txId"], Value::Null, "*** is no txid");

    // BCB's manual example (V4): an EVP key, uppercase CRC, pasted with a trailing newline.
    let v4 = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D\n";
    let decoded = qx.decode_ok(json!({"emv": v4})).await;
    assert_eq!(decoded["receiverKey"], "123e4567-e12b-12d1-a456-426655440000");
    assert_eq!(decoded["merchantCity"], "BRASILIA");
}

async fn immediate_dynamic_code_is_fetched_and_verified(app: &TestApp) {
    let qx = Qx::new(app).await;
    let charge = qx.charge(immediate("150.00"));
    assert!(charge.emv.starts_with("000201010212"), "a dynamic code says 01=12: {}", charge.emv);
    let decoded = qx.decode_ok(json!({"emv": charge.emv})).await;
    assert_eq!(decoded["type"], "IMMEDIATE");
    assert_eq!(decoded["receiverKey"], ANA_EMAIL);
    assert_eq!(decoded["amount"], "150.00");
    assert_eq!(decoded["txId"], charge.txid.as_str(), "the txid comes from the payload, not 62.05");
    assert_eq!(decoded["description"], "Pedido 42");
    assert_eq!(decoded["status"], "ACTIVE");
    assert_eq!(decoded["location"], charge.location.as_str());
    assert_eq!(decoded["amountChangeable"], false);
    let created: chrono::DateTime<chrono::Utc> = decoded["createdAt"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = decoded["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 3600);

    // The control API creates charges too.
    let created = app
        .http
        .post(format!("{}/_control/qr/charges", app.sandbox.handle.control_url))
        .json(&json!({"type": "IMMEDIATE", "key": "+5511987654321", "merchantName": "Carlos Lima",
            "merchantCity": "RIO DE JANEIRO", "amount": "0.99", "payerMayChangeAmount": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let decoded = qx.decode_ok(json!({"emv": created["emv"]})).await;
    assert_eq!((decoded["receiverKey"].as_str(), decoded["amount"].as_str()), (Some("+5511987654321"), Some("0.99")));
    assert_eq!(decoded["amountChangeable"], true);
}

async fn due_date_code_applies_fine_and_interest(app: &TestApp) {
    let qx = Qx::new(app).await;
    let due = plus_days(qx.today(), 3);
    let charge = qx.charge(due_date(
        due,
        30,
        json!({"original": "1000.00", "multa": {"modalidade": 2, "valorPerc": "2.00"},
            "juros": {"modalidade": 3, "valorPerc": "1.00"}}),
    ));
    // On the due date: the original.
    let on_time = qx.decode_ok(json!({"emv": charge.emv, "paymentDate": due})).await;
    assert_eq!(on_time["type"], "DUE_DATE");
    assert_eq!(on_time["amount"], "1000.00");
    assert_eq!(on_time["dueDate"], due.to_string());
    assert_eq!(on_time["lastPayableDate"], plus_days(due, 30).to_string());
    // Ten days late (a weekend due date rolls to Monday, still well before): fine 2% = 20.00,
    // interest 1% a month over 10 calendar days = 3.333… → 3.33.
    let late = plus_days(due, 10);
    let decoded = qx.decode_ok(json!({"emv": charge.emv, "paymentDate": late, "cityCode": "3550308"})).await;
    assert_eq!(decoded["paymentDate"], late.to_string());
    assert_eq!(decoded["txId"], charge.txid.as_str());
    assert_eq!(
        decoded["amountDetails"],
        json!({"original": "1000.00", "fine": "20.00", "interest": "3.33", "abatement": null, "discount": null,
            "final": "1023.33"})
    );
    assert_eq!(decoded["amount"], "1023.33");
    // Twenty days: 6.666… → 6.67.
    let decoded = qx.decode_ok(json!({"emv": charge.emv, "paymentDate": plus_days(due, 20)})).await;
    assert_eq!(decoded["amount"], "1026.67");
}

async fn due_date_code_applies_discount_and_abatement(app: &TestApp) {
    let qx = Qx::new(app).await;
    let due = plus_days(qx.today(), 20);
    let charge = qx.charge(due_date(
        due,
        5,
        json!({"original": "500.00", "abatimento": {"modalidade": 2, "valorPerc": "2.00"},
            "desconto": {"modalidade": 3, "valorPerc": "0.50"}}),
    ));
    // Ten calendar days early: 5.00 off, and the 2% abatement (10.00) always.
    let early = plus_days(qx.today(), 10);
    let decoded = qx.decode_ok(json!({"emv": charge.emv, "paymentDate": early})).await;
    assert_eq!(
        decoded["amountDetails"],
        json!({"original": "500.00", "fine": null, "interest": null, "abatement": "10.00", "discount": "5.00",
            "final": "485.00"})
    );
    // Today (twenty days early) is the default payment date: 10.00 off.
    let today = qx.decode_ok(json!({"emv": charge.emv})).await;
    assert_eq!(today["paymentDate"], qx.today().to_string());
    assert_eq!(today["amount"], "480.00");

    let dated = qx.charge(due_date(
        due,
        0,
        json!({"original": "200.00", "desconto": {"modalidade": 1, "descontoDataFixa": [
            {"data": plus_days(qx.today(), 5), "valorPerc": "15.00"},
            {"data": plus_days(qx.today(), 10), "valorPerc": "7.50"}]}}),
    ));
    for (days, expected) in [(5, "185.00"), (6, "192.50"), (11, "200.00")] {
        let decoded = qx.decode_ok(json!({"emv": dated.emv, "paymentDate": plus_days(qx.today(), days)})).await;
        assert_eq!(decoded["amount"], expected, "{days} days from now");
    }
}

async fn malformed_codes_name_the_problem(app: &TestApp) {
    let qx = Qx::new(app).await;
    let good = static_code(Some("10.00"), None);
    // Bad CRC: the last hex digit changed.
    let mut bad_crc = good.clone();
    let last = bad_crc.pop().unwrap();
    bad_crc.push(if last == '0' { '1' } else { '0' });
    let (status, code, message) = qx.decode_err(json!({"emv": bad_crc})).await;
    assert_eq!((status, code.as_str()), (400, "PIX-0301"));
    assert!(message.contains("CRC does not match"), "{message}");

    // Truncated TLV: cut inside field 59.
    let cut = &good[..good.find("5911Ana").unwrap() + 7];
    let (status, code, message) = qx.decode_err(json!({"emv": cut})).await;
    assert_eq!((status, code.as_str()), (400, "PIX-0301"));
    assert!(message.contains("cut short") && message.contains("59"), "{message}");

    let template = "26580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000";
    // Wrong length: a two-character currency, with a correct CRC.
    let short_currency =
        with_crc(&format!("000201{template}520400005302985802BR5913Fulano de Tal6008BRASILIA62070503***"));
    let (status, code, message) = qx.decode_err(json!({"emv": short_currency})).await;
    assert_eq!((status, code.as_str()), (400, "PIX-0301"));
    assert!(message.contains("field 53") && message.contains("must be 3 characters long"), "{message}");

    // Missing mandatory tag: no merchant name (59).
    let nameless = with_crc(&format!("000201{template}5204000053039865802BR6008BRASILIA62070503***"));
    let (status, code, message) = qx.decode_err(json!({"emv": nameless})).await;
    assert_eq!((status, code.as_str()), (400, "PIX-0301"));
    assert!(message.contains("mandatory field 59"), "{message}");

    // Not Pix at all, and Pix Automático (no key, no location) are refused as well.
    let (_, code, _) = qx.decode_err(json!({"emv": "hello"})).await;
    assert_eq!(code, "PIX-0301");
    let v1 = "00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/2353c790eefb11eaadc10242ac120002630462C9";
    let (_, code, message) = qx.decode_err(json!({"emv": v1})).await;
    assert_eq!(code, "PIX-0301");
    assert!(message.contains("Pix Automático"), "{message}");
}

async fn unreachable_or_broken_locations_are_502(app: &TestApp) {
    let qx = Qx::new(app).await;
    let handle = &app.sandbox.handle;
    // Nothing listens on port 1.
    let nowhere = BrCode::dynamic_code("127.0.0.1:1/qr/v2/cob/0123456789abcdef", "Ana Pereira", "SAO PAULO")
        .build()
        .unwrap()
        .encode();
    let (status, code, message) = qx.decode_err(json!({"emv": nowhere})).await;
    assert_eq!((status, code.as_str()), (502, "PIX-0302"), "{message}");
    assert_eq!(message, pix_server::outbound::TENANT_MESSAGE, "the one generic answer of a failed fetch");

    let failing = qx.charge(immediate("10.00"));
    handle.set_qr_charge_serving(&failing.id, QrServing::Status { status: 503 }).unwrap();
    let (status, code, message) = qx.decode_err(json!({"emv": failing.emv})).await;
    assert_eq!((status, code.as_str()), (502, "PIX-0302"));
    assert!(message.contains("HTTP 503"), "{message}");

    let forged = qx.charge(immediate("10.00"));
    handle.set_qr_charge_serving(&forged.id, QrServing::BadSignature).unwrap();
    let (status, code, message) = qx.decode_err(json!({"emv": forged.emv})).await;
    assert_eq!((status, code.as_str()), (502, "PIX-0304"));
    assert!(message.contains("signature does not verify"), "{message}");

    let plain = qx.charge(immediate("10.00"));
    handle.set_qr_charge_serving(&plain.id, QrServing::NotJws).unwrap();
    let (status, code, message) = qx.decode_err(json!({"emv": plain.emv})).await;
    assert_eq!((status, code.as_str()), (502, "PIX-0304"));
    assert!(message.contains("compact JWS"), "{message}");

    // Back to normal, the same charge decodes: the failures were the location's, not the code's.
    handle.set_qr_charge_serving(&plain.id, QrServing::Signed).unwrap();
    assert_eq!(qx.decode_ok(json!({"emv": plain.emv})).await["amount"], "10.00");
}

async fn expired_paid_or_removed_charges_are_422(app: &TestApp) {
    let qx = Qx::new(app).await;
    let handle = &app.sandbox.handle;
    let expired = qx.charge(immediate("42.00"));
    assert_eq!(qx.decode_ok(json!({"emv": expired.emv})).await["amount"], "42.00");
    handle.expire_qr_charge(&expired.id).unwrap();
    let (status, code, message) = qx.decode_err(json!({"emv": expired.emv})).await;
    assert_eq!((status, code.as_str()), (422, "PIX-0303"));
    assert!(message.contains("expired"), "{message}");

    // The host's own clock decides too: an hour-long charge is expired two hours later.
    let hour = qx.charge(immediate("42.00"));
    app.clock.advance(chrono::Duration::hours(2));
    let (_, code, _) = qx.decode_err(json!({"emv": hour.emv})).await;
    assert_eq!(code, "PIX-0303");

    let paid = qx.charge(immediate("42.00"));
    handle.set_qr_charge_status(&paid.id, ChargeStatus::Concluded).unwrap();
    let (status, code, message) = qx.decode_err(json!({"emv": paid.emv})).await;
    assert_eq!((status, code.as_str()), (422, "PIX-0303"));
    assert!(message.contains("already paid"), "{message}");

    let removed = qx.charge(immediate("42.00"));
    handle.set_qr_charge_status(&removed.id, ChargeStatus::RemovedByReceiver).unwrap();
    let (_, code, message) = qx.decode_err(json!({"emv": removed.emv})).await;
    assert_eq!(code, "PIX-0303");
    assert!(message.contains("removed"), "{message}");

    let gone = qx.charge(immediate("42.00"));
    handle.set_qr_charge_serving(&gone.id, QrServing::Status { status: 410 }).unwrap();
    let (status, code, _) = qx.decode_err(json!({"emv": gone.emv})).await;
    assert_eq!((status, code.as_str()), (422, "PIX-0303"));

    // A due-date charge past its validity: by the payment date asked, and once expired.
    let today = qx.today();
    let cobv = qx.charge(due_date(today, 2, json!({"original": "80.00"})));
    assert_eq!(qx.decode_ok(json!({"emv": cobv.emv, "paymentDate": plus_days(today, 2)})).await["amount"], "80.00");
    let (status, code, _) = qx.decode_err(json!({"emv": cobv.emv, "paymentDate": plus_days(today, 3)})).await;
    assert_eq!((status, code.as_str()), (422, "PIX-0303"));
    handle.expire_qr_charge(&cobv.id).unwrap();
    let (_, code, _) = qx.decode_err(json!({"emv": cobv.emv})).await;
    assert_eq!(code, "PIX-0303");
}

async fn requests_are_validated(app: &TestApp) {
    let qx = Qx::new(app).await;
    let emv = static_code(None, None);
    let no_account = app
        .request(Method::POST, "/v1/qrcodes/decode", &qx.tenant.token)
        .json(&json!({"emv": emv}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(no_account).await, "PIX-0001");
    let unauthenticated =
        app.http.post(format!("{}/v1/qrcodes/decode", app.url)).json(&json!({"emv": emv})).send().await;
    assert_eq!(unauthenticated.unwrap().status(), 401);
    let (_, code, _) = qx.decode_err(json!({})).await;
    assert_eq!(code, "PIX-0003");
    let (_, code, _) = qx.decode_err(json!({"emv": emv, "extra": 1})).await;
    assert_eq!(code, "PIX-0006");
    let (_, code, message) = qx.decode_err(json!({"emv": emv, "paymentDate": "2001-01-01"})).await;
    assert_eq!(code, "PIX-0004");
    assert!(message.contains("paymentDate"), "{message}");
    let (_, code, _) = qx.decode_err(json!({"emv": emv, "paymentDate": "31/12/2030"})).await;
    assert_eq!(code, "PIX-0004");
    let (_, code, message) = qx.decode_err(json!({"emv": emv, "cityCode": "35503"})).await;
    assert_eq!(code, "PIX-0004");
    assert!(message.contains("cityCode"), "{message}");

    let doc: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    let decode = &doc["paths"]["/v1/qrcodes/decode"]["post"];
    assert!(decode["responses"]["422"].is_object(), "the decode endpoint is documented: {decode}");
    assert!(doc["components"]["schemas"]["DecodedQrView"].is_object());
}

/// Regression (issue 16): a hyphenated static txid was answered as `txId: null`.
async fn txids_are_shown_literally_with_a_forwarding_flag(app: &TestApp) {
    let qx = Qx::new(app).await;
    // BCB's multi-arrangement example (V5): its txid has a '-', which the SPI's TxId does not take.
    let v5 = "00020104141234567890123426580014BR.GOV.BCB.PIX0136123e4567-e12b-12d1-a456-42665544000027300012BR.COM.OUTRO011001234567895204000053039865406123.455802BR5917NOME DO RECEBEDOR6008BRASILIA61087007490062190515RP12345678-201980390012BR.COM.OUTRO01190123.ABCD.3456.WXYZ6304AD38";
    let decoded = qx.decode_ok(json!({"emv": v5})).await;
    assert_eq!(decoded["txId"], "RP12345678-2019", "the payer sees the literal value");
    assert_eq!(decoded["txIdForwardable"], false, "but it is not forwarded to the SPI");
    let plain = qx.decode_ok(json!({"emv": static_code(None, Some("PEDIDO123"))})).await;
    assert_eq!((plain["txId"].as_str(), plain["txIdForwardable"].as_bool()), (Some("PEDIDO123"), Some(true)));
    // An explicit *** is no txid, built and decoded alike.
    let none = qx.decode_ok(json!({"emv": static_code(None, Some("***"))})).await;
    assert_eq!((none["txId"].clone(), none["txIdForwardable"].as_bool()), (Value::Null, Some(false)));
    assert_eq!(static_code(None, Some("***")), static_code(None, None));
    let dynamic = qx.charge(immediate("10.00"));
    let decoded = qx.decode_ok(json!({"emv": dynamic.emv})).await;
    assert_eq!(
        (decoded["txId"].as_str(), decoded["txIdForwardable"].as_bool()),
        (Some(dynamic.txid.as_str()), Some(true))
    );
}

/// Regression (issue 16): template 26 with only the GUI, and no Pix Automático template, was valid.
async fn a_pix_template_naming_no_one_is_refused(app: &TestApp) {
    let qx = Qx::new(app).await;
    let gui_only =
        with_crc("00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***");
    let (status, code, message) = qx.decode_err(json!({"emv": gui_only})).await;
    assert_eq!((status, code.as_str()), (400, "PIX-0301"));
    assert!(message.contains("field 26") && message.contains("neither a key"), "{message}");
}
