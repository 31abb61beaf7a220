//! Panel sessions, API bearer tokens and TOTP secrets: what the web panel needs to know
//! who is asking.
//!
//! Session cookies and bearer tokens are random values that only their holder knows; this
//! module stores and looks up a hash of each (the caller hashes), so a copy of the
//! database does not let anyone in. Sessions end at a fixed time that each use moves
//! forward (idle timeout) up to an absolute maximum. That a disabled customer's sessions
//! and tokens stop working at once is decided by the authentication gate, not here. TOTP secrets must be stored as they are (the server
//! computes the codes too); the last accepted time step is kept so a code works only once.

use postfach_types::UnixTime;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::flag;
use crate::{ApiTokenId, Conflict, CustomerId, MailboxId, Scope, SessionId, Store, StoreError};

/// A signed-in panel user: a customer or admin account, or a mailbox user (then
/// `mailbox_id` is set and `customer_id` is the mailbox's customer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelSession {
    pub id: SessionId,
    pub customer_id: CustomerId,
    pub mailbox_id: Option<MailboxId>,
    /// The per-session token every state-changing form and API call must repeat.
    pub csrf_token: String,
    /// The password was right, the TOTP code is still outstanding.
    pub second_factor_pending: bool,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetime {
    /// Seconds without a request after which a session ends.
    pub idle_secs: i64,
    /// Seconds after sign-in after which a session ends however active it is.
    pub max_secs: i64,
}

/// An API bearer token (its hash is never returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub customer_id: CustomerId,
    pub name: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// A customer's or admin's TOTP secret (RFC 6238), base32 as shown to the user.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret {
    pub secret: String,
    /// Confirmed with a first code; only then is it asked for at sign-in.
    pub enabled: bool,
    /// The last time step whose code was accepted (replay protection).
    pub last_step: i64,
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSecret").field("enabled", &self.enabled).field("last_step", &self.last_step).finish()
    }
}

const SESSION_SELECT: &str = "SELECT s.id, s.customer_id, s.mailbox_id, s.csrf_token, s.second_factor_pending, \
     s.created_at, s.expires_at FROM panel_sessions s";

fn session_from_row(row: &AnyRow) -> Result<PanelSession, sqlx::Error> {
    Ok(PanelSession {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        csrf_token: row.try_get("csrf_token")?,
        second_factor_pending: row.try_get::<i64, _>("second_factor_pending")? != 0,
        created_at: UnixTime(row.try_get("created_at")?),
        expires_at: UnixTime(row.try_get("expires_at")?),
    })
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        name: row.try_get("name")?,
        created_at: UnixTime(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(UnixTime),
    })
}

impl Store {
    /// Starts a session for a signed-in account. Expired sessions of everyone are removed
    /// on the way, so the table stays small without a separate sweeper.
    pub async fn create_panel_session(
        &self,
        token_hash: &str,
        customer_id: CustomerId,
        mailbox_id: Option<MailboxId>,
        csrf_token: &str,
        second_factor_pending: bool,
        lifetime: SessionLifetime,
    ) -> Result<PanelSession, StoreError> {
        let now = UnixTime::now().0;
        sqlx::query("DELETE FROM panel_sessions WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        let row = sqlx::query(
            "INSERT INTO panel_sessions (token_hash, customer_id, mailbox_id, csrf_token, second_factor_pending, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING id, customer_id, mailbox_id, csrf_token, second_factor_pending, created_at, expires_at",
        )
        .bind(token_hash)
        .bind(customer_id)
        .bind(mailbox_id)
        .bind(csrf_token)
        .bind(flag(second_factor_pending))
        .bind(now)
        .bind(now + lifetime.idle_secs.min(lifetime.max_secs))
        .fetch_one(&self.pool)
        .await?;
        Ok(session_from_row(&row)?)
    }

