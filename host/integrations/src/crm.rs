//! Lerian CRM client: resolves a Midaz account to its holder (document, name, person type) and
//! banking details through `GET /v1/aliases?account_id&ledger_id` then `GET /v1/holders/{id}`
//! (integrations.md §4.3), with a TTL cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::config::CrmConfig;
use crate::domain::{PersonType, mask_document, mask_name};
use crate::error::{IntegrationError, Result, Upstream};
use crate::lerian_auth::LerianTokenSource;
use crate::transport::{Idempotence, TokenSource, Transport, build_client, parse_base, url};

/// CRM holder (subset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// Holder id.
    pub id: String,
    /// `NATURAL_PERSON` or `LEGAL_PERSON`.
    #[serde(rename = "type")]
    pub person_type: PersonType,
    /// Full name or corporate name.
    pub name: String,
    /// CPF or CNPJ digits.
    pub document: String,
    /// Institution's own reference.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Trade name for legal persons (`legalPerson.tradeName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_person: Option<LegalPerson>,
}

/// `legalPerson` block (subset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalPerson {
    /// Trade name.
    #[serde(default)]
    pub trade_name: Option<String>,
}

/// Alias `bankingDetails`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankingDetails {
    /// Branch (agência), no check digit.
    #[serde(default)]
    pub branch: Option<String>,
    /// Account number with check digit.
    #[serde(default)]
    pub account: Option<String>,
    /// `CACC`, `SVGS`, `SLRY`, `TRAN` (free text in CRM).
    #[serde(default, rename = "type")]
    pub account_type: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub opening_date: Option<String>,
    /// `YYYY-MM-DD` once the account is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing_date: Option<String>,
}

impl BankingDetails {
    /// Whether the account is still open on `today`: no closing date, or one after `today`.
    /// An unparsable closing date counts as closed (fail safe: never credit a doubtful account).
    pub fn is_open_on(&self, today: chrono::NaiveDate) -> bool {
        closing_date_open(self.closing_date.as_deref(), today)
    }
}

fn closing_date_open(closing: Option<&str>, today: chrono::NaiveDate) -> bool {
    match closing {
        None => true,
        Some(d) => chrono::NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").is_ok_and(|c| c > today),
    }
}

/// CRM alias linking a holder to a ledger account (subset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    /// Alias id.
    pub id: String,
    /// Owning holder.
    pub holder_id: String,
    /// Midaz ledger id.
    pub ledger_id: String,
    /// Midaz account id.
    pub account_id: String,
    /// Holder document, copied by CRM.
    #[serde(default)]
    pub document: Option<String>,
    /// Banking details.
    #[serde(default)]
    pub banking_details: Option<BankingDetails>,
}

#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
}

/// What the Pix flows need to know about the owner of a ledger account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountHolder {
    /// Midaz account id.
    pub account_id: String,
    /// CRM holder id.
    pub holder_id: String,
    /// CRM alias id.
    pub alias_id: String,
    /// CPF/CNPJ digits.
    pub document: String,
    /// Holder name.
    pub name: String,
    /// Trade name (legal persons).
    pub trade_name: Option<String>,
    /// Natural or legal person.
    pub person_type: PersonType,
    /// Branch.
    pub branch: String,
    /// Account number.
    pub account_number: String,
    /// DICT account type (`CACC` when CRM has none).
    pub account_type: String,
    /// Account opening date (`YYYY-MM-DD`) when known.
    pub opening_date: Option<String>,
    /// Account closing date (`YYYY-MM-DD`) from the alias, when the account was closed.
    #[serde(default)]
    pub closing_date: Option<String>,
}

impl AccountHolder {
    /// Whether the alias is open on `today` (see [`BankingDetails::is_open_on`]).
    pub fn is_open_on(&self, today: chrono::NaiveDate) -> bool {
        closing_date_open(self.closing_date.as_deref(), today)
    }
}

// Holder data is PII: Debug masks it so that it can be logged.
impl std::fmt::Debug for AccountHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountHolder")
            .field("account_id", &self.account_id)
            .field("holder_id", &self.holder_id)
            .field("document", &mask_document(&self.document))
            .field("name", &mask_name(&self.name))
            .field("person_type", &self.person_type)
            .field("branch", &self.branch)
            .field("account_type", &self.account_type)
            .field("closing_date", &self.closing_date)
            .finish_non_exhaustive()
    }
}

/// Holder directory (CRM).
#[async_trait::async_trait]
pub trait HolderDirectory: Send + Sync {
    /// The holder and banking details behind a Midaz account (cached).
    async fn account_holder(&self, account_id: &str) -> Result<AccountHolder>;
    /// `GET /v1/holders/{id}`.
    async fn holder(&self, holder_id: &str) -> Result<Holder>;
    /// The alias of a Midaz account in the configured ledger.
    async fn alias_for_account(&self, account_id: &str) -> Result<Alias>;
    /// The alias in the configured ledger whose `bankingDetails` have this branch and account
    /// number (NotFound when none does). Reconciliation maps a DICT entry back to its Midaz
    /// account with it.
    async fn alias_by_banking_details(&self, branch: &str, account: &str) -> Result<Alias>;
    /// Forgets a cached account (after an update in CRM).
    fn invalidate(&self, account_id: &str);
}

/// reqwest implementation of [`HolderDirectory`].
pub struct CrmClient {
    transport: Transport,
    base: Url,
    organization_id: String,
    ledger_id: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, AccountHolder)>>,
}

