//! Standard cron expressions (5 fields, 6 with seconds first, or a macro such as `@daily`) converted
//! for the `cron` crate.
//!
//! The `cron` crate wants seconds first, counts Sunday as 1, and ANDs day-of-month with day-of-week.
//! Standard cron counts Sunday as 0 (or 7) and ORs the two day fields when both are restricted. So each
//! field is parsed here into an explicit set of values, written back in the crate's numbering, and an
//! OR of the day fields becomes two crate schedules whose earliest next fire wins.
//!
//! A day field counts as restricted unless it starts with `*` (or is `?`), as in Vixie cron.
//!
//! The time macros of Vixie cron (`@hourly` ... `@yearly`) stand for their 5-field expressions.
//! `@reboot` is refused: a schedule here fires at times, and "whenever the daemon starts" is already
//! the template's `run_on_startup`, which the error names.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Local};

use crate::PmError;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The time macros and the expressions they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
];

/// The macros by name, for error messages.
fn macro_names() -> String {
    let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// The 5-field expression a macro stands for; `Ok(None)` when `expr` is not a macro.
fn expand_macro(expr: &str) -> Result<Option<&'static str>, String> {
    let word = expr.trim();
    if !word.starts_with('@') {
        return Ok(None);
    }
    if word.eq_ignore_ascii_case("@reboot") {
        return Err(
            "@reboot is not a schedule here: start it with the daemon through a template \
             (template:true run_on_startup:true)"
                .to_string(),
        );
    }
    MACROS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|(_, fields)| Some(*fields))
        .ok_or_else(|| format!("unknown macro '{word}'; the macros are {}", macro_names()))
}

/// One field of an expression: its range and the names it accepts (names[i] is `min + i`).
struct FieldKind {
    what: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

impl FieldKind {
    const fn new(what: &'static str, min: u32, max: u32, names: &'static [&'static str]) -> Self {
        FieldKind {
            what,
            min,
            max,
            names,
        }
    }
}

const SECOND: FieldKind = FieldKind::new("second", 0, 59, &[]);
const MINUTE: FieldKind = FieldKind::new("minute", 0, 59, &[]);
const HOUR: FieldKind = FieldKind::new("hour", 0, 23, &[]);
const DOM: FieldKind = FieldKind::new("day of month", 1, 31, &[]);
const MONTH: FieldKind = FieldKind::new("month", 1, 12, &MONTHS);
// 7 is accepted for Sunday and folded into 0.
const DOW: FieldKind = FieldKind::new("day of week", 0, 7, &DAYS);

/// The values a field allows, and whether it was written as a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldSet {
    values: BTreeSet<u32>,
    star: bool,
}

fn parse_value(kind: &FieldKind, text: &str) -> Result<u32, String> {
    if let Some(i) = kind.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(kind.min + i as u32);
    }
    let v: u32 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a valid {}", kind.what))?;
    if v < kind.min || v > kind.max {
        return Err(format!(
            "{} {v} is out of range {}-{}",
            kind.what, kind.min, kind.max
        ));
    }
    Ok(v)
}

fn parse_field(kind: &FieldKind, text: &str) -> Result<FieldSet, String> {
    let star = text.starts_with('*') || text == "?";
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("'{s}' is not a valid step in '{item}'"))?;
                if step == 0 {
                    return Err(format!("step 0 in '{item}'"));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (kind.min, kind.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (lo, hi) = (parse_value(kind, a)?, parse_value(kind, b)?);
            if lo > hi {
                return Err(format!("range '{range}' runs backwards"));
            }
            (lo, hi)
        } else {
            let v = parse_value(kind, range)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if step.is_some() { kind.max } else { v })
        };
        let step = step.unwrap_or(1) as usize;
        values.extend((lo..=hi).step_by(step));
    }
    if kind.max == 7 && values.remove(&7) {
        values.insert(0);
    }
    Ok(FieldSet { values, star })
}

/// Writes a set in the crate's syntax, shifting each value by `shift` (Sunday 0 becomes 1).
fn render(set: &FieldSet, kind: &FieldKind, shift: u32) -> String {
    // Day of week 7 was folded into 0, so its full range is 0-6.
    let max = if kind.max == 7 { 6 } else { kind.max };
    let full = (kind.min..=max).all(|v| set.values.contains(&v));
    if full {
        return "*".to_string();
    }
    let parts: Vec<String> = set.values.iter().map(|v| (v + shift).to_string()).collect();
    parts.join(",")
}

