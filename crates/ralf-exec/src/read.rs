//! Checkouts ralf makes for itself, outside any task: the server reading a project's service
//! catalog, and committing its write-back. The same cached clone, URL check, sandbox and credentials as a task's checkout
//! (see `git`), into a directory of its own under `work_dir/tasks/` with a negative number (so
//! it never meets a task's, and [`crate::remove_leftovers`] removes it after a crash), which
//! [`RepositoryRead::remove`] deletes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::config::ExecConfig;
use crate::control::Control;
use crate::git::{self, NewCommit, Pin};
use crate::output::{Out, OutputSink};
use crate::process::Abort;
use crate::sandbox::Isolation;
use crate::workspace::TaskDir;
use crate::{App, CheckoutInfo, Job, RepositorySource};
use crate::{Outcome, confine, context, enter, finish, masker};

/// The number of the next read's directory: -1, -2, ... (tasks are numbered from 1).
static NEXT_READ: AtomicI64 = AtomicI64::new(-1);

/// A repository checked out for reading, at the commit in `info`.
pub struct RepositoryRead {
    id: i64,
    dir: PathBuf,
    pub info: CheckoutInfo,
    task: TaskDir,
    pin: Pin,
}

impl RepositoryRead {
    /// The checkout's root.
    pub fn root(&self) -> &Path {
        &self.dir
    }

    /// `path` (relative to the root) in the checkout, refused when it leaves the checkout, as
    /// text or through a symbolic link; `field` names it in the message. What it names need not
    /// exist.
    pub fn path(&self, path: &str, field: &str) -> Result<PathBuf, String> {
        let path = path.trim();
        confine::path(&self.dir, &self.dir, "", path, field).map_err(|abort| match abort {
            Abort::Failed(why) => why,
            Abort::Stopped | Abort::TimedOut => format!("{field} '{path}' cannot be checked"),
        })?;
        Ok(self.dir.join(path))
    }

    /// Deletes the checkout and lets the cache forget its commit.
    pub async fn remove(self) {
        self.task.remove().await;
        self.pin.release().await;
    }
}

/// Fetches `source` (its branch's tip, or its commit) into its cache and checks it out for
/// reading; git's lines go to `sink`. Fails, saying why (secrets masked), when the URL points
/// into ralf's own directories, when tasks cannot be sandboxed here, or when git fails or takes
/// longer than `timeout`.
pub async fn read_repository(
    source: &RepositorySource,
    config: &ExecConfig,
    timeout: Duration,
    sink: &dyn OutputSink,
) -> Result<RepositoryRead, String> {
    let id = NEXT_READ.fetch_sub(1, Ordering::Relaxed);
    let mut job = Job::new(id, App::Bash, source.clone(), "");
    job.timeout = Some(timeout);
    let out = Out::new(sink, masker(&job));
    let control = Control::new();
    let mut ctx = context(&job, config, &out, &control);
    let isolation = Isolation::of(config);
    let failed = |why: String| match finish(&out, Err(Abort::Failed(why))) {
        Outcome::Failed(why) => why,
        _ => unreachable!("a failure stays one"),
    };
    if let Isolation::Refused { why } = &isolation {
        return Err(failed(format!(
            "this machine cannot sandbox git: {why} (the setting allow_unsandboxed_tasks \
             allows running it without a sandbox)"
        )));
    }
    config.check_repository_url(&source.url).map_err(&failed)?;
    let task = TaskDir::create(config, id)
        .await
        .map_err(|e| failed(format!("cannot create a directory to read into: {e}")))?;
    enter(&mut ctx, &isolation, config, &job, &task);
    let checkout = git::checkout(&ctx, &task, id, &job.repository).await;
    task.remove_secrets().await;
    match checkout {
        Ok(checkout) => Ok(RepositoryRead {
            id,
            dir: checkout.dir,
            info: checkout.info,
            task,
            pin: checkout.pin,
        }),
        Err(abort) => {
            task.remove().await;
            Err(match finish(&out, Err(abort)) {
                Outcome::Failed(why) => why,
                Outcome::TimedOut => format!(
                    "reading the repository took longer than {} s",
                    timeout.as_secs()
                ),
                _ => "reading the repository was stopped".to_owned(),
            })
        }
    }
}

