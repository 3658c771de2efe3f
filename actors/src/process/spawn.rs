//! Turning a `ProcessSpec` into a running child: its own process group (or session when detached),
//! its environment and directory, its stdio, and spawn errors that name their cause.

use std::borrow::Cow;
use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use pm_protocol::{CommandLine, PmError, ProcessSpec};

use super::child::{ChildProcess, Spawned};
use super::clone_exec::{
    self, ChildEnv, ChildFd, ChildStep, ExecPlan, Launch, Leader, SpawnFailure,
};
use super::options::OutputTarget;

pub use super::clone_exec::{kit_free, kit_freed};

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
        // `ready:'log:...'` reads the output even when it is not logged.
        OutputTarget::Spec if matches!(spec.probes.ready, pm_protocol::Readiness::Log(_)) => {
            StdioPlan::Capture
        }
        OutputTarget::Spec => StdioPlan::Null,
    }
}

/// A child cloned and on its way to its exec, and the daemon's ends of its output pipes.
pub struct PendingSpawn {
    launch: Launch,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

/// Clones the child and answers at once; [`PendingSpawn::finish`] waits for its exec. On error nothing
/// is left running.
pub fn launch(
    spec: &ProcessSpec,
    plan: StdioPlan,
    log_dir: &Path,
    cgroup: Option<&Path>,
    marker: Option<&Path>,
) -> Result<PendingSpawn, PmError> {
    let fail = |cause: String| PmError::Spawn {
        name: spec.name.clone(),
        cause,
    };
    let run_as = super::user::run_as(spec)?;
    let path = search_path(spec);
    let (program, argv): (Cow<str>, Vec<Cow<str>>) = match &spec.command {
        CommandLine::Shell(line) => match line_run(line, &path) {
            // The file the PATH search found: the child does not search again.
            LineRun::Direct { file, words } => {
                (file.into(), words.into_iter().map(Cow::Borrowed).collect())
            }
            LineRun::Shell(text) => ("/bin/sh".into(), vec!["/bin/sh".into(), "-c".into(), text]),
        },
        CommandLine::Exec { program, args } => {
            if program.is_empty() {
                return Err(fail("empty program name".into()));
            }
            let mut argv: Vec<Cow<str>> = vec![program.as_str().into()];
            argv.extend(args.iter().map(|a| Cow::Borrowed(a.as_str())));
            (program.as_str().into(), argv)
        }
    };
    let cstring = |what: &str, s: &str| {
        CString::new(s).map_err(|_| fail(format!("{what} holds a NUL byte: {s:?}")))
    };
    let candidates = if program.contains('/') {
        vec![cstring("the program", &program)?]
    } else {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| cstring("PATH", &format!("{dir}/{program}")))
            .collect::<Result<Vec<_>, _>>()?
    };
    let argv = argv
        .iter()
        .map(|a| cstring("an argument", a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = environment(spec, marker).map_err(fail)?;
    let cwd = match &spec.cwd {
        Some(dir) if !dir.is_dir() => {
            return Err(fail(format!(
                "working directory {} does not exist or is not a directory",
                dir.display()
            )))
        }
        Some(dir) => Some(cstring("the working directory", &dir.to_string_lossy())?),
        None => None,
    };
    let (mut stdout, mut stderr) = (None, None);
    let io_fail = |e: std::io::Error| fail(format!("cannot set up its output: {e}"));
    let out_err = match plan {
        StdioPlan::Capture => {
            let (out_r, out_w) = clone_exec::pipe().map_err(io_fail)?;
            let (err_r, err_w) = clone_exec::pipe().map_err(io_fail)?;
            stdout = Some(out_r);
            stderr = Some(err_r);
            [ChildFd::Fd(out_w), ChildFd::Fd(err_w)]
        }
        StdioPlan::Inherit => [ChildFd::Inherit, ChildFd::Inherit],
        StdioPlan::Null => [ChildFd::Null, ChildFd::Null],
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
            [ChildFd::Fd(out.into()), ChildFd::Fd(err.into())]
        }
    };
    let [out, err] = out_err;
    let exec = ExecPlan {
        candidates,
        argv,
        envp,
        cwd,
        stdio: [ChildFd::Null, out, err],
        leader: if spec.detach {
            Leader::Session
        } else {
            Leader::Group
        },
        run_as,
        // Closes the one gap of the guard process: between the clone and the daemon's `+pgid` line
        // (written as soon as the clone returns) the child's group is not registered. The signal is
        // tied to the spawning thread: spawns run on actor threads, which live as long as the daemon.
        die_with_parent: !spec.detach,
        open_files: super::descriptors::original_open_files_limit(),
        cgroup_dir: cgroup.map(path_cstring).transpose().map_err(&fail)?,
        cgroup_procs: cgroup
            .map(|dir| path_cstring(&dir.join("cgroup.procs")))
            .transpose()
            .map_err(&fail)?,
        #[cfg(test)]
        stop_before_exec: false,
    };
    match clone_exec::launch(exec) {
        Ok(launch) => Ok(PendingSpawn {
            launch,
            stdout,
            stderr,
        }),
        Err(e) => Err(spawn_error(spec, &e)),
    }
}

impl PendingSpawn {
    /// The child's pid, which is also its process group's id unless it is detached.
    pub fn pid(&self) -> i32 {
        self.launch.pid()
    }

