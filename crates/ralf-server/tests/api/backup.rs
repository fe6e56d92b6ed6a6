//! Project backup and restore in Semaphore's format: a backup restores into an identical
//! project, carries no secret, reads backups shaped like Semaphore's own, and a bad backup is
//! refused whole, with a message naming the object and field, leaving no project behind.

use ralf_core::ProjectId;
use ralf_core::api::keys::{KeyKind, KeyMaterial};
use ralf_core::api::projects::Project;
use ralf_core::api::templates::{TemplateSettings, TemplateType};
use ralf_store::backup::{ProjectRestore, RestoredTemplate};
use ralf_store::keys::NewKey;
use ralf_store::projects::ProjectFields;
use ralf_store::repositories::RepositoryFields;
use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Api, Backend, GitRepo, TestServer, json, on_both_backends};
use serde_json::Value;

use crate::keys::{Watched, assert_bad, assert_status, cipher, id};

const PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nbackupkeymaterial-3c1e\n-----END OPENSSH PRIVATE KEY-----\n";
const KEY_PASSWORD: &str = "key-password-6b0d-secret";
const TOKEN: &str = "env-token-90af-secret";
const DB_PASSWORD: &str = "db-password-12cd-secret";
const VAULT_PASSWORD: &str = "vault-password-4e4e-secret";

/// POSTs and answers the id of the created object.
async fn make(api: &Api, path: &str, body: Value) -> i64 {
    id(&api.create(path, body).await)
}

