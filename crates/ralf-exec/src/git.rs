//! The repository: one cached bare clone per `cache_key` under `work_dir/repos/`, fetched on
//! each task (fetches of one repository take turns), then a private checkout of the exact
//! commit under `work_dir/tasks/<id>/repo` with `git clone --shared` from the cache.
//!
//! Why `clone --shared` and not `git worktree add`: a worktree is about 15 ms faster on a small
//! repository, but it shares the cache's refs, config and hooks with the task, so a playbook
//! running `git config`, `git branch -D` or `git gc` in its checkout would change the cache of
//! every later task, and a killed task leaves admin entries in the cache. A shared clone has its
//! own `.git` (objects are borrowed through `objects/info/alternates`), is removed with its
//! directory, and the commit it needs is pinned in the cache by `refs/ralf/tasks/<id>` until the
//! task ends, so no `gc` of the cache can take its objects away.
//!
//! Credentials never appear in a URL or an argument: HTTPS logins are answered by a
//! `GIT_ASKPASS` script reading 0600 files, SSH keys are 0600 files given to `ssh -i` through
//! `GIT_SSH_COMMAND`, and `GIT_TERMINAL_PROMPT=0` keeps git from ever waiting for a person.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::config::ExecConfig;
use crate::job::{Credential, RepositorySource};
use crate::output::CheckoutInfo;
use crate::process::{self, Abort, Ctx, Spec, shell_quote};
use crate::workspace::{TaskDir, make_private_dir_all, safe_name};

/// The cached bare clone of a repository.
pub(crate) fn cache_dir(config: &ExecConfig, cache_key: &str) -> PathBuf {
    config
        .work_dir
        .join("repos")
        .join(safe_name(cache_key) + ".git")
}

/// One lock per cached clone: its fetches and ref updates take turns.
async fn lock(cache: &Path) -> OwnedMutexGuard<()> {
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<AsyncMutex<()>>>>> =
        LazyLock::new(Default::default);
    let lock = {
        let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(cache.to_path_buf()).or_default().clone()
    };
    lock.lock_owned().await
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

/// The ref that keeps a task's commit in the cache while the task needs it.
fn pin_ref(task_id: i64) -> String {
    format!("refs/ralf/tasks/{task_id}")
}

/// `url` with any password in it replaced, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{}://{}@{}", &url[..scheme_end], shown, &rest[at + 1..])
        }
        None => url.to_string(),
    }
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
        let exit = process::run(self.ctx, &self.spec(cwd, args), None).await?;
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

/// A commit held in the cache for a task.
pub(crate) struct Pin {
    git: PathBuf,
    cache: PathBuf,
    task_id: i64,
}

impl Pin {
    pub(crate) fn new(
        config: &ExecConfig,
        path: &std::ffi::OsStr,
        cache_key: &str,
        task_id: i64,
    ) -> Option<Pin> {
        Some(Pin {
            git: process::which("git", path)?,
            cache: cache_dir(config, cache_key),
            task_id,
        })
    }

    /// Drops the pin (the commit's objects become collectable again). Runs whatever the stop
    /// request says; failures are ignored (a stale pin only keeps some objects).
    pub(crate) async fn release(self) {
        if !self.cache.join("HEAD").is_file() {
            return;
        }
        let _lock = lock(&self.cache).await;
        let mut cmd = tokio::process::Command::new(&self.git);
        cmd.arg("update-ref")
            .arg("-d")
            .arg(pin_ref(self.task_id))
            .current_dir(&self.cache)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), cmd.status()).await;
    }
}

/// The task's checkout.
pub(crate) struct Checkout {
    pub dir: PathBuf,
    pub pin: Pin,
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
    let cache = cache_dir(ctx.config, &repo.cache_key);
    let repos = cache.parent().expect("repos/<key>.git has a parent");
    make_private_dir_all(repos)
        .map_err(|e| Abort::Failed(format!("cannot create {}: {e}", repos.display())))?;

