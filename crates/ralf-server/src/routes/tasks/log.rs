//! The bodies of `…/output` and `…/raw_output`: a task's stored output chunks, read a few at a
//! time as the client takes the bytes, written straight from each chunk's text (no value per
//! line), so a long log is neither held in memory whole nor copied line by line.

use axum::body::{Body, Bytes};
use futures::{Stream, StreamExt as _};
use ralf_core::{TaskId, Timestamp};
use ralf_store::OutputChunk;

/// Output chunks read from the store at a time (a chunk holds one batch of its writer, a few
/// thousand lines at most).
const CHUNKS_AT_A_TIME: i64 = 4;

/// Lines `offset..end` of a task's output as the JSON array `…/output` answers: the bytes
/// `Json(Vec<TaskOutput>)` would send.
pub(super) fn json_body(store: ralf_store::Store, task_id: TaskId, offset: i64, end: i64) -> Body {
    let mut json = JsonLines::new(task_id);
    let lines = chunks(store, task_id, offset, end).map(move |chunks| {
        let chunks = chunks?;
        Ok::<_, std::io::Error>(json.render(&chunks, offset, end))
    });
    let body = futures::stream::once(async { Ok(Bytes::from_static(b"[")) })
        .chain(lines)
        .chain(futures::stream::once(async {
            Ok(Bytes::from_static(b"]"))
        }));
    Body::from_stream(body)
}

/// Every line of a task's output as text, separated by newlines (`…/raw_output`).
pub(super) fn text_body(store: ralf_store::Store, task_id: TaskId) -> Body {
    let mut first = true;
    let text = chunks(store, task_id, 0, i64::MAX).map(move |chunks| {
        let chunks = chunks?;
        let size = chunks.iter().map(|c| c.text().len() + 1).sum();
        let mut text = Vec::with_capacity(size);
        for chunk in &chunks {
            if !std::mem::take(&mut first) {
                text.push(b'\n');
            }
            text.extend_from_slice(chunk.text().as_bytes());
        }
        Ok::<_, std::io::Error>(Bytes::from(text))
    });
    Body::from_stream(text)
}

/// The chunks holding lines `offset..end`, [`CHUNKS_AT_A_TIME`] at a time, read as the
/// stream is polled. A failed read is logged and ends the stream with an error, which aborts
/// the response.
fn chunks(
    store: ralf_store::Store,
    task_id: TaskId,
    offset: i64,
    end: i64,
) -> impl Stream<Item = Result<Vec<OutputChunk>, std::io::Error>> {
    // State: the index of the next line to read, or None when done.
    futures::stream::unfold(Some(offset), move |from| {
        let store = store.clone();
        async move {
            let from = from.filter(|from| *from < end)?;
            match store
                .task_output_chunks(task_id, from, CHUNKS_AT_A_TIME)
                .await
            {
                Err(e) => {
                    tracing::error!(error = %e, task_id = task_id.0, "reading task output failed");
                    Some((
                        Err(std::io::Error::other("reading task output failed")),
                        None,
                    ))
                }
                Ok(chunks) => {
                    let last = chunks.last()?;
                    let next = last.first_line + last.line_count;
                    Some((Ok(chunks), Some(next)))
                }
            }
        }
    })
}

/// Writes output lines as the JSON objects of `TaskOutput`, separated by commas across calls.
struct JsonLines {
    /// `{"task_id":N,"time":"`, the same for every line.
    opening: String,
    wrote_a_line: bool,
    /// The last time written: its whole seconds and its text (lines of the same second, most
    /// of a long log, share it).
    time: Option<(i64, String)>,
}

impl JsonLines {
    fn new(task_id: TaskId) -> Self {
        JsonLines {
            opening: format!("{{\"task_id\":{},\"time\":\"", task_id.0),
            wrote_a_line: false,
            time: None,
        }
    }

    /// The lines of `chunks` with an index in `offset..end`.
    fn render(&mut self, chunks: &[OutputChunk], offset: i64, end: i64) -> Bytes {
        let size: usize = chunks.iter().map(|c| c.text().len()).sum();
        let lines: i64 = chunks.iter().map(|c| c.line_count).sum();
        let mut json = Vec::with_capacity(size + 64 * lines as usize);
        for chunk in chunks {
            for (index, time, text) in chunk.lines() {
                if (offset..end).contains(&index) {
                    self.line(&mut json, time, text);
                }
            }
        }
        Bytes::from(json)
    }

    fn line(&mut self, json: &mut Vec<u8>, time: Timestamp, text: &str) {
        if std::mem::replace(&mut self.wrote_a_line, true) {
            json.push(b',');
        }
        let seconds = time.0.timestamp();
        let time = match &mut self.time {
            Some((s, text)) if *s == seconds => text,
            cached => &cached.insert((seconds, time.to_string())).1,
        };
        json.extend_from_slice(self.opening.as_bytes());
        json.extend_from_slice(time.as_bytes());
        json.extend_from_slice(b"\",\"output\":");
        serde_json::to_writer(&mut *json, text).expect("a string is written to a Vec");
        json.push(b'}');
    }
}
