//! The client against a stand-in for a Semaphore server: none of ralf's extensions (no
//! OpenAPI document, no log stream, `offset` ignored, filters ignored, no confirm route),
//! Semaphore's shapes, and a flaky route. What works against ralf must work here too, by the
//! plain API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ralf_client::{Client, ClientConfig, Error, FollowEvent, FollowOptions, TaskFilter};
use serde_json::{Value, json};

/// Each read of the output adds a line; after five the task is done.
#[derive(Default)]
struct Fake {
    output_reads: AtomicUsize,
    info_reads: AtomicUsize,
}

const LINES: usize = 5;

fn lines(fake: &Fake) -> usize {
    fake.output_reads.load(Ordering::SeqCst).min(LINES)
}

fn task(fake: &Fake) -> Value {
    let done = lines(fake) >= LINES;
    // Semaphore's single task: no tpl_* fields, nulls where ralf has values.
    json!({
        "id": 7, "template_id": 2, "project_id": 1,
        "status": if done { "success" } else { "running" },
        "debug": false, "dry_run": false, "diff": false, "playbook": "", "environment": "",
        "secret": "", "arguments": null, "git_branch": null, "user_id": 1,
        "integration_id": null, "schedule_id": null,
        "created": "2025-06-01T10:00:00.5Z", "start": "2025-06-01T10:00:01.5Z",
        "end": if done { json!("2020-06-01T10:00:09Z") } else { Value::Null },
        "message": "", "commit_hash": null, "commit_message": "", "build_task_id": null,
        "version": null, "inventory_id": null, "params": {}
    })
}

/// Every task, whatever the query asks (Semaphore's lists take no filters).
async fn task_list() -> axum::Json<Value> {
    axum::Json(json!([
        {"id": 3, "template_id": 2, "status": "error", "tpl_alias": "deploy"},
        {"id": 5, "template_id": 2, "status": "success", "tpl_alias": "deploy"},
        {"id": 4, "template_id": 9, "status": "error", "tpl_alias": "backup"}
    ]))
}

async fn serve(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/api/ping", get(|| async { "pong" }))
        .route(
            "/api/info",
            get(|State(fake): State<Arc<Fake>>| async move {
                // Two failures first: the client must retry them.
                if fake.info_reads.fetch_add(1, Ordering::SeqCst) < 2 {
                    return (StatusCode::BAD_GATEWAY, "bad gateway").into_response();
                }
                axum::Json(json!({"version": "v2.16.14", "ansible": "2.17"})).into_response()
            }),
        )
        .route(
            "/api/project/1/tasks/7",
            get(|State(fake): State<Arc<Fake>>| async move { axum::Json(task(&fake)) }),
        )
        .route(
            "/api/project/1/tasks/7/output",
            get(|State(fake): State<Arc<Fake>>| async move {
                fake.output_reads.fetch_add(1, Ordering::SeqCst);
                let all: Vec<Value> = (0..lines(&fake))
                    .map(|i| {
                        json!({"task_id": 7, "task": "", "time": "2025-06-01T10:00:02Z",
                               "output": format!("line {i}")})
                    })
                    .collect();
                axum::Json(all)
            }),
        )
        .route("/api/project/1/tasks", get(task_list))
        .route("/api/project/1/tasks/last", get(task_list))
        .route(
            "/api/project/1/templates",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "Invalid project ID"})),
                )
            }),
        )
        .route(
            "/api/project/1/tasks/7/confirm",
            post(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn client(url: &str, notices: Arc<AtomicUsize>) -> Client {
    let mut config = ClientConfig::new(format!("{url}/api"));
    config.token = Some("token".into());
    config.retry.first_wait = Duration::from_millis(10);
    config.on_retry = Some(Arc::new(move |_| {
        notices.fetch_add(1, Ordering::SeqCst);
    }));
    Client::new(config).unwrap()
}

#[tokio::test]
async fn the_plain_api_does_what_ralfs_extensions_do() {
    let fake = Arc::new(Fake::default());
    let url = serve(fake.clone()).await;
    let notices = Arc::new(AtomicUsize::new(0));
    let client = client(&url, notices.clone());

    assert_eq!(client.ping().await.unwrap(), "pong");
    let caps = client.capabilities().await.unwrap();
    assert!(caps.ralf.is_none() && !caps.task_stream && !caps.output_offset);

    // 5xx answers are retried with back-off; a 4xx is not, and its message is the server's.
    assert_eq!(client.info().await.unwrap().version, "v2.16.14");
    assert_eq!(notices.load(Ordering::SeqCst), 2);
    let refused = client.templates(1).await.unwrap_err();
    assert_eq!(refused.to_string(), "Invalid project ID");
    assert!(refused.is_refusal());
    assert_eq!(notices.load(Ordering::SeqCst), 2, "a 4xx is not retried");

    // Following by polling the whole output: every line once, in order, with its index.
    let mut seen = Vec::new();
    let mut statuses = Vec::new();
    let options = FollowOptions {
        poll_every: Duration::from_millis(10),
        ..FollowOptions::default()
    };
    let done = client
        .follow(1, 7, &options, |event| match event {
            FollowEvent::Line(line) => seen.push((line.index, line.output.clone())),
            FollowEvent::Status(status) => statuses.push(status.to_string()),
        })
        .await
        .unwrap();
    assert_eq!(done.status, "success");
    let expected: Vec<(i64, String)> = (0..LINES as i64)
        .map(|i| (i, format!("line {i}")))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(statuses, ["running", "success"]);

    // Output from an offset the server ignores: the client skips what was asked to skip.
    let tail = client.output(1, 7, 3).await.unwrap();
    assert_eq!(
        tail.iter().map(|l| l.index).collect::<Vec<_>>(),
        [3, 4],
        "{tail:?}"
    );

    // Filters the server ignores are applied here; newest first.
    let errors = client
        .tasks(
            1,
            &TaskFilter {
                template_id: Some(2),
                statuses: vec!["error".into()],
                limit: Some(5),
            },
        )
        .await
        .unwrap();
    assert_eq!(errors.iter().map(|t| t.id).collect::<Vec<_>>(), [3]);
    let newest = client
        .tasks(
            1,
            &TaskFilter {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newest.iter().map(|t| t.id).collect::<Vec<_>>(), [5, 4]);

    // A route this server lacks is said to be unavailable.
    match client.confirm_task(1, 7).await {
        Err(Error::Unsupported { what, .. }) => assert_eq!(what, "confirming a task"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let notices = Arc::new(AtomicUsize::new(0));
    let client = client(&url, notices.clone());
    let error = client.projects().await.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(
        notices.load(Ordering::SeqCst),
        3,
        "three retries by default"
    );
}
