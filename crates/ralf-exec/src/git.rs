//! The repository: one cached bare clone per `cache_key` under `work_dir/repos/<key>.git`,
//! fetched for each task, and a private checkout of the exact commit the task resolved under
//! `work_dir/tasks/<id>/repo`.
//!
//! **Fetching.** Fetches of one cache take turns (a lock per cache). A task that had to wait
//! does not fetch again when a fetch that *started after the task asked* succeeded meanwhile:
//! that fetch saw the remote later than the task's request, so it is as fresh as the task's own
//! would be (a fetch already running when the task asked does not count; neither does one of
//! another URL, nor, for a task on the remote's default branch, one that did not fetch the
//! remote's `HEAD`). A new cache gets its URL written into its config; `git config
//! remote.origin.url` only runs when the URL differs from the one this process set. Git's
//! automatic maintenance is off (`maintenance.auto=false`, `gc.auto=0`, on every command and in
//! the cache's config): it would start one more git after every fetch.
//!
//! **Skipping a fetch that would change nothing.** For a `git://` URL (no credentials), the
//! remote's refs are first read over one connection without starting git (`advertised`, what
//! `git ls-remote` shows): when its branches and tags (and, for a task on the default branch,
//! its `HEAD`) are exactly the cache's, the fetch is skipped. That check reads the remote after
//! the task asked, so it counts as a fetch for the tasks waiting on the lock. Other URLs
//! (HTTPS, SSH, local paths) are always fetched. The check talks to the URL as written: a
//! `url.<base>.insteadOf` of the server's git configuration that rewrites `git://` URLs is not
//! followed by it.
//!
//! **Resolving and pinning.** Still under the lock, a branch (or the remote's default branch)
//! is read from the cache's ref files (`refs`; the cache is kept in git's `files` ref format),
//! tags and commits given by hash with `git rev-parse`. Only the refs the remote advertises as
//! branches and tags (and its `HEAD`) are fetched, never an object by its id, and a commit given
//! by hash must be reachable from the branch the task runs (`git merge-base --is-ancestor`):
//! a task cannot run another branch's commit, nor an unmerged pull request's, while its log
//! names the branch. The log line names the branch and the exact commit checked out. The
//! commit is then pinned:
//! `ralf/pins/<task id>` in the cache holds its hash until the task ends (for a plan waiting
//! for its confirmation: until it is applied or discarded).
//!
//! **Garbage collection.** No git of ralf's collects garbage by itself. ralf compacts the cache
//! during a fetch (under the lock: no other git of ours writes to it then) once it holds as
//! many loose objects or packs as would make `git gc --auto` act: the pins of live tasks (whose
//! `tasks/<id>` exists) become refs `refs/ralf/tasks/<id>` and those of ended tasks are deleted,
//! in one `git update-ref --stdin`, then `git gc` runs (it does not run if the pins could not be
//! written). So a pinned commit is never collected: nothing collects between compactions, and a
//! compaction keeps every pinned commit through its ref. Unreachable objects younger than
//! `gc.pruneExpire` (two weeks) stay as well, for the branches and tags the tasks' checkouts
//! name.
//!
//! **Checking out.** The first task at a commit has git write a snapshot of it under
//! `ralf/trees/<hash>/` (`git read-tree -u` into `tree/`, with its own `index`) and read its
//! subject; every task at that commit, that first one included, then gets a copy made without
//! git (see `tree`): each file copied (a new inode: tasks never share working files), the index
//! copied with the copies' stat data, and a `.git` written as `git clone --shared` of the cache
//! leaves it: objects borrowed through `objects/info/alternates`, the cache's branches as
//! `origin/*` and its tags as of the resolution, `HEAD` on the task's branch (detached for a
//! tag, a commit or the default branch), `origin` the repository's URL. Snapshots in use stay,
//! and the [`IDLE_TREES`] idle ones used last; the others are deleted (all of them when a
//! process first uses the cache).
//!
//! Why a private `.git` and not `git worktree add`: a worktree shares the cache's refs, config
//! and hooks with the task, so a playbook running `git config`, `git branch -D` or `git gc` in
//! its checkout would change the cache of every later task, and a killed task leaves admin
//! entries in the cache. A private `.git` goes with the task's directory.
//!
//! Credentials never appear in a URL or an argument: HTTPS logins are answered by a
//! `GIT_ASKPASS` script reading 0600 files, SSH keys are 0600 files given to `ssh -i` through
//! `GIT_SSH_COMMAND`, and `GIT_TERMINAL_PROMPT=0` keeps git from ever waiting for a person.

mod advertised;
mod refs;
mod tree;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use ralf_core::job::{CheckoutInfo, Credential, RepositorySource};
use ralf_core::redact::redact_url;
use tokio::sync::Mutex as AsyncMutex;

use crate::config::ExecConfig;
use crate::process::{self, Abort, Ctx, Spec, shell_quote};
use crate::workspace::{TaskDir, make_private_dir_all, safe_name, task_root};

/// How many idle snapshots (no task copying them) a cache keeps, the ones used last.
const IDLE_TREES: usize = 3;

/// Where a fetch puts the remote's `HEAD` (the default branch's tip).
const REMOTE_HEAD: &str = "refs/ralf/remote-head";

/// The cached bare clone of a repository.
pub(crate) fn cache_dir(config: &ExecConfig, cache_key: &str) -> PathBuf {
    config
        .work_dir
        .join("repos")
        .join(safe_name(cache_key) + ".git")
}

