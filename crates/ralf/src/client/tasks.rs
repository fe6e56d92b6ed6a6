//! `ralf run` and `ralf task …`: starting tasks, waiting for them, following their logs,
//! listing, stopping, confirming and rejecting them.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use ralf_client::types::{Task, Template};
use ralf_client::{FollowEvent, FollowOptions, TaskFilter, TaskParams, TaskRequest, Transport};
use ralf_core::api::tasks::{SurveyRule, check_survey};
use serde_json::{Map, Value, json};

use super::cli::{ClientArgs, RunArgs, TaskCommand};
use super::ui::{self, strip_ansi, table};
use super::{Failure, Session, code};

pub async fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    let session = Session::open(&args.client)?;
    let project = session.project().await?;
    let template = session.template(project, &args.template).await?;
    let request = task_request(&template, &args)?;
    let task = session.client.start_task(project, &request).await?;
    let ui = &session.ui;
    if !args.wait && !args.follow {
        if ui.json {
            ui.json_out(&task, false);
        } else {
            ui.out(&format!(
                "Task {} of {} started: ralf task logs {} --follow",
                task.id, template.name, task.id
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let watch = Watch {
        project,
        task: task.id,
        label: template.name.clone(),
        follow: args.follow,
        poll: args.poll,
        timeout: args.timeout,
    };
    watch.run(&session).await
}

/// The task request `ralf run` sends: the overrides, and the survey answers checked against
/// the template's survey as the server will check them.
fn task_request(template: &Template, args: &RunArgs) -> Result<TaskRequest, Failure> {
    let mut environment = Map::new();
    for (key, value) in &args.env {
        environment.insert(key.clone(), Value::String(value.clone()));
    }
    let mut secret = Map::new();
    let survey = &template.survey_vars;
    let asked = || {
        if survey.is_empty() {
            format!("template {:?} has no survey", template.name)
        } else {
            let names: Vec<&str> = survey.iter().map(|v| v.name.as_str()).collect();
            format!("its survey asks for: {}", names.join(", "))
        }
    };
    for (name, value) in &args.vars {
        let Some(var) = survey.iter().find(|v| v.name == *name) else {
            return Err(Failure::usage(format!(
                "--var {name}: template {:?} has no survey variable {name:?}; {}",
                template.name,
                asked()
            ))
            .hint("extra variables that are not survey answers go in --env KEY=VALUE"));
        };
        let answer = match var.kind.as_str() {
            "int" => value
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(value.clone())),
            _ => Value::String(value.clone()),
        };
        if var.kind == "secret" {
            secret.insert(name.clone(), answer);
        } else {
            environment.insert(name.clone(), answer);
        }
    }
    let values: Vec<Vec<&str>> = survey
        .iter()
        .map(|v| v.values.iter().map(|x| x.value.as_str()).collect())
        .collect();
    let rules: Vec<SurveyRule<'_>> = survey
        .iter()
        .zip(&values)
        .map(|(var, values)| SurveyRule {
            name: &var.name,
            kind: &var.kind,
            required: var.required,
            values,
        })
        .collect();
    let environment_text = Value::Object(environment.clone()).to_string();
    let secret_text = (!secret.is_empty()).then(|| Value::Object(secret.clone()).to_string());
    check_survey(&rules, &environment_text, secret_text.as_deref()).map_err(|e| {
        Failure::usage(format!("{} (template {:?})", e.0, template.name)).hint(format!(
            "answer with --var NAME=VALUE; `ralf template show {:?}` shows the survey",
            template.name
        ))
    })?;

    let flag = |b: bool| b.then_some(true);
    let params = TaskParams {
        debug: args.debug,
        dry_run: args.dry_run,
        diff: args.diff,
        limit: args.limit.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        ..TaskParams::default()
    };
    Ok(TaskRequest {
        template_id: Some(template.id),
        // Semaphore's documented top-level switches, beside `params` (ralf folds them in).
        debug: flag(args.debug),
        dry_run: flag(args.dry_run),
        diff: flag(args.diff),
        limit: (!args.limit.is_empty()).then(|| args.limit.join(",")),
        environment: (!environment.is_empty()).then_some(environment_text),
        secret: secret_text,
        git_branch: args.branch.clone(),
        message: args.message.clone(),
        arguments: (!args.args.is_empty())
            .then(|| serde_json::to_string(&args.args).unwrap_or_default()),
        params: Some(params),
        ..TaskRequest::default()
    })
}

/// Waiting for a task (and following its log) until it ends.
struct Watch {
    project: i64,
    task: i64,
    label: String,
    follow: bool,
    poll: bool,
    timeout: Option<Duration>,
}

impl Watch {
    async fn run(&self, session: &Session) -> Result<ExitCode, Failure> {
        let ui = &session.ui;
        let id = self.task;
        ui.start_spinner(format!("task {id} ({})", self.label));
        let options = FollowOptions {
            lines: self.follow,
            transport: if self.poll {
                Transport::Poll
            } else {
                Transport::Auto
            },
            ..FollowOptions::default()
        };
        let mut last_status = String::new();
        let following = session
            .client
            .follow(self.project, id, &options, |event| match event {
                FollowEvent::Line(line) => {
                    if ui.json {
                        ui.json_out(line, true);
                    } else {
                        ui.out(&ui.task_text(&line.output));
                    }
                }
                FollowEvent::Status(status) => {
                    last_status = status.to_string();
                    ui.status(
                        format!("task {id} ({}): {status}", self.label),
                        status.to_string(),
                    );
                    if status == "waiting_confirmation" {
                        ui.note(&format!(
                            "Task {id} waits for its plan to be confirmed: ralf task confirm {id} \
                         (or ralf task reject {id})"
                        ));
                    }
                }
            });
        let ended = match self.timeout {
            None => following.await,
            Some(limit) => match tokio::time::timeout(limit, following).await {
                Ok(ended) => ended,
                Err(_) => {
                    ui.stop_spinner();
                    let status = if last_status.is_empty() {
                        "not finished".to_string()
                    } else {
                        last_status.clone()
                    };
                    eprintln!(
                        "ralf: task {id} is still {status} after {}; it goes on (ralf task stop \
                         {id} stops it)",
                        ui::span(limit)
                    );
                    if ui.json
                        && let Ok(task) = session.client.task(self.project, id).await
                    {
                        ui.json_out(&task, self.follow);
                    }
                    return Ok(ExitCode::from(code::TIMED_OUT));
                }
            },
        };
        ui.stop_spinner();
        let task = ended?;
        if ui.json {
            ui.json_out(&task, self.follow);
        } else {
            let summary = format!(
                "Task {id} ({}) {} after {}",
                self.label,
                task.status,
                ui::task_duration(&task)
            );
            if self.follow {
                ui.note(&summary);
            } else {
                ui.out(&summary);
            }
        }
        Ok(ExitCode::from(outcome(&task)))
    }
}

/// The exit code of a finished task.
fn outcome(task: &Task) -> u8 {
    match task.status.as_str() {
        "success" => code::SUCCESS,
        "stopped" | "rejected" => code::TASK_STOPPED,
        _ => code::TASK_FAILED,
    }
}

pub async fn task(args: ClientArgs, command: TaskCommand) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let project = session.project().await?;
    match command {
        TaskCommand::Ls {
            template,
            status,
            limit,
        } => list(&session, project, template.as_deref(), status, limit).await,
        TaskCommand::Show { id } => show(&session, project, id).await,
        TaskCommand::Logs {
            id,
            follow,
            timeout,
            poll,
        } => logs(&session, project, id, follow, timeout, poll).await,
        TaskCommand::Stop { id, force } => stop(&session, project, id, force).await,
        TaskCommand::Confirm { id, yes } => decide(&session, project, id, true, yes).await,
        TaskCommand::Reject { id, yes } => decide(&session, project, id, false, yes).await,
    }
}

async fn list(
    session: &Session,
    project: i64,
    template: Option<&str>,
    statuses: Vec<String>,
    limit: usize,
) -> Result<ExitCode, Failure> {
    let template_id = match template {
        Some(t) => Some(session.template(project, t).await?.id),
        None => None,
    };
    let filter = TaskFilter {
        template_id,
        statuses,
        limit: Some(limit.max(1)),
    };
    let tasks = session.client.tasks(project, &filter).await?;
    let ui = &session.ui;
    if ui.json {
        ui.json_out(&tasks, false);
        return Ok(ExitCode::SUCCESS);
    }
    let names = template_names(session, project, &tasks).await?;
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                template_label(t, &names),
                t.status.clone(),
                t.user_name.clone().unwrap_or_else(|| "-".into()),
                ui::when(t.created_at()),
                ui::task_duration(t),
                first_line(&t.message, 50),
            ]
        })
        .collect();
    table(
        ui,
        &[
            "ID", "TEMPLATE", "STATUS", "BY", "CREATED", "TOOK", "MESSAGE",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

/// Template names for tasks that do not carry them (Semaphore's single tasks).
async fn template_names(
    session: &Session,
    project: i64,
    tasks: &[Task],
) -> Result<HashMap<i64, String>, Failure> {
    if tasks.iter().all(|t| t.tpl_alias.is_some()) {
        return Ok(HashMap::new());
    }
    Ok(session
        .client
        .templates(project)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

fn template_label(task: &Task, names: &HashMap<i64, String>) -> String {
    task.tpl_alias
        .clone()
        .or_else(|| names.get(&task.template_id).cloned())
        .unwrap_or_else(|| format!("#{}", task.template_id))
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max - 1).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

async fn show(session: &Session, project: i64, id: i64) -> Result<ExitCode, Failure> {
    let task = session.client.task(project, id).await?;
    let ui = &session.ui;
    if ui.json {
        ui.json_out(&task, false);
        return Ok(ExitCode::SUCCESS);
    }
    let names = template_names(session, project, std::slice::from_ref(&task)).await?;
    let opt = |v: &Option<String>| {
        v.clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    let mut rows = vec![
        ("task", task.id.to_string()),
        (
            "template",
            format!(
                "{} (id {})",
                template_label(&task, &names),
                task.template_id
            ),
        ),
        ("status", task.status.clone()),
        ("started by", opt(&task.user_name)),
        ("created", ui::when(task.created_at())),
        ("started", ui::when(task.started_at())),
        ("ended", ui::when(task.ended_at())),
        ("took", ui::task_duration(&task)),
        ("branch", opt(&task.git_branch)),
        ("commit", opt(&task.commit_hash)),
        (
            "message",
            if task.message.is_empty() {
                "-".into()
            } else {
                task.message.clone()
            },
        ),
    ];
    if let Some(env) = task
        .environment
        .as_ref()
        .filter(|e| !e.trim().is_empty() && e.trim() != "{}")
    {
        rows.push(("variables", env.clone()));
    }
    for (key, value) in rows {
        ui.out(&format!("{key:<12}{value}"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn logs(
    session: &Session,
    project: i64,
    id: i64,
    follow: bool,
    timeout: Option<Duration>,
    poll: bool,
) -> Result<ExitCode, Failure> {
    let task = session.client.task(project, id).await?;
    let ui = &session.ui;
    if !follow {
        let lines = session.client.output(project, id, 0).await?;
        if ui.json {
            ui.json_out(&lines, false);
        } else {
            for line in &lines {
                ui.out(&ui.task_text(&line.output));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let names = template_names(session, project, std::slice::from_ref(&task)).await?;
    Watch {
        project,
        task: id,
        label: template_label(&task, &names),
        follow: true,
        poll,
        timeout,
    }
    .run(session)
    .await
}

async fn stop(session: &Session, project: i64, id: i64, force: bool) -> Result<ExitCode, Failure> {
    session.client.stop_task(project, id, force).await?;
    let task = session.client.task(project, id).await?;
    let ui = &session.ui;
    if ui.json {
        ui.json_out(&task, false);
    } else if task.is_finished() {
        ui.out(&format!("Task {id} {}", task.status));
    } else {
        ui.out(&format!(
            "Task {id} is {}: asked to end (ralf task stop {id} --force kills it)",
            task.status
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `task confirm` (`apply`) and `task reject`: shows the plan's summary, asks on a terminal
/// unless `--yes`, then decides.
async fn decide(
    session: &Session,
    project: i64,
    id: i64,
    apply: bool,
    yes: bool,
) -> Result<ExitCode, Failure> {
    let verb = if apply { "confirmed" } else { "rejected" };
    let task = session.client.task(project, id).await?;
    if task.status != "waiting_confirmation" {
        return Err(Failure::refused(format!(
            "task {id} is {}; only a task waiting for confirmation can be {verb}",
            task.status
        )));
    }
    let lines = session.client.output(project, id, 0).await?;
    let texts: Vec<String> = lines
        .iter()
        .map(|l| strip_ansi(&l.output).into_owned())
        .collect();
    let summary = plan_summary(&texts);
    let ui = &session.ui;
    if !ui.json {
        ui.out(&format!("Plan of task {id}:"));
        for line in &summary {
            ui.out(&format!("  {line}"));
        }
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if interactive && !yes {
            let question = if apply {
                "Apply this plan? [y/N] "
            } else {
                "Reject this plan? [y/N] "
            };
            eprint!("{question}");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
                ui.out(&format!("Nothing done: task {id} still waits"));
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    if apply {
        session.client.confirm_task(project, id).await?;
    } else {
        session.client.reject_task(project, id).await?;
    }
    if ui.json {
        let task = session.client.task(project, id).await?;
        ui.json_out(&json!({"task": task, "plan": summary}), false);
    } else if apply {
        ui.out(&format!(
            "Task {id} confirmed: the plan is applied now (ralf task logs {id} --follow)"
        ));
    } else {
        ui.out(&format!("Task {id} rejected: the plan is not applied"));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a Terraform/OpenTofu plan will do, from its output: each resource's heading
/// (`# x will be created`), the changes to outputs, and the `Plan:` line. Without those, the
/// last lines of the output.
fn plan_summary(lines: &[String]) -> Vec<String> {
    let mut summary = Vec::new();
    let mut in_outputs = false;
    for line in lines {
        let t = line.trim();
        if in_outputs {
            if t.starts_with(['+', '-', '~']) {
                summary.push(line.trim_end().to_string());
                continue;
            }
            in_outputs = false;
        }
        let resource = t.starts_with("# ")
            && (t.contains(" will be ") || t.contains(" must be ") || t.contains(" has moved "));
        if resource
            || t.starts_with("Plan:")
            || t.starts_with("No changes.")
            || t == "Changes to Outputs:"
        {
            summary.push(line.trim_end().to_string());
            in_outputs = t == "Changes to Outputs:";
        }
    }
    if summary.is_empty() {
        let tail: Vec<String> = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(15)
            .cloned()
            .collect();
        summary = tail.into_iter().rev().collect();
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_summary() {
        let lines: Vec<String> = [
            "Terraform will perform the following actions:",
            "  # null_resource.a will be created",
            "  + resource \"null_resource\" \"a\" {",
            "    }",
            "Plan: 1 to add, 0 to change, 0 to destroy.",
            "",
            "Changes to Outputs:",
            "  + message = \"hi\"",
            "",
            "Saved the plan",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            plan_summary(&lines),
            [
                "  # null_resource.a will be created",
                "Plan: 1 to add, 0 to change, 0 to destroy.",
                "Changes to Outputs:",
                "  + message = \"hi\""
            ]
        );
        let other: Vec<String> = vec!["a".into(), "".into(), "b".into()];
        assert_eq!(plan_summary(&other), ["a", "b"]);
    }
}
