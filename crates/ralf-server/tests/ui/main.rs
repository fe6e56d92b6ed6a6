//! The web UI in a real browser (Debian's chromium, headless, driven over WebDriver): a person
//! logs in, creates a project, a repository and a template, runs it and watches its lines
//! arrive, stops it, confirms a Terraform plan, and starts a catalog rollout, approves its
//! gated service and sees it finish. One browser serves the whole run.
//!
//! Without chromium and chromedriver the test is skipped with a message, unless `CI` is set
//! (then it fails). `RALF_UI_SCREENSHOTS=<dir>` saves a screenshot of each page there
//! (scripts/ui-screenshots.sh refreshes docs/ui/ so).

mod webdriver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ralf_testkit::{Backend, GitRepo, ProjectFixture, TestServer, json};
use webdriver::{Browser, CHROMEDRIVER, CHROMIUM};

/// A script that prints a numbered line every tenth of a second for a minute.
const TICKER: &str = "for i in $(seq 1 600); do echo \"tick $i\"; sleep 0.1; done\n";

/// A script that prints 100,000 lines at once.
const FLOOD: &str = "seq -f 'flood %.0f' 1 100000\n";

const DEPLOY: &str = "echo \"deploying $RALF_SERVICE\"\necho \"deployed $RALF_SERVICE\"\n";
const SMOKE: &str = "echo \"smoke of $RALF_SERVICE passed\"\n";

const MAIN_TF: &str = "variable \"greeting\" {\n  type    = string\n  default = \"hello\"\n}\n\noutput \"message\" {\n  value = var.greeting\n}\n";

