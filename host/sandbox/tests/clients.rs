//! The production clients against the simulators: ledger flows, holder lookup, DICT, claims,
//! SPI payments and reversals, with webhooks verified by the integrations crate.

mod common;

use std::time::Duration;

use common::*;
use pix_integrations::btg::*;
use pix_integrations::crm::HolderDirectory;
use pix_integrations::domain::PersonType;
use pix_integrations::midaz::{Leg, TransactionRequest, TransactionStatus};
use pix_integrations::{IdempotencyKey, IntegrationError, Ledger, Money};
use serde_json::json;

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

#[tokio::test]
async fn midaz_hold_commit_cancel_revert_and_idempotency() {
    let (h, demo) = start(|_| {}).await;
    let ledger = midaz(&h, &demo, http(2_000));
    let maria = &demo.accounts[0];

    let account = ledger.account(&maria.account_id).await.unwrap();
    assert_eq!(account.alias.as_deref(), Some("@maria"));
    assert_eq!(ledger.account_by_alias("@maria").await.unwrap().id, maria.account_id);
    let bal = &ledger.balances(&maria.account_id).await.unwrap()[0];
    assert_eq!((bal.available, bal.on_hold), (m("5000"), m("0")));

    // Cash-out hold with a fee on top (Example B), then commit.
    let hold = TransactionRequest::transfer(
        "BRL",
        vec![Leg::amount("@maria", "BRL", m("100.50"))],
        vec![Leg::amount("@external/BRL", "BRL", m("100.00")), Leg::amount("@fees_revenue", "BRL", m("0.50"))],
    )
    .pending()
    .code("init-1")
    .meta("flow", "CASHOUT");
    let key = IdempotencyKey::new("pix-out-init-1").with_ttl(Duration::from_secs(600));
    let tx = ledger.create_transaction(&hold, &key).await.unwrap();
    assert_eq!(tx.status(), TransactionStatus::Pending);
    assert!(!tx.replayed);
    let bal = &ledger.balances(&maria.account_id).await.unwrap()[0];
    assert_eq!((bal.available, bal.on_hold), (m("4899.50"), m("100.50")));

    // Same key again: Midaz replays instead of holding twice.
    let again = ledger.create_transaction(&hold, &key).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.id, tx.id);
    assert_eq!(ledger.balances(&maria.account_id).await.unwrap()[0].on_hold, m("100.50"));

    let committed = ledger.commit(&tx.id).await.unwrap();
    assert_eq!(committed.status(), TransactionStatus::Approved);
    // A repeated commit gets 0099 upstream and is reconciled by reading the transaction back.
    assert_eq!(ledger.commit(&tx.id).await.unwrap().status(), TransactionStatus::Approved);
    // Cancelling an approved transaction is a real error.
    let err = ledger.cancel(&tx.id).await.unwrap_err();
    assert_eq!(err.code(), Some("0099"), "{err}");
    let fee = &ledger.balances(&demo.fee_account.account_id).await.unwrap()[0];
    assert_eq!(fee.available, m("0.50"));

    // A hold that BTG rejects is cancelled and the money comes back.
    let hold2 = TransactionRequest::outflow("BRL", vec![Leg::amount("@maria", "BRL", m("10"))]).pending();
    let tx2 = ledger.outflow(&hold2, &IdempotencyKey::new("pix-out-init-2")).await.unwrap();
    assert_eq!(ledger.cancel(&tx2.id).await.unwrap().status(), TransactionStatus::Canceled);
    assert_eq!(ledger.cancel(&tx2.id).await.unwrap().status(), TransactionStatus::Canceled);
    assert_eq!(ledger.balances(&maria.account_id).await.unwrap()[0].available, m("4899.50"));

    // Full refund of a settled cash-out: revert.
    let revert = ledger.revert(&tx.id, &IdempotencyKey::new("revert-init-1")).await.unwrap();
    assert_eq!(revert.parent_transaction_id.as_deref(), Some(tx.id.as_str()));
    assert_eq!(ledger.balances(&maria.account_id).await.unwrap()[0].available, m("5000"));

    // Cash-in with a fee (Example A) through the json endpoint, and an inflow.
    let cashin = TransactionRequest::transfer(
        "BRL",
        vec![Leg::amount("@external/BRL", "BRL", m("100"))],
        vec![Leg::amount("@joao", "BRL", m("99")), Leg::amount("@fees_revenue", "BRL", m("1"))],
    );
    let tx3 = ledger.create_transaction(&cashin, &IdempotencyKey::new("pix-in-E1")).await.unwrap();
    // Midaz answers CREATED on create and APPROVED on read.
    assert_eq!(tx3.status(), TransactionStatus::Created);
    assert_eq!(ledger.transaction(&tx3.id).await.unwrap().status(), TransactionStatus::Approved);
    let inflow = TransactionRequest::inflow("BRL", vec![Leg::amount("@joao", "BRL", m("0.99"))]);
    ledger.inflow(&inflow, &IdempotencyKey::new("pix-in-E2")).await.unwrap();
    assert_eq!(ledger.balances(&demo.accounts[1].account_id).await.unwrap()[0].available, m("1599.99"));

    // Business errors are typed.
    let too_much = TransactionRequest::outflow("BRL", vec![Leg::amount("@joao", "BRL", m("99999"))]);
    match ledger.outflow(&too_much, &IdempotencyKey::new("k-nsf")).await.unwrap_err() {
        IntegrationError::Rejected { status: 422, code, .. } => assert_eq!(code, "0018"),
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        ledger.account("00000000-0000-0000-0000-000000000000").await.unwrap_err(),
        IntegrationError::NotFound { .. }
    ));

    // Conservation over the whole ledger.
    let state = h.midaz_state();
    assert_eq!(state["ledgers"][0]["totalCentavos"], 0);
}