    let started = tokio::time::Instant::now();
    let (sha, checkout_branch) = {
        let _lock = ctx
            .interruptible(
                "waiting for another task's fetch of this repository",
                lock(&cache),
            )
            .await?;
        if !cache.join("HEAD").is_file() {
            out.say(format!("Cloning repository {url}"));
            if cache.exists() {
                let _ = tokio::fs::remove_dir_all(&cache).await;
            }
            let cache_arg = cache.to_string_lossy();
            git.run(
                repos,
                &["init", "--quiet", "--bare", &cache_arg],
                "git init",
            )
            .await?;
        } else {
            out.say(format!("Fetching repository {url}"));
            remove_stale_locks(&cache);
        }
        git.run(
            &cache,
            &["config", "remote.origin.url", &repo.url],
            "git config",
        )
        .await?;
        let mut fetch = vec![
            "fetch",
            "--quiet",
            "--prune",
            "--tags",
            "--force",
            "origin",
            "+refs/heads/*:refs/heads/*",
        ];
        let default_branch = commit.is_none() && branch.is_empty();
        if default_branch {
            fetch.push("+HEAD:refs/ralf/remote-head");
        }
        git.run(&cache, &fetch, "fetching the repository").await?;

        let (sha, checkout_branch) = if let Some(commit) = &commit {
            let mut sha = git.resolve(&cache, commit).await?;
            if sha.is_none() {
                // Not on any branch or tag: some servers hand out a commit by its hash.
                let _ = git
                    .read(&cache, &["fetch", "--quiet", "origin", commit])
                    .await?;
                sha = git.resolve(&cache, commit).await?;
            }
            let sha = sha.ok_or_else(|| {
                Abort::Failed(format!("commit {commit} not found in the repository"))
            })?;
            (sha, (!branch.is_empty()).then(|| branch.to_string()))
        } else if default_branch {
            let sha = git
                .resolve(&cache, "refs/ralf/remote-head")
                .await?
                .ok_or_else(|| Abort::Failed("the repository has no default branch".into()))?;
            (sha, None)
        } else if let Some(sha) = git.resolve(&cache, &format!("refs/heads/{branch}")).await? {
            (sha, Some(branch.to_string()))
        } else if let Some(sha) = git.resolve(&cache, &format!("refs/tags/{branch}")).await? {
            (sha, None)
        } else {
            return Err(Abort::Failed(format!(
                "branch '{branch}' not found in the repository"
            )));
        };
        git.run(
            &cache,
            &["update-ref", &pin_ref(task_id), &sha],
            "pinning the commit",
        )
        .await?;
        (sha, checkout_branch)
    };
    let pin = Pin {
        git: git.program.clone(),
        cache: cache.clone(),
        task_id,
    };
    let fetched = started.elapsed();

    let dir = task.checkout();
    let result = async {
        let (cache_arg, dir_arg) = (cache.to_string_lossy(), dir.to_string_lossy());
        git.run(
            &task.root,
            &[
                "clone",
                "--quiet",
                "--shared",
                "--no-checkout",
                &cache_arg,
                &dir_arg,
            ],
            "cloning from the cache",
        )
        .await?;
        let mut co = vec!["checkout", "--quiet"];
        match &checkout_branch {
            Some(b) => co.extend(["-B", b.as_str()]),
            None => co.push("--detach"),
        }
        co.push(&sha);
        git.run(&dir, &co, "git checkout").await?;
        git.run(
            &dir,
            &["remote", "set-url", "origin", &repo.url],
            "git remote set-url",
        )
        .await?;
        let lines = git
            .read(&dir, &["log", "-1", "--format=%H%x00%s", &sha])
            .await?
            .unwrap_or_default();
        let first = lines.into_iter().next().unwrap_or_default();
        let (hash, message) = first.split_once('\0').unwrap_or((&sha, ""));
        Ok::<_, Abort>(CheckoutInfo {
            commit_hash: hash.to_string(),
            commit_message: message.to_string(),
        })
    }
    .await;
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            pin.release().await;
            return Err(e);
        }
    };
    out.say(format!(
        "Checked out {}{} ({}) in {} ms (fetch {} ms)",
        checkout_branch
            .as_deref()
            .map(|b| format!("{b} at "))
            .unwrap_or_default(),
        info.commit_hash,
        info.commit_message,
        started.elapsed().as_millis(),
        fetched.as_millis(),
    ));
    out.checked_out(&info);
    Ok(Checkout { dir, pin })
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
    fn passwords_are_taken_out_of_urls() {
        assert_eq!(
            redact_url("https://bob:pw@example.com/r.git"),
            "https://bob:***@example.com/r.git"
        );
        assert_eq!(
            redact_url("https://bob@example.com/r.git"),
            "https://bob@example.com/r.git"
        );
        assert_eq!(redact_url("git@host:r.git"), "git@host:r.git");
        assert_eq!(redact_url("file:///tmp/r"), "file:///tmp/r");
    }

    #[test]
    fn keys_get_a_final_newline_and_lf_endings() {
        assert_eq!(key_bytes("a\r\nb"), b"a\nb\n");
        assert_eq!(key_bytes("a\n"), b"a\n");
    }
}
