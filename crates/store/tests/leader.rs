//! The cluster's leader election on PostgreSQL: of two nodes exactly one leads; when the
//! leader's connection is terminated or the leader stops, the other takes over.

mod backends;

use std::time::{Duration, Instant};

use postfach_store::Store;
use postfach_store::leader::{self, Leader};
use sqlx::Connection;
use tokio::sync::watch;

/// Longer than a ping plus a lock retry and a reconnect; a bound, not an expectation.
const TAKE_OVER: Duration = Duration::from_secs(30);

struct Node {
    leader: Leader,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn node(url: &str) -> Node {
    let store = Store::open(url).await.expect("open store");
    let (stop, stopped) = watch::channel(false);
    let (leader, election) = leader::elect(&store, stopped);
    Node { leader, stop, task: tokio::spawn(election) }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TAKE_OVER;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Exactly one of `nodes` leads, now and for a few lock retries.
async fn exactly_one_leads(nodes: &[&Node]) -> usize {
    wait_until("a node leads", || nodes.iter().any(|n| n.leader.is_leader())).await;
    let leading = || nodes.iter().filter(|n| n.leader.is_leader()).count();
    let first = nodes.iter().position(|n| n.leader.is_leader()).expect("a leader");
    let until = Instant::now() + leader::RETRY * 2;
    while Instant::now() < until {
        assert_eq!(leading(), 1, "exactly one leader");
        assert!(nodes[first].leader.is_leader(), "the leader stays leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first
}

/// The backend that holds the leader lock ('LEAD', 0) of this test's database (advisory
/// locks are per database; other tests' leaders run on the same server at the same time).
async fn lock_holder(url: &str) -> Option<i32> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1279607108 AND objid = 0 AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_optional(&mut conn)
    .await
    .expect("pg_locks")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_of_two_nodes_leads_and_the_other_takes_over() {
    let (_store, url) = backends::postgres().await;
    let nodes = [node(&url).await, node(&url).await];
    let first = exactly_one_leads(&[&nodes[0], &nodes[1]]).await;
    let other = 1 - first;

    // The leader's connection is terminated: it stops leading, the other node leads.
    let pid = lock_holder(&url).await.expect("the leader holds the lock");
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
    let terminated: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&mut admin).await.expect("terminate");
    assert!(terminated);
    wait_until("the other node leads", || nodes[other].leader.is_leader()).await;
    assert!(!nodes[first].leader.is_leader(), "the old leader stopped leading");
    let second = exactly_one_leads(&[&nodes[0], &nodes[1]]).await;
    assert_eq!(second, other);

    // The leader shuts down: the first node, contending again, takes over.
    let [a, b] = nodes;
    let (leaving, staying) = if other == 0 { (a, b) } else { (b, a) };
    let _ = leaving.stop.send(true);
    leaving.task.await.expect("election ends");
    assert!(!leaving.leader.is_leader(), "a stopped node does not lead");
    wait_until("the remaining node leads", || staying.leader.is_leader()).await;
    let _ = staying.stop.send(true);
    staying.task.await.expect("election ends");
    assert_eq!(lock_holder(&url).await, None, "a stopping leader gives the lock back");
}

#[tokio::test]
async fn on_sqlite_the_one_node_leads() {
    let (store, _dir) = backends::sqlite().await;
    let (_stop, stopped) = watch::channel(false);
    let (mut leader, election) = leader::elect(&store, stopped);
    election.await;
    assert!(leader.is_leader());
    leader.acquired().await;
}
