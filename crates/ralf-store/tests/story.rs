//! The store's story on both backends: a user signs up, logs in, gets a token, creates a
//! project, invites a colleague, and things happen that the activity log records; then the
//! user leaves and what was theirs goes with them. (Resources and tasks have their own store
//! tests beside this one: `resources.rs`, `tasks.rs`.)

use ralf_core::api::events::NewEvent;
use ralf_core::{ProjectId, Role};
use ralf_store::projects::ProjectFields;
use ralf_store::users::{NewUser, UserUpdate};
use ralf_store::{Store, StoreError};
use ralf_testdb::{Backend, TestDatabase, on_both_backends};

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn new_user<'a>(username: &'a str, email: &'a str) -> NewUser<'a> {
    NewUser {
        username,
        name: username,
        email,
        password_hash: "hash",
        admin: false,
        external: false,
        alert: false,
    }
}

async fn a_team_works_in_a_project(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.settings)
        .await
        .expect("store opens and migrates");

    // Users: unique usernames and e-mails, found by either, case-insensitively.
    let ada = store
        .create_user(&new_user("ada", "ada@example.test"))
        .await
        .unwrap();
    let bob = store
        .create_user(&new_user("bob", "bob@example.test"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_user(&new_user("ADA2", "ada@example.test"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Usernames and e-mails are one namespace of logins, compared ignoring case.
    for (username, email) in [
        ("ADA", "ada-two@example.test"),
        ("BOB@example.test", "carl@example.test"),
        ("carl", "Bob"),
        ("carl", "ADA@example.test"),
    ] {
        assert!(
            matches!(
                store.create_user(&new_user(username, email)).await,
                Err(StoreError::Conflict(_))
            ),
            "{username} / {email} clashes with an existing login"
        );
    }
    let rename = |username, email| UserUpdate {
        username,
        name: "Bob",
        email,
        admin: false,
        alert: false,
    };
    for (username, email) in [("ADA", "bob@example.test"), ("bob", "Ada")] {
        assert!(
            matches!(
                store.update_user(bob.id, &rename(username, email)).await,
                Err(StoreError::Conflict(_))
            ),
            "bob may not take ada's login as {username} / {email}"
        );
    }
    store
        .update_user(bob.id, &rename("BOB", "Bob@Example.Test"))
        .await
        .expect("changing the case of one's own login is fine");
    store
        .update_user(bob.id, &rename("bob", "bob@example.test"))
        .await
        .unwrap();
    let (found, hash) = store
        .user_for_login("ADA@EXAMPLE.TEST")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (ada.id, "hash"));
    assert_eq!(store.count_users().await.unwrap(), 2);
    let update = UserUpdate {
        username: "ada",
        name: "Ada L.",
        email: "ada@example.test",
        admin: true,
        alert: true,
    };
    store.update_user(ada.id, &update).await.unwrap();
    assert!(store.user(ada.id).await.unwrap().admin);

    // Sessions: live until expired.
    store
        .create_session(ada.id, "digest-1", "127.0.0.1", "test")
        .await
        .unwrap();
    assert_eq!(
        store
            .session_user("digest-1", DAY)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ada.id)
    );
    store.expire_session("digest-1").await.unwrap();
    assert!(store.session_user("digest-1", DAY).await.unwrap().is_none());
    // A session older than its lifetime is over, however recently it was used.
    store
        .create_session(ada.id, "digest-2", "127.0.0.1", "test")
        .await
        .unwrap();
    assert!(
        store
            .session_user("digest-2", std::time::Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    // A password change ends the user's other sessions.
    store
        .create_session(ada.id, "digest-3", "127.0.0.1", "test")
        .await
        .unwrap();
    assert_eq!(
        store
            .expire_sessions_of(ada.id, Some("digest-3"))
            .await
            .unwrap(),
        1
    );
    assert!(store.session_user("digest-2", DAY).await.unwrap().is_none());
    assert!(store.session_user("digest-3", DAY).await.unwrap().is_some());

    // Tokens: work until expired, listed with their state.
    store
        .create_api_token(bob.id, "token-digest", Some("sealed-token"), "ci")
        .await
        .unwrap();
    assert_eq!(
        store
            .api_token_user("token-digest")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(bob.id)
    );
    assert!(matches!(
        store.expire_api_token(ada.id, "token-digest").await,
        Err(StoreError::NotFound)
    ));
    store
        .expire_api_token(bob.id, "token-digest")
        .await
        .unwrap();
    assert!(
        store
            .api_token_user("token-digest")
            .await
            .unwrap()
            .is_none()
    );
    let listed = store.api_tokens(bob.id).await.unwrap();
    assert!(listed[0].token.expired);
    assert_eq!(listed[0].sealed_id.as_deref(), Some("sealed-token"));

    // Projects and members.
    let fields = ProjectFields {
        name: "homelab",
        alert: false,
        alert_chat: None,
        max_parallel_tasks: 2,
        kind: "",
    };
    let project = store.create_project(&fields, bob.id).await.unwrap();
    assert_eq!(
        store
            .member_role(ProjectId(project.id), bob.id)
            .await
            .unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(
        store
            .member_role(ProjectId(project.id), ada.id)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .projects_visible_to(ada.id, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.projects_visible_to(ada.id, true).await.unwrap().len(),
        1,
        "admins see all"
    );
    store
        .add_project_user(ProjectId(project.id), ada.id, Role::Guest)
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_project_user(ProjectId(project.id), ada.id, Role::Manager)
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .set_project_user_role(ProjectId(project.id), ada.id, Role::Manager)
        .await
        .unwrap();
    let members = store
        .project_users(ProjectId(project.id), Some("role"), false)
        .await
        .unwrap();
    assert_eq!(
        members.iter().map(|m| m.role).collect::<Vec<_>>(),
        [Role::Manager, Role::Owner]
    );
    assert_eq!(store.owner_count(ProjectId(project.id)).await.unwrap(), 1);

    // Events: per project, and what each user may see.
    store
        .record_event(&NewEvent {
            project_id: Some(project.id),
            user_id: Some(bob.id),
            object_id: Some(project.id),
            object_type: "project",
            description: "Project homelab created".into(),
        })
        .await
        .unwrap();
    let events = store
        .project_events(ProjectId(project.id), 10)
        .await
        .unwrap();
    assert_eq!(events[0].project_name.as_deref(), Some("homelab"));
    assert_eq!(events[0].username.as_deref(), Some("bob"));
    assert_eq!(
        store
            .events_visible_to(ada.id, false, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .remove_project_user(ProjectId(project.id), ada.id)
        .await
        .unwrap();
    assert!(
        store
            .events_visible_to(ada.id, false, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting a user ends their memberships and tokens; deleting a project its events.
    store.delete_user(bob.id).await.unwrap();
    assert_eq!(store.owner_count(ProjectId(project.id)).await.unwrap(), 0);
    assert!(store.api_tokens(bob.id).await.unwrap().is_empty());
    store.delete_project(ProjectId(project.id)).await.unwrap();
    assert!(
        store
            .project_events(ProjectId(project.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.project(ProjectId(project.id)).await,
        Err(StoreError::NotFound)
    ));
    store.close().await;
}

on_both_backends!(a_team_works_in_a_project);
