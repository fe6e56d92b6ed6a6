//! Live output over WebSocket while tasks really run: Semaphore's feed (`/api/ws`) and ralf's
//! stream of one task (`…/tasks/{id}/stream`), with every line exactly once, for members only,
//! across reconnects and to clients too slow to keep up.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ralf_server::dispatch::live::LiveEvent;
use ralf_testkit::{Api, Backend, GitRepo, TestServer, json, on_both_backends};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::common::{Project, WAIT};

/// 50 numbered lines, one every 20 ms.
const COUNT_SLOWLY: &str = "for i in $(seq 1 50); do echo line-$i; sleep 0.02; done\n";

/// How long silence means nothing is coming.
const QUIET: Duration = Duration::from_millis(700);

pub(crate) type Socket = WebSocketStream<TcpStream>;

/// Opens a WebSocket at `path` as `api`'s user (bearer token). A `small_buffer` socket
/// receives little at a time, so a client that does not read holds the server up soon.
pub(crate) async fn connect(api: &Api, path: &str, small_buffer: bool) -> Socket {
    match try_connect(api, path, small_buffer).await {
        Ok(socket) => socket,
        Err(e) => panic!("WebSocket {path}: {e}"),
    }
}

async fn try_connect(
    api: &Api,
    path: &str,
    small_buffer: bool,
) -> Result<Socket, tungstenite::Error> {
    let addr = api.base.trim_start_matches("http://");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if small_buffer {
        socket.set_recv_buffer_size(16 * 1024).expect("buffer size");
    }
    let tcp = socket
        .connect(addr.parse().expect("address"))
        .await
        .expect("connect");
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    if let Some(token) = &api.token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    Ok(tokio_tungstenite::client_async(request, tcp).await?.0)
}

/// The HTTP status a WebSocket request is refused with.
async fn refusal(api: &Api, path: &str) -> u16 {
    match try_connect(api, path, false).await {
        Ok(_) => panic!("WebSocket {path} was accepted"),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("WebSocket {path}: {e}"),
    }
}

pub(crate) enum Frame {
    Json(Value),
    /// The server closed the connection, with this close code.
    Closed(Option<u16>),
    /// Nothing came for a while.
    Silent,
}

