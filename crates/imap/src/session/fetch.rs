//! FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE and
//! VANISHED).
//!
//! Metadata comes from the store for the UIDs asked for; a message another session
//! expunged that this session has not been told about yet is served from what the store
//! kept of it (RFC 2180 §4.1.1), its bytes being readable for the grace period; only when
//! they are gone is the answer `NO [EXPUNGEISSUED]` (RFC 5530). Message files are read a
//! batch ahead on the blocking pool while the previous batch is written out; large
//! messages reserve their size in the shared memory budget first.

use std::borrow::Cow;
use std::io::Write as _;

use futures_util::StreamExt;
use postfach_blob::{BlobError, BlobId};
use postfach_message::Message as Parsed;
use postfach_store::messages::{FlagChange, Flags, Message};
use postfach_types::{FolderId, MailboxId};

use super::{Failure, Outcome, Session, bad, no};
use crate::protocol::{Fetch, FetchAttr, Partial, Section, SectionText};
use crate::render::{self, BinaryError};
use crate::{seqset, wire};

/// Message files read per hand-off to the blocking pool (each hand-off wakes a thread,
/// which costs as much as reading a few small files from the page cache).
const READ_BATCH: usize = 64;
/// Bytes read per batch (a larger message is a batch of its own).
const BATCH_BYTES: u64 = 2 * 1024 * 1024;
/// Messages above this size reserve their size in the memory budget while they are sent.
const RESERVE_ABOVE: u64 = 1024 * 1024;

/// Appends `FLAGS (…)`; `recent` adds `\Recent` (IMAP4rev1 sessions only).
pub(crate) fn flags_item(out: &mut Vec<u8>, m: &Message, recent: bool) {
    out.extend_from_slice(b"FLAGS (");
    let recent = recent.then_some("\\Recent");
    let system = m.flags.names().chain(recent);
    let names = system.map(|n| -> &str { n }).chain(m.keywords.iter().map(String::as_str));
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b')');
}

/// How a flags-only FETCH response is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagsLine {
    /// With the UID: unsolicited responses (RFC 9051 §7.5.2), UID STORE, QRESYNC.
    pub uid: bool,
    /// With MODSEQ: once CONDSTORE is on (RFC 7162 §3.1.4, §3.2).
    pub modseq: bool,
    /// `\Recent` belongs to this session (IMAP4rev1 only).
    pub recent: bool,
}

/// A whole untagged FETCH that tells a message's flags (after STORE, on a change another
/// session made, for QRESYNC).
pub(crate) fn flags_line(out: &mut Vec<u8>, seq: usize, m: &Message, how: FlagsLine) {
    let _ = write!(out, "* {seq} FETCH (");
    if how.uid {
        let _ = write!(out, "UID {} ", m.uid);
    }
    flags_item(out, m, how.recent);
    let condstore = how.modseq;
    if condstore {
        let _ = write!(out, " MODSEQ ({})", m.modseq);
    }
    out.extend_from_slice(b")\r\n");
}

/// One message to answer for.
struct Wanted {
    seq: usize,
    meta: Message,
    /// Known only from the expunged record (another session removed it).
    expunged: bool,
}

/// Whether a BINARY item asks for a part in a transfer encoding we cannot undo (checked
/// before anything of the message is sent: RFC 3516 §4.3 fails the whole command).
fn binary_impossible(msg: &Parsed<'_>, attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|attr| match attr {
        FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part } => {
            let path: Vec<u32> = part.iter().map(|n| n.get()).collect();
            matches!(render::binary(msg, &path), Err(BinaryError::Unknown(_)))
        }
        _ => false,
    })
}

/// Items that send message content; a FETCH may ask for this many at most.
const MAX_CONTENT_ITEMS: usize = 32;

fn needs_bytes(attr: &FetchAttr) -> bool {
    !matches!(
        attr,
        FetchAttr::Flags | FetchAttr::InternalDate | FetchAttr::Rfc822Size | FetchAttr::Uid | FetchAttr::ModSeq
    )
}

