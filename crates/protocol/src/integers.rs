//! Integers beyond 64 bits: `serde_json` reads them as floats, silently
//! changing ids and payload values (`12345678901234567890123` becomes
//! `1.2345678901234568e22`). We keep every integer exact up to 64 bits
//! (`i64::MIN..=u64::MAX`) and refuse bigger ones with an error naming the
//! number, as StackStorm's MongoDB refuses them (BSON has no bigger
//! integer): send such values as strings.
//!
//! The check runs on the raw JSON text after it parsed: a cheap pass
//! looks for a run of 20 digits (the shortest integer that can be too big
//! has 19 digits after a `-`, or 20); only then does a string-aware pass
//! look at the integer literals themselves.

/// The first integer literal outside strings in `json` (valid JSON) that
/// does not fit 64 bits, as written (cut to 64 characters).
pub fn oversized_integer(json: &[u8]) -> Option<String> {
    if !has_digit_run(json, 19) {
        return None;
    }
    let mut i = 0;
    let n = json.len();
    while i < n {
        match json[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < n && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < n && json[i].is_ascii_digit() {
                    i += 1;
                }
                let is_integer = !matches!(json.get(i), Some(b'.' | b'e' | b'E'));
                // Skip the rest of a float literal.
                while i < n && matches!(json[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                }
                let token = &json[start..i];
                if is_integer && !fits_64_bits(token) {
                    let text = String::from_utf8_lossy(token);
                    return Some(text.chars().take(64).collect());
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn has_digit_run(json: &[u8], len: usize) -> bool {
    let mut run = 0;
    for &b in json {
        if b.is_ascii_digit() {
            run += 1;
            if run >= len {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

fn fits_64_bits(token: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(token) else {
        return false;
    };
    if text.starts_with('-') {
        text.parse::<i64>().is_ok()
    } else {
        text.parse::<u64>().is_ok()
    }
}

/// The error message for an oversized integer.
pub fn oversized_message(number: &str) -> String {
    format!(
        "integer {number} does not fit in 64 bits: integers are kept exact from {} to {}; send bigger ones as strings",
        i64::MIN,
        u64::MAX
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_integers_beyond_64_bits_outside_strings_are_found() {
        assert_eq!(oversized_integer(br#"{"a": 18446744073709551615}"#), None);
        assert_eq!(oversized_integer(br#"{"a": -9223372036854775808}"#), None);
        assert_eq!(
            oversized_integer(br#"{"a": 18446744073709551616}"#).as_deref(),
            Some("18446744073709551616")
        );
        assert_eq!(
            oversized_integer(br#"[1, -9223372036854775809]"#).as_deref(),
            Some("-9223372036854775809")
        );
        // In strings, escaped quotes included, and floats: fine.
        assert_eq!(
            oversized_integer(
                br#"{"a": "123456789012345678901234", "b": "\"99999999999999999999999"}"#
            ),
            None
        );
        assert_eq!(
            oversized_integer(br#"{"a": 123456789012345678901234.5}"#),
            None
        );
        assert_eq!(
            oversized_integer(br#"{"a": 123456789012345678901234e3}"#),
            None
        );
        assert_eq!(
            oversized_integer(br#"{"id": 1, "x": [0.5, 99999999999999999999999]}"#).as_deref(),
            Some("99999999999999999999999")
        );
    }

    #[test]
    fn the_answer_matches_serde_json_on_random_numbers() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let digits: String = (0..rng.usize(1..26))
                .map(|k| char::from(b'0' + if k == 0 { rng.u8(1..10) } else { rng.u8(0..10) }))
                .collect();
            let text = if rng.bool() {
                format!("-{digits}")
            } else {
                digits
            };
            let doc = format!("{{\"k\": [\"{text}\", {text}]}}");
            let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let exact = v["k"][1].is_i64() || v["k"][1].is_u64();
            assert_eq!(oversized_integer(doc.as_bytes()).is_none(), exact, "{doc}");
        }
    }
}
