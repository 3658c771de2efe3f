//! Session tests over real socket pairs, against a stand-in registry that keeps names in a map.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Local;
use pm_protocol::{
    EventKind, ExitInfo, LogLine, PmError, ProcessEvent, ProcessInfo, Status, Stream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::*;
use crate::process::EventSink;
use crate::registry::*;
use pm_protocol::logs::LogPage;

/// A registry that answers from a map: enough to see the session's requests and answers.
/// A start whose command says `slow` answers after [`SLOW_START`]; one that says `held` answers once
/// another start has ended (at most after 10 s); every start and stop is logged.
#[derive(Default)]
struct FakeRegistry {
    procs: BTreeMap<String, ProcessInfo>,
    sinks: Vec<EventSink>,
    log: Vec<String>,
    start_ended: std::sync::Arc<tokio::sync::Notify>,
    /// While false, `Durable` waits: the stand-in's state file is being written.
    disk: Option<tokio::sync::watch::Sender<bool>>,
}

/// Holds (`false`) or lets go of (`true`) every `Durable` at once, as one state write does.
#[derive(Message)]
#[rtype(result = "()")]
struct Disk(bool);

impl Handler<Disk> for FakeRegistry {
    type Result = ();
    fn handle(&mut self, Disk(open): Disk, _: &mut Context<Self>) {
        self.disk
            .get_or_insert_with(|| tokio::sync::watch::channel(true).0)
            .send_replace(open);
    }
}

const SLOW_START: Duration = Duration::from_millis(300);

/// What the stand-in did, in order.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
struct TakeLog;

impl Handler<TakeLog> for FakeRegistry {
    type Result = Vec<String>;
    fn handle(&mut self, _: TakeLog, _: &mut Context<Self>) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}

impl Handler<Applied<StartProcess>> for FakeRegistry {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;
    fn handle(&mut self, m: Applied<StartProcess>, _: &mut Context<Self>) -> Self::Result {
        let name = m.0.spec.name.clone();
        let command = m.0.spec.command.display();
        let (slow, held) = (command.contains("slow"), command.contains("held"));
        self.log.push(format!("begin {name}"));
        let ended = self.start_ended.clone();
        let wait = async move {
            if held {
                let _ = tokio::time::timeout(Duration::from_secs(10), ended.notified()).await;
            } else if slow {
                tokio::time::sleep(SLOW_START).await;
            }
        };
        Box::pin(wait.into_actor(self).map(move |(), act, ctx| {
            act.log.push(format!("end {name}"));
            if !held {
                act.start_ended.notify_one();
            }
            <FakeRegistry as Handler<StartProcess>>::handle(act, m.0, ctx)
        }))
    }
}

impl Handler<Applied<StopProcess>> for FakeRegistry {
    type Result = Result<ProcessInfo, PmError>;
    fn handle(&mut self, m: Applied<StopProcess>, ctx: &mut Context<Self>) -> Self::Result {
        self.log.push(format!("stop {}", m.0.name));
        <FakeRegistry as Handler<StopProcess>>::handle(self, m.0, ctx)
    }
}

impl Actor for FakeRegistry {
    type Context = Context<Self>;
}

impl FakeRegistry {
    fn get(&self, name: &str) -> Result<ProcessInfo, PmError> {
        self.procs
            .get(name)
            .cloned()
            .ok_or_else(|| PmError::NotFound(name.to_string()))
    }
}

impl Handler<StartProcess> for FakeRegistry {
    type Result = Result<ProcessInfo, PmError>;
    fn handle(&mut self, m: StartProcess, _: &mut Context<Self>) -> Self::Result {
        let name = m.spec.name.clone();
        if self.procs.contains_key(&name) {
            return Err(PmError::already_exists(name));
        }
        let mut info = ProcessInfo::initial(&name, m.spec.command.display());
        info.status = Status::Running;
        info.pid = 4242;
        self.procs.insert(name.clone(), info.clone());
        let event = ProcessEvent {
            name,
            pid: 4242,
            kind: EventKind::Status {
                old: Status::Initial,
                new: Status::Running,
            },
            exit: None,
            time: Local::now(),
        };
        for sink in &self.sinks {
            if let EventSink::Channel(tx) = sink {
                let _ = tx.try_send(event.clone());
            }
        }
        Ok(info)
    }
}

macro_rules! answer_with {
    ($msg:ty, $out:ty, |$s:ident, $m:ident| $body:expr) => {
        impl Handler<$msg> for FakeRegistry {
            type Result = Result<$out, PmError>;
            fn handle(&mut self, $m: $msg, _: &mut Context<Self>) -> Self::Result {
                let $s = self;
                $body
            }
        }
    };
}

answer_with!(StopProcess, ProcessInfo, |s, m| s.get(&m.name));
answer_with!(StopAll, StoppedAll, |s, _m| Ok(StoppedAll {
    stopped: s.procs.keys().cloned().collect(),
    failed: Vec::new(),
}));
answer_with!(RestartProcess, ProcessInfo, |s, m| s.get(&m.name));
answer_with!(DeleteProcess, (), |s, m| s
    .procs
    .remove(&m.name)
    .map(|_| ())
    .ok_or(PmError::NotFound(m.name)));
answer_with!(KillProcess, ExitInfo, |s, m| s.get(&m.name).map(|_| {
    ExitInfo {
        reason: None,
        code: None,
        signal: Some("SIGKILL".into()),
        time: Local::now(),
    }
}));
answer_with!(SignalProcess, (), |s, m| s.get(&m.name).map(|_| ()));
answer_with!(GetStatus, ProcessInfo, |s, m| s.get(&m.name));
answer_with!(ListProcesses, Vec<ProcessInfo>, |s, _m| Ok(s
    .procs
    .values()
    .cloned()
    .collect()));
answer_with!(ListJson, String, |s, _m| {
    let all: Vec<ProcessInfo> = s.procs.values().cloned().collect();
    Ok(pm_protocol::response::list_json(&all))
});
answer_with!(AttachProcess, ProcessInfo, |_s, m| Ok(
    ProcessInfo::initial(m.name, "attached")
));
answer_with!(GetProcessLogPage, LogPage, |s, m| s.get(&m.name).map(
    |_| {
        LogPage {
            next: 1,
            skipped: 0,
            lines: vec![LogLine {
                time: Local::now(),
                stream: Stream::Stdout,
                text: "hello world".into(),
            }],
        }
    }
));
answer_with!(SubscribeEvents, (), |s, m| {
    s.sinks.push(m.sink);
    Ok(())
});

/// The session sends the mutating requests as `Applied`: the stand-in answers them as the plain ones.
macro_rules! applied {
    ($($msg:ty),*) => {$(
        impl Handler<Applied<$msg>> for FakeRegistry {
            type Result = <FakeRegistry as Handler<$msg>>::Result;
            fn handle(&mut self, m: Applied<$msg>, ctx: &mut Context<Self>) -> Self::Result {
                <FakeRegistry as Handler<$msg>>::handle(self, m.0, ctx)
            }
        }
    )*};
}

applied!(RestartProcess, DeleteProcess, KillProcess, AttachProcess);

// Stacks and reloads are the real registry's; the fake refuses them.
impl Handler<ApplyStack> for FakeRegistry {
    type Result = Result<pm_protocol::plan::ApplyPlan, PmError>;
    fn handle(&mut self, _: ApplyStack, _: &mut Context<Self>) -> Self::Result {
        Err(PmError::Invalid("no stacks here".into()))
    }
}

impl Handler<ReloadDaemon> for FakeRegistry {
    type Result = Result<ReloadReport, PmError>;
    fn handle(&mut self, _: ReloadDaemon, _: &mut Context<Self>) -> Self::Result {
        Err(PmError::Invalid("no reloads here".into()))
    }
}

impl Handler<StateWrites> for FakeRegistry {
    type Result = u64;
    fn handle(&mut self, _: StateWrites, _: &mut Context<Self>) -> u64 {
        0
    }
}

impl Handler<Durable> for FakeRegistry {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Durable, _: &mut Context<Self>) -> Self::Result {
        let mut open = self.disk.as_ref().map(|d| d.subscribe());
        Box::pin(async move {
            if let Some(open) = open.as_mut() {
                let _ = open.wait_for(|&o| o).await;
            }
        })
    }
}

