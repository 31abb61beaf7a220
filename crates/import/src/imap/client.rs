//! A small IMAP4rev1 client for reading another server, written for the import alone: it
//! logs in, lists folders, examines one, fetches UID, FLAGS, INTERNALDATE and
//! RFC822.SIZE, then one message's bytes with `BODY.PEEK[]`, and logs out.
//!
//! The old server is untrusted input. Every read waits at most [`Limits::read_timeout`];
//! a line may be at most [`MAX_LINE`] bytes, a literal at most the largest message we
//! would store ([`Limits::max_literal`]), a response at most one literal plus
//! [`MAX_LINE`]s of its lines; a folder listing and a folder's message list are capped in
//! count. Bytes buffered after the STARTTLS go-ahead end the session (a reply smuggled
//! into the plaintext stream). Nothing the server sends is logged; texts shown to a
//! customer pass [`super::response::shown`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use postfach_store::messages::Flags;
use postfach_types::{Secret, UnixTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::response::{Token, shown, status_text, tokens};

/// The longest line of a response (a LIST or FETCH line without its literals).
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Most folders a listing may name.
const MAX_FOLDERS: usize = 10_000;
/// Most messages of one folder the import looks at in one run.
pub(crate) const MAX_MESSAGES: usize = 1_000_000;
/// Most distinct keywords kept per folder (a message holds them as bits, so a folder's
/// message list stays small however many keywords a server sends), and the longest one.
const MAX_KEYWORDS: usize = 64;
const MAX_KEYWORD_LEN: usize = 100;

/// The client's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub read_timeout: Duration,
    pub max_literal: u64,
}

/// Why talking to the old server failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("the connection to the old server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the old server did not answer within {0} seconds")]
    Timeout(u64),
    #[error("the old server sent something that is not IMAP ({0})")]
    Protocol(&'static str),
    #[error("the old server sent a message larger than {0} bytes")]
    TooLarge(u64),
    /// A command was refused (`NO` or `BAD`); the server's text, made fit to show.
    #[error("the old server refused: {0}")]
    Refused(String),
    #[error("the old server closed the connection: {0}")]
    Bye(String),
}

/// The byte stream: plain TCP until STARTTLS, then TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One folder as the old server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedFolder {
    /// The name as the server spells it (modified UTF-7), to send back.
    pub name: Vec<u8>,
    pub delimiter: Option<char>,
    /// Attributes, lower case (`\sent`, `\noselect`).
    pub attributes: Vec<String>,
}

/// A folder opened with EXAMINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Examined {
    pub uidvalidity: u32,
    pub exists: u64,
}

/// What the import needs to know of a message before fetching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageInfo {
    pub uid: u32,
    pub flags: Flags,
    /// Bits into the folder's [`Keywords`].
    pub keywords: u64,
    pub internal_date: UnixTime,
    pub size: u64,
}

/// The distinct keywords of a folder's messages, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keywords(Vec<String>);

impl Keywords {
    /// The bit of `keyword`, added when new and there is room.
    fn bit(&mut self, keyword: &[u8]) -> Option<u64> {
        let at = match self.0.iter().position(|k| k.as_bytes() == keyword) {
            Some(at) => at,
            None if self.0.len() < MAX_KEYWORDS => {
                self.0.push(String::from_utf8_lossy(keyword).into_owned());
                self.0.len() - 1
            }
            None => return None,
        };
        Some(1 << at)
    }

    /// The keywords whose bits are set.
    pub(crate) fn names(&self, bits: u64) -> Vec<String> {
        self.0.iter().enumerate().filter(|(at, _)| bits & (1 << at) != 0).map(|(_, k)| k.clone()).collect()
    }
}

/// A response: untagged (`*`), a continuation request (`+`) or the tagged end of a command.
enum Response {
    Untagged(Vec<u8>),
    Continue,
    Done { ok: bool, text: String },
}

/// A logged-out or logged-in session with the old server.
#[derive(Debug)]
pub(crate) struct Client {
    conn: BufReader<Stream>,
    limits: Limits,
    next_tag: u32,
    capabilities: Vec<String>,
}

