//! Lenient reading of manager answers. Text damage (invalid UTF-8, escaped lone surrogates such as
//! `"\ud83d"`, raw control characters inside strings, unknown escapes) is repaired before parsing, and a
//! listing whose JSON is still broken is split into its items, so one broken item costs that item only.
//! Pure: no I/O, no logging; callers log ids and counts, never the text (it can hold credentials).

use std::borrow::Cow;

use serde_json::Value;

/// What replaces an invalid UTF-8 sequence or a lone surrogate (U+FFFD, escaped).
const REPLACEMENT: &[u8] = b"\\ufffd";

/// A body made parseable where only its text was damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repaired {
    /// Valid UTF-8 with every string escape valid JSON.
    pub(crate) text: String,
    /// How many spots were replaced or escaped (0: the body was fine).
    pub(crate) fixes: usize,
}

/// Replaces invalid UTF-8 and lone surrogate escapes with U+FFFD, escapes raw control characters inside
/// strings, and keeps an unknown escape (`\x`) as the text it shows. Valid JSON comes back unchanged.
pub(crate) fn repair(body: &[u8]) -> Repaired {
    let lossy = String::from_utf8_lossy(body);
    let mut fixes = match &lossy {
        Cow::Borrowed(_) => 0,
        Cow::Owned(s) => s
            .matches('\u{FFFD}')
            .count()
            .saturating_sub(count_replacement_chars(body)),
    };
    let b = lossy.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !in_string {
            in_string = c == b'"';
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = false;
                out.push(c);
                i += 1;
            }
            b'\\' => {
                let (len, fixed) = escape(&b[i..], &mut out);
                fixes += fixed;
                i += len;
            }
            0x00..=0x1f => {
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                fixes += 1;
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only whole UTF-8 sequences were copied and only ASCII was inserted, so this is valid UTF-8.
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Repaired { text, fixes }
}

/// U+FFFD characters the body already held (EF BF BD), so they are not counted as repairs.
fn count_replacement_chars(body: &[u8]) -> usize {
    body.windows(3).filter(|w| *w == [0xEF, 0xBF, 0xBD]).count()
}

/// Copies (or repairs) the escape at the start of `s` (`s[0]` is a backslash) into `out`. Returns the bytes
/// consumed and the repairs made.
fn escape(s: &[u8], out: &mut Vec<u8>) -> (usize, usize) {
    match s.get(1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
            out.extend_from_slice(&s[..2]);
            (2, 0)
        }
        Some(b'u') => match hex4(s.get(2..6)) {
            Some(0xD800..=0xDBFF) => match (s.get(6..8), hex4(s.get(8..12))) {
                (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => {
                    out.extend_from_slice(&s[..12]);
                    (12, 0)
                }
                _ => {
                    out.extend_from_slice(REPLACEMENT);
                    (6, 1)
                }
            },
            Some(0xDC00..=0xDFFF) => {
                out.extend_from_slice(REPLACEMENT);
                (6, 1)
            }
            Some(_) => {
                out.extend_from_slice(&s[..6]);
                (6, 0)
            }
            // `\u` without four hex digits: keep the backslash as text.
            None => {
                out.extend_from_slice(b"\\\\");
                (1, 1)
            }
        },
        // An unknown escape (or a backslash at the very end): keep the backslash as text.
        _ => {
            out.extend_from_slice(b"\\\\");
            (1, 1)
        }
    }
}

fn hex4(s: Option<&[u8]>) -> Option<u16> {
    let s = s?;
    if s.len() != 4 || !s.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

/// An item of a listing that is not JSON even after [`repair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokenItem {
    /// Position in the page (0-based).
    pub(crate) index: usize,
    /// What follows `"id":` in the item's text, when it looks like a string; not validated.
    pub(crate) id: Option<String>,
}

/// A listing read item by item: the items that parse, in order, and the ones that do not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SplitListing {
    /// `(index, item)` of every item that parsed.
    pub(crate) items: Vec<(usize, Value)>,
    /// Every item that did not.
    pub(crate) broken: Vec<BrokenItem>,
}