pub(crate) async fn next(socket: &mut Socket, wait: Duration) -> Frame {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Err(_) => return Frame::Silent,
            Ok(None) | Ok(Some(Err(_))) => return Frame::Closed(None),
            Ok(Some(Ok(Message::Text(text)))) => {
                return Frame::Json(serde_json::from_str(&text).expect("JSON frame"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Frame::Closed(frame.map(|f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => {} // pings
        }
    }
}

/// What `/api/ws` said about one task.
#[derive(Debug, Default)]
struct Feed {
    lines: Vec<String>,
    statuses: Vec<String>,
    updates: Vec<Value>,
}

/// Reads `/api/ws` frames until the task's `update` says it is finished; frames of other
/// tasks must not come. `pause` sleeps every 100 frames (a slow reader).
async fn read_feed(socket: &mut Socket, project_id: i64, task_id: i64, pause: bool) -> Feed {
    let mut feed = Feed::default();
    let mut frames = 0u64;
    loop {
        let frame = match next(socket, WAIT).await {
            Frame::Json(frame) => frame,
            Frame::Closed(code) => panic!("/api/ws closed ({code:?}); so far {feed:?}"),
            Frame::Silent => panic!("/api/ws fell silent; so far {feed:?}"),
        };
        frames += 1;
        if pause && frames.is_multiple_of(100) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(frame["task_id"], task_id, "{frame}");
        assert_eq!(frame["project_id"], project_id, "{frame}");
        match frame["type"].as_str() {
            Some("log") => {
                let time = frame["time"].as_str().expect("time");
                assert!(
                    chrono::DateTime::parse_from_rfc3339(time).is_ok(),
                    "{frame}"
                );
                feed.lines
                    .push(frame["output"].as_str().expect("output").to_string());
            }
            Some("update") => {
                let status = frame["status"].as_str().expect("status").to_string();
                feed.statuses.push(status.clone());
                feed.updates.push(frame);
                if ["success", "error", "stopped", "rejected"].contains(&status.as_str()) {
                    return feed;
                }
            }
            _ => panic!("unexpected frame {frame}"),
        }
    }
}

/// What a task stream said.
#[derive(Debug, Default)]
struct Stream {
    /// `(index, output)` of each `line` frame.
    lines: Vec<(i64, String)>,
    statuses: Vec<String>,
    end: Option<String>,
    close_code: Option<u16>,
}

/// Reads a task stream until the server closes it, or (with `stop_after`) until a line with
/// that text has come.
async fn read_stream(socket: &mut Socket, stop_after: Option<&str>, pause: bool) -> Stream {
    let mut stream = Stream::default();
    loop {
        let frame = match next(socket, WAIT).await {
            Frame::Json(frame) => frame,
            Frame::Closed(code) => {
                stream.close_code = code;
                return stream;
            }
            Frame::Silent => panic!("the stream fell silent; so far {stream:?}"),
        };
        assert!(stream.end.is_none(), "a frame after end: {frame}");
        match frame["type"].as_str() {
            Some("line") => {
                let index = frame["index"].as_i64().expect("index");
                let output = frame["output"].as_str().expect("output").to_string();
                assert!(
                    chrono::DateTime::parse_from_rfc3339(frame["time"].as_str().expect("time"))
                        .is_ok(),
                    "{frame}"
                );
                let done = stop_after.is_some_and(|text| output == text);
                stream.lines.push((index, output));
                if pause && stream.lines.len().is_multiple_of(100) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                if done {
                    return stream;
                }
            }
            Some("status") => stream
                .statuses
                .push(frame["status"].as_str().expect("status").to_string()),
            Some("end") => stream.end = Some(frame["status"].as_str().expect("status").to_string()),
            _ => panic!("unexpected frame {frame}"),
        }
    }
}

/// Checks that `lines` are lines `from..` of `output`, each once, in order.
fn assert_lines(lines: &[(i64, String)], output: &[String], from: usize) {
    let indices: Vec<i64> = lines.iter().map(|(i, _)| *i).collect();
    let expected: Vec<i64> = (from as i64..output.len() as i64).collect();
    assert_eq!(indices, expected, "line indices");
    let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    let stored: Vec<&str> = output[from..].iter().map(String::as_str).collect();
    assert_eq!(texts, stored, "line texts");
}

fn numbered(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("line-"))
        .cloned()
        .collect()
}

fn one_to(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("line-{i}")).collect()
}

async fn counting_project(server: &TestServer) -> (GitRepo, Project, i64) {
    let repo = GitRepo::new(&[("count.sh", COUNT_SLOWLY)]);
    let project = Project::new(server, &repo).await;
    let template = project
        .template("count", "bash", "count.sh", json!({}))
        .await;
    (repo, project, template)
}

fn stream_path(project: &Project, task: i64, from: Option<i64>) -> String {
    let mut path = format!("/api/project/{}/tasks/{task}/stream", project.id);
    if let Some(from) = from {
        path.push_str(&format!("?from={from}"));
    }
    path
}

async fn the_feed_sends_every_line_once_and_each_status(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_repo, project, template) = counting_project(&server).await;
    let mut socket = connect(&project.api, "/api/ws", false).await;
    let task = project.start(json!({"template_id": template})).await;
    let feed = read_feed(&mut socket, project.id, task, false).await;
    let (done, output) = project.finish(task).await;
    assert_eq!(done["status"], "success", "{output:#?}");

    // Every line of the run, once, in order (the first stored line was written when the task
    // was queued, before anyone ran it).
    assert_eq!(feed.lines, output[1..], "{feed:#?}");
    assert_eq!(numbered(&feed.lines), one_to(50));
    assert_eq!(feed.statuses, ["waiting", "starting", "running", "success"]);
    let last = feed.updates.last().unwrap();
    assert_eq!(last["template_id"], template);
    assert_eq!(last["start"], done["start"]);
    assert_eq!(last["end"], done["end"]);
    assert!(
        last["end"].is_string() && last.get("version").is_some(),
        "{last}"
    );
    assert!(feed.updates[2]["start"].is_string(), "running has a start");
    assert!(matches!(next(&mut socket, QUIET).await, Frame::Silent));
    server.stop().await;
}