fn sets_seen(attr: &FetchAttr) -> bool {
    matches!(
        attr,
        FetchAttr::BodySection { peek: false, .. }
            | FetchAttr::Binary { peek: false, .. }
            | FetchAttr::Rfc822
            | FetchAttr::Rfc822Text
    )
}

impl Session {
    pub(crate) async fn fetch(&mut self, fetch: Fetch) -> Outcome {
        let store = self.server.store.clone();
        let enabled = self.enabled;
        let (mailbox, sel) = self.selected()?;
        let Ok(positions) = seqset::resolve(&fetch.set, fetch.uid, &sel.uids, &sel.saved) else {
            return bad("the message sequence numbers are not in this folder");
        };
        let (folder, read_only) = (sel.folder, sel.read_only);
        let pairs: Vec<(usize, u32)> = positions.iter().map(|&i| (i + 1, sel.uids[i])).collect();
        let recent = sel.recent.clone();
        // The same item twice is answered once; a response holds at most a few contents.
        let mut attrs: Vec<FetchAttr> = Vec::with_capacity(fetch.attrs.len());
        for attr in fetch.attrs {
            if !attrs.contains(&attr) {
                attrs.push(attr);
            }
        }
        if attrs.iter().filter(|a| needs_bytes(a)).count() > MAX_CONTENT_ITEMS {
            return bad(&format!("a FETCH may ask for at most {MAX_CONTENT_ITEMS} message sections at once"));
        }
        if fetch.uid && !attrs.contains(&FetchAttr::Uid) {
            // RFC 9051 §6.4.9: UID FETCH always reports the UID.
            attrs.insert(0, FetchAttr::Uid);
        }
        let mut condstore = enabled.condstore;
        if fetch.changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq) {
            condstore = true;
            if !attrs.contains(&FetchAttr::ModSeq) {
                attrs.push(FetchAttr::ModSeq);
            }
        }
        self.enabled.condstore = condstore;
        if fetch.vanished {
            if !enabled.qresync {
                return bad("VANISHED needs ENABLE QRESYNC first");
            }
            // RFC 7162 §3.2.6: expunged UIDs in the set, changed after the modseq.
            let since = fetch.changed_since.unwrap_or(0);
            let mut gone = store.expunged_since(mailbox, folder, since).await?;
            if let crate::protocol::SequenceSet::Ranges(ranges) = &fetch.set {
                let set = seqset::Membership::new(ranges, u32::MAX);
                gone.retain(|&u| set.contains(u));
            }
            if !gone.is_empty() {
                self.line(&format!("* VANISHED (EARLIER) {}", seqset::compact(gone)));
            }
        }
        if pairs.is_empty() {
            return Ok(if fetch.uid { "UID FETCH done".into() } else { "FETCH done".into() });
        }
        let mut wanted = self.load(mailbox, folder, &pairs).await?;

        // Fetching a body without PEEK sets \Seen (RFC 9051 §6.4.5).
        let mut seen_now = Vec::new();
        if !read_only && attrs.iter().any(sets_seen) {
            let unseen: Vec<u32> = wanted
                .iter()
                .filter(|w| !w.expunged && !w.meta.flags.contains(Flags::SEEN))
                .map(|w| w.meta.uid)
                .collect();
            if !unseen.is_empty() {
                let outcome =
                    store.store_flags(mailbox, folder, &unseen, FlagChange::Add, Flags::SEEN, &[], None).await?;
                // `wanted` is in UID order (sequence order).
                for changed in outcome.changed {
                    if let Ok(i) = wanted.binary_search_by_key(&changed.uid, |w| w.meta.uid) {
                        seen_now.push(changed.uid);
                        wanted[i].meta = changed;
                    }
                }
            }
        }
        seen_now.sort_unstable();
        if !seen_now.is_empty() {
            let (_, sel) = self.selected()?;
            for w in wanted.iter().filter(|w| seen_now.binary_search(&w.meta.uid).is_ok()) {
                sel.told.insert(w.meta.uid, w.meta.modseq);
            }
        }
        if let Some(since) = fetch.changed_since {
            wanted.retain(|w| w.meta.modseq > since);
        }

