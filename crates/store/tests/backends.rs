//! Opens a fresh, empty store on each backend for the shared suite.
//!
//! PostgreSQL tests need `POSTFACH_TEST_POSTGRES_URL` (a role allowed to create
//! databases); `scripts/test` starts a server and sets it. Each test gets a database of
//! its own. Without the variable the PostgreSQL tests fail with a message that says so.

use postfach_store::Store;

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/postfach.sqlite", dir.path().display());
    (Store::open(&url).await.expect("open sqlite store"), dir)
}

pub async fn postgres() -> (Store, String) {
    let url = postfach_testpg::fresh_database().await;
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
