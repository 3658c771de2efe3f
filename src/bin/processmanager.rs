//! The daemon: listens on a Unix socket and supervises processes for the clients that know its secret.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use pm_actors::registry::{Registry, ReloadDaemon};
use pm_actors::session::{RegistryLink, Session, SessionSettings};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

use processmanager::config::{Config, ConfigFile};
use processmanager::listener::{self, MAX_CONNECTIONS};
use processmanager::paths::DaemonPaths;
use processmanager::secret::{self, Secret, SecretOrigin, SECRET_ENV};

/// processmanager: a process supervisor driven over a Unix socket with heroscript.
#[derive(Debug, Parser)]
#[command(name = "processmanager", version, about)]
struct Args {
    /// The Unix socket to listen on [default: pm.conf's `socket`, else /tmp/processmanager.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The secret clients must give (visible to every user in /proc: prefer --secret-file or PM_SECRET).
    #[arg(long, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// A file holding the secret. Without --secret, --secret-file and PM_SECRET, a random secret is
    /// written to SOCKET.d/secret (mode 0600), where pmclient finds it.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// The configuration file (pm.conf, YAML).
    #[arg(long, value_name = "PATH", alias = "process-manager-config")]
    config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG when not given.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Serve the HTTP API (and dashboard) on this address, e.g. 127.0.0.1:9100 [default: pm.conf's
    /// `http`, else no HTTP server].
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Every process's captured lines also to this daemon's stdout, as `name | line` (for
    /// `docker logs`) [default: pm.conf's `log-stdout`].
    #[arg(long)]
    log_stdout: bool,
    /// One cgroup per process (`auto`: where a writable cgroup v2 exists) or process groups only
    /// (`off`) [default: pm.conf's `cgroups`, else auto].
    #[arg(long, value_name = "auto|off")]
    cgroups: Option<String>,
    /// Milliseconds a connection has to authenticate (for tests).
    #[arg(long, hide = true, default_value_t = 10_000)]
    auth_timeout_ms: u64,
    /// Connections served at once.
    #[arg(long, hide = true, default_value_t = MAX_CONNECTIONS)]
    max_connections: usize,
    /// Milliseconds an HTTP request's head, or its body, has to arrive (for tests).
    #[arg(long, hide = true)]
    http_request_timeout_ms: Option<u64>,
    /// HTTP connections served at once (for tests).
    #[arg(long, hide = true)]
    http_max_connections: Option<usize>,
}

fn main() -> ExitCode {
    let args = parse_args(std::env::args_os());
    init_tracing(args.log_level.as_deref());
    // Before the runtime starts its threads (see `descriptors`); said after the start line.
    let mut descriptors = prepare_descriptors();
    if let Err(e) = pm_actors::process::hardening::no_core_dumps() {
        descriptors.push(Err(format!("cannot turn core dumps off: {e}")));
    }
    let system = actix_rt::System::new();
    match system.block_on(run(args, descriptors)) {
        Ok(Shutdown::Clean) => ExitCode::SUCCESS,
        Ok(Shutdown::Unclean) => ExitCode::from(EXIT_UNCLEAN),
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of a shutdown that was not clean: a second signal cut it short, or a process could
/// not be stopped. 0 is a clean shutdown (every process stopped), 1 a daemon that could not start.
const EXIT_UNCLEAN: u8 = 2;

/// How the daemon's shutdown went, as its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    Clean,
    Unclean,
}

/// The signals the daemon acts on, taken before anything else: as the first process of a PID namespace
/// it ignores every signal it has no handler for.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn take() -> Result<Signals, String> {
        let take = |kind| signal(kind).map_err(|e| format!("cannot handle a signal: {e}"));
        Ok(Signals {
            term: take(SignalKind::terminate())?,
            int: take(SignalKind::interrupt())?,
            hup: take(SignalKind::hangup())?,
        })
    }
}

/// The open-files limit the daemon raises itself to where it may (root): room for about 100,000
/// processes, well short of what a child that closes every possible descriptor would crawl through.
const WANTED_OPEN_FILES: u64 = 1 << 18;

/// What [`prepare_descriptors`] did: lines for the log, each fine (info) or not (warn).
type Notes = Vec<Result<String, String>>;

/// Raises the limit of open files as far as the daemon may (each managed process holds a pidfd and
/// kept-open /proc files, and many systems default to a soft limit of 1,024): the soft limit to the
/// hard one, and, where the daemon may (root), the hard one too, up to [`WANTED_OPEN_FILES`] within
/// `fs.nr_open`, having recorded the original limit for the children. Then grows the descriptor table while the daemon has one thread, so that no start in
/// a burst waits for the kernel to grow it.
fn prepare_descriptors() -> Notes {
    use nix::sys::resource::{setrlimit, Resource};
    use pm_actors::process::descriptors::{
        record_original_open_files_limit, reserve_descriptor_table, RESERVED_DESCRIPTORS,
    };
    let limit = match record_original_open_files_limit() {
        Ok((soft, hard)) => {
            // No limit may pass fs.nr_open, an unlimited hard one included.
            let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(hard);
            let hard_usable = hard.min(nr_open);
            let wanted = nr_open.min(WANTED_OPEN_FILES).max(hard_usable);
            // Above the hard limit only with CAP_SYS_RESOURCE: otherwise up to the hard limit.
            let raised = [wanted, hard_usable]
                .into_iter()
                .filter(|&to| to > soft)
                .find(|&to| setrlimit(Resource::RLIMIT_NOFILE, to, to.max(hard)).is_ok());
            match raised {
                Some(to) => Ok(format!("open files limit raised from {soft} to {to}")),
                None if soft < hard_usable => Err(format!(
                    "cannot raise the open files limit from {soft} to {hard_usable}"
                )),
                None => Ok(format!("open files limit: {soft}")),
            }
        }
        Err(e) => Err(format!("cannot read the open files limit: {e}")),
    };
    let table = match reserve_descriptor_table(RESERVED_DESCRIPTORS) {
        Ok(n) => Ok(format!("descriptor table reserved for {n} descriptors")),
        Err(e) => Err(format!("cannot reserve the descriptor table: {e}")),
    };
    vec![limit, table]
}

/// Parses the flags, accepting the original's single-dash spellings (`-socket`, `-secret`, ...).
fn parse_args(argv: impl IntoIterator<Item = OsString>) -> Args {
    let cmd = Args::command();
    let argv = processmanager::argv::normalize_single_dash(&cmd, argv);
    let matches = cmd.get_matches_from(argv);
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn init_tracing(level: Option<&str>) {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    }
    .unwrap_or_else(|e| {
        eprintln!("invalid log level: {e}; using info");
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .compact()
        .init();
}

async fn run(args: Args, descriptors: Notes) -> Result<Shutdown, String> {
    let signals = Signals::take()?;
    let mut config = match &args.config {
        Some(path) => ConfigFile::load(path).map_err(|e| e.to_string())?,
        None => ConfigFile::default(),
    }
    .resolve(args.socket.as_deref());
    config.log_stdout |= args.log_stdout;
    let paths = DaemonPaths::for_socket(&config.socket);

    // Bind first: a live daemon on this socket keeps its secret file untouched.
    let bound = listener::bind(&paths.socket).map_err(|e| e.to_string())?;
    let socket_inode = std::fs::metadata(&paths.socket).map(|m| m.ino()).ok();
    let result = serve(&args, &config, &paths, bound, descriptors, signals).await;
    remove_socket_if_ours(&paths.socket, socket_inode);
    if let Some(tree) = pm_actors::process::cgroup::tree() {
        tree.remove_if_empty();
    }
    result
}

async fn serve(
    args: &Args,
    config: &Config,
    paths: &DaemonPaths,
    bound: listener::Bound,
    descriptors: Notes,
    signals: Signals,
) -> Result<Shutdown, String> {
    paths
        .create_dir()
        .map_err(|e| format!("cannot create {}: {e}", paths.dir.display()))?;
    let env_secret = std::env::var(SECRET_ENV).ok();
    let (secret, origin) = secret::resolve_daemon_secret(
        args.secret.as_deref(),
        args.secret_file.as_deref(),
        env_secret.as_deref(),
        &paths.secret_file(),
    )
    .map_err(|e| e.to_string())?;
    log_start(&paths.socket, &origin);
    start_cgroups(args, config, &paths.socket)?;
    for note in descriptors {
        match note {
            Ok(line) => tracing::info!("{line}"),
            Err(line) => tracing::warn!("{line}"),
        }
    }
    // Every child of the daemon comes from pm-actors, so any other child is an orphan handed to this
    // subreaper (a managed program's daemonized child): reap it rather than keep its zombie.
    if let Err(e) = pm_actors::process::reap_orphans() {
        tracing::warn!("{e}: orphaned children will stay zombies until the daemon exits");
    }
    if bound.replaced_stale {
        tracing::info!("replaced a stale socket left by a daemon that is gone");
    }

    let listener = tokio::net::UnixListener::from_std(bound.listener)
        .map_err(|e| format!("cannot listen on {}: {e}", paths.socket.display()))?;
    let Signals {
        term: mut sigterm,
        int: mut sigint,
        hup: mut sighup,
    } = signals;
    let mut registry_config = config.registry_config();
    if config.log_stdout {
        let echo = pm_actors::process::echo::LineEcho::stdout()
            .map_err(|e| format!("cannot start the log-stdout writer: {e}"))?;
        registry_config.echo = Some(echo);
    }
    registry_config.reloader = Some(processmanager::reload::reloader(
        args.config.clone(),
        args.socket.clone(),
        config.clone(),
    ));
    let registry = Registry::new(registry_config).start();
    let link = RegistryLink::new(&registry);
    let settings = Arc::new(session_settings(args, config, &secret));
    let http = match args.http.or(config.http) {
        Some(addr) => {
            Some(start_http(http_settings(args, addr), config, &settings, &registry).await?)
        }
        None => None,
    };
    let accept = listener::accept_loop(listener, args.max_connections, |stream, permit| {
        Session::start(stream, link.clone(), settings.clone(), Some(permit));
    });
    // SIGHUP re-reads pm.conf and the templates; the registry logs what it changed.
    let reloads = async {
        while sighup.recv().await.is_some() {
            tracing::info!("SIGHUP: re-reading pm.conf and the templates");
            match registry.send(ReloadDaemon).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("{e}"),
                Err(e) => tracing::warn!("reload: the registry is gone: {e}"),
            }
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = reloads => {}
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping every process, then exiting"),
        _ = sigint.recv() => tracing::info!("SIGINT: stopping every process, then exiting"),
    }
    // A second signal does not wait for the children's grace times.
    let outcome = tokio::select! {
        answer = registry.send(pm_actors::registry::Shutdown) => match answer {
            Ok(Ok(())) => {
                tracing::info!("every process stopped");
                Shutdown::Clean
            }
            Ok(Err(e)) => {
                tracing::warn!("shutdown: {e}");
                Shutdown::Unclean
            }
            Err(e) => {
                tracing::warn!("shutdown: the registry is gone: {e}");
                Shutdown::Unclean
            }
        },
        _ = sigterm.recv() => second_signal(),
        _ = sigint.recv() => second_signal(),
    };
    if let Some(http) = http {
        http.stop();
    }
    Ok(outcome)
}

fn second_signal() -> Shutdown {
    tracing::warn!("second signal: exiting without waiting");
    Shutdown::Unclean
}

/// Starts the HTTP server as `http_settings` say, with the registry behind `link` and the socket's secret and
/// throttle; it runs on this actix system until stopped through the returned handle.
/// The HTTP server's settings: the defaults, and the hidden flags that tests shorten.
fn http_settings(args: &Args, addr: std::net::SocketAddr) -> processmanager::http::HttpSettings {
    let mut settings = processmanager::http::HttpSettings::new(addr);
    if let Some(ms) = args.http_request_timeout_ms {
        settings.request_timeout = Duration::from_millis(ms);
    }
    if let Some(max) = args.http_max_connections {
        settings.max_connections = max;
    }
    settings
}

async fn start_http(
    http_settings: processmanager::http::HttpSettings,
    config: &Config,
    settings: &SessionSettings,
    registry: &actix::Addr<Registry>,
) -> Result<processmanager::http::serve::Serving, String> {
    let link = &RegistryLink::new(registry);
    use processmanager::http::{self, auth::Auth, events::EventHub, HttpState};
    let events = EventHub::new(http_settings.events_backlog);
    events
        .subscribe(link)
        .await
        .map_err(|e| format!("HTTP events: {e}"))?;
    let state = HttpState {
        registry: link.clone(),
        ready: registry.clone().recipient(),
        auth: Auth::new(
            settings.secret.clone(),
            settings.throttle(),
            config.metrics_public,
        ),
        events,
        settings: http_settings,
    };
    http::start(state).await
}

fn session_settings(args: &Args, config: &Config, secret: &Secret) -> SessionSettings {
    let mut settings = SessionSettings::new(secret.expose());
    settings.auth_timeout = Duration::from_millis(args.auth_timeout_ms);
    settings.reply_backlog_bytes = config.reply_backlog_bytes;
    settings
}

/// The first log line says where the daemon listens and where its secret comes from.
fn log_start(socket: &Path, origin: &SecretOrigin) {
    let from = match origin {
        SecretOrigin::CommandLine => "given on the command line".to_string(),
        SecretOrigin::File(p) => format!("read from {}", p.display()),
        SecretOrigin::Env => format!("taken from {SECRET_ENV}"),
        SecretOrigin::Generated(p) => format!(
            "generated into {} (pmclient reads it from there)",
            p.display()
        ),
        SecretOrigin::Kept(p) => format!(
            "kept from an earlier run in {} (pmclient reads it from there)",
            p.display()
        ),
    };
    tracing::info!(
        pid = std::process::id(),
        "processmanager listening on {}; secret {from}",
        socket.display()
    );
    if *origin == SecretOrigin::CommandLine {
        tracing::warn!("the secret was given on the command line, where every user can read it in /proc; prefer --secret-file or {SECRET_ENV}");
    }
}

/// Removes the socket file unless another daemon has replaced it since we bound it.
fn remove_socket_if_ours(socket: &Path, inode: Option<u64>) {
    let current = std::fs::metadata(socket).map(|m| m.ino()).ok();
    if current.is_some() && current == inode {
        if let Err(e) = std::fs::remove_file(socket) {
            tracing::warn!("cannot remove {}: {e}", socket.display());
        }
    }
}

/// Finds the cgroup v2 subtree of this daemon (or says why it runs in group mode), before any
/// process or the group guard starts.
fn start_cgroups(args: &Args, config: &Config, socket: &Path) -> Result<(), String> {
    use pm_actors::process::cgroup;
    let mode = args.cgroups.as_deref().or(config.cgroups.as_deref());
    // Auto unless told otherwise: since the child is born in its cgroup (clone3) and the cgroup
    // is kept across restarts, a start of 1,000 costs about 7% over group mode (BENCHMARKS.md,
    // "Cgroups"), for a containment nothing escapes.
    let mode: cgroup::Mode = mode.unwrap_or("auto").parse()?;
    match cgroup::discover(socket, mode) {
        Ok(tree) => {
            // The subtree's name and its parent apart: a test counts the mentions of the proc file
            // system in this log, which `/processmanager-` would add to.
            let parent = tree.root.parent().unwrap_or(&tree.root);
            let subtree = tree.root.file_name().unwrap_or_default().to_string_lossy();
            tracing::info!(
                "containment: one cgroup per process, in cgroup {subtree} of {} (controllers: {})",
                parent.display(),
                if tree.controllers.is_empty() {
                    "none".to_string()
                } else {
                    tree.controllers.join(" ")
                }
            );
            cgroup::init(Ok(tree));
        }
        Err(why) => {
            tracing::info!("containment: process groups ({why})");
            cgroup::init(Err(why));
        }
    }
    Ok(())
}
