//! Schema migrations, applied in order at open, each in its own transaction.
//!
//! The SQL is written once; `{id}` stands for the dialect's auto-increment primary key.
//! Booleans are `BIGINT` 0/1 and times are Unix seconds in both databases. Columns named
//! `customer_id` carry the tenant on every tenant-owned row. The login log has no foreign
//! keys: it outlives the mailboxes and customers it mentions.

use sqlx::{AssertSqlSafe, Row};

use crate::StoreError;
use crate::db::{Backend, Store};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "directory",
        sql: r#"
CREATE TABLE customers (
    id {id},
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'customer')),
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE domains (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL UNIQUE,
    alias_of BIGINT REFERENCES domains (id),
    verified BIGINT NOT NULL DEFAULT 0,
    verify_token TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX domains_customer ON domains (customer_id);
CREATE INDEX domains_alias_of ON domains (alias_of);
CREATE TABLE mailboxes (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    domain_id BIGINT NOT NULL REFERENCES domains (id),
    address TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    access TEXT NOT NULL CHECK (access IN ('imap', 'pop3', 'none')),
    submission BIGINT NOT NULL,
    tls_required BIGINT NOT NULL,
    password_exposed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX mailboxes_customer ON mailboxes (customer_id);
CREATE INDEX mailboxes_domain ON mailboxes (domain_id);
CREATE TABLE addresses (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    domain_id BIGINT NOT NULL REFERENCES domains (id),
    local_part TEXT NOT NULL,
    address TEXT NOT NULL UNIQUE,
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    is_alias BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (domain_id, local_part)
);
CREATE INDEX addresses_mailbox ON addresses (mailbox_id);
CREATE INDEX addresses_customer ON addresses (customer_id);
CREATE TABLE login_log (
    id {id},
    at BIGINT NOT NULL,
    customer_id BIGINT,
    mailbox_id BIGINT,
    login TEXT NOT NULL,
    service TEXT NOT NULL,
    remote_ip TEXT NOT NULL,
    tls_version TEXT,
    tls_cipher TEXT,
    mechanism TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX login_log_mailbox ON login_log (mailbox_id, at);
CREATE INDEX login_log_customer ON login_log (customer_id, at);
CREATE INDEX login_log_at ON login_log (at)
"#,
    },
    Migration {
        version: 2,
        name: "messages",
        sql: r#"
ALTER TABLE mailboxes ADD COLUMN last_uidvalidity BIGINT NOT NULL DEFAULT 0;
CREATE TABLE folders (
    id {id},
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    special_use TEXT,
    uidvalidity BIGINT NOT NULL,
    uidnext BIGINT NOT NULL,
    highest_modseq BIGINT NOT NULL,
    subscribed BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    UNIQUE (mailbox_id, name)
);
CREATE TABLE messages (
    id {id},
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder_id BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    blob_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    internal_date BIGINT NOT NULL,
    flags BIGINT NOT NULL,
    keywords TEXT NOT NULL DEFAULT '',
    UNIQUE (folder_id, uid)
);
CREATE INDEX messages_modseq ON messages (folder_id, modseq);
CREATE INDEX messages_blob ON messages (blob_id);
CREATE INDEX messages_mailbox ON messages (mailbox_id);
CREATE TABLE expunged (
    folder_id BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    PRIMARY KEY (folder_id, uid)
);
CREATE INDEX expunged_modseq ON expunged (folder_id, modseq)
"#,
    },
    Migration {
        version: 3,
        name: "dkim keys and dns checks",
        // DKIM keys and the cached DNS checks belong to a domain and go with it. The private
        // key is PKCS#8 PEM; the public key is the base64 of its SubjectPublicKeyInfo DER,
        // as published in the DKIM record's p= tag (RFC 6376 §3.6.1).
        sql: r#"
CREATE TABLE dkim_keys (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at BIGINT,
    UNIQUE (domain_id, selector)
);
CREATE INDEX dkim_keys_customer ON dkim_keys (customer_id);
CREATE TABLE dns_check_results (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    checked_at BIGINT NOT NULL,
    check_name TEXT NOT NULL,
    code TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('ok', 'warning', 'error')),
    message_de TEXT NOT NULL,
    message_en TEXT NOT NULL
);
CREATE INDEX dns_check_results_domain ON dns_check_results (domain_id, position);
CREATE INDEX dns_check_results_customer ON dns_check_results (customer_id);
CREATE TABLE dns_check_changes (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    check_name TEXT NOT NULL,
    from_level TEXT NOT NULL,
    to_level TEXT NOT NULL,
    message_de TEXT NOT NULL,
    message_en TEXT NOT NULL
);
CREATE INDEX dns_check_changes_domain ON dns_check_changes (domain_id, at);
CREATE INDEX dns_check_changes_customer ON dns_check_changes (customer_id)
"#,
    },
    Migration {
        version: 4,
        name: "panel sessions, API tokens, TOTP",
        sql: r#"
CREATE TABLE panel_sessions (
    id {id},
    token_hash TEXT NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    mailbox_id BIGINT REFERENCES mailboxes (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    second_factor_pending BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX panel_sessions_expires ON panel_sessions (expires_at);
CREATE TABLE api_tokens (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_customer ON api_tokens (customer_id);
CREATE TABLE totp_secrets (
    customer_id BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL
)
"#,
    },
    Migration {
        version: 5,
        name: "outbound queue",
        // The outbound queue: one row per accepted message (its bytes are a blob in the
        // queue spool, data_dir/queue) and one per recipient, which carries the delivery
        // state. No foreign keys to mailboxes or customers: accepted mail is delivered (or
        // bounced) even if its sender is removed meanwhile. `return_path` NULL is the null
        // reverse-path (RFC 5321 §4.5.5). `locked_until` is the claim of a delivery attempt.
        sql: r#"
CREATE TABLE queue_messages (
    id {id},
    queue_id TEXT NOT NULL UNIQUE,
    customer_id BIGINT,
    mailbox_id BIGINT,
    return_path TEXT,
    blob_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX queue_messages_customer ON queue_messages (customer_id);
CREATE INDEX queue_messages_blob ON queue_messages (blob_id);
CREATE TABLE queue_recipients (
    id {id},
    message_id BIGINT NOT NULL REFERENCES queue_messages (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    last_attempt_at BIGINT,
    status TEXT,
    diagnostic TEXT,
    remote_mta TEXT,
    tls TEXT,
    notify TEXT CHECK (notify IN ('failed', 'delayed')),
    delay_warned BIGINT NOT NULL DEFAULT 0,
    finished_at BIGINT
);
CREATE INDEX queue_recipients_due ON queue_recipients (state, next_attempt_at);
CREATE INDEX queue_recipients_message ON queue_recipients (message_id);
CREATE INDEX queue_recipients_notify ON queue_recipients (notify)
"#,
    },
    Migration {
        version: 6,
        name: "imap conformance",
        // \Recent: the highest UID some session has claimed as recent (RFC 3501 §2.3.2).
        // Expunged messages keep what an untold session still needs to FETCH them during
        // the grace period; blobs no message refers to wait in `blob_orphans` until that
        // period has passed. Subscriptions are names of their own (RFC 9051 §6.3.7: a
        // deleted mailbox stays subscribed). `expunged_floor`: the highest modseq whose
        // expunges were pruned (QRESYNC clients older than it get a full VANISHED).
        sql: r#"
ALTER TABLE folders ADD COLUMN recent_uid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE folders ADD COLUMN expunged_floor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE expunged ADD COLUMN expunged_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE expunged ADD COLUMN blob_id TEXT;
ALTER TABLE expunged ADD COLUMN size BIGINT;
ALTER TABLE expunged ADD COLUMN internal_date BIGINT;
ALTER TABLE expunged ADD COLUMN flags BIGINT;
ALTER TABLE expunged ADD COLUMN keywords TEXT;
CREATE INDEX expunged_at ON expunged (expunged_at);
CREATE TABLE blob_orphans (
    blob_id TEXT PRIMARY KEY,
    since BIGINT NOT NULL
);
CREATE TABLE subscriptions (
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, name)
);
INSERT INTO subscriptions (mailbox_id, name) SELECT mailbox_id, name FROM folders WHERE subscribed = 1;
ALTER TABLE folders DROP COLUMN subscribed
"#,
    },
    Migration {
        version: 7,
        name: "state shared by nodes",
        // Used on PostgreSQL, where several nodes share the database (`counters`): one
        // row per counted event of the login throttle (`at`: Unix milliseconds), and the
        // token bucket of each mailbox's sending allowance. The upkeep sweep prunes both.
        sql: r#"
CREATE TABLE throttle_events (
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX throttle_events_key ON throttle_events (key, at);
CREATE INDEX throttle_events_at ON throttle_events (at);
CREATE TABLE send_allowances (
    mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    units BIGINT NOT NULL,
    at BIGINT NOT NULL
)
"#,
    },
    Migration {
        version: 8,
        name: "queue claims by node",
        // Several nodes share the queue: a claim names the node that holds it
        // (`[cluster] node`), so that a starting node releases only its own claims and
        // `postfach queue list` shows who is delivering. NULL: no claim, or one made before
        // this version (a single node, released by the next start).
        sql: r#"
ALTER TABLE queue_recipients ADD COLUMN locked_by TEXT;
CREATE INDEX queue_recipients_locked_by ON queue_recipients (locked_by)
"#,
    },
    Migration {
        version: 9,
        name: "certificates",
        // ACME (`postfach_server::acme`): the account per directory (its credentials hold
        // the account key), one row per certificate (`subject`: the hostname or a customer
        // domain; `names`: space-separated DNS names it covers; the chain and key as PEM,
        // both NULL until the first order succeeds; the last failure and when to try
        // again), the challenges being answered (any node may be asked), and one counter
        // bumped by every change so that nodes reload only when something changed.
        // `domains.certificates`: the customer asked for certificates for its names.
        sql: r#"
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE tls_certificates (
    subject TEXT PRIMARY KEY,
    names TEXT NOT NULL,
    chain_pem TEXT,
    key_pem TEXT,
    not_before BIGINT,
    not_after BIGINT,
    issuer TEXT,
    issued_at BIGINT,
    last_error TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE acme_challenges (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE tls_generation (
    id BIGINT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO tls_generation (id, n) VALUES (1, 0);
ALTER TABLE domains ADD COLUMN certificates BIGINT NOT NULL DEFAULT 0
"#,
    },
    Migration {
        version: 10,
        name: "quotas",
        // Quotas (NULL: no limit): bytes and messages per mailbox, bytes per customer for
        // all its mailboxes together. A mailbox's use is kept in `used_bytes` and
        // `used_messages` by the transactions that add and remove its messages, so a
        // delivery reads it instead of summing messages; backfilled here. `quota_warned`
        // is the last warning level (percent) the mailbox was told about; `language` the
        // language of the mails Postfach writes into it.
        sql: r#"
ALTER TABLE customers ADD COLUMN quota_bytes BIGINT;
ALTER TABLE mailboxes ADD COLUMN quota_bytes BIGINT;
ALTER TABLE mailboxes ADD COLUMN quota_messages BIGINT;
ALTER TABLE mailboxes ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN used_messages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN quota_warned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
UPDATE mailboxes SET
    used_bytes = (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM messages WHERE messages.mailbox_id = mailboxes.id),
    used_messages = (SELECT CAST(COUNT(*) AS BIGINT) FROM messages WHERE messages.mailbox_id = mailboxes.id)
"#,
    },
    Migration {
        version: 11,
        name: "app_passwords",
        // App passwords (`app_passwords.rs`): one row per device credential of a mailbox,
        // its name unique in the mailbox; `lookup` is the random key at the start of the
        // password that selects this row at login (so a login verifies one hash, never
        // one per app password); `hash` is the argon2id hash of the whole password;
        // `services` is a space-separated list (imap, pop3, submission); `last_*` the
        // last successful use. `mailboxes.app_passwords_only`: the main password works
        // only for the panel. `login_log.credential`: the app password's name, NULL for
        // the main password.
        sql: r#"
CREATE TABLE app_passwords (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id),
    name TEXT NOT NULL,
    lookup TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    services TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    last_service TEXT,
    last_ip TEXT,
    last_tls TEXT,
    last_client TEXT,
    UNIQUE (mailbox_id, name)
);
CREATE INDEX app_passwords_customer ON app_passwords (customer_id);
ALTER TABLE mailboxes ADD COLUMN app_passwords_only BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_log ADD COLUMN credential TEXT
"#,
    },
    Migration {
        version: 12,
        name: "warning mails",
        // Warning mails (`warnings`): the kinds a mailbox switched off (space-separated
        // words, empty: all on), a customer's contact address for copies, and the rate
        // limit's state per kind and target (`mailbox <id>` or `domain <id>`): when the
        // last mail went out, events since then not yet told (`pending`, from
        // `pending_since`), and what the last mail told (`told`, `told_since`).
        sql: r#"
ALTER TABLE mailboxes ADD COLUMN warnings_off TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN contact_address TEXT;
CREATE TABLE warning_state (
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    mailbox_id BIGINT REFERENCES mailboxes(id) ON DELETE CASCADE,
    domain_id BIGINT REFERENCES domains(id) ON DELETE CASCADE,
    last_sent BIGINT NOT NULL,
    pending BIGINT NOT NULL DEFAULT 0,
    pending_since BIGINT,
    told BIGINT NOT NULL DEFAULT 0,
    told_since BIGINT,
    PRIMARY KEY (target, kind)
)
"#,
    },
    Migration {
        version: 14,
        name: "unused app password warnings",
        // When an app password was last told as unused (`warnings`
        // `tell_unused_app_passwords`): told once per idle stretch, again only after a
        // later use went idle too.
        sql: "ALTER TABLE app_passwords ADD COLUMN unused_told_at BIGINT",
    },
    Migration {
        version: 15,
        name: "sieve scripts",
        // Sieve scripts of a mailbox (`sieve.rs`): unique names, at most one active (a
        // partial unique index); `mailboxes.sieve_active_at` is the active script's
        // `updated_at` (NULL: none), read with the recipient so that delivery asks for a
        // script only when one is active. Vacation replies remember whom they answered
        // and when, per mailbox and vacation (`handle`), for `:days`.
        sql: r#"
CREATE TABLE sieve_scripts (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    script TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    UNIQUE (mailbox_id, name)
);
CREATE UNIQUE INDEX sieve_scripts_one_active ON sieve_scripts (mailbox_id) WHERE active = 1;
ALTER TABLE mailboxes ADD COLUMN sieve_active_at BIGINT;
CREATE TABLE vacation_replies (
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    sender TEXT NOT NULL,
    handle TEXT NOT NULL,
    replied_at BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, sender, handle)
)
"#,
    },
    Migration {
        version: 16,
        name: "customer spam thresholds",
        // A customer's spam thresholds (`customers::SpamThresholds`): NULL for the
        // platform's default from `[spam]`, `none` for never, else a score like `6.50`.
        sql: "ALTER TABLE customers ADD COLUMN spam_reject TEXT; \
              ALTER TABLE customers ADD COLUMN spam_junk TEXT",
    },
    Migration {
        version: 17,
        name: "imap import",
        // Moving in from another IMAP server (`imports.rs`): per target mailbox, source
        // (host, login) and source folder, the folder's UIDVALIDITY and the highest UID
        // copied, so that a second run copies only what is new.
        sql: r#"
CREATE TABLE import_positions (
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id),
    host TEXT NOT NULL,
    login TEXT NOT NULL,
    folder TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, host, login, folder)
)
"#,
    },
    Migration {
        version: 19,
        name: "ownership proven by a published record, client names in the login log",
        // 1 when the domain was verified because its ownership TXT record was found
        // (`set_domain_proven`): that record must stay published, and the DNS checks say
        // so when it disappears. 0 when the operator asserted ownership, or for domains
        // verified before this version (how is not known; they are not re-checked).
        // `login_log.client`: the client's name (IMAP `ID`) for a successful login whose
        // session sent one (`name_login_client`); the devices page groups by it.
        sql: "ALTER TABLE domains ADD COLUMN proven_by_record BIGINT NOT NULL DEFAULT 0; \
              ALTER TABLE login_log ADD COLUMN client TEXT",
    },
    Migration {
        version: 20,
        name: "imap import jobs",
        // The panel's and API's IMAP import jobs (`import_jobs.rs`): the old server (host,
        // port, TLS or STARTTLS, login; never the password), who started it, the node it
        // runs on, its state (queued, running, done, failed, interrupted), counts, the
        // folder being copied and a text for the customer. At most one queued or running
        // job per mailbox (a partial unique index).
        sql: r#"
CREATE TABLE import_jobs (
    id {id},
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id),
    host TEXT NOT NULL,
    port BIGINT NOT NULL,
    starttls BIGINT NOT NULL,
    login TEXT NOT NULL,
    started_by TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    folders BIGINT NOT NULL DEFAULT 0,
    copied BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    current_folder TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    result TEXT
);
CREATE UNIQUE INDEX import_jobs_one_active ON import_jobs (mailbox_id) WHERE state IN ('queued', 'running');
CREATE INDEX import_jobs_node ON import_jobs (node, state)
"#,
    },
    Migration {
        version: 21,
        name: "mta-sts mode per domain",
        // The domain's inbound MTA-STS mode (RFC 8461, `domains::MtaStsMode`): `off`,
        // `testing` or `enforce`. Not `off`: the server serves the policy file at
        // `mta-sts.DOMAIN` and orders a certificate for that name.
        sql: "ALTER TABLE domains ADD COLUMN mta_sts TEXT NOT NULL DEFAULT 'off'",
    },
    Migration {
        version: 22,
        name: "received TLS reports",
        // TLS-RPT reports (RFC 8460) other servers sent to the platform's reporting address
        // (`tls_reports.rs`): one row per report and hosted policy domain, its failure details
        // below it. A report resent by its organisation is stored once (unique index).
        sql: r#"
CREATE TABLE tls_reports (
    id {id},
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    received_at BIGINT NOT NULL,
    organization TEXT NOT NULL,
    contact TEXT NOT NULL,
    report_id TEXT NOT NULL,
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    successful BIGINT NOT NULL,
    failed BIGINT NOT NULL
);
CREATE UNIQUE INDEX tls_reports_once ON tls_reports (domain_id, organization, report_id);
CREATE INDEX tls_reports_received ON tls_reports (received_at);
CREATE TABLE tls_report_failures (
    tls_report_id BIGINT NOT NULL REFERENCES tls_reports (id) ON DELETE CASCADE,
    result_type TEXT NOT NULL,
    sending_mta_ip TEXT NOT NULL,
    receiving_mx TEXT NOT NULL,
    failed BIGINT NOT NULL
);
CREATE INDEX tls_report_failures_report ON tls_report_failures (tls_report_id)
"#,
    },
    Migration {
        version: 23,
        name: "outbound tls policy",
        // Outbound TLS (outbound/src/tls_policy.rs). `mta_sts_policies`: the MTA-STS
        // policies of destination domains as fetched (RFC 8461 §5: cached for max_age,
        // fetched again when the `_mta-sts` TXT id changes), shared by every node.
        // `queue_messages.tls_demand`: what the sender asked for ('requiretls' for
        // REQUIRETLS, 'encrypted' for "always require TLS"; NULL: nothing).
        // `queue_recipients.tls_policy`: the rule the last attempt followed
        // (none|opportunistic|mta-sts|dane). `outbound_tls_required` on mailboxes and
        // customers: "always require TLS to other servers".
        sql: r#"
CREATE TABLE mta_sts_policies (
    domain TEXT PRIMARY KEY,
    txt_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    mx TEXT NOT NULL,
    max_age BIGINT NOT NULL,
    fetched_at BIGINT NOT NULL
);
ALTER TABLE queue_messages ADD COLUMN tls_demand TEXT;
ALTER TABLE queue_recipients ADD COLUMN tls_policy TEXT;
ALTER TABLE mailboxes ADD COLUMN outbound_tls_required BIGINT NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN outbound_tls_required BIGINT NOT NULL DEFAULT 0
"#,
    },
    Migration {
        version: 26,
        name: "next certificate key",
        // The key the next ACME order for a subject uses (PEM), made when a certificate
        // is stored: a `3 1 1` TLSA record for it can be published before the renewal.
        sql: "ALTER TABLE tls_certificates ADD COLUMN next_key_pem TEXT",
    },
    Migration {
        version: 27,
        name: "outbound tls report counts",
        // The TLS outcomes of Postfach's own deliveries (`tls_rpt_out.rs`), counted per
        // destination domain, UTC day, policy, result and receiving server (RFC 8460 §4):
        // one row per distinct outcome, its counter incremented; the daily report is built
        // from them and they are forgotten once sent.
        sql: r#"
CREATE TABLE tls_rpt_counts (
    domain TEXT NOT NULL,
    day BIGINT NOT NULL,
    policy_type TEXT NOT NULL,
    policy TEXT NOT NULL,
    result TEXT NOT NULL,
    mx_host TEXT NOT NULL,
    mx_ip TEXT NOT NULL,
    sessions BIGINT NOT NULL,
    PRIMARY KEY (domain, day, policy_type, policy, result, mx_host, mx_ip)
)
"#,
    },
    Migration {
        version: 28,
        name: "import job lease",
        // When the node running an import job last renewed it (`import_jobs.rs`): a job not
        // renewed for `JOB_LEASE_SECS` is abandoned (its node is gone) and no longer blocks
        // its mailbox. Rows from before count as renewed when they were created.
        sql: r#"
ALTER TABLE import_jobs ADD COLUMN heartbeat_at BIGINT NOT NULL DEFAULT 0;
UPDATE import_jobs SET heartbeat_at = created_at
"#,
    },
    Migration {
        version: 29,
        name: "sent mail log",
        // Each recipient of mail sent from a mailbox once its delivery ended (`sent_log.rs`):
        // the result, the receiving server and the encryption, for the panel's "Sent mail"
        // list after the queue has forgotten the message. Kept as long as the login log.
        sql: r#"
CREATE TABLE sent_log (
    id {id},
    customer_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    recipient TEXT NOT NULL,
    at BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    status TEXT,
    diagnostic TEXT,
    remote_mta TEXT,
    tls TEXT,
    tls_policy TEXT
);
CREATE INDEX sent_log_mailbox ON sent_log (mailbox_id, id);
CREATE INDEX sent_log_at ON sent_log (at)
"#,
    },
];

impl Store {
    /// The applied migrations as (version, applied at), oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get::<i64, _>("version")?, r.try_get::<i64, _>("applied_at")?))).collect()
    }
}

/// The newest schema version this build knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let id = match store.backend() {
        Backend::Sqlite => "INTEGER PRIMARY KEY",
        Backend::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    // One transaction for all pending migrations; concurrent starters (a server and a CLI
    // call) queue behind it: SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock.
    let mut tx = store.begin_write().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7303826)").execute(&mut *tx).await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    // Applied versions are tracked one by one: a version missing below the newest one
    // (merged from parallel work) is still applied.
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    let current = applied.iter().copied().max().unwrap_or(0);
    if current > latest() {
        return Err(StoreError::SchemaTooNew { found: current, known: latest() });
    }
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for statement in migration.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let statement = statement.replace("{id}", id);
            sqlx::query(AssertSqlSafe(statement)).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(postfach_types::UnixTime::now().0)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = migration.version, name = migration.name, "database schema migrated");
    }
    tx.commit().await?;
    Ok(())
}
