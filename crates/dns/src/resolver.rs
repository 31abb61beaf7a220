//! The resolver every DNS check uses: the configured address (`[dns] resolver`), asked
//! over UDP with TCP for truncated answers, or the system's resolvers from
//! `/etc/resolv.conf` when none is configured.
//!
//! Checks see fresh data: their resolver keeps no cache of its own (the recursive resolver
//! it asks has one), so a record published a minute ago is found on the next check. Mail
//! traffic (inbound SPF/DKIM/DMARC, outbound MX) uses the caching variant, which honours
//! the records' TTLs: the same sender domains come again and again.

use std::net::SocketAddr;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use mail_auth::MessageAuthenticator;

use crate::DnsError;

/// Entries a caching resolver keeps.
const CACHE_ENTRIES: u64 = 4096;

/// Like [`config`], with a TTL-honouring cache: for mail traffic.
pub fn caching_config(address: Option<SocketAddr>) -> Result<(ResolverConfig, ResolverOpts), DnsError> {
    let (config, mut opts) = self::config(address)?;
    opts.cache_size = CACHE_ENTRIES;
    Ok((config, opts))
}

/// mail-auth's verifier with a cache, for checking inbound mail.
pub fn caching_authenticator(address: Option<SocketAddr>) -> Result<MessageAuthenticator, DnsError> {
    let (config, opts) = caching_config(address)?;
    MessageAuthenticator::new(config, opts).map_err(|e| DnsError::Resolver(e.to_string()))
}

/// The hickory resolver configuration for `address`, or the system's when `None`; no cache.
pub fn config(address: Option<SocketAddr>) -> Result<(ResolverConfig, ResolverOpts), DnsError> {
    let (config, mut opts) = match address {
        Some(address) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = address.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = address.port();
            let server = NameServerConfig::new(address.ip(), true, vec![udp, tcp]);
            (ResolverConfig::from_parts(None, vec![], vec![server]), ResolverOpts::default())
        }
        None => hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| DnsError::Resolver(format!("cannot read /etc/resolv.conf: {e}")))?,
    };
    opts.cache_size = 0;
    opts.attempts = 2;
    Ok((config, opts))
}

/// A resolver asking `address` (or the system's resolvers).
pub fn resolver(address: Option<SocketAddr>) -> Result<TokioResolver, DnsError> {
    let (config, opts) = self::config(address)?;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| DnsError::Resolver(e.to_string()))
}

/// mail-auth's SPF/DKIM/DMARC verifier on the same resolver configuration.
pub fn authenticator(address: Option<SocketAddr>) -> Result<MessageAuthenticator, DnsError> {
    let (config, opts) = self::config(address)?;
    MessageAuthenticator::new(config, opts).map_err(|e| DnsError::Resolver(e.to_string()))
}