impl CrmClient {
    /// Builds the client; fails on a malformed URL.
    pub fn new(config: &CrmConfig) -> Result<Self> {
        let auth = config
            .auth
            .as_ref()
            .map(|a| LerianTokenSource::new(a).map(|s| Box::new(s) as Box<dyn TokenSource>))
            .transpose()?;
        Ok(CrmClient {
            transport: Transport::new(Upstream::Crm, &config.http, build_client(&config.http, None)?, auth),
            base: parse_base(&config.base_url)?,
            organization_id: config.organization_id.clone(),
            ledger_id: config.ledger_id.clone(),
            ttl: Duration::from_millis(config.cache_ttl_ms),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The client's circuit breaker, shared (its state is exported in `/metrics`).
    pub fn breaker(&self) -> std::sync::Arc<crate::resilience::CircuitBreaker> {
        self.transport.breaker.clone()
    }

    /// The circuit breaker state.
    pub fn breaker_state(&self) -> crate::resilience::BreakerState {
        self.transport.breaker.state()
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        target: Url,
        query: &[(&str, &str)],
    ) -> Result<T> {
        let client = &self.transport.client;
        let build = || client.get(target.clone()).header("X-Organization-Id", &self.organization_id).query(query);
        self.transport.call(op, Idempotence::Idempotent, &build).await?.json(Upstream::Crm)
    }

    fn cached(&self, account_id: &str) -> Option<AccountHolder> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(account_id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, h)| h.clone())
    }
}

#[async_trait::async_trait]
impl HolderDirectory for CrmClient {
    #[tracing::instrument(name = "crm.account_holder", skip_all, fields(account_id, cached))]
    async fn account_holder(&self, account_id: &str) -> Result<AccountHolder> {
        if let Some(hit) = self.cached(account_id) {
            tracing::Span::current().record("cached", true);
            return Ok(hit);
        }
        let alias = self.alias_for_account(account_id).await?;
        let holder = self.holder(&alias.holder_id).await?;
        let banking = alias.banking_details.clone().unwrap_or(BankingDetails {
            branch: None,
            account: None,
            account_type: None,
            opening_date: None,
            closing_date: None,
        });
        let missing = |field: &str| IntegrationError::Decode {
            upstream: Upstream::Crm,
            message: format!("alias {} has no bankingDetails.{field}", alias.id),
        };
        let resolved = AccountHolder {
            account_id: account_id.to_owned(),
            holder_id: holder.id.clone(),
            alias_id: alias.id.clone(),
            document: holder.document.clone(),
            name: holder.name.clone(),
            trade_name: holder.legal_person.as_ref().and_then(|l| l.trade_name.clone()),
            person_type: holder.person_type,
            branch: banking.branch.ok_or_else(|| missing("branch"))?,
            account_number: banking.account.ok_or_else(|| missing("account"))?,
            account_type: banking.account_type.unwrap_or_else(|| "CACC".to_owned()),
            opening_date: banking.opening_date,
            closing_date: banking.closing_date,
        };
        tracing::debug!(document = %mask_document(&resolved.document), "resolved holder");
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account_id.to_owned(), (Instant::now(), resolved.clone()));
        Ok(resolved)
    }

    #[tracing::instrument(name = "crm.holder", skip_all, fields(holder_id = %holder_id))]
    async fn holder(&self, holder_id: &str) -> Result<Holder> {
        self.get("holder", url(&self.base, &["v1", "holders", holder_id])?, &[]).await
    }

    #[tracing::instrument(name = "crm.alias_for_account", skip_all, fields(account_id = %account_id))]
    async fn alias_for_account(&self, account_id: &str) -> Result<Alias> {
        let page: Page<Alias> = self
            .get(
                "alias_for_account",
                url(&self.base, &["v1", "aliases"])?,
                &[("account_id", account_id), ("ledger_id", &self.ledger_id)],
            )
            .await?;
        page.items.into_iter().find(|a| a.account_id == account_id).ok_or_else(|| IntegrationError::NotFound {
            upstream: Upstream::Crm,
            code: "CRM-0008".to_owned(),
            message: "no alias for this account".to_owned(),
        })
    }

    #[tracing::instrument(name = "crm.alias_by_banking_details", skip_all, fields(branch = %branch))]
    async fn alias_by_banking_details(&self, branch: &str, account: &str) -> Result<Alias> {
        let page: Page<Alias> = self
            .get(
                "alias_by_banking_details",
                url(&self.base, &["v1", "aliases"])?,
                &[
                    ("banking_details_branch", branch),
                    ("banking_details_account", account),
                    ("ledger_id", &self.ledger_id),
                ],
            )
            .await?;
        // Filter again: a CRM that ignored a filter must not map a key to the wrong account.
        let matches = |a: &Alias| {
            a.ledger_id == self.ledger_id
                && a.banking_details
                    .as_ref()
                    .is_some_and(|b| b.branch.as_deref() == Some(branch) && b.account.as_deref() == Some(account))
        };
        page.items.into_iter().find(matches).ok_or_else(|| IntegrationError::NotFound {
            upstream: Upstream::Crm,
            code: "CRM-0008".to_owned(),
            message: "no alias with these banking details".to_owned(),
        })
    }

    fn invalidate(&self, account_id: &str) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(account_id);
    }
}
