//! pix-host's use cases. Each one reads top-down: load → typed transition (`pix_core::transfer`)
//! → policy decisions → ledger/BTG effects → save. They reach the world only through [`App`]'s
//! ports (store, upstream clients, policies, clock), so the HTTP routes, the job handlers and the
//! BTG webhook handlers of `pix-server` are thin adapters over the same functions.

pub mod collections;
pub mod error;
pub mod intra_psp;
pub mod med;
pub mod ports;
pub mod refunds;
pub mod reports;
pub mod transfers;

use std::sync::Arc;

use pix_core::clock::Clock;
use pix_store::Store;

pub use error::{AppError, AppResult};
pub use ports::{CustomerAccount, Decided, Policies, TenantClients, Upstreams};
pub use transfers::TransferSettings;

/// Everything a use case can reach. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub upstreams: Arc<dyn Upstreams>,
    pub policies: Arc<dyn Policies>,
    pub settings: Arc<TransferSettings>,
}
