//! The DNS commands of the real `postfach` binary, against a real DNS server
//! (postfach-testdns) named in the config as `[dns] resolver`.

mod common;

use std::path::PathBuf;
use std::process::Output;

use postfach_testdns::{Data, Rr, TestDns, Type};

struct Env {
    dir: tempfile::TempDir,
    dns: TestDns,
}

const HOST: &str = "mail.postfach.test";

impl Env {
    fn new() -> Self {
        let dns = TestDns::start([
            Rr::new(HOST, Data::A("192.0.2.25".parse().expect("ip"))),
            Rr::new("_spf.mail.postfach.test", Data::txt("v=spf1 ip4:192.0.2.25 -all")),
            // acme.example already publishes SPF for another provider.
            Rr::new("acme.example", Data::Mx(10, HOST.into())),
            Rr::new("acme.example", Data::txt("v=spf1 a:web.acme.example include:_spf.provider.test ~all")),
            Rr::new("web.acme.example", Data::A("203.0.113.5".parse().expect("ip"))),
            Rr::new("_spf.provider.test", Data::txt("v=spf1 ip4:198.51.100.0/24 -all")),
            Rr::new("_dmarc.acme.example", Data::txt("v=DMARC1; p=quarantine")),
        ]);
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            r#"
hostname = "{HOST}"
data_dir = "data"
[listen]
smtp = []
submission = []
submissions = ["127.0.0.1:1465"]
imap = []
imaps = ["127.0.0.1:1993"]
pop3 = []
pop3s = []
managesieve = []
https = []
http = []
[dns]
resolver = "{}"
[outbound]
ips = ["192.0.2.25"]
"#,
            dns.addr()
        );
        std::fs::write(dir.path().join("postfach.toml"), config).expect("config");
        let env = Env { dir, dns };
        env.ok(&["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
        env
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("postfach.toml")
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        common::postfach(&self.config(), args, stdin)
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        common::postfach_ok(&self.config(), args, stdin)
    }

    /// Runs a command that must exit with status 1; returns its stdout.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert_eq!(out.status.code(), Some(1), "postfach {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args, "")).expect("valid JSON")
    }
}

fn records_of<'a>(records: &'a serde_json::Value, purpose: &str) -> Vec<&'a serde_json::Value> {
    records.as_array().expect("list").iter().filter(|r| r["purpose"] == purpose).collect()
}

#[test]
fn a_new_domain_is_verified_through_dns_and_shows_its_records() {
    let env = Env::new();
    let added = env.ok(&["domain", "add", "acme.example", "--customer", "acme"], "");
    assert!(added.contains("created the DKIM key pf"), "{added}");
    assert!(added.contains("postfach dns acme.example"), "{added}");

    // The records to publish: ownership, MX, ONE merged SPF record, DKIM, DMARC, SRV, autoconfig.
    let records = env.json(&["dns", "acme.example", "--json"]);
    let ownership = records_of(&records, "ownership");
    assert_eq!(ownership.len(), 1);
    let name = ownership[0]["name"].as_str().expect("name").to_string();
    let value = ownership[0]["value"].as_str().expect("value").to_string();
    assert!(name == "_postfach-verify.acme.example" && value.starts_with("postfach-verify="), "{name} {value}");
    let spf = records_of(&records, "spf");
    assert_eq!(spf.len(), 1, "never a second SPF record");
    assert_eq!(
        spf[0]["value"],
        "v=spf1 a:web.acme.example include:_spf.provider.test include:_spf.mail.postfach.test -all"
    );
    assert_eq!(records_of(&records, "mx")[0]["value"], "10 mail.postfach.test.");
    let dkim = records_of(&records, "dkim");
    assert_eq!(dkim.len(), 1);
    assert!(dkim[0]["txt_strings"].as_array().expect("strings").iter().all(|s| s.as_str().expect("s").len() <= 255));
    let srv: Vec<_> = records_of(&records, "srv").iter().map(|r| (r["name"].clone(), r["value"].clone())).collect();
    assert!(srv.contains(&("_imaps._tcp.acme.example".into(), "0 1 993 mail.postfach.test.".into())), "{srv:?}");
    assert!(srv.contains(&("_pop3s._tcp.acme.example".into(), "0 0 0 .".into())), "POP3 is off: {srv:?}");
    assert_eq!(records_of(&records, "dmarc")[0]["name"], "_dmarc.acme.example");
    let text = env.ok(&["dns", "acme.example"], "");
    assert!(text.contains(&format!("{name}. 3600 IN TXT \"{value}\"")), "{text}");
    assert!(text.contains("autoconfig.acme.example. 3600 IN CNAME mail.postfach.test."), "{text}");

    // Not verified until the TXT record is there; the command says what to publish.
    let missing = env.fails(&["domain", "verify", "acme.example"]);
    assert!(missing.contains(&format!("{name}. 3600 IN TXT \"{value}\"")), "{missing}");
    assert_eq!(env.json(&["domain", "list", "--json"])[0]["verified"], false);
    env.dns.set(&name, Type::Txt, vec![Data::txt(&value)]);
    let found = env.ok(&["domain", "verify", "acme.example"], "");
    assert!(found.contains("acme.example is verified"), "{found}");
    assert_eq!(env.json(&["domain", "list", "--json"])[0]["verified"], true);
    assert!(env.ok(&["domain", "verify", "acme.example"], "").contains("already verified"));

    // An alias domain signs as itself: it gets a key of its own.
    let alias = env.ok(&["domain-alias", "add", "acme.test", "--to", "acme.example"], "");
    assert!(alias.contains("created the DKIM key pf"), "{alias}");
    let records = env.json(&["dns", "acme.test", "--json"]);
    assert_eq!(
        records_of(&records, "dkim")[0]["name"].as_str().map(|n| n.ends_with("._domainkey.acme.test")),
        Some(true)
    );
    assert_eq!(records_of(&records, "ownership").len(), 1, "alias domains prove ownership too");
}

