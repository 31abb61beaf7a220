//! FETCH attributes and body sections (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162
//! CHANGEDSINCE and VANISHED).

use super::*;

impl Parser<'_> {
    /// RFC 9051 §9: fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att
    /// / "(" fetch-att *(SP fetch-att) ")"); RFC 7162 §7 fetch-modifiers.
    pub(super) fn fetch(&mut self, uid: bool) -> Res<Fetch> {
        use FetchAttr as F;
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let attrs = if self.peek() == Some(b'(') {
            self.list(false, Self::fetch_attr)?
        } else if self.keyword("ALL") {
            vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]
        } else if self.keyword("FAST") {
            vec![F::Flags, F::InternalDate, F::Rfc822Size]
        } else if self.keyword("FULL") {
            vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope, F::Body]
        } else {
            vec![self.fetch_attr()?]
        };
        let (mut changed_since, mut vanished) = (None, false);
        if self.eat(b' ') {
            self.list(false, |p| {
                match p.word()?.as_str() {
                    "CHANGEDSINCE" => changed_since = Some(p.sp().and_then(|()| p.number64())?),
                    "VANISHED" => vanished = true,
                    _ => return Err("unknown FETCH modifier"),
                }
                Ok(())
            })?;
        }
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
        if vanished && !(uid && changed_since.is_some()) {
            return Err("VANISHED needs UID FETCH and CHANGEDSINCE");
        }
        Ok(Fetch { uid, set, attrs, changed_since, vanished })
    }

    /// RFC 9051 §9 fetch-att, RFC 3516 §4.2 BINARY, RFC 7162 MODSEQ.
    pub(super) fn fetch_attr(&mut self) -> Res<FetchAttr> {
        use FetchAttr as F;
        let word = self.word().map_err(|_| "bad FETCH item")?;
        Ok(match word.as_str() {
            "FLAGS" => F::Flags,
            "INTERNALDATE" => F::InternalDate,
            "RFC822.SIZE" => F::Rfc822Size,
            "ENVELOPE" => F::Envelope,
            "BODYSTRUCTURE" => F::BodyStructure,
            "UID" => F::Uid,
            "RFC822" => F::Rfc822,
            "RFC822.HEADER" => F::Rfc822Header,
            "RFC822.TEXT" => F::Rfc822Text,
            "MODSEQ" => F::ModSeq,
            "BODY" if self.peek() != Some(b'[') => F::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                F::BodySection { peek: word == "BODY.PEEK", section, partial: self.partial()? }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.section_binary()?;
                F::Binary { peek: word == "BINARY.PEEK", part, partial: self.partial()? }
            }
            "BINARY.SIZE" => F::BinarySize { part: self.section_binary()? },
            _ => return Err("unknown FETCH item"),
        })
    }

    /// RFC 9051 §9: section = "[" [section-spec] "]"; section-spec = section-msgtext /
    /// (section-part ["." section-text]); section-part = nz-number *("." nz-number).
    pub(super) fn section(&mut self) -> Res<Section> {
        self.expect(b'[', "expected [")?;
        let mut section = Section::default();
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            loop {
                section.part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    break;
                }
                if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    section.text = Some(self.section_text(true)?);
                    break;
                }
            }
        } else if self.peek() != Some(b']') {
            section.text = Some(self.section_text(false)?);
        }
        self.expect(b']', "bad section")?;
        Ok(section)
    }

    /// RFC 9051 §9: section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list /
    /// "TEXT"; section-text = section-msgtext / "MIME".
    pub(super) fn section_text(&mut self, mime_ok: bool) -> Res<SectionText> {
        Ok(match self.word()?.as_str() {
            "HEADER" => SectionText::Header,
            "HEADER.FIELDS" => SectionText::HeaderFields(self.sp().and_then(|()| self.list(false, Self::astring))?),
            "HEADER.FIELDS.NOT" => {
                SectionText::HeaderFieldsNot(self.sp().and_then(|()| self.list(false, Self::astring))?)
            }
            "TEXT" => SectionText::Text,
            "MIME" if mime_ok => SectionText::Mime,
            _ => return Err("bad section"),
        })
    }

    /// RFC 3516 §4.2: section-binary = "[" [section-part] "]".
    pub(super) fn section_binary(&mut self) -> Res<Vec<NonZeroU32>> {
        self.expect(b'[', "expected [")?;
        let mut part = Vec::new();
        if self.peek() != Some(b']') {
            loop {
                part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    break;
                }
            }
        }
        self.expect(b']', "bad section")?;
        Ok(part)
    }

    /// RFC 9051 §9: partial = "<" number64 "." nz-number64 ">" (32-bit here).
    pub(super) fn partial(&mut self) -> Res<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let start = self.number()?;
        self.expect(b'.', "bad partial")?;
        let length = self.nz_number()?;
        self.expect(b'>', "bad partial")?;
        Ok(Some(Partial { start, length }))
    }
}
