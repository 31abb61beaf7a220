use super::*;

fn parse_ok(text: &str) -> Config {
    Config::from_toml_str(text, Path::new("/etc/postfach")).expect("valid configuration")
}

fn problems(text: &str) -> Vec<(String, String)> {
    match Config::from_toml_str(text, Path::new("/etc/postfach")) {
        Err(ConfigError::Invalid { problems, .. }) => problems.into_iter().map(|p| (p.key, p.message)).collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

#[test]
fn empty_text_gives_the_defaults() {
    let config = parse_ok("");
    assert_eq!(config, Config::defaults());
    assert_eq!(config.hostname.as_str(), "localhost");
    assert_eq!(config.data_dir, Path::new("/var/lib/postfach"));
    assert_eq!(config.database, "sqlite:///var/lib/postfach/postfach.sqlite");
    assert_eq!(config.tls, TlsSource::SelfSigned);
    assert_eq!(config.listen.smtp, [addr("[::]:25")]);
    assert_eq!(config.listen.submission, [addr("[::]:587")]);
    assert_eq!(config.listen.submissions, [addr("[::]:465")]);
    assert_eq!(config.listen.imap, [addr("[::]:143")]);
    assert_eq!(config.listen.imaps, [addr("[::]:993")]);
    assert_eq!(config.listen.pop3, [addr("[::]:110")]);
    assert_eq!(config.listen.pop3s, [addr("[::]:995")]);
    assert_eq!(config.listen.managesieve, [addr("[::]:4190")]);
    assert_eq!(config.listen.https, [addr("[::]:443")]);
    assert_eq!(config.listen.http, [addr("[::]:80")]);
    assert_eq!(config.security, Security::default());
    assert!(!config.security.allow_plaintext_auth);
    assert_eq!(config.log, Log { format: LogFormat::Text, level: "info".into() });
    assert_eq!(config.config_file, None);
}

#[test]
fn every_key_is_read() {
    let config = parse_ok(
        r#"
        hostname = "Mail.Example.NET"
        data_dir = "/srv/postfach"
        database = "postgresql://postfach@db.internal/postfach"

        [tls]
        cert = "/etc/ssl/mail.pem"
        key = "/etc/ssl/mail.key"

        [listen]
        smtp = ["0.0.0.0:2525", "[::1]:2525"]
        submission = ["127.0.0.1:1587"]
        submissions = []
        imap = ["127.0.0.1:1143"]
        imaps = ["127.0.0.1:1993"]
        pop3 = ["127.0.0.1:1110"]
        pop3s = ["127.0.0.1:1995"]
        managesieve = ["127.0.0.1:14190"]
        https = ["127.0.0.1:8443"]
        http = ["127.0.0.1:8080"]

        [security]
        allow_plaintext_auth = true
        max_failures_per_ip = 20
        max_failures_per_login = 3
        failure_window_secs = 600
        login_log_retention_days = 30

        [log]
        format = "json"
        level = "info,postfach_smtp=debug"
        "#,
    );
    assert_eq!(config.hostname.as_str(), "mail.example.net");
    assert_eq!(config.data_dir, Path::new("/srv/postfach"));
    assert_eq!(config.database, "postgresql://postfach@db.internal/postfach");
    assert_eq!(config.tls, TlsSource::Files { cert: "/etc/ssl/mail.pem".into(), key: "/etc/ssl/mail.key".into() });
    assert_eq!(config.listen.smtp, [addr("0.0.0.0:2525"), addr("[::1]:2525")]);
    assert_eq!(config.listen.submission, [addr("127.0.0.1:1587")]);
    assert!(config.listen.submissions.is_empty(), "an empty list switches the service off");
    assert_eq!(config.listen.imap, [addr("127.0.0.1:1143")]);
    assert_eq!(config.listen.imaps, [addr("127.0.0.1:1993")]);
    assert_eq!(config.listen.pop3, [addr("127.0.0.1:1110")]);
    assert_eq!(config.listen.pop3s, [addr("127.0.0.1:1995")]);
    assert_eq!(config.listen.managesieve, [addr("127.0.0.1:14190")]);
    assert_eq!(config.listen.https, [addr("127.0.0.1:8443")]);
    assert_eq!(config.listen.http, [addr("127.0.0.1:8080")]);
    assert_eq!(
        config.security,
        Security {
            allow_plaintext_auth: true,
            warning_mails: true,
            max_failures_per_ip: 20,
            max_failures_per_login: 3,
            failure_window_secs: 600,
            login_log_retention_days: 30,
        }
    );
    assert_eq!(config.log, Log { format: LogFormat::Json, level: "info,postfach_smtp=debug".into() });
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let config = parse_ok(
        r#"
        data_dir = "data"
        [tls]
        cert = "tls/cert.pem"
        key = "./tls/key.pem"
        "#,
    );
    assert_eq!(config.data_dir, Path::new("/etc/postfach/data"));
    assert_eq!(config.database, "sqlite:///etc/postfach/data/postfach.sqlite", "default follows data_dir");
    assert_eq!(
        config.tls,
        TlsSource::Files { cert: "/etc/postfach/tls/cert.pem".into(), key: "/etc/postfach/tls/key.pem".into() }
    );
}

#[test]
fn the_message_memory_holds_four_messages_being_checked() {
    let found = problems("[limits]\nmax_message_size = 10485760\nmessage_memory = 41943039\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "limits.message_memory");
    assert!(found[0].1.contains("four times"), "{found:?}");
    let ok = parse_ok("[limits]\nmax_message_size = 10485760\nmessage_memory = 41943040\n");
    assert_eq!(ok.limits.message_memory, 41_943_040);
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        r#"
        hostname = 42
        database = "mysql://root:hunter2@db/mail"
        colour = "blue"

        [listen]
        imap = ["[::]:143", "1.2.3.4", 7]
        imapp = ["[::]:1143"]
        pop3 = "[::]:110"

        [security]
        max_failures_per_ip = 0
        failure_window_secs = -5
        login_log_retention_days = 99999999999
        allow_plaintext_auth = "yes"

        [log]
        format = "xml"
        level = ""

        [metrics]
        port = 9100
        "#,
    );
    let expected = [
        ("hostname", "expected a string, found an integer"),
        (
            "database",
            "'mysql://root:****@db/mail' is not a supported database URL: use sqlite:///path/to/postfach.sqlite or postgres://user:password@host/database",
        ),
        ("listen.imap[1]", "'1.2.3.4' is not a socket address like [::]:143 or 127.0.0.1:143"),
        ("listen.imap[2]", "expected a string, found an integer"),
        ("listen.pop3", "expected a list like [\"[::]:110\"], found a string"),
        ("listen.imapp", "unknown key"),
        ("security.allow_plaintext_auth", "expected true or false, found a string"),
        ("security.max_failures_per_ip", "must be at least 1, found 0"),
        ("security.failure_window_secs", "must be at least 1, found -5"),
        ("security.login_log_retention_days", "99999999999 is too large"),
        ("log.format", "'xml' is not a log format: use \"text\" or \"json\""),
        ("log.level", "must not be empty: use a filter like \"info\" or \"info,postfach_smtp=debug\""),
        ("metrics.port", "unknown key"),
        ("colour", "unknown key"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, m)| (k.to_string(), m.to_string())).collect();
    assert_eq!(found, expected);
}

#[test]
fn invalid_display_lists_every_problem() {
    let error =
        Config::from_toml_str("hostname = \"a_b\"\n[listen]\nimapp = []\n", Path::new("/")).expect_err("two problems");
    assert_eq!(
        error.to_string(),
        "configuration: 2 problems:\n  \
         hostname: 'a_b' is not a valid domain name: only letters, digits, hyphens and dots are allowed\n  \
         listen.imapp: unknown key"
    );
}

#[test]
fn wrong_section_type_and_shared_addresses_are_reported() {
    assert_eq!(
        problems("tls = \"self-signed\"\n[listen]\nimap = [\"[::]:993\"]\n"),
        [
            ("tls".to_string(), "expected a section [tls], found a string".to_string()),
            ("listen.imaps[0]".to_string(), "[::]:993 is already used by listen.imap[0]".to_string()),
        ]
    );
}

#[test]
fn tls_with_only_one_file_is_refused() {
    assert_eq!(
        problems("[tls]\ncert = \"cert.pem\"\n"),
        [(
            "tls.key".to_string(),
            "missing: set it to the private key of tls.cert, or remove tls.cert to use a self-signed certificate"
                .to_string()
        )]
    );
    assert_eq!(problems("[tls]\nkey = \"key.pem\"\n")[0].0, "tls.cert");
}

#[test]
fn relative_sqlite_url_is_made_absolute() {
    let config = parse_ok("database = \"sqlite://db/postfach.sqlite?mode=rwc\"");
    assert_eq!(config.database, "sqlite:///etc/postfach/db/postfach.sqlite?mode=rwc");
    let config = parse_ok("database = \"sqlite:///srv/mail.sqlite\"");
    assert_eq!(config.database, "sqlite:///srv/mail.sqlite");
    assert_eq!(problems("database = \"sqlite://\"")[0].0, "database");
}

#[test]
fn postgres_url_passes_through_and_debug_hides_its_password() {
    let url = "postgres://postfach:s3cr3t-pw@db.example.net:5432/postfach?sslmode=require&password=other-pw";
    let config = parse_ok(&format!("database = \"{url}\""));
    assert_eq!(config.database, url);
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cr3t-pw") && !debug.contains("other-pw"), "{debug}");
    assert!(debug.contains("postgres://postfach:****@db.example.net:5432/postfach?sslmode=require&password=****"));
}

#[test]
fn syntax_errors_name_line_and_column_without_quoting_the_line() {
    let error = Config::from_toml_str("hostname = \"a\"\ndatabase = \"postgres://u:pw@h/db\" x\n", Path::new("/"))
        .expect_err("syntax error");
    let ConfigError::Syntax { message, .. } = &error else { panic!("expected a syntax error: {error:?}") };
    assert!(message.starts_with("line 2, column "), "{message}");
    assert!(!error.to_string().contains("pw@"), "{error}");
}

#[test]
fn the_documented_example_is_the_defaults() {
    let doc = include_str!("../../../../docs/configuration.md");
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/configuration.md has a TOML example");
    assert_eq!(parse_ok(example), Config::defaults());
}

#[test]
fn outbound_keys_are_read_and_checked() {
    let config = parse_ok(
        "[outbound]\nqueue_lifetime_secs = 3600\nrate_limit_per_hour = 20\ndelay_warning_secs = 600\nsmtp_port = 2525\n\
         mta_sts_port = 8443\n",
    );
    assert_eq!(
        config.outbound,
        Outbound {
            queue_lifetime_secs: 3600,
            rate_limit_per_hour: 20,
            delay_warning_secs: Some(600),
            smtp_port: 2525,
            mta_sts_port: 8443,
            ..Outbound::default()
        }
    );
    assert_eq!(Config::defaults().outbound.delay_warning_secs, None, "no delay warning unless asked for");
    assert_eq!(
        problems("[outbound]\nqueue_lifetime_secs = 5\nsmtp_port = 70000\nrate_limit_per_hour = 0\n"),
        [
            ("outbound.queue_lifetime_secs".to_string(), "must be at least 60, found 5".to_string()),
            ("outbound.rate_limit_per_hour".to_string(), "must be at least 1, found 0".to_string()),
            ("outbound.smtp_port".to_string(), "70000 is too large".to_string()),
        ]
    );
    let problems = problems("[outbound]\ntls_ca_file = \"/nonexistent/ca.pem\"\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "outbound.tls_ca_file");
}

#[test]
fn smtp_keys_are_read_and_checked() {
    assert_eq!(Config::defaults().smtp.spf_fail, SpfFail::Tag);
    assert_eq!(parse_ok("[smtp]\nspf_fail = \"reject\"\n").smtp.spf_fail, SpfFail::Reject);
    assert_eq!(
        problems("[smtp]\nspf_fail = \"drop\"\n"),
        [("smtp.spf_fail".to_string(), "'drop' is not an SPF action: use \"tag\" or \"reject\"".to_string())]
    );
}

#[test]
fn spam_keys_are_read_and_checked() {
    assert_eq!(Config::defaults().spam, None);
    let spam = parse_ok("[spam]\nrspamd = \"http://127.0.0.1:11333\"\n").spam.expect("on");
    assert_eq!(spam.rspamd.to_string(), "http://127.0.0.1:11333");
    assert_eq!((spam.controller, spam.failure, spam.timeout_secs), (None, super::SpamFailure::Accept, 10));
    assert_eq!(spam.reject_score, Some(postfach_types::SpamScore::from_hundredths(1500)));
    assert_eq!(spam.junk_score, Some(postfach_types::SpamScore::from_hundredths(600)));
    let spam = parse_ok(
        "[spam]\nrspamd = \"http://[::1]:11333\"\ncontroller = \"http://localhost:11334\"\npassword = \"pw\"\n\
         failure = \"defer\"\ntimeout_secs = 3\nreject_score = \"none\"\njunk_score = 4.5\n",
    )
    .spam
    .expect("on");
    assert_eq!(spam.failure, super::SpamFailure::Defer);
    assert_eq!((spam.timeout_secs, spam.reject_score), (3, None));
    assert_eq!(spam.junk_score, Some(postfach_types::SpamScore::from_hundredths(450)));
    assert!(!format!("{spam:?}").contains("pw\""), "the password is redacted");
    let keys = |text: &str| problems(text).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys("[spam]\ncontroller = \"http://127.0.0.1:11334\"\n"), ["spam.rspamd"]);
    assert_eq!(keys("[spam]\nrspamd = \"https://127.0.0.1:11333\"\n"), ["spam.rspamd"]);
    assert_eq!(keys("[spam]\nrspamd = \"http://127.0.0.1:1\"\nfailure = \"drop\"\n"), ["spam.failure"]);
    assert_eq!(keys("[spam]\nrspamd = \"http://127.0.0.1:1\"\ntimeout_secs = 600\n"), ["spam.timeout_secs"]);
    assert_eq!(
        keys("[spam]\nrspamd = \"http://127.0.0.1:1\"\njunk_score = 20\nreject_score = 10\n"),
        ["spam.junk_score"]
    );
    assert_eq!(keys("[spam]\nrspamd = \"http://127.0.0.1:1\"\njunk_score = \"high\"\n"), ["spam.junk_score"]);
    assert_eq!(keys("[spam]\nrspamd = \"http://127.0.0.1:1\"\nlearn = true\n"), ["spam.learn"]);
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("postfach.toml");
    std::fs::write(&file, "data_dir = \"data\"\n").expect("write config");
    let config = Config::load(Some(&file)).expect("valid file");
    assert_eq!(config.data_dir, dir.path().join("data"));
    assert_eq!(config.config_file.as_deref(), Some(file.as_path()));

    let missing = dir.path().join("missing.toml");
    let error = Config::load(Some(&missing)).expect_err("missing file");
    assert!(matches!(error, ConfigError::Io { .. }));
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
}

#[test]
fn outbound_ips_and_spf_name() {
    let config = parse_ok("hostname = \"mail.example.net\"\n[outbound]\nips = [\"192.0.2.25\", \"2001:db8::25\"]\n");
    assert_eq!(config.outbound.ips, ["192.0.2.25".parse::<IpAddr>().expect("ip"), "2001:db8::25".parse().expect("ip")]);
    assert_eq!(config.spf_name(), "_spf.mail.example.net", "the default follows the hostname");
    let config = parse_ok("[outbound]\nspf_name = \"_SPF.Example.NET.\"\n");
    assert_eq!(config.spf_name(), "_spf.example.net");
    assert_eq!(
        problems("[outbound]\nips = [\"192.0.2.300\", 7]\nspf_name = \"no spaces.example\"\nport = 1\n"),
        [
            (
                "outbound.ips[0]".to_string(),
                "'192.0.2.300' is not an IP address like 192.0.2.25 or 2001:db8::25".to_string()
            ),
            ("outbound.ips[1]".to_string(), "expected a string, found an integer".to_string()),
            (
                "outbound.spf_name".to_string(),
                "'no spaces.example' is not a DNS name like _spf.mail.example.net".to_string()
            ),
            ("outbound.port".to_string(), "unknown key".to_string()),
        ]
    );
}

#[test]
fn proxy_trusted_networks_are_read_and_checked() {
    assert!(Config::defaults().proxy.trusted_networks.is_empty(), "no PROXY header is read unless asked for");
    let config = parse_ok(
        "[proxy]\ntrusted_networks = [\"127.0.0.3/32\", \"10.0.0.0/8\", \"2001:db8::/48\", \"::ffff:192.0.2.0/120\", \"192.0.2.77\"]\n",
    );
    let shown: Vec<String> = config.proxy.trusted_networks.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["127.0.0.3/32", "10.0.0.0/8", "2001:db8::/48", "192.0.2.0/24", "192.0.2.77/32"]);
    assert_eq!(parse_ok("[proxy]\ntrusted_networks = []\n").proxy, Proxy::default());
    assert_eq!(
        problems(
            "[proxy]\ntrusted_networks = [\"10.0.0.1/8\", \"10.0.0.0/33\", \"lb.example/32\", 3, \"::ffff:0:0/80\"]\nnetworks = 1\n"
        ),
        [
            ("proxy.trusted_networks[0]".to_string(), "'10.0.0.1/8' has bits set past its prefix: write 10.0.0.0/8".to_string()),
            (
                "proxy.trusted_networks[1]".to_string(),
                "'10.0.0.0/33': the prefix length of an IPv4 network is at most 32".to_string()
            ),
            (
                "proxy.trusted_networks[2]".to_string(),
                "'lb.example/32' is not a network like 192.0.2.0/24, 2001:db8::/32 or 192.0.2.7".to_string()
            ),
            ("proxy.trusted_networks[3]".to_string(), "expected a string, found an integer".to_string()),
            (
                "proxy.trusted_networks[4]".to_string(),
                "'::ffff:0:0/80' covers IPv4-mapped and other IPv6 addresses: write IPv4 networks as IPv4, like 192.0.2.0/24"
                    .to_string()
            ),
            ("proxy.networks".to_string(), "unknown key".to_string()),
        ]
    );
    assert_eq!(
        problems("[proxy]\ntrusted_networks = \"10.0.0.0/8\"\n"),
        [(
            "proxy.trusted_networks".to_string(),
            "expected a list like [\"192.0.2.0/24\", \"2001:db8::/48\"], found a string".to_string()
        )]
    );
}

#[test]
fn the_cluster_node_is_read_and_checked() {
    let host = Config::defaults().cluster.node;
    assert!(!host.as_str().is_empty() && host.as_str().len() <= 63, "named after the machine: {host}");
    assert_eq!(parse_ok("[cluster]\nnode = \"mail-1.b_2\"\n").cluster.node.as_str(), "mail-1.b_2");
    assert_eq!(
        problems("[cluster]\nnode = \"mail 1\"\nnodes = 3\n"),
        [
            (
                "cluster.node".to_string(),
                "' ' is not allowed in a node name: use letters, digits, '-', '_' and '.'; like \"mail-1\" (unique \
                 within the cluster)"
                    .to_string()
            ),
            ("cluster.nodes".to_string(), "unknown key".to_string()),
        ]
    );
    let long = format!("[cluster]\nnode = \"{}\"\n", "n".repeat(64));
    assert_eq!(
        problems(&long)[0].1,
        "a node name has at most 63 characters; like \"mail-1\" (unique within the cluster)"
    );
    assert_eq!(
        problems("[cluster]\nnode = \"\"\n")[0].1,
        "a node name must not be empty; like \"mail-1\" (unique within the cluster)"
    );
}

#[test]
fn blobs_default_to_files_and_read_the_s3_keys() {
    assert_eq!(parse_ok("").blobs, postfach_blob::Backend::Fs);
    assert_eq!(parse_ok("[blobs]\nbackend = \"fs\"").blobs, postfach_blob::Backend::Fs);
    let config = parse_ok(
        r#"
        [blobs]
        backend = "s3"
        endpoint = "https://s3.example.net"
        bucket = "postfach"
        region = "garage"
        access_key_id = "GK31c2f218a2e44f485b94239e"
        secret_access_key = " 0123456789abcdef-very-secret "
        "#,
    );
    let postfach_blob::Backend::S3(s3) = &config.blobs else { panic!("s3 expected: {:?}", config.blobs) };
    assert_eq!(s3.endpoint, "https://s3.example.net");
    assert_eq!((s3.bucket.as_str(), s3.region.as_str()), ("postfach", "garage"));
    assert_eq!(s3.access_key_id, "GK31c2f218a2e44f485b94239e");
    assert_eq!(s3.secret_access_key.expose(), "0123456789abcdef-very-secret");
    let debug = format!("{config:?}");
    assert!(!debug.contains("very-secret"), "the secret is not in Debug output: {debug}");
    assert!(debug.contains("GK31c2f218a2e44f485b94239e"), "{debug}");
}

#[test]
fn the_s3_secret_may_come_from_a_file() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("s3.secret"), "from-the-file\n").expect("write");
    let text = r#"
        [blobs]
        backend = "s3"
        endpoint = "http://127.0.0.1:3900"
        bucket = "b"
        region = "r"
        access_key_id = "k"
        secret_access_key_file = "s3.secret"
    "#;
    let config = Config::from_toml_str(text, dir.path()).expect("valid");
    let postfach_blob::Backend::S3(s3) = &config.blobs else { panic!("s3 expected") };
    assert_eq!(s3.secret_access_key.expose(), "from-the-file");
    std::fs::write(dir.path().join("s3.secret"), " \n").expect("write");
    let Err(ConfigError::Invalid { problems, .. }) = Config::from_toml_str(text, dir.path()) else { panic!("invalid") };
    assert_eq!(problems[0].key, "blobs.secret_access_key_file");
    assert!(problems[0].message.ends_with("s3.secret is empty"), "{:?}", problems[0]);
}

