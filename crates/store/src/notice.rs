//! Platform notices: short mails that Postfach itself writes into a mailbox's INBOX (the
//! quota warnings and the warning mails of [`crate::warnings`]; more kinds are variants of
//! [`Notice`] and [`WarningKind`]).
//!
//! A notice is in the mailbox's language, from `postmaster@` the mailbox's own domain (or
//! the domain it is about); a warning has a plain-text and an HTML part
//! (`multipart/alternative`, RFC 2046 §5.1.4; the HTML escapes everything it shows), a
//! quota warning only the short text. Each is marked `Auto-Submitted:
//! auto-generated` (RFC 3834) so that no client answers it. It is stored like any
//! delivery (`local::deliver_notice`: blob, then commit) and does not count against a
//! full quota's refusal: a warning must arrive.

use postfach_types::{AccessMode, EmailAddress, Language, Service, Space, UnixTime, format_rfc5322, format_size};

use crate::warnings::{Untold, WarningFacts, WarningKind};

/// What Postfach has to tell a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The mailbox's use crossed `level` percent of its quota.
    QuotaWarning { level: u8, space: Space },
    /// A warning mail ([`crate::warnings`]).
    Warning(Warning),
}

/// A warning: what happened, to whom, and what the mail must summarise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    /// The mailbox address or domain name it is about.
    pub about: String,
    pub at: UnixTime,
    pub facts: WarningFacts,
    /// Earlier events the last mail did not tell.
    pub untold: Option<Untold>,
    /// The mailbox's access mode and sending switch (what a device should use).
    pub access: AccessMode,
    pub submission: bool,
    /// The panel page where the owner acts (change the password, see the DNS records).
    pub link: Option<String>,
}

/// One block of a notice's body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Para(String),
    Item(String),
    /// A sentence ending in a link.
    Link(String, String),
}

impl Notice {
    fn subject(&self, language: Language) -> String {
        match (self, language) {
            (Notice::QuotaWarning { level, .. }, Language::De) => {
                format!("Ihr Postfach ist zu {level} % voll")
            }
            (Notice::QuotaWarning { level, .. }, Language::En) => format!("Your mailbox is {level} % full"),
            (Notice::Warning(w), language) => w.subject(language),
        }
    }

    fn blocks(&self, address: &EmailAddress, language: Language) -> Vec<Block> {
        match self {
            Notice::QuotaWarning { level, space } => quota_blocks(address, *level, space, language),
            Notice::Warning(w) => w.blocks(language),
        }
    }

    /// The notice as a complete message to `to`, from `postmaster@` its domain, CRLF
    /// line endings.
    pub fn render(&self, to: &EmailAddress, language: Language, now: UnixTime) -> Vec<u8> {
        self.render_from(to.domain().as_str(), to, language, now)
    }

    /// The notice as a complete message to `to`, from `postmaster@from_domain`.
    pub fn render_from(&self, from_domain: &str, to: &EmailAddress, language: Language, now: UnixTime) -> Vec<u8> {
        let id = format!("{:016x}", rand::random::<u64>());
        let boundary = format!("=_postfach_{:016x}", rand::random::<u64>());
        let blocks = self.blocks(to, language);
        let subject = self.subject(language);
        let mut m = String::new();
        m.push_str(&format!("From: Postfach <postmaster@{from_domain}>\r\n"));
        m.push_str(&format!("To: <{to}>\r\n"));
        m.push_str(&format!("Subject: {}\r\n", encode_header(&subject)));
        m.push_str(&format!("Date: {}\r\n", format_rfc5322(now.0)));
        m.push_str(&format!("Message-ID: <notice.{id}@{from_domain}>\r\n"));
        m.push_str("Auto-Submitted: auto-generated\r\n");
        m.push_str("MIME-Version: 1.0\r\n");
        m.push_str(&format!("Content-Language: {language}\r\n"));
        if let Notice::QuotaWarning { .. } = self {
            // Kept short: it is written into a mailbox that is nearly full.
            m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
            m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
            for block in &blocks {
                if let Block::Para(line) = block {
                    m.push_str(&format!("{line}\r\n"));
                }
            }
            return m.into_bytes();
        }
        m.push_str(&format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"));
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        m.push_str(&plain(&blocks));
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str("Content-Type: text/html; charset=utf-8\r\n");
        m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        m.push_str(&html(&subject, &blocks, language));
        m.push_str(&format!("--{boundary}--\r\n"));
        m.into_bytes()
    }
}

/// A header value: as it is when ASCII, else one RFC 2047 base64 encoded-word per
/// chunk of whole characters.
fn encode_header(value: &str) -> String {
    use base64::Engine as _;
    if value.is_ascii() {
        return value.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(w)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn plain(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Para(text) => out.push_str(&format!("{text}\r\n\r\n")),
            Block::Item(text) => out.push_str(&format!("  - {text}\r\n")),
            Block::Link(text, url) => out.push_str(&format!("{text} {url}\r\n\r\n")),
        }
    }
    out
}

fn html(subject: &str, blocks: &[Block], language: Language) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\r\n<html lang=\"{language}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\r\n",
        escape(subject)
    );
    let mut in_list = false;
    for block in blocks {
        let item = matches!(block, Block::Item(_));
        if item && !in_list {
            out.push_str("<ul>\r\n");
        } else if !item && in_list {
            out.push_str("</ul>\r\n");
        }
        in_list = item;
        match block {
            Block::Para(text) => out.push_str(&format!("<p>{}</p>\r\n", escape(text))),
            Block::Item(text) => out.push_str(&format!("<li>{}</li>\r\n", escape(text))),
            Block::Link(text, url) => {
                out.push_str(&format!("<p>{} <a href=\"{}\">{}</a></p>\r\n", escape(text), escape(url), escape(url)))
            }
        }
    }
    if in_list {
        out.push_str("</ul>\r\n");
    }
    out.push_str("</body></html>\r\n");
    out
}

