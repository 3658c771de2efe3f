//! `!!process.start name:x command:'...'`: define a process and start it (or schedule it, with `cron`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::start_probes::ProbeOptions;
use super::Verb;
use crate::depend::Dependency;
use crate::heroscript::{format_duration, Action, ActionWriter, ParseError, ParseErrorKind};
use crate::limits::{
    format_size, parse_cpu, parse_size, ResourceLimits, CPU_EXPECTED, SIZE_EXPECTED,
};
use crate::signal::{valid_signal_names, SignalName};
use crate::spec::{validate_name, CommandLine, ProcessSpec, RestartPolicy};
use crate::PmError;

/// Define a process and start it. Optional values are `None` when not given (or given empty, as the
/// original client sends `cron:''`); see `docs/protocol.md` for every parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The process name (`name:`); checked by [`Start::to_spec`].
    pub name: String,
    /// `command:'...'` (run with `sh -c`, may span lines), or `program:` with repeated `args:` (run directly).
    pub command: CommandLine,
    /// Capture output to the log file and the in-memory ring (`log:true`).
    pub log: bool,
    /// Stop the process this long after each start (`deadline:30s`; `deadline:0` means none, as in the
    /// original). The spec rounds it up to whole seconds.
    pub deadline: Option<Duration>,
    /// A cron expression (`cron:'*/5 * * * *'`): the process is scheduled instead of started now.
    pub cron: Option<String>,
    /// A caller's label (`jobid:`), echoed as the job id of the result frame and in status.
    pub jobid: Option<String>,
    /// From repeated `env:'KEY=VALUE'` keys.
    pub env: BTreeMap<String, String>,
    /// Dotenv files (repeated `env_file:'path'`), read at each start; `env` wins over them.
    pub env_files: Vec<String>,
    /// The working directory (`cwd:`); the daemon's own when `None`.
    pub cwd: Option<String>,
    /// Automatic restarts (`restarts:`): a count, `-1` for unlimited.
    pub restarts: Option<i64>,
    /// Which exits restart (`restart_policy:always|on-failure|never`); see [`Start::to_spec`] for the
    /// default.
    pub restart_policy: Option<RestartPolicy>,
    /// Lead its own session, write output to files, and outlive the daemon (`detach:true`).
    pub detach: bool,
    /// Also write a template file for this process (`template:true`).
    pub template: bool,
    /// With `template`: start it whenever the daemon starts (`run_on_startup:true`).
    pub run_on_startup: bool,
    /// The signal a stop sends first (`stop_signal:HUP`); SIGTERM when `None`.
    pub stop_signal: Option<SignalName>,
    /// Time between the stop signal and SIGKILL (`grace:5s`); 10 s when `None`.
    pub grace: Option<Duration>,
    /// Run as this user (`user:`; the daemon must be root).
    pub user: Option<String>,
    /// Run with this group (`group:`; the daemon must be root).
    pub group: Option<String>,

    // Readiness and health (issue 14, part D).
    /// `ready`, `health`, their periods and timeouts, `watchdog`.
    pub probes: ProbeOptions,

    // Dependencies (issue 14, part E).
    /// Repeated `after:'db'`, `after:'migrate:completed'`: what must hold before it starts, in order.
    pub after: Vec<Dependency>,
    /// Restart it after a dependency restarts (`restart_with:true`).
    pub restart_with: bool,
    // Containment and limits (issue 18).
    /// `memory_max`, `memory_high`, `cpu_max`, `pids_max`.
    pub limits: ResourceLimits,
}

impl Start {
    /// A start of `command` run with `sh -c`, every option at its default.
    pub fn shell(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self::new(name.into(), CommandLine::Shell(command.into()))
    }

    /// A start of `program` with `args`, run directly, every option at its default.
    pub fn exec(name: impl Into<String>, program: impl Into<String>, args: Vec<String>) -> Self {
        Self::new(
            name.into(),
            CommandLine::Exec {
                program: program.into(),
                args,
            },
        )
    }

    fn new(name: String, command: CommandLine) -> Self {
        Start {
            name,
            command,
            log: false,
            deadline: None,
            cron: None,
            jobid: None,
            env: BTreeMap::new(),
            env_files: Vec::new(),
            cwd: None,
            restarts: None,
            restart_policy: None,
            detach: false,
            template: false,
            run_on_startup: false,
            stop_signal: None,
            grace: None,
            user: None,
            group: None,
            probes: ProbeOptions::default(),
            after: Vec::new(),
            restart_with: false,
            limits: ResourceLimits::default(),
        }
    }

