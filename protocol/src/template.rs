//! Process templates: one JSON file per process, `<name>.json`, with Ligato's keys plus ours.
//!
//! ```json
//! {
//!   "name": "web",
//!   "cmd": "python3",
//!   "p_options": {
//!     "args": ["-m", "http.server", "8080"],
//!     "restart": -1,
//!     "run_on_startup": true,
//!     "log": true,
//!     "env": {"PYTHONUNBUFFERED": "1"}
//!   }
//! }
//! ```
//!
//! `cmd` with `args` is run directly (PATH lookup), as in the original; with `"shell": true`, `cmd` is
//! a command line run with `sh -c` (and `args` must be empty). Every option may be left out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::command::ProbeOptions;
use crate::depend::Dependency;
use crate::limits::{self, ResourceLimits};
use crate::probe::{Probe, ProbeSettings, Readiness};
use crate::signal::SignalName;
use crate::spec::{
    validate_name, CommandLine, LogSettings, ProcessSpec, RestartPolicy, RestartSettings,
};
use crate::PmError;

/// A template file: the process definition plus whether the daemon starts it when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The process name; also the file name (`<name>.json`).
    pub name: String,
    /// The program (or, with `shell`, the command line).
    pub cmd: String,
    /// Everything else; may be left out of the file, and every key in it is optional.
    #[serde(default)]
    pub p_options: TemplateOptions,
}

/// The options of a template (Ligato's `p_options`, extended). Defaults match [`ProcessSpec`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateOptions {
    // Ligato's keys.
    /// Arguments of the program.
    pub args: Vec<String>,
    /// Automatic restarts: 0 none, N that many, -1 unlimited.
    pub restart: i64,
    /// Lead its own session and outlive the daemon.
    pub detach: bool,
    /// Start when the daemon starts.
    pub run_on_startup: bool,
    /// Accepted for compatibility: every process's events can be subscribed to, so this changes nothing.
    pub notify: bool,
    /// Accepted for compatibility: every child is reaped as soon as it exits.
    pub auto_terminate: bool,

    // Ours.
    /// Run `cmd` with `sh -c` instead of directly.
    pub shell: bool,
    /// Variables added to the daemon's environment.
    pub env: BTreeMap<String, String>,
    /// Start from an empty environment instead of the daemon's.
    pub env_clear: bool,
    /// Dotenv files read at each start (`env` wins); a relative path is relative to the template's
    /// folder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<PathBuf>,
    /// The working directory; left out means the daemon's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Capture output to `<log-dir>/<name>.log` and the in-memory ring.
    pub log: bool,
    /// Rotate the log file past this many bytes (default 10 MiB).
    pub log_max_bytes: u64,
    /// Rotated log files kept (default 5).
    pub log_keep_files: u32,
    /// Lines kept in memory for `process.logs` (default 1000).
    pub log_ring_lines: usize,
    /// `always`, `on-failure` or `never`; when left out, `on-failure` if `restart` is non-zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// First restart delay after the immediate first restart, in milliseconds (default 100).
    pub backoff_initial_ms: u64,
    /// Longest restart delay, in milliseconds (default 30000).
    pub backoff_max_ms: u64,
    /// Up this many milliseconds and the backoff resets (default 10000).
    pub reset_after_ms: u64,
    /// Seconds after each start at which the process is stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// A cron expression: the process is scheduled, not started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A job id shown in status; left out means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobid: Option<String>,
    /// The signal a stop sends first: a name (`TERM`, `SIGTERM`) or a number (default `SIGTERM`).
    pub stop_signal: SignalName,
    /// Milliseconds between the stop signal and SIGKILL (default 10000).
    pub grace_ms: u64,
    /// Run as this user (the daemon must be root); left out keeps the daemon's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run with this group (the daemon must be root); left out keeps the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,

    // Limits (issue 18), written as in a script: `"512M"`, `"150%"`.
    /// Memory past which the OOM killer kills in the process's cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<String>,
    /// Memory past which the process's cgroup is throttled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<String>,
    /// CPU in percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<String>,
    /// The most processes in the cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,

    // Readiness and health (issue 14, part D): left out means the default of `ProbeSettings`.
    /// `started`, `notify`, `exited`, `log:<regex>`, `http:<url>`, `tcp:<host>:<port>`, `exec:<command>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<Readiness>,
    /// Milliseconds between readiness checks (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_period_ms: Option<u64>,
    /// Timeout of each readiness check, in milliseconds (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_timeout_ms: Option<u64>,
    /// A start not ready within this many milliseconds fails (default: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_within_ms: Option<u64>,
    /// The health check: `http:<url>`, `tcp:<host>:<port>` or `exec:<command>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Probe>,
    /// Milliseconds between health checks (default 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_period_ms: Option<u64>,
    /// Timeout of each health check, in milliseconds (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_timeout_ms: Option<u64>,
    /// Failed checks in a row that make it unhealthy (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_failures: Option<u32>,
    /// With `ready: notify`: no `WATCHDOG=1` for this many milliseconds is a failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchdog_ms: Option<u64>,

    // Dependencies (issue 14, part E).
    /// What must hold before it starts: `db`, `db:ready`, `db:started`, `migrate:completed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Dependency>,
    /// Restart it after a dependency restarts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_with: bool,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        let spec = ProcessSpec::shell("-", "");
        let log = LogSettings::default();
        let restart = RestartSettings::default();
        TemplateOptions {
            args: Vec::new(),
            restart: 0,
            detach: false,
            run_on_startup: false,
            notify: false,
            auto_terminate: false,
            shell: false,
            env: BTreeMap::new(),
            env_clear: false,
            env_file: Vec::new(),
            cwd: None,
            log: log.enabled,
            log_max_bytes: log.max_bytes,
            log_keep_files: log.keep_files,
            log_ring_lines: log.ring_lines,
            restart_policy: None,
            backoff_initial_ms: restart.backoff_initial_ms,
            backoff_max_ms: restart.backoff_max_ms,
            reset_after_ms: restart.reset_after_ms,
            deadline: None,
            cron: None,
            jobid: None,
            stop_signal: spec.stop_signal,
            grace_ms: spec.grace_ms,
            user: None,
            group: None,
            memory_max: None,
            memory_high: None,
            cpu_max: None,
            pids_max: None,
            ready: None,
            ready_period_ms: None,
            ready_timeout_ms: None,
            ready_within_ms: None,
            health: None,
            health_period_ms: None,
            health_timeout_ms: None,
            health_failures: None,
            watchdog_ms: None,
            after: Vec::new(),
            restart_with: false,
        }
    }
}

