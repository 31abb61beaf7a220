//! Checks of what a domain actually publishes, through the configured resolver.
//!
//! [`run`] asks DNS and returns a [`DomainReport`]: one or more [`Verdict`]s per check
//! (ownership, MX, SPF, DKIM, DMARC, the SRV records and the autoconfig/autodiscover
//! names of client setup), each ok / warning / error with a sentence in German
//! and English that says what was found and what to do. [`refresh`] is what the CLI, the
//! panel and the server's periodic task call: it verifies ownership when the TXT record is
//! there, makes sure the domain has a DKIM key, runs the checks, caches the report in the
//! store (which records changes), and activates a pending DKIM key once its record is
//! found.
//!
//! SPF is evaluated by mail-auth for each outbound address of the platform, as a receiver
//! would for mail from `postmaster@DOMAIN` (RFC 7208 §4), and linted here: more than one
//! record (RFC 7208 §4.5), `+all`/`?all`/`~all`, more than 10 lookups (§4.6.4), syntax.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};
use postfach_store::dkim::{DkimKey, DkimKeyState};
use postfach_store::domains::Domain;
use postfach_store::warnings::{WarningEvent, WarningFacts, WarningKind, WarningTarget};
use postfach_store::{Scope, Store};
use postfach_types::{DomainName, UnixTime};

pub use postfach_store::dns_checks::{Check, CheckChange, DomainReport, Level, Text, Verdict};

use crate::records::{self, DomainSetup, PublishedRecord};
use crate::{DnsError, Platform, dkim, mta_sts, spf};

/// Runs checks: the platform's facts plus a resolver. Build one per server (or CLI call)
/// with [`Checker::new`]; it is cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct Checker {
    platform: Platform,
    resolver: TokioResolver,
    authenticator: MessageAuthenticator,
    /// Where the MTA-STS policy check fetches from ([`Checker::with_policy_fetch`]).
    https: crate::fetch::HttpsTarget,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker").field("platform", &self.platform).finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker asking `resolver` (`[dns] resolver`), or the system's resolvers if `None`.
    pub fn new(platform: Platform, resolver: Option<SocketAddr>) -> Result<Checker, DnsError> {
        Ok(Checker {
            resolver: crate::resolver::resolver(resolver)?,
            authenticator: crate::resolver::authenticator(resolver)?,
            platform,
            https: crate::fetch::HttpsTarget::default(),
        })
    }

    /// Fetches MTA-STS policies from `port` instead of 443, trusting the certificates in
    /// `ca_file` instead of the system's roots (`[dns] https_port` and `ca_file`; tests).
    pub fn with_policy_fetch(mut self, port: u16, ca_file: Option<std::path::PathBuf>) -> Checker {
        self.https = crate::fetch::HttpsTarget { port, ca_file };
        self
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }
}

fn verdict(check: Check, code: &str, level: Level, de: String, en: String) -> Verdict {
    Verdict { check, code: code.to_string(), level, message: Text { de, en } }
}

/// The result of looking for the ownership record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The domain was verified before: by the operator, or by this check and its record
    /// is still published.
    AlreadyVerified,
    /// The TXT record is published.
    Found,
    /// The domain was verified by its record, and the record is no longer published: the
    /// domain keeps working, but publish `value` as TXT at `name` again.
    Gone { name: String, value: String },
    /// It is not: publish `value` as TXT at `name`.
    Missing { name: String, value: String },
    /// DNS did not answer; try again later.
    Unanswered(String),
}

/// Looks for the domain's ownership TXT record ([`Domain::ownership_record`]).
///
/// Decided: a domain verified through its record must keep it published (it is the
/// proof that the customer still controls the domain), but its disappearance does not
/// stop mail: the check turns red and the customer is told. A domain whose ownership the
/// operator asserted is not looked up.
pub async fn check_ownership(checker: &Checker, domain: &Domain) -> Ownership {
    if domain.verified && !domain.proven_by_record {
        return Ownership::AlreadyVerified;
    }
    let (name, value) = domain.ownership_record();
    match spf::txt_records(&checker.resolver, &name).await {
        Ok(texts) if texts.iter().any(|t| t.trim() == value) => {
            if domain.verified {
                Ownership::AlreadyVerified
            } else {
                Ownership::Found
            }
        }
        Ok(_) if domain.verified => Ownership::Gone { name, value },
        Ok(_) => Ownership::Missing { name, value },
        Err(e) => Ownership::Unanswered(e),
    }
}

/// Runs the ownership check now and marks the domain verified when the record is found.
pub async fn verify_ownership(
    checker: &Checker,
    store: &Store,
    scope: Scope,
    domain: &DomainName,
) -> Result<Ownership, DnsError> {
    let d = store.domain(scope, domain).await?;
    let result = check_ownership(checker, &d).await;
    if result == Ownership::Found {
        store.set_domain_proven(scope, domain).await?;
        tracing::info!(domain = %domain, "domain ownership verified through DNS");
    }
    Ok(result)
}

/// Runs every check of `domain` now. `keys` are the domain's DKIM keys (active and
/// pending ones are checked). Changes nothing: to verify ownership, cache the report and
/// activate a published pending DKIM key as well, call [`refresh`].
pub async fn run(checker: &Checker, domain: &Domain, keys: &[DkimKey]) -> DomainReport {
    let mut verdicts = Vec::new();
    verdicts.push(ownership_verdict(checker, domain).await);
    verdicts.push(mx_verdict(checker, &domain.name).await);
    verdicts.extend(spf_verdicts(checker, &domain.name).await);
    verdicts.extend(dkim_verdicts(checker, &domain.name, keys).await);
    verdicts.push(dmarc_verdict(checker, &domain.name).await);
    // The client-setup records name the server: checked only when it has a usable name.
    if checker.platform.hostname_problem().is_none() {
        verdicts.extend(srv_verdicts(checker, &domain.name).await);
        verdicts.extend(autoconfig_verdicts(checker, &domain.name).await);
        verdicts.extend(mta_sts_verdicts(checker, domain).await);
    }
    if let Some(address) = &checker.platform.tls_reports {
        verdicts.push(tls_rpt_verdict(checker, &domain.name, address).await);
    }
    DomainReport { domain: domain.name.clone(), checked_at: UnixTime::now(), verdicts }
}

/// What [`refresh`] did.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub report: DomainReport,
    /// Checks whose level changed since the last cached report.
    pub changes: Vec<CheckChange>,
    /// The domain was verified by this run.
    pub verified_now: bool,
    /// The selector of a pending DKIM key that was found published and activated.
    pub activated_key: Option<String>,
}

