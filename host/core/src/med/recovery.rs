//! MED 2.0 funds recovery as a typed state machine: the enums the database, the domain, the BTG
//! client and the API share, and the moves a recovery may make.
//!
//! DICT drives the lifecycle (CREATED → TRACKED → AWAITING_ANALYSIS → ANALYSED → REFUNDING →
//! COMPLETED, or CANCELLED before REFUNDING); we only ask for two moves, cancel and refund. What
//! DICT reports is merged with [`FundsRecoveryStatus::merge`], which never moves a recovery
//! backwards, so redelivered or reordered events cannot undo progress.

use std::fmt;

use crate::text_enum;

text_enum! {
    /// Where a funds recovery is (DICT's `FundsRecoveryStatus`).
    pub enum FundsRecoveryStatus {
        /// Opened; DICT is building the tracking graph.
        Created = "CREATED",
        /// The tracking graph is built.
        Tracked = "TRACKED",
        /// The receiving participants were notified and block; their analysis is awaited.
        AwaitingAnalysis = "AWAITING_ANALYSIS",
        /// Every infraction report is closed: the refund may be requested.
        Analysed = "ANALYSED",
        /// Refund requests are open.
        Refunding = "REFUNDING",
        Completed = "COMPLETED",
        Cancelled = "CANCELLED",
    }
}

text_enum! {
    /// Why the funds are contested (DICT's `SituationType`; `UNKNOWN` is accepted for recoveries).
    pub enum SituationType {
        Scam = "SCAM",
        AccountTakeover = "ACCOUNT_TAKEOVER",
        Coercion = "COERCION",
        FraudulentAccess = "FRAUDULENT_ACCESS",
        /// Needs report details.
        Other = "OTHER",
        Unknown = "UNKNOWN",
    }
}

text_enum! {
    /// DICT's lifecycle notifications of a funds recovery (`FUNDS_RECOVERY_EVENTS`).
    pub enum FundsRecoveryEventType {
        Analysed = "FUNDS_RECOVERY_ANALYSED",
        Completed = "FUNDS_RECOVERY_COMPLETED",
        InformationUpdated = "FUNDS_RECOVERY_INFORMATION_UPDATED",
        Cancelled = "FUNDS_RECOVERY_CANCELLED",
    }
}

/// A move the recovery's status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} funds recovery cannot be {action}")]
pub struct FundsRecoveryTransitionError {
    pub from: FundsRecoveryStatus,
    pub action: &'static str,
}

impl FundsRecoveryStatus {
    /// Progress along the lifecycle. CANCELLED ranks with COMPLETED: both are final.
    pub fn rank(self) -> u8 {
        match self {
            FundsRecoveryStatus::Created => 0,
            FundsRecoveryStatus::Tracked => 1,
            FundsRecoveryStatus::AwaitingAnalysis => 2,
            FundsRecoveryStatus::Analysed => 3,
            FundsRecoveryStatus::Refunding => 4,
            FundsRecoveryStatus::Completed | FundsRecoveryStatus::Cancelled => 5,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, FundsRecoveryStatus::Completed | FundsRecoveryStatus::Cancelled)
    }

    /// Whether the recovery may still be cancelled: only before the refund starts.
    pub fn is_cancellable(self) -> bool {
        self.rank() < FundsRecoveryStatus::Refunding.rank()
    }

    /// The status after DICT reported `reported`, or `None` when it says nothing new: a report
    /// behind the current status (a reordered or redelivered event), anything after a final
    /// status, and a cancellation once the refund started (DICT refuses those) are ignored.
    pub fn merge(self, reported: FundsRecoveryStatus) -> Option<FundsRecoveryStatus> {
        if self.is_final() || reported == self {
            return None;
        }
        match reported {
            FundsRecoveryStatus::Cancelled => self.is_cancellable().then_some(reported),
            _ => (reported.rank() > self.rank()).then_some(reported),
        }
    }

