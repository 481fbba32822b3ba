//! The fields of a query string or a posted form, as the server decoded them.
//!
//! Bounded by its input: at most [`MAX_FIELDS`] pairs are kept (the server bounds the
//! head and the body).

/// Pairs kept from one query string or form; the rest is ignored.
pub(crate) const MAX_FIELDS: usize = 2048;

/// Decoded `name=value` pairs, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// From decoded pairs (the request's query, or its form body).
    pub(crate) fn from_pairs(mut pairs: Vec<(String, String)>) -> Form {
        pairs.truncate(MAX_FIELDS);
        Form(pairs)
    }

    /// Parses `a=1&b=x%20y` (`+` is a space; pairs that do not decode are dropped).
    #[cfg(test)]
    pub(crate) fn parse(s: &str) -> Form {
        Form::from_pairs(crate::http::request::parse_query(s))
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
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_trimmed_raw_and_repeated() {
        let f = Form::parse("a=1&b=x+y%20z&c=%3Cs%3E&d&&e=%zz&f=%20p%20");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y z"));
        assert_eq!(f.get("c"), Some("<s>"));
        assert_eq!(f.get("d"), None);
        assert_eq!(f.get("e"), None);
        assert_eq!(f.get("f"), Some("p"));
        assert_eq!(f.raw("f"), Some(" p "));
        assert_eq!(f.get("missing"), None);
        let f = Form::parse("id=1&id=&id=2");
        assert_eq!(f.all("id").collect::<Vec<_>>(), ["1", "2"]);
        let many = "x=1&".repeat(MAX_FIELDS + 10);
        assert_eq!(Form::parse(&many).all("x").count(), MAX_FIELDS);
    }
}