impl Template {
    /// The template of a spec.
    ///
    /// ```
    /// use pm_protocol::{template::Template, ProcessSpec};
    /// let spec = ProcessSpec::exec("web", "python3", ["-m", "http.server"]);
    /// let t = Template::from_spec(&spec, true);
    /// assert_eq!(t.file_name(), "web.json");
    /// assert_eq!(Template::from_json(&t.to_json()).unwrap().to_spec().unwrap(), spec);
    /// ```
    pub fn from_spec(spec: &ProcessSpec, run_on_startup: bool) -> Template {
        let (cmd, args, shell) = match &spec.command {
            CommandLine::Shell(line) => (line.clone(), Vec::new(), true),
            CommandLine::Exec { program, args } => (program.clone(), args.clone(), false),
        };
        let r = &spec.restart;
        let p = ProbeOptions::from_settings(&spec.probes);
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
        Template {
            name: spec.name.clone(),
            cmd,
            p_options: TemplateOptions {
                ready: p.ready,
                ready_period_ms: ms(p.ready_period),
                ready_timeout_ms: ms(p.ready_timeout),
                ready_within_ms: ms(p.ready_within),
                health: p.health,
                health_period_ms: ms(p.health_period),
                health_timeout_ms: ms(p.health_timeout),
                health_failures: p.health_failures,
                watchdog_ms: ms(p.watchdog),
                after: spec.after.clone(),
                restart_with: spec.restart_with,
                args,
                restart: r.max_restarts,
                detach: spec.detach,
                run_on_startup,
                notify: false,
                auto_terminate: false,
                shell,
                env: spec.env.clone(),
                env_clear: spec.env_clear,
                env_file: spec.env_files.clone(),
                cwd: spec.cwd.clone(),
                log: spec.log.enabled,
                log_max_bytes: spec.log.max_bytes,
                log_keep_files: spec.log.keep_files,
                log_ring_lines: spec.log.ring_lines,
                restart_policy: Some(r.policy),
                backoff_initial_ms: r.backoff_initial_ms,
                backoff_max_ms: r.backoff_max_ms,
                reset_after_ms: r.reset_after_ms,
                deadline: spec.deadline_secs,
                cron: spec.cron.clone(),
                jobid: spec.job_id.clone(),
                stop_signal: spec.stop_signal,
                grace_ms: spec.grace_ms,
                user: spec.user.clone(),
                group: spec.group.clone(),
                memory_max: spec.limits.memory_max.map(limits::format_size),
                memory_high: spec.limits.memory_high.map(limits::format_size),
                cpu_max: spec.limits.cpu_max.map(|p| format!("{p}%")),
                pids_max: spec.limits.pids_max,
            },
        }
    }

