//! Makes the OpenAPI document tell the truth about failures: every operation of an area gets the
//! security requirement its auth layer enforces and the error responses its middleware stack can
//! answer with (handlers document their own business errors; these are added only when absent).

use pix_core::transfer::TextEnum;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, KnownFormat, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::idempotency::{KEY_HEADER, TTL_HEADER};

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
    for param in op.parameters.iter_mut().flatten() {
        never_null(param);
    }
    if let Some(body) = &mut op.request_body {
        body.content.values_mut().for_each(|content| without_null_alternative(&mut content.schema));
    }
    if area == Area::Tenant && !is_read {
        idempotency_headers(op);
    }
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

/// A parameter is text on the wire, never JSON `null`: an `Option<T>` one is an optional `T`.
fn never_null(param: &mut Parameter) {
    without_null_alternative(&mut param.schema);
    let Some(RefOr::T(Schema::Object(schema))) = &mut param.schema else { return };
    if let SchemaType::Array(types) = &schema.schema_type {
        let types: Vec<Type> = types.iter().filter(|t| **t != Type::Null).cloned().collect();
        schema.schema_type = match <[Type; 1]>::try_from(types) {
            Ok([only]) => SchemaType::Type(only),
            Err(types) => SchemaType::Array(types),
        };
    }
}

/// `oneOf: [null, T]` (an `Option<T>`) as `T`. An optional body may be left out, which
/// `required: false` already says; a JSON `null` body is another thing, which the handlers
/// refuse, so it is not offered; nor is `null` for a parameter.
fn without_null_alternative(schema: &mut Option<RefOr<Schema>>) {
    let Some(RefOr::T(Schema::OneOf(one_of))) = schema else { return };
    let is_null =
        |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    if let [a, b] = one_of.items.as_slice() {
        let kept = if is_null(a) {
            b
        } else if is_null(b) {
            a
        } else {
            return;
        };
        *schema = Some(kept.clone());
    }
}

/// The idempotency layer reads these on every tenant write, so every tenant write declares them
/// once, as that layer checks them (replacing any declaration of a handler's own).
fn idempotency_headers(op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    params.retain(|p| {
        !(p.parameter_in == ParameterIn::Header
            && (p.name.eq_ignore_ascii_case(KEY_HEADER) || p.name.eq_ignore_ascii_case(TTL_HEADER)))
    });
    let header = |name: &str, description: &str, schema: ObjectBuilder| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(schema))
            .build()
    };
    params.push(header(
        "X-Idempotency",
        "Idempotency key (1-255 visible ASCII characters): the same request again answers the first \
         response with `X-Idempotency-Replayed: true`; another request with this key is refused (422)",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[!-~]+$")),
    ));
    params.push(header(
        "X-TTL",
        "How long the idempotency record is kept, in seconds (clamped to the configured bounds)",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(i64::MAX)),
    ));
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorResponse"))))
            .build(),
    )
}

/// The schema of a text that must be one of `T`'s values: `#[param(schema_with = one_of::<T>)]`
/// documents a parameter the handler parses as `T` without repeating its values.
pub fn one_of<T: TextEnum>() -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(T::TEXTS.iter().copied())).build()
}

/// A Pix key's shape (CPF, CNPJ, e-mail, +phone or EVP; `pix_core::pix_key`): check digits are
/// beyond a pattern, so a key of the right shape may still be refused.
pub fn pix_key() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(pix_core::pix_key::MAX_KEY_LEN))
        .pattern(Some(concat!(
            r"^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2}|\+[1-9][0-9]{1,14}",
            r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            r"|[A-Za-z0-9.!#$'*+/=?^_`{|}~-]+@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
            r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$"
        )))
        .examples(["11144477735", "ana.pereira@example.com", "+5511987654321"])
        .build()
}

/// A CPF (11 digits) or CNPJ (12 letters or digits and 2 digits); check digits apply as well.
pub fn tax_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2})$"))
        .examples(["11144477735", "11222333000181"])
        .build()
}

/// Schemas for tuple-style parameters (`("key" = inline(PixKeyText), Path)`), which cannot name
/// a schema function.
macro_rules! parameter_schema {
    ($($(#[$doc:meta])* $name:ident => $schema:ident;)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema().into()
            }
        }

        impl ToSchema for $name {}
    )+};
}

parameter_schema! {
    /// [`pix_key`].
    PixKeyText => pix_key;
    /// [`tax_id`].
    TaxIdText => tax_id;
    /// [`end_to_end_id`].
    EndToEndIdText => end_to_end_id;
}

/// A payment's EndToEndId (`pix_core::ids::EndToEndId`): `E`, the ISPB, the minute it was made
/// (yyyyMMddHHmm, a real one) and 11 letters or digits. The pattern offers days 01–28 only, so
/// that every value it describes is a real date.
pub fn end_to_end_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(concat!(
            r"^E[0-9]{8}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])([01][0-9]|2[0-3])[0-5][0-9]",
            r"[A-Za-z0-9]{11}$"
        )))
        .examples(["E12345678202601011200abcdefghijk"])
        .build()
}

/// A positive amount in reais (`pix_core::money::Amount`): digits, and optionally a point and
/// one or two more, above zero.
pub fn amount() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^(0*[1-9][0-9]{0,14}(\.[0-9]{1,2})?|0+\.([1-9][0-9]?|0[1-9]))$"))
        .examples(["100.00"])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parameter declared `in: path` that its path does not name is never sent by a client,
    /// and the query parameter the handler really reads goes undocumented.
    #[test]
    fn path_parameters_are_named_by_their_path() {
        let mut doc = crate::app::openapi();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (_, op) in operations(item) {
                for p in op.parameters.iter().flatten().filter(|p| p.parameter_in == ParameterIn::Path) {
                    assert!(
                        path.contains(&format!("{{{}}}", p.name)),
                        "{path}: path parameter {} is not in it",
                        p.name
                    );
                }
            }
        }
    }

    /// Parameters are text and optional bodies are left out: neither is ever offered as `null`.
    #[test]
    fn no_parameter_or_body_is_null() {
        let doc = serde_json::to_value(crate::app::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    assert!(!p["schema"].to_string().contains("null"), "{method} {path}: {p}");
                }
                for content in op["requestBody"]["content"].as_object().into_iter().flat_map(|c| c.values()) {
                    assert!(content["schema"]["oneOf"].is_null(), "{method} {path}: a null body");
                }
            }
        }
    }

    /// Every `$ref` names a schema of the document's components.
    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(crate::app::openapi()).unwrap();
        for reference in doc.to_string().split("\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(doc["components"]["schemas"][name].is_object(), "unresolved $ref to {name}");
        }
    }

    /// Every tenant write declares the idempotency headers its layer reads, once.
    #[test]
    fn tenant_writes_declare_idempotency_headers_once() {
        let doc = serde_json::to_value(crate::app::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let tenant = op["security"].to_string().contains(TENANT_SCHEME);
                let names: Vec<&str> =
                    op["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
                let keys = names.iter().filter(|n| n.eq_ignore_ascii_case(KEY_HEADER)).count();
                let expected = usize::from(tenant && method != "get");
                assert_eq!(keys, expected, "{method} {path}: X-Idempotency declared {keys} times");
            }
        }
    }
}
