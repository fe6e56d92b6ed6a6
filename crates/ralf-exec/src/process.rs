//! Supervised child processes: each command in its own process group, stdin closed (or read
//! from a file), both output streams pumped line by line, stop and timeout as SIGTERM then
//! SIGKILL to the whole group, and the group killed when its leader exits, so no process of a
//! task outlives it. The task's own programs run in its sandbox (see `sandbox`): there the
//! group that gets SIGTERM is the one of the programs inside, and SIGKILL to bubblewrap ends
//! the sandbox's whole PID namespace.
//!
//! Every child is started by one thread that lives as long as the process: bubblewrap's
//! `--die-with-parent` is tied to the thread that started it, and a runtime's threads may end.
//! Each group's id (with its start time) is written to the task's `pgid` file, so a server
//! started after a crash can end what the crash left running.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, sleep_until};

use crate::config::ExecConfig;
use crate::control::{Control, StopRequest};
use crate::output::{Out, pump};
use crate::sandbox::{self, Sandbox};

/// How long the output pipes may stay open after the group was killed: only a process that left
/// the group (`setsid`) can hold them that long.
const DRAIN: Duration = Duration::from_secs(2);

/// Why a task ended early; becomes the task's [`crate::Outcome`].
#[derive(Debug)]
pub(crate) enum Abort {
    Failed(String),
    Stopped,
    TimedOut,
}

/// The context every command of one task runs in.
pub(crate) struct Ctx<'a> {
    pub out: &'a Out<'a>,
    pub control: &'a Control,
    pub config: &'a ExecConfig,
    /// When the task's time limit is reached.
    pub deadline: Option<Instant>,
    /// The time limit itself, for messages.
    pub timeout: Option<Duration>,
    /// The `PATH` programs are looked up in and children get.
    pub path: OsString,
    /// The task's sandbox, for the commands that run the task's own code; `None` when tasks run
    /// unsandboxed (or before the task's directory exists).
    pub sandbox: Option<Sandbox>,
    /// Where the running command's process group is recorded (`tasks/<id>/pgid`).
    pub group_file: Option<PathBuf>,
}

impl Ctx<'_> {
    /// The environment every child starts from: the passed-through variables of the server and
    /// `PATH`.
    pub(crate) fn base_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = self
            .config
            .pass_env
            .iter()
            .filter(|name| name.as_str() != "PATH")
            .filter_map(|name| std::env::var_os(name).map(|v| (OsString::from(name), v)))
            .collect();
        env.push(("PATH".into(), self.path.clone()));
        env
    }

    /// Waits for `fut` (`what` says what for), unless the task is stopped or runs out of time
    /// first.
    pub(crate) async fn interruptible<F: std::future::Future>(
        &self,
        what: &str,
        fut: F,
    ) -> Result<F::Output, Abort> {
        let mut requests = self.control.subscribe();
        let far = Instant::now() + Duration::from_secs(60 * 60 * 24 * 365);
        tokio::select! {
            value = fut => Ok(value),
            _ = requests.wait_for(|r| *r != StopRequest::None) => {
                self.out.say(format!("Stop requested while {what}"));
                Err(Abort::Stopped)
            }
            _ = sleep_until(self.deadline.unwrap_or(far)), if self.deadline.is_some() => {
                self.out.say(format!(
                    "Time limit{} reached while {what}",
                    limit_text(self.timeout)
                ));
                Err(Abort::TimedOut)
            }
        }
    }

    /// The program's path on `PATH`, or the task's failure saying it is not installed.
    pub(crate) fn find(&self, name: &str) -> Result<PathBuf, Abort> {
        which(name, &self.path).ok_or_else(|| {
            Abort::Failed(format!(
                "{name} is not installed on this server (not found on PATH)"
            ))
        })
    }
}

/// The executable file `name` in one of `path`'s directories.
pub(crate) fn which(name: &str, path: &OsStr) -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// One command to run.
pub(crate) struct Spec {
    /// How the program is named in messages (`git`, `ansible-playbook`).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    /// Write the command line to the output before running it.
    pub echo: bool,
    /// A file to read as standard input (otherwise stdin is closed).
    pub stdin: Option<PathBuf>,
    /// Runs the task's own code: in the task's sandbox, when there is one.
    pub sandboxed: bool,
}

impl Spec {
    pub(crate) fn new(name: &str, program: PathBuf, cwd: &Path) -> Spec {
        Spec {
            name: name.to_string(),
            program,
            args: Vec::new(),
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            echo: false,
            stdin: None,
            sandboxed: false,
        }
    }

    /// Runs in the task's sandbox (when there is one).
    pub(crate) fn sandboxed(mut self) -> Spec {
        self.sandboxed = true;
        self
    }

