//! One JSON body to flattened attributes, straight from the bytes into the
//! record's attributes without building a `serde_json::Value` tree or a list
//! of `(key, value)` pairs first (this is the plugin's hot path).

use crate::config::JsonConfig;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use wasmon_sdk::attributes::{AttributeWriter, ValueText};
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

    fn write(self, out: &mut ValueText<'_>) {
        let mut digits = itoa::Buffer::new();
        out.push_str(match self {
            Integer::Signed(i) => digits.format(i),
            Integer::Unsigned(u) => digits.format(u),
        });
    }

    fn to_text(self) -> String {
        let mut digits = itoa::Buffer::new();
        match self {
            Integer::Signed(i) => digits.format(i).to_string(),
            Integer::Unsigned(u) => digits.format(u).to_string(),
        }
    }
}

/// What one body gave besides the attributes it wrote: the values of the
/// configured message, timestamp and level keys.
#[derive(Debug, Default, PartialEq)]
pub struct Fields {
    pub message: Option<String>,
    pub timestamp: Option<Scalar>,
    pub level: Option<String>,
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Parsed(Fields),
    /// Not a JSON object at all (plain text, an array, a number).
    NotObject,
    /// Starts like an object but is not valid JSON; serde's message says where.
    Invalid(String),
}

/// Parse `body` under `cfg`, adding its flattened keys to `out` (in body
/// order; the writer sorts them, later keys winning). All or nothing: a body
/// that breaks off halfway adds no attributes.
pub fn parse(body: &[u8], cfg: &JsonConfig, out: &mut AttributeWriter<'_>) -> Outcome {
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    if body.get(start) != Some(&b'{') {
        return Outcome::NotObject;
    }
    let mut fields = Fields::default();
    let body = &body[start..];
    // Keys and values are about as long as the body they come from (shorter
    // by the quotes and punctuation, longer only by prefixes and nesting).
    out.reserve(body.len() + cfg.prefix.len() * 16, 16);
    let seed = ObjectSeed { cfg, path: "", depth: cfg.max_depth.max(1), fields: &mut fields, out };
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
        Err(e) => {
            out.discard();
            Outcome::Invalid(format!("invalid JSON: {e}"))
        }
    }
}

/// The object `seed` visits, and nothing after it but whitespace.
fn whole_object<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    seed: ObjectSeed<'_, '_, '_>,
) -> serde_json::Result<()> {
    seed.deserialize(&mut de)?;
    de.end()
}

/// Visits one object whose keys sit under `path` (empty at the top).
struct ObjectSeed<'a, 'o, 'w> {
    cfg: &'a JsonConfig,
    path: &'a str,
    depth: usize,
    fields: &'a mut Fields,
    out: &'o mut AttributeWriter<'w>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, '_> {
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

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, '_> {
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
            let fields = &mut *self.fields;
            let special = if cfg.message_key.as_deref() == Some(&*path) && fields.message.is_none() {
                Special::Message
            } else if cfg.timestamp_key.as_deref() == Some(&*path) && fields.timestamp.is_none() {
                Special::Timestamp
            } else if cfg.level_key.as_deref() == Some(&*path) && fields.level.is_none() {
                Special::Level
            } else {
                Special::None
            };
            let seed = ValueSeed { cfg, path: &path, depth: self.depth, fields, out: self.out };
            let Some(leaf) = map.next_value_seed(seed)? else { continue }; // an object, flattened already
            match (special, leaf) {
                (Special::Message, Leaf::Str(s)) => self.fields.message = Some(s.into_owned()),
                (Special::Level, Leaf::Str(s)) => self.fields.level = Some(s.into_owned()),
                (Special::Level, Leaf::Int(i)) => self.fields.level = Some(i.to_text()),
                (Special::Timestamp, Leaf::Str(s)) => self.fields.timestamp = Some(Scalar::Text(s.into_owned())),
                (Special::Timestamp, Leaf::Int(i)) => self.fields.timestamp = Some(Scalar::Int(i.wide())),
                (Special::Timestamp, Leaf::Float(f)) => self.fields.timestamp = Some(Scalar::Float(f)),
                (_, leaf) => self.out.push_with(&[&cfg.prefix, &path], |value| leaf.write(value)),
            }
        }
        Ok(())
    }
}

/// A value that did not flatten into attributes itself.
enum Leaf<'de> {
    Str(Cow<'de, str>),
    Int(Integer),
    Float(f64),
    /// `true`, `false` and `null` (as "").
    Word(&'static str),
    /// Arrays and too-deep objects, as JSON text.
    Json(String),
}

impl Leaf<'_> {
    fn write(self, out: &mut ValueText<'_>) {
        match self {
            Leaf::Str(s) => out.push_str(&s),
            Leaf::Word(s) => out.push_str(s),
            Leaf::Json(s) => out.push_str(&s),
            Leaf::Int(i) => i.write(out),
            Leaf::Float(f) => wasmon_sdk::json::push_f64(out, f),
        }
    }
}

