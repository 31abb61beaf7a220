//! What is wrong with a script, in words its author understands, with where it is.

use sieve::compiler::{CompileError, ErrorType};

/// A script that cannot be stored: displays as "line L, column C: what is wrong".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {what}")]
pub struct ScriptError {
    pub line: usize,
    pub column: usize,
    pub what: String,
}

impl ScriptError {
    pub(crate) fn from_compile(e: CompileError) -> ScriptError {
        ScriptError { line: e.line_num().max(1), column: e.line_pos().max(1), what: describe(e.error_type()) }
    }

    /// An extension the script requires that this server does not run; placed at its
    /// first mention in the text.
    pub(crate) fn unsupported(text: &str, name: &str) -> ScriptError {
        let quoted = format!("\"{name}\"");
        let (line, column) = match text.find(&quoted) {
            Some(at) => {
                let before = &text[..at];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (line, column)
            }
            None => (1, 1),
        };
        ScriptError {
            line,
            column,
            what: format!(
                "the extension \"{name}\" is not supported here; supported are: {}",
                crate::SUPPORTED.join(", ")
            ),
        }
    }
}

/// The compiler's reason in plain words.
fn describe(error: &ErrorType) -> String {
    match error {
        ErrorType::InvalidCharacter(c) => format!("the character {:?} is not allowed here", char::from(*c)),
        ErrorType::InvalidNumber(n) => format!("{n:?} is not a number Sieve understands (like 10, 10K or 2M)"),
        ErrorType::InvalidMatchVariable(n) => format!("there is no match variable ${{{n}}}"),
        ErrorType::InvalidUnicodeSequence(_) => "this encoded character is not a valid Unicode character".into(),
        ErrorType::InvalidNamespace(n) => format!("{n:?} is not a known variable namespace"),
        ErrorType::InvalidRegex(r) => format!("{r:?} is not a valid regular expression"),
        ErrorType::InvalidExpression(e) => format!("{e} is not a valid expression"),
        ErrorType::InvalidUtf8String => "the text is not valid UTF-8".into(),
        ErrorType::InvalidHeaderName => "that is not a valid header field name".into(),
        ErrorType::InvalidArguments => "the arguments of this command are not right".into(),
        ErrorType::InvalidAddress => "that is not a valid e-mail address".into(),
        ErrorType::InvalidURI => "that is not a valid URI".into(),
        ErrorType::InvalidEnvelope(e) => format!("{e:?} is not a part of the envelope (use from or to)"),
        ErrorType::UnterminatedString => "a quoted string is not closed; add the missing \"".into(),
        ErrorType::UnterminatedComment => "a comment is not closed; add the missing */".into(),
        ErrorType::UnterminatedMultiline => "a text: block is not closed; end it with a line holding only a dot".into(),
        ErrorType::UnterminatedBlock => "a block is not closed; add the missing }".into(),
        ErrorType::ScriptTooLong => "the script is too long".into(),
        ErrorType::StringTooLong => "a string is too long".into(),
        ErrorType::VariableTooLong => "a variable name is too long".into(),
        ErrorType::VariableIsLocal(v) => format!("the variable {v:?} is already local"),
        ErrorType::HeaderTooLong => "a header field value is too long".into(),
        ErrorType::ExpectedConstantString => "this needs a fixed string, without variables".into(),
        ErrorType::UnexpectedToken { expected, found } => format!("expected {expected} but found {found:?}"),
        ErrorType::UnexpectedEOF => "the script ends too early; is a } or ; missing?".into(),
        ErrorType::TooManyNestedBlocks => "blocks are nested too deeply".into(),
        ErrorType::TooManyNestedTests => "tests are nested too deeply".into(),
        ErrorType::TooManyNestedForEveryParts => "foreverypart is nested too deeply".into(),
        ErrorType::TooManyIncludes => "include is not supported here".into(),
        ErrorType::LabelAlreadyDefined(l) => format!("the name {l:?} is used twice"),
        ErrorType::LabelUndefined(l) => format!("the name {l:?} is not defined"),
        ErrorType::BreakOutsideLoop => "break is used outside a loop".into(),
        ErrorType::ContinueOutsideLoop => "continue is used outside a loop".into(),
        ErrorType::UnsupportedComparator(c) => format!("the comparator {c:?} is not supported"),
        ErrorType::DuplicatedParameter => "an argument is given twice".into(),
        ErrorType::UndeclaredCapability(c) => {
            format!("this needs the extension \"{c}\"; add require \"{c}\"; at the top of the script")
        }
        ErrorType::MissingTag(t) => format!("this needs the argument {t}"),
    }
}
