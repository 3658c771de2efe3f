//! Turning a `ProcessSpec` into a running child: its own process group (or session when detached),
//! its environment and directory, its stdio, and spawn errors that name their cause.

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
    let mut cmd = match &spec.command {
        CommandLine::Shell(line) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(line);
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
    cmd.spawn()
        .map_err(|e| fail(describe_spawn_error(spec, &e)))
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
