//! The wire between a server and a remote `ralf runner` (under `/api/internal/runners`, each
//! request authenticated by the runner's own token in `X-Runner-Token`; registration is
//! [`crate::api::runners`]' `RunnerRegistration` and `RegisteredRunner`): the runner asks for
//! work and reports what it holds (`poll`, which is also its heartbeat), streams each task's
//! output in batches, and reports each task's status changes. The server answers a poll with
//! new jobs (a [`Job`], secrets decrypted, sent only on this channel) and with the current
//! status of every task the runner holds, from which the runner learns of stops,
//! confirmations and rejections.

use serde::{Deserialize, Deserializer, Serialize};

use crate::TaskStatus;
use crate::job::{CheckoutInfo, Job};

/// `POST /api/internal/runners/poll`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Poll {
    /// The tasks the runner holds (running, or with a plan waiting for a confirmation), each
    /// with the status the runner last knew of it. The server answers at once when one of
    /// them has changed.
    #[serde(default)]
    pub holding: Vec<HeldTask>,
    /// How many more tasks it can take now.
    pub free: u32,
    /// How long the server may hold the answer back while there is nothing to say, in
    /// seconds (capped by the server).
    #[serde(default)]
    pub wait_secs: u32,
}

/// The answer to a [`Poll`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PollAnswer {
    /// Tasks claimed for this runner: each is `starting`; the runner reports `running` when it
    /// begins.
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// The status now of each task named in `holding`.
    #[serde(default)]
    pub held: Vec<HeldTask>,
}

/// A task a runner holds and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTask {
    pub task_id: i64,
    /// Spelt as the API spells it (`running`, `stopping`, `confirmed`, ...); `None`: deleted,
    /// or (from a runner) unknown.
    #[serde(default, deserialize_with = "status_or_unknown")]
    pub status: Option<TaskStatus>,
}

/// A status, or `None` for `null` and for a word that is no status: runners of earlier versions
/// sent `deleted` and `gone` for the tasks whose status they did not know.
fn status_or_unknown<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TaskStatus>, D::Error> {
    let word: Option<String> = Option::deserialize(deserializer)?;
    Ok(word.as_deref().and_then(TaskStatus::parse))
}

/// `POST /api/internal/runners/tasks/{id}/output`: the next lines of a task, in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutputBatch {
    /// `(time, text)`, times in RFC 3339.
    #[serde(default)]
    pub lines: Vec<(chrono::DateTime<chrono::Utc>, String)>,
    /// The commit the task checked out, once known.
    #[serde(default)]
    pub checkout: Option<CheckoutInfo>,
}

/// `POST /api/internal/runners/tasks/{id}/status`: the task moved on the runner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// `running` (it began, or began applying a confirmed plan), `waiting_confirmation`,
    /// `success`, `error` or `stopped`.
    pub status: TaskStatus,
}

/// The answer to a [`StatusReport`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusAnswer {
    /// Whether the task went on as reported; `false` when it was stopped or ended meanwhile,
    /// and the runner should stop it.
    pub accepted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_travel_as_the_api_spells_them() {
        let held = HeldTask {
            task_id: 7,
            status: Some(TaskStatus::WaitingConfirmation),
        };
        assert_eq!(
            serde_json::to_string(&held).unwrap(),
            r#"{"task_id":7,"status":"waiting_confirmation"}"#
        );
        let deleted = HeldTask {
            task_id: 7,
            status: None,
        };
        assert_eq!(
            serde_json::to_string(&deleted).unwrap(),
            r#"{"task_id":7,"status":null}"#
        );
        let report = StatusReport {
            status: TaskStatus::Stopped,
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"status":"stopped"}"#
        );
    }

    #[test]
    fn words_of_earlier_runners_read_as_unknown() {
        for (word, status) in [
            (json!("running"), Some(TaskStatus::Running)),
            (json!(null), None),
            (json!("deleted"), None),
            (json!("gone"), None),
        ] {
            let held: HeldTask =
                serde_json::from_value(json!({"task_id": 1, "status": word})).unwrap();
            assert_eq!(held.status, status, "{word}");
        }
        let missing: HeldTask = serde_json::from_value(json!({"task_id": 1})).unwrap();
        assert_eq!(missing.status, None);
        // A report must name a status.
        assert!(serde_json::from_value::<StatusReport>(json!({"status": "gone"})).is_err());
    }
}
