//! A running task's output on its way to the store: the executor hands each line to an
//! [`OutputPipe`] (never blocking; a task printing faster than its lines are stored waits on
//! its pipe once [`QUEUED_BYTES`] wait), and one writer per task stores the lines in
//! batches (one transaction each), then announces them on the [`LiveHub`]. Lines are stored
//! before anyone hears of them, so a listener can always catch up from the store without gaps
//! or repeats.

use std::sync::Arc;
use std::time::Duration;

use ralf_core::{TaskId, Timestamp};
use ralf_exec::{
    CheckoutInfo, LINE_COST, OutputLine, OutputSink, QUEUED_BYTES, QueueReceiver, QueueSender, Room,
};

use super::live::{LiveEvent, LiveHub};
use crate::state::AppState;

/// The most lines one batch stores.
const BATCH: usize = 5000;
/// The most bytes one batch stores (as the queue counts them; a batch ends at the line that
/// passes it).
const BATCH_BYTES: usize = 2 << 20;

enum Item {
    Line(Timestamp, String),
    Checkout(CheckoutInfo),
    /// A catalog step's report, stored before the task ends (see crate::catalog).
    StepReport(String),
}

/// Where the executor (and the dispatcher's own messages) put a task's output lines.
#[derive(Clone)]
pub struct OutputPipe {
    tx: QueueSender<Item>,
}

impl OutputPipe {
    /// A line of ralf's own about the task.
    pub fn say(&self, text: impl Into<String>) {
        self.line(OutputLine {
            time: Timestamp::now().0,
            text: text.into(),
        });
    }
}

// The writer lives until every pipe is dropped, so nothing sent is lost.
impl OutputSink for OutputPipe {
    fn line(&self, line: OutputLine) {
        let cost = line.text.len() + LINE_COST;
        self.tx
            .send(Item::Line(Timestamp(line.time), line.text), cost);
    }

    fn room(&self) -> Option<Room<'_>> {
        self.tx.room()
    }

    fn checked_out(&self, info: &CheckoutInfo) {
        self.tx.send(Item::Checkout(info.clone()), LINE_COST);
    }

    fn step_report(&self, report: &str) {
        self.tx.send(
            Item::StepReport(report.to_owned()),
            report.len() + LINE_COST,
        );
    }
}

/// Starts the writer of a task's output; it ends when every [`OutputPipe`] clone is dropped
/// and everything sent has been stored. Await the handle to be sure of that.
pub fn start(
    state: &AppState,
    task_id: i64,
    project_id: i64,
) -> (OutputPipe, tokio::task::JoinHandle<()>) {
    let (tx, rx) = ralf_exec::output_queue(QUEUED_BYTES);
    let writer = Writer {
        store: state.store.clone(),
        live: state.live.clone(),
        task_id,
        project_id,
    };
    let handle = tokio::spawn(writer.run(rx));
    (OutputPipe { tx }, handle)
}

struct Writer {
    store: ralf_store::Store,
    live: Arc<LiveHub>,
    task_id: i64,
    project_id: i64,
}

impl Writer {
    async fn run(mut self, mut rx: QueueReceiver<Item>) {
        while let Some(items) = rx.recv_batch(BATCH, BATCH_BYTES).await {
            let mut lines = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Item::Line(time, text) => lines.push((time, text)),
                    Item::Checkout(info) => {
                        if let Err(e) = self
                            .store
                            .set_task_checkout(
                                TaskId(self.task_id),
                                &info.commit_hash,
                                &info.commit_message,
                            )
                            .await
                        {
                            tracing::warn!(task.id = self.task_id, error = %e, "could not record the task's commit");
                        }
                    }
                    Item::StepReport(report) => {
                        if let Err(e) = self
                            .store
                            .save_step_report(TaskId(self.task_id), &report)
                            .await
                        {
                            tracing::warn!(task.id = self.task_id, error = %e, "could not keep the step's report");
                        }
                    }
                }
            }
            self.store_batch(lines).await;
        }
    }

    /// Stores a batch, retrying while the database refuses; lines are never dropped quietly.
    async fn store_batch(&mut self, lines: Vec<(Timestamp, String)>) {
        if lines.is_empty() {
            return;
        }
        let lines = Arc::new(lines);
        let mut delay = Duration::from_millis(50);
        for attempt in 1.. {
            match store_and_announce(
                &self.store,
                &self.live,
                self.task_id,
                self.project_id,
                &lines,
            )
            .await
            {
                Ok(_) => return,
                Err(e) if attempt < 8 => {
                    tracing::warn!(task.id = self.task_id, error = %e, attempt, "storing output failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::error!(task.id = self.task_id, error = %e, lines = lines.len(), "output lines could not be stored and are lost");
                    return;
                }
            }
        }
    }
}

/// Stores lines after a task's output, then tells live listeners; returns the index of the
/// first. Used for lines of this server's tasks and for those a runner sends.
pub async fn store_and_announce(
    store: &ralf_store::Store,
    live: &LiveHub,
    task_id: i64,
    project_id: i64,
    lines: &Arc<Vec<(Timestamp, String)>>,
) -> Result<i64, ralf_store::StoreError> {
    let first_index = store.append_task_output(TaskId(task_id), lines).await?;
    live.publish(LiveEvent::Output {
        task_id,
        project_id,
        first_index,
        lines: lines.clone(),
    });
    Ok(first_index)
}
