//! Telling the client what other sessions, deliveries and POP3 changed in the selected
//! folder (RFC 9051 §7.3.1 EXISTS, §7.5.1 EXPUNGE, §7.5.2 FETCH; RFC 7162 VANISHED), after
//! every command and while idling (RFC 2177 IDLE).
//!
//! Changes arrive on `Store::subscribe`; the session then compares the folder with what it
//! told the client. New messages are claimed as `\Recent` by the first session that sees
//! them (RFC 3501 §2.3.2). New keywords are announced before the first FETCH carrying them.
//! Changes this session reported itself (its own STORE) are not repeated.

use postfach_store::messages::MailboxChange;
use tokio::sync::broadcast;

use super::fetch::{FlagsLine, flags_line};
use super::{Outcome, Session, State, bad, ok};
use crate::protocol::{Event, LiteralDecision};

/// What woke an idling session.
enum Wake {
    Read(Result<usize, postfach_net::Ended>),
    Change(Option<Option<MailboxChange>>),
}

async fn recv(rx: Option<&mut broadcast::Receiver<MailboxChange>>) -> Option<Option<MailboxChange>> {
    match rx {
        Some(rx) => match rx.recv().await {
            Ok(c) => Some(Some(c)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(None),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

impl Session {
    /// Marks the selected folder for a look when a change concerns it (or when changes
    /// were missed: then anything may have changed).
    fn note_change(&mut self, change: Option<MailboxChange>) {
        if let State::Selected { mailbox, sel, .. } = &mut self.state {
            match change {
                Some(c) if c.concerns(*mailbox, sel.folder) => sel.dirty = true,
                Some(_) => {}
                None => sel.dirty = true,
            }
        }
    }

    /// Sends what changed in the selected folder since the client last heard. EXPUNGE
    /// (or VANISHED) only where `expunge_allowed` (RFC 9051 §7.5.1).
    pub(crate) async fn refresh(&mut self, expunge_allowed: bool) {
        if let Some(rx) = self.changes.as_mut() {
            let mut seen = Vec::new();
            loop {
                match rx.try_recv() {
                    Ok(c) => seen.push(Some(c)),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => seen.push(None),
                    Err(_) => break,
                }
            }
            for c in seen {
                self.note_change(c);
            }
        }
        if let Err(e) = self.look(expunge_allowed).await {
            tracing::warn!(error = %e, "checking the selected folder for changes failed");
        }
    }

    /// IDLE (RFC 2177, RFC 9051 §6.3.13): updates as they happen until the client sends DONE.
    pub(crate) async fn idle(&mut self) -> Outcome {
        self.line("+ idling");
        self.refresh(true).await;
        self.conn.flush().await?;
        // The idle timeout counts from the client's last word; news sent to it (which any
        // delivery to any mailbox may cause) does not extend it.
        let idle = self.server.settings.idle_timeout;
        let mut heard = tokio::time::Instant::now();
        loop {
            while let Some(event) = self.framer.next_event() {
                match event {
                    Event::Command(input) => {
                        return if input.bytes.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                            ok("IDLE terminated")
                        } else {
                            bad("IDLE ends with DONE")
                        };
                    }
                    Event::Literal(_) => {
                        self.framer.decide(LiteralDecision::Refuse);
                    }
                    Event::LiteralChunk(_) => {}
                    Event::Rejected { .. } => return bad("IDLE ends with DONE"),
                }
            }
            let left = (heard + idle).saturating_duration_since(tokio::time::Instant::now());
            let wake = {
                let Session { conn, changes, .. } = &mut *self;
                tokio::select! {
                    // Nothing is queued here (every update is flushed at once), so `fill`
                    // only reads, which may be cancelled safely.
                    read = conn.fill(left) => Wake::Read(read),
                    change = recv(changes.as_mut()) => Wake::Change(change),
                }
            };
            match wake {
                Wake::Read(Ok(_)) => {
                    heard = tokio::time::Instant::now();
                    let n = self.conn.buffered().len();
                    self.framer.push(self.conn.buffered());
                    self.conn.consume(n);
                }
                Wake::Read(Err(e)) => return Err(super::Failure::End(e.into())),
                Wake::Change(change) => {
                    if let Some(change) = change {
                        self.note_change(change);
                    }
                    self.refresh(true).await;
                    self.conn.flush().await?;
                }
            }
        }
    }
}

impl Session {
    /// Compares the selected folder with what the client was told and writes the updates.
    async fn look(&mut self, expunge_allowed: bool) -> Result<(), postfach_store::StoreError> {
        let session = self;
        let store = session.server.store.clone();
        let enabled = session.enabled;
        let State::Selected { mailbox, sel, .. } = &mut session.state else { return Ok(()) };
        if !sel.dirty {
            return Ok(());
        }
        let mailbox = *mailbox;
        let Some(folder) = store.folder_by_id(mailbox, sel.folder).await? else { return Ok(()) };
        if folder.highest_modseq == sel.modseq {
            sel.dirty = false;
            return Ok(());
        }
        let current = store.uids(mailbox, sel.folder).await?;
        let changed = store.messages_changed_since(mailbox, sel.folder, sel.modseq).await?;
        let gone: Vec<u32> = sel.uids.iter().copied().filter(|u| current.binary_search(u).is_err()).collect();
        let complete = expunge_allowed || gone.is_empty();
        let last = sel.uids.last().copied().unwrap_or(0);
        let new: Vec<u32> = current.iter().copied().filter(|&u| u > last).collect();
        let read_only = sel.read_only;
        let folder_id = sel.folder;

        if expunge_allowed && !gone.is_empty() {
            session.report_expunged(&gone);
        }
        let mut recent_now = Vec::new();
        if !new.is_empty() && !read_only {
            let (after, upto) = store.claim_recent(mailbox, folder_id).await?;
            recent_now = new.iter().copied().filter(|&u| u > after && u <= upto).collect();
        }
        session.announce_keywords(changed.iter().flat_map(|m| &m.keywords));
        let State::Selected { sel, .. } = &mut session.state else { return Ok(()) };
        let mut out = Vec::new();
        if !new.is_empty() {
            sel.uids.extend(&new);
            sel.recent.extend(recent_now);
            out.extend_from_slice(format!("* {} EXISTS\r\n", sel.uids.len()).as_bytes());
            if !enabled.rev2 {
                out.extend_from_slice(format!("* {} RECENT\r\n", sel.recent.len()).as_bytes());
            }
        }
        for m in changed.iter().filter(|m| m.uid <= last) {
            if sel.told.get(&m.uid) == Some(&m.modseq) {
                continue;
            }
            if let Ok(pos) = sel.uids.binary_search(&m.uid) {
                let recent = !enabled.rev2 && sel.recent.binary_search(&m.uid).is_ok();
                flags_line(&mut out, pos + 1, m, FlagsLine { uid: true, modseq: enabled.condstore, recent });
            }
        }
        if complete {
            sel.modseq = folder.highest_modseq;
            sel.dirty = false;
            let upto = sel.modseq;
            sel.told.retain(|_, modseq| *modseq > upto);
        }
        session.out().extend_from_slice(&out);
        Ok(())
    }
}
