use super::*;

#[test]
fn endpoints() {
    for (url, shown) in [
        ("http://127.0.0.1:11333", "http://127.0.0.1:11333"),
        ("http://localhost:11334/", "http://localhost:11334"),
        ("http://[::1]:11333", "http://[::1]:11333"),
    ] {
        assert_eq!(Endpoint::parse(url).expect(url).to_string(), shown);
    }
    for bad in [
        "https://127.0.0.1:11333",
        "127.0.0.1:11333",
        "http://127.0.0.1",
        "http://127.0.0.1:0",
        "http://a b:1",
        "http://h:1/checkv2",
        "http://:11333",
    ] {
        assert!(Endpoint::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn verdicts() {
    let gtube = br#"{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}},"messages":{"smtp_message":"Gtube pattern"}}"#;
    let verdict = parse_verdict(gtube).expect("GTUBE");
    assert_eq!(verdict.score, SpamScore::from_hundredths(1500));
    assert_eq!(verdict.action, "reject");
    assert_eq!(verdict.symbols, ["GTUBE"]);
    let odd = br#"{"score":-0.125,"action":"no\r\naction"}"#;
    let verdict = parse_verdict(odd).expect("odd");
    assert_eq!(verdict.score, SpamScore::from_hundredths(-13));
    assert_eq!(verdict.action, "noaction");
    assert!(parse_verdict(b"{}").is_err());
    assert!(parse_verdict(br#"{"score":"high"}"#).is_err());
}

/// A fake rspamd on loopback that answers each connection with `reply`, after reading
/// the request.
async fn fake(reply: &'static [u8]) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                // Hold the connection open: a client must not wait past its deadline.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    Endpoint::parse(&format!("http://127.0.0.1:{port}")).expect("endpoint")
}

fn client(endpoint: Endpoint) -> Rspamd {
    Rspamd::new(Settings { rspamd: endpoint, controller: None, password: None, timeout: Duration::from_secs(2) })
}

fn envelope() -> (Vec<String>, IpAddr) {
    (vec!["a@example.com".to_string()], IpAddr::from([192, 0, 2, 1]))
}

#[tokio::test]
async fn answers_are_bounded() {
    let (rcpts, ip) = envelope();
    let env = Envelope { from: None, recipients: &rcpts, client: ip, helo: None, user: None, queue_id: "1" };
    let ok = client(fake(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"score\":2.5}\n").await);
    assert_eq!(
        ok.check(b"Subject: x\r\n\r\nx\r\n", &env).await.expect("verdict").score,
        SpamScore::from_hundredths(250)
    );
    // A body announced larger than the limit is refused without reading it.
    let huge = client(fake(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n").await);
    assert!(matches!(huge.check(b"x", &env).await, Err(SpamError::TooLarge)));
    // An answer that never ends is cut off by the deadline.
    let slow = client(fake(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{").await);
    assert!(matches!(slow.check(b"x", &env).await, Err(SpamError::Timeout(_))));
    let error = client(fake(b"HTTP/1.1 500 Internal\r\nContent-Length: 17\r\n\r\n{\"error\":\"boom\"}\n").await);
    assert!(matches!(error.check(b"x", &env).await, Err(SpamError::Status { status: 500, .. })));
    let garbage = client(fake(b"SMTP 220 hello\r\n\r\n").await);
    assert!(matches!(garbage.check(b"x", &env).await, Err(SpamError::Protocol(_))));
}
