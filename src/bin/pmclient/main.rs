//! pmclient: the command line for a processmanager daemon (start, list, status, stop, logs, watch, ...).
//!
//! Exit codes: 0 success, 1 the daemon answered an error, 2 the daemon could not be reached (or the secret
//! was wrong), 64 bad usage.

#![forbid(unsafe_code)]

mod cli;
mod probe_args;
mod stream;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use pm_protocol::command::Command;

use processmanager::client::{Client, ClientError};
use processmanager::paths::DaemonPaths;
use processmanager::secret::{self, SECRET_ENV};

use cli::{Action, Cli};

const EXIT_DAEMON_ERROR: u8 = 1;
const EXIT_UNREACHABLE: u8 = 2;
const EXIT_USAGE: u8 = 64;

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
    match &cli.action {
        Action::Completions { shell } => return print_completions(*shell),
        Action::Man => return print_man_page(),
        _ => {}
    }
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

pub enum Failure {
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

/// Writes the completion script for `shell` to stdout.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "pmclient", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Writes the man page (roff) to stdout.
fn print_man_page() -> ExitCode {
    use std::io::Write;
    let page = clap_mangen::Man::new(Cli::command());
    let mut out = std::io::stdout().lock();
    match page.render(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pmclient: cannot write the man page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the action; answers the exit code (0, or 1 when the daemon answered an error).
async fn run(cli: Cli) -> Result<u8, Failure> {
    let Some(command) = cli::to_command(&cli.action)? else {
        return Ok(0);
    };
    let mut client = connect(&cli).await?;
    if let (Action::Logs { follow: true, .. }, Command::Logs(logs)) = (&cli.action, &command) {
        return stream::follow_logs(&mut client, logs.clone()).await;
    }
    let reply = client.run(&command.to_heroscript()).await?;
    print!("{}", reply.body);
    if reply.is_error() || failed_json_plan(&cli.action, &reply.body) {
        return Ok(EXIT_DAEMON_ERROR);
    }
    match cli.action {
        Action::Watch { .. } => stream::watch_until_a_line(&mut client).await,
        _ => Ok(0),
    }
}

/// Whether an apply's JSON plan says a change failed (the text plan starts with `Error` then).
fn failed_json_plan(action: &Action, body: &str) -> bool {
    matches!(action, Action::Apply { .. })
        && serde_json::from_str::<pm_protocol::plan::ApplyPlan>(body).is_ok_and(|p| p.has_errors())
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
