//! The readiness and health options of `!!process.start` (`ready`, `health`, their periods and
//! timeouts, `watchdog`): read from heroscript, written back, and put into a spec.

use std::time::Duration;

use crate::heroscript::{format_duration, Action, ActionWriter, ParseError};
use crate::probe::{Probe, ProbeSettings, Readiness};
use crate::PmError;

/// Readiness and health as a start gives them; `None` keeps a default (see [`ProbeSettings`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeOptions {
    /// `ready:notify`, `ready:'http:...'`, ...; `started` when `None`.
    pub ready: Option<Readiness>,
    /// `ready_period:` (1 s when `None`).
    pub ready_period: Option<Duration>,
    /// `ready_timeout:` (1 s when `None`).
    pub ready_timeout: Option<Duration>,
    /// `ready_within:` (no limit when `None`).
    pub ready_within: Option<Duration>,
    /// `health:'http:...'`, `'tcp:...'` or `'exec:...'`.
    pub health: Option<Probe>,
    /// `health_period:` (10 s when `None`).
    pub health_period: Option<Duration>,
    /// `health_timeout:` (1 s when `None`).
    pub health_timeout: Option<Duration>,
    /// `health_failures:` (3 when `None`).
    pub health_failures: Option<u32>,
    /// `watchdog:` (with `ready:notify`).
    pub watchdog: Option<Duration>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ProbeOptions {
    /// Reads the options from `a`; a bad URL, regex or readiness is an error at its value.
    pub fn from_action(a: &Action) -> Result<Self, ParseError> {
        let ready = match a.param("ready").filter(|p| !p.value.is_empty()) {
            None => None,
            Some(p) => Some(Readiness::parse(&p.value).map_err(|e| Action::value_error(p, &e))?),
        };
        let health = match a.param("health").filter(|p| !p.value.is_empty()) {
            None => None,
            Some(p) => Some(Probe::parse(&p.value).map_err(|e| Action::value_error(p, &e))?),
        };
        let opts = ProbeOptions {
            ready,
            ready_period: a.duration("ready_period")?,
            ready_timeout: a.duration("ready_timeout")?,
            ready_within: a.duration("ready_within")?,
            health,
            health_period: a.duration("health_period")?,
            health_timeout: a.duration("health_timeout")?,
            health_failures: a.typed("health_failures", "a count of at least 1", |v| {
                v.parse::<u32>().ok().filter(|n| *n >= 1)
            })?,
            watchdog: a.duration("watchdog")?,
        };
        if let Err(e) = opts.to_settings() {
            let at = a.param("watchdog").or(a.param("ready"));
            return Err(match at {
                Some(p) => Action::value_error(p, &e.to_string()),
                None => a.error(crate::heroscript::ParseErrorKind::Invalid(e.to_string())),
            });
        }
        Ok(opts)
    }

    /// Writes the options that are set.
    pub fn write(&self, w: &mut ActionWriter) {
        let dur = |d: Option<Duration>| d.map(format_duration);
        w.opt(
            "ready",
            self.ready.as_ref().map(|r| r.to_string()).as_deref(),
        )
        .opt("ready_period", dur(self.ready_period).as_deref())
        .opt("ready_timeout", dur(self.ready_timeout).as_deref())
        .opt("ready_within", dur(self.ready_within).as_deref())
        .opt(
            "health",
            self.health.as_ref().map(|p| p.to_string()).as_deref(),
        )
        .opt("health_period", dur(self.health_period).as_deref())
        .opt("health_timeout", dur(self.health_timeout).as_deref())
        .num("health_failures", self.health_failures)
        .opt("watchdog", dur(self.watchdog).as_deref());
    }

    /// The settings these options give, checked as a whole ([`ProbeSettings::validate`]).
    pub fn to_settings(&self) -> Result<ProbeSettings, PmError> {
        let d = ProbeSettings::default();
        let s = ProbeSettings {
            ready: self.ready.clone().unwrap_or_default(),
            ready_period_ms: self.ready_period.map_or(d.ready_period_ms, millis),
            ready_timeout_ms: self.ready_timeout.map_or(d.ready_timeout_ms, millis),
            ready_within_ms: self.ready_within.map(millis),
            health: self.health.clone(),
            health_period_ms: self.health_period.map_or(d.health_period_ms, millis),
            health_timeout_ms: self.health_timeout.map_or(d.health_timeout_ms, millis),
            health_failures: self.health_failures.unwrap_or(d.health_failures),
            watchdog_ms: self.watchdog.map(millis),
        };
        s.validate().map_err(PmError::Invalid)?;
        Ok(s)
    }

    /// The options that give `s` (a default value is left unset), for templates and stack files.
    pub fn from_settings(s: &ProbeSettings) -> Self {
        let d = ProbeSettings::default();
        let ms = |v: u64, default: u64| (v != default).then(|| Duration::from_millis(v));
        ProbeOptions {
            ready: s.ready.is_explicit().then(|| s.ready.clone()),
            ready_period: ms(s.ready_period_ms, d.ready_period_ms),
            ready_timeout: ms(s.ready_timeout_ms, d.ready_timeout_ms),
            ready_within: s.ready_within_ms.map(Duration::from_millis),
            health: s.health.clone(),
            health_period: ms(s.health_period_ms, d.health_period_ms),
            health_timeout: ms(s.health_timeout_ms, d.health_timeout_ms),
            health_failures: (s.health_failures != d.health_failures).then_some(s.health_failures),
            watchdog: s.watchdog_ms.map(Duration::from_millis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{parse_script, Command};

    #[test]
    fn options_reach_the_spec_and_come_back() {
        let cmds = parse_script(
            "!!process.start name:web command:'run' ready:'http:http://127.0.0.1:8080/' \
             ready_within:5s health:'tcp:127.0.0.1:8080' health_period:2s health_failures:2",
        )
        .unwrap();
        let Command::Start(start) = &cmds[0] else {
            panic!("not a start: {cmds:?}");
        };
        let spec = start.to_spec().unwrap();
        assert_eq!(spec.probes.ready_within_ms, Some(5000));
        assert_eq!(spec.probes.health_failures, 2);
        assert_eq!(spec.probes.health_period_ms, 2000);
        assert_eq!(ProbeOptions::from_settings(&spec.probes), start.probes);
    }

    #[test]
    fn bad_values_are_clear_errors_at_definition() {
        for (script, word) in [
            ("ready:'http:https://x/'", "https"),
            ("ready:'log:('", "regex"),
            ("ready:soon", "readiness"),
            ("health:'udp:x'", "check"),
            ("watchdog:5s", "notify"),
            ("health_failures:0", "at least 1"),
            ("helth:'tcp:x:1'", "health"),
        ] {
            let e = parse_script(&format!("!!process.start name:w command:x {script}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(word), "{script}: {e}");
        }
    }
}
