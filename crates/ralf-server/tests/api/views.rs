//! Views: create, list in position order, change, reorder, delete.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, TestServer, json, on_both_backends};
use serde_json::Value;

fn titles(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect()
}

/// `{"<view id>": position}`, as Semaphore's UI sends it.
fn position_map(views: &[(&Value, i64)]) -> Value {
    Value::Object(
        views
            .iter()
            .map(|(view, position)| (view["id"].to_string(), json!(position)))
            .collect(),
    )
}

async fn views_round_trip_and_reorder(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let project = admin.create("/api/projects", json!({"name": "p"})).await;
    let views = format!("/api/project/{}/views", project["id"]);

    let web = admin.create(&views, json!({"title": "Web"})).await;
    assert_eq!(web["project_id"], project["id"]);
    assert_eq!(web["position"], 1);
    assert_eq!(web["hidden"], false);
    assert_eq!(web["type"], "");
    assert_eq!(web["sort_column"], Value::Null);
    assert_eq!(web["sort_reverse"], false);
    let db = admin
        .create(
            &views,
            json!({"title": "DB", "hidden": true, "type": "all", "sort_column": "name", "sort_reverse": true}),
        )
        .await;
    assert_eq!(db["position"], 2, "a view without a position goes last");
    let got = admin.get(&format!("{views}/{}", db["id"])).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, db);
    assert_eq!(titles(&admin.get(&views).await.body), ["Web", "DB"]);

    // Semaphore's UI reorders with a map of id to position; a list works too.
    let r = admin
        .post(
            &format!("{views}/positions"),
            position_map(&[(&db, 0), (&web, 5)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(titles(&admin.get(&views).await.body), ["DB", "Web"]);
    let r = admin
        .post(
            &format!("{views}/positions"),
            json!([{"id": web["id"], "position": 0}, {"id": db["id"], "position": 1}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(titles(&admin.get(&views).await.body), ["Web", "DB"]);
    // An unknown view changes nothing.
    let r = admin
        .post(
            &format!("{views}/positions"),
            json!([{"id": db["id"], "position": 0}, {"id": 9999, "position": 1}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "view 9999: no such view in this project");
    assert_eq!(titles(&admin.get(&views).await.body), ["Web", "DB"]);

    // PUT keeps the position when none is given.
    let r = admin
        .put(
            &format!("{views}/{}", web["id"]),
            json!({"id": web["id"], "title": "Frontend", "hidden": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let got = admin.get(&format!("{views}/{}", web["id"])).await.body;
    assert_eq!(got["title"], "Frontend");
    assert_eq!(got["hidden"], true);
    assert_eq!(got["position"], 0);

    let r = admin
        .put(
            &format!("{views}/{}", web["id"]),
            json!({"id": db["id"], "title": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "View ID in body and URL must be the same");

    let r = admin.post(&views, json!({"title": " "})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), "title must not be empty");
    let r = admin
        .post(&views, json!({"title": "x", "type": "some"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().starts_with("type must be"), "{}", r.error());

    assert_eq!(
        admin.delete(&format!("{views}/{}", web["id"])).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.get(&format!("{views}/{}", web["id"])).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.delete(&format!("{views}/{}", web["id"])).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(titles(&admin.get(&views).await.body), ["DB"]);

    let events = admin
        .get(&format!("/api/project/{}/events", project["id"]))
        .await
        .body;
    let descriptions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_type"] == "view")
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        descriptions,
        [
            "View Frontend deleted",
            "View Frontend updated",
            "View DB created",
            "View Web created"
        ]
    );
    server.stop().await;
}

async fn members_read_views_and_other_projects_do_not_see_them(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let (guest_id, guest) = server.user("guest", false).await;
    let (_, stranger) = server.user("stranger", false).await;
    let project = admin.create("/api/projects", json!({"name": "p"})).await;
    let other = admin.create("/api/projects", json!({"name": "q"})).await;
    let views = format!("/api/project/{}/views", project["id"]);
    let view = admin.create(&views, json!({"title": "Web"})).await;
    let r = admin
        .post(
            &format!("/api/project/{}/users", project["id"]),
            json!({"user_id": guest_id, "role": "guest"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    assert_eq!(titles(&guest.get(&views).await.body), ["Web"]);
    assert_eq!(
        guest.post(&views, json!({"title": "mine"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        guest
            .delete(&format!("{views}/{}", view["id"]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(stranger.get(&views).await.status, StatusCode::NOT_FOUND);
    // The view's id under another project is not found.
    assert_eq!(
        admin
            .get(&format!(
                "/api/project/{}/views/{}",
                other["id"], view["id"]
            ))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = admin
        .post(
            &format!("/api/project/{}/views/positions", other["id"]),
            position_map(&[(&view, 3)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

on_both_backends!(
    views_round_trip_and_reorder,
    members_read_views_and_other_projects_do_not_see_them
);
