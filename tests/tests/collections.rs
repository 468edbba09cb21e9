//! Collections over HTTP: static BR Codes, immediate (COB) and due-date (COBV) charges, their
//! location served by the host, and the lifecycle through cash-in (issue #16).

use base64::Engine as _;
use chrono::{Days, NaiveDate};
use pix_core::brcode::{BrCode, DueDateRules};
use pix_core::clock::Clock;
use pix_core::money::Money;
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    static_codes_are_stored_listed_and_round_trip_through_decode,
    static_code_fields_are_validated,
    an_immediate_charge_is_paid_by_qr_and_concludes,
    a_due_date_charge_is_due_by_payment_date_and_refuses_a_wrong_amount,
    charge_fields_are_validated_naming_the_field,
    charges_are_listed_filtered_updated_and_scoped,
    deleted_and_expired_charges_are_removed_with_events,
    a_txid_is_unique_under_concurrent_creates,
    any_accepted_charge_produces_a_code_that_decodes_to_its_fields,
);

const ALIAS: &str = "@joao";

/// A fresh EVP key of `alias`, ACTIVE in DICT.
async fn own_key(bank: &Bank<'_>, alias: &str) -> String {
    let response = bank.call(Method::POST, "/v1/dict/entries", alias).json(&json!({"keyType": "EVP"})).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 201);
    let entry: Value = response.json().await.unwrap();
    assert_eq!(entry["status"], "ACTIVE", "{entry}");
    entry["key"].as_str().unwrap().to_owned()
}

async fn send(bank: &Bank<'_>, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = bank.call(method, path, ALIAS);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn decode(bank: &Bank<'_>, emv: &str, payment_date: Option<NaiveDate>) -> (u16, Value) {
    let mut body = json!({"emv": emv});
    if let Some(date) = payment_date {
        body["paymentDate"] = json!(date);
    }
    send(bank, Method::POST, "/v1/qrcodes/decode", Some(body)).await
}

fn txid(n: u32) -> String {
    format!("COLLECTIONTEST{n:012}ABCDEFGH")
}

fn today(app: &TestApp) -> NaiveDate {
    pix_core::clock::brasilia_date(app.clock.now())
}

fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap()
}

fn cob(key: &str, tx_id: &str, amount: &str) -> Value {
    json!({"amount": amount, "expirationSeconds": 3600, "receiverKey": key, "txId": tx_id,
        "description": "Pedido 42", "debtorDocument": "11144477735", "debtorName": "Fulano de Tal",
        "additionalInfo": [{"name": "Pedido", "value": "42"}], "metadata": {"orderId": "42"}, "tags": ["loja"],
        "locationInformation": {"merchantName": "Padaria São João", "merchantCity": "São Paulo",
            "categoryCode": "5462", "postalCode": "01310100"}})
}

fn cobv(key: &str, tx_id: &str, due: NaiveDate) -> Value {
    json!({"amount": {"original": "1000.00", "fine": {"modality": "PERCENT", "value": "2.00"},
            "interest": {"modality": "PERCENTAGE_PER_MONTH_CALENDAR_DAYS", "value": "1.00"},
            "discount": {"modality": "AMOUNT_ADVANCE_CALENDAR_DAY", "value": "0.50"},
            "abatement": {"modality": "FIXED_AMOUNT", "value": "10.00"}},
        "debtor": {"document": "11144477735", "name": "Fulano de Tal", "email": "fulano@example.com",
            "address": "Rua A, 1", "city": "Sao Paulo", "state": "SP", "zipCode": "01310100"},
        "dueDate": due, "receiverKey": key, "txId": tx_id, "validAfterDue": 30, "description": "Mensalidade"})
}

/// Pays `amount` to `key` with `tx_id`, as the payer's PSP does after decoding the code; returns
/// the settled cash-in.
async fn pay(bank: &Bank<'_>, key: &str, tx_id: &str, amount: &str) -> Value {
    let pix = bank
        .app
        .sandbox
        .handle
        .inbound_pix(&json!({"amount": amount, "key": key, "txid": tx_id, "initiationType": "DYNAMIC_QRCODE"}))
        .unwrap();
    bank.wait_cash_in(ALIAS, pix["endToEndId"].as_str().unwrap()).await
}

