//! Typed commands, one file per command, parsed from heroscript actions and rendered back to heroscript.
//!
//! Adding a command: write a file with a struct that implements [`Verb`], then add one line to the
//! `commands!` list below. Adding an option: a field, its key in `PARAMS`, one line in `from_action`
//! and one in `write`.
//!
//! ```
//! use pm_protocol::command::{parse_script, Command, Selector};
//! let cmds = parse_script("!!process.stop name:web").unwrap();
//! assert!(matches!(&cmds[0], Command::Stop(s) if s.target == Selector::Name("web".into())));
//! assert_eq!(cmds[0].to_heroscript(), "!!process.stop name:web");
//! ```

mod apply;
mod attach;
mod delete;
mod facts;
mod help;
mod kill;
mod list;
mod logs;
mod quit;
mod reload;
mod restart;
mod selector;
mod signal;
pub(crate) mod start;
pub mod start_probes;
mod status;
mod stop;
mod watch;

pub use apply::Apply;
pub use attach::Attach;
pub use delete::Delete;
pub use help::Help;
pub use kill::Kill;
pub use list::List;
pub use logs::Logs;
pub use quit::Quit;
pub use reload::Reload;
pub use restart::Restart;
pub use selector::Selector;
pub use signal::Signal;
pub use start::Start;
pub use start_probes::ProbeOptions;
pub use status::Status;
pub use stop::Stop;
pub use watch::Watch;

use crate::heroscript::{self, suggest, Action, ActionWriter, ParseError, ParseErrorKind};

/// One command: its action name, its parameters, how it reads itself from an action and writes itself back.
pub trait Verb: Sized {
    /// The action name, lower case (`process.start`).
    const ACTION: &'static str;
    /// Other names accepted for the action (`exit` for `quit`).
    const ALIASES: &'static [&'static str] = &[];
    /// Every parameter key the action accepts.
    const PARAMS: &'static [&'static str];
    /// The keys that may be given more than once.
    const REPEATABLE: &'static [&'static str] = &[];

    /// Reads the command from an action whose keys were already checked against `PARAMS`.
    fn from_action(action: &Action) -> Result<Self, ParseError>;

    /// Writes the parameters (the writer already holds `!!ACTION`).
    fn write(&self, w: &mut ActionWriter);
}

/// The output format of `list`, `status`, `watch` and `logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable text (the default; `format:text` or an empty value).
    #[default]
    Text,
    /// Pretty JSON (`format:json`).
    Json,
}

impl Format {
    /// Reads `format` from an action (absent or empty is text).
    pub fn from_action(action: &Action) -> Result<Self, ParseError> {
        let read = |v: &str| match v.to_ascii_lowercase().as_str() {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        };
        Ok(action
            .typed("format", "json or text", read)?
            .unwrap_or_default())
    }

    /// Writes `format:json` when JSON (text is the default and is left out).
    pub fn write(self, w: &mut ActionWriter) {
        if self == Format::Json {
            w.param("format", "json");
        }
    }
}

/// Declares the [`Command`] enum from the list of verbs, so a new command is one line here.
macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// A command read from heroscript.
        // Commands live for one request each, so an unboxed `Start` costs nothing worth the `Box` noise.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command {
            $($(#[$doc])* $variant($ty),)*
        }

        impl Command {
            /// The action name of each kind of command, in the order of the variants (no aliases):
            /// [`Command::action_index`] is a position in it.
            pub const ACTIONS: &'static [&'static str] = &[$(<$ty as Verb>::ACTION),*];

            /// The action name of this kind of command (`process.start`), as in [`Command::ACTIONS`].
            ///
            /// ```
            /// use pm_protocol::command::{parse_script, Command};
            /// let cmd = &parse_script("!!process.list").unwrap()[0];
            /// assert_eq!(cmd.action(), "process.list");
            /// assert_eq!(Command::ACTIONS[cmd.action_index()], "process.list");
            /// ```
            pub fn action(&self) -> &'static str {
                Command::ACTIONS[self.action_index()]
            }

            /// The position of this kind of command in [`Command::ACTIONS`], so that per-command
            /// figures can live in an array indexed by it.
            pub fn action_index(&self) -> usize {
                let mut index = 0;
                $(
                    if matches!(self, Command::$variant(_)) {
                        return index;
                    }
                    index += 1;
                )*
                index
            }

            /// Every action name a script may use, aliases included.
            pub fn known_actions() -> Vec<&'static str> {
                let mut names = Vec::new();
                $(
                    names.push(<$ty as Verb>::ACTION);
                    names.extend_from_slice(<$ty as Verb>::ALIASES);
                )*
                names
            }

            /// The command an action asks for; unknown actions and parameters, missing or bad values are errors.
            pub fn from_action(action: &Action) -> Result<Command, ParseError> {
                let name = action.full_name();
                $(
                    if name == <$ty as Verb>::ACTION || <$ty as Verb>::ALIASES.contains(&name.as_str()) {
                        action.check_params(<$ty as Verb>::PARAMS, <$ty as Verb>::REPEATABLE)?;
                        return <$ty as Verb>::from_action(action).map(Command::$variant);
                    }
                )*
                let known = Command::known_actions();
                Err(action.error(ParseErrorKind::UnknownAction {
                    suggestion: suggest(&name, &known).map(str::to_string),
                    known: known.join(", "),
                    name,
                }))
            }

            /// The command as one heroscript action, quoted so that it parses back to itself (options
            /// at their defaults are left out).
            ///
            /// ```
            /// use pm_protocol::command::{parse_script, Command, Start};
            /// let mut start = Start::shell("web", "python3 -m http.server 8080");
            /// start.restarts = Some(-1);
            /// let cmd = Command::from(start);
            /// let text = cmd.to_heroscript();
            /// assert_eq!(text, "!!process.start name:web command:'python3 -m http.server 8080' restarts:-1");
            /// assert_eq!(parse_script(&text).unwrap(), [cmd]);
            /// ```
            pub fn to_heroscript(&self) -> String {
                match self {
                    $(Command::$variant(c) => {
                        let mut w = ActionWriter::new(<$ty as Verb>::ACTION);
                        c.write(&mut w);
                        w.finish()
                    })*
                }
            }
        }

        $(
            impl From<$ty> for Command {
                fn from(c: $ty) -> Command {
                    Command::$variant(c)
                }
            }
        )*
    };
}