/// What this process knows about one cache.
#[derive(Default)]
struct CacheState {
    /// Held while fetching, resolving, pinning and writing a snapshot: one task at a time.
    lock: AsyncMutex<Locked>,
    /// Also read and changed without the lock (by tasks that wait for it or copy a snapshot).
    shared: Mutex<Shared>,
}

/// What only the lock's holder reads or changes.
#[derive(Default)]
struct Locked {
    /// Checked since this process started (ref format, snapshots of an earlier process).
    checked: bool,
    /// What this process set `remote.origin.url` to.
    url: Option<String>,
}

#[derive(Default)]
struct Shared {
    /// How many fetches started; a fetch's number is this count once it started.
    started: u64,
    /// What the successful fetches brought.
    fetched: Option<Fetched>,
    /// The snapshots, by commit.
    trees: HashMap<String, Tree>,
    /// Counts the snapshots' uses (for "used last").
    uses: u64,
    /// Names the directories of deleted snapshots.
    buried: u64,
}

/// The last successful fetches of one URL.
struct Fetched {
    url: String,
    /// The number of the last one.
    number: u64,
    /// The number of the last one that fetched the remote's `HEAD` too (0: none).
    with_head: u64,
}

/// A snapshot of a commit's files.
struct Tree {
    /// Tasks copying it now.
    users: usize,
    last_use: u64,
    /// The commit's subject.
    subject: String,
}

impl CacheState {
    fn of(cache: &Path) -> Arc<CacheState> {
        static STATES: LazyLock<Mutex<HashMap<PathBuf, Arc<CacheState>>>> =
            LazyLock::new(Default::default);
        let mut states = STATES.lock().unwrap_or_else(|e| e.into_inner());
        states.entry(cache.to_path_buf()).or_default().clone()
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    /// Whether a fetch of `url` that started after the `asked`-th one succeeded (one that also
    /// fetched the remote's `HEAD`, with `head`).
    fn fetched_since(&self, asked: u64, url: &str, head: bool) -> bool {
        self.fetched.as_ref().is_some_and(|f| {
            f.url == url
                && if head {
                    f.with_head > asked
                } else {
                    f.number > asked
                }
        })
    }

    fn record_fetch(&mut self, url: &str, number: u64, head: bool) {
        match &mut self.fetched {
            Some(f) if f.url == url => {
                f.number = f.number.max(number);
                if head {
                    f.with_head = f.with_head.max(number);
                }
            }
            _ => {
                self.fetched = Some(Fetched {
                    url: url.to_string(),
                    number,
                    with_head: if head { number } else { 0 },
                })
            }
        }
    }

    /// Takes the snapshot of `commit` for one more task: its subject, or `None` when there is
    /// none.
    fn take_tree(&mut self, commit: &str) -> Option<String> {
        self.uses += 1;
        let tree = self.trees.get_mut(commit)?;
        tree.users += 1;
        tree.last_use = self.uses;
        Some(tree.subject.clone())
    }

    /// Records the new snapshot of `commit`, taken by one task.
    fn add_tree(&mut self, commit: &str, subject: String) {
        self.uses += 1;
        let tree = Tree {
            users: 1,
            last_use: self.uses,
            subject,
        };
        self.trees.insert(commit.to_string(), tree);
    }

    /// A task is done copying the snapshot of `commit`; `failed`: the copy failed, so the next
    /// task writes a new snapshot (this one may be damaged).
    fn drop_tree(&mut self, commit: &str, failed: bool) {
        if failed {
            self.trees.remove(commit);
        } else if let Some(tree) = self.trees.get_mut(commit) {
            tree.users = tree.users.saturating_sub(1);
        }
    }

    /// Forgets the idle snapshots but the [`IDLE_TREES`] used last, and moves their directories
    /// aside (`.gone-<n>`, no longer a commit's name); returns those directories, to delete.
    fn evict_trees(&mut self, trees: &Path) -> Vec<PathBuf> {
        let mut idle: Vec<(u64, String)> = self
            .trees
            .iter()
            .filter(|(_, t)| t.users == 0)
            .map(|(commit, t)| (t.last_use, commit.clone()))
            .collect();
        idle.sort_unstable_by_key(|(last_use, _)| std::cmp::Reverse(*last_use));
        let mut doomed = Vec::new();
        for (_, commit) in idle.into_iter().skip(IDLE_TREES) {
            self.trees.remove(&commit);
            self.buried += 1;
            let grave = trees.join(format!(".gone-{}", self.buried));
            if std::fs::rename(trees.join(&commit), &grave).is_ok() {
                doomed.push(grave);
            }
        }
        doomed
    }
}

/// Removes the `*.lock` files a git killed with SIGKILL (a forced stop) left in the cache: git
/// would refuse to update those refs again. Only called under the cache's lock, when no git of
/// ours uses the cache for writing, so every lock file found is stale.
fn remove_stale_locks(cache: &Path) {
    fn walk(dir: &Path, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() && depth > 0 => walk(&path, depth - 1),
                Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "lock") => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
    }
    walk(cache, 0);
    walk(&cache.join("refs"), 16);
}

/// The key's text as ssh accepts it: LF line endings and a final newline.
pub(crate) fn key_bytes(key: &str) -> Vec<u8> {
    let mut text = key.replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.into_bytes()
}

