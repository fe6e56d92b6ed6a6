//! The catalog's shapes on the wire, under `/api/project/{project_id}/catalog`: the project's
//! catalog settings, services with their states, plans, rollout requests, rollouts, and the
//! body of the 400 an invalid catalog answers. Shared by the server and its clients.

use ralf_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{CatalogErrors, Location, Priority, ServiceState};
use crate::plan::{Plan, Selection};
use crate::report::StepStatus;
use crate::rollout::{Cancellation, RolloutOptions, RolloutState, ServiceProgress};

/// Where a catalog is when its settings do not say.
pub const DEFAULT_PATH: &str = "catalog/projects/";

/// The most services a project's rollouts may run at once.
pub const MAX_PARALLELISM: u32 = 64;

/// A project's catalog: where its files are and how its rollouts run. A member it does not know
/// is refused (a misspelt `repository_id` must not unset the catalog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// The project's repository holding the catalog; `null`: the project has no catalog.
    pub repository_id: Option<i64>,
    /// The folder of service files (or one file), relative to the repository's root.
    #[schema(default = "catalog/projects/")]
    pub path: String,
    /// The branch read; `null`: the repository's branch.
    pub branch: Option<String>,
    /// Whether a finished rollout commits the `status` and `deployed_at` of the services it
    /// deployed back into their files and pushes the commit (the repository's key must be
    /// allowed to push).
    pub write_back: bool,
    /// How many services a rollout runs at once (1 to 64).
    #[schema(default = 1)]
    pub parallelism: u32,
    /// A cron pattern (5 fields, UTC) at which a rollout of every service not yet deployed
    /// starts; `null`: none.
    pub schedule: Option<String>,
    /// A cron pattern (5 fields, UTC) at which a health check (the smoke of every deployed
    /// service) starts; `null`: none.
    pub check_schedule: Option<String>,
    /// Write-only: the secret of the inbound webhook that deploys the next pending service
    /// (`POST /api/project/{project_id}/catalog/webhook`), at least 16 characters; `""`
    /// removes it, `null` or absent keeps it. Never returned.
    #[serde(skip_serializing)]
    #[schema(write_only)]
    pub webhook_secret: Option<String>,
    /// Read-only: whether the webhook has a secret (and so is on). Ignored in a request.
    #[schema(read_only)]
    pub webhook_secret_set: bool,
}

impl Default for CatalogSettings {
    fn default() -> CatalogSettings {
        CatalogSettings {
            repository_id: None,
            path: DEFAULT_PATH.to_owned(),
            branch: None,
            write_back: false,
            parallelism: 1,
            schedule: None,
            check_schedule: None,
            webhook_secret: None,
            webhook_secret_set: false,
        }
    }
}

/// One service of the catalog as `GET .../catalog/services` shows it: what its file declares
/// and what ralf recorded of its last rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub depends_on: Vec<String>,
    pub enabled: bool,
    /// A person confirms before its apply starts.
    pub approve: bool,
    /// Where it stands now: the unfinished rollout's view while one has it in hand, else what
    /// its last rollout recorded, else what its file says.
    pub state: ServiceState,
    /// When it was last deployed (by ralf, or as its file says).
    pub deployed_at: Option<Timestamp>,
    /// The catalog's commit it was last deployed from.
    pub commit: Option<String>,
    /// The status object of its last finished step.
    pub last_result: Option<StepStatus>,
    pub last_task_id: Option<i64>,
    /// Its file.
    pub file: String,
}

/// A plan as `GET .../catalog/plan` answers it: the plan and the catalog's commit it was made
/// from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanView {
    pub commit: String,
    pub plan: Plan,
}

/// What a rollout deploys: at most one of `names` (with the dependencies they need),
/// `priority` (the services of one priority not yet deployed) and `next` (the next N services
/// a rollout of all would run); none: every enabled service not yet deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutRequest {
    pub names: Option<Vec<String>>,
    pub priority: Option<Priority>,
    pub next: Option<usize>,
}

impl RolloutRequest {
    /// The selection asked for; a message when the request asks for two at once or for
    /// nothing (no names, `next` 0).
    pub fn selection(&self) -> Result<Selection, String> {
        let given = [
            self.names.is_some(),
            self.priority.is_some(),
            self.next.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err("give at most one of names, priority and next".into());
        }
        Ok(match (&self.names, self.priority, self.next) {
            (Some(names), _, _) if names.is_empty() => {
                return Err("names: name at least one service".into());
            }
            (Some(names), _, _) => Selection::Named {
                names: names.clone(),
            },
            (_, Some(priority), _) => Selection::Priority { priority },
            (_, _, Some(0)) => return Err("next: must be at least 1".into()),
            (_, _, Some(count)) => Selection::Next { count },
            (None, None, None) => Selection::All,
        })
    }
}

