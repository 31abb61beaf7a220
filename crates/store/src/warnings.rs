//! Warning mails: the events that start them, the bounded hand-over to the background task
//! that writes them, and what the database keeps for them (the kinds a mailbox switched
//! off, a customer's contact address, and the rate limit's state).
//!
//! Events are told where they are decided (the authentication gate's `write_down` and
//! its exposure marking, the sending allowance, the DNS re-check) through
//! [`Warnings::tell`]: a `try_send` on a bounded channel, nothing else, so the login path
//! does no extra work. A full channel drops the event and counts it. The task (in
//! `postfach-server`) reads switches and contacts, applies [`Store::warning_due`] (at most
//! one mail per kind and target a day; later events are counted and told in the next
//! mail) and renders the mail ([`crate::notice::Notice::Warning`]).
//!
//! Adding a kind: one [`WarningKind`] variant and its text in `notice.rs`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use postfach_types::{
    AccessMode, CustomerId, DomainId, DomainName, EmailAddress, Language, MailboxId, ParseEnumError, Service, UnixTime,
};
use sqlx::Row;
use tokio::sync::mpsc;

use crate::db::decode;
use crate::dns_checks::Text;
use crate::{Scope, Store, StoreError};

/// How long one warning mail of a kind covers: at most one per kind and target within it.
pub const WARNING_INTERVAL_SECS: i64 = 86_400;

/// After how many days without a login an app password is told as unused.
pub const UNUSED_APP_PASSWORD_DAYS: i64 = 90;

/// How many earlier logins of a credential [`Store::seen_before`] looks at, at most.
const SEEN_BEFORE_LIMIT: i64 = 2_000;

macro_rules! kinds {
    ($($(#[$meta:meta])* $variant:ident = $word:literal),+ $(,)?) => {
        /// What a warning mail is about. The word is the switch's name (CLI, API, panel).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum WarningKind { $($(#[$meta])* $variant),+ }

        impl WarningKind {
            pub const ALL: &'static [WarningKind] = &[$(WarningKind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(WarningKind::$variant => $word),+ }
            }
        }

        impl std::str::FromStr for WarningKind {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok(WarningKind::$variant),)+
                    _ => Err(ParseEnumError { given: s.to_string(), expected: &[$($word),+] }),
                }
            }
        }
    };
}

kinds! {
    /// A login attempt without TLS (any outcome).
    Unencrypted = "unencrypted",
    /// A device used a protocol the mailbox does not allow (POP3 on an IMAP mailbox, or
    /// the reverse, or a switched-off service).
    WrongProtocol = "wrong-protocol",
    /// The correct password crossed the network in plaintext and is marked exposed.
    Exposed = "exposed",
    /// A login was refused by the throttle (too many wrong passwords).
    Locked = "locked",
    /// The mailbox reached its sending limit and a message was refused.
    SendingLimit = "sending-limit",
    /// For the customer: a check of a domain's published records turned red.
    DomainRecords = "domain-records",
    /// The first successful login of a credential and service from a network
    /// ([`Store::seen_before`]).
    NewDevice = "new-device",
    /// App passwords not used for [`UNUSED_APP_PASSWORD_DAYS`] days
    /// ([`Store::tell_unused_app_passwords`]).
    UnusedAppPassword = "unused-app-password",
}

impl std::fmt::Display for WarningKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl WarningKind {
    /// The kinds a mailbox can switch (the others are about a domain, for the customer).
    pub fn is_mailbox_kind(self) -> bool {
        self != WarningKind::DomainRecords
    }
}

/// Whom a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningTarget {
    Mailbox(MailboxId),
    Domain(DomainId),
}

impl WarningTarget {
    fn key(self) -> String {
        match self {
            WarningTarget::Mailbox(id) => format!("mailbox {}", id.get()),
            WarningTarget::Domain(id) => format!("domain {}", id.get()),
        }
    }
}

