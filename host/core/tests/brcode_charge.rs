//! The cob/cobv payloads served at a dynamic code's location (API Pix `CobPayload`,
//! `CobVPayload`), using BCB's examples from PIXAPI 2.9.0.

use chrono::{NaiveDate, TimeZone, Utc};
use pix_core::brcode::{AmountChange, ChargeStatus, DueDateCharge, ImmediateCharge, Party, TaxId};
use pix_core::document::{Document, DocumentError};
use pix_core::money::Money;

/// The payload of BCB's example JWS for `GET /{pixUrlAccessToken}`, base64url-decoded. BCB writes
/// `expiracao` and `revisao` as strings there.
const COB_JWS_PAYLOAD: &str = r#"{"calendario":{"criacao":"2020-09-15T19:39:54.013Z","apresentacao":"2020-04-01T18:00:00Z","expiracao":"3600"},"txid":"fc9a4366ff3d4964b5dbc6c91a8722d3","revisao":"3","status":"ATIVA","valor":{"original":"500.00"},"chave":"7407c9c8-f78b-11ea-adc1-0242ac120002","solicitacaoPagador":"Informar cartao fidelidade","infoAdicionais":[{"nome":"quantidade","valor":"2"}]}"#;

/// BCB's `cobPayload1` example, with integers as integers.
const COB_EXAMPLE: &str = r#"{
  "calendario": {"criacao": "2020-09-15T19:39:54.013Z", "apresentacao": "2020-04-01T18:00:00Z", "expiracao": 3600},
  "txid": "fc9a4366ff3d4964b5dbc6c91a8722d3",
  "revisao": 3,
  "status": "ATIVA",
  "valor": {"original": "500.00", "modalidadeAlteracao": 0},
  "chave": "7407c9c8-f78b-11ea-adc1-0242ac120002",
  "solicitacaoPagador": "Informar cartao fidelidade",
  "infoAdicionais": [{"nome": "quantidade", "valor": "2"}]
}"#;

/// The payload of BCB's example JWS for `GET /cobv/{pixUrlAccessToken}`, base64url-decoded.
const COBV_JWS_PAYLOAD: &str = r#"{"calendario":{"criacao":"2020-09-15T19:39:54.013Z","apresentacao":"2020-04-01T18:00:00Z","dataDeVencimento":"2020-12-31","validadeAposVencimento":30},"devedor":{"logradouro":"Alameda Santos, Numero 10, Bairro Braz","cidade":"Diadema","uf":"SP","cep":"70800100","cnpj":"56989000019533","nome":"Empresa de Alimentos SA"},"recebedor":{"logradouro":"Rua 20 Numero 70, Bairro Luz","cidade":"Belo Horizonte","uf":"MG","cep":"55120750","cnpj":"58900633120711","nome":"Empresa de Abastecimento SA"},"txid":"fc9a4366ff3d4964b5dbc6c91a8722d3","revisao":"3","status":"ATIVA","valor":{"original":"123.45","multa":"15.00","juros":"2.00","final":"140,45"},"chave":"7407c9c8-f78b-11ea-adc1-0242ac120002","solicitacaoPagador":"Informar cartao fidelidade","infoAdicionais":[{"nome":"quantidade","valor":"2"}]}"#;

#[test]
fn bcb_immediate_charge_examples_parse() {
    for json in [COB_JWS_PAYLOAD, COB_EXAMPLE] {
        let charge: ImmediateCharge = serde_json::from_str(json).unwrap();
        assert_eq!(charge.txid, "fc9a4366ff3d4964b5dbc6c91a8722d3");
        assert_eq!(charge.revision, 3);
        assert_eq!(charge.status, ChargeStatus::Active);
        assert_eq!(charge.value.original, Money::from_centavos(50000));
        assert_eq!(charge.value.change, AmountChange::Fixed);
        assert_eq!(charge.value.withdrawal, None);
        assert_eq!(charge.key, "7407c9c8-f78b-11ea-adc1-0242ac120002");
        assert_eq!(charge.payer_request.as_deref(), Some("Informar cartao fidelidade"));
        assert_eq!(charge.additional_info.len(), 1);
        assert_eq!(charge.additional_info[0].name, "quantidade");
        assert_eq!(charge.debtor, None);
        assert_eq!(charge.calendar.expires_in_seconds, 3600);
        assert_eq!(charge.calendar.presented_at, Utc.with_ymd_and_hms(2020, 4, 1, 18, 0, 0).unwrap());
        assert_eq!(charge.expires_at().unwrap(), charge.calendar.created_at + chrono::TimeDelta::hours(1));
    }
}

