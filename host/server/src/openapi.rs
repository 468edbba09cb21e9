//! Makes the OpenAPI document tell the truth about failures: every operation of an area gets the
//! security requirement its auth layer enforces and the error responses its middleware stack can
//! answer with (handlers document their own business errors; these are added only when absent).

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;

/// Who may call a group of routes, which decides what the layers in front of them can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Health, readiness and metrics: no credential.
    Public,
    /// BTG's events: an HMAC signature and/or a client certificate, no bearer token.
    Inbound,
    /// A tenant bearer token (`tenant_token`), plus the idempotency layer on writes.
    Tenant,
    /// An admin bearer token (`admin_token`).
    Admin,
}

/// The security scheme names declared in the document's components.
pub const TENANT_SCHEME: &str = "tenant_token";
pub const ADMIN_SCHEME: &str = "admin_token";

/// Adds `area`'s security requirement and common error responses to every operation of `router`.
pub fn document<S: Clone + Send + Sync + 'static>(mut router: OpenApiRouter<S>, area: Area) -> OpenApiRouter<S> {
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        for (is_read, operation) in operations(item) {
            annotate(operation, area, is_read);
        }
    }
    router
}

fn operations(item: &mut PathItem) -> Vec<(bool, &mut Operation)> {
    let PathItem { get, put, post, delete, options, head, patch, trace, .. } = item;
    [
        (true, get),
        (false, put),
        (false, post),
        (false, delete),
        (true, options),
        (true, head),
        (false, patch),
        (true, trace),
    ]
    .into_iter()
    .filter_map(|(read, op)| op.as_mut().map(|op| (read, op)))
    .collect()
}

fn annotate(op: &mut Operation, area: Area, is_read: bool) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_input = !params.is_empty() || op.request_body.is_some();
    let has_body = op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
    };
    match area {
        Area::Public => {}
        Area::Inbound => {
            add("400", "Malformed event");
            add("401", "Missing or invalid signature, stale timestamp, or no verified client certificate");
        }
        Area::Tenant | Area::Admin => {
            add("401", "Missing, malformed, unknown, expired or revoked bearer token (`PIX-0009`)");
            add(
                "403",
                if area == Area::Tenant {
                    "An admin token on a tenant route (`PIX-0010`)"
                } else {
                    "A tenant token on an admin route (`PIX-0010`)"
                },
            );
        }
    }
    if area == Area::Tenant {
        add("429", "Rate limit reached (`PIX-0017`, or `PIX-0116` for DICT anti-scan); see `Retry-After`");
        if !is_read {
            add("400", "Invalid `X-Idempotency` or `X-TTL` header");
            add("409", "A request with this `X-Idempotency` key is still in flight (`PIX-0018`)");
            add("422", "This `X-Idempotency` key was used for a different request (`IDEMPOTENCY_KEY_REUSE`)");
        }
    }
    if has_input {
        add("400", "Invalid path parameter, query, header or body (`PIX-0001`…`PIX-0008`)");
    }
    if has_path && matches!(area, Area::Tenant | Area::Admin) {
        add("404", "No such resource for this credential (another tenant's ids are not found)");
    }
    if has_body || (area == Area::Tenant && !is_read) {
        add("413", "Request body over `server.body_limit_bytes` (`PIX-0013`)");
    }
    if has_body {
        add("415", "Request body is not `application/json` (`PIX-0014`)");
    }
    add("500", "Unexpected error; logged, never detailed (`PIX-0000`)");
    add("503", "Overloaded: the request was shed (`PIX-0016`)");
    add("504", "The request exceeded `server.request_timeout_ms` (`PIX-0015`)");
    match area {
        Area::Tenant => op.security = Some(vec![SecurityRequirement::new(TENANT_SCHEME, Vec::<String>::new())]),
        Area::Admin => op.security = Some(vec![SecurityRequirement::new(ADMIN_SCHEME, Vec::<String>::new())]),
        Area::Public | Area::Inbound => {}
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorResponse"))))
            .build(),
    )
}