    /// The spec this template defines. A bad name is `PmError::InvalidName`; an empty command, `shell`
    /// with `args` or a restart count below -1 is `PmError::Template`. A non-zero `restart` without a
    /// `restart_policy` means on-failure.
    ///
    /// ```
    /// use pm_protocol::{template::Template, CommandLine, RestartPolicy};
    /// let t = Template::from_json(r#"{"name": "ping", "cmd": "ping",
    ///     "p_options": {"args": ["-c", "3", "localhost"], "restart": 2}}"#).unwrap();
    /// let spec = t.to_spec().unwrap();
    /// assert_eq!(spec.command.display(), "ping -c 3 localhost");
    /// assert_eq!((spec.restart.policy, spec.restart.max_restarts), (RestartPolicy::OnFailure, 2));
    ///
    /// let shell = Template::from_json(r#"{"name": "x", "cmd": "echo hi", "p_options": {"shell": true}}"#);
    /// assert_eq!(shell.unwrap().to_spec().unwrap().command, CommandLine::Shell("echo hi".into()));
    /// let bad = Template::from_json(r#"{"name": "x", "cmd": " "}"#).unwrap();
    /// assert!(bad.to_spec().unwrap_err().to_string().contains("empty cmd"));
    /// ```
    pub fn to_spec(&self) -> Result<ProcessSpec, PmError> {
        validate_name(&self.name)?;
        let o = &self.p_options;
        let bad = |why: &str| PmError::Template(format!("'{}': {why}", self.name));
        if self.cmd.trim().is_empty() {
            return Err(bad("empty cmd"));
        }
        if o.shell && !o.args.is_empty() {
            return Err(bad(
                "args cannot be given with shell: true (put them in cmd)",
            ));
        }
        if o.restart < -1 {
            return Err(bad("restart must be -1 (unlimited), 0 or a positive count"));
        }
        let mut spec = if o.shell {
            ProcessSpec::shell(&self.name, &self.cmd)
        } else {
            ProcessSpec::exec(&self.name, &self.cmd, o.args.iter().cloned())
        };
        let derived_policy = if o.restart != 0 {
            RestartPolicy::OnFailure
        } else {
            RestartPolicy::Never
        };
        spec.env = o.env.clone();
        spec.env_clear = o.env_clear;
        spec.env_files = o.env_file.clone();
        spec.cwd = o.cwd.clone();
        spec.log = LogSettings {
            enabled: o.log,
            max_bytes: o.log_max_bytes,
            keep_files: o.log_keep_files,
            ring_lines: o.log_ring_lines,
        };
        spec.restart = RestartSettings {
            policy: o.restart_policy.unwrap_or(derived_policy),
            max_restarts: o.restart,
            backoff_initial_ms: o.backoff_initial_ms,
            backoff_max_ms: o.backoff_max_ms,
            reset_after_ms: o.reset_after_ms,
        };
        spec.detach = o.detach;
        spec.deadline_secs = o.deadline;
        spec.cron = o.cron.clone();
        spec.job_id = o.jobid.clone();
        spec.stop_signal = o.stop_signal;
        spec.grace_ms = o.grace_ms;
        spec.user = o.user.clone();
        spec.group = o.group.clone();
        let d = ProbeSettings::default();
        spec.probes = ProbeSettings {
            ready: o.ready.clone().unwrap_or_default(),
            ready_period_ms: o.ready_period_ms.unwrap_or(d.ready_period_ms),
            ready_timeout_ms: o.ready_timeout_ms.unwrap_or(d.ready_timeout_ms),
            ready_within_ms: o.ready_within_ms,
            health: o.health.clone(),
            health_period_ms: o.health_period_ms.unwrap_or(d.health_period_ms),
            health_timeout_ms: o.health_timeout_ms.unwrap_or(d.health_timeout_ms),
            health_failures: o.health_failures.unwrap_or(d.health_failures),
            watchdog_ms: o.watchdog_ms,
        };
        spec.probes.validate().map_err(|e| bad(&e))?;
        spec.after = o.after.clone();
        spec.restart_with = o.restart_with;
        let size = |key: &str, v: &Option<String>| match v {
            None => Ok(None),
            Some(t) => limits::parse_size(t)
                .map(Some)
                .ok_or_else(|| bad(&format!("{key} '{t}': expected {}", limits::SIZE_EXPECTED))),
        };
        spec.limits = ResourceLimits {
            memory_max: size("memory_max", &o.memory_max)?,
            memory_high: size("memory_high", &o.memory_high)?,
            cpu_max: match &o.cpu_max {
                None => None,
                Some(t) => Some(limits::parse_cpu(t).ok_or_else(|| {
                    bad(&format!("cpu_max '{t}': expected {}", limits::CPU_EXPECTED))
                })?),
            },
            pids_max: o.pids_max.filter(|&n| n > 0),
        };
        Ok(spec)
    }

