//! The secret check every front door shares: a constant-time comparison and the count of wrong
//! attempts after which a caller is turned away (the socket closes the connection, HTTP answers 429).

use std::time::Duration;

use subtle::ConstantTimeEq;

/// Whether `attempt` is `secret`, compared in constant time so that the answer's timing does not
/// tell how much of a guess was right.
pub fn secret_matches(attempt: &str, secret: &str) -> bool {
    attempt.as_bytes().ct_eq(secret.as_bytes()).into()
}

/// How wrong secrets are slowed down: each answer waits `delay`, and the `max_attempts`-th ends the
/// caller's tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretThrottle {
    /// The answer to a wrong secret waits this long.
    pub delay: Duration,
    /// This many wrong secrets end the caller's tries.
    pub max_attempts: u32,
}

/// One caller's wrong secrets so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrongSecrets {
    count: u32,
}

impl WrongSecrets {
    /// Counts one more wrong secret; true when it was the last one `throttle` allows.
    pub fn record(&mut self, throttle: &SecretThrottle) -> bool {
        self.count = self.count.saturating_add(1);
        self.exhausted(throttle)
    }

    /// Whether the caller has used up its tries.
    pub fn exhausted(&self, throttle: &SecretThrottle) -> bool {
        self.count >= throttle.max_attempts
    }

    /// The wrong secrets counted.
    pub fn count(&self) -> u32 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_allowed_attempt_is_reported() {
        let throttle = SecretThrottle {
            delay: Duration::ZERO,
            max_attempts: 2,
        };
        let mut wrong = WrongSecrets::default();
        assert!(!wrong.record(&throttle));
        assert!(wrong.record(&throttle));
        assert!(wrong.exhausted(&throttle));
        assert_eq!(wrong.count(), 2);
        assert!(secret_matches("s3cret", "s3cret"));
        assert!(!secret_matches("s3cre", "s3cret"));
    }
}
