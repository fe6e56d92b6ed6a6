//! Database URLs: the forms `db` and `--db` take (`sqlite:PATH`, `postgres://...`), a command
//! line's database (a URL or a plain SQLite path), the pieces of the PostgreSQL URL built from
//! Semaphore's variables (host and port, options as a query, percent-encoding), and a URL's
//! password hidden for messages.

use std::path::PathBuf;

use ralf_core::redact::redact_url;
use ralf_server::DatabaseSettings;

pub(super) const REDACTED: &str = "**********";

/// `sqlite:PATH`, `sqlite://PATH`, `sqlite:///ABS/PATH`, `postgres://...`, `postgresql://...`.
pub(super) fn parse_db_url(url: &str) -> Result<DatabaseSettings, &'static str> {
    const EXPECTED: &str = "expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or postgres://...";
    let url = url.trim();
    let (scheme, rest) = url.split_once(':').ok_or(EXPECTED)?;
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            // sqlite:///abs → /abs, sqlite://rel → rel, sqlite:path → path
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                Err("the SQLite URL names no file; expected sqlite:PATH or sqlite:///ABSOLUTE/PATH")
            } else if path == ":memory:" || path.starts_with(":memory:?") {
                Err("an in-memory SQLite database cannot hold the server's data; name a file")
            } else if path.contains('?') {
                Err("SQLite URL options (after '?') are not supported")
            } else {
                Ok(DatabaseSettings::Sqlite {
                    path: PathBuf::from(path),
                })
            }
        }
        "postgres" | "postgresql" => {
            let authority = rest.strip_prefix("//").ok_or(EXPECTED)?;
            if authority.is_empty() || url.chars().any(char::is_whitespace) {
                Err("expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            } else {
                Ok(DatabaseSettings::Postgres {
                    url: url.to_string(),
                })
            }
        }
        _ => Err(EXPECTED),
    }
}

/// A database named on the command line: a URL as [`parse_db_url`] takes it, or a plain path of
/// an SQLite file.
pub fn parse_database(text: &str) -> Result<DatabaseSettings, String> {
    let scheme = text
        .trim()
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite" | "postgres" | "postgresql") => {
            parse_db_url(text).map_err(|problem| format!("{:?}: {problem}", redact_url(text)))
        }
        _ if text.trim().is_empty() => Err("the database is empty; name a file or a URL".into()),
        Some(_) if text.contains("://") => Err(format!(
            "{:?}: expected sqlite:///ABSOLUTE/PATH, a file path or postgres://...",
            redact_url(text)
        )),
        _ => Ok(DatabaseSettings::Sqlite {
            path: PathBuf::from(text),
        }),
    }
}

/// `host`, `host:5432`, `[::1]:5432`, `::1` → (host for the URL, port if given).
pub(super) fn split_db_host(host: &str) -> Option<(String, Option<String>)> {
    if host.contains(['/', '@', '?', '#']) || host.chars().any(char::is_whitespace) {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        return match rest {
            "" => Some((name.to_string(), None)),
            _ => Some((name.to_string(), Some(rest.strip_prefix(':')?.to_string()))),
        };
    }
    match host.matches(':').count() {
        0 => Some((host.to_string(), None)),
        1 => {
            let (name, port) = host.split_once(':')?;
            (!name.is_empty()).then(|| (name.to_string(), Some(port.to_string())))
        }
        // A bare IPv6 address.
        _ => Some((format!("[{host}]"), None)),
    }
}

/// `{"sslmode":"disable"}` → `sslmode=disable`; `None` if it is not a flat JSON object.
pub(super) fn options_query(json: &str) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    let mut pairs = Vec::new();
    for (key, value) in &object {
        let value = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => return None,
        };
        pairs.push(format!(
            "{}={}",
            percent_encode(key),
            percent_encode(&value)
        ));
    }
    Some(pairs.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(super) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_url_forms() {
        let sqlite = |path: &str| DatabaseSettings::Sqlite {
            path: PathBuf::from(path),
        };
        assert_eq!(
            parse_db_url("sqlite:///abs/path.db"),
            Ok(sqlite("/abs/path.db"))
        );
        assert_eq!(parse_db_url("sqlite://rel.db"), Ok(sqlite("rel.db")));
        assert_eq!(parse_db_url("sqlite:dir/x.db"), Ok(sqlite("dir/x.db")));
        assert!(parse_db_url("sqlite:").is_err());
        assert!(parse_db_url("sqlite::memory:").is_err());
        assert!(parse_db_url("postgres://").is_err());
        assert!(parse_db_url("mysql://h/d").is_err());
        assert!(parse_db_url("/srv/x.db").is_err());
    }
}