#[test]
fn s3_mistakes_are_all_reported_without_the_secret() {
    assert_eq!(
        problems("[blobs]\nbackend = \"s3\"\nendpoint = \"s3.example.net\"\nsecret_access_key = \"hunter2-secret\"\nsecret_access_key_file = \"/x\""),
        [
            ("blobs.endpoint".to_string(), "must be a URL like \"https://s3.example.net\" (http:// only for a store on this host or network), without credentials".to_string()),
            ("blobs.bucket".to_string(), "missing: with backend = \"s3\" set it, the bucket's name, like \"postfach\"".to_string()),
            ("blobs.region".to_string(), "missing: with backend = \"s3\" set it, like \"garage\" or \"eu-central-1\"".to_string()),
            ("blobs.access_key_id".to_string(), "missing: with backend = \"s3\" set it, the key's id, like \"GK31c2f218a2e44f485b94239e\"".to_string()),
            ("blobs.secret_access_key".to_string(), "set either secret_access_key or secret_access_key_file, not both".to_string()),
        ]
    );
    let keys = |text: &str| problems(text).into_iter().map(|(key, _)| key).collect::<Vec<_>>();
    assert_eq!(
        keys(
            "[blobs]\nbackend = \"s3\"\nendpoint = \"http://a\"\nbucket = \"b\"\nregion = \"r\"\naccess_key_id = \"k\""
        ),
        ["blobs.secret_access_key"]
    );
    assert_eq!(keys("[blobs]\nbackend = \"gcs\""), ["blobs.backend"]);
    assert_eq!(keys("[blobs]\nbucket = \"b\"\nsize = 3"), ["blobs.bucket", "blobs.size"]);
    let error =
        Config::from_toml_str("[blobs]\nbackend = \"s3\"\nsecret_access_key = \"hunter2-secret\"", Path::new("/"))
            .expect_err("invalid")
            .to_string();
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn acme_is_off_unless_configured_and_read_when_it_is() {
    assert_eq!(parse_ok("").acme, None);
    let config = parse_ok(
        "[acme]\ndirectory = \"https://acme.example/dir\"\ncontact = \"mailto:ops@example.com\"\n\
         challenge = \"http-01\"\nca_file = \"ca.pem\"\n",
    );
    assert_eq!(
        config.acme,
        Some(Acme {
            directory: "https://acme.example/dir".into(),
            contact: "mailto:ops@example.com".into(),
            challenge: AcmeChallenge::Http01,
            ca_file: Some("/etc/postfach/ca.pem".into()),
        })
    );
    let config = parse_ok("[acme]\ndirectory = \"https://acme.example/dir\"\ncontact = \"mailto:ops@example.com\"\n");
    assert_eq!(config.acme.map(|a| a.challenge), Some(AcmeChallenge::TlsAlpn01), "tls-alpn-01 by default");
}

#[test]
fn acme_mistakes_are_reported() {
    let found = problems(
        "[acme]\ndirectory = \"http://acme.example/dir\"\ncontact = \"ops@example.com\"\nchallenge = \"dns-01\"\nkey = 1\n",
    );
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["acme.directory", "acme.contact", "acme.challenge", "acme.key"], "{found:?}");
    let found = problems("[acme]\ncontact = \"mailto:ops@example.com\"\n");
    assert_eq!(found[0].0, "acme.directory");
    let found = problems(
        "[listen]\nhttp = []\n[acme]\ndirectory = \"https://a.example/dir\"\ncontact = \"mailto:o@example.com\"\n\
         challenge = \"http-01\"\n",
    );
    assert_eq!(found[0].0, "acme.challenge");
    assert!(found[0].1.contains("[listen] http"), "{found:?}");
}

