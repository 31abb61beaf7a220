//! Commands on folders (RFC 9051 §6.3): SELECT/EXAMINE (with CONDSTORE and QRESYNC, RFC
//! 7162), CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, STATUS (RFC 8438 SIZE) and
//! APPEND, and the mailbox names on the wire: UTF-8 for sessions that enabled IMAP4rev2
//! or UTF8=ACCEPT, modified UTF-7 (RFC 3501 §5.1.3) for the others. Folders are stored
//! with UTF-8 names.

use std::collections::BTreeSet;

use postfach_blob::Content;
use postfach_message::{IntakeError, Message, check_intake};
use postfach_store::folders::{Folder, SEPARATOR};
use postfach_store::local::{LocalTarget, deliver_local};
use postfach_store::messages::Flags;
use postfach_types::{MailboxId, UnixTime};

use super::{Failure, Outcome, Selected, Session, State, bad, no, ok};
use crate::protocol::{AString, Append, AppendData, Flag, Mailbox, Select, SpecialUse, StatusItem};
use crate::{mutf7, seqset, wire};

/// System flags and keywords of a STORE or APPEND flag list (`\Recent` cannot be set).
pub(crate) fn split_flags(flags: &[Flag]) -> (Flags, Vec<String>) {
    let mut sys = Flags::default();
    let mut keywords = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => sys = sys.union(Flags::SEEN),
            Flag::Answered => sys = sys.union(Flags::ANSWERED),
            Flag::Flagged => sys = sys.union(Flags::FLAGGED),
            Flag::Deleted => sys = sys.union(Flags::DELETED),
            Flag::Draft => sys = sys.union(Flags::DRAFT),
            Flag::Keyword(k) => keywords.push(k.as_str().to_string()),
            Flag::Recent | Flag::Extension(_) => {}
        }
    }
    (sys, keywords)
}

impl Session {
    /// The folder name (UTF-8) a mailbox argument means.
    pub(crate) fn folder_name(&self, mailbox: &Mailbox) -> Result<String, Failure> {
        let bytes = match mailbox {
            Mailbox::Inbox => return Ok("INBOX".to_string()),
            Mailbox::Other(name) => name.as_bytes(),
        };
        let Ok(text) = std::str::from_utf8(bytes) else { return bad("mailbox names must be UTF-8") };
        if self.enabled.utf8_names() {
            return Ok(text.to_string());
        }
        // Modified UTF-7 where it is valid; otherwise the name as sent (as Dovecot does).
        Ok(mutf7::decode(text).unwrap_or_else(|| text.to_string()))
    }

    /// A folder name as this client expects it on the wire.
    pub(crate) fn wire_name(&self, name: &str) -> String {
        if self.enabled.utf8_names() { name.to_string() } else { mutf7::encode(name) }
    }

    pub(crate) async fn folder(&self, mailbox: MailboxId, name: &str) -> Result<Folder, Failure> {
        match self.server.store.folder(mailbox, name).await? {
            Some(f) => Ok(f),
            None => no(Some("NONEXISTENT"), "there is no folder with this name"),
        }
    }