/// Text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn quota_blocks(address: &EmailAddress, level: u8, space: &Space, language: Language) -> Vec<Block> {
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
                "Wenn das Postfach voll ist, wird neue Post nicht mehr angenommen. Löschen Sie alte Nachrichten (und \
                 leeren Sie den Papierkorb) oder bitten Sie Ihren Anbieter um mehr Speicherplatz."
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
                "When the mailbox is full, new mail is no longer accepted. Delete old messages (and empty the \
                 trash), or ask your provider for more space."
                    .into(),
            );
        }
    }
    lines.into_iter().map(Block::Para).collect()
}

fn service_name(service: Option<Service>) -> &'static str {
    match service {
        Some(Service::Imap) => "IMAP",
        Some(Service::Pop3) => "POP3",
        Some(Service::Submission) => "SMTP",
        Some(Service::Panel) => "Panel",
        Some(Service::Api) => "API",
        Some(Service::ManageSieve) => "ManageSieve",
        None => "?",
    }
}

impl Warning {
    fn subject(&self, language: Language) -> String {
        let a = &self.about;
        let de = language == Language::De;
        match self.kind {
            WarningKind::Unencrypted if de => format!("Unverschlüsselter Anmeldeversuch bei {a}"),
            WarningKind::Unencrypted => format!("Unencrypted login attempt on {a}"),
            WarningKind::WrongProtocol if de => format!("Ein Gerät nutzt für {a} ein nicht erlaubtes Protokoll"),
            WarningKind::WrongProtocol => format!("A device uses a protocol {a} does not allow"),
            WarningKind::Exposed if de => format!("Das Passwort von {a} ist ungeschützt übertragen worden"),
            WarningKind::Exposed => format!("The password of {a} was sent unprotected"),
            WarningKind::Locked if de => format!("Anmeldungen bei {a} gesperrt: zu viele falsche Passwörter"),
            WarningKind::Locked => format!("Logins to {a} locked: too many wrong passwords"),
            WarningKind::SendingLimit if de => format!("{a} hat sein Sendelimit erreicht"),
            WarningKind::SendingLimit => format!("{a} reached its sending limit"),
            WarningKind::DomainRecords if de => format!("Die DNS-Einträge von {a} sind nicht mehr in Ordnung"),
            WarningKind::DomainRecords => format!("The DNS records of {a} broke"),
            WarningKind::NewDevice if de => format!("Neue Anmeldung bei {a} von einem neuen Gerät"),
            WarningKind::NewDevice => format!("New login to {a} from a new device"),
            WarningKind::UnusedAppPassword if de => format!("Unbenutzte App-Passwörter bei {a}"),
            WarningKind::UnusedAppPassword => format!("Unused app passwords on {a}"),
        }
    }