async fn static_codes_are_stored_listed_and_round_trip_through_decode(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let body = json!({"receiverKey": key, "amount": "25.90", "description": "Café", "txId": "PEDIDO123",
        "merchant": {"name": "Padaria São João", "city": "São Paulo", "categoryCode": "5462", "postalCode": "01310100"}});
    let (status, created) = send(&bank, Method::POST, "/v1/brcode/static?include_base64=true", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["receiverKey"].as_str(), created["amount"].as_str()), (Some(key.as_str()), Some("25.90")));
    let png = base64::engine::general_purpose::STANDARD.decode(created["base64"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let emv = created["emv"].as_str().unwrap();
    let code = BrCode::parse(emv).unwrap();
    assert_eq!((code.merchant_name(), code.merchant_city()), ("Padaria Sao Joao", "Sao Paulo"), "folded, not cut");
    assert_eq!((code.merchant_category_code(), code.postal_code()), ("5462", Some("01310100")));
    let (status, decoded) = decode(&bank, emv, None).await;
    assert_eq!(status, 200, "{decoded}");
    assert_eq!(decoded["type"], "STATIC");
    assert_eq!((decoded["receiverKey"].as_str(), decoded["amount"].as_str()), (Some(key.as_str()), Some("25.90")));
    assert_eq!((decoded["txId"].as_str(), decoded["description"].as_str()), (Some("PEDIDO123"), Some("Cafe")));

    // Omitted merchant: the CRM holder's name; no amount: the payer types it; *** is no txid.
    let (status, open) =
        send(&bank, Method::POST, "/v1/brcode/static", Some(json!({"receiverKey": key, "txId": "***"}))).await;
    assert_eq!(status, 201, "{open}");
    assert_eq!(open["base64"], Value::Null, "no PNG unless asked");
    let holder = bank.demo_account(ALIAS).name.clone();
    let code = BrCode::parse(open["emv"].as_str().unwrap()).unwrap();
    assert_eq!(code.merchant_name(), pix_core::brcode::fold_to_ascii(&holder));
    assert_eq!((code.amount(), code.txid()), (None, None));

    let (_, page) = send(&bank, Method::GET, "/v1/brcode/static?limit=1", None).await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["id"], open["id"], "newest first");
    let other: Value = bank.get_json("/v1/brcode/static", "@maria").await;
    assert_eq!(other["total"], 0, "another account sees none");
}

async fn static_code_fields_are_validated(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let check = |body: Value, status: u16, code: &'static str, field: &'static str| {
        let bank = &bank;
        async move {
            let (got, error) = send(bank, Method::POST, "/v1/brcode/static", Some(body.clone())).await;
            assert_eq!((got, error["code"].as_str()), (status, Some(code)), "{body}: {error}");
            assert!(error["message"].as_str().unwrap().contains(field), "{field}: {error}");
        }
    };
    let long_name = "Padaria e Confeitaria São João";
    check(json!({"receiverKey": key, "merchant": {"name": long_name}}), 400, "PIX-0004", "merchant.name").await;
    check(json!({"receiverKey": key, "merchant": {"city": "São José dos Campos"}}), 400, "PIX-0004", "merchant.city")
        .await;
    check(json!({"receiverKey": key, "merchant": {"categoryCode": "54"}}), 400, "PIX-0004", "categoryCode").await;
    check(json!({"receiverKey": key, "merchant": {"postalCode": "01310-100"}}), 400, "PIX-0004", "postalCode").await;
    check(json!({"receiverKey": key, "txId": "PEDIDO-1"}), 400, "PIX-0004", "txId").await;
    check(json!({"receiverKey": key, "txId": "A".repeat(26)}), 400, "PIX-0004", "txId").await;
    check(json!({"receiverKey": key, "amount": "0.00"}), 400, "PIX-0004", "amount").await;
    check(json!({"receiverKey": bank.ana_key()}), 422, "PIX-0307", "receiverKey").await;
    check(json!({"amount": "1.00"}), 400, "PIX-0003", "receiverKey").await;
    // Field 26 holds the GUI, the 36-character EVP and the description: at most 99 in all.
    check(json!({"receiverKey": key, "description": "d".repeat(40)}), 400, "PIX-0004", "description").await;
    // Another account's key is not this account's.
    let marias = own_key(&bank, "@maria").await;
    check(json!({"receiverKey": marias}), 422, "PIX-0307", "receiverKey").await;
}