        let bytes_needed = attrs.iter().any(needs_bytes);
        let mut skipped_expunged = false;
        let mut unknown_cte = false;
        let mut batches: Vec<Vec<(BlobId, u64)>> = Vec::new();
        if bytes_needed {
            let mut current: Vec<(BlobId, u64)> = Vec::new();
            let mut bytes = 0;
            for w in &wanted {
                if !current.is_empty() && (current.len() >= READ_BATCH || bytes + w.meta.size > BATCH_BYTES) {
                    batches.push(std::mem::take(&mut current));
                    bytes = 0;
                }
                bytes += w.meta.size;
                current.push((w.meta.blob.clone(), w.meta.size));
            }
            if !current.is_empty() {
                batches.push(current);
            }
        }
        let blobs = self.server.blobs.clone();
        let budget = self.server.budget.clone();
        let mut bodies = futures_util::stream::iter(batches.into_iter().map(move |batch| {
            let (blobs, budget) = (blobs.clone(), budget.clone());
            async move {
                let total: u64 = batch.iter().map(|(_, size)| size).sum();
                let reservation = if total > RESERVE_ABOVE { Some(budget.reserve(total).await) } else { None };
                (blobs.get_batch(batch).await, reservation)
            }
        }))
        .buffered(2)
        .flat_map(|(read, reservation): (Vec<Result<Vec<u8>, BlobError>>, _)| {
            // Each message holds the batch's reservation until it has been written.
            let reservation = reservation.map(std::sync::Arc::new);
            futures_util::stream::iter(read.into_iter().map(move |r| (r, reservation.clone())))
        });

        for w in &wanted {
            let mut _held = None;
            let raw = if bytes_needed {
                match bodies.next().await {
                    Some((Ok(bytes), reservation)) => {
                        _held = reservation;
                        Some(bytes)
                    }
                    Some((Err(e), _)) if w.expunged => {
                        tracing::debug!(error = %e, uid = w.meta.uid, "expunged message already swept");
                        skipped_expunged = true;
                        continue;
                    }
                    Some((Err(e), _)) => return Err(e.into()),
                    None => None,
                }
            } else {
                None
            };
            let is_recent = !enabled.rev2 && recent.binary_search(&w.meta.uid).is_ok();
            let raw = raw.unwrap_or_default();
            let mut parsed: Option<Parsed<'_>> = None;
            if attrs.iter().any(|a| matches!(a, FetchAttr::Binary { .. } | FetchAttr::BinarySize { .. }))
                && binary_impossible(parsed.get_or_insert_with(|| Parsed::parse(&raw)), &attrs)
            {
                unknown_cte = true;
                continue;
            }
            let _ = write!(self.out(), "* {} FETCH (", w.seq);
            for (i, attr) in attrs.iter().enumerate() {
                let out = self.out();
                if i > 0 {
                    out.push(b' ');
                }
                render_item(out, attr, &w.meta, &raw, &mut parsed, is_recent, enabled.rev2);
                // Sent item by item: a response asking for several large sections is never
                // held whole.
                self.maybe_flush().await?;
            }
            let out = self.out();
            if seen_now.binary_search(&w.meta.uid).is_ok() && !attrs.contains(&FetchAttr::Flags) {
                out.push(b' ');
                flags_item(out, &w.meta, is_recent);
                if condstore && !attrs.contains(&FetchAttr::ModSeq) {
                    let _ = write!(out, " MODSEQ ({})", w.meta.modseq);
                }
            }
            out.extend_from_slice(b")\r\n");
            self.maybe_flush().await?;
        }
        drop(bodies);
        if unknown_cte {
            // RFC 3516 §4.3
            return no(Some("UNKNOWN-CTE"), "a part is in a transfer encoding the server cannot decode");
        }
        if skipped_expunged {
            return no(
                Some("EXPUNGEISSUED"),
                "some of the messages were deleted by another program; the folder's list will be updated",
            );
        }
        Ok(if fetch.uid { "UID FETCH done".into() } else { "FETCH done".into() })
    }

    /// The metadata of the messages at (sequence number, UID), in that order; messages
    /// expunged by another session come from the expunged record.
    async fn load(&self, mailbox: MailboxId, folder: FolderId, pairs: &[(usize, u32)]) -> Result<Vec<Wanted>, Failure> {
        let store = &self.server.store;
        let lo = pairs.first().map_or(0, |p| p.1);
        let hi = pairs.last().map_or(0, |p| p.1);
        let mut found = store.messages_between(mailbox, folder, lo, hi).await?.into_iter().peekable();
        let mut out = Vec::with_capacity(pairs.len());
        let mut missing = Vec::new();
        // Both are in ascending UID order.
        for &(seq, uid) in pairs {
            while found.next_if(|m| m.uid < uid).is_some() {}
            match found.next_if(|m| m.uid == uid) {
                Some(meta) => out.push(Wanted { seq, meta, expunged: false }),
                None => missing.push((seq, uid)),
            }
        }
        if !missing.is_empty() {
            let uids: Vec<u32> = missing.iter().map(|m| m.1).collect();
            let gone = store.expunged_messages(mailbox, folder, &uids).await?;
            for (seq, uid) in missing {
                if let Some(meta) = gone.iter().find(|m| m.uid == uid) {
                    out.push(Wanted { seq, meta: meta.clone(), expunged: true });
                }
            }
            out.sort_by_key(|w| w.seq);
        }
        Ok(out)
    }
}