#[test]
fn an_immediate_charge_serialises_back_to_the_api_pix_names() {
    let charge: ImmediateCharge = serde_json::from_str(COB_EXAMPLE).unwrap();
    let json = serde_json::to_value(&charge).unwrap();
    assert_eq!(json["valor"]["original"], "500.00");
    assert_eq!(json["valor"]["modalidadeAlteracao"], 0);
    assert_eq!(json["calendario"]["expiracao"], 3600);
    assert_eq!(json["status"], "ATIVA");
    assert!(json.get("devedor").is_none());
    let back: ImmediateCharge = serde_json::from_value(json).unwrap();
    assert_eq!(back, charge);
}

#[test]
fn immediate_charge_details() {
    let json = r#"{
      "calendario": {"criacao": "2020-09-09T20:15:00.358-03:00", "apresentacao": "2020-09-09T23:15:00Z"},
      "txid": "7978c0c97ea847e78e8849634473c1f1", "revisao": 0, "status": "CONCLUIDA",
      "devedor": {"cpf": "12345678909", "nome": "Francisco da Silva"},
      "valor": {"original": "0.00", "modalidadeAlteracao": 1,
                "retirada": {"saque": {"valor": "5.00", "modalidadeAgente": "AGPSS"}}},
      "chave": "+5511987654321", "loc": {"id": 789}
    }"#;
    let charge: ImmediateCharge = serde_json::from_str(json).unwrap();
    assert_eq!(
        charge.calendar.created_at,
        Utc.with_ymd_and_hms(2020, 9, 9, 23, 15, 0).unwrap() + chrono::TimeDelta::milliseconds(358),
        "offsets are converted to UTC"
    );
    assert_eq!(charge.calendar.expires_in_seconds, 86_400, "API Pix default");
    assert_eq!(charge.status, ChargeStatus::Concluded);
    assert_eq!(charge.value.change, AmountChange::PayerMayChange);
    assert_eq!(charge.value.withdrawal.as_ref().unwrap()["saque"]["valor"], "5.00");
    let debtor = charge.debtor.as_ref().unwrap();
    assert_eq!(debtor.tax_id, TaxId::Cpf("12345678909".to_owned()));
    assert!(matches!(debtor.document(), Ok(Document::Cpf(_))));
    let debug = format!("{debtor:?}");
    assert!(!debug.contains("12345678909") && !debug.contains("Silva"), "{debug}");
}

#[test]
fn every_status_uses_the_enum_spelling() {
    for (wire, status) in [
        ("ATIVA", ChargeStatus::Active),
        ("CONCLUIDA", ChargeStatus::Concluded),
        ("REMOVIDA_PELO_USUARIO_RECEBEDOR", ChargeStatus::RemovedByReceiver),
        ("REMOVIDA_PELO_PSP", ChargeStatus::RemovedByPsp),
    ] {
        let json = format!("\"{wire}\"");
        assert_eq!(serde_json::from_str::<ChargeStatus>(&json).unwrap(), status);
        assert_eq!(serde_json::to_string(&status).unwrap(), json);
    }
    assert!(serde_json::from_str::<ChargeStatus>("\"REMOVIDO_PELO_PSP\"").is_err());
}

