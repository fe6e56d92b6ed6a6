//! The channels a message can go to, as the server's settings configure them (Semaphore's
//! `SEMAPHORE_*_ALERT` family and ralf's own `notify_*`), and how each one is sent: e-mail over
//! SMTP (STARTTLS when the server offers it, or required, or TLS from the start), Slack,
//! Microsoft Teams, Telegram, Rocket.Chat, Gotify, DingTalk, ntfy, and a generic JSON webhook.
//! An error names what failed without the channel's URL or token, which are secrets.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::message::{Message, Tone};

/// How long one delivery may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where messages go; every channel is off unless configured.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifySettings {
    pub email: Option<EmailSettings>,
    /// Slack's incoming webhook URL.
    pub slack_url: Option<String>,
    /// A Microsoft Teams incoming webhook URL.
    pub microsoft_teams_url: Option<String>,
    pub telegram: Option<TelegramSettings>,
    /// A Rocket.Chat incoming webhook URL.
    pub rocketchat_url: Option<String>,
    pub gotify: Option<GotifySettings>,
    /// A DingTalk robot webhook URL.
    pub dingtalk_url: Option<String>,
    pub ntfy: Option<NtfySettings>,
    /// Any URL that takes the message as JSON (docs/notifications.md shows its shape).
    pub webhook_url: Option<String>,
    /// The first wait after a failed delivery; each next one doubles, up to an hour.
    pub retry_after: Duration,
    /// How often a channel that keeps failing is logged.
    pub failure_log_interval: Duration,
}

/// The default of [`NotifySettings::retry_after`].
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(15);
/// The default of [`NotifySettings::failure_log_interval`].
pub const DEFAULT_FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(600);

impl Default for NotifySettings {
    /// No channel, default timings.
    fn default() -> NotifySettings {
        NotifySettings {
            email: None,
            slack_url: None,
            microsoft_teams_url: None,
            telegram: None,
            rocketchat_url: None,
            gotify: None,
            dingtalk_url: None,
            ntfy: None,
            webhook_url: None,
            retry_after: DEFAULT_RETRY_AFTER,
            failure_log_interval: DEFAULT_FAILURE_LOG_INTERVAL,
        }
    }
}

impl NotifySettings {
    /// The configured channels other than e-mail, by name.
    pub fn chat_channels(&self) -> Vec<Channel> {
        [
            (self.slack_url.is_some(), Channel::Slack),
            (self.microsoft_teams_url.is_some(), Channel::MicrosoftTeams),
            (self.telegram.is_some(), Channel::Telegram),
            (self.rocketchat_url.is_some(), Channel::RocketChat),
            (self.gotify.is_some(), Channel::Gotify),
            (self.dingtalk_url.is_some(), Channel::DingTalk),
            (self.ntfy.is_some(), Channel::Ntfy),
            (self.webhook_url.is_some(), Channel::Webhook),
        ]
        .into_iter()
        .filter_map(|(on, channel)| on.then_some(channel))
        .collect()
    }
}

impl std::fmt::Debug for NotifySettings {
    /// Names the channels only: their URLs and tokens are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut channels: Vec<&str> = self.chat_channels().iter().map(|c| c.name()).collect();
        if self.email.is_some() {
            channels.insert(0, "email");
        }
        f.debug_struct("NotifySettings")
            .field("channels", &channels)
            .field("retry_after", &self.retry_after)
            .field("failure_log_interval", &self.failure_log_interval)
            .finish()
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EmailTls {
    /// STARTTLS when the server offers it, else plain (the default).
    #[default]
    Auto,
    /// STARTTLS, or no delivery (Semaphore's `email_secure`).
    StartTls,
    /// TLS from the first byte, as on port 465 (Semaphore's `email_tls`).
    Tls,
    /// Plain text only.
    None,
}

#[derive(Clone, PartialEq, Eq)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub sender: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: EmailTls,
}

#[derive(Clone, PartialEq, Eq)]
pub struct TelegramSettings {
    pub token: String,
    /// The chat messages go to unless the project names its own (`alert_chat`).
    pub chat: Option<String>,
    /// The Bot API's base URL (`https://api.telegram.org`; another for a local Bot API server).
    pub api_url: String,
}

