//! The SMTP client against remote servers that misbehave on purpose: replies that never
//! end, servers that stall, answer every command at the last moment or never answer
//! QUIT, control characters in reply text, and data injected after STARTTLS. Each fake
//! server is a script on a loopback socket; timeouts are shortened so that each test
//! shows which bound ended the session.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use postfach_outbound::client::{self, Attempt, Envelope, RcptResult, Timeouts};
use postfach_outbound::mx::Host;
use postfach_types::EmailAddress;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Long enough never to be the bound that ends a test unless the test says so.
const LONG: Duration = Duration::from_secs(60);

fn timeouts() -> Timeouts {
    Timeouts {
        connect: LONG,
        greeting: LONG,
        command: LONG,
        data_init: LONG,
        data_block: LONG,
        data_end: LONG,
        quit: LONG,
        attempt: LONG,
    }
}

/// A remote server on 127.0.0.1 that runs `script` for each connection.
async fn remote<F, Fut>(script: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(script(stream));
        }
    });
    port
}

/// Delivers a small message for `recipients` to the server on `port`; returns the
/// attempt and how long it took.
async fn deliver(port: u16, recipients: usize, timeouts: Timeouts) -> (Attempt, Duration) {
    let host = Host { name: "mx.hostile.test".into(), addresses: vec![IpAddr::from([127, 0, 0, 1])] };
    let recipients: Vec<EmailAddress> =
        (0..recipients).map(|i| EmailAddress::parse(&format!("r{i}@hostile.test")).expect("address")).collect();
    let envelope = Envelope {
        helo: "mail.postfach.test",
        from: None,
        recipients: &recipients,
        message: b"Subject: hello\r\n\r\nhi\r\n",
    };
    let started = Instant::now();
    let targets = [client::Target::opportunistic(host)];
    let attempt = client::deliver_within(&targets, port, &[], envelope, &client::TlsClients::new(&[]), &timeouts).await;
    (attempt, started.elapsed())
}

/// Answers like a willing server: 220, 250 to EHLO/MAIL/RCPT, 354 to DATA and 250 after
/// the dot; `rcpt` is what a recipient gets, `answer_quit` whether QUIT gets an answer.
async fn willing(stream: TcpStream, rcpt: &'static [u8], answer_quit: bool) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 mx.hostile.test ready\r\n").await;
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if in_data {
            if line != ".\r\n" {
                continue;
            }
            in_data = false;
            b"250 2.0.0 queued\r\n"
        } else if command.starts_with("EHLO") {
            b"250-mx.hostile.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("RCPT") {
            rcpt
        } else if command.starts_with("DATA") {
            in_data = true;
            b"354 go ahead\r\n"
        } else if command.starts_with("QUIT") {
            if answer_quit {
                let _ = write.write_all(b"221 bye\r\n").await;
            } else {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            return;
        } else {
            b"250 2.0.0 ok\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn unreachable_because(attempt: &Attempt, why: &str) {
    assert!(!attempt.results.is_empty());
    for result in &attempt.results {
        assert!(matches!(result, RcptResult::Unreachable(text) if text.contains(why)), "{why}: {result:?}");
    }
}

#[tokio::test]
async fn a_reply_of_endless_continuation_lines_is_cut_at_the_reply_limit() {
    let port = remote(|mut stream| async move {
        let line = format!("220-{}\r\n", "x".repeat(100));
        while stream.write_all(line.as_bytes()).await.is_ok() {}
    })
    .await;
    let (attempt, took) = deliver(port, 1, timeouts()).await;
    unreachable_because(&attempt, "reply is too long");
    assert!(took < Duration::from_secs(20), "the size bound, not a timeout, ended it: {took:?}");
}

#[tokio::test]
async fn a_reply_line_that_never_ends_is_cut_at_the_reply_limit() {
    let port = remote(|mut stream| async move {
        let _ = stream.write_all(b"220 ").await;
        let chunk = vec![b'x'; 4096];
        while stream.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let (attempt, took) = deliver(port, 1, timeouts()).await;
    unreachable_because(&attempt, "reply is too long");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[tokio::test]
async fn a_server_that_never_greets_is_given_up_after_the_greeting_timeout() {
    let port = remote(|stream| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(stream);
    })
    .await;
    let (attempt, took) = deliver(port, 1, Timeouts { greeting: Duration::from_millis(500), ..timeouts() }).await;
    unreachable_because(&attempt, "did not answer in time");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_quit_does_not_hold_the_delivery() {
    let port = remote(|stream| willing(stream, b"250 2.1.5 ok\r\n", false)).await;
    let (attempt, took) = deliver(port, 1, Timeouts { quit: Duration::from_millis(300), ..timeouts() }).await;
    assert_eq!(attempt.results, vec![RcptResult::Delivered]);
    assert!(took < Duration::from_secs(20), "QUIT is waited for briefly: {took:?}");
}

#[tokio::test]
async fn answering_every_command_just_in_time_ends_at_the_attempt_deadline() {
    let port = remote(|stream| async move {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let _ = write.write_all(b"220 slow\r\n").await;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            // Just below the command timeout, every time.
            tokio::time::sleep(Duration::from_millis(400)).await;
            if write.write_all(b"250 2.0.0 ok\r\n").await.is_err() {
                return;
            }
        }
    })
    .await;
    let limits = Timeouts { command: Duration::from_millis(500), attempt: Duration::from_secs(2), ..timeouts() };
    // 50 recipients at 0.4 s each would take 20 s.
    let (attempt, took) = deliver(port, 50, limits).await;
    unreachable_because(&attempt, "took too long");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn reply_text_reaches_the_queue_without_control_characters() {
    let port = remote(|stream| willing(stream, b"550 5.1.1 no\x1b[2J such\x00user\xff\r\r\n", true)).await;
    let (attempt, _) = deliver(port, 1, timeouts()).await;
    let [RcptResult::Refused(reply)] = attempt.results.as_slice() else {
        panic!("expected a refusal: {attempt:?}");
    };
    assert_eq!(reply.code, 550);
    assert_eq!(reply.status(), "5.1.1");
    assert_eq!(reply.text, "5.1.1 no?[2J such?user\u{fffd}?");
    assert_eq!(reply.line(), "550 5.1.1 no?[2J such?user\u{fffd}?");
}

#[tokio::test]
async fn data_sent_after_the_starttls_go_ahead_ends_the_session() {
    let port = remote(|stream| async move {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let _ = write.write_all(b"220 mx\r\n").await;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let reply: &[u8] = if line.starts_with("EHLO") {
                b"250-mx\r\n250 STARTTLS\r\n"
            } else if line.starts_with("STARTTLS") {
                // A reply smuggled in before the handshake (a man in the middle's trick).
                b"220 go ahead\r\n250 injected\r\n"
            } else {
                b"250 ok\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (attempt, _) = deliver(port, 1, timeouts()).await;
    unreachable_because(&attempt, "sent data before the TLS handshake");
}
