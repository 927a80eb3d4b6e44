//! One JSON body to flattened fields, straight from the bytes into
//! `(key, value)` pairs without building a `serde_json::Value` tree first
//! (this is the plugin's hot path).

use crate::config::JsonConfig;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use wasmon_sdk::json::BorrowedStr;

/// A scalar value picked out for the timestamp: kept typed, so `auto` can
/// tell seconds from milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i128),
    Float(f64),
}

/// An integer as JSON gives it: serde_json reads every integer as an `i64`
/// or a `u64`, and formatting those is several times cheaper than an `i128`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Integer {
    Signed(i64),
    Unsigned(u64),
}

impl Integer {
    fn wide(self) -> i128 {
        match self {
            Integer::Signed(i) => i.into(),
            Integer::Unsigned(u) => u.into(),
        }
    }

    fn to_text(self) -> String {
        match self {
            Integer::Signed(i) => i.to_string(),
            Integer::Unsigned(u) => u.to_string(),
        }
    }
}

/// What one body gave.
#[derive(Debug, Default, PartialEq)]
pub struct Fields<'b> {
    /// Flattened attributes in body order (duplicates possible; later wins).
    /// Borrowed from the body where the JSON text is the value itself (no
    /// escapes, not a number): most keys and string values, which are then
    /// copied once, into the record's attributes.
    pub pairs: Vec<(Cow<'b, str>, Cow<'b, str>)>,
    pub message: Option<String>,
    pub timestamp: Option<Scalar>,
    pub level: Option<String>,
}

#[derive(Debug, PartialEq)]
pub enum Outcome<'b> {
    Parsed(Fields<'b>),
    /// Not a JSON object at all (plain text, an array, a number).
    NotObject,
    /// Starts like an object but is not valid JSON; serde's message says where.
    Invalid(String),
}

/// Parse `body` under `cfg`. All or nothing: a body that breaks off halfway
/// gives no fields.
pub fn parse<'b>(body: &'b [u8], cfg: &JsonConfig) -> Outcome<'b> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    if body.get(start) != Some(&b'{') {
        return Outcome::NotObject;
    }
    let mut fields = Fields { pairs: Vec::with_capacity(16), ..Default::default() };
    let body = &body[start..];
    let seed = ObjectSeed { cfg, path: "", depth: cfg.max_depth.max(1), out: &mut fields };
    // One UTF-8 check of the whole body, then a parser that trusts it: the
    // byte parser checks every string on its own, ~20 short calls per line,
    // which was a tenth of this function's time in wasm. A body that is not
    // UTF-8 goes to the byte parser, whose error says where.
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => whole_object(serde_json::Deserializer::from_str(text), seed),
        Err(_) => whole_object(serde_json::Deserializer::from_slice(body), seed),
    };
    match parsed {
        Ok(()) => Outcome::Parsed(fields),
        Err(e) => Outcome::Invalid(format!("invalid JSON: {e}")),
    }
}

/// The object `seed` visits, and nothing after it but whitespace.
fn whole_object<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    seed: ObjectSeed<'_, 'de>,
) -> serde_json::Result<()> {
    seed.deserialize(&mut de)?;
    de.end()
}

/// Visits one object whose keys sit under `path` (empty at the top).
struct ObjectSeed<'a, 'de> {
    cfg: &'a JsonConfig,
    path: &'a str,
    depth: usize,
    out: &'a mut Fields<'de>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Special {
    None,
    Message,
    Timestamp,
    Level,
}

impl<'de> Visitor<'de> for ObjectSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let cfg = self.cfg;
        while let Some(k) = map.next_key_seed(BorrowedStr)? {
            let path: Cow<'_, str> = if self.path.is_empty() {
                k
            } else {
                let mut p = String::with_capacity(self.path.len() + cfg.separator.len() + k.len());
                p.push_str(self.path);
                p.push_str(&cfg.separator);
                p.push_str(&k);
                Cow::Owned(p)
            };
            let special = if cfg.message_key.as_deref() == Some(&*path) && self.out.message.is_none() {
                Special::Message
            } else if cfg.timestamp_key.as_deref() == Some(&*path) && self.out.timestamp.is_none() {
                Special::Timestamp
            } else if cfg.level_key.as_deref() == Some(&*path) && self.out.level.is_none() {
                Special::Level
            } else {
                Special::None
            };
            let leaf = map.next_value_seed(ValueSeed { cfg, path: &path, depth: self.depth, out: self.out })?;
            let Some(leaf) = leaf else { continue }; // an object, flattened already
            match (special, leaf) {
                (Special::Message, Leaf::Str(s)) => self.out.message = Some(s.into_owned()),
                (Special::Level, Leaf::Str(s)) => self.out.level = Some(s.into_owned()),
                (Special::Level, Leaf::Int(i)) => self.out.level = Some(i.to_text()),
                (Special::Timestamp, Leaf::Str(s)) => self.out.timestamp = Some(Scalar::Text(s.into_owned())),
                (Special::Timestamp, Leaf::Int(i)) => self.out.timestamp = Some(Scalar::Int(i.wide())),
                (Special::Timestamp, Leaf::Float(f)) => self.out.timestamp = Some(Scalar::Float(f)),
                (_, leaf) => {
                    let key = if cfg.prefix.is_empty() {
                        path
                    } else {
                        let mut key = String::with_capacity(cfg.prefix.len() + path.len());
                        key.push_str(&cfg.prefix);
                        key.push_str(&path);
                        Cow::Owned(key)
                    };
                    self.out.pairs.push((key, leaf.into_text()));
                }
            }
        }
        Ok(())
    }
}

