//! The refs a `git://` remote advertises, read without starting git: what `git ls-remote`
//! prints, asked over one TCP connection in git's protocol version 0 (the client sends
//! `git-upload-pack <path>`, the server answers its refs as pkt-lines and a flush, the client
//! hangs up with a flush). The checkout compares them with the cache's to skip a fetch that
//! would change nothing. Any other URL, or any trouble, answers `None`: the caller fetches.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::refs;

/// How long the whole exchange may take before the caller fetches instead.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most an advertisement may hold (a repository with this many refs is fetched).
const MAX_BYTES: usize = 16 << 20;
/// git daemon's port.
const DEFAULT_PORT: u16 = 9418;

/// The refs the remote advertises, by full name (`HEAD`, `refs/heads/main`, `refs/tags/v1`;
/// peeled tags, `refs/tags/v1^{}`, left out), when `url` is a `git://` URL that answers.
pub(crate) async fn read(url: &str) -> Option<BTreeMap<String, String>> {
    let (host, port, path) = parse(url)?;
    let exchange = async {
        let mut socket = TcpStream::connect((host.as_str(), port)).await.ok()?;
        let _ = socket.set_nodelay(true);
        let host_header = if port == DEFAULT_PORT {
            host.clone()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let request = format!("git-upload-pack {path}\0host={host_header}\0");
        socket.write_all(&pkt_line(&request)).await.ok()?;
        let mut received = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let refs = loop {
            if let Some(refs) = parse_advertisement(&received) {
                break refs?;
            }
            let n = socket.read(&mut buf).await.ok()?;
            if n == 0 || received.len() + n > MAX_BYTES {
                return None;
            }
            received.extend_from_slice(&buf[..n]);
        };
        // A flush: the client wants nothing; upload-pack ends.
        let _ = socket.write_all(b"0000").await;
        Some(refs)
    };
    tokio::time::timeout(TIMEOUT, exchange).await.ok()?
}

/// Host, port and path of a `git://host[:port]/path` URL; `None` for anything else, or for a
/// path git would decode or quote differently (percent signs, spaces, control characters).
fn parse(url: &str) -> Option<(String, u16, String)> {
    let rest = url.trim().strip_prefix("git://")?;
    let slash = rest.find('/')?;
    let (authority, path) = rest.split_at(slash);
    if path.bytes().any(|b| b <= b' ' || b == b'%' || b == 0x7f) || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()?),
            None => (authority.to_string(), DEFAULT_PORT),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some((host, port, path.to_string()))
}

fn pkt_line(text: &str) -> Vec<u8> {
    let mut line = format!("{:04x}", text.len() + 4).into_bytes();
    line.extend_from_slice(text.as_bytes());
    line
}

/// The refs of a whole advertisement (pkt-lines up to a flush): `None` while incomplete,
/// `Some(None)` when it is not one (an `ERR` line, a malformed line).
#[allow(clippy::option_option)]
fn parse_advertisement(data: &[u8]) -> Option<Option<BTreeMap<String, String>>> {
    let mut refs = BTreeMap::new();
    let mut at = 0;
    loop {
        let header = data.get(at..at + 4)?;
        let Some(len) = std::str::from_utf8(header)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            return Some(None);
        };
        if len == 0 {
            return Some(Some(refs));
        }
        if len < 4 {
            return Some(None);
        }
        let payload = data.get(at + 4..at + len)?;
        at += len;
        let Ok(line) = std::str::from_utf8(payload) else {
            return Some(None);
        };
        // The first line carries the capabilities after a NUL.
        let line = line
            .split('\0')
            .next()
            .unwrap_or_default()
            .trim_end_matches('\n');
        let Some((hash, name)) = line.split_once(' ') else {
            return Some(None);
        };
        if !refs::is_hash(hash) {
            return Some(None);
        }
        // An empty repository advertises `capabilities^{}` with a zero hash.
        if name.ends_with("^{}") {
            continue;
        }
        refs.insert(name.to_string(), hash.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_give_host_port_and_path() {
        let p = |u: &str| parse(u);
        assert_eq!(
            p("git://example.test/r.git"),
            Some(("example.test".into(), 9418, "/r.git".into()))
        );
        assert_eq!(
            p("git://127.0.0.1:9419/a/r.git"),
            Some(("127.0.0.1".into(), 9419, "/a/r.git".into()))
        );
        assert_eq!(
            p("git://[::1]:9419/r.git"),
            Some(("::1".into(), 9419, "/r.git".into()))
        );
        for other in [
            "https://example.test/r.git",
            "ssh://git@example.test/r.git",
            "/srv/r.git",
            "git://example.test",
            "git://example.test/r%20x.git",
            "git://user@example.test/r.git",
            "git://:9418/r.git",
        ] {
            assert_eq!(p(other), None, "{other}");
        }
    }

    #[test]
    fn an_advertisement_is_read_up_to_its_flush() {
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let mut data = pkt_line(&format!(
            "{a} HEAD\0multi_ack symref=HEAD:refs/heads/main\n"
        ));
        data.extend(pkt_line(&format!("{a} refs/heads/main\n")));
        data.extend(pkt_line(&format!("{b} refs/tags/v1\n")));
        assert_eq!(parse_advertisement(&data), None, "no flush yet");
        data.extend(pkt_line(&format!("{a} refs/tags/v1^{{}}\n")));
        data.extend(b"0000");
        let refs = parse_advertisement(&data).unwrap().unwrap();
        assert_eq!(
            refs.into_iter().collect::<Vec<_>>(),
            [
                ("HEAD".to_string(), a.clone()),
                ("refs/heads/main".to_string(), a),
                ("refs/tags/v1".to_string(), b),
            ]
        );
        let mut error = pkt_line("ERR access denied");
        error.extend(b"0000");
        assert_eq!(parse_advertisement(&error), Some(None));
        let empty = format!("{} capabilities^{{}}\0multi_ack\n", "0".repeat(40));
        let mut empty = pkt_line(&empty);
        empty.extend(b"0000");
        assert_eq!(parse_advertisement(&empty), Some(Some(BTreeMap::new())));
    }
}
