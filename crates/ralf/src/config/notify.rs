//! The notification channels' settings (docs/notifications.md) → [`NotifySettings`]. Each
//! channel is on when what it needs is set (a URL, a host, a token) and its `*_alert` flag is
//! not `false`, as in Semaphore; a flag that is `true` without what the channel needs is an
//! error, not a silent nothing.

use ralf_server::notify::channels::{
    EmailSettings, EmailTls, GotifySettings, NotifySettings, NtfySettings, TELEGRAM_API_URL,
    TelegramSettings,
};

use super::ConfigError;
use super::resolve::Resolver;
use super::value::Found;

/// SMTP's port when none is set.
const DEFAULT_EMAIL_PORT: u16 = 25;

impl Resolver {
    pub(super) fn notify(&self) -> Result<NotifySettings, ConfigError> {
        let mut notify = NotifySettings::default();
        if let Some(found) = self.find("notify_retry_after", "notify_retry_after") {
            notify.retry_after = found.duration()?;
        }
        notify.email = self.email()?;
        notify.slack_url = self.channel_url("slack", "slack_url")?;
        notify.microsoft_teams_url = self.channel_url("microsoft_teams", "microsoft_teams_url")?;
        notify.rocketchat_url = self.channel_url("rocketchat", "rocketchat_url")?;
        notify.dingtalk_url = self.channel_url("dingtalk", "dingtalk_url")?;
        notify.webhook_url = self.secret("alert_webhook_url")?;
        notify.telegram = match self.channel_url("telegram", "telegram_token")? {
            Some(token) => Some(TelegramSettings {
                token,
                chat: self.text("telegram_chat")?,
                api_url: self
                    .text("telegram_api_url")?
                    .map(|url| url.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| TELEGRAM_API_URL.into()),
            }),
            None => None,
        };
        notify.gotify = match self.channel_url("gotify", "gotify_url")? {
            Some(url) => Some(GotifySettings {
                url: url.trim_end_matches('/').to_string(),
                token: self.secret("gotify_token")?.ok_or_else(|| {
                    self.find("gotify_url", "gotify_url")
                        .map(|f| f.invalid_secret("gotify needs gotify_token too"))
                        .unwrap_or_else(|| missing("gotify_token"))
                })?,
            }),
            None => None,
        };
        notify.ntfy = match self.text("ntfy_url")? {
            Some(url) => Some(NtfySettings {
                url,
                token: self.secret("ntfy_token")?,
            }),
            None => None,
        };
        Ok(notify)
    }

    /// A non-secret text setting, `None` when unset or blank.
    fn text(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.find(key, key) {
            Some(found) => Ok(Some(found.text()?.trim().to_string()).filter(|t| !t.is_empty())),
            None => Ok(None),
        }
    }

    /// A secret setting (a URL with a token in it, a password), `None` when unset or blank.
    fn secret(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.find(key, key) {
            Some(found) => {
                Ok(Some(found.secret_text()?.trim().to_string()).filter(|t| !t.is_empty()))
            }
            None => Ok(None),
        }
    }

    /// What channel `name` needs (`key`), when the channel is on: `<name>_alert` is not
    /// `false`. `<name>_alert = true` without it is an error.
    fn channel_url(
        &self,
        name: &'static str,
        key: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        let flag = self.alert_flag(name)?;
        let value = self.secret(key)?;
        match (flag, value) {
            (Some((false, _)), _) => Ok(None),
            (Some((true, found)), None) => Err(found.invalid(format!("{name} needs {key} too"))),
            (_, value) => Ok(value),
        }
    }

    fn alert_flag(&self, name: &'static str) -> Result<Option<(bool, Found)>, ConfigError> {
        let setting: &'static str = match name {
            "email" => "email_alert",
            "slack" => "slack_alert",
            "microsoft_teams" => "microsoft_teams_alert",
            "telegram" => "telegram_alert",
            "rocketchat" => "rocketchat_alert",
            "gotify" => "gotify_alert",
            "dingtalk" => "dingtalk_alert",
            _ => return Ok(None),
        };
        match self.find(setting, setting) {
            Some(found) => Ok(Some((found.bool()?, found))),
            None => Ok(None),
        }
    }

    /// E-mail: on when `email_host` is set (and `email_alert` is not `false`); then a sender
    /// is required.
    fn email(&self) -> Result<Option<EmailSettings>, ConfigError> {
        let Some(host) = self.channel_url("email", "email_host")? else {
            return Ok(None);
        };
        let sender = match self.text("email_sender")? {
            Some(sender) => sender,
            None => {
                return Err(self
                    .find("email_host", "email_host")
                    .map(|f| f.invalid_secret("e-mail needs email_sender too"))
                    .unwrap_or_else(|| missing("email_sender")));
            }
        };
        let port = match self.find("email_port", "email_port") {
            Some(found) => found.port()?,
            None => DEFAULT_EMAIL_PORT,
        };
        let mut tls = EmailTls::Auto;
        if let Some(found) = self.find("email_secure", "email_secure")
            && found.bool()?
        {
            tls = EmailTls::StartTls;
        }
        if let Some(found) = self.find("email_tls", "email_tls") {
            tls = match found.bool() {
                Ok(true) => EmailTls::Tls,
                Ok(false) => tls,
                Err(_) => match found.text()?.trim().to_ascii_lowercase().as_str() {
                    "auto" => EmailTls::Auto,
                    "starttls" => EmailTls::StartTls,
                    "tls" => EmailTls::Tls,
                    "none" => EmailTls::None,
                    _ => return Err(found.invalid("expected auto, starttls, tls or none")),
                },
            };
        }
        Ok(Some(EmailSettings {
            host,
            port,
            sender,
            username: self.text("email_username")?,
            password: self.secret("email_password")?,
            tls,
        }))
    }
}

fn missing(setting: &str) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        value: None,
        origin: "the notification settings".into(),
        problem: "required by the channel that is configured".into(),
    }
}
