//! The queue: the server's `max_parallel_tasks`, a project's, one running task per template
//! unless the template allows parallel runs, first come first served within the limits, and a
//! new task picked up at once (not at the dispatcher's next look every few seconds).

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::{Project, wait_for_file};

/// `queued.sh <dir> <name> [<partner>]`: logs its start and end in `<dir>/log`; a name with
/// `block` in it waits for `<dir>/release`; with a partner, it waits until the partner runs
/// too (and fails if it never does).
const QUEUED: &str = r#"dir="$1"; name="$2"; partner="$3"
echo "start $name" >> "$dir/log"
touch "$dir/$name-running"
case "$name" in
  *block*) while [ ! -e "$dir/release" ]; do sleep 0.02; done ;;
esac
if [ -n "$partner" ]; then
  for _ in $(seq 1 1500); do [ -e "$dir/$partner-running" ] && break; sleep 0.02; done
  [ -e "$dir/$partner-running" ] || { echo "$partner never ran alongside $name"; exit 1; }
fi
sleep 0.05
echo "end $name" >> "$dir/log"
"#;

struct Queue {
    dir: tempfile::TempDir,
    repo: GitRepo,
}

impl Queue {
    fn new() -> Queue {
        let dir = tempfile::tempdir().unwrap();
        // Tasks see nothing of the machine but this directory, shared with every task (and
        // writable by the unprivileged user they run as).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        Queue {
            dir,
            repo: GitRepo::new(&[("queued.sh", QUEUED)]),
        }
    }

    /// Shares the queue's directory with the server's tasks.
    fn share(&self, settings: &mut ralf_server::Settings) {
        settings.sandbox.shared.push(self.dir.path().to_path_buf());
    }

    /// A template running `queued.sh <dir> <task arguments...>`.
    async fn template(&self, project: &Project, name: &str, parallel: bool) -> i64 {
        project
            .template(
                name,
                "bash",
                "queued.sh",
                json!({"arguments": json!([self.dir.path()]).to_string(),
                       "allow_override_args_in_task": true, "allow_parallel_tasks": parallel}),
            )
            .await
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn release(&self) {
        std::fs::write(self.path("release"), "").unwrap();
    }
}

async fn start(project: &Project, template: i64, args: &[&str]) -> i64 {
    project
        .start(json!({"template_id": template, "arguments": json!(args).to_string()}))
        .await
}

