//! Ansible tasks with the real ansible-playbook of the repository's Python environment
//! (`$RALF_VENV`, default `<repo>/.venv`; scripts/python-env.sh makes it).

mod common;

use std::process::Command;

use common::*;
use ralf_exec::{
    App, Control, Credential, ExecConfig, Inventory, Job, LoginPassword, Outcome, SshKey,
    VaultPassword, run,
};
use serde_json::json;

const PLAYBOOK: &str = r#"
- hosts: all
  connection: local
  gather_facts: false
  vars_files:
    - vault.yml
  tasks:
    - debug:
        msg: "greeting={{ greeting }} on {{ inventory_hostname }} n={{ numbers | sum }}"
    - debug:
        msg: "vaulted={{ vaulted }}"
    - name: the task's secret files
      shell: "stat -c 'mode %a %n' {{ playbook_dir }}/../.ralf/*"
      register: modes
    - debug:
        var: modes.stdout_lines
"#;

fn ansible_config(venv: &std::path::Path) -> (tempfile::TempDir, ExecConfig) {
    let (work, mut config) = config();
    config.path_env = Some(path_with(&venv.join("bin")));
    (work, config)
}

fn ansible_job(repo: &Repo, venv: &std::path::Path, playbook: &str) -> Job {
    let mut job = repo.job(1, App::Ansible, playbook);
    job.inventory = Some(Inventory::Static(
        "localhost ansible_connection=local\n".into(),
    ));
    // Interpreter discovery does not work on this machine: name the venv's python.
    job.env = vec![(
        "ANSIBLE_PYTHON_INTERPRETER".into(),
        venv.join("bin/python").to_string_lossy().into_owned(),
    )];
    job
}

#[tokio::test]
async fn runs_a_playbook_with_inventory_extra_vars_vault_and_keys() {
    let venv = venv();
    let repo = Repo::new();
    repo.write("site.yml", PLAYBOOK);
    repo.write("vault.yml", "vaulted: decrypted by the vault id\n");
    let pw = repo.path().join("../vault-pw-for-test");
    std::fs::write(&pw, "vault-pa55word").unwrap();
    let status = Command::new(venv.join("bin/ansible-vault"))
        .args(["encrypt", "--vault-id"])
        .arg(format!("prod@{}", pw.display()))
        .arg("vault.yml")
        .current_dir(repo.path())
        .status()
        .unwrap();
    std::fs::remove_file(&pw).unwrap();
    assert!(status.success());
    assert!(
        std::fs::read_to_string(repo.path().join("vault.yml"))
            .unwrap()
            .starts_with("$ANSIBLE_VAULT")
    );
    repo.commit("playbook");

    let (work, config) = ansible_config(&venv);
    let mut job = ansible_job(&repo, &venv, "site.yml");
    job.extra_vars = json!({"greeting": "hello from extra vars", "numbers": [1, 2, 3]})
        .as_object()
        .unwrap()
        .clone();
    job.ansible.vault_passwords = vec![VaultPassword {
        name: "prod".into(),
        password: "vault-pa55word".into(),
    }];
    job.ansible.ssh_key = Some(Credential::Ssh(SshKey {
        private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-but-a-file\n-----END OPENSSH PRIVATE KEY-----\n".into(),
        passphrase: None,
        login: Some("deploy".into()),
    }));
    job.ansible.become_key = Some(LoginPassword {
        login: "root".into(),
        password: "become-pa55word".into(),
    });
    job.ansible.diff = true;
    job.secrets = vec!["vault-pa55word".into(), "become-pa55word".into()];
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    let all = lines.all();
    assert_eq!(outcome, Outcome::Success, "{all}");
    assert!(
        all.contains("greeting=hello from extra vars on localhost n=6"),
        "{all}"
    );
    assert!(all.contains("vaulted=decrypted by the vault id"), "{all}");
    assert!(
        all.contains("\u{1b}["),
        "ANSIBLE_FORCE_COLOR keeps colours: {all}"
    );
    let ralf = work.path().join("tasks/1/.ralf");
    let command = lines
        .texts()
        .into_iter()
        .find(|l| l.starts_with("$ ansible-playbook"))
        .unwrap();
    assert_eq!(
        command,
        format!(
            "$ ansible-playbook -i {r}/inventory --user deploy --private-key {r}/ssh-key \
             --become-user root --become-password-file {r}/become-password \
             --vault-id prod@{r}/vault-password-0 --diff --extra-vars @{r}/extra-vars.json site.yml",
            r = ralf.display()
        )
    );
    // Every secret file was private while ansible ran.
    let modes: Vec<&str> = all
        .lines()
        .filter_map(|l| l.split("mode ").nth(1))
        .collect();
    assert_eq!(modes.len(), 5, "{all}");
    for m in &modes {
        assert!(m.starts_with("600 "), "{m}");
    }
    for name in [
        "inventory",
        "ssh-key",
        "become-password",
        "vault-password-0",
        "extra-vars.json",
    ] {
        assert!(
            modes
                .iter()
                .any(|m| m.contains(&format!("/.ralf/{name}\""))),
            "{name}: {modes:?}"
        );
    }
    assert!(!all.contains("pa55word"));
    assert!(task_dirs(work.path()).is_empty());
}

#[tokio::test]
async fn failing_playbooks_and_missing_files() {
    let venv = venv();
    let repo = Repo::new();
    repo.write(
        "fail.yml",
        "- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - fail:\n        msg: boom\n",
    );
    repo.write(
        "yaml-inventory.yml",
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    );
    repo.commit("failing");
    let (_work, config) = ansible_config(&venv);

    let lines = Lines::default();
    let outcome = run(
        &ansible_job(&repo, &venv, "fail.yml"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Failed("ansible-playbook exited with code 2".into())
    );
    assert!(lines.all().contains("boom"), "{}", lines.all());

    // An inventory file from the repository, limited to a host that is not in it.
    let mut job = ansible_job(&repo, &venv, "fail.yml");
    job.inventory = Some(Inventory::File("yaml-inventory.yml".into()));
    job.ansible.limit = vec!["nohost".into()];
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    assert!(lines.all().contains("--limit=nohost"), "{}", lines.all());

    let lines = Lines::default();
    let outcome = run(
        &ansible_job(&repo, &venv, "nope.yml"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Failed("playbook 'nope.yml' not found in the repository".into())
    );

    let mut job = ansible_job(&repo, &venv, "fail.yml");
    job.inventory = Some(Inventory::File("missing.ini".into()));
    let outcome = run(&job, &config, &Lines::default(), &Control::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed("inventory file 'missing.ini' not found in the repository".into())
    );
}
