//! Rendering actions back to heroscript, quoting and escaping values so they parse back unchanged.

use std::borrow::Cow;

/// A value as heroscript: bare when that is unambiguous, else single-quoted with `\'` and `\\` escaped.
///
/// ```
/// use pm_protocol::heroscript::quote;
/// assert_eq!(quote("web"), "web");
/// assert_eq!(quote("it's"), r"'it\'s'");
/// assert_eq!(quote(""), "''");
/// ```
pub fn quote(value: &str) -> Cow<'_, str> {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '\'' | '"' | '\\'));
    if bare {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    Cow::Owned(out)
}

/// Builds one action's text: `!!process.start name:web command:'echo hi'`.
#[derive(Debug, Clone)]
pub struct ActionWriter {
    text: String,
}

impl ActionWriter {
    /// Starts `!!<action>`.
    pub fn new(action: &str) -> Self {
        ActionWriter {
            text: format!("!!{action}"),
        }
    }

    /// Adds `key:value`, quoted as needed.
    pub fn param(&mut self, key: &str, value: &str) -> &mut Self {
        self.text.push(' ');
        self.text.push_str(key);
        self.text.push(':');
        self.text.push_str(&quote(value));
        self
    }

    /// Adds `key:value` when `value` is set.
    pub fn opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.param(key, v);
        }
        self
    }

    /// Adds `key:true` when `on`; nothing otherwise (false is the default everywhere).
    pub fn flag(&mut self, key: &str, on: bool) -> &mut Self {
        if on {
            self.param(key, "true");
        }
        self
    }

    /// Adds `key:<number>` when set.
    pub fn num<N: ToString>(&mut self, key: &str, value: Option<N>) -> &mut Self {
        if let Some(n) = value {
            self.param(key, &n.to_string());
        }
        self
    }

    /// The finished action text (one line unless a value holds a newline).
    pub fn finish(self) -> String {
        self.text
    }
}
