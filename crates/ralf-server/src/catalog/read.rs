//! Reading a project's catalog on the server, outside any task: its repository fetched and
//! checked out by the executor's code (the same cache, credentials, URL checks and sandbox as
//! the repository's tasks), the files at the settings' path parsed and checked against the
//! project's templates, at the commit the branch's tip was when fetched.
//!
//! The last valid catalog of each project is kept ([`ReadCache`]) with what it was read from:
//! the repository's URL, branch and path, the project's templates, and the commit. A read asks
//! the remote where the branch points now (`git ls-remote`, no fetch, no checkout); when that is
//! the kept commit and nothing else changed, the kept catalog is the answer. So a push is seen
//! by the next read, and repeated reads of an unchanged catalog cost one question to the
//! remote.

use ralf_core::ProjectId;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ralf_catalog::api::CatalogSettings;
use ralf_catalog::{Catalog, TemplateRef};
use ralf_exec::{OutputLine, OutputSink, RepositorySource};

use super::CatalogFailure;
use crate::dispatch::job;
use crate::state::AppState;

/// The longest a read of the repository may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// How many of git's last lines a failed read keeps for the log.
const KEPT_LINES: usize = 20;

/// A valid catalog, the commit it was read at, and the settings it was read with.
pub struct CatalogAt {
    pub catalog: Catalog,
    pub commit: String,
    pub settings: CatalogSettings,
}

/// The project's catalog at its branch's tip, checked; [`CatalogFailure::Invalid`] with every
/// error when it is not valid.
pub async fn load(state: &AppState, project_id: i64) -> Result<CatalogAt, CatalogFailure> {
    let settings = super::settings(&state.store, project_id).await?;
    let (repository_id, source) = source(state, project_id, &settings).await?;
    let templates = Templates::of(state, project_id).await?;
    let read_from = ReadFrom {
        url: source.url.clone(),
        branch: source.branch.clone(),
        path: settings.path.trim().to_owned(),
        templates,
    };
    let cache = &state.catalog.reads;
    if let Some(kept) = cache.kept(project_id, &read_from) {
        let lines = LastLines::default();
        match ralf_exec::remote_head(&source, &state.catalog.exec, READ_TIMEOUT, &lines).await {
            Ok(Some(head)) if head == kept.commit => {
                return Ok(CatalogAt {
                    catalog: kept.catalog,
                    commit: kept.commit,
                    settings,
                });
            }
            Ok(_) => {}
            // A full read tells what is wrong, and logs it.
            Err(why) => tracing::debug!(project.id = project_id, %why,
                "catalog: cannot ask the remote for its branch; reading it"),
        }
    }
    let lines = LastLines::default();
    let read = ralf_exec::read_repository(&source, &state.catalog.exec, READ_TIMEOUT, &lines)
        .await
        .map_err(|why| {
            tracing::warn!(project.id = project_id, repository.id = repository_id,
                git = ?lines.take(), %why, "catalog: cannot read the repository");
            CatalogFailure::Unreadable(why)
        })?;
    let checked = read.path(&settings.path, "path");
    let root = read.root().to_path_buf();
    let commit = read.info.commit_hash.clone();
    let path = PathBuf::from(settings.path.trim());
    let loaded = match checked {
        Err(why) => Err(CatalogFailure::Refused(why)),
        Ok(_) => {
            let templates = read_from.templates.clone();
            tokio::task::spawn_blocking(move || {
                Catalog::load(&root, &path, &|t: &TemplateRef| templates.id(t))
            })
            .await
            .map_err(|e| CatalogFailure::Unreadable(format!("reading the files failed: {e}")))
            .and_then(|loaded| loaded.map_err(CatalogFailure::Invalid))
        }
    };
    read.remove().await;
    let catalog = loaded?;
    cache.keep(
        project_id,
        Kept {
            read_from,
            commit: commit.clone(),
            catalog: catalog.clone(),
        },
    );
    Ok(CatalogAt {
        catalog,
        commit,
        settings,
    })
}

/// The last valid catalog read of each project, by project id.
#[derive(Default)]
pub struct ReadCache(Mutex<HashMap<i64, Kept>>);

/// What a kept catalog was read from: a read from anything else reads again.
#[derive(Clone, PartialEq)]
struct ReadFrom {
    url: String,
    branch: String,
    path: String,
    templates: Templates,
}

#[derive(Clone)]
struct Kept {
    read_from: ReadFrom,
    commit: String,
    catalog: Catalog,
}

impl ReadCache {
    /// The project's kept catalog, when it was read from `read_from`.
    fn kept(&self, project_id: i64, read_from: &ReadFrom) -> Option<Kept> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(&project_id)
            .filter(|k| k.read_from == *read_from)
            .cloned()
    }

    fn keep(&self, project_id: i64, kept: Kept) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(project_id, kept);
    }
}

/// The repository the catalog of `settings` is in (its id), as git reads it: its URL, the
/// catalog's branch, the repository's credentials.
pub(super) async fn source(
    state: &AppState,
    project_id: i64,
    settings: &CatalogSettings,
) -> Result<(i64, RepositorySource), CatalogFailure> {
    let Some(repository_id) = settings.repository_id else {
        return Err(CatalogFailure::NotConfigured);
    };
    let repository = state
        .store
        .repository(ProjectId(project_id), repository_id)
        .await?;
    let mut secrets = Vec::new();
    let auth = match repository.ssh_key_id {
        None => None,
        Some(key_id) => job::credential(state, project_id, key_id, &mut secrets)
            .await
            .map_err(|e| CatalogFailure::Unreadable(format!("{e:#}")))?,
    };
    let source = RepositorySource {
        url: repository.git_url.clone(),
        branch: settings
            .branch
            .clone()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| repository.git_branch.clone()),
        commit: None,
        auth,
        cache_key: job::cache_key(repository.id),
    };
    Ok((repository.id, source))
}

/// The project's templates by id and by name, to resolve what services name.
#[derive(Default, Clone, PartialEq)]
pub(super) struct Templates {
    ids: BTreeSet<i64>,
    /// Each name with the templates that have it (names need not be unique).
    by_name: BTreeMap<String, Vec<i64>>,
}

impl Templates {
    pub(super) async fn of(
        state: &AppState,
        project_id: i64,
    ) -> Result<Templates, ralf_store::StoreError> {
        let mut templates = Templates::default();
        for template in state
            .store
            .templates(ProjectId(project_id), None, None, false)
            .await?
        {
            templates.ids.insert(template.id);
            templates
                .by_name
                .entry(template.settings.name.clone())
                .or_default()
                .push(template.id);
        }
        Ok(templates)
    }

    /// The template a service names: by id, or by a name only one template has (a name
    /// several share is not guessed at).
    pub(super) fn id(&self, template: &TemplateRef) -> Option<i64> {
        match template {
            TemplateRef::Id(id) => self.ids.contains(id).then_some(*id),
            TemplateRef::Name(name) => match self.by_name.get(name).map(Vec::as_slice) {
                Some([id]) => Some(*id),
                _ => None,
            },
        }
    }
}

/// Keeps git's last lines of a read, for the log when it fails.
#[derive(Default)]
pub(super) struct LastLines(Mutex<Vec<String>>);

impl LastLines {
    pub(super) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl OutputSink for LastLines {
    fn line(&self, line: OutputLine) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == KEPT_LINES {
            lines.remove(0);
        }
        lines.push(line.text);
    }
}
