//! Fuzzes the session state machine with arbitrary bytes: the first byte says after how many lines the
//! session is authenticated; the rest is split into lines. No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pm_protocol::session::{SessionEvent, SessionMachine};

fuzz_target!(|data: &[u8]| {
    let Some((&auth_after, input)) = data.split_first() else {
        return;
    };
    let mut session = SessionMachine::new();
    for (i, line) in input.split(|b| *b == b'\n').enumerate() {
        if i == usize::from(auth_after % 4) {
            session.set_authenticated(true);
        }
        for event in session.feed_line(line) {
            if let SessionEvent::Run { result: Err(e), .. } = event {
                assert!(e.line >= 1 && e.col >= 1);
            }
        }
    }
    let _ = session.finish();
});
