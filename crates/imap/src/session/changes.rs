//! Commands that change messages (RFC 9051 §6.4): STORE (with UNCHANGEDSINCE, RFC 7162
//! §3.1.3), COPY and MOVE (RFC 6851) with COPYUID (RFC 4315), EXPUNGE and UID EXPUNGE,
//! CLOSE. New keywords are announced with FLAGS and PERMANENTFLAGS before the first FETCH
//! that carries them (RFC 9051 §7.3.5). No message file is deleted here: the store records
//! orphaned blobs and the upkeep sweep removes them after the grace period.

use postfach_store::messages::FlagChange;

use super::fetch::{FlagsLine, flags_line};
use super::mailboxes::{flag_list, split_flags};
use super::{Outcome, Session, State, bad, no, ok};
use crate::protocol::{SequenceSet, Store, StoreMode, Transfer};
use crate::seqset;

impl Session {
    /// Announces keywords the client has not been told about (RFC 9051 §7.3.5 FLAGS,
    /// §7.1 PERMANENTFLAGS), before any FETCH that carries them.
    pub(crate) fn announce_keywords<'k>(&mut self, keywords: impl IntoIterator<Item = &'k String>) {
        let State::Selected { sel, .. } = &mut self.state else { return };
        let before = sel.keywords.len();
        sel.keywords.extend(keywords.into_iter().cloned());
        if sel.keywords.len() == before {
            return;
        }
        let flags = flag_list(&sel.keywords);
        let read_only = sel.read_only;
        self.line(&format!("* FLAGS ({flags})"));
        if !read_only {
            self.line(&format!("* OK [PERMANENTFLAGS ({flags} \\*)] flags can be changed"));
        }
    }

    pub(crate) async fn store(&mut self, store: Store) -> Outcome {
        let db = self.server.store.clone();
        let rev2 = self.enabled.rev2;
        let (mailbox, sel) = self.selected()?;
        if sel.read_only {
            return no(Some("READ-ONLY"), "the folder was opened read-only (EXAMINE)");
        }
        let Ok(positions) = seqset::resolve(&store.set, store.uid, &sel.uids, &sel.saved) else {
            return bad("the message sequence numbers are not in this folder");
        };
        let uids: Vec<u32> = positions.iter().map(|&i| sel.uids[i]).collect();
        let folder = sel.folder;
        let (flags, keywords) = split_flags(&store.flags);
        let change = match store.mode {
            StoreMode::Add => FlagChange::Add,
            StoreMode::Remove => FlagChange::Remove,
            StoreMode::Replace => FlagChange::Replace,
        };
        let outcome = db.store_flags(mailbox, folder, &uids, change, flags, &keywords, store.unchanged_since).await?;
        if store.unchanged_since.is_some() {
            self.enabled.condstore = true;
        }
        let condstore = self.enabled.condstore;
        self.announce_keywords(outcome.changed.iter().flat_map(|m| &m.keywords));
        let (_, sel) = self.selected()?;
        // These changes are told here; the update check after the command skips them.
        for m in &outcome.changed {
            sel.told.insert(m.uid, m.modseq);
        }
        let report = !store.silent || store.unchanged_since.is_some();
        let mut lines = Vec::new();
        for m in outcome.changed.iter().filter(|_| report) {
            let Ok(pos) = sel.uids.binary_search(&m.uid) else { continue };
            let mut line = Vec::new();
            let recent = !rev2 && sel.recent.binary_search(&m.uid).is_ok();
            flags_line(&mut line, pos + 1, m, FlagsLine { uid: store.uid, modseq: condstore, recent });
            lines.push(line);
        }
        let modified: Vec<u32> = if store.uid {
            outcome.modified.clone()
        } else {
            outcome
                .modified
                .iter()
                .filter_map(|u| sel.uids.binary_search(u).ok())
                .map(|p| u32::try_from(p + 1).unwrap_or(u32::MAX))
                .collect()
        };
        for line in lines {
            self.out().extend_from_slice(&line);
        }
        if !modified.is_empty() {
            // RFC 7162 §3.1.3
            return Ok(format!("[MODIFIED {}] conditional STORE failed for some messages", seqset::compact(modified)));
        }
        ok(if store.uid { "UID STORE done" } else { "STORE done" })
    }

    /// COPY and MOVE (RFC 9051 §6.4.7, §6.4.8): the copies share the message files.
    pub(crate) async fn transfer(&mut self, transfer: Transfer, moving: bool) -> Outcome {
        let db = self.server.store.clone();
        let target = self.folder_name(&transfer.mailbox)?;
        let learning = self.server.learner.is_on();
        let (mailbox, sel) = self.selected()?;
        if moving && sel.read_only {
            return no(Some("READ-ONLY"), "the folder was opened read-only (EXAMINE)");
        }
        let Ok(positions) = seqset::resolve(&transfer.set, transfer.uid, &sel.uids, &sel.saved) else {
            return bad("the message sequence numbers are not in this folder");
        };
        let uids: Vec<u32> = positions.iter().map(|&i| sel.uids[i]).collect();
        let from = sel.folder;
        let Some(to) = db.folder(mailbox, &target).await? else {
            // RFC 9051 §6.4.7: TRYCREATE, the target is not created.
            return no(Some("TRYCREATE"), "there is no folder with this name; create it first");
        };
        let pairs = if moving {
            db.move_messages(mailbox, from, &uids, to.id).await?
        } else {
            db.copy_messages(mailbox, from, &uids, to.id).await?
        };
        let verb = if moving { "MOVE" } else { "COPY" };
        if !pairs.is_empty() && learning {
            let new_uids: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let selected = sel.name.clone();
            self.learn_from_transfer(mailbox, &selected, &to, new_uids);
        }
        if uids.is_empty() {
            return ok(&format!("{verb} done (nothing to do)"));
        }
        if pairs.is_empty() {
            // RFC 2180 §4.4.1, RFC 5530: another session expunged some; nothing was done.
            return no(
                Some("EXPUNGEISSUED"),
                "some of the messages were deleted by another program, so none were copied; check the folder and try again",
            );
        }
        let code = format!(
            "COPYUID {} {} {}",
            to.uidvalidity,
            seqset::compact(pairs.iter().map(|p| p.0)),
            seqset::compact(pairs.iter().map(|p| p.1))
        );
        if moving {
            // RFC 9051 §6.4.8: COPYUID in an untagged OK before the expunges.
            self.line(&format!("* OK [{code}] moved"));
            let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            self.report_expunged(&moved);
            return ok("MOVE done");
        }
        Ok(format!("[{code}] COPY done"))
    }

    /// Spam learning (`docs/spam.md`): messages copied or moved into the `\Junk` folder
    /// are spam, out of it into any folder but `\Trash` are ham. The lookup of their bytes
    /// and the learning run in a task of their own: the command neither waits nor fails.
    fn learn_from_transfer(
        &self,
        mailbox: postfach_types::MailboxId,
        selected: &str,
        to: &postfach_store::folders::Folder,
        new_uids: Vec<u32>,
    ) {
        use postfach_spam::Learn;
        use postfach_store::folders::SpecialUse;
        let learn = match to.special_use {
            Some(SpecialUse::Junk) => Learn::Spam,
            Some(SpecialUse::Trash) => return,
            _ => Learn::Ham,
        };
        let store = self.server.store.clone();
        let learner = self.server.learner.clone();
        let (to, selected) = (to.id, selected.to_string());
        tokio::spawn(async move {
            if learn == Learn::Ham {
                match store.folder(mailbox, &selected).await {
                    Ok(Some(from)) if from.special_use == Some(SpecialUse::Junk) => {}
                    Ok(_) => return,
                    Err(e) => return tracing::warn!(error = %e, "spam learning: reading the folder failed"),
                }
            }
            let mut new_uids = new_uids;
            new_uids.sort_unstable();
            let (Some(&lo), Some(&hi)) = (new_uids.first(), new_uids.last()) else { return };
            let messages = match store.messages_between(mailbox, to, lo, hi).await {
                Ok(messages) => messages,
                Err(e) => return tracing::warn!(error = %e, "spam learning: reading the messages failed"),
            };
            for message in messages.iter().filter(|m| new_uids.binary_search(&m.uid).is_ok()) {
                learner.learn(learn, message.blob.clone(), message.size);
            }
        });
    }

    /// EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1).
    pub(crate) async fn expunge(&mut self, uid_set: Option<SequenceSet>) -> Outcome {
        let db = self.server.store.clone();
        let (mailbox, sel) = self.selected()?;
        if sel.read_only {
            return no(Some("READ-ONLY"), "the folder was opened read-only (EXAMINE)");
        }
        let only = match &uid_set {
            Some(set) => {
                let positions = seqset::resolve(set, true, &sel.uids, &sel.saved).unwrap_or_default();
                Some(positions.iter().map(|&i| sel.uids[i]).collect::<Vec<u32>>())
            }
            None => None,
        };
        let expunged = db.expunge(mailbox, sel.folder, only.as_deref()).await?;
        self.report_expunged(&expunged.uids);
        ok(if uid_set.is_some() { "UID EXPUNGE done" } else { "EXPUNGE done" })
    }

    /// CLOSE (RFC 9051 §6.4.1): expunge silently unless read-only, then leave the folder.
    pub(crate) async fn close(&mut self) -> Outcome {
        let db = self.server.store.clone();
        let (mailbox, sel) = self.selected()?;
        if !sel.read_only {
            db.expunge(mailbox, sel.folder, None).await?;
        }
        self.unselect();
        ok("CLOSE done")
    }

    /// Tells the client that `uids` are gone (EXPUNGE, or VANISHED with QRESYNC) and
    /// forgets them, also in the recent and saved sets.
    pub(crate) fn report_expunged(&mut self, uids: &[u32]) {
        let qresync = self.enabled.qresync;
        let State::Selected { sel, .. } = &mut self.state else { return };
        let mut asked = uids.to_vec();
        asked.sort_unstable();
        let is_asked = |u: &u32| asked.binary_search(u).is_ok();
        // In UID order; each EXPUNGE's number counts the ones already reported.
        let mut lines = Vec::new();
        let mut gone = Vec::new();
        for (i, uid) in sel.uids.iter().enumerate() {
            if is_asked(uid) {
                if !qresync {
                    lines.push(format!("* {} EXPUNGE", i - gone.len() + 1));
                }
                gone.push(*uid);
            }
        }
        sel.uids.retain(|u| !is_asked(u));
        sel.recent.retain(|u| !is_asked(u));
        sel.saved.retain(|u| !is_asked(u));
        for u in &gone {
            sel.told.remove(u);
        }
        if qresync && !gone.is_empty() {
            // RFC 7162 §3.2.10
            lines.push(format!("* VANISHED {}", seqset::compact(gone)));
        }
        for line in lines {
            self.line(&line);
        }
    }
}
