//! The client commands of the built binary against a real `ralf server` started here: login,
//! listing, `run --wait --follow` and its exit codes, survey checks, stop, confirm and reject,
//! `--json`, and `task logs --follow` across a server killed and restarted.
//!
//! Each client runs with an empty environment but `HOME`/`XDG_CONFIG_HOME` in a temp dir, so
//! nothing of the developer's own configuration takes part.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use ralf_testkit::{Api, GitRepo, free_port, json};
use serde_json::Value;

use crate::RALF;

const ADMIN: &str = "admin";
const PASSWORD: &str = "cli-test-password";
const WAIT: Duration = Duration::from_secs(60);

const HELLO_SH: &str = "echo 'hello from ralf'\nprintf '\\033[32mgreen\\033[0m text\\n'\necho \"who=${who:-nobody}\"\necho 'the end'\n";
const FAIL_SH: &str = "echo 'about to fail'\nexit 3\n";
const SLEEP_SH: &str = "echo 'sleeping'\nsleep 300\n";
const COUNT_SH: &str = "for i in $(seq 1 200); do echo \"count $i\"; sleep 0.1; done\n";
const MAIN_TF: &str = "variable \"greeting\" {\n  default = \"hi\"\n}\n\noutput \"message\" {\n  value = \"${var.greeting} from ralf\"\n}\n";