impl Client {
    /// Reads the greeting of a connected server.
    pub(crate) async fn greet(stream: Stream, limits: Limits) -> Result<Client, ClientError> {
        let mut client = Client { conn: BufReader::new(stream), limits, next_tag: 1, capabilities: Vec::new() };
        let greeting = client.read_response("").await?;
        match greeting {
            Response::Untagged(line) if starts_with_word(&line, b"* OK") => {
                client.note_capabilities(&line);
                Ok(client)
            }
            Response::Untagged(line) if starts_with_word(&line, b"* BYE") => {
                Err(ClientError::Bye(shown(line.get(5..).unwrap_or_default())))
            }
            _ => Err(ClientError::Protocol("greeting")),
        }
    }

    pub(crate) fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Asks for the capabilities (unless the greeting or login told them).
    pub(crate) async fn capability(&mut self) -> Result<(), ClientError> {
        let untagged = self.command(b"CAPABILITY").await?;
        for line in &untagged {
            self.note_capabilities(line);
        }
        Ok(())
    }

    /// STARTTLS, then the TLS handshake (certificate verified by `connector`'s roots).
    pub(crate) async fn starttls(
        mut self,
        connector: &TlsConnector,
        name: ServerName<'static>,
    ) -> Result<Client, ClientError> {
        self.command(b"STARTTLS").await?;
        if !self.conn.buffer().is_empty() {
            return Err(ClientError::Protocol("bytes after the STARTTLS go-ahead"));
        }
        let Stream::Plain(tcp) = self.conn.into_inner() else {
            return Err(ClientError::Protocol("STARTTLS inside TLS"));
        };
        let tls = tokio::time::timeout(self.limits.read_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Timeout(self.limits.read_timeout.as_secs()))??;
        let mut client = Client {
            conn: BufReader::new(Stream::Tls(Box::new(tls))),
            limits: self.limits,
            next_tag: self.next_tag,
            capabilities: Vec::new(),
        };
        client.capability().await?;
        Ok(client)
    }

    /// Logs in: `AUTHENTICATE PLAIN` where offered, else `LOGIN` with quoted strings.
    pub(crate) async fn login(&mut self, login: &str, password: &Secret<String>) -> Result<(), ClientError> {
        if self.has_capability("AUTH=PLAIN") {
            use base64::Engine;
            let plain = format!("\0{login}\0{}", password.expose());
            let encoded = Secret::new(base64::engine::general_purpose::STANDARD.encode(plain.as_bytes()));
            let tag = self.send(b"AUTHENTICATE PLAIN").await?;
            loop {
                match self.read_response(&tag).await? {
                    Response::Continue => break,
                    Response::Untagged(_) => {}
                    Response::Done { text, .. } => return Err(ClientError::Refused(text)),
                }
            }
            self.write_all(format!("{}\r\n", encoded.expose()).as_bytes()).await?;
            let untagged = self.finish(&tag).await?;
            for line in &untagged {
                self.note_capabilities(line);
            }
        } else {
            let (Some(login), Some(password)) = (quoted(login), quoted(password.expose())) else {
                return Err(ClientError::Refused(
                    "the login or password has characters this server's LOGIN cannot take".into(),
                ));
            };
            let command = Secret::new(format!("LOGIN {login} {password}"));
            let untagged = self.command(command.expose().as_bytes()).await?;
            for line in &untagged {
                self.note_capabilities(line);
            }
        }
        self.capabilities.clear();
        self.capability().await
    }

