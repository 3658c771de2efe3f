//! A parsed action and its parameters, with typed reads that report errors at the right place.

use std::str::FromStr;
use std::time::Duration;

use super::values::{parse_bool, parse_duration, suggest};
use super::{ParseError, ParseErrorKind};

/// One `key:value` parameter, with where its key and its value start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Lower-cased key.
    pub key: String,
    /// The value with quotes removed and escapes resolved.
    pub value: String,
    /// Line of the key (from 1).
    pub line: usize,
    /// Column of the key (from 1, in characters).
    pub col: usize,
    /// Line where the value starts (a value always starts on its key's line; a quoted one may end later).
    pub value_line: usize,
    /// Column where the value starts (its opening quote, when quoted).
    pub value_col: usize,
}

/// One `!!actor.action ...` with its parameters in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Lower-cased actor (`process`); empty for a single-word action such as `help`.
    pub actor: String,
    /// Lower-cased action (`start`).
    pub name: String,
    /// Line of the action (from 1).
    pub line: usize,
    /// Column of its first `!` (from 1, in characters).
    pub col: usize,
    /// Its parameters, in the order written (a repeated key appears each time).
    pub params: Vec<Param>,
}

impl Action {
    /// `actor.action`, or just `action` when there is no actor.
    pub fn full_name(&self) -> String {
        if self.actor.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.actor, self.name)
        }
    }

    /// The first parameter named `key`.
    pub fn param(&self, key: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.key == key)
    }

    /// Every parameter named `key`, in order (for repeatable keys such as `env`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Param> + 'a {
        self.params.iter().filter(move |p| p.key == key)
    }

    /// The value of `key`, if given.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.param(key).map(|p| p.value.as_str())
    }

    /// The value of `key` when given and not empty (an empty value means "not set", as in the original).
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.str(key).filter(|v| !v.is_empty())
    }

    /// The value of a required `key`; absent or empty is an error naming it.
    pub fn required(&self, key: &str) -> Result<&str, ParseError> {
        self.non_empty(key).ok_or_else(|| {
            self.error(ParseErrorKind::MissingParameter {
                key: key.to_string(),
                action: self.full_name(),
            })
        })
    }

    /// A boolean (`true/false`, `yes/no`, `on/off`, `1/0`), if given.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ParseError> {
        self.typed(key, "true or false (also yes/no, on/off, 1/0)", parse_bool)
    }

    /// A boolean that is false when absent.
    pub fn flag(&self, key: &str) -> Result<bool, ParseError> {
        Ok(self.bool(key)?.unwrap_or(false))
    }

    /// A whole number, if given (an empty value counts as absent).
    pub fn int<T: FromStr>(&self, key: &str) -> Result<Option<T>, ParseError> {
        self.typed(key, "a whole number", |v| v.parse().ok())
    }

    /// A duration (`30` seconds, `30s`, `5m`, `1h30m`, `500ms`), if given (an empty value counts as absent).
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ParseError> {
        self.typed(
            key,
            "a duration such as 30, 30s, 5m or 1h30m",
            parse_duration,
        )
    }

    /// Reads a non-empty value with `read`; a value it refuses is an error naming key, value and `expected`.
    pub fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ParseError> {
        let Some(p) = self.param(key).filter(|p| !p.value.is_empty()) else {
            return Ok(None);
        };
        read(&p.value)
            .map(Some)
            .ok_or_else(|| Self::value_error(p, expected))
    }

    /// An [`ParseErrorKind::InvalidValue`] at `param`'s value.
    pub fn value_error(param: &Param, expected: &str) -> ParseError {
        ParseError::new(
            param.value_line,
            param.value_col,
            ParseErrorKind::InvalidValue {
                key: param.key.clone(),
                value: param.value.clone(),
                expected: expected.to_string(),
            },
        )
    }

    /// An error at the action's own position.
    pub fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.line, self.col, kind)
    }

    /// Checks that every key is one of `known` and that only `repeatable` keys appear more than once.
    pub fn check_params(&self, known: &[&str], repeatable: &[&str]) -> Result<(), ParseError> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.params {
            if !known.contains(&p.key.as_str()) {
                return Err(ParseError::new(
                    p.line,
                    p.col,
                    ParseErrorKind::UnknownParameter {
                        key: p.key.clone(),
                        action: self.full_name(),
                        suggestion: suggest(&p.key, known).map(str::to_string),
                    },
                ));
            }
            let repeated = !seen.insert(p.key.as_str());
            if repeated && !repeatable.contains(&p.key.as_str()) {
                return Err(ParseError::new(
                    p.line,
                    p.col,
                    ParseErrorKind::DuplicateParameter(p.key.clone()),
                ));
            }
        }
        Ok(())
    }
}
