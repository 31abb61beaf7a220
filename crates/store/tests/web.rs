//! The panel's store functions (sessions, API tokens, TOTP secrets), run against SQLite
//! and PostgreSQL alike.

mod backends;

use postfach_store::mailboxes::MailboxSettings;
use postfach_store::sessions::SessionLifetime;
use postfach_store::{Conflict, Scope, Store, StoreError};
use postfach_types::{CustomerId, CustomerName, DomainName, EmailAddress, Role};

on_both_backends!(
    sessions_are_found_by_hash_and_end,
    expired_sessions_are_not_found,
    second_factor_and_ending_all_sessions,
    mailbox_sessions_go_with_their_mailbox,
    api_tokens_are_scoped_and_revocable,
    totp_steps_are_accepted_once,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";
const LIFE: SessionLifetime = SessionLifetime { idle_secs: 1800, max_secs: 43_200 };

async fn customer(store: &Store, name: &str) -> CustomerId {
    store.add_customer(&CustomerName::parse(name).expect("name"), HASH, Role::Customer).await.expect("customer").id
}

async fn sessions_are_found_by_hash_and_end(store: Store) {
    let acme = customer(&store, "acme").await;
    let created = store.create_panel_session("hash-1", acme, None, "csrf-1", false, LIFE).await.expect("create");
    assert_eq!(created.customer_id, acme);
    assert!(created.expires_at.0 - created.created_at.0 <= LIFE.idle_secs);
    let found = store.panel_session("hash-1", LIFE).await.expect("lookup").expect("live session");
    assert_eq!((found.id, found.csrf_token.as_str(), found.mailbox_id), (created.id, "csrf-1", None));
    assert_eq!(store.panel_session("hash-2", LIFE).await.expect("lookup"), None);
    store.end_panel_session("hash-1").await.expect("end");
    assert_eq!(store.panel_session("hash-1", LIFE).await.expect("lookup"), None);
}

async fn expired_sessions_are_not_found(store: Store) {
    let acme = customer(&store, "acme").await;
    let gone = SessionLifetime { idle_secs: -10, max_secs: -10 };
    store.create_panel_session("old", acme, None, "c", false, gone).await.expect("create");
    assert_eq!(store.panel_session("old", LIFE).await.expect("lookup"), None, "an expired session is gone");
    store.create_panel_session("new", acme, None, "c", false, LIFE).await.expect("create");
    assert!(store.panel_session("new", LIFE).await.expect("lookup").is_some());
    store.set_customer_disabled(&CustomerName::parse("acme").expect("name"), true).await.expect("disable");
    // Whether a disabled customer's session lets anyone in is the authentication gate's
    // decision (auth/tests/authenticate.rs); the store still finds it.
    assert!(store.panel_session("new", LIFE).await.expect("lookup").is_some());
}

async fn second_factor_and_ending_all_sessions(store: Store) {
    let acme = customer(&store, "acme").await;
    let first = store.create_panel_session("a", acme, None, "c", true, LIFE).await.expect("create");
    assert!(first.second_factor_pending);
    store.complete_second_factor(first.id).await.expect("complete");
    assert!(!store.panel_session("a", LIFE).await.expect("lookup").expect("live").second_factor_pending);
    store.create_panel_session("b", acme, None, "c", false, LIFE).await.expect("create");
    store.create_panel_session("c", acme, None, "c", false, LIFE).await.expect("create");
    assert_eq!(store.end_panel_sessions(acme, None, Some(first.id)).await.expect("end others"), 2);
    assert!(store.panel_session("a", LIFE).await.expect("lookup").is_some(), "the kept session lives");
    assert!(store.panel_session("b", LIFE).await.expect("lookup").is_none());
}

async fn mailbox_sessions_go_with_their_mailbox(store: Store) {
    let acme = customer(&store, "acme").await;
    store.add_domain(acme, &DomainName::parse("acme.example").expect("domain"), true).await.expect("domain");
    let address = EmailAddress::parse("max@acme.example").expect("address");
    let mailbox =
        store.add_mailbox(Scope::Platform, &address, HASH, MailboxSettings::default()).await.expect("mailbox");
    store.create_panel_session("m", acme, Some(mailbox.id), "c", false, LIFE).await.expect("create");
    store.create_panel_session("owner", acme, None, "c", false, LIFE).await.expect("create");
    let found = store.panel_session("m", LIFE).await.expect("lookup").expect("live");
    assert_eq!(found.mailbox_id, Some(mailbox.id));
    // Ending the account's sessions leaves the mailbox user's alone, and the other way round.
    assert_eq!(store.end_panel_sessions(acme, Some(mailbox.id), None).await.expect("end"), 1);
    assert!(store.panel_session("owner", LIFE).await.expect("lookup").is_some());
    store.create_panel_session("m2", acme, Some(mailbox.id), "c", false, LIFE).await.expect("create");
    store.remove_mailbox(Scope::Platform, &address).await.expect("remove mailbox");
    assert_eq!(store.panel_session("m2", LIFE).await.expect("lookup"), None);
}

async fn api_tokens_are_scoped_and_revocable(store: Store) {
    let acme = customer(&store, "acme").await;
    let globex = customer(&store, "globex").await;
    let token = store.create_api_token(acme, " deploy script ", "th-1").await.expect("token");
    assert_eq!((token.name.as_str(), token.customer_id, token.last_used_at), ("deploy script", acme, None));
    store.create_api_token(globex, "other", "th-2").await.expect("token");
    assert!(matches!(store.create_api_token(acme, "  ", "th-3").await, Err(StoreError::Conflict(_))));
    let mine = store.api_tokens(Scope::Customer(acme)).await.expect("list");
    assert_eq!(mine.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["deploy script"]);
    assert_eq!(store.api_tokens(Scope::Platform).await.expect("list").len(), 2);
    let used = store.api_token_by_hash("th-1").await.expect("lookup").expect("known");
    assert_eq!(used.id, token.id);
    assert!(store.api_tokens(Scope::Customer(acme)).await.expect("list")[0].last_used_at.is_some());
    assert_eq!(store.api_token_by_hash("nope").await.expect("lookup"), None);
    // Another customer's token cannot be revoked, and looks like it does not exist.
    assert!(matches!(store.revoke_api_token(Scope::Customer(globex), token.id).await, Err(StoreError::NotFound(_))));
    store.revoke_api_token(Scope::Customer(acme), token.id).await.expect("revoke");
    assert_eq!(store.api_token_by_hash("th-1").await.expect("lookup"), None);
    store.set_customer_disabled(&CustomerName::parse("globex").expect("name"), true).await.expect("disable");
    // Whether a disabled customer's token lets anyone in is the authentication gate's
    // decision (server/tests/hostile.rs, a_disabled_customers_api_token_is_refused_and_logged); the store finds it.
    assert!(store.api_token_by_hash("th-2").await.expect("lookup").is_some());
    assert_eq!(store.revoke_all_api_tokens(globex).await.expect("revoke all"), 1);
    assert_eq!(store.api_token_by_hash("th-2").await.expect("lookup"), None);
}

async fn totp_steps_are_accepted_once(store: Store) {
    let acme = customer(&store, "acme").await;
    assert!(store.totp_secret(acme).await.expect("get").is_none());
    store.set_totp_secret(acme, "JBSWY3DPEHPK3PXP").await.expect("set");
    let pending = store.totp_secret(acme).await.expect("get").expect("stored");
    assert!(!pending.enabled);
    assert!(!format!("{pending:?}").contains("JBSWY3DPEHPK3PXP"), "Debug hides the secret");
    store.set_totp_secret(acme, "KRSXG5CTMVRXEZLU").await.expect("replace unconfirmed");
    assert!(store.use_totp_step(acme, 100, true).await.expect("use"));
    let enabled = store.totp_secret(acme).await.expect("get").expect("stored");
    assert!(enabled.enabled && enabled.last_step == 100 && enabled.secret == "KRSXG5CTMVRXEZLU");
    assert!(!store.use_totp_step(acme, 100, false).await.expect("replay"), "a code works once");
    assert!(!store.use_totp_step(acme, 99, false).await.expect("older"), "older codes do not work");
    assert!(store.use_totp_step(acme, 101, false).await.expect("next"));
    assert!(matches!(store.set_totp_secret(acme, "X").await, Err(StoreError::Refused(Conflict::TotpOn))));
    store.remove_totp_secret(acme).await.expect("remove");
    assert!(store.totp_secret(acme).await.expect("get").is_none());
}
