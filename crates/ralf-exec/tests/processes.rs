//! Process supervision: stop, forced stop, timeout, and no process of a task left behind.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ralf_exec::{App, Control, Outcome, run};

/// Two background sleeps of `secs` seconds (each test its own number, to find them from
/// outside the sandbox, where the pids the script could print mean nothing), then it waits.
fn sleepers(secs: u32) -> String {
    format!("sleep {secs} &\nsleep {secs} &\necho started\nwait\n")
}

/// The pids of the two sleeps of `sleepers(secs)`, once both run (a child bash forked for
/// `sleep` is a `bash` until it has started `sleep`).
async fn both_sleeps(secs: u32) -> Vec<i32> {
    wait_until(Duration::from_secs(20), || {
        let sleeps = host_pids("sleep", &secs.to_string());
        match sleeps.len() {
            2 => Ok(sleeps),
            n => Err(format!("{n} of the two sleeps run")),
        }
    })
    .await
}

/// The task's script (as this machine sees it: outside the sandbox) and its process group.
fn script_group(script: &str) -> (i32, i32) {
    // The first: a bash that forks for its next command shows up twice for a moment.
    let bash = *host_pids("bash", script).iter().min().expect("bash runs");
    (bash, group_of(bash).expect("bash runs"))
}

#[tokio::test]
async fn stop_terminates_the_whole_process_group() {
    let repo = repo_with("sleepers.sh", &sleepers(301));
    let (work, config) = config();
    let job = repo.job(1, App::Bash, "sleepers.sh");
    let lines = Lines::default();
    let control = Control::new();
    let started = Instant::now();
    let mut seen = (0, Vec::new());
    let (outcome, ()) = tokio::join!(run(&job, &config, &lines, &control), async {
        lines.wait_for("started", Duration::from_secs(20)).await;
        let (bash, group) = script_group("sleepers.sh");
        let sleeps = both_sleeps(301).await;
        let members = group_members(group);
        assert!(
            sleeps.iter().chain([&bash]).all(|p| members.contains(p)),
            "bash and its sleeps share a group"
        );
        seen = (group, sleeps);
        control.stop(false);
    });
    assert_eq!(outcome, Outcome::Stopped, "{}", lines.all());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        group_members(seen.0).is_empty(),
        "a process of the group survived"
    );
    for child in seen.1 {
        assert!(!alive(child), "sleep {child} survived the stop");
    }
    assert!(lines.has("Stop requested: sending SIGTERM to the process group of bash"));
    assert!(
        lines.has("bash killed by signal 15 (SIGTERM)"),
        "{}",
        lines.all()
    );
    assert!(task_dirs(work.path()).is_empty());
}

#[tokio::test]
async fn sigterm_ignored_means_sigkill_after_the_grace_period() {
    let repo = repo_with(
        "stubborn.sh",
        "trap 'echo got TERM' TERM\necho started\nwhile true; do sleep 0.1; done\n",
    );
    let (_work, config) = config(); // grace 1 s
    let lines = Lines::default();
    let control = Control::new();
    let job = repo.job(1, App::Bash, "stubborn.sh");
    let mut stop_at = None;
    let mut group = 0;
    let (outcome, ()) = tokio::join!(run(&job, &config, &lines, &control), async {
        lines.wait_for("started", Duration::from_secs(20)).await;
        group = script_group("stubborn.sh").1;
        stop_at = Some(Instant::now());
        control.stop(false);
    });
    let took = stop_at.unwrap().elapsed();
    assert_eq!(outcome, Outcome::Stopped);
    assert!(lines.has("got TERM"), "{}", lines.all());
    assert!(
        lines.has("bash still running 1s after SIGTERM: sending SIGKILL"),
        "{}",
        lines.all()
    );
    assert!(
        lines.has("bash killed by signal 9 (SIGKILL)"),
        "{}",
        lines.all()
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(group_members(group).is_empty());
}

#[tokio::test]
async fn forced_stop_kills_at_once() {
    let repo = repo_with(
        "deaf.sh",
        "trap '' TERM\necho started\nwhile true; do sleep 0.1; done\n",
    );
    let (_work, mut config) = config();
    config.stop_grace = Duration::from_secs(60);
    let lines = Lines::default();
    let control = Control::new();
    let job = repo.job(1, App::Bash, "deaf.sh");
    let started = Instant::now();
    let mut group = 0;
    let (outcome, ()) = tokio::join!(run(&job, &config, &lines, &control), async {
        lines.wait_for("started", Duration::from_secs(20)).await;
        group = script_group("deaf.sh").1;
        control.stop(false);
        lines
            .wait_for("sending SIGTERM", Duration::from_secs(20))
            .await;
        control.stop(true);
    });
    assert_eq!(outcome, Outcome::Stopped);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not wait for the 60 s grace"
    );
    assert!(lines.has("Forced stop: sending SIGKILL to the process group of bash"));
    assert!(
        lines.has("bash killed by signal 9 (SIGKILL)"),
        "{}",
        lines.all()
    );
    assert!(group_members(group).is_empty());
}

