//! Serde glue for the validated string newtypes of this crate.
//!
//! Every type serialises through `Display` and deserialises only from a JSON string, through its
//! `FromStr`. Failures are serde `invalid type` / `invalid value` errors (never `custom`), so the
//! HTTP layer can map them to a 400 like any other malformed field.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserializer, Serializer};

/// Whether a rejected value may be echoed in the error message.
///
/// Error messages end up in responses and often in logs, so personal data (CPF, CNPJ, Pix keys)
/// is never repeated back.
#[derive(Clone, Copy)]
pub(crate) enum Echo {
    Value,
    Redacted,
}

pub(crate) fn serialize<S: Serializer, T: fmt::Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

pub(crate) fn deserialize<'de, D, T>(d: D, expecting: &'static str, echo: Echo) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    d.deserialize_str(StrVisitor { expecting, echo, target: PhantomData })
}

struct StrVisitor<T> {
    expecting: &'static str,
    echo: Echo,
    target: PhantomData<T>,
}

impl<T> Visitor<'_> for StrVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(|err| {
            let unexpected = match self.echo {
                Echo::Value => Unexpected::Str(v),
                Echo::Redacted => Unexpected::Other("a redacted string"),
            };
            let expected = format!("{} ({err})", self.expecting);
            E::invalid_value(unexpected, &expected.as_str())
        })
    }
}