async fn an_immediate_charge_is_paid_by_qr_and_concludes(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let (status, c) = send(&bank, Method::POST, "/v1/collections/immediate", Some(cob(&key, &txid(1), "150.00"))).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(
        (c["type"].as_str(), c["status"].as_str(), c["revision"].as_i64()),
        (Some("IMMEDIATE"), Some("ACTIVE"), Some(0))
    );
    let emv = c["emv"].as_str().unwrap();
    let code = BrCode::parse(emv).unwrap();
    assert_eq!(code.location_url(), c["location"].as_str(), "26.25 points at the host's location");
    assert!(c["location"].as_str().unwrap().starts_with(app.url.trim_start_matches("http://")));
    assert_eq!((code.merchant_name(), code.merchant_category_code()), ("Padaria Sao Joao", "5462"));

    // The payer decodes it: the host serves and signs the charge, the decoder verifies it.
    let (status, decoded) = decode(&bank, emv, None).await;
    assert_eq!(status, 200, "{decoded}");
    assert_eq!((decoded["type"].as_str(), decoded["amount"].as_str()), (Some("IMMEDIATE"), Some("150.00")));
    assert_eq!(
        (decoded["txId"].as_str(), decoded["receiverKey"].as_str()),
        (Some(txid(1).as_str()), Some(key.as_str()))
    );
    assert_eq!(decoded["description"], "Pedido 42");

    let before = bank.balance(ALIAS).0;
    let cashin = pay(&bank, &key, &txid(1), "150.00").await;
    assert_eq!(cashin["status"], "COMPLETED", "{cashin}");
    assert_eq!(bank.balance(ALIAS).0, before + 15_000, "credited");
    let id = c["id"].as_str().unwrap();
    let (_, concluded) = send(&bank, Method::GET, &format!("/v1/collections/immediate/{id}"), None).await;
    assert_eq!(concluded["status"], "CONCLUDED", "{concluded}");
    assert_eq!(concluded["endToEndId"], cashin["endToEndId"]);
    let events = bank.events_of(id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["flowType"].as_str(), events[0]["entityType"].as_str()),
        (Some("COLLECTION"), Some("IMMEDIATE"))
    );
    assert_eq!(events[0]["payload"]["status"], "CONCLUDED");

    // A CONCLUDED charge cannot be updated (PIX-0022) or deleted (PIX-0104); payers see it paid.
    let (status, error) =
        send(&bank, Method::PATCH, &format!("/v1/collections/immediate/{id}"), Some(json!({"amount": "1.00"}))).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0022")), "{error}");
    let (status, error) = send(&bank, Method::DELETE, &format!("/v1/collections/immediate/{id}"), None).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0104")), "{error}");
    let (status, error) = decode(&bank, emv, None).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0303")), "{error}");
    // Paying it again is refused through the cash-in acceptance path.
    let again = pay(&bank, &key, &txid(1), "150.00").await;
    assert_eq!((again["status"].as_str(), again["failureCode"].as_str()), (Some("FAILED"), Some("COLLECTION_INVALID")));
}

