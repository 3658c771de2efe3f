//! `!!process.apply stack:'<json>'`: make the daemon's processes match a stack (see [`crate::stack`]).

use super::{Format, Verb};
use crate::heroscript::{Action, ActionWriter, ParseError, ParseErrorKind};
use crate::stack::StackFile;

/// Apply a stack as a diff: new processes start, changed ones restart, unchanged ones are left
/// alone, and with `prune` the processes not in the stack are deleted.
///
/// ```
/// use pm_protocol::command::{parse_script, Apply, Command, Format};
/// use pm_protocol::stack::StackFile;
/// let stack = StackFile::parse("processes:\n  web: {command: \"echo 'hi'\", env: [A=1]}\n").unwrap();
/// let apply = Command::from(Apply { stack, prune: true, dry_run: false, format: Format::Json });
/// let text = apply.to_heroscript();
/// assert!(text.starts_with("!!process.apply stack:'{"), "{text}");
/// assert!(text.ends_with(" prune:true format:json"), "{text}");
/// assert_eq!(parse_script(&text).unwrap(), [apply]);
///
/// let err = parse_script("!!process.apply stack:'{\"processes\": {\"x\": {\"cmd\": 1}}}'").unwrap_err();
/// assert!(err.to_string().contains("unknown field `cmd`"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    /// The stack, with its defaults folded in and its paths absolute (`stack:` holds it as JSON).
    pub stack: StackFile,
    /// Delete the processes the stack does not name (`prune:true`).
    pub prune: bool,
    /// Only answer the plan (`dry_run:true`).
    pub dry_run: bool,
    /// The plan as text or JSON.
    pub format: Format,
}

// Floats in a stack (`args: [1.5]`) keep `Eq` from being derived; a stack never holds a NaN.
impl Eq for Apply {}

impl Verb for Apply {
    const ACTION: &'static str = "process.apply";
    const PARAMS: &'static [&'static str] = &["stack", "prune", "dry_run", "format"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        let text = a.required("stack")?;
        let stack =
            StackFile::parse(text).map_err(|e| a.error(ParseErrorKind::Invalid(e.to_string())))?;
        Ok(Apply {
            stack,
            prune: a.flag("prune")?,
            dry_run: a.flag("dry_run")?,
            format: Format::from_action(a)?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.param("stack", &self.stack.to_json())
            .flag("prune", self.prune)
            .flag("dry_run", self.dry_run);
        self.format.write(w);
    }
}
