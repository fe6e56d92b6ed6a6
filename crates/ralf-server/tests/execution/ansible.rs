//! Ansible templates run by the real ansible-playbook of the Python environment (see
//! `common::venv`), against hosts with `ansible_connection=local`.
//!
//! Each ansible-playbook run costs about a second of CPU, so the tests start several tasks at
//! once where they can and check several options per run.

use std::path::Path;

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};
use serde_json::Value;

use crate::common::{Project, ansible_python, has, venv, venv_server};

const SITE: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: greet
      debug:
        msg: "greet host={{ inventory_hostname }} greeting={{ greeting | default('unset') }} answer={{ answer | default('unset') }} from_args={{ from_args | default('unset') }}"
      tags: [greet]
    - name: other
      debug:
        msg: "other ran on {{ inventory_hostname }}"
      tags: [other]
"#;

/// Writes `target` in the task's checkout (a task can write nowhere else) and says whether it
/// is there.
const WRITE: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: write the target
      copy:
        dest: "{{ playbook_dir }}/{{ target }}"
        content: "written by ansible\n"
    - stat:
        path: "{{ playbook_dir }}/{{ target }}"
      register: written
    - debug:
        msg: "target exists={{ written.stat.exists }}"
"#;

const STATIC_INVENTORY: &str = "[web]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n\
                                [db]\ndb1 ansible_connection=local\n";

/// The usual repository: `site.yml`, `write.yml`, and `inventory/hosts.ini` (host file-host).
fn repo() -> GitRepo {
    GitRepo::new(&[
        ("site.yml", SITE),
        ("write.yml", WRITE),
        (
            "inventory/hosts.ini",
            "[files]\nfile-host ansible_connection=local\n",
        ),
    ])
}

/// A variable group with these extra variables and the interpreter ansible needs here.
async fn ansible_environment(project: &Project, extra_vars: Value) -> i64 {
    project
        .environment(
            extra_vars,
            json!({"ANSIBLE_PYTHON_INTERPRETER": ansible_python()}),
            json!([]),
        )
        .await
}

async fn inventory(project: &Project, kind: &str, text: &str) -> i64 {
    project
        .create(
            "inventory",
            json!({"name": kind, "type": kind, "inventory": text,
                   "repository_id": project.repository}),
        )
        .await
}

async fn playbooks_run_with_static_yaml_and_file_inventories(backend: Backend) {
    let repo = repo();
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = ansible_environment(&project, json!({})).await;
    let template = project
        .template(
            "site",
            "ansible",
            "site.yml",
            json!({"environment_id": env, "allow_parallel_tasks": true}),
        )
        .await;
    let kinds = [
        ("static", STATIC_INVENTORY, vec!["web1", "web2", "db1"]),
        (
            "static-yaml",
            "all:\n  hosts:\n    yaml-host:\n      ansible_connection: local\n",
            vec!["yaml-host"],
        ),
        ("file", "inventory/hosts.ini", vec!["file-host"]),
    ];
    let mut tasks = Vec::new();
    for (kind, text, hosts) in kinds {
        let inventory = inventory(&project, kind, text).await;
        let task = project
            .start(json!({"template_id": template, "inventory_id": inventory}))
            .await;
        tasks.push((kind, task, hosts));
    }
    for (kind, task, hosts) in tasks {
        let (done, lines) = project.finish(task).await;
        assert_eq!(done["status"], "success", "{kind}: {lines:#?}");
        assert!(has(&lines, "$ ansible-playbook -i "), "{lines:#?}");
        for host in hosts {
            assert!(
                has(&lines, &format!("greet host={host} greeting=unset")),
                "{kind} inventory, host {host}: {lines:#?}"
            );
        }
        assert!(has(&lines, "PLAY RECAP"), "{lines:#?}");
    }
    server.stop().await;
}

