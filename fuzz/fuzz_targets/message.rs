//! The MIME walker and everything that reads a message: the one parse, the intake check,
//! the header views, decoded text, and what IMAP FETCH renders from it (ENVELOPE,
//! BODYSTRUCTURE, every section, BINARY).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_message::{Message, check_intake};

fuzz_target!(|data: &[u8]| {
    let msg = Message::parse(data);
    let _ = check_intake(&msg);
    assert!(msg.depth() <= postfach_message::MAX_DEPTH);
    for (i, part) in msg.parts().iter().enumerate() {
        assert!(part.header.start <= part.header.end && part.body.start <= part.body.end);
        assert!(part.body.end <= data.len());
        let view = msg.header(i);
        for name in ["From", "Sender", "To", "Cc", "Subject", "Date"] {
            let _ = view.addresses(name);
            let _ = view.decoded(name);
        }
        let _ = view.date();
        let _ = view.disposition();
        let _ = msg.decoded_text(i);
        let _ = msg.decoded_body(i);
    }
    postfach_imap::fuzzing::render_everything(data);
});