    /// Asking DICT to cancel: allowed before REFUNDING.
    pub fn cancel(self) -> Result<FundsRecoveryStatus, FundsRecoveryTransitionError> {
        if self.is_cancellable() {
            Ok(FundsRecoveryStatus::Cancelled)
        } else {
            Err(FundsRecoveryTransitionError { from: self, action: "cancelled (only before REFUNDING)" })
        }
    }

    /// Asking DICT to open the refund requests: only from ANALYSED.
    pub fn request_refund(self) -> Result<FundsRecoveryStatus, FundsRecoveryTransitionError> {
        if self == FundsRecoveryStatus::Analysed {
            Ok(FundsRecoveryStatus::Refunding)
        } else {
            Err(FundsRecoveryTransitionError { from: self, action: "refunded (only from ANALYSED)" })
        }
    }

    /// Changing the situation type or the contact: while the recovery is not final.
    pub fn update_information(self) -> Result<FundsRecoveryStatus, FundsRecoveryTransitionError> {
        if self.is_final() {
            Err(FundsRecoveryTransitionError { from: self, action: "updated (it is final)" })
        } else {
            Ok(self)
        }
    }
}

/// The longest `hopWindow` accepted: funds older than Resolução BCB 103's 90-day return window
/// cannot be returned anyway.
pub const MAX_HOP_WINDOW_SECS: i64 = 90 * 24 * 3600;

/// A positive ISO 8601 duration (`PnDTnHnMnS`, `PnW`; no years or months, whose length varies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopWindow {
    seconds: i64,
}

/// Why a `hopWindow` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopWindowError {
    #[error("must be an ISO 8601 duration such as PT24H or P1DT12H (days, hours, minutes, seconds)")]
    Malformed,
    #[error("must be positive")]
    NotPositive,
    #[error("must be at most P90D")]
    TooLong,
}