async fn extra_vars_survey_answers_arguments_limit_and_tags_reach_ansible(backend: Backend) {
    let repo = repo();
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = ansible_environment(&project, json!({"greeting": "hello-from-env"})).await;
    let static_inventory = inventory(&project, "static", STATIC_INVENTORY).await;
    let template = project
        .template(
            "site",
            "ansible",
            "site.yml",
            json!({"environment_id": env, "inventory_id": static_inventory,
                   "arguments": json!(["-e", "from_args=template-args"]).to_string(),
                   "survey_vars": [{"name": "answer", "title": "Answer", "type": "int"}]}),
        )
        .await;
    let (done, lines) = project
        .run(json!({
            "template_id": template,
            "environment": json!({"answer": "42"}).to_string(),
            "params": {"limit": ["web1", "db1"], "tags": ["greet", "other"], "skip_tags": ["other"]},
        }))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(
        has(
            &lines,
            "--limit=web1,db1 --tags=greet,other --skip-tags=other"
        ),
        "{lines:#?}"
    );
    for host in ["web1", "db1"] {
        assert!(
            has(
                &lines,
                &format!(
                    "greet host={host} greeting=hello-from-env answer=42 from_args=template-args"
                )
            ),
            "{lines:#?}"
        );
    }
    assert!(!has(&lines, "greet host=web2"), "limit: {lines:#?}");
    assert!(!has(&lines, "other ran"), "skip_tags: {lines:#?}");
    server.stop().await;
}

async fn dry_run_diff_and_debug_change_how_ansible_runs(backend: Backend) {
    let repo = repo();
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = ansible_environment(&project, json!({"target": "target.txt"})).await;
    let template = project
        .template(
            "write",
            "ansible",
            "write.yml",
            json!({"environment_id": env}),
        )
        .await;
    let (done, lines) = project
        .run(json!({"template_id": template,
                     "params": {"dry_run": true, "diff": true, "debug": true}}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, " --check --diff -vvvv "), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("target exists=False")),
        "--check writes nothing: {lines:#?}"
    );
    assert!(has(&lines, "+written by ansible"), "--diff: {lines:#?}");
    assert!(
        has(&lines, "ESTABLISH LOCAL CONNECTION"),
        "-vvvv: {lines:#?}"
    );

    let (done, lines) = project
        .run(json!({"template_id": template, "params": {"diff": true}}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("target exists=True")),
        "{lines:#?}"
    );
    assert!(has(&lines, "+written by ansible"), "--diff: {lines:#?}");
    assert!(!has(&lines, "--check"), "{lines:#?}");
    assert!(!has(&lines, "ESTABLISH LOCAL CONNECTION"), "{lines:#?}");
    server.stop().await;
}

const VAULT_PASSWORD: &str = "vault-pass-7c2e91";

const VAULTED_PLAY: &str = r#"- hosts: all
  gather_facts: false
  vars_files: [secret.yml]
  tasks:
    - debug:
        msg: "vaulted={{ vaulted_value }} in {{ lookup('pipe', 'pwd') | basename }}"
"#;

/// `secret.yml` encrypted by the venv's ansible-vault under the vault id `prod`.
fn encrypted_var_file() -> String {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    let file = dir.path().join("secret.yml");
    std::fs::write(&password, VAULT_PASSWORD).unwrap();
    std::fs::write(&file, "vaulted_value: opened-by-ralf\n").unwrap();
    let out = std::process::Command::new(venv().join("bin/ansible-vault"))
        .arg("encrypt")
        .arg("--vault-id")
        .arg(format!("prod@{}", password.display()))
        .arg(&file)
        .output()
        .expect("ansible-vault runs");
    assert!(
        out.status.success(),
        "ansible-vault: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod"), "{text}");
    text
}