/// A parsed cron schedule: the expression as written and its equivalent `cron` crate schedules.
///
/// ```
/// use chrono::{Local, TimeZone};
/// use pm_protocol::cron::CronSchedule;
///
/// let s = CronSchedule::parse("30 2 * * MON").unwrap();
/// let t = Local.with_ymd_and_hms(2024, 1, 1, 3, 0, 0).unwrap(); // a Monday
/// let next = s.next_after(&t).unwrap();
/// assert_eq!(next, Local.with_ymd_and_hms(2024, 1, 8, 2, 30, 0).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    schedules: Vec<cron::Schedule>,
}

impl CronSchedule {
    /// Parses a 5-field (`min hour dom month dow`) or 6-field (`sec min hour dom month dow`) expression,
    /// or a macro (`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`).
    /// Fields take `*`, `?`, numbers, ranges, lists, steps and (month, day of week) English names;
    /// Sunday is 0 or 7. An expression that is malformed or can never fire is `PmError::InvalidCron`,
    /// naming it.
    ///
    /// ```
    /// use pm_protocol::{cron::CronSchedule, PmError};
    /// let s = CronSchedule::parse("*/15 9-17 * * mon-fri").unwrap();
    /// assert_eq!(s.expression(), "*/15 9-17 * * mon-fri");
    /// assert!(matches!(CronSchedule::parse("* * *"), Err(PmError::InvalidCron { .. })));
    /// assert!(CronSchedule::parse("0 0 30 2 *").is_err()); // February 30th never comes
    /// assert_eq!(CronSchedule::parse("@daily").unwrap().expression(), "@daily");
    /// ```
    pub fn parse(expr: &str) -> Result<Self, PmError> {
        let invalid = |reason: String| PmError::InvalidCron {
            expr: expr.to_string(),
            reason,
        };
        let sources = to_crate_expressions(expr)?;
        let mut schedules = Vec::with_capacity(sources.len());
        for src in &sources {
            let s = cron::Schedule::from_str(src).map_err(|e| invalid(e.to_string()))?;
            schedules.push(s);
        }
        let parsed = CronSchedule {
            expr: expr.to_string(),
            schedules,
        };
        // Four years from any date covers every calendar combination (leap days included).
        if parsed.next_after(&Local::now()).is_none() {
            return Err(invalid("it can never fire".to_string()));
        }
        Ok(parsed)
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The next fire strictly after `time`, in local time; `None` if it never fires again. When both
    /// day fields are restricted, a day matching either one fires (standard cron).
    ///
    /// ```
    /// use chrono::{Local, TimeZone};
    /// use pm_protocol::cron::CronSchedule;
    /// // At midnight on the 1st of the month, and on every Friday.
    /// let s = CronSchedule::parse("0 0 1 * FRI").unwrap();
    /// let wed = Local.with_ymd_and_hms(2024, 1, 3, 12, 0, 0).unwrap();
    /// assert_eq!(s.next_after(&wed), Some(Local.with_ymd_and_hms(2024, 1, 5, 0, 0, 0).unwrap()));
    /// let fri = Local.with_ymd_and_hms(2024, 1, 26, 0, 0, 0).unwrap();
    /// assert_eq!(s.next_after(&fri), Some(Local.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap()));
    /// ```
    pub fn next_after(&self, time: &DateTime<Local>) -> Option<DateTime<Local>> {
        self.schedules
            .iter()
            .filter_map(|s| s.after(time).next())
            .min()
    }
}

/// Converts a standard expression (or macro) to one or two `cron` crate expressions (seconds first,
/// Sunday 1). Two are returned when day-of-month and day-of-week are both restricted (their fires are
/// ORed).
///
/// ```
/// use pm_protocol::cron::to_crate_expressions;
/// assert_eq!(to_crate_expressions("*/15 * * * SUN").unwrap(), ["0 0,15,30,45 * * * 1"]);
/// assert_eq!(to_crate_expressions("0 0 1 * 5").unwrap(), ["0 0 0 1 * *", "0 0 0 * * 6"]);
/// assert_eq!(to_crate_expressions("@weekly").unwrap(), ["0 0 0 * * 1"]);
/// ```
pub fn to_crate_expressions(expr: &str) -> Result<Vec<String>, PmError> {
    let invalid = |reason: String| PmError::InvalidCron {
        expr: expr.to_string(),
        reason,
    };
    let fields: Vec<&str> = match expand_macro(expr).map_err(&invalid)? {
        Some(expansion) => expansion.split_whitespace().collect(),
        None => expr.split_whitespace().collect(),
    };
    let kinds: &[&FieldKind] = match fields.len() {
        5 => &[&MINUTE, &HOUR, &DOM, &MONTH, &DOW],
        6 => &[&SECOND, &MINUTE, &HOUR, &DOM, &MONTH, &DOW],
        n => {
            return Err(invalid(format!(
                "expected 5 or 6 fields or one of {}, got {n} fields",
                macro_names()
            )))
        }
    };
    let mut sets = Vec::with_capacity(6);
    if fields.len() == 5 {
        sets.push((
            FieldSet {
                values: BTreeSet::from([0]),
                star: false,
            },
            &SECOND,
        ));
    }
    for (text, kind) in fields.iter().zip(kinds) {
        let set = parse_field(kind, text).map_err(&invalid)?;
        sets.push((set, *kind));
    }
    let head: Vec<String> = sets[..3].iter().map(|(s, k)| render(s, k, 0)).collect();
    let head = head.join(" ");
    let (dom, month, dow) = (&sets[3], &sets[4], &sets[5]);
    let month = render(&month.0, month.1, 0);
    let dom_text = render(&dom.0, dom.1, 0);
    let dow_text = render(&dow.0, dow.1, 1);
    if !dom.0.star && !dow.0.star {
        Ok(vec![
            format!("{head} {dom_text} {month} *"),
            format!("{head} * {month} {dow_text}"),
        ])
    } else {
        Ok(vec![format!("{head} {dom_text} {month} {dow_text}")])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Local> {
        Local.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn known_next_fire_times() {
        // 2024-01-01 was a Monday; 2024 is a leap year.
        let from = at(2024, 1, 1, 0, 0, 30);
        let table = [
            ("* * * * *", at(2024, 1, 1, 0, 1, 0)),
            ("0 0 * * *", at(2024, 1, 2, 0, 0, 0)),
            ("*/15 * * * *", at(2024, 1, 1, 0, 15, 0)),
            ("30 2 * * MON", at(2024, 1, 1, 2, 30, 0)),
            ("0 9 * * 0", at(2024, 1, 7, 9, 0, 0)),
            ("0 9 * * 7", at(2024, 1, 7, 9, 0, 0)),
            ("0 9 * * SUN", at(2024, 1, 7, 9, 0, 0)),
            ("0 9 * * sat", at(2024, 1, 6, 9, 0, 0)),
            ("0 9 * * 1-5", at(2024, 1, 1, 9, 0, 0)),
            ("0 9 * * 5-7", at(2024, 1, 5, 9, 0, 0)),
            ("0 0 1 JAN *", at(2025, 1, 1, 0, 0, 0)),
            ("0 0 1 feb-mar *", at(2024, 2, 1, 0, 0, 0)),
            ("0 0 29 2 *", at(2024, 2, 29, 0, 0, 0)),
            ("5,10 3 * * *", at(2024, 1, 1, 3, 5, 0)),
            ("0 0 1-10/3 * *", at(2024, 1, 4, 0, 0, 0)),
            ("10/20 * * * *", at(2024, 1, 1, 0, 10, 0)),
            // Both day fields restricted: the 15th OR a Friday (Jan 5 comes first).
            ("0 0 15 * FRI", at(2024, 1, 5, 0, 0, 0)),
            ("0 0 3 * 5", at(2024, 1, 3, 0, 0, 0)),
            // A starred day field does not restrict: this is every 2nd day AND Wednesday, Vixie style.
            ("0 0 */2 * 3", at(2024, 1, 3, 0, 0, 0)),
            // Six fields, seconds first.
            ("*/10 * * * * *", at(2024, 1, 1, 0, 0, 40)),
            ("45 0 0 * * *", at(2024, 1, 1, 0, 0, 45)),
            ("0 0 12 * * TUE", at(2024, 1, 2, 12, 0, 0)),
        ];
        for (expr, want) in table {
            let s = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(s.next_after(&from), Some(want), "{expr}");
        }
    }

    #[test]
    fn bad_expressions_name_themselves() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "* * * FOO *",
            "*/0 * * * *",
            "5-1 * * * *",
            "a b c d e",
            "0 0 30 2 *",
            "0 0 31 4,6,9,11 *",
        ] {
            match CronSchedule::parse(bad) {
                Err(PmError::InvalidCron { expr, reason }) => {
                    assert_eq!(expr, bad);
                    assert!(!reason.is_empty());
                    let msg = PmError::InvalidCron { expr, reason }.to_string();
                    assert!(msg.contains(&format!("'{bad}'")), "{msg}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let e = CronSchedule::parse("0 0 30 2 *").unwrap_err().to_string();
        assert!(e.contains("never fire"), "{e}");
        let e = CronSchedule::parse("* * *").unwrap_err().to_string();
        assert!(e.contains("@daily") && e.contains("@annually"), "{e}");
    }

    #[test]
    fn macros_fire_as_their_expressions() {
        // 2024-01-01 was a Monday.
        let from = at(2024, 1, 1, 0, 0, 30);
        let table = [
            ("@hourly", at(2024, 1, 1, 1, 0, 0)),
            ("@daily", at(2024, 1, 2, 0, 0, 0)),
            ("@midnight", at(2024, 1, 2, 0, 0, 0)),
            ("@weekly", at(2024, 1, 7, 0, 0, 0)),
            ("@monthly", at(2024, 2, 1, 0, 0, 0)),
            ("@yearly", at(2025, 1, 1, 0, 0, 0)),
            ("@annually", at(2025, 1, 1, 0, 0, 0)),
            ("@DAILY", at(2024, 1, 2, 0, 0, 0)),
        ];
        for (expr, want) in table {
            let s = CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(s.expression(), expr);
            assert_eq!(s.next_after(&from), Some(want), "{expr}");
        }
    }

    #[test]
    fn reboot_and_unknown_macros_are_refused_by_name() {
        let e = CronSchedule::parse("@reboot").unwrap_err().to_string();
        assert!(
            e.contains("'@reboot'") && e.contains("run_on_startup"),
            "{e}"
        );
        let e = CronSchedule::parse("@fortnightly").unwrap_err().to_string();
        assert!(e.contains("'@fortnightly'") && e.contains("@hourly"), "{e}");
        assert!(CronSchedule::parse("@daily 5").is_err());
    }

    /// A literal standard expression and the fields it should match.
    fn literal_expr() -> impl Strategy<Value = (u32, u32, u32, u32, Vec<u32>, String)> {
        (
            0u32..60,
            0u32..24,
            1u32..29,
            1u32..13,
            proptest::collection::btree_set(0u32..8, 1..4),
            any::<bool>(),
        )
            .prop_map(|(mi, h, d, mo, dows, names)| {
                let dow_text: Vec<String> = dows
                    .iter()
                    .map(|&w| {
                        if names {
                            DAYS[(w % 7) as usize].to_string()
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
                let mo_text = if names {
                    MONTHS[(mo - 1) as usize].to_lowercase()
                } else {
                    mo.to_string()
                };
                let expr = format!("{mi} {h} * {mo_text} {}", dow_text.join(","));
                let dows = dows.into_iter().map(|w| w % 7).collect();
                (mi, h, d, mo, dows, expr)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The next fire of a literal expression lands on exactly the minute, hour, month and weekday
        /// written, with Sunday as 0 or 7 and names or numbers alike.
        #[test]
        fn next_fire_matches_the_fields((mi, h, _d, mo, dows, expr) in literal_expr(), day in 0i64..3000) {
            let from = at(2020, 1, 1, 12, 0, 0) + chrono::Duration::days(day);
            let s = CronSchedule::parse(&expr).unwrap();
            let next = s.next_after(&from).unwrap();
            prop_assert!(next > from);
            prop_assert_eq!((next.minute(), next.hour(), next.month(), next.second()), (mi, h, mo, 0));
            prop_assert!(dows.contains(&next.weekday().num_days_from_sunday()));
            // Nothing earlier matches: one minute back from the fire, the next fire is the same.
            prop_assert_eq!(s.next_after(&(next - chrono::Duration::seconds(1))), Some(next));
        }

        /// The 6-field form with a 0 seconds field is the same schedule as the 5-field form.
        #[test]
        fn six_fields_with_zero_seconds_equal_five((_mi, _h, _d, _mo, _dows, expr) in literal_expr(), day in 0i64..3000) {
            let from = at(2020, 1, 1, 12, 0, 0) + chrono::Duration::days(day);
            let five = CronSchedule::parse(&expr).unwrap();
            let six = CronSchedule::parse(&format!("0 {expr}")).unwrap();
            prop_assert_eq!(five.next_after(&from), six.next_after(&from));
        }

        /// Both day fields restricted fire on the earlier of the two, as standard cron's OR.
        #[test]
        fn day_fields_are_ored(dom in 1u32..29, dow in 0u32..7, day in 0i64..3000) {
            let from = at(2020, 1, 1, 12, 0, 0) + chrono::Duration::days(day);
            let both = CronSchedule::parse(&format!("0 0 {dom} * {dow}")).unwrap();
            let by_dom = CronSchedule::parse(&format!("0 0 {dom} * *")).unwrap();
            let by_dow = CronSchedule::parse(&format!("0 0 * * {dow}")).unwrap();
            let want = by_dom.next_after(&from).min(by_dow.next_after(&from));
            prop_assert_eq!(both.next_after(&from), want);
            let next = want.unwrap();
            prop_assert!(next.day() == dom || next.weekday().num_days_from_sunday() == dow);
        }
    }
}
