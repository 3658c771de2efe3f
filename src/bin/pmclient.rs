//! pmclient: the command line for a processmanager daemon (start, list, status, stop, logs, watch, ...).
//!
//! Exit codes: 0 success, 1 the daemon answered an error, 2 the daemon could not be reached (or the secret
//! was wrong), 64 bad usage.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use pm_protocol::command::{self as cmd, Command, Format};
use pm_protocol::heroscript::parse_duration;
use pm_protocol::logs::LogPage;
use pm_protocol::{response, RestartPolicy};

use processmanager::client::{Client, ClientError};
use processmanager::paths::{DaemonPaths, DEFAULT_SOCKET};
use processmanager::secret::{self, SECRET_ENV};

const EXIT_DAEMON_ERROR: u8 = 1;
const EXIT_UNREACHABLE: u8 = 2;
const EXIT_USAGE: u8 = 64;
/// How often `logs -f` asks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// pmclient: drive a processmanager daemon over its Unix socket.
#[derive(Debug, Parser)]
#[command(
    name = "pmclient",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 the daemon answered an error, 2 the daemon cannot be reached or the secret is wrong."
)]
struct Cli {
    /// The daemon's socket.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The secret (default: PM_SECRET, else the daemon's generated SOCKET.d/secret).
    #[arg(long, global = true, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// A file holding the secret.
    #[arg(long, global = true, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
enum OutputFormat {
    #[default]
    Text,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    Never,
    OnFailure,
    Always,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Define a process and start it (or schedule it with --cron).
    Start(Box<StartArgs>),
    /// Every process, as a table (or JSON).
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// One process's status.
    Status {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Stop a process gracefully (or every live process at once with --all).
    Stop {
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Stop every live process, all at once.
        #[arg(long)]
        all: bool,
    },
    /// Stop a process and start it again.
    Restart {
        #[arg(long)]
        name: String,
    },
    /// Stop a process and forget it.
    Delete {
        #[arg(long)]
        name: String,
    },
    /// SIGKILL a process's whole group.
    Kill {
        #[arg(long)]
        name: String,
    },
    /// Send a signal (HUP, SIGUSR1, 15, ...).
    Signal {
        #[arg(long)]
        name: String,
        #[arg(long)]
        signal: String,
        /// Signal the whole process group.
        #[arg(long)]
        group: bool,
    },
    /// Adopt a running process the daemon did not start.
    Attach {
        #[arg(long)]
        pid: i32,
        #[arg(long)]
        name: String,
    },
    /// The last captured output lines of a process.
    Logs {
        #[arg(long)]
        name: String,
        #[arg(long)]
        lines: Option<usize>,
        /// Keep printing new lines as they come.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print status events as they happen (every process, or the named ones) until interrupted.
    Watch {
        #[arg(long)]
        name: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

#[derive(Debug, Args)]
struct StartArgs {
    #[arg(long)]
    name: String,
    /// A command line, run with `sh -c` (may hold quotes and newlines).
    #[arg(
        long,
        allow_hyphen_values = true,
        required_unless_present = "program",
        conflicts_with = "program"
    )]
    command: Option<String>,
    /// A program run directly (with --arg for each argument) instead of a shell command.
    #[arg(long)]
    program: Option<String>,
    /// One argument of --program (repeat for more).
    #[arg(long = "arg", allow_hyphen_values = true, requires = "program")]
    args: Vec<String>,
    /// Capture output (log file and `logs`).
    #[arg(long)]
    log: bool,
    /// Stop the process this long after it starts (30, 30s, 5m, 1h30m).
    #[arg(long, value_parser = duration)]
    deadline: Option<Duration>,
    /// A cron schedule ("*/5 * * * *"): the process is scheduled rather than started.
    #[arg(long)]
    cron: Option<String>,
    #[arg(long)]
    jobid: Option<String>,
    /// KEY=VALUE added to the environment (repeat for more).
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// Automatic restarts after a failure; -1 for unlimited.
    #[arg(long, allow_negative_numbers = true)]
    restarts: Option<i64>,
    /// When to restart automatically.
    #[arg(long, value_enum)]
    restart_policy: Option<Policy>,
    /// Let the process outlive the daemon.
    #[arg(long)]
    detach: bool,
    /// Also write a template for this process.
    #[arg(long)]
    template: bool,
    /// With --template: start it whenever the daemon starts.
    #[arg(long, requires = "template")]
    run_on_startup: bool,
    /// The signal a stop sends first (default TERM).
    #[arg(long)]
    stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL (default 10s).
    #[arg(long, value_parser = duration)]
    grace: Option<Duration>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    group: Option<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("'{text}' is not a duration (30, 30s, 5m, 1h30m)"))
}

impl StartArgs {
    fn to_command(&self) -> Result<cmd::Start, String> {
        let mut s = match (&self.command, &self.program) {
            (_, Some(program)) => cmd::Start::exec(&self.name, program, self.args.clone()),
            (Some(command), None) => cmd::Start::shell(&self.name, command),
            (None, None) => return Err("give --command or --program".into()),
        };
        s.log = self.log;
        s.deadline = self.deadline;
        s.cron = self.cron.clone();
        s.jobid = self.jobid.clone();
        for kv in &self.env {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--env '{kv}': expected KEY=VALUE"))?;
            s.env.insert(k.to_string(), v.to_string());
        }
        s.cwd = self.cwd.clone();
        s.restarts = self.restarts;
        s.restart_policy = self.restart_policy.map(|p| match p {
            Policy::Never => RestartPolicy::Never,
            Policy::OnFailure => RestartPolicy::OnFailure,
            Policy::Always => RestartPolicy::Always,
        });
        s.detach = self.detach;
        s.template = self.template;
        s.run_on_startup = self.run_on_startup;
        s.stop_signal = self.stop_signal.clone();
        s.grace = self.grace;
        s.user = self.user.clone();
        s.group = self.group.clone();
        Ok(s)
    }
}

fn main() -> ExitCode {
    let command = Cli::command();
    let argv = processmanager::argv::normalize_single_dash(
        &command,
        std::env::args_os().collect::<Vec<OsString>>(),
    );
    let cli = match command
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        // Usage errors exit 64, so that 2 always means "the daemon cannot be reached".
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pmclient: cannot start: {e}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Client(e)) => {
            eprintln!("pmclient: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("pmclient: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Answer(message)) => {
            eprintln!("pmclient: {message}");
            ExitCode::from(EXIT_DAEMON_ERROR)
        }
    }
}

enum Failure {
    Client(ClientError),
    Usage(String),
    /// The daemon answered something this client cannot read.
    Answer(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

/// Runs the action; answers the exit code (0, or 1 when the daemon answered an error).
async fn run(cli: Cli) -> Result<u8, Failure> {
    let command = match &cli.action {
        Action::Start(args) => Command::Start(args.to_command().map_err(Failure::Usage)?),
        Action::List { format } => Command::List(cmd::List {
            format: (*format).into(),
        }),
        Action::Status { name, format } => Command::Status(cmd::Status {
            name: name.clone(),
            format: (*format).into(),
        }),
        Action::Stop {
            name: Some(name), ..
        } => Command::Stop(cmd::Stop::named(name)),
        Action::Stop { name: None, .. } => Command::Stop(cmd::Stop::all()),
        Action::Restart { name } => Command::Restart(cmd::Restart { name: name.clone() }),
        Action::Delete { name } => Command::Delete(cmd::Delete { name: name.clone() }),
        Action::Kill { name } => Command::Kill(cmd::Kill { name: name.clone() }),
        Action::Signal {
            name,
            signal,
            group,
        } => Command::Signal(cmd::Signal {
            name: name.clone(),
            signal: signal.clone(),
            group: *group,
        }),
        Action::Attach { pid, name } => Command::Attach(cmd::Attach {
            pid: *pid,
            name: name.clone(),
        }),
        Action::Logs { name, lines, .. } => Command::Logs(cmd::Logs {
            name: name.clone(),
            lines: *lines,
            ..cmd::Logs::default()
        }),
        Action::Watch { name, format } => Command::Watch(cmd::Watch {
            names: name.clone(),
            format: (*format).into(),
        }),
    };
    let mut client = connect(&cli).await?;
    if let (Action::Logs { follow: true, .. }, Command::Logs(logs)) = (&cli.action, &command) {
        return follow_logs(&mut client, logs.clone()).await;
    }
    let reply = client.run(&command.to_heroscript()).await?;
    print!("{}", reply.body);
    if reply.is_error() {
        return Ok(EXIT_DAEMON_ERROR);
    }
    match cli.action {
        Action::Watch { .. } => stream_frames(&mut client).await,
        _ => Ok(0),
    }
}

async fn connect(cli: &Cli) -> Result<Client, Failure> {
    let paths = DaemonPaths::for_socket(&cli.socket);
    let env = std::env::var(SECRET_ENV).ok();
    let secret = secret::resolve_client_secret(
        cli.secret.as_deref(),
        cli.secret_file.as_deref(),
        env.as_deref(),
        &paths.secret_file(),
    )
    .map_err(|e| {
        let reason = if cli.socket.exists() {
            format!("{e}; give --secret, --secret-file or {SECRET_ENV}")
        } else {
            format!("{e}; the daemon is not running")
        };
        ClientError::NoSecret {
            socket: cli.socket.clone(),
            reason,
        }
    })?;
    Ok(Client::connect(&cli.socket, secret.expose()).await?)
}

/// Prints every frame until the daemon closes the connection (or the user interrupts).
async fn stream_frames(client: &mut Client) -> Result<u8, Failure> {
    while let Some(frame) = client.read_reply().await? {
        print!("{}", frame.body);
    }
    Ok(0)
}

/// Prints the last lines, then every new line once, in order: each read asks for the lines after the
/// newest one the last read saw (`after:`, in JSON, which carries the lines' numbers), and prints them
/// as the daemon's text would. Lines that came and went between two reads (more than the daemon keeps
/// in memory) are counted on stderr, never printed twice or silently lost.
async fn follow_logs(client: &mut Client, mut logs: cmd::Logs) -> Result<u8, Failure> {
    use std::io::Write;
    logs.format = Format::Json;
    loop {
        let reply = client
            .run(&Command::Logs(logs.clone()).to_heroscript())
            .await?;
        if reply.is_error() {
            // As any command's error at first; once lines are flowing, apart from them.
            if logs.after.is_none() {
                print!("{}", reply.body);
            } else {
                eprint!("{}", reply.body);
            }
            return Ok(EXIT_DAEMON_ERROR);
        }
        let page: LogPage = serde_json::from_str(&reply.body).map_err(|e| {
            Failure::Answer(format!(
                "the daemon's logs answer is not the JSON expected: {e}"
            ))
        })?;
        if logs.after.is_some() && page.skipped > 0 {
            eprintln!(
                "pmclient: {} lines came and went between two reads (the daemon keeps the last \
                 ones in memory); the log file has them",
                page.skipped
            );
        }
        let mut out = std::io::stdout().lock();
        let written = out
            .write_all(response::logs_text(&page.lines).as_bytes())
            .and_then(|()| out.flush());
        if written.is_err() {
            // The reader is gone (a closed pipe): following is over.
            return Ok(0);
        }
        logs.after = Some(page.next);
        logs.lines = None;
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}