async fn a_due_date_charge_is_due_by_payment_date_and_refuses_a_wrong_amount(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let due = plus(today(app), 10);
    let (status, c) = send(&bank, Method::POST, "/v1/collections/duedate", Some(cobv(&key, &txid(2), due))).await;
    assert_eq!(status, 201, "{c}");
    let emv = c["emv"].as_str().unwrap();
    let rules: DueDateRules = serde_json::from_value(c["details"]["schedule"]["rules"].clone()).unwrap();
    // What the payer sees is what the due-date code computes, for each payment date.
    for date in [today(app), plus(due, 15)] {
        let (status, decoded) = decode(&bank, emv, Some(date)).await;
        assert_eq!(status, 200, "{decoded}");
        let expected = rules.value_on(due, 30, date).unwrap();
        assert_eq!(decoded["amount"], expected.total.to_string(), "{date}");
        assert_eq!(decoded["type"], "DUE_DATE");
        assert_eq!(decoded["paymentDate"], date.to_string());
    }
    // Ten days early: 10 × 0.50 discount and the 10.00 abatement; fifteen days late: fine 2% and
    // interest 1% a month over 15 days (5.00), less the abatement.
    assert_eq!(rules.value_on(due, 30, today(app)).unwrap().total, Money::parse("985.00").unwrap());
    assert_eq!(rules.value_on(due, 30, plus(due, 15)).unwrap().total, Money::parse("1015.00").unwrap());

    let today_due = rules.value_on(due, 30, today(app)).unwrap().total;
    let wrong = pay(&bank, &key, &txid(2), "1000.00").await;
    assert_eq!(
        (wrong["status"].as_str(), wrong["failureCode"].as_str()),
        (Some("FAILED"), Some("COLLECTION_INVALID")),
        "{wrong}"
    );
    let id = c["id"].as_str().unwrap();
    let (_, still) = send(&bank, Method::GET, &format!("/v1/collections/duedate/{id}"), None).await;
    assert_eq!(still["status"], "ACTIVE", "a refused payment concludes nothing");

    let before = bank.balance(ALIAS).0;
    let paid = pay(&bank, &key, &txid(2), &today_due.to_string()).await;
    assert_eq!(paid["status"], "COMPLETED", "{paid}");
    assert_eq!(bank.balance(ALIAS).0, before + today_due.centavos());
    let (_, concluded) = send(&bank, Method::GET, &format!("/v1/collections/duedate/{id}"), None).await;
    assert_eq!(concluded["status"], "CONCLUDED");
    let (status, error) =
        send(&bank, Method::PATCH, &format!("/v1/collections/duedate/{id}"), Some(json!({"validAfterDue": 5}))).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0022")));
    let (status, error) = send(&bank, Method::DELETE, &format!("/v1/collections/duedate/{id}"), None).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0104")));
}

