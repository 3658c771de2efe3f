//! Dependencies between processes: `after:'db'`, `after:'migrate:completed'`, `after:'cache:started'`.
//!
//! A [`Dependency`] names a process and the [`Condition`] it must reach before its dependent starts.
//! Its one text form (`name` or `name:condition`) is the one heroscript, templates, stack files, the
//! state file and the client flags all use; an unknown condition is refused at definition.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::validate_name;

/// What a dependency must reach before its dependent starts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Its current run is alive.
    Started,
    /// Its current run is ready (its `ready:` condition holds; without one, as soon as it runs).
    #[default]
    Ready,
    /// Its last run exited 0 by itself (a one-shot job such as a migration).
    Completed,
}

impl Condition {
    /// The word of the text form (`started`, `ready`, `completed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Completed => "completed",
        }
    }
}

/// One `after:` entry: a process and the condition it must reach.
///
/// ```
/// use pm_protocol::depend::{Condition, Dependency};
/// let d: Dependency = "migrate:completed".parse().unwrap();
/// assert_eq!((d.name.as_str(), d.condition), ("migrate", Condition::Completed));
/// assert_eq!(Dependency::parse("db").unwrap().to_string(), "db");
/// assert_eq!(Dependency::parse("db").unwrap().describe(), "db (ready)");
/// assert!(Dependency::parse("db:up").unwrap_err().contains("started, ready or completed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dependency {
    /// The process depended on (it may be defined later).
    pub name: String,
    /// What it must reach.
    pub condition: Condition,
}

impl Dependency {
    /// A dependency on `name` reaching `condition`.
    pub fn new(name: impl Into<String>, condition: Condition) -> Self {
        Dependency {
            name: name.into(),
            condition,
        }
    }

    /// Reads `name` (ready) or `name:started|ready|completed`.
    pub fn parse(text: &str) -> Result<Dependency, String> {
        let (name, condition) = match text.rsplit_once(':') {
            None => (text, Condition::Ready),
            Some((name, word)) => {
                let condition = match word {
                    "started" => Condition::Started,
                    "ready" => Condition::Ready,
                    "completed" => Condition::Completed,
                    _ => {
                        return Err(format!(
                            "'{text}': unknown condition '{word}' (use started, ready or completed)"
                        ))
                    }
                };
                (name, condition)
            }
        };
        validate_name(name).map_err(|_| format!("'{text}': '{name}' is not a process name"))?;
        Ok(Dependency::new(name, condition))
    }

    /// `db (ready)`: how `waiting_for` shows it.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.condition.as_str())
    }
}

impl fmt::Display for Dependency {
    /// `db` for the default condition, `db:completed` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.condition {
            Condition::Ready => f.write_str(&self.name),
            c => write!(f, "{}:{}", self.name, c.as_str()),
        }
    }
}

impl std::str::FromStr for Dependency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Dependency::parse(s)
    }
}

impl TryFrom<String> for Dependency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Dependency::parse(&s)
    }
}

impl From<Dependency> for String {
    fn from(d: Dependency) -> String {
        d.to_string()
    }
}

/// Finds a cycle through `start` in a graph given as `edges(name)` (what `name` waits for), and
/// answers it as `start -> ... -> start`.
///
/// ```
/// use pm_protocol::depend::find_cycle;
/// let edges = |n: &str| match n {
///     "web" => vec!["api".to_string()],
///     "api" => vec!["web".to_string()],
///     _ => vec![],
/// };
/// assert_eq!(find_cycle("web", edges).unwrap(), "web -> api -> web");
/// assert!(find_cycle("db", edges).is_none());
/// ```
pub fn find_cycle(start: &str, edges: impl Fn(&str) -> Vec<String>) -> Option<String> {
    // Depth-first from `start`, with the path kept: the first way back to `start` is the cycle.
    fn walk(
        at: &str,
        start: &str,
        edges: &dyn Fn(&str) -> Vec<String>,
        path: &mut Vec<String>,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> bool {
        for next in edges(at) {
            if next == start {
                path.push(next);
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(&next, start, edges, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    walk(start, start, &edges, &mut path, &mut seen).then(|| path.join(" -> "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for text in ["db", "db:started", "migrate:completed", "web-1.x"] {
            assert_eq!(Dependency::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Dependency::parse("db:ready").unwrap().to_string(), "db");
        let json = serde_json::to_string(&Dependency::parse("m:completed").unwrap()).unwrap();
        assert_eq!(json, "\"m:completed\"");
        assert!(serde_json::from_str::<Dependency>("\"m:soon\"").is_err());
        assert!(Dependency::parse("").is_err());
        assert!(Dependency::parse("a b").is_err());
    }

    #[test]
    fn self_and_long_cycles_are_named() {
        let self_loop = |n: &str| if n == "a" { vec!["a".into()] } else { vec![] };
        assert_eq!(find_cycle("a", self_loop).unwrap(), "a -> a");
        let chain = |n: &str| match n {
            "a" => vec!["x".into(), "b".into()],
            "b" => vec!["c".into()],
            "c" => vec!["a".into()],
            _ => vec![],
        };
        assert_eq!(find_cycle("a", chain).unwrap(), "a -> b -> c -> a");
    }
}
