//! mbox files (mboxrd and mboxo): a message starts at a `From ` line at the start of the
//! file or after an empty line, and its date is that line's; body lines `>From `, `>>From `
//! … lose one `>` (mboxrd; for mboxo this is right for every line it escaped). The
//! `Status:` and `X-Status:` fields (R: seen; A: answered, F: flagged, T: draft, D:
//! deleted) and `X-Keywords:` become flags and keywords and are removed with the other
//! fields mail programs keep their mbox state in (`X-UID`, `X-IMAP`, `X-IMAPbase`).
//! The file is read line by line; a message is held in memory only up to the maximum
//! message size, and a larger one is skipped as it is read.

use std::path::Path;

use postfach_store::messages::Flags;
use postfach_types::UnixTime;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::{ImportError, Importer, Incoming, Progress, SkipReason, io};

/// The header fields that hold a mail program's mbox state, not the message's.
const STATE_FIELDS: &[&str] = &["status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase"];

/// Imports the mbox `file` into the folder `folder` (our name) of the importer's mailbox.
pub async fn import_mbox(
    importer: &mut Importer<'_>,
    file: &Path,
    folder: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImportError> {
    let opened = tokio::fs::File::open(file).await.map_err(io(file))?;
    let total = opened.metadata().await.map_err(io(file))?.len();
    let mut reader = BufReader::with_capacity(256 * 1024, opened);
    let max = importer.max_message_size();
    let mut line = Vec::new();
    let mut read = 0u64;
    let mut number = 0u64;
    let mut line_number = 0u64;
    let mut pending: Option<Pending> = None;
    let mut after_blank = true;
    loop {
        let Some(length) = read_line(&mut reader, &mut line, max).await.map_err(io(file))? else { break };
        read += length;
        line_number += 1;
        if after_blank && line.starts_with(b"From ") {
            if let Some(done) = pending.take() {
                finish(importer, folder, done).await?;
                progress(importer.progress(read, total));
            }
            number += 1;
            pending = Some(Pending::new(number, line_number, &line));
            after_blank = false;
            continue;
        }
        after_blank = line == b"\n" || line == b"\r\n";
        let Some(message) = pending.as_mut() else {
            if after_blank {
                continue;
            }
            return Err(ImportError::Refused(format!(
                "{} is not an mbox file: it does not start with a \"From \" line",
                file.display()
            )));
        };
        message.push(unescaped(&line), length, max);
    }
    if let Some(done) = pending.take() {
        finish(importer, folder, done).await?;
        progress(importer.progress(total, total));
    }
    Ok(())
}

/// One line into `line` (with its line ending), keeping at most `limit + 2` bytes of it;
/// returns the line's full length, `None` at the end of the file.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    limit: u64,
) -> std::io::Result<Option<u64>> {
    line.clear();
    let keep = usize::try_from(limit.saturating_add(2)).unwrap_or(usize::MAX);
    let mut length = 0u64;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((length > 0).then_some(length));
        }
        let (chunk, ended) = match memchr(available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = keep.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        let used = chunk.len();
        length += used as u64;
        reader.consume(used);
        if ended {
            return Ok(Some(length));
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// A body line with one `>` of an escaped `From ` removed.
fn unescaped(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") { &line[1..] } else { line }
}

/// A message being read.
#[derive(Debug)]
struct Pending {
    number: u64,
    line: u64,
    date: Option<UnixTime>,
    bytes: Vec<u8>,
    size: u64,
}

impl Pending {
    fn new(number: u64, line: u64, from_line: &[u8]) -> Self {
        Pending { number, line, date: from_line_date(from_line), bytes: Vec::new(), size: 0 }
    }

    fn push(&mut self, line: &[u8], length: u64, max: u64) {
        self.size += length;
        if self.size <= max.saturating_add(2) {
            self.bytes.extend_from_slice(line);
        } else {
            self.bytes = Vec::new();
        }
    }
}

async fn finish(importer: &mut Importer<'_>, folder: &str, mut message: Pending) -> Result<(), ImportError> {
    let source = format!("message {} (line {})", message.number, message.line);
    // The empty line before the next `From ` separates; it is not part of the message.
    if message.bytes.ends_with(b"\r\n\r\n") {
        message.bytes.truncate(message.bytes.len() - 2);
        message.size = message.size.saturating_sub(2);
    } else if message.bytes.ends_with(b"\n\n") {
        message.bytes.pop();
        message.size = message.size.saturating_sub(1);
    }
    let max = importer.max_message_size();
    if message.size > max {
        importer.skip(source, SkipReason::TooLarge { size: message.size, max });
        return Ok(());
    }
    let (bytes, flags, keywords) = take_state_fields(&message.bytes);
    let internal_date = message.date.unwrap_or_else(UnixTime::now);
    importer.add(folder, source, Incoming { bytes, internal_date, flags, keywords }).await
}

/// The message without its mbox state fields, and the flags and keywords they held.
fn take_state_fields(message: &[u8]) -> (Vec<u8>, Flags, Vec<String>) {
    let mut out = Vec::with_capacity(message.len());
    let mut flags = Flags::default();
    let mut keywords = Vec::new();
    let mut rest = message;
    let mut dropping = false;
    while !rest.is_empty() {
        let end = memchr(rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        if line == b"\n" || line == b"\r\n" {
            out.extend_from_slice(line);
            out.extend_from_slice(rest);
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let text = String::from_utf8_lossy(line);
            let (name, value) = text.split_once(':').unwrap_or((&text, ""));
            let name = name.trim().to_ascii_lowercase();
            dropping = STATE_FIELDS.contains(&name.as_str());
            let value = value.trim();
            match name.as_str() {
                "status" if value.contains('R') => flags = flags.union(Flags::SEEN),
                "x-status" => {
                    for (letter, flag) in
                        [('A', Flags::ANSWERED), ('F', Flags::FLAGGED), ('T', Flags::DRAFT), ('D', Flags::DELETED)]
                    {
                        if value.contains(letter) {
                            flags = flags.union(flag);
                        }
                    }
                }
                "x-keywords" => keywords.extend(value.split([',', ' ']).filter(|k| !k.is_empty()).map(str::to_string)),
                _ => {}
            }
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    (out, flags, keywords)
}

/// The date of a `From sender Www Mmm dd hh:mm:ss yyyy` line (asctime, taken as UTC).
fn from_line_date(line: &[u8]) -> Option<UnixTime> {
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_whitespace().collect();
    (2..words.len().saturating_sub(4)).find_map(|start| {
        let candidate = words[start..start + 5].join(" ");
        chrono::NaiveDateTime::parse_from_str(&candidate, "%a %b %e %H:%M:%S %Y")
            .ok()
            .map(|t| UnixTime(t.and_utc().timestamp()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_and_escapes() {
        assert_eq!(from_line_date(b"From alice@example.org Thu Nov  5 09:08:07 2026\n"), Some(UnixTime(1_793_869_687)));
        assert_eq!(
            from_line_date(b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011 +0200\n"),
            Some(UnixTime(1_310_126_914))
        );
        assert_eq!(from_line_date(b"From nobody\n"), None);
        assert_eq!(unescaped(b">From here\n"), b"From here\n");
        assert_eq!(unescaped(b">>From here\n"), b">From here\n");
        assert_eq!(unescaped(b">not from\n"), b">not from\n");
    }

    #[test]
    fn state_fields_become_flags() {
        let (bytes, flags, keywords) = take_state_fields(
            b"Subject: x\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1 Work\n continued\nTo: y\n\nStatus: body\n",
        );
        assert_eq!(bytes, b"Subject: x\nTo: y\n\nStatus: body\n");
        assert_eq!(flags, Flags::SEEN.union(Flags::ANSWERED).union(Flags::FLAGGED));
        assert_eq!(keywords, ["$Label1", "Work"]);
    }
}
