//! Resolving sequence sets (RFC 3501 §9 `sequence-set`) against the selected folder's
//! UID list: message sequence numbers or UIDs to positions in that list.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// The message sequence number `0` or one beyond the last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSequenceNumber;

fn value(v: &SeqOrUid, star: u32) -> u32 {
    match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => star,
    }
}

/// Positions (0-based, ascending, unique) in `uids` that `set` names. With `uid`, the
/// numbers are UIDs and ones that do not exist are ignored (RFC 3501 §6.4.8); otherwise
/// they are sequence numbers and one beyond the folder is an error.
pub fn resolve(set: &SequenceSet, uid: bool, uids: &[u32]) -> Result<Vec<usize>, BadSequenceNumber> {
    let mut out = Vec::new();
    if uid {
        let Some(&max) = uids.last() else { return Ok(out) };
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(v) => (value(v, max), value(v, max)),
                Sequence::Range(x, y) => (value(x, max), value(y, max)),
            };
            let (lo, hi) = (a.min(b), a.max(b));
            let start = uids.partition_point(|&u| u < lo);
            let end = uids.partition_point(|&u| u <= hi);
            out.extend(start..end);
        }
    } else {
        let n = u32::try_from(uids.len()).unwrap_or(u32::MAX);
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(v) => (value(v, n), value(v, n)),
                Sequence::Range(x, y) => (value(x, n), value(y, n)),
            };
            let (lo, hi) = (a.min(b), a.max(b));
            if lo == 0 || hi > n {
                return Err(BadSequenceNumber);
            }
            out.extend((lo as usize - 1)..(hi as usize));
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Whether `n` (a UID or sequence number) is in `set`, `star` being the value of `*`.
pub fn contains(set: &SequenceSet, n: u32, star: u32) -> bool {
    set.0.as_ref().iter().any(|seq| match seq {
        Sequence::Single(v) => value(v, star) == n,
        Sequence::Range(x, y) => {
            let (a, b) = (value(x, star), value(y, star));
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

/// Writes ascending numbers as a compact sequence set (`1:3,7`).
pub fn compact(numbers: impl IntoIterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b { out.push_str(&a.to_string()) } else { out.push_str(&format!("{a}:{b}")) }
    };
    for n in numbers {
        run = match run {
            Some((a, b)) if n == b + 1 => Some((a, n)),
            Some(r) => {
                flush(&mut out, r);
                Some((n, n))
            }
            None => Some((n, n)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        s.parse().expect("sequence set")
    }

    #[test]
    fn sequence_numbers() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("1:*"), false, &uids), Ok(vec![0, 1, 2, 3]));
        assert_eq!(resolve(&set("*:2"), false, &uids), Ok(vec![1, 2, 3]));
        assert_eq!(resolve(&set("2,4,2"), false, &uids), Ok(vec![1, 3]));
        assert_eq!(resolve(&set("5"), false, &uids), Err(BadSequenceNumber));
        assert_eq!(resolve(&set("1:*"), false, &[]), Err(BadSequenceNumber));
    }

    #[test]
    fn uids_ignore_missing_and_star_is_the_last() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("4:9"), true, &uids), Ok(vec![1, 2]));
        assert_eq!(resolve(&set("100:*"), true, &uids), Ok(vec![3]));
        assert_eq!(resolve(&set("1,6"), true, &uids), Ok(vec![]));
        assert_eq!(resolve(&set("1:*"), true, &[]), Ok(vec![]));
        assert!(contains(&set("2:4,8"), 8, 10));
        assert!(!contains(&set("2:4"), 5, 10));
    }

    #[test]
    fn compact_sets() {
        assert_eq!(compact([1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact([]), "");
    }
}
