//! The POP3 command loop over a loopback socket against a real store: the first byte
//! chooses whether the input starts logged in; the rest is what the client sends. The
//! server must close when the input ends, and its session must not panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use postfach_fuzz::{ADDRESS, Harness, PASSWORD, sample_messages};
use postfach_net::Protocol;
use postfach_pop3::{Limits, Pop3Server};
use postfach_store::Scope;
use postfach_store::mailboxes::SettingsChange;
use postfach_types::{AccessMode, EmailAddress};

struct Target {
    harness: Harness,
    pop3: Arc<dyn Protocol>,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let harness = Harness::new("pop3");
        for message in sample_messages() {
            harness.deliver(&message);
        }
        harness.rt.block_on(async {
            let address = EmailAddress::parse(ADDRESS).expect("address");
            let change = SettingsChange { access: Some(AccessMode::Pop3), ..SettingsChange::default() };
            harness.store.set_mailbox_settings(Scope::Platform, &address, change).await.expect("POP3 access");
        });
        let pop3: Arc<dyn Protocol> = Pop3Server::new(
            harness.auth.clone(),
            harness.store.clone(),
            harness.blobs.clone(),
            "mail.acme.example".into(),
            Limits::default(),
        );
        Target { harness, pop3 }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let t = target();
    let mut input = Vec::new();
    if control & 1 == 1 {
        input.extend_from_slice(format!("USER {ADDRESS}\r\nPASS {PASSWORD}\r\n").as_bytes());
    }
    input.extend_from_slice(rest);
    t.harness.drive(&t.pop3, &input);
    // Deletions happen at QUIT; put the samples back when an input emptied the INBOX.
    let left = t.harness.rt.block_on(async {
        let inbox = t.harness.store.folder(t.harness.mailbox, "INBOX").await.ok().flatten();
        match inbox {
            Some(f) => t.harness.store.messages(t.harness.mailbox, f.id).await.map_or(0, |m| m.len()),
            None => 0,
        }
    });
    if left == 0 {
        for message in sample_messages() {
            t.harness.deliver(&message);
        }
    }
});
