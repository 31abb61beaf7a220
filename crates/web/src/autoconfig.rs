//! Client autoconfiguration that honours each mailbox's settings: Thunderbird's
//! autoconfig XML, Outlook's autodiscover (POX), and an Apple `.mobileconfig` profile.
//!
//! Each offers only the mailbox's access protocol (IMAP or POP3, never both; no incoming
//! server for `none`), only TLS endpoints (implicit TLS where it is switched on, as
//! RFC 8314 §3 and §5.1 recommend, STARTTLS otherwise), and the submission server only
//! when the mailbox may send. So a new phone set up from autoconfig can never be set up
//! with the wrong protocol.
//!
//! Unknown addresses: the answer for an address that is not a mailbox here (an alias, an
//! unknown local part, an unknown domain) is exactly the answer for a mailbox with the
//! default settings (IMAP, sending allowed), with the same status and shape. So the
//! autoconfig URLs cannot be used to find out which addresses exist, except that a
//! mailbox whose owner chose non-default settings answers with those settings — which is
//! the point of the feature. The login name is always the address the client asked for
//! (Thunderbird's `%EMAILADDRESS%`), never a mailbox behind an alias.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_types::{AccessMode, EmailAddress};

use crate::{App, MailEndpoints, WebSettings};

/// Thunderbird autoconfig, served on HTTPS and plain HTTP.
pub(crate) fn thunderbird_routes() -> Router<App> {
    Router::new()
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route("/.well-known/autoconfig/mail/config-v1.1.xml", get(thunderbird))
}

/// Everything autoconfig serves over HTTPS.
pub(crate) fn routes() -> Router<App> {
    thunderbird_routes()
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
}

/// Whether a mail server speaks TLS from the first byte or upgrades with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Implicit,
    StartTls,
}

/// One server a client should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub security: Security,
}

/// What a client is offered for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The incoming protocol and its server; `None` when the mailbox cannot be read.
    pub incoming: Option<(AccessMode, Endpoint)>,
    /// The submission server; `None` when the mailbox may not send.
    pub outgoing: Option<Endpoint>,
}

fn pick(implicit: Option<u16>, starttls: Option<u16>) -> Option<Endpoint> {
    implicit
        .map(|port| Endpoint { port, security: Security::Implicit })
        .or(starttls.map(|port| Endpoint { port, security: Security::StartTls }))
}

/// The offer for a mailbox with `settings` on a server with `endpoints`.
pub fn offer(settings: MailboxSettings, endpoints: &MailEndpoints) -> Offer {
    let incoming = match settings.access {
        AccessMode::Imap => pick(endpoints.imaps, endpoints.imap).map(|e| (AccessMode::Imap, e)),
        AccessMode::Pop3 => pick(endpoints.pop3s, endpoints.pop3).map(|e| (AccessMode::Pop3, e)),
        AccessMode::None => None,
    };
    let outgoing = if settings.submission { pick(endpoints.submissions, endpoints.submission) } else { None };
    Offer { incoming, outgoing }
}

