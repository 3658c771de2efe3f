//! A small HTTP server for the readiness and health tests: it listens on a free local port and
//! answers every GET with the code the test sets; it can answer the next few requests with another
//! code, and can be told to hang (accept, never answer).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Control {
    code: AtomicU16,
    /// Requests still to answer with `then_code` before `code` again.
    burst: AtomicU32,
    burst_code: AtomicU16,
    hang: AtomicBool,
    answered: AtomicU32,
    stop: AtomicBool,
}

/// The server; it stops when dropped.
pub struct HealthServer {
    control: Arc<Control>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl HealthServer {
    /// A server answering `code`.
    pub fn start(code: u16) -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let control = Arc::new(Control::default());
        control.code.store(code, Ordering::SeqCst);
        let c = control.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if c.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let c = c.clone();
                std::thread::spawn(move || answer(stream, &c));
            }
        });
        HealthServer { control, port }
    }

    /// `http://127.0.0.1:<port>/health`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    /// Answers `code` from now on.
    pub fn set(&self, code: u16) {
        self.control.code.store(code, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with `code`, then the usual code again.
    pub fn burst(&self, n: u32, code: u16) {
        self.control.burst_code.store(code, Ordering::SeqCst);
        self.control.burst.store(n, Ordering::SeqCst);
    }

    /// Requests still to answer from the last `burst`.
    pub fn burst_left(&self) -> u32 {
        self.control.burst.load(Ordering::SeqCst)
    }

    /// Accepts and never answers (with `true`).
    pub fn hang(&self, on: bool) {
        self.control.hang.store(on, Ordering::SeqCst);
    }

    /// Requests answered so far.
    pub fn answered(&self) -> u32 {
        self.control.answered.load(Ordering::SeqCst)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.control.hang.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(mut stream: TcpStream, c: &Control) {
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    if c.hang.load(Ordering::SeqCst) {
        // Held open until the client gives up (or the server stops).
        while c.hang.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        return;
    }
    let code = match c
        .burst
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
    {
        Ok(_) => c.burst_code.load(Ordering::SeqCst),
        Err(_) => c.code.load(Ordering::SeqCst),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    c.answered.fetch_add(1, Ordering::SeqCst);
}