/// The names of every project the admin sees.
async fn project_names(admin: &Api) -> Vec<String> {
    let r = admin.get("/api/projects").await;
    assert_status(&r, StatusCode::OK);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// A project with every kind of object, references between all of them, and secrets.
async fn full_project(admin: &Api) -> i64 {
    let project = make(
        admin,
        "/api/projects",
        json!({"name": "alpha", "alert": true, "alert_chat": "ops", "max_parallel_tasks": 3}),
    )
    .await;
    let base = format!("/api/project/{project}");
    let keys = format!("{base}/keys");
    let none = make(admin, &keys, json!({"name": "none", "type": "none"})).await;
    let ssh = make(
        admin,
        &keys,
        json!({"name": "deploy ssh", "type": "ssh",
               "ssh": {"login": "root", "private_key": PRIVATE_KEY}}),
    )
    .await;
    let vault_key = make(
        admin,
        &keys,
        json!({"name": "vault", "type": "login_password",
               "login_password": {"password": KEY_PASSWORD}}),
    )
    .await;

    let repos = format!("{base}/repositories");
    let site = make(
        admin,
        &repos,
        json!({"name": "site", "git_url": "git@example.test:ops/site.git",
               "git_branch": "main", "ssh_key_id": ssh}),
    )
    .await;
    make(
        admin,
        &repos,
        json!({"name": "local", "git_url": "file:///srv/git/local", "git_branch": ""}),
    )
    .await;

    let inventory = format!("{base}/inventory");
    let prod = make(
        admin,
        &inventory,
        json!({"name": "prod", "type": "static", "inventory": "[web]\nweb1\n",
               "ssh_key_id": ssh, "become_key_id": vault_key}),
    )
    .await;
    make(
        admin,
        &inventory,
        json!({"name": "from repo", "type": "file", "inventory": "inventories/hosts.ini",
               "repository_id": site, "ssh_key_id": none}),
    )
    .await;
    make(
        admin,
        &inventory,
        json!({"name": "yaml", "type": "static-yaml", "inventory": "all:\n  hosts:\n    a:\n"}),
    )
    .await;
    let workspace = make(
        admin,
        &inventory,
        json!({"name": "ws", "type": "terraform-workspace", "inventory": "default"}),
    )
    .await;
    // Two objects of one kind with the same name: the backup must tell them apart.
    make(
        admin,
        &inventory,
        json!({"name": "twin", "type": "static", "inventory": "[a]\nhost-a\n"}),
    )
    .await;
    let twin2 = make(
        admin,
        &inventory,
        json!({"name": "twin", "type": "static", "inventory": "[b]\nhost-b\n"}),
    )
    .await;

    let environment = format!("{base}/environment");
    let vars = make(
        admin,
        &environment,
        json!({"name": "vars", "json": "{\"region\": \"eu\"}", "env": "{\"DEBUG\": \"1\"}",
               "password": VAULT_PASSWORD,
               "secrets": [{"name": "TOKEN", "type": "env", "secret": TOKEN},
                           {"name": "db password", "type": "var", "secret": DB_PASSWORD}]}),
    )
    .await;
    let more = make(admin, &environment, json!({"name": "more vars"})).await;

    let views = format!("{base}/views");
    let web = make(admin, &views, json!({"title": "Web", "position": 0})).await;
    make(
        admin,
        &views,
        json!({"title": "Everything", "position": 1, "hidden": true, "type": "all",
               "sort_column": "name", "sort_reverse": true}),
    )
    .await;

    let templates = format!("{base}/templates");
    // Named to sort after the deploy template, so the backup names it before it lists it.
    let build = make(
        admin,
        &templates,
        json!({"name": "zz build", "type": "build", "start_version": "1.0.0",
               "playbook": "build.yml", "repository_id": site, "inventory_id": prod,
               "view_id": web}),
    )
    .await;
    make(
        admin,
        &templates,
        json!({
            "name": "deploy", "type": "deploy", "build_template_id": build, "autorun": true,
            "app": "ansible", "playbook": "deploy.yml", "repository_id": site,
            "inventory_id": twin2, "environment_id": vars, "environment_ids": [more],
            "view_id": web, "working_directory": "ansible", "arguments": "[\"-v\"]",
            "description": "Deploys the site", "allow_override_args_in_task": true,
            "allow_override_branch_in_task": true, "limit": "web1",
            "suppress_success_alerts": true, "suppress_error_alerts": true,
            "git_branch": "release", "executor_image": "ralf/ansible:2",
            "allow_parallel_tasks": true, "timeout_secs": 600, "runner_tags": ["linux", "eu"],
            "task_params": {"tags": ["web"], "diff": true, "allow_debug": true},
            "survey_vars": [
                {"name": "version", "title": "Version", "type": "", "required": true},
                {"name": "size", "title": "Size", "type": "enum", "target": "env",
                 "values": [{"name": "Small", "value": "s"}, {"name": "Large", "value": "l"}]},
                {"name": "api_key", "title": "API key", "type": "secret"}
            ],
            "vaults": [
                {"name": "", "type": "password", "vault_key_id": vault_key},
                {"name": "prod", "type": "script", "script": "scripts/vault.sh"}
            ]
        }),
    )
    .await;
    make(
        admin,
        &templates,
        json!({"name": "cleanup", "app": "bash", "playbook": "cleanup.sh",
               "repository_id": site}),
    )
    .await;
    make(
        admin,
        &templates,
        json!({"name": "infra", "app": "terraform", "playbook": "tf",
               "repository_id": site, "inventory_id": workspace}),
    )
    .await;
    project
}

async fn backup_round_trips(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let a = full_project(&admin).await;
    let watched = Watched::new(
        admin.clone(),
        &[
            PRIVATE_KEY,
            KEY_PASSWORD,
            TOKEN,
            DB_PASSWORD,
            VAULT_PASSWORD,
        ],
    );

    let r = watched.get(&format!("/api/project/{a}/backup")).await;
    assert_status(&r, StatusCode::OK);
    let backup_a = r.body;

    // The shape Semaphore writes: names instead of ids, no secret material.
    assert_eq!(
        backup_a["meta"],
        json!({"name": "alpha", "alert": true, "alert_chat": "ops",
               "max_parallel_tasks": 3, "type": ""})
    );
    assert_eq!(
        backup_a["keys"],
        json!([{"name": "deploy ssh", "type": "ssh"},
               {"name": "none", "type": "none"},
               {"name": "vault", "type": "login_password"}])
    );
    let site = &backup_a["repositories"][1];
    assert_eq!(
        site,
        &json!({"name": "site", "git_url": "git@example.test:ops/site.git",
                "git_branch": "main", "ssh_key": "deploy ssh"})
    );
    let inventories = backup_a["inventories"].as_array().unwrap();
    let names: Vec<&str> = inventories
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["from repo", "prod", "twin", "twin (2)", "ws", "yaml"]
    );
    assert_eq!(inventories[0]["repository"], "site");
    assert_eq!(inventories[1]["become_key"], "vault");
    let vars = &backup_a["environments"][1];
    assert_eq!(vars["name"], "vars");
    assert_eq!(vars["password"], Value::Null);
    assert_eq!(
        vars["secrets"],
        json!([{"name": "TOKEN", "type": "env"}, {"name": "db password", "type": "var"}])
    );
    assert_eq!(
        backup_a["views"],
        json!([{"title": "Web", "position": 0, "hidden": false, "type": "",
                "sort_column": null, "sort_reverse": false},
               {"title": "Everything", "position": 1, "hidden": true, "type": "all",
                "sort_column": "name", "sort_reverse": true}])
    );
    let deploy = backup_a["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "deploy")
        .unwrap();
    assert_eq!(deploy["build_template"], "zz build");
    assert_eq!(deploy["inventory"], "twin (2)");
    assert_eq!(deploy["environment"], "vars");
    assert_eq!(deploy["environments"], json!(["more vars"]));
    assert_eq!(deploy["view"], "Web");
    assert_eq!(deploy["survey_vars"].as_array().unwrap().len(), 3);
    assert_eq!(
        deploy["vaults"],
        json!([{"name": "", "type": "password", "vault_key": "vault", "script": ""},
               {"name": "prod", "type": "script", "vault_key": null,
                "script": "scripts/vault.sh"}])
    );
    assert_eq!(backup_a["schedules"], json!([]));
    assert_eq!(backup_a["integrations"], json!([]));

    // Restore under another name: a new project the caller owns, answered with 200.
    let mut body = backup_a.clone();
    body["meta"]["name"] = json!("beta");
    let r = watched.post("/api/projects/restore", body).await;
    assert_status(&r, StatusCode::OK);
    let b = id(&r.body);
    assert_ne!(a, b);
    assert_eq!(r.body["name"], "beta");
    assert_eq!(r.body["alert_chat"], "ops");
    let role = admin.get(&format!("/api/project/{b}/role")).await;
    assert_eq!(role.body["role"], "owner", "{}", role.text);

    let r = watched.get(&format!("/api/project/{b}/backup")).await;
    assert_status(&r, StatusCode::OK);
    let mut backup_b = r.body;
    assert_eq!(backup_b["meta"]["name"], "beta");
    backup_b["meta"]["name"] = json!("alpha");
    assert_eq!(backup_b, backup_a);

    // Secrets did not travel: keys have none, environment secrets are empty, no vault password.
    let keys = admin.get(&format!("/api/project/{b}/keys")).await.body;
    for key in keys.as_array().unwrap() {
        let stored = server
            .store()
            .key_secret(ProjectId(b), id(key))
            .await
            .unwrap();
        assert_eq!(stored.secret, None, "key {key}");
    }
    let environments = admin
        .get(&format!("/api/project/{b}/environment"))
        .await
        .body;
    let vars = environments
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "vars")
        .unwrap();
    assert_eq!(
        server
            .store()
            .environment_password(ProjectId(b), id(vars))
            .await
            .unwrap(),
        None
    );
    for secret in vars["secrets"].as_array().unwrap() {
        let stored = server
            .store()
            .key_secret(ProjectId(b), id(secret))
            .await
            .unwrap();
        let value = KeyMaterial::open(&cipher(), stored.kind, stored.secret.as_deref()).unwrap();
        assert_eq!(value, KeyMaterial::String(String::new()));
    }
    // The restored objects point at the restored project's objects.
    let templates = admin.get(&format!("/api/project/{b}/templates")).await.body;
    let deploy = templates
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "deploy")
        .unwrap();
    let build = templates
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "zz build")
        .unwrap();
    assert_eq!(deploy["build_template_id"], build["id"]);
    let inventory = admin
        .get(&format!(
            "/api/project/{b}/inventory/{}",
            deploy["inventory_id"]
        ))
        .await;
    assert_status(&inventory, StatusCode::OK);
    assert_eq!(inventory.body["inventory"], "[b]\nhost-b\n");
    server.stop().await;
}