/// Reads `{"success": true, "data": [ … ]}` whose JSON as a whole does not parse, item by item: the top
/// level is scanned for the `data` array and split at its top-level commas. `None` when no such array is
/// found or `success` is not `true` (then the answer is not a listing we can read at all). A truncated
/// body yields the items before the cut, and the cut one as broken.
pub(crate) fn split_listing(text: &str) -> Option<SplitListing> {
    let b = text.as_bytes();
    let mut scan = Scan::default();
    let mut spans = Vec::new();
    let mut item_start: Option<usize> = None;
    let mut in_data = false;
    let mut success = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if scan.in_string {
            scan.string_byte(c, i);
            i += 1;
            continue;
        }
        let item_level = in_data && scan.depth == 2;
        if item_level && item_start.is_none() && !c.is_ascii_whitespace() && c != b',' && c != b']'
        {
            item_start = Some(i);
        }
        match c {
            b'"' => scan.open_string(i),
            b'[' if scan.depth == 1 && scan.key(text) == Some("data") && !in_data => {
                in_data = true;
                scan.depth += 1;
            }
            b'{' | b'[' => scan.depth += 1,
            b'}' | b']' => {
                if item_level && c == b']' {
                    spans.extend(item_start.take().map(|s| (s, i)));
                    return success.then(|| parse_items(text, &spans));
                }
                scan.depth = scan.depth.saturating_sub(1);
            }
            b',' if item_level => spans.extend(item_start.take().map(|s| (s, i))),
            b':' if scan.depth == 1 => {
                scan.last_key = scan.last_string;
                if scan.key(text) == Some("success") {
                    success = text[i + 1..].trim_start().starts_with("true");
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !in_data || !success {
        return None;
    }
    spans.extend(item_start.map(|s| (s, b.len())));
    Some(parse_items(text, &spans))
}

/// String and nesting state of the scan in [`split_listing`].
#[derive(Debug, Default)]
struct Scan {
    depth: usize,
    in_string: bool,
    escaped: bool,
    string_start: usize,
    last_string: Option<(usize, usize)>,
    last_key: Option<(usize, usize)>,
}

impl Scan {
    fn open_string(&mut self, at: usize) {
        self.in_string = true;
        self.string_start = at + 1;
    }

    fn string_byte(&mut self, c: u8, at: usize) {
        if self.escaped {
            self.escaped = false;
        } else if c == b'\\' {
            self.escaped = true;
        } else if c == b'"' {
            self.in_string = false;
            self.last_string = Some((self.string_start, at));
        }
    }

    /// The key of the current top-level member, once its `:` was seen.
    fn key<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.last_key.and_then(|(s, e)| text.get(s..e))
    }
}

fn parse_items(text: &str, spans: &[(usize, usize)]) -> SplitListing {
    let mut split = SplitListing {
        items: Vec::new(),
        broken: Vec::new(),
    };
    for (index, &(start, end)) in spans.iter().enumerate() {
        let raw = text.get(start..end).unwrap_or_default().trim();
        match serde_json::from_str::<Value>(raw) {
            Ok(item) => split.items.push((index, item)),
            Err(_) => split.broken.push(BrokenItem {
                index,
                id: guess_id(raw),
            }),
        }
    }
    split
}

/// The string after the first `"id"` key of a broken item's text, if it looks like one.
fn guess_id(raw: &str) -> Option<String> {
    let after = &raw[raw.find("\"id\"")? + 4..];
    let value = after.trim_start().strip_prefix(':')?.trim_start();
    let value = value.strip_prefix('"')?;
    let id = &value[..value.find('"')?];
    (!id.is_empty() && !id.contains('\\')).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: &[u8]) -> (Value, usize) {
        let r = repair(body);
        (serde_json::from_str(&r.text).unwrap(), r.fixes)
    }

    #[test]
    fn valid_json_is_left_alone() {
        let body = r#"{"a":"x\"y\\z\u00e9\ud83d\ude00 é \n","b":[1,2]}"#;
        let r = repair(body.as_bytes());
        assert_eq!((r.text.as_str(), r.fixes), (body, 0));
        let with_fffd = "{\"a\":\"\u{FFFD}\"}";
        assert_eq!(repair(with_fffd.as_bytes()).fixes, 0);
    }

    #[test]
    fn lone_surrogates_and_bad_bytes_are_replaced() {
        let (v, fixes) = parse(br#"{"about":"hi \ud83d there","b":"\udc00","c":"\ud83dx\ude00"}"#);
        assert_eq!(v["about"], "hi \u{FFFD} there");
        assert_eq!(v["b"], "\u{FFFD}");
        assert_eq!(v["c"], "\u{FFFD}x\u{FFFD}");
        assert_eq!(fixes, 4);
        let (v, fixes) = parse(b"{\"about\":\"caf\xC3\xA9 \xFF end\"}");
        assert_eq!(v["about"], "café \u{FFFD} end");
        assert_eq!(fixes, 1);
    }

    #[test]
    fn control_characters_and_unknown_escapes_are_kept_as_text() {
        let (v, fixes) = parse(b"{\"a\":\"line1\nline2\ttab\",\"b\":\"C:\\x\\u12\"}");
        assert_eq!(v["a"], "line1\nline2\ttab");
        assert_eq!(v["b"], "C:\\x\\u12");
        assert_eq!(fixes, 4);
    }

    #[test]
    fn a_broken_item_costs_that_item_only() {
        let text = r#"{"success": true, "data": [{"id":"t1","about":"a, [b]"}, {"id": "t2", "about": "x" "y"}, {"id":"t3"} , 7, {"id":"t4","x":]}"#;
        assert!(serde_json::from_str::<Value>(text).is_err());
        let split = split_listing(text).unwrap();
        assert_eq!(
            split.items,
            vec![
                (0, json!({"id":"t1","about":"a, [b]"})),
                (2, json!({"id":"t3"})),
                (3, json!(7))
            ]
        );
        let broken: Vec<_> = split
            .broken
            .iter()
            .map(|b| (b.index, b.id.as_deref()))
            .collect();
        assert_eq!(broken, [(1, Some("t2")), (4, Some("t4"))]);
    }

    #[test]
    fn a_truncated_listing_keeps_the_items_before_the_cut() {
        let text = r#"{"success":true,"data":[{"id":"t1"},{"id":"t2"},{"id":"t3","about":"cut her"#;
        let split = split_listing(text).unwrap();
        assert_eq!(split.items.len(), 2);
        assert_eq!(
            split.broken,
            [BrokenItem {
                index: 2,
                id: Some("t3".into())
            }]
        );
    }

    #[test]
    fn what_is_not_a_successful_listing_is_not_split() {
        for text in [
            "<html>oops</html>",
            r#"{"success": false, "data": [{"id":"t1"} x]}"#,
            r#"{"data": [{"id":"t1"} x]}"#,
            r#"{"success": true, "data": {"id": "t1" x}}"#,
            r#"{"success": true, "other": [{"id":"t1"} x]}"#,
            "",
        ] {
            assert_eq!(split_listing(text), None, "{text}");
        }
        let empty = split_listing(r#"{"success":true,"data":[ ], "x": 1 2}"#).unwrap();
        assert!(empty.items.is_empty() && empty.broken.is_empty());
    }

    #[test]
    fn ids_are_guessed_only_when_they_look_like_strings() {
        assert_eq!(guess_id(r#"{"id" : "abc", "x": }"#).as_deref(), Some("abc"));
        assert_eq!(guess_id(r#"{"id": 12, "x": }"#), None);
        assert_eq!(guess_id(r#"{"x": }"#), None);
        assert_eq!(guess_id(r#"{"id": "a\"b"}"#), None);
    }
}
