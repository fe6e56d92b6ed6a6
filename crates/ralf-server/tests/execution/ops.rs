//! What an operator relies on, over HTTP: the health probes, `/metrics` (behind its token or
//! on its own listener) counting real tasks and requests, the API viewer, and retention
//! policies applied by the sweep to real finished tasks.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Api, Backend, GitRepo, TestServer, json, on_both_backends, wait_until};

use crate::common::{Project, WAIT};

const TOKEN: &str = "metrics-token-for-tests";

/// The value of the sample `name{labels}` in a Prometheus text page, the labels given in the
/// order ralf writes them.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(server: &TestServer) -> String {
    let reply = ralf_testkit::reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let kind = reply.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    reply.text().await.unwrap()
}

async fn probes_say_live_and_ready(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anonymous = server.anonymous();
    let live = anonymous.get("/api/health/live").await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body["status"], "ok");
    // The dispatcher looks at the queue right after the start.
    wait_until(WAIT, async || {
        let ready = anonymous.get("/api/health/ready").await;
        match ready.status {
            StatusCode::OK => Ok(ready.body),
            _ => Err(ready.text),
        }
    })
    .await;
    let ready = anonymous.get("/api/health/ready").await;
    assert_eq!(
        ready.body,
        json!({"status": "ok", "database": "ok", "dispatcher": "ok"})
    );
    // Both are in the API's description.
    let doc = anonymous.get("/api/openapi.json").await.body;
    assert!(doc["paths"]["/api/health/ready"]["get"].is_object());
    server.stop().await;
}

async fn metrics_count_tasks_and_requests(backend: Backend) {
    let repo = GitRepo::new(&[("hello.sh", "echo one\necho two\necho three\n")]);
    let server = TestServer::start_with(backend, |s| s.metrics.token = Some(TOKEN.into())).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template("hello", "bash", "hello.sh", json!({}))
        .await;
    let p = project.id;
    let started = format!("ralf_tasks_started_total{{project=\"{p}\"}}");
    let succeeded = format!("ralf_tasks_finished_total{{project=\"{p}\",status=\"success\"}}");
    let before = scrape(&server).await;
    let task = project.start(json!({"template_id": template})).await;
    let done = project.api.wait_task(project.id, task, WAIT).await;
    assert_eq!(done["status"], "success");

    // A runner (idle, never connected) shows with no tasks.
    let runner = project
        .api
        .create("/api/runners", json!({"name": "metrics-runner"}))
        .await["id"]
        .as_i64()
        .unwrap();

    // Without the token, or with another, nothing is shown.
    let anonymous = server.anonymous();
    assert_eq!(
        anonymous.get("/metrics").await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = Api::new(&server.url, Some("not-the-token".into()));
    assert_eq!(wrong.get("/metrics").await.status, StatusCode::UNAUTHORIZED);

    let page = scrape(&server).await;
    // The other tests of this process (each with its own database, so with the same project
    // ids) count into the same series: this task shows as at least one more.
    let grew = |series: &str| {
        let then = sample(&before, series).unwrap_or(0.0);
        let now = sample(&page, series).unwrap_or(0.0);
        assert!(now >= then + 1.0, "{series}: {then} then, {now} now");
    };
    grew(&started);
    grew(&succeeded);
    assert!(page.contains("ralf_task_duration_seconds_bucket{status=\"success\",le=\"1\"}"));
    assert!(sample(&page, "ralf_task_log_lines_total").unwrap() >= 3.0);
    assert!(
        page.contains(
            "ralf_http_requests_total{method=\"POST\",route=\"/api/project/{project_id}/tasks\",status=\"201\"}"
        ),
        "{page}"
    );
    assert!(page.contains(
        "ralf_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/project/{project_id}/tasks\",le=\"0.005\"}"
    ));
    assert!(page.contains("ralf_task_queue_depth "), "{page}");
    assert!(page.contains("ralf_task_queue_oldest_age_seconds "));
    assert!(page.contains("ralf_runners_online "));
    assert!(page.contains("ralf_tasks_running{node=\""));
    assert_eq!(
        sample(
            &page,
            &format!(
                "ralf_tasks_running_on_runner{{runner=\"{runner}\",runner_name=\"metrics-runner\"}}"
            )
        ),
        Some(0.0),
        "{page}"
    );
    let pool = if backend == Backend::Sqlite {
        "write"
    } else {
        "main"
    };
    assert!(
        page.contains(&format!("ralf_db_pool_max_connections{{pool=\"{pool}\"}}")),
        "{page}"
    );
    assert!(page.contains("# HELP ralf_tasks_finished_total"));
    // Every metric the Grafana dashboard in docs/ plots is one the server exports.
    let dashboard = include_str!("../../../../docs/grafana-dashboard.json");
    for name in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(metric) = name.strip_prefix("ralf_") {
            let metric = format!("ralf_{}", metric.trim_end_matches("_bucket"));
            assert!(
                page.contains(&format!("# TYPE {metric} ")),
                "the dashboard plots {metric}"
            );
        }
    }
    server.stop().await;
}

