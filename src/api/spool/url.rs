//! PostgreSQL URLs: how `Spool::open` tells them from a sled path, and how they are shown.

/// Whether `s` names a PostgreSQL database (a `postgres://` or `postgresql://` URL) rather
/// than a sled database directory: what [`crate::Spool::open`] decides by.
#[must_use]
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A PostgreSQL URL without its password (what [`crate::Spool::path`] shows).
pub(super) fn open_postgres_name(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((auth, host)) if !auth.contains('/') => {
            let user = auth.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(all(test, not(feature = "postgres")))]
mod without_postgres {
    #[test]
    fn a_postgres_url_says_to_enable_the_feature() {
        let err = crate::Spool::open("postgres://app:secret@db.example/app").unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
        let msg = err.to_string();
        assert!(msg.contains("feature `postgres`"), "{msg}");
        assert!(!msg.contains("secret"), "the password is not shown: {msg}");
    }
}
