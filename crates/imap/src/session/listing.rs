//! LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258: selection options SUBSCRIBED,
//! REMOTE, RECURSIVEMATCH, SPECIAL-USE of RFC 6154; return options CHILDREN, SUBSCRIBED,
//! SPECIAL-USE and STATUS of RFC 5819; several patterns) and LSUB (RFC 3501 §6.3.9).
//!
//! The names considered are the folders, the levels above them that are no folder (holes,
//! `\NonExistent`, `\Noselect` in a plain LIST), and the subscriptions, which outlive their
//! folders. What each name gets is decided by [`entries`], a pure function tested as a
//! table; the session only gathers folders and subscriptions and writes the lines.

use std::collections::BTreeMap;

use postfach_store::folders::{Folder, SEPARATOR};

use super::{Outcome, Session, ok};
use crate::protocol::{AString, List, ListReturn, ListSelection, Mailbox, StatusItem};
use crate::wire;

/// One name as LIST sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node<'a> {
    folder: Option<&'a Folder>,
    subscribed: bool,
}

/// One line of a LIST or LSUB answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub attributes: Vec<&'static str>,
    /// RFC 5258 §3.5 CHILDINFO extended data, the criteria a descendant meets.
    pub child_info: Option<&'static str>,
    /// The folder, when LIST-STATUS may report on it.
    pub status: bool,
}

/// What was asked: LIST (basic or extended) or LSUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub selection: ListSelection,
    pub returns: ListReturn,
    /// Full patterns (reference and pattern joined), as internal (UTF-8) names.
    pub patterns: Vec<String>,
    /// Extended syntax was used (RFC 5258 §1).
    pub extended: bool,
    pub lsub: bool,
}

/// The answer lines, in name order (INBOX first).
pub(crate) fn entries(folders: &[Folder], subscriptions: &[String], request: &Request) -> Vec<Entry> {
    let mut nodes: BTreeMap<String, Node<'_>> = BTreeMap::new();
    for f in folders {
        nodes.entry(f.name.clone()).or_default().folder = Some(f);
    }
    for s in subscriptions {
        nodes.entry(s.clone()).or_default().subscribed = true;
    }
    // Holes: levels above a folder or a subscription that are themselves neither.
    let names: Vec<String> = nodes.keys().cloned().collect();
    for name in &names {
        let mut prefix = name.as_str();
        while let Some(pos) = prefix.rfind(SEPARATOR) {
            prefix = &prefix[..pos];
            nodes.entry(prefix.to_string()).or_default();
        }
    }
    // Every name is matched once; descendants are a range of the sorted map.
    let matched: BTreeMap<&str, bool> =
        nodes.keys().map(|n| (n.as_str(), request.patterns.iter().any(|p| wildcard_match(p, n)))).collect();
    let matches = |name: &str| matched.get(name).copied().unwrap_or(false);
    let descendants = |name: &str| {
        let prefix = format!("{name}{SEPARATOR}");
        nodes
            .range(prefix.clone()..)
            .take_while(move |(n, _)| n.starts_with(&prefix))
            .map(|(n, node)| (n.as_str(), node))
    };
    let meets = |node: &Node<'_>| {
        (!request.selection.subscribed || node.subscribed)
            && (!request.selection.special_use || node.folder.is_some_and(|f| f.special_use.is_some()))
    };
    let criteria = if request.selection.subscribed {
        "SUBSCRIBED"
    } else if request.selection.special_use {
        "SPECIAL-USE"
    } else {
        ""
    };
    let mut out = Vec::new();
    for (name, node) in &nodes {
        if !matches(name) {
            continue;
        }
        let exists = node.folder.is_some();
        let has_children = descendants(name).any(|(_, d)| d.folder.is_some());
        if request.lsub {
            // LSUB's `%` rule (RFC 3501 §6.3.9): a level above subscribed names that the
            // pattern stops at is listed as \Noselect, whether it exists or not.
            let subscribed_below = descendants(name).any(|(n, d)| d.subscribed && !matches(n));
            if node.subscribed {
                let mut attributes = Vec::new();
                if !exists {
                    attributes.push("\\Noselect");
                }
                out.push(Entry { name: name.clone(), attributes, child_info: None, status: false });
            } else if subscribed_below {
                out.push(Entry { name: name.clone(), attributes: vec!["\\Noselect"], child_info: None, status: false });
            }
            continue;
        }
        let selected = if request.selection.subscribed || request.selection.special_use {
            meets(node)
        } else {
            // A plain LIST: folders, and holes that have folders below them.
            exists || has_children
        };
        let recursive = request.selection.recursive_match
            && descendants(name).any(|(n, d)| meets(d) && (!matches(n) || !meets(node)));
        if !selected && !recursive {
            continue;
        }
        let mut attributes = Vec::new();
        if !exists {
            attributes.push(if request.extended { "\\NonExistent" } else { "\\Noselect" });
        }
        // CHILDREN (RFC 3348) and the special-use attributes (RFC 6154 §2) may be sent
        // unasked; CHILDREN never for a name that is only a subscription. \Subscribed too
        // (clients that list everything learn the subscriptions in one go).
        if exists || has_children {
            attributes.push(if has_children { "\\HasChildren" } else { "\\HasNoChildren" });
        }
        if let Some(special) = node.folder.and_then(|f| f.special_use) {
            attributes.push(special.attribute());
        }
        if node.subscribed {
            attributes.push("\\Subscribed");
        }
        let child_info = (recursive && !criteria.is_empty()).then_some(criteria);
        out.push(Entry { name: name.clone(), attributes, child_info, status: exists && selected });
    }
    // INBOX first (RFC 9051 §6.3.9 puts no order, clients like it there).
    out.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
    out
}

