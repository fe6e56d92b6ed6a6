//! The service catalog, without I/O besides reading the files it is given: one YAML file per
//! service (`model`, `parse`), their validation together into a `Catalog` (`validate`), which
//! services a rollout takes and in what order (`plan`), the rollout state machine the engine
//! replays after a restart (`rollout`), each step's status object (`report`), and the
//! dependency graph in DOT (`graph`), the states written back into the files (`write_back`),
//! and the API's shapes (`api`). See docs/catalog.md.

pub mod api;
pub mod graph;
pub mod model;
pub mod parse;
pub mod plan;
pub mod report;
pub mod rollout;
pub mod validate;
pub mod write_back;

pub use model::{
    CatalogError, CatalogErrors, Location, Priority, Problem, Service, ServiceState, StepKind,
    TemplateRef,
};
pub use plan::{
    Plan, PlanError, PlannedService, Selected, Selection, SkipReason, SkippedService,
    current_state, plan,
};
pub use report::{StepId, StepResult, StepStatus, step_status};
pub use rollout::{
    Cancellation, Decision, NextSteps, Rollout, RolloutError, RolloutEvent, RolloutOptions,
    RolloutState, ServiceProgress, StepRecord, StepToStart, step_environment,
};
pub use validate::{Catalog, TemplateResolver};

#[cfg(test)]
mod testing;