const SECRET: &str = "s3cret";

fn settings() -> SessionSettings {
    let mut s = SessionSettings::new(SECRET);
    s.wrong_secret_delay = Duration::from_millis(50);
    s
}

fn session(
    registry: &Addr<FakeRegistry>,
    settings: SessionSettings,
) -> (UnixStream, Addr<Session>) {
    let (client, server) = UnixStream::pair().unwrap();
    let addr = Session::start(
        server,
        RegistryLink::new(registry),
        Arc::new(settings),
        None,
    );
    (client, addr)
}

/// Reads until the text read so far contains `want` (or the connection ends, or 10 s pass).
async fn read_until(c: &mut UnixStream, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&got).contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads everything up to the end of the connection (10 s at most).
async fn read_to_end(c: &mut UnixStream) -> String {
    read_until(c, "\u{0}never\u{0}").await
}

async fn authenticated(registry: &Addr<FakeRegistry>) -> UnixStream {
    authenticated_with(registry, settings()).await
}

async fn authenticated_with(
    registry: &Addr<FakeRegistry>,
    settings: SessionSettings,
) -> UnixStream {
    let (mut c, _) = session(registry, settings);
    c.write_all(format!("{SECRET}\n").as_bytes()).await.unwrap();
    let got = read_until(&mut c, response::AUTHENTICATED).await;
    assert_eq!(
        got,
        format!("{}{}", response::GREETING, response::AUTHENTICATED)
    );
    c
}

