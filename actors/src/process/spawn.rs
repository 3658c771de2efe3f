//! Turning a `ProcessSpec` into a running child: its own process group (or session when detached),
//! its environment and directory, its stdio, and spawn errors that name their cause.

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use pm_protocol::{CommandLine, PmError, ProcessSpec};

use super::options::OutputTarget;

/// Where the child's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioPlan {
    /// Pipes read by capture tasks.
    Capture,
    /// Appended straight to `<log_dir>/<name>.log` (detached processes, which outlive the daemon).
    File,
    Inherit,
    Null,
}

/// What the spec and the options ask for.
pub fn stdio_plan(spec: &ProcessSpec, output: &OutputTarget) -> StdioPlan {
    if spec.detach {
        return if spec.log.enabled {
            StdioPlan::File
        } else {
            StdioPlan::Null
        };
    }
    match output {
        OutputTarget::DaemonStdio => StdioPlan::Inherit,
        OutputTarget::Channel(_) => StdioPlan::Capture,
        OutputTarget::Spec if spec.log.enabled => StdioPlan::Capture,
        OutputTarget::Spec => StdioPlan::Null,
    }
}

/// Spawns the child. On error nothing is left running.
pub fn spawn(spec: &ProcessSpec, plan: StdioPlan, log_dir: &Path) -> Result<Child, PmError> {
    let fail = |cause: String| PmError::Spawn {
        name: spec.name.clone(),
        cause,
    };
    let run_as = super::user::run_as(spec)?;
    let mut cmd = match &spec.command {
        CommandLine::Shell(line) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(shell_line(line, &search_path(spec)).as_ref());
            c
        }
        CommandLine::Exec { program, args } => {
            if program.is_empty() {
                return Err(fail("empty program name".into()));
            }
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    if spec.env_clear {
        cmd.env_clear();
    }
    cmd.envs(&spec.env);
    if let Some(dir) = &spec.cwd {
        if !dir.is_dir() {
            return Err(fail(format!(
                "working directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::null());
    match plan {
        StdioPlan::Capture => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        StdioPlan::Inherit => {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        StdioPlan::Null => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        StdioPlan::File => {
            let path = log_dir.join(format!("{}.log", spec.name));
            let open = || {
                std::fs::create_dir_all(log_dir)?;
                OpenOptions::new().create(true).append(true).open(&path)
            };
            let out = open().map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
            if let Some(who) = &run_as {
                super::user::give(&path, who).map_err(|e| {
                    fail(format!("cannot give {} to its user: {e}", path.display()))
                })?;
            }
            let err = out
                .try_clone()
                .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
            cmd.stdout(out).stderr(err);
        }
    }
    if spec.detach {
        // SAFETY: setsid is async-signal-safe; it makes the child a session and group leader.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    } else {
        cmd.process_group(0);
    }
    if let Some(who) = &run_as {
        super::user::switch_in_child(&mut cmd, who);
    }
    if !spec.detach {
        die_with_the_daemon(&mut cmd);
    }
    cmd.spawn()
        .map_err(|e| fail(describe_spawn_error(spec, &e)))
}

/// Closes the one gap of the guard process: between the fork and the daemon's `+pgid` line the child's
/// group is not registered, and a burst of starts spends most of its time there (the daemon waits for
/// each exec). The child asks the kernel for SIGKILL when its parent dies, and checks that the parent
/// has not died already. Registered after any user switch, which would clear it. The signal is tied to
/// the spawning thread: spawns run on actor threads, which live as long as the daemon.
fn die_with_the_daemon(cmd: &mut Command) {
    let daemon = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and touch nothing but the child itself.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != daemon {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// The text given to `sh -c`. A simple command (one line, no control operators or redirections, and a
/// first word that is an executable file, not a builtin or keyword) is prefixed with `exec`, so the shell
/// replaces itself with the program, as supervisord and pm2 run a command: one process instead of two,
/// the program itself gets the stop signal, and half the work at start and at every status tick.
/// Anything else runs exactly as written.
fn shell_line<'a>(line: &'a str, path: &str) -> Cow<'a, str> {
    let line_trimmed = line.trim();
    let plain = !line_trimmed.is_empty()
        && !line_trimmed.contains([';', '&', '|', '(', ')', '<', '>', '`', '\n', '\\', '#']);
    let first = line_trimmed.split_whitespace().next().unwrap_or_default();
    let runs_a_file = !first.contains(['=', '\'', '"', '$', '{', '}', '!', '*', '?', '['])
        && is_executable_on(first, path);
    if plain && runs_a_file {
        Cow::Owned(format!("exec {line_trimmed}"))
    } else {
        Cow::Borrowed(line)
    }
}

/// The PATH the child's shell will search: the spec's, else the daemon's (unless the environment is
/// cleared), else the shell's default.
fn search_path(spec: &ProcessSpec) -> String {
    spec.env
        .get("PATH")
        .cloned()
        .or_else(|| {
            (!spec.env_clear)
                .then(|| std::env::var("PATH").ok())
                .flatten()
        })
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string())
}

/// Whether `word` names an executable regular file: as a path when it has a `/`, else in `path`.
fn is_executable_on(word: &str, path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if word.is_empty() {
        false
    } else if word.contains('/') {
        executable(Path::new(word))
    } else {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .any(|dir| executable(&Path::new(dir).join(word)))
    }
}

fn describe_spawn_error(spec: &ProcessSpec, e: &std::io::Error) -> String {
    let program = match &spec.command {
        CommandLine::Shell(_) => "/bin/sh".to_string(),
        CommandLine::Exec { program, .. } => program.clone(),
    };
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("no such program '{program}'"),
        std::io::ErrorKind::PermissionDenied => format!("permission denied executing '{program}'"),
        _ => format!("'{program}': {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

    #[test]
    fn a_simple_command_is_execed() {
        assert_eq!(shell_line("sleep 3600", PATH), "exec sleep 3600");
        assert_eq!(
            shell_line("  python3 -m http.server 8080 ", PATH),
            "exec python3 -m http.server 8080"
        );
        assert_eq!(
            shell_line("/bin/echo 'a b' \"c\"", PATH),
            "exec /bin/echo 'a b' \"c\""
        );
    }

    #[test]
    fn anything_else_runs_as_written() {
        for line in [
            "exit 3",                 // a builtin
            "cd /tmp",                // a builtin with no file
            "sleep 1; sleep 2",       // a list
            "sleep 60 & sleep 60",    // a background job
            "yes | head",             // a pipeline
            "echo hi > /tmp/x",       // a redirection
            "A=1 env",                // an assignment
            "if true; then :; fi",    // a keyword
            "sleep 1\nsleep 2",       // several lines
            "no-such-program-here x", // sh reports it as it always did
            "$HOME/bin/tool",         // an expansion in the first word
            "",
        ] {
            assert_eq!(shell_line(line, PATH), line, "{line:?}");
        }
    }

    #[test]
    fn the_spec_path_decides() {
        assert_eq!(shell_line("sleep 1", "/nonexistent"), "sleep 1");
    }
}
