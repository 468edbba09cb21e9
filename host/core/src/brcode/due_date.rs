//! What a due-date charge (`cobv`) asks on a given payment date: the creation request's
//! `valor{original, multa, juros, abatimento, desconto}` rules (API Pix `CobVRequest`, pix-standards
//! §5.3) turned into the `CobVPayloadValor` the location serves for `?DPP=` (§4.3, §5.6).
//!
//! Arithmetic is exact: every component is an integer fraction of the original's centavos,
//! rounded once, half up, to the centavo. Conventions the standard leaves open, chosen here and
//! documented in docs/qrcodes.md:
//! - percentages apply to the original amount;
//! - a month is 30 days and a year 365 days (simple interest), for calendar and business-day
//!   modalities alike; only how the days are counted differs;
//! - business days are Monday to Friday (no holiday calendar);
//! - a due date on a weekend rolls forward to Monday: paying then is not late, but days of interest
//!   still count from the written due date once the payment is late;
//! - late means after the (rolled) due date; the fine applies once, interest per day late;
//! - discounts apply on or before the written due date; "until date" discounts use the earliest
//!   listed date on or after the payment date;
//! - the abatement always applies;
//! - the charge can be paid up to `validadeAposVencimento` calendar days after the written due date.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::charge::DueDateValue;
use crate::money::Money;

/// API Pix `valorPerc`: `\d{1,10}\.\d{2}`, an amount in reais or a percentage depending on the
/// modality. Held as hundredths (centavos, or hundredths of a percent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    pub const fn from_hundredths(hundredths: u64) -> Rate {
        Rate(hundredths)
    }

    pub const fn hundredths(self) -> u64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const SHAPE: &str = "valorPerc is 1 to 10 digits, a point and 2 digits, such as \"2.00\"";
        let (units, cents) = s.split_once('.').ok_or(SHAPE)?;
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if units.is_empty() || units.len() > 10 || cents.len() != 2 || !digits(units) || !digits(cents) {
            return Err(SHAPE);
        }
        let units: u64 = units.parse().map_err(|_| SHAPE)?;
        let cents: u64 = cents.parse().map_err(|_| SHAPE)?;
        Ok(Rate(units * 100 + cents))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! modality {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u8", into = "u8")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl TryFrom<u8> for $name {
            type Error = String;

            fn try_from(value: u8) -> Result<Self, Self::Error> {
                match value {
                    $($code => Ok($name::$variant),)+
                    other => Err(format!("modalidade {other} is not one of {}", [$($code.to_string()),+].join(", "))),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                match value {
                    $($name::$variant => $code),+
                }
            }
        }
    };
}

modality!(
    /// `multa.modalidade` and `abatimento.modalidade`.
    AmountOrPercent {
        /// 1: `valorPerc` is an amount.
        Amount = 1,
        /// 2: `valorPerc` is a percentage of the original.
        Percent = 2,
    }
);

modality!(
    /// `juros.modalidade`.
    InterestModality {
        AmountPerCalendarDay = 1,
        PercentPerDayCalendarDays = 2,
        PercentPerMonthCalendarDays = 3,
        PercentPerYearCalendarDays = 4,
        AmountPerBusinessDay = 5,
        PercentPerDayBusinessDays = 6,
        PercentPerMonthBusinessDays = 7,
        PercentPerYearBusinessDays = 8,
    }
);

modality!(
    /// `desconto.modalidade`.
    DiscountModality {
        /// 1: a fixed amount until each listed date (`descontoDataFixa`).
        AmountUntilDate = 1,
        /// 2: a percentage until each listed date.
        PercentUntilDate = 2,
        /// 3: an amount per calendar day paid before the due date.
        AmountPerCalendarDayEarly = 3,
        /// 4: an amount per business day paid before the due date.
        AmountPerBusinessDayEarly = 4,
        /// 5: a percentage per calendar day paid before the due date.
        PercentPerCalendarDayEarly = 5,
        /// 6: a percentage per business day paid before the due date.
        PercentPerBusinessDayEarly = 6,
    }
);

