//! POP3 command lines, parsed once at the edge into [`Command`] (RFC 1939 §3, RFC 2449,
//! RFC 2595, RFC 5034).
//!
//! Keywords are case-insensitive; arguments are separated by single spaces. The argument
//! of `PASS` is the rest of the line, so passwords with spaces work (RFC 1939 §7 allows
//! the server to treat it that way). Message numbers are decimal and start at 1; a number
//! that does not fit is kept as "no such message" rather than a syntax error.

use postfach_types::Secret;

/// One client command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// RFC 2449 §5.
    Capa,
    /// RFC 1939 §7.
    User(String),
    /// RFC 1939 §7.
    Pass(Secret<String>),
    /// RFC 5034 §4: the mechanism (upper-cased) and the initial response, if any.
    /// `None` mechanism: the bare `AUTH` some clients send to list mechanisms.
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    /// RFC 2595 §4.
    Stls,
    /// RFC 1939 §5.
    Stat,
    List(Option<MsgNum>),
    Uidl(Option<MsgNum>),
    Retr(MsgNum),
    Dele(MsgNum),
    /// RFC 1939 §7: message and number of body lines.
    Top(MsgNum, u64),
    Noop,
    Rset,
    Quit,
}

/// A message number as the client sent it; 0 or out of range never names a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgNum(pub u64);

/// Why a line is not a command we run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
}

impl Command {
    /// The command's keyword, for the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stls => "STLS",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Top(..) => "TOP",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
        }
    }

    /// Parses one line, without its CRLF.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("commands are plain text"))?;
        let (keyword, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, Some(r)),
            None => (line, None),
        };
        if keyword.len() > 4 || keyword.is_empty() {
            return Err(ParseError::Unknown);
        }
        let keyword = keyword.to_ascii_uppercase();
        let args: Vec<&str> = rest.map(|r| r.split(' ').filter(|a| !a.is_empty()).collect()).unwrap_or_default();
        let none =
            |cmd: Command| if args.is_empty() { Ok(cmd) } else { Err(ParseError::Syntax("no arguments expected")) };
        match keyword.as_str() {
            "CAPA" => none(Command::Capa),
            "STLS" => none(Command::Stls),
            "STAT" => none(Command::Stat),
            "NOOP" => none(Command::Noop),
            "RSET" => none(Command::Rset),
            "QUIT" => none(Command::Quit),
            "USER" => match args.as_slice() {
                [name] => Ok(Command::User((*name).to_string())),
                _ => Err(ParseError::Syntax("usage: USER address")),
            },
            "PASS" => match rest {
                Some(p) if !p.is_empty() => Ok(Command::Pass(Secret::new(p.to_string()))),
                _ => Err(ParseError::Syntax("usage: PASS password")),
            },
            "AUTH" => match args.as_slice() {
                [] => Ok(Command::Auth { mechanism: None, initial: None }),
                [mech] => Ok(Command::Auth { mechanism: Some(mech.to_ascii_uppercase()), initial: None }),
                [mech, initial] => Ok(Command::Auth {
                    mechanism: Some(mech.to_ascii_uppercase()),
                    initial: Some((*initial).to_string()),
                }),
                _ => Err(ParseError::Syntax("usage: AUTH mechanism [initial-response]")),
            },
            "LIST" | "UIDL" => {
                let n = match args.as_slice() {
                    [] => None,
                    [n] => Some(msg_num(n)?),
                    _ => return Err(ParseError::Syntax("usage: LIST [message-number]")),
                };
                Ok(if keyword == "LIST" { Command::List(n) } else { Command::Uidl(n) })
            }
            "RETR" | "DELE" => {
                let n = match args.as_slice() {
                    [n] => msg_num(n)?,
                    _ => return Err(ParseError::Syntax("a message number is needed")),
                };
                Ok(if keyword == "RETR" { Command::Retr(n) } else { Command::Dele(n) })
            }
            "TOP" => match args.as_slice() {
                [n, lines] => Ok(Command::Top(msg_num(n)?, number(lines)?)),
                _ => Err(ParseError::Syntax("usage: TOP message-number lines")),
            },
            _ => Err(ParseError::Unknown),
        }
    }
}

fn number(s: &str) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("numbers are written in digits"));
    }
    // Too large to mean anything: saturate (no message has that number or that many lines).
    Ok(s.parse().unwrap_or(u64::MAX))
}

fn msg_num(s: &str) -> Result<MsgNum, ParseError> {
    number(s).map(MsgNum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, ParseError> {
        Command::parse(s.as_bytes())
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse("capa"), Ok(Command::Capa));
        assert_eq!(parse("Stat"), Ok(Command::Stat));
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert_eq!(parse("stls"), Ok(Command::Stls));
    }

    #[test]
    fn message_numbers() {
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("LIST 3"), Ok(Command::List(Some(MsgNum(3)))));
        assert_eq!(parse("uidl 1"), Ok(Command::Uidl(Some(MsgNum(1)))));
        assert_eq!(parse("RETR 12"), Ok(Command::Retr(MsgNum(12))));
        assert_eq!(parse("DELE 99999999999999999999999"), Ok(Command::Dele(MsgNum(u64::MAX))));
        assert_eq!(parse("TOP 1 0"), Ok(Command::Top(MsgNum(1), 0)));
        assert!(matches!(parse("RETR"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("RETR x"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("RETR -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("TOP 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("LIST 1 2"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("STAT 1"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn credentials() {
        assert_eq!(parse("USER max@acme.example"), Ok(Command::User("max@acme.example".into())));
        assert_eq!(parse("PASS two words  here"), Ok(Command::Pass(Secret::new("two words  here".into()))));
        assert!(matches!(parse("PASS"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse("USER"), Err(ParseError::Syntax(_))));
        assert_eq!(parse("AUTH"), Ok(Command::Auth { mechanism: None, initial: None }));
        assert_eq!(parse("auth plain"), Ok(Command::Auth { mechanism: Some("PLAIN".into()), initial: None }));
        assert_eq!(
            parse("AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth { mechanism: Some("PLAIN".into()), initial: Some("AGEAYg==".into()) })
        );
    }

    #[test]
    fn unknown_and_apop_are_refused() {
        assert_eq!(parse("APOP max 0123"), Err(ParseError::Unknown));
        assert_eq!(parse("XTND"), Err(ParseError::Unknown));
        assert_eq!(parse(""), Err(ParseError::Unknown));
        assert_eq!(parse("RETRIEVE 1"), Err(ParseError::Unknown));
        assert!(matches!(Command::parse(b"US\xffR"), Err(ParseError::Syntax(_))));
    }
}