/// A value that did not flatten into pairs itself.
enum Leaf<'de> {
    Str(Cow<'de, str>),
    Int(Integer),
    Float(f64),
    /// `true`, `false`, `null` (as ""), arrays and too-deep objects as JSON text.
    Other(String),
}

impl<'de> Leaf<'de> {
    fn into_text(self) -> Cow<'de, str> {
        match self {
            Leaf::Str(s) => s,
            Leaf::Other(s) => Cow::Owned(s),
            Leaf::Int(i) => Cow::Owned(i.to_text()),
            // The text `serde_json::Value` prints, as the host's native JSON processor does.
            Leaf::Float(f) => Cow::Owned(serde_json::Number::from_f64(f).map(|n| n.to_string()).unwrap_or_default()),
        }
    }
}

struct ValueSeed<'a, 'de> {
    cfg: &'a JsonConfig,
    path: &'a str,
    depth: usize,
    out: &'a mut Fields<'de>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, 'de> {
    /// `None`: an object flattened into `out`.
    type Value = Option<Leaf<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, 'de> {
    type Value = Option<Leaf<'de>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Str(Cow::Owned(v))))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Other(if v { "true" } else { "false" }.into())))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Int(Integer::Signed(v))))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Int(Integer::Unsigned(v))))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Float(v)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some(Leaf::Other(String::new())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(Leaf::Other(v.to_string())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if self.depth <= 1 {
            let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            return Ok(Some(Leaf::Other(v.to_string())));
        }
        let nested = ObjectSeed { cfg: self.cfg, path: self.path, depth: self.depth - 1, out: self.out };
        nested.visit_map(map)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed<'b>(body: &'b str, cfg: &JsonConfig) -> Fields<'b> {
        match parse(body.as_bytes(), cfg) {
            Outcome::Parsed(f) => f,
            other => panic!("{body}: {other:?}"),
        }
    }

    fn pairs(f: &Fields) -> Vec<String> {
        f.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn nested_keys_flatten_with_the_separator_up_to_max_depth() {
        let cfg = JsonConfig { separator: "_".into(), max_depth: 2, ..Default::default() };
        let f = parsed(
            r#" {"a":1,"http":{"status":200,"req":{"m":"GET"}},"t":[1,{"x":2}],"n":null,"b":false,"f":1.5}"#,
            &cfg,
        );
        assert_eq!(
            pairs(&f),
            ["a=1", "http_status=200", r#"http_req={"m":"GET"}"#, r#"t=[1,{"x":2}]"#, "n=", "b=false", "f=1.5"]
        );
    }

    #[test]
    fn special_keys_are_taken_out_and_may_be_nested() {
        let cfg = JsonConfig {
            message_key: Some("msg".into()),
            timestamp_key: Some("ts".into()),
            level_key: Some("log.level".into()),
            prefix: "app.".into(),
            ..Default::default()
        };
        let f = parsed(r#"{"ts":1700000000.5,"msg":"hi \"you\"","log":{"level":"WARN","logger":"x"}}"#, &cfg);
        assert_eq!(f.message.as_deref(), Some("hi \"you\""));
        assert_eq!(f.timestamp, Some(Scalar::Float(1_700_000_000.5)));
        assert_eq!(f.level.as_deref(), Some("WARN"));
        assert_eq!(pairs(&f), ["app.log.logger=x"]);
    }

    #[test]
    fn escaped_text_and_integers_of_every_width_come_out_exact() {
        let cfg = JsonConfig::default();
        let body = r#"{"k\"ey":"v\u00e9","plain":"x","big":18446744073709551615,"neg":-9223372036854775808,"small":-5,"u32":4294967295,"past_u32":4294967296}"#;
        let f = parsed(body, &cfg);
        assert_eq!(
            pairs(&f),
            [
                "k\"ey=vé",
                "plain=x",
                "big=18446744073709551615",
                "neg=-9223372036854775808",
                "small=-5",
                "u32=4294967295",
                "past_u32=4294967296"
            ]
        );
        // Unescaped keys and values point into the body; escaped ones are copies.
        assert!(matches!(f.pairs[1], (Cow::Borrowed("plain"), Cow::Borrowed("x"))));
        assert!(matches!(f.pairs[0], (Cow::Owned(_), Cow::Owned(_))));
    }

    #[test]
    fn a_non_string_message_stays_an_attribute() {
        let cfg = JsonConfig { message_key: Some("msg".into()), ..Default::default() };
        let f = parsed(r#"{"msg":{"a":1}}"#, &cfg);
        assert_eq!(f.message, None);
        assert_eq!(pairs(&f), ["msg.a=1"]);
    }

    #[test]
    fn failures_say_why() {
        let cfg = JsonConfig::default();
        assert_eq!(parse(b"plain text", &cfg), Outcome::NotObject);
        assert_eq!(parse(b"[1,2]", &cfg), Outcome::NotObject);
        assert_eq!(parse(b"", &cfg), Outcome::NotObject);
        let Outcome::Invalid(m) = parse(br#"{"a":1,"b"}"#, &cfg) else { panic!("not invalid") };
        assert!(m.contains("column 11"), "{m}");
        assert!(matches!(parse(b"{\"a\":\"\xff\"}", &cfg), Outcome::Invalid(_)));
        assert!(matches!(parse(br#"{"a":1} trailing"#, &cfg), Outcome::Invalid(_)));
    }
}
