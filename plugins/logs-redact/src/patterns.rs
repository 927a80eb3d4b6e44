//! The built-in patterns and the checks that keep them from masking lookalikes.
//!
//! All are ASCII-only (`(?-u)`): what they look for is ASCII, and a byte-level
//! pattern works the same on invalid UTF-8. A negated ASCII class takes all bytes of
//! a multi-byte character and a positive one none, so matches of valid UTF-8 always
//! start and end on character boundaries.

/// A built-in pattern: its name (the `pattern` label and the `[REDACTED:<name>]`
/// text), its regex, and an extra check on the candidate.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub regex: &'static str,
    pub check: Option<fn(&[u8]) -> bool>,
    /// On unless the config leaves it out of `builtin`.
    pub default_on: bool,
}

/// In order of precedence: where two matches start at the same byte and are as long,
/// the earlier pattern names the redaction (a JWT after `Bearer` is a `jwt`).
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "jwt",
        // A JWS in compact form: base64url of a JSON header and payload (`{"` encodes
        // as `eyJ`), and a signature that may be empty (`alg: none`).
        regex: r"(?-u)\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        check: None,
        default_on: true,
    },
    Builtin {
        name: "bearer",
        // Only the token: `Authorization: Bearer [REDACTED:bearer]`. RFC 6750's b64token.
        regex: r"(?i-u)\bbearer[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)",
        check: None,
        default_on: true,
    },
    Builtin {
        name: "api_key",
        // Vendor formats with a fixed prefix (AWS access key ids, GitHub, GitLab,
        // Slack, Stripe, Google API keys), then `key=value` / `"key": "value"` for
        // the usual secret-bearing names, where only the value is masked. No `\b`
        // before the name, so `db_password` and `X_API_KEY` count too.
        regex: concat!(
            r#"(?-u)\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"#,
            r#"|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"#,
            r#"|AIza[0-9A-Za-z_-]{35})\b"#,
            r#"|(?i)(?:api[_-]?key|apikey|x-api-key|access[_-]?token|auth[_-]?token|refresh[_-]?token"#,
            r#"|client[_-]?secret|secret[_-]?key|private[_-]?key|password|passwd|pwd|secret|token)"#,
            r#"["']?[ \t]*[:=][ \t]*["']?(?P<secret>[^\s"'&,;}\]]{4,})"#
        ),
        check: None,
        default_on: true,
    },
    Builtin {
        name: "email",
        // Bytes >= 0x80 count as letters: internationalised addresses (`josé@…`,
        // RFC 6531) and non-UTF-8 ones are masked whole, not cut at the first
        // non-ASCII byte with the rest left readable. No leading `\b`: leftmost-first
        // matching already starts at the beginning of the local part.
        regex: r"(?i-u)[a-z0-9\x80-\xff][a-z0-9\x80-\xff._%+-]*@[a-z0-9\x80-\xff](?:[a-z0-9\x80-\xff-]*[a-z0-9\x80-\xff])?(?:\.[a-z0-9\x80-\xff](?:[a-z0-9\x80-\xff-]*[a-z0-9\x80-\xff])?)*\.[a-z]{2,63}\b",
        check: None,
        default_on: true,
    },
    Builtin {
        name: "credit_card",
        // 13 to 19 digits, optionally in groups split by one kind of separator;
        // `card_number` decides.
        regex: r"(?-u)\b\d(?:[ -]?\d){12,18}\b",
        check: Some(card_number),
        default_on: true,
    },
    Builtin {
        name: "ipv4",
        regex: r"(?-u)\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
        check: None,
        default_on: false,
    },
];

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Whether a candidate is a plausible payment card number: 13–19 digits, one kind of
/// separator at most, a first digit from 2 to 6 (the ranges of Visa, Mastercard, Amex,
/// Discover, JCB, UnionPay, Diners; it also keeps Unix timestamps in ms, µs and ns,
/// which start with 1, from being masked), not one digit repeated, and a valid Luhn
/// check digit (so 9 in 10 random digit strings are left alone).
pub fn card_number(candidate: &[u8]) -> bool {
    let digits: Vec<u8> = candidate.iter().filter(|c| c.is_ascii_digit()).map(|c| c - b'0').collect();
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    let has_space = candidate.contains(&b' ');
    let has_dash = candidate.contains(&b'-');
    if has_space && has_dash {
        return false;
    }
    if digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    luhn(&digits)
}

/// The Luhn mod-10 check over digits (0–9), check digit last.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_on_published_test_numbers() {
        // Test card numbers published by the card networks / payment processors.
        for ok in ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4012888888881881"] {
            let d: Vec<u8> = ok.bytes().map(|c| c - b'0').collect();
            assert!(luhn(&d), "{ok}");
            assert!(card_number(ok.as_bytes()), "{ok}");
        }
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
    }

    #[test]
    fn card_lookalikes_are_not_cards() {
        for not in [
            "4111111111111112",     // bad check digit
            "1714564800123",        // a Unix timestamp in ms (passes Luhn? irrelevant: starts with 1)
            "4444444444444444",     // one digit repeated
            "4111 1111-1111 1111",  // mixed separators
            "411111111111",         // 12 digits
            "41111111111111111111", // 20 digits
        ] {
            assert!(!card_number(not.as_bytes()), "{not}");
        }
        assert!(card_number(b"4111 1111 1111 1111"));
        assert!(card_number(b"4111-1111-1111-1111"));
    }
}
