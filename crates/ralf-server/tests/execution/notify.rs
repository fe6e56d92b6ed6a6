//! Notifications of tasks' ends, received by what the test starts: an HTTP server that records
//! every request (standing in for Slack, Teams, Telegram, Rocket.Chat, Gotify, DingTalk, ntfy
//! and the generic webhook) and an SMTP sink that records every mail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use ralf_server::Settings;
use ralf_server::notify::channels::{
    EmailSettings, EmailTls, GotifySettings, NotifySettings, NtfySettings, TelegramSettings,
};
use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends, wait_until};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{Project, WAIT};

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An HTTP server on 127.0.0.1 recording every request; it answers 500 to the first
/// `failures` requests, then 200.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    failures: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let failures = Arc::new(Mutex::new(failures));
        let app = axum::Router::new().fallback({
            let got = got.clone();
            let failures = failures.clone();
            move |_: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let got = got.clone();
                let failures = failures.clone();
                async move {
                    got.lock().unwrap().push(Received {
                        path: uri.to_string(),
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let mut left = failures.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        (StatusCode::INTERNAL_SERVER_ERROR, "down")
                    } else {
                        (StatusCode::OK, r#"{"ok":true}"#)
                    }
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got, failures }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a request to a path starting with `prefix` arrived; answers the first.
    async fn wait_for(&self, prefix: &str) -> Received {
        wait_until(WAIT, async || {
            self.got()
                .into_iter()
                .find(|r| r.path.starts_with(prefix))
                .ok_or_else(|| format!("nothing arrived at {prefix}; got {:#?}", self.got()))
        })
        .await
    }
}

/// A mail the sink took: the envelope's recipients and the data.
type Mail = (Vec<String>, String);

/// An SMTP server that takes every mail (no TLS offered, no authentication) and records it:
/// the envelope's recipients and the data.
#[derive(Clone)]
struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let sink = SmtpSink {
            port,
            mails: mails.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let mails = mails.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read);
                    write.write_all(b"220 sink ready\r\n").await.ok()?;
                    let mut recipients = Vec::new();
                    loop {
                        let mut line = String::new();
                        if lines.read_line(&mut line).await.ok()? == 0 {
                            return Some(());
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "RCPT" => {
                                recipients.push(line[8..].trim().to_string());
                                b"250 ok\r\n"
                            }
                            "DATA" => {
                                write.write_all(b"354 go on\r\n").await.ok()?;
                                let mut data = String::new();
                                loop {
                                    let mut part = String::new();
                                    if lines.read_line(&mut part).await.ok()? == 0 {
                                        return Some(());
                                    }
                                    if part == ".\r\n" {
                                        break;
                                    }
                                    data.push_str(&part);
                                }
                                mails
                                    .lock()
                                    .unwrap()
                                    .push((std::mem::take(&mut recipients), data));
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok()?;
                                return Some(());
                            }
                            _ => b"250 ok\r\n",
                        };
                        write.write_all(answer).await.ok()?;
                    }
                });
            }
        });
        sink
    }

    async fn wait_for_mail(&self) -> Mail {
        wait_until(WAIT, async || {
            self.mails
                .lock()
                .unwrap()
                .first()
                .cloned()
                .ok_or("no mail arrived")
        })
        .await
    }
}

