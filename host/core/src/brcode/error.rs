//! Why a string is not an acceptable BR Code, or a model cannot be encoded.
//!
//! Every error names the field (`26.01`) and, when parsing, the character offset, so an API
//! client can show the user where a pasted code is broken. Messages never repeat Pix keys or
//! names; they quote at most the two to four characters of an id, length or CRC.

use std::fmt;

use super::tlv::TagPath;
use crate::money::MoneyError;
use crate::pix_key::PixKeyError;

/// Where a field has to sit among the root fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    First,
    Last,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::First => "first",
            Placement::Last => "last",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrCodeError {
    #[error("the BR Code is empty")]
    Empty,
    #[error("a BR Code has at most {max} characters, got {found}")]
    PayloadTooLong { max: usize, found: usize },
    #[error("the field id at offset {offset} must be two digits, found {found:?}")]
    NonNumericId { offset: usize, found: String },
    #[error("the length of field {tag} at offset {offset} must be two digits, found {found:?}")]
    NonNumericLength { tag: TagPath, offset: usize, found: String },
    #[error(
        "the BR Code is cut short: the data object{} at offset {offset} needs {needed} \
         characters, only {remaining} remain",
        tag_suffix(.tag)
    )]
    Truncated {
        offset: usize,
        /// `None` when even the id could not be read.
        tag: Option<TagPath>,
        /// Header plus value, in characters.
        needed: usize,
        remaining: usize,
    },
    #[error("field {tag} ({}) must be {} characters long, got {found}", .tag.name(), length_rule(.min, .max))]
    WrongLength { tag: TagPath, min: usize, max: usize, found: usize },
    #[error("field {tag} ({}) allows at most {max} characters, got {found}", .tag.name())]
    ValueTooLong { tag: TagPath, max: usize, found: usize },
    #[error("field {tag} ({}) appears more than once (again at offset {offset})", .tag.name())]
    DuplicateTag { tag: TagPath, offset: usize },
    #[error("field {tag} ({}) must be the {expected} field", .tag.name())]
    MisplacedTag { tag: TagPath, expected: Placement },
    #[error("the mandatory field {tag} ({}) is missing", .tag.name())]
    MissingTag { tag: TagPath },
    #[error("no merchant account template (fields 26 to 51) carries the Pix GUI br.gov.bcb.pix")]
    NotPix,
    #[error("the Payload Format Indicator (field 00) must be \"01\", got {found:?}")]
    WrongPayloadFormat { found: String },
    #[error("the CRC does not match: the payload computes to {expected:04X}, the code carries {found:?}")]
    CrcMismatch { expected: u16, found: String },
    #[error("field {tag} ({}) cannot contain {found:?}{}", .tag.name(), offset_suffix(.offset))]
    InvalidCharacter {
        tag: TagPath,
        /// Character offset in the parsed payload; `None` for a model being built.
        offset: Option<usize>,
        found: char,
    },
    #[error("field {tag} is not a valid Pix key: {source}")]
    InvalidKey { tag: TagPath, source: PixKeyError },
    #[error("field 54 (Transaction Amount) is not a valid amount: {source}")]
    InvalidAmount { source: MoneyError },
    #[error("field {tag} ({}) is invalid: {reason}", .tag.name())]
    InvalidValue { tag: TagPath, reason: &'static str },
}

fn tag_suffix(tag: &Option<TagPath>) -> String {
    tag.map(|tag| format!(" {tag}")).unwrap_or_default()
}

fn length_rule(min: &usize, max: &usize) -> String {
    if min == max { min.to_string() } else { format!("{min} to {max}") }
}

fn offset_suffix(offset: &Option<usize>) -> String {
    offset.map(|offset| format!(" (offset {offset})")).unwrap_or_default()
}
