//! One `Session` actor per socket connection: the secret, then heroscript turned into registry requests,
//! framed results written back.
//!
//! The bytes move here; the decisions are the protocol crate's [`SessionMachine`]. Reading is a stream of
//! capped lines ([`lines`]); writing goes through a bounded queue drained by its own task ([`outbox`]), so
//! a client that does not read is dropped instead of holding anyone up. Lines run beside each other
//! (up to [`MAX_LINES_AT_ONCE`]) when they concern different processes by name
//! ([`pm_protocol::Command::process_name`]): a client that pipelines 1,000 starts has many children on
//! their way to their exec at once. A line that concerns a process a running line concerns waits for
//! that line, so that `stop x` then `start x` keep their order; one that concerns every process (stop
//! all, list), quits or watches waits for all of them and runs alone.
//! Each result waits in `replies` for the results before it and for the state file to hold the change,
//! so results come back in order, each only once it is durable.

pub mod lines;
pub mod outbox;
pub mod registry_link;
mod replies;
mod script;
pub mod secret_check;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use pm_protocol::response::{self, frame};
use pm_protocol::session::{SessionEvent, SessionMachine};
use tokio::net::UnixStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::codec::FramedRead;

use crate::counters::{self, OpenConnection, Transport};
use lines::{Incoming, LineCodec};
use outbox::{Outbox, OutboxError};
pub use registry_link::RegistryLink;
use replies::Replies;
use script::{After, LinePart, WatchEnd, WatchStream};
use secret_check::{secret_matches, SecretThrottle, WrongSecrets};

/// The limits and timings of a session.
#[derive(Clone)]
pub struct SessionSettings {
    /// The secret a client must send first.
    pub secret: String,
    /// Closed when not authenticated within this time.
    pub auth_timeout: Duration,
    /// The answer to a wrong secret waits this long.
    pub wrong_secret_delay: Duration,
    /// This many wrong secrets close the connection.
    pub max_secret_attempts: u32,
    /// A longer line gets an error frame and is skipped.
    pub max_line: usize,
    /// A longer buffered script gets an error frame and is dropped.
    pub max_script: usize,
    /// Results that may wait in the outbox for a slow client.
    pub outbox_chunks: usize,
    /// Watch events that may wait for room in the outbox: a watch this far behind ends.
    pub reply_backlog: usize,
    /// Bytes of results that may wait for the disk or for room in the outbox: at this many the session
    /// stops reading the client's lines until it takes some. A client that writes a whole batch before
    /// it reads a byte is served in full when the batch's results fit.
    pub reply_backlog_bytes: usize,
    /// A client that takes longer than this to take one chunk, sending nothing meanwhile, is dropped.
    pub write_timeout: Duration,
    /// A session that sends nothing for this long inside an open quote is told so, once.
    pub open_quote_notice: Duration,
}

impl SessionSettings {
    /// The daemon's defaults for `secret`: 10 s to authenticate, 1 s after a wrong secret, 3 tries,
    /// 64 KiB lines, 1 MiB scripts, [`DEFAULT_REPLY_BACKLOG_BYTES`] of waiting results, a notice after
    /// 3 s of silence inside an open quote.
    pub fn new(secret: impl Into<String>) -> Self {
        SessionSettings {
            secret: secret.into(),
            auth_timeout: Duration::from_secs(10),
            wrong_secret_delay: Duration::from_secs(1),
            max_secret_attempts: 3,
            max_line: 64 * 1024,
            max_script: 1024 * 1024,
            outbox_chunks: 256,
            reply_backlog: 1024,
            reply_backlog_bytes: DEFAULT_REPLY_BACKLOG_BYTES,
            write_timeout: Duration::from_secs(30),
            open_quote_notice: Duration::from_secs(3),
        }
    }
}

impl SessionSettings {
    /// How wrong secrets are slowed down, the same for every front door (socket and HTTP).
    pub fn throttle(&self) -> SecretThrottle {
        SecretThrottle {
            delay: self.wrong_secret_delay,
            max_attempts: self.max_secret_attempts,
        }
    }
}

