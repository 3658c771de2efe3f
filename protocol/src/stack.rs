//! Stack files: many process definitions in one YAML (or JSON) file, keyed by heroscript option names.
//!
//! A stack has `defaults` (applied to every process; a process's own keys win, and `env` maps merge
//! key by key) and `processes`, a map from name to options. The client reads the file, makes its
//! relative paths absolute ([`StackFile::resolve_paths`]) and sends it as JSON in `!!process.apply`;
//! the daemon reads that JSON with the same code ([`StackFile::parse`]) and turns it into specs in
//! dependency order ([`StackFile::to_specs`]).
//!
//! ```
//! use pm_protocol::stack::StackFile;
//! let text = "defaults:\n  log: true\nprocesses:\n  db:\n    command: sleep 30\n  web:\n    program: sleep\n    args: [30]\n    after: db\n";
//! let stack = StackFile::parse(text).unwrap();
//! let specs = stack.to_specs().unwrap();
//! assert_eq!(specs.iter().map(|s| s.spec.name.as_str()).collect::<Vec<_>>(), ["db", "web"]);
//! assert!(specs[1].spec.log.enabled);
//!
//! let err = StackFile::parse("processes:\n  db:\n    comand: x\n").unwrap_err();
//! assert!(err.to_string().contains("line 3"), "{err}");
//! assert!(err.to_string().contains("`command`"), "{err}");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::command::start::read_policy;
use crate::command::{ProbeOptions, Start};
use crate::depend::{find_cycle, Dependency};
use crate::heroscript::parse_duration;
use crate::limits::{self, ResourceLimits};
use crate::probe::{Probe, Readiness};
use crate::{PmError, ProcessSpec};

/// A YAML scalar given where the option wants text: `8080` and `'8080'` are the same argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Text(s) => f.write_str(s),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Float(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One value or a list of them (`after: db` or `after: [db, cache]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl OneOrMany {
    fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Environment variables: a map (`{PORT: 8080}`) or a list of `K=V`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvVars {
    /// `KEY: value` pairs.
    Map(BTreeMap<String, Scalar>),
    /// `KEY=value` items.
    List(Vec<String>),
}

impl EnvVars {
    fn to_map(&self) -> Result<BTreeMap<String, String>, PmError> {
        match self {
            EnvVars::Map(m) => Ok(m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()),
            EnvVars::List(items) => items
                .iter()
                .map(|item| match item.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => Err(PmError::Invalid(format!(
                        "env item '{item}' is not KEY=VALUE"
                    ))),
                })
                .collect(),
        }
    }
}

/// The options of one process (or the defaults), named as `!!process.start` names them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackOptions {
    /// A command line run with `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A program run directly, with `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The arguments of `program`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Scalar>>,
    /// Variables; they win over the env files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvVars>,
    /// Dotenv files read at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<OneOrMany>,
    /// The working directory (relative to the stack file's folder; that folder when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Capture output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<bool>,
    /// Automatic restarts, `-1` unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i64>,
    /// `always`, `on-failure` or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// A cron expression: scheduled, not started now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Stop after this long (`30s`, or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Scalar>,
    /// A caller's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobid: Option<String>,
    /// Lead its own session and outlive the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach: Option<bool>,
    /// The signal a stop sends first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL (`5s`, or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Scalar>,
    /// Run as this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run with this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// What must hold before it starts (`db`, `db:started`, `migrate:completed`): processes of the
    /// stack, started before this one (and restarted before it on a change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<OneOrMany>,
    /// Restart it after a dependency of `after` restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_with: Option<bool>,

    // Readiness and health (issue 14, part D), as `!!process.start` names them.
    /// How readiness is known: `notify`, `exited`, `log:<regex>`, `http:<url>`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Time between readiness checks (`500ms`, or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_period: Option<Scalar>,
    /// Timeout of each readiness check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<Scalar>,
    /// A start not ready this long after it began fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_within: Option<Scalar>,
    /// The health check: `http:<url>`, `tcp:<host>:<port>` or `exec:<command>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Time between health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_period: Option<Scalar>,
    /// Timeout of each health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<Scalar>,
    /// Failed checks in a row that make it unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_failures: Option<u32>,
    /// With `ready: notify`: no `WATCHDOG=1` for this long is a failed check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<Scalar>,

    // Limits (issue 18), written as in a script (`512M`, `150%`).
    /// Memory past which the OOM killer kills in the process's cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<Scalar>,
    /// Memory past which the process's cgroup is throttled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<Scalar>,
    /// CPU in percent of one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<Scalar>,
    /// The most processes in the process's cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
}

