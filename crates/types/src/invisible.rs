//! Characters that render as nothing: Unicode format characters (General_Category `Cf`)
//! and the other default-ignorable code points.
//!
//! Names that people type are compared after normalisation, and some normalisations drop
//! these characters silently (UTS #46 maps a soft hyphen in a domain to nothing, so
//! `e\u{AD}xample.test` would become `example.test`). A name that contains one is
//! therefore refused instead: it looks like another name, and two spellings of one
//! account would get two throttle keys.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The Default_Ignorable_Code_Point ranges of Unicode's DerivedCoreProperties.txt
/// (Unicode 16.0; the list has been stable since 6.3 apart from U+180F). Most of them are
/// `Cf` as well; the table is complete so that the marks (U+034F, variation selectors
/// U+FE00–FE0F and U+E0100–E01EF, U+17B4/5, U+180B–D/F), the Hangul fillers (U+115F,
/// U+1160, U+3164, U+FFA0) and the reserved ignorable ranges are refused too.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

/// True for a format character (`Cf`) or a default-ignorable code point: soft hyphen,
/// zero-width space and joiners, bidi controls, word joiner, BOM, tags, variation
/// selectors, Hangul fillers and the like.
pub(crate) fn is_invisible(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
        || DEFAULT_IGNORABLE.iter().any(|&(first, last)| (first..=last).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_recognised() {
        let invisible = concat!(
            "\u{00AD}\u{034F}\u{061C}\u{115F}\u{1160}\u{17B4}\u{17B5}\u{180B}\u{180E}\u{200B}\u{200C}",
            "\u{200D}\u{200E}\u{200F}\u{202A}\u{202E}\u{2060}\u{2064}\u{2066}\u{2069}\u{3164}\u{FE00}",
            "\u{FE0F}\u{FEFF}\u{FFA0}\u{FFF9}\u{1BCA0}\u{1D173}\u{E0001}\u{E0041}\u{E007F}\u{E0100}",
            "\u{E01EF}\u{0600}\u{110BD}",
        );
        for c in invisible.chars() {
            assert!(is_invisible(c), "U+{:04X} should be invisible", u32::from(c));
        }
        for c in ['a', 'ü', '-', '.', '@', ' ', '\u{00A0}', '\u{0301}', 'ｅ', '漢', '\u{1F600}'] {
            assert!(!is_invisible(c), "U+{:04X} is visible", u32::from(c));
        }
    }
}
