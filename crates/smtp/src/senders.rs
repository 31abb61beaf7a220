//! The sender-address rule of submission (mission point 4, issue 6 part 2): an
//! authenticated mailbox may use only its own addresses, in the envelope and in the
//! `From:` and `Sender:` header fields.
//!
//! "Own" means an address the store lists for the mailbox ([`postfach_store::Store::allowed_senders`]:
//! its address and its aliases, each also at every alias domain) or a subaddress of one
//! (`local+tag@domain`). The rule itself is pure and tested as a table.

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

/// The author fields of a message (RFC 5322 §3.6.2), as far as the rule needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorFields {
    /// Every address in every `From:` field, as written.
    pub from: Vec<String>,
    /// Every address in every `Sender:` field, as written.
    pub sender: Vec<String>,
    /// Whether a `From:` field exists at all.
    pub has_from: bool,
    pub has_date: bool,
    pub has_message_id: bool,
}

impl AuthorFields {
    /// Reads the header of `message`.
    pub fn read(message: &[u8]) -> AuthorFields {
        let mut fields = AuthorFields::default();
        let Some(parsed) = mail_parser::MessageParser::new().parse_headers(message) else { return fields };
        let addresses = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            address
                .map(|a| a.iter().map(|addr| addr.address().unwrap_or_default().to_string()).collect())
                .unwrap_or_default()
        };
        for header in parsed.headers() {
            let name = header.name();
            if name.eq_ignore_ascii_case("from") {
                fields.has_from = true;
            } else if name.eq_ignore_ascii_case("date") {
                fields.has_date = true;
            } else if name.eq_ignore_ascii_case("message-id") {
                fields.has_message_id = true;
            }
        }
        fields.from = addresses(parsed.from());
        fields.sender = addresses(parsed.sender());
        fields
    }

    /// The first author address that the mailbox may not use, if any. An address that
    /// is not a valid address at all is never allowed.
    pub fn first_foreign<'a>(&'a self, allowed: &[EmailAddress]) -> Option<&'a str> {
        self.from
            .iter()
            .chain(&self.sender)
            .map(String::as_str)
            .find(|written| EmailAddress::parse(written).map(|address| !is_allowed(&address, allowed)).unwrap_or(true))
    }
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
        let message = b"From: Max <max@acme.example>, \"Eve\" <eve@evil.example>\r\n\
            Sender: max+bot@acme.example\r\nSubject: hi\r\n\r\nbody\r\n";
        let fields = AuthorFields::read(message);
        assert_eq!(fields.from, ["max@acme.example", "eve@evil.example"]);
        assert_eq!(fields.sender, ["max+bot@acme.example"]);
        assert!(fields.has_from && !fields.has_date && !fields.has_message_id);
        let allowed = [addr("max@acme.example")];
        assert_eq!(fields.first_foreign(&allowed), Some("eve@evil.example"));

        let own = AuthorFields::read(
            b"From: max@acme.example\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\nx",
        );
        assert!(own.has_date && own.has_message_id);
        assert_eq!(own.first_foreign(&allowed), None);

        let garbage = AuthorFields::read(b"From: not an address\r\n\r\nx");
        assert!(garbage.has_from);
        assert!(garbage.first_foreign(&allowed).is_some(), "{garbage:?}");

        let none = AuthorFields::read(b"Subject: no author\r\n\r\nx");
        assert!(!none.has_from && none.first_foreign(&allowed).is_none());
    }
}
