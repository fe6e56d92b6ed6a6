//! The catalog's vocabulary: a service as its YAML file declares it, priorities, template
//! references, the steps and states a service goes through, and errors that point into a file.

use std::collections::BTreeMap;
use std::fmt;

use ralf_core::Timestamp;
use serde::{Deserialize, Serialize};

/// Where something is: a catalog file and, in it, a line and column (both 1-based; 0 when the
/// whole file is meant, e.g. when it cannot be read).
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Location {
    /// The file as a whole.
    pub fn file(file: impl Into<String>) -> Location {
        Location {
            file: file.into(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// How urgent a service is: `P0` goes first, `P4` last. A file without `priority` is `P4`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Priority {
    P0,
    P1,
    P2,
    P3,
    #[default]
    P4,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::P0,
        Priority::P1,
        Priority::P2,
        Priority::P3,
        Priority::P4,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }

    /// `P0`..`P4`, in either case.
    pub fn parse(text: &str) -> Option<Priority> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task template named by a service: by id (`apply: 12`) or by name
/// (`apply: Deploy Service`). A quoted number (`apply: "12"`) is a name.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(untagged)]
pub enum TemplateRef {
    Id(i64),
    Name(String),
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateRef::Id(id) => write!(f, "template {id}"),
            TemplateRef::Name(name) => write!(f, "template {name:?}"),
        }
    }
}

/// The three steps a service can run, each a task of its own template.
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
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Apply,
    Smoke,
    Rollback,
}

impl StepKind {
    pub const ALL: [StepKind; 3] = [StepKind::Apply, StepKind::Smoke, StepKind::Rollback];

    pub const fn as_str(self) -> &'static str {
        match self {
            StepKind::Apply => "apply",
            StepKind::Smoke => "smoke",
            StepKind::Rollback => "rollback",
        }
    }

    pub fn parse(text: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a service stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Not deployed yet (or waiting in a rollout for its dependencies or a free slot).
    Pending,
    /// One of its steps is running, or the next one is about to start (a retry included).
    Running,
    /// Its dependencies are up; a person must confirm its apply.
    WaitingApproval,
    /// Applied, and the smoke (if any) passed.
    Deployed,
    /// Applied, and the smoke passed with warnings (`WARN`). Counts as up for its dependents.
    Degraded,
    /// Apply or smoke failed (and the rollback, if any, failed too), or its apply was rejected.
    Failed,
    /// A dependency failed, directly or not: never applied in this rollout.
    Held,
    /// Apply or smoke failed and the rollback succeeded.
    RolledBack,
    /// `enabled: false` in its file.
    Disabled,
}