    /// Parses a template file's text (only the JSON shape: see [`Template::to_spec`] for the checks on
    /// values). Unknown keys, wrong types and bad JSON are `PmError::Template`, saying what is wrong and
    /// where (line and column).
    ///
    /// ```
    /// use pm_protocol::template::Template;
    /// let t = Template::from_json(r#"{"name": "web", "cmd": "python3"}"#).unwrap();
    /// assert_eq!((t.name.as_str(), t.p_options.run_on_startup), ("web", false));
    ///
    /// let e = Template::from_json(r#"{"name": "web", "cmd": "x", "p_options": {"restrat": 1}}"#);
    /// assert!(e.unwrap_err().to_string().contains("unknown field `restrat`"));
    /// ```
    pub fn from_json(text: &str) -> Result<Template, PmError> {
        serde_json::from_str(text).map_err(|e| PmError::Template(e.to_string()))
    }

    /// The file's text: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and maps cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// `<name>.json`.
    pub fn file_name(&self) -> String {
        file_name(&self.name)
    }
}

/// The file name of the template of `name`: `<name>.json`.
pub fn file_name(name: &str) -> String {
    format!("{name}.json")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::depend::Condition;
    use proptest::prelude::*;

    #[test]
    fn ligato_template_loads() {
        let t = Template::from_json(
            r#"{"name":"ping","cmd":"ping","p_options":{"args":["-c","3","localhost"],
                "restart":2,"detach":true,"run_on_startup":true,"notify":true,"auto_terminate":true}}"#,
        )
        .unwrap();
        assert!(t.p_options.run_on_startup);
        let spec = t.to_spec().unwrap();
        assert_eq!(
            spec.command,
            CommandLine::Exec {
                program: "ping".into(),
                args: vec!["-c".into(), "3".into(), "localhost".into()]
            }
        );
        assert_eq!(spec.restart.max_restarts, 2);
        assert_eq!(spec.restart.policy, RestartPolicy::OnFailure);
        assert!(spec.detach);
    }

    #[test]
    fn minimal_template_has_spec_defaults() {
        let spec = Template::from_json(r#"{"name":"a","cmd":"true"}"#)
            .unwrap()
            .to_spec()
            .unwrap();
        assert_eq!(spec, ProcessSpec::exec("a", "true", Vec::<String>::new()));
    }

    #[test]
    fn bad_templates_say_why() {
        let cases = [
            (r#"{"name":"a","cmd":"x","p_options":{"bogus":1}}"#, "bogus"),
            (r#"{"name":"a","cmd":"x","extra":1}"#, "extra"),
            (r#"{"name":"a"}"#, "cmd"),
            (
                r#"{"name":"a","cmd":"x","p_options":{"restart":"many"}}"#,
                "expected i64",
            ),
            ("{not json", "line 1"),
        ];
        for (text, needle) in cases {
            let e = Template::from_json(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let conv = [
            (r#"{"name":"../x","cmd":"x"}"#, "invalid process name"),
            (r#"{"name":"a","cmd":"  "}"#, "empty cmd"),
            (
                r#"{"name":"a","cmd":"x","p_options":{"shell":true,"args":["y"]}}"#,
                "shell",
            ),
            (
                r#"{"name":"a","cmd":"x","p_options":{"restart":-2}}"#,
                "restart",
            ),
        ];
        for (text, needle) in conv {
            let e = Template::from_json(text)
                .unwrap()
                .to_spec()
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    fn opt_string() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-zA-Z0-9 */,-]{1,12}")
    }

    prop_compose! {
        /// Any valid readiness and health settings.
        fn any_probes()(
            ready in 0usize..5,
            periods in (1u64..100_000, 1u64..100_000, proptest::option::of(1u64..100_000)),
            health in proptest::option::of(0usize..3),
            checks in (1u64..100_000, 1u64..100_000, 1u32..10),
            watchdog in proptest::option::of(1u64..100_000),
        ) -> ProbeSettings {
            let ready = ["started", "notify", "exited", "log:^up [0-9]+$", "tcp:db:5432"][ready];
            let ready = Readiness::parse(ready).unwrap();
            let health = health.map(|h| {
                Probe::parse(["http:http://127.0.0.1:8080/h", "tcp:[::1]:1", "exec:true"][h]).unwrap()
            });
            ProbeSettings {
                watchdog_ms: watchdog.filter(|_| ready == Readiness::Notify),
                ready,
                ready_period_ms: periods.0,
                ready_timeout_ms: periods.1,
                ready_within_ms: periods.2,
                health,
                health_period_ms: checks.0,
                health_timeout_ms: checks.1,
                health_failures: checks.2,
            }
        }
    }

    prop_compose! {
        /// Any valid spec (shared with the state file's tests).
        pub(crate) fn any_spec()(
            name in "[a-zA-Z0-9_.-]{1,20}".prop_filter("not . or ..", |n| n != "." && n != ".."),
            shell in any::<bool>(),
            cmd in "[ -~]{1,30}".prop_filter("non-blank", |c| !c.trim().is_empty()),
            args in proptest::collection::vec("[ -~]{0,10}", 0..4),
            env in proptest::collection::btree_map("[A-Z_]{1,8}", "[ -~]{0,10}", 0..3),
            flags in any::<(bool, bool, bool)>(),
            cwd in proptest::option::of("/[a-z/]{0,12}"),
            log in (any::<u64>(), any::<u32>(), 0usize..100_000),
            restart in (-1i64..100, 0usize..3, any::<(u64, u64, u64)>()),
            deadline in proptest::option::of(any::<u64>()),
            texts in (opt_string(), opt_string(), opt_string(), opt_string()),
            stop in (1i32..=31, any::<u64>()),
            probes in any_probes(),
            deps in (proptest::collection::vec(("[a-z]{1,6}", 0usize..3), 0..3), any::<bool>()),
        ) -> ProcessSpec {
            let mut spec = if shell {
                ProcessSpec::shell(name, cmd)
            } else {
                ProcessSpec::exec(name, cmd, args)
            };
            spec.env = env;
            (spec.env_clear, spec.detach, spec.log.enabled) = flags;
            spec.cwd = cwd.map(PathBuf::from);
            (spec.log.max_bytes, spec.log.keep_files, spec.log.ring_lines) = log;
            spec.restart = RestartSettings {
                policy: [RestartPolicy::Never, RestartPolicy::OnFailure, RestartPolicy::Always][restart.1],
                max_restarts: restart.0,
                backoff_initial_ms: restart.2.0,
                backoff_max_ms: restart.2.1,
                reset_after_ms: restart.2.2,
            };
            spec.deadline_secs = deadline;
            (spec.cron, spec.job_id, spec.user, spec.group) = texts;
            spec.stop_signal = stop.0.to_string().parse().unwrap();
            spec.grace_ms = stop.1;
            spec.probes = probes;
            let conditions = [Condition::Started, Condition::Ready, Condition::Completed];
            spec.after = deps.0.into_iter().map(|(n, c)| Dependency::new(n, conditions[c])).collect();
            spec.restart_with = deps.1;
            spec
        }
    }

    proptest! {
        /// Spec -> template -> JSON text -> template -> spec gives back the same spec and flag.
        #[test]
        fn round_trip(spec in any_spec(), on_startup in any::<bool>()) {
            let t = Template::from_spec(&spec, on_startup);
            let back = Template::from_json(&t.to_json()).unwrap();
            prop_assert_eq!(&back, &t);
            prop_assert_eq!(back.p_options.run_on_startup, on_startup);
            prop_assert_eq!(back.to_spec().unwrap(), spec);
        }
    }
}