impl StackOptions {
    /// The spec of process `name` with these options, checked (a bad value is an error naming the
    /// process). A dependency in `after` may name any process, defined or not.
    ///
    /// ```
    /// use pm_protocol::stack::StackOptions;
    /// let o: StackOptions = serde_json::from_str(r#"{"command": "x", "after": "db:started"}"#).unwrap();
    /// assert_eq!(o.to_spec("web").unwrap().after[0].to_string(), "db:started");
    /// ```
    pub fn to_spec(&self, name: &str) -> Result<ProcessSpec, PmError> {
        to_start(name, self)
            .and_then(|s| s.to_spec())
            .map_err(|e| PmError::Invalid(format!("process '{name}': {e}")))
    }
}

/// Fills every option `own` leaves out from `defaults`; `env` maps merge, `own` winning per key.
fn merged(own: &StackOptions, defaults: &StackOptions) -> StackOptions {
    macro_rules! pick {
        ($($field:ident),*) => {
            StackOptions {
                $($field: own.$field.clone().or_else(|| defaults.$field.clone()),)*
                env: merged_env(own.env.as_ref(), defaults.env.as_ref()),
            }
        };
    }
    pick!(
        command,
        program,
        args,
        env_file,
        cwd,
        log,
        restarts,
        restart_policy,
        cron,
        deadline,
        jobid,
        detach,
        stop_signal,
        grace,
        user,
        group,
        after,
        restart_with,
        ready,
        ready_period,
        ready_timeout,
        ready_within,
        health,
        health_period,
        health_timeout,
        health_failures,
        watchdog,
        memory_max,
        memory_high,
        cpu_max,
        pids_max
    )
}

fn merged_env(own: Option<&EnvVars>, defaults: Option<&EnvVars>) -> Option<EnvVars> {
    match (own, defaults) {
        (Some(own), Some(defaults)) => {
            let (Ok(mut all), Ok(own)) = (defaults.to_map(), own.to_map()) else {
                // A malformed list is reported by `to_specs`; keep the process's own value for that.
                return Some(own.clone());
            };
            all.extend(own);
            Some(EnvVars::Map(
                all.into_iter().map(|(k, v)| (k, Scalar::Text(v))).collect(),
            ))
        }
        (own, defaults) => own.or(defaults).cloned(),
    }
}

/// A stack file: defaults and processes by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Options every process gets unless it sets its own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub defaults: StackOptions,
    /// The processes, by name.
    #[serde(default)]
    pub processes: BTreeMap<String, StackOptions>,
}

fn is_default(o: &StackOptions) -> bool {
    *o == StackOptions::default()
}

/// One process of a stack as the daemon starts it, with the names it starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackProcess {
    /// The definition.
    pub spec: ProcessSpec,
    /// The processes of the stack it depends on.
    pub after: Vec<String>,
}

impl StackFile {
    /// Reads a stack from YAML or JSON. An unknown key is an error naming its line and the known keys.
    pub fn parse(text: &str) -> Result<StackFile, PmError> {
        serde_yaml_ng::from_str(text).map_err(|e| PmError::Invalid(format!("stack file: {e}")))
    }

    /// The stack as one line of JSON, the form `!!process.apply` carries.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Folds the defaults into every process and makes `cwd` and `env_file` absolute against `base`
    /// (the stack file's folder); a process without `cwd` runs in `base`.
    pub fn resolve_paths(&self, base: &Path) -> StackFile {
        let absolute = |p: &str| base.join(p).display().to_string();
        let processes = self
            .processes
            .iter()
            .map(|(name, own)| {
                let mut o = merged(own, &self.defaults);
                // A program named by a path (`./bin/server`) is the stack's; a bare name is looked up.
                o.program = o
                    .program
                    .map(|p| if p.contains('/') { absolute(&p) } else { p });
                o.cwd = Some(
                    o.cwd
                        .as_deref()
                        .map_or_else(|| base.display().to_string(), absolute),
                );
                o.env_file = o
                    .env_file
                    .map(|f| OneOrMany::Many(f.to_vec().iter().map(|p| absolute(p)).collect()));
                (name.clone(), o)
            })
            .collect();
        StackFile {
            defaults: StackOptions::default(),
            processes,
        }
    }

