//! The console's session: a cookie sealed with AES-256-GCM under a key derived from
//! `security.secret_key`, holding the bearer token the operator signed in with, a CSRF token and
//! an expiry. Every request resolves the token exactly as the API does (`auth::resolve`), so a
//! revoked or expired credential ends the session at once and the scoping rules are the API's.
//!
//! Before sign-in the cookie holds only a CSRF token, so the sign-in form is protected too.

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use pix_store::sealed::Sealer;
use pix_store::tenants::{Credential, Principal, Tenant};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::ConsoleError;
use crate::app::AppState;

pub const COOKIE: &str = "pix_console";
/// How long a signed-in session lasts (the credential's own expiry still applies).
pub const TTL: Duration = Duration::hours(8);
/// Bound as associated data: a value sealed for anything else does not open as a session.
const CONTEXT: &str = "pix-host/console/session/v1";

/// What the cookie carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token signed in with; `None` before sign-in.
    pub token: Option<String>,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

fn sealer(state: &AppState) -> Sealer {
    Sealer::new(&state.store.derived_key(CONTEXT))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Session {
    pub fn anonymous(now: DateTime<Utc>) -> Session {
        Session { token: None, csrf: random_token(), expires_at: now + TTL }
    }

    /// A fresh session (new CSRF token) for `token`.
    pub fn signed_in(token: String, now: DateTime<Utc>) -> Session {
        Session { token: Some(token), csrf: random_token(), expires_at: now + TTL }
    }

    /// The session in the request's cookie, if it opens and has not expired.
    pub fn from_jar(state: &AppState, jar: &CookieJar) -> Option<Session> {
        let sealed = jar.get(COOKIE)?.value().to_owned();
        let json = sealer(state).open(&sealed, CONTEXT).ok()?;
        let session: Session = serde_json::from_str(&json).ok()?;
        (session.expires_at > state.clock.now()).then_some(session)
    }

    /// The `Set-Cookie` for this session: HttpOnly, SameSite=Strict, scoped to `/console`,
    /// Secure when the request came over TLS (terminated in front of the host).
    pub fn cookie(&self, state: &AppState, headers: &HeaderMap) -> Cookie<'static> {
        let json = serde_json::to_string(self).expect("a session serializes");
        let max_age = (self.expires_at - state.clock.now()).num_seconds().max(0);
        Cookie::build((COOKIE, sealer(state).seal(&json, CONTEXT)))
            .path("/console")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(behind_tls(headers))
            .max_age(cookie::time::Duration::seconds(max_age))
            .build()
    }

    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn behind_tls(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Who is signed in: an operator with an admin credential (every tenant) or a tenant's
/// operator (that tenant only).
#[derive(Debug, Clone)]
pub enum Viewer {
    Admin { credential_id: Uuid },
    Tenant(Box<Tenant>),
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        matches!(self, Viewer::Admin { .. })
    }

    /// The tenant a page shows. A tenant operator always sees its own tenant: asking for another
    /// one is refused, as the API never lets a tenant credential name another tenant. An admin
    /// picks any tenant (the first one when none is named).
    pub async fn tenant(&self, state: &AppState, requested: Option<Uuid>) -> Result<Tenant, ConsoleError> {
        match self {
            Viewer::Tenant(own) => match requested {
                Some(id) if id != own.id => Err(ConsoleError::Forbidden("this page belongs to another tenant")),
                _ => Ok(own.as_ref().clone()),
            },
            Viewer::Admin { .. } => {
                let tenant = match requested {
                    Some(id) => state.store.tenant(id).await?,
                    None => state.store.list_tenants().await?.into_iter().next(),
                };
                tenant.ok_or(ConsoleError::NotFound("no such tenant"))
            }
        }
    }

    /// Admin-only pages and actions, as in `/v1/admin/*`.
    pub fn require_admin(&self) -> Result<Uuid, ConsoleError> {
        match self {
            Viewer::Admin { credential_id } => Ok(*credential_id),
            Viewer::Tenant(_) => Err(ConsoleError::Forbidden("this page needs an admin credential")),
        }
    }

    /// Tenant actions (unblock, quote), as in the tenant API: admin credentials cannot act as a
    /// tenant.
    pub fn require_tenant(&self) -> Result<&Tenant, ConsoleError> {
        match self {
            Viewer::Tenant(t) => Ok(t.as_ref()),
            Viewer::Admin { .. } => Err(ConsoleError::Forbidden("admin credentials cannot act as a tenant")),
        }
    }

    pub fn from_credential(credential: Credential) -> Option<Viewer> {
        match credential.principal {
            Principal::Admin { credential_id } => Some(Viewer::Admin { credential_id }),
            Principal::Tenant { .. } => credential.tenant.map(|t| Viewer::Tenant(Box::new(t))),
        }
    }
}