struct ValueSeed<'a, 'o, 'w> {
    cfg: &'a JsonConfig,
    path: &'a str,
    depth: usize,
    fields: &'a mut Fields,
    out: &'o mut AttributeWriter<'w>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, '_> {
    /// `None`: an object flattened into `out`.
    type Value = Option<Leaf<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, '_> {
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
        Ok(Some(Leaf::Word(if v { "true" } else { "false" })))
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
        Ok(Some(Leaf::Word("")))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(Leaf::Json(v.to_string())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if self.depth <= 1 {
            let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            return Ok(Some(Leaf::Json(v.to_string())));
        }
        let nested =
            ObjectSeed { cfg: self.cfg, path: self.path, depth: self.depth - 1, fields: self.fields, out: self.out };
        nested.visit_map(map)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_sdk::attributes::Attributes;

    /// The fields and the attributes (`key=value`, in key order) `body` gives.
    fn parsed(body: &str, cfg: &JsonConfig) -> (Fields, Vec<String>) {
        let mut attributes = Attributes::new();
        let outcome = parse(body.as_bytes(), cfg, &mut attributes.writer());
        match outcome {
            Outcome::Parsed(f) => (f, attributes.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            other => panic!("{body}: {other:?}"),
        }
    }

    fn outcome(body: &[u8]) -> Outcome {
        parse(body, &JsonConfig::default(), &mut Attributes::new().writer())
    }

    #[test]
    fn nested_keys_flatten_with_the_separator_up_to_max_depth() {
        let cfg = JsonConfig { separator: "_".into(), max_depth: 2, ..Default::default() };
        let (_, pairs) = parsed(
            r#" {"a":1,"http":{"status":200,"req":{"m":"GET"}},"t":[1,{"x":2}],"n":null,"b":false,"f":1.5}"#,
            &cfg,
        );
        assert_eq!(
            pairs,
            ["a=1", "b=false", "f=1.5", r#"http_req={"m":"GET"}"#, "http_status=200", "n=", r#"t=[1,{"x":2}]"#]
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
        let (f, pairs) = parsed(r#"{"ts":1700000000.5,"msg":"hi \"you\"","log":{"level":"WARN","logger":"x"}}"#, &cfg);
        assert_eq!(f.message.as_deref(), Some("hi \"you\""));
        assert_eq!(f.timestamp, Some(Scalar::Float(1_700_000_000.5)));
        assert_eq!(f.level.as_deref(), Some("WARN"));
        assert_eq!(pairs, ["app.log.logger=x"]);
    }

    #[test]
    fn escaped_text_and_integers_of_every_width_come_out_exact() {
        let cfg = JsonConfig::default();
        let body = r#"{"k\"ey":"v\u00e9","plain":"x","big":18446744073709551615,"neg":-9223372036854775808,"small":-5,"u32":4294967295,"past_u32":4294967296}"#;
        let (_, pairs) = parsed(body, &cfg);
        assert_eq!(
            pairs,
            [
                "big=18446744073709551615",
                "k\"ey=vé",
                "neg=-9223372036854775808",
                "past_u32=4294967296",
                "plain=x",
                "small=-5",
                "u32=4294967295",
            ]
        );
        // Repeated keys: the last one wins.
        assert_eq!(parsed(r#"{"a":1,"b":2,"a":3}"#, &cfg).1, ["a=3", "b=2"]);
    }

    #[test]
    fn numbers_print_as_serde_json_prints_them() {
        for number in ["1.5", "1e20", "-0.0", "0.30000000000000004", "123456789012345678901234567890", "2.5E-8", "-7"] {
            let want = serde_json::from_str::<Value>(number).unwrap().to_string();
            assert_eq!(parsed(&format!(r#"{{"n":{number}}}"#), &JsonConfig::default()).1, [format!("n={want}")]);
        }
    }

    #[test]
    fn a_non_string_message_stays_an_attribute() {
        let cfg = JsonConfig { message_key: Some("msg".into()), ..Default::default() };
        let (f, pairs) = parsed(r#"{"msg":{"a":1}}"#, &cfg);
        assert_eq!(f.message, None);
        assert_eq!(pairs, ["msg.a=1"]);
    }

    #[test]
    fn failures_say_why() {
        assert_eq!(outcome(b"plain text"), Outcome::NotObject);
        assert_eq!(outcome(b"[1,2]"), Outcome::NotObject);
        assert_eq!(outcome(b""), Outcome::NotObject);
        let Outcome::Invalid(m) = outcome(br#"{"a":1,"b"}"#) else { panic!("not invalid") };
        assert!(m.contains("column 11"), "{m}");
        assert!(matches!(outcome(b"{\"a\":\"\xff\"}"), Outcome::Invalid(_)));
        assert!(matches!(outcome(br#"{"a":1} trailing"#), Outcome::Invalid(_)));
    }

    #[test]
    fn a_body_that_breaks_off_adds_nothing() {
        let mut attributes = Attributes::from([("kept", "yes")]);
        let outcome = parse(br#"{"a":1,"b":{"c":2,"d":"#, &JsonConfig::default(), &mut attributes.writer());
        assert!(matches!(outcome, Outcome::Invalid(_)), "{outcome:?}");
        assert_eq!(attributes, Attributes::from([("kept", "yes")]));
    }
}
