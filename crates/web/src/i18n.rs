//! German and English: the language of a request, and every text the panel and the API
//! show, in one catalogue.
//!
//! The language comes from the switch (a cookie) or else from `Accept-Language`
//! (RFC 9110 §12.5.4); English when neither names German. A page is rendered in one
//! language only: refusals are translated by their `AdminError` variant
//! ([`admin_message`], one `match`, never by their text), the password rule's verdict and
//! zxcvbn's feedback by their codes. The panel and the API show the same text for the
//! same refusal.

use axum::http::HeaderValue;
use postfach_admin::sieve_forms::FormError;
use postfach_admin::{AdminError, Conflict};
use postfach_policy::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, MIN_SCORE, PasswordRefusal, PasswordVerdict};
use postfach_types::AccessMode;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::De => "Deutsch",
            Lang::En => "English",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "de" => Some(Lang::De),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The preferred of German and English in an `Accept-Language` header (highest
    /// q-value wins, earlier entries win ties); English by default.
    pub fn negotiate(header: Option<&HeaderValue>) -> Lang {
        let Some(text) = header.and_then(|h| h.to_str().ok()) else { return Lang::En };
        let mut best: Option<(Lang, f32)> = None;
        for entry in text.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::from_code(primary) else { continue };
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
        best.map_or(Lang::En, |(lang, _)| lang)
    }
}

/// Texts in one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The text for `key`, if the catalogue has it.
    pub fn key(&self, key: &str) -> Option<&'static str> {
        let i = CATALOGUE.binary_search_by(|(k, _, _)| (*k).cmp(key)).ok()?;
        let (_, de, en) = CATALOGUE[i];
        Some(match self.lang {
            Lang::De => de,
            Lang::En => en,
        })
    }

    /// The text for `key`; a missing key (a bug the tests catch) shows as the key.
    pub fn s(&self, key: &str) -> &'static str {
        self.key(key).unwrap_or_else(|| {
            tracing::warn!(key, "text missing from the catalogue");
            "…"
        })
    }

    /// The text for `key` with `{name}` placeholders filled in.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.s(key).to_string();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

/// The catalogue key of an access mode's name.
pub fn access_key(mode: impl std::borrow::Borrow<AccessMode>) -> &'static str {
    match mode.borrow() {
        AccessMode::Imap => "access.imap",
        AccessMode::Pop3 => "access.pop3",
        AccessMode::None => "access.none",
    }
}

/// Why a password was refused, in the page's language (the rule's own sentence is
/// English, so it is rebuilt from the verdict).
pub fn verdict_reason(t: &Tr, verdict: &PasswordVerdict, chars: usize) -> String {
    let Some(refusal) = verdict.refusal else { return String::new() };
    let mut text = match refusal {
        PasswordRefusal::TooShort => {
            return t.f("pw.too_short", &[("n", &chars.to_string()), ("min", &MIN_PASSWORD_CHARS.to_string())]);
        }
        PasswordRefusal::TooLong => {
            return t.f("pw.too_long", &[("n", &chars.to_string()), ("max", &MAX_PASSWORD_CHARS.to_string())]);
        }
        PasswordRefusal::MostlyUserWords => t.s("pw.user_words").to_string(),
        PasswordRefusal::TooEasyToGuess => {
            t.f("pw.too_easy", &[("score", &verdict.score.to_string()), ("min", &MIN_SCORE.to_string())])
        }
    };
    if let Some(warning) = verdict.warning.as_ref().and_then(|w| feedback(t, &w.code)) {
        text.push(' ');
        text.push_str(warning);
    }
    text
}

/// A zxcvbn feedback code (`this-is-a-top10-password`) in the page's language.
pub fn feedback(t: &Tr, code: &str) -> Option<&'static str> {
    t.key(&format!("pw.fb.{code}"))
}

/// A verdict for the live meter and the API: score, a label, the reason and zxcvbn's
/// feedback, all in the caller's language (with the stable codes next to them).
pub fn localized_verdict(t: &Tr, verdict: &PasswordVerdict, chars: usize) -> Value {
    let reason = verdict_reason(t, verdict, chars);
    let label = match (verdict.accepted, verdict.score) {
        (true, 4) => t.s("meter.very_strong"),
        (true, _) => t.s("meter.strong"),
        (false, 2) => t.s("meter.fair"),
        (false, _) => t.s("meter.weak"),
    };
    json!({
        "accepted": verdict.accepted,
        "score": verdict.score,
        "label": label,
        "reason": if reason.is_empty() { Value::Null } else { Value::String(reason) },
        "refusal": verdict.refusal.map(PasswordRefusal::code),
        "warning": verdict.warning.as_ref().and_then(|w| feedback(t, &w.code)),
        "warning_code": verdict.warning.as_ref().map(|w| w.code.clone()),
        "suggestions": verdict.suggestions.iter().filter_map(|s| feedback(t, &s.code)).collect::<Vec<_>>(),
        "suggestion_codes": verdict.suggestions.iter().map(|s| s.code.clone()).collect::<Vec<_>>(),
    })
}

/// Why an administrative operation was refused, in the page's language: one text per
/// [`AdminError`] variant, the same for the panel and the API. Rules of the directory
/// are told with their objects in English (the store's sentence names the address or
/// domain); in German from the catalogue.
pub fn admin_message(t: &Tr, e: &AdminError) -> String {
    let key = match e {
        AdminError::Forbidden => "error.forbidden",
        AdminError::NotFound(_) => "error.not_found",
        AdminError::InvalidCustomerName => "error.customer_name",
        AdminError::InvalidRole => "error.role",
        AdminError::InvalidDomainName => "error.domain_name",
        AdminError::InvalidAddress => "error.address",
        AdminError::InvalidAccessMode => "error.access",
        AdminError::InvalidFilter => "error.filter",
        AdminError::InvalidSize => "error.size",
        AdminError::InvalidMessageCount => "error.message_count",
        AdminError::InvalidLanguage => "error.language",
        AdminError::InvalidMtaStsMode => "error.mta_sts_mode",
        AdminError::InvalidWarningSwitch => "error.warning_switch",
        AdminError::InvalidSpamThreshold => "error.spam_threshold",
        AdminError::SpamThresholdsReversed => "error.spam_reversed",
        AdminError::TokenNameMissing => "error.token_name",
        AdminError::InvalidAppPasswordName => "error.app_password_name",
        AdminError::InvalidAppPasswordServices => "error.app_password_services",
        AdminError::ServiceNotForMailbox(_) => "error.service_not_for_mailbox",
        AdminError::InvalidSieveScriptName => "error.sieve_name",
        AdminError::SieveScriptInvalid(e) => {
            let (line, column) = (e.line.to_string(), e.column.to_string());
            return t.f("error.sieve_script", &[("line", &line), ("column", &column), ("what", &e.what)]);
        }
        AdminError::SieveScriptTooBig { limit, .. } => {
            return t.f("error.sieve_too_big", &[("max", &limit.to_string())]);
        }
        AdminError::TokenNameTooLong => {
            return t.f("error.token_name_long", &[("max", &postfach_admin::input::MAX_TOKEN_NAME.to_string())]);
        }
        AdminError::WeakPassword { verdict, chars } => return verdict_reason(t, verdict, *chars),
        AdminError::CurrentPasswordMissing => "error.current_password_missing",
        AdminError::CurrentPasswordWrong => "error.current_password",
        AdminError::CodeWrong => "error.code_wrong",
        AdminError::Throttled => "login.throttled",
        AdminError::Disabled => "login.disabled",
        AdminError::TlsRequired => "login.tls",
        AdminError::DisableSelf => "error.disable_self",
        AdminError::ResetOwnPassword => "error.reset_self",
        AdminError::AdminAddsDomain => "error.admin_adds_domain",
        AdminError::NotAnAliasDomain(_) => "error.not_alias_domain",
        AdminError::DnsChecksOff | AdminError::Unavailable(_) => "error.unavailable",
        AdminError::InvalidImportServer => "error.import_server",
        AdminError::InvalidImportLogin => "error.import_login",
        AdminError::InvalidImportPassword => "error.import_password",
        AdminError::ImportServerUnknown { host } => return t.f("error.import_unknown", &[("host", host)]),
        AdminError::ImportServerNotPublic { host } => return t.f("error.import_not_public", &[("host", host)]),
        AdminError::ImportsBusy => "error.imports_busy",
        AdminError::SieveForm(problem) => {
            return t.s(&format!("error.sieve_form.{}", sieve_form_key(problem))).to_string();
        }
        AdminError::HandWrittenScript { name } => return t.f("error.hand_written_script", &[("name", name)]),
        AdminError::Conflict(rule) if t.lang() == Lang::En => return capitalise(&rule.to_string()),
        AdminError::Conflict(rule) => match rule {
            Conflict::AddressTaken { .. } => "store.address_taken",
            Conflict::DomainTaken { .. } => "store.domain_taken",
            Conflict::NotFullDomain { .. } => "store.not_full_domain",
            Conflict::InAliasDomain { .. } => "store.in_alias_domain",
            Conflict::AliasChain { .. } => "store.alias_chain",
            Conflict::DomainNotEmpty { .. } => "store.domain_not_empty",
            Conflict::OtherCustomer { .. } => "store.other_customer",
            Conflict::NotHostable { .. } => "store.local_part",
            Conflict::CustomerExists { .. } => "store.customer_taken",
            Conflict::CustomerOwnsDomains { .. } => "store.customer_has_domains",
            Conflict::TotpOn => "store.totp_on",
            Conflict::QuotaAboveCustomer { .. } => "store.quota_above_customer",
            Conflict::MailboxQuotaAbove { .. } => "store.mailbox_quota_above",
            Conflict::AppPasswordNameTaken { .. } => "store.app_password_name_taken",
            Conflict::TooManyAppPasswords { .. } => "store.too_many_app_passwords",
            Conflict::SieveScriptNameTaken { .. } => "store.sieve_name_taken",
            Conflict::TooManySieveScripts { .. } => "store.too_many_sieve_scripts",
            Conflict::SieveScriptActive { .. } => "store.sieve_active",
            Conflict::ImportRunning => "store.import_running",
        },
    };
    t.s(key).to_string()
}

