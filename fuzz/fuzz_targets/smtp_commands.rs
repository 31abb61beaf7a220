//! The SMTP input side: command lines through smtp-proto's parser and our path checks
//! (relay tricks), and DATA through the dot-unstuffing receiver.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_smtp::address;
use smtp_proto::request::receiver::DataReceiver;

fuzz_target!(|data: &[u8]| {
    for line in data.split_inclusive(|&b| b == b'\n') {
        let _ = smtp_proto::Request::parse(&mut line.iter());
        if let Ok(text) = std::str::from_utf8(line)
            && let Some(path) = address::raw_path(text)
        {
            let _ = address::forward_path(path);
            let _ = address::reverse_path(path);
        }
    }
    let mut receiver = DataReceiver::new();
    let mut out = Vec::new();
    let _ = receiver.ingest(&mut data.iter(), &mut out);
    assert!(out.len() <= data.len() + 2);
});
