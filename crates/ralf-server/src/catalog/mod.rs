//! The service catalog's engine (docs/catalog.md): reads a project's catalog from its
//! repository at one commit and checks it against the project's templates (`read`), plans and
//! starts rollouts ([`start_rollout`], which the API calls and a schedule or webhook can call
//! too), records what people decide about them (approve, reject, cancel), shows services and
//! rollouts as they stand, runs rollouts to their end (`conductor`, on every server; the
//! database decides which server does what), and writes what they deployed back into the
//! files (`write_back`).
//!
//! What the catalog's logic decides (plans, the rollout state machine, step status objects) is
//! in `ralf-catalog`; this module does its I/O. A rollout's plan is stored when it starts, so
//! nothing after that reads the repository again; its steps' tasks run at the commit it was
//! planned from when their template uses the catalog's repository.

mod advisor;
mod conductor;
mod read;
pub mod schedule;
mod write_back;

use std::collections::BTreeMap;

use ralf_catalog::api::{CatalogSettings, PlanView, RolloutSummary, RolloutView, ServiceView};
use ralf_catalog::{
    CatalogErrors, Plan, Rollout, RolloutEvent, RolloutOptions, RolloutState, Selection,
    ServiceProgress, ServiceState,
};
use ralf_core::api::events::NewEvent;
use ralf_core::api::live::CatalogServiceState;
use ralf_core::{ProjectId, RolloutId, Timestamp};
use ralf_store::catalog::{NewRollout, ServiceRecord, StoredRollout};
use ralf_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::dispatch::live::LiveEvent;
use crate::state::AppState;

pub use conductor::run;
pub use read::{CatalogAt, load};

/// What the engine keeps while the server runs: how tasks run (the server reads repositories
/// the same way), the catalogs read last, and the conductor's wake-up.
pub struct CatalogEngine {
    exec: ralf_exec::ExecConfig,
    reads: read::ReadCache,
    wakeup: Notify,
}

impl CatalogEngine {
    pub fn new(exec: ralf_exec::ExecConfig) -> CatalogEngine {
        CatalogEngine {
            exec,
            reads: read::ReadCache::default(),
            wakeup: Notify::new(),
        }
    }

    /// A rollout changed here (started, decided, cancelled): the conductor looks now. A signal
    /// sent while it is busy is kept for its next wait.
    pub fn changed(&self) {
        self.wakeup.notify_one();
    }
}

/// Who acts on a rollout: a user, or ralf itself (a schedule, a webhook; no user id).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: Option<i64>,
    /// Recorded with the decision (a user's login).
    pub name: &'a str,
}

/// Why the catalog cannot do what was asked; mapped to HTTP in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub enum CatalogFailure {
    #[error(
        "the project has no service catalog: give it a repository first (PUT \
         /api/project/{{project_id}}/catalog/settings)"
    )]
    NotConfigured,
    /// Every error of the catalog's files, with their locations.
    #[error("{0}")]
    Invalid(CatalogErrors),
    /// The repository could not be fetched or checked out.
    #[error("the service catalog cannot be read from its repository: {0}")]
    Unreadable(String),
    /// The request asks for something the catalog cannot do (an unknown service, an empty
    /// plan).
    #[error("{0}")]
    Refused(String),
    /// What the request asks conflicts with how things stand (an unfinished rollout already,
    /// nothing waiting for a decision).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The project's settings, the defaults when it has none.
pub async fn settings(store: &Store, project_id: i64) -> Result<CatalogSettings, StoreError> {
    Ok(store
        .catalog_settings(ProjectId(project_id))
        .await?
        .unwrap_or_default())
}

/// The project's services as they stand: the catalog at its branch's tip, with what ralf
/// recorded and what the unfinished rollout is doing; dependencies first, then by priority
/// and name.
pub async fn services(
    state: &AppState,
    project_id: i64,
) -> Result<Vec<ServiceView>, CatalogFailure> {
    let at = load(state, project_id).await?;
    services_at(state, project_id, &at).await
}

/// The catalog's dependency graph in Graphviz DOT (or, with `svg`, drawn as SVG), each service
/// in the state [`services`] gives it.
pub async fn graph(state: &AppState, project_id: i64, svg: bool) -> Result<String, CatalogFailure> {
    let at = load(state, project_id).await?;
    let states: BTreeMap<String, ServiceState> = services_at(state, project_id, &at)
        .await?
        .into_iter()
        .map(|view| (view.name, view.state))
        .collect();
    Ok(if svg {
        ralf_catalog::graph::svg(&at.catalog, &states)
    } else {
        ralf_catalog::graph::dot(&at.catalog, &states)
    })
}