    /// SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3).
    pub(crate) async fn select(&mut self, select: Select, read_only: bool) -> Outcome {
        let mailbox = self.mailbox()?;
        // RFC 7162 §3.2.11, RFC 9051 §6.3.2: a SELECT closes the selected folder first,
        // also when it fails, and says so.
        if matches!(self.state, State::Selected { .. }) {
            self.unselect();
            self.line("* OK [CLOSED] the previous folder is now closed");
        }
        if select.qresync.is_some() && !self.enabled.qresync {
            return bad("please ENABLE QRESYNC first");
        }
        if select.condstore {
            self.enabled.condstore = true;
        }
        let name = self.folder_name(&select.mailbox)?;
        let store = self.server.store.clone();
        let folder = self.folder(mailbox, &name).await?;
        let messages = store.messages(mailbox, folder.id).await?;
        // RFC 3501 §2.3.2: exactly one session sees a new message as \Recent; EXAMINE
        // shows them without taking them.
        let recent: Vec<u32> = if read_only {
            messages.iter().map(|m| m.uid).filter(|&u| u > folder.recent_uid).collect()
        } else {
            let (after, upto) = store.claim_recent(mailbox, folder.id).await?;
            messages.iter().map(|m| m.uid).filter(|&u| u > after && u <= upto).collect()
        };
        let keywords: BTreeSet<String> = messages.iter().flat_map(|m| m.keywords.iter().cloned()).collect();
        let flags = flag_list(&keywords);
        self.line(&format!("* FLAGS ({flags})"));
        if read_only {
            self.line("* OK [PERMANENTFLAGS ()] read-only");
        } else {
            self.line(&format!("* OK [PERMANENTFLAGS ({flags} \\*)] flags can be changed"));
        }
        self.line(&format!("* {} EXISTS", messages.len()));
        if !self.enabled.rev2 {
            // Removed in IMAP4rev2 (RFC 9051 appendix E).
            self.line(&format!("* {} RECENT", recent.len()));
            if let Some(pos) = messages.iter().position(|m| !m.flags.contains(Flags::SEEN)) {
                self.line(&format!("* OK [UNSEEN {}] first unseen message", pos + 1));
            }
        }
        self.line(&format!("* OK [UIDVALIDITY {}] UIDs valid", folder.uidvalidity));
        let uidnext = folder.uidnext.max(messages.last().map_or(1, |m| m.uid + 1));
        self.line(&format!("* OK [UIDNEXT {uidnext}] predicted next UID"));
        self.line(&format!("* OK [HIGHESTMODSEQ {}] modification sequences", folder.highest_modseq));
        if self.enabled.rev2 {
            // RFC 9051 §6.3.2: the mailbox's LIST response.
            let attrs = folder.special_use.map(|s| s.attribute()).unwrap_or_default();
            let mut line = format!("* LIST ({attrs}) \"{SEPARATOR}\" ").into_bytes();
            wire::astring(&mut line, &self.wire_name(&folder.name));
            self.line(&String::from_utf8_lossy(&line));
        }
        let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
        if let Some(q) = &select.qresync
            && q.uid_validity.get() == folder.uidvalidity
        {
            // RFC 7162 §3.2.5.1: what vanished and what changed since the client's modseq.
            let vanished = if q.modseq >= folder.expunged_floor {
                let mut gone = store.expunged_since(mailbox, folder.id, q.modseq).await?;
                if let Some(known) = &q.known_uids {
                    let max = gone.last().copied().unwrap_or(0);
                    let known = seqset::Membership::new(known, max);
                    gone.retain(|&u| known.contains(u));
                }
                seqset::compact(gone)
            } else {
                // Expunges that old are forgotten: every UID the client may know that is not
                // here any more (RFC 7162 §3.2.5.2 allows reporting too many).
                let ranges: Vec<(u32, u32)> = match &q.known_uids {
                    Some(known) => seqset::bounds_of(known, uidnext.saturating_sub(1)),
                    None => vec![(1, uidnext.saturating_sub(1))],
                };
                seqset::missing(&uids, &ranges)
            };
            if !vanished.is_empty() {
                self.line(&format!("* VANISHED (EARLIER) {vanished}"));
            }
            for (i, m) in messages.iter().enumerate().filter(|(_, m)| m.modseq > q.modseq) {
                let recent = recent.binary_search(&m.uid).is_ok() && !self.enabled.rev2;
                let how = super::fetch::FlagsLine { uid: true, modseq: true, recent };
                super::fetch::flags_line(self.out(), i + 1, m, how);
            }
        }
        let State::Authenticated { mailbox, address } = std::mem::replace(&mut self.state, State::NotAuthenticated)
        else {
            return Err(super::ungated());
        };
        let sel = Selected {
            folder: folder.id,
            name: folder.name.clone(),
            read_only,
            uids,
            modseq: folder.highest_modseq,
            dirty: false,
            keywords,
            recent,
            saved: Vec::new(),
            told: Default::default(),
        };
        self.state = State::Selected { mailbox, address, sel: Box::new(sel) };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        Ok(format!("[{}] {verb} done", if read_only { "READ-ONLY" } else { "READ-WRITE" }))
    }

