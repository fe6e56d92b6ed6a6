//! Settings ralf does not know: a `RALF_*` environment variable that no part of ralf reads
//! (a typo such as `RALF_LISTEN`, or a setting of another version) is named at start with the
//! nearest known variable, instead of being ignored in silence. Config file keys are checked
//! where the file is read (an unknown key there is an error); this module finds their nearest
//! known key too.

use std::ffi::OsString;

use super::layers::{CONFIG_FILE_VARS, FILE_KEYS, RALF_VARS};

/// `RALF_*` variables that ralf reads outside the server's settings: the client's and the
/// runner's, the log's, and those of ralf's own tests, benchmarks and CI.
const OTHER_RALF_VARS: &[&str] = &[
    "RALF_URL",
    "RALF_API_TOKEN",
    "RALF_PROJECT_ID",
    "RALF_RUNNER_TOKEN",
    "RALF_RUNNER_REGISTRATION_TOKEN",
    "RALF_VENV",
    "RALF_TEST_PG_URL",
    "RALF_BINARY",
    "RALF_BENCH_SANDBOX",
    "RALF_CI_ADVISORIES",
    "RALF_ANSIBLE_CORE_PIN",
    "RALF_TERRAFORM_PIN",
];

/// Names people reach for that ralf spells otherwise, with what to set instead.
const MEANT: &[(&str, &str)] = &[
    (
        "RALF_LISTEN",
        "RALF_INTERFACE and RALF_PORT (or the flag --listen)",
    ),
    ("RALF_HOST", "RALF_INTERFACE"),
    (
        "RALF_ADDRESS",
        "RALF_INTERFACE and RALF_PORT (or the flag --listen)",
    ),
    ("RALF_DATABASE_URL", "RALF_DB"),
    ("RALF_DATABASE", "RALF_DB"),
    ("RALF_LOG_LEVEL", "RALF_LOG"),
];

/// Every `RALF_*` variable ralf reads.
fn known_variables() -> Vec<String> {
    let mut known: Vec<String> = Vec::new();
    for var in RALF_VARS {
        known.push(var.name.to_string());
        if var.secret {
            known.push(format!("{}_FILE", var.name));
        }
    }
    known.extend(CONFIG_FILE_VARS.iter().map(|v| v.to_string()));
    known.extend(OTHER_RALF_VARS.iter().map(|v| v.to_string()));
    known
}

/// A warning for each `RALF_*` name among `names` that ralf does not read, naming the
/// nearest one it does.
pub fn unknown_variables(names: impl IntoIterator<Item = OsString>) -> Vec<String> {
    let known = known_variables();
    let mut warnings: Vec<String> = names
        .into_iter()
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.starts_with("RALF_") && !known.contains(name))
        .map(|name| {
            let meant = MEANT.iter().find(|(wrong, _)| *wrong == name);
            let near = meant
                .map(|(_, right)| *right)
                .or_else(|| nearest(&name, known.iter().map(String::as_str)));
            let hint = match near {
                Some(near) => format!("; did you mean {near}?"),
                None => String::new(),
            };
            format!("environment variable {name} is not a setting ralf knows, and is ignored{hint}")
        })
        .collect();
    warnings.sort();
    warnings
}

/// The config file key nearest to `key`, if one is near enough to be a likely typo.
pub(super) fn nearest_file_key(key: &str) -> Option<&'static str> {
    nearest(key, FILE_KEYS.iter().copied())
}

/// The candidate nearest to `name` by edit distance (ignoring case), if it is within a third
/// of the name's length (at least 2); a candidate that shares the name's words (`RALF_LISTEN` and
/// `RALF_METRICS_LISTEN`) counts as near too.
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    let words: Vec<&str> = name
        .split('_')
        .filter(|w| !w.is_empty() && *w != "ralf")
        .collect();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let lower = candidate.to_ascii_lowercase();
        let mut distance = edit_distance(&name, &lower);
        let shares_words = !words.is_empty()
            && words
                .iter()
                .all(|w| lower.split('_').any(|part| part == *w));
        let near_enough = (name.len() / 3).max(2);
        if distance > near_enough && !shares_words {
            continue;
        }
        if shares_words {
            distance = distance.min(near_enough);
        }
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Levenshtein distance over bytes (names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warn(names: &[&str]) -> Vec<String> {
        unknown_variables(names.iter().map(OsString::from))
    }

    #[test]
    fn known_and_foreign_variables_pass_in_silence() {
        let names = [
            "RALF_PORT",
            "RALF_DB",
            "RALF_ADMIN_PASSWORD_FILE",
            "RALF_CONFIG",
            "RALF_LOG",
            "RALF_URL",
            "PATH",
            "SEMAPHORE_PORT",
        ];
        assert_eq!(warn(&names), Vec::<String>::new());
    }

    #[test]
    fn a_typo_names_the_nearest_variable() {
        assert_eq!(
            warn(&["RALF_PROT"]),
            [
                "environment variable RALF_PROT is not a setting ralf knows, and is ignored; \
              did you mean RALF_PORT?"
            ]
        );
        let listen = warn(&["RALF_LISTEN"]);
        assert!(
            listen[0]
                .ends_with("did you mean RALF_INTERFACE and RALF_PORT (or the flag --listen)?"),
            "{listen:?}"
        );
        let metrics = warn(&["RALF_METRICS_LISTENER"]);
        assert!(
            metrics[0].ends_with("did you mean RALF_METRICS_LISTEN?"),
            "{metrics:?}"
        );
        let far = warn(&["RALF_SOMETHING_ELSE_ENTIRELY"]);
        assert!(far[0].ends_with("and is ignored"), "{far:?}");
    }

    #[test]
    fn nearest_file_key_for_a_typo() {
        assert_eq!(nearest_file_key("prot"), Some("port"));
        assert_eq!(nearest_file_key("web_hots"), Some("web_host"));
        assert_eq!(nearest_file_key("zzzzzzzz"), None);
    }
}
