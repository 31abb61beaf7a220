//! A fresh, empty PostgreSQL database for one test: the one place tests get one.
//!
//! The server is named by `POSTFACH_TEST_POSTGRES_URL`, a role allowed to create databases
//! (`scripts/test` starts PostgreSQL, creates the role and sets the variable). Each call
//! creates a database `postfach_test_<random>` and returns its URL; `scripts/test` drops
//! those left by earlier runs. Without the variable the test fails with a message that
//! says so: the PostgreSQL half of the suite is never skipped silently.

use sqlx::Connection;

/// The variable naming the test server.
pub const POSTGRES_ENV: &str = "POSTFACH_TEST_POSTGRES_URL";

/// Creates a new database and returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = std::env::var(POSTGRES_ENV)
        .unwrap_or_else(|_| panic!("set {POSTGRES_ENV} to run the PostgreSQL tests (scripts/test does this)"));
    let name = format!("postfach_test_{:016x}", rand::random::<u64>());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("the URL ends in /database");
    format!("{base}/{name}")
}

/// [`fresh_database`] for tests that do not run in an async runtime.
pub fn fresh_database_blocking() -> String {
    let runtime = tokio_runtime();
    runtime.block_on(fresh_database())
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}