/// A backup shaped like the example of Semaphore's spec and what Semaphore writes: nulls,
/// survey variables as an array or as a string, a view named by `name`, a schedule.
fn semaphore_shaped() -> Value {
    json!({
        "meta": {"name": "lab at home", "alert": true, "alert_chat": "Chat",
                 "max_parallel_tasks": 0, "type": null},
        "templates": [
            {"inventory": "Build", "repository": "Demo", "environment": "Empty",
             "name": "Build", "playbook": "build.yml", "app": "ansible",
             "working_directory": ".", "arguments": "[]", "allow_override_args_in_task": false,
             "description": "Builds the app", "vault_key": null, "type": "build",
             "start_version": "1.0.0", "build_template": null, "view": "Build",
             "autorun": false, "survey_vars": [], "suppress_success_alerts": false,
             "suppress_error_alerts": false, "cron": "* * * * *"},
            {"inventory": "Prod", "repository": "Demo", "environment": null,
             "name": "Deploy", "playbook": "deploy.yml", "app": "", "type": "deploy",
             "build_template": "Build", "view": "Deploy", "autorun": true,
             "vault_key": "Vault Password",
             "survey_vars": "[{\"name\":\"tag\",\"title\":\"Tag\",\"required\":true}]",
             "runner_tag": "linux", "task_params": null, "description": null}
        ],
        "repositories": [
            {"name": "Demo", "git_url": "https://github.com/example/demo.git",
             "git_branch": "main", "ssh_key": "None"}
        ],
        "keys": [{"name": "None", "type": "none"},
                 {"name": "Vault Password", "type": "login_password"}],
        "views": [{"title": "Build", "position": 0}, {"name": "Deploy", "position": 1}],
        "inventories": [
            {"name": "Build", "inventory": "", "ssh_key": "None", "become_key": "None",
             "type": "static"},
            {"name": "Dev", "inventory": "inventories/dev.ini", "ssh_key": "None",
             "become_key": null, "type": "file"},
            {"name": "Prod", "inventory": "inventories/prod.ini", "ssh_key": "None",
             "become_key": "None", "type": "file"}
        ],
        "environments": [{"name": "Empty", "password": null, "json": "{}", "env": null}],
        "schedules": [{"cron_format": "0 3 * * *", "template": "Build"}],
        "integrations": [],
        "integration_aliases": null
    })
}

