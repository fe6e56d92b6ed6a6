//! Secrets kept out of messages: the mask that replaces them and URLs shown without their
//! credentials (database URLs in logs and errors, repository URLs in task output).

/// What replaces a secret wherever one would be shown (task output, logs, `Debug`).
pub const MASK: &str = "**********";

/// `url` safe to show: a password in its user information (`scheme://user:password@host`) is
/// replaced by [`MASK`], and so is a user name that looks like an access token
/// (`https://<token>@github.com/...`); a `password=` query parameter (libpq's spelling) too.
/// Anything that is not `scheme://...` (a path, `git@host:repo`) is returned as it is.
///
/// The user information ends at the authority's last `@`. A URL whose password holds an
/// unescaped `/`, `?` or `#` is malformed, but its password is hidden all the same: when the
/// authority has no `@` and holds a `:` that no port follows, the last `@` of the whole URL
/// ends it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => Some(at),
        None if unescaped_password(&rest[..authority_end]) => rest.rfind('@'),
        None => None,
    };
    let shown = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            let after = &rest[at + 1..];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:{MASK}@{after}"),
                None if looks_like_token(userinfo) => format!("{scheme}://{MASK}@{after}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    redact_password_parameter(shown)
}

/// Whether an authority without `@` is the start of a password cut short by an unescaped `/`,
/// `?` or `#`: `user:pa` of `user:pa/ss@host`, not `host:8443` (a port).
fn unescaped_password(authority: &str) -> bool {
    match authority.split_once(':') {
        Some((_, after)) => !after.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// A user name that is more likely an access token than a person's or a machine's name: long,
/// and with a digit in it (`ghp_...`, `glpat-...`, a hex or base32 token).
fn looks_like_token(user: &str) -> bool {
    user.len() >= 16 && user.bytes().any(|b| b.is_ascii_digit())
}

/// `...?password=secret&...` → `...?password=**********&...` (any case of the name).
fn redact_password_parameter(url: String) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let mut hidden = false;
    let parameters: Vec<String> = query
        .split('&')
        .map(|parameter| match parameter.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                hidden = true;
                format!("{name}={MASK}")
            }
            _ => parameter.to_string(),
        })
        .collect();
    if !hidden {
        return url;
    }
    let mut shown = format!("{base}?{}", parameters.join("&"));
    if let Some(fragment) = fragment {
        shown.push('#');
        shown.push_str(fragment);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_taken_out_of_urls() {
        assert_eq!(
            redact_url("https://bob:pw@example.com/r.git"),
            "https://bob:**********@example.com/r.git"
        );
        assert_eq!(
            redact_url("postgres://ralf:s3cret@db.internal:5432/ralf"),
            "postgres://ralf:**********@db.internal:5432/ralf"
        );
        assert_eq!(redact_url("mysql://u:p@h/d"), "mysql://u:**********@h/d");
        // An `@` in the password, unescaped: the authority's last `@` ends the user information.
        assert_eq!(
            redact_url("postgres://u:p@ss@h/d"),
            "postgres://u:**********@h/d"
        );
        // An empty password is still a password field.
        assert_eq!(redact_url("https://bob:@h/r"), "https://bob:**********@h/r");
    }

    #[test]
    fn names_and_urls_without_credentials_are_shown() {
        assert_eq!(
            redact_url("https://bob@example.com/r.git"),
            "https://bob@example.com/r.git"
        );
        assert_eq!(
            redact_url("ssh://git@example.com:22/r.git"),
            "ssh://git@example.com:22/r.git"
        );
        assert_eq!(redact_url("git@host:r.git"), "git@host:r.git");
        assert_eq!(redact_url("file:///tmp/r"), "file:///tmp/r");
        assert_eq!(redact_url("/srv/repos/r"), "/srv/repos/r");
        assert_eq!(
            redact_url("https://example.com/@scope/r.git"),
            "https://example.com/@scope/r.git"
        );
        assert_eq!(
            redact_url("https://u:p@example.com/a@b"),
            "https://u:**********@example.com/a@b"
        );
        assert_eq!(
            redact_url("https://example.com:8443/r@x.git"),
            "https://example.com:8443/r@x.git"
        );
        assert_eq!(
            redact_url("postgres://u@h/d?sslmode=require"),
            "postgres://u@h/d?sslmode=require"
        );
    }

    #[test]
    fn token_like_user_names_are_hidden() {
        assert_eq!(
            redact_url("https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r.git"),
            "https://**********@github.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://glpat-Xy12abcdEFGHijklMNOP@gitlab.com/o/r.git"),
            "https://**********@gitlab.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://oauth2:glpat-Xy12abcd@gitlab.com/o/r.git"),
            "https://oauth2:**********@gitlab.com/o/r.git"
        );
    }

    #[test]
    fn malformed_passwords_are_hidden_too() {
        // A `/` in the password, unescaped, ends the authority early.
        assert_eq!(
            redact_url("postgres://u:pa/ss@h/d"),
            "postgres://u:**********@h/d"
        );
        assert_eq!(
            redact_url("postgres://u:pa?ss@h/d"),
            "postgres://u:**********@h/d"
        );
    }

    #[test]
    fn password_parameters_are_hidden() {
        assert_eq!(
            redact_url("postgres://u@h/d?sslmode=require&password=s3cret"),
            "postgres://u@h/d?sslmode=require&password=**********"
        );
        assert_eq!(
            redact_url("postgres://h/d?PASSWORD=s3cret#x"),
            "postgres://h/d?PASSWORD=**********#x"
        );
    }
}