async fn status(project: &Project, task: i64) -> String {
    project.task(task).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn assert_success(project: &Project, task: i64) {
    let (done, lines) = project.finish(task).await;
    assert_eq!(done["status"], "success", "task {task}: {lines:#?}");
}

async fn the_servers_limit_runs_tasks_one_at_a_time_in_order(backend: Backend) {
    let queue = Queue::new();
    let server = TestServer::start_with(backend, |s| {
        s.max_parallel_tasks = 1;
        queue.share(s);
    })
    .await;
    let project = Project::new(&server, &queue.repo).await;
    // Parallel runs allowed and different templates: only the server's limit holds them back.
    let first_template = queue.template(&project, "one", true).await;
    let other_template = queue.template(&project, "two", true).await;
    let blocking = start(&project, first_template, &["block"]).await;
    wait_for_file(&queue.path("block-running")).await;
    let mut later = Vec::new();
    for (i, name) in ["b", "c", "d", "e"].into_iter().enumerate() {
        let template = if i % 2 == 0 {
            other_template
        } else {
            first_template
        };
        later.push(start(&project, template, &[name]).await);
    }
    for &task in &later {
        assert_eq!(status(&project, task).await, "waiting");
    }
    queue.release();
    assert_success(&project, blocking).await;
    for &task in &later {
        assert_success(&project, task).await;
    }
    assert_eq!(
        queue.log(),
        [
            "start block",
            "end block",
            "start b",
            "end b",
            "start c",
            "end c",
            "start d",
            "end d",
            "start e",
            "end e"
        ]
    );
    server.stop().await;
}

async fn a_projects_limit_holds_back_only_its_own_tasks(backend: Backend) {
    let queue = Queue::new();
    let server = TestServer::start_with(backend, |s| queue.share(s)).await;
    let limited = Project::with(&server, &queue.repo.url(), json!({"max_parallel_tasks": 1})).await;
    let free = Project::with(&server, &queue.repo.url(), json!({"name": "free"})).await;
    let limited_template = queue.template(&limited, "limited", true).await;
    let free_template = queue.template(&free, "free", true).await;

    let blocking = start(&limited, limited_template, &["block"]).await;
    wait_for_file(&queue.path("block-running")).await;
    let held = start(&limited, limited_template, &["held"]).await;
    // Queued after the held task, in another project: it runs at once.
    let other = start(&free, free_template, &["other"]).await;
    assert_success(&free, other).await;
    assert_eq!(status(&limited, held).await, "waiting");
    assert!(!queue.path("held-running").exists());

    queue.release();
    assert_success(&limited, blocking).await;
    assert_success(&limited, held).await;
    assert_eq!(
        queue.log(),
        [
            "start block",
            "start other",
            "end other",
            "end block",
            "start held",
            "end held"
        ]
    );
    server.stop().await;
}

async fn one_task_per_template_unless_it_allows_parallel_runs(backend: Backend) {
    let queue = Queue::new();
    let server = TestServer::start_with(backend, |s| queue.share(s)).await;
    let project = Project::new(&server, &queue.repo).await;
    let single = queue.template(&project, "single", false).await;
    let parallel = queue.template(&project, "parallel", true).await;

    let blocking = start(&project, single, &["block"]).await;
    wait_for_file(&queue.path("block-running")).await;
    let held = start(&project, single, &["held"]).await;
    // Each waits until the other runs too: they can only succeed side by side.
    let left = start(&project, parallel, &["left", "right"]).await;
    let right = start(&project, parallel, &["right", "left"]).await;
    assert_success(&project, left).await;
    assert_success(&project, right).await;
    assert_eq!(status(&project, held).await, "waiting");
    assert!(!queue.path("held-running").exists());

    queue.release();
    assert_success(&project, blocking).await;
    assert_success(&project, held).await;
    let log = queue.log();
    let at = |line: &str| log.iter().position(|l| l == line).unwrap();
    assert!(at("start held") > at("end block"), "{log:#?}");
    assert!(at("start left") < at("end right") && at("start right") < at("end left"));
    server.stop().await;
}

fn time(task: &serde_json::Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(task[field].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{field} of {task}: {e}"))
}

async fn a_new_task_is_picked_up_at_once(backend: Backend) {
    let queue = Queue::new();
    let server = TestServer::start_with(backend, |s| queue.share(s)).await;
    let project = Project::new(&server, &queue.repo).await;
    let template = queue.template(&project, "quick", false).await;
    // The dispatcher looks every 2 s anyway; twice in a row, each task must start well before
    // such a look could have found it. Loose on purpose: only "not waiting for a tick".
    for name in ["first", "second"] {
        let task = start(&project, template, &[name]).await;
        let (done, lines) = project.finish(task).await;
        assert_eq!(done["status"], "success", "{lines:#?}");
        let waited = time(&done, "start") - time(&done, "created");
        assert!(
            waited < chrono::Duration::milliseconds(1500),
            "task {name} waited {waited} before it started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    server.stop().await;
}

on_both_backends!(
    the_servers_limit_runs_tasks_one_at_a_time_in_order,
    a_projects_limit_holds_back_only_its_own_tasks,
    one_task_per_template_unless_it_allows_parallel_runs,
    a_new_task_is_picked_up_at_once,
);

/// Two servers on one PostgreSQL database keep a project's limit together: tasks submitted
/// through both, taken by either, run one at a time, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_hold_across_two_servers() {
    let queue = Queue::new();
    let a = TestServer::start_with(Backend::Postgres, |s| queue.share(s)).await;
    let b = TestServer::start_on(a.db.shared(), |s| queue.share(s)).await;
    let project = Project::with(&a, &queue.repo.url(), json!({"max_parallel_tasks": 1})).await;
    let template = queue.template(&project, "shared", true).await;
    let via_b = ralf_testkit::Api::new(&b.url, project.api.token.clone());
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let body = json!({"template_id": template, "arguments": json!([name]).to_string()});
        let task = if i % 2 == 0 {
            project.start(body).await
        } else {
            via_b
                .create(&format!("/api/project/{}/tasks", project.id), body)
                .await["id"]
                .as_i64()
                .unwrap()
        };
        tasks.push(task);
    }
    for &task in &tasks {
        assert_success(&project, task).await;
    }
    // One at a time: every start is followed by its own end before the next start.
    let log = queue.log();
    assert_eq!(log.len(), 2 * names.len(), "{log:#?}");
    for pair in log.chunks(2) {
        let name = pair[0].strip_prefix("start ").expect("a start");
        assert_eq!(pair[1], format!("end {name}"), "{log:#?}");
    }
    let mut ran: Vec<&str> = log
        .iter()
        .filter_map(|l| l.strip_prefix("start "))
        .collect();
    ran.sort();
    assert_eq!(ran, names, "each task once");
    b.stop().await;
    a.stop().await;
}
