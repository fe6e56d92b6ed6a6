//! What can go wrong talking to a server.

/// A failed call. [`Error::Api`] carries the server's own `error` message unchanged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status (4xx, or 5xx once the retries were used up).
    #[error("{message}")]
    Api { status: u16, message: String },
    /// No answer: the connection failed or timed out (after the retries).
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The server does not have what was asked for (a Semaphore server lacks ralf's
    /// extensions, an older one lacks newer routes).
    #[error("{what} is not available on this server{}", detail_suffix(.detail))]
    Unsupported { what: String, detail: String },
    /// An answer that does not have the expected shape.
    #[error("unexpected answer from {path}: {detail}")]
    Decode { path: String, detail: String },
    /// The client was set up wrong (a URL that is not http:// or https://, say).
    #[error("{0}")]
    Invalid(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl Error {
    /// A 4xx answer: the request was refused and asking again will not help.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Api { status, .. } if (400..500).contains(status))
            || matches!(self, Error::Unsupported { .. })
    }

    /// The status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again later: no answer, or a server error.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
