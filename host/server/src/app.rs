//! Application state and the router: every route, its auth, and the middleware stack.

use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::get;
use axum::{BoxError, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use pix_core::clock::Clock;
use pix_core::error::ErrorCode;
use pix_store::Store;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_scalar::{Scalar, Servable};

use crate::config::Config;
use crate::error::{ApiError, ensure_json_errors, panic_response};
use crate::{auth, idempotency, routes, telemetry};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: PrometheusHandle,
    pub integrations: Arc<crate::integrations::Integrations>,
    pub policies: Arc<crate::policies::PolicyRuntime>,
    /// The use cases, over the same store, clock, clients and policies.
    pub app: pix_app::App,
    /// The guarded client for addresses tenants choose (dynamic QR-code locations).
    pub outbound: Arc<crate::outbound::Outbound>,
    /// Requests per tenant (`server.tenant_rate_*`), checked after authentication.
    pub rate_limits: Arc<crate::rate_limit::TenantRateLimiter>,
}

impl AppState {
    /// The one way to assemble the state: the binary, the tests and the benches all use it.
    pub fn new(
        store: Store,
        config: Config,
        clock: Arc<dyn Clock>,
        integrations: Arc<crate::integrations::Integrations>,
        policies: Arc<crate::policies::PolicyRuntime>,
    ) -> AppState {
        integrations.record_calls(crate::upstream_calls::CallLog { store: store.clone(), clock: clock.clone() });
        let app = pix_app::App {
            store: store.clone(),
            clock: clock.clone(),
            upstreams: integrations.clone(),
            policies: policies.clone(),
            settings: Arc::new(config.transfers.settings()),
        };
        let outbound = crate::outbound::Outbound::new(
            &config.outbound,
            crate::qrcodes::FETCH_TIMEOUT,
            concat!("pix-host/", env!("CARGO_PKG_VERSION")),
        )
        // Building a rustls client without custom roots or certificates does not fail.
        .expect("the outbound HTTP client builds");
        let rate_limits = Arc::new(crate::rate_limit::TenantRateLimiter::new(
            config.server.tenant_rate_per_second,
            config.server.tenant_rate_burst,
        ));
        AppState {
            store,
            config: Arc::new(config),
            clock,
            metrics: telemetry::metrics_handle(),
            integrations,
            policies,
            app,
            outbound: Arc::new(outbound),
            rate_limits,
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "pix-host", description = "Pix indirect participant through BTG, with Midaz and CRM, and WebAssembly policies."),
    modifiers(&BearerAuth),
    components(schemas(crate::openapi::PixKeyText, crate::openapi::TaxIdText, crate::openapi::EndToEndIdText)),
    tags(
        (name = "Health", description = "Liveness, readiness and metrics"),
        (name = "Webhooks", description = "Where a tenant receives its events"),
        (name = "Admin", description = "Operator endpoints (admin credential)"),
        (name = "Inbound", description = "Events from BTG (HMAC-signed and/or mTLS)"),
        (name = "Policies", description = "Institution rules as WebAssembly components"),
        (name = "DICT", description = "Entries, key lookup and claims"),
        (name = "MED", description = "Fraud markers, infraction reports and refund requests"),
        (name = "DICT Reconciliation", description = "CID/VSync checks and repairs"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme(crate::openapi::TENANT_SCHEME, bearer());
        components.add_security_scheme(crate::openapi::ADMIN_SCHEME, bearer());
    }
}

/// Routes by who may call them; auth is layered on in [`router`].
struct Areas {
    public: OpenApiRouter<AppState>,
    /// Authenticated by signature or client certificate rather than a bearer token.
    inbound: OpenApiRouter<AppState>,
    tenant: OpenApiRouter<AppState>,
    admin: OpenApiRouter<AppState>,
}

fn areas() -> Areas {
    Areas {
        public: routes::health::routes().merge(crate::collections::location::routes()),
        inbound: OpenApiRouter::new()
            .routes(utoipa_axum::routes!(crate::inbound::receive_btg_event))
            .merge(crate::intra_psp::routes()),
        tenant: routes::webhook_endpoints::routes()
            .merge(crate::dict::routes())
            .merge(crate::qrcodes::routes())
            .merge(crate::collections::routes())
            .merge(crate::transfers::routes())
            .merge(crate::refunds::routes())
            .merge(crate::policies::quote::routes()),
        admin: routes::admin::routes()
            .merge(routes::tenant_identity::routes())
            .merge(routes::transfer_limits::routes())
            .merge(crate::webhooks::admin_routes())
            .merge(crate::policies::admin::routes())
            .merge(crate::transfers::admin_routes())
            .merge(crate::refunds::admin_routes())
            .merge(routes::credentials::routes()),
    }
}

/// The areas merged under one document, each operation annotated with its area's security
/// requirement and common failures (see [`crate::openapi`]).
fn documented(areas: Areas) -> OpenApiRouter<AppState> {
    use crate::openapi::{Area, document};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(document(areas.public, Area::Public))
        .merge(document(areas.inbound, Area::Inbound))
        .merge(document(areas.tenant, Area::Tenant))
        .merge(document(areas.admin, Area::Admin))
}

/// The OpenAPI document of every route (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented(areas()).split_for_parts().1
}

/// The BTG ingress alone, for the mTLS listener (its clients are verified by the handshake).
pub fn mtls_ingress_router(state: AppState) -> Router {
    let (router, _) = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(crate::inbound::receive_btg_event))
        .layer(axum::Extension(crate::inbound::Channel::MutualTls))
        .split_for_parts();
    with_edge_layers(router, &state.config).with_state(state)
}