/// Verifies ownership if possible, makes sure the domain has a DKIM key, runs the checks,
/// caches the report, and activates a pending DKIM key whose record was found.
pub async fn refresh(checker: &Checker, store: &Store, scope: Scope, name: &DomainName) -> Result<Refreshed, DnsError> {
    let verified_now = verify_ownership(checker, store, scope, name).await? == Ownership::Found;
    let domain = store.domain(scope, name).await?;
    dkim::ensure_key(store, scope, name).await?;
    let keys = store.dkim_keys(scope, name).await?;
    let report = run(checker, &domain, &keys).await;
    let mut activated_key = None;
    if report.verdicts.iter().any(|v| v.code == "dkim.pending_found")
        && let Some(pending) = keys.iter().find(|k| k.state == DkimKeyState::Pending)
    {
        store.activate_dkim_key(scope, name, &pending.selector).await?;
        tracing::info!(domain = %name, selector = %pending.selector, "the new DKIM key is published; it is now used for signing");
        activated_key = Some(pending.selector.clone());
    }
    let changes = store.save_dns_report(scope, &report).await?;
    let mut problems = Vec::new();
    for change in &changes {
        if change.to == Level::Error {
            tracing::warn!(domain = %name, check = %change.check, from = %change.from, problem = %change.message.en, "a DNS check of a domain started failing");
            problems.push(change.message.clone());
        }
    }
    // A check that turned red tells the customer (a domain's first report has no
    // changes: it was never green).
    if !problems.is_empty() {
        let facts = WarningFacts { problems, ..WarningFacts::default() };
        let event = WarningEvent::new(WarningKind::DomainRecords, WarningTarget::Domain(domain.id), facts);
        store.warnings().tell(event);
    }
    Ok(Refreshed { report, changes, verified_now, activated_key })
}

/// The records to publish for `name`, with the SPF record merged with the one the
/// domain publishes now.
pub async fn published_records(
    checker: &Checker,
    store: &Store,
    scope: Scope,
    name: &DomainName,
) -> Result<Vec<PublishedRecord>, DnsError> {
    let domain = store.domain(scope, name).await?;
    dkim::ensure_key(store, scope, name).await?;
    let keys = store.dkim_keys(scope, name).await?;
    let published_spf = spf::spf_records(&checker.resolver, name.as_str()).await.unwrap_or_default();
    let published_spf: Vec<String> = published_spf.into_iter().filter(|r| spf::syntax_error(r).is_none()).collect();
    Ok(records::for_domain(&DomainSetup {
        platform: &checker.platform,
        domain: &domain,
        dkim_keys: &keys,
        published_spf: &published_spf,
    }))
}

fn unanswered(check: Check, code: &str, what_de: &str, what_en: &str, name: &str) -> Verdict {
    verdict(
        check,
        code,
        Level::Warning,
        format!(
            "{what_de} von {name} konnte nicht geprüft werden, weil DNS nicht geantwortet hat. Die Prüfung wird wiederholt."
        ),
        format!("The {what_en} of {name} could not be checked because DNS did not answer. The check will be repeated."),
    )
}

async fn ownership_verdict(checker: &Checker, domain: &Domain) -> Verdict {
    let d = &domain.name;
    match check_ownership(checker, domain).await {
        Ownership::AlreadyVerified => verdict(
            Check::Ownership,
            "ownership.ok",
            Level::Ok,
            format!("Der Besitz von {d} ist bestätigt."),
            format!("Ownership of {d} is confirmed."),
        ),
        Ownership::Found => verdict(
            Check::Ownership,
            "ownership.found",
            Level::Ok,
            format!("Der Eintrag zum Besitznachweis von {d} ist veröffentlicht; die Domain wird freigeschaltet."),
            format!("The ownership record of {d} is published; the domain is being activated."),
        ),
        Ownership::Missing { name, value } => verdict(
            Check::Ownership,
            "ownership.missing",
            Level::Error,
            format!(
                "Der Besitz von {d} ist noch nicht bestätigt, deshalb nimmt die Domain keine E-Mails an. Veröffentlichen Sie einen TXT-Eintrag unter {name} mit dem Wert {value}"
            ),
            format!(
                "Ownership of {d} is not confirmed yet, so the domain receives no mail. Publish a TXT record at {name} with the value {value}"
            ),
        ),
        Ownership::Gone { name, value } => verdict(
            Check::Ownership,
            "ownership.gone",
            Level::Error,
            format!(
                "Der Eintrag zum Besitznachweis von {d} ist nicht mehr veröffentlicht. Die Domain funktioniert weiter, aber ihr Besitz ist nicht mehr nachgewiesen: Veröffentlichen Sie wieder einen TXT-Eintrag unter {name} mit dem Wert {value}"
            ),
            format!(
                "The ownership record of {d} is no longer published. The domain keeps working, but its ownership is no longer proven: publish a TXT record at {name} with the value {value} again"
            ),
        ),
        Ownership::Unanswered(_) => {
            unanswered(Check::Ownership, "ownership.unanswered", "Der Besitznachweis", "ownership record", d.as_str())
        }
    }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The exchanges of the domain's MX records as DNS has them (`None`: DNS did not answer).
async fn mx_exchanges(checker: &Checker, d: &DomainName) -> Option<Vec<String>> {
    match checker.resolver.mx_lookup(format!("{d}.").as_str()).await {
        Ok(lookup) => Some(
            lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some(mx.exchange.to_ascii()),
                    _ => None,
                })
                .collect(),
        ),
        Err(e) if e.is_no_records_found() => Some(Vec::new()),
        Err(_) => None,
    }
}

