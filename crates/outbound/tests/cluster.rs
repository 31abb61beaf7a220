//! Several nodes on one queue, on PostgreSQL: two outbound workers, each with its own
//! `Store` handle on one database (and one shared spool folder, as a shared blob store
//! would be), deliver to a receiving SMTP server on 127.0.0.1 that records every message.
//! Each message arrives once; a dead node's claim is taken over when its lease has run
//! out, and a live node's claim never is.
//!
//! Needs `POSTFACH_TEST_POSTGRES_URL` (see `crates/store/tests/backends.rs`).

#[path = "support/sink.rs"]
mod sink;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_outbound::{ClaimTiming, Outbound, OutboundSettings, Submission};
use postfach_store::delivery::DeliveryBatcher;
use postfach_store::leader;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{CustomerName, DomainName, EmailAddress, MailboxId, NodeName, Role, UnixTime};
use sink::{Behaviour, Sink};
use tokio::sync::watch;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";
const WAIT: Duration = Duration::from_secs(60);

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

fn node(name: &str) -> NodeName {
    NodeName::parse(name).expect("node name")
}

/// The shared world: the database with acme.example and its mailbox max, the data folder
/// the nodes share, a DNS zone sending outside.test to the sink.
struct Cluster {
    url: String,
    dir: tempfile::TempDir,
    dns: TestDns,
    sink: Sink,
    max: MailboxId,
}

