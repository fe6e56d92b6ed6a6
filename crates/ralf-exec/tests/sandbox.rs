//! The sandbox, tried as a hostile task would: what a bash task can and cannot reach, and a
//! machine that cannot sandbox refusing to run tasks unless told it may.

mod common;

use std::path::Path;

use common::*;
use ralf_exec::{App, Control, Isolation, Outcome, run};

/// Tries everything a task must not do (each attempt prints `LEAK <what>` when it succeeds) and
/// what it must be able to do (`CAN <what>`).
fn probe_script(server_pid: u32, data_dir: &Path, work_dir: &Path, in_home: &Path) -> String {
    let (data, work, in_home) = (data_dir.display(), work_dir.display(), in_home.display());
    format!(
        r#"
try() {{ if eval "$2" >/dev/null 2>&1; then echo "LEAK $1"; else echo "kept from $1"; fi; }}
can() {{ if eval "$2" >/dev/null 2>&1; then echo "CAN $1"; else echo "CANNOT $1"; fi; }}
try "the server's environment" "cat /proc/{server_pid}/environ"
try "the server's command line" "test -s /proc/{server_pid}/cmdline"
try "the server user's home" "ls -d {in_home}"
try "the database" "cat {data}/ralf.db"
try "another task's checkout" "cat {work}/tasks/2/repo/secret.txt"
try "another task's directory" "ls {work}/tasks/2"
try "the repository cache" "ls {work}/repos/other.git"
try "writing outside its directory" "touch {work}/planted"
try "writing the system" "touch /usr/planted"
try "the server's pids" "kill -0 {server_pid}"
can "write its checkout" "echo x > written.txt && test -s written.txt"
can "write /tmp" "echo x > /tmp/x && test -s /tmp/x"
can "write its HOME" "mkdir -p ~/.ansible/tmp"
can "read its own files" "test -r ../.ralf"
can "run git in its checkout" "git cat-file -e HEAD"
echo "uid $(id -u)"
echo "pids $(ls /proc | grep -c '^[0-9]')"
"#
    )
}

#[tokio::test]
async fn a_task_sees_nothing_of_the_server_and_of_other_tasks() {
    let (work, config) = config();
    assert!(
        matches!(Isolation::of(&config), Isolation::Sandboxed(_)),
        "this machine must sandbox tasks (bubblewrap installed, namespaces allowed): {}",
        Isolation::of(&config).describe(&config)
    );
    // What the task goes for: a database beside the work dir (hidden as the data dir is), a
    // second task's directory and another repository's cache.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("ralf.db"), "the database").unwrap();
    let mut config = config;
    config.sandbox.hide.push(data.path().to_path_buf());
    let other = work.path().join("tasks/2/repo");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("secret.txt"), "another task's secret").unwrap();
    std::fs::create_dir_all(work.path().join("repos/other.git")).unwrap();

    let script = probe_script(std::process::id(), data.path(), work.path(), &in_home());
    let repo = repo_with("probe.sh", &script);
    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Bash, "probe.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    let all = lines.all();
    assert_eq!(outcome, Outcome::Success, "{all}");
    assert!(!all.contains("LEAK"), "{all}");
    assert!(!all.contains("CANNOT"), "{all}");
    assert_eq!(all.matches("kept from").count(), 10, "{all}");
    assert_eq!(all.matches("CAN ").count(), 5, "{all}");
    let uid = lines
        .texts()
        .iter()
        .find_map(|l| l.strip_prefix("uid ").map(str::to_string))
        .unwrap();
    assert_ne!(
        uid,
        nix_uid().to_string(),
        "the task runs as the server's user"
    );
    assert_eq!(uid, config.sandbox.uid.to_string());
    // Its own PID namespace: bash, its command substitutions, and bubblewrap's init.
    let pids: usize = lines
        .texts()
        .iter()
        .find_map(|l| l.strip_prefix("pids ").map(|n| n.parse().unwrap()))
        .unwrap();
    assert!(pids < 10, "{pids} processes visible: {all}");
    assert!(!work.path().join("planted").exists());
    assert_eq!(
        std::fs::read_to_string(other.join("secret.txt")).unwrap(),
        "another task's secret"
    );
}

/// Something in the server user's home that the sandbox has no reason to show (not on `PATH`).
fn in_home() -> std::path::PathBuf {
    let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path: Vec<_> = std::env::split_paths(&path).collect();
    std::fs::read_dir(&home)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !on_path.iter().any(|d| d.starts_with(p)) && !p.ends_with(".pyenv"))
        .unwrap_or_else(|| home.join(".profile"))
}

/// The test process's own uid.
fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[tokio::test]
async fn without_a_sandbox_tasks_run_only_when_allowed() {
    let repo = repo_with("hello.sh", "echo hello\n");
    let (_work, mut config) = config();
    config.sandbox.bwrap = "/nonexistent/bwrap".into();
    assert!(matches!(Isolation::of(&config), Isolation::Refused { .. }));

    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Bash, "hello.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    let Outcome::Failed(why) = outcome else {
        panic!("ran without a sandbox: {}", lines.all());
    };
    assert!(
        why.starts_with("The task was not run: this machine cannot sandbox tasks"),
        "{why}"
    );
    assert!(why.contains("allow_unsandboxed_tasks"), "{why}");
    assert!(!lines.has("hello"));

    config.sandbox.allow_unsandboxed = true;
    let lines = Lines::default();
    let outcome = run(
        &repo.job(2, App::Bash, "hello.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{}", lines.all());
    assert!(lines.has("hello"));
    assert!(
        lines
            .texts()
            .iter()
            .any(|l| l.starts_with("Running without a sandbox")),
        "{}",
        lines.all()
    );
}

#[tokio::test]
async fn leftovers_of_a_dead_server_are_ended() {
    // What a server killed with SIGKILL while running an unsandboxed task leaves: the task's
    // process group, still running, and its directory with a secret file.
    let (work, config) = config();
    let task = work.path().join("tasks/7");
    std::fs::create_dir_all(task.join(".ralf")).unwrap();
    std::fs::write(task.join(".ralf/ssh-key"), "a decrypted key").unwrap();
    let mut orphan = std::process::Command::new("sleep")
        .arg("304")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = orphan.id();
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = start
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    std::fs::write(task.join("pgid"), format!("{pid} {start}\n")).unwrap();
    // A group file naming a process that is not the recorded one is left alone.
    let mut stranger = std::process::Command::new("sleep")
        .arg("305")
        .process_group(0)
        .spawn()
        .unwrap();
    std::fs::create_dir_all(work.path().join("tasks/8")).unwrap();
    std::fs::write(
        work.path().join("tasks/8/pgid"),
        format!("{} 1\n", stranger.id()),
    )
    .unwrap();

    let found = ralf_exec::remove_leftovers(&config).unwrap();
    assert_eq!(found.killed, 1);
    assert_eq!(found.removed, 2);
    assert!(task_dirs(work.path()).is_empty());
    let status = orphan.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(
        alive(stranger.id() as i32),
        "a stranger's process was killed"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

use std::os::unix::process::CommandExt as _;
