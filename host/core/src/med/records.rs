//! MED 1.0 records, infraction reports and refund requests: the enums the database, the BTG
//! client and the API share, and the rule that keeps a record from moving backwards.
//!
//! DICT drives both lifecycles (a report goes OPEN → ACKNOWLEDGED → CLOSED, or CANCELLED by its
//! reporter; a request goes OPEN → CLOSED | CANCELLED); what it reports arrives in any order and
//! may be redelivered, so a change is taken only when [`InfractionStatus::accepts`] or
//! [`RefundRequestStatus::accepts`] says it moves the record forward.

use crate::text_enum;

text_enum! {
    /// Where an infraction report is.
    pub enum InfractionStatus {
        Open = "OPEN",
        /// The counterparty has seen it and is analysing.
        Acknowledged = "ACKNOWLEDGED",
        /// The counterparty analysed it (`AGREED` or `DISAGREED`).
        Closed = "CLOSED",
        /// Withdrawn by the reporter (never for a report of a funds recovery).
        Cancelled = "CANCELLED",
    }
}

impl InfractionStatus {
    pub fn is_final(self) -> bool {
        matches!(self, InfractionStatus::Closed | InfractionStatus::Cancelled)
    }

    /// Whether a report at `self` may take DICT's `next`: the same status (a detail changed), or
    /// a later one; never out of a final status.
    pub fn accepts(self, next: InfractionStatus) -> bool {
        next == self || (!self.is_final() && (next.is_final() || next == InfractionStatus::Acknowledged))
    }
}

text_enum! {
    /// Our side of an infraction report.
    pub enum ReportRole {
        /// We filed it (the payer's participant).
        Reporter = "REPORTER",
        /// It was filed against one of our customers' received payments.
        Counterparty = "COUNTERPARTY",
    }
}

text_enum! {
    /// The counterparty's analysis of a report.
    pub enum AnalysisResult { Agreed = "AGREED", Disagreed = "DISAGREED" }
}

text_enum! {
    /// Where a MED refund request is.
    pub enum RefundRequestStatus {
        Open = "OPEN",
        /// The contested participant analysed it.
        Closed = "CLOSED",
        /// Withdrawn by the requesting participant (or with its funds recovery).
        Cancelled = "CANCELLED",
    }
}

impl RefundRequestStatus {
    pub fn is_final(self) -> bool {
        self != RefundRequestStatus::Open
    }

    /// Whether a request at `self` may take DICT's `next`: the same status, or a final one
    /// while OPEN.
    pub fn accepts(self, next: RefundRequestStatus) -> bool {
        next == self || !self.is_final()
    }
}

text_enum! {
    /// Our side of a refund request.
    pub enum RequestRole {
        /// We asked for the funds back.
        Requesting = "REQUESTING",
        /// The funds are asked of one of our customers.
        Contested = "CONTESTED",
    }
}

text_enum! {
    /// The contested participant's analysis of a refund request.
    pub enum RefundAnalysisResult {
        TotallyAccepted = "TOTALLY_ACCEPTED",
        PartiallyAccepted = "PARTIALLY_ACCEPTED",
        Rejected = "REJECTED",
    }
}

impl RefundAnalysisResult {
    pub fn is_accepted(self) -> bool {
        self != RefundAnalysisResult::Rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_moves_forward_only() {
        use InfractionStatus::*;
        for (from, to, ok) in [
            (Open, Acknowledged, true),
            (Open, Closed, true),
            (Open, Cancelled, true),
            (Acknowledged, Closed, true),
            (Acknowledged, Open, false),
            (Closed, Acknowledged, false),
            (Closed, Cancelled, false),
            (Cancelled, Open, false),
            (Closed, Closed, true),
        ] {
            assert_eq!(from.accepts(to), ok, "{from} → {to}");
        }
    }

    #[test]
    fn a_request_closes_once() {
        use RefundRequestStatus::*;
        for (from, to, ok) in [
            (Open, Closed, true),
            (Open, Cancelled, true),
            (Closed, Open, false),
            (Closed, Cancelled, false),
            (Cancelled, Closed, false),
            (Open, Open, true),
        ] {
            assert_eq!(from.accepts(to), ok, "{from} → {to}");
        }
    }
}
