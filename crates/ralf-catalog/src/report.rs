//! A step's status object, in the shape of the service cards (`step_id`, `result`, `summary`,
//! `artifacts`, `next_actions`, plus the task's id): derived from how the task ended and the
//! last lines of its log, or taken from the report a task writes at `$RALF_STEP_REPORT`.

use std::fmt;
use std::str::FromStr;

use ralf_core::TaskStatus;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::StepKind;

/// The environment variable holding the path where a step's task may write its report.
pub const STEP_REPORT_ENV: &str = "RALF_STEP_REPORT";
/// A larger report is not read; the status is derived from the task as if there were none.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// How many lines from the end of a task's log the derivation looks at.
pub const LOG_TAIL_LINES: usize = 20;

const MAX_SUMMARY_CHARS: usize = 500;
const MAX_LIST_ENTRIES: usize = 50;
const MAX_ENTRY_CHARS: usize = 500;

/// Which step of which service, and which attempt at it (from 1): `vaultwarden.smoke.2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId {
    pub service: String,
    pub kind: StepKind,
    pub attempt: u32,
}

impl StepId {
    pub fn new(service: impl Into<String>, kind: StepKind, attempt: u32) -> StepId {
        StepId {
            service: service.into(),
            kind,
            attempt,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.service, self.kind, self.attempt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a step id (service.apply|smoke|rollback.attempt)")]
pub struct InvalidStepId(String);

impl FromStr for StepId {
    type Err = InvalidStepId;

    fn from_str(text: &str) -> Result<StepId, InvalidStepId> {
        let invalid = || InvalidStepId(text.to_owned());
        let mut parts = text.rsplitn(3, '.');
        let attempt = parts
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(invalid)?;
        let kind = parts.next().and_then(StepKind::parse).ok_or_else(invalid)?;
        let service = parts.next().filter(|s| !s.is_empty()).ok_or_else(invalid)?;
        Ok(StepId::new(service, kind, attempt))
    }
}

impl Serialize for StepId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for StepId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .examples([serde_json::json!("vaultwarden.smoke.1")])
            .into()
    }
}

impl utoipa::ToSchema for StepId {}

/// How a step went; `OK` < `WARN` < `FAIL`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum StepResult {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
}

/// The status object of one finished step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepStatus {
    pub step_id: StepId,
    pub result: StepResult,
    pub summary: String,
    pub artifacts: Vec<String>,
    pub next_actions: Vec<String>,
    /// The task that ran the step; none when it could not be started.
    pub task_id: Option<i64>,
}

impl StepStatus {
    /// A failed step that has no task to derive from (its task could not be started or was
    /// lost).
    pub fn failed(step_id: StepId, task_id: Option<i64>, summary: impl Into<String>) -> StepStatus {
        StepStatus {
            step_id,
            result: StepResult::Fail,
            summary: clip(summary.into().trim(), MAX_SUMMARY_CHARS),
            artifacts: Vec::new(),
            next_actions: Vec::new(),
            task_id,
        }
    }
}

/// What a task may write, as JSON, at the path in `$RALF_STEP_REPORT`; every field optional,
/// others ignored:
///
/// ```json
/// {"result": "WARN", "summary": "7/10 PASS", "artifacts": ["reports/smoke.xml"],
///  "next_actions": ["check the mail relay"]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StepReport {
    pub result: Option<StepResult>,
    pub summary: Option<String>,
    #[serde(default)]
    pub artifacts: Vec<String>,
    #[serde(default)]
    pub next_actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the step report is larger than {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    #[error("the step report is not valid: {0}")]
    Invalid(String),
}

pub fn parse_step_report(text: &str) -> Result<StepReport, ReportError> {
    if text.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge);
    }
    serde_json::from_str(text).map_err(|e| ReportError::Invalid(e.to_string()))
}