/// The environment git runs with: the task's base environment plus the credential helpers.
/// Writes the credential files into the task's `.ralf/`.
pub(crate) fn git_env(
    ctx: &Ctx<'_>,
    task: &TaskDir,
    auth: Option<&Credential>,
) -> Result<Vec<(OsString, OsString)>, Abort> {
    let io = |e: std::io::Error| Abort::Failed(format!("cannot write the git credentials: {e}"));
    let q = |p: &Path| shell_quote(&p.to_string_lossy()).into_owned();
    let mut env = ctx.base_env();
    env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
    let known_hosts = task.secrets.join("known_hosts");
    let mut ssh = format!(
        "ssh -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={} \
         -o PreferredAuthentications=publickey -o PasswordAuthentication=no \
         -o KbdInteractiveAuthentication=no",
        q(&known_hosts)
    );
    let mut batch = true;
    match auth {
        None => {}
        Some(Credential::LoginPassword(lp)) => {
            let login = task
                .secret_file("git-login", lp.login.as_bytes())
                .map_err(io)?;
            let password = task
                .secret_file("git-password", lp.password.as_bytes())
                .map_err(io)?;
            let script = task
                .script(
                    "git-askpass",
                    &format!(
                        "#!/bin/sh\ncase \"$1\" in\n  [Uu]sername*) cat {} ;;\n  *) cat {} ;;\nesac\n",
                        q(&login),
                        q(&password)
                    ),
                )
                .map_err(io)?;
            env.push(("GIT_ASKPASS".into(), script.into()));
        }
        Some(Credential::Ssh(key)) => {
            let key_file = task
                .secret_file("git-ssh-key", &key_bytes(&key.private_key))
                .map_err(io)?;
            ssh.push_str(&format!(" -i {} -o IdentitiesOnly=yes", q(&key_file)));
            if let Some(login) = key.login.as_deref().filter(|l| !l.is_empty()) {
                ssh.push_str(&format!(" -o {}", shell_quote(&format!("User={login}"))));
            }
            if let Some(passphrase) = key.passphrase.as_deref().filter(|p| !p.is_empty()) {
                let file = task
                    .secret_file("git-ssh-passphrase", passphrase.as_bytes())
                    .map_err(io)?;
                let script = task
                    .script("git-ssh-askpass", &format!("#!/bin/sh\ncat {}\n", q(&file)))
                    .map_err(io)?;
                env.push(("SSH_ASKPASS".into(), script.into()));
                env.push(("SSH_ASKPASS_REQUIRE".into(), "force".into()));
                // BatchMode would refuse to ask for the passphrase.
                batch = false;
            }
        }
    }
    if batch {
        ssh.push_str(" -o BatchMode=yes");
    }
    env.push(("GIT_SSH_COMMAND".into(), ssh.into()));
    Ok(env)
}

/// Runs git in the task's context.
struct Git<'c> {
    ctx: &'c Ctx<'c>,
    program: PathBuf,
    env: Vec<(OsString, OsString)>,
}

