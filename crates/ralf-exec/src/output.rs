//! The output pipeline: bytes from a pipe → lines (split at 64 KiB) → lossy UTF-8 (NUL
//! replaced too) → secrets masked → stamped with the time → the sink. ralf's own lines take the same path.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use chrono::{DateTime, Utc};
use ralf_core::job::CheckoutInfo;
use ralf_core::redact::MASK;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Secrets shorter than this are not masked (masking `yes` or `1` everywhere would only garble
/// the log).
pub const MIN_SECRET_LEN: usize = 4;

/// The longest line sent as one; a longer one is cut into pieces of at most this many bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of a task's output: without its line ending, secrets masked, ANSI colours kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLine {
    /// When the line was complete.
    pub time: DateTime<Utc>,
    /// The text.
    pub text: String,
}

/// Where a task's output goes. Called from the task's own future, in order for each of the
/// child's streams (stdout and stderr lines interleave as they come). It must not block: a
/// server puts the line in a queue ([`crate::output_queue`]) and stores lines in batches
/// elsewhere, and says through [`OutputSink::room`] when the task should wait for it.
pub trait OutputSink: Send + Sync {
    /// One output line.
    fn line(&self, line: OutputLine);

    /// `None` when the sink takes more lines now; else what to await before the next (the
    /// task's output is read no further meanwhile, so the task waits on its pipe).
    fn room(&self) -> Option<crate::queue::Room<'_>> {
        None
    }

    /// The repository was checked out at this commit (also written as an output line), for the
    /// server to record on the task.
    fn checked_out(&self, info: &CheckoutInfo) {
        let _ = info;
    }

    /// The report a catalog step's task left at `$RALF_STEP_REPORT` (secrets masked, at most
    /// [`crate::MAX_STEP_REPORT_BYTES`] and one byte more), before the task ends.
    fn step_report(&self, report: &str) {
        let _ = report;
    }
}

impl OutputSink for tokio::sync::mpsc::UnboundedSender<OutputLine> {
    fn line(&self, line: OutputLine) {
        // The receiver is gone only when nobody wants the output any more.
        let _ = self.send(line);
    }
}

impl<F: Fn(OutputLine) + Send + Sync> OutputSink for F {
    fn line(&self, line: OutputLine) {
        self(line)
    }
}

/// Replaces every secret of a task in a line, with one pass over the line whatever the number
/// of secrets (Aho-Corasick, leftmost-longest so that a secret containing another is masked
/// whole).
pub(crate) struct Masker {
    ac: Option<AhoCorasick>,
    max_len: usize,
}

impl Masker {
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut patterns: Vec<&str> = Vec::new();
        for secret in secrets {
            for candidate in [secret, secret.trim()] {
                if candidate.len() >= MIN_SECRET_LEN && !patterns.contains(&candidate) {
                    patterns.push(candidate);
                }
            }
        }
        let max_len = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .expect("an Aho-Corasick automaton of literal strings builds"),
            )
        };
        Masker { ac, max_len }
    }

    pub(crate) fn mask<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        match &self.ac {
            Some(ac) if ac.is_match(bytes) => {
                let mut out = Vec::with_capacity(bytes.len());
                ac.replace_all_with_bytes(bytes, &mut out, |_, _, dst| {
                    dst.extend_from_slice(MASK.as_bytes());
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(bytes),
        }
    }

    /// Where to cut `buf` (at least `limit` bytes long) so that the first piece is at most
    /// `limit` bytes, no secret is cut in two (the rest keeps enough bytes to finish any secret
    /// that starts in it) and no UTF-8 character is cut.
    pub(crate) fn split_point(&self, buf: &[u8], limit: usize) -> usize {
        let keep = self.max_len.saturating_sub(1);
        let mut cut = limit.saturating_sub(keep).max(limit / 2).min(buf.len());
        if let Some(ac) = &self.ac {
            for m in ac.find_iter(buf) {
                if m.start() >= cut {
                    break;
                }
                if m.end() > cut {
                    cut = if m.start() > 0 { m.start() } else { m.end() };
                    break;
                }
            }
        }
        let mut back = 0;
        while back < 3 && cut > 1 && cut < buf.len() && (buf[cut] & 0xC0) == 0x80 {
            cut -= 1;
            back += 1;
        }
        cut.max(1)
    }
}

/// The output of one task: every line is masked and stamped here.
pub(crate) struct Out<'a> {
    sink: &'a dyn OutputSink,
    pub(crate) masker: Masker,
}

