//! The demo tenant: one institution with a Midaz organization and ledger, customer accounts with
//! balances and CRM holders, a fee account, and another participant with keys in BTG's DICT.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::SandboxHandle;

/// A Midaz account of the demo tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoAccount {
    /// Display name.
    pub name: String,
    /// Midaz account id (`X-Account-Id`).
    pub account_id: String,
    /// Midaz alias.
    pub alias: String,
    /// CRM holder id (none for internal accounts).
    pub holder_id: Option<String>,
    /// CRM alias id.
    pub crm_alias_id: Option<String>,
    /// CPF/CNPJ.
    pub document: Option<String>,
    /// `NATURAL_PERSON` / `LEGAL_PERSON`.
    pub person_type: Option<String>,
    /// Branch.
    pub branch: Option<String>,
    /// Account number.
    pub number: Option<String>,
    /// DICT account type.
    pub account_type: Option<String>,
    /// Opening balance (decimal string).
    pub balance: String,
}

/// A key another participant owns in the simulated DICT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoKey {
    /// The key.
    pub key: String,
    /// Key type.
    pub key_type: String,
    /// Owner name.
    pub owner_name: String,
    /// Owner CPF/CNPJ.
    pub tax_id: String,
}

/// The other participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoParticipant {
    /// ISPB.
    pub ispb: String,
    /// Name.
    pub name: String,
    /// Its keys.
    pub keys: Vec<DemoKey>,
}

/// Everything the server needs to point a demo tenant at the sandbox (no secrets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoData {
    /// Our ISPB.
    pub ispb: String,
    /// Institution name.
    pub institution_name: String,
    /// Midaz organization id (also the CRM `X-Organization-Id`).
    pub organization_id: String,
    /// Midaz ledger id.
    pub ledger_id: String,
    /// Asset code.
    pub asset_code: String,
    /// Customer accounts.
    pub accounts: Vec<DemoAccount>,
    /// Fee revenue account.
    pub fee_account: DemoAccount,
    /// Another participant reachable through BTG.
    pub other_participant: DemoParticipant,
    /// Midaz URL.
    pub midaz_url: String,
    /// CRM URL.
    pub crm_url: String,
    /// BTG URL.
    pub btg_url: String,
    /// Control API URL.
    pub control_url: String,
}

struct Customer<'a> {
    name: &'a str,
    alias: &'a str,
    document: &'a str,
    person: &'a str,
    trade_name: Option<&'a str>,
    number: &'a str,
    balance: &'a str,
}

const CUSTOMERS: &[Customer<'static>] = &[
    Customer {
        name: "Maria Silva",
        alias: "@maria",
        document: "11144477735",
        person: "NATURAL_PERSON",
        trade_name: None,
        number: "100001",
        balance: "5000.00",
    },
    Customer {
        name: "Joao Souza",
        alias: "@joao",
        document: "12345678909",
        person: "NATURAL_PERSON",
        trade_name: None,
        number: "100002",
        balance: "1500.00",
    },
    Customer {
        name: "ACME Comercio Ltda",
        alias: "@acme",
        document: "11222333000181",
        person: "LEGAL_PERSON",
        trade_name: Some("ACME"),
        number: "100003",
        balance: "100000.00",
    },
];

const OTHER_ISPB: &str = "87654321";

fn fail(e: crate::sim::ApiError) -> anyhow::Error {
    anyhow::anyhow!("seed failed: {} {}", e.0, e.1)
}

