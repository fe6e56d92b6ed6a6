//! Templates: every field round-trips, lists sort, each invalid body is refused with a message
//! naming the field, references stay inside the project, views and build templates behave.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{
    Api, Backend, ProjectFixture, TestProject, TestServer, json, merge_fields, on_both_backends,
};
use serde_json::Value;

/// A project with one of each resource a template names (and two environments).
struct Project {
    id: i64,
    key: i64,
    repository: i64,
    inventory: i64,
    environment: i64,
    environment2: i64,
    _made: TestProject,
}

impl Project {
    async fn new(api: &Api, name: &str) -> Project {
        let made = ProjectFixture::new(name)
            .inventory(json!({"name": "prod", "inventory": "[web]\nweb1\n"}))
            .environment(json!({}))
            .create(api)
            .await;
        let environment2 = api
            .create(
                &made.path("/environment"),
                json!({"name": "more vars", "json": "{}", "env": "{}"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        Project {
            id: made.id,
            key: made.key,
            repository: made.repository,
            inventory: made.inventory,
            environment: made.environment.unwrap(),
            environment2,
            _made: made,
        }
    }

    fn templates(&self) -> String {
        format!("/api/project/{}/templates", self.id)
    }

    fn template(&self, id: &Value) -> String {
        format!("/api/project/{}/templates/{id}", self.id)
    }

    /// The smallest valid Ansible template.
    fn ansible(&self, name: &str) -> Value {
        json!({"name": name, "playbook": "site.yml", "inventory_id": self.inventory,
               "repository_id": self.repository})
    }
}

/// `body` with `changes` laid over it (`null` values included).
fn with(body: &Value, changes: Value) -> Value {
    let mut out = body.clone();
    merge_fields(&mut out, changes);
    out
}

/// The template as sent, compared field by field with the answer; vault ids are new.
fn assert_template_is(answer: &Value, sent: &Value) {
    for (field, value) in sent.as_object().unwrap() {
        if field == "vaults" {
            let vaults = answer["vaults"].as_array().unwrap();
            let sent = value.as_array().unwrap();
            assert_eq!(vaults.len(), sent.len(), "vaults: {answer}");
            for (got, want) in vaults.iter().zip(sent) {
                assert!(got["id"].as_i64().unwrap() > 0);
                let mut got = got.clone();
                got.as_object_mut().unwrap().remove("id");
                assert_eq!(&got, want, "vault");
            }
        } else {
            assert_eq!(&answer[field], value, "field {field} of {answer}");
        }
    }
}

async fn every_field_round_trips(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let view = admin
        .create(
            &format!("/api/project/{}/views", p.id),
            json!({"title": "Web"}),
        )
        .await;
    let build = admin
        .create(
            &p.templates(),
            with(
                &p.ansible("build"),
                json!({"type": "build", "start_version": "1.0.0"}),
            ),
        )
        .await;

    let full = json!({
        "name": "Deploy web",
        "app": "ansible",
        "type": "deploy",
        "repository_id": p.repository,
        "inventory_id": p.inventory,
        "environment_id": p.environment,
        "environment_ids": [p.environment2],
        "view_id": view["id"],
        "build_template_id": build["id"],
        "playbook": "deploy.yml",
        "working_directory": "ansible/web",
        "arguments": "[\"-v\",\"--forks=5\"]",
        "description": "Deploys the web tier",
        "allow_override_args_in_task": true,
        "allow_override_branch_in_task": true,
        "limit": "web1,web2",
        "suppress_success_alerts": true,
        "suppress_error_alerts": true,
        "git_branch": "release",
        "survey_vars": [
            {"name": "region", "title": "Region", "description": "Where to deploy",
             "type": "enum", "target": "", "required": true,
             "values": [{"name": "Europe", "value": "eu"}, {"name": "America", "value": "us"}]},
            {"name": "API_TOKEN", "title": "Token", "description": "", "type": "secret",
             "target": "env", "required": false, "values": []},
            {"name": "replicas", "title": "Replicas", "description": "", "type": "int",
             "target": "", "required": false, "values": []}
        ],
        "vaults": [
            {"name": "", "type": "password", "vault_key_id": p.key, "script": ""},
            {"name": "ops", "type": "script", "vault_key_id": null, "script": "scripts/vault-client.py"}
        ],
        "start_version": null,
        "autorun": true,
        "task_params": {"debug": true, "diff": false, "limit": ["web1"], "tags": ["web"],
                        "skip_tags": [], "allow_override_limit": true},
        "executor_image": "ghcr.io/example/job:1",
        "allow_parallel_tasks": true,
        "timeout_secs": 3600,
        "runner_tags": ["linux", "dmz"]
    });
    let created = admin.create(&p.templates(), full.clone()).await;
    assert_template_is(&created, &full);
    assert_eq!(created["project_id"], p.id);
    let id = created["id"].clone();
    let got = admin.get(&p.template(&id)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created);

    // The list shows the same template, with its task count and (no) last task.
    let list = admin.get(&p.templates()).await.body;
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(item["tasks"], 0);
    assert_eq!(item["last_task"], Value::Null);
    let mut bare = item.clone();
    bare.as_object_mut().unwrap().remove("tasks");
    bare.as_object_mut().unwrap().remove("last_task");
    assert_eq!(bare, created);

    // PUT replaces everything, vaults included; absent ids become null again.
    let changed = json!({
        "id": id,
        "name": "Deploy web tier",
        "app": "ansible",
        "type": "",
        "repository_id": p.repository,
        "inventory_id": p.inventory,
        "environment_id": null,
        "environment_ids": [],
        "view_id": null,
        "build_template_id": null,
        "playbook": "web.yml",
        "working_directory": null,
        "arguments": "[]",
        "description": "",
        "allow_override_args_in_task": false,
        "allow_override_branch_in_task": false,
        "limit": "",
        "suppress_success_alerts": false,
        "suppress_error_alerts": false,
        "git_branch": null,
        "survey_vars": [],
        "vaults": [{"name": "prod", "type": "password", "vault_key_id": p.key, "script": ""}],
        "start_version": null,
        "autorun": false,
        "task_params": {},
        "executor_image": "",
        "allow_parallel_tasks": false,
        "timeout_secs": 0,
        "runner_tags": []
    });
    let r = admin.put(&p.template(&id), changed.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let got = admin.get(&p.template(&id)).await.body;
    assert_template_is(&got, &changed);
    let old_vault_ids: Vec<&Value> = created["vaults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["id"])
        .collect();
    assert!(!old_vault_ids.contains(&&got["vaults"][0]["id"]));

    // What Semaphore's UI sends back (the GET answer itself) is accepted as it is.
    let r = admin.put(&p.template(&id), got.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let events = admin
        .get(&format!("/api/project/{}/events", p.id))
        .await
        .body;
    let descriptions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_type"] == "template" && e["object_id"] == id)
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        descriptions,
        [
            "Template Deploy web tier updated",
            "Template Deploy web tier updated",
            "Template Deploy web created"
        ]
    );

    let r = admin.delete(&p.template(&id)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&p.template(&id)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.delete(&p.template(&id)).await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

async fn defaults_and_absent_ids_are_null(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let t = admin
        .create(
            &p.templates(),
            json!({"name": "infra", "app": "terraform", "repository_id": p.repository,
                   "inventory_id": 0, "view_id": null}),
        )
        .await;
    for field in [
        "inventory_id",
        "environment_id",
        "view_id",
        "build_template_id",
        "arguments",
        "working_directory",
        "git_branch",
        "start_version",
    ] {
        assert_eq!(t[field], Value::Null, "{field} of {t}");
    }
    assert_eq!(t["app"], "terraform");
    assert_eq!(t["type"], "");
    assert_eq!(t["playbook"], "");
    assert_eq!(t["environment_ids"], json!([]));
    assert_eq!(t["survey_vars"], json!([]));
    assert_eq!(t["vaults"], json!([]));
    assert_eq!(t["task_params"], json!({}));
    assert_eq!(t["runner_tags"], json!([]));
    assert_eq!(t["timeout_secs"], 0);
    assert_eq!(t["allow_parallel_tasks"], false);

    // No app means ansible; arguments may come as a real JSON array.
    let t = admin
        .create(
            &p.templates(),
            with(&p.ansible("a"), json!({"arguments": ["--check"]})),
        )
        .await;
    assert_eq!(t["app"], "ansible");
    assert_eq!(t["arguments"], "[\"--check\"]");
    server.stop().await;
}

async fn lists_sort_and_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    for (name, playbook) in [("beta", "a.yml"), ("alpha", "c.yml"), ("gamma", "b.yml")] {
        admin
            .create(
                &p.templates(),
                with(&p.ansible(name), json!({"playbook": playbook})),
            )
            .await;
    }
    let names = |list: Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |query: &'static str| {
        let admin = admin.clone();
        let url = format!("{}{query}", p.templates());
        async move {
            let r = admin.get(&url).await;
            assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text);
            r.body
        }
    };
    assert_eq!(names(list("").await), ["alpha", "beta", "gamma"]);
    assert_eq!(
        names(list("?sort=name&order=desc").await),
        ["gamma", "beta", "alpha"]
    );
    assert_eq!(
        names(list("?sort=playbook&order=asc").await),
        ["beta", "gamma", "alpha"]
    );
    assert_eq!(
        names(list("?sort=playbook&order=desc").await),
        ["alpha", "gamma", "beta"]
    );
    // Sorting by a joined name works; ties fall back to the id.
    assert_eq!(
        names(list("?sort=inventory").await),
        ["beta", "alpha", "gamma"]
    );
    let r = admin.get(&format!("{}?sort=password", p.templates())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.error(),
        "cannot sort by \"password\"; sort by one of: name, playbook, inventory, environment, repository, ssh_key"
    );
    let r = admin.get(&format!("{}?order=up", p.templates())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

async fn invalid_templates_are_refused_with_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let base = p.ansible("t");
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": " "}), "name must not be empty"),
        (
            json!({"name": "x".repeat(256)}),
            "name is longer than 255 characters",
        ),
        (
            json!({"app": "chef"}),
            "app \"chef\" is not supported; app must be one of: ansible, terraform, tofu, bash, python, powershell, pulumi, terragrunt",
        ),
        (
            json!({"playbook": ""}),
            "playbook is required for ansible templates",
        ),
        (
            json!({"inventory_id": null}),
            "inventory_id is required for ansible templates",
        ),
        (
            json!({"app": "bash", "playbook": ""}),
            "playbook (the script to run) is required for bash templates",
        ),
        (
            json!({"app": "python", "playbook": null}),
            "playbook (the script to run) is required for python templates",
        ),
        (json!({"repository_id": null}), "repository_id is required"),
        (
            json!({"repository_id": 999999}),
            "repository_id: no such repository in this project",
        ),
        (
            json!({"inventory_id": 999999}),
            "inventory_id: no such inventory in this project",
        ),
        (
            json!({"environment_id": 999999}),
            "environment_id: no such environment in this project",
        ),
        (
            json!({"environment_ids": [p.environment, 999999]}),
            "environment_ids: no such environment in this project",
        ),
        (
            json!({"view_id": 999999}),
            "view_id: no such view in this project",
        ),
        (
            json!({"build_template_id": 999999}),
            "build_template_id: no such template in this project",
        ),
        (
            json!({"vaults": [{"type": "password", "vault_key_id": 999999}]}),
            "vaults[0].vault_key_id: no such key in this project",
        ),
        (
            json!({"vaults": [{"type": "password"}]}),
            "vaults[0].vault_key_id is required for a password vault",
        ),
        (
            json!({"vaults": [{"name": "x", "type": "script", "script": ""}]}),
            "vaults[0].script is required for a script vault",
        ),
        (
            json!({"arguments": "-v"}),
            "arguments must be a JSON array of strings, like [\"-v\"]",
        ),
        (
            json!({"arguments": "[1, 2]"}),
            "arguments must be a JSON array of strings, like [\"-v\"]",
        ),
        (
            json!({"survey_vars": [{"name": "a"}, {"name": "a"}]}),
            "survey_vars[1].name: the variable \"a\" is defined twice",
        ),
        (
            json!({"working_directory": "/etc/ansible"}),
            "working_directory must be relative to the repository, not an absolute path",
        ),
        (
            json!({"working_directory": "roles/../../.."}),
            "working_directory must stay inside the repository",
        ),
        (
            json!({"type": "deploy"}),
            "build_template_id is required for deploy templates",
        ),
        (
            json!({"timeout_secs": -1}),
            "timeout_secs must not be negative (0 means no limit)",
        ),
        (
            json!({"runner_tags": ["linux", " "]}),
            "runner_tags[1] must not be empty",
        ),
    ];
    for (changes, message) in cases {
        let body = with(&base, changes.clone());
        let r = admin.post(&p.templates(), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{changes}: {}", r.text);
        assert_eq!(r.error(), message, "{changes}");
    }
    // Wrong JSON types are refused by the decoder, which names the field.
    for (changes, field) in [
        (
            json!({"survey_vars": [{"name": "a", "type": "bool"}]}),
            "survey_vars[0].type",
        ),
        (json!({"type": "nightly"}), "type"),
        (json!({"task_params": {"debug": "yes"}}), "task_params"),
        (json!({"arguments": 5}), "arguments"),
    ] {
        let r = admin
            .post(&p.templates(), with(&base, changes.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{changes}");
        assert!(r.error().contains(field), "{changes}: {}", r.error());
    }
    // Nothing was created.
    assert_eq!(admin.get(&p.templates()).await.body, json!([]));

    // A valid template, then an update naming another template's id.
    let t = admin.create(&p.templates(), base.clone()).await;
    let r = admin
        .put(&p.template(&t["id"]), with(&base, json!({"id": 999999})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "Template ID in body and URL must be the same");
    let r = admin
        .put(
            &p.template(&t["id"]),
            with(&base, json!({"project_id": 999999})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "project_id in body and URL must be the same");
    let r = admin
        .put(&p.template(&t["id"]), with(&base, json!({"name": ""})))
        .await;
    assert_eq!(r.error(), "name must not be empty");
    let r = admin.put(&p.template(&json!(999999)), base.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn references_stay_inside_the_project(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let q = Project::new(&admin, "q").await;
    let theirs = admin.create(&q.templates(), q.ansible("theirs")).await;
    let q_view = admin
        .create(
            &format!("/api/project/{}/views", q.id),
            json!({"title": "theirs"}),
        )
        .await;
    // An environment secret is stored as a key, but it is not one a vault may use.
    let with_secret = admin
        .create(
            &format!("/api/project/{}/environment", p.id),
            json!({"name": "secrets", "json": "{}", "env": "{}",
                   "secrets": [{"name": "TOKEN", "secret": "s3cret", "type": "env", "operation": "create"}]}),
        )
        .await;
    let secret_key = with_secret["secrets"][0]["id"].clone();
    assert!(secret_key.is_i64(), "{with_secret}");
    let base = p.ansible("t");
    for (changes, message) in [
        (
            json!({"vaults": [{"type": "password", "vault_key_id": secret_key}]}),
            "vaults[0].vault_key_id: no such key in this project",
        ),
        (
            json!({"inventory_id": q.inventory}),
            "inventory_id: no such inventory in this project",
        ),
        (
            json!({"repository_id": q.repository}),
            "repository_id: no such repository in this project",
        ),
        (
            json!({"environment_id": q.environment}),
            "environment_id: no such environment in this project",
        ),
        (
            json!({"environment_ids": [q.environment2]}),
            "environment_ids: no such environment in this project",
        ),
        (
            json!({"view_id": q_view["id"]}),
            "view_id: no such view in this project",
        ),
        (
            json!({"type": "deploy", "build_template_id": theirs["id"]}),
            "build_template_id: no such template in this project",
        ),
        (
            json!({"vaults": [{"type": "password", "vault_key_id": q.key}]}),
            "vaults[0].vault_key_id: no such key in this project",
        ),
    ] {
        let r = admin
            .post(&p.templates(), with(&base, changes.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{changes}: {}", r.text);
        assert_eq!(r.error(), message, "{changes}");
    }
    // Another project's template is not found under this one.
    for r in [
        admin.get(&p.template(&theirs["id"])).await,
        admin.delete(&p.template(&theirs["id"])).await,
        admin
            .put(
                &p.template(&theirs["id"]),
                with(&base, json!({"id": theirs["id"]})),
            )
            .await,
        admin
            .get(&format!("{}/refs", p.template(&theirs["id"])))
            .await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    }
    assert_eq!(
        admin.get(&q.template(&theirs["id"])).await.status,
        StatusCode::OK
    );
    server.stop().await;
}

async fn build_and_deploy_templates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let build = admin
        .create(
            &p.templates(),
            with(
                &p.ansible("build"),
                json!({"type": "build", "start_version": "0.1"}),
            ),
        )
        .await;
    let deploy_body = with(
        &p.ansible("deploy"),
        json!({"type": "deploy", "build_template_id": build["id"], "autorun": true}),
    );
    let deploy = admin.create(&p.templates(), deploy_body.clone()).await;
    assert_eq!(deploy["build_template_id"], build["id"]);

    let refs = admin
        .get(&format!("{}/refs", p.template(&build["id"])))
        .await;
    assert_eq!(refs.status, StatusCode::OK);
    assert_eq!(
        refs.body,
        json!({"templates": [{"id": deploy["id"], "name": "deploy"}], "inventories": [],
               "repositories": [], "integrations": [], "schedules": []})
    );
    let refs = admin
        .get(&format!("{}/refs", p.template(&deploy["id"])))
        .await;
    assert_eq!(refs.body["templates"], json!([]));

    // A template may not be its own build template, nor close a loop of them.
    let r = admin
        .put(
            &p.template(&deploy["id"]),
            with(&deploy_body, json!({"build_template_id": deploy["id"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.error(),
        "build_template_id must not be the template itself"
    );
    let r = admin
        .put(
            &p.template(&build["id"]),
            with(
                &p.ansible("build"),
                json!({"type": "deploy", "build_template_id": deploy["id"]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.error(),
        "build_template_id: the build templates would form a cycle back to this template"
    );

    // The build template stays while a deploy template needs it.
    let r = admin.delete(&p.template(&build["id"])).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.error(),
        "the template is the build template of \"deploy\"; change that template first"
    );
    assert_eq!(
        admin.delete(&p.template(&deploy["id"])).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.delete(&p.template(&build["id"])).await.status,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

async fn deleting_a_view_keeps_its_templates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let views = format!("/api/project/{}/views", p.id);
    let web = admin.create(&views, json!({"title": "Web"})).await;
    let all = admin
        .create(&views, json!({"title": "Everything", "type": "all"}))
        .await;
    let inside = admin
        .create(
            &p.templates(),
            with(&p.ansible("inside"), json!({"view_id": web["id"]})),
        )
        .await;
    admin.create(&p.templates(), p.ansible("outside")).await;

    let in_view = |view: &Value| format!("{views}/{}/templates", view["id"]);
    let names = |r: Value| -> Vec<String> {
        r.as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(admin.get(&in_view(&web)).await.body), ["inside"]);
    assert_eq!(
        names(admin.get(&in_view(&all)).await.body),
        ["inside", "outside"]
    );

    let r = admin.delete(&format!("{views}/{}", web["id"])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let got = admin.get(&p.template(&inside["id"])).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["view_id"], Value::Null);
    assert_eq!(
        admin.get(&in_view(&web)).await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

async fn members_read_and_managers_write(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let t = admin.create(&p.templates(), p.ansible("t")).await;
    let (guest_id, guest) = server.user("guest", false).await;
    let (manager_id, manager) = server.user("manager", false).await;
    let (_, stranger) = server.user("stranger", false).await;
    for (user, role) in [(guest_id, "guest"), (manager_id, "manager")] {
        let r = admin
            .post(
                &format!("/api/project/{}/users", p.id),
                json!({"user_id": user, "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(guest.get(&p.templates()).await.status, StatusCode::OK);
    assert_eq!(
        guest.get(&p.template(&t["id"])).await.status,
        StatusCode::OK
    );
    assert_eq!(
        guest
            .get(&format!("{}/refs", p.template(&t["id"])))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        guest.post(&p.templates(), p.ansible("mine")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        guest.delete(&p.template(&t["id"])).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stranger.get(&p.templates()).await.status,
        StatusCode::NOT_FOUND
    );
    let made = manager.create(&p.templates(), p.ansible("managed")).await;
    let r = manager
        .put(
            &p.template(&made["id"]),
            with(&p.ansible("managed better"), json!({"id": made["id"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        manager.delete(&p.template(&made["id"])).await.status,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

async fn lists_show_tasks_and_deleting_removes_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = Project::new(&admin, "p").await;
    let busy = admin.create(&p.templates(), p.ansible("busy")).await;
    admin.create(&p.templates(), p.ansible("idle")).await;
    let tasks = format!("/api/project/{}/tasks", p.id);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let task = admin
            .create(&tasks, json!({"template_id": busy["id"]}))
            .await;
        ids.push(task["id"].clone());
    }

    let list = admin.get(&p.templates()).await.body;
    let busy_item = &list[0];
    assert_eq!(busy_item["name"], "busy");
    assert_eq!(busy_item["tasks"], 2);
    let last = &busy_item["last_task"];
    assert_eq!(last["id"], ids[1]);
    assert_eq!(last["template_id"], busy["id"]);
    assert_eq!(last["project_id"], p.id);
    assert_eq!(last["user_name"], "Admin");
    assert!(last["status"].is_string(), "{last}");
    let idle_item = &list[1];
    assert_eq!(idle_item["tasks"], 0);
    assert_eq!(idle_item["last_task"], Value::Null);

    // Deleting a template deletes its tasks, as Semaphore does.
    assert_eq!(
        admin.delete(&p.template(&busy["id"])).await.status,
        StatusCode::NO_CONTENT
    );
    for id in &ids {
        assert_eq!(
            admin.get(&format!("{tasks}/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    server.stop().await;
}

on_both_backends!(
    every_field_round_trips,
    defaults_and_absent_ids_are_null,
    lists_sort_and_order,
    invalid_templates_are_refused_with_the_field,
    references_stay_inside_the_project,
    build_and_deploy_templates,
    deleting_a_view_keeps_its_templates,
    members_read_and_managers_write,
    lists_show_tasks_and_deleting_removes_them
);
