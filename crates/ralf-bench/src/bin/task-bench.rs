//! Task benchmarks against a real ralf server (started in this process on a fresh SQLite
//! database, so the store can be read for a breakdown of where the time goes):
//!
//! - `task-bench dispatch [N]`: N sequential `echo ok` bash tasks from a local git repository;
//!   median time from POST to `success`, with a breakdown, next to a direct fork/exec of the
//!   same script.
//! - `task-bench throughput [N] [PARALLEL]`: N trivial tasks, PARALLEL at a time; tasks/second.
//! - `task-bench ansible [RUNS]`: a 20-task playbook through ralf next to `ansible-playbook`
//!   run directly (both need `ansible-playbook` on PATH and ANSIBLE_PYTHON_INTERPRETER set).
//! - `task-bench live [LINES]`: a task prints LINES lines, each stamped with the time it was
//!   printed; a WebSocket client on `/api/ws` measures how long each took to arrive.
//! - `task-bench runners RALF_BINARY [N] [PARALLEL]`: N trivial tasks on a server on PostgreSQL
//!   that runs them itself (the baseline), then on one that hands every task to 1, 2 and 4
//!   `ralf runner` processes, each PARALLEL at a time; tasks/second of each.
//! - `task-bench ingest RALF_BINARY [LINES]`: one task printing LINES lines of 100 bytes through
//!   a `ralf server` process; time next to the same script writing to a file, every line read
//!   back through the API, and the server's peak memory.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use ralf_bench::{median, ms, quantile, run_echo_script, write_echo_script};
use ralf_core::{ProjectId, TaskId};
use ralf_testkit::{Backend, GitRepo, ProjectFixture, TestServer, json};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("dispatch") => dispatch(number(1, 200)).await,
        Some("throughput") => throughput(number(1, 1000), number(2, 8)).await,
        Some("ansible") => ansible(number(1, 5)).await,
        Some("live") => live(number(1, 500)).await,
        Some("runners") => {
            runners(
                args.get(1).expect("RALF_BINARY"),
                number(2, 500),
                number(3, 8),
            )
            .await
        }
        Some("ingest") => ingest(args.get(1).expect("RALF_BINARY"), number(2, 1_000_000)).await,
        _ => {
            eprintln!(
                "usage: task-bench dispatch [N] | throughput [N] [PARALLEL] | ingest RALF_BINARY [LINES] | runners RALF_BINARY [N] [PARALLEL]"
            );
            std::process::exit(2);
        }
    }
}

/// `RALF_BENCH_SANDBOX=off` runs the tasks without their sandbox (as a machine without
/// bubblewrap that allows it would), to measure what the sandbox costs; anything else: with it.
fn sandbox_mode(settings: &mut ralf_server::Settings) {
    if sandbox_off() {
        settings.sandbox.bwrap = "/nonexistent/bwrap".into();
        settings.sandbox.allow_unsandboxed = true;
    }
}

fn sandbox_off() -> bool {
    std::env::var("RALF_BENCH_SANDBOX").is_ok_and(|v| v == "off")
}

fn sandbox_label() -> &'static str {
    if sandbox_off() {
        "sandbox off"
    } else {
        "sandbox on"
    }
}

struct Setup {
    server: TestServer,
    api: ralf_testkit::Api,
    project: i64,
    template: i64,
    _repo: GitRepo,
}

async fn setup(parallel: u32) -> Setup {
    let repo = GitRepo::new(&[("echo.sh", "echo ok\n")]);
    let server = TestServer::start_with(Backend::Sqlite, |s| {
        s.max_parallel_tasks = parallel;
        sandbox_mode(s);
    })
    .await;
    let api = server.admin().await;
    let (project, template) = bench_project(
        &api,
        &repo,
        json!({"name": "echo", "app": "bash", "playbook": "echo.sh",
                   "allow_parallel_tasks": parallel > 1}),
        None,
    )
    .await;
    Setup {
        server,
        api,
        project,
        template,
        _repo: repo,
    }
}

