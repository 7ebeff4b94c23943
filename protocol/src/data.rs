//! Message payloads (`data`): any JSON value, bounded in nesting depth where it enters, carried as
//! JSON text from then on, and turned into MessagePack for binary clients without building a
//! value tree.
//!
//! Both functions here walk the text with an explicit loop rather than recursion, so no input,
//! however deep (data stored before the depth bound existed may be), can exhaust the stack, and
//! whatever is stored can always be delivered in both encodings.

use std::fmt;

/// Deepest nesting of arrays and objects a client may send in `data` (a scalar is depth 0,
/// `[1]` depth 1). Far beyond what chat and feed payloads use, and well inside every common
/// client parser's limit (serde_json 128, Go 10,000, browsers more), so a payload that passes
/// here can be parsed by every subscriber.
pub const MAX_DEPTH: usize = 32;

/// `data` nested deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub limit: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "data is nested too deeply (more than {} levels of arrays and objects)",
            self.limit
        )
    }
}

impl std::error::Error for TooDeep {}

/// Checks that the JSON text `json` nests at most `limit` arrays/objects deep. Assumes valid
/// JSON (it only tracks brackets outside strings); stops at the first level past the limit.
pub fn check_depth(json: &str, limit: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Why JSON text could not be converted (it was not valid JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotJson(pub &'static str);

impl fmt::Display for NotJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not valid JSON: {}", self.0)
    }
}

impl std::error::Error for NotJson {}

/// Appends the MessagePack form of the JSON text `json` to `out`, at any depth: what `rmp-serde`
/// writes for the equivalent `serde_json::Value`, except that object keys keep the order the text
/// has them in (a `Value` sorts them), as JSON subscribers see them. Two passes over the text:
/// the first counts each container's elements (MessagePack writes a length before the
/// elements), the second writes.
pub fn json_to_msgpack(json: &str, out: &mut Vec<u8>) -> Result<(), NotJson> {
    let counts = count_elements(json)?;
    let mut counts = counts.into_iter();
    let mut tokens = Tokens::new(json);
    while let Some(token) = tokens.next()? {
        match token {
            Token::Open(kind) => {
                let n = counts.next().ok_or(NotJson("unbalanced brackets"))?;
                match kind {
                    Container::Array => rmp::encode::write_array_len(out, n),
                    Container::Object => rmp::encode::write_map_len(out, n),
                }
                .map_err(|_| NotJson("unwritable"))?;
            }
            Token::Close | Token::Comma | Token::Colon => {}
            Token::Str(raw) => {
                let text = unescape(raw)?;
                rmp::encode::write_str(out, &text).map_err(|_| NotJson("unwritable"))?;
            }
            Token::Number(raw) => write_number(out, raw)?,
            Token::True | Token::False => {
                let value = matches!(token, Token::True);
                rmp::encode::write_bool(out, value).map_err(|_| NotJson("unwritable"))?
            }
            Token::Null => rmp::encode::write_nil(out).map_err(|_| NotJson("unwritable"))?,
        }
    }
    Ok(())
}

/// Element counts of every container, in the order their opening brackets appear: zero when it
/// closes at once, else one more than the commas directly inside it (in an object, an entry is
/// a key-value pair, and colons do not count).
fn count_elements(json: &str) -> Result<Vec<u32>, NotJson> {
    let mut counts: Vec<u32> = Vec::new();
    // Open containers, as indices into `counts`.
    let mut open: Vec<usize> = Vec::new();
    let mut just_opened = false;
    let mut tokens = Tokens::new(json);
    while let Some(token) = tokens.next()? {
        if std::mem::take(&mut just_opened) && !matches!(token, Token::Close) {
            if let Some(&i) = open.last() {
                counts[i] = 1;
            }
        }
        match token {
            Token::Open(_) => {
                open.push(counts.len());
                counts.push(0);
                just_opened = true;
            }
            Token::Close => {
                open.pop().ok_or(NotJson("unbalanced brackets"))?;
            }
            Token::Comma => {
                let &i = open.last().ok_or(NotJson("comma outside a container"))?;
                counts[i] = counts[i].saturating_add(1);
            }
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(NotJson("unbalanced brackets"));
    }
    Ok(counts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

#[derive(Debug)]
enum Token<'a> {
    Open(Container),
    Close,
    Comma,
    Colon,
    /// A string with its quotes, escapes not yet resolved.
    Str(&'a str),
    Number(&'a str),
    True,
    False,
    Null,
}

/// A JSON lexer: tokens in order, no nesting kept (the callers keep what they need).
struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Tokens<'a> {
        Tokens { text, pos: 0 }
    }

    fn next(&mut self) -> Result<Option<Token<'a>>, NotJson> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let Some(&b) = bytes.get(self.pos) else {
            return Ok(None);
        };
        let start = self.pos;
        self.pos += 1;
        let token = match b {
            b'[' => Token::Open(Container::Array),
            b'{' => Token::Open(Container::Object),
            b']' | b'}' => Token::Close,
            b',' => Token::Comma,
            b':' => Token::Colon,
            b'"' => {
                let mut escaped = false;
                loop {
                    let Some(&c) = bytes.get(self.pos) else {
                        return Err(NotJson("unterminated string"));
                    };
                    self.pos += 1;
                    match c {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => break,
                        _ => {}
                    }
                }
                Token::Str(&self.text[start..self.pos])
            }
            b'-' | b'0'..=b'9' => {
                while self.pos < bytes.len()
                    && matches!(
                        bytes[self.pos],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.pos += 1;
                }
                Token::Number(&self.text[start..self.pos])
            }
            _ => {
                let rest = &self.text[start..];
                let (token, len) = if rest.starts_with("true") {
                    (Token::True, 4)
                } else if rest.starts_with("false") {
                    (Token::False, 5)
                } else if rest.starts_with("null") {
                    (Token::Null, 4)
                } else {
                    return Err(NotJson("unexpected character"));
                };
                self.pos = start + len;
                token
            }
        };
        Ok(Some(token))
    }
}

/// The text of a JSON string token (quotes included), escapes resolved. A `\\u` escape of a lone
/// surrogate (valid JSON text, but no character) becomes U+FFFD, as browsers' decoders do: the
/// conversion never fails on what storage accepted.
fn unescape(raw: &str) -> Result<std::borrow::Cow<'_, str>, NotJson> {
    let inner = raw
        .get(1..raw.len().saturating_sub(1))
        .ok_or(NotJson("bad string"))?;
    if !inner.contains('\\') {
        return Ok(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().ok_or(NotJson("bad string escape"))? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let unit = hex4(&mut chars)?;
                let c = match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate: a low one must follow as `\\uDC00`..`\\uDFFF`.
                        let rest = chars.as_str();
                        let low = rest
                            .strip_prefix("\\u")
                            .and_then(|r| r.get(..4))
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .filter(|l| (0xDC00..=0xDFFF).contains(l));
                        match low {
                            Some(low) => {
                                chars = rest[6..].chars();
                                char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                            }
                            None => None,
                        }
                    }
                    _ => char::from_u32(unit),
                };
                out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            _ => return Err(NotJson("bad string escape")),
        }
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, NotJson> {
    let mut unit = 0;
    for _ in 0..4 {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or(NotJson("bad \\u escape"))?;
        unit = unit * 16 + digit;
    }
    Ok(unit)
}