impl<'a> Out<'a> {
    pub(crate) fn new(sink: &'a dyn OutputSink, masker: Masker) -> Out<'a> {
        Out { sink, masker }
    }

    /// One of ralf's own messages (split at line breaks).
    pub(crate) fn say(&self, text: impl AsRef<str>) {
        for line in text.as_ref().split('\n') {
            self.bytes(line.trim_end_matches('\r').as_bytes());
        }
    }

    /// Returns once the sink takes more lines.
    pub(crate) async fn room(&self) {
        if let Some(room) = self.sink.room() {
            room.await;
        }
    }

    /// One line read from a child, without its line ending.
    pub(crate) fn bytes(&self, line: &[u8]) {
        let masked = self.masker.mask(line);
        self.sink.line(OutputLine {
            time: Utc::now(),
            text: storable(String::from_utf8_lossy(&masked).into_owned()),
        });
    }

    pub(crate) fn checked_out(&self, info: &CheckoutInfo) {
        self.sink.checked_out(&CheckoutInfo {
            commit_hash: info.commit_hash.clone(),
            commit_message: storable(info.commit_message.clone()),
        });
    }
}

/// What replaces a NUL character in the output.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Text every database can store: a NUL character (which PostgreSQL refuses in text) becomes
/// [`NUL_REPLACEMENT`], as invalid UTF-8 does.
fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', &NUL_REPLACEMENT.to_string())
    } else {
        text
    }
}

/// Reads a child's stream to its end, line by line, into the output (or into `capture`, lossily
/// decoded and unmasked, for the commands whose answer ralf reads).
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    stream: R,
    out: &Out<'_>,
    mut capture: Option<&mut Vec<String>>,
) {
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let emit = |line: &[u8], capture: &mut Option<&mut Vec<String>>| match capture {
        Some(lines) => lines.push(String::from_utf8_lossy(line).into_owned()),
        None => out.bytes(line),
    };
    loop {
        if capture.is_none() {
            out.room().await;
        }
        let room = MAX_LINE.saturating_sub(buf.len()).max(1) as u64;
        let read = (&mut reader).take(room).read_until(b'\n', &mut buf).await;
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                if !buf.is_empty() {
                    emit(&buf, &mut capture);
                }
                out.say(format!("reading the output failed: {e}"));
                return;
            }
        };
        if n == 0 {
            if !buf.is_empty() {
                emit(&buf, &mut capture);
            }
            return;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            emit(&buf, &mut capture);
            buf.clear();
        } else if buf.len() >= MAX_LINE {
            let cut = out.masker.split_point(&buf, MAX_LINE);
            emit(&buf[..cut], &mut capture);
            buf.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_and_the_longest_first() {
        let m = Masker::new(["hunter22", "hunter22-long", "abc", " spaced-secret \n"]);
        let out = m.mask(b"a hunter22-long b hunter22 c abc spaced-secret");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "a ********** b ********** c abc **********"
        );
        assert!(matches!(m.mask(b"nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn split_point_never_cuts_a_secret_or_a_character() {
        let secret = "s3cr3t-value";
        let m = Masker::new([secret]);
        // A secret straddling the would-be cut.
        let mut buf = vec![b'x'; MAX_LINE - 15];
        buf.extend_from_slice(secret.as_bytes());
        buf.extend_from_slice(&[b'y'; 100]);
        let cut = m.split_point(&buf, MAX_LINE);
        assert!(cut <= MAX_LINE);
        let (a, b) = buf.split_at(cut);
        assert!(!contains(a, b"s3cr3t") || contains(a, secret.as_bytes()));
        assert!(contains(b, secret.as_bytes()) || contains(a, secret.as_bytes()));
        // A multi-byte character at the cut.
        let m = Masker::new([]);
        let mut buf = vec![b'x'; MAX_LINE - 1];
        buf.extend_from_slice("é".as_bytes());
        let cut = m.split_point(&buf, MAX_LINE);
        assert!(std::str::from_utf8(&buf[..cut]).is_ok());
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        let lines = std::sync::Mutex::new(Vec::new());
        let sink = |line: OutputLine| lines.lock().unwrap().push(line.text);
        let out = Out::new(&sink, Masker::new([]));
        out.bytes(b"a\0b\xff");
        assert_eq!(lines.lock().unwrap().as_slice(), ["a\u{FFFD}b\u{FFFD}"]);
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
