//! The rollout state machine, pure and deterministic: from a plan and the recorded events (steps
//! started and finished, approvals, a cancel) it derives each service's state and says what to
//! start next. The engine records every event before acting on it; after a restart it replays
//! them and goes on where it stood: a started step is never offered again, a result never lost.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use ralf_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Service, ServiceState, StepKind, TemplateRef};
use crate::plan::{Plan, PlannedService};
use crate::report::{StepId, StepResult, StepStatus};

/// Environment variables ralf sets on every step's task, besides the service's own
/// `environment` (and [`crate::report::STEP_REPORT_ENV`], which the engine sets).
pub const SERVICE_ENV: &str = "RALF_SERVICE";
pub const STEP_ENV: &str = "RALF_STEP";
pub const STEP_ID_ENV: &str = "RALF_STEP_ID";
pub const ATTEMPT_ENV: &str = "RALF_ATTEMPT";

/// The environment of a step's task: the service's `environment` and ralf's `RALF_*`
/// variables naming the service, the step and the attempt.
pub fn step_environment(service: &Service, step_id: &StepId) -> BTreeMap<String, String> {
    let mut environment = service.environment.clone();
    environment.insert(SERVICE_ENV.to_owned(), service.name.clone());
    environment.insert(STEP_ENV.to_owned(), step_id.kind.to_string());
    environment.insert(STEP_ID_ENV.to_owned(), step_id.to_string());
    environment.insert(ATTEMPT_ENV.to_owned(), step_id.attempt.to_string());
    environment
}

/// A retry's wait doubles after each failure up to this (or the first delay, when longer).
pub const MAX_RETRY_DELAY_SECONDS: u64 = 3600;

/// How a rollout runs: how many services at once (the project's limit), and the retries of
/// services whose files say nothing about them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RolloutOptions {
    /// Services applied, smoked or rolled back at the same time; at least 1.
    pub parallelism: usize,
    pub retries: u32,
    pub retry_delay_seconds: u64,
}

impl Default for RolloutOptions {
    fn default() -> RolloutOptions {
        RolloutOptions {
            parallelism: 1,
            retries: 0,
            retry_delay_seconds: 30,
        }
    }
}

/// How often a failed apply or smoke is tried again, and how long to wait first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetryPolicy {
    pub retries: u32,
    pub delay_seconds: u64,
}

impl RetryPolicy {
    /// The service's own `retries` and `retry_delay_seconds`, else the rollout's.
    pub fn for_service(planned: &PlannedService, options: &RolloutOptions) -> RetryPolicy {
        RetryPolicy {
            retries: planned.service.retries.unwrap_or(options.retries),
            delay_seconds: planned
                .service
                .retry_delay_seconds
                .unwrap_or(options.retry_delay_seconds),
        }
    }

    /// The wait after the `attempt`th failure (from 1): the delay, doubled for each failure
    /// before, at most [`MAX_RETRY_DELAY_SECONDS`] (or the delay itself, when longer).
    pub fn delay_after(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(32);
        let grown = self.delay_seconds.saturating_mul(1u64 << doublings);
        grown.min(self.delay_seconds.max(MAX_RETRY_DELAY_SECONDS))
    }
}

/// What the engine records, in order; replaying the same events gives the same rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RolloutEvent {
    /// The step's task was created (record it in the same transaction as the task).
    StepStarted {
        step_id: StepId,
        task_id: Option<i64>,
        at: Timestamp,
    },
    /// The step's task ended; `status.step_id` names the step.
    StepFinished { status: StepStatus, at: Timestamp },
    /// A person confirmed (`approved`) or rejected a service's apply.
    ApprovalDecided {
        service: String,
        approved: bool,
        by: String,
        at: Timestamp,
    },
    /// No further service starts; those already started finish their steps.
    Cancelled { by: String, at: Timestamp },
}

/// One step of a service: started, and finished once it has a status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRecord {
    pub step_id: StepId,
    pub task_id: Option<i64>,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: Option<StepStatus>,
    /// The advisor's diagnosis of a failed step, when one was asked for and came (filled in
    /// when the rollout is shown; never part of its events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// Who decided, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub approved: bool,
    pub by: String,
    pub at: Timestamp,
}

/// Who cancelled, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cancellation {
    pub by: String,
    pub at: Timestamp,
}

/// How one service of the rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceProgress {
    pub name: String,
    pub state: ServiceState,
    /// Every step started, in order.
    pub steps: Vec<StepRecord>,
    pub approval: Option<Decision>,
    /// For a held service: the failed service it waited on, directly or not.
    pub held_by: Option<String>,
    /// For a running service between steps: the step that goes next, and not before when (a
    /// retry's back-off; none means now).
    pub next_step: Option<StepId>,
    pub next_step_at: Option<Timestamp>,
    /// When it became deployed or degraded.
    pub deployed_at: Option<Timestamp>,
}

impl ServiceProgress {
    /// The status of the last finished step: for a deployed service, its smoke's (or its
    /// apply's, without a smoke).
    pub fn last_status(&self) -> Option<&StepStatus> {
        self.steps.iter().rev().find_map(|s| s.status.as_ref())
    }

