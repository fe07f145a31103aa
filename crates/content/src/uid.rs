//! StackStorm-compatible trigger uids.
//!
//! StackStorm hashes `json.dumps(parameters, sort_keys=True)`, so the bytes
//! must match CPython's output exactly: `", "` and `": "` separators, ASCII
//! only (`\uXXXX` escapes, surrogate pairs above U+FFFF), keys sorted by code
//! point at every level, floats as Python's `repr`.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use serde_json::Value;

/// `trigger:<pack>:<name>:<md5 of json.dumps(parameters, sort_keys=True)>`,
/// byte-compatible with Python's default `json.dumps` separators.
pub fn trigger_uid(pack: &str, name: &str, parameters: &Value) -> String {
    let json = python_json_dumps(parameters);
    format!("trigger:{pack}:{name}:{}", md5_hex(json.as_bytes()))
}

/// Lowercase hex MD5 of `bytes`.
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// Lowercase hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    digest
        .iter()
        .fold(String::with_capacity(digest.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `json.dumps(value, sort_keys=True)` as CPython writes it.
pub fn python_json_dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => write_float(f, out),
            None => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sort here rather than rely on serde_json's map order: the
            // `preserve_order` feature may be switched on by another crate.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(k, out);
                out.push_str(": ");
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `float.__repr__`: shortest round-trip digits, positional for
/// exponents in [-4, 16), scientific (`1e+16`, `1e-05`) otherwise.
fn write_float(f: f64, out: &mut String) {
    // `{:e}` gives the shortest round-trip digits, e.g. `-1.25e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
            out.push_str(".0");
        } else {
            let (int, frac) = digits.split_at(point as usize);
            let _ = write!(out, "{int}.{frac}");
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            let _ = write!(out, ".{rest}");
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uid_matches_python() {
        // Expected values from CPython 3.11:
        // hashlib.md5(json.dumps(P, sort_keys=True).encode()).hexdigest()
        let cases = [
            (json!({}), "99914b932bd37a50b983c5e7c90ae93b"),
            (
                json!({"file_path": "/tmp/x"}),
                "7151d8f54a96493e7065277713425c3f",
            ),
            (
                json!({"b": [1, 2.5, "é"], "a": {"z": true, "y": null}}),
                "28fe82ac598b266a2073340237fd28f6",
            ),
        ];
        for (params, md5) in cases {
            assert_eq!(
                trigger_uid("p", "t", &params),
                format!("trigger:p:t:{md5}"),
                "{params}"
            );
        }
    }

    #[test]
    fn dumps_matches_python_formatting() {
        let v = json!({"b": [1, 2.5, "é"], "a": {"z": true, "y": null}});
        assert_eq!(
            python_json_dumps(&v),
            r#"{"a": {"y": null, "z": true}, "b": [1, 2.5, "\u00e9"]}"#
        );
        assert_eq!(
            python_json_dumps(&json!("😀\u{7f}\"\\\n")),
            r#""\ud83d\ude00\u007f\"\\\n""#
        );
        assert_eq!(python_json_dumps(&json!([])), "[]");
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.25e300, "1.25e+300"),
            (123456.789, "123456.789"),
        ];
        for (f, expected) in cases {
            let mut s = String::new();
            write_float(f, &mut s);
            assert_eq!(s, expected, "{f}");
        }
    }
}
