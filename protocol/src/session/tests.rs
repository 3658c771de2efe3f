//! The session state machine: authentication, buffering, run triggers, quit and help, telnet bytes.

use proptest::prelude::*;

use super::*;
use crate::command::{Stop, Watch};

fn authed() -> SessionMachine {
    let mut s = SessionMachine::new();
    s.set_authenticated(true);
    s
}

fn feed(s: &mut SessionMachine, lines: &[&str]) -> Vec<SessionEvent> {
    lines
        .iter()
        .flat_map(|l| s.feed_line(l.as_bytes()))
        .collect()
}

fn run_ok(event: &SessionEvent) -> &[Command] {
    match event {
        SessionEvent::Run {
            result: Ok(cmds), ..
        } => cmds,
        other => panic!("expected a successful run, got {other:?}"),
    }
}

fn stop(name: &str) -> Command {
    Command::Stop(Stop::named(name))
}

#[test]
fn before_authentication_every_line_is_a_secret_attempt() {
    let mut s = SessionMachine::new();
    assert_eq!(
        feed(&mut s, &["wrong"]),
        vec![SessionEvent::SecretAttempt("wrong".into())]
    );
    assert_eq!(
        feed(&mut s, &["q"]),
        vec![SessionEvent::SecretAttempt("q".into())]
    );
    assert_eq!(
        feed(&mut s, &["!!process.list"]),
        vec![SessionEvent::SecretAttempt("!!process.list".into())]
    );
    assert_eq!(feed(&mut s, &["  "]), vec![], "blank lines are no attempt");
    assert_eq!(
        s.feed_line(b"mysecretkey\r"),
        vec![SessionEvent::SecretAttempt("mysecretkey".into())]
    );
    assert!(!s.is_authenticated());
    s.set_authenticated(true);
    assert!(s.is_authenticated());
    assert_eq!(feed(&mut s, &["!!process.list"]), vec![]);
    assert_eq!(s.finish().len(), 1);
}

#[test]
fn a_blank_line_runs_the_buffer_and_an_empty_blank_does_nothing() {
    let mut s = authed();
    assert_eq!(feed(&mut s, &["", "  ", "\t"]), vec![]);
    assert_eq!(feed(&mut s, &["!!process.stop", "  name:web"]), vec![]);
    assert!(s.has_pending());
    let events = feed(&mut s, &[""]);
    assert_eq!(events.len(), 1);
    assert_eq!(run_ok(&events[0]), [stop("web")]);
    assert!(!s.has_pending());
    assert_eq!(
        feed(&mut s, &[""]),
        vec![],
        "the previous command is not run again"
    );
}

#[test]
fn a_new_action_line_runs_the_previous_one() {
    let mut s = authed();
    assert_eq!(feed(&mut s, &["!!process.stop name:a"]), vec![]);
    let events = feed(&mut s, &["!!process.stop name:b"]);
    assert_eq!(run_ok(&events[0]), [stop("a")]);
    let events = s.finish();
    assert_eq!(run_ok(&events[0]), [stop("b")]);
    assert_eq!(s.finish(), vec![]);
}