/// [`services`] of the catalog as `at` read it.
async fn services_at(
    state: &AppState,
    project_id: i64,
    at: &CatalogAt,
) -> Result<Vec<ServiceView>, CatalogFailure> {
    let recorded: BTreeMap<String, ServiceRecord> = state
        .store
        .catalog_services(ProjectId(project_id))
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let unfinished = unfinished(&state.store, project_id).await?;
    let live = |name: &str| {
        unfinished
            .as_ref()
            .and_then(|(_, rollout)| rollout.service(name))
            .filter(|p| p.state != ServiceState::Pending)
    };
    Ok(at
        .catalog
        .topological_order()
        .into_iter()
        .map(|service| {
            let record = recorded.get(&service.name);
            let progress = live(&service.name);
            let last_status = progress
                .and_then(ServiceProgress::last_status)
                .or(record.and_then(|r| r.last_status.as_ref()))
                .cloned();
            let recorded_state = progress.map(|p| p.state).or(record.map(|r| r.state));
            let deployed_from = progress
                .filter(|p| p.state.is_up())
                .and_then(|_| unfinished.as_ref().map(|(s, _)| s.commit.clone()));
            ServiceView {
                name: service.name.clone(),
                description: service.description.clone(),
                priority: service.priority,
                depends_on: service.depends_on.clone(),
                enabled: service.enabled,
                approve: service.approve,
                state: ralf_catalog::current_state(service, recorded_state),
                deployed_at: progress
                    .and_then(|p| p.deployed_at)
                    .or(record.and_then(|r| r.deployed_at))
                    .or(service.deployed_at),
                commit: deployed_from.or(record.and_then(|r| r.commit.clone())),
                last_task_id: last_status
                    .as_ref()
                    .and_then(|s| s.task_id)
                    .or(record.and_then(|r| r.last_task_id)),
                last_result: last_status,
                file: service.source.file.clone(),
            }
        })
        .collect())
}

/// What a rollout of `selection` would do now, and the commit it would be planned from.
pub async fn plan(
    state: &AppState,
    project_id: i64,
    selection: Selection,
) -> Result<PlanView, CatalogFailure> {
    let (at, plan) = planned(state, project_id, selection).await?;
    Ok(PlanView {
        commit: at.commit,
        plan,
    })
}

/// Plans `selection` on the catalog at its branch's tip and starts the rollout (its steps are
/// started by the conductor). `started_by`: the user who asked, if a user did (a schedule or a
/// webhook starts one as ralf). Refused when the project has an unfinished rollout, when the
/// catalog is invalid, or when the plan is empty; nothing starts then.
pub async fn start_rollout(
    state: &AppState,
    project_id: i64,
    selection: Selection,
    started_by: Option<i64>,
) -> Result<RolloutView, CatalogFailure> {
    if let Some(running) = state
        .store
        .unfinished_rollout(ProjectId(project_id))
        .await?
    {
        return Err(unfinished_already(running.id));
    }
    let (at, plan) = planned(state, project_id, selection.clone()).await?;
    if plan.is_empty() {
        return Err(CatalogFailure::Refused(format!(
            "nothing to roll out: {}",
            why_empty(&plan)
        )));
    }
    let options = RolloutOptions {
        parallelism: at.settings.parallelism.max(1) as usize,
        ..RolloutOptions::default()
    };
    let rollout = Rollout::new(plan.clone(), options.clone());
    let stored = state
        .store
        .create_rollout(&NewRollout {
            project_id: ProjectId(project_id),
            state: rollout.state(),
            selection: &selection,
            plan: &plan,
            options: &options,
            commit: &at.commit,
            started_by,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => CatalogFailure::Conflict(m),
            other => other.into(),
        })?;
    tracing::info!(project.id = project_id, rollout.id = stored.id.0, commit = %at.commit,
        services = plan.services.len(), "catalog: a rollout starts");
    state
        .event(NewEvent {
            project_id: Some(project_id),
            user_id: started_by,
            object_id: Some(stored.id.0),
            object_type: "catalog_rollout",
            description: format!(
                "Catalog rollout {} started: {}",
                stored.id,
                service_names(&plan).join(", ")
            ),
        })
        .await;
    announce(state, &stored, &rollout);
    state.catalog.changed();
    advisor::advise_order(state, &stored);
    Ok(view(&stored, &rollout))
}

