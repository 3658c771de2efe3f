//! Commands: parsing, errors, conversion to a spec, and the parse(render(c)) == c property.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::spec::{CommandLine, RestartPolicy};
use crate::SignalName;

fn one(script: &str) -> Command {
    let mut cmds = parse_script(script).unwrap_or_else(|e| panic!("{script:?}: {e}"));
    assert_eq!(cmds.len(), 1);
    cmds.remove(0)
}

fn err(script: &str) -> String {
    parse_script(script).expect_err(script).to_string()
}

#[test]
fn dependencies_reach_the_spec_and_errors_are_clear() {
    let Command::Start(start) = one(
        "!!process.start name:web command:x after:'migrate:completed' after:db restart_with:true",
    ) else {
        panic!("not a start");
    };
    let spec = start.to_spec().unwrap();
    let after: Vec<String> = spec.after.iter().map(|d| d.describe()).collect();
    assert_eq!(after, ["migrate (completed)", "db (ready)"]);
    assert!(spec.restart_with);
    assert_eq!(
        Command::Start(start).to_heroscript(),
        "!!process.start name:web command:x after:migrate:completed after:db restart_with:true"
    );
    let e = err("!!process.start name:w command:x after:'db:up'");
    assert!(
        e.contains("unknown condition 'up' (use started, ready or completed)"),
        "{e}"
    );
    let e = err("!!process.start name:w command:x aftr:db");
    assert!(e.contains("did you mean 'after'?"), "{e}");
    let e = err("!!process.start name:w command:x after:'a b'");
    assert!(e.contains("not a process name"), "{e}");
}

#[test]
fn the_seed_commands_parse() {
    let cmd = one("!!process.start name:'processname' command:'command which can be multiline' log:true deadline:30 cron:'0 0 * * *' jobid:'e42'");
    let Command::Start(s) = &cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(s.name, "processname");
    assert_eq!(
        s.command,
        CommandLine::Shell("command which can be multiline".into())
    );
    assert!(s.log);
    assert_eq!(s.deadline, Some(Duration::from_secs(30)));
    assert_eq!(s.cron.as_deref(), Some("0 0 * * *"));
    assert_eq!(cmd.job_id(), "e42");
    assert_eq!(
        one("!!process.list format:json"),
        Command::List(List {
            format: Format::Json
        })
    );
    assert_eq!(
        one("!!process.list"),
        Command::List(List {
            format: Format::Text
        })
    );
    assert_eq!(
        one("!!process.status name:'p' format:json"),
        Command::Status(Status {
            name: "p".into(),
            format: Format::Json
        })
    );
    assert_eq!(
        one("!!process.stop name:'p'"),
        Command::Stop(Stop::named("p"))
    );
    assert_eq!(
        one("!!process.restart name:'p'"),
        Command::Restart(Restart { name: "p".into() })
    );
    assert_eq!(
        one("!!process.delete name:'p'"),
        Command::Delete(Delete { name: "p".into() })
    );
}