impl HopWindow {
    pub fn parse(text: &str) -> Result<HopWindow, HopWindowError> {
        let rest = text.strip_prefix('P').ok_or(HopWindowError::Malformed)?;
        if rest.is_empty() {
            return Err(HopWindowError::Malformed);
        }
        let (date, time) = match rest.split_once('T') {
            Some((_, "")) => return Err(HopWindowError::Malformed),
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        let mut seconds: i64 = 0;
        let mut add = |part: &str, units: &[(char, i64)]| -> Result<(), HopWindowError> {
            let mut number = String::new();
            let mut allowed = units;
            for c in part.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                    continue;
                }
                // Each designator at most once, in order.
                let at = allowed.iter().position(|(d, _)| *d == c).ok_or(HopWindowError::Malformed)?;
                let value: i64 = number.parse().map_err(|_| HopWindowError::Malformed)?;
                let value = value.checked_mul(allowed[at].1).ok_or(HopWindowError::TooLong)?;
                seconds = seconds.checked_add(value).ok_or(HopWindowError::TooLong)?;
                number.clear();
                allowed = &allowed[at + 1..];
            }
            if number.is_empty() { Ok(()) } else { Err(HopWindowError::Malformed) }
        };
        add(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
        if let Some(t) = time {
            add(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
        }
        if seconds <= 0 {
            return Err(HopWindowError::NotPositive);
        }
        if seconds > MAX_HOP_WINDOW_SECS {
            return Err(HopWindowError::TooLong);
        }
        Ok(HopWindow { seconds })
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }
}

impl fmt::Display for HopWindow {
    /// Canonical form: `P{d}DT{h}H{m}M{s}S` without the zero parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, rest) = (self.seconds / 86_400, self.seconds % 86_400);
        let (h, m, s) = (rest / 3_600, rest % 3_600 / 60, rest % 60);
        f.write_str("P")?;
        if d > 0 {
            write!(f, "{d}D")?;
        }
        if rest > 0 {
            f.write_str("T")?;
            for (n, unit) in [(h, 'H'), (m, 'M'), (s, 'S')] {
                if n > 0 {
                    write!(f, "{n}{unit}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FundsRecoveryStatus as S;
    use super::*;

    #[test]
    fn merge_only_moves_forward() {
        assert_eq!(S::Created.merge(S::Tracked), Some(S::Tracked));
        assert_eq!(S::Created.merge(S::Analysed), Some(S::Analysed), "skipped steps are fine");
        assert_eq!(S::Analysed.merge(S::Tracked), None, "an older TRACKED does not move it back");
        assert_eq!(S::Analysed.merge(S::Analysed), None, "a redelivery says nothing new");
        assert_eq!(S::Refunding.merge(S::Completed), Some(S::Completed));
        assert_eq!(S::Completed.merge(S::Cancelled), None);
        assert_eq!(S::Cancelled.merge(S::Completed), None);
        assert_eq!(S::Cancelled.merge(S::Tracked), None);
    }

    #[test]
    fn cancellation_is_merged_only_before_refunding() {
        for from in [S::Created, S::Tracked, S::AwaitingAnalysis, S::Analysed] {
            assert_eq!(from.merge(S::Cancelled), Some(S::Cancelled), "{from}");
            assert_eq!(from.cancel(), Ok(S::Cancelled), "{from}");
        }
        for from in [S::Refunding, S::Completed, S::Cancelled] {
            assert_eq!(from.merge(S::Cancelled), None, "{from}");
            assert!(from.cancel().is_err(), "{from}");
        }
    }

    #[test]
    fn refund_only_from_analysed() {
        assert_eq!(S::Analysed.request_refund(), Ok(S::Refunding));
        for from in S::ALL.iter().copied().filter(|s| *s != S::Analysed) {
            let e = from.request_refund().unwrap_err();
            assert_eq!(e.from, from);
        }
    }

    #[test]
    fn information_updates_stop_at_a_final_status() {
        assert_eq!(S::Refunding.update_information(), Ok(S::Refunding));
        assert!(S::Completed.update_information().is_err());
        assert!(S::Cancelled.update_information().is_err());
    }

    #[test]
    fn statuses_and_situations_round_trip_their_text() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>(), Ok(*s));
        }
        assert!("REFUNDED".parse::<S>().is_err());
        assert_eq!("UNKNOWN".parse::<SituationType>(), Ok(SituationType::Unknown));
        assert!("BURGLARY".parse::<SituationType>().is_err());
        assert_eq!(
            "FUNDS_RECOVERY_INFORMATION_UPDATED".parse::<FundsRecoveryEventType>(),
            Ok(FundsRecoveryEventType::InformationUpdated)
        );
    }

    #[test]
    fn hop_windows() {
        let ok = |t: &str| HopWindow::parse(t).map(|w| (w.seconds(), w.to_string()));
        assert_eq!(ok("PT24H"), Ok((86_400, "P1D".into())));
        assert_eq!(ok("P1DT12H30M"), Ok((131_400, "P1DT12H30M".into())));
        assert_eq!(ok("PT90S"), Ok((90, "PT1M30S".into())));
        assert_eq!(ok("P2W"), Ok((14 * 86_400, "P14D".into())));
        assert_eq!(ok("P90D"), Ok((MAX_HOP_WINDOW_SECS, "P90D".into())));
        assert_eq!(HopWindow::parse("P91D"), Err(HopWindowError::TooLong));
        assert_eq!(HopWindow::parse("PT0S"), Err(HopWindowError::NotPositive));
        for bad in ["", "P", "PT", "24H", "PT24", "P1Y", "P1M", "PTH", "PT1H1H", "PT1M1H", "P-1D", "P1.5D"] {
            assert_eq!(HopWindow::parse(bad), Err(HopWindowError::Malformed), "{bad}");
        }
        assert_eq!(HopWindow::parse("P99999999999999999999D"), Err(HopWindowError::Malformed));
    }
}
