//! The store's project resources (keys, repositories, inventories, environments) on both
//! backends: the database refuses to delete what is used, refs find the users, environment
//! secrets stay out of the key list, and a project goes with everything in it.

mod common;

use ralf_core::ProjectId;
use ralf_core::api::environments::SecretKind;
use ralf_core::api::inventories::InventoryKind;
use ralf_core::api::keys::KeyKind;
use ralf_store::environments::{EnvironmentFields, PasswordChange, SealedSecretChange};
use ralf_store::inventories::InventoryFields;
use ralf_store::keys::{KeyUpdate, NewKey};
use ralf_store::repositories::RepositoryFields;
use ralf_store::{Store, StoreError};
use ralf_testdb::{Backend, TestDatabase, on_both_backends};

struct Fixture {
    store: Store,
    project: ProjectId,
    other: ProjectId,
    db: TestDatabase,
}

async fn fixture(backend: Backend) -> Fixture {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.settings).await.expect("store");
    let user = common::user(&store, "owner").await;
    let mut ids = [ProjectId(0); 2];
    for (i, name) in ["mine", "theirs"].into_iter().enumerate() {
        ids[i] = ProjectId(common::project(&store, user, name).await);
    }
    Fixture {
        store,
        project: ids[0],
        other: ids[1],
        db,
    }
}

fn env_fields(name: &str) -> EnvironmentFields<'_> {
    EnvironmentFields {
        name,
        json: "{}",
        env: "{}",
        password: PasswordChange::Keep,
    }
}

