//! Signal names and numbers: parsing what users type, naming what killed a process.

use nix::sys::signal::Signal;
use pm_protocol::PmError;

/// Parses `HUP`, `SIGHUP`, `hup` or `1`.
pub fn parse_signal(text: &str) -> Result<Signal, PmError> {
    let t = text.trim();
    let bad = || PmError::InvalidSignal(text.to_string());
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
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
