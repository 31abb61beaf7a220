//! Runs one parsed command through `postfach-admin`, the same operations the panel and the
//! API call. The CLI acts as the operator ([`Who::Operator`]): its scope is the whole
//! platform.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, bail};
use postfach_admin::{Admin, AdminError, LoginQuery, Unavailable, Who, input};
use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_policy::{PasswordVerdict, check_password, user_inputs};
use postfach_server::config::Config;
use postfach_store::Store;
use postfach_store::mailboxes::{MailboxSettings, SettingsChange};
use postfach_types::{Role, Secret, format_size};
use postfach_web::types::{
    self, AliasView, AppPasswordView, CreatedAppPasswordView, CustomerView, DomainView, LoginView, MailboxView,
};

use crate::output::{json, on_off, table, yes_no};
use crate::{
    AliasCommand, AppPasswordCommand, Cli, Command, CustomerCommand, DomainAliasCommand, DomainCommand, MailboxCommand,
    PasswordSource,
};

/// The CLI's caller: the operator.
const OPERATOR: &Who = &Who::Operator;

/// The admin layer over `store`; `dns`: the configured DNS checker, for the commands that
/// look records up.
pub async fn admin(store: &Store, dns: Option<postfach_dns::checks::Checker>) -> anyhow::Result<Admin> {
    let auth = Authenticator::new(store.clone(), AuthSettings::default(), PasswordHasher::new(1)).await?;
    Ok(Admin::new(store.clone(), Arc::new(auth), dns))
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        if let Command::Serve { demo } = cli.command {
            postfach_server::logging::init(&config.log, &config.cluster.node);
            postfach_server::run(&config, demo).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let mut quiet = config.log.clone();
        quiet.level = "warn".into();
        postfach_server::logging::init(&quiet, &config.cluster.node);
        if let Command::PasswordCheck { password, address: None, json } = &cli.command {
            return password_check(&read_password(password, false)?, &[], *json);
        }
        if crate::backup_commands::handles(&cli.command) {
            return crate::backup_commands::run(cli.command, &config).await;
        }
        let store = Store::open(&config.database).await.context("cannot open the database")?;
        let result = match cli.command {
            command if crate::dns_commands::handles(&command) => {
                crate::dns_commands::run(command, &config, &store).await
            }
            Command::Queue(command) => crate::queue_commands::run(command, &config, &admin(&store, None).await?).await,
            Command::Import(command) => {
                crate::import_commands::run(command, &config, &store, &admin(&store, None).await?).await
            }
            command => dispatch(command, &admin(&store, None).await?.with_sieve_limits(config.sieve.limits())).await,
        };
        store.close().await;
        result
    })
}