/// The bytes of results a connection may have waiting by default (`reply-backlog-bytes` in pm.conf).
pub const DEFAULT_REPLY_BACKLOG_BYTES: usize = 16 * 1024 * 1024;

/// How many lines of one connection may run at once.
pub const MAX_LINES_AT_ONCE: usize = 32;

/// The lines of a connection that are running: how many, and the names they concern.
#[derive(Default)]
struct Running {
    state: RefCell<RunningLines>,
    changed: Notify,
}

#[derive(Default)]
struct RunningLines {
    lines: usize,
    names: HashMap<String, usize>,
}

impl Running {
    /// Whether a line must wait: one that concerns `names` (`None`: everything) waits for the lines
    /// that concern any of them (`None`: for every line), and any line waits when [`MAX_LINES_AT_ONCE`] run.
    fn blocks(&self, names: Option<&[String]>) -> bool {
        let running = self.state.borrow();
        match names {
            None => running.lines > 0,
            Some(names) => {
                running.lines >= MAX_LINES_AT_ONCE
                    || names.iter().any(|n| running.names.contains_key(n))
            }
        }
    }

    /// Resolves once a line that concerns `names` may run.
    async fn clear(self: Rc<Self>, names: Option<Vec<String>>) {
        loop {
            // Made before the check, so that a line ending in between still wakes it.
            let changed = self.changed.notified();
            if !self.blocks(names.as_deref()) {
                return;
            }
            changed.await;
        }
    }

    fn begin(&self, names: &[String]) {
        let mut running = self.state.borrow_mut();
        running.lines += 1;
        for n in names {
            *running.names.entry(n.clone()).or_default() += 1;
        }
    }

    fn end(&self, names: &[String]) {
        let mut running = self.state.borrow_mut();
        running.lines -= 1;
        for n in names {
            if let Some(count) = running.names.get_mut(n) {
                *count -= 1;
                if *count == 0 {
                    running.names.remove(n);
                }
            }
        }
        drop(running);
        self.changed.notify_waiters();
    }
}

/// The actor serving one connection.
pub struct Session {
    /// Shared with each running line: a link is 13 boxed recipients, too many to copy per line.
    registry: Rc<RegistryLink>,
    settings: Arc<SessionSettings>,
    machine: SessionMachine,
    replies: Replies,
    wrong_secrets: WrongSecrets,
    /// Who is on the other end (from SO_PEERCRED), for the log.
    peer: String,
    /// The future forwarding watch events, while a watch runs.
    watch: Option<SpawnHandle>,
    /// The lines running beside each other.
    running: Rc<Running>,
    /// Fires when the session stays silent inside an open quote (see [`SessionMachine::idle_in_quote`]).
    quote_timer: Option<SpawnHandle>,
    /// Counts this connection against the daemon's cap until the actor is gone.
    _permit: Option<OwnedSemaphorePermit>,
    /// Counts this connection as open in the daemon's metrics until the actor is gone.
    _counted: OpenConnection<'static>,
}

