//! Terraform and OpenTofu templates run by the terraform of the Python environment, on
//! provider-free configurations (variables, locals, outputs), so nothing is downloaded.

use std::path::Path;

use ralf_testkit::{Backend, GitRepo, json, on_both_backends, wait_until};

use crate::common::{Project, WAIT, has, venv_path, venv_server};

const MAIN_TF: &str = r#"variable "greeting" {
  type    = string
  default = "default-greeting"
}

locals {
  message = "${var.greeting} from ${terraform.workspace}"
}

output "message" {
  value = local.message
}
"#;

fn repo() -> GitRepo {
    GitRepo::new(&[("infra/main.tf", MAIN_TF)])
}

/// The line terraform prints for the output `message` (after its colour codes).
fn message_line(lines: &[String], value: &str) -> bool {
    has(lines, &format!("message = \"{value}\""))
}

async fn a_confirmed_plan_is_applied_as_it_was_planned(backend: Backend) {
    let repo = repo();
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = project
        .environment(json!({"greeting": "planned"}), json!({}), json!([]))
        .await;
    let template = project
        .template(
            "infra",
            "terraform",
            "infra",
            json!({"environment_id": env}),
        )
        .await;
    let task = project.start(json!({"template_id": template})).await;
    let (waiting, lines) = project.finish(task).await;
    assert_eq!(waiting["status"], "waiting_confirmation", "{lines:#?}");
    assert!(has(&lines, "$ terraform init -input=false"), "{lines:#?}");
    assert!(has(&lines, "-var greeting=planned"), "{lines:#?}");
    assert!(has(&lines, "Changes to Outputs"), "{lines:#?}");
    assert!(!has(&lines, "Apply complete"), "{lines:#?}");

    // What the task would plan now differs; the apply must be of the saved plan.
    let r = project
        .api
        .put(
            &format!("/api/project/{}/environment/{env}", project.id),
            json!({"id": env, "name": "vars", "project_id": project.id,
                   "json": json!({"greeting": "changed"}).to_string(), "env": "{}"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = project
        .post(&format!("tasks/{task}/confirm"), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (done, lines) = project.finish(task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    let applying = lines
        .iter()
        .position(|l| l == "Plan confirmed: applying it")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let apply = &lines[applying..];
    assert!(has(apply, "$ terraform apply -input=false "), "{lines:#?}");
    assert!(has(apply, "Apply complete!"), "{lines:#?}");
    assert!(message_line(apply, "planned from default"), "{lines:#?}");
    assert!(!has(&lines, "changed from default"), "{lines:#?}");
    assert!(has(&lines, "Task confirmed by admin"), "{lines:#?}");
    server.stop().await;
}

/// Waits until `path` is gone.
async fn wait_gone(path: &Path) {
    wait_until(WAIT, async || match path.exists() {
        false => Ok(()),
        true => Err(format!("{} is still there", path.display())),
    })
    .await
}

async fn a_rejected_plan_is_never_applied(backend: Backend) {
    let repo = repo();
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().join("work");
    let configured = work_dir.clone();
    let server = venv_server(backend, move |s| s.work_dir = configured).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template("infra", "terraform", "infra", json!({}))
        .await;
    let task = project.start(json!({"template_id": template})).await;
    let (waiting, lines) = project.finish(task).await;
    assert_eq!(waiting["status"], "waiting_confirmation", "{lines:#?}");
    let task_dir = work_dir.join("tasks").join(task.to_string());
    assert!(
        task_dir.join("plan/tfplan").is_file(),
        "the plan waits on disk"
    );

    let r = project
        .post(&format!("tasks/{task}/reject"), json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (done, _) = project.finish(task).await;
    assert_eq!(done["status"], "rejected");
    wait_gone(&task_dir).await;
    let lines = project.output(task).await;
    assert!(has(&lines, "Task rejected by admin"), "{lines:#?}");
    assert!(!has(&lines, "Apply complete"), "{lines:#?}");
    assert!(!has(&lines, "terraform apply"), "{lines:#?}");
    let r = project
        .post(&format!("tasks/{task}/confirm"), json!({}))
        .await;
    assert_eq!(
        r.status, 409,
        "a rejected task cannot be confirmed: {}",
        r.text
    );

    // Stopping a task whose plan waits throws the plan away as well.
    let task = project.start(json!({"template_id": template})).await;
    let (waiting, lines) = project.finish(task).await;
    assert_eq!(waiting["status"], "waiting_confirmation", "{lines:#?}");
    let task_dir = work_dir.join("tasks").join(task.to_string());
    assert!(task_dir.join("plan/tfplan").is_file());
    let r = project.post(&format!("tasks/{task}/stop"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let done = project
        .api
        .wait_status(project.id, task, "stopped", WAIT)
        .await;
    assert!(done["end"].is_string(), "{done}");
    wait_gone(&task_dir).await;
    assert!(!has(&project.output(task).await, "Apply complete"));
    server.stop().await;
}

async fn auto_approve_applies_at_once_in_the_inventorys_workspace(backend: Backend) {
    let repo = repo();
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = project
        .environment(json!({"greeting": "auto"}), json!({}), json!([]))
        .await;
    let workspace = project
        .create(
            "inventory",
            json!({"name": "staging", "type": "terraform-workspace", "inventory": "staging"}),
        )
        .await;
    let template = project
        .template(
            "infra",
            "tofu",
            "infra",
            json!({"environment_id": env, "inventory_id": workspace,
                   "task_params": {"auto_approve": true}}),
        )
        .await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    let path = venv_path();
    let has_tofu = std::env::split_paths(&path).any(|d| d.join("tofu").is_file());
    if !has_tofu {
        assert!(
            has(
                &lines,
                "tofu is not installed on this server; using terraform instead"
            ),
            "{lines:#?}"
        );
    }
    assert!(
        has(&lines, "Workspace staging does not exist yet: creating it"),
        "{lines:#?}"
    );
    assert!(has(&lines, "Apply complete!"), "{lines:#?}");
    assert!(message_line(&lines, "auto from staging"), "{lines:#?}");
    assert!(!has(&lines, "waits for a confirmation"), "{lines:#?}");
    server.stop().await;
}

on_both_backends!(
    a_confirmed_plan_is_applied_as_it_was_planned,
    a_rejected_plan_is_never_applied,
    auto_approve_applies_at_once_in_the_inventorys_workspace,
);
