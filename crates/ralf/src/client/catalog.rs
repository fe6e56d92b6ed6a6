//! `ralf catalog …`: the service catalog from the command line (docs/catalog.md) — its plan,
//! rollouts (started, waited for, followed step by step), approvals, the services' status and
//! the dependency graph. ralf's own API: a Semaphore server has none of it.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ralf_catalog::{Selected, SkipReason};
use ralf_client::{CatalogSelection, Rollout, RolloutFeed};
use serde_json::{Value, json};

use super::cli::{CatalogCommand, CatalogSelectionArgs, ClientArgs};
use super::ui::{self, table};
use super::{Failure, Session, code};

/// How often a rollout being waited for is read again when the live feed is away (it is read
/// on each change the feed tells otherwise).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// After how many polls the live feed is tried again.
const REOPEN_EVERY_POLLS: u32 = 10;

pub async fn catalog(args: ClientArgs, command: CatalogCommand) -> Result<ExitCode, Failure> {
    let session = Session::open(&args)?;
    let project = session.project().await?;
    match command {
        CatalogCommand::Plan { selection } => plan(&session, project, &selection.into()).await,
        CatalogCommand::Deploy {
            selection,
            wait,
            follow,
            timeout,
        } => {
            let rollout = session
                .client
                .start_rollout(project, &selection.into())
                .await?;
            if !wait && !follow {
                return started(&session, &rollout);
            }
            let watch = Watch {
                project,
                follow,
                timeout,
            };
            watch.run(&session, rollout).await
        }
        CatalogCommand::Check {
            wait,
            follow,
            timeout,
        } => {
            let rollout = session.client.start_check(project).await?;
            if !wait && !follow {
                return started(&session, &rollout);
            }
            let watch = Watch {
                project,
                follow,
                timeout,
            };
            watch.run(&session, rollout).await
        }
        CatalogCommand::Approve { name } => {
            let rollout = session.client.approve_service(project, &name).await?;
            decided(&session, &rollout, &name, "Approved")
        }
        CatalogCommand::Reject { name } => {
            let rollout = session.client.reject_service(project, &name).await?;
            decided(&session, &rollout, &name, "Rejected")
        }
        CatalogCommand::Status => status(&session, project).await,
        CatalogCommand::Graph { svg } => graph(&session, project, svg).await,
    }
}

impl From<CatalogSelectionArgs> for CatalogSelection {
    fn from(args: CatalogSelectionArgs) -> CatalogSelection {
        CatalogSelection {
            names: args.names,
            priority: args.priority.map(|p| p.trim().to_uppercase()),
            next: args.next,
        }
    }
}

