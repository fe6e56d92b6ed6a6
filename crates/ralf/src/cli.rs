//! The command line: which commands exist, their flags, and where each one goes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use crate::client::cli::{
    CatalogCommand, ClientArgs, LoginArgs, ProjectCommand, RunArgs, TaskCommand, TemplateCommand,
};
use crate::config::ServerFlags;

/// What `ralf --help` says about exit codes (also in docs/cli.md).
const EXIT_CODES: &str = "\
Exit codes of the client commands:
  0   done; the task succeeded (run --wait/--follow, task logs --follow)
  1   the task ended in error
  2   the task was stopped or its plan rejected
  3   --timeout passed before the task ended (the task goes on)
  4   the server refused the request (4xx: not logged in, not found, invalid), or it lacks
      the feature; its error message is printed as it is
  5   the server could not be reached or kept failing (after the retries)
  6   a local problem (configuration file, terminal, unexpected answer)
  64  bad command line: unknown flag, missing or malformed value, a survey answer the
      template refuses, no server or project chosen

First steps: ralf login --url http://HOST:3000 --user NAME; ralf template ls;
ralf run TEMPLATE --follow; ralf task ls; ralf task logs ID --follow";

#[derive(Parser)]
#[command(
    name = "ralf",
    version,
    about = "Runs Ansible, OpenTofu/Terraform, Bash and Python from git; speaks Semaphore UI's API",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and run tasks.
    Server(ServerArgs),
    /// A remote executor: register with a server, then take jobs from it.
    #[command(subcommand_required = true)]
    Runner {
        #[command(subcommand)]
        command: crate::runner::RunnerCommand,
    },
    /// Administration that works on the database directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Log in to a ralf or Semaphore server and store an API token for the other commands.
    Login(LoginArgs),
    /// Delete the stored API token (on the server too) and forget it.
    Logout(ClientArgs),
    /// Check that the server answers (needs no login).
    Ping(ClientArgs),
    /// Show the server's version, the logged-in user and what the server supports.
    Info(ClientArgs),
    /// List projects.
    #[command(subcommand_required = true)]
    Project {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// List and show templates.
    #[command(subcommand_required = true)]
    Template {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Start a task of a template, and optionally wait for it or follow its log.
    Run(RunArgs),
    /// List, show, follow, stop, confirm and reject tasks.
    #[command(subcommand_required = true)]
    Task {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// The service catalog: plan, deploy, approve and reject, status, graph.
    #[command(subcommand_required = true)]
    Catalog {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Print a shell completion script: `ralf completions bash > /etc/bash_completion.d/ralf`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print ralf's man page (roff): `ralf man > /usr/share/man/man1/ralf.1`.
    Man,
}

/// Where the configuration and the database are; shared by `server` and `admin`.
#[derive(Args, Clone, Default)]
pub struct DatabaseArgs {
    /// A TOML configuration file (default: none; also RALF_CONFIG or SEMAPHORE_CONFIG_PATH).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite database (default ./data; also RALF_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///path/ralf.db or postgres://user:pass@host/db (also RALF_DB).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

#[derive(Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on (default 127.0.0.1:3000; also RALF_INTERFACE/RALF_PORT, SEMAPHORE_PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Login of the first admin, created at startup if missing (also SEMAPHORE_ADMIN).
    #[arg(long)]
    pub admin_login: Option<String>,
    /// Password of the first admin (also SEMAPHORE_ADMIN_PASSWORD or SEMAPHORE_ADMIN_PASSWORD_FILE).
    #[arg(long)]
    pub admin_password: Option<String>,
    /// Display name of the first admin (also SEMAPHORE_ADMIN_NAME).
    #[arg(long)]
    pub admin_name: Option<String>,
    /// E-mail of the first admin (also SEMAPHORE_ADMIN_EMAIL).
    #[arg(long)]
    pub admin_email: Option<String>,
    /// Run tasks without a sandbox where bubblewrap is missing or cannot create namespaces
    /// (also RALF_ALLOW_UNSANDBOXED_TASKS; off by default: such a server refuses to run tasks).
    #[arg(long)]
    pub allow_unsandboxed_tasks: bool,
    /// The log's format: `human` (one line of text per message) or `json` (one JSON object
    /// per line, with the task and request ids); also RALF_LOG_FORMAT or log_format.
    #[arg(long, value_name = "FORMAT", value_parser = ["human", "json"])]
    pub log_format: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Copy every table of one database into another (SQLite <-> PostgreSQL) and verify it.
    Migrate(MigrateArgs),
    /// Re-seal every stored secret under a new access key, in one transaction (servers stopped).
    RotateKey(RotateKeyArgs),
    /// Apply the retention policies now, then give the freed space back (SQLite: server stopped).
    Vacuum(VacuumArgs),
    /// Write a consistent copy of the whole database to an SQLite file, while servers run.
    Backup(BackupArgs),
    /// Fill the configured database (SQLite or PostgreSQL) from a backup file (servers stopped).
    Restore(RestoreArgs),
}

#[derive(Args)]
pub struct VacuumArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// PostgreSQL: rewrite the tables to return the space to the file system (VACUUM FULL,
    /// which locks each table while it runs); without it the space is reused by new rows.
    #[arg(long)]
    pub full: bool,
}

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The backup file to write (an SQLite database; it must not exist).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The backup file to read (written by `ralf admin backup`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Replace what the configured database holds (in the same transaction as the restore).
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user.
    Add(UserAddArgs),
}

#[derive(Args)]
pub struct UserAddArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The login name.
    #[arg(long)]
    pub login: String,
    /// The display name (default: the login).
    #[arg(long)]
    pub name: Option<String>,
    /// The e-mail address (default: <login>@localhost).
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from standard input (one line) instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    /// Make the user a global administrator.
    #[arg(long)]
    pub admin: bool,
}

#[derive(Args)]
pub struct RotateKeyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The database to copy: sqlite:///path/ralf.db, a file path, or postgres://... (must exist).
    #[arg(long, value_name = "DB")]
    pub from: String,
    /// The database to fill: sqlite:///path/ralf.db, a file path, or postgres://... (must be empty).
    #[arg(long, value_name = "DB")]
    pub to: String,
    /// Empty the target first if it holds rows (in the same transaction as the copy).
    #[arg(long)]
    pub force: bool,
}

