//! The DNS commands: `postfach dns`, `postfach domain verify | check | dkim-rotate`, and
//! the DKIM key every new domain gets. They run the same `postfach-dns` calls as the panel
//! and the server's periodic checks, through the configured resolver.

use std::process::ExitCode;

use postfach_dns::checks::{self, Checker, Level, Ownership};
use postfach_dns::dkim::{self, Rotation};
use postfach_dns::records::{self, PublishedRecord};
use postfach_server::config::Config;
use postfach_store::dkim::DkimKey;
use postfach_store::{Scope, Store};
use postfach_types::DomainName;

use crate::commands::explain;
use crate::output::json;
use crate::views::{self, DomainReportView, RecordView};
use crate::{Command, DomainCommand};

const PLATFORM: Scope = Scope::Platform;
const OPERATOR: &postfach_admin::Who = &postfach_admin::Who::Operator;

/// Whether `command` is one of the commands run here.
pub fn handles(command: &Command) -> bool {
    matches!(
        command,
        Command::Dns { .. }
            | Command::Domain(
                DomainCommand::Verify { .. } | DomainCommand::Check { .. } | DomainCommand::DkimRotate { .. }
            )
    )
}

fn checker(config: &Config) -> anyhow::Result<Checker> {
    Ok(postfach_server::dns::checker(config)?)
}