async fn semaphore_backups_restore(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let r = admin
        .post("/api/projects/restore", semaphore_shaped())
        .await;
    assert_status(&r, StatusCode::OK);
    let project: Project = serde_json::from_value(r.body).unwrap();
    assert_eq!(project.name, "lab at home");
    assert!(project.alert);
    assert_eq!(project.kind, "");
    let base = format!("/api/project/{}", project.id);

    let keys = admin.get(&format!("{base}/keys")).await.body;
    let none = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "None")
        .unwrap();
    let vault = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Vault Password")
        .unwrap();
    assert_eq!(vault["type"], "login_password");
    let repos = admin.get(&format!("{base}/repositories")).await.body;
    assert_eq!(repos[0]["ssh_key_id"], none["id"]);
    let views = admin.get(&format!("{base}/views")).await.body;
    assert_eq!(views[1]["title"], "Deploy");

    let templates = admin.get(&format!("{base}/templates")).await.body;
    let by_name = |name: &str| -> Value {
        templates
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    let build = by_name("Build");
    let deploy = by_name("Deploy");
    assert_eq!(build["type"], "build");
    assert_eq!(build["start_version"], "1.0.0");
    assert_eq!(build["view_id"], views[0]["id"]);
    assert!(build["environment_id"].as_i64().is_some());
    assert_eq!(deploy["app"], "ansible");
    assert_eq!(deploy["build_template_id"], build["id"]);
    assert_eq!(deploy["autorun"], true);
    assert_eq!(deploy["view_id"], views[1]["id"]);
    assert_eq!(deploy["survey_vars"][0]["name"], "tag");
    assert_eq!(deploy["survey_vars"][0]["required"], true);
    assert_eq!(deploy["runner_tags"], json!(["linux"]));
    assert_eq!(deploy["description"], "");
    // The old single vault key becomes the default password vault.
    assert_eq!(deploy["vaults"].as_array().unwrap().len(), 1);
    assert_eq!(deploy["vaults"][0]["vault_key_id"], vault["id"]);
    assert_eq!(deploy["vaults"][0]["name"], "");
    let inventory = admin
        .get(&format!("{base}/inventory/{}", deploy["inventory_id"]))
        .await;
    assert_eq!(inventory.body["name"], "Prod");

    // The backup's schedule of Build wins over Build's older `cron`.
    let schedules = admin.get(&format!("{base}/schedules")).await.body;
    assert_eq!(schedules.as_array().unwrap().len(), 1, "{schedules}");
    assert_eq!(schedules[0]["cron_format"], "0 3 * * *");
    assert_eq!(schedules[0]["template_id"], by_name("Build")["id"]);
    assert_eq!(schedules[0]["active"], true);
    server.stop().await;
}