/// LIST patterns (RFC 9051 §6.3.9): `*` matches anything, `%` anything but the separator;
/// the INBOX level (of INBOX and the names below it) matches in any case. Time is
/// O(pattern × name) whatever the wildcards (a set of reachable name positions is carried
/// through the pattern, no backtracking).
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let inbox_level = if name == "INBOX" || name.starts_with(&format!("INBOX{SEPARATOR}")) { 5 } else { 0 };
    let name: Vec<char> = name.chars().collect();
    let same = |j: usize, c: char| if j < inbox_level { name[j].eq_ignore_ascii_case(&c) } else { name[j] == c };
    // reach[j]: the pattern so far can match the first j characters of the name.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for pc in pattern.chars() {
        let mut next = vec![false; name.len() + 1];
        match pc {
            '*' | '%' => {
                let mut open = false;
                for j in 0..=name.len() {
                    // `%` does not reach across a separator.
                    if pc == '%' && j > 0 && name[j - 1] == SEPARATOR {
                        open = false;
                    }
                    open |= reach[j];
                    next[j] = open;
                }
            }
            c => {
                for j in 0..name.len() {
                    next[j + 1] = reach[j] && same(j, c);
                }
            }
        }
        if !next.contains(&true) {
            return false;
        }
        reach = next;
    }
    reach[name.len()]
}

impl Session {
    fn pattern(&self, reference: &AString, pattern: &AString) -> Result<String, super::Failure> {
        let joined = [reference.as_bytes(), pattern.as_bytes()].concat();
        self.folder_name(&Mailbox::new(joined))
    }

    pub(crate) async fn list(&mut self, list: List) -> Outcome {
        let mailbox = self.mailbox()?;
        let extended = list.selection != ListSelection::default()
            || list.patterns.len() > 1
            || list.returns != ListReturn::default();
        if !extended && list.patterns.iter().all(|p| p.as_bytes().is_empty()) {
            // RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter.
            self.line(&format!("* LIST (\\Noselect) \"{SEPARATOR}\" \"\""));
            return ok("LIST done");
        }
        let patterns = list
            .patterns
            .iter()
            .filter(|p| !p.as_bytes().is_empty())
            .map(|p| self.pattern(&list.reference, p))
            .collect::<Result<Vec<_>, _>>()?;
        let request =
            Request { selection: list.selection, returns: list.returns.clone(), patterns, extended, lsub: false };
        self.answer(mailbox, &request, list.returns.status.as_deref()).await?;
        ok("LIST done")
    }

    pub(crate) async fn lsub(&mut self, reference: AString, pattern: AString) -> Outcome {
        let mailbox = self.mailbox()?;
        if pattern.as_bytes().is_empty() {
            self.line(&format!("* LSUB (\\Noselect) \"{SEPARATOR}\" \"\""));
            return ok("LSUB done");
        }
        let patterns = vec![self.pattern(&reference, &pattern)?];
        let request = Request {
            selection: ListSelection::default(),
            returns: ListReturn::default(),
            patterns,
            extended: false,
            lsub: true,
        };
        self.answer(mailbox, &request, None).await?;
        ok("LSUB done")
    }