    /// Every process as a spec, checked, in dependency order (each after those it names in `after`;
    /// otherwise by name). An unknown name in `after`, a cycle or a bad value is an error.
    pub fn to_specs(&self) -> Result<Vec<StackProcess>, PmError> {
        let mut all = BTreeMap::new();
        for (name, own) in &self.processes {
            let spec = merged(own, &self.defaults).to_spec(name)?;
            let after: Vec<String> = spec.after.iter().map(|d| d.name.clone()).collect();
            for dep in &after {
                if !self.processes.contains_key(dep) {
                    return Err(PmError::Invalid(format!(
                        "process '{name}': 'after' names '{dep}', which is not in the stack"
                    )));
                }
            }
            all.insert(name.clone(), StackProcess { spec, after });
        }
        dependency_order(all)
    }
}

/// The processes sorted so that each comes after those it depends on.
fn dependency_order(mut all: BTreeMap<String, StackProcess>) -> Result<Vec<StackProcess>, PmError> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(all.len());
    while !all.is_empty() {
        let ready: Vec<String> = all
            .iter()
            .filter(|(_, p)| p.after.iter().all(|d| done.contains(d)))
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            let edges = |n: &str| all.get(n).map(|p| p.after.clone()).unwrap_or_default();
            let cycle = all
                .keys()
                .find_map(|n| find_cycle(n, edges))
                .unwrap_or_else(|| all.keys().cloned().collect::<Vec<_>>().join(", "));
            return Err(PmError::Invalid(format!("dependency cycle: {cycle}")));
        }
        for name in ready {
            if let Some(p) = all.remove(&name) {
                out.push(p);
            }
            done.insert(name);
        }
    }
    Ok(out)
}

fn duration(key: &str, v: &Scalar) -> Result<std::time::Duration, PmError> {
    let text = match v {
        Scalar::Int(n) => format!("{n}s"),
        other => other.to_string(),
    };
    parse_duration(&text)
        .ok_or_else(|| PmError::Invalid(format!("{key}: '{v}' is not a duration such as 5s")))
}

/// The start command the options describe.
fn to_start(name: &str, o: &StackOptions) -> Result<Start, PmError> {
    let mut start = match (&o.command, &o.program) {
        (Some(c), None) if o.args.is_none() => Start::shell(name, c.clone()),
        (Some(_), None) => {
            return Err(PmError::Invalid(
                "'args' goes with 'program', not with 'command'".into(),
            ))
        }
        (None, Some(p)) => Start::exec(
            name,
            p.clone(),
            o.args.iter().flatten().map(Scalar::to_string).collect(),
        ),
        (Some(_), Some(_)) => {
            return Err(PmError::Invalid(
                "give either 'command' or 'program' (with 'args'), not both".into(),
            ))
        }
        (None, None) => return Err(PmError::Invalid("'command' or 'program' is missing".into())),
    };
    start.log = o.log.unwrap_or(false);
    start.env = o
        .env
        .as_ref()
        .map(EnvVars::to_map)
        .transpose()?
        .unwrap_or_default();
    start.env_files = o
        .env_file
        .as_ref()
        .map(OneOrMany::to_vec)
        .unwrap_or_default();
    start.cwd = o.cwd.clone();
    start.restarts = o.restarts;
    if let Some(p) = &o.restart_policy {
        start.restart_policy = Some(read_policy(p).ok_or_else(|| {
            PmError::Invalid(format!(
                "restart_policy: '{p}' is not always, on-failure or never"
            ))
        })?);
    }
    start.cron = o.cron.clone().filter(|c| !c.is_empty());
    start.deadline = o
        .deadline
        .as_ref()
        .map(|d| duration("deadline", d))
        .transpose()?
        .filter(|d| !d.is_zero());
    start.jobid = o.jobid.clone();
    start.detach = o.detach.unwrap_or(false);
    start.stop_signal = o.stop_signal.as_deref().map(str::parse).transpose()?;
    start.grace = o.grace.as_ref().map(|g| duration("grace", g)).transpose()?;
    start.user = o.user.clone();
    start.group = o.group.clone();
    start.probes = probe_options(o)?;
    start.after = o
        .after
        .as_ref()
        .map(OneOrMany::to_vec)
        .unwrap_or_default()
        .iter()
        .map(|d| Dependency::parse(d).map_err(|e| PmError::Invalid(format!("after: {e}"))))
        .collect::<Result<_, _>>()?;
    start.restart_with = o.restart_with.unwrap_or(false);
    start.limits = resource_limits(o)?;
    Ok(start)
}