#[test]
fn run_carries_the_script_text_and_the_jobid() {
    let mut s = authed();
    feed(
        &mut s,
        &[
            "// start it",
            "!!process.start name:w command:'x' jobid:e42",
            "  log:true",
        ],
    );
    match &s.finish()[0] {
        SessionEvent::Run {
            script_text,
            result,
            jobid,
        } => {
            assert_eq!(
                script_text,
                "// start it\n!!process.start name:w command:'x' jobid:e42\n  log:true"
            );
            assert_eq!(jobid, "e42");
            assert!(result.is_ok());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_comment_only_buffer_runs_nothing() {
    let mut s = authed();
    assert_eq!(feed(&mut s, &["# nothing", "// here", ""]), vec![]);
}

#[test]
fn blank_lines_and_q_inside_a_quote_are_data() {
    let mut s = authed();
    let lines = [
        "!!process.start name:w command:'echo a",
        "",
        "q",
        "!!quit",
        "h",
        "?",
        "!!process.list",
        "done'",
        "",
    ];
    let events = feed(&mut s, &lines);
    assert_eq!(events.len(), 1, "{events:?}");
    let Command::Start(start) = &run_ok(&events[0])[0] else {
        panic!()
    };
    assert_eq!(
        start.command,
        crate::CommandLine::Shell("echo a\n\nq\n!!quit\nh\n?\n!!process.list\ndone".into())
    );
}

#[test]
fn quit_and_help_words_outside_a_quote() {
    for word in ["q", "!!quit", "!!exit", "  Q ", "!!QUIT"] {
        assert_eq!(
            feed(&mut authed(), &[word]),
            vec![SessionEvent::Quit],
            "{word}"
        );
    }
    for word in ["h", "?", "!!help", "H"] {
        assert_eq!(
            feed(&mut authed(), &[word]),
            vec![SessionEvent::Help],
            "{word}"
        );
    }
    let mut s = authed();
    let events = feed(&mut s, &["!!process.stop name:a", "q"]);
    assert_eq!(
        run_ok(&events[0]),
        [stop("a")],
        "pending lines run before quitting"
    );
    assert_eq!(events[1], SessionEvent::Quit);
}

#[test]
fn a_parse_error_is_a_run_with_the_error() {
    let mut s = authed();
    let events = feed(&mut s, &["!!process.stop nam:x", ""]);
    match &events[0] {
        SessionEvent::Run {
            result: Err(e),
            jobid,
            ..
        } => {
            assert_eq!(
                e.to_string(),
                "line 1, col 16: unknown parameter 'nam' for process.stop (did you mean 'name'?)"
            );
            assert_eq!(jobid, "");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unterminated_quote_at_end_of_input_is_an_error() {
    let mut s = authed();
    feed(
        &mut s,
        &["!!process.start name:w", "  command:'never closed", ""],
    );
    assert!(s.in_quote());
    match &s.finish()[0] {
        SessionEvent::Run { result: Err(e), .. } => {
            assert_eq!(
                e.to_string(),
                "line 2, col 11: unterminated quote: the value opened on line 2 never closes"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn carriage_returns_and_telnet_negotiation_are_removed() {
    // IAC DO ECHO, IAC WILL SGA, IAC SB TTYPE ... IAC SE, IAC NOP, then CR LF style and CR NUL.
    let mut line = vec![
        0xFF, 0xFD, 0x01, 0xFF, 0xFB, 0x03, 0xFF, 0xFA, 0x18, 0x00, b'x', 0xFF, 0xF0, 0xFF, 0xF1,
    ];
    line.extend_from_slice(b"!!process.watch\r");
    assert_eq!(clean_line(&line), b"!!process.watch");
    assert_eq!(clean_line(b"a\r\0b\r"), b"ab");
    assert_eq!(clean_line(&[0xFF]), b"");
    let mut s = authed();
    assert_eq!(s.feed_line(&line), vec![]);
    let events = s.feed_line(b"\r");
    assert_eq!(run_ok(&events[0]), [Command::Watch(Watch::default())]);
}

#[test]
fn discarding_forgets_the_pending_script() {
    let mut s = authed();
    feed(&mut s, &["!!process.start name:w command:'open"]);
    assert!(s.in_quote() && s.pending_len() > 0);
    s.discard_pending();
    assert!(!s.in_quote() && !s.has_pending());
    assert_eq!(feed(&mut s, &["q"]), vec![SessionEvent::Quit]);
}

#[test]
fn huge_and_invalid_lines_do_not_panic() {
    let mut s = authed();
    let mut big = b"!!process.start name:x command:'".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b"' log:maybe");
    assert!(s.feed_line(&big).is_empty());
    let events = s.feed_line(b"");
    assert!(matches!(
        &events[0],
        SessionEvent::Run { result: Err(_), .. }
    ));
    let events = feed(&mut s, &["!!process.stop name:\u{fffd}"]);
    assert!(events.is_empty());
    assert!(s.feed_line(&[0x80, 0xFE, 0x00, b'\'', 0xC3]).is_empty());
    let _ = s.finish();
}

/// Arbitrary bytes: invalid UTF-8, NULs, telnet bytes, quotes, newlines, CRs.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            prop_oneof![
                Just(b'\''),
                Just(b'"'),
                Just(b'\\'),
                Just(b'\n'),
                Just(b'!'),
                Just(b':'),
                Just(b' '),
                Just(0xFF),
                Just(b'\r'),
                Just(0u8),
                any::<u8>()
            ],
            0..300
        ),
        "(!!process\\.(start|stop|list) ?|name:|command:|'|\"|\n|\n\n|q\n|  |x|\\\\|é)*"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(input in bytes(), auth_after in 0usize..4) {
        let mut s = SessionMachine::new();
        for (i, line) in input.split(|b| *b == b'\n').enumerate() {
            if i == auth_after {
                s.set_authenticated(true);
            }
            for event in s.feed_line(line) {
                if let SessionEvent::Run { result: Err(e), .. } = event {
                    prop_assert!(e.line >= 1 && e.col >= 1);
                }
            }
        }
        let _ = s.finish();
    }
}

#[test]
fn a_one_megabyte_line_of_arbitrary_bytes_does_not_panic() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(4));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 1 << 20), |line| {
            let mut s = authed();
            let _ = s.feed_line(&line);
            let _ = s.finish();
            Ok(())
        })
        .unwrap();
}

fn notice(line: usize) -> SessionEvent {
    SessionEvent::OpenQuoteNotice(open_quote_notice(line, '\''))
}

#[test]
fn a_second_blank_line_inside_a_quote_gets_one_notice() {
    let mut s = authed();
    let opened = ["!!process.start name:web", "  command:'sleep 10", ""];
    assert_eq!(feed(&mut s, &opened), vec![], "one blank line may be data");
    assert_eq!(feed(&mut s, &[""]), vec![notice(2)]);
    assert_eq!(feed(&mut s, &["", "q", ""]), vec![], "one notice per quote");
    assert!(s.in_quote());
    // Closing it runs as usual; a new quote is pointed out afresh.
    let events = feed(&mut s, &["'", ""]);
    assert!(
        matches!(&events[..], [SessionEvent::Run { .. }]),
        "{events:?}"
    );
    let again = ["!!process.start name:db command:\"a", "", ""];
    assert_eq!(
        feed(&mut s, &again),
        vec![SessionEvent::OpenQuoteNotice(open_quote_notice(1, '"'))]
    );
}

#[test]
fn an_idle_session_inside_a_quote_gets_one_notice() {
    let mut s = authed();
    assert!(!s.awaits_quote_notice());
    assert_eq!(
        s.idle_in_quote(),
        None,
        "outside a quote there is nothing to say"
    );
    feed(
        &mut s,
        &[
            "!!process.start name:web",
            "  cwd:/tmp",
            "  command:'sleep 10",
        ],
    );
    assert!(s.awaits_quote_notice());
    assert_eq!(s.idle_in_quote(), Some(notice(3)));
    assert!(!s.awaits_quote_notice());
    assert_eq!(s.idle_in_quote(), None);
    assert_eq!(feed(&mut s, &["", ""]), vec![], "noticed already");
    s.discard_pending();
    assert!(!s.awaits_quote_notice());
}

#[test]
fn a_quote_that_closes_and_opens_on_one_line_is_a_new_quote() {
    let mut s = authed();
    feed(&mut s, &["!!process.start name:web command:'a", "", ""]);
    assert!(!s.awaits_quote_notice());
    // Closes the command and opens the cwd on line 4.
    assert_eq!(feed(&mut s, &["' cwd:'/tmp"]), vec![]);
    assert!(s.awaits_quote_notice());
    assert_eq!(feed(&mut s, &["", ""]), vec![notice(4)]);
}

#[test]
fn a_notice_needs_the_secret_first() {
    let mut s = SessionMachine::new();
    feed(&mut s, &["command:'x"]);
    assert!(!s.awaits_quote_notice());
    assert_eq!(s.idle_in_quote(), None);
}

#[test]
fn a_missing_opening_quote_is_named_in_the_error() {
    let mut s = authed();
    let events = feed(
        &mut s,
        &["!!process.start name:'web command:'sleep 10'", ""],
    );
    let [SessionEvent::Run { result: Err(e), .. }] = &events[..] else {
        panic!("expected a parse error, got {events:?}");
    };
    assert_eq!(
        e.to_string(),
        "line 1, col 36: expected white space after the closing quote; a quote may be missing: \
         the quoted value read is 'web command:', so the quote after 'command:' closed it instead \
         of opening the value of 'command'"
    );
    // A value that does not end like a key keeps the plain message.
    let events = feed(&mut s, &["!!process.start name:'web'x", ""]);
    let [SessionEvent::Run { result: Err(e), .. }] = &events[..] else {
        panic!("expected a parse error, got {events:?}");
    };
    assert_eq!(
        e.to_string(),
        "line 1, col 27: expected white space after the closing quote"
    );
}
