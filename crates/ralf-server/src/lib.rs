//! ralf's HTTP server: the Semaphore-compatible API under `/api`, the web UI around it,
//! authentication and project roles, and the startup that binds a listener and reports its
//! port (so tests run the real server on port 0).

pub mod access;
pub mod access_key;
pub mod auth;
mod backup;
pub mod catalog;
pub mod client;
pub mod cluster;
mod csrf;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod health;
mod http;
mod login_throttle;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod retention;
pub mod routes;
pub mod scheduler;
pub mod settings;
pub mod state;
pub mod supervise;
pub mod task_queue;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use ralf_core::secret::SecretCipher;
use ralf_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use settings::{AdminBootstrap, DatabaseSettings, Settings};
use state::AppState;

/// A server that is listening. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served on a listener of its own, if it is.
    pub metrics_addr: Option<SocketAddr>,
    pub store: Store,
    /// Live news of the server's tasks, as WebSocket clients hear it.
    pub live: Arc<dispatch::live::LiveHub>,
    shutdown: watch::Sender<bool>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    serving_metrics: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dispatcher: std::sync::Arc<dispatch::Dispatcher>,
    dispatching: tokio::task::JoinHandle<()>,
    /// The heartbeat and the bus to the other servers.
    clustering: Vec<tokio::task::JoinHandle<()>>,
    node_id: Arc<str>,
    /// Held while the server runs on an SQLite file, so no second server opens it.
    _sqlite_lock: Option<std::fs::File>,
    scheduling: tokio::task::JoinHandle<()>,
    /// The catalog's conductor.
    conducting: tokio::task::JoinHandle<()>,
    /// The sender of notifications.
    notifying: tokio::task::JoinHandle<()>,
    /// The daily retention sweep.
    sweeping: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting connections and starting tasks, stops the running tasks (they end
    /// `stopped`), lets running requests finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.dispatching.abort();
        self.scheduling.abort();
        // Before the tasks are stopped: their ends are recorded by the next look of whichever
        // server looks next, not half-way through this shutdown.
        self.conducting.abort();
        self.sweeping.abort();
        self.dispatcher.stop_all().await;
        // After the tasks stopped: what their ends owe is sent by the next server to look,
        // or by this one at its next start.
        self.notifying.abort();
        for task in &self.clustering {
            task.abort();
        }
        self.serving.await.context("server task failed")??;
        if let Some(serving) = self.serving_metrics {
            serving.await.context("metrics server task failed")??;
        }
        if let Err(e) = self.store.remove_node(&self.node_id).await {
            tracing::warn!(error = %e, "could not take this server out of the nodes table");
        }
        self.store.close().await;
        Ok(())
    }

    /// Serves until the process receives Ctrl-C or SIGTERM (heard by `signals`, which were
    /// listened for before the server started), then shuts down gracefully.
    pub async fn run_until_signalled(self, signals: ShutdownSignals) -> anyhow::Result<()> {
        signals.received().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Opens the store (migrating it), creates the first admin if asked, binds the listener and
/// starts serving in the background.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    let cipher = SecretCipher::new(settings.access_key_encryption.as_deref())
        .context("access_key_encryption")?;
    let sqlite_lock = match &settings.database {
        DatabaseSettings::Sqlite { path } => Some(lock_sqlite(path)?),
        DatabaseSettings::Postgres { .. } => None,
    };
    let store = Store::connect(&settings.database)
        .await
        .with_context(|| format!("opening the database {}", settings.database.redacted()))?;
    access_key::adopt(&store, &cipher).await?;
    if let Some(admin) = &settings.admin {
        bootstrap_admin(&store, admin).await?;
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match settings.metrics.listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (metrics_listen)"))?,
        ),
        None => None,
    };
    metrics::install();
    // Tasks run in other directories, so the work directory must not be relative.
    let work_dir = std::path::absolute(&settings.work_dir)
        .with_context(|| format!("work directory {}", settings.work_dir.display()))?;
    let mut exec = ralf_exec::ExecConfig::new(work_dir);
    exec.path_env = settings.exec_path.clone();
    exec.sandbox = settings.sandbox.clone();

    let state = AppState {
        store: store.clone(),
        cipher,
        settings: Arc::new(settings),
        login_throttle: Default::default(),
        password_checks: Default::default(),
        task_queue: Default::default(),
        live: Default::default(),
        node_id: cluster::new_node_id().into(),
        address: addr.to_string().into(),
        schedules: Default::default(),
        catalog: Arc::new(catalog::CatalogEngine::new(exec.clone())),
        notifier: Default::default(),
        health: Default::default(),
    };
    // What an earlier run left active ends now: on SQLite this server is the only one (the
    // lock says so), so every other node is dead; on PostgreSQL, those silent past their lease.
    let leases = match sqlite_lock {
        Some(_) => ralf_store::cluster::Leases {
            node: std::time::Duration::ZERO,
            ..cluster::LEASES
        },
        None => cluster::LEASES,
    };
    cluster::beat(&state, leases).await?;
    let clustering = cluster::start(&state).await?;
    prepare_executor(&exec);
    let dispatcher = dispatch::Dispatcher::new(state.clone(), exec);
    let dispatching = supervise::spawn_restarting("dispatcher", {
        let dispatcher = dispatcher.clone();
        move || dispatcher.clone().run()
    });
    let scheduling = supervise::spawn_restarting("scheduler", {
        let state = state.clone();
        move || scheduler::run(state.clone())
    });
    let conducting = supervise::spawn_restarting("catalog conductor", {
        let state = state.clone();
        move || catalog::run(state.clone())
    });
    let notifying = supervise::spawn_restarting("notifier", {
        let state = state.clone();
        move || notify::run(state.clone())
    });
    let sweeping = supervise::spawn_restarting("retention sweep", {
        let state = state.clone();
        move || retention::run(state.clone())
    });
    let live = state.live.clone();
    let node_id = state.node_id.clone();
    let idle_timeout = state.settings.http_idle_timeout;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut metrics_addr = None;
    let serving_metrics = match metrics_listener {
        Some(listener) => {
            let at = listener.local_addr()?;
            metrics_addr = Some(at);
            tracing::info!(addr = %at, "metrics are served at /metrics");
            let app = metrics::private_app(state.clone());
            let serve = http::serve(listener, app, idle_timeout, shutdown_rx.clone());
            Some(tokio::spawn(serve))
        }
        None => None,
    };
    let app = tower::Layer::layer(
        &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
        routes::app(state),
    );
    let serving = tokio::spawn(http::serve(listener, app, idle_timeout, shutdown_rx));
    tracing::info!(%addr, database = %store.dialect(), node = %node_id, "ralf is listening");
    Ok(RunningServer {
        addr,
        metrics_addr,
        serving_metrics,
        store,
        live,
        shutdown,
        serving,
        dispatcher,
        dispatching,
        clustering,
        node_id,
        _sqlite_lock: sqlite_lock,
        scheduling,
        conducting,
        notifying,
        sweeping,
    })
}

