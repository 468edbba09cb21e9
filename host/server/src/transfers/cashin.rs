//! BTG's `PIX_PAYMENT_INBOUND` events, over `pix_app::transfers::cashin`.

use pix_integrations::btg::BtgEvent;
use pix_store::inbound::InboundEvent;

use super::event_tenant;
use crate::app::AppState;
use crate::dict::decode_event;
use crate::inbound::InboundHandler;
use crate::worker::{JobError, JobFuture};

pub struct InboundPayments(pub AppState);

impl InboundHandler for InboundPayments {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::PaymentInbound(payment) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_PAYMENT_INBOUND event without a payment".into()));
            };
            let tenant = event_tenant(&self.0, event.tenant_id).await?;
            Ok(pix_app::transfers::cashin::receive(&self.0.app, &tenant, &payment).await?)
        })
    }
}
