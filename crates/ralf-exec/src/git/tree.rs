//! A task's checkout made without starting git: the files are copied from the commit's snapshot
//! (`git read-tree` wrote it once), the snapshot's index is copied with each entry's stat data
//! replaced by the copy's (so `git diff-index` and friends see a clean tree, as after a
//! checkout), and the `.git` is written as `git clone --shared` would leave it.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sha1::Digest;

/// Copies the directory tree `from` to `to` (which must not exist): directories, regular files
/// with their permission bits, symbolic links. Every file is a new inode: nothing is shared with
/// the snapshot (`copy_file_range`, so a filesystem that can clone extents does). Gives up,
/// with an `Interrupted` error, as soon as `stop` is set.
pub(crate) fn copy_dir(from: &Path, to: &Path, stop: &AtomicBool) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        if stop.load(Ordering::Relaxed) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&src, &dst, stop)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Writes `to`: the index `from` (version 2 or 3) with the stat data of every file and symbolic
/// link entry taken from `work_tree`, and its checksum recomputed. `hash_len`: the length of an
/// object name in bytes (20 for SHA-1, 32 for SHA-256).
pub(crate) fn restamp_index(
    from: &Path,
    to: &Path,
    work_tree: &Path,
    hash_len: usize,
) -> io::Result<()> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("index: {what}"));
    let mut data = fs::read(from)?;
    let u32_at = |data: &[u8], at: usize| -> u32 {
        u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
    };
    if data.len() < 12 || &data[..4] != b"DIRC" {
        return Err(bad("not an index file"));
    }
    let version = u32_at(&data, 4);
    if !(2..=3).contains(&version) {
        return Err(bad("only versions 2 and 3 are supported"));
    }
    let count = u32_at(&data, 8) as usize;
    let end = data
        .len()
        .checked_sub(hash_len)
        .ok_or_else(|| bad("truncated"))?;
    let mut at = 12;
    for _ in 0..count {
        let fixed = 40 + hash_len + 2;
        if at + fixed > end {
            return Err(bad("truncated entry"));
        }
        let flags = u16::from_be_bytes([data[at + 40 + hash_len], data[at + 41 + hash_len]]);
        let extended = version >= 3 && flags & 0x4000 != 0;
        let name_at = at + fixed + if extended { 2 } else { 0 };
        let name_len = data[name_at.min(end)..end]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("unterminated path"))?;
        let size = (name_at - at + name_len + 8) & !7;
        let mode = u32_at(&data, at + 24);
        // Regular files and symbolic links; a submodule (gitlink) keeps what it had.
        if matches!(mode >> 12, 0o10 | 0o12) {
            let path = std::ffi::OsStr::from_bytes(&data[name_at..name_at + name_len]);
            let meta = fs::symlink_metadata(work_tree.join(path))?;
            let stat = [
                meta.ctime() as u32,
                meta.ctime_nsec() as u32,
                meta.mtime() as u32,
                meta.mtime_nsec() as u32,
                meta.dev() as u32,
                meta.ino() as u32,
                mode,
                meta.uid(),
                meta.gid(),
                meta.size() as u32,
            ];
            for (i, value) in stat.into_iter().enumerate() {
                data[at + 4 * i..at + 4 * i + 4].copy_from_slice(&value.to_be_bytes());
            }
        }
        at += size;
    }
    if at > end {
        return Err(bad("truncated entry"));
    }
    let (body, trailer) = data.split_at_mut(end);
    if hash_len == 32 {
        trailer.copy_from_slice(&sha2::Sha256::digest(&*body));
    } else {
        trailer.copy_from_slice(&sha1::Sha1::digest(&*body));
    }
    let mut file = OpenOptions::new().write(true).create_new(true).open(to)?;
    file.write_all(&data)
}

/// What a task's `.git` holds besides its index.
pub(crate) struct GitDir<'a> {
    /// The cache, whose objects the checkout borrows (an absolute path).
    pub cache: &'a Path,
    pub url: &'a str,
    /// The commit checked out.
    pub commit: &'a str,
    /// The branch checked out (at `commit`); `None`: a detached HEAD.
    pub branch: Option<&'a str>,
    /// Whether the branch exists on the remote (it then tracks `origin/<branch>`).
    pub tracks: bool,
    /// The cache's branches (`refs/heads/...`) and tags (`refs/tags/...`).
    pub refs: &'a [(String, String)],
}

/// Writes the `.git` directory `dir` (which must not exist) with what `git clone --shared` of
/// the cache followed by `git remote set-url origin <url>` and a checkout put in it (less its
/// empty directories): objects
/// borrowed from the cache, the cache's branches as `origin/*`, its tags, `HEAD` on the branch
/// (or detached at the commit). The index comes separately.
pub(crate) fn write_git_dir(dir: &Path, g: &GitDir<'_>) -> io::Result<()> {
    // Only the directories git needs to take `dir` for a repository (`objects`, `refs`) and
    // the one the alternates go in: git makes the others when it first writes there, and every
    // directory made here costs each task an inode.
    fs::create_dir(dir)?;
    for sub in ["objects", "objects/info", "refs"] {
        fs::create_dir(dir.join(sub))?;
    }
    let mut alternates = g.cache.join("objects").into_os_string().into_vec();
    alternates.push(b'\n');
    fs::write(dir.join("objects/info/alternates"), alternates)?;

    let mut refs = BTreeMap::new();
    for (name, hash) in g.refs {
        if let Some(branch) = name.strip_prefix("refs/heads/") {
            refs.insert(format!("refs/remotes/origin/{branch}"), hash.as_str());
        } else if name.starts_with("refs/tags/") {
            refs.insert(name.clone(), hash.as_str());
        }
    }
    let head = match g.branch {
        Some(branch) => {
            refs.insert(format!("refs/heads/{branch}"), g.commit);
            format!("ref: refs/heads/{branch}\n")
        }
        None => format!("{}\n", g.commit),
    };
    // Byte order, as the header says (a BTreeMap of strings is in byte order).
    let mut packed = String::from("# pack-refs with: sorted \n");
    for (name, hash) in &refs {
        packed.push_str(&format!("{hash} {name}\n"));
    }
    fs::write(dir.join("packed-refs"), packed)?;

    let sha256 = g.commit.len() == 64;
    let mut config = format!(
        "[core]\n\trepositoryformatversion = {}\n\tfilemode = true\n\tbare = false\n\
         \tlogallrefupdates = true\n",
        u8::from(sha256)
    );
    if sha256 {
        config.push_str("[extensions]\n\tobjectformat = sha256\n");
    }
    config.push_str(&format!(
        "[remote \"origin\"]\n\turl = {}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
        quote(g.url)
    ));
    if let (Some(branch), true) = (g.branch, g.tracks) {
        config.push_str(&format!(
            "[branch {}]\n\tremote = origin\n\tmerge = refs/heads/{branch}\n",
            quote(branch)
        ));
    }
    fs::write(dir.join("config"), config)?;
    // Written last: git takes a directory for a repository once it has a HEAD.
    fs::write(dir.join("HEAD"), head)
}

/// `value` as a quoted value (or subsection name) of a git config file.
pub(crate) fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_quoted() {
        assert_eq!(quote("file:///r"), "\"file:///r\"");
        assert_eq!(quote("a\"b\\c #;d"), "\"a\\\"b\\\\c #;d\"");
    }
}