async fn wait_finished(setup: &Setup, task: i64) -> String {
    loop {
        let status = setup
            .server
            .store()
            .task_status(TaskId(task))
            .await
            .unwrap()
            .unwrap();
        if status.is_finished() {
            return status.to_string();
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

async fn dispatch(n: usize) {
    let setup = setup(1).await;
    let store = setup.server.store();
    let path = format!("/api/project/{}/tasks", setup.project);
    // Warm up: the first task clones the repository into the cache.
    let first = setup
        .api
        .create(&path, json!({"template_id": setup.template}))
        .await["id"]
        .as_i64()
        .unwrap();
    wait_finished(&setup, first).await;

    let (mut total, mut request, mut queue, mut git, mut process, mut noticed) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for _ in 0..n {
        let sent = Utc::now();
        let t0 = Instant::now();
        let task = setup
            .api
            .create(&path, json!({"template_id": setup.template}))
            .await["id"]
            .as_i64()
            .unwrap();
        let answered = Instant::now();
        let status = wait_finished(&setup, task).await;
        let done = Instant::now();
        assert_eq!(status, "success");
        let row = store
            .task(ProjectId(setup.project), TaskId(task))
            .await
            .unwrap();
        let lines = store.task_output(TaskId(task), 0, None).await.unwrap();
        let checked_out = lines
            .iter()
            .find(|l| l.output.starts_with("Checked out"))
            .expect("checkout line")
            .time
            .0;
        let (start, end) = (row.start.unwrap().0, row.end.unwrap().0);
        let to = |a: chrono::DateTime<Utc>, b: chrono::DateTime<Utc>| {
            (b - a).to_std().unwrap_or_default()
        };
        total.push(done - t0);
        request.push(answered - t0);
        queue.push(to(row.created.0, start));
        git.push(to(start, checked_out));
        process.push(to(checked_out, end));
        noticed.push(to(
            end,
            sent + chrono::Duration::from_std(done - t0).unwrap(),
        ));
    }

    // Baseline: the same script, forked and waited for directly.
    let dir = tempfile::tempdir().unwrap();
    write_echo_script(dir.path());
    let mut direct = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        run_echo_script(dir.path());
        direct.push(t0.elapsed());
    }

    println!(
        "dispatch: {n} sequential bash tasks (echo ok) from a local git repository, SQLite, {}",
        sandbox_label()
    );
    println!(
        "  POST to success, median     {}   (p90 {})",
        ms(median(&mut total)),
        ms(quantile(&mut total, 0.9))
    );
    println!("  breakdown (medians):");
    println!(
        "    request and insert (POST answered)   {}",
        ms(median(&mut request))
    );
    println!(
        "    queue (created -> running; claim, job from the store)   {}",
        ms(median(&mut queue))
    );
    println!(
        "    git (fetch + private checkout)       {}",
        ms(median(&mut git))
    );
    println!(
        "    process (bash to exit, output stored, status set)   {}",
        ms(median(&mut process))
    );
    println!(
        "    client notices the end (store polled every 0.5 ms)   {}",
        ms(median(&mut noticed))
    );
    println!(
        "  baseline: direct fork/exec of bash echo.sh, median   {}",
        ms(median(&mut direct))
    );
    setup.server.stop().await;
}

async fn throughput(n: usize, parallel: usize) {
    let setup = setup(parallel as u32).await;
    let path = format!("/api/project/{}/tasks", setup.project);
    let first = setup
        .api
        .create(&path, json!({"template_id": setup.template}))
        .await["id"]
        .as_i64()
        .unwrap();
    wait_finished(&setup, first).await;

    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(
            setup
                .api
                .create(&path, json!({"template_id": setup.template}))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let submitted = t0.elapsed();
    let mut failed = 0;
    for id in &ids {
        if wait_finished(&setup, *id).await != "success" {
            failed += 1;
        }
    }
    let elapsed = t0.elapsed();
    println!("throughput: {n} bash tasks (echo ok), {parallel} at a time, SQLite");
    println!(
        "  all submitted after {:.2} s, all finished after {:.2} s",
        submitted.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  {:.1} tasks/s ({failed} not successful)",
        n as f64 / elapsed.as_secs_f64()
    );
    setup.server.stop().await;
}

async fn ingest(ralf: &str, lines: usize) {
    // 99 characters and a newline per line.
    let script =
        format!("awk 'BEGIN {{ for (i = 0; i < {lines}; i++) printf \"%099d\\n\", i }}'\n");
    let repo = GitRepo::new(&[("print.sh", &script)]);

    // Baseline: the same script writing to a file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("print.sh"), &script).unwrap();
    let t0 = Instant::now();
    let status = Command::new("bash")
        .arg("-c")
        .arg("bash print.sh > out.txt")
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let to_file = t0.elapsed();
    let written = std::fs::read_to_string(dir.path().join("out.txt"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(written, lines);

    let data = tempfile::tempdir().unwrap();
    let env = [
        ("RALF_DATA_DIR", data.path().display().to_string()),
        ("RALF_ADMIN_LOGIN", "bench".to_string()),
        ("RALF_ADMIN_PASSWORD", "bench-password".to_string()),
    ];
    let server = ralf_testkit::ServerProcess::start(ralf, &env, &[]).await;
    let api = server.login("bench", "bench-password").await;
    let (project, template) = bench_project(
        &api,
        &repo,
        json!({"name": "print", "app": "bash", "playbook": "print.sh"}),
        None,
    )
    .await;
    let base = format!("/api/project/{project}");
    let rss_before = peak_rss_kib(server.pid());
    let t0 = Instant::now();
    let task = api
        .create(&format!("{base}/tasks"), json!({"template_id": template}))
        .await["id"]
        .as_i64()
        .unwrap();
    let done = api.wait_task(project, task, Duration::from_secs(600)).await;
    let through_ralf = t0.elapsed();
    assert_eq!(done["status"], "success");
    let peak = peak_rss_kib(server.pid());

    // Every line, read back through the API (raw_output streams it).
    let raw = reqwest::Client::new()
        .get(format!("{}{base}/tasks/{task}/raw_output", server.url))
        .bearer_auth(api.token.as_deref().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let printed = raw
        .lines()
        .filter(|l| l.len() == 99 && l.bytes().all(|b| b.is_ascii_digit()))
        .count();
    let peak_after_read = peak_rss_kib(server.pid());

    println!(
        "log ingest: one bash task printing {lines} lines of 100 bytes, ralf server process on SQLite"
    );
    println!(
        "  same script writing to a file    {:.2} s",
        to_file.as_secs_f64()
    );
    println!(
        "  through ralf (POST to success)   {:.2} s   ({:.2}x the file)",
        through_ralf.as_secs_f64(),
        through_ralf.as_secs_f64() / to_file.as_secs_f64()
    );
    println!("  lines served by raw_output       {printed} of {lines}");
    println!(
        "  server peak RSS (VmHWM)          {} MiB before the task, {} MiB after it, {} MiB after reading the output back",
        rss_before / 1024,
        peak / 1024,
        peak_after_read / 1024
    );
    server.terminate();
}

/// The peak resident set size of a process, in KiB (VmHWM of /proc/PID/status).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn ansible(runs: usize) {
    let mut playbook = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
    for i in 1..=20 {
        playbook.push_str(&format!(
            "    - name: step {i}\n      ansible.builtin.debug:\n        msg: \"step {i} of 20\"\n"
        ));
    }
    let inventory = "localhost ansible_connection=local\n";
    let repo = GitRepo::new(&[("site.yml", &playbook)]);

    // Directly.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), &playbook).unwrap();
    std::fs::write(dir.path().join("hosts"), inventory).unwrap();
    let mut direct = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let out = Command::new("ansible-playbook")
            .args(["-i", "hosts", "site.yml"])
            .current_dir(dir.path())
            .output()
            .expect("ansible-playbook on PATH");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        direct.push(t0.elapsed());
    }

    // Through ralf.
    let server = TestServer::start_with(Backend::Sqlite, sandbox_mode).await;
    let api = server.admin().await;
    let (project, template) = bench_project(
        &api,
        &repo,
        json!({"name": "site", "app": "ansible", "playbook": "site.yml"}),
        Some(inventory),
    )
    .await;
    let base = format!("/api/project/{project}");
    let mut through = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let task = api
            .create(&format!("{base}/tasks"), json!({"template_id": template}))
            .await["id"]
            .as_i64()
            .unwrap();
        let done = api.wait_task(project, task, Duration::from_secs(300)).await;
        through.push(t0.elapsed());
        assert_eq!(
            done["status"],
            "success",
            "{:?}",
            api.output_lines(project, task).await
        );
    }
    let (d, t) = (median(&mut direct), median(&mut through));
    println!(
        "ansible: a 20-task playbook on localhost, median of {runs} runs, {}",
        sandbox_label()
    );
    println!("  ansible-playbook directly          {}", ms(d));
    println!(
        "  through ralf (POST to success)     {}   ({:.3}x)",
        ms(t),
        t.as_secs_f64() / d.as_secs_f64()
    );
    server.stop().await;
}

async fn live(lines: usize) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let script =
        format!("for i in $(seq 1 {lines}); do echo \"stamp $(date +%s%N)\"; sleep 0.01; done\n");
    let repo = GitRepo::new(&[("stamps.sh", &script)]);
    let server = TestServer::start(Backend::Sqlite).await;
    let api = server.admin().await;
    let (project, template) = bench_project(
        &api,
        &repo,
        json!({"name": "stamps", "app": "bash", "playbook": "stamps.sh"}),
        None,
    )
    .await;
    let base = format!("/api/project/{project}");

    let mut request = format!("{}/api/ws", server.url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", api.token.as_deref().unwrap())
            .parse()
            .unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    let task = api
        .create(&format!("{base}/tasks"), json!({"template_id": template}))
        .await["id"]
        .as_i64()
        .unwrap();

    let mut delays = Vec::new();
    while delays.len() < lines {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            continue;
        };
        let received = Utc::now().timestamp_nanos_opt().unwrap();
        let msg: serde_json::Value = serde_json::from_str(&text).unwrap();
        if msg["type"] != "log" || msg["task_id"] != task {
            continue;
        }
        if let Some(stamp) = msg["output"]
            .as_str()
            .and_then(|o| o.strip_prefix("stamp "))
        {
            let printed: i64 = stamp.trim().parse().unwrap();
            delays.push(Duration::from_nanos((received - printed).max(0) as u64));
        }
    }
    println!(
        "live latency: {lines} lines printed 10 ms apart by a bash task, received on /api/ws, SQLite"
    );
    println!(
        "  print to WebSocket client: p50 {}   p99 {}   max {}",
        ms(quantile(&mut delays, 0.5)),
        ms(quantile(&mut delays, 0.99)),
        ms(quantile(&mut delays, 1.0))
    );
    server.stop().await;
}

/// A project with a `none` key, a repository at `repo`, a static inventory (`localhost`, or
/// `inventory` when given), and one template made from `template` (name, app, playbook, ...);
/// returns the project and template ids.
async fn bench_project(
    api: &ralf_testkit::Api,
    repo: &GitRepo,
    template: serde_json::Value,
    inventory: Option<&str>,
) -> (i64, i64) {
    let mut project = ProjectFixture::new("bench")
        .git_url(&repo.url())
        .template(template);
    if let Some(text) = inventory {
        project = project.inventory(json!({"inventory": text}));
    }
    let project = project.create(api).await;
    (project.id, project.template())
}

async fn runners(ralf: &str, n: usize, parallel: usize) {
    println!(
        "runners: {n} bash tasks (echo ok) on PostgreSQL, each executor {parallel} at a time, \
         {} cores",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    for count in [0, 1, 2, 4] {
        let rate = runners_round(ralf, n, parallel, count).await;
        let who = match count {
            0 => "the server itself (baseline)".to_string(),
            1 => "1 runner process".to_string(),
            c => format!("{c} runner processes"),
        };
        println!("  {who:<30} {rate:>7.1} tasks/s");
    }
}

/// One round: a fresh database, `count` runners (0: the server runs the tasks); tasks/s.
async fn runners_round(ralf: &str, n: usize, parallel: usize, count: usize) -> f64 {
    let repo = GitRepo::new(&[("echo.sh", "echo ok\n")]);
    let server = TestServer::start_with(Backend::Postgres, |s| {
        s.use_remote_runner = count > 0;
        s.max_parallel_tasks = if count == 0 { parallel as u32 } else { 0 };
    })
    .await;
    let api = server.admin().await;
    let (project, template) = bench_project(
        &api,
        &repo,
        json!({"name": "echo", "app": "bash", "playbook": "echo.sh", "allow_parallel_tasks": true}),
        None,
    )
    .await;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut processes = Vec::new();
    for i in 0..count {
        let token = api
            .create("/api/runners", json!({"name": format!("bench-{i}")}))
            .await["token"]
            .as_str()
            .expect("runner token")
            .to_string();
        processes.push(ralf_testkit::RunnerProcess::start(
            ralf,
            &server.url,
            &token,
            parallel as u32,
            &path,
        ));
    }
    let setup = Setup {
        server,
        api,
        project,
        template,
        _repo: repo,
    };
    let tasks = format!("/api/project/{project}/tasks");
    // Warm up: every executor has fetched the repository once.
    let mut warm = Vec::new();
    for _ in 0..(count.max(1) * parallel) {
        warm.push(
            setup
                .api
                .create(&tasks, json!({"template_id": template}))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    for id in warm {
        wait_finished(&setup, id).await;
    }
    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(
            setup
                .api
                .create(&tasks, json!({"template_id": template}))
                .await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut failed = 0;
    for id in &ids {
        if wait_finished(&setup, *id).await != "success" {
            failed += 1;
        }
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    if failed > 0 {
        println!("  ({failed} of {n} tasks not successful)");
    }
    drop(processes);
    setup.server.stop().await;
    rate
}
