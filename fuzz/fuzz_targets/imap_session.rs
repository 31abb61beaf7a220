//! The IMAP command loop as a client drives it over a loopback socket, against a real
//! store: the first byte chooses whether the input starts logged in, with INBOX selected
//! and IMAP4rev2/QRESYNC enabled; the rest is what the client sends. The server must
//! answer and close when the input ends, and its session must not panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use postfach_fuzz::{ADDRESS, Harness, PASSWORD, sample_messages};
use postfach_imap::{ImapServer, Settings};
use postfach_net::{MemoryBudget, Protocol};

struct Target {
    harness: Harness,
    imap: Arc<dyn Protocol>,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let harness = Harness::new("imap");
        for message in sample_messages() {
            harness.deliver(&message);
        }
        let imap: Arc<dyn Protocol> = ImapServer::new(
            harness.store.clone(),
            harness.blobs.clone(),
            harness.auth.clone(),
            MemoryBudget::new(64 << 20),
            Settings::new(1 << 20),
        );
        Target { harness, imap }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let t = target();
    let mut input = Vec::new();
    if control & 1 == 1 {
        input.extend_from_slice(format!("l LOGIN {ADDRESS} \"{PASSWORD}\"\r\n").as_bytes());
        if control & 4 == 4 {
            input.extend_from_slice(b"e ENABLE IMAP4rev2 QRESYNC\r\n");
        }
        if control & 2 == 2 {
            input.extend_from_slice(b"s SELECT INBOX\r\n");
        }
    }
    input.extend_from_slice(rest);
    t.harness.drive(&t.imap, &input);
    t.harness.trim(8);
});
