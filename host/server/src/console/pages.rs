//! Sign-in, sign-out and the overview page.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use maud::html;
use pix_core::transfer::TransferStatus;
use serde::Deserialize;

use super::session::{COOKIE, Session, Viewer};
use super::view::{self, csrf};
use super::{ConsoleResult, Operator};
use crate::app::AppState;

/// The sign-in form. A visitor without a session gets an anonymous one, whose CSRF token the
/// form carries.
pub async fn login_form(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar) -> Response {
    let session = Session::from_jar(&state, &jar).unwrap_or_else(|| Session::anonymous(state.clock.now()));
    let jar = jar.add(session.cookie(&state, &headers));
    (jar, login_page(&session.csrf, None)).into_response()
}

fn login_page(token: &str, error: Option<&str>) -> maud::Markup {
    view::bare(
        "Sign in",
        html! {
            p.muted { "Use an admin token (every tenant) or a tenant token (that tenant only)." }
            (view::notices(None, error))
            form.grid method="post" action="/console/login" {
                (csrf(token))
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// Checks the token as the API would and starts a session with a new CSRF token.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> ConsoleResult<Response> {
    let token = form.token.trim();
    let now = state.clock.now();
    let valid = !token.is_empty()
        && token.len() <= 256
        && state.store.credential_at(token, now).await?.and_then(Viewer::from_credential).is_some();
    if !valid {
        let session = Session::anonymous(now);
        let jar = jar.add(session.cookie(&state, &headers));
        let page = login_page(&session.csrf, Some("invalid, expired or revoked token"));
        return Ok((axum::http::StatusCode::UNAUTHORIZED, jar, page).into_response());
    }
    let session = Session::signed_in(token.to_owned(), now);
    Ok((jar.add(session.cookie(&state, &headers)), Redirect::to("/console")).into_response())
}

pub async fn logout(jar: CookieJar) -> impl IntoResponse {
    (jar.remove(Cookie::build(COOKIE).path("/console")), Redirect::to("/console/login"))
}

/// What needs attention: the review queue, incidents and dead letters for admins; the tenant's
/// own transfers for a tenant operator.
pub async fn home(State(state): State<AppState>, operator: Operator) -> ConsoleResult<maud::Markup> {
    let body = match &operator.viewer {
        Viewer::Admin { .. } => {
            let reviews = pix_app::transfers::review::waiting(&state.app, 100).await?.len();
            let incidents = pix_app::transfers::incidents::list(&state.app, 100).await?.len();
            let (_, dead) = state
                .store
                .list_deliveries(
                    &pix_store::deliveries::DeliveryFilter {
                        status: Some(pix_store::deliveries::DeliveryStatus::Failed),
                        ..Default::default()
                    },
                    1,
                    0,
                )
                .await?;
            let tenants = state.store.list_tenants().await?.len();
            html! {
                div.cards {
                    a.card href="/console/reviews" { div.big { (reviews) } "transfers waiting for review" }
                    a.card href="/console/stuck" { div.big { (incidents) } "transfers in an incident" }
                    a.card href="/console/webhooks" { div.big { (dead) } "dead webhook deliveries" }
                    a.card href="/console/policies" { div.big { (tenants) } "tenants" }
                }
            }
        }
        Viewer::Tenant(tenant) => {
            let mut cards = Vec::new();
            for status in [TransferStatus::InReview, TransferStatus::Pending, TransferStatus::Processing] {
                let filter = pix_store::transfers::TransferFilter { status: Some(status), ..Default::default() };
                let (_, total) = state.store.list_transfers(tenant.id, None, &filter, 1, 0).await?;
                cards.push((status, total));
            }
            html! {
                p { "Signed in for " strong { (tenant.name) } " (ISPB " (tenant.ispb) ")." }
                div.cards {
                    @for (status, total) in cards {
                        a.card href=(format!("/console/transfers?status={}", status.as_str())) {
                            div.big { (total) } "transfers " (status.as_str())
                        }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console", "Overview", body))
}