    /// The [`ProcessSpec`] the registry starts. Restarts: with `restarts:N` the policy defaults to
    /// on-failure; with only `restart_policy`, always and on-failure are unlimited.
    pub fn to_spec(&self) -> Result<ProcessSpec, PmError> {
        validate_name(&self.name)?;
        let command_empty = match &self.command {
            CommandLine::Shell(c) => c.trim().is_empty(),
            CommandLine::Exec { program, .. } => program.is_empty(),
        };
        if command_empty {
            return Err(PmError::Invalid("the command is empty".into()));
        }
        let mut spec = ProcessSpec::shell(&self.name, "");
        spec.command = self.command.clone();
        spec.log.enabled = self.log;
        spec.deadline_secs = self
            .deadline
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        spec.cron = self.cron.clone();
        spec.job_id = self.jobid.clone();
        spec.env = self.env.clone();
        spec.env_files = self.env_files.iter().map(Into::into).collect();
        spec.cwd = self.cwd.as_ref().map(Into::into);
        spec.restart.policy = match (self.restart_policy, self.restarts) {
            (Some(p), _) => p,
            (None, Some(n)) if n != 0 => RestartPolicy::OnFailure,
            (None, _) => RestartPolicy::Never,
        };
        spec.restart.max_restarts = match (self.restarts, spec.restart.policy) {
            (Some(n), _) => n,
            (None, RestartPolicy::Never) => 0,
            (None, _) => -1,
        };
        spec.detach = self.detach;
        if let Some(sig) = self.stop_signal {
            spec.stop_signal = sig;
        }
        if let Some(grace) = self.grace {
            spec.grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        }
        spec.user = self.user.clone();
        spec.group = self.group.clone();
        spec.probes = self.probes.to_settings()?;
        spec.after = self.after.clone();
        spec.restart_with = self.restart_with;
        spec.limits = self.limits;
        Ok(spec)
    }
}

pub(crate) fn read_policy(v: &str) -> Option<RestartPolicy> {
    match v.to_ascii_lowercase().as_str() {
        "always" => Some(RestartPolicy::Always),
        "on-failure" | "on_failure" => Some(RestartPolicy::OnFailure),
        "never" => Some(RestartPolicy::Never),
        _ => None,
    }
}

fn policy_name(p: RestartPolicy) -> &'static str {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
}

fn read_command(a: &Action) -> Result<CommandLine, ParseError> {
    let invalid = |msg: &str| a.error(ParseErrorKind::Invalid(msg.to_string()));
    match (a.non_empty("command"), a.non_empty("program")) {
        (Some(_), Some(_)) => Err(invalid(
            "give either 'command' or 'program' (with 'args'), not both",
        )),
        (Some(command), None) => {
            if a.param("args").is_some() {
                return Err(invalid("'args' goes with 'program', not with 'command'"));
            }
            Ok(CommandLine::Shell(command.to_string()))
        }
        (None, Some(program)) => Ok(CommandLine::Exec {
            program: program.to_string(),
            args: a.all("args").map(|p| p.value.clone()).collect(),
        }),
        (None, None) => Err(a.error(ParseErrorKind::MissingParameter {
            key: "command".into(),
            action: Start::ACTION.into(),
        })),
    }
}

fn read_limits(a: &Action) -> Result<ResourceLimits, ParseError> {
    let size = |key| a.typed(key, SIZE_EXPECTED, parse_size);
    Ok(ResourceLimits {
        memory_max: size("memory_max")?,
        memory_high: size("memory_high")?,
        cpu_max: a.typed("cpu_max", CPU_EXPECTED, parse_cpu)?,
        pids_max: a.typed("pids_max", "a count of processes, at least 1", |v| {
            v.parse::<u64>().ok().filter(|&n| n >= 1)
        })?,
    })
}

fn read_env(a: &Action) -> Result<BTreeMap<String, String>, ParseError> {
    let mut env = BTreeMap::new();
    for p in a.all("env") {
        let (key, value) = p
            .value
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Action::value_error(p, "KEY=VALUE"))?;
        if env.insert(key.to_string(), value.to_string()).is_some() {
            return Err(Action::value_error(p, "each variable once"));
        }
    }
    Ok(env)
}

