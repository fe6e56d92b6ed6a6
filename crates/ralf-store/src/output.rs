//! Task output, stored in chunks: each batch of lines the writer hands over becomes one row
//! (`first_line`, `line_count`, the lines joined by newlines, each line's time as an offset
//! from the chunk's first). A million-line log is a few hundred rows, written at the speed of
//! the text itself, and any range of lines is read through the `(task_id, first_line)` index.

use ralf_core::api::tasks::TaskOutput;
use ralf_core::{TaskId, Timestamp};

use crate::driver::Tx as _;
use crate::{Result, Store, with_db};

/// A batch of lines encoded as a row.
pub(crate) struct Chunk {
    pub count: i64,
    pub time: Timestamp,
    pub offsets: String,
    pub output: String,
}

impl Chunk {
    /// Encodes lines; a newline inside a line (which no writer sends) becomes a space, so the
    /// line count stays what the caller gave.
    pub(crate) fn new(lines: &[(Timestamp, String)]) -> Chunk {
        let time = lines
            .first()
            .map(|(t, _)| *t)
            .unwrap_or_else(Timestamp::now);
        let mut offsets = String::with_capacity(lines.len() * 4);
        let mut output = String::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum());
        for (i, (t, line)) in lines.iter().enumerate() {
            if i > 0 {
                offsets.push(',');
                output.push('\n');
            }
            let micros = (t.0 - time.0).num_microseconds().unwrap_or(0);
            offsets.push_str(&micros.to_string());
            if line.contains('\n') {
                output.push_str(&line.replace('\n', " "));
            } else {
                output.push_str(line);
            }
        }
        Chunk {
            count: lines.len() as i64,
            time,
            offsets,
            output,
        }
    }
}

/// Stored lines of a task's output, as one row keeps them: consecutive lines from
/// `first_line`, decoded only as they are read ([`OutputChunk::lines`]), so a long log is served
/// without a value per line.
#[derive(sqlx::FromRow)]
pub struct OutputChunk {
    /// The index (0-based) of the chunk's first line in the task's output.
    pub first_line: i64,
    /// How many lines the chunk holds.
    pub line_count: i64,
    time: Timestamp,
    offsets: String,
    output: String,
}

impl OutputChunk {
    /// The lines, each with its index and time, in order.
    pub fn lines(&self) -> impl Iterator<Item = (i64, Timestamp, &str)> {
        let times = self.offsets.split(',');
        self.output
            .split('\n')
            .zip(times)
            .enumerate()
            .map(|(i, (text, micros))| {
                let micros: i64 = micros.parse().unwrap_or(0);
                let time = Timestamp(self.time.0 + chrono::Duration::microseconds(micros));
                (self.first_line + i as i64, time, text)
            })
    }

    /// Every line's text, separated by newlines, as stored.
    pub fn text(&self) -> &str {
        &self.output
    }
}

impl Store {
    /// Appends lines to a task's output, in order, as one chunk in one transaction; returns the
    /// index (0-based) of the first line appended.
    pub async fn append_task_output(
        &self,
        task_id: TaskId,
        lines: &[(Timestamp, String)],
    ) -> Result<i64> {
        if lines.is_empty() {
            return self.task_output_count(task_id).await;
        }
        let chunk = Chunk::new(lines);
        let first = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let first = tx.append_chunk(task_id, &chunk).await?;
            tx.commit().await?;
            first
        });
        metrics::counter!(crate::ops::LOG_LINES).increment(lines.len() as u64);
        Ok(first)
    }

    /// How many output lines a task has.
    pub async fn task_output_count(&self, task_id: TaskId) -> Result<i64> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(MAX(first_line + line_count), 0) FROM task_output WHERE task_id = $1",
        )
        .bind(task_id)
        .fetch_one(pool)
        .await)?)
    }

    /// A task's output in order: `limit` lines (all when `None`) from line `offset` (0-based).
    pub async fn task_output(
        &self,
        task_id: TaskId,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<Vec<TaskOutput>> {
        let offset = offset.max(0);
        let end = limit
            .map(|l| offset.saturating_add(l.max(0)))
            .unwrap_or(i64::MAX);
        if end <= offset {
            return Ok(Vec::new());
        }
        let chunks = with_db!(self, read, |pool| sqlx::query_as::<_, OutputChunk>(
            "SELECT first_line, line_count, time, offsets, output FROM task_output
                     WHERE task_id = $1 AND first_line < $3 AND first_line + line_count > $2
                     ORDER BY first_line",
        )
        .bind(task_id)
        .bind(offset)
        .bind(end)
        .fetch_all(pool)
        .await)?;
        let lines = chunks
            .iter()
            .flat_map(OutputChunk::lines)
            .filter(|(index, _, _)| (offset..end).contains(index))
            .map(|(_, time, text)| TaskOutput {
                task_id: task_id.0,
                time,
                output: text.to_owned(),
            })
            .collect();
        Ok(lines)
    }

    /// The chunks of a task's output that hold lines from index `from` on, in order, at most
    /// `limit` of them (a chunk holds at most the lines of one batch its writer stored).
    pub async fn task_output_chunks(
        &self,
        task_id: TaskId,
        from: i64,
        limit: i64,
    ) -> Result<Vec<OutputChunk>> {
        // The subquery seeks, through the index, the chunk holding line `from` (chunks are
        // contiguous); the `line_count` test leaves out that chunk when `from` is past the end.
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as::<_, OutputChunk>(
                "SELECT first_line, line_count, time, offsets, output FROM task_output
             WHERE task_id = $1 AND first_line + line_count > $2 AND first_line >= COALESCE(
                 (SELECT MAX(first_line) FROM task_output WHERE task_id = $1 AND first_line <= $2),
                 0)
             ORDER BY first_line LIMIT $3",
            )
            .bind(task_id)
            .bind(from)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }
}
