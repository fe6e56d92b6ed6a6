//! The read-only commands: `ralf ping` and `ralf info` (the server and who we are on it),
//! `ralf project ls`, `ralf template ls|show` (what it holds).

use std::process::ExitCode;
use std::time::Instant;

use ralf_client::types::Template;
use serde_json::json;

use super::cli::ClientArgs;
use super::ui::{self, table};
use super::{Failure, Session};

pub async fn ping(args: ClientArgs) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let started = Instant::now();
    let reply = session.client.ping().await?;
    let ms = started.elapsed().as_millis();
    if session.ui.json {
        session.ui.json_out(
            &json!({"url": session.client.url(), "reply": reply, "ms": ms}),
            false,
        );
    } else {
        session
            .ui
            .out(&format!("{reply} from {} in {ms} ms", session.client.url()));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn info(args: ClientArgs) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let info = session.client.info().await?;
    let user = session.client.user().await?;
    let caps = session.client.capabilities().await?.clone();
    let ui = &session.ui;
    if ui.json {
        ui.json_out(
            &json!({"url": session.client.url(), "info": info, "user": user, "capabilities": caps}),
            false,
        );
        return Ok(ExitCode::SUCCESS);
    }
    let kind = match &caps.ralf {
        Some(_) => "ralf".to_string(),
        None => "Semaphore API (ralf's extensions are not available)".to_string(),
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let rows = [
        ("server", session.client.url().to_string()),
        ("version", format!("{} ({kind})", info.version)),
        (
            "user",
            format!(
                "{} ({}){}",
                user.username,
                user.name,
                if user.admin { ", admin" } else { "" }
            ),
        ),
        (
            "token from",
            session
                .target
                .token
                .as_ref()
                .map(|t| t.source.clone())
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "project",
            session
                .target
                .project
                .as_ref()
                .map(|p| format!("{} (from {})", p.value, p.source))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "live logs",
            if caps.task_stream {
                "WebSocket stream".into()
            } else {
                "polling (no live stream on this server)".into()
            },
        ),
        ("output from an offset", yes_no(caps.output_offset).into()),
        (
            "task filters on the server",
            yes_no(caps.task_filters).into(),
        ),
    ];
    for (key, value) in rows {
        ui.out(&format!("{key:<27}{value}"));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn projects(args: ClientArgs) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let projects = session.client.projects().await?;
    if session.ui.json {
        session.ui.json_out(&projects, false);
        return Ok(ExitCode::SUCCESS);
    }
    let chosen = session.target.project.as_ref().map(|p| p.value.as_str());
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| {
            let mark = chosen == Some(&p.id.to_string()) || chosen == Some(p.name.as_str());
            vec![
                p.id.to_string(),
                p.name.clone(),
                if mark { "*".into() } else { String::new() },
            ]
        })
        .collect();
    table(&session.ui, &["ID", "NAME", "DEFAULT"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn templates(args: ClientArgs) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let project = session.project().await?;
    let templates = session.client.templates(project).await?;
    if session.ui.json {
        session.ui.json_out(&templates, false);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name.clone(),
                t.app().to_string(),
                t.playbook.clone(),
                last_task(t),
            ]
        })
        .collect();
    table(
        &session.ui,
        &["ID", "NAME", "APP", "PLAYBOOK", "LAST TASK"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn last_task(t: &Template) -> String {
    match &t.last_task {
        Some(task) => format!(
            "{} {} {}",
            task.id,
            task.status,
            ui::when(task.created_at())
        ),
        None => "-".into(),
    }
}

pub async fn show_template(args: ClientArgs, wanted: &str) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let project = session.project().await?;
    let found = session.template(project, wanted).await?;
    // The list entry lacks nothing, but the single template is what the API calls the template.
    let template = session.client.template(project, found.id).await?;
    let ui = &session.ui;
    if ui.json {
        ui.json_out(&template, false);
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut rows = vec![
        (
            "template",
            format!("{} (id {})", template.name, template.id),
        ),
        ("app", template.app().to_string()),
        ("playbook", or_dash(&template.playbook)),
        ("repository", opt(template.repository_id)),
        ("inventory", opt(template.inventory_id)),
        ("variable group", opt(template.environment_id)),
        (
            "branch",
            template
                .git_branch
                .clone()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "the repository's".into()),
        ),
        (
            "arguments",
            template
                .arguments
                .clone()
                .filter(|a| !a.is_empty() && a != "[]")
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "a task may override",
            format!(
                "arguments: {}, branch: {}",
                yes_no(template.allow_override_args_in_task),
                yes_no(template.allow_override_branch_in_task)
            ),
        ),
        ("description", or_dash(&template.description)),
    ];
    // ralf's own settings, when the server has them.
    if let Some(secs) = template.extra.get("timeout_secs").and_then(|v| v.as_i64()) {
        let text = if secs == 0 {
            "none".into()
        } else {
            ui::span(std::time::Duration::from_secs(secs as u64))
        };
        rows.push(("time limit", text));
    }
    for (key, value) in rows {
        ui.out(&format!("{key:<21}{value}"));
    }
    if template.survey_vars.is_empty() {
        ui.out(&format!("{:<21}none", "survey"));
    } else {
        ui.out("survey (ralf run --var NAME=VALUE):");
        let rows: Vec<Vec<String>> = template
            .survey_vars
            .iter()
            .map(|v| {
                let values: Vec<&str> = v.values.iter().map(|x| x.value.as_str()).collect();
                vec![
                    format!("  {}", v.name),
                    if v.kind.is_empty() {
                        "string".into()
                    } else {
                        v.kind.clone()
                    },
                    yes_no(v.required).into(),
                    if values.is_empty() {
                        "-".into()
                    } else {
                        values.join("|")
                    },
                    if v.description.is_empty() {
                        v.title.clone()
                    } else {
                        v.description.clone()
                    },
                ]
            })
            .collect();
        table(
            ui,
            &["  NAME", "TYPE", "REQUIRED", "VALUES", "DESCRIPTION"],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}
