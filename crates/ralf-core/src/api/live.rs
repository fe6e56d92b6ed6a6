//! The frames of the live WebSockets, each a JSON text frame: `GET /api/ws` (Semaphore's feed,
//! [`FeedMessage`], plus ralf's `catalog_rollout` frames) and ralf's stream of one task,
//! `GET /api/project/{project_id}/tasks/{task_id}/stream` ([`StreamMessage`]). The server
//! sends them borrowing its text; a client reads them owned (`'static`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{TaskStatus, Timestamp};

/// A frame of `GET /api/ws` (Semaphore's shapes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedMessage<'a> {
    /// One output line of a task.
    Log {
        output: Cow<'a, str>,
        time: Timestamp,
        task_id: i64,
        project_id: i64,
    },
    /// A task changed status; `start`, `end` and `version` are the task's at that moment.
    Update {
        task_id: i64,
        project_id: i64,
        template_id: i64,
        status: TaskStatus,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
        version: Option<String>,
    },
    /// ralf's own (Semaphore has no service catalog): a catalog rollout changed; how it and
    /// each of its services stand now (`GET .../catalog/rollouts/{rollout_id}` has the rest).
    CatalogRollout {
        project_id: i64,
        rollout_id: i64,
        /// `running`, `waiting_approval`, `succeeded`, `failed` or `cancelled`.
        state: String,
        services: Vec<CatalogServiceState>,
    },
}

/// A service's state in a `catalog_rollout` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogServiceState {
    pub name: String,
    /// `pending`, `running`, `waiting_approval`, `deployed`, `degraded`, `failed`, `held`,
    /// `rolled_back`.
    pub state: String,
}

/// A frame of `GET /api/project/{project_id}/tasks/{task_id}/stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage<'a> {
    /// Output line `index` (0-based, as in `…/output?offset=`).
    Line {
        index: i64,
        time: Timestamp,
        output: Cow<'a, str>,
    },
    /// The task's status: first when the stream opens, then on every change.
    Status { status: TaskStatus },
    /// The task is finished and every line has been sent; the server closes the stream next.
    End { status: TaskStatus },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_as_written() {
        let time: Timestamp = serde_json::from_str("\"2026-01-02T03:04:05Z\"").unwrap();
        let line = StreamMessage::Line {
            index: 3,
            time,
            output: "ok".into(),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"type":"line","index":3,"time":"2026-01-02T03:04:05Z","output":"ok"}"#
        );
        assert_eq!(serde_json::from_str::<StreamMessage>(&text).unwrap(), line);
        let end: StreamMessage =
            serde_json::from_str(r#"{"type":"end","status":"success"}"#).unwrap();
        assert_eq!(
            end,
            StreamMessage::End {
                status: TaskStatus::Success
            }
        );
        let log = FeedMessage::Log {
            output: "hello".into(),
            time,
            task_id: 7,
            project_id: 1,
        };
        let text = serde_json::to_string(&log).unwrap();
        assert_eq!(
            text,
            r#"{"type":"log","output":"hello","time":"2026-01-02T03:04:05Z","task_id":7,"project_id":1}"#
        );
        assert_eq!(serde_json::from_str::<FeedMessage>(&text).unwrap(), log);
    }
}
