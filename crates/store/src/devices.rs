//! The devices of a mailbox: its successful logins of the last days, grouped by the
//! credential (the main password or an app password's name) and the service, with the
//! first and last time seen and the last address and TLS version.
//!
//! One bounded query (`GROUP BY` in SQL, at most `limit` groups). A device is a
//! credential × service × client name: the name a session sent with IMAP `ID`, kept
//! with its login (`Store::name_login_client`). A login without one (POP3, submission,
//! clients that send no `ID`) shows the app password's last known client name.

use std::net::IpAddr;

use postfach_types::{Service, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::decode;
use crate::{AppPasswordId, MailboxId, Scope, Store, StoreError};

/// One client of a mailbox: a credential used on a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The app password's name; `None` for the mailbox's own password.
    pub credential: Option<String>,
    /// The app password, while it exists (so it can be revoked).
    pub app_password: Option<AppPasswordId>,
    pub service: Service,
    /// The client's name from IMAP `ID`: the one its logins sent, else the one last
    /// recorded for the app password.
    pub client: Option<String>,
    pub first_seen: UnixTime,
    pub last_seen: UnixTime,
    pub logins: i64,
    pub last_ip: IpAddr,
    /// `None`: the last login was not encrypted.
    pub last_tls: Option<String>,
}

fn device_from_row(row: &AnyRow) -> Result<Device, sqlx::Error> {
    Ok(Device {
        credential: row.try_get("credential")?,
        app_password: row.try_get("app_password_id")?,
        service: decode(row.try_get("service")?, str::parse)?,
        client: row.try_get("client")?,
        first_seen: UnixTime(row.try_get("first_seen")?),
        last_seen: UnixTime(row.try_get("last_seen")?),
        logins: row.try_get("logins")?,
        last_ip: decode(row.try_get("remote_ip")?, str::parse)?,
        last_tls: row.try_get("tls_version")?,
    })
}

impl Store {
    /// The mailbox's clients with a successful login since `since`, most recently seen
    /// first, at most `limit`. The device services only (IMAP, POP3, submission, ManageSieve).
    pub async fn devices(
        &self,
        scope: Scope,
        mailbox: MailboxId,
        since: UnixTime,
        limit: i64,
    ) -> Result<Vec<Device>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.credential, g.service, g.first_seen, g.last_seen, g.logins, l.remote_ip, l.tls_version, \
             a.id AS app_password_id, COALESCE(g.client, a.last_client) AS client FROM \
             (SELECT credential, service, client, MIN(at) AS first_seen, MAX(at) AS last_seen, COUNT(*) AS logins, \
             MAX(id) AS last_id FROM login_log \
             WHERE mailbox_id = $1 AND ($2 IS NULL OR customer_id = $2) AND at >= $3 AND result = 'ok' \
             AND service IN ('imap', 'pop3', 'submission', 'sieve') GROUP BY credential, service, client) g \
             JOIN login_log l ON l.id = g.last_id \
             LEFT JOIN app_passwords a ON a.mailbox_id = $1 AND a.name = g.credential \
             ORDER BY g.last_seen DESC, g.last_id DESC LIMIT $4",
        )
        .bind(mailbox)
        .bind(scope.customer_filter())
        .bind(since.0)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(device_from_row).collect::<Result<_, _>>()?)
    }
}
