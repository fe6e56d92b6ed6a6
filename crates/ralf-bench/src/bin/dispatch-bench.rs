//! Dispatch latency and throughput as a user sees them, measured from outside: the real
//! `ralf server` binary as a separate process (SQLite, tasks sandboxed as by default), the
//! repository served by `git daemon` and reached by a `git://` URL, tasks created with `POST`
//! and their end awaited on `/api/ws`.
//!
//! `dispatch-bench RALF_BINARY [N] [TASKS] [PARALLEL]`
//!
//! - dispatch: N sequential `echo ok` bash tasks; p50 and p99 from the `POST` to the `update`
//!   frame of the task's final status, with each phase as the client sees it (POST answered,
//!   `starting`, `running`, first output line, final status), next to a fork/exec of
//!   `bash echo.sh`, and of the same in a bubblewrap sandbox like a task's (the floor a
//!   sandboxed task cannot go below).
//! - throughput: TASKS such tasks, submitted by PARALLEL clients at once to a server running
//!   PARALLEL at a time; tasks/s from the first `POST` to the last final status, next to TASKS
//!   runs of `bash echo.sh`, PARALLEL at a time, bare and sandboxed; and the CPU each took, on the
//!   whole machine (the throughput a machine can reach is its cores over that).

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ralf_bench::{CpuTime, ms, quantile, run_echo_script, write_echo_script};
use ralf_testkit::{GitRepo, ProjectFixture, ServerProcess, json};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const FINAL: [&str; 4] = ["success", "error", "stopped", "rejected"];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(ralf) = args.first() else {
        eprintln!("usage: dispatch-bench RALF_BINARY [N] [TASKS] [PARALLEL]");
        std::process::exit(2);
    };
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, tasks, parallel) = (number(1, 200), number(2, 1000), number(3, 8));

    let repo = GitRepo::new(&[("echo.sh", "echo ok\n")]);
    let daemon = repo.serve();
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("RALF_DATA_DIR", data.path().display().to_string()),
        ("RALF_ADMIN_LOGIN", "bench".to_string()),
        ("RALF_ADMIN_PASSWORD", "bench-password".to_string()),
        ("RALF_MAX_PARALLEL_TASKS", parallel.to_string()),
    ];
    // The server logs only warnings unless told otherwise (`RALF_LOG=sqlx::query=debug` shows
    // each statement it runs).
    if let Ok(level) = std::env::var("RALF_LOG") {
        env.push(("RALF_LOG", level));
    }
    let server = ServerProcess::start(ralf, &env, &[]).await;
    let api = server.login("bench", "bench-password").await;
    let project = ProjectFixture::new("bench")
        .git_url(&daemon.url)
        .template(json!({"name": "echo", "app": "bash", "playbook": "echo.sh",
                         "allow_parallel_tasks": true}))
        .create(&api)
        .await;
    let (project, template) = (project.id, project.template());
    let mut feed = Feed::open(&server.url, api.token.as_deref().unwrap()).await;
    let path = format!("/api/project/{project}/tasks");
    let post = async |api: &ralf_testkit::Api| {
        api.create(&path, json!({"template_id": template})).await["id"]
            .as_i64()
            .unwrap()
    };

    println!(
        "dispatch-bench: ralf server process on SQLite, sandbox as by default, repository at \
         git:// (git daemon), {} cores",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );

    // Warm up: the first task clones the repository into the cache.
    let first = post(&api).await;
    feed.until_final(first).await;

    // Dispatch, one task after another.
    let mut phases: [Vec<Duration>; 5] = Default::default();
    let mut total = Vec::new();
    let (mut server_git, mut server_fetch) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        let task = post(&api).await;
        let answered = t0.elapsed();
        let seen = feed.until_final(task).await;
        assert_eq!(seen.status, "success", "task {task} ended {}", seen.status);
        let at = |d: Option<Instant>| d.map_or(Duration::ZERO, |i| i - t0);
        let marks = [
            answered,
            at(seen.starting),
            at(seen.running),
            at(seen.checked_out),
            seen.end - t0,
        ];
        let mut before = Duration::ZERO;
        for (phase, mark) in phases.iter_mut().zip(marks) {
            phase.push(mark.saturating_sub(before));
            before = before.max(mark);
        }
        total.push(seen.end - t0);
        if let Some((checkout, fetch)) = seen.git {
            server_git.push(checkout);
            server_fetch.push(fetch);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_echo_script(dir.path());
    let bash = || run_echo_script(dir.path());
    // The same under bubblewrap with the namespaces and the kind of mounts ralf's sandbox
    // makes (as root, the user changed by setpriv, as ralf does): the sandbox's own cost.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    let sandboxed = || {
        let here = dir.path().as_os_str();
        let mut command = Command::new("bwrap");
        command.args([
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]);
        command.arg("--bind").arg(here).arg(here);
        command.arg("--chdir").arg(here).arg("--");
        if root {
            command.args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--no-new-privs",
                "--",
            ]);
        }
        let out = command.args(["bash", "echo.sh"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let timed = |run: &dyn Fn()| -> Vec<Duration> {
        (0..n)
            .map(|_| {
                let t0 = Instant::now();
                run();
                t0.elapsed()
            })
            .collect()
    };
    let mut direct = timed(&bash);
    let mut in_sandbox = timed(&sandboxed);
    // What one program's start costs on this machine: a sandboxed task starts three (bwrap,
    // setpriv, bash), and git daemon one more to answer the refs ask.
    let mut exec_true = timed(&|| {
        assert!(Command::new("true").status().unwrap().success());
    });
    println!("dispatch: {n} sequential bash tasks (echo ok)");
    println!(
        "  POST to final status on /api/ws   p50 {}   p99 {}",
        ms(quantile(&mut total, 0.5)),
        ms(quantile(&mut total, 0.99))
    );
    println!("  phases as the client sees them (p50, p99):");
    let names = [
        "POST answered (request, insert)",
        "-> `starting` (wake-up, claim)",
        "-> `running` (task and job from the store)",
        "-> `Checked out` line (git: fetch, checkout)",
        "-> final status (process, output, status)",
    ];
    for (name, phase) in names.iter().zip(phases.iter_mut()) {
        println!(
            "    {name:<46} {}   {}",
            ms(quantile(phase, 0.5)),
            ms(quantile(phase, 0.99))
        );
    }
    if !server_git.is_empty() {
        println!(
            "    (the server's own count, whole ms: git {} of which fetch {}, p50)",
            ms(quantile(&mut server_git, 0.5)),
            ms(quantile(&mut server_fetch, 0.5))
        );
    }
    println!(
        "  baseline: fork/exec of true (one program's start)   p50 {}   p99 {}",
        ms(quantile(&mut exec_true, 0.5)),
        ms(quantile(&mut exec_true, 0.99))
    );
    println!(
        "  baseline: fork/exec of bash echo.sh   p50 {}   p99 {}",
        ms(quantile(&mut direct, 0.5)),
        ms(quantile(&mut direct, 0.99))
    );
    println!(
        "  baseline: the same in a bubblewrap sandbox   p50 {}   p99 {}",
        ms(quantile(&mut in_sandbox, 0.5)),
        ms(quantile(&mut in_sandbox, 0.99))
    );

    // Throughput: PARALLEL clients submit TASKS tasks; the server runs PARALLEL at a time.
    let me = std::process::id();
    let cpu_of = || [server.pid(), me, daemon.pid()].map(CpuTime::of);
    let cpu_before = cpu_of();
    let t0 = Instant::now();
    let mut submitters = Vec::new();
    for i in 0..parallel {
        let api = api.clone();
        let path = path.clone();
        let count = tasks / parallel + usize::from(i < tasks % parallel);
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(
                    api.create(&path, json!({"template_id": template})).await["id"]
                        .as_i64()
                        .unwrap(),
                );
            }
            ids
        }));
    }
    let mut ids = HashSet::new();
    for submitter in submitters {
        ids.extend(submitter.await.unwrap());
    }
    let submitted = t0.elapsed();
    let mut failed = 0;
    let mut left = ids.clone();
    while !left.is_empty() {
        let (_, frame) = feed.next().await;
        if let Some((task, status)) = final_status(&frame)
            && left.remove(&task)
            && status != "success"
        {
            failed += 1;
        }
    }
    let elapsed = t0.elapsed();
    let cpu_after = cpu_of();
    let t1 = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..parallel {
            let count = tasks / parallel + usize::from(i < tasks % parallel);
            scope.spawn(move || (0..count).for_each(|_| bash()));
        }
    });
    let direct = t1.elapsed();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let sandbox_cpu_before = CpuTime::of(me);
    let t2 = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..parallel {
            let count = tasks / parallel + usize::from(i < tasks % parallel);
            let sandboxed = &sandboxed;
            scope.spawn(move || (0..count).for_each(|_| sandboxed()));
        }
    });
    let direct_in_sandbox = t2.elapsed();
    let sandbox_cpu = sandbox_cpu_before
        .zip(CpuTime::of(me))
        .filter(|_| tasks > 0)
        .map(|(b, a)| a.since(b).machine / tasks as u32);
    println!("throughput: {tasks} bash tasks (echo ok), {parallel} at a time");
    println!(
        "  through ralf   {:.1} tasks/s   (all submitted after {:.2} s, all finished after {:.2} s, {failed} not successful)",
        tasks as f64 / elapsed.as_secs_f64(),
        submitted.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if let ([Some(s0), Some(c0), Some(g0)], [Some(s1), Some(c1), Some(g1)]) =
        (cpu_before, cpu_after)
        && tasks > 0
    {
        let per_task = |d: Duration| ms(d / tasks as u32);
        let (server_cpu, client_cpu, git_cpu) = (s1.since(s0), c1.since(c0), g1.since(g0));
        let git_cpu = git_cpu.process + git_cpu.children;
        let rest = server_cpu
            .machine
            .saturating_sub(server_cpu.process + client_cpu.process + git_cpu);
        println!(
            "  CPU per task: {} on the whole machine, of which the server's own threads {}, \
             this bench's client {}, git daemon and its upload-packs {}, the rest (the tasks' \
             sandboxes and programs, the kernel) {}",
            per_task(server_cpu.machine),
            per_task(server_cpu.process),
            per_task(client_cpu.process),
            per_task(git_cpu),
            per_task(rest)
        );
    }
    println!(
        "  baseline: {parallel} x bash echo.sh in parallel   {:.1} runs/s",
        tasks as f64 / direct.as_secs_f64()
    );
    println!(
        "  baseline: {parallel} x the same in a bubblewrap sandbox   {:.1} runs/s",
        tasks as f64 / direct_in_sandbox.as_secs_f64()
    );
    if let Some(cpu) = sandbox_cpu {
        println!(
            "  baseline: CPU per sandboxed run, whole machine {} (so at most {:.0} runs/s on \
             these cores with nothing else running)",
            ms(cpu),
            cores as f64 / cpu.as_secs_f64()
        );
    }
    server.terminate();
}