/// Confirms (`approved`) or rejects the apply of `service`, which the project's unfinished
/// rollout must be waiting to approve.
pub async fn decide(
    state: &AppState,
    project_id: i64,
    service: &str,
    approved: bool,
    by: Actor<'_>,
) -> Result<RolloutView, CatalogFailure> {
    let event = RolloutEvent::ApprovalDecided {
        service: service.to_owned(),
        approved,
        by: by.name.to_owned(),
        at: Timestamp::now(),
    };
    let (stored, rollout) = record_decision(state, project_id, None, event).await?;
    state
        .event(NewEvent {
            project_id: Some(project_id),
            user_id: by.user_id,
            object_id: Some(stored.id.0),
            object_type: "catalog_rollout",
            description: format!(
                "Catalog rollout {}: {} {} the apply of {service}",
                stored.id,
                by.name,
                if approved { "approved" } else { "rejected" }
            ),
        })
        .await;
    Ok(view(&stored, &rollout))
}

/// Cancels rollout `rollout_id`: no further service starts; steps under way finish.
pub async fn cancel(
    state: &AppState,
    project_id: i64,
    rollout_id: i64,
    by: Actor<'_>,
) -> Result<RolloutView, CatalogFailure> {
    let event = RolloutEvent::Cancelled {
        by: by.name.to_owned(),
        at: Timestamp::now(),
    };
    let (stored, rollout) = record_decision(state, project_id, Some(rollout_id), event).await?;
    state
        .event(NewEvent {
            project_id: Some(project_id),
            user_id: by.user_id,
            object_id: Some(stored.id.0),
            object_type: "catalog_rollout",
            description: format!("Catalog rollout {} cancelled by {}", stored.id, by.name),
        })
        .await;
    Ok(view(&stored, &rollout))
}

/// Rollout `id` of the project with every service's progress.
pub async fn rollout(
    state: &AppState,
    project_id: i64,
    id: i64,
) -> Result<RolloutView, CatalogFailure> {
    let stored = state
        .store
        .rollout(ProjectId(project_id), RolloutId(id))
        .await?;
    let rollout = replay(&state.store, &stored).await?;
    let advice = state.store.advice(stored.id).await?;
    Ok(advisor::with_advice(view(&stored, &rollout), advice))
}

/// The project's newest rollouts (at most `limit`), as recorded.
pub async fn rollouts(
    store: &Store,
    project_id: i64,
    limit: i64,
) -> Result<Vec<RolloutSummary>, StoreError> {
    Ok(store
        .rollouts(ProjectId(project_id), limit)
        .await?
        .into_iter()
        .map(|r| RolloutSummary {
            id: r.id.0,
            project_id: r.project_id.0,
            state: r.state,
            selection: r.selection,
            services: service_names(&r.plan),
            commit: r.commit,
            started_by: r.started_by,
            created: r.created,
            finished: r.finished,
        })
        .collect())
}

/// The catalog at its tip, planned for `selection`: recorded states count, and the services
/// the unfinished rollout has in hand are left to it.
async fn planned(
    state: &AppState,
    project_id: i64,
    selection: Selection,
) -> Result<(CatalogAt, Plan), CatalogFailure> {
    let at = load(state, project_id).await?;
    let mut states: BTreeMap<String, ServiceState> = state
        .store
        .catalog_services(ProjectId(project_id))
        .await?
        .into_iter()
        .map(|r| (r.name, r.state))
        .collect();
    if let Some((_, rollout)) = unfinished(&state.store, project_id).await? {
        for progress in rollout.services() {
            if progress.state.is_in_rollout() {
                states.insert(progress.name.clone(), progress.state);
            }
        }
    }
    let plan = ralf_catalog::plan(&at.catalog, &states, selection)
        .map_err(|e| CatalogFailure::Refused(e.to_string()))?;
    Ok((at, plan))
}

