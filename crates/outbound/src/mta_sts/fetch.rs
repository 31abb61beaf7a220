//! Finding a destination's current MTA-STS policy (RFC 8461 §3, §5): the `_mta-sts` TXT
//! record, the policy file over HTTPS, and the cache in the database (shared by every
//! node, kept over restarts).
//!
//! The fetch believes nothing it need not: the certificate of `mta-sts.DOMAIN` must be
//! valid (WebPKI), only a `200` with `text/plain` counts (a redirect is a failure, §3.3),
//! the file is at most [`MAX_POLICY`] bytes, and the whole fetch ends after
//! [`FETCH_TIMEOUT`]. Any failure leaves the cached policy in force while it is fresh,
//! and otherwise means "no policy" (opportunistic TLS), as §5.1 says.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use postfach_store::Store;
use postfach_store::outbound_tls::CachedMtaSts;
use postfach_types::UnixTime;
use rustls::pki_types::ServerName;

use super::{Mode, Policy, txt_id};
use crate::client::TlsClients;

/// The largest policy file read (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY: usize = 64 * 1024;
/// The longest a fetch may take, connection and TLS included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where policies are fetched: port 443, tests their own.
#[derive(Debug, Clone, Copy)]
pub struct Fetcher<'a> {
    pub resolver: &'a TokioResolver,
    pub tls: &'a TlsClients,
    pub port: u16,
}

/// The policy of `domain` in force now, or `None` when it has none.
pub async fn current(store: &Store, fetcher: Fetcher<'_>, domain: &str) -> Option<Policy> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let now = UnixTime::now();
    let cached = match store.mta_sts_cached(&domain).await {
        Ok(cached) => cached.filter(|c| c.fresh_at(now)),
        Err(e) => {
            tracing::warn!(domain = %domain, error = %e, "reading the cached MTA-STS policy failed");
            None
        }
    };
    let from_cache = |cached: &Option<CachedMtaSts>| cached.as_ref().and_then(policy_of);
    let records = match postfach_dns::spf::txt_records(fetcher.resolver, &format!("_mta-sts.{domain}")).await {
        Ok(records) => records,
        // DNS did not answer: a fresh cached policy stays in force (§5.1).
        Err(_) => return from_cache(&cached),
    };
    let ids: Vec<String> = records.iter().filter(|r| r.starts_with("v=STSv1")).filter_map(|r| txt_id(r)).collect();
    let [id] = ids.as_slice() else {
        // No record (or several, §3.1): the domain has no policy, unless a cached one is
        // still fresh (§5.1: a removed record does not end a policy early).
        return from_cache(&cached);
    };
    if let Some(c) = &cached
        && c.txt_id == *id
    {
        return policy_of(c);
    }
    match fetch(fetcher, &domain).await {
        Ok(policy) => {
            let save = CachedMtaSts {
                txt_id: id.clone(),
                mode: policy.mode.as_str().to_string(),
                mx: policy.mx.clone(),
                max_age: policy.max_age,
                fetched_at: now,
            };
            if let Err(e) = store.mta_sts_save(&domain, &save).await {
                tracing::warn!(domain = %domain, error = %e, "caching the MTA-STS policy failed");
            }
            tracing::info!(domain = %domain, mode = policy.mode.as_str(), id = %id, "MTA-STS policy fetched");
            Some(policy)
        }
        Err(e) => {
            tracing::info!(domain = %domain, error = %e, "fetching the MTA-STS policy failed");
            from_cache(&cached)
        }
    }
}

fn policy_of(cached: &CachedMtaSts) -> Option<Policy> {
    Some(Policy { mode: Mode::parse(&cached.mode)?, mx: cached.mx.clone(), max_age: cached.max_age })
}

/// Fetches and parses `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.
pub async fn fetch(fetcher: Fetcher<'_>, domain: &str) -> Result<Policy, String> {
    match tokio::time::timeout(FETCH_TIMEOUT, fetch_text(fetcher, domain)).await {
        Ok(Ok(text)) => Policy::parse(&text),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the policy fetch took too long".into()),
    }
}

async fn fetch_text(fetcher: Fetcher<'_>, domain: &str) -> Result<String, String> {
    let host = format!("mta-sts.{domain}");
    let addresses =
        fetcher.resolver.lookup_ip(format!("{host}.").as_str()).await.map_err(|e| format!("{host}: {e}"))?;
    let mut tcp = None;
    let mut last = format!("{host} has no address");
    for ip in addresses.iter() {
        match tokio::net::TcpStream::connect(SocketAddr::new(ip, fetcher.port)).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = format!("cannot connect to {host}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let name = ServerName::try_from(host.clone()).map_err(|_| format!("{host} is not a host name"))?;
    let tls = fetcher.tls.verified().connect(name, tcp).await.map_err(|e| format!("TLS with {host}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| format!("HTTP: {e}"))?;
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get("/.well-known/mta-sts.txt")
        .header(hyper::header::HOST, &host)
        .header(hyper::header::USER_AGENT, "Postfach")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string());
    let result = async {
        let response = sender.send_request(request?).await.map_err(|e| format!("HTTP: {e}"))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("the policy server answered {}", response.status()));
        }
        let media = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media.as_deref() != Some("text/plain") {
            return Err("the policy is not served as text/plain".into());
        }
        let body = Limited::new(response.into_body(), MAX_POLICY)
            .collect()
            .await
            .map_err(|e| format!("reading the policy: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| "the policy is not UTF-8 text".to_string())
    }
    .await;
    connection.abort();
    result
}
