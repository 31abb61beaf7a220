//! Which of our folders a source folder becomes: Maildir++ names (`.Sent`, `.Work.2024`,
//! Courier's `.INBOX.Sent`), modified UTF-7 decoded, levels joined with our separator, and
//! the well-known names of sent mail, drafts, trash, junk and archive mapped to our
//! special-use folders.

use postfach_store::folders::{DEFAULT_FOLDERS, SEPARATOR, SpecialUse};

/// Names (lower case) that mean a special-use folder in common clients and servers.
const SPECIAL_NAMES: &[(&str, SpecialUse)] = &[
    ("sent", SpecialUse::Sent),
    ("sent items", SpecialUse::Sent),
    ("sent messages", SpecialUse::Sent),
    ("sent mail", SpecialUse::Sent),
    ("gesendet", SpecialUse::Sent),
    ("gesendete objekte", SpecialUse::Sent),
    ("gesendete elemente", SpecialUse::Sent),
    ("drafts", SpecialUse::Drafts),
    ("draft", SpecialUse::Drafts),
    ("entwürfe", SpecialUse::Drafts),
    ("trash", SpecialUse::Trash),
    ("deleted items", SpecialUse::Trash),
    ("deleted messages", SpecialUse::Trash),
    ("papierkorb", SpecialUse::Trash),
    ("gelöschte elemente", SpecialUse::Trash),
    ("junk", SpecialUse::Junk),
    ("spam", SpecialUse::Junk),
    ("junk e-mail", SpecialUse::Junk),
    ("junk email", SpecialUse::Junk),
    ("archive", SpecialUse::Archive),
    ("archives", SpecialUse::Archive),
    ("archiv", SpecialUse::Archive),
];

/// Our folder name for the source folder `name`, whose levels are separated by
/// `separator` (`.` in Maildir++, `/` for `--folder`). An `INBOX` first level (Courier's
/// namespace) is dropped below it; a first level that names a special use becomes our
/// folder of that use (sub-levels stay below it). `None` for a name with an empty level.
pub fn folder_name(name: &str, separator: char) -> Option<String> {
    let mut levels = folder_levels(name, separator)?;
    let first = levels.first()?.to_lowercase();
    if let Some((_, special)) = SPECIAL_NAMES.iter().find(|(n, _)| *n == first) {
        levels[0] = special_folder(*special).to_string();
    }
    Some(levels.join(&SEPARATOR.to_string()))
}

/// The levels of the source folder `name`, modified UTF-7 decoded, our separator replaced
/// by `_` within a level, an `INBOX` first level dropped below it (`["INBOX"]` for INBOX
/// itself). `None` for a name with an empty level.
pub(crate) fn folder_levels(name: &str, separator: char) -> Option<Vec<String>> {
    let mut levels: Vec<String> = Vec::new();
    for level in name.split(separator) {
        if level.is_empty() {
            return None;
        }
        let level = postfach_imap::mutf7::decode(level).unwrap_or_else(|| level.to_string());
        levels.push(level.replace(SEPARATOR, "_"));
    }
    if levels.first().is_some_and(|l| l.eq_ignore_ascii_case("INBOX")) {
        if levels.len() == 1 {
            return Some(vec!["INBOX".into()]);
        }
        levels.remove(0);
    }
    if levels.is_empty() { None } else { Some(levels) }
}

/// Our folder of a special use.
pub(crate) fn special_folder(special: SpecialUse) -> &'static str {
    DEFAULT_FOLDERS.iter().find(|(_, s)| *s == Some(special)).map_or("INBOX", |(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::folder_name;

    #[test]
    fn maildir_plus_plus_names() {
        for (source, ours) in [
            ("Work", "Work"),
            ("Work.2024", "Work/2024"),
            ("INBOX", "INBOX"),
            ("INBOX.Sent", "Sent"),
            ("INBOX.Projects.A", "Projects/A"),
            ("Sent Items", "Sent"),
            ("Deleted Messages", "Trash"),
            ("spam", "Junk"),
            ("Archives.2023", "Archive/2023"),
            ("Entw&APw-rfe", "Drafts"),
            ("K&APY-ln", "Köln"),
            ("a/b", "a_b"),
        ] {
            assert_eq!(folder_name(source, '.').as_deref(), Some(ours), "{source}");
        }
        assert_eq!(folder_name("Work..x", '.'), None);
        assert_eq!(folder_name("Sent/2024", '/').as_deref(), Some("Sent/2024"));
    }
}
