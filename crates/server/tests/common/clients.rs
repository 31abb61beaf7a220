//! Protocol clients the end-to-end tests speak through: a line-by-line SMTP client, a raw
//! IMAP client, and running a real client program off the async threads.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A line-by-line SMTP client.
pub struct SmtpClient {
    pub reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

impl SmtpClient {
    pub async fn connect(addr: SocketAddr) -> (SmtpClient, String) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (read, writer) = stream.into_split();
        let mut client = SmtpClient { reader: BufReader::new(read), writer };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// One reply, all its lines joined with '\n'. Fails the test when a line takes longer
    /// than 30 s.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line)).await;
            let Ok(read) = read else {
                panic!("no complete SMTP reply within 30 s; got so far: {lines:?} and {line:?}");
            };
            if read.expect("read") == 0 {
                lines.push("<closed>".to_string());
                break;
            }
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                break;
            }
        }
        lines.join("\n")
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await.expect("write");
        self.reply().await
    }

    /// EHLO, MAIL, RCPTs, DATA; returns the RCPT replies and the final reply (or the
    /// MAIL reply when MAIL failed).
    pub async fn transaction(&mut self, from: &str, to: &[&str], message: &str) -> (Vec<String>, String) {
        let mail = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        if !mail.starts_with("250") {
            return (Vec::new(), mail);
        }
        let mut rcpts = Vec::new();
        for rcpt in to {
            rcpts.push(self.cmd(&format!("RCPT TO:<{rcpt}>")).await);
        }
        if !rcpts.iter().any(|r| r.starts_with("250")) {
            self.cmd("RSET").await;
            return (rcpts, String::new());
        }
        let data = self.cmd("DATA").await;
        assert!(data.starts_with("354"), "{data}");
        let body = message.replace("\r\n", "\n").replace('\n', "\r\n");
        self.writer.write_all(body.as_bytes()).await.expect("write");
        if !body.ends_with("\r\n") {
            self.writer.write_all(b"\r\n").await.expect("write");
        }
        (rcpts, self.cmd(".").await)
    }
}

/// A raw IMAP client: lines in, lines out.
/// A line-by-line plaintext client.
pub struct ImapClient {
    pub reader: BufReader<TcpStream>,
}

impl ImapClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        ImapClient { reader: BufReader::new(stream) }
    }

    pub async fn send(&mut self, text: &str) {
        self.reader.get_mut().write_all(text.as_bytes()).await.expect("send");
    }

    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line)).await;
        read.expect("the server answers in time").expect("read");
        line
    }

    /// Reads lines until one starts with `prefix`; returns all of them.
    pub async fn until(&mut self, prefix: &str) -> String {
        let mut all = String::new();
        loop {
            let line = self.line().await;
            assert!(!line.is_empty(), "connection closed; got so far:\n{all}");
            all.push_str(&line);
            if line.starts_with(prefix) {
                return all;
            }
        }
    }

    /// Sends a tagged command and reads through its tagged reply.
    pub async fn cmd(&mut self, tag: &str, command: &str) -> String {
        self.send(&format!("{tag} {command}\r\n")).await;
        self.until(&format!("{tag} ")).await
    }
}

/// Runs a client program on the blocking pool.
pub async fn run(command: &mut Command) -> std::process::Output {
    let mut command = std::mem::replace(command, Command::new("true"));
    tokio::task::spawn_blocking(move || command.output().expect("the client program runs")).await.expect("client task")
}

/// Runs a client program that must succeed; returns its standard output.
pub async fn run_ok(command: &mut Command) -> String {
    let output = run(command).await;
    assert!(
        output.status.success(),
        "the client program failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
