//! The SMTP command loop over a loopback socket against a real store, as MX and as
//! submission (chosen by the first byte, which also chooses whether a submission input
//! starts authenticated). SPF, DKIM and DMARC are looked up in a real local DNS server
//! that knows nothing. The server must close when the input ends, and its session must
//! not panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use postfach_fuzz::{ADDRESS, Harness, PASSWORD};
use postfach_net::{MemoryBudget, Protocol};
use postfach_smtp::{Kind, LocalDelivery, Services, Settings, Smtp, SpfFailAction};
use postfach_store::delivery::DeliveryBatcher;
use postfach_testdns::TestDns;
use postfach_types::DomainName;

struct Target {
    harness: Harness,
    mx: Arc<dyn Protocol>,
    submission: Arc<dyn Protocol>,
    _dns: TestDns,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let harness = Harness::new("smtp");
        let dns = TestDns::start([]);
        let smtp = harness.rt.block_on(async {
            let deliveries = DeliveryBatcher::start(harness.store.clone());
            let sink = Arc::new(LocalDelivery {
                store: harness.store.clone(),
                blobs: harness.blobs.clone(),
                deliveries: deliveries.clone(),
            });
            let services = Services {
                store: harness.store.clone(),
                blobs: harness.blobs.clone(),
                deliveries,
                auth: harness.auth.clone(),
                budget: MemoryBudget::new(64 << 20),
                dns_resolver: Some(dns.addr()),
                submissions: sink,
            };
            let settings = Settings::new(DomainName::parse("mx.acme.example").expect("name"), 1 << 20, 10, SpfFailAction::Tag);
            Smtp::new(settings, services).expect("smtp")
        });
        Target { mx: smtp.protocol(Kind::Mx), submission: smtp.protocol(Kind::Submission), harness, _dns: dns }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let t = target();
    let mut input = Vec::new();
    let protocol = if control & 1 == 0 {
        &t.mx
    } else {
        if control & 2 == 2 {
            use base64::Engine as _;
            let plain = format!("\0{ADDRESS}\0{PASSWORD}");
            let b64 = base64::engine::general_purpose::STANDARD.encode(plain);
            input.extend_from_slice(format!("EHLO fuzz.example\r\nAUTH PLAIN {b64}\r\n").as_bytes());
        }
        &t.submission
    };
    input.extend_from_slice(rest);
    t.harness.drive(protocol, &input);
    t.harness.trim(8);
});
