//! Maildir and Maildir++ (Dovecot's and Courier's layout): the folder at PATH is INBOX, its
//! `.Name` and `.Name.Sub` folders are the others. Flags come from the file name's `:2,`
//! info (D F P R S T, and Dovecot's keyword letters a–z named in `dovecot-keywords`); the
//! internal date is the file's modification time, as Dovecot keeps it, or the time at the
//! start of the name. Messages are imported in Dovecot's UID order where a
//! `dovecot-uidlist` gives it, else in the order of their names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use postfach_store::messages::Flags;
use postfach_types::UnixTime;

use crate::{ImportError, Importer, Incoming, Progress, SkipReason, folder_name, io};

/// Imports the Maildir at `root` into the importer's mailbox; `progress` hears of every
/// message.
pub async fn import_maildir(
    importer: &mut Importer<'_>,
    root: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImportError> {
    if !is_maildir(root) {
        return Err(ImportError::Refused(format!(
            "{} is not a Maildir: it has no cur/ and new/ folders (give the folder that holds them)",
            root.display()
        )));
    }
    let mut folders = vec![("INBOX".to_string(), root.to_path_buf())];
    let mut entries: Vec<_> = std::fs::read_dir(root).map_err(io(root))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(source) = name.strip_prefix('.') else { continue };
        if source.is_empty() || source == "." || !is_maildir(&entry.path()) {
            continue;
        }
        match folder_name(source, '.') {
            Some(ours) => folders.push((ours, entry.path())),
            None => importer.skip(name, SkipReason::Refused("the folder name has an empty level".into())),
        }
    }
    let listed: Vec<(String, PathBuf, Vec<PathBuf>)> =
        folders.into_iter().map(|(ours, dir)| (ours, dir.clone(), message_files(&dir))).collect();
    let total: u64 = listed.iter().map(|(_, _, files)| files.len() as u64).sum();
    let mut done = 0;
    for (ours, dir, files) in listed {
        let keywords = keywords(&dir);
        for file in files {
            let source = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            match read_message(&file, &keywords, importer.max_message_size()).await {
                Ok(message) => importer.add(&ours, source, message).await?,
                Err(reason) => importer.skip(source, reason),
            }
            done += 1;
            progress(importer.progress(done, total));
        }
    }
    Ok(())
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// The message files of a folder (`cur/` and `new/`), in import order.
fn message_files(dir: &Path) -> Vec<PathBuf> {
    let uids = uidlist(dir);
    let mut files: Vec<(u64, u64, String, PathBuf)> = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(dir.join(sub)).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let base = base_name(&name).to_string();
            let uid = uids.get(&base).copied().unwrap_or(u64::MAX);
            let time = name_time(&name).unwrap_or(i64::MAX);
            files.push((uid, u64::try_from(time).unwrap_or(u64::MAX), name, entry.path()));
        }
    }
    files.sort();
    files.into_iter().map(|(_, _, _, path)| path).collect()
}

/// The name without its info part (`:2,…`).
fn base_name(name: &str) -> &str {
    name.split([':', '!']).next().unwrap_or(name)
}

/// The seconds at the start of a Maildir name (`1732800000.M…`).
fn name_time(name: &str) -> Option<i64> {
    name.split('.').next()?.parse().ok()
}

/// Dovecot's UIDs by base name, from `dovecot-uidlist` (`UID [extensions] :base`).
fn uidlist(dir: &Path) -> HashMap<String, u64> {
    let Ok(text) = std::fs::read_to_string(dir.join("dovecot-uidlist")) else { return HashMap::new() };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let uid = line.split(' ').next()?.parse().ok()?;
            let base = line.split_once(" :").map(|(_, b)| b).or_else(|| line.split_once(':').map(|(_, b)| b))?;
            Some((base.to_string(), uid))
        })
        .collect()
}

/// Dovecot's keyword names by letter index (`dovecot-keywords`: `0 $Label1`).
fn keywords(dir: &Path) -> HashMap<u8, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("dovecot-keywords")) else { return HashMap::new() };
    text.lines()
        .filter_map(|line| {
            let (index, name) = line.split_once(' ')?;
            let index: u8 = index.parse().ok().filter(|i| *i < 26)?;
            Some((index, name.trim().to_string())).filter(|(_, n)| !n.is_empty())
        })
        .collect()
}

/// Flags and keywords from the info part of a name (`:2,FSa`).
fn flags_of(name: &str, keywords: &HashMap<u8, String>) -> (Flags, Vec<String>) {
    let info = name.rsplit_once(":2,").or_else(|| name.rsplit_once("!2,")).map_or("", |(_, info)| info);
    let mut flags = Flags::default();
    let mut names = Vec::new();
    for c in info.chars() {
        match c {
            'D' => flags = flags.union(Flags::DRAFT),
            'F' => flags = flags.union(Flags::FLAGGED),
            'P' => names.push("$Forwarded".to_string()),
            'R' => flags = flags.union(Flags::ANSWERED),
            'S' => flags = flags.union(Flags::SEEN),
            'T' => flags = flags.union(Flags::DELETED),
            'a'..='z' => {
                if let Some(keyword) = keywords.get(&(c as u8 - b'a')) {
                    names.push(keyword.clone());
                }
            }
            _ => {}
        }
    }
    (flags, names)
}

async fn read_message(file: &Path, keywords: &HashMap<u8, String>, max: u64) -> Result<Incoming, SkipReason> {
    use tokio::io::AsyncReadExt;
    let unreadable = |e: std::io::Error| SkipReason::Unreadable(e.to_string());
    let meta = tokio::fs::metadata(file).await.map_err(unreadable)?;
    if meta.len() > max {
        return Err(SkipReason::TooLarge { size: meta.len(), max });
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let internal_date = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .or_else(|| name_time(&name))
        .map_or_else(UnixTime::now, UnixTime);
    let (flags, keywords) = flags_of(&name, keywords);
    // Read no more than the limit allows, even if the file grew since it was measured.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    let opened = tokio::fs::File::open(file).await.map_err(unreadable)?;
    opened.take(max.saturating_add(1)).read_to_end(&mut bytes).await.map_err(unreadable)?;
    Ok(Incoming { bytes, internal_date, flags, keywords })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_keyword_letters() {
        let keywords = HashMap::from([(0, "$Label1".to_string()), (2, "Work".to_string())]);
        let (flags, names) = flags_of("1700000000.M1P2.host,S=10,W=12:2,FRSTac", &keywords);
        assert_eq!(flags, Flags::FLAGGED.union(Flags::ANSWERED).union(Flags::SEEN).union(Flags::DELETED));
        assert_eq!(names, ["$Label1", "Work"]);
        let (flags, names) = flags_of("1700000000.M1P2.host", &keywords);
        assert_eq!((flags, names.len()), (Flags::default(), 0));
        assert_eq!(flags_of("x!2,DP", &keywords), (Flags::DRAFT, vec!["$Forwarded".to_string()]));
        assert_eq!(base_name("1700000000.M1P2.host,S=10:2,S"), "1700000000.M1P2.host,S=10");
        assert_eq!(name_time("1700000000.M1P2.host"), Some(1_700_000_000));
    }
}