    /// The live session with this token hash, its expiry moved forward by the idle time
    /// (never past the absolute maximum). `None` when it is unknown or expired. Whether
    /// its account may still use it (not disabled) is the authentication gate's decision
    /// (`Authenticator::panel_session`), as for every other credential.
    pub async fn panel_session(
        &self,
        token_hash: &str,
        lifetime: SessionLifetime,
    ) -> Result<Option<PanelSession>, StoreError> {
        let now = UnixTime::now().0;
        let sql = format!("{SESSION_SELECT} WHERE s.token_hash = $1 AND s.expires_at >= $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token_hash).bind(now).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let mut session = session_from_row(&row)?;
        let expires = (now + lifetime.idle_secs).min(session.created_at.0 + lifetime.max_secs);
        if expires > session.expires_at.0 {
            sqlx::query("UPDATE panel_sessions SET expires_at = $1 WHERE id = $2")
                .bind(expires)
                .bind(session.id)
                .execute(&self.pool)
                .await?;
            session.expires_at = UnixTime(expires);
        }
        Ok(Some(session))
    }

    /// Marks the second factor of a session as given.
    pub async fn complete_second_factor(&self, session_id: SessionId) -> Result<(), StoreError> {
        sqlx::query("UPDATE panel_sessions SET second_factor_pending = 0 WHERE id = $1")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends one session (sign-out).
    pub async fn end_panel_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM panel_sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Ends every session of an account, or of one mailbox (after a password change or a
    /// reset by someone else). `keep` is a session to leave running: the one that made
    /// the change.
    pub async fn end_panel_sessions(
        &self,
        customer_id: CustomerId,
        mailbox_id: Option<MailboxId>,
        keep: Option<SessionId>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM panel_sessions WHERE customer_id = $1 \
             AND (($2 IS NULL AND mailbox_id IS NULL) OR mailbox_id = $2) AND ($3 IS NULL OR id <> $3)",
        )
        .bind(customer_id)
        .bind(mailbox_id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Creates a bearer token for the account `owner`; the caller keeps the token itself
    /// and shows it once.
    pub async fn create_api_token(
        &self,
        owner: CustomerId,
        name: &str,
        token_hash: &str,
    ) -> Result<ApiToken, StoreError> {
        let name: String = name.trim().chars().take(100).filter(|c| !c.is_control()).collect();
        if name.is_empty() {
            return Err(StoreError::Conflict("give the token a name, for example the script that will use it".into()));
        }
        let row = sqlx::query(
            "INSERT INTO api_tokens (customer_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, customer_id, name, created_at, last_used_at",
        )
        .bind(owner)
        .bind(name)
        .bind(token_hash)
        .bind(UnixTime::now().0)
        .fetch_one(&self.pool)
        .await?;
        Ok(token_from_row(&row)?)
    }

    /// The tokens in scope, newest first.
    pub async fn api_tokens(&self, scope: Scope) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, customer_id, name, created_at, last_used_at FROM api_tokens \
             WHERE ($1 IS NULL OR customer_id = $1) ORDER BY created_at DESC, id DESC",
        )
        .bind(scope.customer_filter())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(token_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn revoke_api_token(&self, scope: Scope, id: ApiTokenId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND ($2 IS NULL OR customer_id = $2)")
            .bind(id)
            .bind(scope.customer_filter())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound(format!("there is no API token with id {id}")))
        } else {
            Ok(())
        }
    }

    /// Revokes every API token of an account (after a password change); returns how many.
    pub async fn revoke_all_api_tokens(&self, owner: CustomerId) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE customer_id = $1").bind(owner).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// The token with this hash, whoever owns it (the authentication gate decides what a
    /// disabled owner means); its last use is set to now.
    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.customer_id, t.name, t.created_at, t.last_used_at FROM api_tokens t \
             WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row)?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(UnixTime::now().0)
            .bind(token.id)
            .execute(&self.pool)
            .await?;
        Ok(Some(token))
    }

    pub async fn totp_secret(&self, customer_id: CustomerId) -> Result<Option<TotpSecret>, StoreError> {
        let row = sqlx::query("SELECT secret, enabled, last_step FROM totp_secrets WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpSecret {
            secret: row.try_get("secret")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            last_step: row.try_get("last_step")?,
        }))
    }

    /// Stores a new, not yet enabled secret, replacing an unconfirmed one. An enabled
    /// secret is not replaced: switch two-factor sign-in off first.
    pub async fn set_totp_secret(&self, customer_id: CustomerId, secret: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let enabled = sqlx::query("SELECT enabled FROM totp_secrets WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>("enabled"))
            .transpose()?;
        if enabled == Some(1) {
            return Err(Conflict::TotpOn.into());
        }
        sqlx::query("DELETE FROM totp_secrets WHERE customer_id = $1").bind(customer_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO totp_secrets (customer_id, secret, enabled, last_step, created_at) VALUES ($1, $2, 0, 0, $3)",
        )
        .bind(customer_id)
        .bind(secret)
        .bind(UnixTime::now().0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts the code of time step `step` once: true if no code of this or a later step
    /// was accepted before. With `enable`, a pending secret becomes active.
    pub async fn use_totp_step(&self, customer_id: CustomerId, step: i64, enable: bool) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE totp_secrets SET last_step = $1, enabled = CASE WHEN $2 = 1 THEN 1 ELSE enabled END \
             WHERE customer_id = $3 AND last_step < $1",
        )
        .bind(step)
        .bind(flag(enable))
        .bind(customer_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Switches two-factor sign-in off and forgets the secret.
    pub async fn remove_totp_secret(&self, customer_id: CustomerId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM totp_secrets WHERE customer_id = $1").bind(customer_id).execute(&self.pool).await?;
        Ok(())
    }
}
