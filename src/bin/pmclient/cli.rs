//! pmclient's arguments (clap) and the protocol command each subcommand sends.
//!
//! Relative paths are the user's: `start` sends pmclient's own working directory as `cwd` when none is
//! given, and makes a relative `--cwd`, and a `--program` holding a `/`, absolute against it, because the
//! daemon's working directory is none of the user's business.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use pm_protocol::command::{self as cmd, Command, Format};
use pm_protocol::heroscript::parse_duration;
use pm_protocol::stack::StackFile;
use pm_protocol::{RestartPolicy, SignalName};

use processmanager::paths::DEFAULT_SOCKET;

use crate::probe_args::ProbeArgs;
use crate::Failure;

const GLOBAL_OPTIONS: &str = "Global options";
const EXIT_CODES_HELP: &str = "Exit codes:
  0   success
  1   the daemon answered an error (an unknown process, a bad value, ...)
  2   the daemon cannot be reached, or the secret is wrong
  64  bad usage: pmclient could not read its own arguments";

/// Drive a processmanager daemon over its Unix socket.
#[derive(Debug, Parser)]
#[command(name = "pmclient", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The daemon's socket.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET, help_heading = GLOBAL_OPTIONS)]
    pub socket: PathBuf,
    /// The secret (default: PM_SECRET, else the daemon's generated SOCKET.d/secret).
    #[arg(long, global = true, conflicts_with = "secret_file", help_heading = GLOBAL_OPTIONS)]
    pub secret: Option<String>,
    /// A file holding the secret.
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL_OPTIONS)]
    pub secret_file: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum OutputFormat {
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
pub enum Policy {
    Never,
    OnFailure,
    Always,
}

/// The one process a command is about: `pmclient stop web` or `pmclient stop --name web`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The process's name.
    #[arg(value_name = "NAME")]
    process: Option<String>,
    /// The process's name (the same as NAME).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

impl Target {
    fn name(&self) -> String {
        self.process
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Define a process and start it (or schedule it with --cron).
    Start(Box<StartArgs>),
    /// Every process, as a table (or JSON).
    List {
        /// A table, or a JSON array.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// One process's status.
    Status {
        #[command(flatten)]
        target: Target,
        /// Key: value lines, or a JSON object.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Stop a process gracefully (or every live process at once with --all).
    #[command(group(ArgGroup::new("which").required(true).args(["process", "name", "all"])))]
    Stop {
        /// The process's name.
        #[arg(value_name = "NAME")]
        process: Option<String>,
        /// The process's name (the same as NAME).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Stop every live process, all at once.
        #[arg(long)]
        all: bool,
    },
    /// Stop a process and start it again.
    Restart {
        #[command(flatten)]
        target: Target,
    },
    /// Stop a process and forget it.
    Delete {
        #[command(flatten)]
        target: Target,
    },
    /// SIGKILL a process's whole group.
    Kill {
        #[command(flatten)]
        target: Target,
    },
    /// Send a signal (HUP, SIGUSR1, 15, ...).
    Signal {
        #[command(flatten)]
        target: Target,
        /// The signal: a name with or without SIG (HUP, SIGUSR1) or a number (15).
        #[arg(long)]
        signal: String,
        /// Signal the whole process group.
        #[arg(long)]
        group: bool,
    },
    /// Adopt a running process the daemon did not start.
    Attach {
        #[command(flatten)]
        target: Target,
        /// The pid of the running process to adopt.
        #[arg(long)]
        pid: i32,
    },
    /// The last captured output lines of a process.
    Logs {
        #[command(flatten)]
        target: Target,
        /// How many lines, from the end ("all": every line the daemon keeps in memory).
        #[arg(short = 'n', long, default_value = "all")]
        lines: LineCount,
        /// Keep printing new lines as they come.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Text lines, or JSON (one object; with -f, one object per line).
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Print status events as they happen (every process, or the named ones) until a line on standard
    /// input, or Ctrl-C.
    Watch {
        /// Only these processes.
        #[arg(value_name = "NAME")]
        processes: Vec<String>,
        /// Only this process (repeat for more; the same as NAME).
        #[arg(long, value_name = "NAME")]
        name: Vec<String>,
        /// One text line per event, or one JSON object per event.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Make the daemon match a stack file (YAML or JSON) and print the plan it carried out: `+ new`,
    /// `~ changed` (restarted), `= unchanged` (not touched), `- pruned`.
    Apply {
        /// The stack file; relative paths in it are relative to its folder.
        #[arg(short = 'f', long = "file", value_name = "PATH")]
        file: PathBuf,
        /// Also delete the processes the file does not name.
        #[arg(long)]
        prune: bool,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The plan as text lines, or JSON.
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Re-read the daemon's pm.conf and template folder, and apply the templates as a diff (as SIGHUP).
    Reload,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print pmclient's man page (roff) to standard output.
    Man,
}

/// `logs --lines`: a count, or every line the daemon keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct LineCount(Option<usize>);

impl std::str::FromStr for LineCount {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "all" {
            return Ok(LineCount(None));
        }
        text.parse()
            .map(|n| LineCount(Some(n)))
            .map_err(|_| format!("'{text}' is not a number of lines (or 'all')"))
    }
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    target: Target,
    /// A command line, run with `sh -c` (may hold quotes and newlines).
    #[arg(
        long,
        allow_hyphen_values = true,
        required_unless_present = "program",
        conflicts_with = "program"
    )]
    command: Option<String>,
    /// A program run directly, with --arg for each argument (./x: pmclient's, x: looked up in PATH).
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
    /// A cron schedule ("*/5 * * * *", "@daily"): the process is scheduled rather than started.
    #[arg(long)]
    cron: Option<String>,
    /// A job id of the caller's, carried in the start's answer frame and in the status.
    #[arg(long)]
    jobid: Option<String>,
    /// KEY=VALUE added to the environment (repeat for more).
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// A dotenv file read at each start (repeat for more; --env wins over it).
    #[arg(long, value_name = "PATH")]
    env_file: Vec<String>,
    /// The working directory (default: pmclient's own; a relative one is taken from there).
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
    /// The signal a stop sends first: a name (TERM, SIGINT) or a number (default TERM).
    #[arg(long)]
    stop_signal: Option<SignalName>,
    /// Time between the stop signal and SIGKILL (default 10s).
    #[arg(long, value_parser = duration)]
    grace: Option<Duration>,
    /// Run as this user, a name or a uid (the daemon must run as root).
    #[arg(long)]
    user: Option<String>,
    /// Run with this group, a name or a gid (the daemon must run as root).
    #[arg(long)]
    group: Option<String>,
    // Readiness and health (issue 14, part D).
    #[command(flatten)]
    probes: ProbeArgs,
    // Dependencies (issue 14, part E).
    /// Start only once this process holds: NAME (ready), NAME:ready, NAME:started or
    /// NAME:completed (exited 0). Repeatable, in order.
    #[arg(long, value_parser = pm_protocol::Dependency::parse)]
    after: Vec<pm_protocol::Dependency>,
    /// Restart it after a dependency of --after restarts.
    #[arg(long)]
    restart_with: bool,
    // Limits (issue 18): need the cgroup v2 controller, or the start is refused.
    /// Memory past which the OOM killer kills in the process's cgroup (512M, 2G).
    #[arg(long, value_parser = size, value_name = "SIZE")]
    memory_max: Option<u64>,
    /// Memory past which the process's cgroup is throttled (512M, 2G).
    #[arg(long, value_parser = size, value_name = "SIZE")]
    memory_high: Option<u64>,
    /// CPU in percent of one core (50%, 150%).
    #[arg(long, value_parser = cpu, value_name = "PERCENT")]
    cpu_max: Option<u32>,
    /// The most processes and threads in the process's cgroup.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pids_max: Option<u64>,
}

fn size(text: &str) -> Result<u64, String> {
    pm_protocol::limits::parse_size(text)
        .ok_or_else(|| format!("'{text}': expected {}", pm_protocol::limits::SIZE_EXPECTED))
}

fn cpu(text: &str) -> Result<u32, String> {
    pm_protocol::limits::parse_cpu(text)
        .ok_or_else(|| format!("'{text}': expected {}", pm_protocol::limits::CPU_EXPECTED))
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("'{text}' is not a duration (30, 30s, 5m, 1h30m)"))
}

/// `path` made absolute against `here` when it is relative and `here` is known, without its `.`
/// components (`./run.sh` is `/here/run.sh`); `..` stays, as a symlink may stand before it.
fn absolute(path: &str, here: Option<&Path>) -> String {
    match here {
        Some(here) if Path::new(path).is_relative() => {
            let joined: PathBuf = here.join(path).components().collect();
            joined.to_string_lossy().into_owned()
        }
        _ => path.to_string(),
    }
}

impl StartArgs {
    /// The start command, with relative paths made absolute against `here` (pmclient's working
    /// directory, `None` when it cannot be read), which is also the process's default working
    /// directory.
    fn to_command(&self, here: Option<&Path>) -> Result<cmd::Start, String> {
        let name = self.target.name();
        let mut s = match (&self.command, &self.program) {
            // A bare name is for the daemon's PATH search; one with a slash is a path of the user's.
            (_, Some(program)) if program.contains('/') => {
                cmd::Start::exec(&name, absolute(program, here), self.args.clone())
            }
            (_, Some(program)) => cmd::Start::exec(&name, program, self.args.clone()),
            (Some(command), None) => cmd::Start::shell(&name, command),
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
        s.env_files = self.env_file.iter().map(|f| absolute(f, here)).collect();
        s.cwd = match &self.cwd {
            Some(cwd) => Some(absolute(cwd, here)),
            None => here.map(|h| h.to_string_lossy().into_owned()),
        };
        s.restarts = self.restarts;
        s.restart_policy = self.restart_policy.map(|p| match p {
            Policy::Never => RestartPolicy::Never,
            Policy::OnFailure => RestartPolicy::OnFailure,
            Policy::Always => RestartPolicy::Always,
        });
        s.detach = self.detach;
        s.template = self.template;
        s.run_on_startup = self.run_on_startup;
        s.stop_signal = self.stop_signal;
        s.grace = self.grace;
        s.user = self.user.clone();
        s.group = self.group.clone();
        s.probes = self.probes.to_options();
        s.after.clone_from(&self.after);
        s.restart_with = self.restart_with;
        s.limits = pm_protocol::ResourceLimits {
            memory_max: self.memory_max,
            memory_high: self.memory_high,
            cpu_max: self.cpu_max,
            pids_max: self.pids_max,
        };
        Ok(s)
    }
}

/// Reads and checks a stack file, with its defaults folded in and its paths made absolute against its
/// folder. A file that cannot be read is a usage error; one that is wrong, an error like the daemon's.
fn read_stack(file: &Path) -> Result<StackFile, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let wrong = |e: pm_protocol::PmError| {
        let why = match e {
            pm_protocol::PmError::Invalid(why) => why,
            other => other.to_string(),
        };
        Failure::Answer(format!("{}: {why}", file.display()))
    };
    let stack = StackFile::parse(&text).map_err(wrong)?;
    let here = std::env::current_dir().ok();
    let base = match file.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => PathBuf::from(absolute(&dir.to_string_lossy(), here.as_deref())),
        None => here.unwrap_or_default(),
    };
    let stack = stack.resolve_paths(&base);
    stack.to_specs().map_err(wrong)?;
    Ok(stack)
}

/// The command the action sends; `None` for the actions the daemon has no part in.
pub fn to_command(action: &Action) -> Result<Option<Command>, Failure> {
    let command = match action {
        Action::Start(args) => {
            let here = std::env::current_dir().ok();
            let start = args.to_command(here.as_deref()).map_err(Failure::Usage)?;
            Command::Start(start)
        }
        Action::List { format } => Command::List(cmd::List {
            format: (*format).into(),
        }),
        Action::Status { target, format } => Command::Status(cmd::Status {
            name: target.name(),
            format: (*format).into(),
        }),
        Action::Stop { all: true, .. } => Command::Stop(cmd::Stop::all()),
        Action::Stop { process, name, .. } => {
            let name = process.as_ref().or(name.as_ref()).cloned();
            Command::Stop(cmd::Stop::named(name.unwrap_or_default()))
        }
        Action::Restart { target } => Command::Restart(cmd::Restart {
            name: target.name(),
        }),
        Action::Delete { target } => Command::Delete(cmd::Delete {
            name: target.name(),
        }),
        Action::Kill { target } => Command::Kill(cmd::Kill {
            name: target.name(),
        }),
        Action::Signal {
            target,
            signal,
            group,
        } => Command::Signal(cmd::Signal {
            name: target.name(),
            signal: signal.clone(),
            group: *group,
        }),
        Action::Attach { target, pid } => Command::Attach(cmd::Attach {
            pid: *pid,
            name: target.name(),
        }),
        Action::Logs {
            target,
            lines,
            format,
            ..
        } => Command::Logs(cmd::Logs {
            name: target.name(),
            lines: lines.0,
            format: (*format).into(),
            ..cmd::Logs::default()
        }),
        Action::Watch {
            processes,
            name,
            format,
        } => Command::Watch(cmd::Watch {
            names: processes.iter().chain(name).cloned().collect(),
            format: (*format).into(),
        }),
        Action::Apply {
            file,
            prune,
            dry_run,
            format,
        } => Command::Apply(cmd::Apply {
            stack: read_stack(file)?,
            prune: *prune,
            dry_run: *dry_run,
            format: (*format).into(),
        }),
        Action::Reload => Command::Reload(cmd::Reload),
        Action::Completions { .. } | Action::Man => return Ok(None),
    };
    Ok(Some(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_made_absolute_against_here() {
        let here = Some(Path::new("/home/me"));
        assert_eq!(absolute("./run.sh", here), "/home/me/run.sh");
        assert_eq!(absolute("sub/./x", here), "/home/me/sub/x");
        assert_eq!(absolute("../x", here), "/home/me/../x");
        assert_eq!(absolute("/abs", here), "/abs");
        assert_eq!(absolute("rel", None), "rel");
    }
}
