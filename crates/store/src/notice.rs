//! Platform notices: short mails that Postfach itself writes into a mailbox's INBOX (the
//! quota warnings; more kinds can be added as variants of [`Notice`]).
//!
//! A notice is plain UTF-8 text in the mailbox's language, from `postmaster@` the
//! mailbox's own domain, marked `Auto-Submitted: auto-generated` (RFC 3834) so that no
//! client answers it. It is stored like any delivery (`local::deliver_notice`: blob, then
//! commit) and does not count against a full quota's refusal: a warning must arrive.

use postfach_types::{EmailAddress, Language, Space, UnixTime, format_rfc5322, format_size};

/// What Postfach has to tell a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The mailbox's use crossed `level` percent of its quota.
    QuotaWarning { level: u8, space: Space },
}

impl Notice {
    fn subject(&self, language: Language) -> String {
        match (self, language) {
            (Notice::QuotaWarning { level, .. }, Language::De) => {
                format!("Ihr Postfach ist zu {level} % voll")
            }
            (Notice::QuotaWarning { level, .. }, Language::En) => format!("Your mailbox is {level} % full"),
        }
    }

    fn body(&self, address: &EmailAddress, language: Language) -> String {
        match self {
            Notice::QuotaWarning { level, space } => {
                let used = format_size(space.used_bytes);
                let mut lines = Vec::new();
                match language {
                    Language::De => {
                        lines.push(format!("Das Postfach {address} ist zu {level} % gefüllt."));
                        if let Some(quota) = space.quota_bytes {
                            lines.push(format!("Belegt: {used} von {}.", format_size(quota)));
                        }
                        if let Some(quota) = space.quota_messages {
                            lines.push(format!("Nachrichten: {} von höchstens {quota}.", space.used_messages));
                        }
                        lines.push(String::new());
                        lines.push(
                            "Wenn das Postfach voll ist, wird neue Post nicht mehr angenommen. Löschen Sie alte \
                             Nachrichten (und leeren Sie den Papierkorb) oder bitten Sie Ihren Anbieter um mehr \
                             Speicherplatz."
                                .into(),
                        );
                    }
                    Language::En => {
                        lines.push(format!("The mailbox {address} is {level} % full."));
                        if let Some(quota) = space.quota_bytes {
                            lines.push(format!("In use: {used} of {}.", format_size(quota)));
                        }
                        if let Some(quota) = space.quota_messages {
                            lines.push(format!("Messages: {} of at most {quota}.", space.used_messages));
                        }
                        lines.push(String::new());
                        lines.push(
                            "When the mailbox is full, new mail is no longer accepted. Delete old messages (and \
                             empty the trash), or ask your provider for more space."
                                .into(),
                        );
                    }
                }
                lines.join("\r\n") + "\r\n"
            }
        }
    }

    /// The notice as a complete message to `to`, CRLF line endings.
    pub fn render(&self, to: &EmailAddress, language: Language, now: UnixTime) -> Vec<u8> {
        let domain = to.domain();
        let id = format!("{:016x}", rand::random::<u64>());
        let mut m = String::new();
        m.push_str(&format!("From: Postfach <postmaster@{domain}>\r\n"));
        m.push_str(&format!("To: <{to}>\r\n"));
        m.push_str(&format!("Subject: {}\r\n", self.subject(language)));
        m.push_str(&format!("Date: {}\r\n", format_rfc5322(now.0)));
        m.push_str(&format!("Message-ID: <notice.{id}@{domain}>\r\n"));
        m.push_str("Auto-Submitted: auto-generated\r\n");
        m.push_str("MIME-Version: 1.0\r\n");
        m.push_str(&format!("Content-Language: {language}\r\n"));
        m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        m.push_str(&self.body(to, language));
        m.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_warning_in_both_languages() {
        let to = EmailAddress::parse("erika@example.org").expect("address");
        let space = Space { used_bytes: 850 << 20, quota_bytes: Some(1 << 30), ..Space::default() };
        let notice = Notice::QuotaWarning { level: 80, space };
        let de = String::from_utf8(notice.render(&to, Language::De, UnixTime(0))).expect("utf-8");
        assert!(de.contains("Subject: Ihr Postfach ist zu 80 % voll\r\n"), "{de}");
        assert!(de.contains("Belegt: 850 MiB von 1 GiB."), "{de}");
        let en = String::from_utf8(notice.render(&to, Language::En, UnixTime(0))).expect("utf-8");
        assert!(en.contains("Subject: Your mailbox is 80 % full\r\n"), "{en}");
        assert!(en.contains("From: Postfach <postmaster@example.org>\r\n"));
        assert!(!en.contains("\n\n") && en.contains("\r\n\r\n"));
    }
}
