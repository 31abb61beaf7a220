//! SEARCH programs (RFC 9051 §6.4.4, RFC 4731 ESEARCH return options, RFC 5182
//! SEARCHRES): nesting depth and key count bounded by [`MAX_SEARCH_DEPTH`] and
//! [`MAX_SEARCH_KEYS`].

use super::*;

impl Parser<'_> {
    /// RFC 9051 §9: search = "SEARCH" [search-return-opts] SP search-program;
    /// search-program = ["CHARSET" SP charset SP] search-key *(SP search-key).
    pub(super) fn search(&mut self, uid: bool) -> Res<Search> {
        self.sp()?;
        let mut returns = None;
        if self.keyword("RETURN") {
            // RFC 4731 §3, RFC 5182 §2: MIN MAX ALL COUNT SAVE; "()" means ALL.
            self.sp()?;
            let mut r = SearchReturn::default();
            self.list(true, |p| {
                match p.word()?.as_str() {
                    "MIN" => r.min = true,
                    "MAX" => r.max = true,
                    "ALL" => r.all = true,
                    "COUNT" => r.count = true,
                    "SAVE" => r.save = true,
                    _ => return Err("unknown SEARCH return option"),
                }
                Ok(())
            })?;
            if r == SearchReturn::default() {
                r.all = true;
            }
            returns = Some(r);
            self.sp()?;
        }
        let mut charset = None;
        if self.keyword("CHARSET") {
            self.sp()?;
            charset = Some(self.astring()?);
            self.sp()?;
        }
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        let key = if keys.len() == 1 { keys.remove(0) } else { SearchKey::And(keys) };
        Ok(Search { uid, charset, returns, key })
    }

    /// RFC 9051 §6.4.4 and §9 search-key, RFC 3501's obsolete keys, RFC 7162 MODSEQ,
    /// RFC 5032 OLDER/YOUNGER. Depth and count are bounded (`MAX_SEARCH_*`).
    pub(super) fn search_key(&mut self, depth: usize) -> Res<SearchKey> {
        use SearchKey as K;
        self.keys += 1;
        if depth >= MAX_SEARCH_DEPTH {
            return Err("search program nested too deeply");
        }
        if self.keys > MAX_SEARCH_KEYS {
            return Err("search program too long");
        }
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let mut keys = vec![self.search_key(depth + 1)?];
                while self.eat(b' ') {
                    keys.push(self.search_key(depth + 1)?);
                }
                self.expect(b')', "expected )")?;
                return Ok(K::And(keys));
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return self.sequence_set().map(K::SequenceSet),
            _ => {}
        }
        let string = |p: &mut Self| p.sp().and_then(|()| p.astring());
        let date = |p: &mut Self| p.sp().and_then(|()| p.date());
        let sub = |p: &mut Self| p.sp().and_then(|()| p.search_key(depth + 1)).map(Box::new);
        Ok(match self.word().map_err(|_| "bad search key")?.as_str() {
            "ALL" => K::All,
            "ANSWERED" => K::Answered,
            "BCC" => K::Bcc(string(self)?),
            "BEFORE" => K::Before(date(self)?),
            "BODY" => K::Body(string(self)?),
            "CC" => K::Cc(string(self)?),
            "DELETED" => K::Deleted,
            "DRAFT" => K::Draft,
            "FLAGGED" => K::Flagged,
            "FROM" => K::From(string(self)?),
            "HEADER" => K::Header(string(self)?, string(self)?),
            "KEYWORD" => K::Keyword(self.sp().and_then(|()| self.atom())?),
            "LARGER" => K::Larger(self.sp().and_then(|()| self.number64())?),
            "NEW" => K::New,
            "NOT" => K::Not(sub(self)?),
            "OLD" => K::Old,
            "ON" => K::On(date(self)?),
            "OR" => K::Or(sub(self)?, sub(self)?),
            "RECENT" => K::Recent,
            "SEEN" => K::Seen,
            "SENTBEFORE" => K::SentBefore(date(self)?),
            "SENTON" => K::SentOn(date(self)?),
            "SENTSINCE" => K::SentSince(date(self)?),
            "SINCE" => K::Since(date(self)?),
            "SMALLER" => K::Smaller(self.sp().and_then(|()| self.number64())?),
            "SUBJECT" => K::Subject(string(self)?),
            "TEXT" => K::Text(string(self)?),
            "TO" => K::To(string(self)?),
            "UID" => K::Uid(self.sp().and_then(|()| self.sequence_set())?),
            "UNANSWERED" => K::Unanswered,
            "UNDELETED" => K::Undeleted,
            "UNDRAFT" => K::Undraft,
            "UNFLAGGED" => K::Unflagged,
            "UNKEYWORD" => K::Unkeyword(self.sp().and_then(|()| self.atom())?),
            "UNSEEN" => K::Unseen,
            "OLDER" => K::Older(self.sp().and_then(|()| self.nz_number())?),
            "YOUNGER" => K::Younger(self.sp().and_then(|()| self.nz_number())?),
            "MODSEQ" => {
                // RFC 7162 §7: "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer
                self.sp()?;
                let mut entry = None;
                if self.peek() == Some(b'"') {
                    let name = AString(self.quoted()?);
                    self.sp()?;
                    let kind = match self.word()?.as_str() {
                        "PRIV" => EntryType::Private,
                        "SHARED" => EntryType::Shared,
                        "ALL" => EntryType::All,
                        _ => return Err("bad MODSEQ entry type"),
                    };
                    self.sp()?;
                    entry = Some((name, kind));
                }
                K::ModSeq { entry, modseq: self.number64()? }
            }
            _ => return Err("unknown search key"),
        })
    }
}