impl ServiceState {
    pub const ALL: [ServiceState; 9] = [
        ServiceState::Pending,
        ServiceState::Running,
        ServiceState::WaitingApproval,
        ServiceState::Deployed,
        ServiceState::Degraded,
        ServiceState::Failed,
        ServiceState::Held,
        ServiceState::RolledBack,
        ServiceState::Disabled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceState::Pending => "pending",
            ServiceState::Running => "running",
            ServiceState::WaitingApproval => "waiting_approval",
            ServiceState::Deployed => "deployed",
            ServiceState::Degraded => "degraded",
            ServiceState::Failed => "failed",
            ServiceState::Held => "held",
            ServiceState::RolledBack => "rolled_back",
            ServiceState::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<ServiceState> {
        ServiceState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Deployed or degraded: the service runs, its dependents may go.
    pub const fn is_up(self) -> bool {
        matches!(self, ServiceState::Deployed | ServiceState::Degraded)
    }

    /// Failed, rolled back or held: its dependents must not go.
    pub const fn is_down(self) -> bool {
        matches!(
            self,
            ServiceState::Failed | ServiceState::RolledBack | ServiceState::Held
        )
    }

    /// Running or waiting for approval: some rollout has it in hand.
    pub const fn is_in_rollout(self) -> bool {
        matches!(self, ServiceState::Running | ServiceState::WaitingApproval)
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One service of the catalog, as its file declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Service {
    pub name: String,
    pub description: Option<String>,
    pub priority: Priority,
    /// Names of the services this one needs (`dependencies` in a file means the same).
    pub depends_on: Vec<String>,
    pub apply: TemplateRef,
    pub smoke: Option<TemplateRef>,
    pub rollback: Option<TemplateRef>,
    /// Passed to each of the service's tasks as environment variables.
    pub environment: BTreeMap<String, String>,
    pub enabled: bool,
    /// A person confirms before the apply starts.
    pub approve: bool,
    /// How many times a failed apply or smoke is tried again; the rollout's default when unset.
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled before each further one.
    pub retry_delay_seconds: Option<u64>,
    /// What git says was deployed: `deployed` (or `degraded`) counts as up.
    pub status: Option<String>,
    pub deployed_at: Option<Timestamp>,
    /// The file's keys ralf does not know, kept as they were.
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The file, at the line of `name`.
    pub source: Location,
    /// Where each checked field is, for validation errors.
    #[serde(skip)]
    pub locations: FieldLocations,
}

/// The locations of a service's fields that validation can find fault with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldLocations {
    /// One per entry of `depends_on`.
    pub depends_on: Vec<Location>,
    pub apply: Location,
    pub smoke: Option<Location>,
    pub rollback: Option<Location>,
}

impl Service {
    /// The state the file alone gives: `disabled` when not enabled, `deployed` or `degraded`
    /// when `status` says so, otherwise `pending`.
    pub fn declared_state(&self) -> ServiceState {
        if !self.enabled {
            return ServiceState::Disabled;
        }
        match self
            .status
            .as_deref()
            .map(str::trim)
            .and_then(ServiceState::parse)
        {
            Some(state) if state.is_up() => state,
            _ => ServiceState::Pending,
        }
    }

    /// The template of a step, if the service has that step.
    pub fn template(&self, step: StepKind) -> Option<&TemplateRef> {
        match step {
            StepKind::Apply => Some(&self.apply),
            StepKind::Smoke => self.smoke.as_ref(),
            StepKind::Rollback => self.rollback.as_ref(),
        }
    }

    /// Where the field naming a step's template is.
    pub fn template_location(&self, step: StepKind) -> &Location {
        let field = match step {
            StepKind::Apply => Some(&self.locations.apply),
            StepKind::Smoke => self.locations.smoke.as_ref(),
            StepKind::Rollback => self.locations.rollback.as_ref(),
        };
        field.unwrap_or(&self.source)
    }

    /// Where the `i`th entry of `depends_on` is.
    pub fn dependency_location(&self, i: usize) -> &Location {
        self.locations.depends_on.get(i).unwrap_or(&self.source)
    }
}

/// One thing wrong with the catalog, and where.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, thiserror::Error,
)]
#[error("{location}: {problem}")]
pub struct CatalogError {
    pub location: Location,
    pub problem: Problem,
}

impl CatalogError {
    pub fn new(location: Location, problem: Problem) -> CatalogError {
        CatalogError { location, problem }
    }
}

/// What is wrong.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, thiserror::Error,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    #[error("cannot read it: {reason}")]
    Unreadable { reason: String },
    /// Not YAML, not a mapping, or a field with a value of the wrong kind.
    #[error("{message}")]
    Invalid { message: String },
    #[error("missing field `{field}`")]
    MissingField { field: String },
    #[error(
        "{name:?} is not a valid service name (letters, digits, `.`, `_` and `-`, starting with a letter or digit)"
    )]
    InvalidName { name: String },
    #[error("the service {name:?} is also defined at {first}")]
    DuplicateName { name: String, first: Location },
    #[error("{service} depends on {dependency:?}, which is not in the catalog")]
    UnknownDependency { service: String, dependency: String },
    /// `cycle` starts and ends with the same service: `a → b → c → a`.
    #[error("dependency cycle: {}", .cycle.join(" → "))]
    Cycle { cycle: Vec<String> },
    #[error("the {step} {template} of {service} does not exist")]
    UnknownTemplate {
        service: String,
        step: StepKind,
        template: TemplateRef,
    },
}

/// Every error found in a catalog, sorted by file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct CatalogErrors(pub Vec<CatalogError>);

impl CatalogErrors {
    pub fn sorted(mut errors: Vec<CatalogError>) -> CatalogErrors {
        errors.sort_by(|a, b| {
            a.location
                .cmp(&b.location)
                .then_with(|| a.problem.to_string().cmp(&b.problem.to_string()))
        });
        errors.dedup();
        CatalogErrors(errors)
    }
}

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CatalogErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_order_p0_first() {
        assert!(Priority::P0 < Priority::P1 && Priority::P3 < Priority::P4);
        assert_eq!(Priority::parse("p2"), Some(Priority::P2));
        assert_eq!(Priority::parse("P5"), None);
        assert_eq!(serde_json::to_string(&Priority::P1).unwrap(), "\"P1\"");
    }

    #[test]
    fn states_serialize_in_snake_case() {
        for state in ServiceState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(ServiceState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn locations_show_file_line_and_column() {
        let at = Location {
            file: "catalog/a.yaml".into(),
            line: 3,
            column: 7,
        };
        assert_eq!(at.to_string(), "catalog/a.yaml:3:7");
        assert_eq!(
            Location::file("catalog/a.yaml").to_string(),
            "catalog/a.yaml"
        );
    }

    #[test]
    fn a_cycle_is_printed_with_arrows() {
        let problem = Problem::Cycle {
            cycle: vec!["a".into(), "b".into(), "c".into(), "a".into()],
        };
        assert_eq!(problem.to_string(), "dependency cycle: a → b → c → a");
    }
}