async fn cluster() -> Cluster {
    let url = postfach_testpg::fresh_database().await;
    let store = Store::open(&url).await.expect("store");
    let customer = store.add_customer(&CustomerName::parse("acme").expect("n"), HASH, Role::Customer).await.expect("c");
    store.add_domain(customer.id, &DomainName::parse("acme.example").expect("d"), true).await.expect("domain");
    let max = store
        .add_mailbox(Scope::Platform, &address("max@acme.example"), HASH, MailboxSettings::default())
        .await
        .expect("mailbox")
        .id;
    store.close().await;
    let sink = Sink::start(Behaviour::Accept);
    let dns = TestDns::start([
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    Cluster { url, dir: tempfile::tempdir().expect("temp dir"), dns, sink, max }
}

/// One node: its own store handle and outbound queue, named `name`, with HELO
/// `<name>.postfach.test` (so the sink tells the nodes apart).
struct Node {
    store: Store,
    outbound: Outbound,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
}

async fn node_of(cluster: &Cluster, name: &str, claims: ClaimTiming) -> Node {
    let store = Store::open(&cluster.url).await.expect("store");
    let data: &Path = cluster.dir.path();
    let settings = OutboundSettings {
        hostname: DomainName::parse(&format!("{name}.postfach.test")).expect("host"),
        resolver: Some(cluster.dns.addr()),
        smtp_port: cluster.sink.port(),
        source_ips: Vec::new(),
        queue_lifetime: Duration::from_secs(432_000),
        rate_limit_per_hour: 10_000,
        delay_warning: None,
        node: node(name),
        claims,
        sieve_redirect: Default::default(),
        tls_roots: Vec::new(),
        dnssec_trust_anchor: None,
        mta_sts_port: 443,
        tls_reports: true,
    };
    let outbound = Outbound::new(
        store.clone(),
        BlobStore::open(&Backend::Fs, data, Namespace::Mailboxes).expect("blobs"),
        BlobStore::open(&Backend::Fs, data, Namespace::Queue).expect("spool"),
        DeliveryBatcher::start(store.clone()),
        settings,
    );
    let (stop, stopped) = watch::channel(false);
    Node { store, outbound, stop, stopped }
}

impl Node {
    /// Starts its queue runner, with its own leader election.
    fn run(&self) {
        let (leader, election) = leader::elect(&self.store, self.stopped.clone());
        tokio::spawn(election);
        tokio::spawn(self.outbound.clone().run(leader, self.stopped.clone()));
    }

    async fn submit(&self, cluster: &Cluster, subject: &str) {
        self.outbound
            .submit(Submission {
                mailbox_id: cluster.max,
                client: None,
                require_tls: false,
                return_path: Some(address("max@acme.example")),
                recipients: vec![address("anna@outside.test")],
                message: format!("From: max@acme.example\r\nTo: anna@outside.test\r\nSubject: {subject}\r\n\r\nHi\r\n")
                    .into_bytes(),
            })
            .await
            .expect("queued");
    }
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn subject(received: &sink::Received) -> String {
    let text = received.text();
    text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_messages_from_two_nodes_each_arrive_exactly_once() {
    let c = cluster().await;
    let a = node_of(&c, "node-a", ClaimTiming::default()).await;
    let b = node_of(&c, "node-b", ClaimTiming::default()).await;
    a.run();
    b.run();
    // Deliveries stay in progress until released: each node takes as many messages as it
    // has delivery slots (8), so more than 8 in progress means both nodes deliver.
    c.sink.hold();
    for i in 0..50 {
        let submitter = if i % 2 == 0 { &a } else { &b };
        submitter.submit(&c, &format!("message {i}")).await;
    }
    wait_until("both nodes have deliveries in progress", async || c.sink.attempts().len() >= 16).await;
    c.sink.release();
    wait_until("the queue is empty", async || a.store.queue_list(Scope::Platform).await.expect("list").is_empty())
        .await;

    let received = c.sink.received();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for message in &received {
        *copies.entry(subject(message)).or_default() += 1;
    }
    assert_eq!(copies.len(), 50, "every message arrived: {copies:?}");
    assert!(copies.values().all(|&n| n == 1), "no message arrived twice: {copies:?}");
    assert_eq!(c.sink.attempts().len(), 50, "no recipient was tried twice");
    let helos: Vec<&str> = received.iter().map(|m| m.helo.as_str()).collect();
    for helo in ["node-a.postfach.test", "node-b.postfach.test"] {
        assert!(helos.contains(&helo), "{helo} delivered some: {helos:?}");
    }
    let _ = (a.stop.send(true), b.stop.send(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_nodes_claim_is_delivered_by_another_node_once_its_lease_ran_out() {
    let c = cluster().await;
    // The dead node queued the message and claimed it, and then never renewed its claim
    // (a lease shortened to 8 seconds, so the test need not wait a minute).
    let dead = node_of(&c, "node-dead", ClaimTiming::default()).await;
    dead.submit(&c, "orphaned").await;
    let now = UnixTime::now();
    let lease = UnixTime(now.0 + 8);
    let claimed = dead.store.queue_claim_due(&node("node-dead"), now, lease, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);

    // Node b starts: it releases its own claims only, and leaves the dead node's alone.
    let b = node_of(&c, "node-b", ClaimTiming::default()).await;
    b.store.enqueue(&stale_claim_message()).await.expect("queued");
    b.store.queue_claim_due(&node("node-b"), now, UnixTime(now.0 + 3600), 10).await.expect("claim");
    b.run();
    wait_until("node b released its own old claim", async || {
        let queue = b.store.queue_list(Scope::Platform).await.expect("list");
        queue.iter().find(|m| m.queue_id == "STALE").is_none_or(|m| m.recipients[0].claim.is_none())
    })
    .await;
    let queue = b.store.queue_list(Scope::Platform).await.expect("list");
    let orphaned = queue.iter().find(|m| m.queue_id != "STALE").expect("the orphaned message");
    let claim = orphaned.recipients[0].claim.as_ref().expect("still claimed");
    assert_eq!((claim.node.as_str(), claim.until), ("node-dead", lease), "node b left the dead node's claim");

    wait_until("the orphaned message arrived", async || c.sink.received().iter().any(|m| subject(m) == "orphaned"))
        .await;
    let received = c.sink.received();
    let delivery = received.iter().find(|m| subject(m) == "orphaned").expect("arrived");
    let at = delivery.at.duration_since(UNIX_EPOCH).expect("time").as_secs();
    assert!(at >= u64::try_from(lease.0).expect("time"), "taken over only after the lease ran out");
    assert_eq!(delivery.helo, "node-b.postfach.test", "delivered by node b");
    assert_eq!(received.iter().filter(|m| subject(m) == "orphaned").count(), 1);
    let _ = b.stop.send(true);
}

/// A message node b had claimed before it restarted (to a domain nobody answers for, so
/// that its delivery does not matter here).
fn stale_claim_message() -> postfach_store::queue::NewQueuedMessage {
    postfach_store::queue::NewQueuedMessage {
        queue_id: "STALE".into(),
        customer_id: None,
        mailbox_id: None,
        return_path: None,
        blob: postfach_types::BlobId::parse(&format!("{:032x}", 5)).expect("blob id"),
        size: 10,
        created_at: UnixTime(UnixTime::now().0 - 10),
        expires_at: UnixTime(UnixTime::now().0 + 3600),
        recipients: vec![address("x@nowhere.test")],
        tls_demand: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_claim_is_renewed_by_its_heartbeat_and_never_taken() {
    let c = cluster().await;
    // A lease of 2 seconds renewed every half second: the delivery outlasts many leases.
    let a = node_of(&c, "node-a", ClaimTiming { lease: Duration::from_secs(2), heartbeat: Duration::from_millis(500) })
        .await;
    let b = node_of(&c, "node-b", ClaimTiming::default()).await;
    c.sink.hold();
    a.run();
    a.submit(&c, "slow").await;
    wait_until("node a delivers", async || !c.sink.attempts().is_empty()).await;
    // Node b starts once node a holds the claim (started earlier, it might win the claim).
    b.run();
    let claim_until = async || {
        let queue = b.store.queue_list(Scope::Platform).await.expect("list");
        let claim = queue[0].recipients[0].claim.clone().expect("claimed");
        assert_eq!(claim.node.as_str(), "node-a", "the claim stays with node a");
        claim.until
    };
    let first = claim_until().await;
    // Node b (and the test, for it) keeps trying to claim while the first lease and
    // several renewed ones run out; node b's own runner polls every 5 seconds meanwhile.
    wait_until("node a renewed its claim past several leases", async || {
        let now = UnixTime::now();
        let taken = b.store.queue_claim_due(&node("node-b"), now, UnixTime(now.0 + 60), 10).await.expect("claim");
        assert!(taken.is_empty(), "a live claim was taken: {taken:?}");
        claim_until().await.0 >= first.0 + 7
    })
    .await;
    c.sink.release();
    wait_until("the queue is empty", async || b.store.queue_list(Scope::Platform).await.expect("list").is_empty())
        .await;
    assert_eq!(c.sink.attempts().len(), 1, "only node a ever tried");
    let received = c.sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].helo, "node-a.postfach.test");
    let _ = (a.stop.send(true), b.stop.send(true));
}
