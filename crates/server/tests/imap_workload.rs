//! Many IMAP clients on one mailbox (issue 12): a bounded, seeded mix of APPEND, FETCH,
//! STORE, COPY, MOVE, EXPUNGE, SEARCH, IDLE and NOOP from every client at once. Every
//! tagged reply must be OK, and every client's view — the UIDs by sequence number and their
//! flags, as learnt from EXISTS, EXPUNGE and FETCH — must match the server's at the end.
//!
//! In the test suite it runs small (10 clients, 3 s) against an in-process server. As a
//! benchmark it runs at full size against any server (Dovecot too):
//!
//! ```text
//! WORKLOAD_CLIENTS=10 WORKLOAD_SECS=30 [WORKLOAD_ADDR=127.0.0.1:10143 WORKLOAD_USER=… WORKLOAD_PASS=…] \
//!   cargo test --release -p postfach-server --test imap_workload -- --nocapture
//! ```
//! It prints commands per second and the error count (see docs/benchmarks.md).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{PASSWORD, TestServer};
use postfach_store::mailboxes::MailboxSettings;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A client that keeps its own view of the selected folder.
struct Client {
    io: BufReader<TcpStream>,
    tag: u32,
    /// UIDs by sequence number - 1, as this client was told; `None` where EXISTS announced
    /// a message whose UID the client has not learnt yet.
    uids: Vec<Option<u32>>,
    flags: HashMap<u32, Vec<String>>,
    commands: u64,
    errors: Vec<String>,
    /// COPY/MOVE answered `NO [EXPUNGEISSUED]` (the message was expunged by another client).
    expunge_issued: usize,
}

/// One response line with its literals inlined.
async fn read_response(io: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    loop {
        let mut part = String::new();
        let n = tokio::time::timeout(Duration::from_secs(60), io.read_line(&mut part)).await.expect("answer in time");
        assert!(n.expect("read") > 0, "connection closed after {line:?}");
        line.push_str(&part);
        // A literal at the end of the line: read its bytes, then the rest of the line.
        let trimmed = part.trim_end();
        if let Some(open) = trimmed.rfind('{')
            && trimmed.ends_with('}')
            && let Ok(len) = trimmed[open + 1..trimmed.len() - 1].parse::<usize>()
        {
            let mut bytes = vec![0u8; len];
            io.read_exact(&mut bytes).await.expect("literal");
            line.push_str(&String::from_utf8_lossy(&bytes));
            continue;
        }
        return line;
    }
}

fn number_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    text[at..].split([' ', ')']).next()
}