async fn a_vault_key_opens_vaulted_vars_in_the_working_directory(backend: Backend) {
    let repo = GitRepo::new(&[
        ("sub/dir/play.yml", VAULTED_PLAY),
        ("sub/dir/secret.yml", &encrypted_var_file()),
        ("sub/dir/hosts.ini", "vault-host ansible_connection=local\n"),
    ]);
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = ansible_environment(&project, json!({})).await;
    let key = project
        .create(
            "keys",
            json!({"name": "vault", "type": "login_password",
                   "login_password": {"login": "", "password": VAULT_PASSWORD}}),
        )
        .await;
    // The inventory's path is relative to the working directory, like the playbook's.
    let file_inventory = inventory(&project, "file", "hosts.ini").await;
    let template = project
        .template(
            "vaulted",
            "ansible",
            "play.yml",
            json!({"environment_id": env, "inventory_id": file_inventory,
                   "working_directory": "sub/dir",
                   "vaults": [{"name": "prod", "type": "password", "vault_key_id": key}]}),
        )
        .await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "--vault-id prod@"), "{lines:#?}");
    assert!(
        has(&lines, "vaulted=opened-by-ralf in dir"),
        "decrypted, run in sub/dir: {lines:#?}"
    );
    let raw = project.raw_output(done["id"].as_i64().unwrap()).await;
    assert!(!raw.contains(VAULT_PASSWORD));
    server.stop().await;
}

async fn a_missing_playbook_or_a_broken_inventory_fails_the_task(backend: Backend) {
    let repo = repo();
    let server = venv_server(backend, |_| {}).await;
    let project = Project::new(&server, &repo).await;
    let env = ansible_environment(&project, json!({})).await;
    let missing = project
        .template(
            "missing",
            "ansible",
            "no-such-playbook.yml",
            json!({"environment_id": env}),
        )
        .await;
    let broken = inventory(&project, "static", "[web\nweb1 ansible_connection=local\n").await;
    let site = project
        .template(
            "site",
            "ansible",
            "site.yml",
            json!({"environment_id": env, "inventory_id": broken}),
        )
        .await;
    let missing_task = project.start(json!({"template_id": missing})).await;
    let broken_task = project.start(json!({"template_id": site})).await;

    let (done, lines) = project.finish(missing_task).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        "playbook 'no-such-playbook.yml' not found in the repository"
    );

    let (done, lines) = project.finish(broken_task).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        has(&lines, "Unable to parse"),
        "ansible says why: {lines:#?}"
    );
    assert!(has(&lines, "No inventory was parsed"), "{lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .contains("ansible-playbook exited with code"),
        "{lines:#?}"
    );
    server.stop().await;
}

/// The directories of `PATH` that have no ansible-playbook.
fn path_without_ansible() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path)
        .filter(|d| !Path::new(d).join("ansible-playbook").exists())
        .collect();
    std::env::join_paths(dirs).unwrap()
}

async fn without_ansible_playbook_the_task_fails_and_the_server_goes_on(backend: Backend) {
    let repo = GitRepo::new(&[("site.yml", SITE), ("ok.sh", "echo still working\n")]);
    let path = path_without_ansible();
    let server = TestServer::start_with(backend, |s| s.exec_path = Some(path)).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template("site", "ansible", "site.yml", json!({}))
        .await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        "ansible-playbook is not installed on this server (not found on PATH)"
    );
    // The server carries on: it answers and runs the next task.
    assert_eq!(server.anonymous().get("/api/ping").await.status, 200);
    let bash = project.template("ok", "bash", "ok.sh", json!({})).await;
    let (done, lines) = project.run(json!({"template_id": bash})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "still working"));
    server.stop().await;
}

on_both_backends!(
    playbooks_run_with_static_yaml_and_file_inventories,
    extra_vars_survey_answers_arguments_limit_and_tags_reach_ansible,
    dry_run_diff_and_debug_change_how_ansible_runs,
    a_vault_key_opens_vaulted_vars_in_the_working_directory,
    a_missing_playbook_or_a_broken_inventory_fails_the_task,
    without_ansible_playbook_the_task_fails_and_the_server_goes_on,
);
