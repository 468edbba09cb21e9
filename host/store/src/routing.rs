//! Which of a tenant's endpoints receive an event of a flow and entity.
//!
//! Endpoints are grouped by how specifically they match: entity endpoints (flow and entity),
//! then flow endpoints (flow only), then default endpoints (neither). The most specific group
//! that has any endpoint decides, whether or not its endpoints are enabled:
//! - its enabled endpoints each get the event (one delivery each);
//! - if all of them are disabled, delivery of that event is switched off: it does not fall back
//!   to a less specific group. A disabled entity endpoint is thus the per-entity enable flag of
//!   the Lerian plugin (`WEBHOOK_<FLOW>_<ENTITY>_ENABLED=false`), a disabled flow endpoint the
//!   per-flow one;
//! - if no group has an endpoint, the event is not routed (kept and counted, not an error).

use crate::deliveries::RouteCandidate;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Deliver(Vec<Uuid>),
    Disabled,
    NotRouted,
}

pub fn route(candidates: &[RouteCandidate], flow: &str, entity: &str) -> Route {
    let entity_level =
        |c: &RouteCandidate| c.flow_type.as_deref() == Some(flow) && c.entity_type.as_deref() == Some(entity);
    let flow_level = |c: &RouteCandidate| c.flow_type.as_deref() == Some(flow) && c.entity_type.is_none();
    let default_level = |c: &RouteCandidate| c.flow_type.is_none() && c.entity_type.is_none();
    let levels: [&dyn Fn(&RouteCandidate) -> bool; 3] = [&entity_level, &flow_level, &default_level];
    for level in levels {
        let matching: Vec<&RouteCandidate> = candidates.iter().filter(|c| level(c)).collect();
        if matching.is_empty() {
            continue;
        }
        let enabled: Vec<Uuid> = matching.iter().filter(|c| c.enabled).map(|c| c.id).collect();
        return if enabled.is_empty() { Route::Disabled } else { Route::Deliver(enabled) };
    }
    Route::NotRouted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(n: u128, flow: Option<&str>, entity: Option<&str>, enabled: bool) -> RouteCandidate {
        RouteCandidate {
            id: Uuid::from_u128(n),
            flow_type: flow.map(str::to_owned),
            entity_type: entity.map(str::to_owned),
            enabled,
        }
    }

    #[test]
    fn the_most_specific_group_wins() {
        let all = [
            endpoint(1, None, None, true),
            endpoint(2, Some("TRANSFER"), None, true),
            endpoint(3, Some("TRANSFER"), Some("CASHOUT"), true),
            endpoint(4, Some("TRANSFER"), Some("CASHOUT"), true),
            endpoint(5, Some("DICT"), Some("CLAIM"), true),
        ];
        let ids = |ns: &[u128]| Route::Deliver(ns.iter().map(|n| Uuid::from_u128(*n)).collect());
        assert_eq!(route(&all, "TRANSFER", "CASHOUT"), ids(&[3, 4]));
        assert_eq!(route(&all, "TRANSFER", "CASHIN"), ids(&[2]));
        assert_eq!(route(&all, "DICT", "REFUND"), ids(&[1]));
        assert_eq!(route(&all, "DICT", "CLAIM"), ids(&[5]));
        assert_eq!(route(&all[1..], "REFUND", "CASHIN"), Route::NotRouted);
        assert_eq!(route(&[], "DICT", "CLAIM"), Route::NotRouted);
    }

    #[test]
    fn a_disabled_specific_group_switches_delivery_off_without_falling_back() {
        let all = [
            endpoint(1, None, None, true),
            endpoint(2, Some("TRANSFER"), None, false),
            endpoint(3, Some("DICT"), Some("CLAIM"), false),
        ];
        assert_eq!(route(&all, "DICT", "CLAIM"), Route::Disabled);
        assert_eq!(route(&all, "TRANSFER", "CASHOUT"), Route::Disabled);
        assert_eq!(route(&all, "DICT", "REFUND"), Route::Deliver(vec![Uuid::from_u128(1)]));
        let mixed = [endpoint(1, None, None, false), endpoint(2, None, None, true)];
        assert_eq!(route(&mixed, "DICT", "CLAIM"), Route::Deliver(vec![Uuid::from_u128(2)]), "one of two disabled");
    }
}
