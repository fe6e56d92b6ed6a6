//! The catalog's advisor (docs/catalog.md): an OpenAI-compatible chat endpoint (exo, Ollama,
//! llama.cpp, vLLM), asked when one is configured for advice on the order of a rollout that
//! starts and for a diagnosis of a step that failed. Its answer is stored beside the rollout or
//! the step and shown with it; it changes nothing by itself.
//!
//! Every question runs in a task of its own, bounded by the advisor's timeout: a slow, failing
//! or absent advisor never delays or fails a rollout, and what goes wrong is logged. The log
//! tail it is sent is the task's output as stored, where secrets are already masked, and is
//! bounded in lines and characters.

use ralf_core::{RolloutId, TaskId};
use std::fmt::Write as _;

use ralf_catalog::api::RolloutView;
use ralf_catalog::{PlannedService, StepId, StepResult, StepStatus};
use ralf_store::catalog::{Advice, StoredRollout};
use serde_json::{Value, json};

use crate::settings::AdvisorSettings;
use crate::state::AppState;

/// How many of the failed task's last lines the advisor is sent.
const TAIL_LINES: i64 = ralf_catalog::report::LOG_TAIL_LINES as i64;
/// The most characters of one log line it is sent.
const MAX_LINE_CHARS: usize = 400;
/// The most characters of an answer that are kept.
const MAX_ADVICE_CHARS: usize = 4000;

const SYSTEM: &str = "You advise the people who run a service catalog's rollouts. Your answer \
    is shown to them beside the rollout or the step; it changes nothing by itself. Be brief \
    and concrete.";

/// Asks, when an advisor is configured, for advice on the order of rollout `stored`, which
/// has just started; returns at once.
pub fn advise_order(state: &AppState, stored: &StoredRollout) {
    let Some(advisor) = state.settings.advisor.clone() else {
        return;
    };
    let question = order_question(stored);
    let (state, rollout_id) = (state.clone(), stored.id);
    tokio::spawn(async move {
        answer(&state, &advisor, rollout_id, None, &question).await;
    });
}

/// Asks, when an advisor is configured and `status` is a failure, for a diagnosis of that
/// step of rollout `stored`; returns at once.
pub fn diagnose(state: &AppState, stored: &StoredRollout, status: &StepStatus) {
    let Some(advisor) = state.settings.advisor.clone() else {
        return;
    };
    if status.result != StepResult::Fail {
        return;
    }
    let Some(planned) = stored.plan.get(&status.step_id.service).cloned() else {
        return;
    };
    let (state, rollout_id, status) = (state.clone(), stored.id, status.clone());
    tokio::spawn(async move {
        let tail = match status.task_id {
            Some(task_id) => match log_tail(&state, task_id).await {
                Ok(tail) => tail,
                Err(e) => {
                    tracing::warn!(error = %e, task.id = task_id,
                        "catalog advisor: the failed task's log could not be read");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let question = diagnosis_question(&planned, &status, &tail);
        answer(
            &state,
            &advisor,
            rollout_id,
            Some(&status.step_id),
            &question,
        )
        .await;
    });
}

/// The rollout view with the advisor's answers put in: on the rollout and on its steps.
pub fn with_advice(mut view: RolloutView, advice: Advice) -> RolloutView {
    view.advice = advice.order;
    for service in &mut view.services {
        for step in &mut service.steps {
            step.advice = advice.steps.get(&step.step_id.to_string()).cloned();
        }
    }
    view
}

/// Asks `question` and stores the answer; logs why there is none.
async fn answer(
    state: &AppState,
    advisor: &AdvisorSettings,
    rollout_id: RolloutId,
    step: Option<&StepId>,
    question: &str,
) {
    let text = match ask(advisor, question).await {
        Ok(text) => text,
        Err(why) => {
            tracing::warn!(rollout.id = rollout_id.0, step = ?step.map(ToString::to_string),
                %why, "catalog advisor: no answer; the rollout goes on without one");
            return;
        }
    };
    if let Err(e) = state.store.save_advice(rollout_id, step, &text).await {
        tracing::warn!(error = %e, rollout.id = rollout_id.0, "catalog advisor: its answer could not be stored");
    }
}

/// One chat completion: the answer's text, or why there is none.
async fn ask(advisor: &AdvisorSettings, question: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(advisor.timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client
        .post(format!("{}/chat/completions", advisor.url))
        .json(&json!({
            "model": advisor.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
            ],
        }));
    if let Some(key) = &advisor.api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("it answered {status}"));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("its answer has no choices[0].message.content")?;
    Ok(clip(text, MAX_ADVICE_CHARS))
}

/// The last lines of task `task_id`'s output, as stored (masked), each clipped.
async fn log_tail(state: &AppState, task_id: i64) -> Result<Vec<String>, ralf_store::StoreError> {
    let count = state.store.task_output_count(TaskId(task_id)).await?;
    let lines = state
        .store
        .task_output(TaskId(task_id), (count - TAIL_LINES).max(0), None)
        .await?;
    Ok(lines
        .into_iter()
        .map(|line| clip(&line.output, MAX_LINE_CHARS))
        .collect())
}

fn order_question(stored: &StoredRollout) -> String {
    let mut q = format!(
        "A rollout deploys these services in this order ({} at a time; a service starts only \
         after those it waits for are up):\n",
        stored.options.parallelism
    );
    for (i, planned) in stored.plan.services.iter().enumerate() {
        let _ = writeln!(
            q,
            "{}. {} (priority {}; waits for: {})",
            i + 1,
            planned.service.name,
            planned.service.priority,
            list(&planned.waits_for)
        );
    }
    q.push_str("Is this order sound? Name any risk in it, or say it looks right.");
    q
}

fn diagnosis_question(planned: &PlannedService, status: &StepStatus, tail: &[String]) -> String {
    let service = &planned.service;
    let mut q = format!(
        "Step {} of the service {} failed: {}\n",
        status.step_id, service.name, status.summary
    );
    if let Some(description) = &service.description {
        let _ = writeln!(q, "The service: {description}");
    }
    let _ = writeln!(q, "It depends on: {}", list(&service.depends_on));
    if tail.is_empty() {
        q.push_str("Its task left no log.\n");
    } else {
        let _ = writeln!(q, "The last lines of its task's log:\n```");
        for line in tail {
            let _ = writeln!(q, "{line}");
        }
        q.push_str("```\n");
    }
    q.push_str("What most likely went wrong, and what should be checked first?");
    q
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("héllo", 5), "héllo");
    }
}
