//! The daemon end to end: the real binary, a real socket, raw bytes.

mod common;

use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use common::*;

#[test]
fn the_seed_telnet_session_byte_for_byte() {
    let d = Daemon::start();
    let mut s = d.raw();
    assert_eq!(
        s.line(),
        " ** Welcome: you are not authenticated, provide secret.\n"
    );
    s.send(&format!("{SECRET}\n"));
    assert_eq!(s.line(), " ** Welcome: you are authenticated.\n");

    s.send("!!process.start name:'myprocess' command:'echo hello world' log:true\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** \nProcess 'myprocess' started successfully\n**ENDRESULT**\n"
    );
    s.send("!!process.list format:json\n\n");
    let list: serde_json::Value = serde_json::from_str(&s.body()).unwrap();
    assert_eq!(list[0]["name"], "myprocess");
    assert_eq!(list[0]["command"], "echo hello world");
    assert_eq!(list[0]["log_enabled"], true);
    s.send("!!process.status name:'myprocess' format:json\n\n");
    let status: serde_json::Value = serde_json::from_str(&s.body()).unwrap();
    assert_eq!(status["name"], "myprocess");
    for field in [
        "pid",
        "status",
        "cpu_percent",
        "memory_mb",
        "start_time",
        "cron",
        "job_id",
        "deadline",
        "error",
    ] {
        assert!(status.get(field).is_some(), "status has {field}");
    }
    s.send("!!process.stop name:'myprocess'\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** \nProcess 'myprocess' stopped successfully\n**ENDRESULT**\n"
    );
    s.send("!!process.restart name:'myprocess'\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** \nProcess 'myprocess' restarted successfully\n**ENDRESULT**\n"
    );
    s.send("!!process.delete name:'myprocess'\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** \nProcess 'myprocess' deleted successfully\n**ENDRESULT**\n"
    );
    s.send("!!process.start name:'processname' command:'sleep 30' log:true deadline:30 cron:'' jobid:'e42'\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** e42\nProcess 'processname' started successfully\n**ENDRESULT**\n"
    );
    s.send("!!process.delete name:'processname'\nq\n");
    assert_eq!(
        s.frame(),
        "**RESULT** \nProcess 'processname' deleted successfully\n**ENDRESULT**\n"
    );
    assert_eq!(s.rest(), "");
}

