//! Writing a service's `status` and `deployed_at` back into its file, line by line, so that
//! everything else the operator wrote (formatting, comments, key order, unknown keys) stays as
//! it is: an existing top-level `status:` or `deployed_at:` line gets its value replaced (its
//! comment kept), a missing one is appended at the end. The edited text is parsed again and
//! refused unless it is still the same service with the new values, so a file ralf cannot edit
//! this way (a flow mapping, a value spread over several lines) is left alone, saying why.

use ralf_core::Timestamp;

use crate::model::ServiceState;
use crate::parse::parse_service;

/// The values a service's file gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub status: ServiceState,
    pub deployed_at: Timestamp,
}

/// `deployed_at` as the files write it: `2026-02-15T11:00:00Z`.
pub fn format_time(at: Timestamp) -> String {
    at.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `text` (the file `file`) with `status` and `deployed_at` set to `recorded`; `Ok(None)` when
/// it says so already. Refused, saying why, when the edited file would not read back as the
/// same service with these values.
pub fn edit(text: &str, file: &str, recorded: &Recorded) -> Result<Option<String>, String> {
    let before = parse_service(text, file).map_err(|e| e.to_string())?;
    let status = recorded.status.as_str();
    let deployed_at = format_time(recorded.deployed_at);
    let mut edited = set_key(text, "status", status);
    edited = set_key(&edited, "deployed_at", &deployed_at);
    if edited == text {
        return Ok(None);
    }
    let after = parse_service(&edited, file)
        .map_err(|e| format!("{file} cannot be edited line by line: {e}"))?;
    let same_service = after.name == before.name
        && after.depends_on == before.depends_on
        && after.apply == before.apply
        && after.environment == before.environment;
    let written = after.status.as_deref() == Some(status)
        && after.deployed_at.map(format_time).as_deref() == Some(deployed_at.as_str());
    if !same_service || !written {
        return Err(format!(
            "{file} cannot be edited line by line (is it a flow mapping, or are status and \
             deployed_at written over several lines?); left as it is"
        ));
    }
    Ok(Some(edited))
}

/// `text` with the top-level `key`'s value replaced by `value` (its comment and the spacing
/// after the colon kept), or `key: value` appended when there is none.
fn set_key(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 4);
    let mut found = false;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            out.push_str(line);
            continue;
        };
        if found {
            // A key twice is the parser's business; the first one is edited.
            out.push_str(line);
            continue;
        }
        found = true;
        let (body, ending) = split_ending(rest);
        let value_and_comment = body.trim_start();
        let spacing = &body[..body.len() - value_and_comment.len()];
        let comment = comment_of(value_and_comment).unwrap_or("");
        let old_value = value_and_comment[..value_and_comment.len() - comment.len()].trim();
        out.push_str(key);
        out.push(':');
        out.push_str(if spacing.is_empty() { " " } else { spacing });
        out.push_str(value);
        out.push_str(comment);
        out.push_str(ending);
        if old_value.is_empty() {
            // The value was on the following, indented lines: they go.
            while lines
                .peek()
                .is_some_and(|next| next.starts_with([' ', '\t']) && !next.trim().is_empty())
            {
                lines.next();
            }
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}: {value}\n"));
    }
    out
}

/// A line's text and its line ending (`\r\n`, `\n` or none).
fn split_ending(line: &str) -> (&str, &str) {
    if let Some(body) = line.strip_suffix("\r\n") {
        (body, "\r\n")
    } else if let Some(body) = line.strip_suffix('\n') {
        (body, "\n")
    } else {
        (line, "")
    }
}

/// The comment after a plain or quoted scalar value (with the blanks before it), if any.
fn comment_of(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if (b == b'"' || b == b'\'') && i == 0 => quote = Some(b),
            None if b == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                let start = value[..i].trim_end().len();
                return Some(&value[start..]);
            }
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp(text.parse().unwrap())
    }

    fn recorded() -> Recorded {
        Recorded {
            status: ServiceState::Deployed,
            deployed_at: at("2026-03-01T10:20:30Z"),
        }
    }

    #[test]
    fn existing_lines_get_new_values_and_keep_their_comments() {
        let text = "# the database\nname: db   # CT 2010\napply: Deploy\nstatus:   pending  # set by ralf\n\
                    deployed_at: 2026-01-01T00:00:00Z\nct: 4014 # kept\n";
        let edited = edit(text, "db.yaml", &recorded()).unwrap().unwrap();
        assert_eq!(
            edited,
            "# the database\nname: db   # CT 2010\napply: Deploy\nstatus:   deployed  # set by ralf\n\
             deployed_at: 2026-03-01T10:20:30Z\nct: 4014 # kept\n"
        );
    }

    #[test]
    fn missing_keys_are_appended_at_the_end() {
        let text = "name: db\napply: Deploy\nenvironment:\n  status: not this one\n";
        let edited = edit(text, "db.yaml", &recorded()).unwrap().unwrap();
        assert_eq!(
            edited,
            "name: db\napply: Deploy\nenvironment:\n  status: not this one\n\
             status: deployed\ndeployed_at: 2026-03-01T10:20:30Z\n"
        );
        let no_newline = edit("name: db\napply: 3", "db.yaml", &recorded())
            .unwrap()
            .unwrap();
        assert_eq!(
            no_newline,
            "name: db\napply: 3\nstatus: deployed\ndeployed_at: 2026-03-01T10:20:30Z\n"
        );
    }

    #[test]
    fn crlf_files_stay_crlf_and_an_unchanged_file_is_left_alone() {
        let text = "name: db\r\napply: Deploy\r\nstatus: degraded\r\ndeployed_at: 2026-03-01T10:20:30Z\r\n";
        let degraded = Recorded {
            status: ServiceState::Degraded,
            ..recorded()
        };
        assert_eq!(edit(text, "db.yaml", &degraded).unwrap(), None);
        let edited = edit(text, "db.yaml", &recorded()).unwrap().unwrap();
        assert_eq!(edited, text.replace("degraded", "deployed"));
    }

    #[test]
    fn a_value_on_the_next_lines_is_replaced_whole() {
        let text = "name: db\napply: Deploy\nstatus:\n  pending\nenabled: true\n";
        let edited = edit(text, "db.yaml", &recorded()).unwrap().unwrap();
        assert_eq!(
            edited,
            "name: db\napply: Deploy\nstatus: deployed\nenabled: true\ndeployed_at: 2026-03-01T10:20:30Z\n"
        );
    }

    #[test]
    fn a_flow_mapping_is_refused_and_left_alone() {
        let e = edit("{name: db, apply: Deploy}\n", "db.yaml", &recorded()).unwrap_err();
        assert!(e.contains("cannot be edited line by line"), "{e}");
    }

    #[test]
    fn quoted_values_with_hashes_keep_their_comment_apart() {
        assert_eq!(comment_of("\"a # b\" # c"), Some(" # c"));
        assert_eq!(comment_of("pending#x"), None);
        assert_eq!(comment_of("pending # x"), Some(" # x"));
    }
}
