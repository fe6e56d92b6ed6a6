//! Schedules on the wire: a template run by a cron pattern (`type` `""`) or once at `run_at`
//! (`type` `"run_at"`), with the overrides a task of `POST /tasks` accepts (`task_params`).
//!
//! Cron patterns have the five standard fields (minute, hour, day of month, month, day of
//! week) or are one of `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@hourly`, as
//! Semaphore's `cron.ParseStandard` takes them; seconds and years are refused.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::api::tasks::TaskRequest;
use crate::validate::{self, Checked, invalid};

/// `type` of a schedule that fires once, at `run_at`.
pub const RUN_AT: &str = "run_at";

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// The cron pattern; may be empty for a `run_at` schedule.
    pub cron_format: String,
    pub name: String,
    pub active: bool,
    /// `""` (cron) or `"run_at"` (once, at `run_at`).
    #[serde(rename = "type")]
    pub kind: String,
    pub run_at: Option<Timestamp>,
    /// The task's overrides (`environment`, `message`, `git_branch`, `arguments`, `params`, ...),
    /// as `POST /tasks` takes them.
    pub task_params: Option<TaskRequest>,
    /// The template's name (Semaphore's lists show it).
    pub tpl_name: String,
    /// ralf: when the schedule fires next; `null` when it will not (inactive, or a `run_at`
    /// schedule that fired).
    pub next_run: Option<Timestamp>,
    /// ralf: when it last created a task.
    pub last_fired: Option<Timestamp>,
}

/// `POST /schedules` and `PUT /schedules/{id}`. `active` defaults to `true`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleRequest {
    pub id: Option<i64>,
    pub project_id: Option<i64>,
    pub template_id: Option<i64>,
    pub cron_format: Option<String>,
    pub name: Option<String>,
    pub active: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub run_at: Option<Timestamp>,
    pub task_params: Option<TaskRequest>,
}

/// `PUT /schedules/{id}/active`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleActive {
    pub active: bool,
}

/// `POST /schedules/validate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CronValidation {
    #[serde(default)]
    pub cron_format: String,
}

/// A schedule request checked for its shape; that the template is the project's is the
/// store's check, that the overrides suit the template the handler's.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFields {
    pub template_id: i64,
    pub cron_format: String,
    pub name: String,
    pub active: bool,
    /// `""` or [`RUN_AT`].
    pub kind: String,
    /// Whole seconds.
    pub run_at: Option<Timestamp>,
    /// Without `template_id`, `template_name` and `secret`.
    pub task_params: Option<TaskRequest>,
}

impl ScheduleFields {
    pub fn is_run_at(&self) -> bool {
        self.kind == RUN_AT
    }

    /// When an active schedule fires next, seen at `now`: the next cron time after `now`, or
    /// `run_at` (which may have passed: it then fires at once). `None` when inactive.
    pub fn next_run(&self, now: Timestamp) -> Option<Timestamp> {
        if !self.active {
            return None;
        }
        if self.is_run_at() {
            return self.run_at;
        }
        next_cron_time(&self.cron_format, now)
    }
}

impl ScheduleRequest {
    pub fn check(&self) -> Checked<ScheduleFields> {
        let template_id = match self.template_id {
            Some(id) if id > 0 => id,
            _ => return invalid("template_id is required"),
        };
        let name = self.name.as_deref().unwrap_or_default().trim().to_string();
        validate::short_text("name", &name)?;
        let kind = self.kind.as_deref().unwrap_or_default().trim().to_string();
        let cron_format = self
            .cron_format
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string();
        let run_at = match kind.as_str() {
            "" => {
                check_cron(&cron_format)?;
                None
            }
            RUN_AT => match self.run_at {
                Some(t) => {
                    if !cron_format.is_empty() {
                        validate::short_text("cron_format", &cron_format)?;
                    }
                    Some(Timestamp(t.0.trunc_subsecs(0)))
                }
                None => return invalid("run_at is required for a schedule of type run_at"),
            },
            other => {
                return invalid(format!(
                    "type must be \"\" (cron) or \"run_at\", not {other:?}"
                ));
            }
        };
        let task_params = match &self.task_params {
            None => None,
            Some(p) => {
                if p.secret.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                    return invalid(
                        "task_params.secret: a schedule cannot keep secret answers \
                         (they are never stored)",
                    );
                }
                Some(TaskRequest {
                    template_id: None,
                    template_name: None,
                    secret: None,
                    ..p.clone()
                })
            }
        };
        Ok(ScheduleFields {
            template_id,
            cron_format,
            name,
            active: self.active.unwrap_or(true),
            kind,
            run_at,
            task_params,
        })
    }
}

