//! The `postfach` binary: parses the command line and hands each command to the library
//! crates. Nothing but argument parsing, prompting and printing happens here.

mod backup_commands;
mod commands;
mod dns_commands;
mod import_commands;
mod output;
mod queue_commands;
mod sieve_commands;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use postfach_types::{AccessMode, CustomerName, DomainName, EmailAddress};

/// Multi-tenant mail hosting: SMTP, IMAP, POP3 and a customer panel in one binary.
#[derive(Debug, Parser)]
#[command(name = "postfach", version)]
struct Cli {
    /// The configuration file [default: /etc/postfach/postfach.toml if it exists, else built-in defaults]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the servers until SIGTERM or SIGINT
    Serve {
        /// Also create a demo customer, the domain example.test and two mailboxes (passwords printed once)
        #[arg(long)]
        demo: bool,
    },
    /// Manage customers and admins (panel accounts that own domains)
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Manage domains
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage alias domains: every address of the target domain also works at the alias domain
    #[command(subcommand, name = "domain-alias")]
    DomainAlias(DomainAliasCommand),
    /// Manage mailboxes
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Manage aliases: further addresses that deliver into a mailbox
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Show the DNS records to publish for a domain, or with --platform the operator's own records
    Dns {
        #[arg(required_unless_present = "platform", conflicts_with = "platform")]
        domain: Option<Domain>,
        /// The platform's records: A/AAAA, PTR, the SPF record that customer domains include
        #[arg(long)]
        platform: bool,
        #[arg(long)]
        json: bool,
    },
    /// Look at and manage the outbound queue: mail waiting for other mail servers
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Show the login log, newest first
    Logins {
        /// Only the attempts on this mailbox
        address: Option<Address>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only attempts without TLS
        #[arg(long)]
        unencrypted: bool,
        /// Only refused attempts
        #[arg(long)]
        failed: bool,
        #[arg(long)]
        json: bool,
    },
    /// Copy the data of this node (SQLite database, message files, certificates) into DIR while the server runs
    Backup {
        /// A new or empty folder outside data_dir
        dir: PathBuf,
    },
    /// Bring a backup made by `postfach backup` into the configured, empty data_dir (server stopped)
    Restore {
        /// The backup folder
        dir: PathBuf,
    },
    /// Import mail from local Maildir folders or mbox files, or from another IMAP server, into a mailbox
    #[command(subcommand)]
    Import(ImportCommand),
    /// Show the server's certificates: names, expiry, issuer and the last failed order
    Certificates {
        #[arg(long)]
        json: bool,
    },
    /// Score a password with the password rule (exit status 1 if it would be refused)
    PasswordCheck {
        #[command(flatten)]
        password: PasswordSource,
        /// Check it as the password of this mailbox (its address and customer count as guessable words)
        #[arg(long)]
        address: Option<Address>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CustomerCommand {
    /// Create a customer (or with --admin an admin); asks for its panel password
    Add {
        name: Name,
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        password: PasswordSource,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a customer that owns no domains
    Remove {
        name: Name,
    },
    /// Stop a customer and all its mailboxes from logging in
    Disable {
        name: Name,
    },
    Enable {
        name: Name,
    },
    /// Set a new panel password (ends the account's panel sessions, revokes its API tokens)
    Password {
        name: Name,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set the storage limit for all of a customer's mailboxes together, its contact address or its spam thresholds
    Set {
        name: Name,
        /// Bytes, or K/M/G/T (powers of 1024) like 50G; `none` removes the limit
        #[arg(long, value_name = "SIZE", required_unless_present_any = ["contact", "spam_reject", "spam_junk", "require_tls"])]
        quota: Option<String>,
        /// Address that gets a copy of every warning mail of the customer's mailboxes and domains; `none` removes it
        #[arg(long, value_name = "ADDRESS")]
        contact: Option<String>,
        /// Spam score from which its mail is refused; `none`: never; `default`: the platform's ([spam] reject_score)
        #[arg(long, value_name = "SCORE", allow_hyphen_values = true)]
        spam_reject: Option<String>,
        /// Spam score from which its mail goes to Junk; `none`: never; `default`: the platform's ([spam] junk_score)
        #[arg(long, value_name = "SCORE", allow_hyphen_values = true)]
        spam_junk: Option<String>,
        /// Always require TLS to other servers for the mail of all its mailboxes: never sent in plaintext; the sender gets a notice instead
        #[arg(long, value_parser = parse_on_off, value_name = "on|off")]
        require_tls: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Add a domain for a customer
    Add {
        domain: Domain,
        #[arg(long, value_name = "NAME")]
        customer: Name,
        /// Mark the domain as verified now (operator's word instead of the DNS ownership check)
        #[arg(long)]
        verified: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a domain; with --cascade also its mailboxes, aliases and alias domains
    Remove {
        domain: Domain,
        #[arg(long)]
        cascade: bool,
    },
    /// Change a domain's settings
    Set {
        domain: Domain,
        /// Certificates for mail., autoconfig. and autodiscover. of the domain (those that point to this server; needs [acme])
        #[arg(long, value_name = "on|off", value_parser = parse_on_off, action = clap::ArgAction::Set, required_unless_present = "mta_sts")]
        certificates: Option<bool>,
        /// Inbound MTA-STS: serve the policy at mta-sts.DOMAIN in this mode (postfach dns DOMAIN lists the records)
        #[arg(long, value_name = "off|testing|enforce")]
        mta_sts: Option<String>,
    },
    /// Look for the ownership TXT record now; the domain goes live when it is found (exit status 1 if not)
    Verify { domain: Domain },
    /// Check the published DNS records (MX, SPF, DKIM, DMARC) now and show each verdict (exit status 1 on errors)
    Check {
        domain: Domain,
        #[arg(long)]
        json: bool,
    },
    /// Create the next DKIM key; it is used once its DNS record is found, or at once with --force
    DkimRotate {
        domain: Domain,
        /// Use the new key now, without waiting for its DNS record
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DomainAliasCommand {
    /// Make ALIAS_DOMAIN an alias domain of DOMAIN (same customer)
    Add {
        alias_domain: Domain,
        #[arg(long = "to", value_name = "DOMAIN")]
        target: Domain,
        /// Mark the alias domain as verified now
        #[arg(long)]
        verified: bool,
    },
    Remove {
        alias_domain: Domain,
    },
}

#[derive(Debug, Subcommand)]
enum MailboxCommand {
    /// Create a mailbox; asks for its password
    Add {
        address: Address,
        #[command(flatten)]
        password: PasswordSource,
        /// Make a strong password instead of asking for one, and print it once
        #[arg(long, conflicts_with = "password_stdin")]
        generate: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Change a mailbox's settings, limits and language
    Set {
        address: Address,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Storage limit: bytes, or K/M/G/T (powers of 1024) like 2G; `none` removes it
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
        /// Limit on the number of messages; `none` removes it
        #[arg(long, value_name = "N")]
        quota_messages: Option<String>,
        /// Language of the notices Postfach writes into the mailbox (de or en)
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
        /// Switch a kind of warning mail: KIND=on|off, KIND one of unencrypted, wrong-protocol, exposed, locked, sending-limit, new-device, unused-app-password (repeatable)
        #[arg(long = "warn", value_name = "KIND=on|off")]
        warn: Vec<String>,
        /// Devices must use app passwords: the main password then works only for the panel
        #[arg(long, value_parser = parse_on_off, value_name = "on|off")]
        app_passwords_only: Option<bool>,
        /// Always require TLS to other servers: its mail is never sent in plaintext; the sender gets a notice instead
        #[arg(long, value_parser = parse_on_off, value_name = "on|off")]
        require_tls: Option<bool>,
    },
    /// Set a new password (clears the "exposed" mark)
    Password {
        address: Address,
        #[command(flatten)]
        password: PasswordSource,
        /// Make a strong password instead of asking for one, and print it once
        #[arg(long, conflicts_with = "password_stdin")]
        generate: bool,
    },
    /// A device's own password, limited to some services and revocable
    #[command(subcommand)]
    AppPassword(AppPasswordCommand),
    /// The mailbox's Sieve filter scripts (docs/sieve.md)
    #[command(subcommand)]
    Sieve(SieveCommand),
    List {
        #[arg(long)]
        domain: Option<Domain>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a mailbox and the aliases that point at it
    Remove { address: Address },
}

#[derive(Debug, Subcommand)]
enum AppPasswordCommand {
    /// Make an app password for a device; prints only the password (shown this once)
    Add {
        mailbox: Address,
        /// What it is for, like the device ("Phone")
        #[arg(long)]
        name: String,
        /// The services it may be used for: imap, pop3, submission, sieve (comma-separated)
        #[arg(long = "service", value_name = "SERVICES")]
        services: String,
        #[arg(long)]
        json: bool,
    },
    /// The mailbox's app passwords and their last use
    List {
        mailbox: Address,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an app password at once (connections using it end at their next command)
    Remove { mailbox: Address, name: String },
}

#[derive(Debug, Subcommand)]
enum SieveCommand {
    /// The mailbox's scripts; the active one is marked
    List {
        mailbox: Address,
        #[arg(long)]
        json: bool,
    },
    /// Store a script from FILE (or - for stdin); a script with an error is refused with
    /// its line and column
    Put { mailbox: Address, name: String, file: PathBuf },
    /// Print a script
    Get { mailbox: Address, name: String },
    /// Make NAME the script that filters the mailbox's mail, or switch filtering off
    Activate {
        mailbox: Address,
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        name: Option<String>,
        /// Switch filtering off
        #[arg(long)]
        none: bool,
    },
    /// Remove a script that is not active
    Remove { mailbox: Address, name: String },
}

#[derive(Debug, Subcommand)]
enum AliasCommand {
    /// Let ADDRESS deliver into the mailbox MAILBOX (of the same customer)
    Add {
        address: Address,
        #[arg(long = "to", value_name = "MAILBOX")]
        mailbox: Address,
    },
    Remove {
        address: Address,
    },
    List {
        #[arg(long)]
        domain: Option<Domain>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// List the waiting messages, oldest first, with the state of each recipient
    List {
        #[arg(long)]
        json: bool,
    },
    /// Try the waiting recipients of a message again now, instead of at their next retry time
    Retry {
        /// The queue id shown by `postfach queue list`
        id: String,
    },
    /// Remove a message from the queue: it is not delivered, and its sender is not told
    Remove {
        /// The queue id shown by `postfach queue list`
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// A Maildir (Dovecot or Courier Maildir++: PATH holds cur/, new/ and the .Folder subfolders)
    Maildir {
        path: PathBuf,
        /// The mailbox that receives the messages
        #[arg(long = "into", value_name = "MAILBOX")]
        mailbox: Address,
    },
    /// An mbox file (mboxrd or mboxo)
    Mbox {
        file: PathBuf,
        /// The mailbox that receives the messages
        #[arg(long = "into", value_name = "MAILBOX")]
        mailbox: Address,
        /// The folder to put them in (created if missing; levels separated by /)
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Every folder of a mailbox on another IMAP server (resumable: a second run copies only what is new)
    Imap {
        /// The old server: imaps://HOST[:PORT] (TLS), or imap://HOST[:PORT] (STARTTLS required)
        #[arg(long = "from", value_name = "URL")]
        from: String,
        /// The login on the old server
        #[arg(long)]
        login: String,
        #[command(flatten)]
        password: PasswordSource,
        /// The mailbox that receives the messages
        #[arg(long = "into", value_name = "MAILBOX")]
        mailbox: Address,
        /// Trust the certificates in this PEM file (a private CA) instead of the system's
        #[arg(long, value_name = "PEM")]
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct PasswordSource {
    /// Read the password from the first line of standard input instead of prompting
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args)]
struct SettingsArgs {
    /// Which protocol may read the mailbox
    #[arg(long, value_parser = parse_word::<AccessMode>)]
    access: Option<AccessMode>,
    /// Whether the mailbox may send mail through submission
    #[arg(long, value_parser = parse_on_off)]
    submission: Option<bool>,
    /// Whether logins must be encrypted (only matters if the operator allows plaintext at all)
    #[arg(long, value_parser = parse_on_off)]
    tls_required: Option<bool>,
}

/// Argument types parsed once at the edge, with the library's own error texts.
#[derive(Debug, Clone)]
struct Address(EmailAddress);
#[derive(Debug, Clone)]
struct Domain(DomainName);
#[derive(Debug, Clone)]
struct Name(CustomerName);

impl std::str::FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EmailAddress::parse(s).map(Address).map_err(|e| e.to_string())
    }
}
impl std::str::FromStr for Domain {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DomainName::parse(s).map(Domain).map_err(|e| e.to_string())
    }
}
impl std::str::FromStr for Name {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CustomerName::parse(s).map(Name).map_err(|e| e.to_string())
    }
}

fn parse_word<T: std::str::FromStr<Err = postfach_types::ParseEnumError>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: postfach_types::ParseEnumError| e.to_string())
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("'{s}' is not one of: on, off")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each told once. Most of our errors already name their cause
/// in their own text (`cannot read config file …: No such file or directory`), so a cause
/// whose text is already there is not repeated.
fn report(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn each_cause_is_told_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let told = io.to_string();
        /// Like our error types: the cause in the text and as `source()`.
        #[derive(Debug)]
        struct Names {
            source: std::io::Error,
        }
        impl std::fmt::Display for Names {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read x: {}", self.source)
            }
        }
        impl std::error::Error for Names {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let e = anyhow::Error::new(Names { source: io }).context("starting");
        assert_eq!(report(&e), format!("starting: cannot read x: {told}"));
        let silent = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write y");
        assert_eq!(report(&silent), "cannot write y: disk full");
    }
}
