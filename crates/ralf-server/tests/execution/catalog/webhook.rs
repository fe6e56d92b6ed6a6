//! The inbound webhook that deploys the next pending service: no session or token, only the
//! project's webhook secret, as GitHub's body signature or in a header. A call that cannot
//! prove it knows the secret is refused and starts nothing.

use std::time::Duration;

use ralf_core::signature::hmac_sha256_hex;
use ralf_testkit::reqwest::{Method, StatusCode};
use ralf_testkit::{Backend, TestServer, json};
use serde_json::Value;

use super::Catalog;
use crate::common::WAIT;

const SECRET: &str = "a webhook secret of some length";

const SERVICES: &[(&str, &str)] = &[
    ("db", "name: db\napply: Deploy\npriority: P1\n"),
    ("app", "name: app\napply: Deploy\ndepends_on: [db]\n"),
];

/// The project's rollouts, newest first.
async fn rollouts(catalog: &Catalog) -> Vec<Value> {
    let r = catalog.api().get(&catalog.path("rollouts")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body.as_array().unwrap().clone()
}

/// Waits for the project's `count`th rollout and for it to end; returns it.
async fn nth_rollout_done(catalog: &Catalog, count: usize) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    let newest = loop {
        let list = rollouts(catalog).await;
        if list.len() >= count {
            break list[0].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout {count} never started: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    catalog
        .wait(newest["id"].as_i64().unwrap(), &["succeeded", "failed"])
        .await
}

async fn the_webhook_deploys_the_next_pending_service_when_it_knows_the_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::new(&server, SERVICES).await;
    let hook = catalog.path("webhook");
    let anonymous = server.anonymous();
    let body = r#"{"ref": "refs/heads/main", "after": "0123"}"#;
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes())
    );

    // No secret set: no webhook, whatever is sent.
    let r = anonymous
        .send_with_headers(
            Method::POST,
            &hook,
            body,
            &[("X-Hub-Signature-256", &signature)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // The secret is write-only, and a short one is refused.
    let repository = catalog.project.repository;
    let r = catalog
        .api()
        .put(
            &catalog.path("settings"),
            json!({"repository_id": repository, "webhook_secret": "short"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    catalog
        .settings(json!({"repository_id": repository, "webhook_secret": SECRET}))
        .await;
    let settings = catalog.api().get(&catalog.path("settings")).await;
    assert_eq!(
        settings.body["webhook_secret_set"], true,
        "{}",
        settings.text
    );
    assert!(
        settings.body.get("webhook_secret").is_none(),
        "{}",
        settings.text
    );
    assert!(!settings.text.contains(SECRET));

    // Wrong signatures, a wrong secret, a signature of another body: refused, nothing starts.
    let wrong = format!(
        "sha256={}",
        hmac_sha256_hex(b"another secret", body.as_bytes())
    );
    for headers in [
        vec![],
        vec![("X-Hub-Signature-256", wrong.as_str())],
        vec![("X-Hub-Signature-256", "sha256=nothex")],
        vec![("X-Webhook-Secret", "a webhook secret of some lengtH")],
    ] {
        let r = anonymous
            .send_with_headers(Method::POST, &hook, body, &headers)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{headers:?}: {}",
            r.text
        );
        assert!(r.body["error"].is_string(), "{}", r.text);
    }
    let r = anonymous
        .send_with_headers(
            Method::POST,
            &hook,
            "{}",
            &[("X-Hub-Signature-256", &signature)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // Another project's hook does not take this project's secret.
    let r = anonymous
        .send_with_headers(
            Method::POST,
            &format!("/api/project/{}/catalog/webhook", catalog.project.id + 1000),
            body,
            &[("X-Hub-Signature-256", &signature)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(rollouts(&catalog).await.is_empty());

    // GitHub's signature: the next pending service (db) is deployed, as ralf.
    let r = anonymous
        .send_with_headers(
            Method::POST,
            &hook,
            body,
            &[("X-Hub-Signature-256", &signature)],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let first = nth_rollout_done(&catalog, 1).await;
    assert_eq!(first["state"], "succeeded", "{first:#}");
    assert_eq!(first["selection"], json!({"select": "next", "count": 1}));
    assert_eq!(first["started_by"], Value::Null);
    assert_eq!(super::names(&first["services"]), ["db"]);

    // The secret in a header: the next one (app).
    let r = anonymous
        .send_with_headers(Method::POST, &hook, "", &[("X-Webhook-Secret", SECRET)])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let second = nth_rollout_done(&catalog, 2).await;
    assert_eq!(super::names(&second["services"]), ["app"]);

    // Saving the settings without the secret keeps it; "" removes it.
    catalog.settings(json!({"repository_id": repository})).await;
    let settings = catalog.api().get(&catalog.path("settings")).await;
    assert_eq!(
        settings.body["webhook_secret_set"], true,
        "{}",
        settings.text
    );
    catalog
        .settings(json!({"repository_id": repository, "webhook_secret": ""}))
        .await;
    let r = anonymous
        .send_with_headers(Method::POST, &hook, "", &[("X-Webhook-Secret", SECRET)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    server.stop().await;
}

ralf_testkit::on_both_backends!(
    the_webhook_deploys_the_next_pending_service_when_it_knows_the_secret,
);
