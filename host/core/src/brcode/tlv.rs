//! Generic EMV MPM data objects: `ID(2) LEN(2) VALUE`, with templates nesting one level more.
//!
//! Lengths and offsets count characters, not bytes. EMV defines the length as a number of
//! characters, and counting bytes would throw the reader off at the first accented merchant name.
//! Only the CRC works on bytes (the UTF-8 encoding), as pix-standards §4.4 says.

use std::fmt;
use std::fmt::Write as _;

use super::error::BrCodeError;

/// The largest value a two-digit length can announce.
pub const MAX_VALUE_LEN: usize = 99;

/// `ID(2)` + `LEN(2)`.
const HEADER_LEN: usize = 4;

/// Where a field sits: a root id (`59`) or a template sub-field (`26.01`). Errors carry it so a
/// client can tell which field of a long string is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagPath {
    /// The enclosing template's id; `None` at the root.
    pub parent: Option<u8>,
    pub id: u8,
}

impl TagPath {
    pub const fn root(id: u8) -> TagPath {
        TagPath { parent: None, id }
    }

    pub const fn nested(parent: u8, id: u8) -> TagPath {
        TagPath { parent: Some(parent), id }
    }

    /// The EMV / BR Code name of the field, for error messages. Sub-fields of templates 26-51 are
    /// named as in the Pix template, the only one this crate interprets.
    pub fn name(self) -> &'static str {
        match (self.parent, self.id) {
            (None, 0) => "Payload Format Indicator",
            (None, 1) => "Point of Initiation Method",
            (None, 2..=51) => "Merchant Account Information",
            (None, 52) => "Merchant Category Code",
            (None, 53) => "Transaction Currency",
            (None, 54) => "Transaction Amount",
            (None, 55..=57) => "Tip or Convenience Fee",
            (None, 58) => "Country Code",
            (None, 59) => "Merchant Name",
            (None, 60) => "Merchant City",
            (None, 61) => "Postal Code",
            (None, 62) => "Additional Data Field Template",
            (None, 63) => "CRC",
            (None, 64) => "Merchant Information Language Template",
            (None, 65..=79) => "RFU for EMVCo",
            (None, _) => "Unreserved Template",
            (Some(26..=51 | 80..=99), 0) => "Globally Unique Identifier",
            (Some(26..=51), 1) => "Pix key",
            (Some(26..=51), 2) => "additional information",
            (Some(26..=51), 3) => "FSS, the ISPB of the withdrawal or change facilitator",
            (Some(26..=51 | 80..=99), 25) => "location URL",
            (Some(62), 5) => "Reference Label (txid)",
            (Some(_), _) => "template sub-field",
        }
    }
}

/// `59`, `26.01`: the way the manuals and pix-standards name fields.
impl fmt::Display for TagPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parent {
            Some(parent) => write!(f, "{parent:02}.{:02}", self.id),
            None => write!(f, "{:02}", self.id),
        }
    }
}

/// One data object as read, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataObject<'a> {
    pub tag: TagPath,
    pub value: &'a str,
    /// Character offset of the object's id in the whole payload (nested objects too), so that
    /// errors point at the same place whatever the depth.
    pub offset: usize,
}

impl<'a> DataObject<'a> {
    /// Character offset of the first character of the value.
    pub fn value_offset(&self) -> usize {
        self.offset + HEADER_LEN
    }

    /// Reads the value as a template (26-51, 62, 80-99). Only the caller knows whether the id is
    /// a template, so nothing is parsed until asked.
    pub fn children(&self) -> Result<Vec<DataObject<'a>>, BrCodeError> {
        read_level(self.value, self.value_offset(), Some(self.tag.id))
    }
}

/// Reads the root data objects of a payload, rejecting malformed headers, truncation, zero
/// lengths and duplicate ids. Values are not interpreted.
pub fn read_data_objects(input: &str) -> Result<Vec<DataObject<'_>>, BrCodeError> {
    read_level(input, 0, None)
}

