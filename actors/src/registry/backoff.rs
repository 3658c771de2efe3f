//! The restart decision: policy, remaining count, and the exponential backoff delay.

use std::time::Duration;

use pm_protocol::{RestartPolicy, RestartSettings};

/// What to do after a process ended by itself.
///
/// ```
/// use std::time::Duration;
/// use pm_actors::registry::backoff::{Backoff, Decision};
/// use pm_protocol::{RestartPolicy, RestartSettings};
///
/// let two = RestartSettings { policy: RestartPolicy::OnFailure, max_restarts: 2, ..Default::default() };
/// let mut b = Backoff::default();
/// let up = Duration::ZERO;
/// assert_eq!(b.decide(&two, true, "exited with code 0", up), Decision::Stay); // on-failure: a success stays
/// b.decide(&two, false, "exited with code 1", up);
/// b.decide(&two, false, "exited with code 1", up);
/// let gave_up = "gave up after 2 restarts, last exit: exited with code 1".to_string();
/// assert_eq!(b.decide(&two, false, "exited with code 1", up), Decision::GiveUp(gave_up));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The policy does not restart this exit.
    Stay,
    /// Restart after this delay (zero: at once).
    RestartAfter(Duration),
    /// The restarts ran out: `gave up after N restarts`.
    GiveUp(String),
}

/// Restart bookkeeping of one process.
///
/// ```
/// use std::time::Duration;
/// use pm_actors::registry::backoff::{Backoff, Decision};
/// use pm_protocol::{RestartPolicy, RestartSettings};
///
/// let settings = RestartSettings { policy: RestartPolicy::Always, max_restarts: -1, ..Default::default() };
/// let mut b = Backoff::default();
/// let up = Duration::from_millis(5);
/// let last = "exited with code 1";
/// assert_eq!(b.decide(&settings, false, last, up), Decision::RestartAfter(Duration::ZERO));
/// assert_eq!(b.decide(&settings, false, last, up), Decision::RestartAfter(Duration::from_millis(100)));
/// assert_eq!(b.decide(&settings, false, last, up), Decision::RestartAfter(Duration::from_millis(200)));
/// assert_eq!(b.restarts, 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Automatic restarts so far (what status shows, and what `max_restarts` limits).
    pub restarts: u64,
    /// Restarts since the process last stayed up `reset_after_ms`: drives the delay.
    pub consecutive: u32,
}

impl Backoff {
    /// Decides after a run that had been up for `uptime` ended (`success`: exit 0; `last`: how it
    /// ended, e.g. `exited with code 3`), and counts the restart.
    pub fn decide(
        &mut self,
        s: &RestartSettings,
        success: bool,
        last: &str,
        uptime: Duration,
    ) -> Decision {
        let wanted = match s.policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Always => true,
        };
        if !wanted || s.max_restarts == 0 {
            return Decision::Stay;
        }
        if s.max_restarts > 0 && self.restarts >= s.max_restarts as u64 {
            return Decision::GiveUp(format!(
                "gave up after {} restarts, last exit: {}",
                self.restarts, last
            ));
        }
        if uptime >= Duration::from_millis(s.reset_after_ms) {
            self.consecutive = 0;
        }
        let delay = delay_for(s, self.consecutive);
        self.consecutive = self.consecutive.saturating_add(1);
        self.restarts += 1;
        Decision::RestartAfter(delay)
    }
}

/// The delay before restart number `consecutive` (0-based): 0, initial, 2*initial, ... up to the cap.
///
/// ```
/// use std::time::Duration;
/// use pm_actors::registry::backoff::delay_for;
/// let s = pm_protocol::RestartSettings::default(); // 100 ms doubling, capped at 30 s
/// assert_eq!(delay_for(&s, 0), Duration::ZERO);
/// assert_eq!(delay_for(&s, 3), Duration::from_millis(400));
/// assert_eq!(delay_for(&s, 20), Duration::from_secs(30));
/// ```
pub fn delay_for(s: &RestartSettings, consecutive: u32) -> Duration {
    if consecutive == 0 {
        return Duration::ZERO;
    }
    let factor = 1u64.checked_shl(consecutive - 1).unwrap_or(u64::MAX);
    let ms = s
        .backoff_initial_ms
        .saturating_mul(factor)
        .min(s.backoff_max_ms);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run ending with `code`, as `decide` sees it.
    fn exit(code: i32) -> (bool, String) {
        (code == 0, format!("exited with code {code}"))
    }

    fn decide(b: &mut Backoff, s: &RestartSettings, e: &(bool, String), up: Duration) -> Decision {
        b.decide(s, e.0, &e.1, up)
    }

    fn settings(policy: RestartPolicy, max: i64) -> RestartSettings {
        RestartSettings {
            policy,
            max_restarts: max,
            ..Default::default()
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let s = settings(RestartPolicy::Always, -1);
        let got: Vec<u64> = (0..12)
            .map(|n| delay_for(&s, n).as_millis() as u64)
            .collect();
        assert_eq!(
            got,
            [0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(delay_for(&s, 200), Duration::from_secs(30));
    }

    #[test]
    fn policies() {
        let short = Duration::from_millis(1);
        let mut b = Backoff::default();
        assert_eq!(
            decide(&mut b, &settings(RestartPolicy::Never, 5), &exit(1), short),
            Decision::Stay
        );
        let onf = settings(RestartPolicy::OnFailure, 5);
        assert_eq!(decide(&mut b, &onf, &exit(0), short), Decision::Stay);
        assert_eq!(
            decide(&mut b, &onf, &exit(2), short),
            Decision::RestartAfter(Duration::ZERO)
        );
        let always = settings(RestartPolicy::Always, 5);
        assert!(matches!(
            decide(&mut b, &always, &exit(0), short),
            Decision::RestartAfter(_)
        ));
        assert_eq!(
            decide(&mut b, &settings(RestartPolicy::Always, 0), &exit(1), short),
            Decision::Stay
        );
    }

    #[test]
    fn gives_up_after_max_and_names_the_exit() {
        let s = settings(RestartPolicy::OnFailure, 2);
        let mut b = Backoff::default();
        let short = Duration::from_millis(1);
        assert!(matches!(
            decide(&mut b, &s, &exit(3), short),
            Decision::RestartAfter(_)
        ));
        assert!(matches!(
            decide(&mut b, &s, &exit(3), short),
            Decision::RestartAfter(_)
        ));
        assert_eq!(
            decide(&mut b, &s, &exit(3), short),
            Decision::GiveUp("gave up after 2 restarts, last exit: exited with code 3".into())
        );
        assert_eq!(b.restarts, 2);
    }

    #[test]
    fn staying_up_resets_the_delay_not_the_count() {
        let s = settings(RestartPolicy::Always, -1);
        let mut b = Backoff::default();
        let short = Duration::from_millis(1);
        for _ in 0..4 {
            decide(&mut b, &s, &exit(1), short);
        }
        assert_eq!(
            decide(&mut b, &s, &exit(1), short),
            Decision::RestartAfter(Duration::from_millis(800))
        );
        assert_eq!(
            decide(&mut b, &s, &exit(1), Duration::from_secs(11)),
            Decision::RestartAfter(Duration::ZERO)
        );
        assert_eq!(b.restarts, 6);
    }
}