#[test]
fn the_new_commands_parse() {
    assert_eq!(
        one("!!process.logs name:'x' lines:100"),
        Command::Logs(Logs {
            name: "x".into(),
            lines: Some(100),
            ..Logs::default()
        })
    );
    assert_eq!(
        one("!!process.logs name:'x' after:41 format:json"),
        Command::Logs(Logs {
            name: "x".into(),
            lines: None,
            after: Some(41),
            format: Format::Json,
        })
    );
    assert_eq!(
        one("!!process.signal name:'x' signal:'HUP'"),
        Command::Signal(Signal {
            name: "x".into(),
            signal: "HUP".into(),
            group: false
        })
    );
    assert_eq!(
        one("!!process.kill name:'x'"),
        Command::Kill(Kill { name: "x".into() })
    );
    assert_eq!(
        one("!!process.attach pid:123 name:'x'"),
        Command::Attach(Attach {
            pid: 123,
            name: "x".into()
        })
    );
    assert_eq!(one("!!process.watch"), Command::Watch(Watch::default()));
    let Command::Watch(w) = one("!!process.watch name:a name:b") else {
        panic!()
    };
    assert_eq!(w.filter(), Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(one("!!help"), Command::Help(Help));
    assert_eq!(one("!!quit"), Command::Quit(Quit));
    assert_eq!(one("!!EXIT"), Command::Quit(Quit));
}

#[test]
fn stop_takes_a_name_or_all() {
    assert_eq!(one("!!process.stop all:true"), Command::Stop(Stop::all()));
    assert_eq!(one("!!process.stop all:yes"), Command::Stop(Stop::all()));
    assert_eq!(one("!!process.stop  ALL:1"), Command::Stop(Stop::all()));
    // `all:false` is the default and leaves the name to choose.
    assert_eq!(
        one("!!process.stop name:web all:false"),
        Command::Stop(Stop::named("web"))
    );
    // An empty name means "not given", as elsewhere.
    assert_eq!(
        one("!!process.stop name:'' all:true"),
        Command::Stop(Stop::all())
    );
    assert_eq!(
        Command::Stop(Stop::all()).to_heroscript(),
        "!!process.stop all:true"
    );
}

#[test]
fn the_original_clients_empty_values_mean_unset() {
    let Command::Start(s) =
        one("!!process.start name:'a' command:'b' log:false deadline:0 cron:'' jobid:''")
    else {
        panic!()
    };
    assert_eq!(s, Start::shell("a", "b"));
}

#[test]
fn error_messages() {
    assert_eq!(
        err("!!process.start name:web\n  command:'x' comand:'y'"),
        "line 2, col 15: unknown parameter 'comand' for process.start (did you mean 'command'?)"
    );
    assert_eq!(
        err("!!process.start name:web\n                comand:'sleep 1'"),
        "line 2, col 17: unknown parameter 'comand' for process.start (did you mean 'command'?)"
    );
    let unknown = err("!!process.strat name:x");
    assert!(unknown.starts_with("line 1, col 1: unknown action 'process.strat' (did you mean 'process.start'?); known actions: process.start, process.list,"), "{unknown}");
    assert!(unknown.ends_with("help, quit, exit"), "{unknown}");
    assert!(err("!!job.run").contains("unknown action 'job.run'; known actions: process.start"));
    assert_eq!(
        err("!!process.stop"),
        "line 1, col 1: missing required parameter 'name' for process.stop (or all:true for every process)"
    );
    assert_eq!(
        err("!!process.stop name:''"),
        "line 1, col 1: missing required parameter 'name' for process.stop (or all:true for every process)"
    );
    assert_eq!(
        err("!!process.stop all:false"),
        "line 1, col 1: missing required parameter 'name' for process.stop (or all:true for every process)"
    );
    assert_eq!(
        err("!!process.stop name:web all:true"),
        "line 1, col 1: give either 'name' or 'all:true', not both"
    );
    assert_eq!(
        err("!!process.stop all:everything"),
        "line 1, col 20: invalid value 'everything' for 'all': expected true or false (also yes/no, on/off, 1/0)"
    );
    assert_eq!(
        err("!!process.restart all:true"),
        "line 1, col 19: unknown parameter 'all' for process.restart"
    );
    assert_eq!(
        err("!!process.delete all:true"),
        "line 1, col 18: unknown parameter 'all' for process.delete"
    );
    assert_eq!(
        err("!!process.start name:x"),
        "line 1, col 1: missing required parameter 'command' for process.start"
    );
    assert_eq!(
        err("!!process.start name:x command:y deadline:soon"),
        "line 1, col 43: invalid value 'soon' for 'deadline': expected a duration such as 30, 30s, 5m or 1h30m"
    );
    assert_eq!(
        err("!!process.logs name:x lines:ten"),
        "line 1, col 29: invalid value 'ten' for 'lines': expected a whole number"
    );
    assert_eq!(
        err("!!process.stop name:a name:b"),
        "line 1, col 23: parameter 'name' is given more than once"
    );
    assert_eq!(
        err("!!process.list format:xml"),
        "line 1, col 23: invalid value 'xml' for 'format': expected json or text"
    );
    assert_eq!(
        err("!!process.start name:x command:y program:z"),
        "line 1, col 1: give either 'command' or 'program' (with 'args'), not both"
    );
    assert_eq!(
        err("!!process.start name:x command:y env:NOEQUALS"),
        "line 1, col 38: invalid value 'NOEQUALS' for 'env': expected KEY=VALUE"
    );
    assert_eq!(
        err("!!process.start name:x command:y restarts:-2"),
        "line 1, col 43: invalid value '-2' for 'restarts': expected a count of restarts, or -1 for unlimited"
    );
    assert_eq!(
        err("!!process.start name:x command:y stop_signal:BOGUS"),
        format!(
            "line 1, col 46: invalid value 'BOGUS' for 'stop_signal': expected a signal number or \
             name: {}",
            crate::signal::valid_signal_names()
        )
    );
    assert_eq!(
        err("!!process.attach pid:0 name:x"),
        "line 1, col 22: invalid value '0' for 'pid': expected a process id (a whole number above 0)"
    );
    assert_eq!(
        err("!!process.start name:x command:y run_on_startup:true"),
        "line 1, col 49: invalid value 'true' for 'run_on_startup': expected false unless template:true is given"
    );
    assert_eq!(
        err("!!process.list\n!!process.stop"),
        "line 2, col 1: missing required parameter 'name' for process.stop (or all:true for every process)"
    );
}

#[test]
fn a_full_start_converts_to_a_spec() {
    let script = "!!process.start name:web program:/bin/echo args:'a b' args:c log:yes deadline:1m30s\n  \
                  cron:'*/5 * * * *' jobid:j1 env:'A=1' env:'B=x=y' cwd:/tmp restarts:3 detach:on\n  \
                  template:true run_on_startup:1 stop_signal:INT grace:2s user:nobody group:nogroup";
    let Command::Start(s) = one(script) else {
        panic!()
    };
    assert!(s.template && s.run_on_startup);
    let spec = s.to_spec().unwrap();
    assert_eq!(
        spec.command,
        CommandLine::Exec {
            program: "/bin/echo".into(),
            args: vec!["a b".into(), "c".into()]
        }
    );
    assert!(spec.log.enabled && spec.detach);
    assert_eq!(spec.deadline_secs, Some(90));
    assert_eq!(spec.cron.as_deref(), Some("*/5 * * * *"));
    assert_eq!(spec.job_id.as_deref(), Some("j1"));
    let env: BTreeMap<String, String> = [("A", "1"), ("B", "x=y")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    assert_eq!(spec.env, env);
    assert_eq!(spec.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
    assert_eq!(
        (spec.restart.policy, spec.restart.max_restarts),
        (RestartPolicy::OnFailure, 3)
    );
    assert_eq!(spec.stop_signal.as_str(), "SIGINT");
    assert_eq!(spec.grace_ms, 2000);
    assert_eq!(
        (spec.user.as_deref(), spec.group.as_deref()),
        (Some("nobody"), Some("nogroup"))
    );
}

#[test]
fn each_command_says_its_process_and_whether_it_changes_state() {
    let cases = [
        ("!!process.start name:a command:x", Some("a"), true),
        ("!!process.stop name:a", Some("a"), true),
        ("!!process.stop all:true", None, true),
        ("!!process.restart name:a", Some("a"), true),
        ("!!process.delete name:a", Some("a"), true),
        ("!!process.kill name:a", Some("a"), true),
        ("!!process.attach name:a pid:1", Some("a"), true),
        ("!!process.signal name:a signal:HUP", Some("a"), false),
        ("!!process.status name:a", Some("a"), false),
        ("!!process.logs name:a", Some("a"), false),
        ("!!process.list", None, false),
        ("!!process.watch", None, false),
        ("!!help", None, false),
        ("!!quit", None, false),
    ];
    for (script, name, changes) in cases {
        let cmd = one(script);
        assert_eq!(cmd.process_name(), name, "{script}");
        assert_eq!(cmd.changes_state(), changes, "{script}");
    }
}

#[test]
fn restart_policy_defaults() {
    let spec = |extra: &str| match one(&format!("!!process.start name:w command:x {extra}")) {
        Command::Start(s) => s.to_spec().unwrap().restart,
        other => panic!("{other:?}"),
    };
    let r = spec("");
    assert_eq!((r.policy, r.max_restarts), (RestartPolicy::Never, 0));
    let r = spec("restarts:-1");
    assert_eq!((r.policy, r.max_restarts), (RestartPolicy::OnFailure, -1));
    let r = spec("restart_policy:always");
    assert_eq!((r.policy, r.max_restarts), (RestartPolicy::Always, -1));
    let r = spec("restart_policy:never restarts:5");
    assert_eq!((r.policy, r.max_restarts), (RestartPolicy::Never, 5));
    let r = spec("restarts:0");
    assert_eq!((r.policy, r.max_restarts), (RestartPolicy::Never, 0));
}

#[test]
fn to_spec_refuses_bad_names_and_empty_commands() {
    assert_eq!(
        Start::shell("a/b", "x").to_spec(),
        Err(crate::PmError::InvalidName("a/b".into()))
    );
    assert!(matches!(
        Start::shell("a", "  ").to_spec(),
        Err(crate::PmError::Invalid(_))
    ));
    assert!(Start::exec("a", "ls", vec!["-l".into()]).to_spec().is_ok());
}

#[test]
fn rendering_quotes_what_needs_quoting() {
    let mut s = Start::shell("web", "echo 'hi'\n  there \\o/");
    s.log = true;
    s.deadline = Some(Duration::from_secs(5400));
    s.env.insert("PATH".into(), "/bin:/usr/bin".into());
    assert_eq!(
        Command::Start(s).to_heroscript(),
        "!!process.start name:web command:'echo \\'hi\\'\n  there \\\\o/' log:true deadline:1h30m env:PATH=/bin:/usr/bin"
    );
    let script = render_script(&[Command::List(List::default()), Command::Quit(Quit)]);
    assert_eq!(script, "!!process.list\n!!quit\n");
}

/// Any text, including quotes, backslashes, newlines, blank lines, tabs and unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_.-]{1,12}",
        "[ -~]{0,30}",
        "(\\PC|[\n\t'\"\\\\ ]){0,40}",
        Just("  \n\n  indented\n\tq\n".to_string()),
    ]
}

fn non_empty() -> impl Strategy<Value = String> {
    text().prop_filter("non-empty", |s| !s.is_empty())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(non_empty())
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..200_000).prop_map(Duration::from_secs),
        (0u64..10_000_000).prop_map(Duration::from_millis)
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Text), Just(Format::Json)]
}