/// The status of a finished step. `task` is how its task ended, `log_tail` the last lines of
/// its log (the last [`LOG_TAIL_LINES`] suffice), `report` the text of the task's step report if
/// it wrote one.
///
/// The result is the worse of the task's (`OK` on success, `FAIL` otherwise) and the report's: a
/// failed task never counts as passed, and a task that exits 0 can still report `WARN` or
/// `FAIL`. A report that cannot be read makes the result at least `WARN` and says why in
/// `next_actions`. Without a report, the summary is the last non-empty line of the log.
pub fn step_status<S: AsRef<str>>(
    step_id: StepId,
    task_id: Option<i64>,
    task: TaskStatus,
    log_tail: &[S],
    report: Option<&str>,
) -> StepStatus {
    let task_result = if task == TaskStatus::Success {
        StepResult::Ok
    } else {
        StepResult::Fail
    };
    let derived_summary = summary_from_log(task, log_tail);
    let mut status = StepStatus {
        step_id,
        result: task_result,
        summary: derived_summary.clone(),
        artifacts: Vec::new(),
        next_actions: Vec::new(),
        task_id,
    };
    match report.map(parse_step_report) {
        None => {}
        Some(Ok(report)) => {
            status.result = task_result.max(report.result.unwrap_or(task_result));
            if let Some(summary) = report.summary.filter(|s| !s.trim().is_empty()) {
                status.summary = clip(summary.trim(), MAX_SUMMARY_CHARS);
                if task_result == StepResult::Fail {
                    status.summary = clip(
                        &format!("{derived_summary}; the report says: {}", status.summary),
                        MAX_SUMMARY_CHARS,
                    );
                }
            }
            status.artifacts = clip_list(report.artifacts);
            status.next_actions = clip_list(report.next_actions);
        }
        Some(Err(e)) => {
            status.result = task_result.max(StepResult::Warn);
            status
                .next_actions
                .push(format!("fix the step report: {e}"));
        }
    }
    if status.result == StepResult::Fail
        && status.next_actions.is_empty()
        && let Some(id) = task_id
    {
        status
            .next_actions
            .push(format!("read the log of task {id}"));
    }
    status
}

fn summary_from_log<S: AsRef<str>>(task: TaskStatus, log_tail: &[S]) -> String {
    let last_line = log_tail
        .iter()
        .rev()
        .map(|line| strip_terminal_codes(line.as_ref()))
        .find(|line| !line.trim().is_empty());
    let ending = match task {
        TaskStatus::Success => None,
        TaskStatus::Error => Some("the task failed".to_owned()),
        TaskStatus::Stopped => Some("the task was stopped".to_owned()),
        other => Some(format!("the task ended as {}", other.as_str())),
    };
    let summary = match (ending, last_line) {
        (None, Some(line)) => line.trim().to_owned(),
        (None, None) => "the task succeeded".to_owned(),
        (Some(ending), Some(line)) => format!("{ending}: {}", line.trim()),
        (Some(ending), None) => ending,
    };
    clip(&summary, MAX_SUMMARY_CHARS)
}

