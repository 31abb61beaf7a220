//! The import jobs' lease, on SQLite and PostgreSQL alike: a job whose node stopped
//! renewing it (the node is gone) no longer blocks its mailbox, and its node, should it
//! come back, finds it taken.

mod backends;

use postfach_store::import_jobs::{JOB_LEASE_SECS, JobSource, JobState};
use postfach_store::{Conflict, Scope, Store, StoreError};
use postfach_types::{NodeName, UnixTime};

on_both_backends!(an_abandoned_job_stops_blocking_its_mailbox);

async fn an_abandoned_job_stops_blocking_its_mailbox(store: Store) {
    let (_, mailbox) = backends::mailbox(&store, "acme", "max").await;
    let source = JobSource { host: "imap.old.example".into(), port: 993, starttls: false, login: "max".into() };
    let (a, b) = (NodeName::parse("node-a").expect("node"), NodeName::parse("node-b").expect("node"));
    let t0 = UnixTime::now().0 - 10 * JOB_LEASE_SECS;
    let at = |secs: i64| UnixTime(t0 + secs);
    let create = async |node: &NodeName, now: UnixTime| {
        store.create_import_job(Scope::Platform, mailbox, &source, "acme", node, now).await
    };
    let state = async |id| {
        let jobs = store.import_jobs(Scope::Platform, mailbox).await.expect("jobs");
        jobs.iter().find(|j| j.id == id).expect("the job is listed").state
    };

    // While node a renews its job, nobody else starts one for the mailbox.
    let first = create(&a, at(0)).await.expect("first job");
    let refused = create(&b, at(JOB_LEASE_SECS - 1)).await;
    assert!(matches!(refused, Err(StoreError::Refused(Conflict::ImportRunning))), "{refused:?}");
    assert!(store.renew_import_job(first.id, at(100)).await.expect("renew"));
    assert!(
        matches!(create(&b, at(100 + JOB_LEASE_SECS - 1)).await, Err(StoreError::Refused(Conflict::ImportRunning))),
        "renewed"
    );
    assert_eq!(store.interrupt_abandoned_import_jobs(at(100 + JOB_LEASE_SECS - 1)).await.expect("sweep"), 0);

    // Node a is gone: once the lease ran out the upkeep marks the job interrupted, and
    // node a, should it come back, finds it no longer its own.
    assert_eq!(store.interrupt_abandoned_import_jobs(at(101 + JOB_LEASE_SECS)).await.expect("sweep"), 1);
    assert_eq!(state(first.id).await, JobState::Interrupted);
    assert!(!store.renew_import_job(first.id, at(102 + JOB_LEASE_SECS)).await.expect("renew"), "taken");
    assert!(!store.start_import_job(first.id).await.expect("start"), "an interrupted job does not run");
    let progress = postfach_store::import_jobs::JobProgress::default();
    store.finish_import_job(first.id, JobState::Done, &progress, "done late").await.expect("finish");
    assert_eq!(state(first.id).await, JobState::Interrupted, "its late end does not write over the row");

    // A new start by node b takes the place of an abandoned job directly, without the upkeep.
    let second = create(&b, at(200 + JOB_LEASE_SECS)).await.expect("second job");
    let third = create(&a, at(201 + 2 * JOB_LEASE_SECS)).await.expect("third job, the second abandoned");
    assert_eq!(state(second.id).await, JobState::Interrupted);
    assert_eq!(state(third.id).await, JobState::Queued);
    assert!(!store.renew_import_job(second.id, at(202 + 2 * JOB_LEASE_SECS)).await.expect("renew"));
    assert!(store.renew_import_job(third.id, at(202 + 2 * JOB_LEASE_SECS)).await.expect("renew"));
}