pub async fn run(command: Command, config: &Config, store: &Store) -> anyhow::Result<ExitCode> {
    match command {
        Command::Dns { platform: true, json: as_json, .. } => {
            let platform = postfach_server::dns::platform(config);
            let list = match records::platform(&platform) {
                Ok(list) => list,
                Err(problem) => {
                    eprintln!("error: {}", problem.en);
                    return Ok(ExitCode::FAILURE);
                }
            };
            if as_json {
                json(&views::all::<_, RecordView>(&list))?;
            } else {
                if platform.outbound_ips.is_empty() {
                    eprintln!(
                        "note: [outbound] ips is empty in the configuration: list the addresses mail leaves from, so that the address, PTR and SPF records below are complete"
                    );
                }
                print_records(&list);
            }
            return platform_tlsa(config, store, &platform, as_json).await;
        }
        Command::Dns { domain: Some(domain), json: as_json, .. } => {
            let checker = checker(config)?;
            let list = checks::published_records(&checker, store, PLATFORM, &domain.0).await?;
            if let Some(problem) = checker.platform().hostname_problem() {
                eprintln!("note: only the records that do not name this server are shown. {}", problem.en);
            }
            if as_json { json(&views::all::<_, RecordView>(&list))? } else { print_records(&list) }
        }
        Command::Dns { domain: None, .. } => anyhow::bail!("name a domain, or give --platform"),
        Command::Domain(DomainCommand::Verify { domain }) => {
            let admin = crate::commands::admin(store, Some(checker(config)?)).await?;
            return verify(&admin, &domain.0).await;
        }
        Command::Domain(DomainCommand::Check { domain, json: as_json }) => {
            let admin = crate::commands::admin(store, Some(checker(config)?)).await?;
            let found = admin.domain_named(OPERATOR, &domain.0).await.map_err(explain)?;
            let done = admin.check_domain(OPERATOR, &found).await.map_err(explain)?;
            if as_json {
                json(&DomainReportView::from(&done.report))?;
            } else {
                if done.verified_now {
                    println!("{} is verified: its ownership record was found", domain.0);
                }
                if let Some(selector) = &done.activated_key {
                    println!("the new DKIM key {selector} is published and is now used for signing");
                }
                for v in &done.report.verdicts {
                    println!("{:<8} {:<10} {}", v.level.as_str().to_uppercase(), v.check.as_str(), v.message.en);
                }
            }
            if done.report.level() == Level::Error {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Domain(DomainCommand::DkimRotate { domain, force }) => rotate(store, &domain.0, force).await?,
        _ => unreachable!("only the commands `handles` accepts are passed here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The optional `_25._tcp.HOSTNAME` TLSA records for the hostname's certificate, and
/// the check of what is published (without `--json`: the JSON stays the list of records).
async fn platform_tlsa(
    config: &Config,
    store: &Store,
    platform: &postfach_dns::Platform,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    use postfach_server::dns::HostnameKeys;
    if as_json {
        return Ok(ExitCode::SUCCESS);
    }
    let (current, next) = match postfach_server::dns::hostname_keys(config, store).await.map_err(anyhow::Error::msg)? {
        HostnameKeys::SelfSigned => {
            println!(
                "; TLSA (DANE for mail to this server) is not recommended while the server uses its self-signed certificate: configure [acme] or [tls] files first"
            );
            return Ok(ExitCode::SUCCESS);
        }
        HostnameKeys::Keys { current, next } => (current, next),
    };
    print_records(&records::platform_tlsa(platform, &current, next.as_deref()));
    let finding = postfach_dns::tlsa::check(&checker(config)?, &current, next.as_deref()).await;
    println!("; check: {:<8} {}", finding.level.as_str().to_uppercase(), finding.message.en);
    Ok(if finding.level == Level::Error { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Gives a domain that was just added its DKIM key, and says where to find its records.
pub async fn created_domain(admin: &postfach_admin::Admin, domain: &DomainName) -> anyhow::Result<()> {
    let key = admin.ensure_dkim_key(&postfach_admin::Who::Operator, domain).await.map_err(crate::commands::explain)?;
    println!(
        "created the DKIM key {} for {domain}; show every record to publish with: postfach dns {domain}",
        key.selector
    );
    Ok(())
}

async fn verify(admin: &postfach_admin::Admin, domain: &DomainName) -> anyhow::Result<ExitCode> {
    match admin.verify_domain(OPERATOR, domain).await.map_err(explain)? {
        Ownership::AlreadyVerified => println!("{domain} is already verified"),
        Ownership::Found => println!("{domain} is verified: its ownership record was found; the domain is live"),
        Ownership::Gone { name, value } => {
            println!(
                "{domain} stays verified, but its ownership record is no longer published: no TXT record \"{value}\" at {name}"
            );
            println!("publish it again at the domain's DNS provider:");
            println!("  {name}. 3600 IN TXT \"{value}\"");
            return Ok(ExitCode::FAILURE);
        }
        Ownership::Missing { name, value } => {
            println!("{domain} is not verified yet: no TXT record \"{value}\" at {name}");
            println!("publish it at the domain's DNS provider, then run this again:");
            println!("  {name}. 3600 IN TXT \"{value}\"");
            return Ok(ExitCode::FAILURE);
        }
        Ownership::Unanswered(_) => {
            println!(
                "the ownership record of {domain} could not be looked up because DNS did not answer; try again in a moment"
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(store: &Store, domain: &DomainName, force: bool) -> anyhow::Result<()> {
    let show = |key: &DkimKey| {
        println!(
            "  {}. 3600 IN TXT {}",
            dkim::record_name(&key.selector, domain),
            postfach_dns::split_txt(&dkim::record_value(&key.public_key))
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
    };
    match dkim::rotate(store, PLATFORM, domain, force).await? {
        Rotation::Pending(key) => {
            println!("created the DKIM key {} for {domain}; publish this record:", key.selector);
            show(&key);
            println!(
                "the current key stays in use until the DNS check finds the new record (postfach domain check {domain}), or until: postfach domain dkim-rotate {domain} --force"
            );
        }
        Rotation::AlreadyPending(key) => {
            println!("the DKIM key {} of {domain} is already waiting for its record; publish it:", key.selector);
            show(&key);
            println!("or use it now with: postfach domain dkim-rotate {domain} --force");
        }
        Rotation::Activated(key) => {
            println!("the DKIM key {} now signs the mail of {domain}; publish its record:", key.selector);
            show(&key);
        }
    }
    Ok(())
}

/// Zone-file lines with a comment on what each record is for.
fn print_records(list: &[PublishedRecord]) {
    for record in list {
        let optional = if record.optional { " (optional)" } else { "" };
        println!("; {}{optional}", record.description.en);
        println!("{}", record.zone_line());
    }
}
