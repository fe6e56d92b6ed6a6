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

use ralf_testkit::{Api, ProjectFixture, ServerProcess, TestProject, free_port, json, wait_until};
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

/// A `ralf server` process on a data directory, on `port` when given (a restart where the
/// clients expect it); killed when dropped.
async fn start_server(data: &Path, port: Option<u16>) -> ServerProcess {
    let data = data.display().to_string();
    let mut env = vec![
        ("PATH", server_path()),
        ("HOME", data.clone()),
        ("RALF_DATA_DIR", data),
        ("RALF_ADMIN_LOGIN", ADMIN.to_string()),
        ("RALF_ADMIN_PASSWORD", PASSWORD.to_string()),
        (
            "RALF_ACCESS_KEY_ENCRYPTION",
            ralf_testkit::TEST_ENCRYPTION_KEY.to_string(),
        ),
    ];
    if let Some(port) = port {
        env.push(("SEMAPHORE_PORT", port.to_string()));
    }
    ServerProcess::start(RALF, &env, &[]).await
}

/// A server with one project: a repository of scripts and a Terraform configuration, and a
/// template for each; plus a home for the client's configuration.
struct World {
    home: tempfile::TempDir,
    data: PathBuf,
    server: ServerProcess,
    api: Api,
    project: i64,
    templates: HashMap<&'static str, i64>,
    _made: TestProject,
}

