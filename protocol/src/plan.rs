//! The plan of an apply: what changes for each process, how a spec differs from another, and the
//! plan's text and JSON.
//!
//! ```
//! use pm_protocol::plan::{ApplyPlan, Change, PlanEntry};
//! let plan = ApplyPlan {
//!     dry_run: false,
//!     entries: vec![
//!         PlanEntry::new("web", Change::New),
//!         PlanEntry::new("api", Change::Changed(vec!["command".into(), "env.PORT".into()])),
//!         PlanEntry::new("db", Change::Unchanged),
//!     ],
//! };
//! assert_eq!(
//!     plan.text(),
//!     "+ web (new)\n~ api (changed: command, env.PORT)\n= db (unchanged)\nApplied: 1 new, 1 changed, 1 unchanged\n"
//! );
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ProcessSpec;

/// What an apply does (or, in a dry run, would do) to one process.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", content = "fields", rename_all = "snake_case")]
pub enum Change {
    /// Not defined before: started (or scheduled).
    New,
    /// Defined with another definition: restarted with the new one; the fields that differ.
    Changed(Vec<String>),
    /// Defined the same: not touched.
    Unchanged,
    /// Not in the file (with prune): stopped and deleted.
    Pruned,
}

/// One line of the plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The process.
    pub name: String,
    /// What happens to it.
    #[serde(flatten)]
    pub change: Change,
    /// Why carrying it out failed (a program that cannot be spawned, ...), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PlanEntry {
    /// An entry without an error.
    pub fn new(name: impl Into<String>, change: Change) -> Self {
        PlanEntry {
            name: name.into(),
            change,
            error: None,
        }
    }
}

/// Every process an apply concerns, in the order the changes are carried out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyPlan {
    /// Only planned: nothing was changed.
    pub dry_run: bool,
    /// One entry per process.
    pub entries: Vec<PlanEntry>,
}

impl ApplyPlan {
    /// Whether the plan changes anything.
    pub fn changes_anything(&self) -> bool {
        self.entries.iter().any(|e| e.change != Change::Unchanged)
    }

    /// Whether carrying out some entry failed.
    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|e| e.error.is_some())
    }

    /// One line per process (`+ web (new)`, `~ api (changed: command)`, `= db (unchanged)`,
    /// `- old (not in the file)`), then a summary line; it starts with `Error` when a change failed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let failed = self.entries.iter().filter(|e| e.error.is_some()).count();
        if failed > 0 {
            out.push_str(&format!("Error applying the stack: {failed} failed\n"));
        }
        for e in &self.entries {
            let (sign, what) = match &e.change {
                Change::New => ('+', "new".to_string()),
                Change::Changed(fields) => ('~', format!("changed: {}", fields.join(", "))),
                Change::Unchanged => ('=', "unchanged".to_string()),
                Change::Pruned => ('-', "not in the file".to_string()),
            };
            out.push_str(&format!("{sign} {} ({what})", e.name));
            if let Some(err) = &e.error {
                out.push_str(&format!(": {err}"));
            }
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    fn summary(&self) -> String {
        if !self.changes_anything() {
            return "Nothing to change".to_string();
        }
        let count = |f: fn(&Change) -> bool| self.entries.iter().filter(|e| f(&e.change)).count();
        let mut parts = vec![
            format!("{} new", count(|c| *c == Change::New)),
            format!("{} changed", count(|c| matches!(c, Change::Changed(_)))),
            format!("{} unchanged", count(|c| *c == Change::Unchanged)),
        ];
        let pruned = count(|c| *c == Change::Pruned);
        if pruned > 0 {
            parts.push(format!("{pruned} pruned"));
        }
        let verb = if self.dry_run {
            "Dry run, nothing changed"
        } else {
            "Applied"
        };
        format!("{verb}: {}", parts.join(", "))
    }

    /// The plan as pretty JSON (with its newline).
    pub fn json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).unwrap_or_default();
        out.push('\n');
        out
    }
}

/// The answer to a reload: `Error reloading` when a change failed, the plan of the templates, and a
/// `Needs a restart: <key>` line for each pm.conf key that changed but cannot change while running.
///
/// ```
/// use pm_protocol::plan::{reload_text, ApplyPlan};
/// let text = reload_text(&["socket".into()], &ApplyPlan::default());
/// assert_eq!(text, "Reloaded\nNothing to change\nNeeds a restart: socket\n");
/// ```
pub fn reload_text(needs_restart: &[String], plan: &ApplyPlan) -> String {
    let mut out = String::new();
    if plan.has_errors() {
        out.push_str("Error reloading: a template change failed\n");
    } else {
        out.push_str("Reloaded\n");
    }
    for line in plan.text().lines().filter(|l| !l.starts_with("Error")) {
        out.push_str(line);
        out.push('\n');
    }
    for key in needs_restart {
        out.push_str(&format!("Needs a restart: {key}\n"));
    }
    out
}

/// The fields in which `new` differs from `old`, by their heroscript names where they have one, and
/// `env.KEY` for each variable added, removed or changed; empty when they are the same.
///
/// ```
/// use pm_protocol::{plan::spec_changes, ProcessSpec};
/// let old = ProcessSpec::shell("x", "sleep 1");
/// let mut new = ProcessSpec::shell("x", "sleep 2");
/// new.env.insert("PORT".into(), "80".into());
/// assert_eq!(spec_changes(&old, &new), ["command", "env.PORT"]);
/// assert!(spec_changes(&old, &old).is_empty());
/// ```
pub fn spec_changes(old: &ProcessSpec, new: &ProcessSpec) -> Vec<String> {
    let mut out = Vec::new();
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return if old == new {
            Vec::new()
        } else {
            vec!["definition".into()]
        };
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        if a.get(key) == b.get(key) {
            continue;
        }
        if key == "env" {
            let vars: BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
            for var in vars {
                if old.env.get(var) != new.env.get(var) {
                    out.push(format!("env.{var}"));
                }
            }
            continue;
        }
        out.push(heroscript_name(key).to_string());
    }
    out
}

/// The option name a person writes for a spec field.
fn heroscript_name(field: &str) -> &str {
    match field {
        "env_files" => "env_file",
        "deadline_secs" => "deadline",
        "job_id" => "jobid",
        "grace_ms" => "grace",
        "restart" => "restarts",
        other => other,
    }
}
