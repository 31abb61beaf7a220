//! The IMAP input side: the framer (fed in pieces, every literal decision tried) and the
//! command parser, as a session drives them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach_imap::protocol::{Event, Framer, FramerConfig, LiteralDecision};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let config = FramerConfig { max_line: 4096, max_command: 16 * 1024, literal_minus: control & 1 == 1 };
    let mut framer = Framer::new(config);
    let piece = usize::from(control >> 1).max(1);
    let mut decision = control;
    for chunk in input.chunks(piece) {
        framer.push(chunk);
        while let Some(event) = framer.next_event() {
            assert!(framer.pending_command().len() <= config.max_line + config.max_command);
            match event {
                Event::Literal(_) => {
                    decision = decision.rotate_left(1);
                    framer.decide(match decision % 3 {
                        0 => LiteralDecision::Accept,
                        1 => LiteralDecision::Stream,
                        _ => LiteralDecision::Refuse,
                    });
                }
                Event::Command(command) => {
                    let _ = command.parse();
                }
                Event::LiteralChunk(_) | Event::Rejected { .. } => {}
            }
        }
    }
    let _ = postfach_imap::protocol::parse_command(input);
});