/// `text` with quoted-printable's soft line breaks and `=XX` escapes undone.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=')
            .then(|| joined.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// Every channel, pointed at `http` and `smtp`.
fn every_channel(http: &Receiver, smtp: &SmtpSink) -> NotifySettings {
    NotifySettings {
        email: Some(EmailSettings {
            host: "127.0.0.1".into(),
            port: smtp.port,
            sender: "ralf <ralf@example.com>".into(),
            username: None,
            password: None,
            tls: EmailTls::Auto,
        }),
        slack_url: Some(format!("{}/slack/T000/B000/secretpath", http.url)),
        microsoft_teams_url: Some(format!("{}/teams", http.url)),
        telegram: Some(TelegramSettings {
            token: "123:telegram-token".into(),
            chat: Some("1111".into()),
            api_url: http.url.clone(),
        }),
        rocketchat_url: Some(format!("{}/rocketchat", http.url)),
        gotify: Some(GotifySettings {
            url: format!("{}/gotify", http.url),
            token: "gotify-app-token".into(),
        }),
        dingtalk_url: Some(format!("{}/dingtalk?access_token=ding", http.url)),
        ntfy: Some(NtfySettings {
            url: format!("{}/ntfy/deploys", http.url),
            token: Some("ntfy-token".into()),
        }),
        webhook_url: Some(format!("{}/webhook", http.url)),
        retry_after: Duration::from_millis(200),
        ..Default::default()
    }
}

const PUBLIC_URL: &str = "https://ralf.example.com";
const API_TOKEN: &str = "tok-3f9a-never-in-a-message";

fn configure(notify: NotifySettings) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.web_host = PUBLIC_URL.into();
        s.notify = notify;
    }
}

