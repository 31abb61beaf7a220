//! The sender-address rule of submission (mission point 4, issue 6 part 2): an
//! authenticated mailbox may use only its own addresses, in the envelope and in the
//! `From:` and `Sender:` header fields.
//!
//! "Own" means an address the store lists for the mailbox ([`postfach_store::Store::allowed_senders`]:
//! its address and its aliases, each also at every alias domain) or a subaddress of one
//! (`local+tag@domain`). The rule itself is pure and tested as a table.
//!
//! The header fields are read through `postfach_message`, the same parse IMAP's ENVELOPE
//! shows; a message with two `From:` or `Sender:` fields never gets here (intake refuses
//! it). Checked: `From:`, `Sender:`, and `Resent-From:`/`Resent-Sender:` of the newest
//! resent block (RFC 5322 §3.6.6: the topmost; older blocks name earlier resenders).
//! Not checked: `Reply-To:`, which says where answers go (a team list, an assistant), and
//! names no author.

use postfach_message::HeaderView;
use postfach_types::EmailAddress;

/// Whether `address` belongs to the mailbox whose allowed addresses are `allowed`.
pub fn is_allowed(address: &EmailAddress, allowed: &[EmailAddress]) -> bool {
    if allowed.contains(address) {
        return true;
    }
    address
        .local_part()
        .without_tag()
        .is_some_and(|base| allowed.contains(&EmailAddress::new(base, address.domain().clone())))
}

/// The author fields the rule checks, in order.
const AUTHOR_FIELDS: [&str; 4] = ["From", "Sender", "Resent-From", "Resent-Sender"];

/// The first author address (as written) in `header` that the mailbox may not use. An
/// author that is not a valid address at all is never allowed.
pub fn first_foreign(header: &HeaderView<'_>, allowed: &[EmailAddress]) -> Option<String> {
    AUTHOR_FIELDS
        .iter()
        .flat_map(|name| header.mailboxes(name))
        .map(|m| m.address())
        .find(|written| EmailAddress::parse(written).map(|address| !is_allowed(&address, allowed)).unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("address")
    }

    #[test]
    fn the_sender_rule() {
        let allowed = [addr("max@acme.example"), addr("info@acme.example"), addr("max@acme-alias.example")];
        let cases = [
            ("max@acme.example", true),
            ("MAX@Acme.Example", true),
            ("info@acme.example", true),
            ("max@acme-alias.example", true),
            ("max+news@acme.example", true),
            ("info+x+y@acme.example", true),
            ("max+news@acme-alias.example", true),
            ("max@other.example", false),
            ("eve@acme.example", false),
            ("maxi@acme.example", false),
            ("+max@acme.example", false),
            ("eve+max@acme.example", false),
            ("info@acme-alias.example", false),
        ];
        for (address, expected) in cases {
            assert_eq!(is_allowed(&addr(address), &allowed), expected, "{address}");
        }
    }

    #[test]
    fn author_fields_are_read_and_checked() {
        let allowed = [addr("max@acme.example")];
        let check = |raw: &[u8]| first_foreign(&postfach_message::Message::parse(raw).top(), &allowed);
        assert_eq!(
            check(b"From: Max <max@acme.example>, \"Eve\" <eve@evil.example>\r\nSubject: hi\r\n\r\nbody\r\n")
                .as_deref(),
            Some("eve@evil.example")
        );
        assert_eq!(check(b"From: max@acme.example\r\nSender: max+bot@acme.example\r\n\r\nx"), None);
        assert_eq!(check(b"From: not an address\r\n\r\nx").as_deref(), Some("\"not an address\""));
        assert_eq!(check(b"Subject: no author\r\n\r\nx"), None);
        // The newest resent block counts, Reply-To does not.
        assert_eq!(
            check(b"Resent-From: boss@other.example\r\nFrom: max@acme.example\r\n\r\nx").as_deref(),
            Some("boss@other.example")
        );
        assert_eq!(check(b"From: max@acme.example\r\nReply-To: team@lists.example\r\n\r\nx"), None);
        // Group syntax hides no author.
        assert_eq!(
            check(b"From: team: max@acme.example, ceo@other.example;\r\n\r\nx").as_deref(),
            Some("ceo@other.example")
        );
    }
}