    /// Resolves once the child has exec'd its program, or failed before (then it has been reaped; see
    /// [`spawn_error`] for what a start answers), or has not got there within `deadline`: then it is
    /// killed and reaped, and the start fails ([`SpawnFailure::Abandoned`]). Waits on the report pipe
    /// in the reactor of the calling thread, which goes on meanwhile.
    pub async fn finish(mut self, deadline: Duration) -> Result<Spawned, SpawnFailure> {
        let give_up = tokio::time::Instant::now() + deadline;
        // SAFETY: the descriptor belongs to `self.launch`, which outlives `report` (dropped at the end
        // of this function, before `self`). Without a reactor to register in, it is polled instead:
        // the exec is a matter of a millisecond.
        let report =
            unsafe { AsyncFd::register_with_interest(self.launch.report_fd(), Interest::READABLE) }
                .ok();
        let result = loop {
            if let Some(r) = self.launch.progress() {
                break r;
            }
            if tokio::time::Instant::now() >= give_up {
                self.abandon().await;
                break Err(SpawnFailure::Abandoned(deadline));
            }
            // A child killed before it reported closes no pipe of ours: look again now and then.
            let recheck =
                RECHECK.min(give_up.saturating_duration_since(tokio::time::Instant::now()));
            match &report {
                Some(report) => match tokio::time::timeout(recheck, report.readable()).await {
                    Ok(Ok(mut ready)) => ready.clear_ready(),
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
                    Err(_) => {}
                },
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        result.map(|pid| Spawned {
            child: ChildProcess::new(pid),
            stdout: self.stdout.take(),
            stderr: self.stderr.take(),
        })
    }

    /// Kills the child and reaps it, polling from the reactor: a child stuck in the kernel (an exec
    /// from a hung file system) must not hold up the actor's thread in `waitpid`.
    async fn abandon(&mut self) {
        self.launch.kill();
        while !self.launch.try_reap() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// How often a start whose report pipe stays quiet looks at its child again.
const RECHECK: Duration = Duration::from_millis(250);

/// What a start of `spec` answers when its spawn failed.
pub fn spawn_error(spec: &ProcessSpec, e: &SpawnFailure) -> PmError {
    let program = match &spec.command {
        CommandLine::Shell(_) => "/bin/sh",
        CommandLine::Exec { program, .. } => program,
    };
    PmError::Spawn {
        name: spec.name.clone(),
        cause: describe_spawn_error(program, e),
    }
}

/// The child's environment: the daemon's (unless cleared) under the spec's own variables, and a
/// registry's marker (the process name and `marker`, the state file) over both.
fn environment(spec: &ProcessSpec, marker: Option<&Path>) -> Result<ChildEnv, String> {
    use crate::registry::{ENV_NAME, ENV_STATE};
    let mut extra = spec
        .env
        .iter()
        // A spec from an older state file still holds the marker: the one made here stands.
        .filter(|(k, _)| marker.is_none() || (k.as_str() != ENV_NAME && k.as_str() != ENV_STATE))
        .map(|(k, v)| env_entry(k.as_bytes(), v.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(state_file) = marker {
        extra.push(env_entry(ENV_NAME.as_bytes(), spec.name.as_bytes())?);
        extra.push(env_entry(
            ENV_STATE.as_bytes(),
            state_file.as_os_str().as_bytes(),
        )?);
    }
    let base = if spec.env_clear {
        None
    } else {
        Some(daemon_environment()?)
    };
    Ok(ChildEnv { base, extra })
}

/// The daemon's environment as `KEY=value` strings, made at the first spawn and shared by every child
/// after it: the daemon never changes its own environment.
fn daemon_environment() -> Result<Arc<Vec<CString>>, String> {
    static DAEMON: OnceLock<Result<Arc<Vec<CString>>, String>> = OnceLock::new();
    DAEMON
        .get_or_init(|| {
            std::env::vars_os()
                .map(|(k, v)| env_entry(k.as_bytes(), v.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map(Arc::new)
        })
        .clone()
}

fn env_entry(k: &[u8], v: &[u8]) -> Result<CString, String> {
    let mut kv = Vec::with_capacity(k.len() + v.len() + 2);
    kv.extend_from_slice(k);
    kv.push(b'=');
    kv.extend_from_slice(v);
    CString::new(kv).map_err(|e| {
        format!(
            "the environment holds a NUL byte: {:?}",
            String::from_utf8_lossy(&e.into_vec())
        )
    })
}

/// How a command line runs.
#[derive(Debug, PartialEq, Eq)]
enum LineRun<'a> {
    /// Words the shell would take literally, the first an executable file (`file`, as the PATH search
    /// found it): run directly, as supervisord runs every command, with no shell at all (one exec
    /// instead of two).
    Direct { file: String, words: Vec<&'a str> },
    /// The text given to `sh -c`.
    Shell(Cow<'a, str>),
}

/// How `line` runs. A simple command (one line, no control operators or redirections, and a first word
/// that is an executable file, not a builtin or keyword) is prefixed with `exec`, so the shell replaces
/// itself with the program: one process instead of two, the program itself gets the stop signal, and
/// half the work at every status tick. When, besides, every character is one the shell takes literally
/// (no quote, expansion, glob or tilde), the shell would only split the line at blanks: the daemon does
/// that itself and runs the program directly. Anything else runs exactly as written.
fn line_run<'a>(line: &'a str, path: &str) -> LineRun<'a> {
    let line_trimmed = line.trim();
    let plain = !line_trimmed.is_empty()
        && !line_trimmed.contains([';', '&', '|', '(', ')', '<', '>', '`', '\n', '\\', '#']);
    let first = line_trimmed.split_whitespace().next().unwrap_or_default();
    let file = (plain && !first.contains(['=', '\'', '"', '$', '{', '}', '!', '*', '?', '[']))
        .then(|| find_executable(first, path))
        .flatten();
    let Some(file) = file else {
        return LineRun::Shell(Cow::Borrowed(line));
    };
    let literal = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '_' | '-' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=' | ' ' | '\t'
            )
    };
    if line_trimmed.chars().all(literal) {
        // The shell splits at blanks (space and tab), never at other white space.
        LineRun::Direct {
            file,
            words: line_trimmed
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .collect(),
        }
    } else {
        LineRun::Shell(Cow::Owned(format!("exec {line_trimmed}")))
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

/// The executable regular file `word` names: itself when it has a `/`, else the first match on `path`
/// (as the shell's search finds it).
fn find_executable(word: &str, path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &str| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if word.is_empty() {
        None
    } else if word.contains('/') {
        executable(word).then(|| word.to_string())
    } else {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| format!("{dir}/{word}"))
            .find(|p| executable(p))
    }
}

fn describe_spawn_error(program: &str, e: &SpawnFailure) -> String {
    let io = e.io_error();
    if let SpawnFailure::Abandoned(_) = e {
        return format!("the start {io}");
    }
    match (e.step(), io.kind()) {
        (Some(ChildStep::Exec), std::io::ErrorKind::NotFound) => {
            format!("no such program '{program}'")
        }
        (Some(ChildStep::Exec), std::io::ErrorKind::PermissionDenied) => {
            format!("permission denied executing '{program}'")
        }
        (None, std::io::ErrorKind::WouldBlock) => format!(
            "cannot create a process (EAGAIN): {}",
            super::limits::process_limit_clause()
        ),
        (Some(ChildStep::Exec) | None, _) => format!("'{program}': {io}"),
        (Some(ChildStep::Stdio), _) => format!("cannot set up its standard descriptors: {io}"),
        (Some(ChildStep::Leader), _) => format!("cannot make it lead its own group: {io}"),
        (Some(ChildStep::User), _) => format!("cannot switch to its user and group: {io}"),
        (Some(ChildStep::ParentDeath), _) => format!("cannot tie it to the daemon's life: {io}"),
        (Some(ChildStep::Cwd), _) => format!("cannot enter its working directory: {io}"),
        (Some(ChildStep::Limits), _) => format!("cannot set its open files limit: {io}"),
        (Some(ChildStep::Cgroup), _) => format!("cannot move it into its cgroup: {io}"),
    }
}

/// A path as the nul-terminated string a system call takes.
fn path_cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

    /// A direct run of `words`, whose first is the file the PATH search finds.
    fn direct(words: &[&'static str]) -> LineRun<'static> {
        LineRun::Direct {
            file: find_executable(words[0], PATH).expect("on PATH"),
            words: words.to_vec(),
        }
    }

    #[test]
    fn the_path_search_takes_the_first_executable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let put = |d: &tempfile::TempDir, mode: u32| {
            let f = d.path().join("tool");
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            f.to_str().unwrap().to_string()
        };
        put(&dirs[0], 0o644); // not executable: skipped
        let second = put(&dirs[1], 0o755);
        put(&dirs[2], 0o755);
        let path = dirs
            .iter()
            .map(|d| d.path().to_str().unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(find_executable("tool", &path), Some(second.clone()));
        assert_eq!(find_executable(&second, "/nonexistent"), Some(second));
        assert_eq!(find_executable("tool", "/nonexistent"), None);
        assert_eq!(find_executable("", &path), None);
    }

    fn shell(text: &str) -> LineRun<'static> {
        LineRun::Shell(Cow::Owned(text.to_string()))
    }

    #[test]
    fn a_literal_command_runs_with_no_shell() {
        assert_eq!(line_run("sleep 3600", PATH), direct(&["sleep", "3600"]));
        assert_eq!(
            line_run("  python3 -m http.server 8080 ", PATH),
            direct(&["python3", "-m", "http.server", "8080"])
        );
        assert_eq!(
            line_run("/bin/echo\ta=b  x:y,z+1@h%2", PATH),
            direct(&["/bin/echo", "a=b", "x:y,z+1@h%2"])
        );
    }

    #[test]
    fn a_simple_command_with_quotes_or_expansions_is_execed_by_the_shell() {
        for line in [
            "/bin/echo 'a b' \"c\"",
            "sleep $DELAY",
            "ls *.txt",
            "ls ~/x",
            "echo a\u{a0}b",
            "echo {a,b}",
            "echo ^x",
        ] {
            assert_eq!(
                line_run(line, PATH),
                shell(&format!("exec {line}")),
                "{line:?}"
            );
        }
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
            assert_eq!(line_run(line, PATH), shell(line), "{line:?}");
        }
    }

    /// A child that never reaches its exec (stopped before it) is given up at the deadline with an
    /// error that says so, killed and reaped; the next start works.
    #[tokio::test]
    async fn a_start_that_does_not_reach_exec_is_abandoned_at_its_deadline() {
        use super::super::clone_exec::tests::{plan, Reaped};
        let mut stalled = plan("/bin/sleep", &["30"]);
        stalled.stop_before_exec = true;
        let pending = PendingSpawn {
            launch: clone_exec::launch(stalled).unwrap(),
            stdout: None,
            stderr: None,
        };
        let pid = pending.pid();
        let started = std::time::Instant::now();
        let deadline = Duration::from_millis(300);
        let Err(failure) = pending.finish(deadline).await else {
            panic!("a start stopped before its exec succeeded");
        };
        let waited = started.elapsed();
        assert!(
            deadline <= waited && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        let spec = ProcessSpec::shell("stalled", "sleep 30");
        assert_eq!(
            spawn_error(&spec, &failure).to_string(),
            "cannot spawn 'stalled': the start did not reach exec within 300 ms: abandoned"
        );
        let mut status = 0;
        // SAFETY: WNOHANG on a pid that must no longer be our child.
        let waited_for = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert_eq!(waited_for, -1, "child {pid} not reaped");

        let next = PendingSpawn {
            launch: clone_exec::launch(plan("/bin/sleep", &["30"])).unwrap(),
            stdout: None,
            stderr: None,
        };
        let _reaped = Reaped(next.pid());
        let spawned = next
            .finish(super::super::START_DEADLINE)
            .await
            .expect("the next start");
        assert_eq!(spawned.child.id() as i32, _reaped.0);
    }

    #[test]
    fn the_spec_path_decides() {
        assert_eq!(line_run("sleep 1", "/nonexistent"), shell("sleep 1"));
    }
}