/// Writes a JSON number as `rmp-serde` writes the `serde_json::Number` it parses to: the
/// smallest unsigned or signed integer form, or a 64-bit float. A number too large for a float
/// (valid JSON, `1e400`) becomes infinity rather than an error.
fn write_number(out: &mut Vec<u8>, raw: &str) -> Result<(), NotJson> {
    let written = match serde_json::from_str::<serde_json::Number>(raw) {
        Ok(number) => {
            if let Some(u) = number.as_u64() {
                rmp::encode::write_uint(out, u).map(drop)
            } else if let Some(i) = number.as_i64() {
                rmp::encode::write_sint(out, i).map(drop)
            } else {
                let f = number.as_f64().ok_or(NotJson("bad number"))?;
                rmp::encode::write_f64(out, f)
            }
        }
        Err(_) => {
            let f: f64 = raw.parse().map_err(|_| NotJson("bad number"))?;
            rmp::encode::write_f64(out, f)
        }
    };
    written.map_err(|_| NotJson("unwritable"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn reference(v: &Value) -> Vec<u8> {
        rmp_serde::to_vec(v).unwrap()
    }

    fn transcoded(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        json_to_msgpack(&v.to_string(), &mut out).unwrap();
        out
    }

    #[test]
    fn matches_rmp_serde_for_every_kind_of_value() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(127),
            json!(128),
            json!(-1),
            json!(-33),
            json!(-129),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.25e-10),
            json!(""),
            json!("plain"),
            json!("esc \" \\ \n \u{1F600} \u{0001}"),
            json!("x".repeat(40)),
            json!("y".repeat(300)),
            json!([]),
            json!({}),
            json!([1, [2, [3, []]], {}]),
            json!({"a": 1, "b": [true, null, {"c": "d"}], "": {}, "e,f": "g:h"}),
            json!({"k": [{"x": [1, 2, 3]}, {"y": {"z": []}}]}),
            Value::Array((0..70_000).map(Value::from).collect()),
        ];
        for v in values {
            assert_eq!(transcoded(&v), reference(&v), "{v}");
        }
        // Whitespace anywhere between tokens.
        let spaced = " { \"a\" : [ 1 , 2 ] , \"b\" : { } } ";
        let mut out = Vec::new();
        json_to_msgpack(spaced, &mut out).unwrap();
        assert_eq!(out, reference(&json!({"a": [1, 2], "b": {}})));
    }

    /// Valid JSON text that no JSON value can hold (a lone surrogate escape, a number beyond
    /// f64) still converts: storage accepted it, so every subscriber must get it.
    #[test]
    fn text_no_value_holds_still_converts() {
        let mut out = Vec::new();
        json_to_msgpack(
            r#"["\ud800x","\ud83d\ude00","\udc00",1e400,-1e400]"#,
            &mut out,
        )
        .unwrap();
        let mut expected = Vec::new();
        rmp::encode::write_array_len(&mut expected, 5).unwrap();
        for s in ["\u{FFFD}x", "\u{1F600}", "\u{FFFD}"] {
            rmp::encode::write_str(&mut expected, s).unwrap();
        }
        rmp::encode::write_f64(&mut expected, f64::INFINITY).unwrap();
        rmp::encode::write_f64(&mut expected, f64::NEG_INFINITY).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn objects_keep_their_key_order() {
        let text =
            r#"{"text":"hello \u00e9 \"q\"","list":[1,-2,3.5e10,[[{}]]],"ok":false,"none":null}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let mut out = Vec::new();
        json_to_msgpack(text, &mut out).unwrap();
        // Keys stay in the text's order (a `Value` sorts them): compare as values.
        assert_ne!(out, reference(&v));
        assert_eq!(rmp_serde::from_slice::<Value>(&out).unwrap(), v);
    }

    #[test]
    fn any_depth_converts_without_recursion() {
        let depth = 200_000;
        let text = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let mut out = Vec::new();
        json_to_msgpack(&text, &mut out).unwrap();
        // A one-element array header per level, then the 1.
        assert_eq!(out.len(), depth + 1);
        assert!(out[..depth].iter().all(|&b| b == 0x91));
    }

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert_eq!(check_depth("1", 0), Ok(()));
        assert_eq!(check_depth("[1]", 0), Err(TooDeep { limit: 0 }));
        assert_eq!(check_depth(r#"{"a":[{"b":[]}]}"#, 4), Ok(()));
        assert!(check_depth(r#"{"a":[{"b":[[]]}]}"#, 4).is_err());
        assert_eq!(check_depth(r#"["[[[[[[", "\"[[[[", "\\"]"#, 1), Ok(()));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check_depth(&deep, MAX_DEPTH), Ok(()));
        let deeper = format!("[{deep}]");
        assert!(check_depth(&deeper, MAX_DEPTH).is_err());
    }
}
