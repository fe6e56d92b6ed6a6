//! Access keys: the key store of a project. Key material goes in and never comes out.
//!
//! Also the helpers the tests of the other project resources share.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ralf_core::ProjectId;
use ralf_core::api::keys::{KeyKind, KeyMaterial, LoginPassword, SshKey};
use ralf_core::secret::SecretCipher;
use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Api, Backend, Reply, TEST_ENCRYPTION_KEY, TestServer, json, on_both_backends};
use serde_json::Value;

const PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtopsecretkeymaterial\n-----END OPENSSH PRIVATE KEY-----\n";
const PASSPHRASE: &str = "passphrase-7d1f-secret";
const PASSWORD: &str = "login-password-99c2-secret";
const NEW_PASSWORD: &str = "rotated-password-1b7e-secret";
const NEW_PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nreplacementmaterial0042\n-----END OPENSSH PRIVATE KEY-----\n";

// ----- shared helpers -----

/// A client whose every answer is searched for the secrets it was given, as text and as base64.
pub(crate) struct Watched {
    pub api: Api,
    secrets: Vec<String>,
}

impl Watched {
    pub(crate) fn new(api: Api, secrets: &[&str]) -> Watched {
        Watched {
            api,
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn checked(&self, what: String, r: Reply) -> Reply {
        for secret in &self.secrets {
            assert!(
                !r.text.contains(secret.as_str()),
                "{what} answered the secret {secret:?}: {}",
                r.text
            );
            assert!(
                !r.text.contains(&B64.encode(secret)),
                "{what} answered the secret {secret:?} in base64: {}",
                r.text
            );
        }
        r
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        let r = self.api.get(path).await;
        self.checked(format!("GET {path}"), r)
    }
    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        let r = self.api.post(path, body).await;
        self.checked(format!("POST {path}"), r)
    }
    pub(crate) async fn put(&self, path: &str, body: Value) -> Reply {
        let r = self.api.put(path, body).await;
        self.checked(format!("PUT {path}"), r)
    }
    pub(crate) async fn delete(&self, path: &str) -> Reply {
        let r = self.api.delete(path).await;
        self.checked(format!("DELETE {path}"), r)
    }
    /// POSTs and expects 201; returns the object.
    pub(crate) async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text);
        r.body
    }
}

pub(crate) async fn new_project(admin: &Api, name: &str) -> i64 {
    admin.create("/api/projects", json!({"name": name})).await["id"]
        .as_i64()
        .unwrap()
}

pub(crate) fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// The `field` of each object of a list answer.
pub(crate) fn column(r: &Reply, field: &str) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", r.text))
        .iter()
        .map(|o| o[field].clone())
        .collect()
}

