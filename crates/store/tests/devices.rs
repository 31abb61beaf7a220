//! A mailbox's devices on SQLite and PostgreSQL: successful logins grouped by credential,
//! service and the client name a session sent, the last address and TLS version of each
//! group, the app password's client name where a login sent none, refusals, old logins and other mailboxes left out, other customers not seen.

mod backends;

use postfach_store::app_passwords::{LastUse, NewAppPassword};
use postfach_store::devices::Device;
use postfach_store::logins::{LoginEntryId, LoginRecord};
use postfach_store::{Scope, Store};
use postfach_types::{CustomerId, LoginResult, MailboxId, Mechanism, Service, TlsInfo, UnixTime};

on_both_backends!(grouped_by_credential_and_service);

use backends::{HASH, mailbox};

struct Login<'a> {
    at: i64,
    service: Service,
    ip: &'a str,
    tls: Option<&'a str>,
    result: LoginResult,
    credential: Option<&'a str>,
}

async fn log(store: &Store, (customer, mailbox): (CustomerId, MailboxId), l: Login<'_>) -> LoginEntryId {
    let record = LoginRecord {
        at: UnixTime(l.at),
        customer_id: Some(customer),
        mailbox_id: Some(mailbox),
        login: "max@acme.example".into(),
        service: l.service,
        remote_ip: l.ip.parse().expect("ip"),
        tls: l.tls.map(|v| TlsInfo { version: v.into(), cipher: "TLS13_AES_256_GCM_SHA384".into() }),
        mechanism: Mechanism::ImapLogin,
        result: l.result,
        credential: l.credential.map(str::to_string),
    };
    store.record_login(&record).await.expect("record")
}

async fn grouped_by_credential_and_service(store: Store) {
    let max = mailbox(&store, "acme", "max").await;
    let erika = mailbox(&store, "acme", "erika").await;
    let other = mailbox(&store, "other", "olga").await;
    let phone = store
        .add_app_password(
            Scope::Platform,
            max.1,
            NewAppPassword { name: "Phone", services: &[Service::Imap], lookup: "ABCDEFGH", hash: HASH },
        )
        .await
        .expect("app password");
    let last = LastUse {
        at: UnixTime(1_800_000_300),
        service: Service::Imap,
        remote_ip: "192.0.2.7".parse().expect("ip"),
        tls_version: Some("TLSv1.3".into()),
        client: Some("K-9 Mail 6.8".into()),
    };
    store.record_app_password_use(phone.id, &last).await.expect("use");

    let ok = LoginResult::Ok;
    let t = 1_800_000_000;
    let tls13 = Some("TLSv1.3");
    // The main password over IMAP, twice: the group keeps the first time and the last address.
    log(
        &store,
        max,
        Login { at: t, service: Service::Imap, ip: "192.0.2.1", tls: Some("TLSv1.2"), result: ok, credential: None },
    )
    .await;
    log(
        &store,
        max,
        Login { at: t + 100, service: Service::Imap, ip: "192.0.2.2", tls: tls13, result: ok, credential: None },
    )
    .await;
    // The main password from a client that named itself with IMAP `ID`: a device of its
    // own (the first name a session sends stays).
    let named = log(
        &store,
        max,
        Login { at: t + 150, service: Service::Imap, ip: "192.0.2.3", tls: tls13, result: ok, credential: None },
    )
    .await;
    store.name_login_client(named, "Thunderbird 128").await.expect("name");
    store.name_login_client(named, "Something else").await.expect("name");
    // The app password over IMAP and submission: two groups.
    log(
        &store,
        max,
        Login {
            at: t + 200,
            service: Service::Imap,
            ip: "192.0.2.7",
            tls: tls13,
            result: ok,
            credential: Some("Phone"),
        },
    )
    .await;
    log(
        &store,
        max,
        Login {
            at: t + 300,
            service: Service::Imap,
            ip: "192.0.2.7",
            tls: tls13,
            result: ok,
            credential: Some("Phone"),
        },
    )
    .await;
    log(
        &store,
        max,
        Login {
            at: t + 250,
            service: Service::Submission,
            ip: "192.0.2.8",
            tls: None,
            result: ok,
            credential: Some("Phone"),
        },
    )
    .await;
    // Left out: a refusal, a login before `since`, the panel, another mailbox.
    log(
        &store,
        max,
        Login {
            at: t + 400,
            service: Service::Pop3,
            ip: "192.0.2.9",
            tls: tls13,
            result: LoginResult::BadCredentials,
            credential: None,
        },
    )
    .await;
    log(
        &store,
        max,
        Login { at: t - 10, service: Service::Pop3, ip: "192.0.2.9", tls: tls13, result: ok, credential: None },
    )
    .await;
    log(
        &store,
        max,
        Login { at: t + 500, service: Service::Panel, ip: "192.0.2.9", tls: tls13, result: ok, credential: None },
    )
    .await;
    log(
        &store,
        erika,
        Login { at: t + 500, service: Service::Imap, ip: "192.0.2.10", tls: tls13, result: ok, credential: None },
    )
    .await;

    let since = UnixTime(t);
    let devices = store.devices(Scope::Customer(max.0), max.1, since, 10).await.expect("devices");
    let expected = vec![
        Device {
            credential: Some("Phone".into()),
            app_password: Some(phone.id),
            service: Service::Imap,
            client: Some("K-9 Mail 6.8".into()),
            first_seen: UnixTime(t + 200),
            last_seen: UnixTime(t + 300),
            logins: 2,
            last_ip: "192.0.2.7".parse().expect("ip"),
            last_tls: Some("TLSv1.3".into()),
        },
        Device {
            credential: Some("Phone".into()),
            app_password: Some(phone.id),
            service: Service::Submission,
            client: Some("K-9 Mail 6.8".into()),
            first_seen: UnixTime(t + 250),
            last_seen: UnixTime(t + 250),
            logins: 1,
            last_ip: "192.0.2.8".parse().expect("ip"),
            last_tls: None,
        },
        Device {
            credential: None,
            app_password: None,
            service: Service::Imap,
            client: Some("Thunderbird 128".into()),
            first_seen: UnixTime(t + 150),
            last_seen: UnixTime(t + 150),
            logins: 1,
            last_ip: "192.0.2.3".parse().expect("ip"),
            last_tls: Some("TLSv1.3".into()),
        },
        Device {
            credential: None,
            app_password: None,
            service: Service::Imap,
            client: None,
            first_seen: UnixTime(t),
            last_seen: UnixTime(t + 100),
            logins: 2,
            last_ip: "192.0.2.2".parse().expect("ip"),
            last_tls: Some("TLSv1.3".into()),
        },
    ];
    assert_eq!(devices, expected);

    // Bounded: the most recently seen groups first.
    let one = store.devices(Scope::Platform, max.1, since, 1).await.expect("devices");
    assert_eq!(one, expected[..1]);
    // Another customer's scope sees nothing of this mailbox.
    assert!(store.devices(Scope::Customer(other.0), max.1, since, 10).await.expect("devices").is_empty());

    // A revoked app password's group stays (the device was seen) but cannot be revoked again.
    store.remove_app_password(Scope::Platform, max.1, "Phone").await.expect("revoke");
    let after = store.devices(Scope::Platform, max.1, since, 10).await.expect("devices");
    assert_eq!(after.len(), 4);
    assert_eq!(after[0].credential.as_deref(), Some("Phone"));
    assert_eq!((after[0].app_password, after[0].client.as_deref()), (None, None));
}
