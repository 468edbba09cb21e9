//! One BTG simulator serving several institutions: each has its own client credentials and
//! ISPB, acts only as itself, and receives only its own webhooks.

mod common;

use common::*;
use pix_integrations::btg::{AccountType, BtgEvent, DictAccount, DictOwner, KeyType, NewEntry, Reason};
use pix_integrations::domain::PersonType;
use pix_integrations::{Btg, BtgClient, BtgConfig, IntegrationError, Secret};
use pix_sandbox::{SandboxHandle, seed_participant};
use serde_json::json;

const OTHER: &str = "99887766";

fn client_for(h: &SandboxHandle, client_id: &str, secret: &str, ispb: &str) -> BtgClient {
    BtgClient::new(&BtgConfig {
        base_url: h.btg_url.clone(),
        auth_url: None,
        client_id: client_id.into(),
        client_secret: Secret::new(secret),
        scope: None,
        ispb: ispb.into(),
        mtls: None,
        http: http(2_000),
    })
    .unwrap()
}

fn entry_at(participant: &str, owner: &pix_sandbox::DemoAccount) -> NewEntry {
    NewEntry {
        key: None,
        key_type: KeyType::Evp,
        account: DictAccount {
            participant: participant.into(),
            branch: "0001".into(),
            number: owner.number.clone().unwrap(),
            account_type: AccountType::Cacc,
            opening_date: None,
        },
        owner: DictOwner {
            person_type: PersonType::Natural,
            tax_id: owner.document.clone().unwrap(),
            name: owner.name.clone(),
            trade_name: None,
        },
        reason: Reason::UserRequested,
        request_id: uuid::Uuid::new_v4(),
    }
}

#[tokio::test]
async fn each_participant_acts_as_itself_and_gets_its_own_webhooks() {
    let (h, _demo) = start(|_| {}).await;
    let other = seed_participant(&h, OTHER, "institution-b", "secret-b").unwrap();
    assert_ne!(other.ledger_id, _demo.ledger_id);

    // Its credentials identify it: it may register keys at its own ISPB…
    let b = client_for(&h, "institution-b", "secret-b", OTHER);
    b.create_entry(&entry_at(OTHER, &other.account)).await.unwrap();
    // …and the host institution's credentials may not act for it.
    let a = btg(&h, http(2_000));
    assert!(matches!(
        a.create_entry(&entry_at(OTHER, &other.account)).await.unwrap_err(),
        IntegrationError::Rejected { .. } | IntegrationError::Unauthorized { .. }
    ));
    // A wrong secret gets no token.
    let wrong = client_for(&h, "institution-b", "not-the-secret", OTHER);
    assert!(wrong.entry("anything").await.is_err());

    // A Pix to B's customer goes to B's webhook, signed with B's secret, and not to A's.
    let to_a = receiver(&h.config().webhook_secret, 0).await;
    let to_b = receiver("b-hook-secret", 0).await;
    h.set_webhook_url(Some(to_a.url.clone()));
    h.set_participant_webhook(OTHER, Some(to_b.url.clone()), "b-hook-secret");
    let creditor = json!({"ispb": OTHER, "branch": "0001", "account": "200001", "accountType": "CACC",
        "taxId": other.account.document, "name": "Carlos Lima"});
    let data = h.inbound_pix(&json!({"creditor": creditor, "amount": "3.00"})).unwrap();
    let events = eventually(10, || {
        let ev = to_b.events();
        (!ev.is_empty()).then_some(ev)
    })
    .await;
    assert!(matches!(&events[0].1, BtgEvent::PaymentInbound(p)
        if p.end_to_end_id == data["endToEndId"] && p.creditor.ispb == OTHER));
    assert_eq!(*to_b.bad_signatures.lock().unwrap(), 0);
    // A's receiver saw nothing at all (not even a rejected attempt).
    assert_eq!(*to_a.attempts.lock().unwrap(), 0);
}
