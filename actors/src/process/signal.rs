//! Signal names and numbers: parsing what users type, naming what killed a process.

use nix::sys::signal::Signal;
use pm_protocol::{PmError, SignalName};

/// Parses `HUP`, `SIGHUP`, `hup` or `1` (the protocol's [`SignalName`] rules).
pub fn parse_signal(text: &str) -> Result<Signal, PmError> {
    to_nix(text.parse()?)
}

/// The signal to send for a [`SignalName`], looked up by name so that it holds on every platform.
pub fn to_nix(name: SignalName) -> Result<Signal, PmError> {
    name.as_str()
        .parse::<Signal>()
        .map_err(|_| PmError::InvalidSignal(name.to_string()))
}

/// `SIGSEGV` for 11; `signal 42` for numbers nix does not name (real-time signals).
pub fn signal_name(n: i32) -> String {
    match Signal::try_from(n) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
        assert_eq!(signal_name(11), "SIGSEGV");
    }
}
