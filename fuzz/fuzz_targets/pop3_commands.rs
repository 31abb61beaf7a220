//! The POP3 input side: command lines, the TOP line cutter and the dot-stuffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_pop3::{Command, Stuffer, top};

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let _ = Command::parse(line);
    }
    let lines = data.first().map_or(0, |&b| u64::from(b));
    let head = top(data, lines);
    assert!(head.len() <= data.len());
    let mut out = Vec::new();
    let mut stuffer = Stuffer::default();
    stuffer.feed(data, &mut out);
    stuffer.finish(&mut out);
    assert!(out.ends_with(b".\r\n"));
});
