//! The server starts with every listener on loopback and shuts down cleanly.

mod common;

use common::TestServer;

#[tokio::test]
async fn starts_creates_its_data_and_stops() {
    let t = TestServer::start().await;
    assert!(t.cert().exists(), "self-signed certificate created");
    assert!(t.config.data_dir.join("blobs/objects/ff").is_dir(), "blob store laid out");
    let mailbox = t.mailbox("max@acme.example", Default::default()).await;
    let folders = t.server.store().folders(mailbox.id).await.expect("folders");
    assert_eq!(folders.len(), 6);
    t.server.shutdown().await;
}
