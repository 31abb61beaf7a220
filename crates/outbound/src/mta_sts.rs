//! MTA-STS (RFC 8461) for outbound mail: finding a destination's current policy (§3, §5):
//! the `_mta-sts` TXT record, the policy file over HTTPS, and the cache in the database
//! (shared by every node, kept over restarts).
//!
//! Reading the record and the policy is `postfach_dns::mta_sts` (the same strict reading
//! as the domain check), fetching it `postfach_dns::fetch` (the certificate of
//! `mta-sts.DOMAIN` must be valid, only a `200` with `text/plain` counts — a redirect is a
//! failure, §3.3 — bounded in size and time). Any failure leaves the cached policy in force
//! while it is fresh, and otherwise means "no policy" (opportunistic TLS), as §5.1 says.

use hickory_resolver::TokioResolver;
use postfach_dns::mta_sts::{self as sts, MAX_POLICY_BYTES, Mode, POLICY_PATH, Policy};
use postfach_store::Store;
use postfach_store::outbound_tls::CachedMtaSts;
use postfach_types::UnixTime;

use crate::client::TlsClients;

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
    let records = match postfach_dns::spf::txt_records(fetcher.resolver, &sts::record_name(&domain)).await {
        Ok(records) => records,
        // DNS did not answer: a fresh cached policy stays in force (§5.1).
        Err(_) => return from_cache(&cached),
    };
    let sts::Published::One { id: Some(id), .. } = sts::Published::read(&records) else {
        // No usable record (none, several, or unreadable, §3.1): the domain has no policy,
        // unless a cached one is still fresh (§5.1: a removed record does not end a policy
        // early).
        return from_cache(&cached);
    };
    let id = &id;
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
    let host = sts::policy_host(&domain);
    let connector = fetcher.tls.verified();
    let text = postfach_dns::fetch::get_text_with(
        fetcher.resolver,
        &connector,
        fetcher.port,
        &host,
        POLICY_PATH,
        MAX_POLICY_BYTES,
    )
    .await
    .map_err(|why| why.en)?;
    Policy::parse(&text)
}