/// What happened, as far as the place that decided it knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WarningFacts {
    pub service: Option<Service>,
    /// The client's address.
    pub client: Option<IpAddr>,
    /// The envelope sender of a refused message.
    pub sender: Option<EmailAddress>,
    /// What a domain check found (the check's own sentence, de/en).
    pub problems: Vec<Text>,
    /// The app password a login used (its name); `None`: the main password.
    pub credential: Option<String>,
    /// The TLS version of the connection; `None`: no TLS.
    pub tls: Option<String>,
    /// App passwords nobody used for a long time.
    pub unused: Vec<UnusedAppPassword>,
}

/// An app password told as unused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedAppPassword {
    pub name: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether two client addresses are in one network for "a new device": the same /24
/// (IPv4) or /48 (IPv6).
pub fn same_network(a: IpAddr, b: IpAddr) -> bool {
    match (unmapped(a), unmapped(b)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..3] == b.segments()[..3],
        _ => false,
    }
}

/// The network of [`same_network`] as text: `192.0.2.0/24`, `2001:db8:1::/48`.
pub fn network_of(ip: IpAddr) -> String {
    match unmapped(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{}/24", std::net::Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/48", std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

/// One event that may become a warning mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningEvent {
    pub kind: WarningKind,
    pub target: WarningTarget,
    pub at: UnixTime,
    pub facts: WarningFacts,
}

impl WarningEvent {
    pub fn new(kind: WarningKind, target: WarningTarget, facts: WarningFacts) -> Self {
        Self { kind, target, at: UnixTime::now(), facts }
    }
}

/// The hand-over of events to the warning task. Every clone of a [`Store`] shares one;
/// until a task subscribes, events are dropped silently (the CLI, tests without a server).
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sender: OnceLock<mpsc::Sender<WarningEvent>>,
    dropped: AtomicU64,
}

impl Warnings {
    /// Hands `event` over without waiting; when the channel is full it is dropped and
    /// counted ([`Warnings::dropped`]).
    pub fn tell(&self, event: WarningEvent) {
        let Some(sender) = self.inner.sender.get() else { return };
        if sender.try_send(event).is_err() {
            let before = self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            if before.is_power_of_two() || before == 0 {
                tracing::warn!(dropped = before + 1, "the warning mail queue is full; events are dropped");
            }
        }
    }

    /// The receiving end, for the one task that writes warning mails; `None` when a task
    /// has subscribed already.
    pub fn subscribe(&self, capacity: usize) -> Option<mpsc::Receiver<WarningEvent>> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        self.inner.sender.set(sender).ok()?;
        Some(receiver)
    }

    /// Events dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

/// What the last mail did not tell: events after it, within its interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untold {
    pub count: u64,
    pub since: Option<UnixTime>,
}

/// A mailbox as its warnings need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxWarningFacts {
    pub address: EmailAddress,
    pub language: Language,
    pub access: AccessMode,
    pub submission: bool,
    pub customer_id: CustomerId,
    /// The kinds it switched off.
    pub off: Vec<WarningKind>,
    /// The customer's contact address, for a copy.
    pub contact: Option<EmailAddress>,
}

/// A domain as its customer's warnings need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainWarningFacts {
    pub name: DomainName,
    pub customer_id: CustomerId,
    pub contact: Option<EmailAddress>,
}

