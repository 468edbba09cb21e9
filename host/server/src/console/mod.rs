//! The operator console at `/console`: server-rendered HTML (maud) over the same use cases and
//! store queries as the JSON API, with the API's authorization (an admin credential sees every
//! tenant, a tenant credential only its own; admin actions need an admin credential).
//!
//! Every asset is compiled into the binary, the Content-Security-Policy allows nothing from
//! elsewhere, and every POST must carry the session's CSRF token (else 403).

mod dict;
mod health;
mod pages;
mod policies;
mod session;
mod transfers;
mod view;
mod webhooks;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use pix_app::AppError;
use pix_store::StoreError;

use crate::app::AppState;
use crate::error::ApiError;
pub use session::{Session, Viewer};

/// Nothing but this origin's own scripts, styles and forms; charts are inline SVG markup.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, nested under `/console` by [`crate::app::router`].
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .merge(policies::routes())
        .merge(transfers::routes())
        .merge(webhooks::routes())
        .merge(dict::routes())
        .merge(health::routes())
        .route("/assets/console.css", get(view::stylesheet))
        .route("/assets/console.js", get(view::script))
        .fallback(|| async { ConsoleError::NotFound("no console page at this address") })
        .layer(from_fn_with_state(state, guard))
}

/// Opens the session cookie, refuses a POST without its CSRF token, and adds the security headers.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let session = Session::from_jar(&state, &jar);
    let req = if req.method() == Method::GET || req.method() == Method::HEAD {
        req
    } else {
        match checked_csrf(&state, session.as_ref(), req).await {
            Ok(req) => req,
            Err(e) => return with_headers(e.into_response()),
        }
    };
    let mut req = req;
    if let Some(session) = session {
        req.extensions_mut().insert(session);
    }
    with_headers(next.run(req).await)
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The synchronizer-token check: the body's `csrf` field (URL-encoded or multipart) must equal
/// the session's. The body is read once here and handed on unchanged.
async fn checked_csrf(state: &AppState, session: Option<&Session>, req: Request) -> Result<Request, ConsoleError> {
    let forged = ConsoleError::Forbidden("the form is missing its CSRF token or it does not match this session");
    let Some(session) = session else { return Err(forged) };
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, state.config.server.body_limit_bytes)
        .await
        .map_err(|_| ConsoleError::BadRequest("the request body is too large".into()))?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let presented = if content_type.starts_with("application/x-www-form-urlencoded") {
        url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned())
    } else if let Ok(boundary) = multer::parse_boundary(content_type) {
        multipart_field(bytes.clone(), boundary, "csrf").await
    } else {
        None
    };
    match presented {
        Some(token) if session.csrf_matches(&token) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(forged),
    }
}

async fn multipart_field(bytes: Bytes, boundary: String, name: &str) -> Option<String> {
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

/// A signed-in operator: the session's token resolved as the API resolves bearer tokens.
/// Without one, pages redirect to the sign-in form.
pub struct Operator {
    pub viewer: Viewer,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let session = parts.extensions.get::<Session>().cloned();
        let Some(Session { token: Some(token), csrf, .. }) = session else {
            return Err(ConsoleError::SignIn);
        };
        let credential = state.store.credential_at(&token, state.clock.now()).await?;
        let viewer = credential.and_then(Viewer::from_credential).ok_or(ConsoleError::SignIn)?;
        Ok(Operator { viewer, csrf })
    }
}

/// Why a console request failed, shown as an HTML page with the matching status.
#[derive(Debug)]
pub enum ConsoleError {
    /// No session, or its credential no longer authenticates.
    SignIn,
    Forbidden(&'static str),
    NotFound(&'static str),
    BadRequest(String),
    /// An API error (the same code and message the JSON API would answer).
    Api(ApiError),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<AppError> for ConsoleError {
    fn from(e: AppError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ConsoleError::SignIn => return Redirect::to("/console/login").into_response(),
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, m.to_owned()),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, m.to_owned()),
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ConsoleError::Api(e) => {
                let status = e.0.code.status();
                (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), e.0.to_string())
            }
        };
        (status, view::error_page(status, &message)).into_response()
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;