pub(crate) fn names(r: &Reply) -> Vec<String> {
    column(r, "name")
        .into_iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn assert_status(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

/// Asserts a 400 whose message contains `part`.
pub(crate) fn assert_bad(r: &Reply, part: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.error().contains(part),
        "{:?} does not contain {part:?}",
        r.error()
    );
}

pub(crate) fn cipher() -> SecretCipher {
    SecretCipher::new(Some(TEST_ENCRYPTION_KEY)).unwrap()
}

/// The stored form of a secret must show neither the plaintext nor its base64, and its
/// decoded bytes must not hold the plaintext either.
pub(crate) fn assert_sealed(stored: &str, plaintexts: &[&str]) {
    let decoded = B64.decode(stored).expect("stored secrets are base64");
    for plain in plaintexts {
        assert!(!stored.contains(plain), "stored in the clear: {stored}");
        assert!(
            !stored.contains(&B64.encode(plain)),
            "stored as base64 only: {stored}"
        );
        assert!(
            !decoded.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "stored unencrypted"
        );
    }
}

/// Creates a template using the given objects (through the templates API).
pub(crate) async fn new_template(
    admin: &Api,
    project: i64,
    name: &str,
    repository: i64,
    inventory: i64,
    extra: Value,
) -> i64 {
    let mut body = json!({"name": name, "playbook": "site.yml",
        "repository_id": repository, "inventory_id": inventory});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    id(&admin
        .create(&format!("/api/project/{project}/templates"), body)
        .await)
}

fn ssh_body(name: &str) -> Value {
    json!({"name": name, "type": "ssh",
           "ssh": {"login": "root", "passphrase": PASSPHRASE, "private_key": PRIVATE_KEY}})
}

// ----- tests -----

async fn keys_round_trip_without_their_secrets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Watched::new(
        server.admin().await,
        &[
            PRIVATE_KEY,
            PASSPHRASE,
            PASSWORD,
            NEW_PASSWORD,
            NEW_PRIVATE_KEY,
        ],
    );
    let p = new_project(&admin.api, "infra").await;
    let keys = format!("/api/project/{p}/keys");

    let mut body = ssh_body("deploy ssh");
    body["project_id"] = json!(p);
    let ssh = admin.create(&keys, body).await;
    let ssh_id = id(&ssh);
    assert_eq!(
        ssh,
        json!({"id": ssh_id, "name": "deploy ssh", "type": "ssh", "project_id": p})
    );
    let lp = admin
        .create(
            &keys,
            json!({"name": "Become", "type": "login_password",
                   "login_password": {"login": "admin", "password": PASSWORD}}),
        )
        .await;
    let lp_id = id(&lp);
    let none = admin
        .create(&keys, json!({"name": "anonymous", "type": "none"}))
        .await;
    let none_id = id(&none);

    // Sorting: by name (case-insensitive) by default, by type, both ways.
    assert_eq!(
        names(&admin.get(&keys).await),
        ["anonymous", "Become", "deploy ssh"]
    );
    assert_eq!(
        names(&admin.get(&format!("{keys}?sort=name&order=desc")).await),
        ["deploy ssh", "Become", "anonymous"]
    );
    assert_eq!(
        column(
            &admin.get(&format!("{keys}?sort=type&order=asc")).await,
            "type"
        ),
        ["login_password", "none", "ssh"]
    );
    assert_eq!(
        column(
            &admin.get(&format!("{keys}?sort=type&order=desc")).await,
            "type"
        ),
        ["ssh", "none", "login_password"]
    );
    assert_bad(
        &admin.get(&format!("{keys}?sort=secret")).await,
        "cannot sort by",
    );

    let r = admin.get(&format!("{keys}/{ssh_id}")).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body, ssh);

    // Renaming without override_secret keeps the stored material, whatever else is sent.
    let r = admin
        .put(
            &format!("{keys}/{ssh_id}"),
            json!({"id": ssh_id, "name": "deploy key", "type": "ssh",
                   "ssh": {"login": "", "passphrase": "", "private_key": NEW_PRIVATE_KEY}}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&format!("{keys}/{ssh_id}")).await.body["name"],
        "deploy key"
    );
    assert_eq!(
        material(&server, p, ssh_id).await,
        KeyMaterial::Ssh(SshKey {
            login: "root".into(),
            passphrase: PASSPHRASE.into(),
            private_key: PRIVATE_KEY.into(),
        })
    );

    // override_secret replaces it.
    let r = admin
        .put(
            &format!("{keys}/{lp_id}"),
            json!({"id": lp_id, "name": "Become", "type": "login_password", "override_secret": true,
                   "login_password": {"login": "root", "password": NEW_PASSWORD}}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        material(&server, p, lp_id).await,
        KeyMaterial::LoginPassword(LoginPassword {
            login: "root".into(),
            password: NEW_PASSWORD.into(),
        })
    );

    // Changing the type without override_secret stores the type over the old secret, as
    // Semaphore does (a task using the key then says the secret does not fit).
    let r = admin
        .put(
            &format!("{keys}/{none_id}"),
            json!({"id": none_id, "name": "anonymous", "type": "ssh",
                   "ssh": {"private_key": NEW_PRIVATE_KEY}}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&format!("{keys}/{none_id}")).await.body["type"],
        "ssh"
    );
    assert_eq!(
        material(&server, p, none_id).await,
        KeyMaterial::Ssh(SshKey::default()),
        "the secret was not replaced"
    );
    let r = admin
        .put(
            &format!("{keys}/{none_id}"),
            json!({"id": none_id, "name": "anonymous", "type": "rsa"}),
        )
        .await;
    assert_bad(&r, "type must be one of");
    let r = admin
        .put(
            &format!("{keys}/{none_id}"),
            json!({"id": none_id, "name": "anonymous", "type": "ssh", "override_secret": true, "ssh": {}}),
        )
        .await;
    assert_bad(&r, "ssh.private_key");
    let r = admin
        .put(
            &format!("{keys}/{none_id}"),
            json!({"id": none_id, "name": "now ssh", "type": "ssh", "override_secret": true,
                   "ssh": {"login": "git", "private_key": NEW_PRIVATE_KEY}}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&format!("{keys}/{none_id}")).await.body,
        json!({"id": none_id, "name": "now ssh", "type": "ssh", "project_id": p})
    );
    assert_eq!(
        material(&server, p, none_id).await,
        KeyMaterial::Ssh(SshKey {
            login: "git".into(),
            passphrase: "".into(),
            private_key: NEW_PRIVATE_KEY.into(),
        })
    );

    // The body id must be the path's.
    let r = admin
        .put(
            &format!("{keys}/{none_id}"),
            json!({"id": ssh_id, "name": "x", "type": "ssh"}),
        )
        .await;
    assert_bad(&r, "ID in body and URL must be the same");

    assert_eq!(
        admin.get(&format!("{keys}/{ssh_id}/refs")).await.body,
        json!({"templates": [], "repositories": [], "inventories": []})
    );

    assert_status(
        &admin.delete(&format!("{keys}/{lp_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.get(&format!("{keys}/{lp_id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin.delete(&format!("{keys}/{lp_id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(names(&admin.get(&keys).await), ["deploy key", "now ssh"]);

    // The activity log tells what happened, without the secrets (the watch checks that).
    let events = admin.get(&format!("/api/project/{p}/events")).await;
    let descriptions: Vec<Value> = column(&events, "description");
    for expected in [
        "Access Key deploy ssh created",
        "Access Key deploy key updated",
        "Access Key Become deleted",
    ] {
        assert!(
            descriptions.contains(&json!(expected)),
            "{expected:?} not in {descriptions:?}"
        );
    }
    assert!(
        events.body.as_array().unwrap()[0]["object_type"] == "key",
        "{}",
        events.text
    );
    server.stop().await;
}

async fn material(server: &TestServer, project: i64, key: i64) -> KeyMaterial {
    let stored = server
        .store()
        .key_secret(ProjectId(project), key)
        .await
        .unwrap();
    KeyMaterial::open(&cipher(), stored.kind, stored.secret.as_deref()).unwrap()
}

async fn key_material_is_encrypted_at_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let keys = format!("/api/project/{p}/keys");
    let ssh = id(&admin.create(&keys, ssh_body("ssh")).await);
    let lp = id(&admin
        .create(
            &keys,
            json!({"name": "lp", "type": "login_password",
                   "login_password": {"login": "admin", "password": PASSWORD}}),
        )
        .await);
    let none = id(&admin
        .create(&keys, json!({"name": "none", "type": "none"}))
        .await);

    let stored = server.store().key_secret(ProjectId(p), ssh).await.unwrap();
    assert_eq!(stored.kind, KeyKind::Ssh);
    let sealed = stored.secret.clone().expect("an ssh key has a secret");
    let plaintext = format!(
        r#"{{"login":"root","passphrase":"{PASSPHRASE}","private_key":{}}}"#,
        serde_json::to_string(PRIVATE_KEY).unwrap()
    );
    assert_sealed(&sealed, &[PRIVATE_KEY, PASSPHRASE, &plaintext]);
    // Semaphore's serialized form, under AES-GCM with the configured key.
    assert_eq!(cipher().decrypt(&sealed).unwrap(), plaintext);
    assert_eq!(
        material(&server, p, ssh).await,
        KeyMaterial::Ssh(SshKey {
            login: "root".into(),
            passphrase: PASSPHRASE.into(),
            private_key: PRIVATE_KEY.into(),
        })
    );
    // Another key cannot read it.
    let other = SecretCipher::new(Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")).unwrap();
    assert!(other.decrypt(&sealed).is_err());

    let stored = server.store().key_secret(ProjectId(p), lp).await.unwrap();
    assert_sealed(stored.secret.as_deref().unwrap(), &[PASSWORD]);
    assert_eq!(
        material(&server, p, lp).await,
        KeyMaterial::LoginPassword(LoginPassword {
            login: "admin".into(),
            password: PASSWORD.into(),
        })
    );
    assert_eq!(
        server
            .store()
            .key_secret(ProjectId(p), none)
            .await
            .unwrap()
            .secret,
        None
    );
    // Another project's id finds nothing.
    assert!(
        server
            .store()
            .key_secret(ProjectId(p + 1), ssh)
            .await
            .is_err()
    );
    server.stop().await;
}

async fn bad_keys_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "mine").await;
    let other = new_project(&admin, "theirs").await;
    let keys = format!("/api/project/{p}/keys");

    assert_bad(
        &admin.post(&keys, json!({"name": "k", "type": "rsa"})).await,
        "type must be one of none, ssh, login_password",
    );
    assert_bad(&admin.post(&keys, json!({"name": "k"})).await, "type");
    assert_bad(
        &admin
            .post(
                &keys,
                json!({"name": "k", "type": "ssh", "ssh": {"login": "root"}}),
            )
            .await,
        "ssh.private_key",
    );
    assert_bad(
        &admin.post(&keys, json!({"name": "k", "type": "ssh"})).await,
        "ssh.private_key",
    );
    assert_bad(
        &admin
            .post(
                &keys,
                json!({"name": "k", "type": "login_password", "login_password": {"login": "u"}}),
            )
            .await,
        "login_password.password",
    );
    assert_bad(
        &admin
            .post(&keys, json!({"name": "x".repeat(256), "type": "none"}))
            .await,
        "name is longer than 255",
    );
    assert_bad(
        &admin
            .post(&keys, json!({"name": "  ", "type": "none"}))
            .await,
        "name must not be empty",
    );
    assert_bad(
        &admin
            .post(
                &keys,
                json!({"name": "k", "type": "none", "project_id": other}),
            )
            .await,
        "Project ID in body and URL must be the same",
    );
    assert_bad(
        &admin
            .post(
                &keys,
                json!({"name": "k", "type": "none", "override_secret": "yes"}),
            )
            .await,
        "override_secret",
    );
    assert_eq!(admin.get(&keys).await.body, json!([]));

    // A key of another project is not found through this one.
    let theirs = id(&admin
        .create(
            &format!("/api/project/{other}/keys"),
            json!({"name": "theirs", "type": "none"}),
        )
        .await);
    let path = format!("{keys}/{theirs}");
    assert_status(&admin.get(&path).await, StatusCode::NOT_FOUND);
    assert_status(
        &admin.get(&format!("{path}/refs")).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin
            .put(
                &path,
                json!({"id": theirs, "name": "mine now", "type": "none"}),
            )
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_status(&admin.delete(&path).await, StatusCode::NOT_FOUND);
    assert_eq!(
        admin
            .get(&format!("/api/project/{other}/keys/{theirs}"))
            .await
            .body["name"],
        "theirs"
    );
    assert_status(
        &admin.get(&format!("{keys}/not-a-number")).await,
        StatusCode::BAD_REQUEST,
    );

    // Guests read, only managers write; strangers see nothing.
    let mine = id(&admin
        .create(&keys, json!({"name": "k", "type": "none"}))
        .await);
    let (guest_id, guest) = server.user("guest", false).await;
    let (_, stranger) = server.user("stranger", false).await;
    let r = admin
        .post(
            &format!("/api/project/{p}/users"),
            json!({"user_id": guest_id, "role": "guest"}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(names(&guest.get(&keys).await), ["k"]);
    assert_status(&guest.get(&format!("{keys}/{mine}")).await, StatusCode::OK);
    assert_status(
        &guest
            .post(&keys, json!({"name": "g", "type": "none"}))
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &guest
            .put(
                &format!("{keys}/{mine}"),
                json!({"id": mine, "name": "g", "type": "none"}),
            )
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &guest.delete(&format!("{keys}/{mine}")).await,
        StatusCode::FORBIDDEN,
    );
    assert_status(&stranger.get(&keys).await, StatusCode::NOT_FOUND);
    assert_status(
        &stranger.get(&format!("{keys}/{mine}")).await,
        StatusCode::NOT_FOUND,
    );
    server.stop().await;
}

async fn keys_in_use_cannot_be_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let keys = format!("/api/project/{p}/keys");
    let ssh = id(&admin.create(&keys, ssh_body("git key")).await);
    let vault = id(&admin
        .create(
            &keys,
            json!({"name": "vault", "type": "login_password",
                   "login_password": {"password": PASSWORD}}),
        )
        .await);
    let repo = id(&admin
        .create(
            &format!("/api/project/{p}/repositories"),
            json!({"name": "site", "git_url": "git@github.com:acme/site.git", "ssh_key_id": ssh}),
        )
        .await);
    let inventory = id(&admin
        .create(
            &format!("/api/project/{p}/inventory"),
            json!({"name": "prod", "type": "static", "inventory": "[web]\nweb1\n",
                   "become_key_id": ssh}),
        )
        .await);

    let refs = admin.get(&format!("{keys}/{ssh}/refs")).await;
    assert_eq!(
        refs.body,
        json!({"templates": [],
               "repositories": [{"id": repo, "name": "site"}],
               "inventories": [{"id": inventory, "name": "prod"}]})
    );
    let r = admin.delete(&format!("{keys}/{ssh}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert!(
        r.error().contains("git key")
            && r.error().contains("repository \"site\"")
            && r.error().contains("inventory \"prod\""),
        "{}",
        r.error()
    );
    assert_status(&admin.get(&format!("{keys}/{ssh}")).await, StatusCode::OK);

    // A template's vault uses a key too.
    let template = new_template(
        &admin,
        p,
        "deploy web",
        repo,
        inventory,
        json!({"vaults": [{"type": "password", "vault_key_id": vault}]}),
    )
    .await;
    assert_eq!(
        admin.get(&format!("{keys}/{vault}/refs")).await.body["templates"],
        json!([{"id": template, "name": "deploy web"}])
    );
    let r = admin.delete(&format!("{keys}/{vault}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert!(
        r.error().contains("template \"deploy web\""),
        "{}",
        r.error()
    );

    // Once nothing uses them, they go.
    assert_status(
        &admin
            .delete(&format!("/api/project/{p}/templates/{template}"))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.delete(&format!("{keys}/{vault}")).await,
        StatusCode::NO_CONTENT,
    );
    let r = admin
        .put(
            &format!("/api/project/{p}/repositories/{repo}"),
            json!({"id": repo, "name": "site", "git_url": "https://github.com/acme/site.git",
                   "ssh_key_id": null}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_status(
        &admin.delete(&format!("{keys}/{ssh}")).await,
        StatusCode::CONFLICT,
    );
    assert_status(
        &admin
            .delete(&format!("/api/project/{p}/inventory/{inventory}"))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.delete(&format!("{keys}/{ssh}")).await,
        StatusCode::NO_CONTENT,
    );
    server.stop().await;
}

/// The OpenAPI document describes the four resources, and their answers carry no secret.
async fn openapi_describes_the_resources(backend: Backend) {
    let server = TestServer::start(backend).await;
    let r = server.anonymous().get("/api/openapi.json").await;
    assert_status(&r, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for resource in ["keys", "repositories", "inventory", "environment"] {
        let list = format!("/api/project/{{project_id}}/{resource}");
        assert!(paths.contains_key(&list), "{list} missing");
        let one = paths
            .keys()
            .find(|p| p.starts_with(&format!("{list}/{{")) && !p.ends_with("/refs"))
            .unwrap_or_else(|| panic!("no {list}/{{id}}"));
        for method in ["get", "put", "delete"] {
            assert!(paths[one].get(method).is_some(), "{method} {one}");
        }
        assert!(paths.contains_key(&format!("{one}/refs")), "{one}/refs");
    }
    let schemas = &r.body["components"]["schemas"];
    let fields = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(fields("AccessKey"), ["id", "name", "project_id", "type"]);
    assert!(fields("AccessKeyRequest").contains(&"override_secret".to_string()));
    assert_eq!(fields("EnvironmentSecret"), ["id", "name", "type"]);
    server.stop().await;
}

on_both_backends!(
    openapi_describes_the_resources,
    keys_round_trip_without_their_secrets,
    key_material_is_encrypted_at_rest,
    bad_keys_are_refused,
    keys_in_use_cannot_be_deleted,
);