/// A user who subscribed to alerts by e-mail, as a member of the project.
async fn subscribe(server: &TestServer, project: &Project, login: &str) -> String {
    let email = format!("{login}@example.com");
    let (user_id, _) = server.user(login, false).await;
    let reply = project
        .api
        .put(
            &format!("/api/users/{user_id}"),
            json!({"id": user_id, "username": login, "name": login, "email": email,
                   "alert": true, "admin": false}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let reply = project
        .post("users", json!({"user_id": user_id, "role": "task_runner"}))
        .await;
    assert!(reply.status.is_success(), "{}", reply.text);
    email
}

async fn every_channel_hears_of_a_failed_task_with_its_log_masked(backend: Backend) {
    let repo = GitRepo::new(&[(
        "deploy.sh",
        "echo \"deploying with $API_TOKEN\"\necho step one done\nexit 1\n",
    )]);
    let http = Receiver::start(0).await;
    let smtp = SmtpSink::start().await;
    let server = TestServer::start_with(backend, configure(every_channel(&http, &smtp))).await;
    let project = Project::with(
        &server,
        &repo.url(),
        json!({"alert": true, "alert_chat": "4242"}),
    )
    .await;
    let subscriber = subscribe(&server, &project, "oncall").await;
    let env = project
        .environment(
            json!({}),
            json!({}),
            json!([{"name": "API_TOKEN", "secret": API_TOKEN, "type": "env"}]),
        )
        .await;
    let template = project
        .template(
            "deploy",
            "bash",
            "deploy.sh",
            json!({"environment_id": env}),
        )
        .await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    let task = done["id"].as_i64().unwrap();
    let admin_name = project.api.get("/api/user").await.body["name"]
        .as_str()
        .unwrap()
        .to_string();
    let link = format!(
        "{PUBLIC_URL}/project/{}/templates/{template}?t={task}",
        project.id
    );
    let subject = format!("exec: deploy task #{task} failed");

    // Every text a channel got says what happened, links the task, shows the log's last
    // lines, and never the secret.
    let says_it_all = |channel: &str, text: &str| {
        for wanted in [
            subject.as_str(),
            "error",
            admin_name.as_str(),
            link.as_str(),
            "step one done",
            "deploying with **********",
        ] {
            assert!(text.contains(wanted), "{channel} lacks {wanted:?}: {text}");
        }
        assert!(
            !text.contains(API_TOKEN),
            "{channel} shows the secret: {text}"
        );
    };

    let slack = http.wait_for("/slack/T000/B000/secretpath").await.json();
    says_it_all("slack", &slack.to_string().replace("\\n", "\n"));
    assert_eq!(slack["text"], subject.as_str());
    assert_eq!(slack["attachments"][0]["title_link"], link.as_str());

    let teams = http.wait_for("/teams").await.json();
    assert_eq!(teams["@type"], "MessageCard");
    says_it_all(
        "teams",
        &format!("{} {}", teams["title"], teams["text"]).replace("\\n", "\n"),
    );
    assert_eq!(
        teams["potentialAction"][0]["targets"][0]["uri"],
        link.as_str()
    );

    // The project's alert_chat wins over the server's chat.
    let telegram = http
        .wait_for("/bot123:telegram-token/sendMessage")
        .await
        .json();
    assert_eq!(telegram["chat_id"], "4242");
    says_it_all("telegram", telegram["text"].as_str().unwrap());

    let rocketchat = http.wait_for("/rocketchat").await.json();
    says_it_all("rocketchat", &rocketchat.to_string().replace("\\n", "\n"));

    let gotify = http.wait_for("/gotify/message").await;
    assert_eq!(gotify.headers["x-gotify-key"], "gotify-app-token");
    let gotify = gotify.json();
    assert_eq!(gotify["priority"], 8, "a failure is urgent");
    says_it_all(
        "gotify",
        &format!("{} {}", gotify["title"], gotify["message"]).replace("\\n", "\n"),
    );

    let dingtalk = http.wait_for("/dingtalk?access_token=ding").await.json();
    assert_eq!(dingtalk["msgtype"], "markdown");
    says_it_all("dingtalk", dingtalk["markdown"]["text"].as_str().unwrap());

    let ntfy = http.wait_for("/ntfy/deploys").await;
    assert_eq!(ntfy.headers["title"], subject.as_str());
    assert_eq!(ntfy.headers["click"], link.as_str());
    assert_eq!(ntfy.headers["priority"], "high");
    assert_eq!(ntfy.headers["authorization"], "Bearer ntfy-token");
    says_it_all("ntfy", &format!("{subject}\n{}", ntfy.body));

    let webhook = http.wait_for("/webhook").await.json();
    assert_eq!(webhook["event"], "task");
    assert_eq!(webhook["project"]["id"], project.id);
    assert_eq!(webhook["template"]["name"], "deploy");
    assert_eq!(webhook["task"]["id"], task);
    assert_eq!(webhook["task"]["status"], "error");
    assert_eq!(webhook["task"]["started_by"], admin_name.as_str());
    assert_eq!(webhook["task"]["url"], link.as_str());
    says_it_all("webhook", &webhook.to_string());

    let (recipients, mail) = smtp.wait_for_mail().await;
    let mail = quoted_printable(&mail);
    assert_eq!(recipients, vec![format!("<{subscriber}>")]);
    assert!(mail.contains(&format!("Subject: {subject}")), "{mail}");
    says_it_all("e-mail", &mail);

    // One message per channel, and nothing left owed.
    wait_until(WAIT, async || {
        match server.store().next_notification_due().await {
            Ok(None) => Ok(()),
            other => Err(format!("still owed: {other:?}")),
        }
    })
    .await;
    assert_eq!(http.got().len(), 8, "{:#?}", http.got());
    server.stop().await;
}

async fn templates_suppress_successes_and_projects_without_alerts_hear_nothing(backend: Backend) {
    let repo = GitRepo::new(&[("ok.sh", "echo fine\n"), ("fail.sh", "exit 2\n")]);
    let http = Receiver::start(0).await;
    let server = TestServer::start_with(
        backend,
        configure(NotifySettings {
            webhook_url: Some(format!("{}/webhook", http.url)),
            ..Default::default()
        }),
    )
    .await;
    let quiet = Project::with(&server, &repo.url(), json!({"alert": false})).await;
    let quiet_fail = quiet.template("fail", "bash", "fail.sh", json!({})).await;
    let (done, _) = quiet.run(json!({"template_id": quiet_fail})).await;
    assert_eq!(done["status"], "error");

    let project = Project::with(&server, &repo.url(), json!({"alert": true})).await;
    let ok = project
        .template(
            "ok",
            "bash",
            "ok.sh",
            json!({"suppress_success_alerts": true}),
        )
        .await;
    let fail = project
        .template(
            "fail",
            "bash",
            "fail.sh",
            json!({"suppress_error_alerts": true}),
        )
        .await;
    let told = project.template("told", "bash", "ok.sh", json!({})).await;
    for template in [ok, fail, told] {
        project.run(json!({"template_id": template})).await;
    }
    // The last task's message arrives; everything before it was decided by then.
    let heard = http.wait_for("/webhook").await.json();
    assert_eq!(heard["template"]["name"], "told");
    assert_eq!(heard["task"]["status"], "success");
    wait_until(WAIT, async || {
        match server.store().next_notification_due().await {
            Ok(None) => Ok(()),
            other => Err(format!("still owed: {other:?}")),
        }
    })
    .await;
    assert_eq!(http.got().len(), 1, "{:#?}", http.got());
    server.stop().await;
}

async fn a_failing_channel_is_retried_and_never_touches_the_task(backend: Backend) {
    let repo = GitRepo::new(&[("ok.sh", "echo fine\n")]);
    // The webhook fails twice, then takes the message; Slack is down for good.
    let http = Receiver::start(2).await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = TestServer::start_with(
        backend,
        configure(NotifySettings {
            webhook_url: Some(format!("{}/webhook", http.url)),
            slack_url: Some(format!("http://{dead}/slack")),
            ..NotifySettings {
                retry_after: Duration::from_millis(200),
                ..Default::default()
            }
        }),
    )
    .await;
    let project = Project::with(&server, &repo.url(), json!({"alert": true})).await;
    let template = project.template("ok", "bash", "ok.sh", json!({})).await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    wait_until(WAIT, async || {
        let got = http.got();
        if got.len() >= 3 {
            Ok(())
        } else {
            Err(format!("the webhook was not retried: {got:#?}"))
        }
    })
    .await;
    // The third attempt succeeded: no fourth.
    let got = http.got();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got.iter().all(|r| r.json()["task"]["id"] == done["id"]));
    // Slack is still owed, the task unchanged.
    assert!(
        server
            .store()
            .next_notification_due()
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        project.task(done["id"].as_i64().unwrap()).await["status"],
        "success"
    );
    server.stop().await;
}

async fn a_test_notification_needs_alerts_and_reports_failing_channels(backend: Backend) {
    let repo = GitRepo::new(&[("ok.sh", "echo fine\n")]);
    let http = Receiver::start(0).await;
    let smtp = SmtpSink::start().await;
    let server = TestServer::start_with(backend, configure(every_channel(&http, &smtp))).await;
    let quiet = Project::with(&server, &repo.url(), json!({"alert": false})).await;
    let reply = quiet.post("notifications/test", json!({})).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert!(
        reply.error().contains("alerts are not enabled"),
        "{}",
        reply.text
    );
    assert!(http.got().is_empty());

    let project = Project::with(&server, &repo.url(), json!({"alert": true})).await;
    let subscriber = subscribe(&server, &project, "watcher").await;
    let reply = project.post("notifications/test", json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    // It answered after sending: everything is there already.
    assert_eq!(http.got().len(), 8, "{:#?}", http.got());
    let telegram = http
        .wait_for("/bot123:telegram-token/sendMessage")
        .await
        .json();
    assert_eq!(
        telegram["chat_id"], "1111",
        "the server's chat without alert_chat"
    );
    assert!(
        telegram["text"]
            .as_str()
            .unwrap()
            .contains("test notification")
    );
    assert_eq!(http.wait_for("/webhook").await.json()["event"], "test");
    let (recipients, _) = smtp.wait_for_mail().await;
    assert_eq!(recipients, vec![format!("<{subscriber}>")]);

    // A channel that fails is named, without its URL or token.
    *http.failures.lock().unwrap() = 1;
    let reply = project.post("notifications/test", json!({})).await;
    assert_eq!(reply.status, 502, "{}", reply.text);
    assert!(reply.error().contains("500"), "{}", reply.text);
    for secret in [
        "secretpath",
        "telegram-token",
        "gotify-app-token",
        "ntfy-token",
    ] {
        assert!(!reply.text.contains(secret), "{}", reply.text);
    }
    server.stop().await;
}

on_both_backends!(
    every_channel_hears_of_a_failed_task_with_its_log_masked,
    templates_suppress_successes_and_projects_without_alerts_hear_nothing,
    a_failing_channel_is_retried_and_never_touches_the_task,
    a_test_notification_needs_alerts_and_reports_failing_channels,
);