#[test]
fn malformed_immediate_charges_are_refused() {
    let with = |from: &str, to: &str| {
        let json = COB_EXAMPLE.replace(from, to);
        assert_ne!(json, COB_EXAMPLE, "{from}");
        serde_json::from_str::<ImmediateCharge>(&json).unwrap_err().to_string()
    };
    assert!(with("\"500.00\"", "500.00").contains("invalid type"));
    assert!(with("\"500.00\"", "\"500.001\"").contains("two decimal places"));
    assert!(with("\"modalidadeAlteracao\": 0", "\"modalidadeAlteracao\": 2").contains("0 or 1"));
    assert!(with("\"revisao\": 3", "\"revisao\": -1").contains("non-negative integer"));
    assert!(with("\"revisao\": 3", "\"revisao\": \"3a\"").contains("non-negative integer"));
    assert!(with("\"ATIVA\"", "\"ACTIVE\"").contains("unknown variant"));
    assert!(with("\"chave\"", "\"key\"").contains("missing field `chave`"));
    let both = with(
        "\"revisao\": 3,",
        "\"revisao\": 3, \"devedor\": {\"cpf\": \"12345678909\", \"cnpj\": \"11222333000181\", \"nome\": \"X\"},",
    );
    assert!(both.contains("never both"), "{both}");
    let neither = with("\"revisao\": 3,", "\"revisao\": 3, \"devedor\": {\"nome\": \"X\"},");
    assert!(neither.contains("a cpf or a cnpj"), "{neither}");
    let bad_cpf =
        with("\"revisao\": 3,", "\"revisao\": 3, \"devedor\": {\"cpf\": \"123.456.789-09\", \"nome\": \"X\"},");
    assert!(bad_cpf.contains("11 digits"), "{bad_cpf}");
}

#[test]
fn bcb_due_date_example_parses_once_its_comma_is_fixed() {
    // BCB's example writes "final":"140,45", which its own pattern \d{1,10}\.\d{2} forbids; we do
    // not guess at decimal commas.
    let err = serde_json::from_str::<DueDateCharge>(COBV_JWS_PAYLOAD).unwrap_err();
    assert!(err.to_string().contains("140,45"), "{err}");

    let fixed = COBV_JWS_PAYLOAD.replace("140,45", "140.45");
    let charge: DueDateCharge = serde_json::from_str(&fixed).unwrap();
    assert_eq!(charge.revision, 3);
    assert_eq!(charge.calendar.due_date, NaiveDate::from_ymd_opt(2020, 12, 31).unwrap());
    assert_eq!(charge.calendar.days_valid_after_due, 30);
    assert_eq!(charge.value.original, Some(Money::from_centavos(12345)));
    assert_eq!(charge.value.fine, Some(Money::from_centavos(1500)));
    assert_eq!(charge.value.interest, Some(Money::from_centavos(200)));
    assert_eq!(charge.value.discount, None);
    assert_eq!(charge.value.abatement, None);
    assert_eq!(charge.value.total, Money::from_centavos(14045));
    assert!(charge.value.components_add_up(), "123.45 + 15.00 + 2.00 = 140.45");
    assert_eq!(charge.last_payable_date(), NaiveDate::from_ymd_opt(2021, 1, 30));
    assert_eq!(charge.debtor.name, "Empresa de Alimentos SA");
    assert_eq!(charge.receiver.tax_id, TaxId::Cnpj("58900633120711".to_owned()));
    // BCB's example CNPJs have the right shape but wrong check digits.
    assert_eq!(charge.receiver.document(), Err(DocumentError::CheckDigits { kind: "CNPJ" }));
    assert_eq!(charge.status, ChargeStatus::Active);

    let json = serde_json::to_value(&charge).unwrap();
    assert_eq!(json["valor"]["final"], "140.45");
    assert_eq!(json["recebedor"]["cnpj"], "58900633120711");
    assert_eq!(json["calendario"]["dataDeVencimento"], "2020-12-31");
    assert_eq!(serde_json::from_value::<DueDateCharge>(json).unwrap(), charge);
}

#[test]
fn a_due_date_charge_requires_its_parties_and_final_amount() {
    let fixed = COBV_JWS_PAYLOAD.replace("140,45", "140.45");
    for (field, json) in [
        ("devedor", fixed.replacen("\"devedor\"", "\"x\"", 1)),
        ("recebedor", fixed.replacen("\"recebedor\"", "\"x\"", 1)),
        ("final", fixed.replacen("\"final\"", "\"x\"", 1)),
        ("validadeAposVencimento", fixed.replacen("\"validadeAposVencimento\"", "\"x\"", 1)),
    ] {
        let err = serde_json::from_str::<DueDateCharge>(&json).unwrap_err();
        assert!(err.to_string().contains(&format!("missing field `{field}`")), "{field}: {err}");
    }
    let party: Party = serde_json::from_str(r#"{"cnpj": "12ABC34501DE35", "nome": "Loja"}"#).unwrap();
    assert!(matches!(party.document(), Ok(Document::Cnpj(_))));
}