/// Where screenshots go, when asked for.
fn screenshots() -> Option<PathBuf> {
    std::env::var_os("RALF_UI_SCREENSHOTS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// The Python environment with terraform (see the execution tests), for the plan.
fn venv_bin() -> PathBuf {
    let dir = match std::env::var_os("RALF_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
    };
    let bin = dir.join("bin");
    assert!(
        bin.join("terraform").is_file(),
        "{} is missing: the UI test confirms a Terraform plan and needs the Python environment \
         (scripts/python-env.sh, or RALF_VENV)",
        bin.join("terraform").display()
    );
    bin
}

struct Session {
    browser: Browser,
    base: String,
    shots: Option<PathBuf>,
}

impl Session {
    async fn open(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base)).await;
    }

    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            // Let the page settle (fonts, the log's first frame).
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.browser.screenshot(dir, name).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_runs_ralf_from_the_browser() {
    let missing = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect::<Vec<_>>();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {missing:?} are missing: install chromium and chromium-driver (scripts/test does)"
        );
        eprintln!(
            "SKIPPED: the browser test of the web UI needs {missing:?} (apt-get install chromium chromium-driver)"
        );
        return;
    }
    let bin = venv_bin();
    let mut path = vec![bin];
    if let Some(p) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&p));
    }
    let exec_path = std::env::join_paths(path).expect("PATH");
    let server = TestServer::start_with(Backend::Sqlite, move |s| {
        s.exec_path = Some(exec_path);
    })
    .await;
    let repo = GitRepo::new(&[
        ("ticker.sh", TICKER),
        ("flood.sh", FLOOD),
        ("deploy.sh", DEPLOY),
        ("smoke.sh", SMOKE),
        ("infra/main.tf", MAIN_TF),
        (
            "catalog/projects/db.yaml",
            "name: db\napply: Deploy\nsmoke: Smoke\n",
        ),
        (
            "catalog/projects/web.yaml",
            "name: web\napply: Deploy\ndepends_on: [db]\napprove: true\n",
        ),
    ]);
    let s = Session {
        browser: Browser::start().await,
        base: server.url.clone(),
        shots: screenshots(),
    };
    let b = &s.browser;

    // Not logged in: the login page, which answers a wrong password next to the form.
    s.open("/").await;
    b.find("h1", "Log in to ralf").await;
    assert_eq!(b.path().await, "/login");
    b.fill("Login or e-mail", ralf_testkit::ADMIN_LOGIN).await;
    b.fill("Password", "wrong").await;
    b.click("button", "Log in").await;
    b.sees("Wrong login or password.").await;
    s.shot("login").await;
    b.fill("Password", ralf_testkit::ADMIN_PASSWORD).await;
    b.click("button", "Log in").await;
    b.find("h1", "Dashboard").await;

    // A project, made in the browser.
    b.click("a", "Projects").await;
    b.fill("Name", "Web shop").await;
    b.click("button", "Create project").await;
    b.find("h1", "Templates").await;
    let project_path = b.path().await;
    let project_id: i64 = project_path
        .split('/')
        .nth(2)
        .and_then(|id| id.parse().ok())
        .expect("a project page");

    // A repository, through the generic resource form: the API's refusal is shown at its field.
    b.click("nav.sub a", "Repositories").await;
    b.click("a", "New repository").await;
    b.fill("Name", "shop").await;
    b.fill("Git URL", "").await;
    b.fill("Branch", "main").await;
    b.click("button", "Create").await;
    let beside_field = b
        .wait_for(
            "an error beside the Git URL",
            "const e = [...document.querySelectorAll('.field-error')].find(e => e.textContent); return e ? e.closest('.field').querySelector('label').textContent : null",
            json!([]),
        )
        .await;
    assert!(
        beside_field
            .as_str()
            .unwrap_or_default()
            .starts_with("Git URL"),
        "the error is not beside the Git URL: {beside_field}"
    );
    s.shot("resource-form").await;
    b.fill("Git URL", &repo.url()).await;
    b.click("button", "Create").await;
    b.find("th a", "shop").await;
    s.shot("resources").await;

    // An environment with a secret: written once, never shown again.
    b.click("nav.sub a", "Environments").await;
    b.click("a", "New environment").await;
    b.fill("Name", "prod").await;
    b.type_into("input[aria-label='New secret 1: name']", "DEPLOY_TOKEN")
        .await;
    b.type_into("input[aria-label='New secret 1: value']", "s3cret-value")
        .await;
    b.click("button", "Create").await;
    b.click("th a", "prod").await;
    b.find(".secrets-box th", "DEPLOY_TOKEN").await;
    let shown = b
        .script(
            "return document.documentElement.outerHTML.includes('s3cret-value') || [...document.querySelectorAll('input')].some(i => i.value.includes('s3cret'))",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(false), "the secret's value is on the page");

    // A template, made in the browser, run from the list: straight to its task.
    b.click("nav.sub a", "Templates").await;
    b.click("a", "New template").await;
    b.fill("Name", "Ticker").await;
    b.fill("App", "bash").await;
    b.fill("Repository", "shop").await;
    b.fill("Playbook", "ticker.sh").await;
    b.click("button", "Create").await;
    b.find("h1", "Run Ticker").await;
    s.shot("run").await;
    b.click("button", "Run").await;
    b.find("h1", "Task #").await;
    b.find(".log .line", "tick 3").await;
    b.find(".log .line", "tick 10").await;
    s.shot("task").await;
    b.click("button", "Stop").await;
    b.find(".badge", "stopped").await;

    // The history lists it, filtered by status.
    s.open(&format!("/project/{project_id}/history?status=stopped"))
        .await;
    b.find("td .badge", "stopped").await;
    s.shot("history").await;

    // A webhook (Semaphore's integration) through the same resource view: it starts the
    // template, and its alias is the URL to give the sender.
    b.click("nav.sub a", "Integrations").await;
    b.click("a", "New integration").await;
    b.fill("Name", "on push").await;
    b.fill("Template it starts", "Ticker").await;
    b.click("button", "Create").await;
    b.click("th a", "on push").await;
    b.click("button", "Add an alias").await;
    let alias = b
        .wait_for(
            "the alias's URL",
            "const c = document.querySelector('ul.list code'); return c ? c.textContent : null",
            json!([]),
        )
        .await;
    let alias = alias.as_str().unwrap_or_default().to_string();
    assert!(
        alias.contains("/api/integrations/"),
        "no alias URL: {alias}"
    );
    let stored = server
        .admin()
        .await
        .get(&format!("/api/project/{project_id}/integrations"))
        .await
        .body;
    assert_eq!(stored[0]["name"], "on push", "{stored}");
    assert!(stored[0]["template_id"].as_i64().is_some(), "{stored}");

    // A Terraform plan waits for confirmation; the task page shows it and confirms it.
    let api = server.admin().await;
    let fixture = ProjectFixture::new("infra")
        .git_url(&repo.url())
        .inventory(json!({"inventory": "localhost"}))
        .create(&api)
        .await;
    let infra = fixture.id;
    let tf = fixture
        .add_template(
            &api,
            json!({"name": "Infra", "app": "terraform", "playbook": "infra"}),
        )
        .await;
    let task = api
        .create(
            &format!("/api/project/{infra}/tasks"),
            json!({"template_id": tf}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    s.open(&format!("/project/{infra}/tasks/{task}")).await;
    b.find("h2", "The plan is waiting for confirmation").await;
    b.find(".log .line", "Changes to Outputs").await;
    s.shot("plan").await;
    // The dashboard lists the plan among those waiting for approval.
    s.open("/").await;
    b.find("section li", &format!("#{task}")).await;
    s.shot("dashboard").await;
    s.open(&format!("/project/{infra}/tasks/{task}")).await;
    b.click("button", "Confirm and apply").await;
    b.find(".badge", "success").await;
    b.find(".log .line", "Apply complete").await;

    // A long log: every line arrives, only those in view are in the page, search finds any.
    let flood = fixture
        .add_template(
            &api,
            json!({"name": "Flood", "app": "bash", "playbook": "flood.sh"}),
        )
        .await;
    let task = api
        .create(
            &format!("/api/project/{infra}/tasks"),
            json!({"template_id": flood}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    s.open(&format!("/project/{infra}/tasks/{task}")).await;
    b.find(".badge", "success").await;
    // The script's lines and ralf's own around them.
    b.wait_for(
        "all 100,000 lines",
        "const c = [...document.querySelectorAll('.log-tools span')].find(s => / lines$/.test(s.textContent)); return c && Number(c.textContent.replace(/[^0-9]/g, '')) > 100000",
        json!([]),
    )
    .await;
    let in_page = b
        .script(
            "return document.querySelectorAll('.log .line').length",
            json!([]),
        )
        .await
        .as_u64()
        .unwrap_or_default();
    assert!(
        in_page < 500,
        "{in_page} lines of the log are in the page; only those in view should be"
    );
    b.type_into(".log-search input", "flood 99999\u{E007}")
        .await;
    b.find(".log .line.current", "flood 99999").await;
    s.shot("long-log").await;
    // The page holds only some of the lines; the others are read when scrolled or searched to.
    b.script(
        "const i = document.querySelector('.log-search input'); i.value = ''; i.dispatchEvent(new Event('input')); return true",
        json!([]),
    )
    .await;
    b.type_into(".log-search input", "flood 50000\u{E007}")
        .await;
    b.find(".log .line.current", "flood 50000").await;
    b.script(
        "const l = document.querySelector('.log'); l.scrollTop = 25000 * 20 - l.clientHeight / 2; return true",
        json!([]),
    )
    .await;
    b.wait_for(
        "lines 25,000 and 25,001 read from the server, in order",
        "const n = (i) => { const r = document.querySelector(`.log .line[data-index=\"${i}\"]:not(.pending)`); const m = r && r.textContent.match(/flood (\\d+)$/); return m ? Number(m[1]) : null; };
         const a = n(25000), b = n(25001); return a !== null && b === a + 1 && a > 24980 && a <= 25001",
        json!([]),
    )
    .await;
    b.click("button", "Follow").await;
    b.find(".log .line", "flood 100000").await;
    let in_page = b
        .script(
            "return document.querySelectorAll('.log .line').length",
            json!([]),
        )
        .await
        .as_u64()
        .unwrap_or_default();
    assert!(
        in_page < 500,
        "{in_page} lines of the log are in the page after scrolling; only those in view should be"
    );

    // The catalog: a rollout started in the browser, its gated service approved, to its end.
    for (name, script) in [("Deploy", "deploy.sh"), ("Smoke", "smoke.sh")] {
        fixture
            .add_template(
                &api,
                json!({"name": name, "app": "bash", "playbook": script, "allow_parallel_tasks": true}),
            )
            .await;
    }
    let r = api
        .put(
            &format!("/api/project/{infra}/catalog/settings"),
            json!({"repository_id": fixture.repository}),
        )
        .await;
    assert!(r.status.is_success(), "catalog settings: {}", r.text);
    s.open(&format!("/project/{infra}/catalog")).await;
    b.find("svg.graph text", "web").await;
    b.find("th", "db").await;
    s.shot("catalog").await;
    b.click("button", "Roll out everything").await;
    b.find("h1", "Rollout #").await;
    b.click("button", "Approve web").await;
    b.find(".head .badge", "succeeded").await;
    b.find(".step-list", "smoke").await;
    s.shot("rollout").await;

    // The dashboard and the rest, for the screenshots; a phone-sized window too.
    s.open("/").await;
    b.find("h2", "Catalog services").await;
    b.find("a", "web").await;
    b.prefer_dark(true).await;
    s.shot("dark-dashboard").await;
    s.open(&format!("/project/{infra}/catalog/rollouts/1"))
        .await;
    b.find(".head .badge", "succeeded").await;
    s.shot("dark-rollout").await;
    b.prefer_dark(false).await;
    s.open(&format!("/project/{project_id}/templates")).await;
    b.find("th a", "Ticker").await;
    s.shot("templates").await;
    s.open("/tokens").await;
    b.fill("Name", "ci").await;
    b.click("button", "Create token").await;
    b.find(".card", "Copy the token now").await;
    s.shot("tokens").await;
    b.resize(390, 844).await;
    s.open(&format!("/project/{project_id}/history")).await;
    b.find("h1", "Task history").await;
    s.shot("phone-history").await;

    // Logging out ends the session: the next page is the login page.
    b.click("button", "Menu").await;
    b.click("button", "Log out").await;
    b.find("h1", "Log in to ralf").await;
    s.open(&format!("/project/{project_id}/templates")).await;
    b.find("h1", "Log in to ralf").await;

    s.browser.quit().await;
    server.stop().await;
}