#[tokio::test]
async fn midaz_in_flight_key_is_retried_until_replayed() {
    let (h, demo) = start(|c| c.midaz_idempotency_store_delay_ms = 150).await;
    let mut cfg = http(2_000);
    cfg.retry = pix_integrations::RetryConfig { max_attempts: 6, base_delay_ms: 50, max_delay_ms: 100, jitter: 0.0 };
    let ledger = midaz(&h, &demo, cfg);
    let req = TransactionRequest::outflow("BRL", vec![Leg::amount("@acme", "BRL", m("1"))]);
    let key = IdempotencyKey::new("in-flight");
    let first = ledger.outflow(&req, &key).await.unwrap();
    // Within the store window Midaz says 409 0084; the client waits and gets the replay.
    let second = ledger.outflow(&req, &key).await.unwrap();
    assert!(second.replayed);
    assert_eq!(first.id, second.id);
    assert_eq!(ledger.balances(&demo.accounts[2].account_id).await.unwrap()[0].available, m("99999"));
}

#[tokio::test]
async fn lerian_token_is_cached_and_refreshed_after_revocation() {
    let (h, demo) = start(|_| {}).await;
    let ledger = midaz(&h, &demo, http(2_000));
    ledger.account(&demo.accounts[0].account_id).await.unwrap();
    // Revoked upstream: the next call gets 401, refreshes the token once and succeeds.
    reqwest::Client::new().post(format!("{}/_control/tokens/revoke", h.control_url)).send().await.unwrap();
    ledger.account(&demo.accounts[0].account_id).await.unwrap();

    // Wrong credentials surface as Unauthorized.
    let bad = pix_integrations::MidazClient::new(&pix_integrations::MidazConfig {
        onboarding_url: h.midaz_url.clone(),
        transaction_url: None,
        organization_id: demo.organization_id.clone(),
        ledger_id: demo.ledger_id.clone(),
        asset_code: "BRL".into(),
        auth: Some(pix_integrations::LerianAuthConfig {
            url: h.midaz_url.clone(),
            client_id: LERIAN_ID.into(),
            client_secret: pix_integrations::Secret::new("wrong"),
        }),
        http: http(2_000),
    })
    .unwrap();
    assert!(matches!(
        bad.account(&demo.accounts[0].account_id).await.unwrap_err(),
        IntegrationError::Unauthorized { .. }
    ));
}

#[tokio::test]
async fn crm_resolves_holders_and_caches_them() {
    let (h, demo) = start(|_| {}).await;
    let crm = crm(&h, &demo, http(1_000));
    let acme = &demo.accounts[2];
    let holder = crm.account_holder(&acme.account_id).await.unwrap();
    assert_eq!(holder.person_type, PersonType::Legal);
    assert_eq!(holder.document, "11222333000181");
    assert_eq!(holder.trade_name.as_deref(), Some("ACME"));
    assert_eq!(
        (holder.branch.as_str(), holder.account_number.as_str(), holder.account_type.as_str()),
        ("0001", "100003", "CACC")
    );
    assert!(!format!("{holder:?}").contains("11222333000181"), "Debug must mask the document");

    // Served from cache while CRM is down.
    h.add_fault(pix_sandbox::FaultRule {
        id: String::new(),
        upstream: pix_sandbox::FaultTarget::Crm,
        path_prefix: "/v1".into(),
        method: None,
        kind: pix_sandbox::FaultKind::Status { status: 503 },
        count: None,
        probability: None,
    });
    assert_eq!(crm.account_holder(&acme.account_id).await.unwrap(), holder);
    crm.invalidate(&acme.account_id);
    assert!(matches!(
        crm.account_holder(&acme.account_id).await.unwrap_err(),
        IntegrationError::Unavailable { status: Some(503), .. }
    ));
    h.clear_faults();

    let maria = crm.account_holder(&demo.accounts[0].account_id).await.unwrap();
    assert_eq!((maria.person_type, maria.name.as_str()), (PersonType::Natural, "Maria Silva"));
    match crm.account_holder(&demo.fee_account.account_id).await.unwrap_err() {
        IntegrationError::NotFound { code, .. } => assert_eq!(code, "CRM-0008"),
        other => panic!("unexpected {other}"),
    }
}

fn our_account(number: &str) -> DictAccount {
    DictAccount {
        participant: "12345678".into(),
        branch: "0001".into(),
        number: number.into(),
        account_type: AccountType::Cacc,
        opening_date: None,
    }
}

