//! Checks on values from the outside, shared by every resource: each failure is a message that
//! names the field and says what is wrong, ready to show to the user.

/// The longest name or title ralf accepts.
pub const MAX_NAME_LEN: usize = 255;
/// The longest free text (descriptions, inventories, scripts) ralf accepts.
pub const MAX_TEXT_LEN: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub type Checked<T> = Result<T, Invalid>;

pub fn invalid<T>(message: impl Into<String>) -> Checked<T> {
    Err(Invalid(message.into()))
}

/// A required, non-blank name of at most [`MAX_NAME_LEN`] characters; returned trimmed.
pub fn name(field: &str, value: &str) -> Checked<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return invalid(format!("{field} must not be empty"));
    }
    short_text(field, trimmed)?;
    Ok(trimmed.to_string())
}

/// An optional text of at most [`MAX_NAME_LEN`] characters.
pub fn short_text(field: &str, value: &str) -> Checked<()> {
    if value.chars().count() > MAX_NAME_LEN {
        return invalid(format!("{field} is longer than {MAX_NAME_LEN} characters"));
    }
    Ok(())
}

/// A free text of at most [`MAX_TEXT_LEN`] bytes.
pub fn long_text(field: &str, value: &str) -> Checked<()> {
    if value.len() > MAX_TEXT_LEN {
        return invalid(format!(
            "{field} is larger than {} KiB",
            MAX_TEXT_LEN / 1024
        ));
    }
    Ok(())
}

/// A string that must hold a JSON object (Semaphore keeps extra vars and env this way).
/// Empty means `{}`.
pub fn json_object(field: &str, value: &str) -> Checked<String> {
    long_text(field, value)?;
    if value.trim().is_empty() {
        return Ok("{}".to_string());
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(_)) => Ok(value.to_string()),
        Ok(_) => invalid(format!("{field} must be a JSON object")),
        Err(e) => invalid(format!("{field} is not valid JSON: {e}")),
    }
}

/// A string that must hold a JSON array of strings (template and task `arguments`).
/// Empty means no arguments.
pub fn json_string_array(field: &str, value: &str) -> Checked<Vec<String>> {
    long_text(field, value)?;
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str::<Vec<String>>(value).or_else(|_| {
        invalid(format!(
            "{field} must be a JSON array of strings, like [\"-v\"]"
        ))
    })
}

/// A path relative to the repository that does not leave it: not absolute, and no `..` that
/// climbs above the repository's root. (Lexical only: the executor also resolves the path in
/// the task's checkout, where a symbolic link may still lead out.)
pub fn inside_repository(field: &str, path: &str) -> Checked<()> {
    inside_repository_from(field, "", path)
}

/// `path`, taken relative to `base` (a directory relative to the repository's root, such as a
/// template's `working_directory`; empty: the root), does not leave the repository.
pub fn inside_repository_from(field: &str, base: &str, path: &str) -> Checked<()> {
    short_text(field, path)?;
    if path.contains('\0') {
        return invalid(format!("{field} must not contain NUL characters"));
    }
    let bytes = path.as_bytes();
    let windows_drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if path.starts_with('/') || path.starts_with('\\') || windows_drive {
        return invalid(format!(
            "{field} must be relative to the repository, not an absolute path"
        ));
    }
    let mut depth = 0usize;
    for part in base.split(['/', '\\']).chain(path.split(['/', '\\'])) {
        match part {
            "" | "." => {}
            ".." => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Invalid(format!("{field} must stay inside the repository")))?;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// The path of the first string (or object key) in `value` that holds a NUL.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            if key.contains('\0') {
                return Some(path.replace('\0', "\\u0000"));
            }
            nul_path(item, path)
        }),
        _ => None,
    }
}

