//! Grammar rules and error messages of the parser.

use super::*;

fn one(script: &str) -> Action {
    let mut actions = parse(script).unwrap_or_else(|e| panic!("{script:?}: {e}"));
    assert_eq!(actions.len(), 1, "{script:?}");
    actions.remove(0)
}

fn err(script: &str) -> String {
    parse(script).expect_err(script).to_string()
}

#[test]
fn action_names_are_case_insensitive_with_one_to_four_bangs() {
    for script in [
        "!process.list",
        "!!Process.List",
        "!!!PROCESS.list",
        "  !!!!process.list",
    ] {
        let a = one(script);
        assert_eq!(
            (a.actor.as_str(), a.name.as_str()),
            ("process", "list"),
            "{script}"
        );
    }
    assert_eq!(one("!!help").full_name(), "help");
    assert_eq!(
        err("!!!!!process.list"),
        "line 1, col 1: too many '!' (5): an action starts with one to four '!'"
    );
    assert_eq!(
        err("!!process..list"),
        "line 1, col 3: invalid action name 'process..list': expected '!!actor.action'"
    );
    assert_eq!(
        err("!! process.list"),
        "line 1, col 3: invalid action name '': expected '!!actor.action'"
    );
}

#[test]
fn key_colon_value_with_or_without_space() {
    let a = one("!!process.start name:web command: 'echo hi'  Log:true");
    assert_eq!(a.str("name"), Some("web"));
    assert_eq!(a.str("command"), Some("echo hi"));
    assert_eq!(a.str("log"), Some("true"), "keys are case-insensitive");
    assert_eq!(a.params[1].col, 26);
    assert_eq!(a.params[1].value_col, 35);
}

#[test]
fn an_empty_value_at_the_end_of_a_line() {
    let a = one("!!process.list format:");
    assert_eq!(a.str("format"), Some(""));
}

#[test]
fn bare_single_and_double_quoted_values_with_escapes() {
    let a = one(
        r#"!!x.y a:bare b:'it\'s' c:"say \"hi\"" d:'back\\slash' e:'C:\temp' f:"it's" g:'"q"'"#,
    );
    assert_eq!(a.str("a"), Some("bare"));
    assert_eq!(a.str("b"), Some("it's"));
    assert_eq!(a.str("c"), Some(r#"say "hi""#));
    assert_eq!(a.str("d"), Some(r"back\slash"));
    assert_eq!(a.str("e"), Some(r"C:\temp"), "other backslashes are kept");
    assert_eq!(a.str("f"), Some("it's"));
    assert_eq!(a.str("g"), Some(r#""q""#));
}

#[test]
fn multi_line_quotes_keep_blank_lines_and_indentation() {
    let script =
        "!!process.start name:web command:'\n  cd /tmp\n\n    echo \"x\"\n\tdone' log:true\n";
    let a = one(script);
    assert_eq!(
        a.str("command"),
        Some("\n  cd /tmp\n\n    echo \"x\"\n\tdone")
    );
    assert_eq!(
        a.str("log"),
        Some("true"),
        "parameters go on after the closing quote"
    );
}

#[test]
fn continuation_lines_need_two_spaces_or_a_tab() {
    let a = one("!!process.start name:web\n  command:'sleep 1'\n\tlog:true\n");
    assert_eq!(a.params.len(), 3);
    assert_eq!((a.params[2].line, a.params[2].col), (3, 2));
    assert_eq!(
        err("!!process.start name:web\n command:x"),
        "line 2, col 2: parameters on a continuation line must be indented by at least two spaces or a tab"
    );
    assert_eq!(
        err("name:web"),
        "line 1, col 1: text outside an action: a script starts with an action line such as '!!process.list'"
    );
}

#[test]
fn comments_and_several_actions() {
    let script = "# a comment\n// another\n!!process.stop name:a # trailing\n\n  // indented comment\n!!process.stop name:b\n";
    let actions = parse(script).unwrap();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].str("name"), Some("a"));
    assert_eq!(actions[0].params.len(), 1);
    assert_eq!((actions[1].line, actions[1].col), (6, 1));
}

#[test]
fn unterminated_quote_names_the_line_where_it_opened() {
    assert_eq!(
        err("!!process.start name:web\n  command:'echo\nhello\n"),
        "line 2, col 11: unterminated quote: the value opened on line 2 never closes"
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    assert_eq!(
        err("!!process.start name web"),
        "line 1, col 17: expected ':' after 'name' (parameters are written key:value)"
    );
    assert_eq!(
        err("!!process.start =x"),
        "line 1, col 17: expected a parameter (key:value), found '=x'"
    );
    assert_eq!(
        err("!!x.y a:'b'c"),
        "line 1, col 12: expected white space after the closing quote"
    );
}

#[test]
fn typed_reads_name_the_key_and_value() {
    let a = one("!!x.y n:12 bad:12x t:yes f:off d:1h30m dd:soon");
    assert_eq!(a.int::<u64>("n").unwrap(), Some(12));
    assert_eq!(a.int::<u64>("missing").unwrap(), None);
    assert_eq!(
        a.int::<u64>("bad").unwrap_err().to_string(),
        "line 1, col 16: invalid value '12x' for 'bad': expected a whole number"
    );
    assert_eq!(a.bool("t").unwrap(), Some(true));
    assert_eq!(a.bool("f").unwrap(), Some(false));
    assert!(a.bool("n").is_err());
    assert_eq!(
        a.duration("d").unwrap(),
        Some(std::time::Duration::from_secs(5400))
    );
    assert_eq!(
        a.duration("dd").unwrap_err().to_string(),
        "line 1, col 43: invalid value 'soon' for 'dd': expected a duration such as 30, 30s, 5m or 1h30m"
    );
}

#[test]
fn long_values_are_clipped_in_errors() {
    let long = "x".repeat(500);
    let msg = one(&format!("!!x.y n:{long}"))
        .int::<u8>("n")
        .unwrap_err()
        .to_string();
    assert!(msg.len() < 200, "{msg}");
    assert!(msg.contains("xxx..."), "{msg}");
}

#[test]
fn the_parser_reports_an_open_quote_line_by_line() {
    let mut p = Parser::new();
    p.feed_line("!!process.start command:'a");
    assert!(p.in_quote());
    p.feed_line("q");
    assert!(p.in_quote());
    p.feed_line("' name:x");
    assert!(!p.in_quote());
    let actions = p.finish().unwrap();
    assert_eq!(actions[0].str("command"), Some("a\nq\n"));
}

#[test]
fn quoting_renders_values_that_parse_back() {
    for value in [
        "web",
        "",
        "a b",
        "it's",
        r"back\slash",
        "x\ny",
        "\"",
        "é ü 字",
        "tab\there",
        "#x",
        "//y",
    ] {
        let mut w = ActionWriter::new("x.y");
        w.param("v", value);
        let text = w.finish();
        assert_eq!(one(&text).str("v"), Some(value), "{text}");
    }
}

#[test]
fn huge_names_are_clipped_in_errors() {
    let long = "y".repeat(100_000);
    for script in [format!("!!{long}.x"), format!("!!a.{long}..b")] {
        let Err(e) = crate::command::parse_script(&script) else {
            panic!("should fail")
        };
        let msg = e.to_string();
        assert!(msg.len() < 400, "message of {} bytes", msg.len());
    }
}