#[test]
fn a_wrong_secret_is_refused_and_the_third_closes() {
    let d = Daemon::start();
    let mut s = d.raw();
    s.line();
    for _ in 0..3 {
        s.send("nope\n");
        assert_eq!(s.line(), "Invalid secret. Try again or disconnect.\n");
    }
    assert_eq!(s.rest(), "");
    let out = d
        .pmclient_cmd(&["list"])
        .env("PM_SECRET", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("secret is wrong") && err.contains(d.socket.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn a_slow_authentication_is_closed() {
    let d = Daemon::start_with(&["--auth-timeout-ms", "300"], true);
    let mut s = d.raw();
    assert_eq!(
        s.line(),
        " ** Welcome: you are not authenticated, provide secret.\n"
    );
    let rest = s.rest();
    assert!(
        rest.starts_with("Error: not authenticated within 0.3 s"),
        "{rest}"
    );
    // Others are served all the same.
    assert!(d.pmclient(&["list"]).status.success());
}

#[test]
fn a_megabyte_line_and_garbage_do_no_harm() {
    let d = Daemon::start();
    let mut s = d.session();
    let mut big = b"!!process.start name:big command:'".to_vec();
    big.extend_from_slice(&vec![b'x'; 1 << 20]);
    big.extend_from_slice(b"'\n");
    let writer = {
        let mut w = s.stream.try_clone().unwrap();
        std::thread::spawn(move || std::io::Write::write_all(&mut w, &big).is_ok())
    };
    let body = s.body();
    assert!(
        body.starts_with("Error: line longer than 65536 bytes"),
        "{body}"
    );
    assert!(writer.join().unwrap());
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    s.send_bytes(&garbage);
    s.send("\n\n\u{0}\u{ff}\n\n!!process.list format:json\n\n");
    // Whatever the garbage answered, the list comes last, and nothing was started.
    let mut last = s.body();
    while !last.starts_with('[') {
        assert!(
            last.starts_with("Error"),
            "garbage answered with an error: {last}"
        );
        last = s.body();
    }
    let list: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{last}");
}

#[test]
fn three_hundred_connections_at_once() {
    let d = Daemon::start();
    let mut conns: Vec<Raw> = (0..300).map(|_| d.raw()).collect();
    let firsts: Vec<String> = conns.iter_mut().map(|c| c.line()).collect();
    let greeted = firsts
        .iter()
        .filter(|l| l.contains("provide secret"))
        .count();
    let refused = firsts
        .iter()
        .filter(|l| l.contains("too many connections"))
        .count();
    assert_eq!((greeted, refused), (256, 44), "{:?}", &firsts[250..]);
    // The greeted ones are served.
    let greeted_at = firsts
        .iter()
        .position(|l| l.contains("provide secret"))
        .unwrap();
    let c = &mut conns[greeted_at];
    c.send(&format!("{SECRET}\n!!process.list\n\n"));
    assert_eq!(c.line(), " ** Welcome: you are authenticated.\n");
    assert!(c.body().starts_with("NAME"));
    drop(conns);
    wait_for("the slots to free up", Duration::from_secs(20), || {
        d.pmclient(&["list"]).status.success()
    });
}

#[test]
fn a_client_that_never_reads_does_not_hold_up_another() {
    let d = Daemon::start();
    let stuck = d.session();
    let flood = "!!process.list format:json\n\n".repeat(50_000);
    let mut w = stuck.stream.try_clone().unwrap();
    // Sends a flood of commands and never reads an answer; the write fails once the daemon drops it.
    let flooder = std::thread::spawn(move || std::io::Write::write_all(&mut w, flood.as_bytes()));
    for i in 0..5 {
        let out = d.pmclient(&["start", "--name", &format!("p{i}"), "--command", "sleep 30"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = d.pmclient(&["list"]);
    assert_eq!(stdout(&out).lines().count(), 6, "{}", stdout(&out));
    wait_for(
        "the daemon to drop the client that never reads",
        Duration::from_secs(60),
        || flooder.is_finished(),
    );
    assert!(
        flooder.join().unwrap().is_err(),
        "the daemon closed the connection"
    );
    assert!(d.pmclient(&["list"]).status.success());
    drop(stuck);
}

#[test]
fn a_stale_socket_is_replaced_and_a_second_daemon_refuses() {
    let mut d = Daemon::unstarted();
    drop(UnixListener::bind(&d.socket).unwrap());
    assert!(
        UnixStream::connect(&d.socket).is_err(),
        "the file is there and nobody answers"
    );
    d.launch(&[], true);
    assert!(d.pmclient(&["list"]).status.success());
    assert_eq!(mode(&d.socket), 0o600);
    assert!(
        d.stderr().contains("replaced a stale socket"),
        "{}",
        d.stderr()
    );

    let mut second = d.spawn(&[], true);
    let status = second.wait().unwrap();
    assert!(!status.success());
    let log = d.stderr();
    assert!(
        log.contains(&format!(
            "another processmanager is listening on {}",
            d.socket.display()
        )),
        "{log}"
    );
    assert!(
        d.pmclient(&["list"]).status.success(),
        "the first daemon is unharmed"
    );
}

/// `FDSize` and the soft open-files limit of a process, from /proc.
fn descriptor_table_and_limit(pid: i32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let size = status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    (size, soft)
}

#[test]
fn the_daemon_reserves_its_descriptor_table_at_startup() {
    let d = Daemon::start();
    let (size, soft) = descriptor_table_and_limit(d.pid());
    let want = pm_actors::process::descriptors::RESERVED_DESCRIPTORS.min(soft);
    assert!(
        size >= want,
        "FDSize {size}, expected at least {want} (limit {soft})"
    );
}

#[test]
fn sigterm_stops_every_child_removes_the_socket_and_exits_0() {
    let mut d = Daemon::start();
    for name in ["a", "b", "c"] {
        let out = d.pmclient(&["start", "--name", name, "--command", "sleep 300"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = d.pmclient(&[
        "start",
        "--name",
        "shell",
        "--command",
        "sleep 300 & sleep 300; wait",
    ]);
    assert!(out.status.success());
    let mut pids = Vec::new();
    wait_for("four pids", Duration::from_secs(10), || {
        pids = d.pids();
        pids.len() == 4
    });
    let status = d.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    assert!(!d.socket.exists(), "the socket is removed");
    for pid in pids {
        wait_for(
            &format!("pid {pid} to be gone"),
            Duration::from_secs(10),
            || !alive(pid),
        );
    }
}

#[test]
fn a_generated_secret_lands_in_a_private_file_that_pmclient_reads() {
    let mut d = Daemon::start_with(&[], false);
    let secret_file = d.dir.path().join("pm.sock.d/secret");
    // The socket accepts as soon as it is bound, a moment before the secret is settled and said.
    let said = |d: &Daemon| d.stderr().contains("listening on");
    wait_for("the start line", Duration::from_secs(20), || said(&d));
    assert_eq!(mode(&secret_file), 0o600);
    assert_eq!(mode(&d.dir.path().join("pm.sock.d")), 0o700);
    let first_line = d.stderr().lines().next().unwrap_or_default().to_string();
    assert!(
        first_line.contains(secret_file.to_str().unwrap()),
        "{first_line}"
    );
    let out = std::process::Command::new(PMCLIENT)
        .arg("-socket")
        .arg(&d.socket)
        .arg("list")
        .env_remove("PM_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // A restarted daemon keeps its secret, so clients and scripts holding it keep working.
    let before = std::fs::read_to_string(&secret_file).unwrap();
    assert!(d.terminate(Duration::from_secs(20)).success());
    d.launch(&[], false);
    wait_for("the secret to be kept", Duration::from_secs(20), || {
        d.stderr().contains("kept from an earlier run")
    });
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), before);
    let mut s = d.raw();
    assert_eq!(
        s.line(),
        " ** Welcome: you are not authenticated, provide secret.\n"
    );
    s.send(&before);
    assert_eq!(s.line(), " ** Welcome: you are authenticated.\n");
}

#[test]
fn the_original_single_dash_flags_work_and_a_command_line_secret_warns_once() {
    let mut d = Daemon::unstarted();
    let conf = d.dir.path().join("pm.conf");
    std::fs::write(&conf, "status-interval-ms: 500\n").unwrap();
    let sock = d.socket.to_str().unwrap().to_string();
    let conf = conf.to_str().unwrap().to_string();
    d.launch_with_args(
        &[
            "-socket",
            &sock,
            "-secret",
            SECRET,
            "-process-manager-config",
            &conf,
        ],
        false,
    );
    let out = d.pmclient(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.stderr().matches("/proc").count(), 1, "{}", d.stderr());
}

/// The processes the state file holds: name and whether it should run.
fn saved_processes(state_file: &std::path::Path) -> std::collections::BTreeMap<String, bool> {
    let text = std::fs::read_to_string(state_file).unwrap_or_default();
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    saved["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p["spec"]["name"].as_str().unwrap_or_default().to_string();
            (name, p["wanted"].as_bool().unwrap_or(false))
        })
        .collect()
}

#[test]
fn pipelined_scripts_answer_in_order_each_once_on_disk() {
    const N: usize = 60;
    let d = Daemon::start();
    let state_file = d.dir.path().join("pm.sock.d/state.json");
    let mut s = d.session();
    // Every script in one write: the daemon applies them in order and answers each once it is durable.
    let mut burst = String::new();
    for i in 0..N {
        burst.push_str(&format!(
            "!!process.start name:'p{i}' command:'exec sleep 300' jobid:'j{i}'\n\n"
        ));
    }
    burst.push_str("!!process.stop name:'p0'\n\n");
    burst.push_str("!!process.list\n\n");
    s.send(&burst);
    for i in 0..N {
        let frame = s.frame();
        assert_eq!(
            frame,
            format!("**RESULT** j{i}\nProcess 'p{i}' started successfully\n**ENDRESULT**\n")
        );
        let saved = saved_processes(&state_file);
        // The stop of p0 concerns only p0: it may run as soon as p0's start is done, so p0 may be
        // saved as not wanted by now; it is saved all the same.
        let want = if i == 0 { None } else { Some(&true) };
        let held = saved.get(&format!("p{i}"));
        assert!(
            held.is_some() && (want.is_none() || held == want),
            "p{i} answered before the state file held it: {saved:?}"
        );
    }
    assert_eq!(
        s.frame(),
        "**RESULT** \nProcess 'p0' stopped successfully\n**ENDRESULT**\n"
    );
    assert_eq!(
        saved_processes(&state_file).get("p0"),
        Some(&false),
        "the stop was answered before the state file held it"
    );
    let list = s.frame();
    assert!(list.starts_with("**RESULT** \n"), "{list}");
    assert!(list.contains("p59"), "{list}");
}

/// The pids of `pid`'s children whose command is `comm`.
fn children_named(pid: i32, comm: &str) -> Vec<i32> {
    pm_actors::process::procfs::children_of(pid)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|s| s.trim() == comm)
        })
        .collect()
}

/// A managed program's daemonized child is handed to the daemon (a subreaper) when its parent
/// exits; once it exits too the daemon reaps it instead of keeping its zombie. Meanwhile the managed
/// processes, which exit at once, are reaped by their own actors with their exit codes intact.
#[test]
fn orphans_handed_to_the_daemon_are_reaped_and_managed_exits_keep_their_codes() {
    let d = Daemon::start();
    let names: Vec<String> = (0..20).map(|i| format!("o{i}")).collect();
    for name in &names {
        let out = d.pmclient(&[
            "start",
            "--name",
            name,
            "--command",
            "(setsid sleep 2 &) ; exit 7",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut orphans = std::collections::BTreeSet::new();
    wait_for(
        "the 20 orphans to become the daemon's children",
        Duration::from_secs(10),
        || {
            orphans.extend(children_named(d.pid(), "sleep"));
            orphans.len() == 20
        },
    );
    for name in &names {
        // The shell exits right after its orphan is handed over: wait for its exit to be recorded.
        let mut s = serde_json::Value::Null;
        wait_for(&format!("{name}'s exit"), Duration::from_secs(10), || {
            s = d.status_json(name);
            s["status"] != "running"
        });
        assert_eq!(
            (s["status"].as_str(), s["exit_code"].as_i64()),
            (Some("failed"), Some(7)),
            "{name}: {s}"
        );
    }
    wait_for(
        "every orphan to be reaped, not left a zombie",
        Duration::from_secs(15),
        || {
            orphans
                .iter()
                .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        },
    );
}

/// The repository's example pm.conf, run as a user would run it (on a copy, so that nothing is
/// written into the checkout): it says what it read from the templates folder and starts `clock`.
#[test]
fn the_example_config_reads_its_templates_and_starts_one() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut d = Daemon::unstarted();
    let copy = d.dir.path().join("example");
    std::fs::create_dir_all(copy.join("templates")).unwrap();
    std::fs::copy(repo.join("pm.conf"), copy.join("pm.conf")).unwrap();
    let mut templates = 0;
    for entry in std::fs::read_dir(repo.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            copy.join("templates").join(path.file_name().unwrap()),
        )
        .unwrap();
        templates += 1;
    }
    let conf = copy.join("pm.conf");
    d.launch(&["--config", conf.to_str().unwrap()], true);
    wait_for("the templates line", Duration::from_secs(20), || {
        d.stderr().contains("templates: ")
    });
    let log = d.stderr();
    assert!(
        log.contains(&format!("templates: {templates} read from "))
            && log.contains("0 skipped, 1 to start on startup: clock"),
        "{log}"
    );
    wait_for("clock to run", Duration::from_secs(20), || {
        d.status_json("clock")["status"] == "running"
    });
    let pid = d.status_json("clock")["pid"].as_i64().unwrap() as i32;
    d.extra_groups.push(pid);
    assert!(d.terminate(Duration::from_secs(20)).success());
    assert!(!alive(pid), "clock outlived the daemon");
}