    pub(crate) fn arg(mut self, arg: impl Into<OsString>) -> Spec {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<I: IntoIterator<Item = A>, A: Into<OsString>>(mut self, args: I) -> Spec {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn env(mut self, env: Vec<(OsString, OsString)>) -> Spec {
        self.env = env;
        self
    }

    pub(crate) fn stdin(mut self, file: &Path) -> Spec {
        self.stdin = Some(file.to_path_buf());
        self
    }

    pub(crate) fn echo(mut self) -> Spec {
        self.echo = true;
        self
    }

    /// The command line as a shell would read it (secrets are masked when it is written out).
    pub(crate) fn display(&self) -> String {
        let mut s = shell_quote(&self.name).into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_quote(&a.to_string_lossy()));
        }
        s
    }
}

/// `s` quoted for a POSIX shell when it needs it.
pub(crate) fn shell_quote(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-+=/.,:@%^".contains(&b));
    if plain {
        s.into()
    } else {
        format!("'{}'", s.replace('\'', r#"'\''"#)).into()
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Code(i32),
    Signal(i32),
}

impl Status {
    pub(crate) fn from_exit(st: ExitStatus) -> Status {
        match (st.code(), st.signal()) {
            (Some(code), _) => Status::Code(code),
            (None, Some(sig)) => Status::Signal(sig),
            (None, None) => Status::Code(-1),
        }
    }

    /// "exited with code 2", "killed by signal 9 (SIGKILL)".
    pub(crate) fn describe(self) -> String {
        match self {
            Status::Code(code) => format!("exited with code {code}"),
            Status::Signal(sig) => match Signal::try_from(sig) {
                Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
                Err(_) => format!("killed by signal {sig}"),
            },
        }
    }
}

/// Why ralf interrupted a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Stop,
    Timeout,
}

/// How a supervised command ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exit {
    pub status: Status,
    pub interrupted: Option<Interrupt>,
}

impl Exit {
    /// Ok when it exited with code 0 on its own; otherwise why the task ends.
    pub(crate) fn check(self, name: &str) -> Result<(), Abort> {
        match (self.interrupted, self.status) {
            (Some(Interrupt::Stop), _) => Err(Abort::Stopped),
            (Some(Interrupt::Timeout), _) => Err(Abort::TimedOut),
            (None, Status::Code(0)) => Ok(()),
            (None, status) => Err(Abort::Failed(format!("{name} {}", status.describe()))),
        }
    }
}

/// Kills the process group when dropped while armed: a task whose future is dropped (the
/// server gave up on it) leaves no process behind.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `spec` to its end under the task's stop request and time limit. Its output goes to the
/// task's output; with `capture`, its stdout lines are collected there instead.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    spec: &Spec,
    capture: Option<&mut Vec<String>>,
) -> Result<Exit, Abort> {
    let out = ctx.out;
    if ctx.control.requested() != StopRequest::None {
        out.say(format!("Stop requested: {} not started", spec.name));
        return Err(Abort::Stopped);
    }
    if ctx.deadline.is_some_and(|d| d <= Instant::now()) {
        out.say(format!(
            "Time limit{} reached: {} not started",
            limit_text(ctx.timeout),
            spec.name
        ));
        return Err(Abort::TimedOut);
    }
    if spec.echo {
        out.say(format!("$ {}", spec.display()));
    }

    let stdin = match &spec.stdin {
        Some(file) => Stdio::from(
            std::fs::File::open(file)
                .map_err(|e| Abort::Failed(format!("could not open {}: {e}", file.display())))?,
        ),
        None => Stdio::null(),
    };
    let sandbox = ctx.sandbox.as_ref().filter(|_| spec.sandboxed);
    let mut env = spec.env.clone();
    let (program, args) = match sandbox {
        Some(sandbox) => {
            sandbox.hand_over(ctx.config).map_err(|e| {
                Abort::Failed(format!("cannot give the task's files to its user: {e}"))
            })?;
            env.retain(|(name, _)| name != "HOME" && name != "TMPDIR");
            env.push(("HOME".into(), sandbox.view.home().into()));
            env.push(("TMPDIR".into(), "/tmp".into()));
            sandbox.wrap(ctx.config, &ctx.path, &spec.cwd, &spec.program, &spec.args)
        }
        None => (spec.program.clone(), spec.args.clone()),
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn(cmd)
        .await
        .map_err(|e| Abort::Failed(format!("could not start {}: {e}", spec.name)))?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    let pgid = Pid::from_raw(pid as i32);
    if let Some(file) = &ctx.group_file {
        record_group(file, pid);
    }
    // Dropped before `child` (declared after it): kills the group while the leader is not yet
    // reaped, so the group id cannot have been reused.
    let mut guard = GroupGuard { pgid, armed: true };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (exited_tx, exited_rx) = oneshot::channel::<()>();

    let name = spec.name.as_str();
    let signal = |sig: Signal| {
        // In a sandbox, SIGTERM goes to the programs inside (bubblewrap would die of it and
        // take them along at once); SIGKILL to bubblewrap ends them all.
        if sandbox.is_some()
            && sig != Signal::SIGKILL
            && let Some(inner) = sandbox::inner_group(pid)
        {
            let _ = killpg(Pid::from_raw(inner), sig);
            return;
        }
        let _ = killpg(pgid, sig);
    };
    let grace = ctx.config.stop_grace;

    let waiter = async {
        let mut requests = ctx.control.subscribe();
        let mut requests_open = true;
        let mut interrupted: Option<Interrupt> = None;
        let mut kill_at: Option<Instant> = None;
        let mut killed = false;
        let far = Instant::now() + Duration::from_secs(60 * 60 * 24 * 365);
        let result = loop {
            match *requests.borrow_and_update() {
                StopRequest::Force if !killed => {
                    out.say(format!(
                        "Forced stop: sending SIGKILL to the process group of {name}"
                    ));
                    interrupted.get_or_insert(Interrupt::Stop);
                    signal(Signal::SIGKILL);
                    killed = true;
                }
                StopRequest::Graceful if interrupted.is_none() => {
                    out.say(format!(
                        "Stop requested: sending SIGTERM to the process group of {name}"
                    ));
                    interrupted = Some(Interrupt::Stop);
                    signal(Signal::SIGTERM);
                    kill_at = Some(Instant::now() + grace);
                }
                _ => {}
            }
            tokio::select! {
                status = child.wait() => break status,
                changed = requests.changed(), if requests_open => {
                    requests_open = changed.is_ok();
                }
                _ = sleep_until(ctx.deadline.unwrap_or(far)),
                    if ctx.deadline.is_some() && interrupted.is_none() => {
                    out.say(format!(
                        "Time limit{} reached: sending SIGTERM to the process group of {name}",
                        limit_text(ctx.timeout)
                    ));
                    interrupted = Some(Interrupt::Timeout);
                    signal(Signal::SIGTERM);
                    kill_at = Some(Instant::now() + grace);
                }
                _ = sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() && !killed => {
                    out.say(format!(
                        "{name} still running {}s after SIGTERM: sending SIGKILL",
                        grace.as_secs_f32()
                    ));
                    signal(Signal::SIGKILL);
                    killed = true;
                }
            }
        };
        // The leader is gone; whatever it left running in its group goes with it. After this
        // the group id may be reused, so the guard must not signal it again.
        signal(Signal::SIGKILL);
        guard.armed = false;
        let _ = exited_tx.send(());
        (result, interrupted)
    };

    let readers = async {
        let pumps = async {
            tokio::join!(pump(stdout, out, capture), pump(stderr, out, None));
        };
        tokio::select! {
            _ = pumps => {}
            _ = async {
                let _ = exited_rx.await;
                sleep(DRAIN).await;
            } => {
                out.say(format!(
                    "{name}'s output is still held open by a process that left its process \
                     group; not reading it any further"
                ));
            }
        }
    };

    let ((result, interrupted), ()) = tokio::join!(waiter, readers);
    let status = match result {
        Ok(st) => match (Status::from_exit(st), sandbox) {
            (Status::Code(code), Some(_)) => {
                sandbox::signal_of(code).map_or(Status::Code(code), Status::Signal)
            }
            (status, _) => status,
        },
        Err(e) => return Err(Abort::Failed(format!("waiting for {name} failed: {e}"))),
    };
    if interrupted.is_some() {
        out.say(format!("{name} {}", status.describe()));
    }
    Ok(Exit {
        status,
        interrupted,
    })
}

/// A command to start, handed to the spawner thread.
struct SpawnRequest {
    cmd: tokio::process::Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<std::io::Result<tokio::process::Child>>,
}

/// Starts `cmd` from the spawner thread, which never ends: a child's parent-death signal
/// (bubblewrap's `--die-with-parent`) fires when the *thread* that started it ends, and the
/// runtime's threads come and go.
async fn spawn(cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    static SPAWNER: LazyLock<std::sync::mpsc::Sender<SpawnRequest>> = LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("ralf-spawner".into())
            .spawn(move || {
                for mut request in rx {
                    let _runtime = request.runtime.enter();
                    // A requester that is gone drops the child, which kills it.
                    let _ = request.reply.send(request.cmd.spawn());
                }
            })
            .expect("the spawner thread starts");
        tx
    });
    let (reply, answer) = oneshot::channel();
    let request = SpawnRequest {
        cmd,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    SPAWNER
        .send(request)
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread is gone")))
}

/// Writes `<pgid> <start time>` to the task's group file (0600), so a server started after a
/// crash finds the group and knows it is still the same process.
fn record_group(file: &Path, pid: u32) {
    let Some(start) = start_time(pid) else {
        return;
    };
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{pid} {start}\n").as_bytes()));
}

/// A process's start time (clock ticks after boot, field 22 of `/proc/<pid>/stat`): with the
/// pid, it names one process for as long as the machine runs.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn limit_text(timeout: Option<Duration>) -> String {
    match timeout {
        Some(t) => format!(" of {}s", t.as_secs_f32()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("--limit=a,b"), "--limit=a,b");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn describes_exits() {
        assert_eq!(Status::Code(2).describe(), "exited with code 2");
        assert_eq!(Status::Signal(9).describe(), "killed by signal 9 (SIGKILL)");
    }
}