/// The settings autoconfig answers with for an address (see the module docs).
async fn settings_for(app: &App, address: Option<&EmailAddress>) -> MailboxSettings {
    let Some(address) = address else { return MailboxSettings::default() };
    match app.store.mailbox_login(address).await {
        Ok(Some(account)) => match account.kind {
            postfach_store::logins::LoginAccountKind::Mailbox { settings, .. } => settings,
            postfach_store::logins::LoginAccountKind::Customer { .. } => MailboxSettings::default(),
        },
        Ok(None) => MailboxSettings::default(),
        Err(e) => {
            tracing::warn!(error = %e, "autoconfig lookup failed; answering with the defaults");
            MailboxSettings::default()
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn xml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/xml; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

async fn thunderbird(State(app): State<App>, Query(query): Query<HashMap<String, String>>) -> Response {
    let address = query.get("emailaddress").and_then(|a| EmailAddress::parse(a).ok());
    let settings = settings_for(&app, address.as_ref()).await;
    xml_response(thunderbird_xml(&app.settings, address.as_ref(), &offer(settings, &app.settings.endpoints)))
}

/// Thunderbird's `clientConfig` version 1.1 (the format its ISPDB uses).
pub fn thunderbird_xml(settings: &WebSettings, address: Option<&EmailAddress>, offer: &Offer) -> String {
    let host = xml_escape(settings.hostname.as_str());
    let domain = address.map_or_else(|| host.clone(), |a| xml_escape(a.domain().as_str()));
    let socket = |s: Security| match s {
        Security::Implicit => "SSL",
        Security::StartTls => "STARTTLS",
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
    xml.push_str(&format!("  <emailProvider id=\"{host}\">\n    <domain>{domain}</domain>\n"));
    xml.push_str(&format!(
        "    <displayName>{domain}</displayName>\n    <displayShortName>{domain}</displayShortName>\n"
    ));
    if let Some((mode, endpoint)) = offer.incoming {
        let kind = if mode == AccessMode::Pop3 { "pop3" } else { "imap" };
        xml.push_str(&format!(
            "    <incomingServer type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{}</port>\n      \
             <socketType>{}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n",
            endpoint.port,
            socket(endpoint.security)
        ));
        if mode == AccessMode::Pop3 {
            // Keep mail on the server? No: a POP3 mailbox is read by one device that
            // takes the mail home; that is what the owner chose.
            xml.push_str("      <pop3>\n        <leaveMessagesOnServer>false</leaveMessagesOnServer>\n      </pop3>\n");
        }
        xml.push_str("    </incomingServer>\n");
    }
    if let Some(endpoint) = offer.outgoing {
        xml.push_str(&format!(
            "    <outgoingServer type=\"smtp\">\n      <hostname>{host}</hostname>\n      <port>{}</port>\n      \
             <socketType>{}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n    </outgoingServer>\n",
            endpoint.port,
            socket(endpoint.security)
        ));
    }
    xml.push_str("  </emailProvider>\n</clientConfig>\n");
    xml
}

/// The text of the first `<EMailAddress>` element of an autodiscover request, with or
/// without a namespace prefix.
fn requested_address(body: &str) -> Option<String> {
    let start = body.find("EMailAddress>")? + "EMailAddress>".len();
    let rest = &body[start..];
    let end = rest.find('<')?;
    let text = rest[..end].trim();
    Some(text.replace("&amp;", "&").replace("&apos;", "'"))
}

const AUTODISCOVER_RESPONSE_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
const OUTLOOK_RESPONSE_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// Outlook's "plain old XML" autodiscover (MS-OXDSCLI §2.2.4).
async fn autodiscover(State(app): State<App>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let Some(address) = requested_address(&text).and_then(|a| EmailAddress::parse(&a).ok()) else {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{AUTODISCOVER_RESPONSE_NS}\">\n  <Response>\n    \
             <Error Time=\"00:00:00\" Id=\"1\">\n      <ErrorCode>600</ErrorCode>\n      <Message>Invalid Request</Message>\n      \
             <DebugData />\n    </Error>\n  </Response>\n</Autodiscover>\n"
        );
        return (StatusCode::OK, xml_response(xml)).into_response();
    };
    let settings = settings_for(&app, Some(&address)).await;
    xml_response(autodiscover_xml(&app.settings, &address, &offer(settings, &app.settings.endpoints)))
}

pub fn autodiscover_xml(settings: &WebSettings, address: &EmailAddress, offer: &Offer) -> String {
    let host = xml_escape(settings.hostname.as_str());
    let login = xml_escape(&address.to_string());
    let protocol = |kind: &str, endpoint: Endpoint| {
        let tls = match endpoint.security {
            Security::Implicit => "<SSL>on</SSL>",
            Security::StartTls => "<SSL>on</SSL>\n        <Encryption>TLS</Encryption>",
        };
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        <Port>{}</Port>\n        \
             <LoginName>{login}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        \
             {tls}\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            endpoint.port
        )
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{AUTODISCOVER_RESPONSE_NS}\">\n  \
         <Response xmlns=\"{OUTLOOK_RESPONSE_NS}\">\n    <Account>\n      <AccountType>email</AccountType>\n      \
         <Action>settings</Action>\n"
    );
    if let Some((mode, endpoint)) = offer.incoming {
        xml.push_str(&protocol(if mode == AccessMode::Pop3 { "POP3" } else { "IMAP" }, endpoint));
    }
    if let Some(endpoint) = offer.outgoing {
        xml.push_str(&protocol("SMTP", endpoint));
    }
    xml.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    xml
}

fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// An Apple configuration profile with one mail account (payload type
/// `com.apple.mail.managed`). The password is not included: the device asks for it.
/// Callers refuse mailboxes with access mode `none` (Apple needs an incoming server).
pub fn mobileconfig(settings: &WebSettings, mailbox: &Mailbox) -> String {
    let offer = offer(mailbox.settings, &settings.endpoints);
    let host = xml_escape(settings.hostname.as_str());
    let address = xml_escape(&mailbox.address.to_string());
    let reverse_host: Vec<&str> = settings.hostname.labels().collect();
    let id_base = reverse_host.iter().rev().copied().collect::<Vec<_>>().join(".");
    let id_base = xml_escape(&id_base);
    let local = xml_escape(mailbox.address.local_part().as_str());
    let mut account = String::new();
    let mut key = |k: &str, v: String| account.push_str(&format!("      <key>{k}</key>\n      {v}\n"));
    let string = |s: &str| format!("<string>{s}</string>");
    let boolean = |b: bool| if b { "<true/>".to_string() } else { "<false/>".to_string() };
    key("EmailAccountDescription", string(&address));
    key("EmailAccountName", string(&address));
    key("EmailAddress", string(&address));
    if let Some((mode, endpoint)) = offer.incoming {
        let kind = if mode == AccessMode::Pop3 { "EmailTypePOP" } else { "EmailTypeIMAP" };
        key("EmailAccountType", string(kind));
        key("IncomingMailServerAuthentication", string("EmailAuthPassword"));
        key("IncomingMailServerHostName", string(&host));
        key("IncomingMailServerPortNumber", format!("<integer>{}</integer>", endpoint.port));
        key("IncomingMailServerUseSSL", boolean(true));
        key("IncomingMailServerUsername", string(&address));
    }
    if let Some(endpoint) = offer.outgoing {
        key("OutgoingMailServerAuthentication", string("EmailAuthPassword"));
        key("OutgoingMailServerHostName", string(&host));
        key("OutgoingMailServerPortNumber", format!("<integer>{}</integer>", endpoint.port));
        key("OutgoingMailServerUseSSL", boolean(true));
        key("OutgoingMailServerUsername", string(&address));
        key("OutgoingPasswordSameAsIncomingPassword", boolean(true));
    }
    key("PayloadDisplayName", string(&address));
    key("PayloadIdentifier", string(&format!("{id_base}.postfach.mail.{local}")));
    key("PayloadType", string("com.apple.mail.managed"));
    key("PayloadUUID", string(&uuid()));
    key("PayloadVersion", "<integer>1</integer>".into());
    key("PreventMove", boolean(false));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n  \
         <key>PayloadContent</key>\n  <array>\n    <dict>\n{account}    </dict>\n  </array>\n  \
         <key>PayloadDisplayName</key>\n  <string>{address}</string>\n  <key>PayloadIdentifier</key>\n  \
         <string>{id_base}.postfach.{local}</string>\n  <key>PayloadRemovalDisallowed</key>\n  <false/>\n  \
         <key>PayloadType</key>\n  <string>Configuration</string>\n  <key>PayloadUUID</key>\n  <string>{}</string>\n  \
         <key>PayloadVersion</key>\n  <integer>1</integer>\n</dict>\n</plist>\n",
        uuid()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: MailEndpoints = MailEndpoints {
        imaps: Some(993),
        imap: Some(143),
        pop3s: Some(995),
        pop3: Some(110),
        submissions: Some(465),
        submission: Some(587),
    };

    fn settings(access: AccessMode, submission: bool) -> MailboxSettings {
        MailboxSettings { access, submission, tls_required: true }
    }

    #[test]
    fn offers_follow_the_mailbox_and_prefer_implicit_tls() {
        let implicit = |port| Endpoint { port, security: Security::Implicit };
        let starttls = |port| Endpoint { port, security: Security::StartTls };
        #[rustfmt::skip]
        let table = [
            (settings(AccessMode::Imap, true),  ALL, Some((AccessMode::Imap, implicit(993))), Some(implicit(465))),
            (settings(AccessMode::Pop3, true),  ALL, Some((AccessMode::Pop3, implicit(995))), Some(implicit(465))),
            (settings(AccessMode::None, true),  ALL, None, Some(implicit(465))),
            (settings(AccessMode::Imap, false), ALL, Some((AccessMode::Imap, implicit(993))), None),
            (settings(AccessMode::Imap, true), MailEndpoints { imaps: None, submissions: None, ..ALL },
                Some((AccessMode::Imap, starttls(143))), Some(starttls(587))),
            (settings(AccessMode::Pop3, true), MailEndpoints::default(), None, None),
        ];
        for (i, (s, endpoints, incoming, outgoing)) in table.into_iter().enumerate() {
            assert_eq!(offer(s, &endpoints), Offer { incoming, outgoing }, "row {i}");
        }
    }

    #[test]
    fn autodiscover_request_address_is_found() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>max@example.net</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert_eq!(requested_address(body).as_deref(), Some("max@example.net"));
        assert_eq!(requested_address("<a:EMailAddress> x@y.example </a:EMailAddress>").as_deref(), Some("x@y.example"));
        assert_eq!(requested_address("<Request/>"), None);
    }

    #[test]
    fn uuids_are_version_4() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, uuid());
    }
}