fn kinds_from_words(words: &str) -> Vec<WarningKind> {
    words.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

fn contact_from(value: Option<String>) -> Result<Option<EmailAddress>, sqlx::Error> {
    value.map(|v| decode(v, EmailAddress::parse)).transpose()
}

impl Store {
    /// The hand-over to the warning task (module documentation).
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }

    /// Counts an event of `kind` for `target` at `now` and says whether a mail is due: the
    /// first event, or the first one a day after the last mail. When due, returns what the
    /// mail must summarise (events after the last mail that it did not tell); otherwise
    /// the event is counted for the next mail. One transaction, so nodes agree.
    pub async fn warning_due(
        &self,
        kind: WarningKind,
        target: WarningTarget,
        now: UnixTime,
    ) -> Result<Option<Untold>, StoreError> {
        let (mailbox, domain) = match target {
            WarningTarget::Mailbox(id) => (Some(id.get()), None),
            WarningTarget::Domain(id) => (None, Some(id.get())),
        };
        let key = target.key();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO warning_state (target, kind, mailbox_id, domain_id, last_sent) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (target, kind) DO NOTHING",
        )
        .bind(&key)
        .bind(kind.as_str())
        .bind(mailbox)
        .bind(domain)
        .bind(i64::MIN / 2)
        .execute(&mut *tx)
        .await?;
        let due = sqlx::query(
            "UPDATE warning_state SET last_sent = $3, told = pending, told_since = pending_since, pending = 0, \
             pending_since = NULL WHERE target = $1 AND kind = $2 AND last_sent <= $4 RETURNING told, told_since",
        )
        .bind(&key)
        .bind(kind.as_str())
        .bind(now.0)
        .bind(now.0.saturating_sub(WARNING_INTERVAL_SECS))
        .fetch_optional(&mut *tx)
        .await?;
        let result = match due {
            Some(row) => Some(Untold {
                count: u64::try_from(row.try_get::<i64, _>("told")?).unwrap_or(0),
                since: row.try_get::<Option<i64>, _>("told_since")?.map(UnixTime),
            }),
            None => {
                sqlx::query(
                    "UPDATE warning_state SET pending = pending + 1, pending_since = COALESCE(pending_since, $3) \
                     WHERE target = $1 AND kind = $2",
                )
                .bind(&key)
                .bind(kind.as_str())
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
                None
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    /// Whether the mailbox logged in successfully with `credential` (an app password's
    /// name; `None`: the main password) over `service` from the network of `client`
    /// between `since` and `before` (exclusive: the login being judged is written at
    /// `before`). Uses the login log's (mailbox, time) index and looks at the newest
    /// [`SEEN_BEFORE_LIMIT`] such logins at most.
    pub async fn seen_before(
        &self,
        mailbox: MailboxId,
        credential: Option<&str>,
        service: Service,
        client: IpAddr,
        since: UnixTime,
        before: UnixTime,
    ) -> Result<bool, StoreError> {
        let rows = sqlx::query(
            "SELECT remote_ip FROM login_log WHERE mailbox_id = $1 AND at >= $2 AND at < $3 AND result = 'ok' \
             AND service = $4 AND COALESCE(credential, '') = $5 ORDER BY at DESC LIMIT $6",
        )
        .bind(mailbox)
        .bind(since.0)
        .bind(before.0)
        .bind(service.as_str())
        .bind(credential.unwrap_or(""))
        .bind(SEEN_BEFORE_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let ip: String = row.try_get("remote_ip")?;
            if ip.parse::<IpAddr>().is_ok_and(|ip| same_network(ip, client)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Hands one [`WarningKind::UnusedAppPassword`] event per mailbox to the warning task,
    /// listing its app passwords not used (or, never used, created) for
    /// [`UNUSED_APP_PASSWORD_DAYS`] days before `now` that were not told since their last
    /// use. Marks them told, so each is told once per idle stretch. Returns how many
    /// mailboxes were told. Run once a day on the leader.
    pub async fn tell_unused_app_passwords(&self, now: UnixTime) -> Result<usize, StoreError> {
        let cutoff = now.0.saturating_sub(UNUSED_APP_PASSWORD_DAYS * 86_400);
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT id, mailbox_id, name, created_at, last_used_at FROM app_passwords \
             WHERE COALESCE(last_used_at, created_at) < $1 \
             AND (unused_told_at IS NULL OR unused_told_at < COALESCE(last_used_at, created_at)) \
             ORDER BY mailbox_id, name LIMIT 10000",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        let mut per_mailbox: Vec<(MailboxId, Vec<UnusedAppPassword>)> = Vec::new();
        for row in &rows {
            let mailbox: MailboxId = row.try_get("mailbox_id")?;
            let unused = UnusedAppPassword {
                name: row.try_get("name")?,
                created_at: UnixTime(row.try_get("created_at")?),
                last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(UnixTime),
            };
            match per_mailbox.last_mut() {
                Some((m, list)) if *m == mailbox => list.push(unused),
                _ => per_mailbox.push((mailbox, vec![unused])),
            }
            sqlx::query("UPDATE app_passwords SET unused_told_at = $1 WHERE id = $2")
                .bind(now.0)
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let told = per_mailbox.len();
        for (mailbox, unused) in per_mailbox {
            let facts = WarningFacts { unused, ..WarningFacts::default() };
            let mut event = WarningEvent::new(WarningKind::UnusedAppPassword, WarningTarget::Mailbox(mailbox), facts);
            event.at = now;
            self.warnings.tell(event);
        }
        Ok(told)
    }

    /// What a warning to the mailbox needs; `None` when it no longer exists.
    pub async fn mailbox_warning_facts(&self, id: MailboxId) -> Result<Option<MailboxWarningFacts>, StoreError> {
        let row = sqlx::query(
            "SELECT m.address, m.language, m.access, m.submission, m.customer_id, m.warnings_off, c.contact_address \
             FROM mailboxes m JOIN customers c ON c.id = m.customer_id WHERE m.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(MailboxWarningFacts {
            address: decode(row.try_get("address")?, EmailAddress::parse)?,
            language: decode(row.try_get("language")?, str::parse)?,
            access: decode(row.try_get("access")?, str::parse)?,
            submission: row.try_get::<i64, _>("submission")? != 0,
            customer_id: row.try_get("customer_id")?,
            off: kinds_from_words(&row.try_get::<String, _>("warnings_off")?),
            contact: contact_from(row.try_get("contact_address")?)?,
        }))
    }

    /// What a warning about the domain needs; `None` when it no longer exists.
    pub async fn domain_warning_facts(&self, id: DomainId) -> Result<Option<DomainWarningFacts>, StoreError> {
        let row = sqlx::query(
            "SELECT d.name, d.customer_id, c.contact_address FROM domains d JOIN customers c ON c.id = d.customer_id \
             WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(DomainWarningFacts {
            name: decode(row.try_get("name")?, DomainName::parse)?,
            customer_id: row.try_get("customer_id")?,
            contact: contact_from(row.try_get("contact_address")?)?,
        }))
    }

    /// The warning kinds a visible mailbox switched off.
    pub async fn mailbox_warnings_off(&self, scope: Scope, id: MailboxId) -> Result<Vec<WarningKind>, StoreError> {
        let words: String = self
            .one_in_scope(
                "SELECT m.warnings_off FROM mailboxes m WHERE m.id = $1 AND ($2 IS NULL OR m.customer_id = $2)".into(),
                id,
                scope,
                "mailbox",
                |row| row.try_get("warnings_off"),
            )
            .await?;
        Ok(kinds_from_words(&words))
    }

    /// Switches one warning kind of a visible mailbox on or off.
    pub async fn set_mailbox_warning(
        &self,
        scope: Scope,
        id: MailboxId,
        kind: WarningKind,
        on: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT warnings_off FROM mailboxes WHERE id = $1 AND ($2 IS NULL OR customer_id = $2)")
            .bind(id)
            .bind(scope.customer_filter())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound("the mailbox does not exist (any more)".into()))?;
        let mut off = kinds_from_words(&row.try_get::<String, _>("warnings_off")?);
        off.retain(|k| *k != kind);
        if !on {
            off.push(kind);
        }
        let words: Vec<&str> = WarningKind::ALL.iter().filter(|k| off.contains(k)).map(|k| k.as_str()).collect();
        sqlx::query("UPDATE mailboxes SET warnings_off = $1, changed_at = $2 WHERE id = $3")
            .bind(words.join(" "))
            .bind(UnixTime::now().0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A customer's contact address for copies of warning mails.
    pub async fn customer_contact(&self, id: CustomerId) -> Result<Option<EmailAddress>, StoreError> {
        let row = sqlx::query("SELECT contact_address FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound("the customer does not exist (any more)".into()))?;
        Ok(contact_from(row.try_get("contact_address")?)?)
    }

    /// Sets (or with `None` removes) a customer's contact address.
    pub async fn set_customer_contact(&self, id: CustomerId, contact: Option<&EmailAddress>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE customers SET contact_address = $1 WHERE id = $2")
            .bind(contact.map(ToString::to_string))
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("the customer does not exist (any more)".into()));
        }
        Ok(())
    }
}