async fn charge_fields_are_validated_naming_the_field(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let cob_with = |edit: &dyn Fn(&mut Value)| {
        let mut body = cob(&key, &txid(3), "10.00");
        edit(&mut body);
        body
    };
    let mut cases: Vec<(Value, &str, u16, &str)> = vec![
        (cob_with(&|b| b["txId"] = json!("SHORT")), "txId", 400, "PIX-0004"),
        (cob_with(&|b| b["txId"] = json!(format!("{}-", "A".repeat(30)))), "txId", 400, "PIX-0004"),
        (cob_with(&|b| b["txId"] = json!("A".repeat(36))), "txId", 400, "PIX-0004"),
        (cob_with(&|b| b["amount"] = json!("0.00")), "amount", 400, "PIX-0004"),
        (cob_with(&|b| b["expirationSeconds"] = json!(0)), "expirationSeconds", 400, "PIX-0004"),
        (cob_with(&|b| b["debtorName"] = Value::Null), "debtorDocument and debtorName", 400, "PIX-0004"),
        (cob_with(&|b| b["debtorDocument"] = json!("11144477700")), "debtorDocument", 400, "PIX-0004"),
        (cob_with(&|b| b["description"] = json!("x".repeat(141))), "description", 400, "PIX-0004"),
        (
            cob_with(&|b| b["additionalInfo"] = json!([{"name": "", "value": "v"}])),
            "additionalInfo[0]",
            400,
            "PIX-0004",
        ),
        (
            cob_with(&|b| b["metadata"] = Value::Object((0..51).map(|i| (format!("k{i}"), json!(i))).collect())),
            "metadata",
            400,
            "PIX-0004",
        ),
        (cob_with(&|b| b["tags"] = json!([""])), "tags[0]", 400, "PIX-0004"),
        (
            cob_with(&|b| b["locationInformation"]["merchantName"] = json!("x".repeat(26))),
            "locationInformation.name",
            400,
            "PIX-0004",
        ),
        (cob_with(&|b| b["withdrawalAmount"] = json!("11.00")), "withdrawalAmount", 400, "PIX-0004"),
        (
            cob_with(&|b| {
                b["purchaseAmount"] = json!("6.00");
                b["withdrawalAmount"] = json!("5.00");
            }),
            "purchaseAmount + withdrawalAmount",
            400,
            "PIX-0004",
        ),
        (cob_with(&|b| b["receiverKey"] = json!(bank.ana_key())), "receiverKey", 422, "PIX-0307"),
        (cob_with(&|b| b["surprise"] = json!(1)), "surprise", 400, "PIX-0006"),
        (
            cob_with(&|b| b.as_object_mut().unwrap().retain(|k, _| k != "expirationSeconds")),
            "expirationSeconds",
            400,
            "PIX-0003",
        ),
    ];
    for (body, field, status, code) in cases.drain(..) {
        let (got, error) = send(&bank, Method::POST, "/v1/collections/immediate", Some(body)).await;
        assert_eq!((got, error["code"].as_str()), (status, Some(code)), "{field}: {error}");
        assert!(error["message"].as_str().unwrap().contains(field), "{field}: {error}");
    }
    // Troco done right is accepted.
    let troco = cob_with(&|b| {
        b["purchaseAmount"] = json!("6.00");
        b["withdrawalAmount"] = json!("4.00");
    });
    let (status, created) = send(&bank, Method::POST, "/v1/collections/immediate", Some(troco)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["details"]["purchaseAmount"].as_str(), created["details"]["withdrawalAmount"].as_str()),
        (Some("6.00"), Some("4.00"))
    );

    let due = plus(today(app), 5);
    let cobv_with = |edit: &dyn Fn(&mut Value)| {
        let mut body = cobv(&key, &txid(4), due);
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, &str, u16, &str)> = vec![
        (cobv_with(&|b| b["dueDate"] = json!(plus(today(app), 0).pred_opt().unwrap())), "dueDate", 400, "PIX-0004"),
        (cobv_with(&|b| b["amount"]["fine"]["value"] = json!("101.00")), "amount", 400, "PIX-0004"),
        (cobv_with(&|b| b["amount"]["fine"]["modality"] = json!("SOMETIMES")), "modality", 400, "PIX-0004"),
        (
            cobv_with(&|b| b["amount"]["discount"] = json!({"modality": "FIXED_AMOUNT_UNTIL_DATE", "value": "1.00"})),
            "amount",
            400,
            "PIX-0004",
        ),
        (cobv_with(&|b| b["amount"]["interest"]["value"] = json!("1.5")), "value", 400, "PIX-0004"),
        (cobv_with(&|b| b["debtor"]["document"] = json!("123")), "debtor.document", 400, "PIX-0004"),
        (cobv_with(&|b| b["debtor"]["state"] = json!("Sao Paulo")), "debtor.state", 400, "PIX-0004"),
        (cobv_with(&|b| b["debtor"]["zipCode"] = json!("1310")), "debtor.zipCode", 400, "PIX-0004"),
        (cobv_with(&|b| b["debtor"]["email"] = json!("nobody")), "debtor.email", 400, "PIX-0004"),
        (cobv_with(&|b| b.as_object_mut().unwrap().retain(|k, _| k != "debtor")), "debtor", 400, "PIX-0003"),
    ];
    for (body, field, status, code) in cases {
        let (got, error) = send(&bank, Method::POST, "/v1/collections/duedate", Some(body)).await;
        assert_eq!((got, error["code"].as_str()), (status, Some(code)), "{field}: {error}");
        assert!(error["message"].as_str().unwrap().contains(field), "{field}: {error}");
    }
    // Every modality name is accepted.
    for (i, (interest, discount)) in [
        ("AMOUNT_PER_CALENDAR_DAY", "FIXED_AMOUNT_UNTIL_DATE"),
        ("PERCENTAGE_PER_DAY_CALENDAR_DAYS", "PERCENTAGE_UNTIL_DATE"),
        ("PERCENTAGE_PER_YEAR_CALENDAR_DAYS", "AMOUNT_ADVANCE_BUSINESS_DAY"),
        ("AMOUNT_PER_BUSINESS_DAY", "PERCENTAGE_ADVANCE_CALENDAR_DAY"),
        ("PERCENTAGE_PER_DAY_BUSINESS_DAYS", "PERCENTAGE_ADVANCE_BUSINESS_DAY"),
        ("PERCENTAGE_PER_MONTH_BUSINESS_DAYS", "AMOUNT_ADVANCE_CALENDAR_DAY"),
        ("PERCENTAGE_PER_YEAR_BUSINESS_DAYS", "AMOUNT_ADVANCE_CALENDAR_DAY"),
    ]
    .into_iter()
    .enumerate()
    {
        let dated = discount.ends_with("UNTIL_DATE");
        let discount = if dated {
            json!({"modality": discount, "discountDateFixed": [{"date": plus(today(app), 1), "value": "1.00"}]})
        } else {
            json!({"modality": discount, "value": "0.10"})
        };
        let body = cobv_with(&|b| {
            b["txId"] = json!(txid(100 + i as u32));
            b["amount"]["interest"]["modality"] = json!(interest);
            b["amount"]["discount"] = discount.clone();
        });
        let (status, created) = send(&bank, Method::POST, "/v1/collections/duedate", Some(body)).await;
        assert_eq!(status, 201, "{interest}: {created}");
    }
}