commands! {
    /// `!!process.start`: define a process and start (or schedule) it.
    Start(Start),
    /// `!!process.list`: every process.
    List(List),
    /// `!!process.status`: one process.
    Status(Status),
    /// `!!process.stop`: stop one process, or every one, gracefully.
    Stop(Stop),
    /// `!!process.restart`: stop and start again.
    Restart(Restart),
    /// `!!process.delete`: stop and forget.
    Delete(Delete),
    /// `!!process.logs`: the last captured output lines.
    Logs(Logs),
    /// `!!process.signal`: send a signal.
    Signal(Signal),
    /// `!!process.kill`: SIGKILL the process group.
    Kill(Kill),
    /// `!!process.attach`: adopt a running pid.
    Attach(Attach),
    /// `!!process.watch`: stream status events.
    Watch(Watch),
    /// `!!process.apply`: make the processes match a stack.
    Apply(Apply),
    /// `!!daemon.reload`: re-read pm.conf and the templates.
    Reload(Reload),
    /// `!!help`: the help text.
    Help(Help),
    /// `!!quit` or `!!exit`: end the session.
    Quit(Quit),
}

impl Command {
    /// The job id the result frame carries (`jobid` of `process.start`), empty when none.
    pub fn job_id(&self) -> &str {
        match self {
            Command::Start(s) => s.jobid.as_deref().unwrap_or(""),
            _ => "",
        }
    }
}

/// Parses a whole script into its commands, in order; the first error stops it. Action names and keys
/// are case-insensitive; unknown actions or keys, missing required keys and bad values are errors with
/// a line and column.
///
/// ```
/// use pm_protocol::command::{parse_script, Command, Format};
/// let cmds = parse_script("!!process.list format:json\n!!process.logs name:web lines:20").unwrap();
/// assert!(matches!(&cmds[0], Command::List(l) if l.format == Format::Json));
/// assert!(matches!(&cmds[1], Command::Logs(l) if l.name == "web" && l.lines == Some(20)));
///
/// let err = parse_script("!!process.stop nmae:web").unwrap_err();
/// assert_eq!((err.line, err.col), (1, 16));
/// assert!(err.to_string().contains("did you mean 'name'?"));
/// ```
pub fn parse_script(script: &str) -> Result<Vec<Command>, ParseError> {
    commands_from_actions(&heroscript::parse(script)?)
}

/// Turns parsed actions into commands.
pub fn commands_from_actions(actions: &[Action]) -> Result<Vec<Command>, ParseError> {
    actions.iter().map(Command::from_action).collect()
}

/// Renders commands as a script, one action per line.
pub fn render_script(commands: &[Command]) -> String {
    let mut out = String::new();
    for c in commands {
        out.push_str(&c.to_heroscript());
        out.push('\n');
    }
    out
}

/// Declares a command whose only parameter is the process `name` (restart, delete, kill).
macro_rules! name_only_command {
    ($(#[$doc:meta])* $ty:ident, $action:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty {
            /// The process name.
            pub name: String,
        }

        impl $crate::command::Verb for $ty {
            const ACTION: &'static str = $action;
            const PARAMS: &'static [&'static str] = &["name"];

            fn from_action(
                a: &$crate::heroscript::Action,
            ) -> Result<Self, $crate::heroscript::ParseError> {
                Ok($ty {
                    name: a.required("name")?.to_string(),
                })
            }

            fn write(&self, w: &mut $crate::heroscript::ActionWriter) {
                w.param("name", &self.name);
            }
        }
    };
}
use name_only_command;

#[cfg(test)]
mod tests;
