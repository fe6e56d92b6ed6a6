//! Where a client command finds its server, token and project: flags, then `RALF_*`
//! variables, then Semaphore's (`SEMAPHORE_URL`, `SEMAPHORE_API_TOKEN`,
//! `SEMAPHORE_PROJECT_ID`), then what `ralf login` stored in `<config dir>/ralf/config.toml`.
//! The stored token and project belong to the stored server: they are used only when the
//! server in effect is that one, so a token never travels to another server.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Failure;
use super::cli::ClientArgs;

/// What `ralf login` keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Who logged in (for messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
}

/// A setting and where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Sourced {
    pub value: String,
    pub source: String,
    /// Stored by `ralf login` (not given to this command).
    pub stored: bool,
}

/// The settings in effect for one command.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Sourced,
    pub token: Option<Sourced>,
    pub project: Option<Sourced>,
}

/// `<config dir>/ralf/config.toml`: `$XDG_CONFIG_HOME` or `~/.config` on Linux.
pub fn config_path() -> Result<PathBuf, Failure> {
    dirs::config_dir()
        .map(|dir| dir.join("ralf").join("config.toml"))
        .ok_or_else(|| {
            Failure::local(
                "cannot tell where the configuration goes: neither XDG_CONFIG_HOME nor HOME is set",
            )
        })
}

pub fn load(path: &Path) -> Result<Stored, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Stored::default()),
        Err(e) => return Err(Failure::local(format!("reading {}: {e}", path.display()))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "ralf: warning: {} holds an API token but others may read it; chmod 600 it",
                path.display()
            );
        }
    }
    toml::from_str(&text).map_err(|e| Failure::local(format!("{}: {e}", path.display())))
}

/// Writes the file readable by its owner only (0600, in a 0700 directory), replacing it
/// whole so a reader never sees half of it.
pub fn save(path: &Path, stored: &Stored) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::local(format!("writing {}: {e}", path.display()));
    let dir = path
        .parent()
        .ok_or_else(|| fail(std::io::ErrorKind::InvalidInput.into()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(fail)?;
    let text = format!(
        "# Written by `ralf login`; holds an API token: keep it private.\n{}",
        toml::to_string(stored).map_err(|e| Failure::local(e.to_string()))?
    );
    let temp = dir.join(format!(".config.toml.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|_| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(e));
    }
    Ok(())
}

/// A variable's value; set but empty counts as unset.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The first of: the flag, the `RALF_*` variable, the Semaphore variable.
fn pick(flag: &Option<String>, flag_name: &str, vars: [&str; 2]) -> Option<Sourced> {
    if let Some(value) = flag.as_ref().filter(|v| !v.trim().is_empty()) {
        return Some(Sourced {
            value: value.trim().to_string(),
            source: format!("--{flag_name}"),
            stored: false,
        });
    }
    vars.iter().find_map(|var| {
        env(var).map(|value| Sourced {
            value: value.trim().to_string(),
            source: var.to_string(),
            stored: false,
        })
    })
}

/// The same server, however its address is written.
pub fn same_server(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        let u = u.trim().trim_end_matches('/');
        u.strip_suffix("/api").unwrap_or(u).to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// The settings in effect: flags, then `RALF_*`, then `SEMAPHORE_*`, then the stored ones.
pub fn resolve(args: &ClientArgs, stored: &Stored, path: &Path) -> Result<Target, Failure> {
    let stored_source = format!("{} (from ralf login)", path.display());
    let url = pick(&args.url, "url", ["RALF_URL", "SEMAPHORE_URL"])
        .or_else(|| {
            stored.url.clone().map(|value| Sourced {
                value,
                source: stored_source.clone(),
                stored: true,
            })
        })
        .ok_or_else(|| {
            Failure::usage(
                "which server? Run `ralf login --url http://HOST:3000`, or pass --url or set \
                 SEMAPHORE_URL (or RALF_URL)",
            )
        })?;
    let stored_server = stored
        .url
        .as_deref()
        .is_some_and(|s| same_server(s, &url.value));
    let token = pick(
        &args.token,
        "token",
        ["RALF_API_TOKEN", "SEMAPHORE_API_TOKEN"],
    )
    .or_else(|| {
        stored
            .token
            .clone()
            .filter(|_| stored_server)
            .map(|value| Sourced {
                value,
                source: stored_source.clone(),
                stored: true,
            })
    });
    let project = pick(
        &args.project,
        "project",
        ["RALF_PROJECT_ID", "SEMAPHORE_PROJECT_ID"],
    )
    .or_else(|| {
        stored
            .project_id
            .filter(|_| stored_server)
            .map(|id| Sourced {
                value: id.to_string(),
                source: stored_source.clone(),
                stored: true,
            })
    });
    Ok(Target {
        url,
        token,
        project,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_token_stays_with_its_server() {
        let stored = Stored {
            url: Some("http://a:3000".into()),
            token: Some("secret".into()),
            user: None,
            project_id: Some(4),
        };
        let path = Path::new("/x/config.toml");
        let mut args = ClientArgs::default();
        let t = resolve(&args, &stored, path).unwrap();
        assert_eq!(t.token.unwrap().value, "secret");
        assert_eq!(t.project.unwrap().value, "4");

        args.url = Some("http://a:3000/api/".into());
        assert!(resolve(&args, &stored, path).unwrap().token.is_some());

        args.url = Some("http://b:3000".into());
        let t = resolve(&args, &stored, path).unwrap();
        assert!(t.token.is_none() && t.project.is_none());
        assert_eq!(t.url.source, "--url");
    }

    #[test]
    fn files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ralf/config.toml");
        let stored = Stored {
            url: Some("http://h".into()),
            token: Some("t".into()),
            ..Default::default()
        };
        save(&path, &stored).unwrap();
        save(&path, &stored).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = load(&path).unwrap();
        assert_eq!(back.token.as_deref(), Some("t"));
        assert!(back.project_id.is_none());
    }
}
