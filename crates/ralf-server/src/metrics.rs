//! Prometheus metrics: the process-wide recorder, the HTTP middleware that counts requests by
//! route template, the gauges read from the database at each scrape (queue, running tasks,
//! runners online, connection pools), and `/metrics` itself, served either on a listener of
//! its own (`metrics_listen`) or on the public one behind a bearer token (`metrics_token`).
//! The counters of tasks and output lines are kept by the store where the changes are made.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ralf_core::Timestamp;

use crate::error::ApiError;
use crate::state::AppState;

/// Counter: HTTP requests answered, by method, route template and status.
const HTTP_REQUESTS: &str = "ralf_http_requests_total";
/// Histogram: seconds to answer an HTTP request, by method and route template.
const HTTP_DURATION: &str = "ralf_http_request_duration_seconds";

/// Buckets of request latencies, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of task durations, in seconds: from a quick script to a long playbook.
const TASK_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// The process's recorder, installed by the first server that starts (several servers in one
/// process, as in tests, share it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(ralf_store::ops::TASK_DURATION.into()),
                    TASK_BUCKETS,
                )
            })
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows only gauges");
        }
        describe();
        keep_up(handle.clone());
        handle
    })
}

/// How often the recorder's histograms take in the samples recorded since (see [`keep_up`]).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the samples each histogram recorded into its buckets every [`UPKEEP_EVERY`], on a
/// thread of its own for the life of the process, as the recorder is. The recorder keeps every
/// sample until then; without this a server nobody scrapes would keep them all (24 bytes a
/// request: some 40 MB a day at 20 requests a second).
fn keep_up(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "metrics: cannot start the upkeep thread; histograms fold their samples in at each scrape only");
    }
}

/// Installs the recorder (if no server of this process did yet), so counting starts now.
pub fn install() {
    handle();
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use ralf_store::ops::{LOG_LINES, TASK_DURATION, TASKS_FINISHED, TASKS_STARTED};
    describe_counter!(TASKS_STARTED, "Tasks that started running, by project id.");
    describe_counter!(
        TASKS_FINISHED,
        "Tasks that ended, by project id and final status."
    );
    describe_histogram!(
        TASK_DURATION,
        Unit::Seconds,
        "Task run time, by final status."
    );
    describe_counter!(LOG_LINES, "Lines of task output stored.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by method, route and status.");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP answer time, by method and route."
    );
    describe_gauge!("ralf_task_queue_depth", "Tasks waiting to run.");
    describe_gauge!(
        "ralf_task_queue_oldest_age_seconds",
        Unit::Seconds,
        "How long the oldest waiting task has waited."
    );
    describe_gauge!(
        "ralf_tasks_running",
        "Active tasks run by each server (node id)."
    );
    describe_gauge!(
        "ralf_tasks_running_on_runner",
        "Active tasks run by each runner."
    );
    describe_gauge!(
        "ralf_runners_online",
        "Active runners heard from within their lease."
    );
    describe_gauge!(
        "ralf_db_pool_connections",
        "Open database connections, by pool and state."
    );
    describe_gauge!(
        "ralf_db_pool_max_connections",
        "The size limit of each database pool."
    );
}

/// Counts each answered request under its route template (`/api/project/{project_id}/tasks`,
/// never the ids themselves), so the series stay few.
pub async fn track_http(request: Request<Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.unwrap_or_else(|| "unmatched".into());
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `/metrics` on the public listener: answers only with the configured bearer token.
pub async fn public_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.settings.metrics.token.as_deref() else {
        return ApiError::NotFound(
            "metrics are not served on this listener: set metrics_token to serve them here \
             behind a token, or metrics_listen to serve them on an address of their own"
                .into(),
        )
        .into_response();
    };
    let offered = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compared as digests, so the time taken says nothing about the token.
    let digest = ralf_core::token::digest;
    if digest(offered.trim()) != digest(token) {
        return ApiError::Unauthorized.into_response();
    }
    scrape(&state).await
}

/// `/metrics` on the metrics listener: anyone who reaches that address may read them.
pub async fn private_metrics(State(state): State<AppState>) -> Response {
    scrape(&state).await
}

/// The router of the metrics listener: `/metrics` and nothing else.
pub fn private_app(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(private_metrics))
        .with_state(state)
}

/// Reads the gauges from the database, then renders every metric.
async fn scrape(state: &AppState) -> Response {
    if let Err(e) = read_gauges(state).await {
        // The counters are still worth having; the gauges keep their last values.
        tracing::warn!(error = %e, "metrics: cannot read the queue from the database");
    }
    let handle = handle();
    handle.run_upkeep();
    let mut response = (StatusCode::OK, handle.render()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn read_gauges(state: &AppState) -> anyhow::Result<()> {
    let store = &state.store;
    for pool in store.pool_stats() {
        let busy = pool.size.saturating_sub(pool.idle);
        metrics::gauge!("ralf_db_pool_connections", "pool" => pool.pool, "state" => "idle")
            .set(pool.idle);
        metrics::gauge!("ralf_db_pool_connections", "pool" => pool.pool, "state" => "busy")
            .set(busy);
        metrics::gauge!("ralf_db_pool_max_connections", "pool" => pool.pool).set(pool.max);
    }
    let queue = store.queue_stats().await?;
    metrics::gauge!("ralf_task_queue_depth").set(queue.waiting as f64);
    let oldest = queue
        .oldest_created
        .map(|created| (Timestamp::now().0 - created.0).num_milliseconds().max(0) as f64 / 1e3)
        .unwrap_or(0.0);
    metrics::gauge!("ralf_task_queue_oldest_age_seconds").set(oldest);
    // Every known node gets a value, so one that ran tasks and now runs none shows 0.
    let running = store.running_by_node().await?;
    let mut nodes: Vec<(String, i64)> = vec![(state.node_id.to_string(), 0)];
    for (node, count) in running {
        match nodes.iter_mut().find(|(n, _)| *n == node) {
            Some(entry) => entry.1 = count,
            None => nodes.push((node, count)),
        }
    }
    for (node, count) in nodes {
        metrics::gauge!("ralf_tasks_running", "node" => node).set(count as f64);
    }
    for (id, name, count) in store.running_by_runner().await? {
        metrics::gauge!("ralf_tasks_running_on_runner", "runner" => id.to_string(), "runner_name" => name)
            .set(count as f64);
    }
    let since = Timestamp(chrono::Utc::now() - crate::cluster::LEASES.runner);
    metrics::gauge!("ralf_runners_online").set(store.runners_online(since).await? as f64);
    Ok(())
}
