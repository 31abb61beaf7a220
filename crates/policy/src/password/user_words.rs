//! How much of a password is made of the user's own words: the address, its pieces, the
//! domain's labels and the customer name.
//!
//! zxcvbn knows the user inputs as a dictionary, but it still scores `Alice2024!Alice` or
//! `examplealice2024!` as strong, because repeats, reversals, years and symbols add
//! "entropy" that an attacker who knows the address does not have to guess. This module
//! takes the password apart instead:
//!
//! 1. Both the password and the user inputs are normalised: NFKC, then lower case (for
//!    comparing only: the remainder keeps the password's case). Only the first
//!    [`MAX_INPUT_CHARS`] characters of each input count: its words grow with the square
//!    of its length, and a caller may pass anything (the password is bounded by the rule).
//! 2. The user words are the letter runs of every input (split at anything that is not a
//!    letter, so at `.`, `-`, `_`, `+`, `@` and digits) that have at least
//!    [`MIN_WORD_CHARS`] letters, with their prefixes and suffixes of at least
//!    [`MIN_AFFIX_CHARS`] letters (`alic`, `xample`: truncated and overlapping words), and
//!    all of these reversed. IDNA A-labels (`xn--…`) are skipped; callers pass the
//!    Unicode form of the domain as well.
//! 3. The password is covered, left to right, by user words (matched with the l33t
//!    substitutions of zxcvbn: `4 @`→a, `3`→e, `1 ! |`→i, `1 | 7`→l, `0`→o, `5 $`→s,
//!    `7 +`→t, …) and by filler: anything that is not a letter (digits, years, symbols,
//!    white space) costs nothing. The cover that leaves the fewest other letters wins; it
//!    is found by dynamic programming, so repeats, concatenations and any order are all
//!    covered.
//! 4. The letters left over are the password's own material; the password with the
//!    user words cut out (filler kept) is the remainder, which the rule scores again.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

/// Letter runs shorter than this are not user words: `de`, `io` or a two-letter local
/// part occur by chance inside real words (they stay zxcvbn user inputs all the same).
pub(super) const MIN_WORD_CHARS: usize = 3;
/// Prefixes and suffixes of a user word of at least this many letters are user words too.
pub(super) const MIN_AFFIX_CHARS: usize = 4;
/// Characters of each user input (normalised) that are considered: a local part has at
/// most 64, a domain label 63, a customer name 64.
pub(super) const MAX_INPUT_CHARS: usize = 64;

/// The result of taking a password apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cover {
    /// Characters (after normalisation) matched by user words.
    pub user: usize,
    /// Letters that are neither user words nor filler: the password's own material.
    pub own: usize,
    /// The password (NFKC) without the characters matched by user words.
    pub remainder: String,
}

/// The letters that a password character may stand for (zxcvbn's l33t table, inverted).
fn leet(c: char) -> &'static [char] {
    match c {
        '4' | '@' => &['a'],
        '8' => &['b'],
        '(' | '{' | '[' | '<' => &['c'],
        '3' => &['e'],
        '6' | '9' => &['g'],
        '1' | '|' => &['i', 'l'],
        '!' => &['i'],
        '7' => &['l', 't'],
        '0' => &['o'],
        '5' | '$' => &['s'],
        '+' => &['t'],
        '%' => &['x'],
        '2' => &['z'],
        _ => &[],
    }
}

