//! The command syntax of RFC 5804 §4: a command name, then strings (quoted or literal)
//! and numbers, on one line that literals may continue.
//!
//! A line is split into [`Token`]s by [`tokenize`]; a line that ends in a literal marker
//! (`{N+}`, or `{N}`, which clients send the same way: ManageSieve has no continuation
//! request) tells the session how many bytes to read before the next line. The session
//! bounds `N` before reading a byte of it. [`Command::parse`] then checks the arguments.

use std::fmt;

/// One element of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word: the command name, a number.
    Atom(String),
    /// A quoted string or a literal, as bytes.
    String(Vec<u8>),
}

/// Why a command line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a command of RFC 5804.
    Unknown,
    /// A known command with wrong arguments; the text says what is expected.
    Syntax(&'static str),
}

/// Reads the tokens of `line` (without its line end) into `tokens`. Returns the length
/// of the literal that follows the line, if it ends with a literal marker.
pub fn tokenize(line: &[u8], tokens: &mut Vec<Token>) -> Result<Option<u64>, ParseError> {
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'"' => {
                let (text, next) = quoted(line, i + 1)?;
                tokens.push(Token::String(text));
                i = next;
            }
            b'{' => {
                let end = line[i..].iter().position(|&b| b == b'}').map(|p| i + p);
                let Some(end) = end.filter(|&end| end + 1 == line.len()) else {
                    return Err(ParseError::Syntax("a literal {N+} must end the line"));
                };
                let inner = &line[i + 1..end];
                let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                return literal_length(digits).map(Some);
            }
            _ => {
                let end = line[i..].iter().position(|&b| b == b' ').map_or(line.len(), |p| i + p);
                let word = &line[i..end];
                if word.iter().any(|&b| !b.is_ascii_graphic() || matches!(b, b'"' | b'{' | b'}')) {
                    return Err(ParseError::Syntax("strings must be in double quotes"));
                }
                tokens.push(Token::Atom(String::from_utf8_lossy(word).into_owned()));
                i = end;
            }
        }
    }
    Ok(None)
}

/// The longest literal length accepted by the syntax; the session's limits are far lower.
const MAX_DIGITS: usize = 10;