/// Seeds the demo tenant into a running sandbox.
pub fn seed_demo(handle: &SandboxHandle) -> anyhow::Result<DemoData> {
    let s = &handle.shared;
    let ispb = s.config.ispb.clone();
    let org = s.create_organization("Banco Sandbox S.A.", "12345678000195");
    let ledger = s.create_ledger(org, "pix").map_err(fail)?;
    s.create_asset(org, ledger, "BRL", "Brazilian Real").map_err(fail)?;
    let (org_s, ledger_s) = (org.to_string(), ledger.to_string());

    let fee = s
        .create_account(
            org,
            ledger,
            &json!({"assetCode": "BRL", "type": "deposit", "name": "Fee revenue", "alias": "@fees_revenue"}),
        )
        .map_err(fail)?;
    let fee_account = DemoAccount {
        name: "Fee revenue".into(),
        account_id: fee["id"].as_str().unwrap_or_default().into(),
        alias: "@fees_revenue".into(),
        holder_id: None,
        crm_alias_id: None,
        document: None,
        person_type: None,
        branch: None,
        number: None,
        account_type: None,
        balance: "0.00".into(),
    };

    let accounts =
        CUSTOMERS.iter().map(|c| open_customer(handle, org, ledger, &ispb, c)).collect::<anyhow::Result<Vec<_>>>()?;

    let owner = |kind: &str, tax: &str, name: &str| json!({"type": kind, "taxIdNumber": tax, "name": name});
    let account = |number: &str| json!({"participant": OTHER_ISPB, "branch": "0042", "number": number, "type": "CACC", "openingDate": "2023-05-10T03:00:00Z"});
    let other_keys: [(&str, Option<&str>, Value, Value); 4] = [
        ("CPF", Some("52998224725"), account("7001"), owner("NATURAL_PERSON", "52998224725", "Ana Pereira")),
        (
            "EMAIL",
            Some("ana.pereira@example.com"),
            account("7001"),
            owner("NATURAL_PERSON", "52998224725", "Ana Pereira"),
        ),
        ("PHONE", Some("+5511987654321"), account("7002"), owner("NATURAL_PERSON", "39053344705", "Carlos Lima")),
        ("EVP", None, account("7003"), owner("LEGAL_PERSON", "11444777000161", "Loja Exemplo Ltda")),
    ];
    let mut keys = Vec::new();
    for (key_type, key, account, owner) in other_keys {
        let entry = s.dict_register(key_type, key, account, owner.clone()).map_err(fail)?;
        keys.push(DemoKey {
            key: entry["key"].as_str().unwrap_or_default().into(),
            key_type: key_type.into(),
            owner_name: owner["name"].as_str().unwrap_or_default().into(),
            tax_id: owner["taxIdNumber"].as_str().unwrap_or_default().into(),
        });
    }

    Ok(DemoData {
        ispb,
        institution_name: "Banco Sandbox S.A.".into(),
        organization_id: org_s,
        ledger_id: ledger_s,
        asset_code: "BRL".into(),
        accounts,
        fee_account,
        other_participant: DemoParticipant { ispb: OTHER_ISPB.into(), name: "Banco Exemplo S.A.".into(), keys },
        midaz_url: handle.midaz_url.clone(),
        crm_url: handle.crm_url.clone(),
        btg_url: handle.btg_url.clone(),
        control_url: handle.control_url.clone(),
    })
}

/// Opens a customer's account with its CRM holder and alias (banking details at `ispb`) and an
/// opening balance.
fn open_customer(
    handle: &SandboxHandle,
    org: Uuid,
    ledger: Uuid,
    ispb: &str,
    c: &Customer,
) -> anyhow::Result<DemoAccount> {
    let s = &handle.shared;
    let (org_s, ledger_s) = (org.to_string(), ledger.to_string());
    let mut holder = json!({"type": c.person, "name": c.name, "document": c.document, "externalId": c.alias.trim_start_matches('@')});
    if let Some(t) = c.trade_name {
        holder["legalPerson"] = json!({"tradeName": t});
    }
    let holder = s.crm_create_holder(&holder).map_err(fail)?;
    let holder_id = holder["id"].as_str().unwrap_or_default().to_owned();
    let account = s
        .create_account(
            org,
            ledger,
            &json!({"assetCode": "BRL", "type": "deposit", "name": c.name, "alias": c.alias, "entityId": holder_id}),
        )
        .map_err(fail)?;
    let account_id = account["id"].as_str().unwrap_or_default().to_owned();
    let alias = s
        .crm_create_alias(
            Uuid::parse_str(&holder_id)?,
            &json!({"ledgerId": ledger_s, "accountId": account_id,
                    "bankingDetails": {"branch": "0001", "account": c.number, "type": "CACC", "openingDate": "2024-01-02", "countryCode": "BR", "bankId": ispb},
                    "regulatoryFields": {"participantDocument": ispb}}),
        )
        .map_err(fail)?;
    s.post_transaction(
        &org_s,
        &ledger_s,
        "inflow",
        &json!({"description": "Demo opening balance", "send": {"asset": "BRL", "value": c.balance,
                "distribute": {"to": [{"accountAlias": c.alias, "amount": {"asset": "BRL", "value": c.balance}}]}}}),
        Some((&format!("seed-{org}-{}", c.alias), 300)),
    )
    .map_err(fail)?;
    Ok(DemoAccount {
        name: c.name.into(),
        account_id,
        alias: c.alias.into(),
        holder_id: Some(holder_id),
        crm_alias_id: alias["id"].as_str().map(str::to_owned),
        document: Some(c.document.into()),
        person_type: Some(c.person.into()),
        branch: Some("0001".into()),
        number: Some(c.number.into()),
        account_type: Some("CACC".into()),
        balance: c.balance.into(),
    })
}

