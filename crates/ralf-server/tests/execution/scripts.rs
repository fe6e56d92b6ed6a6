//! Bash and Python templates: output, exit codes, variables, secrets.

use std::time::Duration;

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::Project;

const WAIT: Duration = Duration::from_secs(60);

async fn a_bash_task_runs_from_git_and_succeeds(backend: Backend) {
    let repo = GitRepo::new(&[(
        "hello.sh",
        "echo \"hello from $GREETING_TARGET\"\necho to-stderr >&2\n",
    )]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let env = project
        .api
        .create(
            &format!("/api/project/{}/environment", project.id),
            json!({"name": "vars", "json": "{}", "env": "{\"GREETING_TARGET\": \"ralf\"}"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let template = project
        .template("hello", "bash", "hello.sh", json!({"environment_id": env}))
        .await;
    let task = project.start(json!({"template_id": template})).await;
    let done = project.api.wait_task(project.id, task, WAIT).await;
    let lines = project.api.output_lines(project.id, task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(lines.iter().any(|l| l == "hello from ralf"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "to-stderr"), "{lines:#?}");
    assert_eq!(
        done["commit_hash"].as_str().unwrap().len(),
        40,
        "the commit is recorded"
    );
    assert_eq!(done["commit_message"], "initial commit");
    assert!(done["start"].is_string() && done["end"].is_string());
    server.stop().await;
}

async fn a_failing_script_ends_in_error(backend: Backend) {
    let repo = GitRepo::new(&[("fail.sh", "echo about to fail\nexit 3\n")]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project.template("fail", "bash", "fail.sh", json!({})).await;
    let task = project.start(json!({"template_id": template})).await;
    let done = project.api.wait_task(project.id, task, WAIT).await;
    let lines = project.api.output_lines(project.id, task).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("exited with code 3")),
        "{lines:#?}"
    );
    server.stop().await;
}

const BASH_ARGS: &str = "for a in \"$@\"; do echo \"bash arg=[$a]\"; done\n";
const PYTHON_ARGS: &str = "import sys\nfor a in sys.argv[1:]:\n    print(f\"python arg=[{a}]\")\n";

async fn template_and_task_arguments_reach_bash_and_python(backend: Backend) {
    let repo = GitRepo::new(&[("args.sh", BASH_ARGS), ("args.py", PYTHON_ARGS)]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template_args = json!(["--alpha", "two words", "$HOME"]).to_string();
    let mut tasks = Vec::new();
    for (app, script) in [("bash", "args.sh"), ("python", "args.py")] {
        let open = project
            .template(
                &format!("{app} open"),
                app,
                script,
                json!({"arguments": template_args, "allow_override_args_in_task": true}),
            )
            .await;
        let closed = project
            .template(
                &format!("{app} closed"),
                app,
                script,
                json!({"arguments": template_args}),
            )
            .await;
        let task_args = json!(["task-arg", "it's"]).to_string();
        let task = project
            .start(json!({"template_id": open, "arguments": task_args}))
            .await;
        tasks.push((app, task));
        let r = project
            .post(
                "tasks",
                json!({"template_id": closed, "arguments": task_args}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(
            r.error().contains("allow_override_args_in_task"),
            "{}",
            r.text
        );
    }
    for (app, task) in tasks {
        let (done, lines) = project.finish(task).await;
        assert_eq!(done["status"], "success", "{lines:#?}");
        let args: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{app} arg=")))
            .collect();
        // Template's first, then the task's; each one argument, never split or expanded.
        assert_eq!(
            args,
            [
                "[--alpha]",
                "[two words]",
                "[$HOME]",
                "[task-arg]",
                "[it's]"
            ],
            "{lines:#?}"
        );
    }
    server.stop().await;
}

/// Extra variables (variable groups, the task's `environment`, survey answers) reach scripts as
/// Semaphore passes them: `name=value` arguments between the template's and the task's.
async fn extra_vars_reach_bash_and_python_as_name_value_arguments(backend: Backend) {
    let repo = GitRepo::new(&[("args.sh", BASH_ARGS), ("args.py", PYTHON_ARGS)]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let env = project
        .environment(json!({"group_var": "from group"}), json!({}), json!([]))
        .await;
    let mut tasks = Vec::new();
    for (app, script) in [("bash", "args.sh"), ("python", "args.py")] {
        let template = project
            .template(
                &format!("{app} vars"),
                app,
                script,
                json!({"arguments": json!(["--first"]).to_string(),
                       "allow_override_args_in_task": true, "environment_id": env,
                       "survey_vars": [{"name": "who", "title": "Who"}]}),
            )
            .await;
        let task = project
            .start(json!({"template_id": template,
                          "environment": json!({"who": "world", "count": 3}).to_string(),
                          "arguments": json!(["--last"]).to_string()}))
            .await;
        tasks.push((app, task));
    }
    for (app, task) in tasks {
        let (done, lines) = project.finish(task).await;
        assert_eq!(done["status"], "success", "{lines:#?}");
        let args: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{app} arg=")))
            .collect();
        assert_eq!(args.len(), 5, "{lines:#?}");
        assert_eq!(args[0], "[--first]");
        assert_eq!(args[4], "[--last]");
        let mut vars = args[1..4].to_vec();
        vars.sort();
        assert_eq!(vars, ["[count=3]", "[group_var=from group]", "[who=world]"]);
    }
    server.stop().await;
}

const API_TOKEN: &str = "tok-3f9a1c7e5b2d";
const DEPLOY_PASS: &str = "pass-91d0c4e7aa";

const BASH_ENV: &str = r#"echo "bash plain=$PLAIN_VAR"
echo "bash token=$API_TOKEN"
echo "bash token inside=[x${API_TOKEN}y]"
echo "bash region=$REGION"
echo "bash pass=$DEPLOY_PASS"
echo "bash not passed=[${NOT_PASSED:-}]"
echo "$API_TOKEN" >&2
"#;

const PYTHON_ENV: &str = r#"import os
print("python plain=" + os.environ["PLAIN_VAR"])
print("python token=" + os.environ["API_TOKEN"])
print("python region=" + os.environ["REGION"])
print("python pass=" + os.environ["DEPLOY_PASS"])
"#;

async fn variables_secrets_and_survey_answers_reach_scripts_and_secrets_are_masked(
    backend: Backend,
) {
    let repo = GitRepo::new(&[("env.sh", BASH_ENV), ("env.py", PYTHON_ENV)]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let env = project
        .environment(
            json!({"not_an_env_var": "x"}),
            json!({"PLAIN_VAR": "plain-value"}),
            json!([{"name": "API_TOKEN", "secret": API_TOKEN, "type": "env"}]),
        )
        .await;
    let survey = json!([
        {"name": "REGION", "title": "Region", "type": "enum", "target": "env", "required": true,
         "values": [{"name": "EU", "value": "eu-west"}, {"name": "US", "value": "us-east"}]},
        {"name": "DEPLOY_PASS", "title": "Password", "type": "secret", "target": "env"},
    ]);
    let mut tasks = Vec::new();
    for (app, script) in [("bash", "env.sh"), ("python", "env.py")] {
        let template = project
            .template(
                app,
                app,
                script,
                json!({"environment_id": env, "survey_vars": survey}),
            )
            .await;
        // Bash gets the secret answer in `secret`; python in `environment`, where clients
        // may send it too: it is kept secret all the same.
        let body = if app == "bash" {
            json!({"template_id": template,
                   "environment": json!({"REGION": "eu-west"}).to_string(),
                   "secret": json!({"DEPLOY_PASS": DEPLOY_PASS}).to_string()})
        } else {
            json!({"template_id": template,
                   "environment": json!({"REGION": "eu-west", "DEPLOY_PASS": DEPLOY_PASS}).to_string()})
        };
        let task = project.start(body).await;
        tasks.push((app, task));
    }
    for (app, task) in tasks {
        let (done, lines) = project.finish(task).await;
        assert_eq!(done["status"], "success", "{lines:#?}");
        for expected in [
            format!("{app} plain=plain-value"),
            format!("{app} token=**********"),
            format!("{app} region=eu-west"),
            format!("{app} pass=**********"),
        ] {
            assert!(lines.contains(&expected), "{expected}: {lines:#?}");
        }
        if app == "bash" {
            assert!(
                lines
                    .iter()
                    .any(|l| l == "bash token inside=[x**********y]")
            );
            assert!(
                lines.iter().any(|l| l == "**********"),
                "stderr is masked too"
            );
            assert!(lines.iter().any(|l| l == "bash not passed=[]"));
        }
        let raw = project.raw_output(task).await;
        let output = project
            .api
            .get(&format!("/api/project/{}/tasks/{task}/output", project.id))
            .await
            .text;
        for secret in [API_TOKEN, DEPLOY_PASS] {
            assert!(!raw.contains(secret), "raw_output shows a secret: {raw}");
            assert!(!output.contains(secret), "output shows a secret: {output}");
            assert!(
                !done.to_string().contains(secret),
                "the task shows a secret"
            );
        }
    }
    let listed = project
        .api
        .get(&format!("/api/project/{}/tasks", project.id))
        .await
        .text;
    assert!(
        !listed.contains(DEPLOY_PASS),
        "the task list shows a secret"
    );
    server.stop().await;
}

/// A NUL byte in a line of output (PostgreSQL cannot store it) becomes U+FFFD; no line is lost.
async fn a_nul_byte_in_the_output_keeps_every_line(backend: Backend) {
    let repo = GitRepo::new(&[(
        "nul.sh",
        "echo before\nprintf 'a\\000b\\n'\nfor i in 1 2 3; do echo \"after $i\"; done\n",
    )]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project.template("nul", "bash", "nul.sh", json!({})).await;
    let task = project.start(json!({"template_id": template})).await;
    let (done, lines) = project.finish(task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    let start = lines.iter().position(|l| l == "before").expect("before");
    assert_eq!(
        lines[start..start + 5],
        ["before", "a\u{FFFD}b", "after 1", "after 2", "after 3"],
        "{lines:#?}"
    );
    server.stop().await;
}

/// A template of an app ralf stores but cannot run yet ends in `error`, its log saying why,
/// and nothing of the repository runs.
async fn tasks_of_apps_ralf_cannot_run_say_why(backend: Backend) {
    let repo = GitRepo::new(&[("main.sh", "echo should-not-run\n")]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    for app in ["pulumi", "powershell", "terragrunt"] {
        let template = project.template(app, app, "main.sh", json!({})).await;
        let task = project.start(json!({"template_id": template})).await;
        let done = project.api.wait_task(project.id, task, WAIT).await;
        let lines = project.api.output_lines(project.id, task).await;
        assert_eq!(done["status"], "error", "{app}: {lines:#?}");
        let expected = format!("ralf cannot run {app} templates yet");
        assert!(lines.iter().any(|l| l.contains(&expected)), "{lines:#?}");
        assert!(!lines.iter().any(|l| l == "should-not-run"), "{lines:#?}");
    }
    server.stop().await;
}

on_both_backends!(
    a_bash_task_runs_from_git_and_succeeds,
    a_failing_script_ends_in_error,
    template_and_task_arguments_reach_bash_and_python,
    extra_vars_reach_bash_and_python_as_name_value_arguments,
    variables_secrets_and_survey_answers_reach_scripts_and_secrets_are_masked,
    a_nul_byte_in_the_output_keeps_every_line,
    tasks_of_apps_ralf_cannot_run_say_why,
);