/// `{modalidade, valorPerc}`: the shape of `multa`, `juros` and `abatimento`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule<M> {
    #[serde(rename = "modalidade")]
    pub modality: M,
    #[serde(rename = "valorPerc")]
    pub value: Rate,
}

/// `descontoDataFixa` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedRate {
    #[serde(rename = "data")]
    pub date: NaiveDate,
    #[serde(rename = "valorPerc")]
    pub value: Rate,
}

/// `desconto`: dated values for modalities 1 and 2, one `valorPerc` for 3 to 6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountRule {
    #[serde(rename = "modalidade")]
    pub modality: DiscountModality,
    #[serde(rename = "descontoDataFixa", default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_dates: Vec<DatedRate>,
    #[serde(rename = "valorPerc", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Rate>,
}

/// A cobv's `valor` as created: the original and the rules that adjust it by payment date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueDateRules {
    pub original: Money,
    #[serde(rename = "multa", default, skip_serializing_if = "Option::is_none")]
    pub fine: Option<Rule<AmountOrPercent>>,
    #[serde(rename = "juros", default, skip_serializing_if = "Option::is_none")]
    pub interest: Option<Rule<InterestModality>>,
    #[serde(rename = "abatimento", default, skip_serializing_if = "Option::is_none")]
    pub abatement: Option<Rule<AmountOrPercent>>,
    #[serde(rename = "desconto", default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<DiscountRule>,
}

/// Why a due-date charge has no amount for a payment date, or its rules are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DueDateError {
    #[error("the charge could be paid until {last_payable_date}; {payment_date} is too late")]
    PastValidity { last_payable_date: NaiveDate, payment_date: NaiveDate },
    #[error("the discount and abatement leave nothing to pay ({total})")]
    NothingToPay { total: Money },
    #[error("invalid charge rules: {0}")]
    InvalidRules(&'static str),
    #[error("the amount overflows")]
    Overflow,
}

const DAYS_PER_MONTH: i128 = 30;
const DAYS_PER_YEAR: i128 = 365;
/// Hundredths of a percent per unit.
const PERCENT_SCALE: i128 = 10_000;
/// 100.00 as a `Rate`.
const HUNDRED_PERCENT: u64 = 10_000;