/// Only `/health`, `/readyz` and `/metrics`: what a workers-only process exposes for probes.
pub fn health_router(state: AppState) -> Router {
    let (router, _) = routes::health::routes().split_for_parts();
    router.layer(from_fn(telemetry::track_http)).with_state(state)
}

pub fn router(state: AppState) -> Router {
    let Areas { public, inbound, tenant, admin } = areas();
    let inbound = inbound.layer(axum::Extension(crate::inbound::Channel::Plain));
    // route_layer: unmatched paths get a 404, not a 401.
    let tenant = tenant
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(state.clone(), auth::require_tenant));
    let admin = admin.route_layer(from_fn_with_state(state.clone(), auth::require_admin));
    let (api, doc) = documented(Areas { public, inbound, tenant, admin }).split_for_parts();
    let doc_json = serde_json::to_value(&doc).unwrap_or_default();
    let api = api
        .merge(Scalar::with_url("/docs", doc))
        .route("/openapi.json", get(move || async move { Json(doc_json) }))
        .nest("/console", crate::console::routes(state.clone()))
        .fallback(|| async { ApiError::new(ErrorCode::RouteNotFound, "no route matches this path") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept this method")
        });
    with_edge_layers(api, &state.config).with_state(state)
}

/// The middleware every request passes through, outermost first: request id, trace span,
/// metrics, JSON errors, panic guard, timeout, body limit, load shedding. Public so tests can
/// put the same stack around routes of their own.
pub fn with_edge_layers<S: Clone + Send + Sync + 'static>(router: Router<S>, config: &Config) -> Router<S> {
    router.layer(from_fn(telemetry::track_http)).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                // The route, not the path: paths carry Pix keys and CPFs (`/v1/dict/keys/{key}`),
                // and every event of the request repeats the span's fields.
                tracing::info_span!("http", request_id = %id, method = %req.method(),
                        route = %telemetry::route(req), tenant = tracing::field::Empty)
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(map_response(ensure_json_errors))
            .layer(CatchPanicLayer::custom(panic_response))
            // 504, so an exceeded budget is told apart from load shedding's 503.
            .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout()))
            .layer(DefaultBodyLimit::max(config.server.body_limit_bytes))
            // Excess load fails fast with 503 instead of queueing without bound.
            .layer(HandleErrorLayer::new(|_: BoxError| async { StatusCode::SERVICE_UNAVAILABLE }))
            .layer(LoadShedLayer::new())
            // Global: Router::layer clones the stack per route, and the clones share this.
            .layer(GlobalConcurrencyLimitLayer::new(config.server.max_concurrent_requests)),
    )
}