    async fn answer(
        &mut self,
        mailbox: postfach_types::MailboxId,
        request: &Request,
        status: Option<&[StatusItem]>,
    ) -> Result<(), super::Failure> {
        let store = self.server.store.clone();
        let folders = store.folders(mailbox).await?;
        let subscriptions = store.subscriptions(mailbox).await?;
        let verb = if request.lsub { "LSUB" } else { "LIST" };
        for entry in entries(&folders, &subscriptions, request) {
            let mut line = format!("* {verb} ({}) \"{SEPARATOR}\" ", entry.attributes.join(" ")).into_bytes();
            wire::astring(&mut line, &self.wire_name(&entry.name));
            if let Some(criteria) = entry.child_info {
                line.extend_from_slice(format!(" (\"CHILDINFO\" (\"{criteria}\"))").as_bytes());
            }
            line.extend_from_slice(b"\r\n");
            self.out().extend_from_slice(&line);
            // RFC 5819: the STATUS of each selectable folder right after its LIST line.
            if let (Some(items), true) = (status, entry.status)
                && let Some(folder) = folders.iter().find(|f| f.name == entry.name)
            {
                let status = self.status_line(mailbox, folder, items).await?;
                self.out().extend_from_slice(&status);
            }
            self.maybe_flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use postfach_store::folders::SpecialUse;

    use super::*;

    fn folder(name: &str, special_use: Option<SpecialUse>) -> Folder {
        Folder {
            id: postfach_types::FolderId::new(0),
            mailbox_id: postfach_types::MailboxId::new(1),
            name: name.to_string(),
            special_use,
            uidvalidity: 1,
            uidnext: 1,
            highest_modseq: 1,
            recent_uid: 0,
            expunged_floor: 0,
            subscribed: false,
        }
    }

    fn request(selection: ListSelection, returns: ListReturn, patterns: &[&str], lsub: bool) -> Request {
        let extended = selection != ListSelection::default() || patterns.len() > 1 || returns != ListReturn::default();
        Request { selection, returns, patterns: patterns.iter().map(|p| p.to_string()).collect(), extended, lsub }
    }

    fn lines(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                let info = e.child_info.map(|c| format!(" CHILDINFO {c}")).unwrap_or_default();
                format!("({}) {}{info}", e.attributes.join(" "), e.name)
            })
            .collect()
    }