fn command_line() -> impl Strategy<Value = CommandLine> {
    prop_oneof![
        non_empty().prop_map(CommandLine::Shell),
        (non_empty(), proptest::collection::vec(text(), 0..4))
            .prop_map(|(program, args)| CommandLine::Exec { program, args }),
    ]
}

fn signal_name() -> impl Strategy<Value = SignalName> {
    (1i32..=31).prop_map(|n| n.to_string().parse().unwrap())
}

fn policy() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        Just(RestartPolicy::Always),
        Just(RestartPolicy::OnFailure),
        Just(RestartPolicy::Never)
    ]
}

fn start() -> impl Strategy<Value = Start> {
    let env = proptest::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,8}", text(), 0..3);
    (
        (
            non_empty(),
            command_line(),
            any::<bool>(),
            proptest::option::of(duration().prop_filter("deadline 0 is none", |d| !d.is_zero())),
        ),
        (opt_text(), opt_text(), env, opt_text()),
        (
            proptest::option::of(-1i64..1000),
            proptest::option::of(policy()),
            any::<bool>(),
            any::<(bool, bool)>(),
        ),
        (
            proptest::option::of(signal_name()),
            proptest::option::of(duration()),
            opt_text(),
            opt_text(),
        ),
        (probe_options(), limits()),
        (proptest::collection::vec(dependency(), 0..3), any::<bool>()),
    )
        .prop_map(|(a, b, c, d, (probes, limits), deps)| {
            let mut s = Start::shell(a.0, "");
            s.command = a.1;
            s.log = a.2;
            s.deadline = a.3;
            (s.cron, s.jobid, s.env, s.cwd) = b;
            (s.restarts, s.restart_policy, s.detach) = (c.0, c.1, c.2);
            s.template = c.3 .0;
            s.run_on_startup = c.3 .0 && c.3 .1;
            (s.stop_signal, s.grace, s.user, s.group) = d;
            s.probes = probes;
            (s.after, s.restart_with) = deps;
            s.limits = limits;
            s
        })
}