async fn charges_are_listed_filtered_updated_and_scoped(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, c) =
            send(&bank, Method::POST, "/v1/collections/immediate", Some(cob(&key, &txid(10 + n), "5.00"))).await;
        assert_eq!(status, 201, "{c}");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let (_, page) = send(&bank, Method::GET, "/v1/collections/immediate?limit=2&page=2", None).await;
    assert_eq!((page["total"].as_i64(), page["items"].as_array().unwrap().len()), (Some(3), 1));
    assert_eq!(page["items"][0]["id"], ids[2].as_str(), "oldest first by default");
    let (_, desc) = send(&bank, Method::GET, "/v1/collections/immediate?sort_order=desc&limit=1", None).await;
    assert_eq!(desc["items"][0]["id"], ids[2].as_str());
    let (_, by_txid) = send(&bank, Method::GET, &format!("/v1/collections/immediate?txId={}", txid(11)), None).await;
    assert_eq!((by_txid["total"].as_i64(), by_txid["items"][0]["id"].as_str()), (Some(1), Some(ids[1].as_str())));
    let (_, later) = send(&bank, Method::GET, "/v1/collections/immediate?start_date=2999-01-01T00:00:00Z", None).await;
    assert_eq!(later["total"], 0);
    let (_, none_due) = send(&bank, Method::GET, "/v1/collections/duedate", None).await;
    assert_eq!(none_due["total"], 0, "COB and COBV are listed apart");
    let (status, _) = send(&bank, Method::GET, "/v1/collections/immediate?status=PAID", None).await;
    assert_eq!(status, 400);

    let (status, updated) = send(
        &bank,
        Method::PATCH,
        &format!("/v1/collections/immediate/{}", ids[0]),
        Some(json!({"amount": "7.50", "description": "Pedido 43", "tags": ["a", "b"]})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["amount"].as_str(), updated["revision"].as_i64()), (Some("7.50"), Some(1)));
    assert_eq!(updated["details"]["tags"], json!(["a", "b"]));
    let (_, decoded) = decode(&bank, updated["emv"].as_str().unwrap(), None).await;
    assert_eq!(
        (decoded["amount"].as_str(), decoded["revision"].as_u64()),
        (Some("7.50"), Some(1)),
        "the location serves the update"
    );
    let (status, error) =
        send(&bank, Method::PATCH, &format!("/v1/collections/immediate/{}", ids[0]), Some(json!({"debtorName": "X"})))
            .await;
    assert_eq!((status, error["code"].as_str()), (400, Some("PIX-0004")));
    let (_, active) = send(&bank, Method::GET, "/v1/collections/immediate?status=ACTIVE", None).await;
    assert_eq!(active["total"], 3);

    // The wrong kind, an unknown id, and another tenant's charge: 404.
    let (status, error) = send(&bank, Method::GET, &format!("/v1/collections/duedate/{}", ids[0]), None).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("PIX-0305")));
    let other = app.tenant("other").await;
    let path = format!("/v1/collections/immediate/{}", ids[0]);
    let foreign = app.request(Method::GET, &path, &other.token).header("X-Account-Id", bank.account(ALIAS));
    assert_eq!(foreign.send().await.unwrap().status(), 404, "another tenant");
    let (status, error) = {
        let response = bank.call(Method::GET, &path, "@maria").send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    assert_eq!((status, error["code"].as_str()), (404, Some("PIX-0305")), "another account of the tenant");
    let deleted = bank.call(Method::DELETE, &path, "@maria").send().await.unwrap();
    assert_eq!(deleted.status(), 404, "nor can another account delete it");
    let (status, _) = send(&bank, Method::GET, "/v1/collections/immediate/not-a-uuid", None).await;
    assert_eq!(status, 400);
}

