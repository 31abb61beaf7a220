//! The header view's address parser (RFC 5322 §3.4, groups, comments, routes), which the
//! submission sender rule and IMAP ENVELOPE both read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_message::{AddressItem, parse_address_list};

fuzz_target!(|data: &[u8]| {
    let items = parse_address_list(data);
    let mut depth = 0i32;
    for item in &items {
        match item {
            AddressItem::GroupStart { .. } => depth += 1,
            AddressItem::GroupEnd => depth -= 1,
            AddressItem::Mailbox(m) => {
                let _ = m.address();
            }
        }
        assert!((0..=1).contains(&depth), "groups do not nest");
    }
    let _ = postfach_auth::sasl::plain(&String::from_utf8_lossy(data));
    let _ = postfach_auth::sasl::decode_response(data);
});