async fn the_feed_shows_a_project_only_to_those_who_may_read_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_repo, project, template) = counting_project(&server).await;
    let (member_id, member) = server.user("member", false).await;
    let (_, outsider) = server.user("outsider", false).await;
    let (_, other_admin) = server.user("other-admin", true).await;
    let r = project
        .post("users", json!({"user_id": member_id, "role": "guest"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(refusal(&server.anonymous(), "/api/ws").await, 401);

    let mut member_ws = connect(&member, "/api/ws", false).await;
    let mut outsider_ws = connect(&outsider, "/api/ws", false).await;
    let mut admin_ws = connect(&other_admin, "/api/ws", false).await;
    let task = project.start(json!({"template_id": template})).await;
    let seen = read_feed(&mut member_ws, project.id, task, false).await;
    let by_admin = read_feed(&mut admin_ws, project.id, task, false).await;
    let (_, output) = project.finish(task).await;
    assert_eq!(seen.lines, output[1..]);
    assert_eq!(by_admin.lines, output[1..]);
    assert!(
        matches!(next(&mut outsider_ws, QUIET).await, Frame::Silent),
        "a non-member hears nothing of the project"
    );

    // Removed from the project, the member stops hearing of it (access is cached for 2 s).
    let r = project
        .api
        .delete(&format!("/api/project/{}/users/{member_id}", project.id))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = project.start(json!({"template_id": template})).await;
    let by_admin = read_feed(&mut admin_ws, project.id, second, false).await;
    assert_eq!(by_admin.statuses.last().unwrap(), "success");
    assert!(
        matches!(next(&mut member_ws, QUIET).await, Frame::Silent),
        "a former member hears nothing of the project"
    );
    assert!(matches!(next(&mut outsider_ws, QUIET).await, Frame::Silent));
    server.stop().await;
}

async fn a_stream_opened_mid_run_sends_every_line_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_repo, project, template) = counting_project(&server).await;
    let task = project.start(json!({"template_id": template})).await;
    project.wait_for_line(task, "line-5").await;
    let mut socket = connect(&project.api, &stream_path(&project, task, Some(0)), false).await;
    let got = read_stream(&mut socket, None, false).await;
    let (done, output) = project.finish(task).await;
    assert_eq!(done["status"], "success");
    assert_lines(&got.lines, &output, 0);
    assert_eq!(numbered(&output), one_to(50));
    assert_eq!(got.statuses, ["running", "success"]);
    assert_eq!(got.end.as_deref(), Some("success"));
    assert_eq!(got.close_code, Some(1000), "closed cleanly");

    // A finished task's stream: its lines, then end at once.
    let mut socket = connect(&project.api, &stream_path(&project, task, None), false).await;
    let again = read_stream(&mut socket, None, false).await;
    assert_lines(&again.lines, &output, 0);
    assert_eq!(again.statuses, ["success"]);
    assert_eq!(again.end.as_deref(), Some("success"));
    server.stop().await;
}

