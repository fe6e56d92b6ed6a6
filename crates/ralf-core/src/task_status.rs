//! The task state machine: Semaphore's statuses and which changes are allowed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Waiting,
    Starting,
    WaitingConfirmation,
    Confirmed,
    Rejected,
    Running,
    Stopping,
    Stopped,
    Success,
    Error,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 10] = [
        TaskStatus::Waiting,
        TaskStatus::Starting,
        TaskStatus::WaitingConfirmation,
        TaskStatus::Confirmed,
        TaskStatus::Rejected,
        TaskStatus::Running,
        TaskStatus::Stopping,
        TaskStatus::Stopped,
        TaskStatus::Success,
        TaskStatus::Error,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Waiting => "waiting",
            TaskStatus::Starting => "starting",
            TaskStatus::WaitingConfirmation => "waiting_confirmation",
            TaskStatus::Confirmed => "confirmed",
            TaskStatus::Rejected => "rejected",
            TaskStatus::Running => "running",
            TaskStatus::Stopping => "stopping",
            TaskStatus::Stopped => "stopped",
            TaskStatus::Success => "success",
            TaskStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A finished task never changes status again.
    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Stopped | TaskStatus::Success | TaskStatus::Error | TaskStatus::Rejected
        )
    }

    /// Whether entering this status tells the project's alert channels (docs/notifications.md):
    /// the ends a person wants to hear of (success, error, stopped; a rejected plan is one
    /// stopped by a person) and a plan waiting for confirmation.
    pub const fn is_notifiable(self) -> bool {
        matches!(
            self,
            TaskStatus::Success
                | TaskStatus::Error
                | TaskStatus::Stopped
                | TaskStatus::Rejected
                | TaskStatus::WaitingConfirmation
        )
    }

    /// Whether a task in `self` may move to `next`. Finished tasks are final; a stopping task
    /// only ends; a waiting task can start, be stopped, or fail before it starts.
    pub fn can_become(self, next: TaskStatus) -> bool {
        use TaskStatus::*;
        if self.is_finished() || self == next {
            return false;
        }
        match self {
            Waiting => matches!(next, Starting | Stopped | Error),
            Starting => matches!(next, Running | Stopping | Stopped | Error),
            Running => matches!(
                next,
                WaitingConfirmation | Stopping | Stopped | Success | Error
            ),
            WaitingConfirmation => {
                matches!(next, Confirmed | Rejected | Stopping | Stopped | Error)
            }
            Confirmed => matches!(next, Running | Stopping | Stopped | Success | Error),
            Stopping => matches!(next, Stopped | Error),
            Rejected | Stopped | Success | Error => false,
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_tasks_are_final() {
        for done in [
            TaskStatus::Success,
            TaskStatus::Error,
            TaskStatus::Stopped,
            TaskStatus::Rejected,
        ] {
            for next in TaskStatus::ALL {
                assert!(!done.can_become(next), "{done} -> {next}");
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