    /// RFC 5258 §5's hierarchy: Fruit, Fruit/Apple, Fruit/Banana, Tofu, Vegetable,
    /// Vegetable/Broccoli, Vegetable/Corn; Fruit/Banana, Fruit/Peach (deleted), Vegetable
    /// and Vegetable/Broccoli subscribed.
    fn world() -> (Vec<Folder>, Vec<String>) {
        let folders = [
            "INBOX",
            "Fruit",
            "Fruit/Apple",
            "Fruit/Banana",
            "Tofu",
            "Vegetable",
            "Vegetable/Broccoli",
            "Vegetable/Corn",
        ]
        .iter()
        .map(|n| folder(n, None))
        .chain([folder("Sent", Some(SpecialUse::Sent))])
        .collect();
        let subs = ["INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        (folders, subs)
    }

    #[test]
    fn list_subscribed_shows_deleted_subscriptions_as_nonexistent() {
        let (folders, subs) = world();
        let sel = ListSelection { subscribed: true, ..Default::default() };
        let got = lines(&entries(&folders, &subs, &request(sel, ListReturn::default(), &["*"], false)));
        assert_eq!(
            got,
            [
                "(\\HasNoChildren \\Subscribed) INBOX",
                "(\\HasNoChildren \\Subscribed) Fruit/Banana",
                "(\\NonExistent \\Subscribed) Fruit/Peach",
                "(\\HasChildren \\Subscribed) Vegetable",
                "(\\HasNoChildren \\Subscribed) Vegetable/Broccoli",
            ]
        );
    }

    #[test]
    fn recursivematch_reports_subscribed_children_the_pattern_does_not_reach() {
        let (folders, subs) = world();
        let sel = ListSelection { subscribed: true, recursive_match: true, ..Default::default() };
        let got = lines(&entries(&folders, &subs, &request(sel, ListReturn::default(), &["%"], false)));
        assert_eq!(
            got,
            [
                "(\\HasNoChildren \\Subscribed) INBOX",
                "(\\HasChildren) Fruit CHILDINFO SUBSCRIBED",
                "(\\HasChildren \\Subscribed) Vegetable CHILDINFO SUBSCRIBED",
            ]
        );
    }

    #[test]
    fn plain_list_children_special_use_and_several_patterns() {
        let (folders, subs) = world();
        let plain =
            lines(&entries(&folders, &subs, &request(ListSelection::default(), ListReturn::default(), &["%"], false)));
        assert_eq!(
            plain,
            [
                "(\\HasNoChildren \\Subscribed) INBOX",
                "(\\HasChildren) Fruit",
                "(\\HasNoChildren \\Sent) Sent",
                "(\\HasNoChildren) Tofu",
                "(\\HasChildren \\Subscribed) Vegetable",
            ]
        );
        let special = ListSelection { special_use: true, ..Default::default() };
        let got = lines(&entries(&folders, &subs, &request(special, ListReturn::default(), &["*"], false)));
        assert_eq!(got, ["(\\HasNoChildren \\Sent) Sent"]);
        let returns = ListReturn { subscribed: true, ..Default::default() };
        let got =
            lines(&entries(&folders, &subs, &request(ListSelection::default(), returns, &["Tofu", "Fruit/%"], false)));
        assert_eq!(
            got,
            ["(\\HasNoChildren) Fruit/Apple", "(\\HasNoChildren \\Subscribed) Fruit/Banana", "(\\HasNoChildren) Tofu"]
        );
    }

    #[test]
    fn holes_are_noselect_or_nonexistent() {
        let folders = vec![folder("INBOX", None), folder("a/b/c", None)];
        let plain =
            lines(&entries(&folders, &[], &request(ListSelection::default(), ListReturn::default(), &["*"], false)));
        assert_eq!(
            plain,
            [
                "(\\HasNoChildren) INBOX",
                "(\\Noselect \\HasChildren) a",
                "(\\Noselect \\HasChildren) a/b",
                "(\\HasNoChildren) a/b/c"
            ]
        );
        let returns = ListReturn { children: true, ..Default::default() };
        let ext = lines(&entries(&folders, &[], &request(ListSelection::default(), returns, &["a/%"], false)));
        assert_eq!(ext, ["(\\NonExistent \\HasChildren) a/b"]);
    }

    #[test]
    fn lsub_marks_unsubscribed_parents_noselect_and_sends_no_children_attributes() {
        let folders = vec![
            folder("INBOX", None),
            folder("parent", None),
            folder("parent/child", None),
            folder("parent/child/deep", None),
        ];
        let subs = vec!["parent/child/deep".to_string(), "gone".to_string()];
        let got = lines(&entries(
            &folders,
            &subs,
            &request(ListSelection::default(), ListReturn::default(), &["parent/%"], true),
        ));
        assert_eq!(got, ["(\\Noselect) parent/child"]);
        let got =
            lines(&entries(&folders, &subs, &request(ListSelection::default(), ListReturn::default(), &["*"], true)));
        assert_eq!(got, ["(\\Noselect) gone", "() parent/child/deep"]);
        let got =
            lines(&entries(&folders, &subs, &request(ListSelection::default(), ListReturn::default(), &["%"], true)));
        assert_eq!(got, ["(\\Noselect) gone", "(\\Noselect) parent"]);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "a/b"));
        assert!(!wildcard_match("%", "a/b"));
        assert!(wildcard_match("a/%", "a/b"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(wildcard_match("Inbox/%", "INBOX/x"));
        assert!(!wildcard_match("a", "ab"));
        assert!(wildcard_match("inbox*", "INBOX") && wildcard_match("I%x", "INBOX"));
        // Only the INBOX level folds case: another folder keeps its own spelling.
        assert!(wildcard_match("Inboxes", "Inboxes") && !wildcard_match("inboxes", "Inboxes"));
        // Many wildcards cost pattern × name, not an exponential search.
        let hostile = format!("{}x", "%*".repeat(500));
        assert!(!wildcard_match(&hostile, &"a".repeat(255)));
        assert!(wildcard_match(&format!("{}a", "%".repeat(1000)), &"a".repeat(255)));
    }
}