    /// CREATE (RFC 9051 §6.3.4), with the missing superior levels (RFC 3501 §6.3.3) and
    /// an optional special use (RFC 6154 §3).
    pub(crate) async fn create(&mut self, mailbox: Mailbox, special_use: Vec<SpecialUse>) -> Outcome {
        let id = self.mailbox()?;
        let name = self.folder_name(&mailbox)?;
        let name = name.trim_end_matches(SEPARATOR).to_string();
        if !special_use.is_empty() {
            return no(
                Some("USEATTR"),
                "special-use folders are set up by the server (Sent, Drafts, Trash, Junk, Archive)",
            );
        }
        let store = self.server.store.clone();
        let parts: Vec<&str> = name.split(SEPARATOR).collect();
        let mut prefix = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                prefix.push(SEPARATOR);
            }
            prefix.push_str(part);
            let exists = store.folder(id, &prefix).await?.is_some();
            if exists && i + 1 == parts.len() {
                return no(Some("ALREADYEXISTS"), "a folder with this name exists already");
            }
            if !exists {
                store.create_folder(id, &prefix, None).await?;
            }
        }
        ok("CREATE done")
    }

    /// DELETE (RFC 9051 §6.3.5): the folder and its messages; their files stay readable
    /// for sessions that still have them, until the upkeep sweep.
    pub(crate) async fn delete(&mut self, mailbox: Mailbox) -> Outcome {
        let id = self.mailbox()?;
        let name = self.folder_name(&mailbox)?;
        self.server.store.delete_folder(id, &name).await?;
        // Only a folder that is really gone is left (a refused DELETE changes nothing).
        if let State::Selected { sel, .. } = &self.state
            && sel.name == name
        {
            self.unselect();
        }
        ok("DELETE done")
    }

    pub(crate) async fn rename(&mut self, from: Mailbox, to: Mailbox) -> Outcome {
        let id = self.mailbox()?;
        let (from, to) = (self.folder_name(&from)?, self.folder_name(&to)?);
        if self.server.store.folder(id, &to).await?.is_some() {
            return no(Some("ALREADYEXISTS"), "a folder with the new name exists already");
        }
        self.server.store.rename_folder(id, &from, &to).await?;
        ok("RENAME done")
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8).
    pub(crate) async fn subscribe(&mut self, mailbox: Mailbox, on: bool) -> Outcome {
        let id = self.mailbox()?;
        let name = self.folder_name(&mailbox)?;
        self.server.store.set_subscribed(id, &name, on).await?;
        ok(if on { "SUBSCRIBE done" } else { "UNSUBSCRIBE done" })
    }

    /// STATUS (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ).
    pub(crate) async fn status(&mut self, mailbox: Mailbox, items: &[StatusItem]) -> Outcome {
        let id = self.mailbox()?;
        let name = self.folder_name(&mailbox)?;
        let folder = self.folder(id, &name).await?;
        let line = self.status_line(id, &folder, items).await?;
        self.out().extend_from_slice(&line);
        ok("STATUS done")
    }

    /// The `* STATUS` response for one folder (also for LIST-STATUS, RFC 5819).
    pub(crate) async fn status_line(
        &self,
        mailbox: MailboxId,
        folder: &Folder,
        items: &[StatusItem],
    ) -> Result<Vec<u8>, Failure> {
        let messages = self.server.store.messages(mailbox, folder.id).await?;
        let count = |f: Flags, set: bool| messages.iter().filter(|m| m.flags.contains(f) == set).count();
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", messages.len()),
                StatusItem::Recent => {
                    format!("RECENT {}", messages.iter().filter(|m| m.uid > folder.recent_uid).count())
                }
                StatusItem::UidNext => {
                    format!("UIDNEXT {}", folder.uidnext.max(messages.last().map_or(1, |m| m.uid + 1)))
                }
                StatusItem::UidValidity => format!("UIDVALIDITY {}", folder.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", count(Flags::SEEN, false)),
                StatusItem::Deleted => format!("DELETED {}", count(Flags::DELETED, true)),
                StatusItem::Size => format!("SIZE {}", messages.iter().map(|m| m.size).sum::<u64>()),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", folder.highest_modseq),
                StatusItem::AppendLimit => format!("APPENDLIMIT {}", self.server.settings.max_message_size),
            });
        }
        let mut line = b"* STATUS ".to_vec();
        wire::astring(&mut line, &self.wire_name(&folder.name));
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(line)
    }

    /// APPEND (RFC 9051 §6.3.12): the message is checked like mail from the network
    /// (structure limits; a header that breaks RFC 5322 is kept as it is: it is the user's
    /// own copy), stored durably, then OK with APPENDUID (RFC 4315 §3).
    pub(crate) async fn append(&mut self, append: Append) -> Outcome {
        let mailbox = self.mailbox()?;
        let name = self.folder_name(&append.mailbox)?;
        let spooled = self.input.spooled.take();
        let store = self.server.store.clone();
        let Some(folder) = store.folder(mailbox, &name).await? else {
            // RFC 9051 §6.3.12: never created by APPEND; TRYCREATE tells the client to.
            return no(Some("TRYCREATE"), "there is no folder with this name; create it first");
        };
        let len = match &append.data {
            AppendData::Inline { bytes, .. } => bytes.len() as u64,
            AppendData::Spooled(literal) => literal.len,
        };
        if len == 0 {
            return no(None, "an empty message cannot be stored");
        }
        // Refused before anything is written; the store checks again when it commits.
        match store.mailbox_space(mailbox).await?.room(len, 1) {
            postfach_types::Room::Fits => {}
            room => return Err(Failure::No(Some("OVERQUOTA"), super::over_quota_text(room).into())),
        }
        let _reservation = self.server.budget.reserve(len.saturating_mul(2)).await;
        let (bytes, file) = match append.data {
            AppendData::Inline { bytes, .. } => (bytes, None),
            AppendData::Spooled(_) => match spooled {
                Some(file) => (file.read_all().await?, Some(file)),
                None => return no(Some("UNAVAILABLE"), "the message was not received; please try again"),
            },
        };
        // The structure limits hold for every way in; a header that is merely unusual
        // (doubled fields, a first line that is no field) is stored as the client has it.
        match check_intake(&Message::parse(&bytes)) {
            Err(e @ (IntakeError::TooDeep { .. } | IntakeError::TooManyParts { .. })) => {
                return Err(Failure::No(Some("LIMIT"), format!("{e}; store the attachments on their own")));
            }
            Err(
                e @ (IntakeError::TooManyFields { .. }
                | IntakeError::FieldTooLong { .. }
                | IntakeError::FieldTooComplex { .. }
                | IntakeError::TooManyAddresses { .. }),
            ) => return Err(Failure::No(Some("LIMIT"), format!("{e}; this message cannot be stored"))),
            _ => {}
        }
        let (flags, keywords) = split_flags(&append.flags);
        let internal_date = append.date.map_or_else(UnixTime::now, |d| UnixTime(d.timestamp()));
        let target = LocalTarget::Folder { store: &store, mailbox, folder: folder.id, internal_date, flags, keywords };
        // A spooled message is stored from its file (streamed), not from the copy checked.
        let content = match file {
            Some(file) => {
                drop(bytes);
                Content::Spooled(file)
            }
            None => Content::Bytes(bytes),
        };
        let delivered = deliver_local(&self.server.blobs, content, target).await?;
        let uid = delivered.placed.first().map_or(0, |p| p.uid);
        Ok(format!("[APPENDUID {} {uid}] APPEND done", folder.uidvalidity))
    }

    /// GETQUOTAROOT (RFC 9208 §4.3): every folder of a mailbox shares one quota root,
    /// `""`, when the mailbox (or its customer) has a limit; without one, no root.
    pub(crate) async fn quota_root(&mut self, mailbox: Mailbox) -> Outcome {
        let id = self.mailbox()?;
        let name = self.folder_name(&mailbox)?;
        let folder = self.folder(id, &name).await?;
        let quota = quota_line(&self.server.store.mailbox_space(id).await?);
        let mut line = b"* QUOTAROOT ".to_vec();
        wire::astring(&mut line, &self.wire_name(&folder.name));
        if quota.is_some() {
            line.extend_from_slice(b" \"\"");
        }
        line.extend_from_slice(b"\r\n");
        if let Some(quota) = quota {
            line.extend_from_slice(quota.as_bytes());
        }
        self.out().extend_from_slice(&line);
        ok("GETQUOTAROOT done")
    }

    /// GETQUOTA (RFC 9208 §4.2) of the one root `""`.
    pub(crate) async fn quota(&mut self, root: AString) -> Outcome {
        let id = self.mailbox()?;
        let space = self.server.store.mailbox_space(id).await?;
        match quota_line(&space) {
            Some(line) if root.as_bytes().is_empty() => {
                self.out().extend_from_slice(line.as_bytes());
                ok("GETQUOTA done")
            }
            _ => no(Some("NONEXISTENT"), "there is no such quota root; ask GETQUOTAROOT for a folder's"),
        }
    }
}