async fn a_stream_from_ten_starts_at_line_ten(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_repo, project, template) = counting_project(&server).await;
    let task = project.start(json!({"template_id": template})).await;
    project.wait_for_line(task, "line-15").await;
    let mut socket = connect(&project.api, &stream_path(&project, task, Some(10)), false).await;
    let got = read_stream(&mut socket, None, false).await;
    let (_, output) = project.finish(task).await;
    assert_eq!(got.lines[0].0, 10);
    assert_lines(&got.lines, &output, 10);
    assert_eq!(got.end.as_deref(), Some("success"));

    // Reading the project is enough: a guest and a global admin who is not a member stream.
    let (guest_id, guest) = server.user("guest", false).await;
    let r = project
        .post("users", json!({"user_id": guest_id, "role": "guest"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (_, admin) = server.user("outside-admin", true).await;
    for api in [&guest, &admin] {
        let mut socket = connect(api, &stream_path(&project, task, Some(0)), false).await;
        let got = read_stream(&mut socket, None, false).await;
        assert_lines(&got.lines, &output, 0);
        assert_eq!(got.end.as_deref(), Some("success"));
    }

    // Refusals come before the upgrade, as HTTP answers.
    let (_, outsider) = server.user("outsider", false).await;
    assert_eq!(
        refusal(&outsider, &stream_path(&project, task, None)).await,
        404
    );
    assert_eq!(
        refusal(&server.anonymous(), &stream_path(&project, task, None)).await,
        401
    );
    assert_eq!(
        refusal(&project.api, &stream_path(&project, task, Some(-1))).await,
        400
    );
    assert_eq!(
        refusal(&project.api, &stream_path(&project, task + 1000, None)).await,
        404
    );
    let plain = project.api.get(&stream_path(&project, task, None)).await;
    assert_eq!(plain.status, 426, "{}", plain.text);
    assert!(plain.error().contains("WebSocket"), "{}", plain.text);
    server.stop().await;
}

async fn a_stream_resumed_after_a_drop_misses_and_repeats_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_repo, project, template) = counting_project(&server).await;
    let task = project.start(json!({"template_id": template})).await;
    let mut socket = connect(&project.api, &stream_path(&project, task, Some(0)), false).await;
    let first = read_stream(&mut socket, Some("line-10"), false).await;
    drop(socket); // no close frame: the connection just breaks
    let resume_at = first.lines.last().unwrap().0 + 1;
    let mut socket = connect(
        &project.api,
        &stream_path(&project, task, Some(resume_at)),
        false,
    )
    .await;
    let second = read_stream(&mut socket, None, false).await;
    let (done, output) = project.finish(task).await;
    assert_eq!(done["status"], "success");
    assert!(
        second.lines.iter().any(|(_, l)| l == "line-11"),
        "the task was still running when the connection broke"
    );
    let all: Vec<(i64, String)> = first.lines.into_iter().chain(second.lines).collect();
    assert_lines(&all, &output, 0);
    assert_eq!(second.end.as_deref(), Some("success"));
    server.stop().await;
}

async fn a_task_stopped_mid_run_is_streamed_to_its_end(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_repo, project, template) = counting_project(&server).await;
    let mut feed_ws = connect(&project.api, "/api/ws", false).await;
    let task = project.start(json!({"template_id": template})).await;
    let mut stream_ws = connect(&project.api, &stream_path(&project, task, None), false).await;
    project.wait_for_line(task, "line-5").await;
    let r = project
        .api
        .post(
            &format!("/api/project/{}/tasks/{task}/stop", project.id),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let streamed = read_stream(&mut stream_ws, None, false).await;
    let fed = read_feed(&mut feed_ws, project.id, task, false).await;
    let (done, output) = project.finish(task).await;
    assert_eq!(done["status"], "stopped");
    // The line the stop request wrote between two batches of the run comes too, in its place.
    assert!(
        output.iter().any(|l| l == "Task stop requested by admin"),
        "{output:#?}"
    );
    assert!(!output.iter().any(|l| l == "line-50"), "stopped mid-run");
    assert_lines(&streamed.lines, &output, 0);
    assert_eq!(streamed.end.as_deref(), Some("stopped"));
    assert_eq!(streamed.statuses.last().unwrap(), "stopped");
    assert_eq!(fed.lines, output[1..]);
    assert_eq!(
        fed.statuses,
        ["waiting", "starting", "running", "stopping", "stopped"]
    );
    server.stop().await;
}

