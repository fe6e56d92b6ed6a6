//! The command line: which commands exist, their flags, and where each one goes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::ServerFlags;

#[derive(Parser)]
#[command(name = "ralf", version, about = "Runs Ansible, OpenTofu/Terraform, Bash and Python from git; speaks Semaphore UI's API")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (and, in later versions, run tasks).
    Server(ServerArgs),
    /// Administration that works on the database directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
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
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
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
            ..self.database.flags()
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(args) => crate::server::run(&args.flags()).await,
        Command::Admin { command: AdminCommand::User { command: UserCommand::Add(args) } } => {
            crate::admin::add_user(&args).await
        }
    }
}