/// The limits of one process of a stack.
fn resource_limits(o: &StackOptions) -> Result<ResourceLimits, PmError> {
    let read = |key: &str, v: &Option<Scalar>, parse: fn(&str) -> Option<u64>, expected: &str| {
        v.as_ref()
            .map(|s| {
                let text = s.to_string();
                parse(&text)
                    .ok_or_else(|| PmError::Invalid(format!("{key}: '{text}' is not {expected}")))
            })
            .transpose()
    };
    let cpu = |t: &str| limits::parse_cpu(t).map(u64::from);
    Ok(ResourceLimits {
        memory_max: read(
            "memory_max",
            &o.memory_max,
            limits::parse_size,
            limits::SIZE_EXPECTED,
        )?,
        memory_high: read(
            "memory_high",
            &o.memory_high,
            limits::parse_size,
            limits::SIZE_EXPECTED,
        )?,
        cpu_max: read("cpu_max", &o.cpu_max, cpu, limits::CPU_EXPECTED)?.map(|p| p as u32),
        pids_max: o.pids_max.filter(|&n| n > 0),
    })
}

/// The readiness and health options of one process of a stack.
fn probe_options(o: &StackOptions) -> Result<ProbeOptions, PmError> {
    let within = |key: &str, v: &Option<Scalar>| v.as_ref().map(|d| duration(key, d)).transpose();
    let bad = |key: &str, e: String| PmError::Invalid(format!("{key}: {e}"));
    let opts = ProbeOptions {
        ready: o
            .ready
            .as_deref()
            .map(|r| Readiness::parse(r).map_err(|e| bad("ready", e)))
            .transpose()?,
        ready_period: within("ready_period", &o.ready_period)?,
        ready_timeout: within("ready_timeout", &o.ready_timeout)?,
        ready_within: within("ready_within", &o.ready_within)?,
        health: o
            .health
            .as_deref()
            .map(|p| Probe::parse(p).map_err(|e| bad("health", e)))
            .transpose()?,
        health_period: within("health_period", &o.health_period)?,
        health_timeout: within("health_timeout", &o.health_timeout)?,
        health_failures: o.health_failures,
        watchdog: within("watchdog", &o.watchdog)?,
    };
    opts.to_settings()?;
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_defaults_and_processes() {
        let text = "defaults:\n  pids_max: 200\nprocesses:\n  web:\n    command: run\n    \
                    memory_max: 512M\n    cpu_max: 150%\n";
        let specs = StackFile::parse(text).unwrap().to_specs().unwrap();
        let l = &specs[0].spec.limits;
        assert_eq!(
            (l.memory_max, l.cpu_max, l.pids_max),
            (Some(512 << 20), Some(150), Some(200))
        );
        let bad = "processes:\n  web:\n    command: run\n    memory_max: lots\n";
        let err = StackFile::parse(bad)
            .unwrap()
            .to_specs()
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory_max: 'lots' is not a size"), "{err}");
    }

    #[test]
    fn readiness_and_health_are_read_and_checked() {
        let text = "defaults:\n  health_period: 2s\nprocesses:\n  web:\n    command: run\n    \
                    ready: 'http:http://127.0.0.1:8080/up'\n    ready_within: 30\n    \
                    health: 'tcp:127.0.0.1:8080'\n    health_failures: 5\n";
        let specs = StackFile::parse(text).unwrap().to_specs().unwrap();
        let p = &specs[0].spec.probes;
        assert_eq!(p.ready.to_string(), "http:http://127.0.0.1:8080/up");
        assert_eq!(
            (p.ready_within_ms, p.health_period_ms, p.health_failures),
            (Some(30_000), 2000, 5)
        );
        for (bad, word) in [
            ("ready: 'log:('", "regex"),
            ("watchdog: 5s", "notify"),
            ("health: 'x'", "health"),
        ] {
            let text = format!("processes:\n  web:\n    command: run\n    {bad}\n");
            let e = StackFile::parse(&text).unwrap().to_specs().unwrap_err();
            assert!(e.to_string().contains(word), "{bad}: {e}");
        }
    }

    #[test]
    fn env_may_be_a_map_or_a_list_and_defaults_merge() {
        let text = "defaults:\n  env: {A: '1', B: '2'}\nprocesses:\n  x:\n    command: 'true'\n    env: ['B=3', 'C=4']\n";
        let specs = StackFile::parse(text).unwrap().to_specs().unwrap();
        let env = &specs[0].spec.env;
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "3");
        assert_eq!(env["C"], "4");
    }

    #[test]
    fn json_is_read_too_and_round_trips() {
        let text = r#"{"processes": {"x": {"program": "sleep", "args": [5], "grace": "2s"}}}"#;
        let stack = StackFile::parse(text).unwrap();
        assert_eq!(StackFile::parse(&stack.to_json()).unwrap(), stack);
        let spec = &stack.to_specs().unwrap()[0].spec;
        assert_eq!(spec.command.display(), "sleep 5");
        assert_eq!(spec.grace_ms, 2000);
    }

    #[test]
    fn a_stop_signal_is_checked_like_everywhere_else() {
        let good = "processes:\n  a: {command: x, stop_signal: INT}\n";
        let specs = StackFile::parse(good).unwrap().to_specs().unwrap();
        assert_eq!(specs[0].spec.stop_signal.as_str(), "SIGINT");
        let bad = "processes:\n  a: {command: x, stop_signal: BOGUS}\n";
        let err = StackFile::parse(bad).unwrap().to_specs().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("process 'a': invalid signal 'BOGUS'") && text.contains("TERM"),
            "{text}"
        );
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_errors() {
        let cycle = "processes:\n  a: {command: x, after: b}\n  b: {command: x, after: a}\n";
        let err = StackFile::parse(cycle).unwrap().to_specs().unwrap_err();
        assert!(
            err.to_string().contains("dependency cycle: a -> b -> a"),
            "{err}"
        );
        let conditions = "processes:\n  a: {command: x, after: ['b:completed', c]}\n  \
                          b: {command: x}\n  c: {command: x, restart_with: true}\n";
        let specs = StackFile::parse(conditions).unwrap().to_specs().unwrap();
        assert_eq!(specs[2].spec.after[0].to_string(), "b:completed");
        assert!(specs[1].spec.restart_with);
        let bad = "processes:\n  a: {command: x, after: 'b:soon'}\n  b: {command: x}\n";
        let err = StackFile::parse(bad).unwrap().to_specs().unwrap_err();
        assert!(
            err.to_string().contains("unknown condition 'soon'"),
            "{err}"
        );
        let unknown = "processes:\n  a: {command: x, after: zz}\n";
        let err = StackFile::parse(unknown).unwrap().to_specs().unwrap_err();
        assert!(err.to_string().contains("'zz'"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_stack_file() {
        let text = "processes:\n  a: {command: x, env_file: a.env}\n  b: {command: x, cwd: sub}\n";
        let stack = StackFile::parse(text)
            .unwrap()
            .resolve_paths(Path::new("/srv/app"));
        let specs = stack.to_specs().unwrap();
        assert_eq!(specs[0].spec.env_files, [Path::new("/srv/app/a.env")]);
        assert_eq!(specs[0].spec.cwd.as_deref(), Some(Path::new("/srv/app")));
        assert_eq!(
            specs[1].spec.cwd.as_deref(),
            Some(Path::new("/srv/app/sub"))
        );
    }
}
