//! Inventories: static INI or YAML, a file in a repository, or a Terraform/OpenTofu workspace.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, TestServer, json, on_both_backends};

use crate::keys::{assert_bad, assert_status, column, id, names, new_project, new_template};

const YAML: &str = "all:\n  children:\n    web:\n      hosts:\n        web1:\n          ansible_host: 10.0.0.1\n        web2:\n";

async fn inventories_round_trip(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let inv = format!("/api/project/{p}/inventory");
    let keys = format!("/api/project/{p}/keys");
    let ssh = id(&admin
        .create(
            &keys,
            json!({"name": "ssh", "type": "ssh", "ssh": {"private_key": "PRIVATE"}}),
        )
        .await);
    let become_key = id(&admin
        .create(
            &keys,
            json!({"name": "sudo", "type": "login_password", "login_password": {"password": "pw"}}),
        )
        .await);
    let repo = id(&admin
        .create(
            &format!("/api/project/{p}/repositories"),
            json!({"name": "ops", "git_url": "https://h/ops.git"}),
        )
        .await);

    let ini = admin
        .create(
            &inv,
            json!({"name": "Prod", "project_id": p, "type": "static", "inventory": "[web]\nweb1\n",
                   "ssh_key_id": ssh, "become_key_id": become_key}),
        )
        .await;
    let ini_id = id(&ini);
    assert_eq!(
        ini,
        json!({"id": ini_id, "name": "Prod", "project_id": p, "inventory": "[web]\nweb1\n",
               "ssh_key_id": ssh, "become_key_id": become_key, "repository_id": null, "type": "static"})
    );
    let yaml = admin
        .create(
            &inv,
            json!({"name": "staging", "type": "static-yaml", "inventory": YAML}),
        )
        .await;
    assert_eq!(yaml["ssh_key_id"], json!(null));
    assert_eq!(yaml["become_key_id"], json!(null));
    let file = admin
        .create(
            &inv,
            json!({"name": "from repo", "type": "file", "inventory": "inventories/hosts.ini",
                   "repository_id": repo, "ssh_key_id": 0}),
        )
        .await;
    assert_eq!(file["repository_id"], json!(repo));
    assert_eq!(file["ssh_key_id"], json!(null));
    admin
        .create(
            &inv,
            json!({"name": "tf", "type": "terraform-workspace", "inventory": "default"}),
        )
        .await;
    admin
        .create(
            &inv,
            json!({"name": "Tofu", "type": "tofu-workspace", "inventory": "prod"}),
        )
        .await;

    assert_eq!(
        names(&admin.get(&inv).await),
        ["from repo", "Prod", "staging", "tf", "Tofu"]
    );
    assert_eq!(
        names(&admin.get(&format!("{inv}?sort=name&order=desc")).await),
        ["Tofu", "tf", "staging", "Prod", "from repo"]
    );
    assert_eq!(
        column(&admin.get(&format!("{inv}?sort=type")).await, "type"),
        [
            "file",
            "static",
            "static-yaml",
            "terraform-workspace",
            "tofu-workspace"
        ]
    );
    assert_eq!(
        column(
            &admin.get(&format!("{inv}?sort=type&order=desc")).await,
            "type"
        ),
        [
            "tofu-workspace",
            "terraform-workspace",
            "static-yaml",
            "static",
            "file"
        ]
    );
    assert_bad(
        &admin.get(&format!("{inv}?sort=inventory")).await,
        "cannot sort by",
    );

    let r = admin.get(&format!("{inv}/{ini_id}")).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body, ini);

    let r = admin
        .put(
            &format!("{inv}/{ini_id}"),
            json!({"id": ini_id, "name": "Prod", "type": "static-yaml", "inventory": YAML,
                   "ssh_key_id": null, "become_key_id": ssh}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&format!("{inv}/{ini_id}")).await.body,
        json!({"id": ini_id, "name": "Prod", "project_id": p, "inventory": YAML,
               "ssh_key_id": null, "become_key_id": ssh, "repository_id": null, "type": "static-yaml"})
    );
    assert_bad(
        &admin
            .put(
                &format!("{inv}/{ini_id}"),
                json!({"id": id(&yaml), "name": "Prod", "type": "static"}),
            )
            .await,
        "ID in body and URL must be the same",
    );

    assert_eq!(
        admin.get(&format!("{inv}/{ini_id}/refs")).await.body,
        json!({"templates": [], "repositories": [], "inventories": []})
    );
    assert_status(
        &admin.delete(&format!("{inv}/{ini_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.get(&format!("{inv}/{ini_id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(admin.get(&inv).await.body.as_array().unwrap().len(), 4);

    let events = column(
        &admin.get(&format!("/api/project/{p}/events")).await,
        "description",
    );
    for expected in [
        "Inventory Prod created",
        "Inventory Prod updated",
        "Inventory Prod deleted",
    ] {
        assert!(events.contains(&json!(expected)), "{expected}: {events:?}");
    }
    server.stop().await;
}

async fn bad_inventories_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "mine").await;
    let other = new_project(&admin, "theirs").await;
    let inv = format!("/api/project/{p}/inventory");
    let their_key = id(&admin
        .create(
            &format!("/api/project/{other}/keys"),
            json!({"name": "k", "type": "none"}),
        )
        .await);
    let their_repo = id(&admin
        .create(
            &format!("/api/project/{other}/repositories"),
            json!({"name": "r", "git_url": "https://h/r"}),
        )
        .await);

    assert_bad(
        &admin
            .post(&inv, json!({"name": "i", "type": "dynamic"}))
            .await,
        "type must be one of static, static-yaml, file, terraform-workspace, tofu-workspace",
    );
    assert_bad(
        &admin.post(&inv, json!({"name": "i"})).await,
        "type must be one of",
    );
    assert_bad(
        &admin
            .post(
                &inv,
                json!({"name": "i", "type": "static-yaml", "inventory": "all:\n  hosts: [web1\n"}),
            )
            .await,
        "inventory is not a valid YAML inventory",
    );
    assert_bad(
        &admin
            .post(
                &inv,
                json!({"name": "i", "type": "static-yaml", "inventory": "- web1\n- web2\n"}),
            )
            .await,
        "inventory is not a valid YAML inventory",
    );
    for field in ["ssh_key_id", "become_key_id"] {
        assert_bad(
            &admin
                .post(
                    &inv,
                    json!({"name": "i", "type": "static", field: their_key}),
                )
                .await,
            &format!("{field}: no such key in this project"),
        );
    }
    assert_bad(
        &admin
            .post(
                &inv,
                json!({"name": "i", "type": "file", "inventory": "hosts", "repository_id": their_repo}),
            )
            .await,
        "repository_id: no such repository in this project",
    );
    assert_bad(
        &admin
            .post(&inv, json!({"name": "i".repeat(256), "type": "static"}))
            .await,
        "name is longer than 255",
    );
    assert_bad(
        &admin
            .post(
                &inv,
                json!({"name": "i", "type": "static", "project_id": other}),
            )
            .await,
        "Project ID in body and URL must be the same",
    );
    assert_eq!(admin.get(&inv).await.body, json!([]));

    let mine = id(&admin
        .create(
            &inv,
            json!({"name": "i", "type": "static", "inventory": "localhost"}),
        )
        .await);
    assert_bad(
        &admin
            .put(
                &format!("{inv}/{mine}"),
                json!({"id": mine, "name": "i", "type": "static", "become_key_id": their_key}),
            )
            .await,
        "become_key_id: no such key in this project",
    );
    assert_eq!(
        admin.get(&format!("{inv}/{mine}")).await.body["become_key_id"],
        json!(null)
    );

    let theirs = id(&admin
        .create(
            &format!("/api/project/{other}/inventory"),
            json!({"name": "t", "type": "static"}),
        )
        .await);
    let path = format!("{inv}/{theirs}");
    assert_status(&admin.get(&path).await, StatusCode::NOT_FOUND);
    assert_status(
        &admin.get(&format!("{path}/refs")).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin
            .put(&path, json!({"id": theirs, "name": "x", "type": "static"}))
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_status(&admin.delete(&path).await, StatusCode::NOT_FOUND);

    let (guest_id, guest) = server.user("guest", false).await;
    admin
        .post(
            &format!("/api/project/{p}/users"),
            json!({"user_id": guest_id, "role": "guest"}),
        )
        .await;
    assert_eq!(names(&guest.get(&inv).await), ["i"]);
    assert_status(
        &guest
            .post(&inv, json!({"name": "g", "type": "static"}))
            .await,
        StatusCode::FORBIDDEN,
    );
    server.stop().await;
}

async fn inventories_in_use_cannot_be_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let inv = format!("/api/project/{p}/inventory");
    let repo = id(&admin
        .create(
            &format!("/api/project/{p}/repositories"),
            json!({"name": "ops", "git_url": "https://h/ops.git"}),
        )
        .await);
    let prod = id(&admin
        .create(
            &inv,
            json!({"name": "prod", "type": "static", "inventory": "web1"}),
        )
        .await);
    let template = new_template(&admin, p, "deploy prod", repo, prod, json!({})).await;

    assert_eq!(
        admin.get(&format!("{inv}/{prod}/refs")).await.body,
        json!({"templates": [{"id": template, "name": "deploy prod"}], "repositories": [],
               "inventories": []})
    );
    let r = admin.delete(&format!("{inv}/{prod}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert_eq!(
        r.error(),
        "the inventory \"prod\" is used by template \"deploy prod\"; remove it from there first"
    );
    assert_status(&admin.get(&format!("{inv}/{prod}")).await, StatusCode::OK);

    assert_status(
        &admin
            .delete(&format!("/api/project/{p}/templates/{template}"))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.delete(&format!("{inv}/{prod}")).await,
        StatusCode::NO_CONTENT,
    );
    server.stop().await;
}

on_both_backends!(
    inventories_round_trip,
    bad_inventories_are_refused,
    inventories_in_use_cannot_be_deleted,
);