/// TLS-RPT (RFC 8460): `postfach dns` lists the `_smtp._tls` record naming the platform's
/// reporting address (by default `tls-reports@HOSTNAME`), and the check finds it once
/// it is published.
#[test]
fn the_tls_reporting_record_is_listed_and_checked() {
    let env = Env::new();
    env.ok(&["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    let records = env.json(&["dns", "acme.example", "--json"]);
    let tls = records_of(&records, "tls_rpt");
    assert_eq!(tls.len(), 1, "{records:#}");
    assert_eq!(tls[0]["name"], "_smtp._tls.acme.example");
    assert_eq!(tls[0]["type"], "TXT");
    let value = "v=TLSRPTv1; rua=mailto:tls-reports@mail.postfach.test";
    assert_eq!(tls[0]["value"], value);
    let text = env.ok(&["dns", "acme.example"], "");
    assert!(text.contains(&format!("_smtp._tls.acme.example. 3600 IN TXT \"{value}\"")), "{text}");

    let out = env.run(&["domain", "check", "acme.example"], "");
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.contains("WARNING  tlsrpt     acme.example publishes no TLS-RPT record"), "{out}");
    env.dns.set("_smtp._tls.acme.example", Type::Txt, vec![Data::txt("v=TLSRPTv1; rua=mailto:tls@acme.example")]);
    let out = String::from_utf8_lossy(&env.run(&["domain", "check", "acme.example"], "").stdout).to_string();
    assert!(
        out.contains("WARNING  tlsrpt     The TLS-RPT record of acme.example sends the reports to other addresses"),
        "{out}"
    );
    env.dns.set("_smtp._tls.acme.example", Type::Txt, vec![Data::txt(value)]);
    let out = String::from_utf8_lossy(&env.run(&["domain", "check", "acme.example"], "").stdout).to_string();
    assert!(out.contains("OK       tlsrpt     acme.example publishes a valid TLS-RPT record"), "{out}");

    // Another address in the configuration: the record names it.
    let config = std::fs::read_to_string(env.config()).expect("config");
    let config = format!("{config}[tls_reports]\naddress = \"tlsrpt@reports.postfach.test\"\n");
    std::fs::write(env.config(), config).expect("config");
    let records = env.json(&["dns", "acme.example", "--json"]);
    assert_eq!(records_of(&records, "tls_rpt")[0]["value"], "v=TLSRPTv1; rua=mailto:tlsrpt@reports.postfach.test");
}

#[test]
fn domain_check_prints_each_verdict_and_rotation_waits_for_dns() {
    let env = Env::new();
    env.ok(&["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    // The SPF record lacks our include and ends in ~all; DKIM is not published yet.
    let out = env.fails(&["domain", "check", "acme.example"]);
    for line in [
        "OK       ownership  Ownership of acme.example is confirmed.",
        "OK       mx         The MX record of acme.example points to mail.postfach.test.",
        "WARNING  spf        The SPF record of acme.example ends in ~all",
        "ERROR    spf        The SPF record of acme.example does not allow the platform's server 192.0.2.25 to send (result: softfail), so your mail is refused or marked as spam. Replace it with: v=spf1 a:web.acme.example include:_spf.provider.test include:_spf.mail.postfach.test -all",
        "ERROR    dkim       The DKIM record of acme.example is missing",
        "OK       dmarc      acme.example publishes a valid DMARC record.",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // Publish what `postfach dns` says: the check passes.
    let records = env.json(&["dns", "acme.example", "--json"]);
    let spf = records_of(&records, "spf")[0]["value"].as_str().expect("spf").to_string();
    env.dns.set("acme.example", Type::Txt, vec![Data::txt(&spf)]);
    let dkim = records_of(&records, "dkim")[0].clone();
    let dkim_name = dkim["name"].as_str().expect("name").to_string();
    let strings: Vec<String> =
        dkim["txt_strings"].as_array().expect("strings").iter().map(|s| s.as_str().expect("s").to_string()).collect();
    env.dns.set(&dkim_name, Type::Txt, vec![Data::txt_strings(strings)]);
    // Before the client-setup records are published, their rows say what is missing.
    let out = env.ok(&["domain", "check", "acme.example"], "");
    for line in [
        "WARNING  srv        SRV records are missing (_submissions._tcp.acme.example, _submission._tcp.acme.example,",
        "Publish: _submissions._tcp.acme.example SRV 0 1 465 mail.postfach.test.; _submission._tcp.acme.example SRV 0 0 0 .;",
        "WARNING  autoconfig Records for automatic setup are missing (autoconfig.acme.example, autodiscover.acme.example)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    for r in records.as_array().expect("records") {
        let (name, value) = (r["name"].as_str().expect("name"), r["value"].as_str().expect("value"));
        match r["type"].as_str() {
            Some("SRV") => {
                let f: Vec<&str> = value.split_whitespace().collect();
                let n = |i: usize| f[i].parse::<u16>().expect("number");
                let srv = Data::Srv { priority: n(0), weight: n(1), port: n(2), target: f[3].to_string() };
                env.dns.set(name, Type::Srv, vec![srv]);
            }
            Some("CNAME") => env.dns.set(name, Type::Cname, vec![Data::Cname(value.to_string())]),
            Some("TXT") if r["purpose"] == "tls_rpt" => env.dns.set(name, Type::Txt, vec![Data::txt(value)]),
            _ => {}
        }
    }
    let report = env.json(&["domain", "check", "acme.example", "--json"]);
    let levels: Vec<_> = report["verdicts"].as_array().expect("verdicts").iter().map(|v| v["level"].clone()).collect();
    assert!(levels.iter().all(|l| l == "ok"), "{report:#}");
    let spf_verdict = report["verdicts"].as_array().expect("v").iter().find(|v| v["code"] == "spf.pass").expect("pass");
    assert!(spf_verdict["message"]["de"].as_str().expect("de").contains("erlaubt allen Servern der Plattform"));

    // Rotation: the new key is shown, and used only once its record is found.
    let rotated = env.ok(&["domain", "dkim-rotate", "acme.example"], "");
    assert!(rotated.contains("the current key stays in use until the DNS check finds the new record"), "{rotated}");
    let records = env.json(&["dns", "acme.example", "--json"]);
    let dkim = records_of(&records, "dkim");
    assert_eq!(dkim.len(), 2, "the current and the next key are both published");
    let next = dkim.iter().find(|r| r["name"] != dkim_name.as_str()).expect("next key");
    let out = env.ok(&["domain", "check", "acme.example"], "");
    assert!(out.contains("WARNING  dkim       The new DKIM key"), "{out}");
    env.dns.set(
        next["name"].as_str().expect("name"),
        Type::Txt,
        vec![Data::txt(next["value"].as_str().expect("value"))],
    );
    let out = env.ok(&["domain", "check", "acme.example"], "");
    assert!(out.contains("is published and is now used for signing"), "{out}");
    let records = env.json(&["dns", "acme.example", "--json"]);
    assert_eq!(records_of(&records, "dkim").len(), 1, "the retired key is no longer listed");
    assert_eq!(records_of(&records, "dkim")[0]["name"], next["name"]);

    let forced = env.ok(&["domain", "dkim-rotate", "acme.example", "--force"], "");
    assert!(forced.contains("now signs the mail of acme.example"), "{forced}");
}

#[test]
fn platform_records() {
    let env = Env::new();
    let list = env.json(&["dns", "--platform", "--json"]);
    let lines: Vec<String> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["name"].as_str().expect("n"),
                r["type"].as_str().expect("t"),
                r["value"].as_str().expect("v")
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "mail.postfach.test A 192.0.2.25",
            "25.2.0.192.in-addr.arpa PTR mail.postfach.test.",
            "_spf.mail.postfach.test TXT v=spf1 ip4:192.0.2.25 -all",
            "mail.postfach.test TXT v=spf1 include:_spf.mail.postfach.test -all",
        ]
    );
    let text = env.ok(&["dns", "--platform"], "");
    assert!(text.contains("_spf.mail.postfach.test. 3600 IN TXT \"v=spf1 ip4:192.0.2.25 -all\""), "{text}");
    let out = env.run(&["dns"], "");
    assert!(!out.status.success(), "a domain or --platform is needed");
}

#[test]
fn no_records_are_offered_for_localhost() {
    let dns = TestDns::start([Rr::new("acme.example", Data::Mx(10, HOST.into()))]);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("postfach.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"localhost\"\ndata_dir = \"data\"\n[dns]\nresolver = \"{}\"\n[outbound]\nips = [\"192.0.2.25\"]\n",
            dns.addr()
        ),
    )
    .expect("config");
    let out = common::postfach(&config, &["dns", "--platform"], "");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("localhost"), "no _spf.localhost: {stdout}");
    assert!(
        stderr.contains("hostname = \"localhost\"")
            && stderr.contains("Set hostname to this server's fully qualified name, such as \"mail.example.net\""),
        "{stderr}"
    );

    common::postfach_ok(&config, &["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
    common::postfach_ok(&config, &["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    let out = common::postfach(&config, &["dns", "acme.example"], "");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("_dmarc.acme.example") && !stdout.contains("localhost"), "{stdout}");
    assert!(stderr.contains("only the records that do not name this server are shown"), "{stderr}");
}

#[test]
fn mta_sts_is_set_per_domain_and_its_records_follow_the_mode() {
    let env = Env::new();
    env.ok(&["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    let records = env.json(&["dns", "acme.example", "--json"]);
    assert!(records_of(&records, "mta_sts").is_empty(), "off: nothing to publish");

    let set = env.ok(&["domain", "set", "acme.example", "--mta-sts", "testing"], "");
    assert!(set.contains("MTA-STS for acme.example: testing"), "{set}");
    assert_eq!(env.json(&["domain", "list", "--json"])[0]["mta_sts"], "testing");
    let records = env.json(&["dns", "acme.example", "--json"]);
    let sts = records_of(&records, "mta_sts");
    let txt = sts.iter().find(|r| r["type"] == "TXT").expect("the _mta-sts record");
    assert_eq!(txt["name"], "_mta-sts.acme.example");
    let testing_value = txt["value"].as_str().expect("value").to_string();
    assert!(testing_value.starts_with("v=STSv1; id="), "{testing_value}");
    let host = sts.iter().find(|r| r["type"] == "CNAME").expect("the policy host");
    assert_eq!((&host["name"], &host["value"]), (&"mta-sts.acme.example".into(), &"mail.postfach.test.".into()));
    let text = env.ok(&["dns", "acme.example"], "");
    assert!(text.contains(&format!("_mta-sts.acme.example. 3600 IN TXT \"{testing_value}\"")), "{text}");

    // The id follows the policy: another mode, another id.
    env.ok(&["domain", "set", "acme.example", "--mta-sts", "enforce"], "");
    let records = env.json(&["dns", "acme.example", "--json"]);
    let enforce_value = records_of(&records, "mta_sts").iter().find(|r| r["type"] == "TXT").expect("txt")["value"]
        .as_str()
        .expect("value")
        .to_string();
    assert_ne!(enforce_value, testing_value);

    // The domain check says what is missing: the record, and the policy host.
    let check = env.fails(&["domain", "check", "acme.example"]);
    assert!(check.contains("The MTA-STS record of acme.example is missing"), "{check}");
    assert!(check.contains(&enforce_value), "the record to publish is named: {check}");
    assert!(check.contains("https://mta-sts.acme.example/.well-known/mta-sts.txt cannot be fetched"), "{check}");

    let wrong = env.run(&["domain", "set", "acme.example", "--mta-sts", "sometimes"], "");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("off, testing or enforce"));
    env.ok(&["domain", "set", "acme.example", "--mta-sts", "off"], "");
    assert!(records_of(&env.json(&["dns", "acme.example", "--json"]), "mta_sts").is_empty());
}

/// The SHA-256 of a key's SubjectPublicKeyInfo as openssl computes it: the independent
/// check of the digest in the `3 1 1` records.
fn openssl_spki_sha256(key_pem: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let run = |args: &[&str], input: &[u8]| {
        let mut child =
            Command::new("openssl").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("openssl");
        child.stdin.take().expect("stdin").write_all(input).expect("write");
        let out = child.wait_with_output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}");
        out.stdout
    };
    let der = run(&["pkey", "-pubout", "-outform", "DER"], key_pem.as_bytes());
    let digest = run(&["dgst", "-sha256", "-r"], &der);
    String::from_utf8(digest).expect("utf-8").split_whitespace().next().expect("digest").to_string()
}

/// DANE for mail to the server: with an ACME certificate for the hostname (stored the
/// way ACME stores one, with the key of the next order), `dns --platform` shows the
/// `_25._tcp` TLSA records of both keys and checks what is published.
#[test]
fn platform_tlsa_records_name_the_current_and_the_next_key_and_are_checked() {
    let env = Env::new();
    let self_signed = env.ok(&["dns", "--platform"], "");
    assert!(self_signed.contains("TLSA (DANE for mail to this server) is not recommended"), "{self_signed}");
    assert!(!self_signed.contains("IN TLSA"), "{self_signed}");

    // ACME's default challenge needs an HTTPS listener (the CLI never binds it).
    let config =
        std::fs::read_to_string(env.config()).expect("config").replace("https = []", "https = [\"127.0.0.1:1443\"]");
    let config = format!(
        "{config}[acme]\ndirectory = \"https://127.0.0.1:1/dir\"\ncontact = \"mailto:postmaster@postfach.test\"\n"
    );
    std::fs::write(env.config(), config).expect("config");
    let current = rcgen::KeyPair::generate().expect("key");
    let next = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(vec![HOST.to_string()]).expect("params").self_signed(&current).expect("cert");
    let db = format!("sqlite://{}/postfach.sqlite", env.dir.path().join("data").display());
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        use postfach_store::Store;
        use postfach_store::certificates::Issued;
        use postfach_types::{DomainName, Secret, UnixTime};
        let store = Store::open(&db).await.expect("store");
        let host = DomainName::parse(HOST).expect("host");
        let now = UnixTime::now().0;
        let issued = Issued {
            chain_pem: cert.pem(),
            key_pem: Secret::new(current.serialize_pem()),
            not_before: UnixTime(now - 60),
            not_after: UnixTime(now + 86_400 * 60),
            issuer: "CN=Test CA".into(),
            issued_at: UnixTime(now),
        };
        store
            .save_certificate(&host, std::slice::from_ref(&host), &issued, &Secret::new(next.serialize_pem()))
            .await
            .expect("save");
    });
    let current_hex = openssl_spki_sha256(&current.serialize_pem());
    let next_hex = openssl_spki_sha256(&next.serialize_pem());
    let name = "_25._tcp.mail.postfach.test";
    let out = env.ok(&["dns", "--platform"], "");
    assert!(out.contains(&format!("{name}. 3600 IN TLSA 3 1 1 {current_hex}")), "{out}");
    assert!(out.contains(&format!("{name}. 3600 IN TLSA 3 1 1 {next_hex}")), "{out}");
    assert!(out.contains("publish both records; the next key takes over at renewal. (optional)"), "{out}");
    assert!(out.contains(&format!("OK       No TLSA record is published at {name}; that is optional.")), "{out}");

    let tlsa = |hex: &str| Data::Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect(),
    };
    env.dns.set(name, Type::Tlsa, vec![tlsa(&current_hex), tlsa(&next_hex)]);
    let out = env.ok(&["dns", "--platform"], "");
    assert!(out.contains(&format!("OK       A TLSA record at {name} matches the current certificate.")), "{out}");

    env.dns.set(name, Type::Tlsa, vec![tlsa(&next_hex)]);
    let out = env.fails(&["dns", "--platform"]);
    assert!(out.contains(&format!("ERROR    The TLSA records at {name} match only the next key")), "{out}");
    assert!(out.contains(&format!("Publish: {name}. 3600 IN TLSA 3 1 1 {current_hex}")), "{out}");

    env.dns.set(name, Type::Tlsa, vec![tlsa(&"ab".repeat(32))]);
    let out = env.fails(&["dns", "--platform"]);
    assert!(out.contains(&format!("ERROR    No TLSA record at {name} matches the current certificate")), "{out}");
    assert!(out.contains("mail servers that check DANE refuse to deliver to this server"), "{out}");
}