/// Semaphore's spec example and what Semaphore 2.16 writes restore in full, `null` wherever Go
/// allows it, even the parts ralf cannot run: a file inventory without a path, a `script`
/// vault, a `pulumi` template. Their tasks say why they cannot run.
async fn every_semaphore_backup_restores_and_what_cannot_run_says_why(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let mut backup = semaphore_shaped();
    backup["inventories"][1]["inventory"] = json!("");
    backup["inventories"][2]["inventory"] = Value::Null;
    backup["templates"][1]["vaults"] = json!([
        {"name": "scripted", "type": "script", "script": "vault/client.py", "vault_key": null}
    ]);
    backup["templates"][1]["vault_key"] = Value::Null;
    // Runner tags would keep its task waiting for a runner.
    backup["templates"][1]["runner_tag"] = Value::Null;
    backup["templates"].as_array_mut().unwrap().push(json!({
        "inventory": "Dev", "repository": "Demo", "environment": "Empty", "name": "On dev",
        "playbook": "site.yml", "app": "ansible", "working_directory": null, "arguments": null,
        "allow_override_args_in_task": null, "description": null, "vault_key": null,
        "type": null, "start_version": null, "build_template": null, "view": null,
        "autorun": null, "survey_vars": null, "suppress_success_alerts": null,
        "suppress_error_alerts": null, "cron": null, "task_params": null, "vaults": null
    }));
    let mut pulumi = backup["templates"][2].clone();
    pulumi["name"] = json!("Stack");
    pulumi["app"] = json!("pulumi");
    backup["templates"].as_array_mut().unwrap().push(pulumi);
    backup["host_configs"] = json!([
        {"type": "host", "host": "github.com", "ssh_key": "None"},
        {"type": "url", "host": "https://git.example.test/", "ssh_key": null}
    ]);
    backup["repositories"][0]["git_branch"] = Value::Null;
    let r = admin.post("/api/projects/restore", backup).await;
    assert_status(&r, StatusCode::OK);
    let project = r.body["id"].as_i64().unwrap();
    let base = format!("/api/project/{project}");

    let inventories = admin.get(&format!("{base}/inventory")).await.body;
    assert!(
        inventories
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "Dev" && i["inventory"] == "")
    );
    let host_configs = admin.get(&format!("{base}/host_configs")).await.body;
    assert_eq!(host_configs.as_array().unwrap().len(), 2, "{host_configs}");
    assert_eq!(host_configs[0]["host"], "github.com");
    assert!(host_configs[0]["ssh_key_id"].is_i64());
    assert_eq!(host_configs[1]["ssh_key_id"], Value::Null);
    let again = admin.get(&format!("{base}/backup")).await.body;
    assert_eq!(again["host_configs"][0]["ssh_key"], "None");
    assert_eq!(again["host_configs"][1]["type"], "url");

    let templates = admin.get(&format!("{base}/templates")).await.body;
    let id_of = |name: &str| {
        templates
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        templates
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "Deploy")
            .unwrap()["vaults"][0]["type"],
        "script"
    );
    for (template, why) in [
        ("On dev", "file inventory without a path"),
        ("Deploy", "script vaults are not supported"),
        ("Stack", "ralf cannot run pulumi templates yet"),
    ] {
        let mut body = json!({"template_id": id_of(template)});
        if template == "Deploy" {
            body["environment"] = json!({"tag": "v1"});
        }
        let task = admin.create(&format!("{base}/tasks"), body).await;
        let id = task["id"].as_i64().unwrap();
        let done = admin
            .wait_task(project, id, std::time::Duration::from_secs(60))
            .await;
        assert_eq!(done["status"], "error", "{template}");
        let lines = admin.output_lines(project, id).await;
        assert!(
            lines.iter().any(|l| l.contains(why)),
            "{template}: {lines:?}"
        );
    }
    server.stop().await;
}

async fn bad_backups_leave_nothing_behind(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let before = project_names(&admin).await;

    let mut bad = semaphore_shaped();
    bad["templates"][1]["inventory"] = json!("Staging");
    let r = admin.post("/api/projects/restore", bad).await;
    assert_bad(
        &r,
        "templates[1] (\"Deploy\"): inventory: \"Staging\" is not the name of any of the \
         backup's inventories",
    );
    assert_eq!(project_names(&admin).await, before);

    let cases: Vec<(Value, &str)> = vec![
        (json!({"/meta/name": " "}), "meta: name must not be empty"),
        (
            json!({"/meta/max_parallel_tasks": -1}),
            "meta: max_parallel_tasks must not be negative",
        ),
        (
            json!({"/keys/1/name": "None"}),
            "keys[1] (\"None\"): keys[0] has the same name",
        ),
        (
            json!({"/keys/1/type": "rsa"}),
            "keys[1] (\"Vault Password\"): type must be one of none, ssh, login_password",
        ),
        (
            json!({"/repositories/0/ssh_key": "Deploy key"}),
            "repositories[0] (\"Demo\"): ssh_key: \"Deploy key\" is not the name of any of \
             the backup's keys",
        ),
        (
            json!({"/repositories/0/git_url": "--upload-pack=x"}),
            "repositories[0] (\"Demo\"): git_url must not start with '-'",
        ),
        (
            json!({"/inventories/2/become_key": "root"}),
            "inventories[2] (\"Prod\"): become_key: \"root\" is not the name",
        ),
        (
            json!({"/environments/0/env": "{\"A\": {\"b\": 1}}"}),
            "environments[0] (\"Empty\"): env: the value of \"A\" must be a string",
        ),
        (
            json!({"/environments/0/secrets": [{"name": "MY VAR", "type": "env"}]}),
            "environments[0] (\"Empty\"): secrets[0].name \"MY VAR\" is not a valid environment \
             variable name",
        ),
        (
            json!({"/views/0/type": "odd"}),
            "views[0] (\"Build\"): type must be",
        ),
        (
            json!({"/templates/0/playbook": ""}),
            "templates[0] (\"Build\"): playbook is required for ansible templates",
        ),
        (
            json!({"/templates/0/inventory": null}),
            "templates[0] (\"Build\"): inventory is required for ansible templates",
        ),
        (
            json!({"/templates/0/repository": ""}),
            "templates[0] (\"Build\"): repository must name one of the backup's repositories",
        ),
        (
            json!({"/templates/1/app": "chef"}),
            "templates[1] (\"Deploy\"): app \"chef\" is not supported",
        ),
        (
            json!({"/templates/1/build_template": "Deploy"}),
            "templates[1] (\"Deploy\"): build_template must not be the template itself",
        ),
        (
            json!({"/templates/1/build_template": null}),
            "templates[1] (\"Deploy\"): build_template is required for deploy templates",
        ),
        (
            json!({"/templates/0/type": "deploy", "/templates/0/build_template": "Deploy"}),
            "build_template: the build templates form a cycle",
        ),
        (
            json!({"/templates/1/name": "Build"}),
            "templates[1] (\"Build\"): templates[0] has the same name",
        ),
        (
            json!({"/templates/0/survey_vars": [{"name": "a"}, {"name": "a"}]}),
            "templates[0] (\"Build\"): survey_vars[1].name: the variable \"a\" is defined twice",
        ),
        (
            json!({"/templates/1/vault_key": "nope"}),
            "templates[1] (\"Deploy\"): vault_key: \"nope\" is not the name of any of the \
             backup's keys",
        ),
        (
            json!({"/templates/1/survey_vars": 7}),
            "survey_vars must be an array",
        ),
    ];
    for (changes, message) in cases {
        let mut body = semaphore_shaped();
        for (pointer, value) in changes.as_object().unwrap() {
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            let parent = body
                .pointer_mut(parent)
                .unwrap_or_else(|| panic!("{pointer}"));
            match parent.as_object_mut() {
                Some(object) => {
                    object.insert(field.to_string(), value.clone());
                }
                None => parent[field.parse::<usize>().unwrap()] = value.clone(),
            }
        }
        let r = admin.post("/api/projects/restore", body).await;
        assert_bad(&r, message);
    }
    assert_eq!(project_names(&admin).await, before);
    server.stop().await;
}