async fn mx_verdict(checker: &Checker, d: &DomainName) -> Verdict {
    let host = checker.platform.hostname.as_str();
    let Some(exchanges) = mx_exchanges(checker, d).await else {
        return unanswered(Check::Mx, "mx.unanswered", "Der MX-Eintrag", "MX record", d.as_str());
    };
    if exchanges.is_empty() {
        return verdict(
            Check::Mx,
            "mx.missing",
            Level::Error,
            format!(
                "{d} hat keinen MX-Eintrag, daher erreichen E-Mails an {d} diesen Server nicht. Veröffentlichen Sie: MX 10 {host}."
            ),
            format!("{d} has no MX record, so mail to {d} does not reach this server. Publish: MX 10 {host}."),
        );
    }
    // RFC 7505: a single MX of "." says the domain accepts no mail.
    if exchanges.iter().all(|e| e == ".") {
        return verdict(
            Check::Mx,
            "mx.null",
            Level::Error,
            format!(
                "{d} veröffentlicht einen leeren MX-Eintrag („.“) und sagt damit, dass es keine E-Mails annimmt. Ersetzen Sie ihn durch: MX 10 {host}."
            ),
            format!("{d} publishes a null MX (\".\"), which says it accepts no mail. Replace it with: MX 10 {host}."),
        );
    }
    let foreign: Vec<&str> =
        exchanges.iter().filter(|e| !same_host(e, host)).map(|e| e.trim_end_matches('.')).collect();
    if foreign.is_empty() {
        verdict(
            Check::Mx,
            "mx.ok",
            Level::Ok,
            format!("Der MX-Eintrag von {d} zeigt auf {host}."),
            format!("The MX record of {d} points to {host}."),
        )
    } else if foreign.len() < exchanges.len() {
        let list = foreign.join(", ");
        verdict(
            Check::Mx,
            "mx.mixed",
            Level::Warning,
            format!(
                "{d} hat neben {host} weitere MX-Einträge ({list}); E-Mails können dort landen statt hier. Entfernen Sie diese Einträge."
            ),
            format!(
                "Besides {host}, {d} has other MX records ({list}); mail may go there instead of here. Remove those records."
            ),
        )
    } else {
        let list = foreign.join(", ");
        verdict(
            Check::Mx,
            "mx.foreign",
            Level::Error,
            format!(
                "Die MX-Einträge von {d} zeigen auf {list} statt auf {host}, daher erreichen E-Mails diesen Server nicht. Ersetzen Sie sie durch: MX 10 {host}."
            ),
            format!(
                "The MX records of {d} point to {list} instead of {host}, so mail does not reach this server. Replace them with: MX 10 {host}."
            ),
        )
    }
}

async fn spf_verdicts(checker: &Checker, d: &DomainName) -> Vec<Verdict> {
    let ours = checker.platform.spf_name.as_str();
    let records = match spf::spf_records(&checker.resolver, d.as_str()).await {
        Ok(records) => records,
        Err(_) => return vec![unanswered(Check::Spf, "spf.unanswered", "Der SPF-Eintrag", "SPF record", d.as_str())],
    };
    // The suggestion keeps what the published records allow, except terms that do not parse.
    let valid: Vec<String> = records.iter().filter(|r| spf::syntax_error(r).is_none()).cloned().collect();
    let suggestion = spf::merge(&valid, ours);
    if records.is_empty() {
        return vec![verdict(
            Check::Spf,
            "spf.missing",
            Level::Error,
            format!(
                "{d} veröffentlicht keinen SPF-Eintrag, daher können andere in seinem Namen senden und Ihre E-Mails landen eher im Spam. Veröffentlichen Sie den TXT-Eintrag: {suggestion}"
            ),
            format!(
                "{d} publishes no SPF record, so others can send in its name and your mail is more likely to be marked as spam. Publish the TXT record: {suggestion}"
            ),
        )];
    }
    let mut out = Vec::new();
    if records.len() > 1 {
        let n = records.len();
        out.push(verdict(
            Check::Spf,
            "spf.multiple",
            Level::Error,
            format!("{d} veröffentlicht {n} SPF-Einträge; Empfänger werten das als Fehler und ignorieren alle (RFC 7208 §4.5). Ersetzen Sie sie durch diesen einen Eintrag: {suggestion}"),
            format!("{d} publishes {n} SPF records; receivers treat that as an error and ignore them all (RFC 7208 §4.5). Replace them with this one record: {suggestion}"),
        ));
    }
    for record in &records {
        if let Some(problem) = spf::syntax_error(record) {
            out.push(verdict(
                Check::Spf,
                "spf.syntax",
                Level::Error,
                format!("Der SPF-Eintrag von {d} ist fehlerhaft ({problem}); Empfänger ignorieren ihn. Korrigieren Sie ihn, zum Beispiel so: {suggestion}"),
                format!("The SPF record of {d} has an error ({problem}); receivers ignore it. Correct it, for example like this: {suggestion}"),
            ));
            continue;
        }
        match spf::all_qualifier(record) {
            Some('+') => out.push(verdict(
                Check::Spf,
                "spf.pass_all",
                Level::Error,
                format!("Der SPF-Eintrag von {d} endet auf +all und erlaubt damit jedem Server im Internet, in Ihrem Namen zu senden. Verwenden Sie -all: {suggestion}"),
                format!("The SPF record of {d} ends in +all, which allows every server on the internet to send in your name. Use -all: {suggestion}"),
            )),
            Some('?') => out.push(verdict(
                Check::Spf,
                "spf.neutral_all",
                Level::Error,
                format!("Der SPF-Eintrag von {d} endet auf ?all und sagt damit nichts über fremde Server aus; er schützt nicht. Verwenden Sie -all: {suggestion}"),
                format!("The SPF record of {d} ends in ?all, which says nothing about other servers; it protects nothing. Use -all: {suggestion}"),
            )),
            Some('~') => out.push(verdict(
                Check::Spf,
                "spf.softfail_all",
                Level::Warning,
                format!("Der SPF-Eintrag von {d} endet auf ~all: Gefälschte E-Mails werden nur als verdächtig markiert. Wenn alle Ihre Versender im Eintrag stehen, verwenden Sie -all."),
                format!("The SPF record of {d} ends in ~all: forged mail is only marked as suspicious. Once all your senders are listed in the record, use -all."),
            )),
            _ => {}
        }
        let count = spf::count_lookups(&checker.resolver, record).await;
        if count.lookups > spf::MAX_LOOKUPS {
            let n = count.lookups;
            out.push(verdict(
                Check::Spf,
                "spf.too_many_lookups",
                Level::Error,
                format!("Der SPF-Eintrag von {d} braucht {n} DNS-Abfragen; erlaubt sind höchstens 10 (RFC 7208 §4.6.4), darüber werten Empfänger ihn als Fehler. Ersetzen Sie include-, a- und mx-Angaben, wo möglich, durch ip4/ip6-Angaben."),
                format!("The SPF record of {d} needs {n} DNS lookups; at most 10 are allowed (RFC 7208 §4.6.4), beyond that receivers treat it as an error. Replace include, a and mx terms by ip4/ip6 terms where you can."),
            ));
        }
        for missing in &count.missing {
            out.push(verdict(
                Check::Spf,
                "spf.include_broken",
                Level::Error,
                format!("Der SPF-Eintrag von {d} verweist auf {missing}, wo es keinen (oder mehr als einen) SPF-Eintrag gibt; Empfänger werten das als Fehler. Entfernen Sie diesen Verweis oder korrigieren Sie ihn."),
                format!("The SPF record of {d} refers to {missing}, which has no SPF record (or more than one); receivers treat that as an error. Remove or correct the reference."),
            ));
        }
    }
    if records.len() == 1 && out.iter().all(|v| v.code != "spf.syntax") {
        out.push(spf_evaluation(checker, d, &records[0], &suggestion).await);
    }
    out
}

