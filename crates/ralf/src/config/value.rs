//! One setting's winning value with where it came from ([`Found`]), and its coercion to what
//! the setting needs: text, a port, an integer, a duration, a boolean. Its errors name the
//! setting and the origin, and show the value unless it is a secret.

use figment::value::Value;

use super::ConfigError;

/// The winning value of one setting, with where it came from.
pub(super) struct Found {
    /// Name of the setting in messages.
    pub(super) setting: &'static str,
    pub(super) value: Value,
    pub(super) origin: String,
}

impl Found {
    /// An error showing the (non-secret) value.
    pub(super) fn invalid(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: self.setting.into(),
            value: Some(render(&self.value)),
            origin: self.origin.clone(),
            problem: problem.into(),
        }
    }

    /// An error that does not show the value.
    pub(super) fn invalid_secret(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: self.setting.into(),
            value: None,
            origin: self.origin.clone(),
            problem: problem.into(),
        }
    }

    pub(super) fn text(&self) -> Result<&str, ConfigError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid("expected a string"))
    }

    pub(super) fn non_empty_text(&self) -> Result<&str, ConfigError> {
        match self.text()?.trim() {
            "" => Err(self.invalid("must not be empty")),
            text => Ok(text),
        }
    }

    pub(super) fn secret_text(&self) -> Result<&str, ConfigError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid_secret("expected a string"))
    }

    pub(super) fn port(&self) -> Result<u16, ConfigError> {
        const EXPECTED: &str = "expected a number from 1 to 65535";
        let number = match &self.value {
            Value::String(_, text) => {
                // Semaphore writes the port as ":3000".
                let text = text.trim();
                text.strip_prefix(':').unwrap_or(text).parse::<u16>().ok()
            }
            value => non_negative_integer(value).and_then(|n| u16::try_from(n).ok()),
        };
        number
            .filter(|&n| n != 0)
            .ok_or_else(|| self.invalid(EXPECTED))
    }

    pub(super) fn u32(&self) -> Result<u32, ConfigError> {
        let number = match &self.value {
            Value::String(_, text) => text.trim().parse::<u32>().ok(),
            value => non_negative_integer(value).and_then(|n| u32::try_from(n).ok()),
        };
        number.ok_or_else(|| self.invalid(format!("expected an integer from 0 to {}", u32::MAX)))
    }

    /// Seconds, or a number with a unit: `45s`, `30m`, `12h`, `7d`.
    pub(super) fn duration(&self) -> Result<std::time::Duration, ConfigError> {
        const EXPECTED: &str =
            "expected a positive duration in seconds, or with a unit: 45s, 30m, 12h, 7d";
        let seconds = match &self.value {
            Value::String(_, text) => {
                let text = text.trim();
                let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
                    Some(at) => text.split_at(at),
                    None => (text, "s"),
                };
                let factor = match unit.trim() {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 24 * 3600,
                    _ => return Err(self.invalid(EXPECTED)),
                };
                number
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_mul(factor))
            }
            value => non_negative_integer(value).and_then(|n| u64::try_from(n).ok()),
        };
        seconds
            .filter(|&n| n > 0)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| self.invalid(EXPECTED))
    }

    pub(super) fn bool(&self) -> Result<bool, ConfigError> {
        const EXPECTED: &str = "expected one of 1, true, yes, 0, false, no";
        match &self.value {
            Value::Bool(_, value) => Ok(*value),
            Value::String(_, text) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" => Ok(false),
                _ => Err(self.invalid(EXPECTED)),
            },
            _ => Err(self.invalid(EXPECTED)),
        }
    }
}

/// A whole, non-negative number (TOML integers arrive as signed numbers).
fn non_negative_integer(value: &Value) -> Option<u128> {
    value.to_num().and_then(|n| n.to_u128_lossy())
}

/// A value as shown in messages: strings quoted, tables and arrays described.
fn render(value: &Value) -> String {
    match value {
        Value::String(_, text) => format!("{text:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(..) => value
            .to_i128()
            .map(|n| n.to_string())
            .or_else(|| value.to_u128().map(|n| n.to_string()))
            .or_else(|| value.to_f64().map(|n| n.to_string()))
            .unwrap_or_else(|| "(a number)".into()),
        Value::Empty(..) => "(empty)".into(),
        Value::Dict(..) => "(a table)".into(),
        Value::Array(..) => "(an array)".into(),
    }
}
