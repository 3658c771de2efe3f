//! Fuzzes the heroscript parser and the commands: no input panics, and every command that parses
//! renders to text that parses back to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pm_protocol::command::{parse_script, render_script};

fuzz_target!(|data: &[u8]| {
    let script = String::from_utf8_lossy(data);
    if let Ok(commands) = parse_script(&script) {
        let rendered = render_script(&commands);
        match parse_script(&rendered) {
            Ok(back) => assert_eq!(back, commands, "render of {script:?} is {rendered:?}"),
            Err(e) => panic!("render of {script:?} is {rendered:?}, which fails: {e}"),
        }
    }
});