/// Records a decision (an approval or a cancel) on the project's unfinished rollout (which
/// must be `rollout_id`, when given), after checking it against the rollout's history; another
/// server's event recorded meanwhile makes it check again.
async fn record_decision(
    state: &AppState,
    project_id: i64,
    rollout_id: Option<i64>,
    event: RolloutEvent,
) -> Result<(StoredRollout, Rollout), CatalogFailure> {
    for _ in 0..10 {
        let stored = match rollout_id {
            Some(id) => {
                let stored = state
                    .store
                    .rollout(ProjectId(project_id), RolloutId(id))
                    .await?;
                if stored.finished.is_some() {
                    return Err(CatalogFailure::Conflict(format!(
                        "rollout {id} is finished ({})",
                        stored.state.as_str()
                    )));
                }
                stored
            }
            None => state
                .store
                .unfinished_rollout(ProjectId(project_id))
                .await?
                .ok_or_else(|| {
                    CatalogFailure::Conflict("no rollout of the project is under way".into())
                })?,
        };
        let history = state.store.rollout_history(stored.id).await?;
        let mut rollout =
            Rollout::replay(stored.plan.clone(), stored.options.clone(), history.events)
                .map_err(|e| corrupt(&stored, e))?;
        rollout
            .record(event.clone())
            .map_err(|e| CatalogFailure::Conflict(e.to_string()))?;
        match state
            .store
            .append_rollout_event(stored.id, history.next_seq, &event, None)
            .await
        {
            Ok(_) => {
                announce(state, &stored, &rollout);
                state.catalog.changed();
                return Ok((stored, rollout));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CatalogFailure::Conflict(
        "the rollout keeps changing; try again".into(),
    ))
}

/// The project's unfinished rollout replayed, if it has one.
async fn unfinished(
    store: &Store,
    project_id: i64,
) -> Result<Option<(StoredRollout, Rollout)>, StoreError> {
    let Some(stored) = store.unfinished_rollout(ProjectId(project_id)).await? else {
        return Ok(None);
    };
    let rollout = replay(store, &stored).await?;
    Ok(Some((stored, rollout)))
}

/// A stored rollout after its recorded events.
async fn replay(store: &Store, stored: &StoredRollout) -> Result<Rollout, StoreError> {
    let history = store.rollout_history(stored.id).await?;
    Rollout::replay(stored.plan.clone(), stored.options.clone(), history.events)
        .map_err(|e| corrupt(stored, e))
}

/// Recorded events that the state machine refuses: the database's fault.
fn corrupt(stored: &StoredRollout, e: ralf_catalog::RolloutError) -> StoreError {
    StoreError::Corrupt(format!("rollout {} does not replay: {e}", stored.id))
}

fn unfinished_already(id: RolloutId) -> CatalogFailure {
    CatalogFailure::Conflict(format!(
        "rollout {id} of the project is not finished; wait for it or cancel it"
    ))
}

fn service_names(plan: &Plan) -> Vec<String> {
    plan.services
        .iter()
        .map(|p| p.service.name.clone())
        .collect()
}

/// Why a plan is empty, from what it left out.
fn why_empty(plan: &Plan) -> String {
    if plan.skipped.is_empty() {
        return "the catalog has no services".into();
    }
    let reasons: Vec<String> = plan
        .skipped
        .iter()
        .map(|s| format!("{} ({})", s.name, s.reason))
        .collect();
    format!("every service is left out: {}", reasons.join(", "))
}

fn view(stored: &StoredRollout, rollout: &Rollout) -> RolloutView {
    RolloutView {
        id: stored.id.0,
        project_id: stored.project_id.0,
        state: rollout_state(stored, rollout),
        selection: stored.selection.clone(),
        commit: stored.commit.clone(),
        options: stored.options.clone(),
        started_by: stored.started_by,
        created: stored.created,
        finished: stored.finished,
        cancelled: rollout.cancelled().cloned(),
        advice: None,
        write_back: stored.write_back.clone(),
        services: rollout.services().to_vec(),
    }
}

/// A finished rollout stands as recorded; an unfinished one as its events say (it is not
/// finished before the conductor ends it).
fn rollout_state(stored: &StoredRollout, rollout: &Rollout) -> RolloutState {
    match stored.finished {
        Some(_) => stored.state,
        None if rollout.state().is_finished() => RolloutState::Running,
        None => rollout.state(),
    }
}

/// Tells live listeners (of every server) how a rollout stands.
fn announce(state: &AppState, stored: &StoredRollout, rollout: &Rollout) {
    announce_state(state, stored, rollout, rollout_state(stored, rollout));
}

fn announce_state(
    state: &AppState,
    stored: &StoredRollout,
    rollout: &Rollout,
    rollout_state: RolloutState,
) {
    state.live.publish(LiveEvent::CatalogRollout {
        project_id: stored.project_id.0,
        rollout_id: stored.id.0,
        state: rollout_state.as_str().to_owned(),
        services: std::sync::Arc::new(
            rollout
                .services()
                .iter()
                .map(|s| CatalogServiceState {
                    name: s.name.clone(),
                    state: s.state.as_str().to_owned(),
                })
                .collect(),
        ),
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_executor_and_the_catalog_agree_on_the_step_report() {
        assert_eq!(
            ralf_exec::STEP_REPORT_ENV,
            ralf_catalog::report::STEP_REPORT_ENV
        );
        assert_eq!(
            ralf_exec::MAX_STEP_REPORT_BYTES,
            ralf_catalog::report::MAX_REPORT_BYTES
        );
    }
}