fn literal_length(digits: &[u8]) -> Result<u64, ParseError> {
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Syntax("a literal is {N+} with N the number of bytes"));
    }
    // At most ten digits: always fits.
    Ok(digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A quoted string starting after its opening quote (RFC 5804 §4: `\"` and `\\` are the
/// only escapes; no CR or LF inside). Returns its bytes and the index after it.
fn quoted(line: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), ParseError> {
    let mut text = Vec::new();
    while i < line.len() {
        match line[i] {
            b'"' => return Ok((text, i + 1)),
            b'\\' => match line.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    text.push(c);
                    i += 2;
                }
                _ => return Err(ParseError::Syntax("inside quotes only \\\" and \\\\ may follow a backslash")),
            },
            b'\r' | b'\n' | 0 => return Err(ParseError::Syntax("a quoted string cannot hold line breaks")),
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(ParseError::Syntax("a quoted string is missing its closing quote"))
}

/// A command of RFC 5804 §2 with its arguments. Script names and scripts are UTF-8
/// (RFC 5804 §1.6, §2.6); other bytes are a syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    StartTls,
    Authenticate { mechanism: String, initial: Option<Vec<u8>> },
    Logout,
    Noop { tag: Option<String> },
    Unauthenticate,
    HaveSpace { name: String, size: u64 },
    PutScript { name: String, script: String },
    ListScripts,
    SetActive { name: String },
    GetScript { name: String },
    DeleteScript { name: String },
    RenameScript { from: String, to: String },
    CheckScript { script: String },
}

impl Command {
    /// The command in `tokens` (a whole command, literals included).
    pub fn parse(tokens: Vec<Token>) -> Result<Command, ParseError> {
        let mut tokens = tokens.into_iter();
        let Some(Token::Atom(name)) = tokens.next() else { return Err(ParseError::Unknown) };
        let mut args = Args { tokens: tokens.collect::<Vec<_>>().into_iter() };
        let command = match name.to_ascii_uppercase().as_str() {
            "CAPABILITY" => Command::Capability,
            "STARTTLS" => Command::StartTls,
            "LOGOUT" => Command::Logout,
            "UNAUTHENTICATE" => Command::Unauthenticate,
            "LISTSCRIPTS" => Command::ListScripts,
            "NOOP" => Command::Noop { tag: args.optional_text("NOOP [\"tag\"]")? },
            "AUTHENTICATE" => {
                let usage = "AUTHENTICATE \"PLAIN\" [\"initial response\"]";
                let mechanism = args.text(usage)?;
                Command::Authenticate { mechanism, initial: args.optional_string(usage)? }
            }
            "HAVESPACE" => {
                let usage = "HAVESPACE \"name\" size";
                let name = args.text(usage)?;
                Command::HaveSpace { name, size: args.number(usage)? }
            }
            "PUTSCRIPT" => {
                let usage = "PUTSCRIPT \"name\" {N+} followed by the script";
                let name = args.text(usage)?;
                Command::PutScript { name, script: args.text(usage)? }
            }
            "SETACTIVE" => Command::SetActive { name: args.text("SETACTIVE \"name\" (\"\" for none)")? },
            "GETSCRIPT" => Command::GetScript { name: args.text("GETSCRIPT \"name\"")? },
            "DELETESCRIPT" => Command::DeleteScript { name: args.text("DELETESCRIPT \"name\"")? },
            "RENAMESCRIPT" => {
                let usage = "RENAMESCRIPT \"old name\" \"new name\"";
                let from = args.text(usage)?;
                Command::RenameScript { from, to: args.text(usage)? }
            }
            "CHECKSCRIPT" => Command::CheckScript { script: args.text("CHECKSCRIPT {N+} followed by the script")? },
            _ => return Err(ParseError::Unknown),
        };
        if args.tokens.next().is_some() {
            return Err(ParseError::Syntax(command.usage()));
        }
        Ok(command)
    }

    /// The name metrics count the command under.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Logout => "LOGOUT",
            Command::Noop { .. } => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive { .. } => "SETACTIVE",
            Command::GetScript { .. } => "GETSCRIPT",
            Command::DeleteScript { .. } => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript { .. } => "CHECKSCRIPT",
        }
    }

    fn usage(&self) -> &'static str {
        match self {
            Command::Capability
            | Command::StartTls
            | Command::Logout
            | Command::Unauthenticate
            | Command::ListScripts => "this command takes no arguments",
            _ => "too many arguments",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

struct Args {
    tokens: std::vec::IntoIter<Token>,
}

impl Args {
    fn string(&mut self, usage: &'static str) -> Result<Vec<u8>, ParseError> {
        match self.tokens.next() {
            Some(Token::String(bytes)) => Ok(bytes),
            _ => Err(ParseError::Syntax(usage)),
        }
    }

    fn text(&mut self, usage: &'static str) -> Result<String, ParseError> {
        String::from_utf8(self.string(usage)?).map_err(|_| ParseError::Syntax("names and scripts must be UTF-8 text"))
    }

    fn optional_string(&mut self, usage: &'static str) -> Result<Option<Vec<u8>>, ParseError> {
        match self.tokens.as_slice().first() {
            None => Ok(None),
            Some(_) => self.string(usage).map(Some),
        }
    }

    fn optional_text(&mut self, usage: &'static str) -> Result<Option<String>, ParseError> {
        match self.tokens.as_slice().first() {
            None => Ok(None),
            Some(_) => self.text(usage).map(Some),
        }
    }

    fn number(&mut self, usage: &'static str) -> Result<u64, ParseError> {
        match self.tokens.next() {
            // RFC 5804 §4: number = 1*DIGIT, below 4294967296.
            Some(Token::Atom(word)) if !word.is_empty() && word.len() <= MAX_DIGITS => {
                word.parse::<u32>().map(u64::from).map_err(|_| ParseError::Syntax(usage))
            }
            _ => Err(ParseError::Syntax(usage)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, ParseError> {
        let mut tokens = Vec::new();
        assert_eq!(tokenize(line.as_bytes(), &mut tokens)?, None);
        Command::parse(tokens)
    }

    #[test]
    fn commands_and_their_arguments() {
        assert_eq!(parse_line("capability"), Ok(Command::Capability));
        assert_eq!(parse_line("NOOP \"x1\""), Ok(Command::Noop { tag: Some("x1".into()) }));
        assert_eq!(
            parse_line("AUTHENTICATE \"PLAIN\" \"AGEAYg==\""),
            Ok(Command::Authenticate { mechanism: "PLAIN".into(), initial: Some(b"AGEAYg==".to_vec()) })
        );
        assert_eq!(parse_line("HAVESPACE \"a\" 100"), Ok(Command::HaveSpace { name: "a".into(), size: 100 }));
        assert_eq!(
            parse_line(r#"RENAMESCRIPT "a \"b\"" "c\\d""#),
            Ok(Command::RenameScript { from: "a \"b\"".into(), to: "c\\d".into() })
        );
        assert_eq!(parse_line("SETACTIVE \"\""), Ok(Command::SetActive { name: String::new() }));
    }

    #[test]
    fn bad_commands_say_what_is_expected() {
        assert_eq!(parse_line("FROB"), Err(ParseError::Unknown));
        assert!(matches!(parse_line("GETSCRIPT"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse_line("GETSCRIPT a"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse_line("HAVESPACE \"a\" 99999999999"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse_line("LOGOUT \"x\""), Err(ParseError::Syntax(_))));
        assert!(matches!(parse_line("GETSCRIPT \"open"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse_line("GETSCRIPT \"a\\x\""), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn literal_markers_end_the_line_and_are_bounded() {
        let mut tokens = Vec::new();
        assert_eq!(tokenize(b"PUTSCRIPT \"a\" {12+}", &mut tokens), Ok(Some(12)));
        assert_eq!(tokens, [Token::Atom("PUTSCRIPT".into()), Token::String(b"a".to_vec())]);
        assert_eq!(tokenize(b"CHECKSCRIPT {7}", &mut Vec::new()), Ok(Some(7)));
        assert!(tokenize(b"CHECKSCRIPT {12345678901+}", &mut Vec::new()).is_err());
        assert!(tokenize(b"CHECKSCRIPT {+}", &mut Vec::new()).is_err());
        assert!(tokenize(b"CHECKSCRIPT {3+} x", &mut Vec::new()).is_err());
        assert!(tokenize(b"CHECKSCRIPT {-3+}", &mut Vec::new()).is_err());
    }
}