fn read_level(input: &str, base_offset: usize, parent: Option<u8>) -> Result<Vec<DataObject<'_>>, BrCodeError> {
    let mut objects = Vec::new();
    let mut seen = [false; MAX_VALUE_LEN + 1];
    let mut rest = input;
    let mut offset = base_offset;
    while !rest.is_empty() {
        let truncated = |tag, needed| BrCodeError::Truncated { offset, tag, needed, remaining: rest.chars().count() };
        let (id_text, after_id) = split_chars(rest, 2).ok_or_else(|| truncated(None, HEADER_LEN))?;
        let id = two_digits(id_text).ok_or_else(|| BrCodeError::NonNumericId { offset, found: id_text.to_owned() })?;
        let tag = TagPath { parent, id };
        let (len_text, after_len) = split_chars(after_id, 2).ok_or_else(|| truncated(Some(tag), HEADER_LEN))?;
        let len = two_digits(len_text).map(usize::from).ok_or_else(|| BrCodeError::NonNumericLength {
            tag,
            offset: offset + 2,
            found: len_text.to_owned(),
        })?;
        if len == 0 {
            return Err(BrCodeError::WrongLength { tag, min: 1, max: MAX_VALUE_LEN, found: 0 });
        }
        let (value, after_value) = split_chars(after_len, len).ok_or_else(|| truncated(Some(tag), HEADER_LEN + len))?;
        match seen.get_mut(usize::from(id)) {
            Some(true) => return Err(BrCodeError::DuplicateTag { tag, offset }),
            Some(flag) => *flag = true,
            None => {} // two digits are at most 99; kept total rather than indexed
        }
        objects.push(DataObject { tag, value, offset });
        offset += HEADER_LEN + len;
        rest = after_value;
    }
    Ok(objects)
}

/// Splits after `n` characters, or `None` when fewer remain.
fn split_chars(s: &str, n: usize) -> Option<(&str, &str)> {
    let at = match s.char_indices().nth(n) {
        Some((at, _)) => at,
        None if s.chars().count() == n => s.len(),
        None => return None,
    };
    Some((s.get(..at)?, s.get(at..)?))
}

/// Two ASCII digits (not any Unicode digit) as a number.
fn two_digits(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [tens, units] if tens.is_ascii_digit() && units.is_ascii_digit() => Some((tens - b'0') * 10 + (units - b'0')),
        _ => None,
    }
}

/// Appends one data object after checking what EMV requires of it: an id of two digits and a
/// value of 1 to 99 characters.
pub fn write_data_object(out: &mut String, tag: TagPath, value: &str) -> Result<(), BrCodeError> {
    if usize::from(tag.id) > MAX_VALUE_LEN {
        return Err(BrCodeError::InvalidValue { tag, reason: "ids are two digits, 00 to 99" });
    }
    let found = value.chars().count();
    if !(1..=MAX_VALUE_LEN).contains(&found) {
        return Err(BrCodeError::WrongLength { tag, min: 1, max: MAX_VALUE_LEN, found });
    }
    push(out, tag.id, value);
    Ok(())
}

/// The unchecked writer behind `encode`, whose inputs the model has already validated.
pub(crate) fn push(out: &mut String, id: u8, value: &str) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{id:02}{:02}{value}", value.chars().count());
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor), the BR Code
/// checksum of field 63.
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_chars_counts_characters_and_never_splits_one() {
        assert_eq!(split_chars("abcd", 2), Some(("ab", "cd")));
        assert_eq!(split_chars("ab", 2), Some(("ab", "")));
        assert_eq!(split_chars("a", 2), None);
        assert_eq!(split_chars("", 0), Some(("", "")));
        assert_eq!(split_chars("São", 2), Some(("Sã", "o")));
        assert_eq!(split_chars("ãã", 2), Some(("ãã", "")));
    }

    #[test]
    fn two_digits_accepts_ascii_digits_only() {
        assert_eq!(two_digits("00"), Some(0));
        assert_eq!(two_digits("99"), Some(99));
        assert_eq!(two_digits("9a"), None);
        assert_eq!(two_digits("٠١"), None);
        assert_eq!(two_digits("1"), None);
        assert_eq!(two_digits("+1"), None);
    }
}
