//! The header view's address parser (RFC 5322 §3.4, groups, comments, routes), which the
//! submission sender rule and IMAP ENVELOPE both read; and the SASL exchange.
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
    // The SASL exchange fed the same bytes as responses, line by line, for both mechanisms.
    use postfach_auth::sasl::{Exchange, SaslMechanism, Step};
    for mechanism in [SaslMechanism::Plain, SaslMechanism::Login] {
        let mut lines = data.split(|&b| b == b'\n');
        let (mut exchange, mut step) = Exchange::start(mechanism, lines.next(), true);
        for line in lines {
            if matches!(step, Step::End(_)) {
                break;
            }
            step = exchange.respond(line);
        }
    }
});