    fn in_flight(&self) -> Option<&StepRecord> {
        self.steps.last().filter(|s| s.status.is_none())
    }
}

/// How the rollout as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Steps run or can start.
    Running,
    /// Nothing runs or can start until a person decides on an approval.
    WaitingApproval,
    /// Every service deployed (or degraded).
    Succeeded,
    /// Done, and some service failed, was rolled back or held.
    Failed,
    /// Cancelled, and the steps under way have finished.
    Cancelled,
}

impl RolloutState {
    pub const ALL: [RolloutState; 5] = [
        RolloutState::Running,
        RolloutState::WaitingApproval,
        RolloutState::Succeeded,
        RolloutState::Failed,
        RolloutState::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::WaitingApproval => "waiting_approval",
            RolloutState::Succeeded => "succeeded",
            RolloutState::Failed => "failed",
            RolloutState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<RolloutState> {
        RolloutState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            RolloutState::Succeeded | RolloutState::Failed | RolloutState::Cancelled
        )
    }
}

/// A step to start: create a task of `template` with `environment`, and record
/// [`RolloutEvent::StepStarted`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepToStart {
    pub step_id: StepId,
    pub template: TemplateRef,
    pub environment: BTreeMap<String, String>,
}

/// What the engine should do now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextSteps {
    pub start: Vec<StepToStart>,
    /// Steps started and not finished: after a restart, look up their tasks.
    pub in_flight: Vec<StepId>,
    pub awaiting_approval: Vec<String>,
    /// The earliest retry that is not due yet: ask again then.
    pub wake_at: Option<Timestamp>,
    pub state: RolloutState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error("{service} is not in this rollout")]
    UnknownService { service: String },
    #[error("{step_id} is not a step that can start now")]
    UnexpectedStep { step_id: StepId },
    #[error("{step_id} finished without having started")]
    NotStarted { step_id: StepId },
    #[error("{step_id} is already recorded differently")]
    ConflictingStep { step_id: StepId },
    #[error("{service} is not waiting for approval")]
    NotWaitingForApproval { service: String },
    #[error("the approval of {service} is already decided differently")]
    ConflictingApproval { service: String },
}

/// A rollout of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rollout {
    #[serde(skip)]
    plan: Plan,
    #[serde(skip)]
    options: RolloutOptions,
    /// For each service (in plan order), the indices of the services it waits for: replaying
    /// derives every state after every event, so a lookup by name there would make a replay
    /// grow with the square of the services.
    #[serde(skip)]
    waits_for: Vec<Vec<usize>>,
    state: RolloutState,
    cancelled: Option<Cancellation>,
    /// In plan order.
    services: Vec<ServiceProgress>,
}

