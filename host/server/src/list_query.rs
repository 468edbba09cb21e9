//! Checks of list query values (`limit`, `offset`, `page`, `sort_order`, enums, timestamps),
//! each refused with the list's own catalogued code and the parameter's name. Values arrive as
//! text so that a malformed one is reported this way rather than as a generic extractor error.

use std::ops::RangeInclusive;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::transfer::UnknownValue;

use crate::error::{ApiError, ApiResult};

/// The code a list answers malformed parameters with (e.g. `PIX-0404` for transfers).
#[derive(Debug, Clone, Copy)]
pub struct ListQuery(pub ErrorCode);

impl ListQuery {
    pub fn bad(self, message: impl Into<String>) -> ApiError {
        ApiError::new(self.0, message)
    }

    pub fn number(self, name: &str, value: Option<&str>, default: i64, range: RangeInclusive<i64>) -> ApiResult<i64> {
        let n = match value {
            None => default,
            Some(v) => v.parse().map_err(|_| self.bad(format!("{name} must be a number")))?,
        };
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(self.bad(format!("{name} must be between {} and {}", range.start(), range.end())))
        }
    }

    pub fn instant(self, name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
        value
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.to_utc())
                    .map_err(|_| self.bad(format!("{name} must be an RFC 3339 timestamp")))
            })
            .transpose()
    }

    /// `true` or `false`.
    pub fn boolean(self, name: &str, value: Option<&str>) -> ApiResult<Option<bool>> {
        match value {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(self.bad(format!("{name} must be true or false"))),
        }
    }

    /// `sort_order`: `asc`, or `desc` (the default).
    pub fn descending(self, value: Option<&str>) -> ApiResult<bool> {
        match value {
            None | Some("desc") => Ok(true),
            Some("asc") => Ok(false),
            Some(_) => Err(self.bad("sort_order must be asc or desc")),
        }
    }

    /// An enumerated value (a status, a type), listing the accepted ones when refused.
    pub fn one_of<T: FromStr<Err = UnknownValue>>(self, name: &str, value: Option<&str>) -> ApiResult<Option<T>> {
        value
            .map(|v| {
                v.parse::<T>().map_err(|e| self.bad(format!("{name} {v:?} must be one of {}", e.expected.join(", "))))
            })
            .transpose()
    }
}
