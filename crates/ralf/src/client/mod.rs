//! The client commands: `ralf login`, `ping`, `info`, `project`, `template`, `run`, `task`,
//! `catalog`. They talk only Semaphore's API where it has the call, so they work against a
//! Semaphore server too (but `catalog`, which is ralf's own); what only ralf offers (the live log stream, output from an offset, filters on
//! the server) is asked of ralf_client's `Capabilities` and done another way elsewhere.
//!
//! Every command ends in an exit code (see `EXIT_CODES` in `cli.rs` and docs/cli.md): task
//! outcomes are 0–3, failures of the command itself 4 and up.

mod browse;
mod catalog;
pub mod cli;
mod login;
mod settings;
mod tasks;
mod ui;

use std::process::ExitCode;
use std::sync::Arc;

use ralf_client::types::{Project, Template};
use ralf_client::{Client, ClientConfig, Error, RetryPolicy};

use self::cli::{
    CatalogCommand, ClientArgs, LoginArgs, ProjectCommand, RunArgs, TaskCommand, TemplateCommand,
};
use self::settings::Target;
use self::ui::Ui;

/// Exit codes of the client commands.
pub mod code {
    pub const SUCCESS: u8 = 0;
    pub const TASK_FAILED: u8 = 1;
    pub const TASK_STOPPED: u8 = 2;
    pub const TIMED_OUT: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const UNREACHABLE: u8 = 5;
    pub const LOCAL: u8 = 6;
    pub const USAGE: u8 = 64;
}

/// A command that could not do its work: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            hint: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(code::USAGE, message)
    }
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure::new(code::REFUSED, message)
    }
    pub fn local(message: impl Into<String>) -> Failure {
        Failure::new(code::LOCAL, message)
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::Api { status, .. } if *status >= 500 => code::UNREACHABLE,
            Error::Api { .. } | Error::Unsupported { .. } => code::REFUSED,
            Error::Unreachable { .. } => code::UNREACHABLE,
            Error::Decode { .. } => code::LOCAL,
            Error::Invalid(_) => code::USAGE,
        };
        let failure = Failure::new(code, e.to_string());
        match e.status() {
            Some(401) => failure.hint(
                "log in with `ralf login`, or pass a valid token (--token, SEMAPHORE_API_TOKEN)",
            ),
            _ => failure,
        }
    }
}

type Outcome = Result<ExitCode, Failure>;

/// Prints a failure and turns it into the exit code.
fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("ralf: {}", failure.message);
            if let Some(hint) = &failure.hint {
                eprintln!("ralf: {hint}");
            }
            ExitCode::from(failure.code)
        }
    }
}

/// One command's connection: the client, the settings in effect, the printer.
pub struct Session {
    pub client: Client,
    pub target: Target,
    pub ui: Ui,
}

impl Session {
    pub fn open(args: &ClientArgs) -> Result<Session, Failure> {
        let config_path = settings::config_path()?;
        let stored = settings::load(&config_path)?;
        let target = settings::resolve(args, &stored, &config_path)?;
        let ui = Ui::new(args.json, args.color);
        let client = connect(
            args,
            &target.url.value,
            target.token.as_ref().map(|t| t.value.clone()),
            &ui,
        )?;
        Ok(Session { client, target, ui })
    }