impl Client {
    async fn connect(addr: SocketAddr, user: &str, pass: &str) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            io: BufReader::new(tcp),
            tag: 0,
            uids: Vec::new(),
            flags: HashMap::new(),
            commands: 0,
            errors: Vec::new(),
            expunge_issued: 0,
        };
        read_response(&mut c.io).await;
        c.run(&format!("LOGIN \"{user}\" \"{pass}\"")).await;
        c
    }

    /// Sends a command, applies every untagged response to the view, returns the
    /// untagged lines and the tagged one.
    async fn run(&mut self, command: &str) -> (Vec<String>, String) {
        let (untagged, tagged) = self.exchange(command).await;
        for line in &untagged {
            self.apply(line);
        }
        self.learn_new_uids().await;
        (untagged, tagged)
    }

    /// Sends a command and reads its responses without touching the view.
    async fn exchange(&mut self, command: &str) -> (Vec<String>, String) {
        self.tag += 1;
        let tag = format!("w{}", self.tag);
        self.io.get_mut().write_all(format!("{tag} {command}\r\n").as_bytes()).await.expect("send");
        self.commands += 1;
        let mut untagged = Vec::new();
        loop {
            let line = read_response(&mut self.io).await;
            if line.starts_with(&format!("{tag} ")) {
                // COPY and MOVE of a message another client expunged meanwhile copy
                // nothing and say so (RFC 2180 §4.4.1): a refusal, not an error.
                let raced = command.contains(" COPY ") || command.contains(" MOVE ");
                if raced && line.starts_with(&format!("{tag} NO [EXPUNGEISSUED]")) {
                    self.expunge_issued += 1;
                } else if !line.starts_with(&format!("{tag} OK")) {
                    self.errors.push(format!("{command} -> {}", line.trim_end()));
                }
                return (untagged, line);
            }
            assert!(!line.starts_with("* BYE"), "{command} -> {line}");
            untagged.push(line);
        }
    }

    /// Applies one untagged response to this client's view.
    fn apply(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(&"*"), Some(n), Some(kind)) =
            (words.first(), words.get(1).and_then(|n| n.parse::<usize>().ok()), words.get(2))
        else {
            return;
        };
        match *kind {
            "EXISTS" if n >= self.uids.len() => self.uids.resize(n, None),
            "EXISTS" => self.errors.push(format!("EXISTS {n} is less than the {} known", self.uids.len())),
            "EXPUNGE" if n == 0 || n > self.uids.len() => {
                self.errors.push(format!("EXPUNGE of unknown sequence number {n}"));
            }
            "EXPUNGE" => {
                if let Some(uid) = self.uids.remove(n - 1) {
                    self.flags.remove(&uid);
                }
            }
            "FETCH" => {
                let Some(uid) = number_after(line, "UID ").and_then(|u| u.parse::<u32>().ok()) else { return };
                match self.uids.get_mut(n - 1) {
                    Some(Some(known)) if *known == uid => {}
                    Some(Some(known)) => self.errors.push(format!("FETCH {n} says UID {uid}, the view has {known}")),
                    Some(slot) => *slot = Some(uid),
                    None => self.errors.push(format!("FETCH {n} (UID {uid}) beyond the view of {}", self.uids.len())),
                }
                if let Some(start) = line.find("FLAGS (") {
                    let rest = &line[start + 7..];
                    let flags = rest[..rest.find(')').unwrap_or(0)]
                        .split_whitespace()
                        .filter(|f| *f != "\\Recent")
                        .map(str::to_string)
                        .collect();
                    self.flags.insert(uid, flags);
                }
            }
            _ => {}
        }
    }

    /// After EXISTS, the UIDs of the new messages.
    async fn learn_new_uids(&mut self) {
        let Some(first) = self.uids.iter().position(Option::is_none) else { return };
        let last = self.uids.len();
        Box::pin(self.run(&format!("FETCH {}:{last} (UID FLAGS)", first + 1))).await;
        if self.uids.iter().any(Option::is_none) {
            self.errors.push("a FETCH did not tell every UID".into());
        }
    }

    /// A random message this client believes exists: (sequence number, UID).
    fn pick(&self, rng: &mut StdRng) -> Option<(usize, u32)> {
        if self.uids.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.uids.len());
        Some((i + 1, self.uids[i]?))
    }

    async fn step(&mut self, rng: &mut StdRng, id: usize) {
        match rng.random_range(0..100) {
            0..15 => {
                let body = format!(
                    "From: c{id}@acme.example\r\nSubject: from {id}\r\n\r\n{}\r\n",
                    "x".repeat(rng.random_range(10..3000))
                );
                self.run(&format!("APPEND INBOX {{{}+}}\r\n{body}", body.len())).await;
            }
            15..40 => {
                if let Some((seq, _)) = self.pick(rng) {
                    let last = (seq + rng.random_range(0..5)).min(self.uids.len());
                    self.run(&format!("FETCH {seq}:{last} (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject)])"))
                        .await;
                }
            }
            40..55 => {
                if let Some((_, uid)) = self.pick(rng) {
                    let flag = ["\\Seen", "\\Flagged", "$label1", "$label2"][rng.random_range(0..4)];
                    let sign = if rng.random_bool(0.5) { '+' } else { '-' };
                    self.run(&format!("UID STORE {uid} {sign}FLAGS ({flag})")).await;
                }
            }
            55..62 => {
                if let Some((_, uid)) = self.pick(rng) {
                    self.run(&format!("UID COPY {uid} Archive")).await;
                }
            }
            62..67 => {
                if let Some((_, uid)) = self.pick(rng) {
                    self.run(&format!("UID MOVE {uid} Archive")).await;
                }
            }
            67..77 => {
                if let Some((_, uid)) = self.pick(rng) {
                    self.run(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)")).await;
                    self.run(&format!("UID EXPUNGE {uid}")).await;
                }
            }
            77..87 => {
                let key = ["UNSEEN", "KEYWORD $label1", "FLAGGED", "SUBJECT from", "ALL"][rng.random_range(0..5)];
                self.run(&format!("UID SEARCH {key}")).await;
            }
            87..92 => {
                self.tag += 1;
                let tag = format!("w{}", self.tag);
                self.io.get_mut().write_all(format!("{tag} IDLE\r\n").as_bytes()).await.expect("send");
                self.commands += 1;
                let first = read_response(&mut self.io).await;
                if !first.starts_with('+') {
                    self.errors.push(format!("IDLE -> {first}"));
                    return;
                }
                let until = Instant::now() + Duration::from_millis(rng.random_range(20..200));
                while let Ok(line) = tokio::time::timeout_at(until.into(), read_response(&mut self.io)).await {
                    self.apply(&line);
                }
                self.io.get_mut().write_all(b"DONE\r\n").await.expect("done");
                loop {
                    let line = read_response(&mut self.io).await;
                    if line.starts_with(&format!("{tag} ")) {
                        if !line.starts_with(&format!("{tag} OK")) {
                            self.errors.push(format!("IDLE -> {line}"));
                        }
                        break;
                    }
                    self.apply(&line);
                }
                self.learn_new_uids().await;
            }
            _ => {
                self.run("NOOP").await;
            }
        }
    }

    /// The server's view of the folder: (UIDs by sequence number, flags by UID). Not
    /// applied to this client's view, which is compared with it.
    async fn server_view(&mut self) -> (Vec<u32>, HashMap<u32, Vec<String>>) {
        let (lines, _) = self.exchange("FETCH 1:* (UID FLAGS)").await;
        let mut uids = Vec::new();
        let mut flags = HashMap::new();
        for line in lines.iter().filter(|l| l.contains(" FETCH (")) {
            let Some(uid) = number_after(line, "UID ").and_then(|u| u.parse::<u32>().ok()) else { continue };
            uids.push(uid);
            if let Some(start) = line.find("FLAGS (") {
                let rest = &line[start + 7..];
                let list = rest[..rest.find(')').unwrap_or(0)]
                    .split_whitespace()
                    .filter(|f| *f != "\\Recent")
                    .map(str::to_string)
                    .collect();
                flags.insert(uid, list);
            }
        }
        (uids, flags)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_clients_on_one_mailbox_stay_consistent() {
    let clients = env("WORKLOAD_CLIENTS", 10usize);
    let secs = env("WORKLOAD_SECS", 3u64);
    let seed = env("WORKLOAD_SEED", 20_261_128u64);
    let (_server, addr, user, pass) = match std::env::var("WORKLOAD_ADDR") {
        Ok(addr) => (
            None,
            addr.parse().expect("WORKLOAD_ADDR"),
            env("WORKLOAD_USER", String::new()),
            env("WORKLOAD_PASS", String::new()),
        ),
        Err(_) => {
            let t = TestServer::start_with(|c| c.security.allow_plaintext_auth = true).await;
            t.mailbox("max@acme.example", MailboxSettings { tls_required: false, ..Default::default() }).await;
            let addr = t.addr("imap");
            (Some(t), addr, "max@acme.example".to_string(), PASSWORD.to_string())
        }
    };
    let mut setup = Client::connect(addr, &user, &pass).await;
    setup.run("CREATE Archive").await;
    setup.errors.clear();
    setup.run("SELECT INBOX").await;
    for i in 0..20 {
        let body = format!("Subject: seed {i}\r\n\r\nx\r\n");
        setup.run(&format!("APPEND INBOX {{{}+}}\r\n{body}", body.len())).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for id in 0..clients {
        let (user, pass) = (user.clone(), pass.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed + id as u64);
            let mut c = Client::connect(addr, &user, &pass).await;
            let (lines, _) = c.run("SELECT INBOX").await;
            let _ = lines;
            c.learn_new_uids().await;
            while Instant::now() < deadline {
                c.step(&mut rng, id).await;
            }
            c
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Quiet now: every client catches up and must see exactly what the server has.
    let mut total = 0;
    let mut expunge_issued = 0;
    let mut errors = Vec::new();
    for (id, c) in all.iter_mut().enumerate() {
        c.run("NOOP").await;
        total += c.commands;
        expunge_issued += c.expunge_issued;
        // The client's view as it stands, then the server's (which leaves the view alone).
        let (known, known_flags) = (c.uids.clone(), c.flags.clone());
        let (uids, flags) = c.server_view().await;
        let view: Vec<u32> = known.iter().flatten().copied().collect();
        if view != uids || view.len() != known.len() {
            errors.push(format!("client {id}: view {known:?} but the server has {uids:?}"));
        }
        for uid in &uids {
            let mut seen = known_flags.get(uid).cloned().unwrap_or_default();
            let mut real = flags.get(uid).cloned().unwrap_or_default();
            seen.sort();
            real.sort();
            if seen != real {
                errors.push(format!("client {id}: UID {uid} flags {seen:?}, server {real:?}"));
            }
        }
        errors.extend(c.errors.iter().map(|e| format!("client {id}: {e}")));
    }
    println!(
        "imap workload: {clients} clients, {elapsed:.1} s, {total} commands, {:.0} commands/s, {} errors, \
         {expunge_issued} COPY/MOVE of messages expunged meanwhile",
        total as f64 / elapsed,
        errors.len()
    );
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(total > clients as u64 * 10, "the clients got work done: {total}");
}