/// Says at start how tasks run (sandboxed, unsandboxed because allowed, or not at all), and
/// ends what an earlier run of this server left in its work directory: task process groups
/// still running and task directories with their secret files.
pub fn prepare_executor(exec: &ralf_exec::ExecConfig) {
    let isolation = ralf_exec::Isolation::of(exec);
    let mode = isolation.describe(exec);
    match isolation {
        ralf_exec::Isolation::Sandboxed(_) => tracing::info!("{mode}"),
        ralf_exec::Isolation::Unsandboxed { .. } => tracing::warn!("{mode}"),
        ralf_exec::Isolation::Refused { .. } => tracing::error!("{mode}"),
    }
    match ralf_exec::remove_leftovers(exec) {
        Ok(found) if found.killed > 0 || found.removed > 0 => tracing::warn!(
            killed = found.killed,
            removed = found.removed,
            work_dir = %exec.work_dir.display(),
            "ended what an earlier run left: task process groups killed, task directories removed"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(
            error = %e,
            work_dir = %exec.work_dir.display(),
            "cannot remove the task directories an earlier run left"
        ),
    }
}

/// Takes the lock that keeps a second server (or `ralf admin rotate-key`) off an SQLite
/// database: several servers need PostgreSQL. The lock is a file beside the database, readable
/// by its owner only, held until the process ends.
pub fn lock_sqlite(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", lock_path.display()))?;
    }
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another ralf server is already running on the SQLite database {}: an SQLite \
             database serves one server only; to run several servers, move to PostgreSQL \
             (ralf admin migrate) and point every server at it",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
        }
    }
}

/// Creates the configured admin unless a user with that login exists; an existing user keeps
/// its password (restarting with the same environment changes nothing).
async fn bootstrap_admin(store: &Store, admin: &AdminBootstrap) -> anyhow::Result<()> {
    if store.user_for_login(&admin.login).await?.is_some() {
        return Ok(());
    }
    let password = admin.password.clone();
    let hash = tokio::task::spawn_blocking(move || ralf_core::password::hash(&password)).await?;
    store
        .create_user(&ralf_store::users::NewUser {
            username: &admin.login,
            name: &admin.name,
            email: &admin.email,
            password_hash: &hash,
            admin: true,
            external: false,
            alert: false,
        })
        .await
        .with_context(|| format!("creating the first admin {:?}", admin.login))?;
    tracing::info!(login = %admin.login, "created the first admin");
    Ok(())
}

/// Ctrl-C and SIGTERM, listened for from the moment this is made. Made before [`start`], so
/// that a signal arriving while the server starts (or right after it first answers) shuts it
/// down gracefully instead of killing it with the default disposition.
pub struct ShutdownSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn listen() -> anyhow::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?,
        })
    }

    async fn received(mut self) {
        #[cfg(unix)]
        let terminate = self.terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
    }
}
