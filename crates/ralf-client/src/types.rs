//! The answers of the API as this client reads them: only the fields it uses are typed, each
//! may be missing or `null` (then its default), and every other field is kept in `extra`, so a
//! value serialized again is what the server sent. Semaphore's answers differ from ralf's in
//! detail (a single task has no `tpl_*` fields there, templates lack ralf's settings), which
//! ralf-core's strict types would refuse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use ralf_core::TaskStatus;

/// Fields of an answer that this client does not read itself.
pub type Extra = Map<String, Value>;

/// A value or, for `null`, the type's default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /api/info`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Info {
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /api/user`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(deserialize_with = "nullable")]
    pub id: i64,
    #[serde(deserialize_with = "nullable")]
    pub username: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub admin: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An API token; its `id` is the token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiToken {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    #[serde(deserialize_with = "nullable")]
    pub id: i64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One choice of an `enum` survey variable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SurveyValue {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub value: String,
}

/// A question a template asks when a task starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SurveyVar {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    /// `""` (a string), `int`, `enum`, `secret`, `text`, or whatever else a server knows.
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub required: bool,
    #[serde(deserialize_with = "nullable")]
    pub values: Vec<SurveyValue>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A template (also an entry of the template list, which adds `tasks` and `last_task`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Template {
    #[serde(deserialize_with = "nullable")]
    pub id: i64,
    #[serde(deserialize_with = "nullable")]
    pub project_id: i64,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// `ansible` when empty.
    #[serde(deserialize_with = "nullable")]
    pub app: String,
    #[serde(deserialize_with = "nullable")]
    pub playbook: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    pub repository_id: Option<i64>,
    pub inventory_id: Option<i64>,
    pub environment_id: Option<i64>,
    pub git_branch: Option<String>,
    pub arguments: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub allow_override_args_in_task: bool,
    #[serde(deserialize_with = "nullable")]
    pub allow_override_branch_in_task: bool,
    #[serde(deserialize_with = "nullable")]
    pub survey_vars: Vec<SurveyVar>,
    pub last_task: Option<Box<Task>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Template {
    pub fn app(&self) -> &str {
        if self.app.is_empty() {
            "ansible"
        } else {
            &self.app
        }
    }
}

/// A task.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Task {
    #[serde(deserialize_with = "nullable")]
    pub id: i64,
    #[serde(deserialize_with = "nullable")]
    pub template_id: i64,
    #[serde(deserialize_with = "nullable")]
    pub project_id: i64,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
    pub environment: Option<String>,
    pub git_branch: Option<String>,
    pub commit_hash: Option<String>,
    pub user_id: Option<i64>,
    /// The name of the user who started it (task lists; ralf also on single tasks).
    pub user_name: Option<String>,
    /// The template's name (task lists; ralf also on single tasks).
    pub tpl_alias: Option<String>,
    pub created: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Task {
    /// The status, if it is one this client knows.
    pub fn status(&self) -> Option<TaskStatus> {
        TaskStatus::parse(&self.status)
    }

    /// A finished task never changes again.
    pub fn is_finished(&self) -> bool {
        self.status().is_some_and(TaskStatus::is_finished)
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        time(self.created.as_deref())
    }
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        time(self.start.as_deref())
    }
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        time(self.end.as_deref())
    }
}

/// An RFC 3339 time; Go's zero time (which some servers send for "never") counts as none.
pub fn time(text: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text?)
        .ok()?
        .with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

/// One line of a task's output, with its place in the output (0 is the first line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLine {
    pub index: i64,
    pub time: String,
    pub output: String,
}

/// A line as `…/output` answers it (no index: its place in the answer gives it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawOutputLine {
    #[serde(deserialize_with = "nullable")]
    pub time: String,
    #[serde(deserialize_with = "nullable")]
    pub output: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_semaphore_task_without_ralfs_fields_reads_and_keeps_everything() {
        let sent = json!({
            "id": 7, "template_id": 2, "status": "waiting_confirmation", "debug": false,
            "playbook": "", "environment": "{}", "secret": "", "arguments": null,
            "git_branch": null, "message": null, "inventory_id": null,
            "start": null, "end": null, "created": "2025-06-01T10:00:00.123456Z",
            "params": {"plan": true}
        });
        let task: Task = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(task.status(), Some(TaskStatus::WaitingConfirmation));
        assert_eq!(task.message, "");
        assert!(task.created_at().is_some() && task.started_at().is_none());
        let again = serde_json::to_value(&task).unwrap();
        assert_eq!(again["params"], json!({"plan": true}));
        assert_eq!(again["debug"], false);
    }

    #[test]
    fn templates_with_unknown_survey_types_and_nulls_read() {
        let t: Template = serde_json::from_value(json!({
            "id": 1, "project_id": 1, "name": "deploy", "app": "", "survey_vars": null,
            "last_task": null, "vaults": null
        }))
        .unwrap();
        assert_eq!(t.app(), "ansible");
        assert!(t.survey_vars.is_empty());
        let v: SurveyVar =
            serde_json::from_value(json!({"name": "x", "type": "boolean", "values": null}))
                .unwrap();
        assert_eq!(v.kind, "boolean");
    }

    #[test]
    fn the_zero_time_is_no_time() {
        assert!(time(Some("0001-01-01T00:00:00Z")).is_none());
        assert!(time(Some("2025-01-01T00:00:00+02:00")).is_some());
    }
}
