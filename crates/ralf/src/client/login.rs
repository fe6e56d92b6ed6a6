//! `ralf login` and `ralf logout`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::cli::{ClientArgs, LoginArgs};
use super::settings::{self, Stored};
use super::ui::Ui;
use super::{Failure, connect, find_project};

/// Logs in with a password (or takes a given token), checks the token, and stores it with
/// the server's address and a default project.
pub async fn login(args: LoginArgs) -> Result<ExitCode, Failure> {
    let path = settings::config_path()?;
    let stored = settings::load(&path)?;
    let target = settings::resolve(&args.client, &stored, &path)?;
    let url = target.url.value.clone();
    let ui = Ui::new(args.client.json, args.client.color);

    let given_token = if args.token_stdin {
        Some(read_line("the token")?)
    } else {
        args.client.token.clone().filter(|t| !t.trim().is_empty())
    };
    let anonymous = connect(&args.client, &url, None, &ui)?;
    let token = match given_token {
        Some(token) => token,
        None => {
            let user = match &args.user {
                Some(user) => user.clone(),
                None if std::io::stdin().is_terminal() => {
                    eprint!("Login: ");
                    let _ = std::io::stderr().flush();
                    read_line("the login")?
                }
                None => {
                    return Err(Failure::usage(
                        "--user is needed when standard input is not a terminal",
                    ));
                }
            };
            let password = if args.password_stdin {
                read_line("the password")?
            } else if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
                rpassword::prompt_password(format!("Password for {user} at {url}: "))
                    .map_err(|e| Failure::local(format!("reading the password: {e}")))?
            } else {
                return Err(Failure::usage(
                    "no terminal to ask for the password: pass --password-stdin and send it on \
                     standard input",
                ));
            };
            anonymous
                .create_token(&user, &password, &token_name())
                .await?
                .id
        }
    };
    let client = connect(&args.client, &url, Some(token.clone()), &ui)?;
    let me = client.user().await?;

    let project = match &target.project {
        Some(chosen) if !chosen.stored => {
            let projects = client.projects().await?;
            let found = match chosen.value.parse::<i64>() {
                Ok(id) => projects.iter().find(|p| p.id == id),
                Err(_) => find_project(&projects, &chosen.value),
            };
            Some(found.cloned().ok_or_else(|| {
                Failure::refused(format!(
                    "no project {:?} (from {}) for {} on this server",
                    chosen.value, chosen.source, me.username
                ))
            })?)
        }
        _ => {
            let projects = client.projects().await?;
            let kept = stored.project_id.filter(|_| {
                stored
                    .url
                    .as_deref()
                    .is_some_and(|u| settings::same_server(u, &url))
            });
            match (
                kept.and_then(|id| projects.iter().find(|p| p.id == id)),
                projects.as_slice(),
            ) {
                (Some(p), _) => Some(p.clone()),
                (None, [only]) => Some(only.clone()),
                _ => None,
            }
        }
    };

    // A token stored earlier for the same server is replaced: delete it there.
    if let Some(old) = stored.token.as_ref().filter(|old| {
        **old != token
            && stored
                .url
                .as_deref()
                .is_some_and(|u| settings::same_server(u, &url))
    }) && let Ok(previous) = connect(&args.client, &url, Some(old.clone()), &ui)
    {
        let _ = previous.delete_token(old).await;
    }

    settings::save(
        &path,
        &Stored {
            url: Some(client.url().to_string()),
            token: Some(token),
            user: Some(me.username.clone()),
            project_id: project.as_ref().map(|p| p.id),
        },
    )?;
    if ui.json {
        ui.json_out(
            &serde_json::json!({
                "url": client.url(), "user": me, "config": path,
                "project": project,
            }),
            false,
        );
        return Ok(ExitCode::SUCCESS);
    }
    ui.out(&format!(
        "Logged in to {} as {}; the API token is stored in {}",
        client.url(),
        me.username,
        path.display()
    ));
    match &project {
        Some(p) => ui.out(&format!("Default project: {} (id {})", p.name, p.id)),
        None => ui.out(
            "No default project: pass --project to a command, set SEMAPHORE_PROJECT_ID, or run \
             `ralf login --project ID|NAME`",
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes the stored token on the server (when it can be reached) and forgets it.
pub async fn logout(args: ClientArgs) -> Result<ExitCode, Failure> {
    let path = settings::config_path()?;
    let mut stored = settings::load(&path)?;
    let ui = Ui::new(args.json, args.color);
    let (Some(url), Some(token)) = (stored.url.clone(), stored.token.clone()) else {
        if ui.json {
            ui.json_out(&serde_json::json!({"logged_out": false}), false);
        } else {
            ui.out("Not logged in: no token is stored");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let client = connect(&args, &url, Some(token.clone()), &ui)?;
    let deleted = client.delete_token(&token).await;
    stored.token = None;
    settings::save(&path, &stored)?;
    if ui.json {
        let error = deleted.as_ref().err().map(|e| e.to_string());
        ui.json_out(
            &serde_json::json!({"logged_out": true, "url": url, "deleted_on_server": deleted.is_ok(), "error": error}),
            false,
        );
        return Ok(ExitCode::SUCCESS);
    }
    match deleted {
        Ok(()) => ui.out(&format!("Logged out of {url}: the token is deleted")),
        Err(e) => ui.out(&format!(
            "Forgot the token; deleting it on {url} failed ({e}): delete it in the web UI"
        )),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of standard input, without its line break.
fn read_line(what: &str) -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::local(format!("reading {what} from standard input: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        return Err(Failure::usage(format!("{what} must not be empty")));
    }
    Ok(line)
}

/// `ralf cli (host)`: how the token shows in the user's token list.
fn token_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| settings::env("HOSTNAME"));
    match host {
        Some(host) => format!("ralf cli ({host})"),
        None => "ralf cli".into(),
    }
}