impl DatabaseArgs {
    pub fn flags(&self) -> ServerFlags {
        ServerFlags {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            db: self.db.clone(),
            ..Default::default()
        }
    }
}

impl ServerArgs {
    fn flags(&self) -> ServerFlags {
        ServerFlags {
            listen: self.listen.clone(),
            admin_login: self.admin_login.clone(),
            admin_password: self.admin_password.clone(),
            admin_name: self.admin_name.clone(),
            admin_email: self.admin_email.clone(),
            allow_unsandboxed_tasks: self.allow_unsandboxed_tasks,
            log_format: self.log_format.clone(),
            ..self.database.flags()
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use crate::client;
    match cli.command {
        Command::Server(args) => crate::server::run(&args.flags()).await,
        Command::Runner { command } => {
            crate::server::init_logging(&Default::default());
            crate::runner::run(command).await
        }
        Command::Admin {
            command:
                AdminCommand::User {
                    command: UserCommand::Add(args),
                },
        } => crate::admin::add_user(&args).await,
        Command::Admin {
            command: AdminCommand::Migrate(args),
        } => crate::admin::migrate(&args).await,
        Command::Admin {
            command: AdminCommand::RotateKey(args),
        } => crate::admin::rotate_key(&args).await,
        Command::Admin {
            command: AdminCommand::Vacuum(args),
        } => crate::ops::vacuum(&args).await,
        Command::Admin {
            command: AdminCommand::Backup(args),
        } => crate::ops::backup(&args).await,
        Command::Admin {
            command: AdminCommand::Restore(args),
        } => crate::ops::restore(&args).await,
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Login(args) => Ok(client::login(args).await),
        Command::Logout(args) => Ok(client::logout(args).await),
        Command::Ping(args) => Ok(client::ping(args).await),
        Command::Info(args) => Ok(client::info(args).await),
        Command::Project {
            client: args,
            command,
        } => Ok(client::project(args, command).await),
        Command::Template {
            client: args,
            command,
        } => Ok(client::template(args, command).await),
        Command::Run(args) => Ok(client::run(args).await),
        Command::Task {
            client: args,
            command,
        } => Ok(client::task(args, command).await),
        Command::Catalog {
            client: args,
            command,
        } => Ok(client::catalog(args, command).await),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ralf", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
