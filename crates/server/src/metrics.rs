//! Registers the Prometheus endpoint (`[metrics] listen`, off by default): `GET /metrics`
//! over plain HTTP from `postfach-web`, the counters from `postfach-metrics`, and the
//! gauges only the database knows, read at scrape time and kept for [`GAUGE_CACHE`] so
//! that frequent or concurrent scrapes cannot load the database (one refresh at a time;
//! the others wait for it and share its answer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use postfach_metrics::{DnsCount, DnsProblem, Gauges};
use postfach_net::Security;
use postfach_store::Store;
use postfach_types::UnixTime;
use tokio::sync::Mutex;

use crate::listeners::BindError;
use crate::{Registrar, Shared};

/// How long gauges read from the database are served before they are read again.
pub const GAUGE_CACHE: Duration = Duration::from_secs(15);
/// At most this many per-domain DNS problems are listed (the series stay bounded).
const MAX_DNS_PROBLEMS: u32 = 100;
/// Scrapers are few: connections per address and in all.
const MAX_CONNECTIONS_PER_IP: usize = 4;
const MAX_CONNECTIONS: usize = 16;

pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), BindError> {
    let addresses = &shared.config.metrics.listen;
    if addresses.is_empty() {
        return Ok(());
    }
    let admission = postfach_net::Admission::new(MAX_CONNECTIONS_PER_IP, MAX_CONNECTIONS);
    let mut endpoint = shared.endpoint("metrics", Security::Plain, &admission);
    // Plain HTTP, never behind a load balancer.
    endpoint.tls = None;
    endpoint.proxies = postfach_net::TrustedProxies::new(&[]);
    let source = Arc::new(Scrape { store: shared.store.clone(), cache: Mutex::new(None) });
    reg.listen(addresses, endpoint, postfach_web::metrics_protocol(source)).await
}

struct Scrape {
    store: Store,
    /// The last gauges read and when; `None` inside when the read failed.
    cache: Mutex<Option<(Instant, Option<Gauges>)>>,
}

impl postfach_web::MetricsSource for Scrape {
    fn render(&self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            let fresh = cache.as_ref().is_some_and(|(at, _)| at.elapsed() < GAUGE_CACHE);
            if !fresh {
                let gauges = match self.store.stats(MAX_DNS_PROBLEMS + 1).await {
                    Ok(stats) => Some(gauges(stats)),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the metrics' gauges from the database failed");
                        None
                    }
                };
                *cache = Some((Instant::now(), gauges));
            }
            postfach_metrics::render(cache.as_ref().and_then(|(_, gauges)| gauges.as_ref()))
        })
    }
}

fn gauges(stats: postfach_store::stats::Stats) -> Gauges {
    let now = UnixTime::now().0;
    let truncated = stats.dns_problems.len() > MAX_DNS_PROBLEMS as usize;
    Gauges {
        queue_messages: stats.queue_messages,
        queue_oldest_age_secs: stats.queue_oldest.map_or(0, |at| u64::try_from(now - at.0).unwrap_or(0)),
        queue_bytes: stats.queue_bytes,
        mailbox_bytes: stats.mailbox_bytes,
        dns_domains: stats
            .dns_levels
            .into_iter()
            .map(|(check, level, domains)| DnsCount { check, state: level.as_str().to_string(), domains })
            .collect(),
        dns_problems: stats
            .dns_problems
            .into_iter()
            .take(MAX_DNS_PROBLEMS as usize)
            .map(|(domain, check, level)| DnsProblem {
                domain,
                check,
                error: level == postfach_store::stats::DnsLevel::Error,
            })
            .collect(),
        dns_problems_truncated: truncated,
    }
}
