//! Quota replies, in one place for the MX and submission (RFC 3463: X.2.2 "mailbox
//! full").
//!
//! At RCPT a recipient whose mailbox is full, or cannot take the declared SIZE (RFC 1870),
//! gets `452 4.2.2`: the sender keeps the message and tries again, by which time mail may
//! have been deleted. A message larger than the mailbox's whole limit gets `552 5.2.2`:
//! it will never fit.
//!
//! After DATA the real size is known, and one reply covers every recipient. Postfach
//! then neither loses mail nor bounces the others because one mailbox is full: when the
//! message fits at least one recipient's mailbox it is stored for every recipient
//! accepted at RCPT (a mailbox may go over its limit by this one message); only when it
//! fits none is it refused, `452 4.2.2` if one of them may have room later, else
//! `552 5.2.2`.

use std::collections::BTreeMap;

use postfach_types::{EmailAddress, MailboxId, Room, Space, format_size};

/// A reply: code, enhanced status code, text.
pub(crate) type Reply = (u16, [u8; 3], String);

/// The refusal of a recipient at RCPT, when its mailbox cannot take `declared` bytes.
pub(crate) fn refusal(space: &Space, declared: u64, recipient: &EmailAddress) -> Option<Reply> {
    // Without a declared size, a message has at least one byte: a mailbox exactly at its
    // limit is full.
    match space.room(declared.max(1), 1) {
        Room::Fits => None,
        Room::Full => Some((
            452,
            [4, 2, 2],
            format!("<{recipient}>: this mailbox is full; the message was not accepted, please try again later"),
        )),
        Room::TooBig => Some((
            552,
            [5, 2, 2],
            format!(
                "<{recipient}>: the message is larger than this mailbox can hold ({} in all); send a smaller message or share the file another way",
                format_size(limit(space))
            ),
        )),
    }
}

/// The decision after DATA for the mailboxes accepted at RCPT (module documentation).
pub(crate) fn at_end_of_data(
    mailboxes: &BTreeMap<MailboxId, Space>,
    size: u64,
) -> Result<(), (u16, [u8; 3], &'static str)> {
    let rooms: Vec<Room> = mailboxes.values().map(|space| space.room(size, 1)).collect();
    if rooms.is_empty() || rooms.contains(&Room::Fits) {
        Ok(())
    } else if rooms.contains(&Room::Full) {
        Err((452, [4, 2, 2], "The mailbox is full; the message was not accepted, please try again later"))
    } else {
        Err((552, [5, 2, 2], "The message is larger than the mailbox can hold; send a smaller message"))
    }
}

/// The tightest byte limit that applies.
fn limit(space: &Space) -> u64 {
    [space.quota_bytes, space.customer_quota_bytes].into_iter().flatten().min().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(used: u64, quota: u64) -> Space {
        Space { used_bytes: used, quota_bytes: Some(quota), ..Space::default() }
    }

    #[test]
    fn rcpt() {
        let to = EmailAddress::parse("erika@example.org").expect("address");
        assert!(refusal(&space(10, 100), 50, &to).is_none());
        assert_eq!(refusal(&space(100, 100), 0, &to).map(|r| r.0), Some(452));
        assert_eq!(refusal(&space(60, 100), 50, &to).map(|r| r.0), Some(452));
        assert_eq!(refusal(&space(0, 100), 101, &to).map(|r| r.0), Some(552));
    }

    #[test]
    fn end_of_data() {
        let mut boxes = BTreeMap::new();
        boxes.insert(MailboxId::new(1), space(95, 100));
        assert_eq!(at_end_of_data(&boxes, 10).map_err(|e| e.0), Err(452));
        assert_eq!(at_end_of_data(&boxes, 200).map_err(|e| e.0), Err(552));
        boxes.insert(MailboxId::new(2), space(0, 100));
        // One full mailbox does not cost the other recipient the message.
        assert!(at_end_of_data(&boxes, 10).is_ok());
    }
}