/// A rollout in a list: what it was asked to do and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutSummary {
    pub id: i64,
    pub project_id: i64,
    pub state: RolloutState,
    pub selection: Selection,
    /// The catalog's commit it was planned from.
    pub commit: String,
    /// Who started it (`null`: a user since deleted, or ralf itself).
    pub started_by: Option<i64>,
    pub created: Timestamp,
    pub finished: Option<Timestamp>,
    /// Its services, in plan order.
    pub services: Vec<String>,
}

/// One rollout with every service's progress: its steps, their tasks and status objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutView {
    pub id: i64,
    pub project_id: i64,
    pub state: RolloutState,
    pub selection: Selection,
    pub commit: String,
    pub options: RolloutOptions,
    pub started_by: Option<i64>,
    pub created: Timestamp,
    pub finished: Option<Timestamp>,
    pub cancelled: Option<Cancellation>,
    /// The advisor's advice on the order of the rollout, when one is configured and answered
    /// in time. Its diagnosis of a failed step is the step's `advice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// What the write-back did once the rollout ended: absent while none was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back: Option<WriteBackResult>,
    /// In plan order.
    pub services: Vec<ServiceProgress>,
}

/// The write-back of a finished rollout: the commit pushed, or why there is none. A failed
/// write-back never fails the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WriteBackResult {
    /// The commit pushed to the catalog's branch; `null` when none was (nothing to change, or
    /// it failed).
    pub commit: Option<String>,
    /// Why nothing was pushed, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The services whose files were changed.
    #[serde(default)]
    pub services: Vec<String>,
    pub at: Timestamp,
}

/// One error of an invalid catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogProblem {
    pub file: String,
    /// 1-based; 0 when the whole file is meant.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// The 400 of an invalid catalog: every error, each with its file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvalidCatalogBody {
    pub error: String,
    pub errors: Vec<CatalogProblem>,
}

impl From<&CatalogErrors> for InvalidCatalogBody {
    fn from(errors: &CatalogErrors) -> InvalidCatalogBody {
        let count = errors.0.len();
        let first = errors
            .0
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let error = match count {
            0 | 1 => format!("the service catalog is invalid: {first}"),
            n => format!(
                "the service catalog is invalid: {first} (and {} more)",
                n - 1
            ),
        };
        InvalidCatalogBody {
            error,
            errors: errors
                .0
                .iter()
                .map(|e| {
                    let Location { file, line, column } = e.location.clone();
                    CatalogProblem {
                        file,
                        line,
                        column,
                        message: e.problem.to_string(),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_selects_one_thing() {
        let request = |json: &str| serde_json::from_str::<RolloutRequest>(json).unwrap();
        assert_eq!(request("{}").selection(), Ok(Selection::All));
        assert_eq!(
            request(r#"{"names": ["a"]}"#).selection(),
            Ok(Selection::Named {
                names: vec!["a".into()]
            })
        );
        assert_eq!(
            request(r#"{"priority": "P2"}"#).selection(),
            Ok(Selection::Priority {
                priority: Priority::P2
            })
        );
        assert_eq!(
            request(r#"{"next": 2}"#).selection(),
            Ok(Selection::Next { count: 2 })
        );
        assert!(
            request(r#"{"next": 2, "priority": "P1"}"#)
                .selection()
                .is_err()
        );
        assert!(request(r#"{"next": 0}"#).selection().is_err());
        assert!(request(r#"{"names": []}"#).selection().is_err());
        assert!(serde_json::from_str::<RolloutRequest>(r#"{"name": "a"}"#).is_err());
    }

    #[test]
    fn rollout_states_are_stored_as_they_are_sent() {
        for state in RolloutState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(RolloutState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn settings_default_to_the_catalog_folder_and_one_service_at_a_time() {
        let settings: CatalogSettings = serde_json::from_str(r#"{"repository_id": 3}"#).unwrap();
        assert_eq!(settings.path, "catalog/projects/");
        assert_eq!(settings.parallelism, 1);
        assert_eq!(settings.branch, None);
        assert!(!settings.write_back);
        assert!(serde_json::from_str::<CatalogSettings>(r#"{"repositry_id": 3}"#).is_err());
    }
}