/// `.venv/bin` (terraform) first, then the test's own `PATH`.
fn server_path() -> String {
    let venv = std::env::var_os("RALF_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let mut dirs = vec![venv.join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

/// A `ralf server` process on a data directory and a port of its own choosing; killed
/// (SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    async fn start(data: &Path, port: u16) -> Server {
        let child = Command::new(RALF)
            .arg("server")
            .env_clear()
            .env("PATH", server_path())
            .env("HOME", data)
            .env("RALF_DATA_DIR", data)
            .env("SEMAPHORE_PORT", port.to_string())
            .env("RALF_ADMIN_LOGIN", ADMIN)
            .env("RALF_ADMIN_PASSWORD", PASSWORD)
            .env(
                "RALF_ACCESS_KEY_ENCRYPTION",
                ralf_testkit::TEST_ENCRYPTION_KEY,
            )
            .env("RALF_LOG", "warn")
            .spawn()
            .expect("spawn ralf server");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = ralf_testkit::reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/api/ping", server.url)).send().await
                && r.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ralf server on port {port} did not start");
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGKILL: the server gets no chance to finish anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with one project: a repository of scripts and a Terraform configuration, and a
/// template for each; plus a home for the client's configuration.
struct World {
    home: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    api: Api,
    project: i64,
    templates: HashMap<&'static str, i64>,
    _repo: GitRepo,
}

impl World {
    async fn new() -> World {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("data");
        let server = Server::start(&data, free_port()).await;
        let repo = GitRepo::new(&[
            ("hello.sh", HELLO_SH),
            ("fail.sh", FAIL_SH),
            ("sleep.sh", SLEEP_SH),
            ("count.sh", COUNT_SH),
            ("infra/main.tf", MAIN_TF),
        ]);
        let api = admin_api(&server.url).await;
        let id = |v: Value| v["id"].as_i64().expect("id");
        let project = id(api.create("/api/projects", json!({"name": "demo"})).await);
        let base = format!("/api/project/{project}");
        let key = id(api
            .create(
                &format!("{base}/keys"),
                json!({"name": "none", "type": "none"}),
            )
            .await);
        let repository = id(api
            .create(
                &format!("{base}/repositories"),
                json!({"name": "scripts", "git_url": repo.url(), "git_branch": "main", "ssh_key_id": key}),
            )
            .await);
        let inventory = id(api
            .create(
                &format!("{base}/inventory"),
                json!({"name": "local", "type": "static", "inventory": "localhost"}),
            )
            .await);
        let mut templates = HashMap::new();
        let survey = json!([
            {"name": "who", "title": "Who", "type": "", "required": true},
            {"name": "color", "title": "Colour", "type": "enum", "required": false,
             "values": [{"name": "red", "value": "red"}, {"name": "blue", "value": "blue"}]}
        ]);
        for (name, app, playbook, extra) in [
            ("hello", "bash", "hello.sh", json!({})),
            ("fail", "bash", "fail.sh", json!({})),
            ("sleeper", "bash", "sleep.sh", json!({})),
            ("count", "bash", "count.sh", json!({})),
            ("greet", "bash", "hello.sh", json!({"survey_vars": survey})),
            ("infra", "terraform", "infra", json!({})),
        ] {
            let mut body = json!({"name": name, "app": app, "playbook": playbook,
                                  "repository_id": repository, "inventory_id": inventory});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            templates.insert(
                name,
                id(api.create(&format!("{base}/templates"), body).await),
            );
        }
        World {
            home,
            data,
            server,
            api,
            project,
            templates,
            _repo: repo,
        }
    }

    /// `ralf` with this world's home and nothing else of the environment but `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(RALF);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn ralf(&self, args: &[&str]) -> Run {
        self.ralf_env(args, &[])
    }

    fn ralf_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run(self.command(args, env).output().unwrap())
    }

    /// Starts `ralf` in the background, its output captured.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn login(&self) {
        let mut child = self
            .command(
                &[
                    "login",
                    "--url",
                    &self.server.url,
                    "--user",
                    ADMIN,
                    "--password-stdin",
                ],
                &[],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = Run(child.wait_with_output().unwrap());
        out.code(0);
        assert!(out.stdout().contains("Default project: demo"), "{out:?}");
    }

    /// The stored output of a task, as `ralf` prints it off a terminal (colours stripped).
    async fn output(&self, task: i64) -> Vec<String> {
        self.api
            .output_lines(self.project, task)
            .await
            .iter()
            .map(|l| strip(l))
            .collect()
    }

    async fn task(&self, task: i64) -> Value {
        self.api
            .get(&format!("/api/project/{}/tasks/{task}", self.project))
            .await
            .body
    }

    /// The newest task of a template, once there is one.
    async fn newest_task(&self, template: &str) -> i64 {
        let id = self.templates[template];
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let tasks = self
                .api
                .get(&format!(
                    "/api/project/{}/tasks?template_id={id}&limit=1",
                    self.project
                ))
                .await
                .body;
            if let Some(task) = tasks.as_array().and_then(|a| a.first()) {
                return task["id"].as_i64().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no task of {template}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_status(&self, task: i64, status: &str) -> Value {
        self.api.wait_status(self.project, task, status, WAIT).await
    }
}

async fn admin_api(url: &str) -> Api {
    let cookie = Api::new(url, None);
    let r = cookie
        .post(
            "/api/auth/login",
            json!({"auth": ADMIN, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let token = cookie.create("/api/user/tokens", json!({})).await;
    Api::new(url, Some(token["id"].as_str().unwrap().to_string()))
}

fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A finished `ralf` run.
struct Run(Output);

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.0.status.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn lines(&self) -> Vec<String> {
        self.stdout().lines().map(str::to_string).collect()
    }
    #[track_caller]
    fn code(&self, code: i32) -> &Run {
        assert_eq!(self.0.status.code(), Some(code), "{self:?}");
        self
    }
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Waits for a background `ralf` and returns how it ended.
fn finish(child: Child) -> Run {
    Run(child.wait_with_output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_logs_in_lists_runs_and_follows() {
    let world = World::new().await;
    world.login();
    let config = world.home.path().join("config/ralf/config.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
    }
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("token = ")
    );

    assert!(world.ralf(&["ping"]).code(0).stdout().starts_with("pong"));
    let info = world.ralf(&["info", "--json"]).code(0).json();
    assert_eq!(info["user"]["username"], ADMIN);
    assert_eq!(info["capabilities"]["task_stream"], true);
    let projects = world.ralf(&["project", "ls", "--json"]).code(0).json();
    assert_eq!(projects[0]["name"], "demo");
    let listed = world.ralf(&["template", "ls"]).code(0).stdout();
    assert!(
        listed.starts_with("ID") && listed.contains("greet") && listed.contains("terraform"),
        "{listed}"
    );
    let templates = world.ralf(&["template", "ls", "--json"]).code(0).json();
    assert_eq!(templates.as_array().unwrap().len(), 6);
    let shown = world.ralf(&["template", "show", "greet"]).code(0).stdout();
    assert!(
        shown.contains("who") && shown.contains("red|blue"),
        "{shown}"
    );

    // run --wait --follow: the log as stored (colours stripped off a terminal), exit 0.
    let run = world.ralf(&["run", "hello", "--wait", "--follow"]);
    run.code(0);
    let task = world.newest_task("hello").await;
    assert_eq!(run.lines(), world.output(task).await, "{run:?}");
    assert!(run.lines().contains(&"green text".to_string()), "{run:?}");
    assert!(
        run.stderr()
            .contains(&format!("Task {task} (hello) success")),
        "{run:?}"
    );
    // Colours are kept when asked for.
    let coloured = world.ralf(&["run", "hello", "--follow", "--color", "always"]);
    assert!(
        coloured.code(0).stdout().contains("\u{1b}[32mgreen"),
        "{coloured:?}"
    );

    // A failing task: exit 1, and --json gives the task.
    let failed = world.ralf(&["run", "fail", "--wait", "--json"]);
    assert_eq!(failed.code(1).json()["status"], "error");
    let failed_id = failed.json()["id"].as_i64().unwrap();

    // Clear messages and distinct codes for what cannot be done.
    let unknown = world.ralf(&["run", "helo"]);
    assert!(
        unknown
            .code(4)
            .stderr()
            .contains("no template called \"helo\""),
        "{unknown:?}"
    );
    assert!(unknown.stderr().contains("did you mean") || unknown.stderr().contains("templates:"));
    let bad_flag = world.ralf(&["run", "hello", "--bogus"]);
    assert!(
        bad_flag.code(64).stderr().contains("--bogus"),
        "{bad_flag:?}"
    );
    let bad_status = world.ralf(&["task", "ls", "--status", "finished"]);
    assert!(
        bad_status.code(64).stderr().contains("not a task status"),
        "{bad_status:?}"
    );
    world.ralf(&["run", "hello", "--timeout", "soon"]).code(64);

    // Survey answers are checked before a task is created.
    let before = world
        .ralf(&["task", "ls", "--json", "-n", "100"])
        .code(0)
        .json();
    let missing = world.ralf(&["run", "greet"]);
    assert!(
        missing
            .code(64)
            .stderr()
            .contains("survey variable who is required"),
        "{missing:?}"
    );
    let unknown_var = world.ralf(&["run", "greet", "--var", "whom=x"]);
    assert!(
        unknown_var
            .code(64)
            .stderr()
            .contains("no survey variable \"whom\""),
        "{unknown_var:?}"
    );
    let bad_enum = world.ralf(&["run", "greet", "--var", "who=bob", "--var", "color=green"]);
    assert!(
        bad_enum.code(64).stderr().contains("must be one of"),
        "{bad_enum:?}"
    );
    let after = world
        .ralf(&["task", "ls", "--json", "-n", "100"])
        .code(0)
        .json();
    assert_eq!(before, after, "no task was created");
    let answered = world.ralf(&[
        "run",
        "greet",
        "--var",
        "who=bob",
        "--var",
        "color=red",
        "-e",
        "extra=1",
        "-m",
        "from the cli",
        "--wait",
        "--json",
    ]);
    let task_json = answered.code(0).json();
    let env: Value = serde_json::from_str(task_json["environment"].as_str().unwrap()).unwrap();
    assert_eq!(env, json!({"who": "bob", "color": "red", "extra": "1"}));
    assert_eq!(task_json["message"], "from the cli");

    // Task history, filtered; show; logs.
    let errors = world
        .ralf(&["task", "ls", "--status", "error", "--json"])
        .code(0)
        .json();
    let errors = errors.as_array().unwrap();
    assert!(!errors.is_empty() && errors.iter().all(|t| t["status"] == "error"));
    let of_hello = world
        .ralf(&["task", "ls", "--template", "hello", "--json"])
        .code(0)
        .json();
    assert_eq!(of_hello.as_array().unwrap().len(), 2);
    let table = world.ralf(&["task", "ls", "-n", "2"]).code(0).lines();
    assert_eq!(table.len(), 3, "{table:?}");
    assert!(
        table[0].starts_with("ID") && table[1].contains("greet"),
        "{table:?}"
    );
    let shown = world
        .ralf(&["task", "show", &failed_id.to_string(), "--json"])
        .code(0)
        .json();
    assert_eq!(shown["status"], "error");
    let logs = world.ralf(&["task", "logs", &task.to_string()]);
    assert_eq!(logs.code(0).lines(), world.output(task).await);
    let logs = world
        .ralf(&["task", "logs", &task.to_string(), "--json"])
        .code(0)
        .json();
    assert_eq!(logs[0]["index"], 0);
    world.ralf(&["task", "show", "999999"]).code(4);

    // Where the settings come from: flags beat RALF_*, which beat SEMAPHORE_*, which beat
    // the stored login; a stored token never goes to another server.
    let token = world.api.token.clone().unwrap();
    let bad = world.ralf_env(&["info"], &[("SEMAPHORE_API_TOKEN", "not-a-token")]);
    assert!(bad.code(4).stderr().contains("ralf login"), "{bad:?}");
    world
        .ralf_env(
            &["info"],
            &[
                ("SEMAPHORE_API_TOKEN", "not-a-token"),
                ("RALF_API_TOKEN", &token),
            ],
        )
        .code(0);
    world
        .ralf_env(
            &["info", "--token", &token],
            &[("RALF_API_TOKEN", "not-a-token")],
        )
        .code(0);
    let other = format!("http://127.0.0.1:{}", free_port());
    let away = world.ralf_env(
        &["template", "ls", "--retries", "1", "--retry-wait", "0.05"],
        &[("SEMAPHORE_URL", &other)],
    );
    assert!(away.code(5).stderr().contains("cannot reach"), "{away:?}");
    assert!(away.stderr().contains("trying again"), "{away:?}");
    world.ralf_env(&["task", "ls", "-p", "nope"], &[]).code(4);
    world
        .ralf_env(&["task", "ls"], &[("SEMAPHORE_PROJECT_ID", "demo")])
        .code(0);

    // --timeout ends the wait with 3; the task goes on.
    let timed = world.ralf(&["run", "sleeper", "--wait", "--timeout", "1"]);
    assert!(timed.code(3).stderr().contains("it goes on"), "{timed:?}");
    let sleeper = world.newest_task("sleeper").await;
    world
        .ralf(&["task", "stop", &sleeper.to_string(), "--force"])
        .code(0);
    world.wait_status(sleeper, "stopped").await;

    let completion = world.ralf(&["completions", "bash"]).code(0).stdout();
    assert!(completion.contains("_ralf"), "{completion}");
    let help = world.ralf(&["--help"]).code(0).stdout();
    assert!(help.contains("Exit codes") && help.contains("64"), "{help}");

    world.ralf(&["logout"]).code(0);
    world.ralf(&["info"]).code(4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_confirm_and_reject() {
    let world = World::new().await;
    world.login();

    // Stop: a follower sees the task to its end and exits 2.
    let started = world.ralf(&["run", "sleeper", "--json"]).code(0).json();
    let id = started["id"].as_i64().unwrap().to_string();
    let follower = world.spawn(&["task", "logs", &id, "--follow"]);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !world
        .output(id.parse().unwrap())
        .await
        .contains(&"sleeping".to_string())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task does not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = world.ralf(&["task", "stop", &id]).code(0).stdout();
    assert!(stopped.contains(&format!("Task {id}")), "{stopped}");
    let followed = finish(follower);
    followed.code(2);
    assert_eq!(
        followed.lines(),
        world.output(id.parse().unwrap()).await,
        "{followed:?}"
    );
    assert!(followed.stdout().contains("sleeping"));
    world.ralf(&["task", "stop", &id]).code(4);

    // Confirm: the plan's summary first, then the waiting run goes on to success.
    let waiting = world.spawn(&["run", "infra", "--wait"]);
    let task = world.newest_task("infra").await;
    world.wait_status(task, "waiting_confirmation").await;
    // Long enough for the waiting run to see the status (it polls once a second at most).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let confirmed = world.ralf(&["task", "confirm", &task.to_string()]);
    let text = confirmed.code(0).stdout();
    assert!(
        text.contains(&format!("Plan of task {task}")),
        "{confirmed:?}"
    );
    assert!(
        text.contains("Changes to Outputs") && text.contains("hi from ralf"),
        "{confirmed:?}"
    );
    let run = finish(waiting);
    run.code(0);
    assert!(
        run.stderr().contains("waits for its plan to be confirmed"),
        "{run:?}"
    );
    assert_eq!(world.task(task).await["status"], "success");

    // Reject: the waiting run ends with 2; a rejected task cannot be confirmed.
    // (A new value, so there is something to plan: an unchanged state needs no confirmation.)
    let waiting = world.spawn(&["run", "infra", "--follow", "-e", "greeting=bye"]);
    let deadline = tokio::time::Instant::now() + WAIT;
    let rejected_task = loop {
        let newest = world.newest_task("infra").await;
        if newest != task {
            break newest;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    world
        .wait_status(rejected_task, "waiting_confirmation")
        .await;
    let rejected = world.ralf(&["task", "reject", &rejected_task.to_string(), "--json"]);
    let answer = rejected.code(0).json();
    assert_eq!(answer["task"]["status"], "rejected");
    assert!(!answer["plan"].as_array().unwrap().is_empty());
    let run = finish(waiting);
    run.code(2);
    assert_eq!(run.lines(), world.output(rejected_task).await, "{run:?}");
    let again = world.ralf(&["task", "confirm", &rejected_task.to_string()]);
    assert!(
        again
            .code(4)
            .stderr()
            .contains("only a task waiting for confirmation"),
        "{again:?}"
    );
}

/// A background `ralf` whose standard output is read as it comes.
struct Follower {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Follower {
    fn spawn(world: &World, args: &[&str]) -> Follower {
        let mut child = world.spawn(args);
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Follower {
            child,
            lines,
            reader,
        }
    }

    /// How many `count N` lines it has printed so far.
    fn counted(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.starts_with("count ")).count()
    }

    fn finish(self) -> (Run, Vec<String>) {
        let run = finish(self.child);
        self.reader.join().unwrap();
        let lines = self.lines.lock().unwrap().clone();
        (run, lines)
    }
}

/// Counts output lines: each stored line must be printed exactly once.
#[track_caller]
fn assert_each_line_once(printed: &[String], stored: &[String], how: &str) {
    assert_eq!(printed, stored, "{how}: printed vs stored");
    let counts: Vec<&String> = printed.iter().filter(|l| l.starts_with("count ")).collect();
    assert!(counts.len() >= 8, "{how}: {printed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_resumes_across_a_server_restart() {
    let mut world = World::new().await;
    world.login();
    let started = world.ralf(&["run", "count", "--json"]).code(0).json();
    let task = started["id"].as_i64().unwrap();
    let id = task.to_string();
    // Two followers: ralf's live stream, and polling (what a Semaphore server gets).
    let streamed = Follower::spawn(
        &world,
        &["task", "logs", &id, "--follow", "--retry-wait", "0.2"],
    );
    let polled = Follower::spawn(
        &world,
        &[
            "task",
            "logs",
            &id,
            "--follow",
            "--poll",
            "--retry-wait",
            "0.2",
        ],
    );

    // Kill the server mid-task, once both followers have printed some lines.
    let deadline = tokio::time::Instant::now() + WAIT;
    while streamed.counted() < 8 || polled.counted() < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the followers print nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let port = world.server.port();
    world.server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.server = Server::start(&world.data, port).await;

    let (streamed, streamed_lines) = streamed.finish();
    let (polled, polled_lines) = polled.finish();
    // The token made before the crash is still good: it is in the database.
    let api = &world.api;
    let end = api.wait_task(world.project, task, WAIT).await;
    assert_eq!(
        end["status"], "error",
        "the restarted server fails the interrupted task"
    );
    let stored: Vec<String> = api
        .output_lines(world.project, task)
        .await
        .iter()
        .map(|l| strip(l))
        .collect();
    assert!(stored.last().unwrap().contains("restarted"), "{stored:#?}");
    streamed.code(1);
    polled.code(1);
    assert_each_line_once(&streamed_lines, &stored, "stream");
    assert_each_line_once(&polled_lines, &stored, "polling");
    assert!(streamed.stderr().contains("trying again"), "{streamed:?}");
}
