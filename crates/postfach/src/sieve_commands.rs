//! `postfach mailbox sieve …`: a mailbox's Sieve scripts, over `postfach_admin::sieve`.

use std::io::Read;

use anyhow::Context;
use postfach_admin::{Admin, Who};

use crate::SieveCommand;
use crate::commands::explain;
use crate::output::{json, table, yes_no};

/// The CLI's caller: the operator.
const OPERATOR: &Who = &Who::Operator;

pub async fn run(cmd: SieveCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        SieveCommand::List { mailbox, json: as_json } => {
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            let scripts = admin.list_scripts(OPERATOR, m.id).await.map_err(explain)?;
            if as_json {
                let list: Vec<_> = scripts
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "active": s.active, "size": s.size, "updated_at": s.updated_at.rfc3339(),
                        })
                    })
                    .collect();
                json(&list)?;
            } else {
                let rows: Vec<_> = scripts
                    .iter()
                    .map(|s| {
                        vec![s.name.clone(), yes_no(s.active).to_string(), s.size.to_string(), s.updated_at.rfc3339()]
                    })
                    .collect();
                table(&["NAME", "ACTIVE", "BYTES", "CHANGED"], &rows);
            }
        }
        SieveCommand::Put { mailbox, name, file } => {
            let text = read_script(&file)?;
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            admin.put_script(OPERATOR, m.id, &name, &text).await.map_err(explain)?;
            println!("stored filter script {name} of {}", mailbox.0);
        }
        SieveCommand::Get { mailbox, name } => {
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            let script = admin.script(OPERATOR, m.id, &name).await.map_err(explain)?;
            print!("{}", script.text);
        }
        SieveCommand::Activate { mailbox, name, none: _ } => {
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            admin.activate_script(OPERATOR, m.id, name.as_deref()).await.map_err(explain)?;
            match name {
                Some(name) => println!("filter script {name} now filters the mail of {}", mailbox.0),
                None => println!("no filter script filters the mail of {} now", mailbox.0),
            }
        }
        SieveCommand::Remove { mailbox, name } => {
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            admin.delete_script(OPERATOR, m.id, &name).await.map_err(explain)?;
            println!("removed filter script {name} of {}", mailbox.0);
        }
    }
    Ok(())
}

/// The script's text from a file or, for `-`, stdin; bounded so that a wrong file is not
/// read whole (the admin layer refuses anything above `[sieve] max_script_bytes`).
fn read_script(file: &std::path::Path) -> anyhow::Result<String> {
    const MAX_READ: u64 = 16 * 1024 * 1024;
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().take(MAX_READ).read_to_end(&mut bytes).context("cannot read the script from stdin")?;
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        f.take(MAX_READ).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", file.display()))?;
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("the script is not UTF-8 text; save it as UTF-8"))
}
