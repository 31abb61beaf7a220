//! The command grammar (RFC 9051 §9 `command`): which arguments each command takes, and
//! the argument forms of SELECT, LIST, APPEND, STORE, COPY and MOVE.

use super::*;

impl Parser<'_> {
    pub(super) fn command(&mut self) -> Res<CommandBody> {
        use CommandBody as C;
        let name = self.word().map_err(|_| "expected a command name")?;
        Ok(match name.as_str() {
            "CAPABILITY" => C::Capability,
            "NOOP" => C::Noop,
            "LOGOUT" => C::Logout,
            "STARTTLS" => C::StartTls,
            "NAMESPACE" => C::Namespace,
            "IDLE" => C::Idle,
            "CHECK" => C::Check,
            "CLOSE" => C::Close,
            "UNSELECT" => C::Unselect,
            "EXPUNGE" => C::Expunge { uid_set: None },
            "ID" => {
                // RFC 2971 §4: id_params_list ::= "(" #(string SPACE nstring) ")" / nil
                self.sp()?;
                if self.keyword("NIL") {
                    C::Id(None)
                } else {
                    C::Id(Some(self.list(true, |p| {
                        let key = AString(p.string()?);
                        p.sp()?;
                        Ok((key, p.nstring()?))
                    })?))
                }
            }
            "AUTHENTICATE" => {
                // RFC 9051 §6.2.2, RFC 4959 §3: an initial response, "=" for an empty one.
                // Taken as sent (one word of visible characters); `postfach_auth::sasl`
                // decodes it, so that an undecodable one is refused by the gate.
                self.sp()?;
                let mechanism = self.atom()?;
                let mut initial_response = None;
                if self.eat(b' ') {
                    let response = self.take_while(|b| b.is_ascii_graphic());
                    if response.is_empty() {
                        return Err("an initial response is expected after the space");
                    }
                    initial_response = Some(Secret::new(response.to_vec()));
                }
                C::Authenticate { mechanism, initial_response }
            }
            "LOGIN" => {
                self.sp()?;
                let username = self.astring()?;
                self.sp()?;
                C::Login { username, password: Secret::new(self.astring()?.0) }
            }
            "ENABLE" => {
                // RFC 5161 §4: "ENABLE" 1*(SP capability)
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.atom()?);
                }
                if caps.is_empty() {
                    return Err("ENABLE needs a capability");
                }
                C::Enable(caps)
            }
            "SELECT" | "EXAMINE" => {
                self.sp()?;
                let select = self.select()?;
                if name == "SELECT" { C::Select(select) } else { C::Examine(select) }
            }
            "CREATE" => {
                // RFC 4466 §2.2 create-params, RFC 6154 §3 `"USE" SP "(" [use-attr *(SP use-attr)] ")"`
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if self.eat(b' ') {
                    self.list(false, |p| {
                        if !p.keyword("USE") {
                            return Err("unknown CREATE parameter");
                        }
                        p.sp()?;
                        special_use.extend(p.list(true, Self::use_attr)?);
                        Ok(())
                    })?;
                }
                C::Create { mailbox, special_use }
            }
            "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" | "GETQUOTAROOT" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                match name.as_str() {
                    "DELETE" => C::Delete(mailbox),
                    "SUBSCRIBE" => C::Subscribe(mailbox),
                    "UNSUBSCRIBE" => C::Unsubscribe(mailbox),
                    _ => C::GetQuotaRoot(mailbox),
                }
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                C::Rename { from, to: self.mailbox()? }
            }
            "LIST" => {
                self.sp()?;
                C::List(self.list_command()?)
            }
            "LSUB" => {
                self.sp()?;
                let reference = self.astring()?;
                self.sp()?;
                C::Lsub { reference, pattern: self.list_mailbox()? }
            }
            "STATUS" => {
                // RFC 9051 §9: status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                C::Status { mailbox, items: self.list(false, Self::status_item)? }
            }
            "APPEND" => {
                // RFC 9051 §9: append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal;
                // RFC 3516 §4.4 allows literal8.
                self.sp()?;
                let (mailbox, flags, date) = self.append_head()?;
                let data = match self.literal(true)? {
                    (Lit::Inline(bytes), binary) => AppendData::Inline { bytes: bytes.to_vec(), binary },
                    (Lit::Spooled(spooled), _) => AppendData::Spooled(spooled),
                };
                C::Append(Append { mailbox, flags, date, data })
            }
            "GETQUOTA" => {
                // RFC 9208 §4.2
                self.sp()?;
                C::GetQuota(self.astring()?)
            }
            "SETQUOTA" => {
                // RFC 9208 §4.4: setquota_list = "(" [setquota_resource *(SP setquota_resource)] ")"
                self.sp()?;
                let root = self.astring()?;
                self.sp()?;
                let limits = self.list(true, |p| {
                    let resource = p.atom()?;
                    p.sp()?;
                    Ok((resource, p.number64()?))
                })?;
                C::SetQuota { root, limits }
            }
            "SEARCH" => C::Search(self.search(false)?),
            "FETCH" => C::Fetch(self.fetch(false)?),
            "STORE" => C::Store(self.store(false)?),
            "COPY" => C::Copy(self.transfer(false)?),
            "MOVE" => C::Move(self.transfer(false)?),
            "UID" => {
                // RFC 9051 §9: uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)
                self.sp()?;
                match self.word()?.as_str() {
                    "SEARCH" => C::Search(self.search(true)?),
                    "FETCH" => C::Fetch(self.fetch(true)?),
                    "STORE" => C::Store(self.store(true)?),
                    "COPY" => C::Copy(self.transfer(true)?),
                    "MOVE" => C::Move(self.transfer(true)?),
                    "EXPUNGE" => {
                        self.sp()?;
                        C::Expunge { uid_set: Some(self.sequence_set()?) }
                    }
                    _ => return Err("unknown UID command"),
                }
            }
            _ => return Err("unknown command"),
        })
    }

    /// RFC 6154 §6: use-attr = "\All" / "\Archive" / "\Drafts" / "\Flagged" / "\Junk" /
    /// "\Sent" / "\Trash" / use-attr-ext.
    pub(super) fn use_attr(&mut self) -> Res<SpecialUse> {
        self.expect(b'\\', "bad special-use attribute")?;
        let atom = self.atom()?;
        Ok(match atom.as_str().to_ascii_uppercase().as_str() {
            "ALL" => SpecialUse::All,
            "ARCHIVE" => SpecialUse::Archive,
            "DRAFTS" => SpecialUse::Drafts,
            "FLAGGED" => SpecialUse::Flagged,
            "JUNK" => SpecialUse::Junk,
            "SENT" => SpecialUse::Sent,
            "TRASH" => SpecialUse::Trash,
            _ => SpecialUse::Other(atom),
        })
    }

    /// RFC 9051 §9: select = "SELECT" SP mailbox [select-params]; RFC 7162 §7:
    /// select-param = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    /// [SP known-uids] [SP seq-match-data] ")".
    pub(super) fn select(&mut self) -> Res<Select> {
        let mut select = Select { mailbox: self.mailbox()?, condstore: false, qresync: None };
        if self.eat(b' ') {
            self.list(false, |p| {
                match p.word()?.as_str() {
                    "CONDSTORE" => select.condstore = true,
                    "QRESYNC" => {
                        p.sp()?;
                        p.expect(b'(', "bad QRESYNC")?;
                        let uid_validity = p.nz_number()?;
                        p.sp()?;
                        let modseq = Some(p.number64()?).filter(|&m| m > 0).ok_or("bad QRESYNC")?;
                        let mut q = QResync { uid_validity, modseq, known_uids: None, seq_match: None };
                        if p.eat(b' ') && p.peek() != Some(b'(') {
                            q.known_uids = Some(p.seq_ranges()?);
                            p.eat(b' ');
                        }
                        if p.eat(b'(') {
                            let known = p.seq_ranges()?;
                            p.sp()?;
                            q.seq_match = Some((known, p.seq_ranges()?));
                            p.expect(b')', "bad QRESYNC")?;
                        }
                        p.expect(b')', "bad QRESYNC")?;
                        select.qresync = Some(q);
                    }
                    _ => return Err("unknown SELECT parameter"),
                }
                Ok(())
            })?;
        }
        Ok(select)
    }

    /// RFC 5258 §6: list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    /// [SP list-return-opts]; RFC 5819 STATUS and RFC 6154 SPECIAL-USE return options.
    pub(super) fn list_command(&mut self) -> Res<List> {
        let mut selection = ListSelection::default();
        if self.peek() == Some(b'(') {
            self.list(true, |p| {
                match p.word()?.as_str() {
                    "SUBSCRIBED" => selection.subscribed = true,
                    "REMOTE" => selection.remote = true,
                    "RECURSIVEMATCH" => selection.recursive_match = true,
                    "SPECIAL-USE" => selection.special_use = true,
                    _ => return Err("unknown LIST selection option"),
                }
                Ok(())
            })?;
            // RFC 5258 §3: RECURSIVEMATCH needs a base option (REMOTE is not one).
            if selection.recursive_match && !selection.subscribed && !selection.special_use {
                return Err("RECURSIVEMATCH needs another selection option");
            }
            self.sp()?;
        }
        let reference = self.astring()?;
        self.sp()?;
        let patterns =
            if self.peek() == Some(b'(') { self.list(false, Self::list_mailbox)? } else { vec![self.list_mailbox()?] };
        let mut returns = ListReturn::default();
        if self.eat(b' ') {
            if !self.keyword("RETURN") {
                return Err("expected RETURN");
            }
            self.sp()?;
            self.list(true, |p| {
                match p.word()?.as_str() {
                    "CHILDREN" => returns.children = true,
                    "SUBSCRIBED" => returns.subscribed = true,
                    "SPECIAL-USE" => returns.special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        returns.status = Some(p.list(false, Self::status_item)?);
                    }
                    _ => return Err("unknown LIST return option"),
                }
                Ok(())
            })?;
        }
        Ok(List { selection, reference, patterns, returns })
    }

    /// APPEND up to the message literal: `mailbox [SP flag-list] [SP date-time] SP`.
    pub(super) fn append_head(&mut self) -> Res<(Mailbox, Vec<Flag>, Option<DateTime<FixedOffset>>)> {
        let mailbox = self.mailbox()?;
        self.sp()?;
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.list(true, Self::flag)?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        Ok((mailbox, flags, date))
    }

    /// RFC 9051 §9: store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags;
    /// RFC 7162 §7 store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer;
    /// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag))).
    pub(super) fn store(&mut self, uid: bool) -> Res<Store> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            self.list(false, |p| {
                if !p.keyword("UNCHANGEDSINCE") {
                    return Err("unknown STORE modifier");
                }
                unchanged_since = Some(p.sp().and_then(|()| p.number64())?);
                Ok(())
            })?;
            self.sp()?;
        }
        let mode = if self.eat(b'+') {
            StoreMode::Add
        } else if self.eat(b'-') {
            StoreMode::Remove
        } else {
            StoreMode::Replace
        };
        let silent = match self.word()?.as_str() {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return Err("expected FLAGS"),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.list(true, Self::flag)?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(Store { uid, set, mode, silent, flags, unchanged_since })
    }

    /// RFC 9051 §9: copy = "COPY" SP sequence-set SP mailbox; move likewise (RFC 6851).
    pub(super) fn transfer(&mut self, uid: bool) -> Res<Transfer> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        Ok(Transfer { uid, set, mailbox: self.mailbox()? })
    }
}