/// Parses a cron pattern of the five standard fields (or an `@daily`-like nickname).
pub fn parse_cron(pattern: &str) -> Checked<croner::Cron> {
    use croner::parser::{CronParser, Seconds, Year};
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return invalid("cron_format is required");
    }
    validate::short_text("cron_format", pattern)?;
    if !pattern.starts_with('@') {
        let fields = pattern.split_whitespace().count();
        if fields != 5 {
            return invalid(format!(
                "cron_format must have 5 fields (minute hour day-of-month month day-of-week), \
                 not {fields}: {pattern:?}"
            ));
        }
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| validate::Invalid(format!("cron_format {pattern:?} is not valid: {e}")))
}

/// Checks a cron pattern: it parses. One that never matches (`0 0 30 2 *`) is stored, as
/// Semaphore stores it, and never starts a task.
pub fn check_cron(pattern: &str) -> Checked<()> {
    parse_cron(pattern).map(|_| ())
}

/// The first time after `after` that the pattern matches (in UTC, whole minutes); `None` for
/// a pattern that does not parse or never matches.
pub fn next_cron_time(pattern: &str, after: Timestamp) -> Option<Timestamp> {
    let cron = parse_cron(pattern).ok()?;
    let next: DateTime<Utc> = cron.find_next_occurrence(&after.0, false).ok()?;
    Some(Timestamp(next.trunc_subsecs(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        serde_json::from_value(serde_json::json!(text)).unwrap()
    }

    #[test]
    fn five_fields_only() {
        assert!(check_cron("* * * * *").is_ok());
        assert!(check_cron("*/5 1-3 * * MON-FRI").is_ok());
        assert!(check_cron("@daily").is_ok());
        assert!(check_cron("0 0 30 2 *").is_ok());
        assert_eq!(next_cron_time("0 0 30 2 *", Timestamp(Utc::now())), None);
        let e = check_cron("0 * * * * *").unwrap_err().0;
        assert!(e.contains("5 fields"), "{e}");
        assert!(check_cron("* * * *").is_err());
        assert!(check_cron("61 * * * *").is_err());
        assert!(check_cron("").is_err());
        assert!(check_cron("every minute").is_err());
    }

    #[test]
    fn next_time_is_after_and_on_the_minute() {
        let t = next_cron_time("* * * * *", at("2026-01-02T03:04:05Z")).unwrap();
        assert_eq!(t, at("2026-01-02T03:05:00Z"));
        let t = next_cron_time("* * * * *", at("2026-01-02T03:05:00Z")).unwrap();
        assert_eq!(t, at("2026-01-02T03:06:00Z"));
        let t = next_cron_time("30 4 * * *", at("2026-01-02T05:00:00Z")).unwrap();
        assert_eq!(t, at("2026-01-03T04:30:00Z"));
    }

    #[test]
    fn requests_are_checked() {
        let request =
            |json: serde_json::Value| -> ScheduleRequest { serde_json::from_value(json).unwrap() };
        let f = request(serde_json::json!({"template_id": 3, "cron_format": " 0 3 * * * "}))
            .check()
            .unwrap();
        assert_eq!(f.cron_format, "0 3 * * *");
        assert!(f.active && !f.is_run_at());
        let e = request(serde_json::json!({"cron_format": "* * * * *"}))
            .check()
            .unwrap_err()
            .0;
        assert_eq!(e, "template_id is required");
        let e = request(serde_json::json!({"template_id": 1, "type": "run_at"}))
            .check()
            .unwrap_err()
            .0;
        assert!(e.contains("run_at is required"), "{e}");
        let f = request(serde_json::json!({"template_id": 1, "type": "run_at",
                                           "run_at": "2030-01-01T00:00:00.750Z"}))
        .check()
        .unwrap();
        assert_eq!(f.run_at, Some(at("2030-01-01T00:00:00Z")));
        assert_eq!(f.next_run(Timestamp::now()), f.run_at);
        assert!(
            request(serde_json::json!({"template_id": 1, "type": "weekly"}))
                .check()
                .is_err()
        );
        let e = request(
            serde_json::json!({"template_id": 1, "cron_format": "* * * * *",
                                           "task_params": {"secret": "{\"a\":1}"}}),
        )
        .check()
        .unwrap_err()
        .0;
        assert!(e.contains("secret"), "{e}");
        let f = request(
            serde_json::json!({"template_id": 1, "cron_format": "* * * * *",
                                           "active": false}),
        )
        .check()
        .unwrap();
        assert_eq!(f.next_run(Timestamp::now()), None);
    }
}