/// The section spec as it is echoed: `1.2.HEADER.FIELDS (From To)`.
fn section_spec(section: &Section) -> String {
    let mut spec = section.part.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(".");
    let text = match &section.text {
        None => return spec,
        Some(SectionText::Header) => "HEADER".to_string(),
        Some(SectionText::Text) => "TEXT".to_string(),
        Some(SectionText::Mime) => "MIME".to_string(),
        Some(SectionText::HeaderFields(names) | SectionText::HeaderFieldsNot(names)) => {
            let not = matches!(section.text, Some(SectionText::HeaderFieldsNot(_)));
            let mut list = Vec::new();
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    list.push(b' ');
                }
                wire::astring(&mut list, &String::from_utf8_lossy(n.as_bytes()));
            }
            format!("HEADER.FIELDS{} ({})", if not { ".NOT" } else { "" }, String::from_utf8_lossy(&list))
        }
    };
    if !spec.is_empty() {
        spec.push('.');
    }
    spec.push_str(&text);
    spec
}

/// The slice a `<start.length>` partial asks for, and its origin (RFC 9051 §6.4.5).
fn partial<'a>(bytes: &'a [u8], partial: Option<&Partial>) -> (&'a [u8], Option<u32>) {
    match partial {
        Some(p) => {
            let start = (p.start as usize).min(bytes.len());
            let end = start.saturating_add(p.length.get() as usize).min(bytes.len());
            (&bytes[start..end], Some(p.start))
        }
        None => (bytes, None),
    }
}