impl World {
    async fn new() -> World {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("data");
        let server = start_server(&data, None).await;
        let api = server.login(ADMIN, PASSWORD).await;
        let survey = json!([
            {"name": "who", "title": "Who", "type": "", "required": true},
            {"name": "color", "title": "Colour", "type": "enum", "required": false,
             "values": [{"name": "red", "value": "red"}, {"name": "blue", "value": "blue"}]}
        ]);
        let templates = [
            ("hello", json!({"playbook": "hello.sh"})),
            ("fail", json!({"playbook": "fail.sh"})),
            ("sleeper", json!({"playbook": "sleep.sh"})),
            ("count", json!({"playbook": "count.sh"})),
            (
                "greet",
                json!({"playbook": "hello.sh", "survey_vars": survey}),
            ),
            ("infra", json!({"app": "terraform", "playbook": "infra"})),
        ];
        let mut fixture = ProjectFixture::new("demo").files(&[
            ("hello.sh", HELLO_SH),
            ("fail.sh", FAIL_SH),
            ("sleep.sh", SLEEP_SH),
            ("count.sh", COUNT_SH),
            ("infra/main.tf", MAIN_TF),
        ]);
        for (name, mut fields) in templates.clone() {
            fields["name"] = json!(name);
            fixture = fixture.template(fields);
        }
        let made = fixture.create(&api).await;
        let names = templates.map(|(name, _)| name);
        World {
            home,
            data,
            server,
            api,
            project: made.id,
            templates: names.into_iter().zip(made.templates.clone()).collect(),
            _made: made,
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
        self.newest_task_but(template, None).await
    }

    /// The newest task of a template once there is one other than `old`.
    async fn newest_task_but(&self, template: &str, old: Option<i64>) -> i64 {
        let id = self.templates[template];
        let path = format!(
            "/api/project/{}/tasks?template_id={id}&limit=1",
            self.project
        );
        wait_until(WAIT, async || {
            let tasks = self.api.get(&path).await.body;
            match tasks[0]["id"].as_i64() {
                Some(task) if Some(task) != old => Ok(task),
                _ => Err(format!("no new task of {template}: {tasks}")),
            }
        })
        .await
    }

    async fn wait_status(&self, task: i64, status: &str) -> Value {
        self.api.wait_status(self.project, task, status, WAIT).await
    }
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
    let follower = Follower::spawn(&world, &["task", "logs", &id, "--follow"]);
    wait_until(WAIT, async || {
        let output = world.output(id.parse().unwrap()).await;
        if output.iter().any(|l| l == "sleeping") {
            Ok(())
        } else {
            Err(format!("the task does not start: {output:#?}"))
        }
    })
    .await;
    let stopped = world.ralf(&["task", "stop", &id]).code(0).stdout();
    assert!(stopped.contains(&format!("Task {id}")), "{stopped}");
    let followed = follower.finish();
    followed.code(2);
    assert_eq!(
        followed.lines(),
        world.output(id.parse().unwrap()).await,
        "{followed:?}"
    );
    assert!(followed.stdout().contains("sleeping"));
    world.ralf(&["task", "stop", &id]).code(4);

    // Confirm: the plan's summary first, then the waiting run goes on to success.
    let waiting = Follower::spawn(&world, &["run", "infra", "--wait"]);
    let task = world.newest_task("infra").await;
    world.wait_status(task, "waiting_confirmation").await;
    // The waiting run has seen the status (it polls once a second at most).
    waiting
        .wait_for_stderr("waits for its plan to be confirmed")
        .await;
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
    let run = waiting.finish();
    run.code(0);
    assert!(
        run.stderr().contains("waits for its plan to be confirmed"),
        "{run:?}"
    );
    assert_eq!(world.task(task).await["status"], "success");

    // Reject: the waiting run ends with 2; a rejected task cannot be confirmed.
    // (A new value, so there is something to plan: an unchanged state needs no confirmation.)
    let waiting = Follower::spawn(&world, &["run", "infra", "--follow", "-e", "greeting=bye"]);
    let rejected_task = world.newest_task_but("infra", Some(task)).await;
    world
        .wait_status(rejected_task, "waiting_confirmation")
        .await;
    let rejected = world.ralf(&["task", "reject", &rejected_task.to_string(), "--json"]);
    let answer = rejected.code(0).json();
    assert_eq!(answer["task"]["status"], "rejected");
    assert!(!answer["plan"].as_array().unwrap().is_empty());
    let run = waiting.finish();
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

/// A background `ralf` whose output is read as it comes.
struct Follower {
    child: Child,
    stdout: Collected,
    stderr: Collected,
}

impl Follower {
    fn spawn(world: &World, args: &[&str]) -> Follower {
        let mut child = world
            .command(args, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Collected::from(child.stdout.take().unwrap());
        let stderr = Collected::from(child.stderr.take().unwrap());
        Follower {
            child,
            stdout,
            stderr,
        }
    }

    /// How many `count N` lines it has printed so far.
    fn counted(&self) -> usize {
        let stdout = self.stdout.text();
        stdout.lines().filter(|l| l.starts_with("count ")).count()
    }

    /// Waits until its standard error says `text`.
    async fn wait_for_stderr(&self, text: &str) {
        wait_until(WAIT, async || {
            let stderr = self.stderr.text();
            if stderr.contains(text) {
                Ok(())
            } else {
                Err(format!("no {text:?} on standard error: {stderr}"))
            }
        })
        .await
    }

    /// Waits for it to end: how it ended and all it printed.
    fn finish(mut self) -> Run {
        let status = self.child.wait().unwrap();
        Run(Output {
            status,
            stdout: self.stdout.finish(),
            stderr: self.stderr.finish(),
        })
    }
}

/// What a pipe said so far, read by a thread of its own.
struct Collected {
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Collected {
    fn from(mut pipe: impl std::io::Read + Send + 'static) -> Collected {
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = bytes.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n) = pipe.read(&mut chunk)
                && n > 0
            {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Collected { bytes, reader }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().unwrap()).into_owned()
    }

    /// Everything, once the pipe is closed.
    fn finish(self) -> Vec<u8> {
        self.reader.join().unwrap();
        std::mem::take(&mut self.bytes.lock().unwrap())
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
    wait_until(WAIT, async || {
        let counted = (streamed.counted(), polled.counted());
        if counted.0 >= 8 && counted.1 >= 8 {
            Ok(())
        } else {
            Err(format!("the followers printed {counted:?} lines"))
        }
    })
    .await;
    let port = world.server.port();
    world.server.kill();
    // Restarted once both followers found the server gone.
    streamed.wait_for_stderr("trying again").await;
    polled.wait_for_stderr("trying again").await;
    world.server = start_server(&world.data, Some(port)).await;

    let streamed = streamed.finish();
    let polled = polled.finish();
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
    assert_each_line_once(&streamed.lines(), &stored, "stream");
    assert_each_line_once(&polled.lines(), &stored, "polling");
    assert!(streamed.stderr().contains("trying again"), "{streamed:?}");
}