/// Evaluates the one published record for each outbound address with mail-auth.
async fn spf_evaluation(checker: &Checker, d: &DomainName, record: &str, suggestion: &str) -> Verdict {
    let ours = checker.platform.spf_name.as_str();
    if checker.platform.outbound_ips.is_empty() {
        // Without the platform's addresses, the include is the best sign.
        return if spf::includes(record, ours) {
            verdict(
                Check::Spf,
                "spf.include_present",
                Level::Ok,
                format!("Der SPF-Eintrag von {d} bindet den Eintrag der Plattform ({ours}) ein."),
                format!("The SPF record of {d} includes the platform's record ({ours})."),
            )
        } else {
            not_authorized(d, None, suggestion)
        };
    }
    let host = checker.platform.hostname.as_str();
    let sender = format!("postmaster@{d}");
    for ip in &checker.platform.outbound_ips {
        let output = checker.authenticator.verify_spf(SpfParameters::verify_mail_from(*ip, host, host, &sender)).await;
        match output.result() {
            SpfResult::Pass => {}
            SpfResult::TempError => {
                return unanswered(Check::Spf, "spf.unanswered", "Der SPF-Eintrag", "SPF record", d.as_str());
            }
            _ => return not_authorized(d, Some((*ip, output.result())), suggestion),
        }
    }
    verdict(
        Check::Spf,
        "spf.pass",
        Level::Ok,
        format!("Der SPF-Eintrag von {d} erlaubt allen Servern der Plattform, E-Mails zu senden."),
        format!("The SPF record of {d} allows all of the platform's servers to send mail."),
    )
}

fn not_authorized(d: &DomainName, failed: Option<(IpAddr, SpfResult)>, suggestion: &str) -> Verdict {
    let (de_why, en_why) = match failed {
        Some((ip, result)) => {
            let result = format!("{result:?}").to_ascii_lowercase();
            (
                format!("erlaubt dem Server {ip} der Plattform nicht zu senden (Ergebnis: {result})"),
                format!("does not allow the platform's server {ip} to send (result: {result})"),
            )
        }
        None => (
            "bindet den Eintrag der Plattform nicht ein".to_string(),
            "does not include the platform's record".to_string(),
        ),
    };
    verdict(
        Check::Spf,
        "spf.not_authorized",
        Level::Error,
        format!(
            "Der SPF-Eintrag von {d} {de_why}, daher werden Ihre E-Mails abgelehnt oder als Spam markiert. Ersetzen Sie ihn durch: {suggestion}"
        ),
        format!(
            "The SPF record of {d} {en_why}, so your mail is refused or marked as spam. Replace it with: {suggestion}"
        ),
    )
}

/// The public key bytes of a DKIM record's `p=` tag (RFC 6376 §3.6.1), whitespace removed.
fn dkim_public_key(record: &str) -> Option<Vec<u8>> {
    let p = record.split(';').map(str::trim).find_map(|tag| {
        let (name, value) = tag.split_once('=')?;
        (name.trim() == "p").then_some(value)
    })?;
    let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(p).ok()
}

/// Whether the published key is ours: the same SubjectPublicKeyInfo, or the RSA public
/// key inside it (some publish the bare PKCS#1 key).
fn same_key(published: &[u8], ours_spki_b64: &str) -> bool {
    let Ok(ours) = STANDARD.decode(ours_spki_b64) else { return false };
    published == ours.as_slice() || (published.len() > 100 && ours.ends_with(published))
}

async fn dkim_verdicts(checker: &Checker, d: &DomainName, keys: &[DkimKey]) -> Vec<Verdict> {
    let published: Vec<&DkimKey> = keys.iter().filter(|k| k.state != DkimKeyState::Retired).collect();
    if !published.iter().any(|k| k.state == DkimKeyState::Active) {
        return vec![verdict(
            Check::Dkim,
            "dkim.no_key",
            Level::Error,
            format!("Für {d} gibt es noch keinen DKIM-Schlüssel; er wird bei der nächsten Prüfung erzeugt."),
            format!("{d} has no DKIM key yet; it is created on the next check."),
        )];
    }
    let mut out = Vec::new();
    for key in published {
        let pending = key.state == DkimKeyState::Pending;
        let name = dkim::record_name(&key.selector, d);
        let value = dkim::record_value(&key.public_key);
        let texts = match spf::txt_records(&checker.resolver, &name).await {
            Ok(texts) => texts,
            Err(_) => {
                out.push(unanswered(Check::Dkim, "dkim.unanswered", "Der DKIM-Eintrag", "DKIM record", d.as_str()));
                continue;
            }
        };
        let records: Vec<&String> = texts.iter().filter(|t| t.contains("p=")).collect();
        let v = match records.as_slice() {
            [] if pending => verdict(
                Check::Dkim,
                "dkim.pending_missing",
                Level::Warning,
                format!(
                    "Der neue DKIM-Schlüssel {sel} von {d} ist noch nicht veröffentlicht; bis dahin wird der bisherige verwendet. Veröffentlichen Sie unter {name} den TXT-Eintrag: {value}",
                    sel = key.selector
                ),
                format!(
                    "The new DKIM key {sel} of {d} is not published yet; the current key is used until then. Publish at {name} the TXT record: {value}",
                    sel = key.selector
                ),
            ),
            [] => verdict(
                Check::Dkim,
                "dkim.missing",
                Level::Error,
                format!(
                    "Der DKIM-Eintrag von {d} fehlt, daher können Empfänger die Signatur Ihrer E-Mails nicht prüfen. Veröffentlichen Sie unter {name} den TXT-Eintrag: {value}"
                ),
                format!(
                    "The DKIM record of {d} is missing, so receivers cannot check the signature of your mail. Publish at {name} the TXT record: {value}"
                ),
            ),
            [record] => {
                let parses = mail_auth::common::verify::DomainKey::parse(record.as_bytes()).is_ok();
                let matches = dkim_public_key(record).is_some_and(|p| same_key(&p, &key.public_key));
                match (parses, matches, pending) {
                    (true, true, false) => verdict(
                        Check::Dkim,
                        "dkim.ok",
                        Level::Ok,
                        format!("Der DKIM-Schlüssel {sel} von {d} ist richtig veröffentlicht.", sel = key.selector),
                        format!("The DKIM key {sel} of {d} is published correctly.", sel = key.selector),
                    ),
                    (true, true, true) => verdict(
                        Check::Dkim,
                        "dkim.pending_found",
                        Level::Ok,
                        format!(
                            "Der neue DKIM-Schlüssel {sel} von {d} ist veröffentlicht und wird ab jetzt zum Signieren verwendet.",
                            sel = key.selector
                        ),
                        format!(
                            "The new DKIM key {sel} of {d} is published and is used for signing from now on.",
                            sel = key.selector
                        ),
                    ),
                    (false, _, _) => verdict(
                        Check::Dkim,
                        "dkim.invalid",
                        if pending { Level::Warning } else { Level::Error },
                        format!(
                            "Der DKIM-Eintrag unter {name} ist nicht lesbar. Ersetzen Sie ihn durch den TXT-Eintrag: {value}"
                        ),
                        format!("The DKIM record at {name} cannot be read. Replace it with the TXT record: {value}"),
                    ),
                    (true, false, _) => verdict(
                        Check::Dkim,
                        "dkim.mismatch",
                        if pending { Level::Warning } else { Level::Error },
                        format!(
                            "Unter {name} ist ein anderer DKIM-Schlüssel veröffentlicht als der, mit dem signiert wird. Ersetzen Sie ihn durch den TXT-Eintrag: {value}"
                        ),
                        format!(
                            "The DKIM record at {name} holds a different key than the one mail is signed with. Replace it with the TXT record: {value}"
                        ),
                    ),
                }
            }
            _ => verdict(
                Check::Dkim,
                "dkim.multiple",
                if pending { Level::Warning } else { Level::Error },
                format!(
                    "Unter {name} stehen mehrere DKIM-Einträge; Empfänger können die Signatur so nicht sicher prüfen. Lassen Sie nur diesen einen stehen: {value}"
                ),
                format!(
                    "There are several DKIM records at {name}; receivers cannot reliably check the signature. Keep only this one: {value}"
                ),
            ),
        };
        out.push(v);
    }
    out
}

