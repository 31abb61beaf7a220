//! `postfach import maildir PATH --into M` and `postfach import mbox FILE --into M
//! [--folder F]` (crate `postfach-import`): operator only, since they read local files.
//! Progress goes to stderr: a bar on a terminal, else a line every [`LINE_EVERY`] messages;
//! then a summary with every skipped message and why.
//!
//! `postfach import imap --from URL --login L --password-stdin --into M [--ca-file PEM]`:
//! every folder of another IMAP server; progress per folder ("n of m") on stderr, then a
//! line per folder. The operator may name any address, loopback and private ones included.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use postfach_admin::{Admin, Who};
use postfach_blob::{BlobStore, Namespace};
use postfach_import::imap::{FolderProgress, ImapBounds, ImapSource, SourceUrl};
use postfach_import::{Importer, Progress, folder_name};
use postfach_server::config::Config;
use postfach_store::Store;

use crate::ImportCommand;
use crate::commands::explain;

/// Without a terminal, one progress line per this many messages.
const LINE_EVERY: u64 = 1000;

pub async fn run(command: ImportCommand, config: &Config, store: &Store, admin: &Admin) -> anyhow::Result<ExitCode> {
    let address = match &command {
        ImportCommand::Maildir { mailbox, .. }
        | ImportCommand::Mbox { mailbox, .. }
        | ImportCommand::Imap { mailbox, .. } => mailbox.0.clone(),
    };
    let mailbox = admin.mailbox_named(&Who::Operator, &address).await.map_err(explain)?;
    let blobs = BlobStore::open(&config.blobs, &config.data_dir, Namespace::Mailboxes)
        .context("cannot open the message storage")?;
    blobs.check().await.context("cannot reach the message storage")?;
    let mut importer = Importer::new(store, &blobs, mailbox.id, config.limits.max_message_size);
    if let ImportCommand::Imap { from, login, password, ca_file, .. } = command {
        let url = SourceUrl::parse(&from).map_err(|why| anyhow::anyhow!("--from {from}: {why}"))?;
        let password = crate::commands::read_password(&password, false)?;
        let source = ImapSource { url, login, password, ca_file, allow_private: true };
        return import_imap(&mut importer, &source, &address.to_string()).await;
    }
    let mut shown = Shown::new();
    let mut progress = |p: Progress| shown.show(p);
    match command {
        ImportCommand::Maildir { path, .. } => {
            postfach_import::import_maildir(&mut importer, &path, &mut progress).await?;
        }
        ImportCommand::Imap { .. } => unreachable!("handled above"),
        ImportCommand::Mbox { file, folder, .. } => {
            let Some(ours) = folder_name(&folder, postfach_store::folders::SEPARATOR) else {
                anyhow::bail!("'{folder}' is not a folder name: a level between two / is empty");
            };
            postfach_import::import_mbox(&mut importer, &file, &ours, &mut progress).await?;
        }
    }
    shown.end();
    let summary = importer.finish();
    let mut err = std::io::stderr().lock();
    for skipped in &summary.skipped {
        let _ = writeln!(err, "skipped {}: {}", skipped.source, skipped.reason);
    }
    if !summary.created_folders.is_empty() {
        let _ = writeln!(err, "created folders: {}", summary.created_folders.join(", "));
    }
    let _ = writeln!(err, "imported {} messages into {}, skipped {}", summary.imported, address, summary.skipped.len());
    Ok(if summary.skipped.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Without a terminal, one progress line per folder per this many messages.
const IMAP_LINE_EVERY: u64 = 25;

async fn import_imap(importer: &mut Importer<'_>, source: &ImapSource, address: &str) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    let mut progress = |p: FolderProgress| {
        if p.done == 0 || p.done == p.total || p.done.is_multiple_of(IMAP_LINE_EVERY) {
            eprintln!("{}: {} of {}", p.folder, p.done, p.total);
        }
    };
    let result =
        postfach_import::imap::import_imap(importer, source, ImapBounds::default(), &mut reports, &mut progress).await;
    let mut err = std::io::stderr().lock();
    for report in &reports {
        match &report.not_copied {
            Some(why) => {
                let _ = writeln!(err, "{}: not copied: {why}", report.source);
            }
            None => {
                let _ = writeln!(
                    err,
                    "{} -> {}: {} copied, {} already here, {} skipped",
                    report.source, report.folder, report.copied, report.duplicates, report.skipped
                );
            }
        }
    }
    let summary = std::mem::take(&mut importer.summary_mut().skipped);
    for skipped in &summary {
        let _ = writeln!(err, "skipped {}: {}", skipped.source, skipped.reason);
    }
    let copied: u64 = reports.iter().map(|r| r.copied).sum();
    let _ = writeln!(err, "imported {copied} messages into {address}, skipped {}", summary.len());
    drop(err);
    result?;
    Ok(if summary.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The progress display on stderr.
#[derive(Debug)]
struct Shown {
    terminal: bool,
    last_drawn: Option<Instant>,
    last_line: u64,
    latest: Progress,
}

impl Shown {
    fn new() -> Self {
        Shown { terminal: std::io::stderr().is_terminal(), last_drawn: None, last_line: 0, latest: Progress::default() }
    }

    fn show(&mut self, p: Progress) {
        self.latest = p;
        let handled = p.imported + p.skipped;
        if self.terminal {
            if self.last_drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                self.draw();
            }
        } else if handled >= self.last_line + LINE_EVERY {
            self.last_line = handled;
            eprintln!("{handled} messages: {} imported, {} skipped", p.imported, p.skipped);
        }
    }

    fn draw(&mut self) {
        const WIDTH: u64 = 30;
        let p = self.latest;
        let filled = (p.done.min(p.total) * WIDTH).checked_div(p.total).unwrap_or(WIDTH);
        let percent = (p.done.min(p.total) * 100).checked_div(p.total).unwrap_or(100);
        let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { ' ' }).collect();
        eprint!("\r[{bar}] {percent:>3}%  {} imported, {} skipped", p.imported, p.skipped);
        self.last_drawn = Some(Instant::now());
    }

    fn end(&mut self) {
        if self.terminal && self.last_drawn.is_some() {
            self.draw();
            eprintln!();
        }
    }
}
