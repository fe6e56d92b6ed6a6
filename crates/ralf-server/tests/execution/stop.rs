//! Stopping tasks: a running one (its whole process group goes), a forced stop, a waiting one
//! (it never starts), and the template's time limit.

use std::path::Path;
use std::time::Duration;

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends, wait_until};

use crate::common::{Project, has};

/// Starts a background child and waits in the foreground. A task's pids mean nothing outside
/// its sandbox, so the test finds its processes by their command lines: the script's argument
/// (unique per test) is in both.
const SLEEPER: &str = r#"(exec -a "sleeper-child $1" sleep 300) &
echo "started"
sleep 300
"#;

/// Like `SLEEPER`, but deaf to SIGTERM (and so are its children, which inherit that).
const DEAF: &str = r#"trap '' TERM
(exec -a "sleeper-child $1" sleep 300) &
echo "started"
while true; do sleep 1; done
"#;

/// Live processes of this machine named `name` whose command line contains `needle`.
fn processes(name: &str, needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            comm.trim() == name
                && String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
                && alive(pid)
        })
        .collect()
}

/// The task's script (the first bash running `run.sh` with `marker`) and its background child,
/// once that runs `sleep` (the subshell it starts in is a `bash` until then).
async fn main_and_child(marker: &Path) -> (i32, i32) {
    let marker = marker.display().to_string();
    let main = *processes("bash", &format!("run.sh {marker}"))
        .iter()
        .min()
        .expect("the script runs");
    let needle = format!("sleeper-child {marker}");
    let child = wait_until(Duration::from_secs(20), async || {
        match processes("sleep", &needle).as_slice() {
            [child] => Ok(*child),
            children => Err(format!("not one background child: {children:?}")),
        }
    })
    .await;
    (main, child)
}

/// The state letter and process group of a process, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ...", where comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Live (not zombie) processes of process group `pgid`.
fn group(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| matches!(stat(pid), Some((state, g)) if g == pgid && state != 'Z'))
        .collect()
}

fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z')
}

/// The process group of a live process.
fn group_of(pid: i32) -> i32 {
    stat(pid).expect("the process runs").1
}

/// Waits (up to `limit`) until no process of the group is left.
async fn wait_group_gone(pgid: i32, limit: Duration) {
    wait_until(limit, async || match group(pgid).as_slice() {
        [] => Ok(()),
        left => Err(format!("processes of the task survived: {left:?}")),
    })
    .await
}

/// A project with a template running `script` with a fresh directory as its argument.
async fn sleeper_project(
    server: &TestServer,
    script: &str,
) -> (Project, i64, GitRepo, tempfile::TempDir) {
    let repo = GitRepo::new(&[("run.sh", script)]);
    let dir = tempfile::tempdir().unwrap();
    let project = Project::new(server, &repo).await;
    let template = project
        .template(
            "sleeper",
            "bash",
            "run.sh",
            json!({"arguments": json!([dir.path()]).to_string()}),
        )
        .await;
    (project, template, repo, dir)
}

