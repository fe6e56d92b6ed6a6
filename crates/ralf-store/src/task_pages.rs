//! Task lists as the JSON a list route answers, kept serialized per server and checked against
//! the project's task list version in the database before each use.
//!
//! Every write that changes what a project's task list shows bumps `projects.task_list_version`
//! in its own transaction (triggers, migration 0020), so a page kept here is served only while
//! the database still holds the version it was read at: several servers sharing one database
//! never serve a page another server's write made stale, and nothing depends on this process
//! hearing of a change. The version is read before the page, so a kept page is at least as
//! new as its version: a write committed between the two reads makes the page look older than
//! it is, and the next request reads it again.
//!
//! A hit costs no query of its own: the version comes with the caller's role, in the access
//! check's one query ([`Store::membership`], or [`Store::api_token_user_in_project`] with the
//! token); building a page costs one row per task, serialized once.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use ralf_core::ProjectId;

use crate::tasks::TaskQuery;
use crate::{Result, Store, StoreError};

/// The most bytes of pages one server keeps (about ten default pages of 1,000 tasks).
const KEPT_BYTES: usize = 8 << 20;

/// The serialized pages this server keeps, by project and query.
#[derive(Default)]
pub(crate) struct TaskPages {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    pages: HashMap<String, KeptPage>,
    bytes: usize,
}

struct KeptPage {
    /// The project's task list version read before the page was.
    version: i64,
    body: Bytes,
}

impl TaskPages {
    fn get(&self, key: &str, version: i64) -> Option<Bytes> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.pages
            .get(key)
            .filter(|page| page.version == version)
            .map(|page| page.body.clone())
    }

    /// Keeps `body`, read at `version`, unless a page of a newer version is kept already;
    /// makes room by dropping other pages.
    fn keep(&self, key: String, version: i64, body: Bytes) {
        if body.len() > KEPT_BYTES / 4 {
            return;
        }
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept
            .pages
            .get(&key)
            .is_some_and(|old| old.version > version)
        {
            return;
        }
        if let Some(old) = kept.pages.remove(&key) {
            kept.bytes -= old.body.len();
        }
        while kept.bytes + body.len() > KEPT_BYTES {
            let Some(victim) = kept.pages.keys().next().cloned() else {
                break;
            };
            if let Some(old) = kept.pages.remove(&victim) {
                kept.bytes -= old.body.len();
            }
        }
        kept.bytes += body.len();
        kept.pages.insert(key, KeptPage { version, body });
    }
}

impl Store {
    /// A page of a project's tasks as the JSON array the list routes answer: byte for byte
    /// `serde_json` of [`Store::tasks`]. `version` is the project's task list version, read
    /// before this call (by the access check, [`Store::membership`]); a page kept at that
    /// version is answered without reading the tasks.
    pub async fn project_task_page_json(
        &self,
        project_id: ProjectId,
        version: i64,
        query: &TaskQuery<'_>,
    ) -> Result<Bytes> {
        let key = format!("{} {query:?}", project_id.0);
        if let Some(body) = self.task_pages.get(&key, version) {
            return Ok(body);
        }
        let body = serialized(&self.tasks(project_id, query).await?)?;
        self.task_pages.keep(key, version, body.clone());
        Ok(body)
    }

    /// A page of every project's tasks, as [`Store::project_task_page_json`] answers (never
    /// kept).
    pub async fn task_page_json(&self, query: &TaskQuery<'_>) -> Result<Bytes> {
        serialized(&self.tasks_of_every_project(query).await?)
    }
}

/// `value` as JSON, in an allocation of its length (a kept page would otherwise keep the spare
/// capacity its `Vec` grew).
fn serialized<T: serde::Serialize>(value: &T) -> Result<Bytes> {
    let mut json = serde_json::to_vec(value)
        .map_err(|e| StoreError::Corrupt(format!("a task list does not serialize: {e}")))?;
    json.shrink_to_fit();
    Ok(Bytes::from(json))
}
