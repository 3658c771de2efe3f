//! The typed signal name ([`SignalName`]): what `stop_signal` holds, parsed from `TERM`, `SIGTERM` or `15`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PmError;

/// The standard Linux signals, by number (index + 1). Real-time signals have no name and are not
/// accepted: a stop or a `signal` sends one of these.
const NAMES: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// A known signal, as a user names it: `TERM`, `sigterm`, `SIGTERM` or `15` all parse to the same
/// value. It serializes as its canonical name (`"SIGTERM"`), the string state files and templates have
/// always held, and reads back from any accepted form.
///
/// ```
/// use pm_protocol::SignalName;
/// let term: SignalName = "TERM".parse().unwrap();
/// assert_eq!(term, "15".parse().unwrap());
/// assert_eq!((term.as_str(), term.number()), ("SIGTERM", 15));
/// assert_eq!(serde_json::to_string(&term).unwrap(), r#""SIGTERM""#);
/// let e = "BOGUS".parse::<SignalName>().unwrap_err().to_string();
/// assert!(e.starts_with("invalid signal 'BOGUS'") && e.contains("HUP, INT"), "{e}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalName(u8);

impl SignalName {
    /// SIGTERM, the default stop signal.
    pub const TERM: SignalName = SignalName(15);

    /// The canonical name, `SIGTERM`.
    pub fn as_str(self) -> &'static str {
        NAMES[usize::from(self.0) - 1]
    }

    /// The Linux signal number.
    pub fn number(self) -> i32 {
        i32::from(self.0)
    }
}

/// The accepted names without their `SIG` prefix (`HUP, INT, ...`), for error messages.
pub fn valid_signal_names() -> String {
    NAMES
        .iter()
        .map(|n| n.trim_start_matches("SIG"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for SignalName {
    type Err = PmError;

    fn from_str(text: &str) -> Result<Self, PmError> {
        let t = text.trim();
        let index = match t.parse::<usize>() {
            Ok(n) => n.checked_sub(1).filter(|i| *i < NAMES.len()),
            Err(_) => {
                let upper = t.to_ascii_uppercase();
                let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
                NAMES.iter().position(|n| n[3..] == *bare)
            }
        };
        index
            .and_then(|i| u8::try_from(i + 1).ok())
            .map(SignalName)
            .ok_or_else(|| PmError::InvalidSignal(text.to_string()))
    }
}

impl Default for SignalName {
    fn default() -> Self {
        SignalName::TERM
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SignalName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignalName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes_parse_alike() {
        for text in ["TERM", "SIGTERM", "sigterm", "term", " 15 "] {
            assert_eq!(
                text.parse::<SignalName>().unwrap(),
                SignalName::TERM,
                "{text}"
            );
        }
        assert_eq!("HUP".parse::<SignalName>().unwrap().number(), 1);
        assert_eq!("31".parse::<SignalName>().unwrap().as_str(), "SIGSYS");
        assert_eq!("SIGKILL".parse::<SignalName>().unwrap().number(), 9);
    }

    #[test]
    fn unknown_signals_are_refused_listing_the_valid_ones() {
        for bad in [
            "BOGUS",
            "",
            "0",
            "32",
            "-1",
            "SIG",
            "SIGSIGTERM",
            "99999999999999999999",
        ] {
            let e = bad.parse::<SignalName>().unwrap_err();
            assert_eq!(e, PmError::InvalidSignal(bad.to_string()));
            assert!(e.to_string().contains("TERM, STKFLT"), "{e}");
        }
    }

    #[test]
    fn serializes_as_the_canonical_name_and_reads_any_form() {
        let int: SignalName = serde_json::from_str(r#""INT""#).unwrap();
        assert_eq!(serde_json::to_string(&int).unwrap(), r#""SIGINT""#);
        assert_eq!(serde_json::from_str::<SignalName>(r#""2""#).unwrap(), int);
        let e = serde_json::from_str::<SignalName>(r#""BOGUS""#).unwrap_err();
        assert!(e.to_string().contains("invalid signal 'BOGUS'"), "{e}");
    }
}