async fn a_stopped_task_leaves_no_process_behind(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (project, template, _repo, dir) = sleeper_project(&server, SLEEPER).await;
    let task = project.start(json!({"template_id": template})).await;
    project.wait_for_line(task, "started").await;
    let (main, child) = main_and_child(dir.path()).await;
    let task_group = group_of(main);
    assert_eq!(
        group_of(child),
        task_group,
        "the child is in the task's group"
    );
    assert_eq!(
        project.task(task).await["status"],
        "running",
        "{:#?}",
        project.output(task).await
    );

    let r = project.post(&format!("tasks/{task}/stop"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (done, lines) = project.finish(task).await;
    assert_eq!(done["status"], "stopped", "{lines:#?}");
    assert!(has(&lines, "Task stop requested by admin"), "{lines:#?}");
    assert!(
        has(
            &lines,
            "Stop requested: sending SIGTERM to the process group of bash"
        ),
        "{lines:#?}"
    );
    wait_group_gone(task_group, Duration::from_secs(5)).await;
    assert!(!alive(main) && !alive(child));
    let r = project.post(&format!("tasks/{task}/stop"), json!({})).await;
    assert_eq!(
        r.status, 409,
        "a finished task cannot be stopped: {}",
        r.text
    );
    server.stop().await;
}

async fn a_forced_stop_kills_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (project, template, _repo, dir) = sleeper_project(&server, DEAF).await;
    let task = project.start(json!({"template_id": template})).await;
    project.wait_for_line(task, "started").await;
    let (main, _) = main_and_child(dir.path()).await;
    let task_group = group_of(main);

    // A polite stop is ignored (SIGTERM is), so the task stays stopping during the grace period.
    let asked = tokio::time::Instant::now();
    let r = project.post(&format!("tasks/{task}/stop"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    project.wait_for_line(task, "sending SIGTERM").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(project.task(task).await["status"], "stopping");
    assert!(alive(main), "SIGTERM is ignored");

    let r = project
        .post(&format!("tasks/{task}/stop"), json!({"force": true}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(project.task(task).await["status"], "stopped", "at once");
    // SIGKILL comes at once, not when the 5 s grace period after SIGTERM is over.
    wait_group_gone(task_group, Duration::from_secs(3)).await;
    assert!(asked.elapsed() < Duration::from_secs(5));
    let (done, lines) = project.finish(task).await;
    assert_eq!(done["status"], "stopped", "{lines:#?}");
    // The executor's last lines are stored a moment after the status changed.
    let lines = project.wait_for_line(task, "killed by signal 9").await;
    assert!(
        has(
            &lines,
            "Forced stop: sending SIGKILL to the process group of bash"
        ),
        "{lines:#?}"
    );
    assert!(
        has(&lines, "bash killed by signal 9 (SIGKILL)"),
        "{lines:#?}"
    );

    // Forced from the start: no SIGTERM and no grace period at all.
    let task = project.start(json!({"template_id": template})).await;
    project.wait_for_line(task, "started").await;
    let task_group = group_of(main_and_child(dir.path()).await.0);
    let r = project
        .post(&format!("tasks/{task}/stop"), json!({"force": true}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    wait_group_gone(task_group, Duration::from_secs(3)).await;
    let lines = project.wait_for_line(task, "killed by signal 9").await;
    assert_eq!(project.task(task).await["status"], "stopped");
    assert!(has(&lines, "Task stopped by admin"), "{lines:#?}");
    assert!(!has(&lines, "SIGTERM"), "{lines:#?}");
    server.stop().await;
}

/// Runs until the test writes `release` in the task's `HOME` (all it sees of the machine).
const BLOCKER: &str = r#"echo "blocker running"
while [ ! -e "$HOME/release" ]; do sleep 0.02; done
echo released
"#;

async fn a_stopped_waiting_task_never_starts(backend: Backend) {
    let server = TestServer::start_with(backend, |s| s.max_parallel_tasks = 1).await;
    let repo = GitRepo::new(&[("block.sh", BLOCKER), ("quick.sh", "echo quick ran\n")]);
    let project = Project::new(&server, &repo).await;
    let blocker = project
        .template("blocker", "bash", "block.sh", json!({}))
        .await;
    let quick = project
        .template("quick", "bash", "quick.sh", json!({}))
        .await;
    let blocking = project.start(json!({"template_id": blocker})).await;
    project.wait_for_line(blocking, "blocker running").await;
    let held = project.start(json!({"template_id": quick})).await;
    assert_eq!(project.task(held).await["status"], "waiting");

    let r = project.post(&format!("tasks/{held}/stop"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(project.task(held).await["status"], "stopped");

    let home = server.work_dir().join(format!("tasks/{blocking}/home"));
    std::fs::write(home.join("release"), "").unwrap();
    let (done, lines) = project.finish(blocking).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    // The queue goes on without it: a later task of the same template runs.
    let (later, lines) = project.run(json!({"template_id": quick})).await;
    assert_eq!(later["status"], "success", "{lines:#?}");

    let stopped = project.task(held).await;
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped["start"].is_null(), "{stopped}");
    let lines = project.output(held).await;
    assert!(has(&lines, "Task stopped by admin"), "{lines:#?}");
    assert!(!has(&lines, "quick ran"), "{lines:#?}");
    assert!(!has(&lines, "Checked out"), "{lines:#?}");
    server.stop().await;
}

async fn the_templates_time_limit_ends_the_task_in_error(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (project, _, _repo, dir) = sleeper_project(&server, SLEEPER).await;
    let template = project
        .template(
            "limited",
            "bash",
            "run.sh",
            json!({"timeout_secs": 1, "arguments": json!([dir.path()]).to_string()}),
        )
        .await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(has(&lines, "started"), "{lines:#?}");
    assert!(
        has(
            &lines,
            "Time limit of 1s reached: sending SIGTERM to the process group of bash"
        ),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "The task ran longer than its template allows (1 s) and was stopped"
    );
    let marker = dir.path().display().to_string();
    wait_until(Duration::from_secs(5), async || {
        let left = [processes("bash", &marker), processes("sleep", &marker)].concat();
        match left.as_slice() {
            [] => Ok(()),
            _ => Err(format!("the task's processes survived: {left:?}")),
        }
    })
    .await;
    server.stop().await;
}

on_both_backends!(
    a_stopped_task_leaves_no_process_behind,
    a_forced_stop_kills_at_once,
    a_stopped_waiting_task_never_starts,
    the_templates_time_limit_ends_the_task_in_error,
);
