//! What the daemon needs to know about a command before it runs it: the process it names, and whether
//! it changes what the daemon keeps.
//!
//! These facts live here, once, so that the session (which lines may run beside each other, which
//! answers wait for the state file) and the registry (which requests it answers before the state file
//! holds them) cannot disagree about them.

use super::{Command, Selector};

impl Command {
    /// The one process the command is about, by name; `None` for a command about every process
    /// (`stop all:true`, `list`, `watch`) or about none (`help`, `quit`).
    ///
    /// ```
    /// use pm_protocol::command::parse_script;
    /// let cmds = parse_script("!!process.kill name:web\n!!process.stop all:true\n!!process.list").unwrap();
    /// assert_eq!(cmds[0].process_name(), Some("web"));
    /// assert_eq!(cmds[1].process_name(), None);
    /// assert_eq!(cmds[2].process_name(), None);
    /// ```
    pub fn process_name(&self) -> Option<&str> {
        match self {
            Command::Start(c) => Some(&c.name),
            Command::Stop(c) => match &c.target {
                Selector::Name(name) => Some(name),
                Selector::All => None,
            },
            Command::Restart(c) => Some(&c.name),
            Command::Delete(c) => Some(&c.name),
            Command::Kill(c) => Some(&c.name),
            Command::Signal(c) => Some(&c.name),
            Command::Attach(c) => Some(&c.name),
            Command::Status(c) => Some(&c.name),
            Command::Logs(c) => Some(&c.name),
            Command::List(_)
            | Command::Apply(_)
            | Command::Reload(_)
            | Command::Help(_)
            | Command::Watch(_)
            | Command::Quit(_) => None,
        }
    }

    /// Whether the command changes what the daemon keeps in its state file (start, stop, restart,
    /// delete, kill, attach): its answer is sent only once the file holds the change. A signal
    /// changes nothing kept; a query or a watch changes nothing.
    ///
    /// ```
    /// use pm_protocol::command::parse_script;
    /// let cmds = parse_script("!!process.restart name:web\n!!process.signal name:web signal:HUP").unwrap();
    /// assert!(cmds[0].changes_state());
    /// assert!(!cmds[1].changes_state());
    /// ```
    pub fn changes_state(&self) -> bool {
        match self {
            Command::Start(_)
            | Command::Stop(_)
            | Command::Restart(_)
            | Command::Delete(_)
            | Command::Kill(_)
            | Command::Attach(_)
            | Command::Apply(_)
            | Command::Reload(_) => true,
            Command::Signal(_)
            | Command::Status(_)
            | Command::Logs(_)
            | Command::List(_)
            | Command::Watch(_)
            | Command::Help(_)
            | Command::Quit(_) => false,
        }
    }
}