/// One `after:` entry (issue 14, part E), every condition.
fn dependency() -> impl Strategy<Value = crate::depend::Dependency> {
    use crate::depend::{Condition, Dependency};
    (
        "[a-z][a-z0-9._-]{0,8}",
        prop_oneof![
            Just(Condition::Started),
            Just(Condition::Ready),
            Just(Condition::Completed)
        ],
    )
        .prop_map(|(name, condition)| Dependency::new(name, condition))
}

/// Limits (issue 18), as written in a script.
fn limits() -> impl Strategy<Value = crate::ResourceLimits> {
    let size = || proptest::option::of(1u64..(1 << 44));
    (
        size(),
        size(),
        proptest::option::of(1u32..10_000),
        proptest::option::of(1u64..100_000),
    )
        .prop_map(
            |(memory_max, memory_high, cpu_max, pids_max)| crate::ResourceLimits {
                memory_max,
                memory_high,
                cpu_max,
                pids_max,
            },
        )
}

/// Readiness and health options (issue 14, part D), valid together.
fn probe_options() -> impl Strategy<Value = crate::command::ProbeOptions> {
    let ready = proptest::option::of(
        prop_oneof![
            Just("started"),
            Just("notify"),
            Just("exited"),
            Just("log:^listening on [0-9]+ 'x'"),
            Just("http:http://127.0.0.1:8080/health?a=1"),
            Just("tcp:[::1]:5432"),
            Just("exec:pg_isready -q && echo \"ok\""),
        ]
        .prop_map(|t| crate::probe::Readiness::parse(t).unwrap()),
    );
    let health = proptest::option::of(
        prop_oneof![
            Just("http:http://localhost/"),
            Just("tcp:db:1"),
            Just("exec:true")
        ]
        .prop_map(|t| crate::probe::Probe::parse(t).unwrap()),
    );
    let some_duration = || proptest::option::of(duration().prop_filter("not 0", |d| !d.is_zero()));
    (
        (ready, some_duration(), some_duration(), some_duration()),
        (health, some_duration(), some_duration()),
        (proptest::option::of(1u32..10), some_duration()),
    )
        .prop_map(|(r, h, w)| {
            let watchdog = w.1.filter(|_| r.0 == Some(crate::probe::Readiness::Notify));
            crate::command::ProbeOptions {
                ready: r.0,
                ready_period: r.1,
                ready_timeout: r.2,
                ready_within: r.3,
                health: h.0,
                health_period: h.1,
                health_timeout: h.2,
                health_failures: w.0,
                watchdog,
            }
        })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        start().prop_map(Command::Start),
        format().prop_map(|format| Command::List(List { format })),
        (non_empty(), format()).prop_map(|(name, format)| Command::Status(Status { name, format })),
        prop_oneof![non_empty().prop_map(Selector::Name), Just(Selector::All)]
            .prop_map(|target| Command::Stop(Stop { target })),
        non_empty().prop_map(|name| Command::Restart(Restart { name })),
        non_empty().prop_map(|name| Command::Delete(Delete { name })),
        (
            non_empty(),
            proptest::option::of(any::<usize>()),
            proptest::option::of(any::<u64>()),
            format()
        )
            .prop_map(|(name, lines, after, format)| Command::Logs(Logs {
                name,
                lines,
                after,
                format
            })),
        (non_empty(), non_empty(), any::<bool>()).prop_map(
            |(name, signal, group)| Command::Signal(Signal {
                name,
                signal,
                group
            })
        ),
        non_empty().prop_map(|name| Command::Kill(Kill { name })),
        (1..=i32::MAX, non_empty()).prop_map(|(pid, name)| Command::Attach(Attach { pid, name })),
        (proptest::collection::vec(non_empty(), 0..3), format())
            .prop_map(|(names, format)| Command::Watch(Watch { names, format })),
        Just(Command::Help(Help)),
        Just(Command::Quit(Quit)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_of_render_is_identity(cmd in command()) {
        let text = cmd.to_heroscript();
        let back = parse_script(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(back, vec![cmd], "{:?}", text);
    }

    #[test]
    fn a_rendered_script_parses_back(cmds in proptest::collection::vec(command(), 0..5)) {
        let text = render_script(&cmds);
        prop_assert_eq!(parse_script(&text).map_err(|e| TestCaseError::fail(e.to_string()))?, cmds);
    }
}

#[test]
fn many_repeated_parameters_stay_fast() {
    // Duplicate checks are linear: 100k repeated `args` parse in well under the test timeout.
    let args: String = (0..100_000).map(|i| format!(" args:a{i}")).collect();
    let Command::Start(s) = one(&format!("!!process.start name:x program:echo{args}")) else {
        panic!()
    };
    let CommandLine::Exec { args, .. } = &s.command else {
        panic!()
    };
    assert_eq!(args.len(), 100_000);
}

#[test]
fn limits_parse_write_back_and_reach_the_spec() {
    let cmd = one(
        "!!process.start name:web command:'sleep 1' memory_max:'512M' memory_high:1.5G cpu_max:'150%' pids_max:200",
    );
    let Command::Start(s) = &cmd else {
        panic!("{cmd:?}")
    };
    let spec = s.to_spec().unwrap();
    assert_eq!(spec.limits.memory_max, Some(512 << 20));
    assert_eq!(spec.limits.memory_high, Some(3 << 29));
    assert_eq!(spec.limits.cpu_max, Some(150));
    assert_eq!(spec.limits.pids_max, Some(200));
    let text = cmd.to_heroscript();
    assert!(
        text.contains("memory_max:512M memory_high:1536M cpu_max:150% pids_max:200"),
        "{text}"
    );
    assert_eq!(
        err("!!process.start name:x command:y memory_max:lots"),
        "line 1, col 45: invalid value 'lots' for 'memory_max': expected a size such as 512M, 2G, 100K or a count of bytes"
    );
    assert!(err("!!process.start name:x command:y memory_mx:1G").contains("memory_max"));
}
