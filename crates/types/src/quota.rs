//! Storage quotas: a mailbox's limits and use, and the one decision whether a message
//! still fits (asked by SMTP at RCPT and after DATA, by IMAP APPEND/COPY/MOVE, and by the
//! store inside the transaction that adds the message).
//!
//! A mailbox may have a byte limit and a message-count limit; its customer may have a
//! byte limit on the total its mailboxes store. No limit means no limit.

/// What a mailbox stores now, and the limits that apply to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    pub used_bytes: u64,
    pub used_messages: u64,
    pub quota_bytes: Option<u64>,
    pub quota_messages: Option<u64>,
    /// What all mailboxes of the customer store together (only read when it has a limit).
    pub customer_used_bytes: u64,
    pub customer_quota_bytes: Option<u64>,
}

/// Whether a message of some size can still be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Fits,
    /// Not now: the mailbox (or the customer) is too full; it fits again after deletions.
    Full,
    /// Never: the message alone is larger than the limit.
    TooBig,
}

/// The levels of use (percent of the tightest limit) at which the mailbox is told.
pub const WARNING_LEVELS: [u8; 2] = [80, 95];

impl Space {
    /// Whether `messages` more messages of `bytes` bytes in total fit.
    pub fn room(&self, bytes: u64, messages: u64) -> Room {
        let limits = [self.quota_bytes, self.customer_quota_bytes];
        if limits.iter().flatten().any(|&limit| bytes > limit) || self.quota_messages.is_some_and(|q| messages > q) {
            return Room::TooBig;
        }
        let over_bytes = self.quota_bytes.is_some_and(|q| self.used_bytes.saturating_add(bytes) > q);
        let over_customer =
            self.customer_quota_bytes.is_some_and(|q| self.customer_used_bytes.saturating_add(bytes) > q);
        let over_count = self.quota_messages.is_some_and(|q| self.used_messages.saturating_add(messages) > q);
        if over_bytes || over_customer || over_count { Room::Full } else { Room::Fits }
    }

    /// Use as a percentage of the mailbox's tightest own limit (bytes or messages),
    /// rounded down; `None` without a limit.
    pub fn percent(&self) -> Option<u64> {
        let share = |used: u64, limit: Option<u64>| {
            limit.map(|l| {
                if l == 0 { 100 } else { u64::try_from(u128::from(used) * 100 / u128::from(l)).unwrap_or(u64::MAX) }
            })
        };
        match (share(self.used_bytes, self.quota_bytes), share(self.used_messages, self.quota_messages)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The highest warning level the use has reached (0 for none).
    pub fn warning_level(&self) -> u8 {
        let percent = self.percent().unwrap_or(0);
        WARNING_LEVELS.iter().copied().filter(|&l| percent >= u64::from(l)).max().unwrap_or(0)
    }
}

/// A size for people, in powers of 1024 as quotas are given: `900 bytes`, `1.5 MiB`,
/// `2 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if (value - value.round()).abs() < 0.05 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(used: u64, quota: Option<u64>) -> Space {
        Space { used_bytes: used, quota_bytes: quota, ..Space::default() }
    }

    #[test]
    fn room() {
        assert_eq!(space(0, None).room(u64::MAX, 1), Room::Fits);
        assert_eq!(space(90, Some(100)).room(10, 1), Room::Fits);
        assert_eq!(space(91, Some(100)).room(10, 1), Room::Full);
        assert_eq!(space(0, Some(100)).room(101, 1), Room::TooBig);
        let counted = Space { used_messages: 2, quota_messages: Some(2), ..Space::default() };
        assert_eq!(counted.room(1, 1), Room::Full);
        let customer = Space { customer_used_bytes: 950, customer_quota_bytes: Some(1000), ..Space::default() };
        assert_eq!(customer.room(50, 1), Room::Fits);
        assert_eq!(customer.room(51, 1), Room::Full);
        assert_eq!(customer.room(1001, 1), Room::TooBig);
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(format_size(900), "900 bytes");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(2 << 30), "2 GiB");
        assert_eq!(format_size(50 << 40), "50 TiB");
    }

    #[test]
    fn levels() {
        assert_eq!(space(79, Some(100)).warning_level(), 0);
        assert_eq!(space(80, Some(100)).warning_level(), 80);
        assert_eq!(space(96, Some(100)).warning_level(), 95);
        assert_eq!(space(500, None).warning_level(), 0);
        let counted = Space { used_messages: 9, quota_messages: Some(10), ..space(1, Some(100)) };
        assert_eq!(counted.warning_level(), 80);
    }
}