/// The default of [`TelegramSettings::api_url`].
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

#[derive(Clone, PartialEq, Eq)]
pub struct GotifySettings {
    /// The Gotify server's base URL.
    pub url: String,
    /// An application token.
    pub token: String,
}

#[derive(Clone, PartialEq, Eq)]
pub struct NtfySettings {
    /// The topic's URL (`https://ntfy.sh/my-topic`).
    pub url: String,
    /// An access token, when the topic needs one.
    pub token: Option<String>,
}

/// A kind of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Slack,
    MicrosoftTeams,
    Telegram,
    RocketChat,
    Gotify,
    DingTalk,
    Ntfy,
    Webhook,
}

impl Channel {
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::MicrosoftTeams => "microsoft_teams",
            Channel::Telegram => "telegram",
            Channel::RocketChat => "rocketchat",
            Channel::Gotify => "gotify",
            Channel::DingTalk => "dingtalk",
            Channel::Ntfy => "ntfy",
            Channel::Webhook => "webhook",
        }
    }
}

/// One delivery of a message: a channel, or one e-mail recipient. Stored by its [`name`] while
/// it is owed (`email:<address>` for e-mail).
///
/// [`name`]: Target::name
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Email(String),
    Chat(Channel),
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Email(address) => format!("email:{address}"),
            Target::Chat(channel) => channel.name().to_string(),
        }
    }

    /// The target a stored name means, if that channel is (still) configured.
    pub fn parse(name: &str, settings: &NotifySettings) -> Option<Target> {
        if let Some(address) = name.strip_prefix("email:") {
            return settings
                .email
                .is_some()
                .then(|| Target::Email(address.to_string()));
        }
        settings
            .chat_channels()
            .into_iter()
            .find(|c| c.name() == name)
            .map(Target::Chat)
    }

    pub fn channel(&self) -> Channel {
        match self {
            Target::Email(_) => Channel::Email,
            Target::Chat(channel) => *channel,
        }
    }
}

/// Why a delivery failed, safe to log and show: never a URL or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

fn http_error(e: reqwest::Error) -> SendError {
    SendError(e.without_url().to_string())
}

/// Sends `message` to `target`.
pub async fn send(
    http: &reqwest::Client,
    settings: &NotifySettings,
    target: &Target,
    message: &Message,
) -> Result<(), SendError> {
    let unconfigured = || SendError(format!("{} is not configured", target.channel().name()));
    match target {
        Target::Email(address) => {
            let email = settings.email.as_ref().ok_or_else(unconfigured)?;
            send_email(email, address, message).await
        }
        Target::Chat(channel) => {
            let request =
                chat_request(http, settings, *channel, message).ok_or_else(unconfigured)?;
            let answer = request
                .timeout(SEND_TIMEOUT)
                .send()
                .await
                .map_err(http_error)?;
            let status = answer.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(SendError(format!("answered {status}")))
            }
        }
    }
}