fn maria() -> DictOwner {
    DictOwner {
        person_type: pix_integrations::domain::PersonType::Natural,
        tax_id: "11144477735".into(),
        name: "Maria Silva".into(),
        trade_name: None,
    }
}

#[tokio::test]
async fn btg_dict_entries_lookup_and_check() {
    let (h, demo) = start(|_| {}).await;
    let btg = btg(&h, http(2_000));
    let entry = btg
        .create_entry(&NewEntry {
            key: Some("11144477735".into()),
            key_type: KeyType::Cpf,
            account: our_account("100001"),
            owner: maria(),
            reason: Reason::UserRequested,
            request_id: uuid::Uuid::new_v4(),
        })
        .await
        .unwrap();
    assert_eq!(entry.key, "11144477735");
    assert_eq!(btg.entry("11144477735").await.unwrap().owner.name, "Maria Silva");
    let evp = btg
        .create_entry(&NewEntry {
            key: None,
            key_type: KeyType::Evp,
            account: our_account("100001"),
            owner: maria(),
            reason: Reason::UserRequested,
            request_id: uuid::Uuid::new_v4(),
        })
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(&evp.key).is_ok());

    // Another participant's key: a conflict, and readable only through lookup.
    let ana_email = "ana.pereira@example.com";
    let dup = btg
        .create_entry(&NewEntry {
            key: Some(ana_email.into()),
            key_type: KeyType::Email,
            account: our_account("100001"),
            owner: maria(),
            reason: Reason::UserRequested,
            request_id: uuid::Uuid::new_v4(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(dup, IntegrationError::Conflict { ref code, .. } if code == "ENTRY_KEY_OWNED_BY_DIFFERENT_PARTICIPANT"),
        "{dup}"
    );
    let lookup = btg.lookup_key(ana_email, None).await.unwrap();
    assert_eq!(lookup.entry.account.participant, demo.other_participant.ispb);
    assert_eq!(lookup.end_to_end_id.len(), 32);
    let ours = "E12345678202501011200abcdefghijk";
    assert_eq!(btg.lookup_key(ana_email, Some(ours)).await.unwrap().end_to_end_id, ours);
    assert!(matches!(btg.entry(ana_email).await.unwrap_err(), IntegrationError::NotFound { .. }));

    let checks = btg.check_keys(&[ana_email.to_owned(), "nobody@example.com".to_owned()]).await.unwrap();
    assert_eq!(checks.iter().map(|c| c.has_entry).collect::<Vec<_>>(), vec![true, false]);

    let updated = btg
        .update_entry(
            "11144477735",
            &EntryUpdate {
                account: our_account("200001"),
                name: "Maria S. Silva".into(),
                trade_name: None,
                reason: Reason::BranchTransfer,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.account.number, "200001");
    btg.delete_entry("11144477735", Reason::UserRequested).await.unwrap();
    assert!(matches!(btg.entry("11144477735").await.unwrap_err(), IntegrationError::NotFound { .. }));

    // CID file of our EVP entries becomes available and carries one CID per entry.
    let file = btg.request_cid_file(KeyType::Evp).await.unwrap();
    h.advance_clock(Duration::from_secs(3));
    let file = btg.cid_file(&file.id).await.unwrap();
    assert_eq!(file.status, CidFileStatus::Available);
    assert_eq!(file.cids.len(), 1);
    assert_eq!(file.cids[0].len(), 64);
}

#[tokio::test]
async fn btg_payment_webhooks_reversal_and_report() {
    let secret = "sandbox-webhook-secret";
    let rx = receiver(secret, 0).await;
    let (h, demo) = start(|_| {}).await;
    h.set_webhook_url(Some(rx.url.clone()));
    let btg = btg(&h, http(2_000));
    let key = &demo.other_participant.keys[0];
    let lookup = btg.lookup_key(&key.key, None).await.unwrap();
    let order = |e2e: &str, amount: &str| PaymentOrder {
        end_to_end_id: e2e.into(),
        amount: m(amount),
        initiation_type: InitiationType::Dict,
        transaction_type: TransactionType::Transfer,
        debtor: Debtor {
            branch: "0001".into(),
            account: "100001".into(),
            account_type: AccountType::Cacc,
            tax_id: "11144477735".into(),
            name: "Maria Silva".into(),
        },
        creditor: Creditor {
            ispb: lookup.entry.account.participant.clone(),
            branch: lookup.entry.account.branch.clone(),
            account: lookup.entry.account.number.clone(),
            account_type: lookup.entry.account.account_type,
            tax_id: lookup.entry.owner.tax_id.clone(),
            name: lookup.entry.owner.name.clone(),
            key: Some(key.key.clone()),
        },
        remittance_information: Some("almoço".into()),
        txid: None,
    };
    let accepted = btg.initiate_payment(&order(&lookup.end_to_end_id, "25.00"), "pix-out-1").await.unwrap();
    assert_eq!(accepted.status, PaymentStatus::Processing);
    // A retry with the same idempotency key replays the acceptance.
    assert_eq!(btg.initiate_payment(&order(&lookup.end_to_end_id, "25.00"), "pix-out-1").await.unwrap(), accepted);

    let rejected_e2e = btg.lookup_key(&key.key, None).await.unwrap().end_to_end_id;
    btg.initiate_payment(&order(&rejected_e2e, "10.13"), "pix-out-2").await.unwrap();

    let events = eventually(5, || {
        let ev = rx.events();
        (ev.iter().filter(|(_, e)| matches!(e, BtgEvent::Payment(_))).count() >= 2).then_some(ev)
    })
    .await;
    let status_of = |e2e: &str| {
        events.iter().find_map(|(_, e)| match e {
            BtgEvent::Payment(p) if p.end_to_end_id == e2e => Some(p.clone()),
            _ => None,
        })
    };
    assert_eq!(status_of(&lookup.end_to_end_id).unwrap().status, PaymentStatus::Confirmed);
    let rejected = status_of(&rejected_e2e).unwrap();
    assert_eq!((rejected.status, rejected.rejection_code.as_deref()), (PaymentStatus::Rejected, Some("AC03")));
    assert_eq!(btg.payment(&lookup.end_to_end_id).await.unwrap().status, PaymentStatus::Confirmed);
    assert!(matches!(
        btg.payment("E00000000202501011200xxxxxxxxxxx").await.unwrap_err(),
        IntegrationError::NotFound { .. }
    ));
    assert_eq!(btg.key_statistics(&key.key).await.unwrap().settlements.d90, 1);

    // A Pix received from another bank, then returned in part.
    btg.create_entry(&NewEntry {
        key: Some("11144477735".into()),
        key_type: KeyType::Cpf,
        account: our_account("100001"),
        owner: maria(),
        reason: Reason::UserRequested,
        request_id: uuid::Uuid::new_v4(),
    })
    .await
    .unwrap();
    let inbound = h.inbound_pix(&json!({"key": "11144477735", "amount": "80.00"})).unwrap();
    let e2e = inbound["endToEndId"].as_str().unwrap().to_owned();
    let got = eventually(5, || {
        rx.events().into_iter().find_map(|(_, e)| match e {
            BtgEvent::PaymentInbound(p) if p.end_to_end_id == e2e => Some(p),
            _ => None,
        })
    })
    .await;
    assert_eq!(
        (got.amount, got.creditor.account.as_str(), got.debtor_ispb.as_str()),
        (m("80.00"), "100001", "87654321")
    );
    let rev = btg
        .initiate_reversal(
            &e2e,
            &ReversalOrder { amount: m("30.00"), reason: ReversalReason::Md06, description: None },
            "rev-1",
        )
        .await
        .unwrap();
    assert!(rev.end_to_end_id.starts_with('D'));
    let too_much = btg
        .initiate_reversal(
            &e2e,
            &ReversalOrder { amount: m("60.00"), reason: ReversalReason::Md06, description: None },
            "rev-2",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(too_much, IntegrationError::Rejected { ref code, .. } if code == "REVERSAL_AMOUNT_EXCEEDED"),
        "{too_much}"
    );
    eventually(5, || {
        rx.events()
            .into_iter()
            .find(|(_, e)| matches!(e, BtgEvent::Reversal(r) if r.status == PaymentStatus::Confirmed))
    })
    .await;
    assert_eq!(btg.reversal(&e2e, &rev.end_to_end_id).await.unwrap().status, PaymentStatus::Confirmed);

    // trck.002 for intra-PSP transfers.
    let receipt = btg
        .submit_internal_transactions_report(&InternalTransactionsReport {
            report_id: "r-1".into(),
            transactions: vec![InternalTransaction {
                end_to_end_id: e2e.clone(),
                amount: m("5"),
                settled_at: chrono::Utc::now(),
                debtor_tax_id: "11144477735".into(),
                creditor_tax_id: "12345678909".into(),
                kind: "TRANSFER".into(),
                return_identification: None,
            }],
        })
        .await
        .unwrap();
    assert_eq!(receipt.status, "RECEIVED");
    h.advance_clock(Duration::from_secs(2));
    assert_eq!(btg.internal_transactions_report(&receipt.id).await.unwrap().receipt_code.as_deref(), Some("ACCP"));
    assert_eq!(*rx.bad_signatures.lock().unwrap(), 0);
}

#[tokio::test]
async fn btg_claims_follow_simulated_time() {
    let rx = receiver("sandbox-webhook-secret", 0).await;
    let (h, demo) = start(|_| {}).await;
    h.set_webhook_url(Some(rx.url.clone()));
    let btg = btg(&h, http(2_000));
    let phone = demo.other_participant.keys.iter().find(|k| k.key_type == "PHONE").unwrap().key.clone();
    let evp = demo.other_participant.keys.iter().find(|k| k.key_type == "EVP").unwrap().key.clone();
    let claim_for = |key: &str, t: ClaimType, kt: KeyType| NewClaim {
        claim_type: t,
        key: key.into(),
        key_type: kt,
        claimer_account: our_account("100001"),
        claimer: maria(),
        request_id: uuid::Uuid::new_v4(),
    };

    let err = btg.create_claim(&claim_for(&evp, ClaimType::Portability, KeyType::Evp)).await.unwrap_err();
    assert!(matches!(err, IntegrationError::Rejected { ref code, .. } if code == "INVALID_CLAIM_TYPE"), "{err}");

    // Ownership claim on a phone: the donor confirms after a day; we complete after the completion period.
    let request = claim_for(&phone, ClaimType::Ownership, KeyType::Phone);
    let claim = btg.create_claim(&request).await.unwrap();
    assert_eq!((claim.status, claim.donor_participant.as_str()), (ClaimStatus::Open, "87654321"));
    // A retry of the same request replays; a different request for the same key conflicts.
    assert_eq!(btg.create_claim(&request).await.unwrap().id, claim.id);
    assert!(matches!(
        btg.create_claim(&claim_for(&phone, ClaimType::Ownership, KeyType::Phone)).await.unwrap_err(),
        IntegrationError::Conflict { .. }
    ));
    let completion = uuid::Uuid::new_v4();
    assert!(
        btg.claim_action(&claim.id, ClaimAction::Complete(completion)).await.is_err(),
        "cannot complete an OPEN claim"
    );
    h.advance_clock(Duration::from_secs(2 * 3600));
    assert_eq!(btg.claim(&claim.id).await.unwrap().status, ClaimStatus::WaitingResolution);
    h.advance_clock(Duration::from_secs(24 * 3600));
    assert_eq!(btg.claim(&claim.id).await.unwrap().status, ClaimStatus::Confirmed);
    let done = btg.claim_action(&claim.id, ClaimAction::Complete(completion)).await.unwrap();
    assert_eq!(done.status, ClaimStatus::Completed);
    assert_eq!(btg.entry(&phone).await.unwrap().account.participant, "12345678");
    // The new entry's CID is keyed by the completion's RequestId, not by a simulator-side id.
    let file = btg.request_cid_file(KeyType::Phone).await.unwrap();
    h.advance_clock(Duration::from_secs(3));
    let file = btg.cid_file(&file.id).await.unwrap();
    assert_eq!(file.cids.len(), 1);
    let claimed = btg.entry_by_cid(&file.cids[0]).await.unwrap();
    assert_eq!((claimed.key.as_str(), claimed.request_id), (phone.as_str(), Some(completion)));

    // Portability ignored by the donor lapses at the end of the resolution period.
    h.set_donor_behaviour(pix_sandbox::DonorBehaviour::Ignore);
    let email = demo.other_participant.keys.iter().find(|k| k.key_type == "EMAIL").unwrap().key.clone();
    let claim = btg.create_claim(&claim_for(&email, ClaimType::Portability, KeyType::Email)).await.unwrap();
    h.advance_clock(Duration::from_secs(8 * 24 * 3600));
    let lapsed = btg.claim(&claim.id).await.unwrap();
    assert_eq!((lapsed.status, lapsed.cancel_reason), (ClaimStatus::Cancelled, Some(Reason::DefaultOperation)));

    // Another participant claims one of our keys: we are the donor and confirm.
    btg.create_entry(&NewEntry {
        key: Some("11144477735".into()),
        key_type: KeyType::Cpf,
        account: our_account("100001"),
        owner: maria(),
        reason: Reason::UserRequested,
        request_id: uuid::Uuid::new_v4(),
    })
    .await
    .unwrap();
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_control/btg/claims", h.control_url))
        .json(&json!({"key": "11144477735", "type": "PORTABILITY"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = resp["id"].as_str().unwrap().to_owned();
    let listed = btg.list_claims(&ClaimFilter { is_donor: Some(true), ..ClaimFilter::default() }).await.unwrap();
    assert!(listed.iter().any(|c| c.id == id));
    assert_eq!(btg.claim_action(&id, ClaimAction::Acknowledge).await.unwrap().status, ClaimStatus::WaitingResolution);
    assert_eq!(
        btg.claim_action(&id, ClaimAction::Confirm(Reason::UserRequested)).await.unwrap().status,
        ClaimStatus::Confirmed
    );
    h.advance_clock(Duration::from_secs(1));
    assert_eq!(btg.claim(&id).await.unwrap().status, ClaimStatus::Completed);
    assert!(matches!(btg.entry("11144477735").await.unwrap_err(), IntegrationError::NotFound { .. }));

    let seen = eventually(5, || {
        let n = rx.events().iter().filter(|(_, e)| matches!(e, BtgEvent::Claim(c) if c.id == id)).count();
        (n >= 4).then_some(n)
    })
    .await;
    assert!(seen >= 4, "open, acknowledged, confirmed, completed");
}

#[tokio::test]
async fn btg_med_objects() {
    let (h, demo) = start(|_| {}).await;
    let btg = btg(&h, http(2_000));
    btg.create_entry(&NewEntry {
        key: Some("11144477735".into()),
        key_type: KeyType::Cpf,
        account: our_account("100001"),
        owner: maria(),
        reason: Reason::UserRequested,
        request_id: uuid::Uuid::new_v4(),
    })
    .await
    .unwrap();
    let inbound = h.inbound_pix(&json!({"key": "11144477735", "amount": "300.00"})).unwrap();
    let e2e = inbound["endToEndId"].as_str().unwrap();

    let marker = btg.create_fraud_marker("52998224725", FraudType::ScammerAccount, None).await.unwrap();
    assert_eq!(btg.fraud_markers("52998224725").await.unwrap().len(), 1);
    assert_eq!(btg.person_statistics("52998224725").await.unwrap().scammer_accounts.d90, 1);
    h.advance_clock(Duration::from_secs(5));
    let cancelled = btg.cancel_fraud_marker(&marker.id).await.unwrap();
    assert_eq!(cancelled.status, FraudMarkerStatus::Cancelled);
    assert!(cancelled.updated_at > marker.updated_at, "the cancellation moves updatedAt");
    assert_eq!(btg.key_statistics(&demo.other_participant.keys[0].key).await.unwrap().scammer_accounts.d90, 0);

    let report = btg
        .create_infraction_report(&NewInfractionReport {
            end_to_end_id: e2e.into(),
            reason: "REFUND_REQUEST".into(),
            situation_type: Some("SCAM".into()),
            details: None,
        })
        .await
        .unwrap();
    assert_eq!(report.status, InfractionStatus::Open);
    h.advance_clock(Duration::from_secs(2 * 24 * 3600));
    let closed = btg.infraction_report(&report.id).await.unwrap();
    assert_eq!((closed.status, closed.analysis_result), (InfractionStatus::Closed, Some(AnalysisResult::Agreed)));

    let refund = btg
        .create_refund_request(&NewRefundRequest {
            end_to_end_id: e2e.into(),
            amount: m("100"),
            reason: "FRAUD".into(),
            infraction_report_id: Some(report.id.clone()),
            details: None,
        })
        .await
        .unwrap();
    assert_eq!(btg.cancel_refund_request(&refund.id).await.unwrap().status, RefundRequestStatus::Cancelled);
    assert!(
        btg.close_refund_request(
            &refund.id,
            &RefundClose {
                result: RefundAnalysisResult::TotallyAccepted,
                rejection_reason: None,
                refund_end_to_end_id: None,
                details: None
            }
        )
        .await
        .is_err()
    );

    // MED 2.0: the payer's participant recovers one of its settled cash-outs.
    let key = &demo.other_participant.keys[0];
    let lookup = btg.lookup_key(&key.key, None).await.unwrap();
    let order = PaymentOrder {
        end_to_end_id: lookup.end_to_end_id.clone(),
        amount: m("80.00"),
        initiation_type: InitiationType::Dict,
        transaction_type: TransactionType::Transfer,
        debtor: Debtor {
            branch: "0001".into(),
            account: "100001".into(),
            account_type: AccountType::Cacc,
            tax_id: "11144477735".into(),
            name: "Maria Silva".into(),
        },
        creditor: Creditor {
            ispb: lookup.entry.account.participant.clone(),
            branch: lookup.entry.account.branch.clone(),
            account: lookup.entry.account.number.clone(),
            account_type: lookup.entry.account.account_type,
            tax_id: lookup.entry.owner.tax_id.clone(),
            name: lookup.entry.owner.name.clone(),
            key: Some(key.key.clone()),
        },
        remittance_information: None,
        txid: None,
    };
    btg.initiate_payment(&order, "pix-out-recovered").await.unwrap();
    h.advance_clock(Duration::from_secs(5));
    let root = lookup.end_to_end_id;
    let new_recovery = |root: &str| NewFundsRecovery {
        request_id: uuid::Uuid::new_v4().to_string(),
        root_end_to_end_id: root.into(),
        situation_type: SituationType::Scam,
        report_details: None,
        contact: ContactInformation { email: Some("v@example.com".into()), phone: None },
        tracking: Some(TrackingGraphParameters { max_hops: Some(2), ..Default::default() }),
    };
    assert!(
        btg.create_funds_recovery(&new_recovery(e2e)).await.is_err(),
        "a payment we received is not ours to recover"
    );
    let recovery = btg.create_funds_recovery(&new_recovery(&root)).await.unwrap();
    assert_eq!(recovery.status, FundsRecoveryStatus::Created);
    assert_eq!(recovery.contact.email.as_deref(), Some("v@example.com"));
    assert!(btg.tracking_graph(&recovery.id).await.is_err(), "graph not ready before TRACKED");
    assert!(btg.refund_funds_recovery(&recovery.id).await.is_err(), "refund only from ANALYSED");
    h.advance_clock(Duration::from_secs(120));
    assert_eq!(btg.funds_recovery(&recovery.id).await.unwrap().status, FundsRecoveryStatus::Tracked);
    let graph = btg.tracking_graph(&recovery.id).await.unwrap();
    assert_eq!(graph.transactions[0].id, root);
    assert_eq!(graph.transactions[0].refundable_amount, m("80.00"));
    assert_eq!(graph.parameters.max_hops, Some(2));
    assert_eq!(graph.parameters.max_transactions, Some(5), "DICT's default");
    let creditor = graph.accounts.iter().find(|a| a.id == graph.transactions[0].creditor_account_id).unwrap();
    assert_eq!(creditor.participant, lookup.entry.account.participant);
    let update = FundsRecoveryUpdate {
        situation_type: SituationType::Other,
        report_details: Some("called the bank".into()),
        contact: ContactInformation { email: None, phone: Some("+5511988887777".into()) },
    };
    let updated = btg.update_funds_recovery(&recovery.id, &update).await.unwrap();
    assert_eq!(
        (updated.situation_type, updated.contact.phone.as_deref()),
        (SituationType::Other, Some("+5511988887777"))
    );
    assert_eq!(btg.cancel_funds_recovery(&recovery.id).await.unwrap().status, FundsRecoveryStatus::Cancelled);
    assert!(btg.update_funds_recovery(&recovery.id, &update).await.is_err(), "a final recovery cannot change");
}

#[tokio::test]
async fn btg_resolves_our_cids_to_entries() {
    let (h, _demo) = start(|_| {}).await;
    let btg = btg(&h, http(2_000));
    let request_id = uuid::Uuid::new_v4();
    btg.create_entry(&NewEntry {
        key: Some("maria@example.com".into()),
        key_type: KeyType::Email,
        account: our_account("100001"),
        owner: maria(),
        reason: Reason::UserRequested,
        request_id,
    })
    .await
    .unwrap();
    let file = btg.request_cid_file(KeyType::Email).await.unwrap();
    h.advance_clock(Duration::from_secs(3));
    let cids = btg.cid_file(&file.id).await.unwrap().cids;
    assert_eq!(cids.len(), 1, "only our entries are in our CID file");

    let entry = btg.entry_by_cid(&cids[0]).await.unwrap();
    assert_eq!(entry.key, "maria@example.com");
    assert_eq!(entry.request_id, Some(request_id), "the RequestId of the creation comes back");
    assert_eq!((entry.account.number.as_str(), entry.owner.tax_id.as_str()), ("100001", "11144477735"));
    // Upper-case hex names the same CID.
    assert_eq!(btg.entry_by_cid(&cids[0].to_uppercase()).await.unwrap().key, "maria@example.com");
    // Plain reads never carry the RequestId.
    assert_eq!(btg.entry("maria@example.com").await.unwrap().request_id, None);

    // After an update the old CID no longer resolves.
    btg.update_entry(
        "maria@example.com",
        &EntryUpdate {
            account: our_account("200001"),
            name: "Maria Silva".into(),
            trade_name: None,
            reason: Reason::BranchTransfer,
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(btg.entry_by_cid(&cids[0]).await.unwrap_err(), IntegrationError::NotFound { ref code, .. } if code == "ENTRY_NOT_FOUND")
    );
    let malformed = btg.entry_by_cid("not-a-cid").await.unwrap_err();
    assert!(matches!(malformed, IntegrationError::Rejected { ref code, .. } if code == "INVALID_CID"), "{malformed}");
}

#[tokio::test]
async fn btg_inbound_payment_refusal_returns_the_funds() {
    let (h, demo) = start(|_| {}).await;
    let btg = btg(&h, http(2_000));
    btg.create_entry(&NewEntry {
        key: Some("11144477735".into()),
        key_type: KeyType::Cpf,
        account: our_account("100001"),
        owner: maria(),
        reason: Reason::UserRequested,
        request_id: uuid::Uuid::new_v4(),
    })
    .await
    .unwrap();
    let inbound = h.inbound_pix(&json!({"key": "11144477735", "amount": "42.00"})).unwrap();
    let e2e = inbound["endToEndId"].as_str().unwrap().to_owned();
    let refusal = InboundRefusal {
        reason_code: "AG03".into(),
        reason: "RECIPIENT_CANNOT_RECEIVE".into(),
        description: Some("conta encerrada".into()),
    };
    let refused = btg.refuse_inbound_payment(&e2e, &refusal).await.unwrap();
    assert_eq!(refused.status, PaymentStatus::Rejected);
    assert_eq!(refused.rejection_code.as_deref(), Some("AG03"));
    assert_eq!(refused.rejection_reason.as_deref(), Some("conta encerrada"));
    assert_eq!(refused.amount, m("42.00"));
    assert_eq!(btg.payment(&e2e).await.unwrap(), refused, "the payment reads as refused");
    // Idempotent: a repeat (even with other words) answers the same.
    let other = InboundRefusal { reason_code: "AC06".into(), reason: "OTHER".into(), description: None };
    assert_eq!(btg.refuse_inbound_payment(&e2e, &refusal).await.unwrap(), refused);
    assert_eq!(btg.refuse_inbound_payment(&e2e, &other).await.unwrap(), refused);
    // The funds went back: nothing is left to return with a pacs.004.
    let reversal = btg
        .initiate_reversal(
            &e2e,
            &ReversalOrder { amount: m("1.00"), reason: ReversalReason::Md06, description: None },
            "rev-x",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(reversal, IntegrationError::Rejected { ref code, .. } if code == "PAYMENT_NOT_REVERSIBLE"),
        "{reversal}"
    );

    // The refusal is recorded where tests inspect the simulator.
    let state: serde_json::Value =
        reqwest::get(format!("{}/_control/btg/state", h.control_url)).await.unwrap().json().await.unwrap();
    let recorded = state["payments"].as_array().unwrap().iter().find(|p| p["endToEndId"] == e2e.as_str()).unwrap();
    assert_eq!(recorded["direction"], "INBOUND");
    assert_eq!(recorded["status"], "REJECTED");
    assert_eq!(
        recorded["refusal"],
        json!({"reasonCode": "AG03", "reason": "RECIPIENT_CANNOT_RECEIVE", "description": "conta encerrada",
               "refusedAt": recorded["refusal"]["refusedAt"]})
    );
    assert!(recorded["refusal"]["refusedAt"].is_string());

    // Unknown and outbound payments cannot be refused.
    let unknown = btg.refuse_inbound_payment("E00000000202501011200xxxxxxxxxxx", &refusal).await.unwrap_err();
    assert!(matches!(unknown, IntegrationError::NotFound { ref code, .. } if code == "PAYMENT_NOT_FOUND"), "{unknown}");
    let key = &demo.other_participant.keys[0];
    let lookup = btg.lookup_key(&key.key, None).await.unwrap();
    let order = PaymentOrder {
        end_to_end_id: lookup.end_to_end_id.clone(),
        amount: m("5.00"),
        initiation_type: InitiationType::Dict,
        transaction_type: TransactionType::Transfer,
        debtor: Debtor {
            branch: "0001".into(),
            account: "100001".into(),
            account_type: AccountType::Cacc,
            tax_id: "11144477735".into(),
            name: "Maria Silva".into(),
        },
        creditor: Creditor {
            ispb: lookup.entry.account.participant.clone(),
            branch: lookup.entry.account.branch.clone(),
            account: lookup.entry.account.number.clone(),
            account_type: lookup.entry.account.account_type,
            tax_id: lookup.entry.owner.tax_id.clone(),
            name: lookup.entry.owner.name.clone(),
            key: Some(key.key.clone()),
        },
        remittance_information: None,
        txid: None,
    };
    btg.initiate_payment(&order, "pix-out-r").await.unwrap();
    let outbound = btg.refuse_inbound_payment(&lookup.end_to_end_id, &refusal).await.unwrap_err();
    assert!(
        matches!(outbound, IntegrationError::Rejected { status: 422, ref code, .. } if code == "PAYMENT_NOT_REFUSABLE"),
        "{outbound}"
    );
    let bad_code = InboundRefusal { reason_code: "nope".into(), ..refusal.clone() };
    let e2e2 = h.inbound_pix(&json!({"key": "11144477735", "amount": "1.00"})).unwrap()["endToEndId"]
        .as_str()
        .unwrap()
        .to_owned();
    let invalid = btg.refuse_inbound_payment(&e2e2, &bad_code).await.unwrap_err();
    assert!(
        matches!(invalid, IntegrationError::Rejected { status: 400, ref code, .. } if code == "INVALID_REASON_CODE"),
        "{invalid}"
    );
    assert_eq!(btg.payment(&e2e2).await.unwrap().status, PaymentStatus::Confirmed, "a refused request changes nothing");
}

#[tokio::test]
async fn crm_maps_banking_details_to_aliases_and_reports_closed_accounts() {
    let (h, demo) = start(|_| {}).await;
    let crm = crm(&h, &demo, http(1_000));
    let joao = &demo.accounts[1];
    let number = joao.number.clone().unwrap();
    let alias = crm.alias_by_banking_details("0001", &number).await.unwrap();
    assert_eq!(alias.account_id, joao.account_id);
    assert_eq!(alias.holder_id, joao.holder_id.clone().unwrap());
    for (branch, account) in [("0002", number.as_str()), ("0001", "999999")] {
        let missing = crm.alias_by_banking_details(branch, account).await.unwrap_err();
        assert!(matches!(missing, IntegrationError::NotFound { ref code, .. } if code == "CRM-0008"), "{missing}");
    }

    let holder = crm.account_holder(&joao.account_id).await.unwrap();
    assert_eq!(holder.closing_date, None);
    let today = h.now().date_naive();
    assert!(holder.is_open_on(today));

    let closed = h.close_account(&joao.account_id).expect("the account has an alias");
    let closing = today.format("%Y-%m-%d").to_string();
    assert_eq!(closed["bankingDetails"]["closingDate"], closing.as_str());
    assert_eq!(closed["bankingDetails"]["account"], number.as_str(), "other banking details are kept");
    assert!(h.close_account(&demo.fee_account.account_id).is_none(), "no alias, nothing to close");
    // The cache still has the open account until it is invalidated.
    assert_eq!(crm.account_holder(&joao.account_id).await.unwrap().closing_date, None);
    crm.invalidate(&joao.account_id);
    let holder = crm.account_holder(&joao.account_id).await.unwrap();
    assert_eq!(holder.closing_date.as_deref(), Some(closing.as_str()));
    assert!(!holder.is_open_on(today));
    let alias = crm.alias_by_banking_details("0001", &number).await.unwrap();
    let details = alias.banking_details.unwrap();
    assert_eq!(details.closing_date.as_deref(), Some(closing.as_str()));
    assert!(!details.is_open_on(today));
    assert!(details.is_open_on(today - chrono::Duration::days(1)), "open until the closing day");
}
