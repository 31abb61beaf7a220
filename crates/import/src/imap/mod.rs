//! `postfach import imap` and the panel's import job: every folder of a mailbox on another
//! IMAP server, copied with flags, keywords and internal dates through [`Importer::add`]
//! (the same path as Maildir and mbox, so the intake check and the quota apply).
//!
//! Folders: INBOX stays INBOX; where the old server marks folders with RFC 6154
//! special-use attributes (`\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`) those
//! decide, else the well-known names do ([`folder_name`]); levels are joined with our
//! separator, modified UTF-7 decoded. Virtual folders (`\All`, `\Flagged`) and folders
//! that cannot be opened are not copied.
//!
//! Resuming: after every message the store records the folder's UIDVALIDITY and the
//! highest UID done (`store::imports`), so a second run asks only for UIDs above it. When
//! a folder's UIDVALIDITY changed, its messages are read again from the start; a message
//! whose internal date, size and bytes equal one already in our folder is not stored
//! again (the same check protects a run that was killed between storing a message and
//! recording it).
//!
//! Why our own client and not imap-codec's: the import needs five commands and one kind
//! of literal, and the bounds (line length, literal size, per-read timeouts, counts)
//! have to sit in the reading loop itself; imap-codec decodes complete buffers and leaves
//! framing, literals and their limits to the caller, which is most of the work.

mod client;
mod response;
mod target;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use postfach_blob::BlobId;
use postfach_message::crlf_line_endings;
use postfach_store::StoreError;
use postfach_store::folders::{SEPARATOR, SpecialUse};
use postfach_store::imports::{ImportPosition, ImportSource};
use postfach_store::local::LocalError;
use postfach_types::Secret;

pub use target::{Security, SourceUrl, TargetError, refused_address, resolve};

use crate::folders::{folder_levels, special_folder};
use crate::{ImportError, Importer, SkipReason, folder_name};
use client::{Client, ClientError, Limits, ListedFolder, Stream};

/// The old server and the credentials for it. The password lives only here, in memory.
#[derive(Debug, Clone)]
pub struct ImapSource {
    pub url: SourceUrl,
    pub login: String,
    pub password: Secret<String>,
    /// Certificates to trust instead of the system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Whether loopback and private addresses may be connected to (the operator's CLI
    /// may; the panel only when `[import] allow_private_targets` says so).
    pub allow_private: bool,
}

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct ImapBounds {
    /// The longest the whole run may take.
    pub total_time: Duration,
    /// The most message bytes one run may download.
    pub total_bytes: u64,
    /// The longest wait for any one read or write.
    pub read_timeout: Duration,
}

