//! The cache's refs, read without starting git. The cache is a bare repository in git's `files`
//! ref format (`git::prepare` makes sure of it): a ref is either a loose file `refs/...` holding
//! a hash, or a line of `packed-refs`; the loose file wins. Anything else (a symbolic ref, a
//! file that does not hold a hash) reads as absent, and the caller asks git.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// Whether `name` is a ref name git accepts (the rules of `git check-ref-format`), which also
/// makes it a safe relative path: no empty, `.` or `..` component, no `.lock` file.
pub(crate) fn valid_name(name: &str) -> bool {
    if name.is_empty()
        || name == "@"
        || name.ends_with('/')
        || name.ends_with('.')
        || name.contains("..")
        || name.contains("@{")
        || name
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
    {
        return false;
    }
    name.split('/')
        .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
}

/// Whether `name` can be a branch: a valid `refs/heads/<name>` that git's `checkout -B` takes.
pub(crate) fn valid_branch(name: &str) -> bool {
    !name.starts_with('-') && name != "HEAD" && valid_name(&format!("refs/heads/{name}"))
}

/// A full object name: 40 (SHA-1) or 64 (SHA-256) lower-case hexadecimal digits.
pub(crate) fn is_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether the repository at `git_dir` keeps its refs in the `files` format this module reads.
pub(crate) fn files_format(git_dir: &Path) -> bool {
    git_dir.join("refs/heads").is_dir() && !git_dir.join("reftable").exists()
}

/// The hash the ref `name` (a full name, `refs/heads/main`) points to; `None` when it does not
/// exist or is not a plain hash.
pub(crate) fn read(git_dir: &Path, name: &str) -> Option<String> {
    if !valid_name(name) {
        return None;
    }
    let loose = git_dir.join(name);
    if loose.is_file() {
        let text = std::fs::read_to_string(loose).ok()?;
        let hash = text.trim_end();
        return is_hash(hash).then(|| hash.to_string());
    }
    packed(git_dir).ok()?.remove(name)
}

/// Every ref whose name starts with `prefix` (`refs/tags/`), with its hash.
pub(crate) fn list(git_dir: &Path, prefix: &str) -> io::Result<BTreeMap<String, String>> {
    let mut refs: BTreeMap<String, String> = packed(git_dir)?
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .collect();
    walk(git_dir, prefix.trim_end_matches('/'), &mut refs)?;
    Ok(refs)
}

fn walk(git_dir: &Path, dir: &str, refs: &mut BTreeMap<String, String>) -> io::Result<()> {
    let entries = match std::fs::read_dir(git_dir.join(dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(file) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let name = format!("{dir}/{file}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(git_dir, &name, refs)?;
        } else if kind.is_file() && valid_name(&name) {
            // A ref deleted meanwhile is simply not listed.
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                let hash = text.trim_end();
                if is_hash(hash) {
                    refs.insert(name, hash.to_string());
                }
            }
        }
    }
    Ok(())
}

/// The refs of `packed-refs` (peeled `^` lines and the header are skipped).
fn packed(git_dir: &Path) -> io::Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(git_dir.join("packed-refs")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(hash, name)| is_hash(hash) && valid_name(name))
        .map(|(hash, name)| (name.to_string(), hash.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_follow_gits_rules() {
        for ok in [
            "refs/heads/main",
            "refs/heads/feature/x-1",
            "refs/tags/v1.0",
            "refs/heads/a\"b",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "refs/heads/",
            "refs/heads/../config",
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads//x",
            "/refs/heads/x",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a*",
            "refs/heads/a[",
            "refs/heads/a\\b",
            "refs/heads/a@{1}",
            "refs/heads/x.",
            "refs/heads/\n",
            "@",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_branch("feature/x"));
        assert!(!valid_branch("-f"));
        assert!(!valid_branch("HEAD"));
        assert!(!valid_branch("../../x"));
    }

    #[test]
    fn loose_refs_win_over_packed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
        std::fs::create_dir_all(dir.path().join("refs/heads/feature")).unwrap();
        std::fs::create_dir_all(dir.path().join("refs/tags")).unwrap();
        std::fs::write(
            dir.path().join("packed-refs"),
            format!(
                "# pack-refs with: peeled fully-peeled sorted \n{a} refs/heads/main\n\
                 {a} refs/heads/old\n{a} refs/tags/v1\n^{b}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("refs/heads/main"), format!("{b}\n")).unwrap();
        std::fs::write(dir.path().join("refs/heads/feature/x"), format!("{c}\n")).unwrap();
        std::fs::write(dir.path().join("refs/heads/sym"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(dir.path().join("refs/heads/main.lock"), "").unwrap();
        assert!(files_format(dir.path()));
        assert_eq!(read(dir.path(), "refs/heads/main"), Some(b.clone()));
        assert_eq!(read(dir.path(), "refs/heads/old"), Some(a.clone()));
        assert_eq!(read(dir.path(), "refs/heads/feature/x"), Some(c.clone()));
        assert_eq!(read(dir.path(), "refs/heads/feature"), None);
        assert_eq!(read(dir.path(), "refs/heads/sym"), None);
        assert_eq!(read(dir.path(), "refs/heads/none"), None);
        assert_eq!(read(dir.path(), "refs/heads/../../packed-refs"), None);
        let heads: Vec<_> = list(dir.path(), "refs/heads/")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            heads,
            vec![
                ("refs/heads/feature/x".to_string(), c),
                ("refs/heads/main".to_string(), b),
                ("refs/heads/old".to_string(), a.clone()),
            ]
        );
        let tags: Vec<_> = list(dir.path(), "refs/tags/")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(tags, vec![("refs/tags/v1".to_string(), a)]);
    }
}
