//! `serve --demo`: a demo customer, the verified domain `example.test` and two mailboxes
//! with generated strong passwords, printed once. Running it again changes nothing.

use std::fmt;

use postfach_auth::PasswordHasher;
use postfach_auth::accounts::{AccountError, create_customer, create_mailbox, generate_password};
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{CustomerName, DomainName, EmailAddress, Role, Secret};

/// A demo login and its password, shown once.
#[derive(Debug)]
pub struct DemoAccount {
    pub login: String,
    pub password: Option<Secret<String>>,
}

impl fmt::Display for DemoAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.password {
            Some(password) => write!(f, "demo login: {}  password: {}", self.login, password.expose()),
            None => {
                write!(f, "demo login: {} (exists already; its password was shown when it was created)", self.login)
            }
        }
    }
}

pub async fn create_demo(store: &Store, hasher: &PasswordHasher) -> Result<Vec<DemoAccount>, AccountError> {
    let (customer, domain) = demo_names();
    let mut accounts = Vec::new();
    let owner = match store.customer(&customer).await {
        Ok(existing) => {
            accounts.push(DemoAccount { login: customer.to_string(), password: None });
            existing
        }
        Err(StoreError::NotFound(_)) => {
            let password = generate_password();
            let created = create_customer(store, hasher, &customer, &password, Role::Customer).await?;
            accounts.push(DemoAccount { login: customer.to_string(), password: Some(password) });
            created
        }
        Err(e) => return Err(e.into()),
    };
    if let Err(StoreError::NotFound(_)) = store.domain(Scope::Platform, &domain).await {
        store.add_domain(owner.id, &domain, true).await?;
    }
    for local in ["alice", "bob"] {
        let address =
            EmailAddress::parse(&format!("{local}@{domain}")).map_err(|e| StoreError::Conflict(e.to_string()))?;
        match store.mailbox(Scope::Platform, &address).await {
            Ok(_) => accounts.push(DemoAccount { login: address.to_string(), password: None }),
            Err(StoreError::NotFound(_)) => {
                let password = generate_password();
                create_mailbox(store, hasher, Scope::Platform, &address, &password, MailboxSettings::default()).await?;
                accounts.push(DemoAccount { login: address.to_string(), password: Some(password) });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(accounts)
}

/// The panel's address for the operator at the terminal: the server's name when the
/// panel listens on every address, else the address it listens on. `None`: no panel.
pub fn panel_url(hostname: &DomainName, https: Option<std::net::SocketAddr>) -> Option<String> {
    let addr = https?;
    let host = match addr.ip() {
        ip if ip.is_unspecified() => hostname.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    };
    Some(match addr.port() {
        443 => format!("https://{host}/"),
        port => format!("https://{host}:{port}/"),
    })
}

fn demo_names() -> (CustomerName, DomainName) {
    // Both literals are valid names; the fallbacks are never taken.
    let customer = CustomerName::parse("demo").unwrap_or_else(|_| unreachable!("valid customer name"));
    let domain = DomainName::parse("example.test").unwrap_or_else(|_| unreachable!("valid domain"));
    (customer, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_url_names_the_host_or_the_bound_address() {
        let host = DomainName::parse("mail.example.net").expect("name");
        let url = |addr: &str| panel_url(&host, Some(addr.parse().expect("addr")));
        assert_eq!(url("[::]:443").as_deref(), Some("https://mail.example.net/"));
        assert_eq!(url("0.0.0.0:8443").as_deref(), Some("https://mail.example.net:8443/"));
        assert_eq!(url("127.0.0.1:8443").as_deref(), Some("https://127.0.0.1:8443/"));
        assert_eq!(url("[::1]:443").as_deref(), Some("https://[::1]/"));
        assert_eq!(panel_url(&host, None), None);
    }
}
