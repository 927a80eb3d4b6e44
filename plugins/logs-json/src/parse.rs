//! One JSON body to flattened attributes, straight from the bytes into the
//! record's attributes without building a `serde_json::Value` tree or a list
//! of `(key, value)` pairs first (this is the plugin's hot path).

use crate::config::JsonConfig;
use wasmon_sdk::attributes::AttributeWriter;
use wasmon_sdk::json::flatten::{FlattenOptions, Leaf, flatten_object};

/// A scalar value picked out for the timestamp: kept typed, so `auto` can
/// tell seconds from milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i128),
    Float(f64),
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
    // One UTF-8 check of the whole body; the reader then works on text.
    let body = match std::str::from_utf8(&body[start..]) {
        Ok(text) => text,
        Err(e) => return Outcome::Invalid(format!("invalid JSON: invalid UTF-8 at byte {}", start + e.valid_up_to())),
    };
    // Keys and values are about as long as the body they come from (shorter
    // by the quotes and punctuation, longer only by prefixes and nesting).
    out.reserve(body.len() + cfg.prefix.len() * 16, 16);
    let options = FlattenOptions { prefix: &cfg.prefix, separator: &cfg.separator, max_depth: cfg.max_depth };
    let mut fields = Fields::default();
    // The first message, timestamp and level of a usable type are taken out
    // of the attributes; repeats and other types stay attributes.
    let claim = |key: &str, _level: usize, leaf: &Leaf<'_>| {
        if cfg.message_key.as_deref() == Some(key) && fields.message.is_none() {
            let Leaf::Str(s) = leaf else { return false };
            fields.message = Some(s.to_string());
        } else if cfg.timestamp_key.as_deref() == Some(key) && fields.timestamp.is_none() {
            fields.timestamp = Some(match *leaf {
                Leaf::Str(s) => Scalar::Text(s.to_string()),
                Leaf::Int(_) => Scalar::Int(leaf.integer().unwrap_or_default()),
                Leaf::Float(f) => Scalar::Float(f),
                _ => return false,
            });
        } else if cfg.level_key.as_deref() == Some(key) && fields.level.is_none() {
            let (Leaf::Str(s) | Leaf::Int(s)) = leaf else { return false };
            fields.level = Some(s.to_string());
        } else {
            return false;
        }
        true
    };
    match flatten_object(body, &options, out, claim) {
        Ok(()) => Outcome::Parsed(fields),
        Err(e) => {
            out.discard();
            Outcome::Invalid(format!("invalid JSON: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
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
