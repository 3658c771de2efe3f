//! Accepts the original's single-dash long flags (`-socket x`, `-name=web`) beside `--socket x`.
//!
//! Only words that name a known long flag of the command (or of the subcommand in use) are rewritten,
//! so values that start with a dash (`-command -x`, `-lines -1`) and everything after `--` stay as given.

use std::collections::HashSet;
use std::ffi::OsString;

/// Rewrites `-flag` to `--flag` for every long flag (or alias) `cmd` and its subcommands know.
pub fn normalize_single_dash(
    cmd: &clap::Command,
    args: impl IntoIterator<Item = OsString>,
) -> Vec<OsString> {
    let mut known: HashSet<String> = HashSet::new();
    collect_longs(cmd, &mut known);
    let mut out = Vec::new();
    let mut after_double_dash = false;
    let mut prev_takes_value = false;
    for (i, arg) in args.into_iter().enumerate() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            prev_takes_value = false;
            continue;
        };
        let rewritten = if i == 0 || after_double_dash || prev_takes_value {
            None
        } else if text == "--" {
            after_double_dash = true;
            None
        } else {
            single_dash_long(text, &known)
        };
        prev_takes_value = false;
        match rewritten {
            Some((flag, has_inline_value)) => {
                prev_takes_value = !has_inline_value && takes_value(cmd, &flag);
                out.push(OsString::from(format!("-{text}")));
            }
            None => out.push(arg),
        }
    }
    out
}

/// `Some((name, has "=value"))` when `text` is `-name` or `-name=value` and `name` is a known long flag.
fn single_dash_long(text: &str, known: &HashSet<String>) -> Option<(String, bool)> {
    let rest = text.strip_prefix('-')?;
    if rest.starts_with('-') || rest.chars().count() < 2 {
        return None;
    }
    let (name, has_value) = match rest.split_once('=') {
        Some((n, _)) => (n, true),
        None => (rest, false),
    };
    known.contains(name).then(|| (name.to_string(), has_value))
}

fn collect_longs(cmd: &clap::Command, known: &mut HashSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(l) = arg.get_long() {
            known.insert(l.to_string());
        }
        if let Some(aliases) = arg.get_all_aliases() {
            known.extend(aliases.into_iter().map(str::to_string));
        }
    }
    for sub in cmd.get_subcommands() {
        collect_longs(sub, known);
    }
}

/// Whether the long flag `name` (anywhere in `cmd`) expects a value, so the next word is left alone.
fn takes_value(cmd: &clap::Command, name: &str) -> bool {
    let here = cmd.get_arguments().find(|a| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    });
    match here {
        Some(a) => a.get_action().takes_values(),
        None => cmd.get_subcommands().any(|s| takes_value(s, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn cmd() -> Command {
        Command::new("pm")
            .arg(Arg::new("socket").long("socket"))
            .arg(
                Arg::new("config")
                    .long("config")
                    .alias("process-manager-config"),
            )
            .subcommand(
                Command::new("start")
                    .arg(Arg::new("name").long("name"))
                    .arg(
                        Arg::new("command")
                            .long("command")
                            .allow_hyphen_values(true),
                    )
                    .arg(Arg::new("log").long("log").action(ArgAction::SetTrue)),
            )
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_single_dash(&cmd(), args.iter().map(OsString::from))
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "pm",
                "-socket",
                "/s",
                "start",
                "-name=web",
                "-log",
                "--command",
                "x"
            ]),
            [
                "pm",
                "--socket",
                "/s",
                "start",
                "--name=web",
                "--log",
                "--command",
                "x"
            ]
        );
        assert_eq!(
            norm(&["pm", "-process-manager-config", "c"]),
            ["pm", "--process-manager-config", "c"]
        );
    }

    #[test]
    fn values_and_unknown_words_stay_as_given() {
        assert_eq!(
            norm(&["pm", "start", "-command", "-name"]),
            ["pm", "start", "--command", "-name"]
        );
        assert_eq!(
            norm(&["pm", "-x", "-nope", "--", "-name"]),
            ["pm", "-x", "-nope", "--", "-name"]
        );
        let parsed =
            cmd().try_get_matches_from(norm(&["pm", "start", "-name", "w", "-command", "-v"]));
        let m = parsed.unwrap();
        let s = m.subcommand_matches("start").unwrap();
        assert_eq!(s.get_one::<String>("command").unwrap(), "-v");
    }
}