#[actix_rt::test]
async fn the_seed_session_word_for_word() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    c.write_all(
        b"!!process.start name:'myprocess' command:'echo hello world' log:true jobid:'e42'\n\n",
    )
    .await
    .unwrap();
    let got = read_until(&mut c, "**ENDRESULT**\n").await;
    assert_eq!(
        got,
        "**RESULT** e42\nProcess 'myprocess' started successfully\n**ENDRESULT**\n"
    );
    c.write_all(b"!!process.start name:'myprocess' command:'x'\n\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "**ENDRESULT**\n").await;
    assert_eq!(
        got,
        "**RESULT** \nError starting process: process with name 'myprocess' already exists\n**ENDRESULT**\n"
    );
    c.write_all(b"!!process.stop name:'nope'\n\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "**ENDRESULT**\n").await;
    assert_eq!(
        got,
        "**RESULT** \nError stopping process: process 'nope' not found\n**ENDRESULT**\n"
    );
    c.write_all(b"!!process.list format:json\n\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "**ENDRESULT**\n").await;
    let body = got
        .strip_prefix("**RESULT** \n")
        .unwrap()
        .strip_suffix("**ENDRESULT**\n")
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(list[0]["name"], "myprocess");
    c.write_all(b"!!process.delete name:'myprocess'\nq\n")
        .await
        .unwrap();
    let got = read_to_end(&mut c).await;
    assert_eq!(
        got,
        "**RESULT** \nProcess 'myprocess' deleted successfully\n**ENDRESULT**\n"
    );
}

#[actix_rt::test]
async fn parse_errors_are_framed_and_the_session_goes_on() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    c.write_all(b"!!process.start name:x comand:'ls'\n\n!!process.list\n\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "NAME").await;
    assert!(got.starts_with("**RESULT** \nError: line 1"), "{got}");
    assert!(got.contains("did you mean 'command'"), "{got}");
}

#[actix_rt::test]
async fn three_wrong_secrets_close_the_connection_after_a_delay_each() {
    let registry = FakeRegistry::default().start();
    let (mut c, _) = session(&registry, SessionSettings::new(SECRET));
    let started = Instant::now();
    c.write_all(b"wrong\n").await.unwrap();
    let first = read_until(&mut c, response::INVALID_SECRET).await;
    assert!(first.ends_with(response::INVALID_SECRET), "{first}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "a wrong secret is answered after ~1 s"
    );
    c.write_all(b"wrong again\nstill wrong\n").await.unwrap();
    let rest = read_to_end(&mut c).await;
    assert_eq!(rest, format!("{0}{0}", response::INVALID_SECRET));
}

#[actix_rt::test]
async fn silence_inside_an_open_quote_is_pointed_out_once_and_lines_go_on() {
    let registry = FakeRegistry::default().start();
    let mut s = settings();
    s.open_quote_notice = Duration::from_millis(100);
    let mut c = authenticated_with(&registry, s).await;
    let notice = pm_protocol::session::open_quote_notice(1, '\'');
    c.write_all(b"!!process.start name:web command:'sleep 1\n")
        .await
        .unwrap();
    assert_eq!(read_until(&mut c, &notice).await, notice);
    // More lines inside the same quote (a blank one too): no second notice; closing it answers.
    c.write_all(b"\n\n0'\n\n").await.unwrap();
    let got = read_until(&mut c, "**ENDRESULT**").await;
    assert_eq!(got, frame("", "Process 'web' started successfully\n"));
}

#[actix_rt::test]
async fn a_client_that_does_not_authenticate_in_time_is_closed() {
    let registry = FakeRegistry::default().start();
    let mut s = settings();
    s.auth_timeout = Duration::from_millis(200);
    let (mut c, _) = session(&registry, s);
    let got = read_to_end(&mut c).await;
    assert!(got.starts_with(response::GREETING), "{got}");
    assert!(
        got.contains("Error: not authenticated within 0.2 s"),
        "{got}"
    );
}

#[actix_rt::test]
async fn a_long_line_gets_an_error_frame_and_the_session_goes_on() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    let mut long = b"!!process.start name:x command:'".to_vec();
    long.extend_from_slice(&vec![b'y'; 1_000_000]);
    long.extend_from_slice(b"'\n\n!!process.list\n\n");
    let (mut r, mut w) = c.split();
    let (_, got) = tokio::join!(async { w.write_all(&long).await.unwrap() }, async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("NAME") {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    assert!(
        got.starts_with("**RESULT** \nError: line longer than 65536 bytes"),
        "{got}"
    );
    assert!(!got.contains("started"), "{got}");
}

#[actix_rt::test]
async fn a_script_over_the_cap_is_dropped() {
    let registry = FakeRegistry::default().start();
    let mut s = settings();
    s.max_script = 1000;
    let (mut c, _) = session(&registry, s);
    c.write_all(format!("{SECRET}\n!!process.start name:x command:'\n").as_bytes())
        .await
        .unwrap();
    for _ in 0..20 {
        c.write_all(&[b'z'; 100]).await.unwrap();
        c.write_all(b"\n").await.unwrap();
    }
    let got = read_until(&mut c, "dropped").await;
    assert!(
        got.contains("Error: script longer than 1000 bytes; it was dropped"),
        "{got}"
    );
}

#[actix_rt::test]
async fn garbage_bytes_do_no_harm() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    c.write_all(&garbage).await.unwrap();
    c.write_all(b"\n\n\xff\xfe\x00\x01!!\n\n!!process.list\n\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "NAME").await;
    assert!(got.contains("NAME"), "{got}");
}

#[actix_rt::test]
async fn a_client_that_never_reads_is_dropped_and_others_go_on() {
    let registry = FakeRegistry::default().start();
    let mut s = settings();
    s.outbox_chunks = 4;
    s.write_timeout = Duration::from_millis(500);
    let (mut stuck, stuck_session) = session(&registry, s);
    stuck
        .write_all(format!("{SECRET}\n").as_bytes())
        .await
        .unwrap();
    let mut c = authenticated(&registry).await;
    let flood = "!!process.list format:json\n\n".repeat(20_000);
    let writer = actix_rt::spawn(async move {
        // The session stops reading once it drops the client; this write may then fail.
        let _ = stuck.write_all(flood.as_bytes()).await;
        stuck
    });
    c.write_all(b"!!process.list\n\n").await.unwrap();
    assert!(read_until(&mut c, "NAME").await.contains("NAME"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while stuck_session.connected() {
        assert!(
            Instant::now() < deadline,
            "the stuck client was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.write_all(b"!!process.list\n\n").await.unwrap();
    assert!(read_until(&mut c, "NAME").await.contains("NAME"));
    drop(writer.await);
}

#[actix_rt::test]
async fn watch_streams_events_until_a_line() {
    let registry = FakeRegistry::default().start();
    let mut watcher = authenticated(&registry).await;
    watcher.write_all(b"!!process.watch\n\n").await.unwrap();
    let ack = read_until(&mut watcher, "**ENDRESULT**\n").await;
    assert_eq!(
        ack,
        "**RESULT** \nWatching every process; send any line to stop\n**ENDRESULT**\n"
    );
    let mut other = authenticated(&registry).await;
    other
        .write_all(b"!!process.start name:w command:'sleep 1'\n\n")
        .await
        .unwrap();
    let event = read_until(&mut watcher, "**ENDRESULT**\n").await;
    assert!(event.starts_with("**RESULT** \n"), "{event}");
    assert!(event.contains("initial -> running"), "{event}");
    watcher.write_all(b"\n").await.unwrap();
    let end = read_until(&mut watcher, "**ENDRESULT**\n").await;
    assert_eq!(end, "**RESULT** \nWatch ended\n**ENDRESULT**\n");
    watcher
        .write_all(b"!!process.status name:w\n\n")
        .await
        .unwrap();
    assert!(read_until(&mut watcher, "**ENDRESULT**\n")
        .await
        .contains("Name: w"));
}

#[actix_rt::test]
async fn every_new_command_reaches_the_registry() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    c.write_all(b"!!process.start name:a command:'sleep 9'\n\n")
        .await
        .unwrap();
    read_until(&mut c, "**ENDRESULT**\n").await;
    for (script, want) in [
        ("!!process.logs name:a lines:10", "[stdout] hello world\n"),
        (
            "!!process.signal name:a signal:'HUP'",
            "Process 'a' signalled successfully\n",
        ),
        ("!!process.kill name:a", "Process 'a' killed successfully\n"),
        (
            "!!process.attach pid:1 name:b",
            "Process 'b' attached successfully\n",
        ),
        (
            "!!process.restart name:zz",
            "Error restarting process: process 'zz' not found\n",
        ),
        ("!!process.stop all:true", "\nStopped 1 process\n"),
        (
            "!!process.stop",
            "Error: line 1, col 1: missing required parameter 'name' for process.stop (or all:true for every process)\n",
        ),
    ] {
        c.write_all(format!("{script}\n\n").as_bytes())
            .await
            .unwrap();
        let got = read_until(&mut c, "**ENDRESULT**\n").await;
        assert!(got.contains(want), "{script}: {got}");
    }
}

#[actix_rt::test]
async fn lines_about_other_processes_run_beside_a_slow_one_and_answers_keep_their_order() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    c.write_all(
        b"!!process.start name:s command:'sleep held'\n\n\
          !!process.start name:f command:'sleep 1'\n\n\
          !!process.status name:f\n\n",
    )
    .await
    .unwrap();
    let got = read_until(&mut c, "Name: f").await;
    let s_at = got.find("Process 's' started").expect(&got);
    let f_at = got.find("Process 'f' started").expect(&got);
    assert!(s_at < f_at, "answers out of order: {got}");
    assert_eq!(
        registry.send(TakeLog).await.unwrap(),
        ["begin s", "begin f", "end f", "end s"],
        "f's start did not run beside s's"
    );
}

#[actix_rt::test]
async fn a_line_about_a_process_a_running_line_concerns_waits_for_it() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    c.write_all(b"!!process.start name:s command:'sleep slow'\n\n!!process.stop name:s\n\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "stopped successfully").await;
    assert!(got.contains("Process 's' started"), "{got}");
    assert_eq!(
        registry.send(TakeLog).await.unwrap(),
        ["begin s", "end s", "stop s"]
    );
}

#[actix_rt::test]
async fn a_list_waits_for_every_running_line() {
    let registry = FakeRegistry::default().start();
    let mut c = authenticated(&registry).await;
    c.write_all(b"!!process.start name:s command:'sleep slow'\n\n!!process.list\n\n")
        .await
        .unwrap();
    // Both frames: the start's, then the list's, whose last line is the row of `s`, pid 4242.
    let got = read_until(&mut c, "4242").await;
    let list = got.split("RESTARTS").nth(1).unwrap_or_default();
    assert!(
        list.contains("running") && list.contains("4242"),
        "the list ran before the start it follows: {got}"
    );
}

/// An authenticated session whose outbox holds 4 replies and whose backlog 64 replies or 16 KiB
/// (30 s write timeout).
async fn small_outbox_session(registry: &Addr<FakeRegistry>) -> (UnixStream, Addr<Session>) {
    let mut s = settings();
    s.outbox_chunks = 4;
    s.reply_backlog = 64;
    s.reply_backlog_bytes = 16 * 1024;
    s.write_timeout = Duration::from_secs(30);
    let (mut c, session) = session(registry, s);
    c.write_all(format!("{SECRET}\n").as_bytes()).await.unwrap();
    read_until(&mut c, response::AUTHENTICATED).await;
    (c, session)
}

/// Reads until the text contains `want`; fails if the session closes, goes quiet for 10 s, or takes
/// more than 60 s.
async fn read_answers_until(read: &mut tokio::net::unix::OwnedReadHalf, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&got).contains(want) {
        assert!(Instant::now() < deadline, "not every start was answered");
        let n = tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf))
            .await
            .expect("the session went quiet")
            .unwrap();
        assert!(n > 0, "the session closed the connection");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `count` start scripts for processes `<prefix>0`, `<prefix>1`, ...
fn starts(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| format!("!!process.start name:'{prefix}{i}' command:'sleep 1'\n\n"))
        .collect()
}

#[actix_rt::test]
async fn replies_that_one_state_write_frees_together_all_reach_a_reading_client() {
    let registry = FakeRegistry::default().start();
    registry.send(Disk(false)).await.unwrap();
    let (mut c, session) = small_outbox_session(&registry).await;
    let script = starts("p", 12);
    c.write_all(script.as_bytes()).await.unwrap();
    // Every start applied, each reply waiting for the disk: more than the outbox holds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ended = 0;
    while ended < 12 {
        assert!(Instant::now() < deadline, "{ended} of 12 starts applied");
        let log = registry.send(TakeLog).await.unwrap();
        ended += log.iter().filter(|l| l.starts_with("end ")).count();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    registry.send(Disk(true)).await.unwrap();
    let got = read_until(&mut c, "'p11' started").await;
    let started: Vec<&str> = got.lines().filter(|l| l.contains("started")).collect();
    assert_eq!(started.len(), 12, "{got}");
    assert!(
        started[0].contains("'p0'") && started[11].contains("'p11'"),
        "{got}"
    );
    assert!(session.connected(), "a client that reads was dropped");
}

#[actix_rt::test]
async fn a_client_that_does_not_read_is_not_read_on() {
    let registry = FakeRegistry::default().start();
    let (c, session) = small_outbox_session(&registry).await;
    // Starts, each logged, each answered with a short reply; the client reads none of them.
    let flood = starts("f", 20_000);
    let (mut read_half, mut write_half) = c.into_split();
    let writer = actix_rt::spawn(async move {
        // Stalls once the session stops reading; dropped at the end of the test.
        let _ = write_half.write_all(flood.as_bytes()).await;
        write_half
    });
    // The count of starts applied stops growing: the session stopped reading.
    let mut applied = 0;
    let mut still = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while still < 20 {
        assert!(
            Instant::now() < deadline,
            "still reading after {applied} starts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let log = registry.send(TakeLog).await.unwrap();
        let new = log.iter().filter(|l| l.starts_with("end ")).count();
        applied += new;
        still = if new == 0 { still + 1 } else { 0 };
    }
    assert!(applied < 20_000, "every start was read: {applied}");
    assert!(session.connected(), "dropped before its write timeout");
    // Reading lets it go on: every start is answered, in order.
    let text = read_answers_until(&mut read_half, "'f19999' started").await;
    assert_eq!(text.matches(" started").count(), 20_000);
    drop(writer);
}

#[actix_rt::test]
async fn a_client_that_writes_every_line_before_it_reads_gets_every_answer_in_order() {
    const N: usize = 10_000;
    let registry = FakeRegistry::default().start();
    // The daemon's defaults, so more answers wait than the outbox and the socket hold.
    let (mut c, session) = session(&registry, settings());
    c.write_all(format!("{SECRET}\n").as_bytes()).await.unwrap();
    read_until(&mut c, response::AUTHENTICATED).await;
    let (mut read_half, mut write_half) = c.into_split();
    // Every line is taken before the client reads a byte.
    tokio::time::timeout(
        Duration::from_secs(60),
        write_half.write_all(starts("w", N).as_bytes()),
    )
    .await
    .expect("the session stopped reading a batch whose answers fit")
    .unwrap();
    let text = read_answers_until(&mut read_half, &format!("'w{}' started", N - 1)).await;
    let started: Vec<&str> = text.lines().filter(|l| l.contains(" started")).collect();
    assert_eq!(started.len(), N);
    for (i, line) in started.iter().enumerate() {
        assert!(
            line.contains(&format!("'w{i}' started")),
            "answer {i} out of order: {line}"
        );
    }
    assert!(session.connected(), "a client that reads was dropped");
}