/// Reads the repeated `after:` keys; an unknown condition or a bad name is an error at its value.
fn read_after(a: &Action) -> Result<Vec<Dependency>, ParseError> {
    a.all("after")
        .filter(|p| !p.value.is_empty())
        .map(|p| Dependency::parse(&p.value).map_err(|e| Action::value_error(p, &e)))
        .collect()
}

impl Verb for Start {
    const ACTION: &'static str = "process.start";
    const PARAMS: &'static [&'static str] = &[
        "name",
        "command",
        "program",
        "args",
        "log",
        "deadline",
        "cron",
        "jobid",
        "env",
        "env_file",
        "cwd",
        "restarts",
        "restart_policy",
        "detach",
        "template",
        "run_on_startup",
        "stop_signal",
        "grace",
        "user",
        "group",
        // Readiness and health (issue 14, part D): the keys `ProbeOptions` reads.
        "ready",
        "ready_period",
        "ready_timeout",
        "ready_within",
        "health",
        "health_period",
        "health_timeout",
        "health_failures",
        "watchdog",
        // Dependencies (issue 14, part E).
        "after",
        "restart_with",
        // Limits (issue 18).
        "memory_max",
        "memory_high",
        "cpu_max",
        "pids_max",
    ];
    const REPEATABLE: &'static [&'static str] = &["args", "env", "env_file", "after"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        let name = a.required("name")?.to_string();
        let command = read_command(a)?;
        let text = |key: &str| a.non_empty(key).map(str::to_string);
        let restarts = a.typed(
            "restarts",
            "a count of restarts, or -1 for unlimited",
            |v| v.parse::<i64>().ok().filter(|n| *n >= -1),
        )?;
        let template = a.flag("template")?;
        let run_on_startup = a.flag("run_on_startup")?;
        if let Some(p) = a
            .param("run_on_startup")
            .filter(|_| run_on_startup && !template)
        {
            return Err(Action::value_error(
                p,
                "false unless template:true is given",
            ));
        }
        Ok(Start {
            name,
            command,
            log: a.flag("log")?,
            deadline: a.duration("deadline")?.filter(|d| !d.is_zero()),
            cron: text("cron"),
            jobid: text("jobid"),
            env: read_env(a)?,
            env_files: a
                .all("env_file")
                .map(|p| p.value.clone())
                .filter(|v| !v.is_empty())
                .collect(),
            cwd: text("cwd"),
            restarts,
            restart_policy: a.typed(
                "restart_policy",
                "always, on-failure or never",
                read_policy,
            )?,
            detach: a.flag("detach")?,
            template,
            run_on_startup,
            stop_signal: a.typed(
                "stop_signal",
                &format!("a signal number or name: {}", valid_signal_names()),
                |v| v.parse().ok(),
            )?,
            grace: a.duration("grace")?,
            user: text("user"),
            group: text("group"),
            probes: ProbeOptions::from_action(a)?,
            after: read_after(a)?,
            restart_with: a.flag("restart_with")?,
            limits: read_limits(a)?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.param("name", &self.name);
        match &self.command {
            CommandLine::Shell(command) => {
                w.param("command", command);
            }
            CommandLine::Exec { program, args } => {
                w.param("program", program);
                for arg in args {
                    w.param("args", arg);
                }
            }
        }
        w.flag("log", self.log)
            .opt("deadline", self.deadline.map(format_duration).as_deref())
            .opt("cron", self.cron.as_deref())
            .opt("jobid", self.jobid.as_deref());
        for (key, value) in &self.env {
            w.param("env", &format!("{key}={value}"));
        }
        for file in &self.env_files {
            w.param("env_file", file);
        }
        w.opt("cwd", self.cwd.as_deref())
            .num("restarts", self.restarts)
            .opt("restart_policy", self.restart_policy.map(policy_name))
            .flag("detach", self.detach)
            .flag("template", self.template)
            .flag("run_on_startup", self.run_on_startup)
            .opt("stop_signal", self.stop_signal.map(SignalName::as_str))
            .opt("grace", self.grace.map(format_duration).as_deref())
            .opt("user", self.user.as_deref())
            .opt("group", self.group.as_deref());
        self.probes.write(w);
        for dep in &self.after {
            w.param("after", &dep.to_string());
        }
        w.flag("restart_with", self.restart_with);
        let l = &self.limits;
        w.opt("memory_max", l.memory_max.map(format_size).as_deref())
            .opt("memory_high", l.memory_high.map(format_size).as_deref())
            .opt("cpu_max", l.cpu_max.map(|p| format!("{p}%")).as_deref())
            .num("pids_max", l.pids_max);
    }
}