async fn dmarc_verdict(checker: &Checker, d: &DomainName) -> Verdict {
    let name = format!("_dmarc.{d}");
    let suggestion = records::dmarc_value();
    let texts = match spf::txt_records(&checker.resolver, &name).await {
        Ok(texts) => texts,
        Err(_) => return unanswered(Check::Dmarc, "dmarc.unanswered", "Der DMARC-Eintrag", "DMARC record", d.as_str()),
    };
    // RFC 7489 §6.4: the record starts with the v=DMARC1 tag.
    let records: Vec<&String> =
        texts.iter().filter(|t| t.trim_start().get(..8).is_some_and(|v| v.eq_ignore_ascii_case("v=DMARC1"))).collect();
    match records.as_slice() {
        [] => verdict(
            Check::Dmarc,
            "dmarc.missing",
            Level::Error,
            format!(
                "{d} veröffentlicht keinen DMARC-Eintrag, daher wissen Empfänger nicht, wie sie mit gefälschten E-Mails umgehen sollen. Veröffentlichen Sie unter {name} den TXT-Eintrag: {suggestion}"
            ),
            format!(
                "{d} publishes no DMARC record, so receivers do not know what to do with forged mail. Publish at {name} the TXT record: {suggestion}"
            ),
        ),
        [record] => match mail_auth::dmarc::Dmarc::parse(record.as_bytes()) {
            Err(_) => verdict(
                Check::Dmarc,
                "dmarc.invalid",
                Level::Error,
                format!(
                    "Der DMARC-Eintrag unter {name} ist fehlerhaft; Empfänger ignorieren ihn. Ersetzen Sie ihn zum Beispiel durch: {suggestion}"
                ),
                format!(
                    "The DMARC record at {name} has an error; receivers ignore it. Replace it, for example with: {suggestion}"
                ),
            ),
            Ok(dmarc) if dmarc.p == mail_auth::dmarc::Policy::None => verdict(
                Check::Dmarc,
                "dmarc.monitor_only",
                Level::Warning,
                format!(
                    "Der DMARC-Eintrag von {d} hat die Richtlinie p=none: Gefälschte E-Mails werden nur beobachtet, nicht abgewiesen. Wenn SPF und DKIM stimmen, verwenden Sie p=quarantine oder p=reject."
                ),
                format!(
                    "The DMARC record of {d} has the policy p=none: forged mail is only monitored, not refused. Once SPF and DKIM pass, use p=quarantine or p=reject."
                ),
            ),
            Ok(_) => verdict(
                Check::Dmarc,
                "dmarc.ok",
                Level::Ok,
                format!("{d} veröffentlicht einen gültigen DMARC-Eintrag."),
                format!("{d} publishes a valid DMARC record."),
            ),
        },
        _ => verdict(
            Check::Dmarc,
            "dmarc.multiple",
            Level::Error,
            format!(
                "Unter {name} stehen mehrere DMARC-Einträge; Empfänger ignorieren dann alle (RFC 7489 §6.6.3). Lassen Sie nur einen stehen, zum Beispiel: {suggestion}"
            ),
            format!(
                "There are several DMARC records at {name}; receivers then ignore them all (RFC 7489 §6.6.3). Keep only one, for example: {suggestion}"
            ),
        ),
    }
}

/// One SRV record the domain should publish: its name, and the port and target it should
/// carry (`None`: the service is off, published with the target ".").
struct SrvWanted {
    name: String,
    value: String,
    port: Option<u16>,
}

