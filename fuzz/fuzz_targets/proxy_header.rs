//! The PROXY protocol header parser (v1 and v2) that reads what a trusted load balancer
//! sends first: fed whole and the way the reader feeds it, `need` bytes at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_net::proxy::{Parse, V1_MAX, V2_MAX_PAYLOAD, parse};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Parse::Complete { len, .. }) = whole {
        assert!(len <= data.len() && len <= (V1_MAX).max(16 + V2_MAX_PAYLOAD));
    }
    // As the reader reads: exactly `need` more bytes each time, never past a header's end.
    let mut taken = 0;
    loop {
        match parse(&data[..taken]) {
            Ok(Parse::Complete { header, len }) => {
                assert_eq!(len, taken, "a header ends exactly where the reader stopped");
                assert_eq!(whole, Ok(Parse::Complete { header, len }), "bytes after a header change nothing");
                break;
            }
            Ok(Parse::Incomplete { need }) => {
                assert!(need >= 1);
                if taken + need > data.len() {
                    break;
                }
                taken += need;
            }
            Err(e) => {
                assert_eq!(whole, Err(e), "more bytes do not mend a refused prefix");
                break;
            }
        }
    }
});