async fn deleted_and_expired_charges_are_removed_with_events(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let (_, deleted) = send(&bank, Method::POST, "/v1/collections/immediate", Some(cob(&key, &txid(20), "5.00"))).await;
    let id = deleted["id"].as_str().unwrap();
    let (status, removed) = send(&bank, Method::DELETE, &format!("/v1/collections/immediate/{id}"), None).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["status"], "REMOVED_BY_RECEIVER");
    assert!(removed["deletedAt"].is_string());
    let (status, error) = send(&bank, Method::DELETE, &format!("/v1/collections/immediate/{id}"), None).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0104")));
    let (status, error) = decode(&bank, deleted["emv"].as_str().unwrap(), None).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0303")), "{error}");
    assert_eq!(bank.events_of(id).await[0]["payload"]["status"], "REMOVED_BY_RECEIVER");

    let mut body = cob(&key, &txid(21), "5.00");
    body["expirationSeconds"] = json!(60);
    let (_, short) = send(&bank, Method::POST, "/v1/collections/immediate", Some(body)).await;
    let (_, long) = send(&bank, Method::POST, "/v1/collections/immediate", Some(cob(&key, &txid(22), "5.00"))).await;
    let due = today(app);
    let mut cobv_body = cobv(&key, &txid(23), due);
    cobv_body["validAfterDue"] = json!(1);
    let (_, due_date) = send(&bank, Method::POST, "/v1/collections/duedate", Some(cobv_body)).await;
    let due_date_path = format!("/v1/collections/duedate/{}", due_date["id"].as_str().unwrap());

    assert_eq!(pix_app::collections::expire_once(&app.state.app, 100).await.unwrap(), 0, "nothing expired yet");
    app.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(pix_app::collections::expire_once(&app.state.app, 100).await.unwrap(), 1);
    let status_of = |kind: &'static str, c: &Value| {
        let path = format!("/v1/collections/{kind}/{}", c["id"].as_str().unwrap());
        let bank = &bank;
        async move { send(bank, Method::GET, &path, None).await.1["status"].as_str().unwrap().to_owned() }
    };
    assert_eq!(status_of("immediate", &short).await, "REMOVED_BY_PSP");
    assert_eq!(status_of("immediate", &long).await, "ACTIVE");
    let events = bank.events_of(short["id"].as_str().unwrap()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["payload"]["status"], "REMOVED_BY_PSP");
    // A paying cash-in for an expired charge is refused.
    let late = pay(&bank, &key, &txid(21), "5.00").await;
    assert_eq!(late["failureCode"], "COLLECTION_INVALID");
    // COBV: payable through the whole last day (due + validAfterDue), removed after it.
    // To one hour into the last payable day (due + 1), whatever the time of day the test runs.
    let advance_to = |at: chrono::DateTime<chrono::Utc>| app.clock.advance(at - app.clock.now());
    let day_start = |days: u64| pix_core::clock::brasilia_day_start(plus(due, days));
    advance_to(day_start(1) + chrono::Duration::hours(1));
    pix_app::collections::expire_once(&app.state.app, 100).await.unwrap();
    assert_eq!(status_of("duedate", &due_date).await, "ACTIVE");
    // Past its due date but still payable: it can be updated, keeping its due date, not moved back.
    let (status, updated) = send(&bank, Method::PATCH, &due_date_path, Some(json!({"description": "late"}))).await;
    assert_eq!((status, updated["details"]["schedule"]["dueDate"].as_str()), (200, Some(due.to_string().as_str())));
    let (status, error) = send(&bank, Method::PATCH, &due_date_path, Some(json!({"dueDate": due}))).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("PIX-0004")), "{error}");
    advance_to(day_start(2) - chrono::Duration::seconds(1));
    pix_app::collections::expire_once(&app.state.app, 100).await.unwrap();
    assert_eq!(status_of("duedate", &due_date).await, "ACTIVE", "payable until the end of its last day");
    advance_to(day_start(2));
    pix_app::collections::expire_once(&app.state.app, 100).await.unwrap();
    assert_eq!(status_of("duedate", &due_date).await, "REMOVED_BY_PSP");
    let (status, error) = send(&bank, Method::PATCH, &due_date_path, Some(json!({"description": "x"}))).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("PIX-0022")));
}