impl Session {
    /// Starts a session on `stream` (on the current arbiter) and greets the client.
    pub fn start(
        stream: UnixStream,
        registry: RegistryLink,
        settings: Arc<SessionSettings>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Addr<Session> {
        let peer = match stream.peer_cred() {
            Ok(c) => format!("pid {} uid {}", c.pid().unwrap_or(0), c.uid()),
            Err(_) => "unknown peer".to_string(),
        };
        let (read, write) = stream.into_split();
        Session::create(move |ctx| {
            ctx.add_stream(FramedRead::new(read, LineCodec::new(settings.max_line)));
            let outbox = Outbox::spawn(write, settings.outbox_chunks, settings.write_timeout);
            let me = ctx.address().downgrade();
            let replies = Replies::spawn(outbox, move |why| {
                if let Some(me) = me.upgrade() {
                    me.do_send(Hangup(why));
                }
            });
            Session {
                replies,
                registry: Rc::new(registry),
                settings,
                machine: SessionMachine::new(),
                wrong_secrets: WrongSecrets::default(),
                peer,
                watch: None,
                running: Rc::default(),
                quote_timer: None,
                _permit: permit,
                _counted: counters::daemon().connections(Transport::Socket).opened(),
            }
        })
    }

    /// Queues bytes for the client, behind the replies before them.
    fn send(&mut self, text: &str, ctx: &mut Context<Self>) {
        if self.replies.push(text).is_err() {
            ctx.stop();
        }
    }

    fn check_secret(&mut self, attempt: &str, ctx: &mut Context<Self>) {
        if secret_matches(attempt, &self.settings.secret) {
            self.machine.set_authenticated(true);
            self.send(response::AUTHENTICATED, ctx);
            return;
        }
        let last = self.wrong_secrets.record(&self.settings.throttle());
        tracing::warn!(attempt = self.wrong_secrets.count(), peer = %self.peer, "wrong secret");
        // A timer, not a sleep: the actor's thread serves others meanwhile; this client's next lines wait.
        let delay = tokio::time::sleep(self.settings.wrong_secret_delay);
        ctx.wait(delay.into_actor(self).map(move |_, act, ctx| {
            act.send(response::INVALID_SECRET, ctx);
            if last {
                ctx.stop();
            }
        }));
    }

    fn on_line(&mut self, line: &[u8], ctx: &mut Context<Self>) {
        let events = self.machine.feed_line(line);
        if self.machine.pending_len() > self.settings.max_script {
            self.machine.discard_pending();
            let body = format!(
                "Error: script longer than {} bytes; it was dropped\n",
                self.settings.max_script
            );
            self.send(&frame("", body), ctx);
        }
        self.on_events(events, false, ctx);
        self.time_open_quote(ctx);
    }

    /// (Re)starts the timer that points out an open quote once the client has been silent inside it:
    /// a person at a terminal otherwise sees nothing happen, whatever they type. A timer, never a wait.
    fn time_open_quote(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.quote_timer.take() {
            ctx.cancel_future(handle);
        }
        if !self.machine.awaits_quote_notice() {
            return;
        }
        let after = self.settings.open_quote_notice;
        self.quote_timer = Some(ctx.run_later(after, |act, ctx| {
            act.quote_timer = None;
            let events = act.machine.idle_in_quote().into_iter().collect();
            act.on_events(events, false, ctx);
        }));
    }

    /// Carries out a line's events in order; with `close_after`, closes the connection once they are done.
    fn on_events(&mut self, events: Vec<SessionEvent>, close_after: bool, ctx: &mut Context<Self>) {
        let mut parts = Vec::new();
        for event in events {
            match event {
                SessionEvent::SecretAttempt(attempt) => self.check_secret(&attempt, ctx),
                SessionEvent::Run { result, jobid, .. } => match result {
                    Ok(commands) => parts.push(LinePart::Script { commands, jobid }),
                    Err(e) => parts.push(LinePart::Reply(frame(&jobid, response::parse_error(&e)))),
                },
                SessionEvent::Help => parts.push(LinePart::Reply(frame("", response::HELP))),
                SessionEvent::Quit => parts.push(LinePart::Quit),
                // A line of its own outside any frame, in its place among the replies.
                SessionEvent::OpenQuoteNotice(line) => parts.push(LinePart::Reply(line)),
            }
        }
        if parts.is_empty() {
            if close_after {
                ctx.stop();
            }
            return;
        }
        if script::runs_beside_others(&parts) {
            let names = script::names(&parts);
            if self.running.blocks(Some(&names)) {
                let clear = self.running.clone().clear(Some(names.clone()));
                ctx.wait(
                    clear
                        .into_actor(self)
                        .map(move |(), act, ctx| act.run_beside(parts, names, close_after, ctx)),
                );
            } else {
                self.run_beside(parts, names, close_after, ctx);
            }
            return;
        }
        // One future for the whole line keeps its parts in order (actix runs queued waits last-first).
        let clear = self.running.clone().clear(None);
        let registry = self.registry.clone();
        let replies = self.replies.clone();
        let run = async move {
            clear.await;
            script::run_parts(parts, registry, replies).await
        };
        ctx.wait(run.into_actor(self).map(move |after, act, ctx| {
            act.after_parts(after, ctx);
            if close_after {
                ctx.stop();
            }
        }));
    }

    /// Runs a line on its own task, its place among the replies kept; the next line is read at once.
    fn run_beside(
        &mut self,
        parts: Vec<LinePart>,
        names: Vec<String>,
        close_after: bool,
        ctx: &mut Context<Self>,
    ) {
        let Ok(pending) = self.replies.push_pending() else {
            ctx.stop();
            return;
        };
        self.running.begin(&names);
        let running = self.running.clone();
        let registry = self.registry.clone();
        // Its own task, not the actor's: it goes on while the actor waits for a line to clear, and
        // after the connection closes (a client that sent a script and left still has it run).
        actix_rt::spawn(async move {
            pending.fill(script::collect_parts(parts, registry).await);
            running.end(&names);
        });
        if close_after {
            ctx.stop();
        }
    }

    fn after_parts(&mut self, after: After, ctx: &mut Context<Self>) {
        match after {
            After::Continue => {}
            After::Close => ctx.stop(),
            After::Abandon => {
                self.replies.abandon();
                ctx.stop();
            }
            After::Watch(stream) => self.start_watch(stream, ctx),
        }
    }

    fn start_watch(&mut self, stream: WatchStream, ctx: &mut Context<Self>) {
        let forward = stream.forward(self.replies.clone(), self.settings.reply_backlog);
        // A watch whose processes were all deleted stays a watch: the client's line still ends it
        // with `Watch ended`. Only a client that cannot keep up, or is gone, ends the session.
        self.watch = Some(ctx.spawn(forward.into_actor(self).map(|end, act, ctx| {
            if end == WatchEnd::ClientLost {
                act.replies.abandon();
                ctx.stop();
            }
        })));
    }

    /// Any line from the client ends a watch; dropping the receiver ends the subscription.
    fn end_watch(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.watch.take() {
            ctx.cancel_future(handle);
            self.send(&frame("", "Watch ended\n"), ctx);
        }
    }
}

/// The outbox refused a reply: the client does not read its results, or is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct Hangup(OutboxError);

impl Handler<Hangup> for Session {
    type Result = ();