    fn blocks(&self, language: Language) -> Vec<Block> {
        let de = language == Language::De;
        let a = &self.about;
        let when = format_rfc5322(self.at.0);
        let client = self.facts.client.map_or_else(|| "?".to_string(), |ip| ip.to_string());
        let service = service_name(self.facts.service);
        let mut blocks = Vec::new();
        let para = |b: &mut Vec<Block>, de_text: String, en_text: String| {
            b.push(Block::Para(if de { de_text } else { en_text }))
        };
        let change_password = |b: &mut Vec<Block>| {
            if let Some(link) = &self.link {
                b.push(Block::Link(
                    if de { "Passwort im Kundenbereich ändern:" } else { "Change the password in the panel:" }.into(),
                    link.clone(),
                ));
            }
        };
        match self.kind {
            WarningKind::Unencrypted => {
                para(
                    &mut blocks,
                    format!(
                        "Am {when} hat sich ein Gerät von der Adresse {client} über {service} ohne Verschlüsselung (ohne TLS) bei {a} anzumelden versucht."
                    ),
                    format!(
                        "On {when} a device at the address {client} tried to log in to {a} over {service} without encryption (no TLS)."
                    ),
                );
                para(
                    &mut blocks,
                    "Ein so eingerichtetes Gerät schickt das Passwort lesbar durch das Netz: jeder auf dem Weg (WLAN, Netzbetreiber) kann es mitlesen. Ihr Passwort ist deshalb möglicherweise anderen bekannt.".into(),
                    "A device set up like this sends the password readable through the network: anyone on the way (Wi-Fi, network operators) can read it. Your password may therefore be known to others.".into(),
                );
                para(
                    &mut blocks,
                    "Was zu tun ist: Stellen Sie in dem Gerät die Verschlüsselung ein (SSL/TLS: IMAP Port 993, POP3 Port 995, SMTP Port 465, oder STARTTLS), und ändern Sie danach das Passwort.".into(),
                    "What to do: switch on encryption on that device (SSL/TLS: IMAP port 993, POP3 port 995, SMTP port 465, or STARTTLS), then change the password.".into(),
                );
                change_password(&mut blocks);
            }
            WarningKind::WrongProtocol => {
                let (mode_de, mode_en) = match self.access {
                    AccessMode::Imap => ("IMAP", "IMAP"),
                    AccessMode::Pop3 => ("POP3", "POP3"),
                    AccessMode::None => ("keinen Abruf (nur Senden)", "no reading (sending only)"),
                };
                para(
                    &mut blocks,
                    format!(
                        "Am {when} hat ein Gerät von der Adresse {client} {a} über {service} benutzen wollen. Das ist für dieses Postfach nicht erlaubt, die Anmeldung wurde abgelehnt."
                    ),
                    format!(
                        "On {when} a device at the address {client} tried to use {a} over {service}. This mailbox does not allow that, and the login was refused."
                    ),
                );
                if self.facts.service == Some(Service::Submission) && !self.submission {
                    para(
                        &mut blocks,
                        "Für dieses Postfach ist das Senden ausgeschaltet. Was zu ändern ist: entfernen Sie im Gerät den Postausgangsserver (SMTP) für diese Adresse, oder schalten Sie das Senden im Kundenbereich ein.".into(),
                        "Sending is switched off for this mailbox. What to change: remove the outgoing server (SMTP) for this address on the device, or switch sending on in the panel.".into(),
                    );
                } else {
                    para(
                        &mut blocks,
                        format!(
                            "Dieses Postfach ist für {mode_de} eingerichtet. Was zu ändern ist: richten Sie das Konto im Gerät mit {mode_de} ein (oder entfernen Sie es dort), sonst versucht es weiter vergeblich, die Post abzuholen."
                        ),
                        format!(
                            "This mailbox is set up for {mode_en}. What to change: set the account up on the device with {mode_en} (or remove it there); otherwise it keeps failing to fetch mail."
                        ),
                    );
                }
            }
            WarningKind::Exposed => {
                para(
                    &mut blocks,
                    format!(
                        "Am {when} hat ein Gerät von der Adresse {client} über {service} das richtige Passwort von {a} ohne Verschlüsselung geschickt."
                    ),
                    format!(
                        "On {when} a device at the address {client} sent the correct password of {a} over {service} without encryption."
                    ),
                );
                para(
                    &mut blocks,
                    "Jeder auf dem Weg konnte es mitlesen; es gilt deshalb als bekannt, und der Kundenbereich zeigt es als ungeschützt an, bis es geändert ist.".into(),
                    "Anyone on the way could read it, so it must be considered known; the panel shows it as exposed until it is changed.".into(),
                );
                para(
                    &mut blocks,
                    "Was zu tun ist: ändern Sie das Passwort jetzt, und stellen Sie in dem Gerät die Verschlüsselung ein (SSL/TLS oder STARTTLS).".into(),
                    "What to do: change the password now, and switch on encryption on that device (SSL/TLS or STARTTLS).".into(),
                );
                change_password(&mut blocks);
            }
            WarningKind::Locked => {
                para(
                    &mut blocks,
                    format!(
                        "Am {when} wurde eine Anmeldung bei {a} von der Adresse {client} über {service} abgewiesen, weil zuvor zu viele falsche Passwörter versucht wurden. Anmeldungen sind für eine Weile gesperrt."
                    ),
                    format!(
                        "On {when} a login to {a} from the address {client} over {service} was refused because too many wrong passwords were tried before. Logins are locked for a while."
                    ),
                );
                para(
                    &mut blocks,
                    "Wenn das ein eigenes Gerät mit einem alten Passwort ist, tragen Sie dort das aktuelle ein. Wenn nicht, versucht jemand, Ihr Passwort zu erraten: wählen Sie ein langes, nur hier benutztes Passwort.".into(),
                    "If this is one of your devices with an old password, enter the current one there. If not, someone is trying to guess your password: choose a long one that you use only here.".into(),
                );
                change_password(&mut blocks);
            }
            WarningKind::SendingLimit => {
                let sender = self.facts.sender.as_ref().map_or_else(|| "<>".to_string(), ToString::to_string);
                para(
                    &mut blocks,
                    format!("Am {when} hat {a} sein Sendelimit erreicht; eine Nachricht wurde abgewiesen:"),
                    format!("On {when} {a} reached its sending limit; a message was refused:"),
                );
                blocks.push(Block::Item(if de { format!("Absender: {sender}") } else { format!("Sender: {sender}") }));
                blocks.push(Block::Item(if de {
                    format!("Gerät an der Adresse: {client}")
                } else {
                    format!("Device at the address: {client}")
                }));
                para(
                    &mut blocks,
                    "Wenn Sie nicht so viele Nachrichten geschickt haben, benutzt vermutlich jemand anderes Ihr Passwort, um in Ihrem Namen Spam zu versenden. Was zu tun ist: ändern Sie das Passwort sofort, prüfen Sie die Anmeldeliste im Kundenbereich, und prüfen Sie Ihre Geräte auf Schadsoftware.".into(),
                    "If you did not send that many messages, someone else is probably using your password to send spam in your name. What to do: change the password at once, look at the login list in the panel, and check your devices for malware.".into(),
                );
                change_password(&mut blocks);
            }
            WarningKind::DomainRecords => {
                para(
                    &mut blocks,
                    format!(
                        "Die Prüfung der DNS-Einträge von {a} am {when} hat Fehler gefunden, die vorher nicht da waren:"
                    ),
                    format!("The check of the DNS records of {a} on {when} found problems that were not there before:"),
                );
                for problem in &self.facts.problems {
                    blocks.push(Block::Item(if de { problem.de.clone() } else { problem.en.clone() }));
                }
                para(
                    &mut blocks,
                    "Solange das so bleibt, kann Post an und von der Domain abgewiesen werden oder im Spam landen."
                        .into(),
                    "While this lasts, mail to and from the domain may be refused or land in spam.".into(),
                );
                if let Some(link) = &self.link {
                    blocks.push(Block::Link(
                        if de {
                            "Was zu veröffentlichen ist, zeigt der Kundenbereich:"
                        } else {
                            "The panel shows what to publish:"
                        }
                        .into(),
                        link.clone(),
                    ));
                }
            }
            WarningKind::NewDevice => {
                let network = self.facts.client.map_or_else(|| "?".to_string(), crate::warnings::network_of);
                let credential = match (&self.facts.credential, de) {
                    (Some(name), true) => format!("dem App-Passwort „{name}“"),
                    (Some(name), false) => format!("the app password \"{name}\""),
                    (None, true) => "dem Hauptpasswort".to_string(),
                    (None, false) => "the main password".to_string(),
                };
                para(
                    &mut blocks,
                    format!(
                        "Am {when} hat sich ein Gerät mit {credential} über {service} bei {a} angemeldet, zum ersten Mal aus diesem Netz:"
                    ),
                    format!(
                        "On {when} a device logged in to {a} with {credential} over {service}, for the first time from this network:"
                    ),
                );
                blocks.push(Block::Item(if de {
                    format!("Adresse: {client} (Netz {network})")
                } else {
                    format!("Address: {client} (network {network})")
                }));
                let tls = self.facts.tls.clone().unwrap_or_else(|| if de { "keine" } else { "none" }.to_string());
                blocks.push(Block::Item(if de {
                    format!("Verschlüsselung: {tls}")
                } else {
                    format!("Encryption: {tls}")
                }));
                para(
                    &mut blocks,
                    "Wenn Sie das waren (ein neues Gerät, ein anderes WLAN, unterwegs), ist nichts zu tun.".into(),
                    "If that was you (a new device, another Wi-Fi, travelling), there is nothing to do.".into(),
                );
                if self.facts.credential.is_some() {
                    para(
                        &mut blocks,
                        "Wenn nicht, kennt jemand anderes dieses App-Passwort: widerrufen Sie es jetzt im Kundenbereich und legen Sie für Ihr Gerät ein neues an.".into(),
                        "If not, someone else knows this app password: revoke it now in the panel and make a new one for your device.".into(),
                    );
                    if let Some(link) = &self.link {
                        blocks.push(Block::Link(
                            if de {
                                "App-Passwort im Kundenbereich widerrufen:"
                            } else {
                                "Revoke the app password in the panel:"
                            }
                            .into(),
                            link.clone(),
                        ));
                    }
                } else {
                    para(
                        &mut blocks,
                        "Wenn nicht, kennt jemand anderes Ihr Passwort: ändern Sie es jetzt.".into(),
                        "If not, someone else knows your password: change it now.".into(),
                    );
                    change_password(&mut blocks);
                }
            }
            WarningKind::UnusedAppPassword => {
                para(
                    &mut blocks,
                    format!("Diese App-Passwörter von {a} wurden seit über 90 Tagen nicht benutzt:"),
                    format!("These app passwords of {a} were not used for more than 90 days:"),
                );
                for unused in &self.facts.unused {
                    let name = &unused.name;
                    blocks.push(Block::Item(match (unused.last_used_at, de) {
                        (Some(at), true) => format!("„{name}“, zuletzt benutzt am {}", format_rfc5322(at.0)),
                        (Some(at), false) => format!("\"{name}\", last used on {}", format_rfc5322(at.0)),
                        (None, true) => {
                            format!("„{name}“, nie benutzt, angelegt am {}", format_rfc5322(unused.created_at.0))
                        }
                        (None, false) => {
                            format!("\"{name}\", never used, made on {}", format_rfc5322(unused.created_at.0))
                        }
                    }));
                }
                para(
                    &mut blocks,
                    "Ein App-Passwort, das kein Gerät mehr braucht, ist nur noch ein Weg in Ihr Postfach: widerrufen Sie es. Ein Gerät, das es doch noch braucht, bekommt einfach ein neues.".into(),
                    "An app password no device needs any more is just one more way into your mailbox: revoke it. A device that still needs one simply gets a new one.".into(),
                );
                if let Some(link) = &self.link {
                    blocks.push(Block::Link(
                        if de {
                            "App-Passwörter im Kundenbereich widerrufen:"
                        } else {
                            "Revoke app passwords in the panel:"
                        }
                        .into(),
                        link.clone(),
                    ));
                }
            }
        }
        if let Some(untold) = self.untold.filter(|u| u.count > 0) {
            let since = untold.since.map(|s| format_rfc5322(s.0)).unwrap_or_default();
            let n = untold.count;
            para(
                &mut blocks,
                format!(
                    "Dazu kommen {n} weitere solche Ereignisse seit {since}, über die noch keine Nachricht geschickt wurde (höchstens eine Nachricht dieser Art pro Tag)."
                ),
                format!(
                    "And {n} more such events since {since} that no mail told yet (at most one mail of this kind a day)."
                ),
            );
        }
        blocks
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

    #[test]
    fn warnings_have_a_text_and_an_escaped_html_part_in_both_languages() {
        use crate::dns_checks::Text;
        use crate::warnings::{Untold, WarningFacts, WarningKind};
        let to = EmailAddress::parse("office@example.org").expect("address");
        let problem =
            Text { de: "Fehler <script>alert(1)</script> & mehr".into(), en: "broken <b>\"x\"</b> & more".into() };
        let warning = Warning {
            kind: WarningKind::DomainRecords,
            about: "example.org".into(),
            at: UnixTime(0),
            facts: WarningFacts { problems: vec![problem], ..WarningFacts::default() },
            untold: Some(Untold { count: 4, since: Some(UnixTime(60)) }),
            access: AccessMode::Imap,
            submission: true,
            link: Some("https://mail.example.net/domains/3?a=1&b=2".into()),
        };
        let notice = Notice::Warning(warning);
        let en = String::from_utf8(notice.render(&to, Language::En, UnixTime(0))).expect("utf-8");
        assert!(en.contains("Subject: The DNS records of example.org broke\r\n"), "{en}");
        assert!(en.contains("Content-Type: multipart/alternative; boundary="), "{en}");
        assert!(en.contains("  - broken <b>\"x\"</b> & more\r\n"), "the text part as it is: {en}");
        assert!(en.contains("<li>broken &lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; more</li>"), "{en}");
        assert!(en.contains("<a href=\"https://mail.example.net/domains/3?a=1&amp;b=2\">"), "{en}");
        assert!(en.contains("And 4 more such events since Thu, 1 Jan 1970 00:01:00 +0000"), "{en}");
        let de = String::from_utf8(notice.render(&to, Language::De, UnixTime(0))).expect("utf-8");
        assert!(de.contains("Subject: =?utf-8?b?"), "a non-ASCII subject is encoded: {de}");
        assert!(de.contains("<li>Fehler &lt;script&gt;alert(1)&lt;/script&gt; &amp; mehr</li>"), "{de}");
        assert!(!de.contains("<script>alert(1)</script></li>") && de.contains("Dazu kommen 4 weitere"), "{de}");
        assert!(!de.contains("\n\n") && de.contains("<html lang=\"de\">"));
    }

    #[test]
    fn device_warnings_in_both_languages_name_the_credential_and_escape_names() {
        use crate::warnings::{UnusedAppPassword, WarningFacts, WarningKind};
        let to = EmailAddress::parse("max@example.org").expect("address");
        let warning = |kind, facts| {
            Notice::Warning(Warning {
                kind,
                about: "max@example.org".into(),
                at: UnixTime(0),
                facts,
                untold: None,
                access: AccessMode::Imap,
                submission: true,
                link: Some("https://mail.example.net/mailboxes/7".into()),
            })
        };
        let facts = WarningFacts {
            service: Some(Service::Pop3),
            client: "2001:db8:1:2::9".parse().ok(),
            credential: Some("<b>Phone</b>".into()),
            ..WarningFacts::default()
        };
        let notice = warning(WarningKind::NewDevice, facts.clone());
        let de = String::from_utf8(notice.render(&to, Language::De, UnixTime(0))).expect("utf-8");
        assert!(de.contains("mit dem App-Passwort „<b>Phone</b>“ über POP3"), "{de}");
        assert!(de.contains("(Netz 2001:db8:1::/48)") && de.contains("Verschlüsselung: keine"), "{de}");
        assert!(de.contains("&lt;b&gt;Phone") && de.contains("App-Passwort im Kundenbereich widerrufen"), "{de}");
        let main = warning(WarningKind::NewDevice, WarningFacts { credential: None, ..facts });
        let en = String::from_utf8(main.render(&to, Language::En, UnixTime(0))).expect("utf-8");
        assert!(en.contains("Subject: New login to max@example.org from a new device\r\n"), "{en}");
        assert!(en.contains("with the main password over POP3") && en.contains("change it now"), "{en}");

        let unused = vec![
            UnusedAppPassword { name: "Laptop".into(), created_at: UnixTime(0), last_used_at: Some(UnixTime(60)) },
            UnusedAppPassword { name: "Tablet".into(), created_at: UnixTime(0), last_used_at: None },
        ];
        let notice = warning(WarningKind::UnusedAppPassword, WarningFacts { unused, ..WarningFacts::default() });
        let en = String::from_utf8(notice.render(&to, Language::En, UnixTime(0))).expect("utf-8");
        assert!(en.contains("\"Laptop\", last used on Thu, 1 Jan 1970 00:01:00 +0000"), "{en}");
        assert!(en.contains("\"Tablet\", never used, made on"), "{en}");
        let de = String::from_utf8(notice.render(&to, Language::De, UnixTime(0))).expect("utf-8");
        assert!(de.contains("„Tablet“, nie benutzt") && de.contains("seit über 90 Tagen"), "{de}");
    }
}
