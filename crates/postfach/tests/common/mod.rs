//! Running the real `postfach` binary from tests, as an operator would.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `postfach --config CONFIG ARGS`, feeding `stdin`.
pub fn postfach(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postfach");
    // A command that fails early may not read its input: a broken pipe is fine.
    let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
    child.wait_with_output().expect("postfach ran")
}

/// Like [`postfach`] for a command that must succeed; returns its stdout.
pub fn postfach_ok(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = postfach(config, args, stdin);
    assert!(out.status.success(), "postfach {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One MX transaction on the SMTP server at `to` (EHLO `helo`, MAIL FROM `from`, one
/// recipient, the message and its final dot): `Some(true)` when the message got `250`,
/// `Some(false)` for another final reply, `None` when a step was refused or the connection
/// broke (as when the server is killed).
pub fn deliver(to: std::net::SocketAddr, helo: &str, from: &str, rcpt: &str, message: &[u8]) -> Option<bool> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(to).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).ok()?;
    let mut writer = stream.try_clone().ok()?;
    let mut reader = BufReader::new(stream);
    // One (possibly multi-line) reply; `None` when the connection broke.
    let reply = |reader: &mut BufReader<std::net::TcpStream>| -> Option<String> {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(line);
            }
        }
    };
    reply(&mut reader).filter(|r| r.starts_with("220"))?;
    for (command, code) in [
        (format!("EHLO {helo}"), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{rcpt}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        writer.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        reply(&mut reader).filter(|r| r.starts_with(code))?;
    }
    writer.write_all(message).ok()?;
    writer.write_all(b".\r\n").ok()?;
    let last = reply(&mut reader)?;
    let _ = writer.write_all(b"QUIT\r\n");
    Some(last.starts_with("250"))
}

/// Starts `postfach --config CONFIG serve` (stderr to `stderr`) and waits until every port
/// in `ports` on 127.0.0.1 accepts connections; panics when it exits or takes a minute.
pub fn serve(config: &Path, stderr: Stdio, ports: &[u16]) -> std::process::Child {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start postfach serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    for &port in ports {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("postfach serve exited with {status} before listening on {port}");
            }
            assert!(Instant::now() < deadline, "postfach serve did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    child
}
