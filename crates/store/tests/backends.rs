//! Opens a fresh, empty store on each backend for the shared suite.
//!
//! PostgreSQL tests need `POSTFACH_TEST_POSTGRES_URL` (a role allowed to create
//! databases); `scripts/test` starts a server and sets it. Each test gets a database of
//! its own. Without the variable the PostgreSQL tests fail with a message that says so.

use postfach_store::Store;
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "POSTFACH_TEST_POSTGRES_URL";

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/postfach.sqlite", dir.path().display());
    (Store::open(&url).await.expect("open sqlite store"), dir)
}

pub async fn postgres() -> (Store, String) {
    let admin_url = std::env::var(POSTGRES_ENV)
        .unwrap_or_else(|_| panic!("set {POSTGRES_ENV} to run the PostgreSQL suite (scripts/test does this)"));
    let name = format!("postfach_test_{:016x}", rand::random::<u64>());
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create db");
    admin.close().await.ok();
    let (base, _db) = admin_url.rsplit_once('/').expect("URL ends in /database");
    let url = format!("{base}/{name}");
    (Store::open(&url).await.expect("open postgres store"), url)
}

/// Defines `mod $name { sqlite(), postgres() }`, each running `$name(store)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = $crate::backends::sqlite().await;
                super::$name(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let (store, _url) = $crate::backends::postgres().await;
                super::$name(store).await;
            }
        }
    )+};
}