/// The commit `source`'s branch points at on the remote now (`git ls-remote`, no fetch, the
/// same URL check, sandbox and credentials as [`read_repository`]); `None` when only a
/// [`read_repository`] can tell (this process has not read the repository yet, or the branch
/// is a tag). Cheap enough to ask before every read whose result is kept per commit.
pub async fn remote_head(
    source: &RepositorySource,
    config: &ExecConfig,
    timeout: Duration,
    sink: &dyn OutputSink,
) -> Result<Option<String>, String> {
    let id = NEXT_READ.fetch_sub(1, Ordering::Relaxed);
    let mut job = Job::new(id, App::Bash, source.clone(), "");
    job.timeout = Some(timeout);
    let out = Out::new(sink, masker(&job));
    let control = Control::new();
    let mut ctx = context(&job, config, &out, &control);
    let isolation = Isolation::of(config);
    let failed = |why: String| match finish(&out, Err(Abort::Failed(why))) {
        Outcome::Failed(why) => why,
        _ => unreachable!("a failure stays one"),
    };
    if let Isolation::Refused { why } = &isolation {
        return Err(failed(format!("this machine cannot sandbox git: {why}")));
    }
    config.check_repository_url(&source.url).map_err(&failed)?;
    let task = TaskDir::create(config, id)
        .await
        .map_err(|e| failed(format!("cannot create a directory to ask from: {e}")))?;
    enter(&mut ctx, &isolation, config, &job, &task);
    let tip = git::remote_tip(&ctx, &task, &job.repository).await;
    task.remove().await;
    tip.map_err(|abort| match finish(&out, Err(abort)) {
        Outcome::Failed(why) => why,
        Outcome::TimedOut => format!(
            "asking the repository took longer than {} s",
            timeout.as_secs()
        ),
        _ => "asking the repository was stopped".to_owned(),
    })
}

/// Fetches the tip of `source`'s branch and checks it out as [`read_repository`] does, lets
/// `edit` change files in the checkout (it returns the paths it changed, relative to the
/// root), commits them as `commit` says and pushes the commit to the branch (a fast-forward:
/// when the branch moved meanwhile, the push fails). Returns the commit's hash, or `None` when
/// `edit` changed nothing (nothing is pushed then). Fails, saying why (secrets masked), when
/// the read, `edit`, the commit or the push fails.
pub async fn commit_to_repository<E>(
    source: &RepositorySource,
    config: &ExecConfig,
    timeout: Duration,
    sink: &dyn OutputSink,
    commit: &NewCommit,
    edit: E,
) -> Result<Option<String>, String>
where
    E: FnOnce(&Path) -> Result<Vec<String>, String>,
{
    let branch = source.branch.trim();
    if branch.is_empty() {
        return Err("the repository names no branch to push to".into());
    }
    let tip = RepositorySource {
        commit: None,
        ..source.clone()
    };
    let read = read_repository(&tip, config, timeout, sink).await?;
    let changed = match edit(read.root()) {
        Ok(changed) if changed.is_empty() => {
            read.remove().await;
            return Ok(None);
        }
        Ok(changed) => changed,
        Err(why) => {
            read.remove().await;
            return Err(why);
        }
    };
    let mut job = Job::new(read.id, App::Bash, tip.clone(), "");
    job.timeout = Some(timeout);
    let out = Out::new(sink, masker(&job));
    let control = Control::new();
    let ctx = context(&job, config, &out, &control);
    let pushed =
        git::commit_and_push(&ctx, &read.task, &read.dir, &tip, branch, &changed, commit).await;
    read.task.remove_secrets().await;
    read.remove().await;
    pushed
        .map(Some)
        .map_err(|abort| match finish(&out, Err(abort)) {
            Outcome::Failed(why) => why,
            Outcome::TimedOut => format!(
                "pushing to the repository took longer than {} s",
                timeout.as_secs()
            ),
            _ => "pushing to the repository was stopped".to_owned(),
        })
}
