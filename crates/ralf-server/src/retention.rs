//! The daily retention sweep: applies the projects' and templates' retention policies
//! (`routes::retention`), deleting old finished tasks in small batches so the writer is never
//! held long. Every server sweeps; a sweep that finds nothing to delete costs a few reads.

use std::time::{Duration, Instant};

use ralf_core::Timestamp;

use crate::state::AppState;

/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How long after the start the first sweep runs (the start has other work to do).
const FIRST_SWEEP_AFTER: Duration = Duration::from_secs(300);
/// Tasks deleted in one statement.
pub const BATCH: i64 = 200;

/// Sweeps now and then once a day, until the server stops.
pub async fn run(state: AppState) {
    tokio::time::sleep(FIRST_SWEEP_AFTER).await;
    loop {
        sweep(&state.store).await;
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

/// One sweep; its result and time are logged, a failure too (the next sweep tries again).
pub async fn sweep(store: &ralf_store::Store) -> Option<ralf_store::retention::SweepReport> {
    let started = Instant::now();
    match store.sweep_retention(Timestamp::now(), BATCH).await {
        Ok(report) => {
            if report.tasks_deleted > 0 {
                tracing::info!(
                    tasks = report.tasks_deleted,
                    batches = report.batches,
                    seconds = started.elapsed().as_secs_f64(),
                    "retention sweep deleted old finished tasks"
                );
            }
            Some(report)
        }
        Err(e) => {
            tracing::error!(error = %e, "the retention sweep failed; the next one tries again");
            None
        }
    }
}
