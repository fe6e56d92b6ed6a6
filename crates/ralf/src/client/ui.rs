//! How client commands print: tables and text for people, JSON for scripts, a spinner only on
//! a terminal, colours kept on a terminal and stripped otherwise.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use ralf_client::types::Task;
use serde::Serialize;

use super::cli::ColorWhen;

#[derive(Clone)]
pub struct Ui {
    pub json: bool,
    /// Keep colour codes in what goes to standard output.
    pub color: bool,
    /// Standard error is a terminal: a spinner instead of status lines.
    pub interactive: bool,
    spinner: Arc<Mutex<Option<ProgressBar>>>,
}

impl Ui {
    pub fn new(json: bool, color: ColorWhen) -> Ui {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => std::io::stdout().is_terminal() && !no_color,
        };
        Ui {
            json,
            color,
            interactive: std::io::stderr().is_terminal(),
            spinner: Arc::new(Mutex::new(None)),
        }
    }

    fn spinner(&self) -> Option<ProgressBar> {
        self.spinner.lock().ok().and_then(|s| s.clone())
    }

    /// A line for standard output, printed above the spinner if there is one.
    pub fn out(&self, text: &str) {
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        };
        match self.spinner() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// A note for standard error (progress, hints), printed above the spinner if there is one.
    pub fn note(&self, text: &str) {
        match self.spinner() {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A JSON value on standard output (pretty, or one line for streams).
    pub fn json_out<T: Serialize>(&self, value: &T, one_line: bool) {
        let text = if one_line {
            serde_json::to_string(value)
        } else {
            serde_json::to_string_pretty(value)
        };
        self.out(&text.unwrap_or_default());
    }

    /// Task output as it goes to standard output: colours kept or stripped.
    pub fn task_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.color {
            Cow::Borrowed(text)
        } else {
            strip_ansi(text)
        }
    }

    /// Starts the spinner (on a terminal, not with --json): `prefix`, a message, the time.
    pub fn start_spinner(&self, prefix: String) {
        if !self.interactive || self.json {
            return;
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(prefix);
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = self.spinner.lock() {
            *slot = Some(bar);
        }
    }

    /// Shows a status: on the spinner, or as a line on standard error.
    pub fn status(&self, line: String, spinner_message: String) {
        match self.spinner() {
            Some(bar) => bar.set_message(spinner_message),
            None => eprintln!("{line}"),
        }
    }

    pub fn stop_spinner(&self) {
        if let Ok(mut slot) = self.spinner.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Text without terminal escape sequences (colours, cursor moves, titles).
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains('\u{1b}') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte @ to ~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next_if_eq(&'\\');
                        break;
                    }
                }
            }
            // A two-character escape (ESC ( B and the like take one more).
            Some('(' | ')' | '#') => {
                chars.next();
            }
            _ => {}
        }
    }
    Cow::Owned(out)
}

/// Prints rows under headers, columns padded to their widest cell.
pub fn table(ui: &Ui, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.trim_end().to_string()
    };
    ui.out(&line(headers.to_vec()));
    for row in rows {
        ui.out(&line(row.iter().map(String::as_str).collect()));
    }
}

/// A time in the local zone, or `-`.
pub fn when(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| {
        t.with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
    .unwrap_or_else(|| "-".into())
}

/// `4s`, `1m05s`, `2h03m`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A wait: `200ms`, `1.5s`, `2s`.
pub fn span_precise(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        span(d)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// How long a task ran (so far), or `-` before it started.
pub fn task_duration(task: &Task) -> String {
    let Some(start) = task.started_at() else {
        return "-".into();
    };
    let end = task.ended_at().unwrap_or_else(Utc::now);
    span((end - start).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("\u{1b}[32mok\u{1b}[0m: done"), "ok: done");
        assert_eq!(strip_ansi("\u{1b}[1;31mRED\u{1b}[K!"), "RED!");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(strip_ansi("\u{1b}(Bx"), "x");
    }

    #[test]
    fn spans() {
        assert_eq!(span(Duration::from_secs(4)), "4s");
        assert_eq!(span(Duration::from_secs(65)), "1m05s");
        assert_eq!(span(Duration::from_secs(7380)), "2h03m");
    }
}