/// The SRV records of [`records::client_setup`] (RFC 6186, RFC 8314), the optional ones
/// left out, each compared with what DNS holds.
async fn srv_verdicts(checker: &Checker, d: &DomainName) -> Vec<Verdict> {
    let host = records::fqdn(&checker.platform.hostname);
    let wanted: Vec<SrvWanted> = records::client_setup(&checker.platform, d, &host)
        .into_iter()
        .filter(|r| r.rtype == records::RecordType::Srv && !r.optional)
        .map(|r| {
            let port = r.value.split_whitespace().nth(2).and_then(|p| p.parse().ok()).filter(|&p: &u16| p != 0);
            SrvWanted { name: r.name, value: r.value, port }
        })
        .collect();
    let mut missing = Vec::new();
    let mut out = Vec::new();
    for want in &wanted {
        let found: Vec<(u16, String)> = match checker.resolver.srv_lookup(format!("{}.", want.name).as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some((srv.port, srv.target.to_ascii())),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(_) => {
                return vec![unanswered(Check::Srv, "srv.unanswered", "Die SRV-Einträge", "SRV records", d.as_str())];
            }
        };
        let right = match want.port {
            Some(port) => found.iter().any(|(p, target)| *p == port && same_host(target, &host)),
            None => found.iter().any(|(_, target)| target == "." || target.is_empty()),
        };
        if right {
            continue;
        }
        if found.is_empty() {
            missing.push(want);
            continue;
        }
        let shown =
            found.iter().map(|(p, t)| format!("{p} {}", t.trim_end_matches('.'))).collect::<Vec<_>>().join(", ");
        let (name, value) = (&want.name, &want.value);
        out.push(verdict(
            Check::Srv,
            "srv.wrong",
            Level::Error,
            format!(
                "Der SRV-Eintrag {name} zeigt auf {shown}; E-Mail-Programme würden mit einem falschen Server eingerichtet. Ersetzen Sie ihn durch: SRV {value}"
            ),
            format!(
                "The SRV record {name} points to {shown}, so mail programs would be set up with the wrong server. Replace it with: SRV {value}"
            ),
        ));
    }
    if !missing.is_empty() {
        let names = missing.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
        let lines = missing.iter().map(|w| format!("{} SRV {}", w.name, w.value)).collect::<Vec<_>>().join("; ");
        out.push(verdict(
            Check::Srv,
            "srv.missing",
            Level::Warning,
            format!(
                "Es fehlen SRV-Einträge ({names}); E-Mail-Programme finden die Server-Einstellungen dann nicht selbst. Veröffentlichen Sie: {lines}"
            ),
            format!(
                "SRV records are missing ({names}), so mail programs cannot find the server settings by themselves. Publish: {lines}"
            ),
        ));
    }
    if out.is_empty() {
        out.push(verdict(
            Check::Srv,
            "srv.ok",
            Level::Ok,
            format!("Die SRV-Einträge von {d} zeigen auf {}.", checker.platform.hostname),
            format!("The SRV records of {d} point to {}.", checker.platform.hostname),
        ));
    }
    out
}

/// What `autoconfig.D` or `autodiscover.D` resolves to.
enum Alias {
    /// A CNAME to this server, or address records that are this server's.
    Here,
    /// Nothing is published.
    Missing,
    /// A CNAME elsewhere, or other addresses: what was found.
    Elsewhere(String),
    Unanswered,
}

/// Where `name` leads: its CNAME, or without one, its addresses against the server's.
async fn alias_of(checker: &Checker, name: &str, host: &str) -> Alias {
    let fqdn = format!("{name}.");
    match checker.resolver.lookup(fqdn.as_str(), hickory_resolver::proto::rr::RecordType::CNAME).await {
        Ok(lookup) => {
            let targets: Vec<String> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::CNAME(cname) => Some(cname.0.to_ascii()),
                    _ => None,
                })
                .collect();
            if targets.iter().any(|t| same_host(t, host)) {
                return Alias::Here;
            }
            if let Some(target) = targets.first() {
                return Alias::Elsewhere(target.trim_end_matches('.').to_string());
            }
        }
        Err(e) if e.is_no_records_found() => {}
        Err(_) => return Alias::Unanswered,
    }
    // No CNAME: address records are fine when they are the server's own.
    let addresses = |name: String| async move {
        match checker.resolver.lookup_ip(name.as_str()).await {
            Ok(ips) => Ok(ips.iter().collect::<std::collections::BTreeSet<IpAddr>>()),
            Err(e) if e.is_no_records_found() => Ok(Default::default()),
            Err(_) => Err(()),
        }
    };
    let (Ok(theirs), Ok(ours)) = (addresses(fqdn).await, addresses(format!("{host}.")).await) else {
        return Alias::Unanswered;
    };
    if theirs.is_empty() {
        Alias::Missing
    } else if theirs.is_subset(&ours) {
        Alias::Here
    } else {
        Alias::Elsewhere(theirs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "))
    }
}

/// The `autoconfig.D` (Thunderbird and others) and `autodiscover.D` (Outlook) names.
async fn autoconfig_verdicts(checker: &Checker, d: &DomainName) -> Vec<Verdict> {
    let host = checker.platform.hostname.as_str();
    let mut missing = Vec::new();
    let mut out = Vec::new();
    for name in [format!("autoconfig.{d}"), format!("autodiscover.{d}")] {
        match alias_of(checker, &name, host).await {
            Alias::Here => {}
            Alias::Missing => missing.push(name),
            Alias::Elsewhere(found) => out.push(verdict(
                Check::Autoconfig,
                "autoconfig.wrong",
                Level::Error,
                format!(
                    "{name} zeigt auf {found} statt auf {host}; die automatische Einrichtung findet diesen Server so nicht. Ersetzen Sie den Eintrag durch: {name} CNAME {host}."
                ),
                format!(
                    "{name} points to {found} instead of {host}, so automatic setup does not find this server. Replace the record with: {name} CNAME {host}."
                ),
            )),
            Alias::Unanswered => {
                return vec![unanswered(
                    Check::Autoconfig,
                    "autoconfig.unanswered",
                    "Die Einträge zur automatischen Einrichtung",
                    "automatic setup records",
                    d.as_str(),
                )];
            }
        }
    }
    if !missing.is_empty() {
        let names = missing.join(", ");
        let lines = missing.iter().map(|n| format!("{n} CNAME {host}.")).collect::<Vec<_>>().join("; ");
        out.push(verdict(
            Check::Autoconfig,
            "autoconfig.missing",
            Level::Warning,
            format!(
                "Es fehlen Einträge zur automatischen Einrichtung ({names}); E-Mail-Programme müssen dann von Hand eingerichtet werden. Veröffentlichen Sie: {lines}"
            ),
            format!(
                "Records for automatic setup are missing ({names}), so mail programs must be set up by hand. Publish: {lines}"
            ),
        ));
    }
    if out.is_empty() {
        out.push(verdict(
            Check::Autoconfig,
            "autoconfig.ok",
            Level::Ok,
            format!("autoconfig.{d} und autodiscover.{d} zeigen auf {host}."),
            format!("autoconfig.{d} and autodiscover.{d} point to {host}."),
        ));
    }
    out
}

/// What a published TLS-RPT record (RFC 8460 §3) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRptRecord {
    /// Valid; the `mailto:` addresses it names (lower-cased), and whether it names an
    /// `https:` endpoint too.
    Valid { mailto: Vec<String>, https: bool },
    /// Starts with `v=TLSRPTv1` but cannot be used: the reason, in English for the log.
    Invalid(&'static str),
}

/// What a domain's `_smtp._tls` TXT texts say, read as RFC 8460 §3 says: texts that do
/// not start with `v=TLSRPTv1` are discarded; unless exactly one is left, the domain is
/// taken not to ask for reports. The one reading for the domain check and for the reports
/// Postfach sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedTlsRpt {
    Missing,
    Several,
    One(TlsRptRecord),
}