/// Appends one FETCH item of a message. `parsed` is the parse of `raw`, made the first
/// time an item needs it.
fn render_item<'a>(
    out: &mut Vec<u8>,
    attr: &FetchAttr,
    meta: &Message,
    raw: &'a [u8],
    parsed: &mut Option<Parsed<'a>>,
    recent: bool,
    rev2: bool,
) {
    let mut parse = || Parsed::parse(raw);
    match attr {
        FetchAttr::Uid => _ = write!(out, "UID {}", meta.uid),
        FetchAttr::Flags => flags_item(out, meta, recent),
        FetchAttr::InternalDate => {
            out.extend_from_slice(format!("INTERNALDATE {}", wire::date_time(meta.internal_date)).as_bytes())
        }
        FetchAttr::Rfc822Size => _ = write!(out, "RFC822.SIZE {}", meta.size),
        FetchAttr::ModSeq => _ = write!(out, "MODSEQ ({})", meta.modseq),
        FetchAttr::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            wire::literal(out, raw);
        }
        FetchAttr::Rfc822Header => {
            let m = parsed.get_or_insert_with(&mut parse);
            out.extend_from_slice(b"RFC822.HEADER ");
            wire::literal(out, m.header_bytes());
        }
        FetchAttr::Rfc822Text => {
            let m = parsed.get_or_insert_with(&mut parse);
            out.extend_from_slice(b"RFC822.TEXT ");
            wire::literal(out, m.text_bytes());
        }
        FetchAttr::Envelope => {
            let m = parsed.get_or_insert_with(&mut parse);
            out.extend_from_slice(b"ENVELOPE ");
            render::envelope(out, m, 0);
        }
        FetchAttr::Body | FetchAttr::BodyStructure => {
            let extended = matches!(attr, FetchAttr::BodyStructure);
            let m = parsed.get_or_insert_with(&mut parse);
            out.extend_from_slice(if extended { b"BODYSTRUCTURE " } else { b"BODY " });
            render::body_structure(out, m, 0, extended, rev2);
        }
        FetchAttr::BodySection { section, partial: part, .. } => {
            let bytes: Option<Cow<'_, [u8]>> = if section.part.is_empty() && section.text.is_none() {
                Some(Cow::Borrowed(raw))
            } else {
                let m = parsed.get_or_insert_with(&mut parse);
                render::section(m, section).map(|c| Cow::Owned(c.into_owned()))
            };
            out.extend_from_slice(format!("BODY[{}]", section_spec(section)).as_bytes());
            match bytes {
                Some(bytes) => {
                    let (slice, origin) = partial(&bytes, part.as_ref());
                    if let Some(origin) = origin {
                        out.extend_from_slice(format!("<{origin}>").as_bytes());
                    }
                    out.push(b' ');
                    wire::literal(out, slice);
                }
                // RFC 9051 §4.5: a part that does not exist is NIL.
                None => out.extend_from_slice(b" NIL"),
            }
        }
        FetchAttr::Binary { part, partial: p, .. } => {
            let m = parsed.get_or_insert_with(&mut parse);
            let path: Vec<u32> = part.iter().map(|n| n.get()).collect();
            let spec = path.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
            out.extend_from_slice(format!("BINARY[{spec}]").as_bytes());
            match render::binary(m, &path) {
                Ok(bytes) => {
                    let (slice, origin) = partial(&bytes, p.as_ref());
                    if let Some(origin) = origin {
                        out.extend_from_slice(format!("<{origin}>").as_bytes());
                    }
                    out.push(b' ');
                    // RFC 3516 §4.2: literal8 when the data holds NUL.
                    if slice.contains(&0) {
                        out.extend_from_slice(format!("~{{{}}}\r\n", slice.len()).as_bytes());
                        out.extend_from_slice(slice);
                    } else {
                        wire::literal(out, slice);
                    }
                }
                Err(BinaryError::NoSuchPart) => out.extend_from_slice(b" NIL"),
                // Checked before the message was started (`binary_impossible`).
                Err(BinaryError::Unknown(_)) => out.extend_from_slice(b" NIL"),
            }
        }
        FetchAttr::BinarySize { part } => {
            let m = parsed.get_or_insert_with(&mut parse);
            let path: Vec<u32> = part.iter().map(|n| n.get()).collect();
            let spec = path.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
            match render::binary(m, &path) {
                Ok(bytes) => out.extend_from_slice(format!("BINARY.SIZE[{spec}] {}", bytes.len()).as_bytes()),
                Err(BinaryError::NoSuchPart) => out.extend_from_slice(format!("BINARY.SIZE[{spec}] 0").as_bytes()),
                Err(BinaryError::Unknown(_)) => out.extend_from_slice(format!("BINARY.SIZE[{spec}] 0").as_bytes()),
            }
        }
    }
}