/// The store's transaction: a failure after the project and some objects were written leaves
/// none of them.
async fn a_failed_restore_rolls_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let before = project_names(&admin).await;
    let settings: TemplateSettings = serde_json::from_value(json!({
        "name": "t", "app": "bash", "type": "", "repository_id": 0, "inventory_id": null,
        "environment_id": null, "environment_ids": [], "view_id": null,
        "build_template_id": null, "playbook": "a.sh", "working_directory": null,
        "arguments": null, "description": "", "allow_override_args_in_task": false,
        "allow_override_branch_in_task": false, "limit": "", "suppress_success_alerts": false,
        "suppress_error_alerts": false, "git_branch": null, "survey_vars": [],
        "start_version": null, "autorun": false, "task_params": {}, "executor_image": "",
        "allow_parallel_tasks": false, "timeout_secs": 0, "runner_tags": []
    }))
    .unwrap();
    assert_eq!(settings.kind, TemplateType::Task);
    let mut broken = settings.clone();
    broken.repository_id = 5; // there is one repository: index 0
    let restore = ProjectRestore {
        project: ProjectFields {
            name: "half",
            alert: false,
            alert_chat: None,
            max_parallel_tasks: 0,
            kind: "",
        },
        keys: vec![NewKey {
            name: "k",
            kind: KeyKind::None,
            secret: None,
        }],
        repositories: vec![RepositoryFields {
            name: "r",
            git_url: "/srv/r",
            git_branch: "",
            ssh_key_id: Some(0),
        }],
        inventories: Vec::new(),
        environments: Vec::new(),
        views: Vec::new(),
        templates: vec![
            RestoredTemplate {
                settings,
                vaults: Vec::new(),
            },
            RestoredTemplate {
                settings: broken,
                vaults: Vec::new(),
            },
        ],
        schedules: Vec::new(),
        host_configs: Vec::new(),
        integrations: Vec::new(),
        integration_aliases: Vec::new(),
        catalog: None,
    };
    let e = server
        .store()
        .restore_project(&restore, 1)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no repository number 5"), "{e}");
    assert_eq!(project_names(&admin).await, before);
    server.stop().await;
}

