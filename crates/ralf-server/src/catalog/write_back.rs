//! The write-back: once a rollout has ended, and when the catalog's settings ask for it, the
//! `status` and `deployed_at` of the services the rollout deployed (applied, and up) are
//! written into their files at the tip of the catalog's branch, line by line so the operator's
//! formatting and comments stay (`ralf_catalog::write_back`), committed as ralf in one commit
//! naming the rollout, and pushed with the repository's key.
//!
//! It runs on the server that ended the rollout, beside the conductor, which never waits for
//! it; what it did (the commit, or why there is none) is stored on the rollout and logged. A
//! failed write-back never changes the rollout's outcome.

use std::path::Path;
use std::time::Duration;

use ralf_catalog::api::WriteBackResult;
use ralf_catalog::write_back::{Recorded, edit};
use ralf_catalog::{Rollout, ServiceState};
use ralf_core::Timestamp;
use ralf_core::api::events::NewEvent;
use ralf_exec::NewCommit;
use ralf_store::catalog::StoredRollout;

use super::read::{LastLines, source};
use crate::state::AppState;

/// The longest the fetch, commit and push may take together.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// The author (and committer) of the write-back's commits.
pub const AUTHOR_NAME: &str = "ralf";
pub const AUTHOR_EMAIL: &str = "ralf@localhost";

/// Starts the write-back of `stored`, which this server has just ended, when its project's
/// catalog asks for one and the rollout deployed something.
pub fn after_rollout(state: &AppState, stored: &StoredRollout, rollout: &Rollout) {
    let deployed: Vec<(String, String, Recorded)> = rollout
        .services()
        .iter()
        .filter(|p| p.state.is_up())
        .filter_map(|p| {
            let deployed_at = p.deployed_at?;
            let file = stored.plan.get(&p.name)?.service.source.file.clone();
            let status = match p.state {
                ServiceState::Degraded => ServiceState::Degraded,
                _ => ServiceState::Deployed,
            };
            Some((
                p.name.clone(),
                file,
                Recorded {
                    status,
                    deployed_at,
                },
            ))
        })
        .collect();
    if deployed.is_empty() {
        return;
    }
    let (state, stored) = (state.clone(), stored.clone());
    tokio::spawn(async move {
        let result = write_back(&state, &stored, deployed).await;
        let Some(result) = result else {
            return;
        };
        match &result.error {
            None => tracing::info!(rollout.id = stored.id.0, project.id = stored.project_id.0,
                commit = ?result.commit, services = ?result.services,
                "catalog: the rollout's states were written back"),
            Some(why) => tracing::warn!(rollout.id = stored.id.0,
                project.id = stored.project_id.0, %why,
                "catalog: the rollout's states could not be written back"),
        }
        if let Err(e) = state.store.record_write_back(stored.id, &result).await {
            tracing::error!(rollout.id = stored.id.0, error = %e,
                "catalog: what the write-back did could not be recorded");
        }
        let description = match (&result.commit, &result.error) {
            (Some(commit), _) => format!(
                "Catalog rollout {}: states written back in commit {}",
                stored.id,
                &commit[..commit.len().min(12)]
            ),
            (None, Some(_)) => format!(
                "Catalog rollout {}: the states could not be written back",
                stored.id
            ),
            (None, None) => format!(
                "Catalog rollout {}: the files said so already; nothing written back",
                stored.id
            ),
        };
        state
            .event(NewEvent {
                project_id: Some(stored.project_id.0),
                user_id: None,
                object_id: Some(stored.id.0),
                object_type: "catalog_rollout",
                description,
            })
            .await;
    });
}

/// Writes `deployed` (name, file, values) back; `None` when the settings no longer ask for it.
async fn write_back(
    state: &AppState,
    stored: &StoredRollout,
    deployed: Vec<(String, String, Recorded)>,
) -> Option<WriteBackResult> {
    let failed = |why: String| WriteBackResult {
        commit: None,
        error: Some(why),
        services: Vec::new(),
        at: Timestamp::now(),
    };
    let settings = match super::settings(&state.store, stored.project_id.0).await {
        Ok(settings) => settings,
        Err(e) => {
            return Some(failed(format!(
                "the catalog's settings cannot be read: {e}"
            )));
        }
    };
    if !settings.write_back {
        return None;
    }
    let source = match source(state, stored.project_id.0, &settings).await {
        Ok((_, source)) => source,
        Err(e) => return Some(failed(e.to_string())),
    };
    let names: Vec<&str> = deployed.iter().map(|(name, ..)| name.as_str()).collect();
    let commit = NewCommit {
        message: format!(
            "Catalog rollout {}: {} deployed\n\nralf writes back the status and deployed_at of \
             the services catalog rollout {} deployed from commit {}.",
            stored.id,
            names.join(", "),
            stored.id,
            stored.commit
        ),
        author_name: AUTHOR_NAME.to_owned(),
        author_email: AUTHOR_EMAIL.to_owned(),
    };
    let mut edited = Vec::new();
    let lines = LastLines::default();
    let pushed = ralf_exec::commit_to_repository(
        &source,
        &state.catalog.exec,
        WRITE_TIMEOUT,
        &lines,
        &commit,
        |root| edit_files(root, &deployed, &mut edited),
    )
    .await;
    match pushed {
        Ok(commit) => Some(WriteBackResult {
            commit,
            error: None,
            services: edited,
            at: Timestamp::now(),
        }),
        Err(why) => {
            tracing::warn!(rollout.id = stored.id.0, git = ?lines.take(),
                "catalog: git's last lines of the failed write-back");
            Some(failed(why))
        }
    }
}

/// Edits the files of `deployed` in the checkout at `root`; returns the paths it changed and
/// adds the services to `edited`. A file that is gone or cannot be edited line by line is left
/// alone (and logged); the others are still written.
fn edit_files(
    root: &Path,
    deployed: &[(String, String, Recorded)],
    edited: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let mut changed = Vec::new();
    for (name, file, recorded) in deployed {
        let path = root.join(file);
        // The file as the read found it: a regular file, not a link out of the checkout.
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                tracing::warn!(service = %name, %file,
                    "catalog: write-back: not a regular file; left alone");
                continue;
            }
            Err(e) => {
                tracing::warn!(service = %name, %file, error = %e,
                    "catalog: write-back: the file is gone from the branch; left alone");
                continue;
            }
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        match edit(&text, file, recorded) {
            Ok(Some(new)) => {
                std::fs::write(&path, new).map_err(|e| format!("{file}: {e}"))?;
                changed.push(file.clone());
                edited.push(name.clone());
            }
            Ok(None) => {}
            Err(why) => {
                tracing::warn!(service = %name, %why, "catalog: write-back: file left alone");
            }
        }
    }
    Ok(changed)
}
