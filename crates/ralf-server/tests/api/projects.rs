//! Projects and members.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, TestServer, json, on_both_backends};

async fn creator_owns_project_and_others_do_not_see_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (carol_id, carol) = server.user("carol", false).await;
    let project = admin
        .create(
            "/api/projects",
            json!({"name": "homelab", "alert": true, "alert_chat": null}),
        )
        .await;
    let id = project["id"].as_i64().unwrap();
    assert_eq!(project["alert_chat"], serde_json::Value::Null);
    assert_eq!(project["type"], "");

    assert_eq!(carol.get("/api/projects").await.body, json!([]));
    assert_eq!(
        carol.get(&format!("/api/project/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        carol
            .post("/api/projects", json!({"name": "x"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let r = admin
        .post(
            &format!("/api/project/{id}/users"),
            json!({"user_id": carol_id, "role": "guest"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(carol.get("/api/projects").await.body[0]["name"], "homelab");
    assert_eq!(
        carol.get(&format!("/api/project/{id}/role")).await.body,
        json!({"role": "guest", "permissions": 0})
    );
    assert_eq!(
        admin.get(&format!("/api/project/{id}/role")).await.body,
        json!({"role": "owner", "permissions": 15})
    );

    let r = carol
        .put(
            &format!("/api/project/{id}"),
            json!({"id": id, "name": "mine"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let members = admin
        .get(&format!("/api/project/{id}/users?sort=name"))
        .await
        .body;
    assert_eq!(members.as_array().unwrap().len(), 2);

    // The last owner cannot leave or be demoted.
    let admin_id = admin.get("/api/user").await.body["id"].as_i64().unwrap();
    let r = admin
        .put(
            &format!("/api/project/{id}/users/{admin_id}"),
            json!({"role": "guest"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    assert_eq!(
        admin.delete(&format!("/api/project/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.get(&format!("/api/project/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let events = admin.get("/api/events/last").await.body;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["description"] == "Project homelab deleted")
    );
    server.stop().await;
}

on_both_backends!(creator_owns_project_and_others_do_not_see_it);
