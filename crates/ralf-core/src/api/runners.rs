//! Remote runners on the wire: global runners (no project, managed by administrators) and
//! project runners, their one-time registration tokens and their tags. A runner's credential is
//! answered once, when it is made, and never again.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::validate::{self, Checked, invalid};

/// The longest webhook URL ralf accepts.
pub const MAX_WEBHOOK_LEN: usize = 2048;

/// A runner as answered: never with its token or a hash of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Runner {
    pub id: i64,
    /// `null` for a global runner.
    pub project_id: Option<i64>,
    pub name: String,
    /// A URL the server calls when a task of this runner starts and ends; `""` for none.
    pub webhook: String,
    /// How many tasks the runner runs at once; 0 = as many as it is given.
    pub max_parallel_tasks: i64,
    pub active: bool,
    /// Always `false`: ralf has no default runner.
    pub is_default: bool,
    pub tags: Vec<String>,
    /// When the runner last contacted the server.
    pub touched: Option<Timestamp>,
    /// When someone last asked the runner to clear its cache.
    pub cleaning_requested: Option<Timestamp>,
    /// Whether the runner holds a credential.
    pub registered: bool,
}

/// `POST /api/runners`, `PUT /api/runners/{id}` and their project variants. Absent or `null`
/// fields take their defaults; on update an absent `active` keeps the runner's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerRequest {
    /// On update, when given, must be the path's.
    pub id: Option<i64>,
    /// For project runners, when given, must be the path's project; ignored for global runners.
    pub project_id: Option<i64>,
    pub name: Option<String>,
    pub webhook: Option<String>,
    pub max_parallel_tasks: Option<i64>,
    pub active: Option<bool>,
    pub tags: Option<Vec<String>>,
    /// Creation only, default `true`: the answer carries the runner's token. `false` makes a
    /// runner without credentials, inactive until it registers with a registration token.
    pub registered: Option<bool>,
}

/// A runner's editable fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerFields {
    pub name: String,
    pub webhook: String,
    pub max_parallel_tasks: i64,
    /// `None` keeps the state on update; a new runner is active unless told otherwise.
    pub active: Option<bool>,
    pub tags: Vec<String>,
}

impl RunnerRequest {
    /// Checks the request: the name and webhook are bounded, tags are non-empty words (no
    /// whitespace), kept once each in the order given.
    pub fn fields(&self) -> Checked<RunnerFields> {
        let name = self.name.as_deref().unwrap_or_default().trim().to_string();
        validate::short_text("name", &name)?;
        let webhook = webhook(self.webhook.as_deref())?;
        let max_parallel_tasks = max_parallel_tasks(self.max_parallel_tasks)?.unwrap_or(0);
        Ok(RunnerFields {
            name,
            webhook,
            max_parallel_tasks,
            active: self.active,
            tags: tags(self.tags.as_deref().unwrap_or_default())?,
        })
    }
}

/// A webhook: any text of at most [`MAX_WEBHOOK_LEN`] bytes, stored as Semaphore stores it
/// (ralf never calls it, so a URL of any scheme, or none, is kept as sent).
pub fn webhook(value: Option<&str>) -> Checked<String> {
    let url = value.unwrap_or_default().trim();
    if url.len() > MAX_WEBHOOK_LEN {
        return invalid(format!(
            "webhook is longer than {MAX_WEBHOOK_LEN} characters"
        ));
    }
    Ok(url.to_string())
}

/// A runner's `max_parallel_tasks` as sent: Semaphore stores a negative one too, and like 0
/// it means no limit (see [`Runner::task_cap`]).
pub fn max_parallel_tasks(value: Option<i64>) -> Checked<Option<i64>> {
    Ok(value)
}

impl Runner {
    /// How many tasks the runner may run at once; `None` for no limit (0 or negative).
    pub fn task_cap(&self) -> Option<usize> {
        usize::try_from(self.max_parallel_tasks)
            .ok()
            .filter(|&n| n > 0)
    }
}

/// Runner tags: each a non-empty string without whitespace of at most
/// [`validate::MAX_NAME_LEN`] characters; duplicates are dropped, the order is kept.
pub fn tags(values: &[String]) -> Checked<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for (i, tag) in values.iter().enumerate() {
        if tag.is_empty() {
            return invalid(format!("tags[{i}] must not be empty"));
        }
        if tag.chars().any(char::is_whitespace) {
            return invalid(format!("tags[{i}] {tag:?} must not contain whitespace"));
        }
        validate::short_text(&format!("tags[{i}]"), tag)?;
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok(tags)
}

/// The answer to creating a runner: the runner and, once, its token (`""` for a runner
/// created with `registered: false`).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerWithToken {
    #[serde(flatten)]
    pub runner: Runner,
    /// The `X-Runner-Token` the runner authenticates with; shown only here.
    pub token: String,
}

