//! Telling people that tasks ended (docs/notifications.md). The store owes a notification for
//! every notifiable status it stores (`ralf_store::notifications`); [`run`], on every server,
//! claims what is due, decides whether the project wants it (its `alert`, the template's
//! `suppress_*_alerts`), and sends it to the configured channels and, by e-mail, to the
//! project's subscribers. Sending never touches the task: what fails is tried again with
//! back-off, and a channel that keeps failing is logged once per interval, not per task.

pub mod channels;
pub mod message;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use ralf_core::{TaskId, TaskStatus};
use ralf_store::notifications::{NotificationFacts, OwedNotification};
use tokio::sync::broadcast::error::RecvError;

pub use channels::NotifySettings;
use channels::{Channel, SendError, Target};
use message::Message;

use crate::dispatch::live::LiveEvent;
use crate::state::AppState;

/// How long a claimed notification is this server's before another may take it.
const LEASE: Duration = Duration::from_secs(300);
/// How often the owed notifications are looked at without news.
const SWEEP: Duration = Duration::from_secs(30);
/// Attempts after which a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Deliveries sent at the same time.
const PARALLEL: usize = 8;

/// The HTTP client of the channels and what is remembered of their failures.
pub struct Notifier {
    http: reqwest::Client,
    failures: Mutex<HashMap<Channel, Failing>>,
    parallel: Arc<tokio::sync::Semaphore>,
    /// Wakes [`run`] when a delivery was put off, so its retry is not late.
    rescheduled: tokio::sync::Notify,
}

/// A channel that failed: when that was last logged, and how often it failed since.
struct Failing {
    logged: Instant,
    unlogged: u64,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            http: reqwest::Client::builder()
                .user_agent(concat!("ralf/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            failures: Mutex::default(),
            parallel: Arc::new(tokio::sync::Semaphore::new(PARALLEL)),
            rescheduled: tokio::sync::Notify::new(),
        }
    }
}

impl Notifier {
    /// Sends `message` to `target`, and logs the channel's failure, or its recovery, at most
    /// once per `settings.failure_log_interval`.
    async fn deliver(
        &self,
        settings: &NotifySettings,
        target: &Target,
        message: &Message,
    ) -> Result<(), SendError> {
        let result = channels::send(&self.http, settings, target, message).await;
        let channel = target.channel();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(()) => {
                if failures.remove(&channel).is_some() {
                    tracing::info!(channel = channel.name(), "notification channel works again");
                }
            }
            Err(e) => match failures.get_mut(&channel) {
                Some(failing) if failing.logged.elapsed() < settings.failure_log_interval => {
                    failing.unlogged += 1;
                }
                Some(failing) => {
                    tracing::warn!(
                        channel = channel.name(),
                        error = %e,
                        failures_since_last_logged = failing.unlogged + 1,
                        "notification channel keeps failing"
                    );
                    failing.logged = Instant::now();
                    failing.unlogged = 0;
                }
                None => {
                    tracing::warn!(
                        channel = channel.name(),
                        error = %e,
                        "notification channel failed; retrying with back-off"
                    );
                    failures.insert(
                        channel,
                        Failing {
                            logged: Instant::now(),
                            unlogged: 0,
                        },
                    );
                }
            },
        }
        result
    }

    /// Sends `message` to each of `targets` at once; answers those that failed, with why.
    async fn deliver_all(
        &self,
        settings: &NotifySettings,
        targets: Vec<Target>,
        message: &Message,
    ) -> Vec<(Target, SendError)> {
        let sends = targets.into_iter().map(|target| async move {
            let result = self.deliver(settings, &target, message).await;
            result.err().map(|e| (target, e))
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Whether the project wants to hear of `status`: its alerts are on and the template does not
/// suppress this kind of end.
pub fn wanted(facts: &NotificationFacts, status: TaskStatus) -> bool {
    facts.alert
        && !(status == TaskStatus::Success && facts.suppress_success_alerts)
        && !(status == TaskStatus::Error && facts.suppress_error_alerts)
}

/// Every delivery a project's message makes: each chat channel, and an e-mail to each of its
/// subscribers when e-mail is configured. Telegram needs a chat, the server's or the
/// project's.
fn targets(
    settings: &NotifySettings,
    alert_chat: Option<&str>,
    subscribers: &[String],
) -> Vec<Target> {
    let mut targets: Vec<Target> = settings
        .chat_channels()
        .into_iter()
        .filter(|channel| {
            *channel != Channel::Telegram
                || alert_chat.is_some()
                || settings.telegram.as_ref().is_some_and(|t| t.chat.is_some())
        })
        .map(Target::Chat)
        .collect();
    if settings.email.is_some() {
        targets.extend(subscribers.iter().map(|a| Target::Email(a.clone())));
    }
    targets
}

/// The wait before attempt `attempts + 1`: `retry_after`, doubled per attempt, at most an hour.
fn backoff(retry_after: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    retry_after
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sends what is owed, on every server, until the server stops.
pub async fn run(state: AppState) {
    let mut news = state.live.subscribe();
    loop {
        let wait = match AssertUnwindSafe(send_due(&state)).catch_unwind().await {
            Ok(Ok(wait)) => wait,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "notifications: reading what is owed failed; retrying");
                SWEEP
            }
            Err(_) => {
                tracing::error!("notifications: a look at what is owed panicked; retrying");
                SWEEP
            }
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = state.notifier.rescheduled.notified() => break,
                event = news.recv() => match event {
                    Ok(LiveEvent::Status { status, .. }) if status.is_notifiable() => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                },
            }
        }
    }
}

/// Claims and sends every notification due now, each in a task of its own (a few at a time);
/// answers how long to wait before the next look.
async fn send_due(state: &AppState) -> Result<Duration, ralf_store::StoreError> {
    let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    loop {
        let permit = state
            .notifier
            .parallel
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let Some(owed) = state.store.claim_notification(now_ms(), lease).await? else {
            break;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let (id, task_id) = (owed.id, owed.task_id);
            match AssertUnwindSafe(send_owed(&state, owed))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(
                    error = %e, task.id = task_id.0, notification = id,
                    "notifications: could not record a delivery; it is tried again later"
                ),
                Err(_) => tracing::error!(
                    task.id = task_id.0,
                    notification = id,
                    "notifications: sending panicked; it is tried again later"
                ),
            }
            drop(permit);
        });
    }
    let next = state.store.next_notification_due().await?;
    Ok(match next {
        Some(due) => {
            Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0) + 50).min(SWEEP)
        }
        None => SWEEP,
    })
}