    /// Every folder (`LIST "" "*"`, asking for special-use attributes where the server
    /// knows RFC 6154 and list extensions).
    pub(crate) async fn list(&mut self) -> Result<Vec<ListedFolder>, ClientError> {
        let command: &[u8] = if self.has_capability("SPECIAL-USE") && self.has_capability("LIST-EXTENDED") {
            b"LIST \"\" \"*\" RETURN (SPECIAL-USE)"
        } else {
            b"LIST \"\" \"*\""
        };
        let untagged = self.command(command).await?;
        let mut folders = Vec::new();
        for line in untagged {
            let Some(t) = tokens(&line) else { return Err(ClientError::Protocol("LIST")) };
            if t.len() < 5 || !t[1].is_atom("LIST") {
                continue;
            }
            let attributes = t[2]
                .list()
                .ok_or(ClientError::Protocol("LIST attributes"))?
                .iter()
                .filter_map(|a| a.atom().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()))
                .collect();
            let delimiter = match &t[3] {
                Token::String(d) if d.len() == 1 && d[0].is_ascii() => Some(char::from(d[0])),
                _ => None,
            };
            let name = t[4].bytes().ok_or(ClientError::Protocol("LIST name"))?.to_vec();
            folders.push(ListedFolder { name, delimiter, attributes });
            if folders.len() > MAX_FOLDERS {
                return Err(ClientError::Protocol("more than 10,000 folders"));
            }
        }
        Ok(folders)
    }

    /// Opens `folder` read-only.
    pub(crate) async fn examine(&mut self, folder: &[u8]) -> Result<Examined, ClientError> {
        let name = quoted_bytes(folder).ok_or(ClientError::Protocol("a folder name that cannot be sent back"))?;
        let mut command = b"EXAMINE ".to_vec();
        command.extend_from_slice(&name);
        let untagged = self.command(&command).await?;
        let (mut uidvalidity, mut exists) = (None, 0);
        for line in untagged {
            let Some(t) = tokens(&line) else { continue };
            if t.len() >= 3 && t[2].is_atom("EXISTS") {
                exists = t[1].number().ok_or(ClientError::Protocol("EXISTS"))?;
            }
            if t.len() >= 2 && t[1].is_atom("OK") {
                let (code, _) = status_text(line.get(4..).unwrap_or_default());
                if let Some(value) = code.and_then(|c| c.strip_prefix(b"UIDVALIDITY ")) {
                    uidvalidity = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse().ok());
                }
            }
        }
        let uidvalidity = uidvalidity.ok_or(ClientError::Protocol("no UIDVALIDITY"))?;
        Ok(Examined { uidvalidity, exists })
    }

    /// UID, flags, date and size of the open folder's messages with UIDs from `first`.
    pub(crate) async fn message_infos(&mut self, first: u32) -> Result<(Vec<MessageInfo>, Keywords), ClientError> {
        let command = format!("UID FETCH {first}:* (UID FLAGS INTERNALDATE RFC822.SIZE)");
        let tag = self.send(command.as_bytes()).await?;
        let mut infos = Vec::new();
        let mut keywords = Keywords::default();
        loop {
            match self.read_response(&tag).await? {
                Response::Untagged(line) => {
                    let Some(items) = fetch_items(&line) else { continue };
                    let info = message_info(&items, &mut keywords).ok_or(ClientError::Protocol("FETCH"))?;
                    // `first:*` names the last message even when its UID is below `first`.
                    if info.uid >= first {
                        infos.push(info);
                    }
                    if infos.len() > MAX_MESSAGES {
                        return Err(ClientError::Protocol("more than a million messages in one folder"));
                    }
                }
                Response::Continue => return Err(ClientError::Protocol("unexpected continuation")),
                Response::Done { ok: true, .. } => break,
                Response::Done { ok: false, text } => return Err(ClientError::Refused(text)),
            }
        }
        infos.sort_by_key(|i| i.uid);
        infos.dedup_by_key(|i| i.uid);
        Ok((infos, keywords))
    }

    /// The bytes of the message `uid` of the open folder (`None`: it is gone).
    pub(crate) async fn message(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ClientError> {
        let command = format!("UID FETCH {uid} (UID BODY.PEEK[])");
        let untagged = self.command(command.as_bytes()).await?;
        for line in untagged {
            let Some(items) = fetch_items(&line) else { continue };
            let mut uid_seen = None;
            let mut body = None;
            for pair in items.chunks(2) {
                if let [name, value] = pair {
                    if name.is_atom("UID") {
                        uid_seen = value.number();
                    } else if name.is_atom("BODY[]") {
                        body = value.bytes().map(<[u8]>::to_vec);
                    }
                }
            }
            if uid_seen == Some(u64::from(uid))
                && let Some(body) = body
            {
                return Ok(Some(body));
            }
        }
        Ok(None)
    }

    /// LOGOUT; errors are of no interest any more.
    pub(crate) async fn logout(mut self) {
        let _ = self.command(b"LOGOUT").await;
        let _ = self.conn.get_mut().shutdown().await;
    }

    /// Sends a command and reads up to its tagged end; the untagged responses, or the
    /// server's refusal.
    async fn command(&mut self, command: &[u8]) -> Result<Vec<Vec<u8>>, ClientError> {
        let tag = self.send(command).await?;
        self.finish(&tag).await
    }

    async fn finish(&mut self, tag: &str) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut untagged = Vec::new();
        let mut kept = 0usize;
        loop {
            match self.read_response(tag).await? {
                Response::Untagged(line) => {
                    if starts_with_word(&line, b"* BYE") {
                        // Servers announce BYE before the tagged OK of LOGOUT.
                        untagged.push(line);
                        continue;
                    }
                    kept += line.len();
                    if kept as u64 > self.limits.max_literal + (MAX_LINE as u64) * 16 {
                        return Err(ClientError::TooLarge(self.limits.max_literal));
                    }
                    untagged.push(line);
                }
                Response::Continue => return Err(ClientError::Protocol("unexpected continuation")),
                Response::Done { ok: true, .. } => return Ok(untagged),
                Response::Done { ok: false, text } => return Err(ClientError::Refused(text)),
            }
        }
    }

    async fn send(&mut self, command: &[u8]) -> Result<String, ClientError> {
        let tag = format!("i{}", self.next_tag);
        self.next_tag += 1;
        let mut line = Vec::with_capacity(tag.len() + command.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.write_all(&line).await?;
        Ok(tag)
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let timeout = self.limits.read_timeout;
        let conn = self.conn.get_mut();
        tokio::time::timeout(timeout, async {
            conn.write_all(bytes).await?;
            conn.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout(timeout.as_secs()))??;
        Ok(())
    }

    /// One response's wire bytes: a line, and for each literal it announces at its end the
    /// literal's bytes and the line that goes on after it.
    async fn read_response(&mut self, tag: &str) -> Result<Response, ClientError> {
        let mut wire = Vec::new();
        let mut literal_total = 0u64;
        loop {
            let start = wire.len();
            self.read_line(&mut wire).await?;
            match literal_length(&wire[start..]) {
                Some(length) => {
                    literal_total += length;
                    if literal_total > self.limits.max_literal {
                        return Err(ClientError::TooLarge(self.limits.max_literal));
                    }
                    self.read_exact(&mut wire, length).await?;
                }
                None => break,
            }
        }
        if wire.starts_with(b"* ") {
            return Ok(Response::Untagged(wire));
        }
        if wire.starts_with(b"+") {
            return Ok(Response::Continue);
        }
        let Some(rest) = wire.strip_prefix(tag.as_bytes()).and_then(|r| r.strip_prefix(b" ")) else {
            return Err(ClientError::Protocol("a response with an unknown tag"));
        };
        let word_end = rest.iter().position(|&b| b == b' ' || b == b'\r').unwrap_or(rest.len());
        let ok = rest[..word_end].eq_ignore_ascii_case(b"OK");
        let (_, text) = status_text(&rest[word_end..]);
        Ok(Response::Done { ok, text: shown(text) })
    }

    /// Appends one line (CRLF included) of at most [`MAX_LINE`] bytes to `out`.
    async fn read_line(&mut self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        let start = out.len();
        loop {
            let available = self.fill().await?;
            if available.is_empty() {
                return Err(ClientError::Bye("the connection ended".into()));
            }
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            if out.len() - start + take > MAX_LINE {
                return Err(ClientError::Protocol("a line longer than 64 KiB"));
            }
            out.extend_from_slice(&available[..take]);
            self.conn.consume(take);
            if done {
                return Ok(());
            }
        }
    }

    async fn read_exact(&mut self, out: &mut Vec<u8>, length: u64) -> Result<(), ClientError> {
        let mut left = length;
        out.reserve(usize::try_from(length.min(self.limits.max_literal)).unwrap_or(0));
        while left > 0 {
            let available = self.fill().await?;
            if available.is_empty() {
                return Err(ClientError::Bye("the connection ended inside a message".into()));
            }
            let take = available.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            out.extend_from_slice(&available[..take]);
            self.conn.consume(take);
            left -= take as u64;
        }
        Ok(())
    }

    async fn fill(&mut self) -> Result<&[u8], ClientError> {
        let timeout = self.limits.read_timeout;
        tokio::time::timeout(timeout, self.conn.fill_buf())
            .await
            .map_err(|_| ClientError::Timeout(timeout.as_secs()))?
            .map_err(ClientError::Io)
    }

    /// Takes a `CAPABILITY` response or a `[CAPABILITY ...]` code.
    fn note_capabilities(&mut self, line: &[u8]) {
        let words: Option<&[u8]> = if starts_with_word(line, b"* CAPABILITY") {
            line.get(12..)
        } else {
            // `* OK [CAPABILITY ...] text` or `tag OK [CAPABILITY ...] text`.
            let after = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
            match status_text(after) {
                (Some(code), _) if code.len() > 11 && code[..11].eq_ignore_ascii_case(b"CAPABILITY ") => {
                    Some(&code[11..])
                }
                _ => None,
            }
        };
        if let Some(words) = words {
            self.capabilities = String::from_utf8_lossy(words)
                .split_ascii_whitespace()
                .take(200)
                .map(|w| w.chars().take(100).collect())
                .collect();
        }
    }
}

fn starts_with_word(line: &[u8], word: &[u8]) -> bool {
    line.len() >= word.len()
        && line[..word.len()].eq_ignore_ascii_case(word)
        && matches!(line.get(word.len()), None | Some(b' ' | b'\r' | b'\n'))
}

/// The length of the literal a line announces at its end (`{123}\r\n` or `{123+}\r\n`).
fn literal_length(line: &[u8]) -> Option<u64> {
    let line = super::response::trim_line_end(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The item list of a `* n FETCH (...)` response.
fn fetch_items(line: &[u8]) -> Option<Vec<Token>> {
    let t = tokens(line)?;
    if t.len() == 4 && t[2].is_atom("FETCH") {
        return t[3].list().map(<[Token]>::to_vec);
    }
    None
}

fn message_info(items: &[Token], names: &mut Keywords) -> Option<MessageInfo> {
    let (mut uid, mut flags, mut keywords, mut date, mut size) = (None, Flags::default(), 0u64, None, None);
    for pair in items.chunks(2) {
        let [name, value] = pair else { return None };
        if name.is_atom("UID") {
            uid = u32::try_from(value.number()?).ok();
        } else if name.is_atom("RFC822.SIZE") {
            size = value.number();
        } else if name.is_atom("INTERNALDATE") {
            date = internal_date(value.bytes()?);
        } else if name.is_atom("FLAGS") {
            for flag in value.list()? {
                let flag = flag.atom()?;
                match std::str::from_utf8(flag).ok().and_then(Flags::from_name) {
                    Some(f) => flags = flags.union(f),
                    None if flag.first() != Some(&b'\\') && is_keyword(flag) => {
                        keywords |= names.bit(flag).unwrap_or(0);
                    }
                    None => {}
                }
            }
        }
    }
    Some(MessageInfo { uid: uid?, flags, keywords, internal_date: date?, size: size? })
}

/// An IMAP atom fit to be a keyword (RFC 3501 `flag-keyword`).
fn is_keyword(flag: &[u8]) -> bool {
    !flag.is_empty()
        && flag.len() <= MAX_KEYWORD_LEN
        && flag.iter().all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

/// `13-Sep-2020 12:26:40 +0000` (the day may be space-padded).
fn internal_date(value: &[u8]) -> Option<UnixTime> {
    let text = std::str::from_utf8(value).ok()?.trim_start();
    let parsed = chrono::DateTime::parse_from_str(text, "%d-%b-%Y %H:%M:%S %z").ok()?;
    Some(UnixTime(parsed.timestamp()))
}

/// `text` as an IMAP quoted string, or `None` when it cannot be one (CR, LF, NUL, or not ASCII).
fn quoted(text: &str) -> Option<String> {
    quoted_bytes(text.as_bytes()).and_then(|q| String::from_utf8(q).ok())
}

fn quoted_bytes(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'"');
    for &b in text {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0 | b'\r' | b'\n' | 0x80.. => return None,
            b => out.push(b),
        }
    }
    out.push(b'"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_length(b"* LIST () \"/\" {3+}\r\n"), Some(3));
        assert_eq!(literal_length(b"* OK {x}\r\n"), None);
        assert_eq!(literal_length(b"* OK fine\r\n"), None);
        assert_eq!(literal_length(b"* OK {99999999999999999}\r\n"), None);
    }

    #[test]
    fn message_infos() {
        let items = fetch_items(
            b"* 1 FETCH (UID 9 FLAGS (\\Seen \\Recent \\Flagged $Work bad\"kw) INTERNALDATE \" 3-Sep-2020 12:26:40 +0200\" RFC822.SIZE 120)\r\n",
        );
        assert_eq!(items, None, "a quote inside an atom is not IMAP");
        let items =
            fetch_items(b"* 1 FETCH (UID 9 FLAGS (\\Seen \\Recent \\Flagged $Work) INTERNALDATE \" 3-Sep-2020 12:26:40 +0200\" RFC822.SIZE 120)\r\n")
                .expect("items");
        let mut names = Keywords::default();
        let info = message_info(&items, &mut names).expect("info");
        assert_eq!(info.uid, 9);
        assert_eq!(info.flags, Flags(Flags::SEEN.0 | Flags::FLAGGED.0));
        assert_eq!(names.names(info.keywords), vec!["$Work".to_string()]);
        for n in 0..100 {
            names.bit(format!("k{n}").as_bytes());
        }
        assert_eq!(names.0.len(), 64, "distinct keywords per folder are bounded");
        assert_eq!(info.internal_date, UnixTime(1_599_128_800));
        assert_eq!(info.size, 120);
    }

    #[tokio::test]
    async fn capabilities_from_the_greeting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let mut client = Client {
            conn: BufReader::new(Stream::Plain(tcp)),
            limits: Limits { read_timeout: Duration::from_secs(1), max_literal: 10 },
            next_tag: 1,
            capabilities: Vec::new(),
        };
        client.note_capabilities(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.\r\n");
        assert!(client.has_capability("auth=plain"));
        client.note_capabilities(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n");
        assert!(client.has_capability("STARTTLS") && !client.has_capability("AUTH=PLAIN"));
        client.note_capabilities(b"* OK Ready\r\n");
        assert!(client.has_capability("STARTTLS"), "a greeting without the code changes nothing");
    }

    /// A server on loopback that greets, then answers every line it reads with `answer`.
    async fn hostile(answer: Vec<u8>) -> Client {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            tcp.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n").await.expect("greet");
            let mut buf = [0u8; 1024];
            while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {
                if tcp.write_all(&answer).await.is_err() {
                    break;
                }
            }
        });
        let tcp = TcpStream::connect(address).await.expect("connect");
        let limits = Limits { read_timeout: Duration::from_secs(5), max_literal: 1000 };
        Client::greet(Stream::Plain(tcp), limits).await.expect("greeting")
    }

    #[tokio::test]
    async fn a_literal_above_the_limit_ends_the_session() {
        let mut client = hostile(b"* 1 FETCH (UID 1 BODY[] {1001}\r\n".to_vec()).await;
        assert!(matches!(client.message(1).await, Err(ClientError::TooLarge(1000))));
    }

    #[tokio::test]
    async fn an_endless_line_ends_the_session() {
        let mut client = hostile(vec![b'x'; MAX_LINE + 10]).await;
        assert!(matches!(client.capability().await, Err(ClientError::Protocol(_))));
    }

    #[tokio::test]
    async fn bytes_smuggled_after_the_starttls_go_ahead_end_the_session() {
        let client = hostile(b"i1 OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n".to_vec()).await;
        let connector = super::super::target::tls_connector(None).expect("system roots");
        let name = ServerName::try_from("localhost").expect("name");
        assert!(matches!(client.starttls(&connector, name).await, Err(ClientError::Protocol(_))));
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let limits = Limits { read_timeout: Duration::from_millis(200), max_literal: 1000 };
        assert!(matches!(Client::greet(Stream::Plain(tcp), limits).await, Err(ClientError::Timeout(_))));
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c").as_deref(), Some("\"a\\\"b\\\\c\""));
        assert_eq!(quoted("line\r\nbreak"), None);
        assert_eq!(quoted("grün"), None);
    }
}