impl Git<'_> {
    fn spec(&self, cwd: &Path, args: &[&str]) -> Spec {
        Spec::new("git", self.program.clone(), cwd)
            .args([
                "-c",
                "credential.helper=",
                "-c",
                "gc.auto=0",
                "-c",
                "maintenance.auto=false",
                "-c",
                "gc.autoDetach=false",
                "-c",
                "maintenance.autoDetach=false",
                "-c",
                "advice.detachedHead=false",
            ])
            .args(args.iter().copied())
            .env(self.env.clone())
    }

    /// Runs git; its output goes to the task's output; a failure ends the task.
    async fn run(&self, cwd: &Path, args: &[&str], what: &str) -> Result<(), Abort> {
        self.run_spec(&self.spec(cwd, args), what).await
    }

    async fn run_spec(&self, spec: &Spec, what: &str) -> Result<(), Abort> {
        let exit = process::run(self.ctx, spec, None).await?;
        exit.check("git").map_err(|e| match e {
            Abort::Failed(why) => Abort::Failed(format!("{what} failed: {why}")),
            other => other,
        })
    }

    /// Runs git and returns its stdout lines, or `None` when it failed (its stderr goes to the
    /// task's output).
    async fn read(&self, cwd: &Path, args: &[&str]) -> Result<Option<Vec<String>>, Abort> {
        let mut lines = Vec::new();
        let exit = process::run(self.ctx, &self.spec(cwd, args), Some(&mut lines)).await?;
        match exit.check("git") {
            Ok(()) => Ok(Some(lines)),
            Err(Abort::Failed(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Whether `ancestor` is reachable from `descendant` (`git merge-base --is-ancestor`).
    async fn is_ancestor(
        &self,
        cwd: &Path,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, Abort> {
        let spec = self.spec(cwd, &["merge-base", "--is-ancestor", ancestor, descendant]);
        let mut ignored = Vec::new();
        let exit = process::run(self.ctx, &spec, Some(&mut ignored)).await?;
        match exit.check("git") {
            Ok(()) => Ok(true),
            Err(Abort::Failed(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The commit `rev` names in the repository at `cwd`, if any.
    async fn resolve(&self, cwd: &Path, rev: &str) -> Result<Option<String>, Abort> {
        let rev = format!("{rev}^{{commit}}");
        let lines = self
            .read(cwd, &["rev-parse", "--verify", "--quiet", &rev])
            .await?;
        Ok(lines
            .and_then(|l| l.into_iter().next())
            .filter(|s| !s.is_empty()))
    }
}

/// A commit ralf makes itself (the catalog's write-back): its message and author.
#[derive(Debug, Clone)]
pub struct NewCommit {
    pub message: String,
    pub author_name: String,
    pub author_email: String,
}

/// Commits `paths` (relative to the checkout `dir`, changed there) on top of what is checked
/// out and pushes the commit to `branch` of the repository's remote; returns its hash. The
/// push is a fast-forward or nothing: a branch that moved meanwhile fails it.
pub(crate) async fn commit_and_push(
    ctx: &Ctx<'_>,
    task: &TaskDir,
    dir: &Path,
    repo: &RepositorySource,
    branch: &str,
    paths: &[String],
    commit: &NewCommit,
) -> Result<String, Abort> {
    task.make_secrets_dir()
        .map_err(|e| Abort::Failed(format!("cannot write the git credentials: {e}")))?;
    let mut env = git_env(ctx, task, repo.auth.as_ref())?;
    for (name, value) in [
        ("GIT_AUTHOR_NAME", &commit.author_name),
        ("GIT_AUTHOR_EMAIL", &commit.author_email),
        ("GIT_COMMITTER_NAME", &commit.author_name),
        ("GIT_COMMITTER_EMAIL", &commit.author_email),
    ] {
        env.push((name.into(), value.into()));
    }
    let git = Git {
        ctx,
        program: ctx.find("git")?,
        env,
    };
    // The checkout may belong to the tasks' user; hooks and signing are the operator's.
    let own = [
        "-c",
        "safe.directory=*",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "commit.gpgSign=false",
    ];
    let with = |args: &[&str]| -> Vec<String> {
        own.iter()
            .chain(args.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let mut add = with(&["add", "--"]);
    add.extend(paths.iter().cloned());
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    git.run(dir, &add, "git add").await?;
    let message = commit.message.as_str();
    let commit_args = with(&["commit", "--quiet", "--no-verify", "-m", message]);
    let commit_args: Vec<&str> = commit_args.iter().map(String::as_str).collect();
    git.run(dir, &commit_args, "git commit").await?;
    let head = with(&["rev-parse", "HEAD"]);
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let hash = git
        .read(dir, &head)
        .await?
        .and_then(|lines| lines.into_iter().next())
        .ok_or_else(|| Abort::Failed("the new commit cannot be read".into()))?;
    let refspec = format!("HEAD:refs/heads/{branch}");
    let push = with(&["push", "--quiet", "--no-verify", "origin", &refspec]);
    let push: Vec<&str> = push.iter().map(String::as_str).collect();
    git.run(dir, &push, "git push").await?;
    Ok(hash)
}

/// The file that pins a task's commit in the cache.
fn pin_file(cache: &Path, task_id: i64) -> PathBuf {
    cache.join("ralf/pins").join(task_id.to_string())
}

/// The ref that holds a pinned commit through a compaction.
fn pin_ref(task_id: i64) -> String {
    format!("refs/ralf/tasks/{task_id}")
}

/// A commit held in the cache for a task (see the module's documentation).
pub(crate) struct Pin {
    file: PathBuf,
}

impl Pin {
    /// The pin of the task's commit in the cache of `cache_key`.
    pub(crate) fn new(config: &ExecConfig, cache_key: &str, task_id: i64) -> Pin {
        Pin {
            file: pin_file(&cache_dir(config, cache_key), task_id),
        }
    }

    /// Pins `commit` for the task. Only under the cache's lock (a compaction reads the pins).
    fn create(cache: &Path, task_id: i64, commit: &str) -> Result<Pin, Abort> {
        let file = pin_file(cache, task_id);
        let io = |e: std::io::Error| Abort::Failed(format!("cannot pin the commit: {e}"));
        make_private_dir_all(file.parent().expect("pins/<id> has a parent")).map_err(io)?;
        std::fs::write(&file, format!("{commit}\n")).map_err(io)?;
        Ok(Pin { file })
    }

    /// Drops the pin (the commit's objects become collectable at the next compaction). Needs
    /// no lock: a compaction that still saw the pin only keeps some objects longer.
    pub(crate) async fn release(self) {
        let _ = tokio::fs::remove_file(&self.file).await;
    }
}

/// Whether the cache holds as many loose objects or packs as make `git gc --auto` act with its
/// default limits: loose objects estimated from `objects/17` (more than 6700 / 256), or more
/// than 50 packs.
fn needs_compaction(cache: &Path) -> bool {
    let count = |dir: &str, wanted: &dyn Fn(&str) -> bool| {
        std::fs::read_dir(cache.join(dir)).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(wanted))
                .count()
        })
    };
    count("objects/17", &|name| {
        name.len() >= 38 && name.bytes().all(|b| b.is_ascii_hexdigit())
    }) > 6700_usize.div_ceil(256)
        || count("objects/pack", &|name| name.ends_with(".pack")) > 50
}

/// Compacts the cache (see the module's documentation). Under the cache's lock.
async fn compact(git: &Git<'_>, config: &ExecConfig, cache: &Path) -> Result<(), Abort> {
    let io = |e: std::io::Error| Abort::Failed(format!("cannot read the pins: {e}"));
    git.ctx
        .out
        .say("Compacting the repository's cache (git gc)");
    let mut live = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(cache.join("ralf/pins")) {
        for entry in entries.flatten() {
            let id = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok());
            let commit = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let commit = commit.trim();
            match id {
                Some(id) if task_root(config, id).is_dir() && refs::is_hash(commit) => {
                    live.insert(pin_ref(id), commit.to_string());
                }
                // The task ended without releasing its pin (or the file is not ours).
                _ => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
    let mut commands = String::new();
    for name in refs::list(cache, "refs/ralf/tasks/").map_err(io)?.keys() {
        let id = name
            .rsplit('/')
            .next()
            .and_then(|id| id.parse::<i64>().ok());
        // A ref of a live task without a pin file: pinned by an earlier version of ralf (which
        // pinned with refs); it stays.
        let task_lives = id.is_some_and(|id| task_root(config, id).is_dir());
        if !live.contains_key(name) && !task_lives {
            commands.push_str(&format!("delete {name}\n"));
        }
    }
    for (name, commit) in &live {
        commands.push_str(&format!("update {name} {commit}\n"));
    }
    if !commands.is_empty() {
        let file = cache.join("ralf/pin-refs");
        std::fs::write(&file, commands).map_err(io)?;
        let spec = git.spec(cache, &["update-ref", "--stdin"]).stdin(&file);
        let result = git.run_spec(&spec, "pinning the commits in use").await;
        let _ = std::fs::remove_file(&file);
        result?;
    }
    git.run(cache, &["gc", "--quiet"], "git gc").await
}

/// Fetches the remote's branches and tags (and its `HEAD`, with `default_branch`) into the
/// cache, then compacts the cache if it needs it. Under the cache's lock.
async fn fetch(
    git: &Git<'_>,
    config: &ExecConfig,
    cache: &Path,
    url: &str,
    created: bool,
    default_branch: bool,
    shown: &str,
) -> Result<(), Abort> {
    if !created {
        git.ctx.out.say(format!("Fetching repository {shown}"));
        remove_stale_locks(cache);
    }
    // Over `git://`, git's protocol version 2 waits about 40 ms per fetch on small TCP writes
    // (measured with git daemon: `git ls-remote` 54 ms against 14 ms with version 0).
    let mut fetch = if url.trim_start().starts_with("git://") {
        vec!["-c", "protocol.version=0"]
    } else {
        Vec::new()
    };
    fetch.extend([
        "fetch",
        "--quiet",
        "--no-show-forced-updates",
        "--prune",
        "--tags",
        "--force",
        "origin",
        "+refs/heads/*:refs/heads/*",
    ]);
    let head_refspec = format!("+HEAD:{REMOTE_HEAD}");
    if default_branch {
        fetch.push(&head_refspec);
    }
    git.run(cache, &fetch, "fetching the repository").await?;
    if needs_compaction(cache) {
        match compact(git, config, cache).await {
            Err(Abort::Failed(why)) => {
                git.ctx.out.say(format!("{why}; the cache stays as it is"));
            }
            other => other?,
        }
    }
    Ok(())
}

/// Whether the remote at `url` advertises exactly the branches and tags the cache holds (and,
/// with `head`, the `HEAD` the cache fetched last): then a fetch would change nothing. False
/// when the remote cannot be asked without git (see `advertised`). Under the cache's lock, so
/// no fetch changes the cache's refs meanwhile.
async fn remote_unchanged(cache: &Path, url: &str, head: bool) -> bool {
    let Some(advertised) = advertised::read(url).await else {
        return false;
    };
    let of = |prefix: &str| -> BTreeMap<String, String> {
        advertised
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, hash)| (name.clone(), hash.clone()))
            .collect()
    };
    let (Ok(heads), Ok(tags)) = (
        refs::list(cache, "refs/heads/"),
        refs::list(cache, "refs/tags/"),
    ) else {
        return false;
    };
    of("refs/heads/") == heads
        && of("refs/tags/") == tags
        && (!head || advertised.get("HEAD") == refs::read(cache, REMOTE_HEAD).as_ref())
}

/// Makes `cache` a usable bare clone in the `files` ref format (a new, empty one if it is
/// missing, broken or in another format); the first time this process sees it, removes the
/// snapshots an earlier process left. A new cache fetches from `url` (`shown` in messages).
/// Under the cache's lock. True when it was created.
async fn prepare(
    git: &Git<'_>,
    cache: &Path,
    state: &CacheState,
    locked: &mut Locked,
    url: &str,
    shown: &str,
) -> Result<bool, Abort> {
    let created = !(cache.join("HEAD").is_file() && refs::files_format(cache));
    if created {
        git.ctx.out.say(format!("Cloning repository {shown}"));
        if cache.exists() {
            let _ = tokio::fs::remove_dir_all(cache).await;
        }
        let repos = cache.parent().expect("repos/<key>.git has a parent");
        let cache_arg = cache.to_string_lossy();
        let mut init = git.spec(repos, &["init", "--quiet", "--bare", &cache_arg]);
        // Git 3 will default to the reftable format, which `refs` does not read.
        init.env
            .push(("GIT_DEFAULT_REF_FORMAT".into(), "files".into()));
        git.run_spec(&init, "git init").await?;
        // Written here rather than by `git config`: no git to start, no URL in an argument.
        let config = format!(
            "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n[remote \"origin\"]\n\turl = {}\n",
            tree::quote(url)
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(cache.join("config"))
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .map_err(|e| Abort::Failed(format!("cannot configure the cache: {e}")))?;
        locked.url = Some(url.to_string());
        locked.checked = false;
        state.shared().fetched = None;
    }
    if !locked.checked {
        state.shared().trees.clear();
        match tokio::fs::remove_dir_all(cache.join("ralf/trees")).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Abort::Failed(format!(
                    "cannot remove the old snapshots of the repository: {e}"
                )));
            }
            _ => {}
        }
        locked.checked = true;
    }
    Ok(created)
}

/// What [`resolve`] found: the commit to check out, the branch to check it out on (`None`: a
/// detached `HEAD`), and what the commit was taken from, for the log.
struct Resolved {
    sha: String,
    checkout_branch: Option<String>,
    /// `branch main`, `tag v1`, `the remote's default branch`.
    source: String,
    /// The commit the task asked for was not the tip of `source`, whose tip is this.
    behind_tip: Option<String>,
}

/// The commit to check out: the tip of the branch (a tag's commit, the remote's default
/// branch's tip when `branch` is empty), or the commit the task asked for, which must be
/// reachable from that tip. Only refs the remote advertises were fetched, so a commit that is
/// on no branch or tag (a pull request's `refs/pull/1/head`) is not found, and one on another
/// branch is refused. Under the cache's lock, after the fetch.
async fn resolve(
    git: &Git<'_>,
    cache: &Path,
    commit: Option<&str>,
    branch: &str,
) -> Result<Resolved, Abort> {
    let (tip, checkout_branch, source) = if branch.is_empty() {
        let sha = match refs::read(cache, REMOTE_HEAD) {
            Some(sha) => Some(sha),
            None => git.resolve(cache, REMOTE_HEAD).await?,
        };
        let sha =
            sha.ok_or_else(|| Abort::Failed("the repository has no default branch".into()))?;
        (sha, None, "the remote's default branch".to_string())
    } else {
        let head = format!("refs/heads/{branch}");
        // Only the fetch writes the cache's branches: a valid name that is not among them is
        // no branch (git is asked about names this module does not read).
        let sha = if refs::valid_branch(branch) {
            refs::read(cache, &head)
        } else {
            git.resolve(cache, &head).await?
        };
        if let Some(sha) = sha {
            (sha, Some(branch.to_string()), format!("branch {branch}"))
        } else if let Some(sha) = git.resolve(cache, &format!("refs/tags/{branch}")).await? {
            (sha, None, format!("tag {branch}"))
        } else {
            return Err(Abort::Failed(format!(
                "branch '{branch}' not found in the repository"
            )));
        }
    };
    if let Some(b) = &checkout_branch
        && !refs::valid_name(&format!("refs/heads/{b}"))
    {
        return Err(Abort::Failed(format!("'{b}' is not a valid branch name")));
    }
    let Some(commit) = commit else {
        return Ok(Resolved {
            sha: tip,
            checkout_branch,
            source,
            behind_tip: None,
        });
    };
    let not_on = || {
        Abort::Failed(format!(
            "commit {commit} is not on {source} (a task runs only commits of the branch it \
             runs): nothing was run"
        ))
    };
    let sha = git.resolve(cache, commit).await?.ok_or_else(not_on)?;
    if sha != tip && !git.is_ancestor(cache, &sha, &tip).await? {
        return Err(not_on());
    }
    Ok(Resolved {
        behind_tip: (sha != tip).then_some(tip),
        sha,
        checkout_branch,
        source,
    })
}

/// Takes the snapshot of `commit` for the task, writing it first if there is none: its
/// directory and the commit's subject. Under the cache's lock.
async fn snapshot(
    git: &Git<'_>,
    cache: &Path,
    state: &CacheState,
    commit: &str,
) -> Result<(PathBuf, String), Abort> {
    let dir = cache.join("ralf/trees").join(commit);
    if dir.join("index").is_file()
        && let Some(subject) = state.shared().take_tree(commit)
    {
        return Ok((dir, subject));
    }
    // None, or its files are gone: a new one (tasks still copying the old one fail anyway).
    state.shared().trees.remove(commit);
    let io = |e: std::io::Error| Abort::Failed(format!("cannot write the snapshot: {e}"));
    if dir.exists() {
        tokio::fs::remove_dir_all(&dir).await.map_err(io)?;
    }
    let files = dir.join("tree");
    make_private_dir_all(&files).map_err(io)?;
    let (cache_arg, files_arg) = (cache.to_string_lossy(), files.to_string_lossy());
    let git_dir = format!("--git-dir={cache_arg}");
    let work_tree = format!("--work-tree={files_arg}");
    // An index `tree::restamp_index` reads: version 2, in one file, checksummed.
    let mut read_tree = git.spec(
        cache,
        &[
            "-c",
            "index.version=2",
            "-c",
            "index.skipHash=false",
            "-c",
            "core.splitIndex=false",
            "-c",
            "core.untrackedCache=false",
            "-c",
            "core.fsmonitor=false",
            &git_dir,
            &work_tree,
            "read-tree",
            "-u",
            "--reset",
            commit,
        ],
    );
    read_tree
        .env
        .push(("GIT_INDEX_FILE".into(), dir.join("index").into()));
    git.run_spec(&read_tree, "checking the commit out").await?;
    let subject = git
        .read(cache, &["log", "-1", "--format=%s", commit])
        .await?
        .and_then(|lines| lines.into_iter().next())
        .unwrap_or_default();
    state.shared().add_tree(commit, subject.clone());
    Ok((dir, subject))
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The commit `repo`'s branch (the remote's `HEAD` when it names none) points at on the
/// remote now, without fetching: read from a `git://` remote's advertisement in-process, as
/// the checkout reads it (`advertised`), or else asked with `git ls-remote` from the
/// repository's cache.
/// `None` when this process has not fetched the repository from `repo.url` yet (the cache's
/// remote may be another URL) or the remote has no such branch: a full read tells then.
pub(crate) async fn remote_tip(
    ctx: &Ctx<'_>,
    task: &TaskDir,
    repo: &RepositorySource,
) -> Result<Option<String>, Abort> {
    let cache = std::path::absolute(cache_dir(ctx.config, &repo.cache_key))
        .map_err(|e| Abort::Failed(format!("cannot find the work directory: {e}")))?;
    let fetched_from_url = CacheState::of(&cache)
        .shared()
        .fetched
        .as_ref()
        .is_some_and(|f| f.url == repo.url);
    if !fetched_from_url || !cache.join("HEAD").is_file() {
        return Ok(None);
    }
    let branch = repo.branch.trim();
    let wanted = if branch.is_empty() {
        "HEAD".to_string()
    } else if refs::valid_branch(branch) {
        format!("refs/heads/{branch}")
    } else {
        return Ok(None);
    };
    // A `git://` remote without credentials is asked in-process, as the checkout asks it.
    if repo.auth.is_none()
        && let Some(advertised) = advertised::read(&repo.url).await
    {
        return Ok(advertised.get(&wanted).cloned());
    }
    let git = Git {
        ctx,
        program: ctx.find("git")?,
        env: git_env(ctx, task, repo.auth.as_ref())?,
    };
    let Some(lines) = git.read(&cache, &["ls-remote", "origin", &wanted]).await? else {
        return Err(Abort::Failed(
            "asking the remote for its branch failed".into(),
        ));
    };
    Ok(lines.iter().find_map(|line| {
        let (sha, name) = line.split_once('\t')?;
        (name == wanted && refs::is_hash(sha)).then(|| sha.to_string())
    }))
}

/// The task's checkout.
pub(crate) struct Checkout {
    pub dir: PathBuf,
    pub pin: Pin,
    pub info: CheckoutInfo,
}

/// Fetches the repository into its cache and checks out the task's commit into
/// `tasks/<id>/repo`.
pub(crate) async fn checkout(
    ctx: &Ctx<'_>,
    task: &TaskDir,
    task_id: i64,
    repo: &RepositorySource,
) -> Result<Checkout, Abort> {
    let out = ctx.out;
    let git = Git {
        ctx,
        program: ctx.find("git")?,
        env: git_env(ctx, task, repo.auth.as_ref())?,
    };
    let commit = match repo.commit.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => {
            if !(4..=64).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Abort::Failed(format!(
                    "'{c}' is not a commit hash (4 to 64 hexadecimal digits)"
                )));
            }
            Some(c.to_ascii_lowercase())
        }
        _ => None,
    };
    let branch = repo.branch.trim();
    let url = redact_url(&repo.url);
    // Absolute: it goes into the checkout's `objects/info/alternates`.
    let cache = std::path::absolute(cache_dir(ctx.config, &repo.cache_key))
        .map_err(|e| Abort::Failed(format!("cannot find the work directory: {e}")))?;
    let repos = cache.parent().expect("repos/<key>.git has a parent");
    make_private_dir_all(repos)
        .map_err(|e| Abort::Failed(format!("cannot create {}: {e}", repos.display())))?;

    let started = tokio::time::Instant::now();
    let state = CacheState::of(&cache);
    // A task on the default branch needs the remote's `HEAD`, also to check its commit.
    let default_branch = branch.is_empty();
    // Any fetch numbered above this one started after this task asked.
    let asked = state.shared().started;
    let (pin, resolved, sha, checkout_branch, snapshot_dir, subject, cache_refs) = {
        let mut locked = ctx
            .interruptible(
                "waiting for another task's fetch of this repository",
                state.lock.lock(),
            )
            .await?;
        let created = prepare(&git, &cache, &state, &mut locked, &repo.url, &url).await?;
        if locked.url.as_deref() != Some(repo.url.as_str()) {
            git.run(
                &cache,
                &["config", "remote.origin.url", &repo.url],
                "git config",
            )
            .await?;
            locked.url = Some(repo.url.clone());
        }
        if !created
            && state
                .shared()
                .fetched_since(asked, &repo.url, default_branch)
        {
            out.say(format!(
                "Repository {url} was fetched for another task after this one asked: \
                 not fetching it again"
            ));
        } else {
            let number = {
                let mut shared = state.shared();
                shared.started += 1;
                shared.started
            };
            let unchanged = !created
                && repo.auth.is_none()
                && ctx
                    .interruptible(
                        "asking the repository for its refs",
                        remote_unchanged(&cache, &repo.url, default_branch),
                    )
                    .await?;
            if unchanged {
                out.say(format!(
                    "Repository {url} has the branches and tags of its last fetch: not fetching it"
                ));
            } else {
                fetch(
                    &git,
                    ctx.config,
                    &cache,
                    &repo.url,
                    created,
                    default_branch,
                    &url,
                )
                .await?;
            }
            state
                .shared()
                .record_fetch(&repo.url, number, default_branch);
        }
        let resolved = resolve(&git, &cache, commit.as_deref(), branch).await?;
        let (sha, checkout_branch) = (resolved.sha.clone(), resolved.checkout_branch.clone());
        let pin = Pin::create(&cache, task_id, &sha)?;
        let taken = async {
            let (tree, subject) = snapshot(&git, &cache, &state, &sha).await?;
            let mut cache_refs = Vec::new();
            for prefix in ["refs/heads/", "refs/tags/"] {
                match refs::list(&cache, prefix) {
                    Ok(list) => cache_refs.extend(list),
                    Err(e) => {
                        state.shared().drop_tree(&sha, false);
                        return Err(Abort::Failed(format!("cannot read the cache's refs: {e}")));
                    }
                }
            }
            Ok((tree, subject, cache_refs))
        }
        .await;
        match taken {
            Ok((snapshot_dir, subject, cache_refs)) => (
                pin,
                resolved,
                sha,
                checkout_branch,
                snapshot_dir,
                subject,
                cache_refs,
            ),
            Err(e) => {
                pin.release().await;
                return Err(e);
            }
        }
    };
    let fetched = started.elapsed();

    let dir = task.checkout();
    // Set when the task stops (or is dropped) during the copy: the copy gives up at once.
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    // When ralf runs as root, the checkout is the task's user's.
    let owner = ctx.sandbox.as_ref().and_then(|s| s.owner(ctx.config));
    let copy = {
        let (state, dir, sha, cache) = (state.clone(), dir.clone(), sha.clone(), cache.clone());
        let (url, branch, stop) = (repo.url.clone(), checkout_branch.clone(), stop.0.clone());
        move || {
            let tracks = branch.as_ref().is_some_and(|b| {
                let head = format!("refs/heads/{b}");
                cache_refs.iter().any(|(name, _)| *name == head)
            });
            let result = tree::copy_dir(&snapshot_dir.join("tree"), &dir, &stop)
                .and_then(|()| {
                    let git_dir = tree::GitDir {
                        cache: &cache,
                        url: &url,
                        commit: &sha,
                        branch: branch.as_deref(),
                        tracks,
                        refs: &cache_refs,
                    };
                    tree::write_git_dir(&dir.join(".git"), &git_dir)
                })
                // Before the index records the files' status: a change of owner changes it.
                .and_then(|()| match owner {
                    Some((uid, gid)) => crate::sandbox::give_to(&dir, uid, gid),
                    None => Ok(()),
                })
                .and_then(|()| {
                    tree::restamp_index(
                        &snapshot_dir.join("index"),
                        &dir.join(".git/index"),
                        &dir,
                        sha.len() / 2,
                    )
                });
            let failed = result.is_err() && !stop.load(Ordering::Relaxed);
            let doomed = {
                let mut shared = state.shared();
                shared.drop_tree(&sha, failed);
                shared.evict_trees(&cache.join("ralf/trees"))
            };
            for grave in doomed {
                let _ = std::fs::remove_dir_all(grave);
            }
            result
        }
    };
    let mut copying = tokio::task::spawn_blocking(copy);
    let copied = match ctx
        .interruptible("checking the commit out", &mut copying)
        .await
    {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(Abort::Failed(format!(
            "cannot check the commit out into {}: {e}",
            dir.display()
        ))),
        Ok(Err(e)) => Err(Abort::Failed(format!(
            "checking the commit out failed: {e}"
        ))),
        Err(abort) => {
            // Lets the copy end before the task's directory is removed.
            stop.0.store(true, Ordering::Relaxed);
            let _ = copying.await;
            Err(abort)
        }
    };
    if let Err(e) = copied {
        pin.release().await;
        return Err(e);
    }
    let info = CheckoutInfo {
        commit_hash: sha,
        commit_message: subject,
    };
    // Names the branch (or tag) and the exact commit; a commit the task asked for says so.
    let what = match (&resolved.behind_tip, checkout_branch.as_deref()) {
        (Some(tip), _) => format!(
            "commit {} of {} (the task's commit_hash; the tip is {})",
            info.commit_hash,
            resolved.source,
            &tip[..tip.len().min(12)]
        ),
        (None, Some(b)) => format!("{b} at {}", info.commit_hash),
        (None, None) => format!("{} at {}", resolved.source, info.commit_hash),
    };
    out.say(format!(
        "Checked out {what} ({}) in {} ms (fetch {} ms)",
        info.commit_message,
        started.elapsed().as_millis(),
        fetched.as_millis(),
    ));
    out.checked_out(&info);
    Ok(Checkout { dir, pin, info })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_map_to_distinct_safe_names() {
        let config = ExecConfig::new("/w");
        let name = |k: &str| {
            cache_dir(&config, k)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(name("42"), "42.git");
        assert_eq!(name("a/b"), "a_2fb.git");
        assert_ne!(name("a/b"), name("a_b"));
        assert_eq!(name(".."), "_2e_2e.git");
        assert_eq!(name(""), "_.git");
    }

    #[test]
    fn keys_get_a_final_newline_and_lf_endings() {
        assert_eq!(key_bytes("a\r\nb"), b"a\nb\n");
        assert_eq!(key_bytes("a\n"), b"a\n");
    }
}
