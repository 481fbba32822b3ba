//! `application/x-www-form-urlencoded` decoding, for query strings and POSTed forms.
//!
//! Bounded by its input: at most [`MAX_FIELDS`] pairs are kept (the server bounds the
//! body), and bad percent escapes decode as the literal text, never an error.

/// Pairs kept from one query string or form; the rest is ignored.
pub(crate) const MAX_FIELDS: usize = 2048;

/// Decoded `name=value` pairs, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `a=1&b=x%20y` (`+` is a space).
    pub(crate) fn parse(s: &str) -> Form {
        Form(
            s.split('&')
                .filter(|p| !p.is_empty())
                .take(MAX_FIELDS)
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// Parses a form body (invalid UTF-8 is replaced, then rejected by the fields' checks).
    pub(crate) fn parse_bytes(b: &[u8]) -> Form {
        Form::parse(&String::from_utf8_lossy(b))
    }

    /// The first value of `name`, trimmed; `None` when missing or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` untrimmed (a payload keeps its whitespace).
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Percent-decoding with `+` as a space; a malformed escape stays as written.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_plus_and_escapes() {
        let f = Form::parse("a=1&b=x+y%20z&c=%3Cs%3E&d&&e=%zz&f=%4");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y z"));
        assert_eq!(f.get("c"), Some("<s>"));
        assert_eq!(f.get("d"), None);
        assert_eq!(f.get("e"), Some("%zz"));
        assert_eq!(f.get("f"), Some("%4"));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn repeated_names_and_bounds() {
        let f = Form::parse("id=1&id=&id=2");
        assert_eq!(f.all("id").collect::<Vec<_>>(), ["1", "2"]);
        let many = "x=1&".repeat(MAX_FIELDS + 10);
        assert_eq!(Form::parse(&many).all("x").count(), MAX_FIELDS);
        assert_eq!(Form::parse_bytes(b"a=%FF%FE").get("a"), Some("\u{fffd}\u{fffd}"));
    }
}
