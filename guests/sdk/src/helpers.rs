//! Small helpers so that rules read like the tariff table they implement.

use crate::{
    CashinDecision, CashinDenial, Centavos, FeeCharge, FeeDecision, LocalTime, Param, ParamValue, PolicyError,
};

/// `reais(10)` = 1000 centavos.
pub const fn reais(r: i64) -> Centavos {
    r * 100
}

/// Minute of day for `hh:mm`: `hm(20, 0)` = 1200.
pub const fn hm(hours: u16, minutes: u16) -> u16 {
    hours * 60 + minutes
}

/// How a percentage is rounded to whole centavos.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Towards zero.
    Down,
    /// Away from zero.
    Up,
    /// Half away from zero (0.5 centavo becomes 1).
    HalfUp,
}

/// `amount × bps / 10 000`, rounded as asked; saturates instead of overflowing.
pub fn apply_bps(amount: Centavos, bps: i64, rounding: Rounding) -> Centavos {
    let product = i128::from(amount) * i128::from(bps);
    let (q, r) = (product / 10_000, product % 10_000);
    let rounded = match rounding {
        Rounding::Down => q,
        Rounding::Up if r != 0 => q + product.signum(),
        Rounding::Up => q,
        Rounding::HalfUp if r.abs() * 2 >= 10_000 => q + product.signum(),
        Rounding::HalfUp => q,
    };
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

/// The tenant's parameters for this policy. Every lookup has a default, so parameters are optional.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<Param>);

impl Params {
    /// Wrap the parameters received from the host.
    pub fn new(params: Vec<Param>) -> Self {
        Self(params)
    }

    /// Integer parameter `name`, or `default` when absent or not an integer.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.0
            .iter()
            .find_map(|p| match &p.value {
                ParamValue::Int(v) if p.name == name => Some(*v),
                _ => None,
            })
            .unwrap_or(default)
    }

    /// These parameters plus `name` = `value` unless the tenant already set `name`: a policy's
    /// own default for a parameter that a shared rule reads.
    pub fn with_default_int(mut self, name: &str, value: i64) -> Self {
        if !self.0.iter().any(|p| p.name == name) {
            self.0.push(Param { name: name.into(), value: ParamValue::Int(value) });
        }
        self
    }

    /// Text parameter `name`, or `default` when absent or not text.
    pub fn text<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.0
            .iter()
            .find_map(|p| match &p.value {
                ParamValue::Text(v) if p.name == name => Some(v.as_str()),
                _ => None,
            })
            .unwrap_or(default)
    }
}

impl LocalTime {
    /// True when the time is in `[from, to)`, minutes of day; wraps past midnight when
    /// `from > to` (20:00–06:00 is `within(hm(20, 0), hm(6, 0))`).
    pub fn within(&self, from: u16, to: u16) -> bool {
        let t = self.minute_of_day;
        if from <= to { t >= from && t < to } else { t >= from || t < to }
    }
}

impl FeeDecision {
    /// No fee.
    pub fn free(label: &str) -> Self {
        Self { fee: 0, fee_account: String::new(), charge: FeeCharge::OnTop, label: label.into() }
    }

    /// Fee added on top of the amount (the payer pays).
    pub fn on_top(fee: Centavos, fee_account: &str, label: &str) -> Self {
        Self { fee, fee_account: fee_account.into(), charge: FeeCharge::OnTop, label: label.into() }
    }

    /// Fee deducted from the amount (the payee receives less).
    pub fn deducted(fee: Centavos, fee_account: &str, label: &str) -> Self {
        Self { fee, fee_account: fee_account.into(), charge: FeeCharge::Deducted, label: label.into() }
    }
}

impl CashinDecision {
    /// Deny with a business code, a pacs.002 reason code and a short message.
    pub fn deny(code: &str, spi_reason: &str, message: &str) -> Self {
        Self::Deny(CashinDenial { code: code.into(), spi_reason: spi_reason.into(), message: message.into() })
    }
}

impl PolicyError {
    /// A guest-side error: the host applies the kind's fail-safe.
    pub fn new(code: &str, message: &str) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Weekday;

    #[test]
    fn bps_rounding() {
        assert_eq!(apply_bps(10_050, 99, Rounding::Down), 99);
        assert_eq!(apply_bps(10_050, 99, Rounding::Up), 100);
        assert_eq!(apply_bps(10_050, 99, Rounding::HalfUp), 99); // 99.495
        assert_eq!(apply_bps(10_051, 99, Rounding::HalfUp), 100); // 99.5049
        assert_eq!(apply_bps(i64::MAX, 10_000, Rounding::Up), i64::MAX);
    }

    #[test]
    fn night_window_wraps() {
        let at = |m| LocalTime { minute_of_day: m, weekday: Weekday::Monday };
        assert!(at(hm(20, 0)).within(hm(20, 0), hm(6, 0)));
        assert!(at(hm(5, 59)).within(hm(20, 0), hm(6, 0)));
        assert!(!at(hm(6, 0)).within(hm(20, 0), hm(6, 0)));
        assert!(at(hm(9, 0)).within(hm(8, 0), hm(18, 0)));
    }
}