/// The FLAGS list: the system flags and the keywords in use.
pub(crate) fn flag_list(keywords: &BTreeSet<String>) -> String {
    let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for k in keywords {
        flags.push(' ');
        flags.push_str(k);
    }
    flags
}

/// The `* QUOTA "" (…)` line: STORAGE in units of 1024 bytes (RFC 9208 §5.1), the
/// limit being what this mailbox may store (its own limit, or less where its customer's
/// total leaves less room); MESSAGE where a count is limited. `None` without any limit.
fn quota_line(space: &postfach_types::Space) -> Option<String> {
    let kib = |bytes: u64| bytes.div_ceil(1024);
    let customer_room = space
        .customer_quota_bytes
        .map(|q| space.used_bytes.saturating_add(q.saturating_sub(space.customer_used_bytes)));
    let storage = match (space.quota_bytes, customer_room) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut resources = Vec::new();
    if let Some(limit) = storage {
        resources.push(format!("STORAGE {} {}", kib(space.used_bytes), limit / 1024));
    }
    if let Some(limit) = space.quota_messages {
        resources.push(format!("MESSAGE {} {limit}", space.used_messages));
    }
    if resources.is_empty() {
        return None;
    }
    Some(format!("* QUOTA \"\" ({})\r\n", resources.join(" ")))
}