/// The HTTP request that carries `message` to `channel`; `None` when it is not configured.
fn chat_request(
    http: &reqwest::Client,
    settings: &NotifySettings,
    channel: Channel,
    message: &Message,
) -> Option<reqwest::RequestBuilder> {
    let colour = match message.tone {
        Tone::Good => "#2eb886",
        Tone::Bad => "#d50200",
        Tone::Attention => "#daa038",
    };
    let request = match channel {
        Channel::Email => return None,
        Channel::Slack => http
            .post(settings.slack_url.as_deref()?)
            .json(&slack_payload(message, colour)),
        Channel::RocketChat => http
            .post(settings.rocketchat_url.as_deref()?)
            .json(&slack_payload(message, colour)),
        Channel::MicrosoftTeams => {
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "themeColor": colour.trim_start_matches('#'),
                "summary": message.subject,
                "title": message.subject,
                "text": message.markdown_body(),
            });
            if let Some(link) = &message.link {
                card["potentialAction"] = json!([{
                    "@type": "OpenUri",
                    "name": "Open the task",
                    "targets": [{"os": "default", "uri": link}],
                }]);
            }
            http.post(settings.microsoft_teams_url.as_deref()?)
                .json(&card)
        }
        Channel::Telegram => {
            let telegram = settings.telegram.as_ref()?;
            let chat = message
                .telegram_chat
                .as_deref()
                .or(telegram.chat.as_deref())?;
            let url = format!(
                "{}/bot{}/sendMessage",
                telegram.api_url.trim_end_matches('/'),
                telegram.token
            );
            http.post(url).json(&json!({
                "chat_id": chat,
                "text": format!("{}\n\n{}", message.subject, message.plain_body()),
                "disable_web_page_preview": true,
            }))
        }
        Channel::Gotify => {
            let gotify = settings.gotify.as_ref()?;
            let mut body = json!({
                "title": message.subject,
                "message": message.markdown_body(),
                "priority": match message.tone { Tone::Good => 2, Tone::Attention => 5, Tone::Bad => 8 },
                "extras": {"client::display": {"contentType": "text/markdown"}},
            });
            if let Some(link) = &message.link {
                body["extras"]["client::notification"] = json!({"click": {"url": link}});
            }
            http.post(format!("{}/message", gotify.url.trim_end_matches('/')))
                .header("X-Gotify-Key", &gotify.token)
                .json(&body)
        }
        Channel::DingTalk => http.post(settings.dingtalk_url.as_deref()?).json(&json!({
            "msgtype": "markdown",
            "markdown": {
                "title": message.subject,
                "text": format!("### {}\n\n{}", message.subject, message.markdown_body()),
            },
        })),
        Channel::Ntfy => {
            let ntfy = settings.ntfy.as_ref()?;
            let mut headers = HeaderMap::new();
            // Header values must be visible ASCII: the subject travels RFC 2047-free, so
            // anything else is replaced.
            let title: String = message
                .subject
                .chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            headers.insert("Title", HeaderValue::from_str(&title).ok()?);
            let (priority, tags) = match message.tone {
                Tone::Good => ("default", "white_check_mark"),
                Tone::Attention => ("high", "hourglass"),
                Tone::Bad => ("high", "rotating_light"),
            };
            headers.insert("Priority", HeaderValue::from_static(priority));
            headers.insert("Tags", HeaderValue::from_static(tags));
            if let Some(link) = message
                .link
                .as_deref()
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                headers.insert("Click", link);
            }
            let mut request = http
                .post(&ntfy.url)
                .headers(headers)
                .body(message.plain_body());
            if let Some(token) = &ntfy.token {
                request = request.bearer_auth(token);
            }
            request
        }
        Channel::Webhook => http
            .post(settings.webhook_url.as_deref()?)
            .json(&message.json),
    };
    Some(request)
}

/// Slack's (and Rocket.Chat's) incoming-webhook message: the subject, and an attachment with
/// the facts and the log.
fn slack_payload(message: &Message, colour: &str) -> Value {
    let mut attachment = json!({
        "color": colour,
        "title": message.subject,
        "text": message.plain_body(),
    });
    if let Some(link) = &message.link {
        attachment["title_link"] = json!(link);
    }
    json!({"text": message.subject, "attachments": [attachment]})
}

async fn send_email(email: &EmailSettings, to: &str, message: &Message) -> Result<(), SendError> {
    let from: Mailbox = email
        .sender
        .parse()
        .map_err(|e| SendError(format!("email_sender: {e}")))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| SendError(format!("recipient {to:?}: {e}")))?;
    let mail = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(&message.subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(message.plain_body())
        .map_err(|e| SendError(format!("building the e-mail: {e}")))?;
    let tls = |host: &str| {
        TlsParameters::new(host.to_string()).map_err(|e| SendError(format!("TLS: {e}")))
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
        .port(email.port)
        .timeout(Some(SEND_TIMEOUT))
        .tls(match email.tls {
            EmailTls::Auto => Tls::Opportunistic(tls(&email.host)?),
            EmailTls::StartTls => Tls::Required(tls(&email.host)?),
            EmailTls::Tls => Tls::Wrapper(tls(&email.host)?),
            EmailTls::None => Tls::None,
        });
    if let Some(username) = &email.username {
        transport = transport.credentials(Credentials::new(
            username.clone(),
            email.password.clone().unwrap_or_default(),
        ));
    }
    transport
        .build()
        .send(mail)
        .await
        .map(|_| ())
        .map_err(|e| SendError(format!("SMTP: {e}")))
}
