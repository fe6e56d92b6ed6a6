//! What a notification says, independent of the channel: a subject, the facts (project,
//! template, task, status, who started it), a link to the task and the last lines of its log,
//! and the same as JSON for the generic webhook. Each channel lays it out in `channels`.

use ralf_core::TaskStatus;
use ralf_store::notifications::NotificationFacts;
use serde_json::{Value, json};

/// How many of the log's last lines a message carries.
pub const LOG_LINES: i64 = 20;

/// Whether the news is good, bad or asks for something: the colour, priority and tag
/// channels give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Attention,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    /// The facts, one `Label: value` line each.
    pub facts: Vec<(&'static str, String)>,
    pub link: Option<String>,
    /// The log's last lines, as stored (masked when the task ran).
    pub log: Vec<String>,
    pub tone: Tone,
    /// The Telegram chat the project asks for instead of the server's.
    pub telegram_chat: Option<String>,
    /// The whole message as the generic webhook sends it.
    pub json: Value,
}

/// The link to a task in the web UI, as Semaphore makes it; `None` without a public URL.
pub fn task_link(web_host: &str, facts: &NotificationFacts, task_id: i64) -> Option<String> {
    let base = web_host.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| {
        format!(
            "{base}/project/{}/templates/{}?t={task_id}",
            facts.project_id.0, facts.template_id.0
        )
    })
}

/// How a status reads in a subject.
fn outcome(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Success => "succeeded",
        TaskStatus::Error => "failed",
        TaskStatus::Stopped => "was stopped",
        TaskStatus::Rejected => "was rejected",
        TaskStatus::WaitingConfirmation => "waits for confirmation",
        _ => "changed",
    }
}

impl Message {
    /// The news that task `task_id` entered `status`.
    pub fn task(
        facts: &NotificationFacts,
        task_id: i64,
        status: TaskStatus,
        link: Option<String>,
        log: Vec<String>,
    ) -> Message {
        let subject = format!(
            "{}: {} task #{task_id} {}",
            facts.project_name,
            facts.template_name,
            outcome(status)
        );
        let mut lines = vec![
            ("Project", facts.project_name.clone()),
            ("Template", facts.template_name.clone()),
            ("Task", format!("#{task_id}")),
            ("Status", status.to_string()),
            ("Started by", facts.started_by.clone()),
        ];
        if !facts.message.trim().is_empty() {
            lines.push(("Message", facts.message.trim().to_string()));
        }
        let json = json!({
            "event": "task",
            "subject": subject,
            "project": {"id": facts.project_id.0, "name": facts.project_name},
            "template": {"id": facts.template_id.0, "name": facts.template_name},
            "task": {
                "id": task_id,
                "status": status,
                "started_by": facts.started_by,
                "message": facts.message,
                "url": link,
            },
            "log": log,
        });
        Message {
            subject,
            facts: lines,
            link,
            log,
            tone: match status {
                TaskStatus::Success => Tone::Good,
                TaskStatus::WaitingConfirmation => Tone::Attention,
                _ => Tone::Bad,
            },
            telegram_chat: facts.alert_chat.clone(),
            json,
        }
    }

    /// The test message of `POST /api/project/{id}/notifications/test`.
    pub fn test(
        project_id: i64,
        project_name: &str,
        alert_chat: Option<String>,
        web_host: &str,
    ) -> Message {
        let subject = format!("{project_name}: test notification");
        let base = web_host.trim().trim_end_matches('/');
        let link = (!base.is_empty()).then(|| format!("{base}/project/{project_id}/history"));
        let json = json!({
            "event": "test",
            "subject": subject,
            "project": {"id": project_id, "name": project_name},
            "template": null,
            "task": null,
            "log": [],
        });
        Message {
            subject,
            facts: vec![
                ("Project", project_name.to_string()),
                (
                    "Note",
                    "this is a test; the project's alerts reach this channel".into(),
                ),
            ],
            link,
            log: Vec::new(),
            tone: Tone::Good,
            telegram_chat: alert_chat,
            json,
        }
    }

    /// The facts, the link and the log as plain text, for e-mail and the plain channels.
    pub fn plain_body(&self) -> String {
        let mut text = String::new();
        for (label, value) in &self.facts {
            text.push_str(&format!("{label}: {value}\n"));
        }
        if let Some(link) = &self.link {
            text.push_str(&format!("Link: {link}\n"));
        }
        if !self.log.is_empty() {
            text.push_str("\nLast lines of the log:\n");
            for line in &self.log {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// The facts, the link and the log in Markdown (Teams, DingTalk, Gotify, Rocket.Chat).
    pub fn markdown_body(&self) -> String {
        let mut text = String::new();
        for (label, value) in &self.facts {
            text.push_str(&format!("**{label}:** {value}  \n"));
        }
        if let Some(link) = &self.link {
            text.push_str(&format!("[Open the task]({link})  \n"));
        }
        if !self.log.is_empty() {
            text.push_str("\n```\n");
            for line in &self.log {
                // A fence inside the log would end the block early.
                text.push_str(&line.replace("```", "'''"));
                text.push('\n');
            }
            text.push_str("```\n");
        }
        text
    }
}