async fn plan(
    session: &Session,
    project: i64,
    selection: &CatalogSelection,
) -> Result<ExitCode, Failure> {
    let answer = session.client.catalog_plan(project, selection).await?;
    let ui = &session.ui;
    if ui.json {
        ui.json_out(&answer, false);
        return Ok(ExitCode::SUCCESS);
    }
    let commit = text(&answer["commit"]);
    let services = list(&answer["plan"]["services"]);
    let skipped = list(&answer["plan"]["skipped"]);
    if services.is_empty() {
        ui.out(&format!(
            "Nothing to roll out (catalog at {}).",
            short(&commit)
        ));
    } else {
        ui.out(&format!(
            "A rollout would deploy {} (catalog at {}):",
            count(services.len(), "service"),
            short(&commit)
        ));
        let rows: Vec<Vec<String>> = services
            .iter()
            .enumerate()
            .map(|(i, planned)| {
                let service = &planned["service"];
                vec![
                    (i + 1).to_string(),
                    text(&service["name"]),
                    text(&service["priority"]),
                    serde_json::from_value::<Selected>(planned["selected"].clone())
                        .map(|s| s.to_string())
                        .unwrap_or_else(|_| text(&planned["selected"]["because"])),
                    joined(&planned["waits_for"]),
                ]
            })
            .collect();
        table(ui, &["#", "SERVICE", "PRIORITY", "WHY", "WAITS FOR"], &rows);
    }
    if !skipped.is_empty() {
        ui.out("");
        ui.out("Left out:");
        let rows: Vec<Vec<String>> = skipped
            .iter()
            .map(|s| {
                vec![
                    text(&s["name"]),
                    text(&s["state"]),
                    serde_json::from_value::<SkipReason>(s["reason"].clone())
                        .map(|r| r.to_string())
                        .unwrap_or_else(|_| text(&s["reason"]["because"])),
                ]
            })
            .collect();
        table(ui, &["SERVICE", "STATE", "WHY"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

fn started(session: &Session, rollout: &Rollout) -> Result<ExitCode, Failure> {
    let ui = &session.ui;
    if ui.json {
        ui.json_out(rollout, false);
    } else {
        let names: Vec<&str> = rollout.services.iter().map(|s| s.name.as_str()).collect();
        ui.out(&format!(
            "Rollout {} started: {}. Follow it with `ralf catalog status`.",
            rollout.id,
            names.join(", ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn decided(
    session: &Session,
    rollout: &Rollout,
    name: &str,
    verb: &str,
) -> Result<ExitCode, Failure> {
    let ui = &session.ui;
    if ui.json {
        ui.json_out(rollout, false);
    } else {
        ui.out(&format!(
            "{verb} {name}; rollout {} is {}.",
            rollout.id,
            words(&rollout.state)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Waiting for a rollout (and printing its steps) until it ends.
struct Watch {
    project: i64,
    follow: bool,
    timeout: Option<Duration>,
}

impl Watch {
    async fn run(&self, session: &Session, first: Rollout) -> Result<ExitCode, Failure> {
        let ui = &session.ui;
        let id = first.id;
        ui.start_spinner(format!("rollout {id}"));
        let mut seen = Seen::default();
        let watching = async {
            // The feed first, then the rollout as it stands: no change falls between the two.
            let mut feed = open_feed(session, self.project, id).await;
            let mut rollout = match feed {
                Some(_) => session.client.rollout(self.project, id).await?,
                None => first,
            };
            let mut polls = 0u32;
            loop {
                self.tell(session, &mut seen, &rollout);
                if rollout.finished() {
                    return Ok::<Rollout, Failure>(rollout);
                }
                match &mut feed {
                    Some(live) => {
                        if let Err(e) = live.changed().await {
                            ui.note(&format!(
                                "ralf: the live feed of rollout {id} dropped ({e}); polling"
                            ));
                            feed = None;
                            polls = 0;
                        }
                    }
                    None => {
                        tokio::time::sleep(POLL_EVERY).await;
                        polls += 1;
                        if polls.is_multiple_of(REOPEN_EVERY_POLLS) {
                            feed = open_feed(session, self.project, id).await;
                        }
                    }
                }
                rollout = session.client.rollout(self.project, id).await?;
            }
        };
        let ended = match self.timeout {
            None => watching.await,
            Some(limit) => match tokio::time::timeout(limit, watching).await {
                Ok(ended) => ended,
                Err(_) => {
                    ui.stop_spinner();
                    eprintln!(
                        "ralf: rollout {id} is still {} after {}; it goes on",
                        words(&seen.rollout_state),
                        ui::span(limit)
                    );
                    return Ok(ExitCode::from(code::TIMED_OUT));
                }
            },
        };
        ui.stop_spinner();
        let rollout = ended?;
        if ui.json {
            ui.json_out(&rollout, self.follow);
        } else {
            let rows: Vec<Vec<String>> = rollout
                .services
                .iter()
                .map(|s| {
                    let last = s.steps.iter().rev().find_map(|step| step.status.as_ref());
                    vec![
                        s.name.clone(),
                        s.state.clone(),
                        last.map(result_text).unwrap_or_default(),
                    ]
                })
                .collect();
            table(ui, &["SERVICE", "STATE", "LAST RESULT"], &rows);
            ui.out(&format!("Rollout {id} {}.", words(&rollout.state)));
        }
        Ok(ExitCode::from(outcome(&rollout)))
    }

    /// Prints what changed since the last look: the rollout's state, and with --follow each
    /// step started or ended and each service's new state.
    fn tell(&self, session: &Session, seen: &mut Seen, rollout: &Rollout) {
        let ui = &session.ui;
        if seen.rollout_state != rollout.state {
            seen.rollout_state = rollout.state.clone();
            ui.status(
                format!("rollout {}: {}", rollout.id, words(&rollout.state)),
                words(&rollout.state),
            );
        }
        for service in &rollout.services {
            if self.follow {
                for step in &service.steps {
                    if seen.started.insert(step.step_id.clone()) {
                        let task = step
                            .task_id
                            .map(|t| format!("task {t}"))
                            .unwrap_or_else(|| "no task".into());
                        if ui.json {
                            ui.json_out(
                                &json!({"event": "step_started", "step_id": step.step_id,
                                        "task_id": step.task_id}),
                                true,
                            );
                        } else {
                            ui.out(&format!("{} started ({task})", step.step_id));
                        }
                    }
                    if let Some(status) = &step.status
                        && seen.finished.insert(step.step_id.clone())
                    {
                        if ui.json {
                            ui.json_out(
                                &json!({"event": "step_finished", "step_id": step.step_id,
                                        "task_id": step.task_id, "status": status}),
                                true,
                            );
                        } else {
                            ui.out(&format!("{} {}", step.step_id, result_text(status)));
                        }
                    }
                }
            }
            let before = seen
                .services
                .insert(service.name.clone(), service.state.clone());
            if before.as_deref() == Some(service.state.as_str()) {
                continue;
            }
            if self.follow && service.state != "pending" {
                if ui.json {
                    ui.json_out(
                        &json!({"event": "service", "name": service.name,
                                "state": service.state}),
                        true,
                    );
                } else {
                    ui.out(&format!("{}: {}", service.name, words(&service.state)));
                }
            }
            if service.state == "waiting_approval" {
                ui.note(&format!(
                    "{0} waits for approval: ralf catalog approve {0} (or ralf catalog reject {0})",
                    service.name
                ));
            }
        }
    }
}

/// The live feed of rollout `id`, or `None` (polling instead) when the server offers none.
async fn open_feed(session: &Session, project: i64, id: i64) -> Option<RolloutFeed> {
    match session.client.rollout_feed(project, id).await {
        Ok(feed) => feed,
        Err(e) => {
            session.ui.note(&format!(
                "ralf: no live feed of rollout {id} ({e}); polling"
            ));
            None
        }
    }
}

/// What a watch printed already.
#[derive(Default)]
struct Seen {
    rollout_state: String,
    started: HashSet<String>,
    finished: HashSet<String>,
    services: HashMap<String, String>,
}

/// The exit code of a finished rollout: 0 when every service of it is up, 1 when one failed,
/// was rolled back or held, 2 when it was cancelled before the rest ran.
fn outcome(rollout: &Rollout) -> u8 {
    let up = |state: &str| matches!(state, "deployed" | "degraded");
    if rollout.services.iter().all(|s| up(&s.state)) {
        code::SUCCESS
    } else if rollout.state == "cancelled"
        && !rollout
            .services
            .iter()
            .any(|s| matches!(s.state.as_str(), "failed" | "held" | "rolled_back"))
    {
        code::TASK_STOPPED
    } else {
        code::TASK_FAILED
    }
}

async fn status(session: &Session, project: i64) -> Result<ExitCode, Failure> {
    let services = session.client.catalog_services(project).await?;
    let ui = &session.ui;
    if ui.json {
        ui.json_out(&services, false);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let deployed = match s["deployed_at"].as_str() {
                Some(at) => DateTime::parse_from_rfc3339(at)
                    .map(|t| ui::when(Some(t.with_timezone(&Utc))))
                    .unwrap_or_else(|_| at.to_string()),
                None => "-".into(),
            };
            vec![
                text(&s["name"]),
                text(&s["state"]),
                text(&s["priority"]),
                joined(&s["depends_on"]),
                deployed,
                if s["last_result"].is_object() {
                    result_text(&s["last_result"])
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    table(
        ui,
        &[
            "SERVICE",
            "STATE",
            "PRIORITY",
            "DEPENDS ON",
            "DEPLOYED",
            "LAST RESULT",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

async fn graph(session: &Session, project: i64, svg: bool) -> Result<ExitCode, Failure> {
    let graph = session.client.catalog_graph(project, svg).await?;
    // A server without its own drawing answers DOT: Graphviz draws it then.
    let out = if svg && !graph.trim_start().starts_with("<svg") {
        render_svg(&graph)?
    } else {
        graph
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::local(format!("cannot write the graph: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// The DOT graph rendered by Graphviz's `dot -Tsvg`.
fn render_svg(dot: &str) -> Result<String, Failure> {
    let mut child = match std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                Failure::local("--svg needs Graphviz, and its `dot` is not on the PATH").hint(
                    "install Graphviz (e.g. `apt install graphviz`), or print the DOT without \
                 --svg and render it elsewhere",
                ),
            );
        }
        Err(e) => return Err(Failure::local(format!("cannot run Graphviz's dot: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| Failure::local(format!("cannot hand the graph to dot: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| Failure::local(format!("Graphviz's dot failed: {e}")))?;
    if !output.status.success() {
        return Err(Failure::local(format!(
            "Graphviz's dot failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|e| Failure::local(format!("Graphviz's dot wrote no text: {e}")))
}

/// A step status object as one line: `OK: 10/10 PASS (task 12)`.
fn result_text(status: &Value) -> String {
    let mut line = text(&status["result"]);
    let summary = text(&status["summary"]);
    if !summary.is_empty() {
        line.push_str(": ");
        line.push_str(&summary);
    }
    if let Some(task) = status["task_id"].as_i64() {
        line.push_str(&format!(" (task {task})"));
    }
    line
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// A list of strings as `a, b`, or `-` when empty.
fn joined(value: &Value) -> String {
    let items: Vec<String> = list(value).iter().map(text).collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// `waiting_approval` as `waiting approval`.
fn words(state: &str) -> String {
    state.replace('_', " ")
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ralf_client::RolloutService;

    fn rollout(state: &str, services: &[&str]) -> Rollout {
        Rollout {
            state: state.into(),
            services: services
                .iter()
                .map(|s| RolloutService {
                    state: s.to_string(),
                    ..RolloutService::default()
                })
                .collect(),
            ..Rollout::default()
        }
    }

    #[test]
    fn exit_codes_of_a_finished_rollout() {
        let exit = |state, services: &[&str]| outcome(&rollout(state, services));
        assert_eq!(exit("succeeded", &["deployed", "degraded"]), code::SUCCESS);
        assert_eq!(exit("failed", &["deployed", "failed"]), code::TASK_FAILED);
        assert_eq!(exit("failed", &["rolled_back", "held"]), code::TASK_FAILED);
        assert_eq!(
            exit("cancelled", &["deployed", "pending"]),
            code::TASK_STOPPED
        );
        assert_eq!(exit("cancelled", &["held", "pending"]), code::TASK_FAILED);
    }

    #[test]
    fn step_results_read_as_one_line() {
        let status = json!({"result": "WARN", "summary": "7/10 PASS", "task_id": 4});
        assert_eq!(result_text(&status), "WARN: 7/10 PASS (task 4)");
        assert_eq!(result_text(&json!({"result": "OK"})), "OK");
    }
}