impl Rollout {
    pub fn new(plan: Plan, options: RolloutOptions) -> Rollout {
        let services = plan
            .services
            .iter()
            .map(|planned| ServiceProgress {
                name: planned.service.name.clone(),
                state: ServiceState::Pending,
                steps: Vec::new(),
                approval: None,
                held_by: None,
                next_step: None,
                next_step_at: None,
                deployed_at: None,
            })
            .collect();
        let index: BTreeMap<&str, usize> = plan
            .services
            .iter()
            .enumerate()
            .map(|(i, planned)| (planned.service.name.as_str(), i))
            .collect();
        let waits_for = plan
            .services
            .iter()
            .map(|planned| {
                planned
                    .waits_for
                    .iter()
                    .filter_map(|name| index.get(name.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut rollout = Rollout {
            plan,
            options,
            waits_for,
            state: RolloutState::Running,
            cancelled: None,
            services,
        };
        rollout.derive_states();
        rollout
    }

    /// The rollout after the recorded events, in the order they were recorded.
    pub fn replay(
        plan: Plan,
        options: RolloutOptions,
        events: impl IntoIterator<Item = RolloutEvent>,
    ) -> Result<Rollout, RolloutError> {
        let mut rollout = Rollout::new(plan, options);
        for event in events {
            rollout.record(event)?;
        }
        Ok(rollout)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn options(&self) -> &RolloutOptions {
        &self.options
    }

    pub fn state(&self) -> RolloutState {
        self.state
    }

    pub fn cancelled(&self) -> Option<&Cancellation> {
        self.cancelled.as_ref()
    }

    /// Every service of the plan, in plan order.
    pub fn services(&self) -> &[ServiceProgress] {
        &self.services
    }

    pub fn service(&self, name: &str) -> Option<&ServiceProgress> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Takes one event into account. Recording an event again is harmless; an event that
    /// contradicts what is recorded, or that the rollout could not have asked for, is refused
    /// and changes nothing.
    pub fn record(&mut self, event: RolloutEvent) -> Result<(), RolloutError> {
        match event {
            RolloutEvent::StepStarted {
                step_id,
                task_id,
                at,
            } => {
                let i = self.index_of(&step_id.service)?;
                if let Some(record) = self.services[i].steps.iter().find(|s| s.step_id == step_id) {
                    return if record.task_id == task_id {
                        Ok(())
                    } else {
                        Err(RolloutError::ConflictingStep { step_id })
                    };
                }
                if self.startable_step(i).as_ref() != Some(&step_id) {
                    return Err(RolloutError::UnexpectedStep { step_id });
                }
                self.services[i].steps.push(StepRecord {
                    step_id,
                    task_id,
                    started_at: at,
                    finished_at: None,
                    status: None,
                    advice: None,
                });
            }
            RolloutEvent::StepFinished { status, at } => {
                let i = self.index_of(&status.step_id.service)?;
                let Some(record) = self.services[i]
                    .steps
                    .iter_mut()
                    .find(|s| s.step_id == status.step_id)
                else {
                    return Err(RolloutError::NotStarted {
                        step_id: status.step_id,
                    });
                };
                match &record.status {
                    Some(recorded) if *recorded == status => return Ok(()),
                    Some(_) => {
                        return Err(RolloutError::ConflictingStep {
                            step_id: status.step_id,
                        });
                    }
                    None => {
                        record.status = Some(status);
                        record.finished_at = Some(at);
                    }
                }
            }
            RolloutEvent::ApprovalDecided {
                service,
                approved,
                by,
                at,
            } => {
                let i = self.index_of(&service)?;
                let progress = &mut self.services[i];
                match &progress.approval {
                    Some(d) if d.approved == approved && d.by == by => return Ok(()),
                    Some(_) => return Err(RolloutError::ConflictingApproval { service }),
                    None if progress.state != ServiceState::WaitingApproval => {
                        return Err(RolloutError::NotWaitingForApproval { service });
                    }
                    None => progress.approval = Some(Decision { approved, by, at }),
                }
            }
            RolloutEvent::Cancelled { by, at } => {
                if self.cancelled.is_none() {
                    self.cancelled = Some(Cancellation { by, at });
                }
            }
        }
        self.derive_states();
        Ok(())
    }

    /// What to do at `now`: steps to start (continuations of running services first come as
    /// they stand in plan order, new services while fewer than `parallelism` run), steps under
    /// way, approvals awaited, and when to ask again for a retry not yet due.
    pub fn next(&self, now: Timestamp) -> NextSteps {
        let mut next = NextSteps {
            start: Vec::new(),
            in_flight: Vec::new(),
            awaiting_approval: Vec::new(),
            wake_at: None,
            state: self.state,
        };
        let mut busy = self
            .services
            .iter()
            .filter(|s| s.state == ServiceState::Running)
            .count();
        let limit = self.options.parallelism.max(1);
        for (i, progress) in self.services.iter().enumerate() {
            match progress.state {
                ServiceState::Running => {
                    if let Some(record) = progress.in_flight() {
                        next.in_flight.push(record.step_id.clone());
                    } else if let Some(step_id) = &progress.next_step {
                        match progress.next_step_at {
                            Some(due) if due > now => {
                                next.wake_at = Some(next.wake_at.map_or(due, |w| w.min(due)));
                            }
                            _ => next.start.push(self.step_to_start(i, step_id.clone())),
                        }
                    }
                }
                ServiceState::WaitingApproval => next.awaiting_approval.push(progress.name.clone()),
                ServiceState::Pending if busy < limit && self.ready_to_start(i) => {
                    next.start.push(self.step_to_start(i, self.first_step(i)));
                    busy += 1;
                }
                _ => {}
            }
        }
        next
    }

    fn index_of(&self, service: &str) -> Result<usize, RolloutError> {
        self.services
            .iter()
            .position(|s| s.name == service)
            .ok_or_else(|| RolloutError::UnknownService {
                service: service.to_owned(),
            })
    }

    fn dependencies(&self, i: usize) -> impl Iterator<Item = &ServiceProgress> {
        self.waits_for[i].iter().map(|&d| &self.services[d])
    }

    /// Pending and the rollout not cancelled; for an apply, every dependency up and approved
    /// if it must be; for a smoke only, every dependency done, however it ended.
    fn ready_to_start(&self, i: usize) -> bool {
        let progress = &self.services[i];
        let planned = &self.plan.services[i];
        let ready = if planned.smoke_only() {
            self.dependencies(i)
                .all(|d| d.state.is_up() || d.state.is_down())
        } else {
            self.dependencies(i).all(|d| d.state.is_up())
                && (!planned.service.approve
                    || progress.approval.as_ref().is_some_and(|d| d.approved))
        };
        progress.state == ServiceState::Pending
            && progress.steps.is_empty()
            && self.cancelled.is_none()
            && ready
    }

    /// A service's first step: its apply, or its smoke when it only runs that.
    fn first_step(&self, i: usize) -> StepId {
        let kind = if self.plan.services[i].smoke_only() {
            StepKind::Smoke
        } else {
            StepKind::Apply
        };
        StepId::new(&self.services[i].name, kind, 1)
    }

    /// The one step service `i` may start now, regardless of parallelism and back-off.
    fn startable_step(&self, i: usize) -> Option<StepId> {
        let progress = &self.services[i];
        if progress.steps.is_empty() {
            self.ready_to_start(i).then(|| self.first_step(i))
        } else if progress.state == ServiceState::Running && progress.in_flight().is_none() {
            progress.next_step.clone()
        } else {
            None
        }
    }

    fn step_to_start(&self, i: usize, step_id: StepId) -> StepToStart {
        let service = &self.plan.services[i].service;
        let template = service
            .template(step_id.kind)
            .expect("a step is offered only when the service has its template")
            .clone();
        StepToStart {
            environment: step_environment(service, &step_id),
            step_id,
            template,
        }
    }

    /// Recomputes every service's state from its steps, its approval and its dependencies (in
    /// plan order, so dependencies are done first), then the rollout's.
    fn derive_states(&mut self) {
        for i in 0..self.services.len() {
            let derived = self.derive_state(i);
            let progress = &mut self.services[i];
            progress.state = derived.state;
            progress.held_by = derived.held_by;
            progress.next_step = derived.next_step;
            progress.next_step_at = derived.next_step_at;
            progress.deployed_at = derived.deployed_at;
        }
        self.state = self.derive_rollout_state();
    }

    fn derive_state(&self, i: usize) -> Derived {
        let progress = &self.services[i];
        if !progress.steps.is_empty() {
            return self.derive_from_steps(i);
        }
        if self.plan.services[i].smoke_only() {
            return Derived::new(ServiceState::Pending);
        }
        if let Some(down) = self.dependencies(i).find(|d| d.state.is_down()) {
            let root = down.held_by.clone().unwrap_or_else(|| down.name.clone());
            return Derived {
                held_by: Some(root),
                ..Derived::new(ServiceState::Held)
            };
        }
        if progress.approval.as_ref().is_some_and(|d| !d.approved) {
            return Derived::new(ServiceState::Failed);
        }
        let waiting_for_person = self.plan.services[i].service.approve
            && progress.approval.is_none()
            && self.cancelled.is_none()
            && self.dependencies(i).all(|d| d.state.is_up());
        if waiting_for_person {
            Derived::new(ServiceState::WaitingApproval)
        } else {
            Derived::new(ServiceState::Pending)
        }
    }

    fn derive_from_steps(&self, i: usize) -> Derived {
        let planned = &self.plan.services[i];
        let progress = &self.services[i];
        let last = progress.steps.last().expect("called with steps");
        let (Some(status), Some(finished_at)) = (&last.status, last.finished_at) else {
            return Derived::new(ServiceState::Running);
        };
        let service = &planned.service;
        let step = &last.step_id;
        let then = |kind: StepKind, attempt: u32, at: Option<Timestamp>| Derived {
            next_step: Some(StepId::new(&service.name, kind, attempt)),
            next_step_at: at,
            ..Derived::new(ServiceState::Running)
        };
        // A smoke alone deploys nothing: the service keeps when it was deployed.
        let smoke_only = planned.smoke_only();
        let up = |state: ServiceState| Derived {
            deployed_at: (!smoke_only).then_some(finished_at),
            ..Derived::new(state)
        };
        match (step.kind, status.result) {
            (StepKind::Rollback, StepResult::Fail) => Derived::new(ServiceState::Failed),
            (StepKind::Rollback, _) => Derived::new(ServiceState::RolledBack),
            (StepKind::Apply, _)
                if status.result != StepResult::Fail && service.smoke.is_some() =>
            {
                then(StepKind::Smoke, 1, None)
            }
            (_, StepResult::Ok) => up(ServiceState::Deployed),
            (_, StepResult::Warn) => up(ServiceState::Degraded),
            (kind, StepResult::Fail) => {
                let policy = RetryPolicy::for_service(planned, &self.options);
                if step.attempt <= policy.retries {
                    let wait = policy.delay_after(step.attempt);
                    let due = Timestamp(add_seconds(finished_at.0, wait));
                    then(kind, step.attempt + 1, Some(due))
                } else if smoke_only {
                    up(ServiceState::Degraded)
                } else if service.rollback.is_some() {
                    then(StepKind::Rollback, 1, None)
                } else {
                    Derived::new(ServiceState::Failed)
                }
            }
        }
    }

    fn derive_rollout_state(&self) -> RolloutState {
        let running = self
            .services
            .iter()
            .any(|s| s.state == ServiceState::Running);
        if self.cancelled.is_some() {
            return if running {
                RolloutState::Running
            } else {
                RolloutState::Cancelled
            };
        }
        let can_start = (0..self.services.len()).any(|i| self.ready_to_start(i));
        if running || can_start {
            RolloutState::Running
        } else if self
            .services
            .iter()
            .any(|s| s.state == ServiceState::WaitingApproval)
        {
            RolloutState::WaitingApproval
        } else if self.services.iter().all(|s| s.state.is_up()) {
            RolloutState::Succeeded
        } else {
            RolloutState::Failed
        }
    }
}

/// A service's derived fields.
struct Derived {
    state: ServiceState,
    held_by: Option<String>,
    next_step: Option<StepId>,
    next_step_at: Option<Timestamp>,
    deployed_at: Option<Timestamp>,
}

impl Derived {
    fn new(state: ServiceState) -> Derived {
        Derived {
            state,
            held_by: None,
            next_step: None,
            next_step_at: None,
            deployed_at: None,
        }
    }
}

/// `time` plus `seconds`, or the end of time when that is out of range.
fn add_seconds(time: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    i64::try_from(seconds)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|delta| time.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::plan::{Selection, plan};
    use crate::testing::catalog;

    fn t(seconds: i64) -> Timestamp {
        Timestamp(Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap())
    }

    fn rollout(files: &[&str], parallelism: usize) -> Rollout {
        let plan = plan(&catalog(files), &BTreeMap::new(), Selection::All).unwrap();
        Rollout::new(
            plan,
            RolloutOptions {
                parallelism,
                ..RolloutOptions::default()
            },
        )
    }

    fn started(step: &str, task: i64, at: i64) -> RolloutEvent {
        RolloutEvent::StepStarted {
            step_id: step.parse().unwrap(),
            task_id: Some(task),
            at: t(at),
        }
    }

    fn finished(step: &str, result: StepResult, at: i64) -> RolloutEvent {
        RolloutEvent::StepFinished {
            status: StepStatus {
                step_id: step.parse().unwrap(),
                result,
                summary: format!("{step} done"),
                artifacts: Vec::new(),
                next_actions: Vec::new(),
                task_id: None,
            },
            at: t(at),
        }
    }

    fn decided(service: &str, approved: bool) -> RolloutEvent {
        RolloutEvent::ApprovalDecided {
            service: service.into(),
            approved,
            by: "alice".into(),
            at: t(0),
        }
    }

    /// Records a step's start and end.
    fn run(r: &mut Rollout, step: &str, result: StepResult, at: i64) {
        r.record(started(step, at, at)).unwrap();
        r.record(finished(step, result, at + 1)).unwrap();
    }

    fn to_start(r: &Rollout, now: i64) -> Vec<String> {
        r.next(t(now))
            .start
            .iter()
            .map(|s| s.step_id.to_string())
            .collect()
    }

    fn states(r: &Rollout) -> Vec<(&str, ServiceState)> {
        r.services()
            .iter()
            .map(|s| (s.name.as_str(), s.state))
            .collect()
    }

    const DB: &str = "name: db\npriority: P1\napply: 1\nsmoke: 2\nrollback: 3\n";
    const APP: &str = "name: app\npriority: P2\napply: 1\nsmoke: 2\ndepends_on: [db]\n";
    const WEB: &str = "name: web\npriority: P3\napply: 1\ndepends_on: [app]\n";
    const MAIL: &str = "name: mail\npriority: P2\napply: 1\n";

    #[test]
    fn apply_then_smoke_then_deployed_then_the_dependents() {
        let mut r = rollout(&[DB, APP], 4);
        assert_eq!(to_start(&r, 0), ["db.apply.1"]);
        r.record(started("db.apply.1", 10, 0)).unwrap();
        assert_eq!(
            states(&r),
            [
                ("db", ServiceState::Running),
                ("app", ServiceState::Pending)
            ]
        );
        assert!(to_start(&r, 0).is_empty());
        assert_eq!(r.next(t(0)).in_flight[0].to_string(), "db.apply.1");

        r.record(finished("db.apply.1", StepResult::Ok, 5)).unwrap();
        assert_eq!(r.service("db").unwrap().state, ServiceState::Running);
        assert_eq!(to_start(&r, 5), ["db.smoke.1"]);
        run(&mut r, "db.smoke.1", StepResult::Ok, 6);
        let db = r.service("db").unwrap();
        assert_eq!(db.state, ServiceState::Deployed);
        assert_eq!(db.deployed_at, Some(t(7)));
        assert_eq!(db.last_status().unwrap().summary, "db.smoke.1 done");

        assert_eq!(to_start(&r, 8), ["app.apply.1"]);
        run(&mut r, "app.apply.1", StepResult::Ok, 8);
        run(&mut r, "app.smoke.1", StepResult::Ok, 10);
        assert_eq!(r.state(), RolloutState::Succeeded);
        assert!(to_start(&r, 20).is_empty());
    }

    #[test]
    fn a_service_without_smoke_is_deployed_by_its_apply() {
        let mut r = rollout(&[MAIL], 1);
        run(&mut r, "mail.apply.1", StepResult::Ok, 0);
        assert_eq!(r.service("mail").unwrap().state, ServiceState::Deployed);
        assert_eq!(r.state(), RolloutState::Succeeded);
    }

    #[test]
    fn independent_services_run_in_parallel_up_to_the_limit() {
        let files = [
            "name: a\napply: 1\n",
            "name: b\napply: 1\n",
            "name: c\napply: 1\n",
        ];
        let r = rollout(&files, 2);
        assert_eq!(to_start(&r, 0), ["a.apply.1", "b.apply.1"]);

        let mut r = rollout(&files, 1);
        assert_eq!(to_start(&r, 0), ["a.apply.1"]);
        r.record(started("a.apply.1", 1, 0)).unwrap();
        assert!(to_start(&r, 0).is_empty());
        r.record(finished("a.apply.1", StepResult::Ok, 1)).unwrap();
        assert_eq!(to_start(&r, 1), ["b.apply.1"]);
    }

    #[test]
    fn a_running_service_goes_on_to_its_smoke_without_a_new_slot() {
        let mut r = rollout(&[DB, MAIL], 1);
        run(&mut r, "db.apply.1", StepResult::Ok, 0);
        // db holds the only slot from apply to smoke: mail waits.
        assert_eq!(to_start(&r, 2), ["db.smoke.1"]);
    }

    #[test]
    fn a_failure_rolls_back_and_holds_the_dependents_while_others_go_on() {
        let mut r = rollout(&[DB, APP, WEB, MAIL], 2);
        assert_eq!(to_start(&r, 0), ["db.apply.1", "mail.apply.1"]);
        run(&mut r, "db.apply.1", StepResult::Ok, 0);
        run(&mut r, "db.smoke.1", StepResult::Fail, 2);
        assert_eq!(to_start(&r, 4), ["db.rollback.1", "mail.apply.1"]);
        run(&mut r, "db.rollback.1", StepResult::Ok, 4);
        assert_eq!(
            states(&r),
            [
                ("db", ServiceState::RolledBack),
                ("app", ServiceState::Held),
                ("mail", ServiceState::Pending),
                ("web", ServiceState::Held),
            ]
        );
        assert_eq!(r.service("web").unwrap().held_by.as_deref(), Some("db"));
        assert_eq!(to_start(&r, 6), ["mail.apply.1"]);
        run(&mut r, "mail.apply.1", StepResult::Ok, 6);
        assert_eq!(r.state(), RolloutState::Failed);
        assert!(to_start(&r, 10).is_empty());
    }

    #[test]
    fn a_failed_rollback_or_none_leaves_the_service_failed() {
        let mut r = rollout(&[DB], 1);
        run(&mut r, "db.apply.1", StepResult::Fail, 0);
        run(&mut r, "db.rollback.1", StepResult::Fail, 2);
        assert_eq!(r.service("db").unwrap().state, ServiceState::Failed);

        let mut r = rollout(&[MAIL], 1);
        run(&mut r, "mail.apply.1", StepResult::Fail, 0);
        assert_eq!(r.service("mail").unwrap().state, ServiceState::Failed);
        assert_eq!(r.state(), RolloutState::Failed);
    }

    #[test]
    fn retries_wait_with_a_doubling_back_off() {
        let mut r = rollout(
            &["name: db\napply: 1\nrollback: 3\nretries: 2\nretry_delay_seconds: 10\n"],
            1,
        );
        run(&mut r, "db.apply.1", StepResult::Fail, 0);
        let db = r.service("db").unwrap();
        assert_eq!(db.state, ServiceState::Running);
        assert_eq!(db.next_step.as_ref().unwrap().to_string(), "db.apply.2");
        assert_eq!(db.next_step_at, Some(t(11)));
        let next = r.next(t(5));
        assert!(next.start.is_empty());
        assert_eq!(next.wake_at, Some(t(11)));
        assert_eq!(to_start(&r, 11), ["db.apply.2"]);

        run(&mut r, "db.apply.2", StepResult::Fail, 11);
        assert_eq!(r.service("db").unwrap().next_step_at, Some(t(12 + 20)));
        run(&mut r, "db.apply.3", StepResult::Fail, 40);
        assert_eq!(to_start(&r, 41), ["db.rollback.1"]);
    }

    #[test]
    fn the_rollout_gives_retries_to_services_that_name_none() {
        let plan = plan(&catalog(&[MAIL]), &BTreeMap::new(), Selection::All).unwrap();
        let options = RolloutOptions {
            parallelism: 1,
            retries: 1,
            retry_delay_seconds: 0,
        };
        let mut r = Rollout::new(plan, options);
        run(&mut r, "mail.apply.1", StepResult::Fail, 0);
        assert_eq!(to_start(&r, 1), ["mail.apply.2"]);
        run(&mut r, "mail.apply.2", StepResult::Ok, 1);
        assert_eq!(r.state(), RolloutState::Succeeded);
    }

    #[test]
    fn back_off_is_capped() {
        let policy = RetryPolicy {
            retries: 20,
            delay_seconds: 30,
        };
        assert_eq!(
            [1, 2, 3, 8, 20].map(|a| policy.delay_after(a)),
            [30, 60, 120, 3600, 3600]
        );
        let slow = RetryPolicy {
            retries: 2,
            delay_seconds: 7200,
        };
        assert_eq!(slow.delay_after(3), 7200);
        let huge = RetryPolicy {
            retries: 2,
            delay_seconds: u64::MAX,
        };
        assert_eq!(huge.delay_after(2), u64::MAX);
    }

    #[test]
    fn a_warning_smoke_leaves_the_service_degraded_and_its_dependents_go() {
        let mut r = rollout(&[DB, APP], 1);
        run(&mut r, "db.apply.1", StepResult::Ok, 0);
        run(&mut r, "db.smoke.1", StepResult::Warn, 2);
        assert_eq!(r.service("db").unwrap().state, ServiceState::Degraded);
        assert_eq!(to_start(&r, 4), ["app.apply.1"]);
    }

    #[test]
    fn approval_pauses_the_service_until_someone_confirms() {
        let gated = "name: db\napply: 1\napprove: true\n";
        let mut r = rollout(&[gated, MAIL], 1);
        let next = r.next(t(0));
        assert_eq!(next.awaiting_approval, ["db"]);
        // Waiting takes no slot: mail starts meanwhile.
        assert_eq!(to_start(&r, 0), ["mail.apply.1"]);
        run(&mut r, "mail.apply.1", StepResult::Ok, 0);
        assert_eq!(r.state(), RolloutState::WaitingApproval);
        assert_eq!(
            r.record(started("db.apply.1", 5, 2)),
            Err(RolloutError::UnexpectedStep {
                step_id: "db.apply.1".parse().unwrap()
            })
        );

        r.record(decided("db", true)).unwrap();
        assert_eq!(r.service("db").unwrap().state, ServiceState::Pending);
        assert_eq!(to_start(&r, 3), ["db.apply.1"]);
    }

    #[test]
    fn a_rejection_fails_the_service_and_holds_its_dependents() {
        let gated = "name: db\napply: 1\napprove: true\n";
        let mut r = rollout(&[gated, APP], 1);
        assert_eq!(
            r.record(decided("app", true)),
            Err(RolloutError::NotWaitingForApproval {
                service: "app".into()
            })
        );
        r.record(decided("db", false)).unwrap();
        let db = r.service("db").unwrap();
        assert_eq!(db.state, ServiceState::Failed);
        assert_eq!(db.approval.as_ref().unwrap().by, "alice");
        assert_eq!(r.service("app").unwrap().state, ServiceState::Held);
        assert_eq!(r.state(), RolloutState::Failed);
        assert_eq!(
            r.record(decided("db", true)),
            Err(RolloutError::ConflictingApproval {
                service: "db".into()
            })
        );
    }

    #[test]
    fn recording_an_event_twice_changes_nothing_and_contradictions_are_refused() {
        let mut r = rollout(&[DB], 1);
        r.record(started("db.apply.1", 10, 0)).unwrap();
        let before = r.clone();
        r.record(started("db.apply.1", 10, 0)).unwrap();
        assert_eq!(r, before);
        assert_eq!(
            r.record(started("db.apply.1", 11, 0)),
            Err(RolloutError::ConflictingStep {
                step_id: "db.apply.1".parse().unwrap()
            })
        );
        r.record(finished("db.apply.1", StepResult::Ok, 1)).unwrap();
        let before = r.clone();
        r.record(finished("db.apply.1", StepResult::Ok, 1)).unwrap();
        assert_eq!(r, before);
        assert!(matches!(
            r.record(finished("db.apply.1", StepResult::Fail, 1)),
            Err(RolloutError::ConflictingStep { .. })
        ));
        assert!(matches!(
            r.record(finished("db.smoke.1", StepResult::Ok, 1)),
            Err(RolloutError::NotStarted { .. })
        ));
        assert!(matches!(
            r.record(started("db.smoke.2", 12, 1)),
            Err(RolloutError::UnexpectedStep { .. })
        ));
        assert!(matches!(
            r.record(started("nothing.apply.1", 12, 1)),
            Err(RolloutError::UnknownService { .. })
        ));
        assert_eq!(r, before);
    }

    #[test]
    fn a_replay_resumes_where_the_rollout_stood() {
        let events = vec![
            started("db.apply.1", 1, 0),
            finished("db.apply.1", StepResult::Ok, 1),
            started("db.smoke.1", 2, 2),
            started("mail.apply.1", 3, 2),
        ];
        let mut live = rollout(&[DB, APP, MAIL], 2);
        for event in events.clone() {
            live.record(event).unwrap();
        }
        let plan = live.plan().clone();
        let options = live.options().clone();
        let replayed = Rollout::replay(plan, options, events).unwrap();
        assert_eq!(replayed, live);
        let next = replayed.next(t(3));
        // Nothing started twice: the steps under way are reported, not offered.
        assert!(next.start.is_empty());
        let in_flight: Vec<String> = next.in_flight.iter().map(ToString::to_string).collect();
        assert_eq!(in_flight, ["db.smoke.1", "mail.apply.1"]);
    }

    #[test]
    fn a_cancelled_rollout_starts_nothing_new_but_finishes_what_runs() {
        let gated = "name: gate\napply: 1\napprove: true\n";
        let mut r = rollout(&[DB, MAIL, gated], 1);
        r.record(started("db.apply.1", 1, 0)).unwrap();
        let cancel = RolloutEvent::Cancelled {
            by: "bob".into(),
            at: t(1),
        };
        r.record(cancel.clone()).unwrap();
        r.record(cancel).unwrap();
        assert_eq!(r.state(), RolloutState::Running);
        r.record(finished("db.apply.1", StepResult::Ok, 2)).unwrap();
        assert_eq!(to_start(&r, 2), ["db.smoke.1"]);
        run(&mut r, "db.smoke.1", StepResult::Ok, 3);
        assert_eq!(r.state(), RolloutState::Cancelled);
        assert!(to_start(&r, 5).is_empty());
        assert_eq!(r.service("gate").unwrap().state, ServiceState::Pending);
        assert_eq!(r.cancelled().unwrap().by, "bob");
    }

    #[test]
    fn a_step_gets_the_service_environment_and_ralfs() {
        let file = "name: vaultwarden\napply: Deploy Service\nenvironment:\n  ANSIBLE_PLAYBOOK: deploy-vaultwarden.yml\n";
        let r = rollout(&[file], 1);
        let step = &r.next(t(0)).start[0];
        assert_eq!(step.template, TemplateRef::Name("Deploy Service".into()));
        let environment: Vec<(&str, &str)> = step
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            environment,
            [
                ("ANSIBLE_PLAYBOOK", "deploy-vaultwarden.yml"),
                ("RALF_ATTEMPT", "1"),
                ("RALF_SERVICE", "vaultwarden"),
                ("RALF_STEP", "apply"),
                ("RALF_STEP_ID", "vaultwarden.apply.1"),
            ]
        );
    }

    #[test]
    fn an_empty_plan_has_succeeded() {
        let plan = plan(
            &catalog(&["name: a\napply: 1\nstatus: deployed\n"]),
            &BTreeMap::new(),
            Selection::All,
        )
        .unwrap();
        let r = Rollout::new(plan, RolloutOptions::default());
        assert_eq!(r.state(), RolloutState::Succeeded);
    }

    #[test]
    fn events_and_progress_serialize() {
        let event = started("db.apply.1", 10, 0);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "step_started", "step_id": "db.apply.1", "task_id": 10, "at": "2026-01-01T00:00:00Z"})
        );
        assert_eq!(serde_json::from_value::<RolloutEvent>(json).unwrap(), event);

        let mut r = rollout(&[DB], 1);
        r.record(event).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["state"], "running");
        assert_eq!(json["services"][0]["state"], "running");
        assert_eq!(json["services"][0]["steps"][0]["step_id"], "db.apply.1");
    }

