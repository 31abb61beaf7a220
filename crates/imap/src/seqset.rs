//! Resolving sequence sets (RFC 3501 §9 `sequence-set`) against the selected folder's
//! UID list: message sequence numbers or UIDs to positions in that list.

use crate::protocol::{SeqNumber, SeqRange, SeqRanges, SequenceSet};

/// The message sequence number `0` or one beyond the last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSequenceNumber;

fn value(v: SeqNumber, star: u32) -> u32 {
    match v {
        SeqNumber::Value(n) => n.get(),
        SeqNumber::Last => star,
    }
}

fn bounds(r: &SeqRange, star: u32) -> (u32, u32) {
    let (a, b) = (value(r.from, star), value(r.to, star));
    (a.min(b), a.max(b))
}

/// Positions (0-based, ascending, unique) in `uids` that `set` names. With `uid`, the
/// numbers are UIDs and ones that do not exist are ignored (RFC 9051 §6.4.9); otherwise
/// they are sequence numbers and one beyond the folder is an error. `$` (RFC 5182) is the
/// saved search result, kept as UIDs: those still in the folder.
pub fn resolve(set: &SequenceSet, uid: bool, uids: &[u32], saved: &[u32]) -> Result<Vec<usize>, BadSequenceNumber> {
    let ranges = match set {
        SequenceSet::Ranges(r) => r,
        SequenceSet::Saved => {
            return Ok(sorted(saved.iter().filter_map(|u| uids.binary_search(u).ok()).collect()));
        }
    };
    // Index spans first, merged, so that a set naming the same messages many times
    // (`1:*,1:*,…`) costs no more than naming them once.
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(ranges.ranges().len());
    if uid {
        let Some(&max) = uids.last() else { return Ok(Vec::new()) };
        for r in ranges.ranges() {
            let (lo, hi) = bounds(r, max);
            spans.push((uids.partition_point(|&u| u < lo), uids.partition_point(|&u| u <= hi)));
        }
    } else {
        let n = u32::try_from(uids.len()).unwrap_or(u32::MAX);
        for r in ranges.ranges() {
            let (lo, hi) = bounds(r, n);
            if lo == 0 || hi > n {
                return Err(BadSequenceNumber);
            }
            spans.push((lo as usize - 1, hi as usize));
        }
    }
    spans.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0;
    for (start, end) in spans {
        let start = start.max(next);
        if start < end {
            out.extend(start..end);
            next = end;
        }
    }
    Ok(out)
}

fn sorted(mut out: Vec<usize>) -> Vec<usize> {
    out.sort_unstable();
    out.dedup();
    out
}

/// A set resolved for membership tests: its ranges with `*` known, sorted and merged, so
/// each test is a binary search however many ranges the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership(Vec<(u32, u32)>);

impl Membership {
    pub fn new(ranges: &SeqRanges, star: u32) -> Self {
        let mut spans = bounds_of(ranges, star);
        spans.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(spans.len());
        for (lo, hi) in spans {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Membership(merged)
    }

    /// Whether `n` (a UID or sequence number) is in the set.
    pub fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(lo, _)| lo <= n);
        i > 0 && n <= self.0[i - 1].1
    }
}

/// The ranges of a set as `(lo, hi)` pairs (each ascending), `star` being the value of `*`.
pub fn bounds_of(ranges: &SeqRanges, star: u32) -> Vec<(u32, u32)> {
    ranges.ranges().iter().map(|r| bounds(r, star)).collect()
}

/// The numbers within `ranges` that are not in `present` (ascending), as a compact set,
/// without listing them one by one (`1:4000000000` costs no memory).
pub fn missing(present: &[u32], ranges: &[(u32, u32)]) -> String {
    let mut gaps: Vec<(u32, u32)> = Vec::new();
    let mut push = |lo: u32, hi: u32| {
        if lo > hi || lo == 0 {
            return;
        }
        match gaps.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => gaps.push((lo, hi)),
        }
    };
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    for (lo, hi) in sorted {
        let mut next = lo;
        let start = present.partition_point(|&u| u < lo);
        for &u in present[start..].iter().take_while(|&&u| u <= hi) {
            if u > next {
                push(next, u - 1);
            }
            next = u.saturating_add(1);
        }
        if next <= hi {
            push(next, hi);
        }
    }
    gaps.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}:{b}") }).collect::<Vec<_>>().join(",")
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
    use crate::protocol::{CommandBody, parse_command};

    fn set(s: &str) -> SequenceSet {
        match parse_command(format!("t FETCH {s} FLAGS\r\n").as_bytes()).expect("parse").body {
            CommandBody::Fetch(f) => f.set,
            other => panic!("{other:?}"),
        }
    }

    fn ranges(s: &str) -> SeqRanges {
        match set(s) {
            SequenceSet::Ranges(r) => r,
            SequenceSet::Saved => panic!("$"),
        }
    }

    #[test]
    fn sequence_numbers() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("1:*"), false, &uids, &[]), Ok(vec![0, 1, 2, 3]));
        assert_eq!(resolve(&set("*:2"), false, &uids, &[]), Ok(vec![1, 2, 3]));
        assert_eq!(resolve(&set("2,4,2"), false, &uids, &[]), Ok(vec![1, 3]));
        assert_eq!(resolve(&set("5"), false, &uids, &[]), Err(BadSequenceNumber));
        assert_eq!(resolve(&set("1:*"), false, &[], &[]), Err(BadSequenceNumber));
    }

    #[test]
    fn uids_ignore_missing_and_star_is_the_last() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("4:9"), true, &uids, &[]), Ok(vec![1, 2]));
        assert_eq!(resolve(&set("100:*"), true, &uids, &[]), Ok(vec![3]));
        assert_eq!(resolve(&set("1,6"), true, &uids, &[]), Ok(vec![]));
        assert_eq!(resolve(&set("1:*"), true, &[], &[]), Ok(vec![]));
        let set = Membership::new(&ranges("8,2:4,3,*:9"), 10);
        assert!(set.contains(8) && set.contains(2) && set.contains(10) && set.contains(9));
        assert!(!set.contains(5) && !set.contains(1) && !set.contains(11));
        assert!(!Membership::new(&ranges("2:4"), 10).contains(5));
    }

    #[test]
    fn a_set_repeating_itself_costs_no_more_than_once() {
        let uids: Vec<u32> = (1..=50_000).collect();
        let repeated = vec!["1:*"; 2000].join(",");
        let positions = resolve(&set(&repeated), false, &uids, &[]).expect("resolve");
        assert_eq!(positions.len(), 50_000);
        assert!(positions.capacity() < 100_000, "the overlapping ranges were expanded one by one");
        assert_eq!(resolve(&set("3:5,1:4,9"), true, &uids, &[]), Ok(vec![0, 1, 2, 3, 4, 8]));
    }

    #[test]
    fn saved_results_are_the_uids_still_there() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("$"), false, &uids, &[9, 4, 3]), Ok(vec![0, 2]));
        assert_eq!(resolve(&set("$"), true, &uids, &[]), Ok(vec![]));
    }

    #[test]
    fn missing_numbers_as_ranges() {
        assert_eq!(missing(&[2, 3, 7], &[(1, 10)]), "1,4:6,8:10");
        assert_eq!(missing(&[], &[(5, 4_000_000_000)]), "5:4000000000");
        assert_eq!(missing(&[1, 2, 3], &[(1, 3)]), "");
        assert_eq!(missing(&[5], &[(1, 3), (4, 9)]), "1:4,6:9");
    }

    #[test]
    fn compact_sets() {
        assert_eq!(compact([1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact([]), "");
    }
}
