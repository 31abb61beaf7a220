//! `postfach backup DIR` and `postfach restore DIR` (crate `postfach-backup`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use postfach_backup::{Place, UNSUPPORTED};
use postfach_server::config::Config;
use postfach_store::Store;

use crate::Command;

pub fn handles(command: &Command) -> bool {
    matches!(command, Command::Backup { .. } | Command::Restore { .. })
}

pub async fn run(command: Command, config: &Config) -> anyhow::Result<ExitCode> {
    let Some(place) = place(config) else {
        eprintln!("{UNSUPPORTED}");
        return Ok(ExitCode::FAILURE);
    };
    match command {
        Command::Backup { dir } => {
            let live = Store::open(&config.database).await.context("cannot open the database")?;
            let done = postfach_backup::backup(&live, &place, &dir).await;
            live.close().await;
            let m = done?.manifest;
            eprintln!(
                "backup finished in {}: {} message files ({} bytes), {} queued message files, {} other files{}",
                dir.display(),
                m.messages.count,
                m.messages.bytes,
                m.queue.count,
                m.files.len(),
                vanished(&m.vanished),
            );
        }
        Command::Restore { dir } => {
            let m = postfach_backup::restore(&dir, &place).await?.manifest;
            eprintln!(
                "restored into {}: {} message files, {} queued message files, {} other files; start the server now",
                place.data_dir.display(),
                m.messages.count,
                m.queue.count,
                m.files.len()
            );
        }
        _ => unreachable!("handles() said so"),
    }
    Ok(ExitCode::SUCCESS)
}

fn vanished(v: &postfach_backup::manifest::Vanished) -> String {
    if v.messages + v.queued == 0 {
        return String::new();
    }
    format!(
        "; left out because they went while the backup ran: {} expunged messages, {} delivered queued messages",
        v.messages, v.queued
    )
}

/// The database file and data_dir, or `None` when the data is in PostgreSQL or S3.
fn place(config: &Config) -> Option<Place> {
    if config.blobs != postfach_blob::Backend::Fs {
        return None;
    }
    let file = config.database.strip_prefix("sqlite://")?;
    let file = file.split('?').next().unwrap_or(file);
    Some(Place { data_dir: config.data_dir.clone(), database: PathBuf::from(file) })
}