async fn a_slow_reader_gets_all_of_a_long_fast_output(backend: Backend) {
    const LINES: usize = 20_000;
    // ~8 MB of output: far more than the sockets between server and client hold.
    let script = format!(
        "pad=$(printf '%0400d' 0)\nfor i in $(seq 1 {LINES}); do echo \"line-$i $pad\"; done\n"
    );
    let repo = GitRepo::new(&[("flood.sh", &script)]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template("flood", "bash", "flood.sh", json!({}))
        .await;
    let (member_id, member) = server.user("member", false).await;
    let r = project
        .post("users", json!({"user_id": member_id, "role": "guest"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);

    let mut feed_ws = connect(&member, "/api/ws", true).await;
    let task = project.start(json!({"template_id": template})).await;
    let mut stream_ws = connect(&project.api, &stream_path(&project, task, None), true).await;
    // Neither client reads while the task runs: both connections stall on full sockets.
    let done = project.api.wait_task(project.id, task, WAIT).await;
    assert_eq!(done["status"], "success");
    // Crowd the hub with news of other tasks until it drops what the stalled connections have
    // not taken yet: they must get it from the store.
    for _ in 0..10_000 {
        server.live().publish(LiveEvent::Output {
            task_id: 0,
            project_id: 0,
            first_index: 0,
            lines: Arc::new(Vec::new()),
        });
    }

    let streamed = read_stream(&mut stream_ws, None, true).await;
    let fed = read_feed(&mut feed_ws, project.id, task, true).await;
    let output = project.output(task).await;
    let expected: Vec<String> = (1..=LINES).map(|i| format!("line-{i}")).collect();
    let numbers = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.split(' ').next())
            .filter(|l| l.starts_with("line-"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(numbers(&output), expected);
    assert_lines(&streamed.lines, &output, 0);
    assert_eq!(streamed.end.as_deref(), Some("success"));
    assert_eq!(fed.lines.len(), output.len() - 1);
    assert!(
        fed.lines == output[1..],
        "the feed's lines differ from the stored ones"
    );
    let mut statuses = fed.statuses.clone();
    statuses.dedup();
    assert_eq!(statuses, fed.statuses, "no status twice");
    assert_eq!(fed.statuses.last().unwrap(), "success");
    server.stop().await;
}

on_both_backends!(
    the_feed_sends_every_line_once_and_each_status,
    the_feed_shows_a_project_only_to_those_who_may_read_it,
    a_stream_opened_mid_run_sends_every_line_once,
    a_stream_from_ten_starts_at_line_ten,
    a_stream_resumed_after_a_drop_misses_and_repeats_nothing,
    a_task_stopped_mid_run_is_streamed_to_its_end,
    a_slow_reader_gets_all_of_a_long_fast_output,
);

/// Two servers on one PostgreSQL database: a client of one hears, line by line and once each,
/// a task that the other runs (the news travels by LISTEN/NOTIFY, gaps filled from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_of_one_server_carries_a_task_another_server_runs() {
    let runs = TestServer::start(Backend::Postgres).await;
    // This one runs nothing itself: the task must be the other's.
    let listens = TestServer::start_on(runs.db.shared(), |s| s.use_remote_runner = true).await;
    let (_repo, project, template) = counting_project(&runs).await;
    let listener = Api::new(&listens.url, project.api.token.clone());
    let mut socket = connect(&listener, "/api/ws", false).await;
    let task = project.start(json!({"template_id": template})).await;
    let feed = read_feed(&mut socket, project.id, task, false).await;
    let (done, output) = project.finish(task).await;
    assert_eq!(done["status"], "success", "{output:#?}");
    assert_eq!(feed.lines, output[1..], "{feed:#?}");
    assert_eq!(numbered(&feed.lines), one_to(50));
    assert_eq!(feed.statuses, ["waiting", "starting", "running", "success"]);

    // And a stream of that task, opened on the listening server mid-run, ends with it.
    let again = project.start(json!({"template_id": template})).await;
    project.wait_for_line(again, "line-5").await;
    let path = format!("/api/project/{}/tasks/{again}/stream?from=0", project.id);
    let mut stream = connect(&listener, &path, false).await;
    let got = read_stream(&mut stream, None, false).await;
    let (_, output) = project.finish(again).await;
    assert_lines(&got.lines, &output, 0);
    assert_eq!(got.end.as_deref(), Some("success"));
    listens.stop().await;
    runs.stop().await;
}