impl Default for ImapBounds {
    fn default() -> Self {
        ImapBounds {
            total_time: Duration::from_secs(24 * 3600),
            total_bytes: 100 * 1024 * 1024 * 1024,
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// How far the run has come in one folder, told before its first message and after each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderProgress {
    /// Our folder's name.
    pub folder: String,
    pub done: u64,
    pub total: u64,
}

/// What happened to one source folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// The folder's name on the old server (decoded).
    pub source: String,
    /// Our folder (empty when it was not copied).
    pub folder: String,
    /// New messages on the old server in this run.
    pub total: u64,
    pub copied: u64,
    /// Already here (same date, size and bytes), not stored again.
    pub duplicates: u64,
    pub skipped: u64,
    /// Why the folder was not copied, if it was not.
    pub not_copied: Option<String>,
}

/// Copies every folder of `source` into the importer's mailbox (module documentation).
/// `progress` hears of every message. On an error the positions recorded so far stay,
/// so the next run resumes; the folder reports so far are in `reports`.
pub async fn import_imap(
    importer: &mut Importer<'_>,
    source: &ImapSource,
    bounds: ImapBounds,
    reports: &mut Vec<FolderReport>,
    progress: &mut (dyn FnMut(FolderProgress) + Send),
) -> Result<(), ImportError> {
    let started = Instant::now();
    let limits = Limits { read_timeout: bounds.read_timeout, max_literal: importer.max_message_size() };
    let mut client = open(source, limits).await?;
    let result = copy_folders(importer, &mut client, source, bounds, started, reports, progress).await;
    client.logout().await;
    result
}

async fn open(source: &ImapSource, limits: Limits) -> Result<Client, ImportError> {
    let refused = |why: String| ImportError::Source(why);
    let addresses = target::resolve(&source.url, source.allow_private, limits.read_timeout)
        .await
        .map_err(|e| refused(e.to_string()))?;
    let connector = target::tls_connector(source.ca_file.as_deref()).map_err(ImportError::Setup)?;
    let name = target::server_name(&source.url).map_err(refused)?;
    let tcp = target::connect(&addresses, limits.read_timeout).await.map_err(refused)?;
    let mut client = match source.url.security {
        Security::Tls => {
            let tls = tokio::time::timeout(limits.read_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| refused("the TLS handshake with the old server took too long".into()))?
                .map_err(|e| refused(format!("the TLS handshake with the old server failed: {e}")))?;
            Client::greet(Stream::Tls(Box::new(tls)), limits).await.map_err(source_error)?
        }
        Security::StartTls => {
            let mut plain = Client::greet(Stream::Plain(tcp), limits).await.map_err(source_error)?;
            plain.capability().await.map_err(source_error)?;
            if !plain.has_capability("STARTTLS") {
                return Err(refused(
                    "the old server does not offer STARTTLS on this port; use imaps:// (port 993) instead".into(),
                ));
            }
            plain.starttls(&connector, name).await.map_err(source_error)?
        }
    };
    if let Err(e) = client.login(&source.login, &source.password).await {
        return Err(match e {
            ClientError::Refused(text) => {
                refused(format!("the old server refused the login (check login and password): {text}"))
            }
            other => source_error(other),
        });
    }
    Ok(client)
}

fn source_error(e: ClientError) -> ImportError {
    ImportError::Source(e.to_string())
}

/// One source folder and what becomes of it.
struct Planned {
    listed: ListedFolder,
    source: String,
    ours: Result<String, String>,
}

async fn copy_folders(
    importer: &mut Importer<'_>,
    client: &mut Client,
    source: &ImapSource,
    bounds: ImapBounds,
    started: Instant,
    reports: &mut Vec<FolderReport>,
    progress: &mut (dyn FnMut(FolderProgress) + Send),
) -> Result<(), ImportError> {
    let listed = client.list().await.map_err(source_error)?;
    let key = ImportSource { host: &source.url.host, login: &source.login };
    let mut downloaded = 0u64;
    for planned in plan(listed) {
        let mut report = FolderReport { source: planned.source.clone(), ..FolderReport::default() };
        let ours = match planned.ours {
            Ok(ours) => ours,
            Err(why) => {
                report.not_copied = Some(why);
                reports.push(report);
                continue;
            }
        };
        report.folder = ours.clone();
        let examined = match client.examine(&planned.listed.name).await {
            Ok(examined) => examined,
            Err(ClientError::Refused(text)) => {
                report.not_copied = Some(format!("the old server would not open it: {text}"));
                reports.push(report);
                continue;
            }
            Err(e) => return Err(source_error(e)),
        };
        let folder = match importer.folder(&ours).await? {
            Ok(folder) => folder,
            Err(why) => {
                report.not_copied = Some(why);
                reports.push(report);
                continue;
            }
        };
        let position = importer.store.import_position(importer.mailbox, &key, &planned.source).await?;
        let first = match position {
            Some(p) if p.uidvalidity == examined.uidvalidity => p.last_uid.saturating_add(1),
            _ => 1,
        };
        let (infos, keywords) = if examined.exists == 0 {
            Default::default()
        } else {
            client.message_infos(first).await.map_err(source_error)?
        };
        report.total = infos.len() as u64;
        progress(FolderProgress { folder: ours.clone(), done: 0, total: report.total });
        let mut known = if infos.is_empty() { HashMap::new() } else { known_messages(importer, folder).await? };
        reports.push(report);
        let Some(report) = reports.last_mut() else { continue };
        for (done, info) in infos.iter().enumerate() {
            if started.elapsed() > bounds.total_time {
                return Err(ImportError::Limit(format!(
                    "the import stopped after {} minutes, its time limit; start it again to go on where it stopped",
                    bounds.total_time.as_secs() / 60
                )));
            }
            let where_ = format!("{} UID {}", planned.source, info.uid);
            if info.size > importer.max_message_size() {
                importer.skip(where_, SkipReason::TooLarge { size: info.size, max: importer.max_message_size() });
                report.skipped += 1;
            } else {
                downloaded += info.size;
                if downloaded > bounds.total_bytes {
                    return Err(ImportError::Limit(format!(
                        "the import stopped after {} MB, its size limit for one run; start it again to go on where it stopped",
                        bounds.total_bytes / 1_000_000
                    )));
                }
                match client.message(info.uid).await.map_err(source_error)? {
                    None => {
                        importer.skip(where_, SkipReason::Unreadable("it was deleted on the old server".into()));
                        report.skipped += 1;
                    }
                    Some(bytes) => {
                        let bytes = crlf_line_endings(&bytes).into_owned();
                        if is_known(importer, &mut known, info.internal_date.0, &bytes).await? {
                            report.duplicates += 1;
                        } else {
                            let before = importer.summary.imported;
                            let message = crate::Incoming {
                                bytes,
                                internal_date: info.internal_date,
                                flags: info.flags,
                                keywords: keywords.names(info.keywords),
                            };
                            match importer.add(&ours, where_, message).await {
                                Ok(()) => {}
                                Err(ImportError::Local(LocalError::Store(StoreError::OverQuota(_)))) => {
                                    return Err(ImportError::MailboxFull);
                                }
                                Err(e) => return Err(e),
                            }
                            if importer.summary.imported > before {
                                report.copied += 1;
                            } else {
                                report.skipped += 1;
                            }
                        }
                    }
                }
            }
            let position = ImportPosition { uidvalidity: examined.uidvalidity, last_uid: info.uid };
            importer.store.set_import_position(importer.mailbox, &key, &planned.source, position).await?;
            progress(FolderProgress { folder: ours.clone(), done: done as u64 + 1, total: report.total });
        }
    }
    Ok(())
}

/// Which of our folders each listed folder becomes, INBOX first.
fn plan(listed: Vec<ListedFolder>) -> Vec<Planned> {
    const SPECIAL: [(&str, SpecialUse); 5] = [
        ("\\sent", SpecialUse::Sent),
        ("\\drafts", SpecialUse::Drafts),
        ("\\trash", SpecialUse::Trash),
        ("\\junk", SpecialUse::Junk),
        ("\\archive", SpecialUse::Archive),
    ];
    let special_of = |f: &ListedFolder| SPECIAL.iter().find(|(a, _)| f.attributes.iter().any(|x| x == a)).map(|s| s.1);
    let marked = listed.iter().any(|f| special_of(f).is_some());
    // Special folders by their source name, for the folders below them.
    let specials: Vec<(String, char, SpecialUse)> = listed
        .iter()
        .filter_map(|f| Some((String::from_utf8(f.name.clone()).ok()?, f.delimiter.unwrap_or('\0'), special_of(f)?)))
        .collect();
    let mut planned: Vec<Planned> = listed
        .into_iter()
        .filter(|f| !f.attributes.iter().any(|a| a == "\\noselect" || a == "\\nonexistent"))
        .map(|listed| {
            let Ok(name) = String::from_utf8(listed.name.clone()) else {
                let source = String::from_utf8_lossy(&listed.name).into_owned();
                return Planned { listed, source, ours: Err("its name is not valid text".into()) };
            };
            let separator = listed.delimiter.unwrap_or('\0');
            let source = folder_levels(&name, separator)
                .map_or_else(|| name.clone(), |levels| levels.join(&SEPARATOR.to_string()));
            let ours = if listed.attributes.iter().any(|a| a == "\\all" || a == "\\flagged") {
                Err("a virtual folder showing messages of other folders".into())
            } else if marked {
                attribute_name(&name, separator, &specials)
            } else {
                folder_name(&name, separator).ok_or_else(|| "its name has an empty level".to_string())
            };
            Planned { listed, source, ours }
        })
        .collect();
    planned.sort_by(|a, b| {
        let inbox = |p: &Planned| p.ours.as_deref() != Ok("INBOX");
        (inbox(a), &a.source).cmp(&(inbox(b), &b.source))
    });
    planned
}

/// Our name for `name` when the old server marks special-use folders: the marked folder
/// (or the nearest marked one above it) becomes ours of that use, the rest is kept.
fn attribute_name(name: &str, separator: char, specials: &[(String, char, SpecialUse)]) -> Result<String, String> {
    let mut levels = folder_levels(name, separator).ok_or("its name has an empty level")?;
    let special = specials
        .iter()
        .filter(|(s, sep, _)| name == s || name.strip_prefix(s.as_str()).is_some_and(|rest| rest.starts_with(*sep)))
        .max_by_key(|(s, _, _)| s.len());
    if let Some((special_name, sep, special)) = special {
        let depth = folder_levels(special_name, *sep).map_or(1, |l| l.len());
        levels.drain(..depth.min(levels.len()));
        levels.insert(0, special_folder(*special).to_string());
    }
    Ok(levels.join(&SEPARATOR.to_string()))
}

/// Our folder's messages by (internal date, size), for the duplicate check.
async fn known_messages(
    importer: &Importer<'_>,
    folder: postfach_types::FolderId,
) -> Result<HashMap<(i64, u64), Vec<BlobId>>, ImportError> {
    let mut known: HashMap<(i64, u64), Vec<BlobId>> = HashMap::new();
    for message in importer.store.messages(importer.mailbox, folder).await? {
        known.entry((message.internal_date.0, message.size)).or_default().push(message.blob);
    }
    Ok(known)
}

/// Whether a message with this date and these bytes is in our folder already.
async fn is_known(
    importer: &Importer<'_>,
    known: &mut HashMap<(i64, u64), Vec<BlobId>>,
    date: i64,
    bytes: &[u8],
) -> Result<bool, ImportError> {
    let Some(blobs) = known.get(&(date, bytes.len() as u64)) else { return Ok(false) };
    for blob in blobs {
        match importer.blobs.get(blob).await {
            Ok(stored) if stored == bytes => return Ok(true),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading a stored message for the import's duplicate check failed"),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::client::ListedFolder;
    use super::plan;

    fn listed(name: &str, attributes: &[&str]) -> ListedFolder {
        ListedFolder {
            name: name.as_bytes().to_vec(),
            delimiter: Some('/'),
            attributes: attributes.iter().map(|a| a.to_lowercase()).collect(),
        }
    }

    fn names(folders: Vec<ListedFolder>) -> Vec<(String, Result<String, String>)> {
        plan(folders).into_iter().map(|p| (p.source, p.ours)).collect()
    }

    #[test]
    fn special_use_attributes_decide() {
        let got = names(vec![
            listed("Gesendete Objekte", &["\\Sent"]),
            listed("Gesendete Objekte/2024", &[]),
            listed("Sent", &[]),
            listed("Projects", &["\\Noselect"]),
            listed("Projects/K&APY-ln", &[]),
            listed("[Gmail]/All Mail", &["\\All"]),
            listed("inbox", &[]),
            listed("Spam", &["\\Junk"]),
        ]);
        let ok = |s: &str, o: &str| (s.to_string(), Ok(o.to_string()));
        assert_eq!(got[0], ok("INBOX", "INBOX"));
        assert!(got.contains(&ok("Gesendete Objekte", "Sent")));
        assert!(got.contains(&ok("Gesendete Objekte/2024", "Sent/2024")));
        assert!(got.contains(&ok("Sent", "Sent")), "the name alone decides nothing when attributes exist");
        assert!(got.contains(&ok("Projects/Köln", "Projects/Köln")));
        assert!(got.contains(&ok("Spam", "Junk")));
        assert!(got.iter().any(|(s, o)| s == "[Gmail]/All Mail" && o.is_err()));
        assert!(!got.iter().any(|(s, _)| s == "Projects"), "a \\Noselect folder holds no messages");
    }

    #[test]
    fn names_decide_without_attributes() {
        let got = names(vec![listed("Sent Items", &[]), listed("Papierkorb", &[]), listed("Work", &[])]);
        assert!(got.contains(&("Sent Items".into(), Ok("Sent".into()))));
        assert!(got.contains(&("Papierkorb".into(), Ok("Trash".into()))));
        assert!(got.contains(&("Work".into(), Ok("Work".into()))));
    }
}
