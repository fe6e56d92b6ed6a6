//! Environments: extra variables, environment variables, secrets and a vault password. Secret
//! values and the password are written, stored encrypted, and never answered.

use ralf_core::ProjectId;
use ralf_core::api::keys::{KeyKind, KeyMaterial};
use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, TestServer, json, on_both_backends};
use serde_json::Value;

use crate::keys::{
    Watched, assert_bad, assert_sealed, assert_status, cipher, column, id, names, new_project,
    new_template,
};

const TOKEN: &str = "api-token-5f2a-secret";
const DB_PASSWORD: &str = "db-password-8e31-secret";
const NEW_TOKEN: &str = "rotated-token-44c0-secret";
const EXTRA: &str = "extra-secret-9d9d";
const VAULT_PASSWORD: &str = "vault-password-0b6e-secret";
const NEW_VAULT_PASSWORD: &str = "vault-password-rotated-77aa";

/// The secrets of an environment answer as `(name, type)`, in order.
fn secret_names(env: &Value) -> Vec<(String, String)> {
    env["secrets"]
        .as_array()
        .unwrap_or_else(|| panic!("no secrets list in {env}"))
        .iter()
        .map(|s| {
            let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["id", "name", "type"],
                "a secret shows only id, name, type"
            );
            (
                s["name"].as_str().unwrap().to_string(),
                s["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn secret_id(env: &Value, name: &str) -> i64 {
    env["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no secret {name} in {env}"))["id"]
        .as_i64()
        .unwrap()
}

async fn secret_value(server: &TestServer, project: i64, secret: i64) -> String {
    let stored = server
        .store()
        .key_secret(ProjectId(project), secret)
        .await
        .unwrap();
    assert_eq!(stored.kind, KeyKind::String);
    match KeyMaterial::open(&cipher(), stored.kind, stored.secret.as_deref()).unwrap() {
        KeyMaterial::String(value) => value,
        other => panic!("{other:?}"),
    }
}

async fn vault_password(server: &TestServer, project: i64, env: i64) -> Option<String> {
    server
        .store()
        .environment_password(ProjectId(project), env)
        .await
        .unwrap()
        .map(|sealed| {
            assert_sealed(&sealed, &[VAULT_PASSWORD, NEW_VAULT_PASSWORD]);
            cipher().decrypt(&sealed).unwrap()
        })
}

async fn environments_round_trip_without_their_secrets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Watched::new(
        server.admin().await,
        &[
            TOKEN,
            DB_PASSWORD,
            NEW_TOKEN,
            EXTRA,
            VAULT_PASSWORD,
            NEW_VAULT_PASSWORD,
        ],
    );
    let p = new_project(&admin.api, "infra").await;
    let envs = format!("/api/project/{p}/environment");

    let prod = admin
        .create(
            &envs,
            json!({"name": "Production", "project_id": p, "password": VAULT_PASSWORD,
            "json": r#"{"region": "eu-west-1", "replicas": 3}"#,
            "env": r#"{"APP_ENV": "production", "WORKERS": 4, "DEBUG": false}"#,
            "secrets": [
                {"name": "API_TOKEN", "secret": TOKEN, "type": "env", "operation": "create"},
                {"name": "db_password", "secret": DB_PASSWORD, "type": "var"}
            ]}),
        )
        .await;
    let prod_id = id(&prod);
    assert_eq!(prod["password"], json!(null));
    assert_eq!(prod["json"], r#"{"region": "eu-west-1", "replicas": 3}"#);
    assert_eq!(
        prod["env"],
        r#"{"APP_ENV": "production", "WORKERS": 4, "DEBUG": false}"#
    );
    assert_eq!(prod["project_id"], p);
    assert_eq!(
        secret_names(&prod),
        [
            ("API_TOKEN".to_string(), "env".to_string()),
            ("db_password".to_string(), "var".to_string())
        ]
    );
    let token_id = secret_id(&prod, "API_TOKEN");
    let db_id = secret_id(&prod, "db_password");
    assert_eq!(secret_value(&server, p, token_id).await, TOKEN);
    assert_eq!(secret_value(&server, p, db_id).await, DB_PASSWORD);
    assert_eq!(
        vault_password(&server, p, prod_id).await.as_deref(),
        Some(VAULT_PASSWORD)
    );

    // Empty json and env mean {}; no password, no secrets.
    let dev = admin.create(&envs, json!({"name": "dev"})).await;
    assert_eq!(dev["json"], "{}");
    assert_eq!(dev["env"], "{}");
    assert_eq!(dev["secrets"], json!([]));
    assert_eq!(vault_password(&server, p, id(&dev)).await, None);
    admin
        .create(&envs, json!({"name": "staging", "json": "", "env": null}))
        .await;

    assert_eq!(
        names(&admin.get(&envs).await),
        ["dev", "Production", "staging"]
    );
    assert_eq!(
        names(&admin.get(&format!("{envs}?sort=name&order=desc")).await),
        ["staging", "Production", "dev"]
    );
    assert_bad(
        &admin.get(&format!("{envs}?sort=json")).await,
        "cannot sort by",
    );
    let listed = admin.get(&envs).await;
    assert_eq!(
        secret_names(&listed.body[1]),
        secret_names(&prod),
        "the list shows the secrets of each environment"
    );
    assert_eq!(listed.body[0]["secrets"], json!([]));

    let r = admin.get(&format!("{envs}/{prod_id}")).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body, prod);

    // An update without secret operations (and without a password) keeps both; entries
    // without an operation, as the UI sends them back, change nothing.
    let r = admin
        .put(
            &format!("{envs}/{prod_id}"),
            json!({"id": prod_id, "name": "prod", "json": r#"{"region": "us-east-1"}"#, "env": "{}",
                   "secrets": [{"id": token_id, "name": "API_TOKEN", "type": "env", "secret": ""}]}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let got = admin.get(&format!("{envs}/{prod_id}")).await.body;
    assert_eq!(got["name"], "prod");
    assert_eq!(got["json"], r#"{"region": "us-east-1"}"#);
    assert_eq!(got["env"], "{}");
    assert_eq!(got["secrets"], prod["secrets"]);
    assert_eq!(secret_value(&server, p, token_id).await, TOKEN);
    assert_eq!(
        vault_password(&server, p, prod_id).await.as_deref(),
        Some(VAULT_PASSWORD)
    );

    // Operations: update a value, delete one, create one; a new vault password.
    let r = admin
        .put(
            &format!("{envs}/{prod_id}"),
            json!({"id": prod_id, "name": "prod", "password": NEW_VAULT_PASSWORD,
                   "secrets": [
                       {"id": token_id, "name": "API_TOKEN", "type": "env", "secret": NEW_TOKEN, "operation": "update"},
                       {"id": db_id, "operation": "delete"},
                       {"name": "extra", "type": "var", "secret": EXTRA, "operation": "create"}
                   ]}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let got = admin.get(&format!("{envs}/{prod_id}")).await.body;
    assert_eq!(
        secret_names(&got),
        [
            ("API_TOKEN".to_string(), "env".to_string()),
            ("extra".to_string(), "var".to_string())
        ]
    );
    assert_eq!(secret_value(&server, p, token_id).await, NEW_TOKEN);
    assert_eq!(
        secret_value(&server, p, secret_id(&got, "extra")).await,
        EXTRA
    );
    assert!(
        server
            .store()
            .key_secret(ProjectId(p), db_id)
            .await
            .is_err()
    );
    assert_eq!(
        vault_password(&server, p, prod_id).await.as_deref(),
        Some(NEW_VAULT_PASSWORD)
    );
    // Renaming a secret keeps its value.
    let r = admin
        .put(
            &format!("{envs}/{prod_id}"),
            json!({"id": prod_id, "name": "prod", "password": null,
                   "secrets": [{"id": token_id, "name": "TOKEN", "operation": "update"}]}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(secret_value(&server, p, token_id).await, NEW_TOKEN);
    assert_eq!(
        vault_password(&server, p, prod_id).await.as_deref(),
        Some(NEW_VAULT_PASSWORD)
    );
    // "" removes the vault password.
    let r = admin
        .put(
            &format!("{envs}/{prod_id}"),
            json!({"id": prod_id, "name": "prod", "password": ""}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(vault_password(&server, p, prod_id).await, None);

    assert_bad(
        &admin
            .put(
                &format!("{envs}/{prod_id}"),
                json!({"id": id(&dev), "name": "prod"}),
            )
            .await,
        "ID in body and URL must be the same",
    );

    // Environment secrets are not keys.
    let keys = admin.get(&format!("/api/project/{p}/keys")).await;
    assert_eq!(keys.body, json!([]));
    assert_status(
        &admin
            .get(&format!("/api/project/{p}/keys/{token_id}"))
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin
            .delete(&format!("/api/project/{p}/keys/{token_id}"))
            .await,
        StatusCode::NOT_FOUND,
    );

    assert_eq!(
        admin.get(&format!("{envs}/{prod_id}/refs")).await.body,
        json!({"templates": [], "repositories": [], "inventories": []})
    );
    // Deleting an environment deletes its secrets.
    assert_status(
        &admin.delete(&format!("{envs}/{prod_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.get(&format!("{envs}/{prod_id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert!(
        server
            .store()
            .key_secret(ProjectId(p), token_id)
            .await
            .is_err()
    );
    assert_eq!(names(&admin.get(&envs).await), ["dev", "staging"]);

    let events = column(
        &admin.get(&format!("/api/project/{p}/events")).await,
        "description",
    );
    for expected in [
        "Environment Production created",
        "Environment prod updated",
        "Environment prod deleted",
    ] {
        assert!(events.contains(&json!(expected)), "{expected}: {events:?}");
    }
    server.stop().await;
}

async fn environment_secrets_are_encrypted_at_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let env = admin
        .create(
            &format!("/api/project/{p}/environment"),
            json!({"name": "prod", "password": VAULT_PASSWORD,
                   "secrets": [{"name": "API_TOKEN", "secret": TOKEN, "type": "env"},
                               {"name": "db", "secret": DB_PASSWORD, "type": "var"}]}),
        )
        .await;
    let stored = server
        .store()
        .environment_secret_values(ProjectId(p), id(&env))
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for (secret, plain) in stored.iter().zip([TOKEN, DB_PASSWORD]) {
        let sealed = secret.secret.as_deref().unwrap();
        assert_sealed(sealed, &[TOKEN, DB_PASSWORD]);
        assert_eq!(cipher().decrypt(sealed).unwrap(), plain);
    }
    assert_eq!(
        (stored[0].name.as_str(), stored[0].kind.as_str()),
        ("API_TOKEN", "env")
    );
    let password = server
        .store()
        .environment_password(ProjectId(p), id(&env))
        .await
        .unwrap()
        .unwrap();
    assert_sealed(&password, &[VAULT_PASSWORD]);
    assert_eq!(cipher().decrypt(&password).unwrap(), VAULT_PASSWORD);
    server.stop().await;
}

async fn bad_environments_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "mine").await;
    let other = new_project(&admin, "theirs").await;
    let envs = format!("/api/project/{p}/environment");

    assert_bad(
        &admin
            .post(&envs, json!({"name": "e", "json": "[1, 2]"}))
            .await,
        "json must be a JSON object",
    );
    assert_bad(
        &admin
            .post(&envs, json!({"name": "e", "json": "{\"a\": "}))
            .await,
        "json is not valid JSON",
    );
    assert_bad(
        &admin
            .post(&envs, json!({"name": "e", "env": "\"x\""}))
            .await,
        "env must be a JSON object",
    );
    assert_bad(
        &admin
            .post(&envs, json!({"name": "e", "env": r#"{"PATH": ["/bin"]}"#}))
            .await,
        "env: the value of \"PATH\" must be a string, a number or a boolean",
    );
    assert_bad(
        &admin
            .post(&envs, json!({"name": "e", "json": {"a": 1}}))
            .await,
        "json",
    );
    assert_bad(
        &admin
            .post(
                &envs,
                json!({"name": "e", "secrets": [{"name": "A", "secret": "s", "type": "file"}]}),
            )
            .await,
        "secrets[0].type must be env or var",
    );
    assert_bad(
        &admin
            .post(
                &envs,
                json!({"name": "e", "secrets": [{"name": "BAD NAME", "secret": "s", "type": "env"}]}),
            )
            .await,
        "not a valid environment variable name",
    );
    assert_bad(
        &admin
            .post(
                &envs,
                json!({"name": "e", "secrets": [{"id": 1, "operation": "delete"}]}),
            )
            .await,
        "a new environment has no secrets to delete",
    );
    assert_bad(
        &admin.post(&envs, json!({"name": "e".repeat(256)})).await,
        "name is longer than 255",
    );
    assert_bad(
        &admin
            .post(&envs, json!({"name": "e", "project_id": other}))
            .await,
        "Project ID in body and URL must be the same",
    );
    assert_eq!(admin.get(&envs).await.body, json!([]));

    // Secret operations name this environment's secrets; a refused update changes nothing.
    let a = admin
        .create(
            &envs,
            json!({"name": "a", "secrets": [{"name": "S", "secret": "one", "type": "env"}]}),
        )
        .await;
    let b = admin
        .create(
            &envs,
            json!({"name": "b", "secrets": [{"name": "T", "secret": "two", "type": "env"}]}),
        )
        .await;
    let a_id = id(&a);
    let b_secret = secret_id(&b, "T");
    for op in ["update", "delete"] {
        let r = admin
            .put(
                &format!("{envs}/{a_id}"),
                json!({"id": a_id, "name": "renamed",
                       "secrets": [{"id": b_secret, "name": "T", "secret": "stolen", "operation": op}]}),
            )
            .await;
        assert_bad(&r, &format!("no secret with id {b_secret}"));
    }
    assert_eq!(admin.get(&format!("{envs}/{a_id}")).await.body, a);
    assert_eq!(secret_value(&server, p, b_secret).await, "two");
    assert_bad(
        &admin
            .put(
                &format!("{envs}/{a_id}"),
                json!({"id": a_id, "name": "a", "secrets": [{"operation": "update", "secret": "x"}]}),
            )
            .await,
        "secrets[0].id is needed to update a secret",
    );
    assert_bad(
        &admin
            .put(
                &format!("{envs}/{a_id}"),
                json!({"id": a_id, "name": "a", "secrets": [{"id": 1, "operation": "rotate"}]}),
            )
            .await,
        "secrets[0].operation must be create, update or delete",
    );
    assert_bad(
        &admin
            .put(
                &format!("{envs}/{a_id}"),
                json!({"id": a_id, "name": "a", "env": "{\"X\": null}"}),
            )
            .await,
        "env: the value of \"X\"",
    );

    // Another project's environment is not found through this one.
    let theirs = id(&admin
        .create(
            &format!("/api/project/{other}/environment"),
            json!({"name": "t"}),
        )
        .await);
    let path = format!("{envs}/{theirs}");
    assert_status(&admin.get(&path).await, StatusCode::NOT_FOUND);
    assert_status(
        &admin.get(&format!("{path}/refs")).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin.put(&path, json!({"id": theirs, "name": "x"})).await,
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
    assert_eq!(names(&guest.get(&envs).await), ["a", "b"]);
    assert_status(
        &guest.post(&envs, json!({"name": "g"})).await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &guest
            .put(&format!("{envs}/{a_id}"), json!({"id": a_id, "name": "g"}))
            .await,
        StatusCode::FORBIDDEN,
    );
    server.stop().await;
}

async fn environments_in_use_cannot_be_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let envs = format!("/api/project/{p}/environment");
    let repo = id(&admin
        .create(
            &format!("/api/project/{p}/repositories"),
            json!({"name": "ops", "git_url": "https://h/ops.git"}),
        )
        .await);
    let inventory = id(&admin
        .create(
            &format!("/api/project/{p}/inventory"),
            json!({"name": "hosts", "type": "static", "inventory": "localhost"}),
        )
        .await);
    let prod = id(&admin
        .create(
            &envs,
            json!({"name": "prod", "secrets": [{"name": "S", "secret": "v", "type": "var"}]}),
        )
        .await);
    let extra = id(&admin.create(&envs, json!({"name": "extra"})).await);
    let main = new_template(
        &admin,
        p,
        "deploy",
        repo,
        inventory,
        json!({"environment_id": prod}),
    )
    .await;
    let other = new_template(
        &admin,
        p,
        "multi",
        repo,
        inventory,
        json!({"environment_ids": [extra]}),
    )
    .await;

    assert_eq!(
        admin.get(&format!("{envs}/{prod}/refs")).await.body,
        json!({"templates": [{"id": main, "name": "deploy"}], "repositories": [], "inventories": []})
    );
    assert_eq!(
        admin.get(&format!("{envs}/{extra}/refs")).await.body["templates"],
        json!([{"id": other, "name": "multi"}])
    );
    let r = admin.delete(&format!("{envs}/{prod}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert_eq!(
        r.error(),
        "the environment \"prod\" is used by template \"deploy\"; remove it from there first"
    );
    // Nothing was deleted, secrets included.
    let kept = admin.get(&format!("{envs}/{prod}")).await;
    assert_status(&kept, StatusCode::OK);
    assert_eq!(kept.body["secrets"].as_array().unwrap().len(), 1);
    let r = admin.delete(&format!("{envs}/{extra}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert!(r.error().contains("template \"multi\""), "{}", r.error());

    for template in [main, other] {
        assert_status(
            &admin
                .delete(&format!("/api/project/{p}/templates/{template}"))
                .await,
            StatusCode::NO_CONTENT,
        );
    }
    for env in [prod, extra] {
        assert_status(
            &admin.delete(&format!("{envs}/{env}")).await,
            StatusCode::NO_CONTENT,
        );
    }
    server.stop().await;
}

on_both_backends!(
    environments_round_trip_without_their_secrets,
    environment_secrets_are_encrypted_at_rest,
    bad_environments_are_refused,
    environments_in_use_cannot_be_deleted,
);