async fn dispatch(command: Command, admin: &Admin) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { .. } => unreachable!("handled by run"),
        Command::Dns { .. } => unreachable!("handled by dns_commands"),
        Command::Queue(_) => unreachable!("handled by queue_commands"),
        Command::Backup { .. } | Command::Restore { .. } => unreachable!("handled by backup_commands"),
        Command::Import(_) => unreachable!("handled by import_commands"),
        Command::Customer(cmd) => customer(cmd, admin).await?,
        Command::Domain(cmd) => domain(cmd, admin).await?,
        Command::DomainAlias(cmd) => domain_alias(cmd, admin).await?,
        Command::Mailbox(cmd) => mailbox(cmd, admin).await?,
        Command::Alias(cmd) => alias(cmd, admin).await?,
        Command::Logins { address, limit, unencrypted, failed, json: as_json } => {
            let query = LoginQuery { only_unencrypted: unencrypted, only_failed: failed, limit: limit.into() };
            let entries = match address {
                Some(a) => {
                    let mailbox = admin.mailbox_named(OPERATOR, &a.0).await.map_err(explain)?;
                    admin.mailbox_logins(OPERATOR, mailbox.id, query).await.map_err(explain)?
                }
                None => admin.logins(OPERATOR, query).await.map_err(explain)?,
            };
            if as_json {
                json(&types::all::<_, LoginView>(entries))?;
            } else {
                let rows = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.at.rfc3339(),
                            e.service.to_string(),
                            e.login.clone(),
                            e.remote_ip.to_string(),
                            e.tls.as_ref().map_or("UNENCRYPTED".into(), |t| format!("{} {}", t.version, t.cipher)),
                            e.mechanism.to_string(),
                            e.result.to_string(),
                            credential(e),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["TIME", "SERVICE", "LOGIN", "IP", "ENCRYPTION", "MECHANISM", "RESULT", "CREDENTIAL"], &rows);
            }
        }
        Command::Certificates { json: as_json } => {
            let certificates = admin.certificates(OPERATOR).await.map_err(explain)?;
            if as_json {
                json(&certificates.iter().map(crate::views::CertificateView::from).collect::<Vec<_>>())?;
            } else {
                let now = postfach_types::UnixTime::now();
                let rows = certificates
                    .iter()
                    .map(|c| {
                        let names = c.names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" ");
                        let (expires, issuer) =
                            c.issued.as_ref().map_or(("not issued".to_string(), "-".to_string()), |i| {
                                (i.not_after.rfc3339(), i.issuer.clone())
                            });
                        let problem = match &c.last_error {
                            Some(e) if c.next_attempt.0 > now.0 => {
                                format!("{e} (next try {})", c.next_attempt.rfc3339())
                            }
                            Some(e) => e.clone(),
                            None => "-".to_string(),
                        };
                        vec![c.subject.to_string(), names, expires, issuer, problem]
                    })
                    .collect::<Vec<_>>();
                table(&["SUBJECT", "NAMES", "EXPIRES", "ISSUER", "LAST ERROR"], &rows);
            }
        }
        Command::PasswordCheck { password, address, json } => {
            let password = read_password(&password, false)?;
            let inputs = match &address {
                Some(a) => {
                    let owner = admin.domain_named(OPERATOR, a.0.domain()).await.map_err(explain)?.customer;
                    user_inputs(Some(&a.0), Some(owner.as_str()))
                }
                None => Vec::new(),
            };
            return password_check(&password, &inputs, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn customer(cmd: CustomerCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        CustomerCommand::Add { name, admin: is_admin, password } => {
            let role = if is_admin { Role::Admin } else { Role::Customer };
            let password = read_password(&password, true)?;
            let customer = admin.create_customer(OPERATOR, &name.0, &password, role).await.map_err(explain)?;
            println!("created {} {}", customer.role, customer.name);
        }
        CustomerCommand::List { json: true } => {
            json(&types::all::<_, CustomerView>(admin.customers(OPERATOR).await.map_err(explain)?))?
        }
        CustomerCommand::List { json: false } => {
            let rows = admin
                .customers(OPERATOR)
                .await
                .map_err(explain)?
                .into_iter()
                .map(|c| {
                    vec![
                        c.name.to_string(),
                        c.role.to_string(),
                        yes_no(c.disabled),
                        c.quota_bytes.map_or("none".into(), format_size),
                        c.created_at.rfc3339(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["NAME", "ROLE", "DISABLED", "QUOTA", "CREATED"], &rows);
        }
        CustomerCommand::Set { name, quota, contact, spam_reject, spam_junk, require_tls } => {
            let quota = quota.as_deref().map(input::size).transpose().map_err(explain)?;
            let contact = contact.as_deref().map(input::contact).transpose().map_err(explain)?;
            let spam_reject = spam_reject.as_deref().map(input::spam_threshold).transpose().map_err(explain)?;
            let spam_junk = spam_junk.as_deref().map(input::spam_threshold).transpose().map_err(explain)?;
            let customer = admin.customer_named(OPERATOR, &name.0).await.map_err(explain)?;
            if spam_reject.is_some() || spam_junk.is_some() {
                let spam =
                    admin.set_customer_spam(OPERATOR, customer.id, spam_reject, spam_junk).await.map_err(explain)?;
                println!("{}: spam refused from {}, to Junk from {}", customer.name, spam.reject, spam.junk);
            }
            if let Some(on) = require_tls {
                admin.set_customer_outbound_tls(OPERATOR, customer.id, on).await.map_err(explain)?;
                println!("{}: always require TLS to other servers {}", customer.name, on_off(on));
            }
            if let Some(contact) = contact {
                let contact =
                    admin.set_customer_contact(OPERATOR, customer.id, contact.as_ref()).await.map_err(explain)?;
                match contact {
                    Some(c) => println!("{}: warning mails are copied to {c}", customer.name),
                    None => println!("{}: no contact address", customer.name),
                }
            }
            if let Some(quota) = quota {
                let customer = admin.set_customer_quota(OPERATOR, customer.id, quota).await.map_err(explain)?;
                let (used, _) = admin.customer_space(OPERATOR, customer.id).await.map_err(explain)?;
                match customer.quota_bytes {
                    Some(q) => println!("{}: quota {} ({} in use)", customer.name, format_size(q), format_size(used)),
                    None => println!("{}: no quota ({} in use)", customer.name, format_size(used)),
                }
            }
        }
        CustomerCommand::Remove { name } => {
            admin.remove_customer(OPERATOR, &name.0).await.map_err(explain)?;
            println!("removed customer {}", name.0);
        }
        CustomerCommand::Disable { name } => {
            set_customer(admin, &name.0, Some(true), None).await.map_err(explain)?;
            println!("disabled customer {} and all its mailboxes", name.0);
        }
        CustomerCommand::Enable { name } => {
            set_customer(admin, &name.0, Some(false), None).await.map_err(explain)?;
            println!("enabled customer {}", name.0);
        }
        CustomerCommand::Password { name, password } => {
            let password = read_password(&password, true)?;
            set_customer(admin, &name.0, None, Some(password)).await.map_err(explain)?;
            println!("changed the password of {}; its panel sessions ended and its API tokens were revoked", name.0);
        }
    }
    Ok(())
}

/// A mailbox's use against its limits: `1.2 MiB of 2 GiB (0 %), 40 of 1000 messages`.
fn usage(m: &postfach_store::mailboxes::Mailbox) -> String {
    let mut text = format_size(m.used_bytes);
    if let Some(q) = m.quota.bytes {
        let percent = u128::from(m.used_bytes) * 100 / u128::from(q.max(1));
        text.push_str(&format!(" of {} ({percent} %)", format_size(q)));
    }
    match m.quota.messages {
        Some(q) => text.push_str(&format!(", {} of {q} messages", m.used_messages)),
        None => text.push_str(&format!(", {} messages", m.used_messages)),
    }
    text
}

async fn set_customer(
    admin: &Admin,
    name: &postfach_types::CustomerName,
    disabled: Option<bool>,
    password: Option<Secret<String>>,
) -> Result<(), AdminError> {
    let customer = admin.customer_named(OPERATOR, name).await?;
    admin.update_customer(OPERATOR, customer.id, postfach_admin::CustomerChange { disabled, password }).await?;
    Ok(())
}

async fn domain(cmd: DomainCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        DomainCommand::Add { domain, customer, verified } => {
            let d = admin.add_domain(OPERATOR, &domain.0, Some(&customer.0), verified).await.map_err(explain)?;
            println!("added {} for {}", d.name, d.customer);
            crate::dns_commands::created_domain(admin, &d.name).await?;
            if !d.verified {
                let (name, value) = d.ownership_record();
                println!("it stays inactive until its ownership is verified: publish TXT \"{value}\" at {name}");
            }
        }
        DomainCommand::List { json: true } => {
            json(&admin.domains(OPERATOR).await.map_err(explain)?.iter().map(DomainView::from).collect::<Vec<_>>())?
        }
        DomainCommand::List { json: false } => {
            let rows = admin
                .domains(OPERATOR)
                .await
                .map_err(explain)?
                .into_iter()
                .map(|d| {
                    vec![
                        d.name.to_string(),
                        d.name.to_unicode(),
                        d.customer.to_string(),
                        d.alias_of.as_ref().map_or("domain".into(), |t| format!("alias of {t}")),
                        yes_no(d.verified),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["DOMAIN", "UNICODE", "CUSTOMER", "KIND", "VERIFIED"], &rows);
        }
        DomainCommand::Verify { .. } | DomainCommand::Check { .. } | DomainCommand::DkimRotate { .. } => {
            unreachable!("handled by dns_commands")
        }
        DomainCommand::Set { domain, certificates, mta_sts } => {
            let mut d = admin.domain_named(OPERATOR, &domain.0).await.map_err(explain)?;
            let mta_sts = mta_sts.as_deref().map(postfach_admin::input::mta_sts_mode).transpose().map_err(explain)?;
            if let Some(certificates) = certificates {
                d = admin.set_domain_certificates(OPERATOR, d.id, certificates).await.map_err(explain)?;
                println!("certificates for {}: {}", d.name, on_off(d.certificates));
                if d.certificates && !d.verified {
                    println!("they are ordered once the domain's ownership is verified");
                }
            }
            if let Some(mode) = mta_sts {
                d = admin.set_domain_mta_sts(OPERATOR, d.id, mode).await.map_err(explain)?;
                println!("MTA-STS for {}: {}", d.name, d.mta_sts);
                if d.mta_sts != postfach_store::domains::MtaStsMode::Off {
                    println!("publish the _mta-sts and mta-sts records shown by: postfach dns {}", d.name);
                }
            }
        }
        DomainCommand::Remove { domain, cascade } => {
            let d = admin.domain_named(OPERATOR, &domain.0).await.map_err(explain)?;
            let removed = admin.remove_domain(OPERATOR, d.id, cascade).await.map_err(explain)?;
            println!(
                "removed {} with {} mailbox(es), {} alias(es) and {} alias domain(s)",
                domain.0, removed.mailboxes, removed.aliases, removed.alias_domains
            );
        }
    }
    Ok(())
}

async fn domain_alias(cmd: DomainAliasCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        DomainAliasCommand::Add { alias_domain, target, verified } => {
            let d = admin.add_domain_alias(OPERATOR, &alias_domain.0, &target.0, verified).await.map_err(explain)?;
            println!("every address at {} now also works at {}", target.0, d.name);
            crate::dns_commands::created_domain(admin, &d.name).await?;
            if !d.verified {
                let (name, value) = d.ownership_record();
                println!(
                    "{} stays inactive until its ownership is verified: publish TXT \"{value}\" at {name}",
                    d.name
                );
            }
        }
        DomainAliasCommand::Remove { alias_domain } => {
            admin.remove_alias_domain(OPERATOR, &alias_domain.0).await.map_err(explain)?;
            println!("removed alias domain {}", alias_domain.0);
        }
    }
    Ok(())
}

async fn mailbox(cmd: MailboxCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        MailboxCommand::Add { address, password, generate, settings } => {
            // Fail on a missing domain before asking for a password.
            admin.domain_named(OPERATOR, address.0.domain()).await.map_err(explain)?;
            let password = new_password(&password, generate)?;
            let defaults = MailboxSettings::default();
            let settings = MailboxSettings {
                access: settings.access.unwrap_or(defaults.access),
                submission: settings.submission.unwrap_or(defaults.submission),
                tls_required: settings.tls_required.unwrap_or(defaults.tls_required),
            };
            let m = admin.create_mailbox(OPERATOR, &address.0, &password, settings).await.map_err(explain)?;
            println!(
                "created mailbox {} (access {}, submission {}, TLS only {})",
                m.address,
                m.settings.access,
                on_off(m.settings.submission),
                on_off(m.settings.tls_required)
            );
            if generate {
                print_generated(&password);
            }
        }
        MailboxCommand::Set {
            address,
            settings,
            quota,
            quota_messages,
            language,
            warn,
            app_passwords_only,
            require_tls,
        } => {
            let change = SettingsChange {
                access: settings.access,
                submission: settings.submission,
                tls_required: settings.tls_required,
            };
            let limits_given = quota.is_some() || quota_messages.is_some();
            if change == SettingsChange::default()
                && !limits_given
                && language.is_none()
                && warn.is_empty()
                && app_passwords_only.is_none()
                && require_tls.is_none()
            {
                bail!(
                    "nothing to change: give --access, --submission, --tls-required, --quota, --quota-messages, --language, --warn, --app-passwords-only or --require-tls"
                );
            }
            let m = admin.mailbox_named(OPERATOR, &address.0).await.map_err(explain)?;
            // Everything is parsed before anything changes.
            let limits = input::mailbox_quota(m.quota, quota.as_deref(), quota_messages.as_deref()).map_err(explain)?;
            let language = language.as_deref().map(input::language).transpose().map_err(explain)?;
            let switches =
                warn.iter().map(|w| input::warning_switch(w)).collect::<Result<Vec<_>, _>>().map_err(explain)?;
            if limits_given {
                admin.set_mailbox_quota(OPERATOR, m.id, limits).await.map_err(explain)?;
            }
            if let Some(language) = language {
                admin.set_mailbox_language(OPERATOR, m.id, language).await.map_err(explain)?;
            }
            for (kind, on) in switches {
                admin.set_mailbox_warning(OPERATOR, m.id, kind, on).await.map_err(explain)?;
            }
            if let Some(on) = app_passwords_only {
                admin.set_app_passwords_only(OPERATOR, m.id, on).await.map_err(explain)?;
            }
            if let Some(on) = require_tls {
                admin.set_mailbox_outbound_tls(OPERATOR, m.id, on).await.map_err(explain)?;
            }
            let m = if change == SettingsChange::default() {
                admin.mailbox(OPERATOR, m.id).await.map_err(explain)?
            } else {
                admin.update_mailbox(OPERATOR, m.id, change).await.map_err(explain)?
            };
            let off: Vec<&str> = admin
                .mailbox_warnings(OPERATOR, m.id)
                .await
                .map_err(explain)?
                .iter()
                .filter(|w| !w.on)
                .map(|w| w.kind.as_str())
                .collect();
            println!(
                "{}: access {}, submission {}, TLS only {}, {}, language {}, app passwords only {}, \
                 always require TLS to other servers {}, warnings off: {}",
                m.address,
                m.settings.access,
                on_off(m.settings.submission),
                on_off(m.settings.tls_required),
                usage(&m),
                m.language,
                on_off(m.app_passwords_only),
                on_off(m.outbound_tls_required),
                if off.is_empty() { "none".to_string() } else { off.join(", ") }
            );
        }
        MailboxCommand::Password { address, password, generate } => {
            let m = admin.mailbox_named(OPERATOR, &address.0).await.map_err(explain)?;
            let password = new_password(&password, generate)?;
            let shown = generate.then(|| Secret::new(password.expose().to_string()));
            let connection = postfach_auth::Connection { remote_ip: std::net::Ipv6Addr::LOCALHOST.into(), tls: None };
            // The operator needs no current password; the connection is not used then.
            let change = postfach_admin::MailboxPassword { new: password, current: None, session: None, connection };
            admin.set_mailbox_password(OPERATOR, m.id, change).await.map_err(explain)?;
            println!("changed the password of {}", address.0);
            if let Some(shown) = shown {
                print_generated(&shown);
            }
        }
        MailboxCommand::AppPassword(cmd) => app_password(cmd, admin).await?,
        MailboxCommand::Sieve(cmd) => crate::sieve_commands::run(cmd, admin).await?,
        MailboxCommand::List { domain, json: as_json } => {
            let mailboxes = admin.mailboxes(OPERATOR, domain.as_ref().map(|d| &d.0)).await.map_err(explain)?;
            if as_json {
                json(&types::all::<_, MailboxView>(mailboxes))?;
            } else {
                let rows = mailboxes
                    .iter()
                    .map(|m| {
                        vec![
                            m.address.to_string(),
                            m.settings.access.to_string(),
                            on_off(m.settings.submission),
                            on_off(m.settings.tls_required),
                            yes_no(m.password_exposed),
                            usage(m),
                            m.created_at.rfc3339(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["ADDRESS", "ACCESS", "SUBMISSION", "TLS-ONLY", "PASSWORD-EXPOSED", "USAGE", "CREATED"], &rows);
            }
        }
        MailboxCommand::Remove { address } => {
            let m = admin.mailbox_named(OPERATOR, &address.0).await.map_err(explain)?;
            let aliases = admin.remove_mailbox(OPERATOR, m.id).await.map_err(explain)?;
            println!("removed mailbox {}", address.0);
            for alias in aliases {
                println!("removed its alias {alias}");
            }
        }
    }
    Ok(())
}

async fn alias(cmd: AliasCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        AliasCommand::Add { address, mailbox } => {
            let a = admin.add_alias(OPERATOR, &address.0, &mailbox.0).await.map_err(explain)?;
            println!("{} now delivers to {}", a.address, a.mailbox);
        }
        AliasCommand::Remove { address } => {
            admin.remove_alias_named(OPERATOR, &address.0).await.map_err(explain)?;
            println!("removed alias {}", address.0);
        }
        AliasCommand::List { domain, json: as_json } => {
            let aliases = admin.aliases(OPERATOR, domain.as_ref().map(|d| &d.0)).await.map_err(explain)?;
            if as_json {
                json(&types::all::<_, AliasView>(aliases))?;
            } else {
                let rows =
                    aliases.iter().map(|a| vec![a.address.to_string(), a.mailbox.to_string()]).collect::<Vec<_>>();
                table(&["ALIAS", "MAILBOX"], &rows);
            }
        }
    }
    Ok(())
}

fn password_check(password: &Secret<String>, inputs: &[String], as_json: bool) -> anyhow::Result<ExitCode> {
    let verdict = check_password(password.expose(), &inputs.iter().map(String::as_str).collect::<Vec<_>>());
    if as_json {
        json(&verdict)?;
    } else {
        println!("strength: {} of 4", verdict.score);
        print_verdict(&verdict);
        if verdict.accepted {
            println!("accepted");
        }
    }
    Ok(if verdict.accepted { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_verdict(verdict: &PasswordVerdict) {
    if let Some(reason) = &verdict.reason {
        println!("refused: {reason}");
    }
    for suggestion in &verdict.suggestions {
        println!("tip: {}", suggestion.text);
    }
}

/// A refusal as the operator reads it: the rule's English text; a refused password with
/// the rule's tips; a failure underneath with its cause.
pub fn explain(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::WeakPassword { verdict, .. } => {
            let mut text = verdict.reason.clone().unwrap_or_else(|| "the password is too weak".into());
            for suggestion in &verdict.suggestions {
                text.push_str(&format!("\n  tip: {}", suggestion.text));
            }
            anyhow::anyhow!(text)
        }
        AdminError::Unavailable(Unavailable::Store(postfach_store::StoreError::Database(e))) => {
            anyhow::Error::new(e).context("database error")
        }
        other => anyhow::Error::new(other),
    }
}

/// Reads a password from stdin (`--password-stdin`: the first line) or from a prompt on
/// the terminal (twice, when setting one). Never from the command line, where other
/// users could see it in the process list.
/// Which credential a login used: the main password, an app password by name, or `-`
/// when none was proven.
fn credential(entry: &postfach_store::logins::LoginRecord) -> String {
    match (&entry.credential, entry.result) {
        (Some(name), _) => format!("app password {name}"),
        (None, postfach_types::LoginResult::Ok) => "password".into(),
        (None, _) => "-".into(),
    }
}

/// The new password of `mailbox add` and `mailbox password`: generated with
/// `--generate`, else read like every password.
fn new_password(source: &PasswordSource, generate: bool) -> anyhow::Result<Secret<String>> {
    if generate { Ok(postfach_auth::generate::password()) } else { read_password(source, true) }
}

/// Prints a generated password once, alone on its line, with the advice on stderr.
fn print_generated(password: &Secret<String>) {
    println!("{}", password.expose());
    eprintln!("This password is shown only now: keep it in a password manager and use it for this mailbox only.");
}

async fn app_password(cmd: AppPasswordCommand, admin: &Admin) -> anyhow::Result<()> {
    match cmd {
        AppPasswordCommand::Add { mailbox, name, services, json: as_json } => {
            let name = input::app_password_name(&name).map_err(explain)?;
            let services = input::app_password_services(&services).map_err(explain)?;
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            let created = admin.add_app_password(OPERATOR, m.id, &name, &services).await.map_err(explain)?;
            if as_json {
                json(&CreatedAppPasswordView::from(created))?;
            } else {
                println!("{}", created.password.expose());
            }
        }
        AppPasswordCommand::List { mailbox, json: as_json } => {
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            let list = admin.app_passwords(OPERATOR, m.id).await.map_err(explain)?;
            if as_json {
                json(&types::all::<_, AppPasswordView>(list))?;
            } else {
                let rows = list
                    .iter()
                    .map(|a| {
                        let services = a.services.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
                        let last = a.last_use.as_ref();
                        vec![
                            a.name.clone(),
                            services,
                            a.created_at.rfc3339(),
                            last.map_or_else(|| "never".into(), |l| l.at.rfc3339()),
                            last.map_or_else(|| "-".into(), |l| l.service.to_string()),
                            last.map_or_else(|| "-".into(), |l| l.remote_ip.to_string()),
                            last.and_then(|l| l.tls_version.clone()).unwrap_or_else(|| "-".into()),
                            last.and_then(|l| l.client.clone()).unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["NAME", "SERVICES", "CREATED", "LAST-USED", "SERVICE", "CLIENT-IP", "TLS", "CLIENT"], &rows);
            }
        }
        AppPasswordCommand::Remove { mailbox, name } => {
            let m = admin.mailbox_named(OPERATOR, &mailbox.0).await.map_err(explain)?;
            admin.remove_app_password(OPERATOR, m.id, &name).await.map_err(explain)?;
            println!("revoked app password {name} of {}", mailbox.0);
        }
    }
    Ok(())
}

pub(crate) fn read_password(source: &PasswordSource, confirm: bool) -> anyhow::Result<Secret<String>> {
    if source.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            bail!("standard input held no password; pipe it in as one line, e.g. from a password manager");
        }
        return Ok(Secret::new(password.to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("there is no terminal to ask for the password; pipe it in and add --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    if confirm {
        let second = rpassword::prompt_password("Repeat the password: ").context("cannot read the password")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
    }
    Ok(Secret::new(first))
}