    const DEPLOYED_DB: &str =
        "name: db\npriority: P1\napply: 1\nsmoke: 2\nrollback: 3\nstatus: deployed\n";
    const DEPLOYED_APP: &str =
        "name: app\npriority: P2\napply: 1\nsmoke: 2\ndepends_on: [db]\nstatus: deployed\n";

    fn rollout_of(selection: Selection) -> Rollout {
        let catalog = catalog(&[DEPLOYED_DB, DEPLOYED_APP]);
        let plan = plan(&catalog, &BTreeMap::new(), selection).unwrap();
        Rollout::new(plan, RolloutOptions::default())
    }

    #[test]
    fn a_check_runs_smokes_only_and_a_failing_one_leaves_the_service_degraded() {
        let mut r = rollout_of(Selection::Check);
        assert_eq!(to_start(&r, 0), ["db.smoke.1"]);
        run(&mut r, "db.smoke.1", StepResult::Fail, 0);
        let db = r.service("db").unwrap();
        assert_eq!(db.state, ServiceState::Degraded);
        assert_eq!(db.deployed_at, None, "a smoke deploys nothing");
        assert_eq!(
            to_start(&r, 2),
            ["app.smoke.1"],
            "no rollback after a check"
        );
        run(&mut r, "app.smoke.1", StepResult::Ok, 2);
        assert_eq!(r.service("app").unwrap().state, ServiceState::Deployed);
        assert_eq!(r.state(), RolloutState::Succeeded);
        assert!(
            r.clone().record(started("app.apply.1", 9, 9)).is_err(),
            "a checked service is never applied"
        );
    }

    #[test]
    fn a_dependents_smoke_runs_after_the_apply_however_that_ends() {
        let named = Selection::Named {
            names: vec!["db".into()],
        };
        let mut r = rollout_of(named);
        assert_eq!(to_start(&r, 0), ["db.apply.1"]);
        assert_eq!(r.service("app").unwrap().state, ServiceState::Pending);
        run(&mut r, "db.apply.1", StepResult::Fail, 0);
        assert_eq!(to_start(&r, 2), ["db.rollback.1"]);
        run(&mut r, "db.rollback.1", StepResult::Ok, 2);
        assert_eq!(r.service("db").unwrap().state, ServiceState::RolledBack);
        assert_eq!(to_start(&r, 4), ["app.smoke.1"]);
        run(&mut r, "app.smoke.1", StepResult::Fail, 4);
        assert_eq!(r.service("app").unwrap().state, ServiceState::Degraded);
        assert_eq!(r.state(), RolloutState::Failed);
    }
}