#[tokio::test]
async fn timeout_ends_the_task() {
    let repo = repo_with("slow.sh", &sleepers(302));
    let (_work, config) = config();
    let mut job = repo.job(1, App::Bash, "slow.sh");
    job.timeout = Some(Duration::from_secs(2));
    let lines = Lines::default();
    let started = Instant::now();
    let mut seen = (0, Vec::new());
    let control = Control::new();
    let (outcome, ()) = tokio::join!(run(&job, &config, &lines, &control), async {
        lines.wait_for("started", Duration::from_secs(20)).await;
        let sleeps = both_sleeps(302).await;
        seen = (script_group("slow.sh").1, sleeps);
    });
    assert_eq!(outcome, Outcome::TimedOut, "{}", lines.all());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert!(lines.has("Time limit of 2s reached: sending SIGTERM to the process group of bash"));
    assert_eq!(seen.1.len(), 2, "two sleeps ran");
    assert!(group_members(seen.0).is_empty());
    for child in seen.1 {
        assert!(!alive(child));
    }
}

#[tokio::test]
async fn background_processes_die_with_the_script() {
    // The script exits at once, leaving a sleep that holds its stdout open: the task still
    // ends promptly, and the sleep is gone.
    let repo = repo_with(
        "leave.sh",
        "sleep 303 &\n(sleep 303; echo never) &\nsleep 0.5\nexit 0\n",
    );
    let (_work, config) = config();
    let lines = Lines::default();
    let started = Instant::now();
    let outcome = run(
        &repo.job(1, App::Bash, "leave.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{}", lines.all());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        host_pids("sleep", "303").is_empty(),
        "a background process outlived its task"
    );
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let repo = Repo::new();
    repo.write("code.sh", "echo failing\nexit 42\n");
    repo.write(
        "segv.py",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    );
    repo.commit("scripts");
    let (_work, config) = config();
    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Bash, "code.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Failed("bash exited with code 42".into()));
    assert!(lines.has("bash exited with code 42"));
    let lines = Lines::default();
    let outcome = run(
        &repo.job(2, App::Python, "segv.py"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Failed("python3 killed by signal 11 (SIGSEGV)".into()),
        "{}",
        lines.all()
    );
    assert!(lines.has("python3 killed by signal 11 (SIGSEGV)"));
}

#[tokio::test]
async fn a_stop_before_the_start_runs_nothing() {
    let repo = repo_with("never.sh", "echo ran\n");
    let (_work, config) = config();
    let control = Control::new();
    control.stop(false);
    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Bash, "never.sh"),
        &config,
        &lines,
        &control,
    )
    .await;
    assert_eq!(outcome, Outcome::Stopped);
    assert!(!lines.has("ran"));
}