/// A valid CPF from 9 base digits (mod-11 check digits), so each institution's customer has its
/// own document (the simulated CRM keeps one holder per document).
fn cpf_with_check_digits(base: &str) -> String {
    let mut digits: Vec<u32> = base.chars().filter_map(|c| c.to_digit(10)).collect();
    for len in [9usize, 10] {
        let sum: u32 = digits.iter().enumerate().map(|(i, d)| d * (len as u32 + 1 - i as u32)).sum();
        digits.push(match sum % 11 {
            r if r < 2 => 0,
            r => 11 - r,
        });
    }
    digits.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect()
}

/// Another institution served by the same host: its own BTG client credentials and ISPB, Midaz
/// organization and ledger, and one funded customer account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantData {
    /// ISPB.
    pub ispb: String,
    /// Midaz organization id (also the CRM `X-Organization-Id`).
    pub organization_id: String,
    /// Midaz ledger id.
    pub ledger_id: String,
    /// The customer account.
    pub account: DemoAccount,
}

/// Seeds another institution: BTG accepts `client_id`/`client_secret` for it and sends its events
/// to its own webhook target (see `SandboxHandle::set_participant_webhook`).
pub fn seed_participant(
    handle: &SandboxHandle,
    ispb: &str,
    client_id: &str,
    client_secret: &str,
) -> anyhow::Result<ParticipantData> {
    handle.shared.btg_add_participant(ispb, client_id, client_secret);
    let (org, ledger) = handle.new_ledger(&format!("Instituicao {ispb}"))?;
    let (org, ledger) = (Uuid::parse_str(&org)?, Uuid::parse_str(&ledger)?);
    let document = cpf_with_check_digits(&format!("9{ispb}"));
    let customer = Customer {
        name: "Carlos Lima",
        alias: "@carlos",
        document: &document,
        person: "NATURAL_PERSON",
        trade_name: None,
        number: "200001",
        balance: "800.00",
    };
    let account = open_customer(handle, org, ledger, ispb, &customer)?;
    Ok(ParticipantData {
        ispb: ispb.to_owned(),
        organization_id: org.to_string(),
        ledger_id: ledger.to_string(),
        account,
    })
}

#[cfg(test)]
mod tests {
    /// CPF check digits (pix-standards.md §3.3).
    fn cpf_ok(d: &str) -> bool {
        let n: Vec<u32> = d.chars().filter_map(|c| c.to_digit(10)).collect();
        let dv = |len: usize| {
            let s: u32 = (0..len).map(|i| n[i] * (len as u32 + 1 - i as u32)).sum();
            (s * 10 % 11) % 10
        };
        n.len() == 11 && dv(9) == n[9] && dv(10) == n[10]
    }

    #[test]
    fn participant_customers_get_valid_distinct_cpfs() {
        assert_eq!(super::cpf_with_check_digits("111444777"), "11144477735");
        let (a, b) = (super::cpf_with_check_digits("912345678"), super::cpf_with_check_digits("987654321"));
        assert!(cpf_ok(&a) && cpf_ok(&b), "{a} {b}");
        assert_ne!(a, b);
    }

    /// CNPJ check digits.
    fn cnpj_ok(d: &str) -> bool {
        let n: Vec<u32> = d.chars().filter_map(|c| c.to_digit(10)).collect();
        let w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        let w2 = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        let dv = |w: &[u32]| {
            let r = w.iter().zip(&n).map(|(a, b)| a * b).sum::<u32>() % 11;
            if r < 2 { 0 } else { 11 - r }
        };
        n.len() == 14 && dv(&w1) == n[12] && dv(&w2) == n[13]
    }

    #[test]
    fn demo_documents_are_valid() {
        for cpf in ["11144477735", "12345678909", "52998224725", "39053344705"] {
            assert!(cpf_ok(cpf), "{cpf}");
        }
        assert!(!cpf_ok("11144477736"));
        for cnpj in ["11222333000181", "11444777000161"] {
            assert!(cnpj_ok(cnpj), "{cnpj}");
        }
        assert!(!cnpj_ok("11222333000180"));
    }
}