/// The text without terminal escape sequences (colours) and other control characters.
fn strip_terminal_codes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final byte (@ to ~).
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn clip_list(entries: Vec<String>) -> Vec<String> {
    entries
        .into_iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .take(MAX_LIST_ENTRIES)
        .map(|e| clip(&e, MAX_ENTRY_CHARS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> StepId {
        "vaultwarden.smoke.1".parse().unwrap()
    }

    #[test]
    fn step_ids_read_back_even_with_dots_in_the_name() {
        let step: StepId = "api.example.org.rollback.12".parse().unwrap();
        assert_eq!(step, StepId::new("api.example.org", StepKind::Rollback, 12));
        assert_eq!(step.to_string(), "api.example.org.rollback.12");
        for bad in ["", "a.apply", "a.deploy.1", ".apply.1", "a.apply.x"] {
            assert!(bad.parse::<StepId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_succeeded_task_is_ok_with_the_last_log_line() {
        let log = [
            "PLAY RECAP",
            "\u{1b}[0;32mweb1 : ok=5 changed=1 failed=0\u{1b}[0m",
            "  ",
        ];
        let status = step_status(id(), Some(7), TaskStatus::Success, &log, None);
        assert_eq!(status.result, StepResult::Ok);
        assert_eq!(status.summary, "web1 : ok=5 changed=1 failed=0");
        assert!(status.next_actions.is_empty());
        assert_eq!(status.task_id, Some(7));

        let empty: [&str; 0] = [];
        let status = step_status(id(), Some(7), TaskStatus::Success, &empty, None);
        assert_eq!(status.summary, "the task succeeded");
    }

    #[test]
    fn a_failed_task_fails_and_points_at_its_log() {
        let log = ["TASK [install]", "fatal: [web1]: FAILED! => unreachable"];
        let status = step_status(id(), Some(7), TaskStatus::Error, &log, None);
        assert_eq!(status.result, StepResult::Fail);
        assert_eq!(
            status.summary,
            "the task failed: fatal: [web1]: FAILED! => unreachable"
        );
        assert_eq!(status.next_actions, ["read the log of task 7"]);

        let status = step_status(id(), None, TaskStatus::Stopped, &log[..0], None);
        assert_eq!(status.summary, "the task was stopped");
    }

    #[test]
    fn a_report_gives_the_summary_and_can_make_it_worse() {
        let report = r#"{"step_id": "ignored", "result": "WARN", "summary": "7/10 PASS",
            "artifacts": ["reports/smoke.xml", " "], "next_actions": ["check the mail relay"]}"#;
        let status = step_status(id(), Some(7), TaskStatus::Success, &["done"], Some(report));
        assert_eq!(status.result, StepResult::Warn);
        assert_eq!(status.summary, "7/10 PASS");
        assert_eq!(status.artifacts, ["reports/smoke.xml"]);
        assert_eq!(status.next_actions, ["check the mail relay"]);
        assert_eq!(status.step_id, id());

        let status = step_status(
            id(),
            Some(7),
            TaskStatus::Success,
            &["done"],
            Some(r#"{"result": "FAIL"}"#),
        );
        assert_eq!(status.result, StepResult::Fail);
        assert_eq!(status.summary, "done");
    }

    #[test]
    fn a_report_cannot_make_a_failed_task_pass() {
        let report = r#"{"result": "OK", "summary": "10/10 PASS"}"#;
        let status = step_status(id(), Some(7), TaskStatus::Error, &["boom"], Some(report));
        assert_eq!(status.result, StepResult::Fail);
        assert_eq!(
            status.summary,
            "the task failed: boom; the report says: 10/10 PASS"
        );
        assert_eq!(status.next_actions, ["read the log of task 7"]);
    }

    #[test]
    fn an_unreadable_report_is_a_warning() {
        let status = step_status(
            id(),
            Some(7),
            TaskStatus::Success,
            &["done"],
            Some("7/10 PASS"),
        );
        assert_eq!(status.result, StepResult::Warn);
        assert_eq!(status.summary, "done");
        assert!(
            status.next_actions[0].starts_with("fix the step report: "),
            "{:?}",
            status.next_actions
        );

        let huge = format!(r#"{{"summary": "{}"}}"#, "x".repeat(MAX_REPORT_BYTES));
        assert_eq!(parse_step_report(&huge), Err(ReportError::TooLarge));
    }

    #[test]
    fn long_texts_are_clipped() {
        let report = format!(
            r#"{{"summary": "{}", "artifacts": {}}}"#,
            "é".repeat(2000),
            serde_json::to_string(&vec!["a"; 200]).unwrap()
        );
        let status = step_status(id(), None, TaskStatus::Success, &["done"], Some(&report));
        assert_eq!(status.summary.chars().count(), MAX_SUMMARY_CHARS + 1);
        assert_eq!(status.artifacts.len(), MAX_LIST_ENTRIES);
    }

    #[test]
    fn the_status_object_has_the_service_cards_shape() {
        let status = step_status(id(), Some(7), TaskStatus::Success, &["7/10 PASS"], None);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({
                "step_id": "vaultwarden.smoke.1",
                "result": "OK",
                "summary": "7/10 PASS",
                "artifacts": [],
                "next_actions": [],
                "task_id": 7,
            })
        );
        let failed = StepStatus::failed(id(), None, "the template is gone");
        assert_eq!(failed.result, StepResult::Fail);
        assert!(StepResult::Ok < StepResult::Warn && StepResult::Warn < StepResult::Fail);
    }
}