impl DueDateRules {
    /// Checks what serde cannot: a positive original, percentages of at most 100 where more
    /// makes no sense, and the discount's data matching its modality.
    pub fn validate(&self) -> Result<(), DueDateError> {
        if !self.original.is_positive() {
            return Err(DueDateError::InvalidRules("original must be greater than zero"));
        }
        let at_most_100 = |rule: &Option<Rule<AmountOrPercent>>| {
            rule.is_none_or(|r| r.modality == AmountOrPercent::Amount || r.value.0 <= HUNDRED_PERCENT)
        };
        if !at_most_100(&self.fine) || !at_most_100(&self.abatement) {
            return Err(DueDateError::InvalidRules("a percentage of the original is at most 100.00"));
        }
        if let Some(discount) = &self.discount {
            match discount.modality {
                DiscountModality::AmountUntilDate | DiscountModality::PercentUntilDate => {
                    if discount.fixed_dates.is_empty() || discount.value.is_some() {
                        return Err(DueDateError::InvalidRules(
                            "discount modalities 1 and 2 take descontoDataFixa and no valorPerc",
                        ));
                    }
                    if discount.modality == DiscountModality::PercentUntilDate
                        && discount.fixed_dates.iter().any(|d| d.value.0 > HUNDRED_PERCENT)
                    {
                        return Err(DueDateError::InvalidRules("a percentage of the original is at most 100.00"));
                    }
                }
                _ => {
                    if discount.value.is_none() || !discount.fixed_dates.is_empty() {
                        return Err(DueDateError::InvalidRules(
                            "discount modalities 3 to 6 take valorPerc and no descontoDataFixa",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The amounts due on `payment_date` for a charge due on `due_date` and payable until
    /// `days_valid_after_due` calendar days later. Components that do not apply are `None`.
    pub fn value_on(
        &self,
        due_date: NaiveDate,
        days_valid_after_due: u32,
        payment_date: NaiveDate,
    ) -> Result<DueDateValue, DueDateError> {
        self.validate()?;
        let last_payable_date = last_payable_date(due_date, days_valid_after_due).ok_or(DueDateError::Overflow)?;
        if payment_date > last_payable_date {
            return Err(DueDateError::PastValidity { last_payable_date, payment_date });
        }
        let original = i128::from(self.original.centavos());
        let late = payment_date > roll_to_business_day(due_date);
        let fine = match self.fine {
            Some(rule) if late => amount_or_percent(rule, original),
            _ => 0,
        };
        let interest = match self.interest {
            Some(rule) if late => interest(rule, original, due_date, payment_date),
            _ => 0,
        };
        let discount = match &self.discount {
            Some(rule) if payment_date <= due_date => discount(rule, original, due_date, payment_date),
            _ => 0,
        };
        let abatement = self.abatement.map(|rule| amount_or_percent(rule, original)).unwrap_or(0);
        let total = original + fine + interest - abatement - discount;
        let money =
            |centavos: i128| i64::try_from(centavos).map(Money::from_centavos).map_err(|_| DueDateError::Overflow);
        let total = money(total)?;
        if !total.is_positive() {
            return Err(DueDateError::NothingToPay { total });
        }
        let component = |centavos: i128| if centavos == 0 { Ok(None) } else { money(centavos).map(Some) };
        Ok(DueDateValue {
            original: Some(self.original),
            fine: component(fine)?,
            interest: component(interest)?,
            abatement: component(abatement)?,
            discount: component(discount)?,
            total,
        })
    }
}

impl DueDateValue {
    /// Whether `final = original + multa + juros − abatimento − desconto` (pix-standards §5.8), to
    /// the centavo. Without `original` there is nothing to check against.
    pub fn components_add_up(&self) -> bool {
        let Some(original) = self.original else { return true };
        let c = |m: Option<Money>| i128::from(m.map(Money::centavos).unwrap_or(0));
        let expected =
            i128::from(original.centavos()) + c(self.fine) + c(self.interest) - c(self.abatement) - c(self.discount);
        expected == i128::from(self.total.centavos())
    }
}

/// The last date a charge due on `due_date` may be paid: `validadeAposVencimento` calendar days
/// later.
pub fn last_payable_date(due_date: NaiveDate, days_valid_after_due: u32) -> Option<NaiveDate> {
    due_date.checked_add_days(chrono::Days::new(u64::from(days_valid_after_due)))
}

/// Monday to Friday; there is no holiday calendar.
pub fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The date itself, or the Monday after a weekend.
pub fn roll_to_business_day(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    while !is_business_day(day) {
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    day
}

/// Business days `d` with `after < d <= until`.
fn business_days_between(after: NaiveDate, until: NaiveDate) -> i128 {
    after.iter_days().skip(1).take_while(|d| *d <= until).filter(|d| is_business_day(*d)).count() as i128
}

fn calendar_days_between(after: NaiveDate, until: NaiveDate) -> i128 {
    i128::from((until - after).num_days().max(0))
}

/// `numerator / denominator`, both non-negative, rounded half up.
fn round_div(numerator: i128, denominator: i128) -> i128 {
    (numerator + denominator / 2) / denominator
}

fn rate(value: Rate) -> i128 {
    i128::from(value.0)
}

fn amount_or_percent(rule: Rule<AmountOrPercent>, original: i128) -> i128 {
    match rule.modality {
        AmountOrPercent::Amount => rate(rule.value),
        AmountOrPercent::Percent => round_div(original * rate(rule.value), PERCENT_SCALE),
    }
}

fn interest(rule: Rule<InterestModality>, original: i128, due_date: NaiveDate, payment_date: NaiveDate) -> i128 {
    use InterestModality::*;
    let days = match rule.modality {
        AmountPerCalendarDay | PercentPerDayCalendarDays | PercentPerMonthCalendarDays | PercentPerYearCalendarDays => {
            calendar_days_between(due_date, payment_date)
        }
        _ => business_days_between(due_date, payment_date),
    };
    let value = rate(rule.value);
    match rule.modality {
        AmountPerCalendarDay | AmountPerBusinessDay => value * days,
        PercentPerDayCalendarDays | PercentPerDayBusinessDays => round_div(original * value * days, PERCENT_SCALE),
        PercentPerMonthCalendarDays | PercentPerMonthBusinessDays => {
            round_div(original * value * days, PERCENT_SCALE * DAYS_PER_MONTH)
        }
        PercentPerYearCalendarDays | PercentPerYearBusinessDays => {
            round_div(original * value * days, PERCENT_SCALE * DAYS_PER_YEAR)
        }
    }
}

fn discount(rule: &DiscountRule, original: i128, due_date: NaiveDate, payment_date: NaiveDate) -> i128 {
    use DiscountModality::*;
    let dated =
        || rule.fixed_dates.iter().filter(|d| d.date >= payment_date).min_by_key(|d| d.date).map(|d| rate(d.value));
    let per_day = rule.value.map(rate).unwrap_or(0);
    match rule.modality {
        AmountUntilDate => dated().unwrap_or(0),
        PercentUntilDate => dated().map(|p| round_div(original * p, PERCENT_SCALE)).unwrap_or(0),
        AmountPerCalendarDayEarly => per_day * calendar_days_between(payment_date, due_date),
        AmountPerBusinessDayEarly => per_day * business_days_between(payment_date, due_date),
        PercentPerCalendarDayEarly => {
            round_div(original * per_day * calendar_days_between(payment_date, due_date), PERCENT_SCALE)
        }
        PercentPerBusinessDayEarly => {
            round_div(original * per_day * business_days_between(payment_date, due_date), PERCENT_SCALE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rate(s: &str) -> Rate {
        s.parse().unwrap()
    }

    fn money(c: i64) -> Money {
        Money::from_centavos(c)
    }

    /// R$ 1,000.00 due Wednesday 2026-03-11, 2% fine, 1% a month interest (calendar days).
    fn late_rules() -> DueDateRules {
        DueDateRules {
            original: money(100_000),
            fine: Some(Rule { modality: AmountOrPercent::Percent, value: rate("2.00") }),
            interest: Some(Rule { modality: InterestModality::PercentPerMonthCalendarDays, value: rate("1.00") }),
            abatement: None,
            discount: None,
        }
    }

    const DUE: (i32, u32, u32) = (2026, 3, 11);

    fn due() -> NaiveDate {
        date(DUE.0, DUE.1, DUE.2)
    }

    #[test]
    fn rates_parse_strictly() {
        assert_eq!(rate("2.00").hundredths(), 200);
        assert_eq!(rate("0.33").to_string(), "0.33");
        for bad in ["2", "2.0", "2.000", ".50", "-1.00", "1,00", "12345678901.00", " 1.00"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn on_or_before_the_due_date_the_original_is_due() {
        let value = late_rules().value_on(due(), 30, due()).unwrap();
        assert_eq!(value.total, money(100_000));
        assert_eq!((value.fine, value.interest), (None, None));
        assert!(value.components_add_up());
    }

    #[test]
    fn late_payment_adds_the_fine_once_and_interest_per_calendar_day() {
        // 10 days late: fine 20.00; interest 1000.00 × 1% / 30 × 10 = 3.333… → 3.33.
        let value = late_rules().value_on(due(), 30, date(2026, 3, 21)).unwrap();
        assert_eq!(value.fine, Some(money(2_000)));
        assert_eq!(value.interest, Some(money(333)));
        assert_eq!(value.total, money(102_333));
        assert!(value.components_add_up());
        // 20 days: 6.666… rounds half up to 6.67.
        let value = late_rules().value_on(due(), 30, date(2026, 3, 31)).unwrap();
        assert_eq!(value.interest, Some(money(667)));
        assert_eq!(value.total, money(102_667));
    }

    #[test]
    fn yearly_and_daily_and_amount_interest() {
        let mut rules = late_rules();
        rules.fine = None;
        rules.original = money(36_500);
        rules.interest = Some(Rule { modality: InterestModality::PercentPerYearCalendarDays, value: rate("10.00") });
        // 365.00 × 10% / 365 × 3 = 0.30
        assert_eq!(rules.value_on(due(), 30, date(2026, 3, 14)).unwrap().interest, Some(money(30)));
        rules.interest = Some(Rule { modality: InterestModality::PercentPerDayCalendarDays, value: rate("0.10") });
        // 365.00 × 0.1% × 3 = 1.095 → 1.10 (half up)
        assert_eq!(rules.value_on(due(), 30, date(2026, 3, 14)).unwrap().interest, Some(money(110)));
        rules.interest = Some(Rule { modality: InterestModality::AmountPerCalendarDay, value: rate("0.50") });
        assert_eq!(rules.value_on(due(), 30, date(2026, 3, 14)).unwrap().interest, Some(money(150)));
    }

    #[test]
    fn business_day_interest_skips_weekends() {
        let mut rules = late_rules();
        rules.fine = None;
        rules.interest = Some(Rule { modality: InterestModality::AmountPerBusinessDay, value: rate("1.00") });
        // Due Wed 11th, paid Mon 16th: Thu, Fri, Mon = 3 business days.
        assert_eq!(rules.value_on(due(), 30, date(2026, 3, 16)).unwrap().interest, Some(money(300)));
    }

    #[test]
    fn a_weekend_due_date_rolls_to_monday_but_late_interest_counts_from_it() {
        let saturday = date(2026, 3, 14);
        let monday = date(2026, 3, 16);
        let value = late_rules().value_on(saturday, 30, monday).unwrap();
        assert_eq!(value.total, money(100_000), "Monday is still on time");
        // Tuesday is late: fine, and 3 calendar days of interest from Saturday (1.00).
        let value = late_rules().value_on(saturday, 30, date(2026, 3, 17)).unwrap();
        assert_eq!(value.fine, Some(money(2_000)));
        assert_eq!(value.interest, Some(money(100)));
    }

    #[test]
    fn past_the_validity_window_nothing_is_payable() {
        assert!(late_rules().value_on(due(), 5, date(2026, 3, 16)).is_ok());
        assert_eq!(
            late_rules().value_on(due(), 5, date(2026, 3, 17)),
            Err(DueDateError::PastValidity { last_payable_date: date(2026, 3, 16), payment_date: date(2026, 3, 17) })
        );
    }

    #[test]
    fn dated_discounts_pick_the_earliest_date_not_passed() {
        let rules = DueDateRules {
            original: money(50_000),
            fine: None,
            interest: None,
            abatement: None,
            discount: Some(DiscountRule {
                modality: DiscountModality::AmountUntilDate,
                fixed_dates: vec![
                    DatedRate { date: date(2026, 3, 5), value: rate("20.00") },
                    DatedRate { date: date(2026, 3, 1), value: rate("30.00") },
                ],
                value: None,
            }),
        };
        assert_eq!(rules.value_on(due(), 0, date(2026, 2, 20)).unwrap().discount, Some(money(3_000)));
        assert_eq!(rules.value_on(due(), 0, date(2026, 3, 1)).unwrap().discount, Some(money(3_000)));
        assert_eq!(rules.value_on(due(), 0, date(2026, 3, 2)).unwrap().total, money(48_000));
        assert_eq!(rules.value_on(due(), 0, date(2026, 3, 6)).unwrap().discount, None);
        let mut percent = rules;
        if let Some(d) = percent.discount.as_mut() {
            d.modality = DiscountModality::PercentUntilDate;
            d.fixed_dates = vec![DatedRate { date: date(2026, 3, 10), value: rate("2.50") }];
        }
        // 500.00 × 2.5% = 12.50
        assert_eq!(percent.value_on(due(), 0, date(2026, 3, 10)).unwrap().total, money(48_750));
    }

    #[test]
    fn early_payment_discounts_per_day() {
        let mut rules = DueDateRules {
            original: money(10_001),
            fine: None,
            interest: None,
            abatement: Some(Rule { modality: AmountOrPercent::Amount, value: rate("1.00") }),
            discount: Some(DiscountRule {
                modality: DiscountModality::PercentPerCalendarDayEarly,
                fixed_dates: vec![],
                value: Some(rate("0.25")),
            }),
        };
        // 4 days early: 100.01 × 0.25% × 4 = 1.0001 → 1.00; abatement 1.00.
        let value = rules.value_on(due(), 0, date(2026, 3, 7)).unwrap();
        assert_eq!((value.discount, value.abatement, value.total), (Some(money(100)), Some(money(100)), money(9_801)));
        assert!(value.components_add_up());
        // Business days from Sat 7th to Wed 11th: Mon, Tue, Wed.
        if let Some(d) = rules.discount.as_mut() {
            d.modality = DiscountModality::AmountPerBusinessDayEarly;
            d.value = Some(rate("0.40"));
        }
        assert_eq!(rules.value_on(due(), 0, date(2026, 3, 7)).unwrap().discount, Some(money(120)));
        // On the due date, no anticipation.
        assert_eq!(rules.value_on(due(), 0, due()).unwrap().discount, None);
    }

    #[test]
    fn rules_are_validated() {
        let mut rules = late_rules();
        rules.fine = Some(Rule { modality: AmountOrPercent::Percent, value: rate("100.01") });
        assert!(matches!(rules.validate(), Err(DueDateError::InvalidRules(_))));
        let mut rules = late_rules();
        rules.discount =
            Some(DiscountRule { modality: DiscountModality::AmountUntilDate, fixed_dates: vec![], value: None });
        assert!(matches!(rules.validate(), Err(DueDateError::InvalidRules(_))));
        let mut rules = late_rules();
        rules.abatement = Some(Rule { modality: AmountOrPercent::Amount, value: rate("1000.00") });
        assert_eq!(rules.value_on(due(), 0, due()), Err(DueDateError::NothingToPay { total: Money::ZERO }));
    }

    #[test]
    fn rules_use_the_api_pix_wire_shape() {
        let json = r#"{"original":"123.45","multa":{"modalidade":2,"valorPerc":"15.00"},
            "juros":{"modalidade":2,"valorPerc":"2.00"},
            "desconto":{"modalidade":1,"descontoDataFixa":[{"data":"2020-11-30","valorPerc":"30.00"}]}}"#;
        let rules: DueDateRules = serde_json::from_str(json).unwrap();
        assert_eq!(rules.interest.map(|r| r.modality), Some(InterestModality::PercentPerDayCalendarDays));
        let back = serde_json::to_value(&rules).unwrap();
        assert_eq!(back["desconto"]["descontoDataFixa"][0]["valorPerc"], "30.00");
        assert!(
            serde_json::from_str::<DueDateRules>(r#"{"original":"1.00","juros":{"modalidade":9,"valorPerc":"1.00"}}"#)
                .unwrap_err()
                .to_string()
                .contains("modalidade 9")
        );
    }

    #[test]
    fn inconsistent_served_values_are_detected() {
        let value = DueDateValue {
            original: Some(money(12_345)),
            fine: Some(money(1_500)),
            interest: Some(money(200)),
            abatement: None,
            discount: None,
            total: money(14_045),
        };
        assert!(value.components_add_up());
        assert!(!DueDateValue { total: money(14_046), ..value }.components_add_up());
    }
}