impl PublishedTlsRpt {
    pub fn read(texts: &[String]) -> PublishedTlsRpt {
        let mut records = texts.iter().filter(|t| t.starts_with("v=TLSRPTv1"));
        match (records.next(), records.next()) {
            (None, _) => PublishedTlsRpt::Missing,
            (Some(record), None) => PublishedTlsRpt::One(parse_tls_rpt(record)),
            (Some(_), Some(_)) => PublishedTlsRpt::Several,
        }
    }

    /// The `mailto:` addresses reports go to; none unless exactly one valid record.
    pub fn mailto(&self) -> &[String] {
        match self {
            PublishedTlsRpt::One(TlsRptRecord::Valid { mailto, .. }) => mailto,
            _ => &[],
        }
    }
}

/// Reads a TLS-RPT record: `v=TLSRPTv1` first, then `rua=` with one or more
/// comma-separated `mailto:` or `https:` URIs (RFC 8460 §3).
pub fn parse_tls_rpt(record: &str) -> TlsRptRecord {
    let mut fields = record.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next().is_none_or(|v| v != "v=TLSRPTv1") {
        return TlsRptRecord::Invalid("the record must start with v=TLSRPTv1");
    }
    let mut rua = None;
    for field in fields {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        if key.trim() == "rua" {
            if rua.is_some() {
                return TlsRptRecord::Invalid("rua is given twice");
            }
            rua = Some(value.trim());
        }
    }
    let Some(rua) = rua else { return TlsRptRecord::Invalid("the record has no rua") };
    let (mut mailto, mut https) = (Vec::new(), false);
    for uri in rua.split(',').map(str::trim) {
        if let Some(address) = uri.strip_prefix("mailto:") {
            match postfach_types::EmailAddress::parse(address) {
                Ok(address) => mailto.push(address.to_string()),
                Err(_) => return TlsRptRecord::Invalid("a mailto: address in rua is not valid"),
            }
        } else if uri.strip_prefix("https://").is_some_and(|rest| !rest.is_empty()) {
            https = true;
        } else {
            return TlsRptRecord::Invalid("rua must name mailto: or https: addresses");
        }
    }
    TlsRptRecord::Valid { mailto, https }
}

/// The `_smtp._tls` record: one valid TLS-RPT record, naming the platform's address.
/// Missing is a warning (no reports, mail still flows); several, or one that cannot be
/// read, an error (senders then ignore it, RFC 8460 §3); one that sends the reports
/// elsewhere only a warning: the customer may want them there, but they are not shown here.
async fn tls_rpt_verdict(checker: &Checker, d: &DomainName, address: &postfach_types::EmailAddress) -> Verdict {
    let name = format!("_smtp._tls.{d}");
    let suggestion = records::tls_rpt_value(address);
    let texts = match spf::txt_records(&checker.resolver, &name).await {
        Ok(texts) => texts,
        Err(_) => {
            return unanswered(Check::TlsRpt, "tlsrpt.unanswered", "Der TLS-RPT-Eintrag", "TLS-RPT record", d.as_str());
        }
    };
    let record = match PublishedTlsRpt::read(&texts) {
        PublishedTlsRpt::Missing => {
            return verdict(
                Check::TlsRpt,
                "tlsrpt.missing",
                Level::Warning,
                format!(
                    "{d} veröffentlicht keinen TLS-RPT-Eintrag, daher erfahren Sie nicht, wenn andere Mailserver Ihre Domain nicht verschlüsselt erreichen. Veröffentlichen Sie unter {name} den TXT-Eintrag: {suggestion}"
                ),
                format!(
                    "{d} publishes no TLS-RPT record, so you are not told when other mail servers cannot reach your domain encrypted. Publish at {name} the TXT record: {suggestion}"
                ),
            );
        }
        PublishedTlsRpt::One(record) => record,
        PublishedTlsRpt::Several => {
            return verdict(
                Check::TlsRpt,
                "tlsrpt.multiple",
                Level::Error,
                format!(
                    "Unter {name} stehen mehrere TLS-RPT-Einträge; andere Mailserver ignorieren dann alle (RFC 8460). Lassen Sie nur diesen einen stehen: {suggestion}"
                ),
                format!(
                    "There are several TLS-RPT records at {name}; other mail servers then ignore them all (RFC 8460). Keep only this one: {suggestion}"
                ),
            );
        }
    };
    match record {
        TlsRptRecord::Invalid(why) => {
            tracing::debug!(domain = %d, why, "TLS-RPT record unusable");
            verdict(
                Check::TlsRpt,
                "tlsrpt.invalid",
                Level::Error,
                format!(
                    "Der TLS-RPT-Eintrag unter {name} ist fehlerhaft; andere Mailserver ignorieren ihn. Ersetzen Sie ihn durch: {suggestion}"
                ),
                format!(
                    "The TLS-RPT record at {name} has an error; other mail servers ignore it. Replace it with: {suggestion}"
                ),
            )
        }
        TlsRptRecord::Valid { mailto, .. } if mailto.contains(&address.to_string()) => verdict(
            Check::TlsRpt,
            "tlsrpt.ok",
            Level::Ok,
            format!("{d} veröffentlicht einen gültigen TLS-RPT-Eintrag; die Berichte erscheinen auf dieser Seite."),
            format!("{d} publishes a valid TLS-RPT record; the reports appear on this page."),
        ),
        TlsRptRecord::Valid { .. } => verdict(
            Check::TlsRpt,
            "tlsrpt.elsewhere",
            Level::Warning,
            format!(
                "Der TLS-RPT-Eintrag von {d} schickt die Berichte an andere Adressen, deshalb erscheinen sie hier nicht. Wenn Sie sie hier sehen wollen, verwenden Sie: {suggestion}"
            ),
            format!(
                "The TLS-RPT record of {d} sends the reports to other addresses, so they do not appear here. To see them here, use: {suggestion}"
            ),
        ),
    }
}