async fn a_txid_is_unique_under_concurrent_creates(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let tx_id = txid(30);
    let due = plus(today(app), 3);
    let requests = (0..8).map(|i| {
        let (path, body) = if i % 2 == 0 {
            ("/v1/collections/immediate", cob(&key, &tx_id, "5.00"))
        } else {
            ("/v1/collections/duedate", cobv(&key, &tx_id, due))
        };
        let bank = &bank;
        async move { send(bank, Method::POST, path, Some(body)).await }
    });
    let results = futures::future::join_all(requests).await;
    let created = results.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 201) {
        assert_eq!((*status, body["code"].as_str()), (409, Some("PIX-0306")), "{body}");
    }
}

/// A seeded generator: reproducible, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }

    /// `min` to `min + spread - 1` characters of `alphabet`.
    fn text(&mut self, alphabet: &str, min: usize, spread: u64) -> String {
        let len = min + self.next(spread) as usize;
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len).map(|_| chars[self.next(chars.len() as u64) as usize]).collect()
    }
}

/// Property: any charge the API accepts has an EMV `BrCode::parse` accepts, whose decode gives
/// back the charge's fields.
async fn any_accepted_charge_produces_a_code_that_decodes_to_its_fields(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = own_key(&bank, ALIAS).await;
    let mut rng = Lcg(0x0005_EED0_0016);
    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const NAME: &str = "abcdefghij ÁÉÍÓÚÂÊÔÃÕÇáéíóúâêôãõç0123456789";
    for n in 0..24 {
        let tx_id = rng.text(ALNUM, 26, 10);
        let centavos = 1 + rng.next(99_999_999) as i64;
        let amount = Money::from_centavos(centavos).to_string();
        let name = rng.text(NAME, 1, 25);
        let city = rng.text(NAME, 1, 15);
        let location =
            json!({"merchantName": name, "merchantCity": city, "categoryCode": format!("{:04}", rng.next(10_000))});
        let (path, mut body) = if n % 2 == 0 {
            let mut body = cob(&key, &tx_id, &amount);
            body["expirationSeconds"] = json!(60 + rng.next(86_400));
            ("immediate", body)
        } else {
            let mut body = cobv(&key, &tx_id, plus(today(app), rng.next(60)));
            body["amount"] = json!({"original": amount});
            ("duedate", body)
        };
        body["locationInformation"] = location;
        let (status, c) = send(&bank, Method::POST, &format!("/v1/collections/{path}"), Some(body.clone())).await;
        if status != 201 {
            // Names that are blank once trimmed are refused, naming the field; nothing else may be.
            assert_eq!(status, 400, "{body}: {c}");
            assert!(c["message"].as_str().unwrap().contains("locationInformation"), "{c}");
            continue;
        }
        let emv = c["emv"].as_str().unwrap();
        let code = BrCode::parse(emv).unwrap_or_else(|e| panic!("{emv}: {e}"));
        assert_eq!(code.encode(), emv, "canonical");
        assert_eq!(code.location_url(), c["location"].as_str());
        assert_eq!(code.merchant_name(), pix_core::brcode::fold_to_ascii(name.trim()));
        assert_eq!(code.merchant_city(), pix_core::brcode::fold_to_ascii(city.trim()));
        let (status, decoded) = decode(&bank, emv, None).await;
        assert_eq!(status, 200, "{decoded}");
        assert_eq!(decoded["txId"], tx_id.as_str());
        assert_eq!(decoded["receiverKey"], key.as_str());
        assert_eq!(decoded["merchantName"], code.merchant_name());
        let due_today = if path == "immediate" {
            amount.clone()
        } else {
            let rules: DueDateRules = serde_json::from_value(c["details"]["schedule"]["rules"].clone()).unwrap();
            let due: NaiveDate = serde_json::from_value(c["details"]["schedule"]["dueDate"].clone()).unwrap();
            rules.value_on(due, 30, today(app)).unwrap().total.to_string()
        };
        assert_eq!(decoded["amount"], due_today.as_str(), "{body}");
    }
}
