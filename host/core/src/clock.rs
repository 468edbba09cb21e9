//! Time as an injected dependency, so expiry, backoff and claim windows are testable.

use std::sync::Mutex;

use chrono::{DateTime, Datelike, Duration, DurationRound, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

/// Brasília time, UTC−3 all year (Brazil has had no daylight saving time since 2019): the time
/// business rules run on (limits, fee tiers, charge due dates, DICT write windows).
pub fn brasilia(now: DateTime<Utc>) -> DateTime<FixedOffset> {
    now.with_timezone(&brasilia_offset())
}

/// Today in Brasília.
pub fn brasilia_date(now: DateTime<Utc>) -> NaiveDate {
    brasilia(now).date_naive()
}

/// The instant a Brasília day starts.
pub fn brasilia_day_start(date: NaiveDate) -> DateTime<Utc> {
    let midnight = brasilia_offset().from_local_datetime(&date.and_time(NaiveTime::MIN));
    midnight.single().expect("a fixed offset maps each local time to one instant").to_utc()
}

/// The instant the Brasília month of `now` started.
pub fn brasilia_month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = brasilia_date(now);
    brasilia_day_start(today - Duration::days(i64::from(today.day0())))
}

fn brasilia_offset() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).expect("UTC-3 is a valid offset")
}

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, truncated to microseconds (what PostgreSQL stores), so a value
    /// read back from either database equals the value written.
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that moves only when told to; for tests and the simulators.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(truncate_to_micros(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now = truncate_to_micros(*now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::microseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn brasilia_days_and_months_start_at_03_utc() {
        use chrono::TimeZone;
        let at = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
        assert_eq!(brasilia_date(at(2026, 3, 12, 2, 59)), NaiveDate::from_ymd_opt(2026, 3, 11).unwrap());
        assert_eq!(brasilia_date(at(2026, 3, 12, 3, 0)), NaiveDate::from_ymd_opt(2026, 3, 12).unwrap());
        assert_eq!(brasilia_day_start(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()), at(2026, 2, 28, 3, 0));
        // 02:00 UTC on 1 March is still 28 February in Brasília.
        assert_eq!(brasilia_month_start(at(2026, 3, 1, 2, 0)), at(2026, 2, 1, 3, 0));
        assert_eq!(brasilia_month_start(at(2026, 3, 1, 3, 0)), at(2026, 3, 1, 3, 0));
        assert_eq!(brasilia(at(2026, 3, 1, 3, 0)).format("%H:%M").to_string(), "00:00");
    }

    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T12:00:00.1234567Z").unwrap().to_utc();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000, "truncated to micros");
        assert_eq!(clock.now(), clock.now());
        clock.advance(Duration::seconds(90));
        assert_eq!((clock.now() - truncate_to_micros(start)).num_seconds(), 90);
    }
}