/// Inbound MTA-STS, while the domain's mode is not off: the `_mta-sts` TXT record (one,
/// `v=STSv1`, the current policy's id), the policy file fetched over HTTPS with the
/// certificate verified (it must be the one this server serves), and the domain's MX
/// hosts against its `mx:` lines.
async fn mta_sts_verdicts(checker: &Checker, domain: &Domain) -> Vec<Verdict> {
    let d = &domain.name;
    let Some(ours) = mta_sts::policy(&checker.platform.hostname, domain.mta_sts) else { return Vec::new() };
    let mut out = vec![mta_sts_txt_verdict(checker, d, &ours).await];
    let host = mta_sts::policy_host(d);
    let url = format!("https://{host}{}", mta_sts::POLICY_PATH);
    let served = match crate::fetch::get_text(
        &checker.resolver,
        &checker.https,
        &host,
        mta_sts::POLICY_PATH,
        mta_sts::MAX_POLICY_BYTES,
    )
    .await
    {
        Err(why) => {
            out.push(verdict(
                Check::MtaSts,
                "mta_sts.policy_unreachable",
                Level::Error,
                format!(
                    "Die MTA-STS-Richtlinie unter {url} ist nicht abrufbar ({}). Veröffentlichen Sie: {host} CNAME {}. — das Zertifikat wird dann automatisch geholt.",
                    why.de, checker.platform.hostname
                ),
                format!(
                    "The MTA-STS policy at {url} cannot be fetched ({}). Publish: {host} CNAME {}. — its certificate is then obtained automatically.",
                    why.en, checker.platform.hostname
                ),
            ));
            None
        }
        Ok(text) if text == ours => {
            out.push(verdict(
                Check::MtaSts,
                "mta_sts.policy_ok",
                Level::Ok,
                format!("Die MTA-STS-Richtlinie unter {url} ist abrufbar (mode: {}).", domain.mta_sts),
                format!("The MTA-STS policy at {url} can be fetched (mode: {}).", domain.mta_sts),
            ));
            mta_sts::Policy::parse(&text).ok()
        }
        Ok(text) => {
            out.push(verdict(
                Check::MtaSts,
                "mta_sts.policy_differs",
                Level::Error,
                format!(
                    "Unter {url} steht eine andere MTA-STS-Richtlinie als die dieses Servers (mode: {}). Lassen Sie {host} auf {} zeigen (CNAME).",
                    domain.mta_sts, checker.platform.hostname
                ),
                format!(
                    "The MTA-STS policy at {url} is not this server's (mode: {}). Point {host} to {} (CNAME).",
                    domain.mta_sts, checker.platform.hostname
                ),
            ));
            mta_sts::Policy::parse(&text).ok()
        }
    };
    let policy = served.or_else(|| mta_sts::Policy::parse(&ours).ok());
    if let Some(policy) = policy {
        out.push(mta_sts_mx_verdict(checker, domain, &policy).await);
    }
    out
}

async fn mta_sts_txt_verdict(checker: &Checker, d: &DomainName, ours: &str) -> Verdict {
    let name = mta_sts::record_name(d);
    let value = mta_sts::txt_value(ours);
    let texts = match spf::txt_records(&checker.resolver, &name).await {
        Ok(texts) => texts,
        Err(_) => {
            return unanswered(
                Check::MtaSts,
                "mta_sts.unanswered",
                "Der MTA-STS-Eintrag",
                "MTA-STS record",
                d.as_str(),
            );
        }
    };
    match mta_sts::Published::read(&texts) {
        mta_sts::Published::Missing => verdict(
            Check::MtaSts,
            "mta_sts.txt_missing",
            Level::Error,
            format!(
                "Der MTA-STS-Eintrag von {d} fehlt, daher fragen andere Mailserver die Richtlinie nicht ab. Veröffentlichen Sie unter {name} den TXT-Eintrag: {value}"
            ),
            format!(
                "The MTA-STS record of {d} is missing, so other mail servers do not ask for the policy. Publish at {name} the TXT record: {value}"
            ),
        ),
        mta_sts::Published::One { id, .. } if id == Some(mta_sts::policy_id(ours)) => verdict(
            Check::MtaSts,
            "mta_sts.txt_ok",
            Level::Ok,
            format!("Der MTA-STS-Eintrag von {d} nennt die aktuelle Richtlinie."),
            format!("The MTA-STS record of {d} names the current policy."),
        ),
        mta_sts::Published::One { record, .. } => verdict(
            Check::MtaSts,
            "mta_sts.txt_outdated",
            Level::Error,
            format!(
                "Der MTA-STS-Eintrag unter {name} ({record}) nennt nicht die aktuelle Richtlinie, daher behalten andere Mailserver die alte. Ersetzen Sie ihn durch den TXT-Eintrag: {value}"
            ),
            format!(
                "The MTA-STS record at {name} ({record}) does not name the current policy, so other mail servers keep the old one. Replace it with the TXT record: {value}"
            ),
        ),
        mta_sts::Published::Several => verdict(
            Check::MtaSts,
            "mta_sts.txt_multiple",
            Level::Error,
            format!(
                "Unter {name} stehen mehrere MTA-STS-Einträge; andere Mailserver ignorieren dann alle (RFC 8461 §3.1). Lassen Sie nur diesen einen stehen: {value}"
            ),
            format!(
                "There are several MTA-STS records at {name}; other mail servers then ignore them all (RFC 8461 §3.1). Keep only this one: {value}"
            ),
        ),
    }
}

/// Every MX host of the domain must be one of the policy's `mx:` hosts: senders that
/// honour the policy deliver to no other (in `enforce`), or report it (in `testing`).
async fn mta_sts_mx_verdict(checker: &Checker, domain: &Domain, policy: &mta_sts::Policy) -> Verdict {
    let d = &domain.name;
    let Some(exchanges) = mx_exchanges(checker, d).await else {
        return unanswered(Check::MtaSts, "mta_sts.unanswered", "Der MX-Eintrag", "MX record", d.as_str());
    };
    let listed = policy.mx.join(", ");
    let uncovered: Vec<&str> =
        exchanges.iter().map(|e| e.trim_end_matches('.')).filter(|e| !e.is_empty() && !policy.matches(e)).collect();
    if uncovered.is_empty() {
        return verdict(
            Check::MtaSts,
            "mta_sts.mx_ok",
            Level::Ok,
            format!("Die MX-Einträge von {d} stehen in der MTA-STS-Richtlinie (mx: {listed})."),
            format!("The MX records of {d} are in the MTA-STS policy (mx: {listed})."),
        );
    }
    let list = uncovered.join(", ");
    let level =
        if domain.mta_sts == postfach_store::domains::MtaStsMode::Enforce { Level::Error } else { Level::Warning };
    verdict(
        Check::MtaSts,
        "mta_sts.mx_mismatch",
        level,
        format!(
            "Die MX-Einträge von {d} nennen {list}, die MTA-STS-Richtlinie aber nur {listed}: Mailserver, die die Richtlinie befolgen, stellen dorthin nicht zu. Lassen Sie die MX-Einträge auf {listed} zeigen."
        ),
        format!(
            "The MX records of {d} name {list}, but the MTA-STS policy lists only {listed}: mail servers that honour the policy do not deliver there. Point the MX records to {listed}."
        ),
    )
}
