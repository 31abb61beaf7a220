//! Our own IMAP command syntax: the framer that cuts the client's byte stream into
//! commands ([`Framer`], `framing.rs`), the parser that turns one command into a typed
//! [`Command`] (`parse/`: primitives in `mod.rs`, then the command grammar, SEARCH and
//! FETCH each in its file) and the command AST itself (`command.rs`). It covers IMAP4rev1
//! (RFC 3501) and IMAP4rev2 (RFC 9051) with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE,
//! ESEARCH, SEARCHRES, CONDSTORE/QRESYNC, BINARY, LITERAL+/LITERAL-, STATUS=SIZE, QUOTA,
//! ID, ENABLE, MOVE and UIDPLUS, and replaces imap-codec on the command side.
//!
//! A session drives it like this (responses and the spool file are the session's):
//!
//! ```ignore
//! let mut framer = Framer::new(FramerConfig { max_line: 8192, max_command: 16384, ..Default::default() });
//! loop {
//!     match framer.next_event() {
//!         None => framer.push(&read_some(&mut socket).await?),
//!         Some(Event::Literal(lit)) => {
//!             let decision = if !logged_in && lit.len > PRE_LOGIN_LITERAL {
//!                 LiteralDecision::Refuse // remember to answer NO [LIMIT]
//!             } else if lit.append_data && lit.len > IN_MEMORY_APPEND {
//!                 spool = Some(Spool::create()?);
//!                 LiteralDecision::Stream
//!             } else {
//!                 LiteralDecision::Accept
//!             };
//!             // `decide` says whether the literal was taken; only then may `+` go out.
//!             if framer.decide(decision) && lit.sync {
//!                 write(b"+ go ahead\r\n").await?;
//!             }
//!         }
//!         Some(Event::LiteralChunk(bytes)) => spool.write_all(&bytes)?,
//!         Some(Event::Rejected { tag, reason }) => answer_no_or_bad(tag, reason).await?,
//!         Some(Event::Command(input)) => match input.parse() {
//!             Ok(command) => run(command, spool.take()).await?, // AppendData::Spooled -> file
//!             Err(e) => write_tagged(e.tag, "BAD", e.reason).await?,
//!         },
//!     }
//! }
//! ```

mod command;
mod framing;
mod parse;

pub use command::*;
pub use framing::{Event, Framer, FramerConfig, LITERAL_MINUS_MAX, LiteralAnnouncement, LiteralDecision, Rejection};
pub use parse::{
    CommandInput, MAX_SEARCH_DEPTH, MAX_SEARCH_KEYS, ParseError, SpooledLiteral, is_append_data_prefix, parse_command,
};

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const SAMPLES: [&[u8]; 12] = [
        b"a1 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)]<0.100>)\r\n",
        b"A142 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 4:6)))\r\n",
        b"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN SIZE))\r\n",
        b"t SEARCH RETURN (SAVE MIN) CHARSET UTF-8 OR NOT (FROM {3}\r\nabc SINCE 1-Feb-1994) UID $ MODSEQ 5\r\n",
        b"t FETCH $ (FLAGS BINARY.PEEK[1.2]<0.5> BODY[1.MIME])\r\n",
        b"a APPEND \"Sent\" (\\Seen) \"14-Jul-2023 02:44:25 -0700\" ~{5}\r\nhello\r\n",
        b"x UID STORE 1:3 (UNCHANGEDSINCE 7) +FLAGS.SILENT (\\Deleted $Label1)\r\n",
        b"a AUTHENTICATE PLAIN =\r\n",
        b"a ID (\"name\" \"mbsync\" \"os\" NIL)\r\n",
        b"a LOGIN {5+}\r\nalice \"se\\\"cret\"\r\n",
        b"c CREATE x (USE (\\Drafts))\r\nd SETQUOTA \"\" (STORAGE 5)\r\n",
        b"s UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\ne UID EXPUNGE 1\r\n",
    ];
    const SPECIALS: &[u8] = b"(){}[]<>\"\\ *%$~+-:.,0123456789\r\n\0\xff";

    fn mutate(rng: &mut StdRng, mut input: Vec<u8>) -> Vec<u8> {
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..=input.len());
            match rng.random_range(0..4) {
                0 if at < input.len() => input[at] = SPECIALS[rng.random_range(0..SPECIALS.len())],
                1 => input.insert(at, SPECIALS[rng.random_range(0..SPECIALS.len())]),
                2 if at < input.len() => drop(input.remove(at)),
                _ => {
                    let end = rng.random_range(at..=input.len().min(at + 20));
                    let copy = input[at..end].to_vec();
                    input.splice(at..at, copy);
                }
            }
        }
        input
    }

    /// Random bytes and mutated real commands through framer and parser: no panic, and the
    /// framer never holds more than its limits allow.
    #[test]
    fn random_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x1a2b_3c4d);
        for round in 0..4000 {
            let input = if round % 4 == 0 {
                (0..rng.random_range(0..400))
                    .map(|_| SPECIALS[rng.random_range(0..SPECIALS.len())] | rng.random::<u8>() & 0x40)
                    .collect()
            } else {
                mutate(&mut rng, SAMPLES[round % SAMPLES.len()].to_vec())
            };
            let _ = parse_command(&input);
            let config = FramerConfig { max_line: 120, max_command: 300, literal_minus: rng.random() };
            let mut framer = Framer::new(config);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (piece, more) = rest.split_at(rng.random_range(1..=rest.len()));
                rest = more;
                framer.push(piece);
                while let Some(event) = framer.next_event() {
                    assert!(framer.pending_command().len() <= config.max_line + config.max_command);
                    match event {
                        Event::Literal(_) => {
                            framer.decide(match rng.random_range(0..3) {
                                0 => LiteralDecision::Accept,
                                1 => LiteralDecision::Stream,
                                _ => LiteralDecision::Refuse,
                            });
                        }
                        Event::Command(input) => drop(input.parse()),
                        Event::LiteralChunk(_) | Event::Rejected { .. } => {}
                    }
                }
            }
        }
    }
}
