//! The flags of the client commands (`ralf login`, `ralf run`, `ralf task …`, `ralf catalog …`,
//! …).

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

/// Where the server is, who is calling, and how to print; every client command has these
/// (after its name or any of its subcommands' names).
#[derive(Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// The server, e.g. http://127.0.0.1:3000 (else RALF_URL, SEMAPHORE_URL, or what `ralf
    /// login` stored).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// An API token (else RALF_API_TOKEN, SEMAPHORE_API_TOKEN, or what `ralf login` stored).
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The project, by id or name (else RALF_PROJECT_ID, SEMAPHORE_PROJECT_ID, what `ralf
    /// login` stored, or the only project there is).
    #[arg(long, short = 'p', global = true, value_name = "ID|NAME")]
    pub project: Option<String>,
    /// Print JSON for scripts instead of tables and text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How often a failed request is tried again (connection errors, time-outs and 5xx
    /// answers; a 4xx is never retried) [default: 3].
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<u32>,
    /// Seconds before the first retry; each further retry waits twice as long [default: 1].
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_secs)]
    pub retry_wait: Option<Duration>,
    /// The longest one request may take, in seconds [default: 30].
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_secs)]
    pub request_timeout: Option<Duration>,
    /// Colours: auto (kept on a terminal unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Your login name or e-mail address (asked for on a terminal when missing).
    #[arg(long, short = 'u', value_name = "LOGIN")]
    pub user: Option<String>,
    /// Read the password from standard input (one line) instead of asking for it.
    #[arg(long, conflicts_with = "token_stdin")]
    pub password_stdin: bool,
    /// Store an API token read from standard input (one line) instead of logging in with a
    /// password, e.g. one made in Semaphore's web UI.
    #[arg(long)]
    pub token_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// List the projects you can see.
    Ls,
}

