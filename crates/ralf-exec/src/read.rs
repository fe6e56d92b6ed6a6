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
use crate::process::{Abort, Ctx};
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

/// Git work outside any task, for `source`: a number of its own, a job, its masked output and
/// its control. Reads, remote asks and pushes start from it and end with its messages.
struct Outside<'a> {
    id: i64,
    job: Job,
    out: Out<'a>,
    control: Control,
    timeout: Duration,
}

impl<'a> Outside<'a> {
    /// Work numbered `id`, or the next read's number.
    fn new(
        id: Option<i64>,
        source: &RepositorySource,
        timeout: Duration,
        sink: &'a dyn OutputSink,
    ) -> Self {
        let id = id.unwrap_or_else(|| NEXT_READ.fetch_sub(1, Ordering::Relaxed));
        let mut job = Job::new(id, App::Bash, source.clone(), "");
        job.timeout = Some(timeout);
        let out = Out::new(sink, masker(&job));
        Outside {
            id,
            job,
            out,
            control: Control::new(),
            timeout,
        }
    }

    /// The work's context, outside any sandbox.
    fn context<'s>(&'s self, config: &'s ExecConfig) -> Ctx<'s> {
        context(&self.job, config, &self.out, &self.control)
    }

    /// Checks that git may run here (a sandbox, or the setting that allows none) on this URL
    /// (outside ralf's own directories), makes the work's directory (`purpose`: what for) and
    /// enters it, sandboxed.
    async fn start<'s>(
        &'s self,
        config: &'s ExecConfig,
        purpose: &str,
    ) -> Result<(Ctx<'s>, TaskDir), String> {
        let isolation = Isolation::of(config);
        if let Isolation::Refused { why } = &isolation {
            return Err(self.failed(format!(
                "this machine cannot sandbox git: {why} (the setting allow_unsandboxed_tasks \
                 allows running it without a sandbox)"
            )));
        }
        config
            .check_repository_url(&self.job.repository.url)
            .map_err(|why| self.failed(why))?;
        let task = TaskDir::create(config, self.id)
            .await
            .map_err(|e| self.failed(format!("cannot create a directory {purpose}: {e}")))?;
        let mut ctx = self.context(config);
        enter(&mut ctx, &isolation, config, &self.job, &task);
        Ok((ctx, task))
    }

    /// `why`, masked and said, as the work's error.
    fn failed(&self, why: String) -> String {
        self.ended(Abort::Failed(why), "")
    }

    /// What the work says when it ended with `abort` while `doing` ("reading", "asking",
    /// "pushing to") the repository.
    fn ended(&self, abort: Abort, doing: &str) -> String {
        match finish(&self.out, Err(abort)) {
            Outcome::Failed(why) => why,
            Outcome::TimedOut => format!(
                "{doing} the repository took longer than {} s",
                self.timeout.as_secs()
            ),
            _ => format!("{doing} the repository was stopped"),
        }
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
    let work = Outside::new(None, source, timeout, sink);
    let (ctx, task) = work.start(config, "to read into").await?;
    let checkout = git::checkout(&ctx, &task, work.id, &work.job.repository).await;
    task.remove_secrets().await;
    match checkout {
        Ok(checkout) => Ok(RepositoryRead {
            id: work.id,
            dir: checkout.dir,
            info: checkout.info,
            task,
            pin: checkout.pin,
        }),
        Err(abort) => {
            task.remove().await;
            Err(work.ended(abort, "reading"))
        }
    }
}

/// The commit `source`'s branch points at on the remote now (no fetch; the same URL check,
/// and for `git ls-remote` the same sandbox and credentials, as [`read_repository`]); `None` when only a
/// [`read_repository`] can tell (this process has not read the repository yet, or the branch
/// is a tag). Cheap enough to ask before every read whose result is kept per commit.
pub async fn remote_head(
    source: &RepositorySource,
    config: &ExecConfig,
    timeout: Duration,
    sink: &dyn OutputSink,
) -> Result<Option<String>, String> {
    let work = Outside::new(None, source, timeout, sink);
    let (ctx, task) = work.start(config, "to ask from").await?;
    let tip = git::remote_tip(&ctx, &task, &work.job.repository).await;
    task.remove().await;
    tip.map_err(|abort| work.ended(abort, "asking"))
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
    let work = Outside::new(Some(read.id), &tip, timeout, sink);
    let pushed = git::commit_and_push(
        &work.context(config),
        &read.task,
        &read.dir,
        &tip,
        branch,
        &changed,
        commit,
    )
    .await;
    read.task.remove_secrets().await;
    read.remove().await;
    pushed
        .map(Some)
        .map_err(|abort| work.ended(abort, "pushing to"))
}