impl std::fmt::Debug for RunnerWithToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerWithToken")
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

/// `POST /api/runners/{id}/active` and its project variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerActive {
    pub active: bool,
}

/// A new one-time registration token of an unregistered runner.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerRegistrationToken {
    /// Good for one registration, for a limited time ([`REGISTRATION_TOKEN_LIFETIME_SECS`]).
    pub registration_token: String,
    pub runner_id: i64,
    /// `null` for a global runner.
    pub project_id: Option<i64>,
}

impl std::fmt::Debug for RunnerRegistrationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerRegistrationToken")
            .field("runner_id", &self.runner_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// How long a registration token is good for.
pub const REGISTRATION_TOKEN_LIFETIME_SECS: i64 = 3600;

/// One tag of `GET /api/runner_tags` and its project variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerTag {
    pub tag: String,
    /// How many of the runners counted carry the tag.
    pub number_of_runners: i64,
}

/// `POST /api/internal/runners`: a runner registers with its one-time token. Semaphore's
/// runners also send `webhook`, `max_parallel_tasks` and `public_key`; the first two, when
/// given, replace the runner's settings, `public_key` is ignored.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerRegistration {
    #[serde(default)]
    pub registration_token: String,
    pub webhook: Option<String>,
    pub max_parallel_tasks: Option<i64>,
    pub public_key: Option<String>,
}

impl std::fmt::Debug for RunnerRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerRegistration")
            .field("webhook", &self.webhook)
            .field("max_parallel_tasks", &self.max_parallel_tasks)
            .finish_non_exhaustive()
    }
}

/// What a registration may change besides the credential, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationFields {
    pub webhook: Option<String>,
    pub max_parallel_tasks: Option<i64>,
}

impl RunnerRegistration {
    pub fn fields(&self) -> Checked<RegistrationFields> {
        Ok(RegistrationFields {
            webhook: match &self.webhook {
                Some(url) => Some(webhook(Some(url))?),
                None => None,
            },
            max_parallel_tasks: max_parallel_tasks(self.max_parallel_tasks)?,
        })
    }
}

/// The answer to a registration: the runner's id and its token, shown only here.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisteredRunner {
    pub id: i64,
    pub token: String,
}

impl std::fmt::Debug for RegisteredRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredRunner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_are_words_kept_once() {
        assert_eq!(
            tags(&strings(&["linux", "gpu", "linux"])).unwrap(),
            strings(&["linux", "gpu"])
        );
        assert_eq!(
            tags(&strings(&["a", ""])).unwrap_err().0,
            "tags[1] must not be empty"
        );
        assert!(
            tags(&strings(&["two words"]))
                .unwrap_err()
                .0
                .contains("whitespace")
        );
        assert!(tags(&strings(&[&"x".repeat(256)])).is_err());
    }

    #[test]
    fn requests_are_checked() {
        let fields = RunnerRequest {
            name: Some(" r1 ".into()),
            ..Default::default()
        }
        .fields()
        .unwrap();
        assert_eq!(fields.name, "r1");
        assert_eq!(fields.max_parallel_tasks, 0);
        assert_eq!(fields.active, None);
        let negative = RunnerRequest {
            max_parallel_tasks: Some(-1),
            ..Default::default()
        };
        assert_eq!(negative.fields().unwrap().max_parallel_tasks, -1);
        let long = RunnerRequest {
            name: Some("x".repeat(256)),
            ..Default::default()
        };
        assert!(long.fields().unwrap_err().0.contains("longer than"));
        let odd_hook = RunnerRequest {
            webhook: Some("ftp://x".into()),
            ..Default::default()
        };
        assert_eq!(odd_hook.fields().unwrap().webhook, "ftp://x");
        let long_hook = RunnerRequest {
            webhook: Some("x".repeat(MAX_WEBHOOK_LEN + 1)),
            ..Default::default()
        };
        assert!(long_hook.fields().is_err());
    }

    #[test]
    fn tokens_stay_out_of_debug_output() {
        let runner = Runner {
            id: 1,
            project_id: None,
            name: "r".into(),
            webhook: String::new(),
            max_parallel_tasks: 0,
            active: true,
            is_default: false,
            tags: vec![],
            touched: None,
            cleaning_requested: None,
            registered: true,
        };
        let with = RunnerWithToken {
            runner,
            token: "sekrit".into(),
        };
        assert!(!format!("{with:?}").contains("sekrit"));
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["token"], "sekrit");
        assert_eq!(json["id"], 1);
        let registration = RunnerRegistration {
            registration_token: "sekrit".into(),
            ..Default::default()
        };
        assert!(!format!("{registration:?}").contains("sekrit"));
    }
}