/// One character in lower case, for comparing. Characters whose lower case is longer
/// (`İ`) are kept as they are, so that positions in the password stay one to one.
fn lower(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The user words of `inputs` (see the module documentation), each as characters.
pub(super) fn user_words(inputs: &[&str]) -> Vec<Vec<char>> {
    let mut words = BTreeSet::new();
    for input in inputs {
        let folded: String = input.nfkc().map(lower).take(MAX_INPUT_CHARS).collect();
        let runs = folded
            .split(['.', '@'])
            .filter(|segment| !segment.starts_with("xn--"))
            .flat_map(|segment| segment.split(|c: char| !c.is_alphabetic()));
        for run in runs {
            let word: Vec<char> = run.chars().collect();
            if word.len() < MIN_WORD_CHARS {
                continue;
            }
            for len in MIN_AFFIX_CHARS..word.len() {
                words.insert(word[..len].to_vec());
                words.insert(word[word.len() - len..].to_vec());
            }
            words.insert(word);
        }
    }
    let reversed: Vec<Vec<char>> = words.iter().map(|w| w.iter().rev().copied().collect()).collect();
    words.extend(reversed);
    words.into_iter().collect()
}

/// Covers `password` with `words` and filler so that the fewest other letters remain;
/// among equally good covers, the one with the most user-word characters.
pub(super) fn cover(password: &str, words: &[Vec<char>]) -> Cover {
    let chars: Vec<char> = password.nfkc().collect();
    let folded: Vec<char> = chars.iter().copied().map(lower).collect();
    let matches_at = |at: usize, word: &[char]| {
        folded
            .get(at..at + word.len())
            .is_some_and(|window| window.iter().zip(word).all(|(&p, &w)| p == w || leet(p).contains(&w)))
    };
    /// The best cover of a prefix: its counts and how it was reached.
    #[derive(Clone, Copy)]
    struct Step {
        own: usize,
        user: usize,
        from: usize,
        word: bool,
    }
    let better =
        |new: &Step, old: &Option<Step>| old.as_ref().is_none_or(|old| (new.own, old.user) < (old.own, new.user));
    let mut best: Vec<Option<Step>> = vec![None; chars.len() + 1];
    best[0] = Some(Step { own: 0, user: 0, from: 0, word: false });
    for at in 0..chars.len() {
        let Some(here) = best[at] else { continue };
        let letter = chars[at].is_alphabetic();
        let step = Step { own: here.own + usize::from(letter), user: here.user, from: at, word: false };
        if better(&step, &best[at + 1]) {
            best[at + 1] = Some(step);
        }
        for word in words {
            if matches_at(at, word) {
                let end = at + word.len();
                let step = Step { own: here.own, user: here.user + word.len(), from: at, word: true };
                if better(&step, &best[end]) {
                    best[end] = Some(step);
                }
            }
        }
    }
    // Walk back along the best cover, keeping what no user word matched.
    let mut kept = vec![true; chars.len()];
    let mut at = chars.len();
    let last = best[at];
    while at > 0 {
        let Some(step) = best[at] else { break };
        if step.word {
            kept[step.from..at].fill(false);
        }
        at = step.from;
    }
    let remainder = chars.iter().zip(&kept).filter(|&(_, &keep)| keep).map(|(&c, _)| c).collect();
    let (own, user) = last.map_or((0, 0), |step| (step.own, step.user));
    Cover { user, own, remainder }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(inputs: &[&str]) -> Vec<String> {
        user_words(inputs).into_iter().map(|w| w.into_iter().collect()).collect()
    }

    #[test]
    fn words_are_letter_runs_with_affixes_and_reversals() {
        let w = words(&["Max.Muster-Mann_2024+tag@bücher.example", "xn--bcher-kva.example", "de", "acme"]);
        for expected in ["max", "xam", "muster", "must", "ster", "mann", "tag", "bücher", "rehcüb", "example", "xample"]
        {
            assert!(w.iter().any(|x| x == expected), "{expected} missing from {w:?}");
        }
        for absent in ["de", "xn", "bcher", "kva", "2024", "ma", "mas"] {
            assert!(!w.iter().any(|x| x == absent), "{absent} should not be a word: {w:?}");
        }
    }

    #[test]
    fn long_inputs_are_cut_to_a_bounded_number_of_words() {
        let long = "abcdefghijklmnopqrstuvwxyz".repeat(60_000 / 26 + 1);
        let w = user_words(&[&long[..60_000]]);
        // One run of MAX_INPUT_CHARS letters: its prefixes and suffixes, itself, reversed.
        let most = 2 * (2 * (MAX_INPUT_CHARS - MIN_AFFIX_CHARS) + 1);
        assert!(w.len() <= most, "{} words", w.len());
        assert!(w.iter().all(|word| word.len() <= MAX_INPUT_CHARS));
        assert!(w.iter().any(|word| word.len() == MAX_INPUT_CHARS), "the first characters still count");
    }

    #[test]
    fn cover_counts_own_letters_and_keeps_the_remainder() {
        let w = user_words(&["alice@example.test", "example"]);
        let cases = [
            ("alice", 5, 0, ""),
            ("Alice2024!Alice", 10, 0, "2024!"),
            ("ALICE example TEST", 16, 0, "  "),
            ("ecila", 5, 0, ""),
            ("4l1c3", 5, 0, ""),
            ("@lic3", 5, 0, ""),
            ("alicexample", 11, 0, ""),
            ("ａｌｉｃｅ２０２４", 5, 0, "2024"),
            ("alice-loves-quantum-zebra-pancakes", 5, 25, "-loves-quantum-zebra-pancakes"),
            ("correct horse battery staple", 0, 25, "correct horse battery staple"),
            ("zV8#qLp2!rWm", 0, 8, "zV8#qLp2!rWm"),
            ("", 0, 0, ""),
        ];
        for (password, user, own, remainder) in cases {
            let expected = Cover { user, own, remainder: remainder.to_string() };
            assert_eq!(cover(password, &w), expected, "{password:?}");
        }
    }
}