/// Sends one owed notification to what it is still owed to; forgets it when all went, when
/// nobody wants it, or after [`MAX_ATTEMPTS`]; else leaves the failed deliveries for later.
async fn send_owed(state: &AppState, owed: OwedNotification) -> Result<(), ralf_store::StoreError> {
    let settings = &state.settings.notify;
    let Some(facts) = state.store.notification_facts(owed.task_id).await? else {
        return state.store.forget_notification(owed.id).await;
    };
    if !wanted(&facts, owed.status) {
        return state.store.forget_notification(owed.id).await;
    }
    let targets: Vec<Target> = match &owed.channels {
        Some(names) => names
            .iter()
            .filter_map(|name| Target::parse(name, settings))
            .collect(),
        None => targets(settings, facts.alert_chat.as_deref(), &facts.subscribers),
    };
    if targets.is_empty() {
        return state.store.forget_notification(owed.id).await;
    }
    let message = task_message(state, &facts, owed.task_id, owed.status).await?;
    let failed = state
        .notifier
        .deliver_all(settings, targets, &message)
        .await;
    if failed.is_empty() {
        return state.store.forget_notification(owed.id).await;
    }
    if owed.attempts >= MAX_ATTEMPTS {
        for (target, e) in &failed {
            tracing::error!(
                task.id = owed.task_id.0,
                channel = target.channel().name(),
                error = %e,
                attempts = owed.attempts,
                "gave up sending a task's notification"
            );
        }
        return state.store.forget_notification(owed.id).await;
    }
    let names: Vec<String> = failed.iter().map(|(target, _)| target.name()).collect();
    let wait = backoff(settings.retry_after, owed.attempts);
    let next = now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    state
        .store
        .retry_notification(owed.id, &names, next)
        .await?;
    state.notifier.rescheduled.notify_one();
    Ok(())
}

/// The message about task `task_id` entering `status`, with the last lines of its log.
async fn task_message(
    state: &AppState,
    facts: &NotificationFacts,
    task_id: TaskId,
    status: TaskStatus,
) -> Result<Message, ralf_store::StoreError> {
    let count = state.store.task_output_count(task_id).await?;
    let first = (count - message::LOG_LINES).max(0);
    let log = state
        .store
        .task_output(task_id, first, Some(message::LOG_LINES))
        .await?
        .into_iter()
        .map(|line| line.output)
        .collect();
    let link = message::task_link(&state.settings.web_host, facts, task_id.0);
    Ok(Message::task(facts, task_id.0, status, link, log))
}

/// What a test notification found: the project's alerts are off, no channel reaches anyone, or
/// the channels that failed.
#[derive(Debug)]
pub enum TestOutcome {
    Sent,
    AlertsOff,
    NoChannel,
    Failed(Vec<String>),
}

/// Sends the test message of project `project_id` to every delivery its alerts make, now.
pub async fn send_test(
    state: &AppState,
    project_id: ralf_core::ProjectId,
) -> Result<TestOutcome, ralf_store::StoreError> {
    let project = state.store.project(project_id).await?;
    if !project.alert {
        return Ok(TestOutcome::AlertsOff);
    }
    let alert_chat = project.alert_chat.filter(|c| !c.trim().is_empty());
    let subscribers = state.store.alert_subscribers(project_id).await?;
    let settings = &state.settings.notify;
    let targets = targets(settings, alert_chat.as_deref(), &subscribers);
    if targets.is_empty() {
        return Ok(TestOutcome::NoChannel);
    }
    let message = Message::test(
        project_id.0,
        &project.name,
        alert_chat,
        &state.settings.web_host,
    );
    let failed = state
        .notifier
        .deliver_all(settings, targets, &message)
        .await;
    Ok(if failed.is_empty() {
        TestOutcome::Sent
    } else {
        TestOutcome::Failed(
            failed
                .iter()
                .map(|(target, e)| format!("{}: {e}", target.channel().name()))
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let first = Duration::from_secs(15);
        assert_eq!(backoff(first, 1), first);
        assert_eq!(backoff(first, 2), first * 2);
        assert_eq!(backoff(first, 4), first * 8);
        assert_eq!(backoff(first, 30), MAX_BACKOFF);
    }
}
