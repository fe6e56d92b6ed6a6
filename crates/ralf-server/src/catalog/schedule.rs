//! The catalog's schedules: at each time the settings' `schedule` names, a rollout of every
//! service not yet deployed starts, and at each time `check_schedule` names, a health check;
//! each once however many servers share the database.
//!
//! The scheduler's loop calls [`look`] next to its own schedules. A due firing is claimed by
//! moving the settings' `schedule_next_run` on with a compare-and-set
//! ([`ralf_store::Store::claim_catalog_schedule`]); the one server that wins starts the rollout
//! as ralf (no user), in a task of its own, since reading the catalog may take a while. A
//! firing that finds a rollout unfinished, nothing to deploy (or check), or the catalog
//! unreadable starts nothing and is logged; the next firing tries again.

use ralf_catalog::Selection;
use ralf_core::Timestamp;
use ralf_core::api::schedules::next_cron_time;
use ralf_store::StoreError;
use ralf_store::catalog::ScheduleKind;

use crate::catalog::{CatalogFailure, start_rollout};
use crate::state::AppState;

/// Fires every due catalog schedule; returns the soonest next firing.
pub async fn look(state: &AppState) -> Result<Option<Timestamp>, StoreError> {
    let now = Timestamp::now();
    let mut soonest: Option<Timestamp> = None;
    for schedule in state.store.catalog_schedules().await? {
        let next = if schedule.next_run <= now {
            // The next cron time after now: firings missed while every server was down are
            // made up once.
            let next = next_cron_time(&schedule.schedule, now);
            if state
                .store
                .claim_catalog_schedule(schedule.project_id, schedule.kind, schedule.next_run, next)
                .await?
            {
                let (state, project_id, kind) =
                    (state.clone(), schedule.project_id.0, schedule.kind);
                tokio::spawn(async move { fire(&state, project_id, kind).await });
            }
            next
        } else {
            Some(schedule.next_run)
        };
        if let Some(next) = next {
            soonest = Some(soonest.map_or(next, |s| s.min(next)));
        }
    }
    Ok(soonest)
}

/// Starts the rollout of a claimed firing; whatever refuses it is logged, not retried (the
/// next firing tries again).
async fn fire(state: &AppState, project_id: i64, kind: ScheduleKind) {
    let (selection, what) = match kind {
        ScheduleKind::Deploy => (Selection::All, "deploy"),
        ScheduleKind::Check => (Selection::Check, "check"),
    };
    match start_rollout(state, project_id, selection, None).await {
        Ok(rollout) => tracing::info!(
            project.id = project_id,
            rollout.id = rollout.id,
            schedule = what,
            "catalog: the schedule started a rollout"
        ),
        Err(CatalogFailure::Conflict(reason) | CatalogFailure::Refused(reason)) => {
            tracing::info!(project.id = project_id, schedule = what, %reason,
                "catalog: the schedule started nothing")
        }
        Err(e) => tracing::warn!(project.id = project_id, schedule = what, error = %e,
            "catalog: the schedule could not start a rollout"),
    }
}