    /// The project in effect, as an id: the one named by flag, variable or `ralf login`
    /// (an id, or a name looked up), else the only one there is.
    pub async fn project(&self) -> Result<i64, Failure> {
        match &self.target.project {
            Some(chosen) => {
                if let Ok(id) = chosen.value.parse::<i64>() {
                    return Ok(id);
                }
                let projects = self.client.projects().await?;
                find_project(&projects, &chosen.value)
                    .map(|p| p.id)
                    .ok_or_else(|| {
                        Failure::refused(format!(
                            "no project called {:?} (from {}); projects: {}",
                            chosen.value,
                            chosen.source,
                            names(projects.iter().map(|p| &p.name))
                        ))
                    })
            }
            None => {
                let projects = self.client.projects().await?;
                match projects.as_slice() {
                    [only] => Ok(only.id),
                    [] => Err(Failure::refused("you have no project on this server")),
                    _ => Err(Failure::usage(format!(
                        "which project? Pass --project ID|NAME or set SEMAPHORE_PROJECT_ID; projects: {}",
                        projects
                            .iter()
                            .map(|p| format!("{} ({})", p.name, p.id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        }
    }

    /// A template by id or name: an id that names no template is tried as a name.
    pub async fn template(&self, project: i64, wanted: &str) -> Result<Template, Failure> {
        let wanted = wanted.trim();
        if let Ok(id) = wanted.parse::<i64>() {
            match self.client.template(project, id).await {
                Ok(template) => return Ok(template),
                Err(Error::Api { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let templates = self.client.templates(project).await?;
        if let Some(t) = templates.iter().find(|t| t.name == wanted) {
            return Ok(t.clone());
        }
        let folded: Vec<&Template> = templates
            .iter()
            .filter(|t| t.name.eq_ignore_ascii_case(wanted))
            .collect();
        if let [only] = folded.as_slice() {
            return Ok((*only).clone());
        }
        let lower = wanted.to_lowercase();
        let close: Vec<&String> = templates
            .iter()
            .filter(|t| t.name.to_lowercase().contains(&lower))
            .map(|t| &t.name)
            .collect();
        let mut failure = Failure::refused(format!(
            "no template called {wanted:?} in project {project}"
        ));
        failure = if !close.is_empty() {
            failure.hint(format!("did you mean {}?", names(close)))
        } else if templates.is_empty() {
            failure.hint("the project has no templates")
        } else {
            failure.hint(format!(
                "templates: {} (ralf template ls)",
                names(templates.iter().map(|t| &t.name))
            ))
        };
        Err(failure)
    }
}

fn find_project<'a>(projects: &'a [Project], name: &str) -> Option<&'a Project> {
    projects.iter().find(|p| p.name == name).or_else(|| {
        let mut folded = projects
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case(name));
        match (folded.next(), folded.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    })
}

fn names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let list: Vec<String> = names.into_iter().map(|n| format!("{n:?}")).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// A client for `url` with the flags' retry settings; retries are told on standard error.
fn connect(
    args: &ClientArgs,
    url: &str,
    token: Option<String>,
    ui: &Ui,
) -> Result<Client, Failure> {
    let mut config = ClientConfig::new(url);
    config.token = token;
    let mut retry = RetryPolicy::default();
    if let Some(n) = args.retries {
        retry.retries = n;
    }
    if let Some(wait) = args.retry_wait {
        retry.first_wait = wait;
    }
    config.retry = retry;
    if let Some(timeout) = args.request_timeout {
        config.request_timeout = timeout.max(std::time::Duration::from_millis(100));
    }
    let notes = ui.clone();
    config.on_retry = Some(Arc::new(move |n: &ralf_client::RetryNotice| {
        let count = match n.of {
            Some(of) => format!("{}/{of}", n.attempt),
            None => format!("{}", n.attempt),
        };
        notes.note(&format!(
            "ralf: {}: {}; trying again in {} ({count})",
            n.request,
            n.reason,
            ui::span_precise(n.wait)
        ));
    }));
    Client::new(config).map_err(Failure::from)
}

pub async fn login(args: LoginArgs) -> ExitCode {
    finish(login::login(args).await)
}

pub async fn logout(args: ClientArgs) -> ExitCode {
    finish(login::logout(args).await)
}

pub async fn ping(args: ClientArgs) -> ExitCode {
    finish(browse::ping(args).await)
}

pub async fn info(args: ClientArgs) -> ExitCode {
    finish(browse::info(args).await)
}

pub async fn project(args: ClientArgs, command: ProjectCommand) -> ExitCode {
    finish(match command {
        ProjectCommand::Ls => browse::projects(args).await,
    })
}

pub async fn template(args: ClientArgs, command: TemplateCommand) -> ExitCode {
    finish(match command {
        TemplateCommand::Ls => browse::templates(args).await,
        TemplateCommand::Show { template } => browse::show_template(args, &template).await,
    })
}

pub async fn run(args: RunArgs) -> ExitCode {
    finish(tasks::run(args).await)
}

pub async fn task(args: ClientArgs, command: TaskCommand) -> ExitCode {
    finish(tasks::task(args, command).await)
}

pub async fn catalog(args: ClientArgs, command: CatalogCommand) -> ExitCode {
    finish(catalog::catalog(args, command).await)
}
