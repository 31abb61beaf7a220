//! Outbound TLS outcome counts for the TLS-RPT reports Postfach sends (RFC 8460), run
//! against SQLite and PostgreSQL alike.

mod backends;

use postfach_store::Store;
use postfach_store::tls_rpt_out::{MAX_TLS_OUTCOME_ROWS, TlsOutcome};

on_both_backends!(outcomes_are_counted_per_day_bounded_and_forgotten);

fn outcome(domain: &str, result: &str, mx: &str) -> TlsOutcome {
    TlsOutcome {
        domain: domain.into(),
        policy_type: "sts".into(),
        policy: "version: STSv1\nmode: enforce\nmx: mx.outside.test\nmax_age: 86400".into(),
        result: result.into(),
        mx_host: mx.into(),
        mx_ip: "192.0.2.1".into(),
    }
}

async fn outcomes_are_counted_per_day_bounded_and_forgotten(store: Store) {
    let ok = outcome("outside.test", "success", "mx.outside.test");
    let bad = outcome("outside.test", "starttls-not-supported", "mx.outside.test");
    for _ in 0..3 {
        store.count_tls_outcome(100, &ok).await.expect("count");
    }
    store.count_tls_outcome(100, &bad).await.expect("count");
    store.count_tls_outcome(101, &ok).await.expect("count");
    let day = store.tls_outcomes(100).await.expect("read");
    assert_eq!(day, vec![(bad.clone(), 1), (ok.clone(), 3)], "ordered by result");

    // At most MAX_TLS_OUTCOME_ROWS distinct rows per domain and day; then counting stops.
    for i in 0..MAX_TLS_OUTCOME_ROWS + 10 {
        store
            .count_tls_outcome(102, &outcome("many.test", "validation-failure", &format!("mx{i}.many.test")))
            .await
            .expect("count");
    }
    store.count_tls_outcome(102, &outcome("many.test", "validation-failure", "mx0.many.test")).await.expect("count");
    let many = store.tls_outcomes(102).await.expect("read");
    assert_eq!(many.len() as i64, MAX_TLS_OUTCOME_ROWS);
    assert!(many.iter().any(|(o, n)| o.mx_host == "mx0.many.test" && *n == 1), "nothing more is counted that day");

    store.forget_tls_outcomes("outside.test", 100).await.expect("forget");
    assert!(store.tls_outcomes(100).await.expect("read").is_empty());
    assert_eq!(store.tls_outcomes(101).await.expect("read").len(), 1);
    assert_eq!(store.forget_tls_outcomes_before(102).await.expect("forget"), 1);
    assert_eq!(store.tls_outcomes(102).await.expect("read").len() as i64, MAX_TLS_OUTCOME_ROWS);
}