async fn metrics_are_off_the_public_listener_unless_asked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let reply = server.anonymous().get("/metrics").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error().contains("metrics_token"), "{}", reply.text);
    server.stop().await;

    let server = TestServer::start_with(backend, |s| {
        s.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let at = server.metrics_addr().expect("a metrics listener");
    let page = ralf_testkit::reqwest::get(format!("http://{at}/metrics"))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("ralf_task_queue_depth"));
    // Only /metrics is there: the API is not.
    let other = ralf_testkit::reqwest::get(format!("http://{at}/api/ping"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        server.anonymous().get("/metrics").await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

async fn the_api_viewer_is_served_from_the_binary(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = ralf_testkit::reqwest::Client::new();
    let page = http
        .get(format!("{}/api/docs", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/docs/swagger-ui-bundle.js"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    let init = http
        .get(format!("{}/api/docs/swagger-initializer.js", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    assert!(init.text().await.unwrap().contains("/api/openapi.json"));
    // Every file the page loads is there.
    let loaded: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/api/docs/"))
        .collect();
    assert!(loaded.len() >= 6, "{html}");
    for file in loaded {
        let reply = http
            .get(format!("{}{file}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{file}");
        assert!(!reply.bytes().await.unwrap().is_empty(), "{file}");
    }
    let missing = server.anonymous().get("/api/docs/nothing.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn retention_keeps_the_newest_tasks_of_each_template(backend: Backend) {
    let repo = GitRepo::new(&[("hello.sh", "echo kept\n")]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let kept_by_project = project.template("a", "bash", "hello.sh", json!({})).await;
    let own_policy = project.template("b", "bash", "hello.sh", json!({})).await;
    let mut tasks = Vec::new();
    for template in [kept_by_project, own_policy] {
        for _ in 0..4 {
            let task = project.start(json!({"template_id": template})).await;
            project.api.wait_task(project.id, task, WAIT).await;
            tasks.push((template, task));
        }
    }
    let base = format!("/api/project/{}", project.id);
    // Nothing is set at first; bad limits are refused.
    let none = project.api.get(&format!("{base}/retention")).await;
    assert_eq!(none.body, json!({"keep_tasks": null, "keep_days": null}));
    let bad = project
        .api
        .put(&format!("{base}/retention"), json!({"keep_tasks": 0}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().contains("keep_tasks"), "{}", bad.text);
    let huge = project
        .api
        .put(&format!("{base}/retention"), json!({"keep_days": i64::MAX}))
        .await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST);
    // The project keeps 3 of each template; template b keeps only 1.
    let set = project
        .api
        .put(&format!("{base}/retention"), json!({"keep_tasks": 3}))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let set = project
        .api
        .put(
            &format!("{base}/templates/{own_policy}/retention"),
            json!({"keep_tasks": 1, "keep_days": null}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(
        project
            .api
            .get(&format!("{base}/templates/{own_policy}/retention"))
            .await
            .body,
        json!({"keep_tasks": 1, "keep_days": null})
    );
    let elsewhere = project
        .api
        .put(
            &format!("{base}/templates/999999/retention"),
            json!({"keep_tasks": 1}),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);

    let report = ralf_server::retention::sweep(server.store()).await.unwrap();
    assert_eq!(report.tasks_deleted, 1 + 3);
    let left: Vec<i64> = project
        .api
        .get(&format!("{base}/tasks"))
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = {
        let a: Vec<i64> = tasks
            .iter()
            .filter(|(t, _)| *t == kept_by_project)
            .map(|(_, id)| *id)
            .collect();
        let b: Vec<i64> = tasks
            .iter()
            .filter(|(t, _)| *t == own_policy)
            .map(|(_, id)| *id)
            .collect();
        let mut keep = vec![b[3], a[3], a[2], a[1]];
        keep.sort_unstable_by(|x, y| y.cmp(x));
        keep
    };
    let mut left_sorted = left.clone();
    left_sorted.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(left_sorted, expected);
    // A deleted task's output is gone with it; a kept one still has its output.
    let gone = project
        .api
        .get(&format!("{base}/tasks/{}/output", tasks[0].1))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let kept = project.api.output_lines(project.id, tasks[3].1).await;
    assert!(kept.iter().any(|l| l == "kept"), "{kept:?}");
    // A second sweep finds nothing more; clearing the template's policy lets the project's
    // apply to it.
    assert_eq!(
        ralf_server::retention::sweep(server.store())
            .await
            .unwrap()
            .tasks_deleted,
        0
    );
    project
        .api
        .put(
            &format!("{base}/templates/{own_policy}/retention"),
            json!({}),
        )
        .await;
    assert_eq!(
        ralf_server::retention::sweep(server.store())
            .await
            .unwrap()
            .tasks_deleted,
        0
    );
    server.stop().await;
}

on_both_backends!(
    probes_say_live_and_ready,
    metrics_count_tasks_and_requests,
    metrics_are_off_the_public_listener_unless_asked,
    the_api_viewer_is_served_from_the_binary,
    retention_keeps_the_newest_tasks_of_each_template,
);