    fn handle(&mut self, Hangup(why): Hangup, ctx: &mut Context<Self>) {
        // The outbox's writer has said why (gone, or no bytes taken for its write timeout).
        tracing::debug!(peer = %self.peer, ?why, "replies cannot be delivered: closing the session");
        ctx.stop();
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::debug!(peer = %self.peer, "client connected");
        self.send(response::GREETING, ctx);
        ctx.run_later(self.settings.auth_timeout, |act, ctx| {
            if !act.machine.is_authenticated() {
                let secs = act.settings.auth_timeout.as_secs_f64();
                tracing::info!(peer = %act.peer, "not authenticated within {secs} s: closing");
                act.send(
                    &format!("Error: not authenticated within {secs} s; closing\n"),
                    ctx,
                );
                ctx.stop();
            }
        });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        tracing::debug!(peer = %self.peer, "client disconnected");
    }
}

impl StreamHandler<Result<Incoming, io::Error>> for Session {
    fn handle(&mut self, item: Result<Incoming, io::Error>, ctx: &mut Context<Self>) {
        self.replies.heard_from_client();
        if self.watch.is_some() {
            self.end_watch(ctx);
            return;
        }
        match item {
            Ok(Incoming::Line(line)) => self.on_line(&line, ctx),
            Ok(Incoming::TooLong) => {
                self.machine.discard_pending();
                let body = format!(
                    "Error: line longer than {} bytes; it was skipped\n",
                    self.settings.max_line
                );
                self.send(&frame("", body), ctx);
            }
            Err(e) => {
                tracing::debug!(error = %e, "client read failed");
                ctx.stop();
                return;
            }
        }
        // A client that does not take its replies is not read on once they fill the bound: its lines
        // wait in the socket, not their replies in the daemon's memory.
        let limit = self.settings.reply_backlog_bytes;
        if self.replies.backlog_bytes() >= limit {
            ctx.wait(self.replies.below_bytes(limit).into_actor(self));
        }
    }

    /// End of input: what is buffered still runs, then the connection closes.
    fn finished(&mut self, ctx: &mut Context<Self>) {
        let events = self.machine.finish();
        self.on_events(events, true, ctx);
    }
}

#[cfg(test)]
mod tests;