async fn who_may_back_up_and_restore(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = make(&admin, "/api/projects", json!({"name": "p"})).await;
    let (guest_id, guest) = server.user("guest", false).await;
    let (_, stranger) = server.user("stranger", false).await;
    let r = admin
        .post(
            &format!("/api/project/{project}/users"),
            json!({"user_id": guest_id, "role": "guest"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);

    // Any member reads the backup (as in Semaphore); others find no project.
    let r = guest.get(&format!("/api/project/{project}/backup")).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["meta"]["name"], "p");
    let r = stranger
        .get(&format!("/api/project/{project}/backup"))
        .await;
    assert_status(&r, StatusCode::NOT_FOUND);
    let r = server
        .anonymous()
        .get(&format!("/api/project/{project}/backup"))
        .await;
    assert_status(&r, StatusCode::UNAUTHORIZED);

    // Restoring creates a project: only who may create projects.
    let r = guest
        .post("/api/projects/restore", semaphore_shaped())
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    server.stop().await;

    let server = TestServer::start_with(backend, |s| s.non_admin_can_create_project = true).await;
    let (_, user) = server.user("someone", false).await;
    let r = user.post("/api/projects/restore", semaphore_shaped()).await;
    assert_status(&r, StatusCode::OK);
    let restored = id(&r.body);
    let role = user.get(&format!("/api/project/{restored}/role")).await;
    assert_eq!(role.body["role"], "owner", "{}", role.text);
    server.stop().await;
}

on_both_backends!(
    backup_round_trips,
    semaphore_backups_restore,
    every_semaphore_backup_restores_and_what_cannot_run_says_why,
    bad_backups_leave_nothing_behind,
    a_failed_restore_rolls_back,
    who_may_back_up_and_restore,
    the_catalog_round_trips,
);

const WEBHOOK_SECRET: &str = "catalog-webhook-secret-7d1a";

/// A service's recorded state as a backup carries it.
fn recorded(name: &str, state: &str, result: &str) -> Value {
    json!({"name": name, "state": state, "deployed_at": "2026-02-10T09:30:00Z",
           "commit": "0123456789abcdef0123456789abcdef01234567",
           "last_status": {"step_id": format!("{name}.smoke.1"), "result": result,
                           "summary": format!("smoke of {name}: {result}"),
                           "artifacts": [], "next_actions": [], "task_id": null}})
}

/// The catalog travels with its project: its settings (the repository by name, the webhook's
/// secret never) and what ralf recorded of its services, which show again after a restore.
async fn the_catalog_round_trips(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let repo = GitRepo::new(&[
        ("catalog/projects/db.yaml", "name: db\napply: Deploy\n"),
        (
            "catalog/projects/web.yaml",
            "name: web\napply: Deploy\ndepends_on: [db]\n",
        ),
        ("catalog/projects/mail.yaml", "name: mail\napply: Deploy\n"),
    ]);
    let a = make(&admin, "/api/projects", json!({"name": "services"})).await;
    let base = format!("/api/project/{a}");
    let key = make(
        &admin,
        &format!("{base}/keys"),
        json!({"name": "none", "type": "none"}),
    )
    .await;
    make(
        &admin,
        &format!("{base}/repositories"),
        json!({"name": "other", "git_url": "/srv/other", "git_branch": "main", "ssh_key_id": key}),
    )
    .await;
    let catalog_repository = make(
        &admin,
        &format!("{base}/repositories"),
        json!({"name": "catalog", "git_url": repo.url(), "git_branch": "main", "ssh_key_id": key}),
    )
    .await;
    let inventory = make(
        &admin,
        &format!("{base}/inventory"),
        json!({"name": "local", "type": "static", "inventory": "localhost"}),
    )
    .await;
    make(
        &admin,
        &format!("{base}/templates"),
        json!({"name": "Deploy", "app": "bash", "playbook": "deploy.sh",
               "repository_id": catalog_repository, "inventory_id": inventory}),
    )
    .await;
    let r = admin
        .put(
            &format!("{base}/catalog/settings"),
            json!({"repository_id": catalog_repository, "path": "catalog/projects",
                   "branch": "main", "write_back": true, "parallelism": 3,
                   "schedule": "0 3 * * *", "check_schedule": "@hourly",
                   "webhook_secret": WEBHOOK_SECRET}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);

    let watched = Watched::new(admin.clone(), &[WEBHOOK_SECRET]);
    let r = watched.get(&format!("{base}/backup")).await;
    assert_status(&r, StatusCode::OK);
    let mut backup = r.body;
    assert_eq!(
        backup["catalog"],
        json!({"repository": "catalog", "path": "catalog/projects", "branch": "main",
               "write_back": true, "parallelism": 3, "schedule": "0 3 * * *",
               "check_schedule": "@hourly", "webhook_secret_set": true, "services": []})
    );

    // States recorded by rollouts (here: written into the backup) restore with it.
    backup["catalog"]["services"] = json!([
        recorded("db", "deployed", "OK"),
        recorded("web", "failed", "FAIL"),
    ]);
    backup["meta"]["name"] = json!("services again");
    let r = admin.post("/api/projects/restore", backup.clone()).await;
    assert_status(&r, StatusCode::OK);
    let b = id(&r.body);
    let r = admin
        .get(&format!("/api/project/{b}/catalog/settings"))
        .await;
    assert_status(&r, StatusCode::OK);
    let repositories = admin
        .get(&format!("/api/project/{b}/repositories"))
        .await
        .body;
    let restored_repository = repositories
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "catalog")
        .unwrap()["id"]
        .clone();
    assert_eq!(
        r.body,
        json!({"repository_id": restored_repository, "path": "catalog/projects",
               "branch": "main", "write_back": true, "parallelism": 3,
               "schedule": "0 3 * * *", "check_schedule": "@hourly",
               // The secret was not in the backup: the restored webhook is off.
               "webhook_secret_set": false})
    );
    let r = admin
        .get(&format!("/api/project/{b}/catalog/services"))
        .await;
    assert_status(&r, StatusCode::OK);
    let states: Vec<(String, String)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().into(),
                s["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("db".to_string(), "deployed".to_string()),
            ("mail".into(), "pending".into()),
            ("web".into(), "failed".into()),
        ]
    );
    let web = &r.body[2];
    assert_eq!(web["deployed_at"], "2026-02-10T09:30:00Z");
    assert_eq!(web["last_result"]["summary"], "smoke of web: FAIL");
    assert_eq!(web["last_task_id"], Value::Null);

    // And the restored project's backup is the one it came from, but for the webhook.
    let r = admin.get(&format!("/api/project/{b}/backup")).await;
    assert_status(&r, StatusCode::OK);
    backup["catalog"]["webhook_secret_set"] = json!(false);
    assert_eq!(r.body["catalog"], backup["catalog"]);

    // A state a rollout holds only while it runs, a service twice, an unknown repository:
    // refused whole, naming the place, and no project is left behind.
    let before = project_names(&admin).await;
    for (change, message) in [
        (
            json!({"services": [recorded("db", "running", "OK")]}),
            "catalog: services[0] (\"db\"): state: \"running\" is not one of",
        ),
        (
            json!({"services": [recorded("db", "deployed", "OK"), recorded("db", "held", "OK")]}),
            "catalog: services[1] (\"db\"): name: \"db\" is listed twice",
        ),
        (
            json!({"services": [recorded("../db", "deployed", "OK")]}),
            "is not a valid service name",
        ),
        (json!({"repository": "gone"}), "catalog: repository"),
        (json!({"parallelism": 0}), "catalog: parallelism"),
        (json!({"schedule": "every day"}), "catalog: schedule"),
    ] {
        let mut bad = backup.clone();
        for (field, value) in change.as_object().unwrap() {
            bad["catalog"][field] = value.clone();
        }
        let r = admin.post("/api/projects/restore", bad).await;
        assert_bad(&r, message);
    }
    assert_eq!(project_names(&admin).await, before);

    // A project without catalog settings writes no `catalog` (as Semaphore's shape has none).
    let plain = make(&admin, "/api/projects", json!({"name": "plain"})).await;
    let r = admin.get(&format!("/api/project/{plain}/backup")).await;
    assert!(r.body.get("catalog").is_none(), "{}", r.text);
    server.stop().await;
}

