//! Helpers for parsing JSON with serde, shared by the `logs-json` plugin and
//! the host's native JSON processor (its benchmark reference).

use crate::attributes::ValueText;
use serde::de::{DeserializeSeed, Deserializer, Error, Visitor};
use std::borrow::Cow;

/// Appends the text `serde_json::Value` prints for the number `f` (nothing
/// for infinities and NaN, which JSON cannot hold), by the formatter
/// serde_json's `Display` uses, without going through `fmt`. One rule for
/// the `logs-json` plugin and the native processor, so their attributes agree.
pub fn push_f64(out: &mut ValueText<'_>, f: f64) {
    if f.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(f));
    }
}

/// Deserializes a string borrowed from the input where the JSON text is the
/// string itself (no escapes), owned otherwise. `Cow<str>`'s own
/// `Deserialize` always allocates: serde borrows only for a visitor that asks
/// to, and an allocation per key was a tenth of a JSON log processor's work.
pub struct BorrowedStr;

impl<'de> DeserializeSeed<'de> for BorrowedStr {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for BorrowedStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_unless_the_string_has_escapes() {
        let mut de = serde_json::Deserializer::from_str(r#""plain""#);
        assert!(matches!(BorrowedStr.deserialize(&mut de).unwrap(), Cow::Borrowed("plain")));
        let mut de = serde_json::Deserializer::from_str(r#""a\"b""#);
        let escaped = BorrowedStr.deserialize(&mut de).unwrap();
        assert!(matches!(&escaped, Cow::Owned(s) if s == "a\"b"));
        let mut de = serde_json::Deserializer::from_str("1");
        assert!(BorrowedStr.deserialize(&mut de).is_err());
    }
}
