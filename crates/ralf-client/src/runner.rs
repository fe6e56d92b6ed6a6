//! The calls of a remote runner (`ralf runner`): registration, polling for jobs, a task's
//! output and status. Authenticated by the runner's own token (`X-Runner-Token`, set with
//! [`crate::ClientConfig::runner_token`]), never by a user's.

use ralf_core::TaskStatus;
use ralf_core::api::runners::{RegisteredRunner, RunnerRegistration};
use ralf_core::runner_wire::{OutputBatch, Poll, PollAnswer, StatusAnswer, StatusReport};
use reqwest::Method;

use crate::client::{Replay, decode};
use crate::{Client, Error};

impl Client {
    /// Exchanges a one-time registration token for the runner's id and own token.
    pub async fn register_runner(
        &self,
        registration_token: &str,
    ) -> Result<RegisteredRunner, Error> {
        let path = "/api/internal/runners";
        let body = serde_json::to_value(RunnerRegistration {
            registration_token: registration_token.to_string(),
            webhook: None,
            max_parallel_tasks: None,
            public_key: None,
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let answer = self
            .call(
                Method::POST,
                path,
                &[],
                Some(body),
                Replay::OnlyUnsent,
                false,
            )
            .await?;
        decode(path, &answer)
    }

    /// Asks for jobs and news of the tasks held; the server may hold the answer back for up
    /// to `poll.wait_secs`.
    pub async fn poll_runner(&self, poll: &Poll) -> Result<PollAnswer, Error> {
        let path = "/api/internal/runners/poll";
        let body = serde_json::to_value(poll).map_err(|e| Error::Invalid(e.to_string()))?;
        // Not replayed once sent: a lost answer may have carried claimed jobs, which the
        // server ends when the next poll does not name them.
        let answer = self
            .call(
                Method::POST,
                path,
                &[],
                Some(body),
                Replay::OnlyUnsent,
                true,
            )
            .await?;
        decode(path, &answer)
    }

    /// Sends a task's next output lines.
    pub async fn send_task_output(&self, task_id: i64, batch: &OutputBatch) -> Result<(), Error> {
        let path = format!("/api/internal/runners/tasks/{task_id}/output");
        let body = serde_json::to_value(batch).map_err(|e| Error::Invalid(e.to_string()))?;
        // Only unsent: a batch stored twice would repeat lines.
        self.call(
            Method::POST,
            &path,
            &[],
            Some(body),
            Replay::OnlyUnsent,
            true,
        )
        .await?;
        Ok(())
    }

    /// Reports that a task moved on; says whether the server took it.
    pub async fn report_task_status(
        &self,
        task_id: i64,
        status: TaskStatus,
    ) -> Result<StatusAnswer, Error> {
        let path = format!("/api/internal/runners/tasks/{task_id}/status");
        let body = serde_json::to_value(StatusReport { status })
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let answer = self
            .call(Method::POST, &path, &[], Some(body), Replay::Safe, true)
            .await?;
        decode(&path, &answer)
    }
}