/// A query string or path must not carry a NUL character (`%00`): the message names the query
/// parameter, or `path` when it is in the path.
pub fn no_nul_in_url(path: &str, query: Option<&str>) -> Checked<()> {
    if path.contains("%00") {
        return invalid("the path must not contain a NUL character (%00)");
    }
    for pair in query.unwrap_or_default().split('&') {
        if pair.contains("%00") {
            let name = pair
                .split('=')
                .next()
                .unwrap_or_default()
                .replace("%00", "");
            return invalid(format!(
                "query parameter {name:?} must not contain a NUL character (%00)"
            ));
        }
    }
    Ok(())
}

/// A JSON request body must not carry a NUL character in any string or key (PostgreSQL cannot
/// store one in text, and no field has a use for it): the message names the first field that
/// does, as a path like `params.tags[1]`.
pub fn no_nul_in_value(value: &serde_json::Value) -> Checked<()> {
    match nul_path(value, String::new()) {
        None => Ok(()),
        Some(field) => {
            let field = if field.is_empty() { "the body" } else { &field };
            invalid(format!(
                "{field} must not contain a NUL character (\\u0000)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_and_named() {
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert!(no_nul_in_value(&json(r#"{"name": "a\\u0000b", "x": [1]}"#)).is_ok());
        let e = no_nul_in_value(&json(
            r#"{"name": "web", "params": {"tags": ["a", "b\u0000"]}}"#,
        ));
        assert_eq!(
            e.unwrap_err().0,
            "params.tags[1] must not contain a NUL character (\\u0000)"
        );
        let e = no_nul_in_value(&json(r#"{"a\u0000": 1}"#)).unwrap_err().0;
        assert!(e.starts_with("a\\u0000 must not"), "{e}");
        assert!(no_nul_in_url("/api/x", Some("sort=name&order=asc")).is_ok());
        assert_eq!(
            no_nul_in_url("/api/x", Some("sort=a%00b")).unwrap_err().0,
            "query parameter \"sort\" must not contain a NUL character (%00)"
        );
        assert!(no_nul_in_url("/api/user/tokens/a%00", None).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  web  ").unwrap(), "web");
        assert_eq!(name("name", " ").unwrap_err().0, "name must not be empty");
        assert!(
            name("name", &"x".repeat(256))
                .unwrap_err()
                .0
                .contains("longer than 255")
        );
    }

    #[test]
    fn json_fields_say_what_is_wrong() {
        assert_eq!(json_object("json", "").unwrap(), "{}");
        assert!(
            json_object("json", "[1]")
                .unwrap_err()
                .0
                .contains("JSON object")
        );
        assert!(
            json_object("env", "{")
                .unwrap_err()
                .0
                .starts_with("env is not valid JSON")
        );
        assert_eq!(
            json_string_array("arguments", "[\"-v\"]").unwrap(),
            vec!["-v"]
        );
        assert!(json_string_array("arguments", "[1]").is_err());
    }

    #[test]
    fn repository_paths_stay_inside() {
        assert!(inside_repository("wd", "roles/../site").is_ok());
        assert!(inside_repository("wd", ".").is_ok());
        assert!(inside_repository("wd", "").is_ok());
        assert_eq!(
            inside_repository("playbook", "a/../../etc").unwrap_err().0,
            "playbook must stay inside the repository"
        );
        assert_eq!(
            inside_repository("playbook", "/etc/passwd").unwrap_err().0,
            "playbook must be relative to the repository, not an absolute path"
        );
        assert!(inside_repository("wd", "C:\\x").is_err());
        assert!(inside_repository("wd", "..\\x").is_err());
        assert!(inside_repository("wd", "a\0b").is_err());
        // Relative to a working directory: `..` may climb back to the root, not above it.
        assert!(inside_repository_from("playbook", "ansible/web", "../site.yml").is_ok());
        assert!(inside_repository_from("playbook", "ansible", "../../x").is_err());
        assert!(inside_repository_from("playbook", "ansible", "/etc/passwd").is_err());
    }
}
