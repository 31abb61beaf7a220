//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), answered with `* SEARCH` (IMAP4rev1) or with
//! `* ESEARCH` (RFC 4731: when RETURN options are given, and always after ENABLE
//! IMAP4rev2); `RETURN (SAVE)` keeps the result for `$` (RFC 5182).

use postfach_message::Message as Parsed;
use postfach_types::UnixTime;

use super::{Failure, Outcome, Session, bad, no};
use crate::protocol::{Search, SearchReturn, Tag};
use crate::search::{self, Candidate, Context, Texts};
use crate::seqset;

impl Session {
    pub(crate) async fn search(&mut self, tag: &Tag, search: Search) -> Outcome {
        if let Some(charset) = &search.charset {
            if self.enabled.utf8 {
                // RFC 6855 §3: no CHARSET after ENABLE UTF8=ACCEPT.
                return bad("CHARSET is not allowed after ENABLE UTF8=ACCEPT");
            }
            let cs = String::from_utf8_lossy(charset.as_bytes()).to_ascii_uppercase();
            if cs != "UTF-8" && cs != "US-ASCII" {
                return no(Some("BADCHARSET (UTF-8 US-ASCII)"), "only UTF-8 and US-ASCII searches are supported");
            }
        }
        let store = self.server.store.clone();
        let blobs = self.server.blobs.clone();
        let rev2 = self.enabled.rev2;
        let (mailbox, sel) = self.selected()?;
        let (folder, known, recent, saved) = (sel.folder, sel.uids.clone(), sel.recent.clone(), sel.saved.clone());
        if search::content_keys(&search.key) > search::MAX_CONTENT_KEYS {
            let limit = search::MAX_CONTENT_KEYS;
            return bad(&format!("a SEARCH may look into the messages with at most {limit} keys; split it up"));
        }
        let messages = store.messages(mailbox, folder).await?;
        let need_content = search::needs_content(&search.key);
        let last_seq = u32::try_from(known.len()).unwrap_or(u32::MAX);
        let sets = search::Sets::of(&search.key, last_seq, known.last().copied().unwrap_or(0));
        let ctx = Context { sets: &sets, saved: &saved, now: UnixTime::now().0 };
        // (sequence number, UID, modseq) of every match.
        let mut hits: Vec<(u32, u32, u64)> = Vec::new();
        for (i, &uid) in known.iter().enumerate() {
            let Ok(pos) = messages.binary_search_by_key(&uid, |m| m.uid) else { continue };
            let meta = &messages[pos];
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let is_recent = recent.binary_search(&uid).is_ok();
            let matched = if need_content {
                let bytes = blobs.get(&meta.blob).await.map_err(Failure::from)?;
                let parsed = Parsed::parse(&bytes);
                let candidate =
                    Candidate { seq, meta, parsed: Some(&parsed), recent: is_recent, texts: Texts::default() };
                search::matches(&search.key, &candidate, ctx)
            } else {
                let candidate = Candidate { seq, meta, parsed: None, recent: is_recent, texts: Texts::default() };
                search::matches(&search.key, &candidate, ctx)
            };
            if matched {
                hits.push((seq, uid, meta.modseq));
            }
        }
        let modseq = search::has_modseq(&search.key);
        if modseq {
            self.enabled.condstore = true;
        }
        let returns = match search.returns {
            Some(r) => Some(r),
            // RFC 9051 §6.4.4: after ENABLE IMAP4rev2 every SEARCH is answered with ESEARCH.
            None if rev2 => Some(SearchReturn { all: true, ..SearchReturn::default() }),
            None => None,
        };
        let number = |h: &(u32, u32, u64)| if search.uid { h.1 } else { h.0 };
        let Some(r) = returns else {
            let mut line = String::from("* SEARCH");
            for h in &hits {
                line.push(' ');
                line.push_str(&number(h).to_string());
            }
            if modseq && !hits.is_empty() {
                // RFC 7162 §3.1.5
                line.push_str(&format!(" (MODSEQ {})", hits.iter().map(|h| h.2).max().unwrap_or(0)));
            }
            self.line(&line);
            return Ok(if search.uid { "UID SEARCH done".into() } else { "SEARCH done".into() });
        };
        let (min, max) = (hits.first(), hits.last());
        if r.save {
            // RFC 5182 §2.4: what `$` holds depends on the other options.
            let picked: Vec<u32> = match (r.min, r.max, r.all || r.count) {
                (true, false, false) => min.map(|h| h.1).into_iter().collect(),
                (false, true, false) => max.map(|h| h.1).into_iter().collect(),
                (true, true, false) => min.iter().chain(max.iter()).map(|h| h.1).collect(),
                _ => hits.iter().map(|h| h.1).collect(),
            };
            let (_, sel) = self.selected()?;
            sel.saved = picked;
            sel.saved.sort_unstable();
            sel.saved.dedup();
        }
        let only_save = r.save && !r.min && !r.max && !r.all && !r.count;
        if !only_save {
            // RFC 4731 §3.1
            let mut line = format!("* ESEARCH (TAG \"{}\")", tag.as_str());
            if search.uid {
                line.push_str(" UID");
            }
            if r.min
                && let Some(h) = min
            {
                line.push_str(&format!(" MIN {}", number(h)));
            }
            if r.max
                && let Some(h) = max
            {
                line.push_str(&format!(" MAX {}", number(h)));
            }
            if r.count {
                line.push_str(&format!(" COUNT {}", hits.len()));
            }
            if r.all && !hits.is_empty() {
                line.push_str(&format!(" ALL {}", seqset::compact(hits.iter().map(number))));
            }
            if modseq && !hits.is_empty() {
                // RFC 4731 §3.2: the modseq of the returned messages.
                let returned: Vec<&(u32, u32, u64)> = if r.all || r.count {
                    hits.iter().collect()
                } else {
                    [r.min.then_some(min).flatten(), r.max.then_some(max).flatten()].into_iter().flatten().collect()
                };
                line.push_str(&format!(" MODSEQ {}", returned.iter().map(|h| h.2).max().unwrap_or(0)));
            }
            self.line(&line);
        }
        Ok(if search.uid { "UID SEARCH done".into() } else { "SEARCH done".into() })
    }
}
