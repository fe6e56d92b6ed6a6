//! The catalog's advisor against a small OpenAI-protocol server started by the test: a failed
//! step gets its diagnosis as `advice` (and the rollout its order advice), and an advisor that
//! is down or too slow leaves the rollout exactly as it goes without one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use ralf_server::settings::AdvisorSettings;
use ralf_testkit::{Backend, TestServer, json};
use serde_json::Value;

use super::{Catalog, map, service, states};
use crate::common::WAIT;

const ANSWER: &str = "The database was not reachable: check db's address.";

/// Two services: `db`, which deploys, and `api`, which depends on it and fails.
const SERVICES: &[(&str, &str)] = &[
    ("db", "name: db\napply: Deploy\n"),
    (
        "api",
        "name: api\ndescription: the public API\napply: Deploy\ndepends_on: [db]\nenvironment:\n  APPLY: fail\n",
    ),
];

/// A request the fake advisor received: its body and its `Authorization` header.
#[derive(Clone, Debug)]
struct Asked {
    body: Value,
    authorization: Option<String>,
}

#[derive(Clone)]
struct FakeAdvisor {
    asked: Arc<Mutex<Vec<Asked>>>,
    delay: Duration,
}

/// Starts an OpenAI-protocol chat endpoint under `/v1` that waits `delay`, then answers
/// [`ANSWER`]; returns its base URL and what it was asked.
async fn fake_advisor(delay: Duration) -> (String, Arc<Mutex<Vec<Asked>>>) {
    let advisor = FakeAdvisor {
        asked: Arc::default(),
        delay,
    };
    let asked = advisor.asked.clone();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(advisor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/v1"), asked)
}

async fn complete(
    State(advisor): State<FakeAdvisor>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    advisor.asked.lock().unwrap().push(Asked {
        body,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    tokio::time::sleep(advisor.delay).await;
    Json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": ANSWER}}],
    }))
}

async fn server_with_advisor(backend: Backend, url: String, timeout: Duration) -> TestServer {
    TestServer::start_with(backend, |settings| {
        settings.advisor = Some(AdvisorSettings {
            url,
            model: "tiny".into(),
            api_key: Some("sk-advisor-key".into()),
            timeout,
        });
    })
    .await
}

/// The rollout's user question whose text contains `needle`.
fn question_with(asked: &[Asked], needle: &str) -> Option<Asked> {
    asked
        .iter()
        .find(|a| {
            a.body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["content"].as_str().unwrap_or_default().contains(needle))
        })
        .cloned()
}

async fn a_failed_step_gets_the_advisors_diagnosis(backend: Backend) {
    let (url, asked) = fake_advisor(Duration::ZERO).await;
    let server = server_with_advisor(backend, url, Duration::from_secs(10)).await;
    let catalog = Catalog::new(&server, SERVICES).await;
    let rollout = catalog.run(json!({})).await;
    assert_eq!(rollout["state"], "failed", "{rollout:#}");
    assert_eq!(
        states(&rollout),
        map(&[("db", "deployed"), ("api", "failed")])
    );

    // The answers come a little after the events that asked for them.
    let id = rollout["id"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let rollout = loop {
        let rollout = catalog.rollout(id).await;
        if rollout.get("advice").is_some()
            && service(&rollout, "api")["steps"][0].get("advice").is_some()
        {
            break rollout;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no advice came: {rollout:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rollout["advice"], ANSWER);
    assert_eq!(service(&rollout, "api")["steps"][0]["advice"], ANSWER);
    // The step that went well was not diagnosed.
    assert!(
        service(&rollout, "db")["steps"][0].get("advice").is_none(),
        "{rollout:#}"
    );

    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.len(),
        2,
        "one order question, one diagnosis: {asked:#?}"
    );
    let diagnosis = question_with(&asked, "Step api.apply.1 of the service api failed")
        .unwrap_or_else(|| panic!("no diagnosis was asked: {asked:#?}"));
    assert_eq!(diagnosis.body["model"], "tiny");
    assert_eq!(
        diagnosis.authorization.as_deref(),
        Some("Bearer sk-advisor-key")
    );
    let text = diagnosis.body["messages"][1]["content"].as_str().unwrap();
    assert!(text.contains("the public API"), "{text}");
    assert!(text.contains("It depends on: db"), "{text}");
    // The failing output's tail.
    assert!(text.contains("apply of api failed"), "{text}");
    let order = question_with(&asked, "in this order").expect("an order question");
    let text = order.body["messages"][1]["content"].as_str().unwrap();
    assert!(text.contains("1. db") && text.contains("2. api"), "{text}");
    server.stop().await;
}

/// With the advisor at `url` (down, or slower than `timeout`), the rollout ends as it does
/// without one, and without advice.
async fn goes_on_without(backend: Backend, url: String, timeout: Duration) {
    let server = server_with_advisor(backend, url, timeout).await;
    let catalog = Catalog::new(&server, SERVICES).await;
    let rollout = catalog.run(json!({})).await;
    assert_eq!(rollout["state"], "failed", "{rollout:#}");
    assert_eq!(
        states(&rollout),
        map(&[("db", "deployed"), ("api", "failed")])
    );
    assert_eq!(
        catalog.tasks_per_template().await,
        [("Deploy".to_string(), 2)].into()
    );
    // Past the advisor's timeout: it gave up, and stored nothing.
    tokio::time::sleep(timeout + Duration::from_millis(500)).await;
    let rollout = catalog.rollout(rollout["id"].as_i64().unwrap()).await;
    assert!(rollout.get("advice").is_none(), "{rollout:#}");
    assert!(
        service(&rollout, "api")["steps"][0].get("advice").is_none(),
        "{rollout:#}"
    );
    server.stop().await;
}

async fn an_absent_advisor_changes_nothing(backend: Backend) {
    // A port that was free a moment ago: nobody listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    goes_on_without(
        backend,
        format!("http://{address}/v1"),
        Duration::from_secs(2),
    )
    .await;
}

async fn a_slow_advisor_changes_nothing(backend: Backend) {
    let (url, asked) = fake_advisor(Duration::from_secs(30)).await;
    goes_on_without(backend, url, Duration::from_secs(2)).await;
    // It was asked; its answer would have come too late.
    assert!(!asked.lock().unwrap().is_empty());
}

ralf_testkit::on_both_backends!(
    a_failed_step_gets_the_advisors_diagnosis,
    an_absent_advisor_changes_nothing,
    a_slow_advisor_changes_nothing,
);
