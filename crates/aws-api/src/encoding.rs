//! Percent-encoding the way SigV4 and the Query protocol need it.
//!
//! Hand-written because both directions have rules a general crate does not pick for us:
//! SigV4 encodes every byte except the unreserved set (`A-Z a-z 0-9 - _ . ~`) with upper-case
//! hex, and the Query protocol must refuse a malformed escape instead of passing it through.

use std::fmt::Write as _;

/// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends `input` to `out`, percent-encoding every byte but the unreserved ones (and `/` when
/// `keep_slash`), with upper-case hex.
pub(crate) fn uri_encode_into(out: &mut String, input: &[u8], keep_slash: bool) {
    for &b in input {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// `uri_encode_into` into a new string.
pub(crate) fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    uri_encode_into(&mut out, input, keep_slash);
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A `%` not followed by two hex digits, at this byte offset of the decoded component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEscape {
    pub(crate) offset: usize,
    pub(crate) found: String,
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
///
/// `strict` refuses a malformed escape; otherwise it is kept literally, as
/// `form_urlencoded` (and so the AWS Rust SDK's signer) does.
pub(crate) fn form_decode(input: &str, strict: bool) -> Result<Vec<u8>, BadEscape> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ if strict => {
                        let end = (i + 3).min(bytes.len());
                        let found = String::from_utf8_lossy(bytes.get(i..end).unwrap_or_default())
                            .into_owned();
                        return Err(BadEscape { offset: i, found });
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Splits a form or query string into raw (still encoded) `(name, value)` pairs, skipping empty
/// segments (`a=1&&b=2`). A segment without `=` has an empty value.
pub(crate) fn split_pairs(input: &str) -> impl Iterator<Item = (&str, &str)> {
    input
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|s| s.split_once('=').unwrap_or((s, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(uri_encode(b"a b/c~d-e_f.g", false), "a%20b%2Fc~d-e_f.g");
        assert_eq!(uri_encode(b"a b/c", true), "a%20b/c");
        assert_eq!(uri_encode("ሴ".as_bytes(), true), "%E1%88%B4");
        assert_eq!(uri_encode(b"%2F+*", false), "%252F%2B%2A");
    }

    #[test]
    fn decodes_forms() {
        assert_eq!(form_decode("a+b%20c%2f", true).unwrap(), b"a b c/");
        assert_eq!(form_decode("100%", false).unwrap(), b"100%");
        assert_eq!(form_decode("%zz1", false).unwrap(), b"%zz1");
        let err = form_decode("ab%zz", true).unwrap_err();
        assert_eq!((err.offset, err.found.as_str()), (2, "%zz"));
        let err = form_decode("ab%4", true).unwrap_err();
        assert_eq!(err.found, "%4");
    }

    #[test]
    fn splits_pairs() {
        let pairs: Vec<_> = split_pairs("a=1&&b&c=x=y").collect();
        assert_eq!(pairs, [("a", "1"), ("b", ""), ("c", "x=y")]);
    }
}