/// The lists of a project's objects, with the ids that differ between instances left out.
/// Names are compared without a " (2)" suffix: a backup tells same-named objects apart that
/// way, and the restored objects keep the names the backup gave them.
async fn project_objects(admin: &Api, project: i64) -> Vec<Value> {
    let mut lists = Vec::new();
    for kind in [
        "templates",
        "inventory",
        "repositories",
        "keys",
        "environment",
        "views",
    ] {
        let r = admin.get(&format!("/api/project/{project}/{kind}")).await;
        assert_status(&r, StatusCode::OK);
        let mut names: Vec<Value> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let name = o.get("name").or(o.get("title")).and_then(Value::as_str);
                let name = name.unwrap_or_default();
                json!([
                    name.strip_suffix(" (2)").unwrap_or(name),
                    o.get("type").cloned(),
                    o.get("playbook").cloned(),
                    o.get("inventory").cloned(),
                    o.get("git_url").cloned()
                ])
            })
            .collect();
        names.sort_by_key(|v| v.to_string());
        lists.push(json!({kind: names}));
    }
    lists
}

/// A backup taken from a ralf on SQLite restores into a ralf on PostgreSQL as the same project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_restores_on_postgres() {
    let sqlite = TestServer::start(Backend::Sqlite).await;
    let from = sqlite.admin().await;
    let project = full_project(&from).await;
    let r = from.get(&format!("/api/project/{project}/backup")).await;
    assert_status(&r, StatusCode::OK);
    let backup = r.body;

    let postgres = TestServer::start(Backend::Postgres).await;
    let to = postgres.admin().await;
    // An object first, so the restored ids are not the source's by chance.
    to.create("/api/projects", json!({"name": "already here"}))
        .await;
    let r = to.post("/api/projects/restore", backup.clone()).await;
    assert_status(&r, StatusCode::OK);
    let restored = id(&r.body);
    assert_ne!(restored, project);
    let r = to.get(&format!("/api/project/{restored}/backup")).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body, backup, "the restored project backs up the same");
    assert_eq!(
        project_objects(&to, restored).await,
        project_objects(&from, project).await
    );
    sqlite.stop().await;
    postgres.stop().await;
}