/// The catalogue key (after `error.sieve_form.`) of a form problem.
pub fn sieve_form_key(problem: &FormError) -> &'static str {
    match problem {
        FormError::ControlCharacter => "control_character",
        FormError::ValueTooLong => "value_too_long",
        FormError::TextTooLong => "text_too_long",
        FormError::TextMissing => "text_missing",
        FormError::InvalidDate => "invalid_date",
        FormError::DatesReversed => "dates_reversed",
        FormError::InvalidDays => "invalid_days",
        FormError::ForeignAddress => "foreign_address",
        FormError::InvalidHeader => "invalid_header",
        FormError::InvalidMatch => "invalid_match",
        FormError::InvalidAction => "invalid_action",
        FormError::FolderMissing => "folder_missing",
        FormError::ValueMissing => "value_missing",
        FormError::TooManyRules => "too_many_rules",
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

/// (key, German, English), sorted by key (a test checks the order).
#[rustfmt::skip]
const CATALOGUE: &[(&str, &str, &str)] = &[
    ("access.imap", "IMAP – E-Mails bleiben auf dem Server, alle Geräte sehen dasselbe", "IMAP – mail stays on the server, every device sees the same"),
    ("access.none", "Kein Abruf – nur senden oder stillgelegt", "No reading – send only, or parked"),
    ("access.pop3", "POP3 – ein Gerät holt die E-Mails ab und löscht sie auf dem Server", "POP3 – one device fetches the mail and removes it from the server"),
    ("account.change_password", "Passwort ändern", "Change password"),
    ("account.keep_tokens", "API-Tokens weiter gelten lassen", "Keep my API tokens working"),
    ("account.password", "Eigenes Passwort", "Your password"),
    ("account.password_hint", "Nach der Änderung werden Ihre anderen Sitzungen abgemeldet. API-Tokens werden widerrufen, wenn Sie sie nicht ausdrücklich behalten.", "After the change your other sessions are signed out. API tokens are revoked unless you choose to keep them."),
    ("account.title", "Konto", "Account"),
    ("account.token_create", "Token erstellen", "Create token"),
    ("account.token_created", "Erstellt", "Created"),
    ("account.token_name", "Name", "Name"),
    ("account.token_once", "Kopieren Sie das Token jetzt: Es wird nur dieses eine Mal angezeigt.", "Copy the token now: it is shown only this once."),
    ("account.token_revoke", "Widerrufen", "Revoke"),
    ("account.token_used", "Zuletzt benutzt", "Last used"),
    ("account.tokens", "API-Tokens", "API tokens"),
    ("account.tokens_hint", "Mit einem Token können Skripte die API unter /api/v1 benutzen (Authorization: Bearer …). Widerrufen Sie Tokens, die Sie nicht mehr brauchen.", "Scripts use the API under /api/v1 with a token (Authorization: Bearer …). Revoke tokens you no longer need."),
    ("account.totp", "Anmeldung in zwei Schritten", "Two-factor sign-in"),
    ("account.totp_confirm", "Einschalten", "Switch on"),
    ("account.totp_disable", "Ausschalten", "Switch off"),
    ("account.totp_off", "Ausgeschaltet. Mit einer Authenticator-App (TOTP) schützen Sie Ihr Konto auch dann, wenn jemand Ihr Passwort kennt.", "Off. With an authenticator app (TOTP) your account stays safe even if someone learns your password."),
    ("account.totp_on", "Eingeschaltet: Bei jeder Anmeldung fragen wir nach dem Code aus Ihrer App.", "On: every sign-in asks for the code from your app."),
    ("account.totp_setup", "Tragen Sie diesen Schlüssel in Ihre Authenticator-App ein und geben Sie dann den angezeigten Code ein.", "Add this key to your authenticator app, then enter the code it shows."),
    ("account.totp_start", "Einrichten", "Set up"),
    ("aliases.alias", "Alias", "Alias"),
    ("aliases.create", "Alias anlegen", "Create alias"),
    ("aliases.delivers_to", "Zustellen an", "Delivers to"),
    ("aliases.hint", "Ein Alias ist eine weitere Adresse, deren E-Mails in einem Postfach ankommen – besser als eine Weiterleitung, weil nichts das Haus verlässt.", "An alias is another address whose mail arrives in a mailbox – better than forwarding, because nothing leaves the house."),
    ("aliases.new", "Neuer Alias", "New alias"),
    ("aliases.none", "Noch keine Aliase.", "No aliases yet."),
    ("aliases.title", "Aliase", "Aliases"),
    ("apppw.create", "App-Passwort erstellen", "Create app password"),
    ("apppw.created", "Erstellt", "Created"),
    ("apppw.hint", "Geben Sie jedem Gerät sein eigenes Passwort: Geht ein Telefon verloren, widerrufen Sie nur dessen Passwort, und das Postfach-Passwort bleibt geheim.", "Give every device its own password: if a phone is lost, revoke only its password, and the mailbox's own password stays secret."),
    ("apppw.last_use", "Zuletzt benutzt", "Last used"),
    ("apppw.name", "Gerät", "Device"),
    ("apppw.never", "noch nie", "never"),
    ("apppw.none", "Noch keine App-Passwörter.", "No app passwords yet."),
    ("apppw.once", "Das App-Passwort für „{name}“ – kopieren Sie es jetzt ins Gerät, es wird nur dieses eine Mal angezeigt:", "The app password for “{name}” – copy it into the device now, it is shown only this once:"),
    ("apppw.only", "Geräte müssen App-Passwörter verwenden (das Postfach-Passwort gilt dann nur noch für dieses Kundensystem)", "Devices must use app passwords (the mailbox's password then works only for this panel)"),
    ("apppw.profile", "Geräteprofil laden (Apple-Geräte; fragt nach dem Passwort: fügen Sie das App-Passwort ein)", "Download the device profile (Apple devices; it asks for the password: paste the app password)"),
    ("apppw.revoke", "Widerrufen", "Revoke"),
    ("apppw.services", "Dienste", "Services"),
    ("apppw.title", "App-Passwörter", "App passwords"),
    ("check.access_ok", "Zugriffsart gewählt, kein Gerät benutzt das falsche Protokoll.", "Access mode chosen; no device uses the wrong protocol."),
    ("check.access_wrong", "Ein Gerät hat es kürzlich mit dem ausgeschalteten Protokoll versucht. Richten Sie es mit der gewählten Zugriffsart neu ein.", "A device recently tried the switched-off protocol. Set it up again with the chosen access mode."),
    ("check.app_passwords_missing", "Ein Gerät meldet sich mit dem Postfach-Passwort an: Geben Sie jedem Gerät sein eigenes App-Passwort.", "A device logs in with the mailbox's password: give every device its own app password."),
    ("check.app_passwords_none_yet", "Noch kein Gerät hat sich angemeldet: Geben Sie jedem Gerät sein eigenes App-Passwort.", "No device has logged in yet: give every device its own app password."),
    ("check.app_passwords_ok", "Jedes Gerät der letzten 30 Tage hat sein eigenes App-Passwort benutzt.", "Every device of the last 30 days used its own app password."),
    ("check.app_passwords_only", "Jedes Gerät hat sein eigenes App-Passwort (das Postfach verlangt es).", "Every device has its own app password (the mailbox requires it)."),
    ("check.ask_domain_owner", "Die DNS-Einträge der Domain ändert ihr Inhaber; wenden Sie sich an ihn.", "The domain's DNS records are changed by its owner; please ask them."),
    ("check.dns_error", "SPF, DKIM oder DMARC der Domain sind fehlerhaft: Andere Server könnten E-Mails dieser Adresse abweisen.", "The domain's SPF, DKIM or DMARC has errors: other servers may refuse mail from this address."),
    ("check.dns_ok", "SPF, DKIM und DMARC der Domain sind in Ordnung.", "The domain's SPF, DKIM and DMARC are in order."),
    ("check.dns_unchecked", "SPF, DKIM und DMARC der Domain wurden noch nicht geprüft.", "The domain's SPF, DKIM and DMARC have not been checked yet."),
    ("check.dns_warning", "SPF, DKIM oder DMARC der Domain haben Warnungen.", "The domain's SPF, DKIM or DMARC have warnings."),
    ("check.domain_unverified", "Die Domain ist noch nicht bestätigt: Es kommen keine E-Mails an.", "The domain is not verified yet: no mail arrives."),
    ("check.fix_app_passwords", "App-Passwörter", "App passwords"),
    ("check.fix_devices", "Geräte ansehen", "See the devices"),
    ("check.fix_domain", "Zur Domain", "Go to the domain"),
    ("check.fix_logins", "Anmeldungen ansehen", "See the logins"),
    ("check.fix_password", "Passwort ändern", "Change the password"),
    ("check.fix_settings", "Einstellung ändern", "Change the setting"),
    ("check.no_refused", "Keine abgewiesenen Anmeldungen in den letzten 30 Tagen.", "No refused logins in the last 30 days."),
    ("check.no_unencrypted", "Keine unverschlüsselten Anmeldeversuche in den letzten 30 Tagen.", "No unencrypted login attempts in the last 30 days."),
    ("check.password_exposed", "Das Passwort wurde unverschlüsselt gesendet und könnte mitgelesen worden sein. Ändern Sie es.", "The password was sent unencrypted and may have been read by others. Change it."),
    ("check.password_ok", "Das Passwort ist stark und wurde nie unverschlüsselt gesendet.", "The password is strong and was never sent unencrypted."),
    ("check.refused", "Es gab abgewiesene Anmeldungen in den letzten 30 Tagen.", "There were refused logins in the last 30 days."),
    ("check.title", "Sicherheits-Check", "Security checklist"),
    ("check.tls_off", "„Nur verschlüsselt“ ist aus: Ein Programm könnte das Passwort unverschlüsselt senden.", "“TLS only” is off: a program could send the password unencrypted."),
    ("check.tls_on", "Nur verschlüsselte Verbindungen sind erlaubt.", "Only encrypted connections are allowed."),
    ("check.tls_server", "Dieser Server nimmt Passwörter nur über verschlüsselte Verbindungen an.", "This server accepts passwords only over encrypted connections."),
    ("check.unencrypted", "Es gab unverschlüsselte Anmeldeversuche in den letzten 30 Tagen.", "There were unencrypted login attempts in the last 30 days."),
    ("code.code", "Code", "Code"),
    ("code.hint", "Geben Sie den sechsstelligen Code aus Ihrer Authenticator-App ein.", "Enter the six-digit code from your authenticator app."),
    ("code.submit", "Bestätigen", "Confirm"),
    ("code.title", "Code eingeben", "Enter code"),
    ("common.off", "aus", "off"),
    ("common.on", "an", "on"),
    ("confirm.alias", "Alias {name} entfernen?", "Remove the alias {name}?"),
    ("confirm.alias_detail", "E-Mails an diese Adresse kommen danach nicht mehr in {mailbox} an.", "Mail to this address will no longer arrive in {mailbox}."),
    ("confirm.domain", "Domain {name} entfernen?", "Remove the domain {name}?"),
    ("confirm.domain_detail", "Alle Postfächer, Aliase und Alias-Domains dieser Domain werden mit entfernt. Das lässt sich nicht rückgängig machen.", "All mailboxes, aliases and alias domains of this domain are removed with it. This cannot be undone."),
    ("confirm.mailbox", "Postfach {name} entfernen?", "Remove the mailbox {name}?"),
    ("confirm.mailbox_detail", "Das Postfach und seine Aliase werden entfernt. Das lässt sich nicht rückgängig machen.", "The mailbox and its aliases are removed. This cannot be undone."),
    ("confirm.no", "Abbrechen", "Cancel"),
    ("confirm.title", "Bitte bestätigen", "Please confirm"),
    ("confirm.yes", "Ja, entfernen", "Yes, remove"),
    ("contact.address", "Kontaktadresse", "Contact address"),
    ("contact.hint", "Diese Adresse bekommt eine Kopie jeder Warnung Ihrer Postfächer und Domains (zum Beispiel Sendelimit erreicht, DNS-Einträge fehlerhaft). Leer lassen: keine Kopie.", "This address gets a copy of every warning of your mailboxes and domains (for example sending limit reached, DNS records broken). Leave it empty for no copy."),
    ("contact.title", "Kontaktadresse für Warnungen", "Contact address for warnings"),
    ("customers.active", "aktiv", "active"),
    ("customers.create", "Anlegen", "Create"),
    ("customers.created", "Angelegt", "Created"),
    ("customers.disable", "Sperren", "Disable"),
    ("customers.disabled", "gesperrt", "disabled"),
    ("customers.enable", "Entsperren", "Enable"),
    ("customers.name", "Kundenname", "Customer name"),
    ("customers.new", "Neuer Kunde", "New customer"),
    ("customers.own_password", "Eigenes Passwort ändern", "Change your own password"),
    ("customers.reset_password", "Passwort neu setzen", "Reset password"),
    ("customers.role", "Rolle", "Role"),
    ("customers.set_password", "Passwort setzen", "Set password"),
    ("customers.status", "Status", "Status"),
    ("customers.title", "Kunden", "Customers"),
    ("devices.address", "Letzte Adresse", "Last address"),
    ("devices.client", "Programm", "Client"),
    ("devices.credential", "Passwort", "Password"),
    ("devices.first_seen", "Zuerst gesehen", "First seen"),
    ("devices.hint", "Jedes Programm, das sich in den letzten 90 Tagen erfolgreich angemeldet hat, nach Passwort und Dienst. Den Programmnamen kennen wir nur, wenn ein IMAP-Programm ihn mit einem App-Passwort nennt.", "Every client that logged in successfully in the last 90 days, by password and service. The client's name is known only when an IMAP client tells it while using an app password."),
    ("devices.last_seen", "Zuletzt gesehen", "Last seen"),
    ("devices.link", "Geräte der letzten 90 Tage ansehen", "See the devices of the last 90 days"),
    ("devices.logins", "Anmeldungen", "Logins"),
    ("devices.main_password", "Postfach-Passwort", "Mailbox password"),
    ("devices.main_password_used", "Ein Gerät meldet sich mit dem Postfach-Passwort an: Geben Sie ihm ein eigenes App-Passwort.", "A device logs in with the mailbox's password: give it its own app password."),
    ("devices.none", "In den letzten 90 Tagen hat sich kein Gerät angemeldet.", "No device logged in during the last 90 days."),
    ("devices.service", "Dienst", "Service"),
    ("devices.title", "Geräte", "Devices"),
    ("dns.check", "Prüfung", "Check"),
    ("dns.check_now", "Jetzt prüfen", "Check now"),
    ("dns.copy", "Kopieren", "Copy"),
    ("dns.error", "Fehler", "Error"),
    ("dns.findings", "Ergebnis der letzten Prüfung", "Result of the last check"),
    ("dns.hint", "Tragen Sie diese Einträge beim Anbieter Ihrer Domain ein.", "Publish these records at your domain's DNS provider."),
    ("dns.name", "Name", "Name"),
    ("dns.ok", "in Ordnung", "OK"),
    ("dns.title", "DNS-Einträge", "DNS records"),
    ("dns.type", "Typ", "Type"),
    ("dns.unchecked", "noch nicht geprüft", "not checked yet"),
    ("dns.value", "Wert", "Value"),
    ("dns.warning", "Warnung", "Warning"),
    ("domain.alias_domains", "Alias-Domains", "Alias domains"),
    ("domain.alias_explain", "Jede Adresse der Ziel-Domain gilt auch hier, zum Empfangen und Senden.", "Every address of the target domain works here too, for receiving and sending."),
    ("domain.certificates", "Zertifikate", "Certificates"),
    ("domain.certificates_explain", "Postfach holt Zertifikate für mail., autoconfig. und autodiscover. dieser Domain, soweit diese Namen auf diesen Server zeigen. So sehen E-Mail-Programme auch unter Ihren eigenen Namen ein gültiges Zertifikat.", "Postfach obtains certificates for mail., autoconfig. and autodiscover. of this domain, where those names point to this server, so that mail programs see a valid certificate under your own names too."),
    ("domain.certificates_off", "Ausgeschaltet.", "Switched off."),
    ("domain.certificates_on", "Eingeschaltet.", "Switched on."),
    ("domain.certificates_switch_off", "Zertifikate ausschalten", "Switch certificates off"),
    ("domain.certificates_switch_on", "Zertifikate einschalten", "Switch certificates on"),
    ("domain.is_alias_of", "Alias-Domain von", "Alias domain of"),
    ("domain.mta_sts", "MTA-STS", "MTA-STS"),
    ("domain.mta_sts_enforce", "Erzwingen (enforce): andere Mailserver stellen nur verschlüsselt zu", "Enforce: other mail servers deliver only encrypted"),
    ("domain.mta_sts_explain", "Mit MTA-STS sagt die Domain anderen Mailservern, dass sie E-Mails nur verschlüsselt an diesen Server zustellen sollen. Beginnen Sie mit „Testen“ und veröffentlichen Sie die DNS-Einträge, die dann oben erscheinen; stimmen die Prüfungen, wechseln Sie zu „Erzwingen“.", "With MTA-STS the domain tells other mail servers to deliver mail to this server only encrypted. Start with testing and publish the DNS records that then appear above; once the checks pass, switch to enforce."),
    ("domain.mta_sts_mode", "Modus", "Mode"),
    ("domain.mta_sts_off", "Aus", "Off"),
    ("domain.mta_sts_save", "Modus speichern", "Save mode"),
    ("domain.mta_sts_testing", "Testen (testing): Fehler werden nur gemeldet", "Testing: failures are only reported"),
    ("domain.ownership", "Inhaberschaft", "Ownership"),
    ("domain.ownership_howto", "Veröffentlichen Sie diesen TXT-Eintrag. Sobald er gefunden wird, ist die Domain bestätigt; bis dahin werden E-Mails an sie abgewiesen.", "Publish this TXT record. Once it is found the domain is verified; until then mail to it is refused."),
    ("domain.remove", "Domain entfernen", "Remove domain"),
    ("domain.unverified_text", "Noch nicht bestätigt.", "Not verified yet."),
    ("domain.verified_text", "Bestätigt: Die Domain empfängt und sendet E-Mails.", "Verified: the domain receives and sends mail."),
    ("domains.add", "Domain hinzufügen", "Add a domain"),
    ("domains.add_alias", "Alias-Domain hinzufügen", "Add an alias domain"),
    ("domains.add_alias_button", "Alias-Domain hinzufügen", "Add alias domain"),
    ("domains.add_button", "Hinzufügen", "Add"),
    ("domains.add_hint", "Danach zeigen wir Ihnen den DNS-Eintrag, mit dem Sie beweisen, dass die Domain Ihnen gehört.", "Next you see the DNS record that proves the domain is yours."),
    ("domains.alias_hint", "Jede Adresse der Ziel-Domain gilt dann auch unter der Alias-Domain.", "Every address of the target domain then also works at the alias domain."),
    ("domains.alias_name", "Alias-Domain", "Alias domain"),
    ("domains.alias_of", "Alias von", "Alias of"),
    ("domains.alias_target", "Ziel-Domain", "Target domain"),
    ("domains.customer", "Kunde", "Customer"),
    ("domains.kind", "Art", "Kind"),
    ("domains.mark_unverified", "Als unbestätigt markieren", "Mark unverified"),
    ("domains.mark_verified", "Als bestätigt markieren", "Mark verified"),
    ("domains.name", "Domain", "Domain"),
    ("domains.none", "Noch keine Domains.", "No domains yet."),
    ("domains.ownership", "Inhaberschaft", "Ownership"),
    ("domains.real", "Domain", "Domain"),
    ("domains.title", "Domains", "Domains"),
    ("domains.unverified", "unbestätigt", "unverified"),
    ("domains.verified", "bestätigt", "verified"),
    ("done.alias_added", "Der Alias wurde angelegt.", "The alias was created."),
    ("done.alias_removed", "Der Alias wurde entfernt.", "The alias was removed."),
    ("done.app_password_revoked", "Das App-Passwort wurde widerrufen; Verbindungen damit werden beim nächsten Befehl getrennt.", "The app password was revoked; connections using it end at their next command."),
    ("done.customer_created", "Der Kunde wurde angelegt.", "The customer was created."),
    ("done.customer_disabled", "Der Kunde wurde gesperrt.", "The customer was disabled."),
    ("done.customer_enabled", "Der Kunde wurde entsperrt.", "The customer was enabled."),
    ("done.domain_added", "Die Domain wurde hinzugefügt. Bestätigen Sie jetzt die Inhaberschaft.", "The domain was added. Now prove that it is yours."),
    ("done.domain_alias_added", "Die Alias-Domain wurde hinzugefügt. Bestätigen Sie jetzt die Inhaberschaft.", "The alias domain was added. Now prove that it is yours."),
    ("done.domain_certificates_off", "Die Zertifikate sind ausgeschaltet.", "Certificates are switched off."),
    ("done.domain_certificates_on", "Die Zertifikate sind eingeschaltet; sie werden geholt, sobald die Namen auf diesen Server zeigen.", "Certificates are switched on; they are obtained once the names point to this server."),
    ("done.domain_checked", "Die DNS-Einträge wurden geprüft.", "The DNS records were checked."),
    ("done.domain_mta_sts", "Der MTA-STS-Modus wurde gespeichert. Veröffentlichen Sie die DNS-Einträge, die die Seite nennt.", "The MTA-STS mode was saved. Publish the DNS records the page lists."),
    ("done.domain_removed", "Die Domain wurde entfernt.", "The domain was removed."),
    ("done.domain_verified", "Der Status der Domain wurde geändert.", "The domain's status was changed."),
    ("done.filter_added", "Die Regel wurde hinzugefügt.", "The rule was added."),
    ("done.filters_saved", "Die Filter wurden gespeichert.", "The filters were saved."),
    ("done.import_started", "Der Umzug ist gestartet.", "The import has started."),
    ("done.mailbox_created", "Das Postfach wurde angelegt.", "The mailbox was created."),
    ("done.mailbox_removed", "Das Postfach wurde entfernt.", "The mailbox was removed."),
    ("done.password_changed", "Das Passwort wurde geändert.", "The password was changed."),
    ("done.script_saved", "Das Sieve-Skript wurde geprüft, gespeichert und ist aktiv.", "The Sieve script was checked, saved and is active."),
    ("done.settings_saved", "Die Einstellungen wurden gespeichert.", "The settings were saved."),
    ("done.token_revoked", "Das Token wurde widerrufen.", "The token was revoked."),
    ("done.totp_off", "Die Anmeldung in zwei Schritten ist ausgeschaltet.", "Two-factor sign-in is off."),
    ("done.totp_on", "Die Anmeldung in zwei Schritten ist eingeschaltet.", "Two-factor sign-in is on."),
    ("done.vacation_saved", "Die Abwesenheitsnotiz wurde gespeichert.", "The vacation reply was saved."),
    ("error.access", "Die Zugriffsart muss imap, pop3 oder none sein.", "The access mode must be imap, pop3 or none."),
    ("error.address", "Das ist keine gültige E-Mail-Adresse. Verwenden Sie Buchstaben, Ziffern, Punkt, Binde- und Unterstrich vor dem @.", "That is not a valid e-mail address. Use letters, digits, dots, hyphens and underscores before the @."),
    ("error.admin_adds_domain", "Domains werden vom Kunden hinzugefügt (oder mit der Kommandozeile).", "Domains are added by the customer (or with the command line)."),
    ("error.app_password_name", "Geben Sie dem App-Passwort einen Namen mit höchstens 64 Zeichen, etwa den des Geräts.", "Give the app password a name of at most 64 characters, like the device it is for."),
    ("error.app_password_services", "Wählen Sie mindestens einen Dienst für das App-Passwort: IMAP, POP3, Senden oder Filter.", "Pick at least one service for the app password: IMAP, POP3, sending or filters."),
    ("error.code_wrong", "Der Code stimmt nicht. Geben Sie den aktuellen Code aus Ihrer App ein.", "The code is not right. Enter the current code from your app."),
    ("error.csrf", "Das Formular ist abgelaufen. Laden Sie die Seite neu und versuchen Sie es noch einmal.", "The form has expired. Reload the page and try again."),
    ("error.current_password", "Das bisherige Passwort stimmt nicht. Geben Sie Ihr aktuelles Passwort ein.", "The current password is not right. Enter the password you use now."),
    ("error.current_password_missing", "Geben Sie Ihr aktuelles Passwort ein, um es zu ändern.", "Enter your current password to change it."),
    ("error.customer_name", "Der Kundenname muss 2 bis 64 Zeichen aus a–z, 0–9, Punkt, Binde- oder Unterstrich haben und mit einem Buchstaben oder einer Ziffer beginnen.", "The customer name needs 2 to 64 characters a–z, 0–9, dot, hyphen or underscore, starting with a letter or digit."),
    ("error.disable_self", "Sie können Ihr eigenes Konto nicht sperren.", "You cannot disable your own account."),
    ("error.domain_name", "Das ist kein gültiger Domainname. Verwenden Sie einen Namen wie example.net.", "That is not a valid domain name. Use a name like example.net."),
    ("error.filter", "Der Filter muss unencrypted oder failed sein.", "The filter must be unencrypted or failed."),
    ("error.forbidden", "Das dürfen Sie mit diesem Konto nicht.", "Your account may not do this."),
    ("error.hand_written_script", "Das aktive Filterskript „{name}“ wurde nicht mit diesen Formularen geschrieben. Setzen Sie den Haken „Ersetzen“ und speichern Sie erneut, um stattdessen das Skript der Formulare zu aktivieren (das andere Skript bleibt gespeichert).", "The active filter script “{name}” was not written with these forms. Tick “Replace” and save again to activate the forms' script instead (the other script stays stored)."),
    ("error.home", "Zur Startseite", "To the start page"),
    ("error.import_login", "Geben Sie den Benutzernamen beim alten Anbieter an (meist Ihre alte E-Mail-Adresse).", "Give the login you use at the old provider (usually your old e-mail address)."),
    ("error.import_not_public", "{host} ist kein Server im Internet. Geben Sie den Namen an, den Ihr alter Anbieter für IMAP nennt.", "{host} is not a server on the internet. Give the name your old provider publishes for IMAP."),
    ("error.import_password", "Geben Sie das Passwort beim alten Anbieter an.", "Give the password you use at the old provider."),
    ("error.import_server", "Geben Sie den alten Server als Namen wie imap.example.net an, einen Port von 1 bis 65535 (oder keinen) und TLS oder STARTTLS.", "Give the old server as a name like imap.example.net, a port from 1 to 65535 (or none), and TLS or STARTTLS."),
    ("error.import_unknown", "{host} wurde nicht gefunden. Prüfen Sie den Namen des alten Servers.", "{host} could not be found. Check the old server's name."),
    ("error.imports_busy", "Gerade kann kein Umzug gestartet werden. Versuchen Sie es in ein paar Minuten noch einmal.", "No import can be started at the moment. Try again in a few minutes."),
    ("error.invalid_json", "Die Anfrage ist kein gültiges JSON für diese Aktion.", "The request is not valid JSON for this operation."),
    ("error.language", "Die Sprache muss de oder en sein.", "The language must be de or en."),
    ("error.message_count", "Ein Nachrichtenlimit ist eine ganze Zahl über 0, oder none.", "A message limit is a whole number above 0, or none."),
    ("error.mobileconfig_none", "Dieses Postfach ist auf „kein Abruf“ gestellt. Wählen Sie zuerst IMAP oder POP3.", "This mailbox is set to “no reading”. Choose IMAP or POP3 first."),
    ("error.mta_sts_mode", "Der MTA-STS-Modus muss aus, testing oder enforce sein.", "The MTA-STS mode must be off, testing or enforce."),
    ("error.no_operation", "Diese Aktion gibt es in der API nicht. Siehe /api/v1/openapi.json.", "The API has no such operation. See /api/v1/openapi.json."),
    ("error.not_alias_domain", "Das ist eine Domain, keine Alias-Domain.", "That is a domain, not an alias domain."),
    ("error.not_found", "Das gibt es hier nicht (oder nicht für Ihr Konto).", "That does not exist here (or not for your account)."),
    ("error.reset_self", "Ihr eigenes Passwort ändern Sie auf Ihrer Kontoseite; dort wird das bisherige Passwort abgefragt.", "Change your own password on your account page, which asks for the current one."),
    ("error.role", "Die Rolle muss customer oder admin sein.", "The role must be customer or admin."),
    ("error.service_not_for_mailbox", "Dieses Postfach erlaubt den gewählten Dienst nicht. Wählen Sie unter den Diensten, die seine Einstellungen erlauben.", "This mailbox does not allow the chosen service. Pick among the services its settings allow."),
    ("error.sieve_form.control_character", "Der Text enthält ein Steuerzeichen; bitte nur normalen Text verwenden.", "The text contains a control character; use plain text."),
    ("error.sieve_form.dates_reversed", "Der letzte Tag der Abwesenheit liegt vor dem ersten.", "The last day of the vacation is before its first day."),
    ("error.sieve_form.folder_missing", "Nennen Sie den Ordner, in den die Nachricht verschoben wird.", "Name the folder the message is moved to."),
    ("error.sieve_form.foreign_address", "Wählen Sie die Adressen unter der Adresse des Postfachs und seinen Aliasen.", "Pick the addresses among the mailbox's own address and its aliases."),
    ("error.sieve_form.invalid_action", "Eine Regel verschiebt, markiert als gelesen, markiert mit Fähnchen oder verwirft.", "A rule moves, marks as read, flags or discards."),
    ("error.sieve_form.invalid_date", "Ein Datum wird als JJJJ-MM-TT geschrieben, etwa 2026-12-24.", "A date is written as YYYY-MM-DD, like 2026-12-24."),
    ("error.sieve_form.invalid_days", "Die Tage zwischen zwei Antworten an denselben Absender sind eine ganze Zahl von 1 bis 30.", "The days between two replies to the same sender are a whole number from 1 to 30."),
    ("error.sieve_form.invalid_header", "Eine Regel prüft Von, An, Betreff oder ein Kopffeld, dessen Name aus Buchstaben, Ziffern und Bindestrichen besteht.", "A rule looks at From, To, Subject or a header whose name has only letters, digits and hyphens."),
    ("error.sieve_form.invalid_match", "Eine Regel vergleicht mit „enthält“ oder „ist“.", "A rule compares with “contains” or “is”."),
    ("error.sieve_form.text_missing", "Schreiben Sie den Text der Abwesenheitsnotiz.", "Write the text of the vacation reply."),
    ("error.sieve_form.text_too_long", "Der Text der Abwesenheitsnotiz hat höchstens 10000 Zeichen.", "The vacation text has at most 10000 characters."),
    ("error.sieve_form.too_many_rules", "Ein Postfach hat höchstens 100 Regeln.", "A mailbox has at most 100 rules."),
    ("error.sieve_form.value_missing", "Schreiben Sie, womit das Kopffeld verglichen wird.", "Write what the header is compared with."),
    ("error.sieve_form.value_too_long", "Ein Betreff, Vergleichswert oder Ordnername hat höchstens 200 Zeichen.", "A subject, header value or folder name has at most 200 characters."),
    ("error.sieve_name", "Geben Sie dem Filterskript einen Namen mit höchstens 128 Zeichen, ohne Zeilenumbrüche und ohne Leerzeichen am Anfang oder Ende.", "Give the filter script a name of at most 128 characters, without line breaks or spaces at either end."),
    ("error.sieve_script", "Das Filterskript hat einen Fehler in Zeile {line}, Spalte {column}: {what}", "The filter script has an error in line {line}, column {column}: {what}"),
    ("error.sieve_too_big", "Das Filterskript ist zu lang: Erlaubt sind höchstens {max} Bytes.", "The filter script is too long: at most {max} bytes are allowed."),
    ("error.size", "Ein Speicherlimit ist eine ganze Zahl von Bytes oder von K, M, G oder T (wie 500M oder 2G), oder none.", "A storage limit is a whole number of bytes or of K, M, G or T (like 500M or 2G), or none."),
    ("error.spam_reversed", "Die Junk-Schwelle muss unter der Ablehnungs-Schwelle liegen, sonst würde Post abgelehnt, bevor sie in Junk landen könnte.", "The Junk threshold must be below the refuse threshold, or mail would be refused before it could go to Junk."),
    ("error.spam_threshold", "Eine Spam-Schwelle ist eine Punktzahl wie 6 oder 6.5, none (nie) oder default (die Vorgabe des Anbieters).", "A spam threshold is a score like 6 or 6.5, none (never) or default (the provider's)."),
    ("error.title", "Das hat nicht geklappt", "That did not work"),
    ("error.token_name", "Geben Sie dem Token einen Namen, zum Beispiel den des Skripts, das es benutzt.", "Give the token a name, for example the script that will use it."),
    ("error.token_name_long", "Der Name eines Tokens hat höchstens {max} Zeichen.", "A token name has at most {max} characters."),
    ("error.unauthorized", "Melden Sie sich an oder senden Sie ein API-Token (Authorization: Bearer …).", "Sign in, or send an API token (Authorization: Bearer …)."),
    ("error.unavailable", "Das geht gerade nicht. Versuchen Sie es in einer Minute noch einmal.", "This is not possible right now. Try again in a minute."),
    ("error.warning_switch", "Eine Warnung wird mit ART=on oder ART=off geschaltet; ART ist unencrypted, wrong-protocol, exposed, locked, sending-limit, new-device oder unused-app-password.", "A warning is switched with KIND=on or KIND=off; KIND is unencrypted, wrong-protocol, exposed, locked, sending-limit, new-device or unused-app-password."),
    ("filters.add", "Regel hinzufügen", "Add rule"),
    ("filters.contains", "enthält", "contains"),
    ("filters.discard", "verwerfen", "discard"),
    ("filters.flag", "mit Fähnchen markieren", "flag"),
    ("filters.folder", "Ordner (zum Verschieben)", "Folder (for moving)"),
    ("filters.hand_written", "Aktiv ist ein von Hand (oder per ManageSieve) geschriebenes Skript:", "A script written by hand (or over ManageSieve) is active:"),
    ("filters.hand_written_replace", "Die Formulare zeigen seine Regeln nicht. Wenn Sie hier speichern und „Ersetzen“ ankreuzen, wird stattdessen das Skript der Formulare aktiv; das andere bleibt gespeichert.", "The forms do not show its rules. Saving here with “Replace” ticked activates the forms' script instead; the other one stays stored."),
    ("filters.header_from", "Von", "From"),
    ("filters.header_name", "Name des Kopffelds (bei „anderes“)", "Header name (for “other”)"),
    ("filters.header_other", "anderes Kopffeld", "other header"),
    ("filters.header_subject", "Betreff", "Subject"),
    ("filters.header_to", "An oder Kopie", "To or Cc"),
    ("filters.hint", "Die Regeln werden der Reihe nach geprüft; die erste passende gilt. Groß- und Kleinschreibung zählt nicht.", "Rules are checked in order; the first that matches applies. Upper and lower case do not matter."),
    ("filters.is", "ist genau", "is exactly"),
    ("filters.link", "Filter und Abwesenheitsnotiz", "Filters and vacation reply"),
    ("filters.list", "Filterregeln", "Filter rules"),
    ("filters.mark_read", "als gelesen markieren", "mark as read"),
    ("filters.match", "Vergleich", "Comparison"),
    ("filters.move", "in Ordner verschieben", "move to folder"),
    ("filters.moved_to", "in Ordner „{folder}“ verschieben", "move to folder “{folder}”"),
    ("filters.no_rules", "Noch keine Regeln: Alle Nachrichten kommen in den Posteingang.", "No rules yet: every message goes to the inbox."),
    ("filters.none_active", "Zurzeit ist kein Filter aktiv.", "No filter is active at the moment."),
    ("filters.replace", "Ersetzen: das Skript der Formulare statt des von Hand geschriebenen aktivieren", "Replace: activate the forms' script instead of the hand-written one"),
    ("filters.then", "dann", "then"),
    ("filters.title", "Filter und Abwesenheitsnotiz", "Filters and vacation reply"),
    ("filters.up", "nach oben", "up"),
    ("filters.value", "Wert", "Value"),
    ("filters.when", "Wenn", "When"),
    ("filters.when_header", "Wenn das Kopffeld", "When the header"),
    ("form.current_password", "Bisheriges Passwort", "Current password"),
    ("form.domain", "Domain", "Domain"),
    ("form.local_part", "Name vor dem @", "Name before the @"),
    ("form.new_password", "Neues Passwort", "New password"),
    ("form.password", "Passwort", "Password"),
    ("form.remove", "Entfernen", "Remove"),
    ("form.save", "Speichern", "Save"),
    ("import.copied", "Nachrichten kopiert", "Messages copied"),
    ("import.finished", "Beendet", "Finished"),
    ("import.folders", "Ordner fertig", "Folders done"),
    ("import.hint", "Alle Ordner Ihres alten Postfachs werden per IMAP hierher kopiert, mit Markierungen und Datum. Beim alten Anbieter bleibt alles, wie es ist. Ein zweiter Umzug kopiert nur, was neu dazugekommen ist.", "Every folder of your old mailbox is copied here over IMAP, with flags and dates. Nothing changes at the old provider. Moving in again copies only what is new."),
    ("import.host", "Alter IMAP-Server", "Old IMAP server"),
    ("import.jobs", "Umzüge", "Imports"),
    ("import.link", "Vom alten Anbieter umziehen", "Move in from your old provider"),
    ("import.login", "Benutzername beim alten Anbieter", "Login at the old provider"),
    ("import.none", "Noch kein Umzug.", "No import yet."),
    ("import.password", "Passwort beim alten Anbieter", "Password at the old provider"),
    ("import.password_hint", "Das Passwort wird nicht gespeichert: Es wird nur während des Umzugs gebraucht und danach vergessen.", "The password is not stored: it is used only while the import runs, and forgotten afterwards."),
    ("import.port", "Port (leer: Standard)", "Port (empty: default)"),
    ("import.running_hint", "Der Umzug läuft. Diese Seite lädt sich alle paar Sekunden neu; Sie können sie auch schließen.", "The import is running. This page reloads every few seconds; you may also close it."),
    ("import.security", "Verschlüsselung", "Encryption"),
    ("import.security_starttls", "STARTTLS (meist Port 143)", "STARTTLS (usually port 143)"),
    ("import.security_tls", "TLS (meist Port 993)", "TLS (usually port 993)"),
    ("import.server", "Server", "Server"),
    ("import.skipped", "Übersprungen", "Skipped"),
    ("import.start", "Umzug starten", "Start the import"),
    ("import.started", "Gestartet", "Started"),
    ("import.state", "Stand", "State"),
    ("import.state.done", "Fertig", "Done"),
    ("import.state.failed", "Fehlgeschlagen", "Failed"),
    ("import.state.interrupted", "Unterbrochen – geben Sie das Passwort erneut ein, um fortzusetzen", "Interrupted – enter the password again to resume"),
    ("import.state.queued", "Wartet", "Waiting"),
    ("import.state.running", "Läuft", "Running"),
    ("import.submit", "Umzug starten", "Start the import"),
    ("import.title", "Vom alten Anbieter umziehen", "Move in from your old provider"),
    ("login.bad", "Anmeldename oder Passwort stimmen nicht.", "The login or the password is not right."),
    ("login.code_wrong", "Der Code stimmt nicht. Melden Sie sich noch einmal an.", "The code is not right. Please sign in again."),
    ("login.disabled", "Dieses Konto ist gesperrt. Wenden Sie sich an Ihren Anbieter.", "This account is disabled. Please contact your provider."),
    ("login.expired", "Das Anmeldeformular ist abgelaufen. Bitte noch einmal.", "The sign-in form has expired. Please try again."),
    ("login.hint", "Kunden melden sich mit ihrem Kundennamen an, Postfach-Nutzer mit ihrer E-Mail-Adresse.", "Customers sign in with their customer name, mailbox users with their e-mail address."),
    ("login.name", "Kundenname oder E-Mail-Adresse", "Customer name or e-mail address"),
    ("login.password", "Passwort", "Password"),
    ("login.submit", "Anmelden", "Sign in"),
    ("login.throttled", "Zu viele Fehlversuche. Warten Sie eine Viertelstunde und versuchen Sie es dann noch einmal.", "Too many failed attempts. Wait a quarter of an hour, then try again."),
    ("login.title", "Anmelden", "Sign in"),
    ("login.tls", "Anmelden geht nur über eine verschlüsselte Verbindung.", "Signing in needs an encrypted connection."),
    ("logins.all", "Alle", "All"),
    ("logins.app_password", "mit App-Passwort „{name}“", "with app password “{name}”"),
    ("logins.encryption", "Verschlüsselung", "Encryption"),
    ("logins.filter", "Filter", "Filter"),
    ("logins.hint", "Jede Anmeldung und jeder abgewiesene Versuch, mit Verschlüsselung.", "Every login and every refused attempt, with its encryption."),
    ("logins.ip", "IP-Adresse", "IP address"),
    ("logins.login", "Anmeldename", "Login"),
    ("logins.none", "Keine Einträge.", "No entries."),
    ("logins.only_failed", "Nur abgewiesene", "Only refused"),
    ("logins.only_unencrypted", "Nur unverschlüsselte", "Only unencrypted"),
    ("logins.result", "Ergebnis", "Result"),
    ("logins.service", "Dienst", "Service"),
    ("logins.time", "Zeit", "Time"),
    ("logins.title", "Anmeldungen", "Logins"),
    ("logins.unencrypted", "unverschlüsselt", "unencrypted"),
    ("mailbox.access", "Zugriffsart", "Access mode"),
    ("mailbox.access_why", "Warum nur eine? Ein neues Handy, das per POP3 abruft, holt alle E-Mails ab und löscht sie auf dem Server – danach fehlen sie auf allen anderen Geräten. Wählen Sie IMAP, wenn mehrere Geräte dasselbe Postfach lesen.", "Why only one? A new phone that fetches by POP3 takes all mail and removes it from the server – afterwards it is missing on every other device. Choose IMAP when several devices read the same mailbox."),
    ("mailbox.add_alias", "Alias hinzufügen", "Add alias"),
    ("mailbox.aliases", "Aliase", "Aliases"),
    ("mailbox.ask_owner", "Diese Einstellungen ändert der Inhaber des Kundenkontos.", "The owner of the customer account changes these settings."),
    ("mailbox.change_password", "Passwort ändern", "Change password"),
    ("mailbox.mobileconfig", "Profil für iPhone, iPad und Mac herunterladen", "Download a profile for iPhone, iPad and Mac"),
    ("mailbox.no_aliases", "Keine Aliase.", "No aliases."),
    ("mailbox.password", "Passwort", "Password"),
    ("mailbox.remove", "Postfach entfernen", "Remove mailbox"),
    ("mailbox.settings", "Einstellungen", "Settings"),
    ("mailbox.submission", "Senden erlaubt", "Sending allowed"),
    ("mailbox.submission_why", "Aus, wenn mit diesem Postfach nur empfangen wird: Dann kann ein gestohlenes Passwort nicht für Spam benutzt werden.", "Off when this mailbox only receives: then a stolen password cannot be used to send spam."),
    ("mailbox.tls_only", "Nur verschlüsselt (TLS)", "TLS only"),
    ("mailbox.tls_server_refuses", "Dieser Server erlaubt keine unverschlüsselten Anmeldungen: Der Schalter ändert hier derzeit nichts.", "This server allows no unencrypted logins at all: the switch changes nothing here at the moment."),
    ("mailbox.tls_why", "Programme müssen das Passwort verschlüsselt senden; unverschlüsselte Versuche werden abgewiesen. Der Schalter wirkt nur, wo der Betreiber unverschlüsselte Anmeldungen überhaupt erlaubt.", "Programs must send the password encrypted; unencrypted attempts are refused. The switch matters only where the operator allows unencrypted logins at all."),
    ("mailboxes.address", "Adresse", "Address"),
    ("mailboxes.create", "Postfach anlegen", "Create mailbox"),
    ("mailboxes.exposed", "Passwort ungeschützt gesendet", "Password sent unprotected"),
    ("mailboxes.need_domain", "Fügen Sie zuerst eine Domain hinzu.", "Add a domain first."),
    ("mailboxes.new", "Neues Postfach", "New mailbox"),
    ("mailboxes.none", "Noch keine Postfächer.", "No mailboxes yet."),
    ("mailboxes.title", "Postfächer", "Mailboxes"),
    ("meter.fair", "mittel – noch zu schwach", "fair – still too weak"),
    ("meter.strong", "stark", "strong"),
    ("meter.very_strong", "sehr stark", "very strong"),
    ("meter.weak", "schwach", "weak"),
    ("nav.account", "Konto", "Account"),
    ("nav.aliases", "Aliase", "Aliases"),
    ("nav.all_domains", "Alle Domains", "All domains"),
    ("nav.customers", "Kunden", "Customers"),
    ("nav.domains", "Domains", "Domains"),
    ("nav.logins", "Anmeldungen", "Logins"),
    ("nav.mailboxes", "Postfächer", "Mailboxes"),
    ("nav.my_mailbox", "Mein Postfach", "My mailbox"),
    ("nav.sign_out", "Abmelden", "Sign out"),
    ("outbound_tls.label", "Immer verschlüsselt an andere Server senden", "Always require TLS to other servers"),
    ("outbound_tls.title", "Verschlüsselung zu anderen Servern", "Encryption to other servers"),
    ("outbound_tls.why", "Post aus diesem Postfach geht nur an Server, die Verschlüsselung annehmen; sonst bekommen Sie eine Nachricht, dass sie nicht zugestellt wurde.", "Mail from this mailbox is only sent to servers that accept encryption; otherwise you get a notice that it was not delivered."),
    ("outbound_tls.why_account", "Post aus allen Ihren Postfächern geht nur an Server, die Verschlüsselung annehmen; sonst bekommt der Absender eine Nachricht, dass sie nicht zugestellt wurde. Jedes Postfach kann es auch einzeln einschalten.", "Mail from all your mailboxes is only sent to servers that accept encryption; otherwise the sender gets a notice that it was not delivered. Each mailbox can also switch it on by itself."),
    ("outbound_tls.why_customer", "Post aus allen Postfächern dieses Kunden geht nur an Server, die Verschlüsselung annehmen; sonst bekommt der Absender eine Nachricht, dass sie nicht zugestellt wurde.", "Mail from all mailboxes of this customer is only sent to servers that accept encryption; otherwise the sender gets a notice that it was not delivered."),
    ("password.suggestion", "Vorschlag, der die Regel mit großem Abstand erfüllt:", "A suggestion that passes the rule by a wide margin:"),
    ("password.suggestion_advice", "Bewahren Sie es in einem Passwort-Manager auf und verwenden Sie es nur für dieses Postfach (oder Konto).", "Keep it in a password manager and use it for this mailbox (or account) only."),
    ("pw.fb.a-word-by-itself-is-easy-to-guess", "Ein einzelnes Wort ist leicht zu erraten.", "A word by itself is easy to guess."),
    ("pw.fb.add-another-word-or-two", "Fügen Sie ein oder zwei weitere Wörter hinzu; ungewöhnliche Wörter sind besser.", "Add another word or two; uncommon words are better."),
    ("pw.fb.all-uppercase-is-almost-as-easy-to-guess-as-all-lowercase", "Nur Großbuchstaben sind kaum schwerer zu erraten als nur Kleinbuchstaben.", "All-uppercase is almost as easy to guess as all-lowercase."),
    ("pw.fb.avoid-dates-and-years-that-are-associated-with-you", "Vermeiden Sie Daten und Jahre, die mit Ihnen zu tun haben.", "Avoid dates and years that are associated with you."),
    ("pw.fb.avoid-recent-years", "Vermeiden Sie Jahreszahlen der letzten Jahre.", "Avoid recent years."),
    ("pw.fb.avoid-repeated-words-and-characters", "Vermeiden Sie wiederholte Wörter und Zeichen.", "Avoid repeated words and characters."),
    ("pw.fb.avoid-sequences", "Vermeiden Sie Folgen wie abc oder 123.", "Avoid sequences like abc or 123."),
    ("pw.fb.avoid-years-that-are-associated-with-you", "Vermeiden Sie Jahre, die mit Ihnen zu tun haben.", "Avoid years that are associated with you."),
    ("pw.fb.capitalization-doesnt-help-very-much", "Großbuchstaben helfen kaum.", "Capitalization doesn't help very much."),
    ("pw.fb.common-names-and-surnames-are-easy-to-guess", "Häufige Vor- und Nachnamen sind leicht zu erraten.", "Common names and surnames are easy to guess."),
    ("pw.fb.dates-are-often-easy-to-guess", "Daten sind oft leicht zu erraten.", "Dates are often easy to guess."),
    ("pw.fb.names-and-surnames-by-themselves-are-easy-to-guess", "Vor- und Nachnamen allein sind leicht zu erraten.", "Names and surnames by themselves are easy to guess."),
    ("pw.fb.no-need-for-symbols-digits-or-uppercase-letters", "Sonderzeichen, Ziffern oder Großbuchstaben sind nicht nötig.", "No need for symbols, digits, or uppercase letters."),
    ("pw.fb.predictable-substitutions-dont-help-very-much", "Vorhersehbare Ersetzungen wie @ statt a helfen kaum.", "Predictable substitutions like '@' instead of 'a' don't help very much."),
    ("pw.fb.recent-years-are-easy-to-guess", "Jahreszahlen der letzten Jahre sind leicht zu erraten.", "Recent years are easy to guess."),
    ("pw.fb.repeats-like-aaa-are-easy-to-guess", "Wiederholungen wie „aaa“ sind leicht zu erraten.", "Repeats like \"aaa\" are easy to guess."),
    ("pw.fb.repeats-like-abc-abc-are-only-slightly-harder-to-guess", "Wiederholungen wie „abcabc“ sind nur wenig schwerer zu erraten als „abc“.", "Repeats like \"abcabc\" are only slightly harder to guess than \"abc\"."),
    ("pw.fb.reversed-words-arent-much-harder-to-guess", "Rückwärts geschriebene Wörter sind kaum schwerer zu erraten.", "Reversed words aren't much harder to guess."),
    ("pw.fb.sequences-like-abc-are-easy-to-guess", "Folgen wie abc oder 6543 sind leicht zu erraten.", "Sequences like abc or 6543 are easy to guess."),
    ("pw.fb.short-keyboard-patterns-are-easy-to-guess", "Kurze Tastaturmuster sind leicht zu erraten.", "Short keyboard patterns are easy to guess."),
    ("pw.fb.straight-rows-of-keys-are-easy-to-guess", "Gerade Tastenreihen sind leicht zu erraten.", "Straight rows of keys are easy to guess."),
    ("pw.fb.this-is-a-common-password", "Das ist ein häufig benutztes Passwort.", "This is a common password."),
    ("pw.fb.this-is-a-top10-password", "Das ist eines der zehn häufigsten Passwörter.", "This is a top-10 common password."),
    ("pw.fb.this-is-a-top100-password", "Das ist eines der hundert häufigsten Passwörter.", "This is a top-100 common password."),
    ("pw.fb.this-is-similar-to-a-commonly-used-password", "Das ähnelt einem häufig benutzten Passwort.", "This is similar to a commonly used password."),
    ("pw.fb.use-a-few-words-avoid-common-phrases", "Nehmen Sie einige Wörter und vermeiden Sie bekannte Redewendungen.", "Use a few words, avoid common phrases."),
    ("pw.fb.use-a-longer-keyboard-pattern-with-more-turns", "Nehmen Sie ein längeres Tastaturmuster mit mehr Richtungswechseln.", "Use a longer keyboard pattern with more turns."),
    ("pw.too_easy", "Das Passwort ist zu leicht zu erraten (Stärke {score} von 4, mindestens {min} nötig).", "The password is too easy to guess (strength {score} of 4, at least {min} needed)."),
    ("pw.too_long", "Das Passwort hat {n} Zeichen; erlaubt sind höchstens {max}.", "The password has {n} characters; use at most {max}."),
    ("pw.too_short", "Das Passwort hat {n} Zeichen; verwenden Sie mindestens {min}, zum Beispiel einige Wörter, die nichts miteinander zu tun haben.", "The password has {n} characters; use at least {min}, for example a few unrelated words."),
    ("pw.user_words", "Das Passwort besteht größtenteils aus Ihrer Adresse, Ihrer Domain oder Ihrem Kundennamen – auch rückwärts, wiederholt oder mit Ziffern und Zeichen ergänzt errät man es schnell. Nehmen Sie Wörter, die nichts mit Ihnen zu tun haben.", "The password is mostly made of your address, your domain or your customer name – reversed, repeated or with digits and symbols added it is still guessed quickly. Use words that have nothing to do with you."),
    ("quota.customer", "Alle Postfächer des Kunden", "All of the customer's mailboxes"),
    ("quota.hint", "Größen in K, M, G oder T (wie 500M oder 2G); none heißt: kein Limit. Bei 80 % und 95 % bekommt das Postfach eine Warnung; ist es voll, wird neue Post abgewiesen, bis Platz frei wird.", "Sizes in K, M, G or T (like 500M or 2G); none means no limit. The mailbox gets a warning at 80 % and 95 %; when it is full, new mail is refused until there is room again."),
    ("quota.language", "Sprache der Hinweise von Postfach", "Language of Postfach's notices"),
    ("quota.limit", "Speicherlimit", "Storage limit"),
    ("quota.message_limit", "Nachrichtenlimit", "Message limit"),
    ("quota.messages", "{used} Nachrichten", "{used} messages"),
    ("quota.messages_of", "{used} von höchstens {limit} Nachrichten", "{used} of at most {limit} messages"),
    ("quota.no_limit", "{used} belegt (kein Limit)", "{used} in use (no limit)"),
    ("quota.of", "{used} von {limit} belegt ({percent} %)", "{used} of {limit} in use ({percent} %)"),
    ("quota.title", "Speicherplatz", "Storage"),
    ("result.account_disabled", "Konto gesperrt", "account disabled"),
    ("result.app_password_required", "Gerät braucht App-Passwort", "device needs an app password"),
    ("result.bad_credentials", "falsches Passwort", "wrong password"),
    ("result.malformed", "unlesbare Anmeldung", "unreadable login"),
    ("result.not_for_app_password", "nicht für dieses App-Passwort", "not for this app password"),
    ("result.ok", "ok", "ok"),
    ("result.service_disabled", "Dienst ausgeschaltet", "service switched off"),
    ("result.throttled", "gebremst", "throttled"),
    ("result.tls_required", "TLS erforderlich", "TLS required"),
    ("role.admin", "Admin", "Admin"),
    ("role.customer", "Kunde", "Customer"),
    ("sent.delivered", "zugestellt", "delivered"),
    ("sent.failed", "nicht zugestellt", "not delivered"),
    ("sent.fix_unencrypted", "Nur noch verschlüsselt senden", "Send only encrypted from now on"),
    ("sent.here", "hier (in ein Postfach dieses Servers)", "here (to a mailbox on this server)"),
    ("sent.hint", "Was aus der Post wurde, die aus diesem Postfach gesendet wurde: an wen, ob sie ankam, welcher Server sie annahm und ob der Weg dorthin verschlüsselt war. Die neuesten 100 Empfänger, so lange wie die Anmeldeliste aufbewahrt.", "What became of the mail sent from this mailbox: to whom, whether it arrived, which server took it and whether the way there was encrypted. The newest 100 recipients, kept as long as the login list."),
    ("sent.link", "Gesendete Post und ihre Verschlüsselung ansehen", "See sent mail and its encryption"),
    ("sent.none", "Noch keine gesendete Post zugestellt.", "No sent mail delivered yet."),
    ("sent.recipient", "Empfänger", "Recipient"),
    ("sent.server", "Empfangender Server", "Receiving server"),
    ("sent.some_unencrypted", "Ein Teil dieser Post ging unverschlüsselt zu Servern, die keine Verschlüsselung anboten.", "Some of this mail went unencrypted to servers that offered no encryption."),
    ("sent.title", "Gesendete Post", "Sent mail"),
    ("service.api", "API", "API"),
    ("service.imap", "IMAP", "IMAP"),
    ("service.panel", "Kundensystem", "Panel"),
    ("service.pop3", "POP3", "POP3"),
    ("service.sieve", "Filter (ManageSieve)", "Filters (ManageSieve)"),
    ("service.submission", "Versand (SMTP)", "Sending (SMTP)"),
    ("sieve.hint", "Für alle, die Sieve (RFC 5228) kennen: Das aktive Skript als Text. Beim Speichern wird es geprüft; ein Fehler wird mit Zeile und Spalte genannt. Wenn Sie das Skript der Formulare hier ändern, zeigen die Formulare es danach als von Hand geschrieben.", "For those who know Sieve (RFC 5228): the active script as text. Saving checks it first; an error is named with its line and column. If you change the forms' script here, the forms show it as hand-written afterwards."),
    ("sieve.link", "Als Sieve bearbeiten", "Edit as Sieve"),
    ("sieve.script", "Aktives Skript", "Active script"),
    ("sieve.title", "Als Sieve bearbeiten", "Edit as Sieve"),
    ("spam.hint", "Spam-Punktzahl, ab der Post abgelehnt wird oder in den Junk-Ordner geht: eine Zahl wie 6.5, none (nie) oder default (Vorgabe des Anbieters).", "Spam score from which mail is refused or goes to the Junk folder: a number like 6.5, none (never) or default (the provider's setting)."),
    ("spam.junk", "Junk ab", "Junk from"),
    ("spam.reject", "Ablehnen ab", "Refuse from"),
    ("spam.title", "Spam (rspamd)", "Spam (rspamd)"),
    ("store.address_taken", "Diese Adresse ist schon als Postfach oder Alias vergeben.", "This address is already in use as a mailbox or alias."),
    ("store.alias_chain", "Die Ziel-Domain ist selbst eine Alias-Domain. Wählen Sie deren Ziel-Domain.", "The target domain is itself an alias domain. Choose its target domain."),
    ("store.app_password_name_taken", "Dieses Postfach hat schon ein App-Passwort mit diesem Namen. Wählen Sie einen anderen Namen.", "This mailbox already has an app password with this name. Choose another name."),
    ("store.customer_has_domains", "Dem Kunden gehören noch Domains. Entfernen Sie sie zuerst.", "The customer still owns domains. Remove them first."),
    ("store.customer_taken", "Diesen Kundennamen gibt es schon. Wählen Sie einen anderen.", "A customer with this name exists already. Choose another name."),
    ("store.domain_not_empty", "Die Domain hat noch Postfächer, Aliase oder Alias-Domains.", "The domain still has mailboxes, aliases or alias domains."),
    ("store.domain_taken", "Diese Domain ist hier schon eingerichtet.", "This domain is already set up here."),
    ("store.import_running", "Es läuft schon ein Umzug in dieses Postfach. Warten Sie, bis er fertig ist.", "An import into this mailbox is already running. Wait until it has finished."),
    ("store.in_alias_domain", "In einer Alias-Domain werden keine Adressen angelegt: Legen Sie die Adresse in der Ziel-Domain an, sie gilt dann auch hier.", "Addresses are not created in an alias domain: create the address in its target domain and it works here too."),
    ("store.local_part", "Vor dem @ sind nur Buchstaben, Ziffern, Punkt, Binde- und Unterstrich erlaubt.", "Only letters, digits, dots, hyphens and underscores are allowed before the @."),
    ("store.mailbox_quota_above", "Ein Postfach des Kunden hat ein größeres eigenes Limit. Verkleinern Sie das zuerst oder wählen Sie ein größeres Gesamtlimit.", "One of the customer's mailboxes has a larger limit of its own. Lower that first, or choose a larger total."),
    ("store.not_full_domain", "Das ist kein vollständiger Domainname. Verwenden Sie einen Namen wie example.net.", "That is not a full domain name. Use a name like example.net."),
    ("store.other_customer", "Ein Alias kann nur in ein Postfach desselben Kunden zustellen.", "An alias can only deliver into a mailbox of the same customer."),
    ("store.quota_above_customer", "Das Speicherlimit des Postfachs kann nicht größer sein als das Gesamtlimit des Kunden. Wählen Sie ein kleineres.", "The mailbox's storage limit cannot be larger than the customer's total. Choose a smaller one."),
    ("store.refused", "Diese Änderung ist nicht möglich.", "This change is not possible."),
    ("store.sieve_active", "Dieses Filterskript ist aktiv. Schalten Sie es zuerst aus oder aktivieren Sie ein anderes.", "This filter script is active. Switch it off or activate another one first."),
    ("store.sieve_name_taken", "Dieses Postfach hat schon ein Filterskript mit diesem Namen. Wählen Sie einen anderen Namen.", "This mailbox already has a filter script with this name. Choose another name."),
    ("store.too_many_app_passwords", "Dieses Postfach hat schon die höchste Zahl an App-Passwörtern. Widerrufen Sie zuerst eines, das Sie nicht mehr brauchen.", "This mailbox already has the most app passwords it may have. Revoke one you no longer need first."),
    ("store.too_many_sieve_scripts", "Dieses Postfach hat schon die höchste Zahl an Filterskripten. Entfernen Sie zuerst eines, das Sie nicht mehr brauchen.", "This mailbox already has the most filter scripts it may have. Remove one you no longer need first."),
    ("store.totp_on", "Die Anmeldung in zwei Schritten ist schon eingeschaltet. Schalten Sie sie zuerst aus.", "Two-factor sign-in is already on. Switch it off first."),
    ("tlsrpt.count", "Sitzungen", "Sessions"),
    ("tlsrpt.explain", "Andere Mailserver berichten hier, ob sie Ihre Domain verschlüsselt erreicht haben (TLS-RPT, RFC 8460). Die Zahlen sind die Angaben des jeweiligen Absenders.", "Other mail servers report here whether they reached your domain encrypted (TLS-RPT, RFC 8460). The numbers are what each sender says."),
    ("tlsrpt.failed", "Fehlgeschlagen", "Failed"),
    ("tlsrpt.failures", "Fehler nach Absender und Ursache", "Failures by organisation and reason"),
    ("tlsrpt.none", "Noch keine Berichte erhalten.", "No reports received yet."),
    ("tlsrpt.organization", "Absender", "Organisation"),
    ("tlsrpt.period", "Zeitraum", "Period"),
    ("tlsrpt.result", "Ursache", "Reason"),
    ("tlsrpt.result.certificate-expired", "Zertifikat abgelaufen", "Certificate expired"),
    ("tlsrpt.result.certificate-host-mismatch", "Zertifikat passt nicht zum Servernamen", "Certificate does not match the server name"),
    ("tlsrpt.result.certificate-not-trusted", "Zertifikat nicht vertrauenswürdig", "Certificate not trusted"),
    ("tlsrpt.result.dane-required", "DANE verlangt, aber nicht erfüllt", "DANE required but not met"),
    ("tlsrpt.result.dnssec-invalid", "DNSSEC ungültig", "DNSSEC invalid"),
    ("tlsrpt.result.starttls-not-supported", "Kein STARTTLS angeboten", "STARTTLS not offered"),
    ("tlsrpt.result.sts-policy-fetch-error", "MTA-STS-Richtlinie nicht abrufbar", "MTA-STS policy could not be fetched"),
    ("tlsrpt.result.sts-policy-invalid", "MTA-STS-Richtlinie fehlerhaft", "MTA-STS policy invalid"),
    ("tlsrpt.result.sts-webpki-invalid", "Zertifikat des MTA-STS-Webservers ungültig", "MTA-STS web server certificate invalid"),
    ("tlsrpt.result.tlsa-invalid", "TLSA-Eintrag fehlerhaft", "TLSA record invalid"),
    ("tlsrpt.result.validation-failure", "Prüfung fehlgeschlagen", "Validation failed"),
    ("tlsrpt.successful", "Erfolgreich", "Successful"),
    ("tlsrpt.title", "TLS-Berichte", "TLS reports"),
    ("vacation.addresses", "Auch für diese Adressen antworten", "Also reply for these addresses"),
    ("vacation.addresses_hint", "Nachrichten an die angekreuzten Adressen gelten als an dieses Postfach gerichtet.", "Messages to the ticked addresses count as addressed to this mailbox."),
    ("vacation.date_format", "JJJJ-MM-TT", "YYYY-MM-DD"),
    ("vacation.days", "Tage zwischen zwei Antworten an denselben Absender", "Days between two replies to the same sender"),
    ("vacation.enabled", "Abwesenheitsnotiz einschalten", "Switch the vacation reply on"),
    ("vacation.from", "Erster Tag (leer: ab sofort)", "First day (empty: from now)"),
    ("vacation.hint", "Beantwortet eingehende Nachrichten automatisch, höchstens einmal je Absender in der gewählten Zahl von Tagen; nie Mailinglisten, Massen- und automatische Nachrichten.", "Answers incoming messages automatically, at most once per sender in the chosen number of days; never mailing lists, bulk or automatic messages."),
    ("vacation.subject", "Betreff (leer: „Auto:“ und der Betreff der Nachricht)", "Subject (empty: “Auto:” and the message's subject)"),
    ("vacation.text", "Text", "Text"),
    ("vacation.title", "Abwesenheitsnotiz", "Vacation reply"),
    ("vacation.until", "Letzter Tag (leer: bis zum Ausschalten)", "Last day (empty: until switched off)"),
    ("warnings.exposed", "Passwort ungeschützt übertragen", "Password sent unprotected"),
    ("warnings.hint", "Postfach schreibt höchstens eine Warnung je Art und Tag in den Posteingang; weitere Ereignisse werden in der nächsten gezählt.", "Postfach writes at most one warning of each kind a day into the INBOX; further events are counted in the next one."),
    ("warnings.locked", "Anmeldungen gesperrt nach falschen Passwörtern", "Logins locked after wrong passwords"),
    ("warnings.new-device", "Anmeldung von einem neuen Gerät oder Netz", "Login from a new device or network"),
    ("warnings.sending-limit", "Sendelimit erreicht", "Sending limit reached"),
    ("warnings.title", "Warnungen per E-Mail", "Warnings by mail"),
    ("warnings.unencrypted", "Anmeldeversuch ohne Verschlüsselung", "Login attempt without encryption"),
    ("warnings.unused-app-password", "App-Passwörter seit 90 Tagen unbenutzt", "App passwords unused for 90 days"),
    ("warnings.wrong-protocol", "Gerät mit nicht erlaubtem Protokoll (POP3/IMAP)", "Device with a protocol not allowed (POP3/IMAP)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &[&str] = &[
        include_str!("../templates/base.html"),
        include_str!("../templates/login.html"),
        include_str!("../templates/code.html"),
        include_str!("../templates/error.html"),
        include_str!("../templates/confirm.html"),
        include_str!("../templates/admin_customers.html"),
        include_str!("../templates/domains.html"),
        include_str!("../templates/domain.html"),
        include_str!("../templates/mailboxes.html"),
        include_str!("../templates/mailbox.html"),
        include_str!("../templates/aliases.html"),
        include_str!("../templates/logins.html"),
        include_str!("../templates/logins_table.html"),
        include_str!("../templates/account.html"),
        include_str!("../templates/meter.html"),
        include_str!("../templates/filters.html"),
        include_str!("../templates/sieve_edit.html"),
    ];
    const SOURCES: &[&str] = &[
        include_str!("pages/mod.rs"),
        include_str!("pages/login.rs"),
        include_str!("pages/customers.rs"),
        include_str!("pages/domains.rs"),
        include_str!("pages/mailboxes.rs"),
        include_str!("pages/aliases.rs"),
        include_str!("pages/logins.rs"),
        include_str!("pages/account.rs"),
        include_str!("pages/filters.rs"),
        include_str!("api/mod.rs"),
        include_str!("api/handlers.rs"),
        include_str!("context.rs"),
        include_str!("i18n.rs"),
    ];

    #[test]
    fn catalogue_is_sorted_unique_and_complete() {
        for pair in CATALOGUE.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} must come before {}", pair[1].0, pair[0].0);
        }
        for (key, de, en) in CATALOGUE {
            assert!(!de.is_empty() && !en.is_empty(), "{key}");
        }
    }

    /// Every `s("…")`, `f("…")` and literal key used by a template or handler exists.
    #[test]
    fn every_used_key_exists() {
        let t = Tr::new(Lang::De);
        let mut missing = Vec::new();
        for text in TEMPLATES.iter().chain(SOURCES) {
            for (i, _) in text.match_indices('"') {
                let rest = &text[i + 1..];
                let Some(end) = rest.find('"') else { continue };
                let candidate = &rest[..end];
                let prefixes = [
                    "access.",
                    "account.",
                    "aliases.",
                    "check.",
                    "code.",
                    "common.",
                    "confirm.",
                    "customers.",
                    "dns.",
                    "domain.",
                    "domains.",
                    "error.",
                    "filters.",
                    "form.",
                    "login.",
                    "logins.",
                    "mailbox.",
                    "mailboxes.",
                    "meter.",
                    "nav.",
                    "pw.",
                    "role.",
                    "sieve.",
                    "store.",
                    "tlsrpt.",
                    "vacation.",
                ];
                let looks_like_key = prefixes.iter().any(|p| candidate.starts_with(p))
                    && candidate.bytes().all(|b| b.is_ascii_lowercase() || b"._-0123456789".contains(&b))
                    && !candidate.ends_with('.')
                    && !candidate.ends_with(".html");
                if looks_like_key && candidate != "pw.fb." && t.key(candidate).is_none() {
                    missing.push(candidate.to_string());
                }
            }
        }
        for service in postfach_types::Service::ALL {
            if t.key(&format!("service.{service}")).is_none() {
                missing.push(format!("service.{service}"));
            }
        }
        for result in postfach_types::LoginResult::ALL {
            if t.key(&format!("result.{}", result.as_str())).is_none() {
                missing.push(format!("result.{result}"));
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "missing from the catalogue: {missing:?}");
    }

    #[test]
    fn zxcvbn_feedback_is_translated() {
        // Passwords that trigger each kind of zxcvbn warning and suggestion.
        for password in [
            "password1234",
            "qwertyuiopasdf",
            "aaaaaaaaaaaaaaa",
            "abcabcabcabcabc",
            "abcdefghijklmno",
            "19801980198019",
            "Michael Michael",
            "drowssapdrowssap",
            "P@ssw0rd12345",
            "ALLUPPERCASEWORD",
            "zxcvbnzxcvbn",
            "12/24/1985abcde",
            "Password2024!",
        ] {
            let verdict = postfach_policy::check_password(password, &[]);
            for item in verdict.warning.iter().chain(&verdict.suggestions) {
                for lang in [Lang::De, Lang::En] {
                    assert!(feedback(&Tr::new(lang), &item.code).is_some(), "no text for {} ({password})", item.code);
                }
            }
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_of_german_and_english() {
        let pick = |h: &str| Lang::negotiate(Some(&HeaderValue::from_str(h).expect("header")));
        assert_eq!(pick("de-DE,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(pick("en-US,en;q=0.9,de;q=0.8"), Lang::En);
        assert_eq!(pick("fr-FR,fr;q=0.9,de;q=0.5"), Lang::De);
        assert_eq!(pick("fr"), Lang::En);
        assert_eq!(pick("en;q=0.1, de;q=0.7"), Lang::De);
        assert_eq!(pick("de;q=0"), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
    }

    #[test]
    fn german_pages_never_show_the_stores_english() {
        let de = Tr::new(Lang::De);
        let address = postfach_types::EmailAddress::parse("max@acme.example").expect("address");
        let e = AdminError::Conflict(Conflict::AddressTaken { address });
        assert_eq!(admin_message(&de, &e), "Diese Adresse ist schon als Postfach oder Alias vergeben.");
        let en = Tr::new(Lang::En);
        assert_eq!(admin_message(&en, &e), "Max@acme.example is already in use as a mailbox or alias.");
    }

    #[test]
    fn refusal_reasons_are_localised() {
        let de = Tr::new(Lang::De);
        let verdict = postfach_policy::check_password("kurz", &[]);
        assert!(verdict_reason(&de, &verdict, 4).starts_with("Das Passwort hat 4 Zeichen"));
        let verdict = postfach_policy::check_password("password1234", &[]);
        let reason = verdict_reason(&de, &verdict, 12);
        assert!(reason.contains("zu leicht zu erraten") && reason.contains("häufig"), "{reason}");
    }
}