/// The frames of `/api/ws`, each with the time it was received.
struct Feed {
    frames: mpsc::UnboundedReceiver<(Instant, Value)>,
}

/// What the feed showed of one task.
struct Seen {
    starting: Option<Instant>,
    running: Option<Instant>,
    /// When the line saying the commit was checked out came.
    checked_out: Option<Instant>,
    /// The checkout's and the fetch's times as that line gives them (whole milliseconds).
    git: Option<(Duration, Duration)>,
    end: Instant,
    status: String,
}

impl Feed {
    async fn open(url: &str, token: &str) -> Feed {
        let mut request = format!("{}/api/ws", url.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket");
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message {
                    let received = Instant::now();
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if tx.send((received, frame)).is_err() {
                        break;
                    }
                }
            }
        });
        Feed { frames }
    }

    async fn next(&mut self) -> (Instant, Value) {
        tokio::time::timeout(Duration::from_secs(60), self.frames.recv())
            .await
            .expect("a frame within a minute")
            .expect("the WebSocket stays open")
    }

    /// Reads frames until `task`'s final status.
    async fn until_final(&mut self, task: i64) -> Seen {
        let (mut starting, mut running, mut checked_out, mut git) = (None, None, None, None);
        loop {
            let (at, frame) = self.next().await;
            if frame["task_id"] != task {
                continue;
            }
            match (frame["type"].as_str(), frame["status"].as_str()) {
                (Some("log"), _) => {
                    let line = frame["output"].as_str().unwrap_or_default();
                    if let Some(rest) = line.strip_prefix("Checked out ") {
                        checked_out = Some(at);
                        git = server_git_times(rest);
                    }
                }
                (Some("update"), Some("starting")) => {
                    starting.get_or_insert(at);
                }
                (Some("update"), Some("running")) => {
                    running.get_or_insert(at);
                }
                (Some("update"), Some(status)) if FINAL.contains(&status) => {
                    return Seen {
                        starting,
                        running,
                        checked_out,
                        git,
                        end: at,
                        status: status.to_string(),
                    };
                }
                _ => {}
            }
        }
    }
}

/// The times of "Checked out ... in N ms (fetch M ms)".
fn server_git_times(line: &str) -> Option<(Duration, Duration)> {
    let (_, times) = line.rsplit_once(" in ")?;
    let (total, fetch) = times.split_once(" ms (fetch ")?;
    let fetch = fetch.strip_suffix(" ms)")?;
    Some((
        Duration::from_millis(total.parse().ok()?),
        Duration::from_millis(fetch.parse().ok()?),
    ))
}

/// The task and final status of an `update` frame that ends a task.
fn final_status(frame: &Value) -> Option<(i64, String)> {
    let status = frame["status"].as_str()?;
    (frame["type"] == "update" && FINAL.contains(&status))
        .then(|| (frame["task_id"].as_i64().unwrap_or(0), status.to_string()))
}