#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// List the project's templates.
    Ls,
    /// Show a template: what it runs, what a task may override, its survey.
    Show {
        /// The template, by name or id.
        #[arg(value_name = "NAME|ID")]
        template: String,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The template, by name or id.
    #[arg(value_name = "NAME|ID")]
    pub template: String,
    /// The git branch to run (when the template allows overriding it).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Only these hosts or groups (Ansible's --limit; a comma list; repeatable).
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Only tasks with these tags (Ansible's --tags; a comma list; repeatable).
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags (Ansible's --skip-tags; a comma list; repeatable).
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// A dry run (Ansible's --check).
    #[arg(long)]
    pub dry_run: bool,
    /// Show the changes (Ansible's --diff).
    #[arg(long)]
    pub diff: bool,
    /// Verbose output (Ansible's -vvvv).
    #[arg(long)]
    pub debug: bool,
    /// An extra variable for the run (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// An extra command-line argument for the app (repeatable, kept in order; the template
    /// must allow overriding its arguments).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// A message to go with the task.
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
    /// An answer to the template's survey (repeatable); checked before the task is created.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// Wait until the task ends: a spinner on a terminal, a line per status otherwise. The
    /// exit code says how it ended.
    #[arg(long, short = 'w')]
    pub wait: bool,
    /// Print the task's log as it comes, until the task ends (implies --wait).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// With --wait or --follow: stop waiting after this long (90, 90s, 10m, 1h) and exit
    /// with 3; the task goes on.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Read the log by polling instead of ralf's live stream (for proxies without
    /// WebSockets).
    #[arg(long)]
    pub poll: bool,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// List the project's tasks, newest first.
    Ls {
        /// Only tasks of this template (name or id).
        #[arg(long, short = 't', value_name = "NAME|ID")]
        template: Option<String>,
        /// Only tasks in these statuses (a comma list; repeatable).
        #[arg(long, short = 's', value_name = "STATUS", value_delimiter = ',', value_parser = parse_status)]
        status: Vec<String>,
        /// At most this many.
        #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Show a task.
    Show {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Print a task's log; with --follow, as it comes until the task ends.
    Logs {
        #[arg(value_name = "ID")]
        id: i64,
        /// Follow the log until the task ends; the exit code says how it ended. A dropped
        /// connection is resumed where it was, no line twice.
        #[arg(long, short = 'f')]
        follow: bool,
        /// With --follow: stop after this long (90, 90s, 10m, 1h) and exit with 3.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
        /// Poll instead of using ralf's live stream.
        #[arg(long)]
        poll: bool,
    },
    /// Stop a task: it is asked to end (or, with --force, killed at once).
    Stop {
        #[arg(value_name = "ID")]
        id: i64,
        /// Kill it at once.
        #[arg(long)]
        force: bool,
    },
    /// Confirm a plan waiting for confirmation, so it is applied (shows the plan first).
    Confirm {
        #[arg(value_name = "ID")]
        id: i64,
        /// Do not ask on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Reject a plan waiting for confirmation: the task ends without applying it.
    Reject {
        #[arg(value_name = "ID")]
        id: i64,
        /// Do not ask on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Which services a catalog plan or rollout takes (at most one of them; none: every enabled
/// service not yet deployed).
#[derive(Args, Debug, Clone)]
pub struct CatalogSelectionArgs {
    /// These services, with the dependencies they need that are not deployed.
    #[arg(value_name = "NAME", conflicts_with_all = ["priority", "next"])]
    pub names: Vec<String>,
    /// The services of this priority (P0 to P4) not yet deployed.
    #[arg(long, value_name = "P0..P4", conflicts_with = "next")]
    pub priority: Option<String>,
    /// The next N services a rollout of all would run.
    #[arg(long, value_name = "N")]
    pub next: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Show what a rollout would deploy now, in order, and why each other service is left
    /// out. Nothing starts.
    Plan {
        #[command(flatten)]
        selection: CatalogSelectionArgs,
    },
    /// Start a rollout; with --wait or --follow, exit 0 when every service of it ended up
    /// (deployed or degraded), 1 when any failed, was rolled back or held.
    Deploy {
        #[command(flatten)]
        selection: CatalogSelectionArgs,
        /// Wait until the rollout ends, then print each service's end state.
        #[arg(long, short = 'w')]
        wait: bool,
        /// Print each step (with its task) as it starts and ends, until the rollout ends
        /// (implies --wait).
        #[arg(long, short = 'f')]
        follow: bool,
        /// With --wait or --follow: stop waiting after this long (90, 90s, 10m, 1h) and exit
        /// with 3; the rollout goes on.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
    /// Check the health of what is deployed: start a rollout of the smoke of every deployed
    /// (or degraded) service; with --wait or --follow, exit as deploy does.
    Check {
        /// Wait until the check ends, then print each service's state.
        #[arg(long, short = 'w')]
        wait: bool,
        /// Print each smoke as it starts and ends, until the check ends (implies --wait).
        #[arg(long, short = 'f')]
        follow: bool,
        /// With --wait or --follow: stop waiting after this long and exit with 3.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
    /// Confirm the apply of a service the unfinished rollout waits on.
    Approve {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Reject the apply of a service the unfinished rollout waits on: it fails, and what
    /// depends on it is held.
    Reject {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// The services as they stand: state, priority, dependencies, last deploy and result.
    Status,
    /// The dependency graph in Graphviz DOT (or SVG).
    Graph {
        /// Print SVG instead of DOT, as the server draws it.
        #[arg(long)]
        svg: bool,
    },
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, not {text:?}")),
    }
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("expected a number of seconds, not {text:?}"))
}

/// `90`, `90s`, `10m`, `1h`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like 90, 90s, 10m or 1h, not {text:?}");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn parse_status(text: &str) -> Result<String, String> {
    let text = text.trim();
    match ralf_client::TaskStatus::parse(text) {
        Some(status) => Ok(status.as_str().to_string()),
        None => {
            let names: Vec<&str> = ralf_client::TaskStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect();
            Err(format!(
                "{text:?} is not a task status; use one of: {}",
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5m3").is_err());
    }

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_string(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
