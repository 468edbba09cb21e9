//! pix-host's HTTP server, workers and command line. The request pipeline reads top-down:
//! request id → trace → JSON errors → panic guard → timeout → body limit → load shedding →
//! auth (`auth`, then the per-tenant rate limit) → idempotency (`idempotency`) → handler (`routes`) → response.

pub mod account;
pub mod app;
pub mod auth;
pub mod cli;
pub mod collections;
pub mod config;
pub mod console;
pub mod dict;
pub mod embedded;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod inbound;
pub mod integrations;
pub mod intra_psp;
pub mod list_query;
pub mod mtls;
pub mod openapi;
pub mod outbound;
pub mod policies;
pub mod policy_cli;
pub mod qrcodes;
pub mod rate_limit;
pub mod refunds;
pub mod reports;
pub mod routes;
pub mod telemetry;
pub mod transfers;
pub mod transport;
pub mod upstream_calls;
pub mod webhooks;
pub mod worker;