#[test]
fn the_sieve_section_is_read_and_checked() {
    assert_eq!(Config::defaults().sieve, Sieve::default());
    assert_eq!(Config::defaults().sieve.redirect, SieveRedirect::Customer);
    let config = parse_ok("[sieve]\nmax_scripts = 3\nmax_script_bytes = 1000\nredirect = \"any\"\n");
    assert_eq!(config.sieve, Sieve { max_scripts: 3, max_script_bytes: 1000, redirect: SieveRedirect::Any });
    assert_eq!(
        problems("[sieve]\nmax_scripts = 0\nredirect = \"everywhere\"\n"),
        [
            ("sieve.max_scripts".to_string(), "must be at least 1, found 0".to_string()),
            (
                "sieve.redirect".to_string(),
                "'everywhere' is not a redirect policy: use \"customer\" or \"any\"".to_string()
            ),
        ]
    );
}

#[test]
fn tls_reports_are_sent_unless_switched_off() {
    assert!(parse_ok("").tls_reports.send, "on by default");
    let off = parse_ok("[tls_reports]\nsend = false\n");
    assert!(!off.tls_reports.send);
    assert_eq!(off.tls_reports.address, None, "the address keeps its default");
    let found = problems("[tls_reports]\nsend = \"no\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "tls_reports.send");
}