async fn the_database_refuses_to_delete_what_is_used(backend: Backend) {
    let f = fixture(backend).await;
    let (s, p) = (&f.store, f.project);
    let key = s
        .create_key(
            p,
            &NewKey {
                name: "k",
                kind: KeyKind::Ssh,
                secret: Some("c2VhbGVk"),
            },
        )
        .await
        .unwrap();
    let repo = s
        .create_repository(
            p,
            &RepositoryFields {
                name: "r",
                git_url: "https://h/r",
                git_branch: "",
                ssh_key_id: Some(key.id),
            },
        )
        .await
        .unwrap();
    let inventory = s
        .create_inventory(
            p,
            &InventoryFields {
                name: "i",
                kind: InventoryKind::File,
                inventory: "hosts",
                ssh_key_id: None,
                become_key_id: Some(key.id),
                repository_id: Some(repo.id),
            },
        )
        .await
        .unwrap();
    let env = s
        .create_environment(p, &env_fields("e"), &[])
        .await
        .unwrap();
    let template = common::raw_scalar(
        &f.db.settings,
        &format!(
            "INSERT INTO templates (project_id, name, repository_id, inventory_id, environment_id)
             VALUES ({p}, 't', {}, {}, {}) RETURNING id",
            repo.id, inventory.id, env.id
        ),
    )
    .await;

    // Without asking refs first, the foreign keys refuse.
    assert!(matches!(
        s.delete_key(p, key.id).await,
        Err(StoreError::InUse(_))
    ));
    assert!(matches!(
        s.delete_repository(p, repo.id).await,
        Err(StoreError::InUse(_))
    ));
    assert!(matches!(
        s.delete_inventory(p, inventory.id).await,
        Err(StoreError::InUse(_))
    ));
    assert!(matches!(
        s.delete_environment(p, env.id).await,
        Err(StoreError::InUse(_))
    ));
    assert_eq!(s.key(p, key.id).await.unwrap(), key);
    assert_eq!(s.environment(p, env.id).await.unwrap(), env);

    let refs = s.key_refs(p, key.id).await.unwrap();
    assert_eq!(refs.repositories.len(), 1);
    assert_eq!(refs.inventories[0].name, "i");
    let refs = s.repository_refs(p, repo.id).await.unwrap();
    assert_eq!(refs.templates[0].id, template);
    assert_eq!(refs.inventories[0].id, inventory.id);
    assert_eq!(
        s.inventory_refs(p, inventory.id).await.unwrap().templates[0].name,
        "t"
    );
    assert_eq!(
        s.environment_refs(p, env.id).await.unwrap().templates[0].id,
        template
    );
    // Another project's ids are simply not found.
    assert!(matches!(
        s.delete_key(f.other, key.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.repository(f.other, repo.id).await,
        Err(StoreError::NotFound)
    ));

    // A project is deleted with everything in it, however its objects refer to each other.
    s.delete_project(p).await.unwrap();
    assert!(matches!(
        s.key_secret(p, key.id).await,
        Err(StoreError::NotFound)
    ));
    f.store.close().await;
}

async fn environment_ids_count_as_refs(backend: Backend) {
    let f = fixture(backend).await;
    let (s, p) = (&f.store, f.project);
    let a = s
        .create_environment(p, &env_fields("a"), &[])
        .await
        .unwrap();
    let b = s
        .create_environment(p, &env_fields("b"), &[])
        .await
        .unwrap();
    let t = common::raw_scalar(
        &f.db.settings,
        &format!(
            "INSERT INTO templates (project_id, name, environment_ids)
             VALUES ({p}, 'multi', '[{}, 12345]') RETURNING id",
            a.id
        ),
    )
    .await;
    // A malformed column does not break the query.
    common::raw_scalar(
        &f.db.settings,
        &format!(
            "INSERT INTO templates (project_id, name, environment_ids)
             VALUES ({p}, 'broken', 'not json') RETURNING id"
        ),
    )
    .await;
    assert_eq!(
        s.environment_refs(p, a.id).await.unwrap().templates[0].id,
        t
    );
    assert!(s.environment_refs(p, b.id).await.unwrap().is_empty());
    f.store.close().await;
}

async fn environment_secrets_are_not_keys(backend: Backend) {
    let f = fixture(backend).await;
    let (s, p) = (&f.store, f.project);
    s.create_key(
        p,
        &NewKey {
            name: "real key",
            kind: KeyKind::None,
            secret: None,
        },
    )
    .await
    .unwrap();
    let env = s
        .create_environment(
            p,
            &env_fields("e"),
            &[SealedSecretChange::Create {
                name: "TOKEN".into(),
                kind: SecretKind::Env,
                secret: "c2VhbGVk".into(),
            }],
        )
        .await
        .unwrap();
    let secret = env.secrets[0].id;
    let keys = s.keys(p, None, false).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "real key");
    assert!(matches!(s.key(p, secret).await, Err(StoreError::NotFound)));
    assert!(matches!(
        s.update_key(
            p,
            secret,
            &KeyUpdate {
                name: "x",
                replace_secret: None
            }
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_key(p, secret).await,
        Err(StoreError::NotFound)
    ));
    // ... but the executor can read them.
    assert_eq!(s.key_secret(p, secret).await.unwrap().kind, KeyKind::String);

    // All or nothing: a change naming a foreign secret undoes the whole update.
    let r = s
        .update_environment(
            p,
            env.id,
            &env_fields("renamed"),
            &[
                SealedSecretChange::Delete { id: secret },
                SealedSecretChange::Delete { id: secret + 1000 },
            ],
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(s.environment(p, env.id).await.unwrap(), env);

    s.delete_environment(p, env.id).await.unwrap();
    assert!(matches!(
        s.key_secret(p, secret).await,
        Err(StoreError::NotFound)
    ));
    f.store.close().await;
}

/// A row the store cannot read is the database's fault: `Corrupt`, never `Invalid` (which the
/// server answers as the caller's mistake).
async fn unreadable_rows_are_corrupt(backend: Backend) {
    let f = fixture(backend).await;
    let (s, p) = (&f.store, f.project);
    let key = s
        .create_key(
            p,
            &NewKey {
                name: "k",
                kind: KeyKind::None,
                secret: None,
            },
        )
        .await
        .unwrap();
    let changed = common::raw_scalar(
        &f.db.settings,
        &format!(
            "UPDATE access_keys SET type = 'rsa' WHERE id = {} RETURNING id",
            key.id
        ),
    )
    .await;
    assert_eq!(changed, key.id);
    let r = s.key(p, key.id).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    let r = s.keys(p, None, false).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    f.store.close().await;
}

on_both_backends!(
    unreadable_rows_are_corrupt,
    the_database_refuses_to_delete_what_is_used,
    environment_ids_count_as_refs,
    environment_secrets_are_not_keys,
);
