//! The vacation and filter forms as one Sieve script, and back: a pure function from the
//! forms' validated state to the script text ([`generate`]), and the reverse
//! ([`read_back`]) that recognises a script only when it is exactly what [`generate`]
//! writes for the state recorded in its first lines. Anything else (a script written by
//! hand, over ManageSieve, or edited in the "edit as Sieve" view) is not the forms'.
//!
//! The state is kept in the script itself, as one line of JSON in a comment at the top,
//! so no table is needed and a backup or a ManageSieve download carries it along.
//! Strings are quoted per RFC 5228 §2.4.2 (`"` and `\` escaped); control characters are
//! refused by the validation before anything is generated. Only base Sieve and the
//! extensions `fileinto` (with `mailbox`'s `:create`: a missing folder is made), `imap4flags`, `vacation`, `date` and `relational` are used.

use postfach_types::EmailAddress;
use serde::{Deserialize, Serialize};

/// The name of the script the forms write.
pub const SCRIPT_NAME: &str = "postfach";
/// The comment that starts every generated script.
const HEADLINE: &str = "# Postfach: written by the panel's vacation and filter forms. A change by hand makes the panel treat this script as hand-written.";
/// The prefix of the comment line that carries the forms' state.
const STATE_PREFIX: &str = "# postfach-forms: ";

/// Most filter rules a mailbox may have.
pub const MAX_RULES: usize = 100;
/// Longest vacation text, in characters.
pub const MAX_TEXT: usize = 10_000;
/// Longest subject, header value or folder name, in characters.
pub const MAX_VALUE: usize = 200;
/// Longest header name.
pub const MAX_HEADER_NAME: usize = 64;
/// Longest vacation interval, in days (RFC 5230 §4.1 lets a server cap it).
pub const MAX_DAYS: u32 = 30;
/// Most addresses a vacation names.
pub const MAX_ADDRESSES: usize = 50;

/// What is wrong with a form's input; each has its own text in the panel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the text contains a control character; use plain text")]
    ControlCharacter,
    #[error("a subject, header value or folder name has at most {MAX_VALUE} characters")]
    ValueTooLong,
    #[error("the vacation text has at most {MAX_TEXT} characters")]
    TextTooLong,
    #[error("write the text of the vacation reply")]
    TextMissing,
    #[error("a date is written as YYYY-MM-DD, like 2026-12-24")]
    InvalidDate,
    #[error("the last day of the vacation is before its first day")]
    DatesReversed,
    #[error("the days between two replies to the same sender are a whole number from 1 to {MAX_DAYS}")]
    InvalidDays,
    #[error("pick the addresses among the mailbox's own address and its aliases")]
    ForeignAddress,
    #[error("a filter compares From, To, Subject or a header named with letters, digits and hyphens")]
    InvalidHeader,
    #[error("a filter's comparison is contains or is")]
    InvalidMatch,
    #[error("a filter's action is move, mark_read, flag or discard")]
    InvalidAction,
    #[error("name the folder the message is moved to")]
    FolderMissing,
    #[error("write what the header is compared with")]
    ValueMissing,
    #[error("a mailbox has at most {MAX_RULES} filter rules")]
    TooManyRules,
}

/// The vacation form, as typed (the API's and the stored shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VacationInput {
    pub enabled: bool,
    /// First day, `YYYY-MM-DD`; empty: from now.
    pub from: String,
    /// Last day, `YYYY-MM-DD`; empty: until switched off.
    pub until: String,
    /// Empty: the server's default subject.
    pub subject: String,
    pub text: String,
    /// The mailbox's other addresses that count as its own (`:addresses`).
    pub addresses: Vec<String>,
    /// Days between two replies to the same sender; 0 is the default (7).
    pub days: u32,
}

/// One filter rule, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleInput {
    /// `from`, `to` (To or Cc), `subject`, or another header's name.
    pub header: String,
    /// `contains` or `is`.
    #[serde(rename = "match")]
    pub match_type: String,
    pub value: String,
    /// `move`, `mark_read`, `flag` or `discard`.
    pub action: String,
    /// The folder of `move`.
    pub folder: String,
}

/// A valid date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    year: u16,
    month: u8,
    day: u8,
}

impl Day {
    pub fn parse(text: &str) -> Result<Day, FormError> {
        let bytes = text.as_bytes();
        let shape = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape {
            return Err(FormError::InvalidDate);
        }
        let number = |range: std::ops::Range<usize>| text[range].parse::<u16>().map_err(|_| FormError::InvalidDate);
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(FormError::InvalidDate),
        };
        if !(2000..=2999).contains(&year) || day == 0 || day > days_in_month {
            return Err(FormError::InvalidDate);
        }
        Ok(Day { year, month: month as u8, day: day as u8 })
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A validated vacation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacation {
    pub enabled: bool,
    pub from: Option<Day>,
    pub until: Option<Day>,
    pub subject: String,
    pub text: String,
    pub addresses: Vec<EmailAddress>,
    pub days: u32,
}

/// The interval when none is given.
pub const DEFAULT_DAYS: u32 = 7;

impl Vacation {
    /// Validates the form; `own`: the mailbox's address and its aliases, the only
    /// addresses it may name (`None` when reading back a stored state: the addresses were
    /// checked when it was saved). A switched-off vacation is still checked, so that what
    /// is kept can be switched on later as it is.
    pub fn parse(input: &VacationInput, own: Option<&[EmailAddress]>) -> Result<Vacation, FormError> {
        let day = |text: &str| match text.trim() {
            "" => Ok(None),
            text => Day::parse(text).map(Some),
        };
        let (from, until) = (day(&input.from)?, day(&input.until)?);
        if let (Some(from), Some(until)) = (from, until)
            && until < from
        {
            return Err(FormError::DatesReversed);
        }
        let subject = one_line(&input.subject)?;
        let text = input.text.replace("\r\n", "\n");
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(FormError::ControlCharacter);
        }
        if text.chars().count() > MAX_TEXT {
            return Err(FormError::TextTooLong);
        }
        if input.enabled && text.trim().is_empty() {
            return Err(FormError::TextMissing);
        }
        let days = match input.days {
            0 => DEFAULT_DAYS,
            n if n <= MAX_DAYS => n,
            _ => return Err(FormError::InvalidDays),
        };
        if input.addresses.len() > MAX_ADDRESSES {
            return Err(FormError::ForeignAddress);
        }
        let mut addresses = Vec::new();
        for text in &input.addresses {
            let address = EmailAddress::parse(text.trim()).map_err(|_| FormError::ForeignAddress)?;
            if own.is_some_and(|own| !own.contains(&address)) {
                return Err(FormError::ForeignAddress);
            }
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        Ok(Vacation { enabled: input.enabled, from, until, subject, text, addresses, days })
    }

    pub fn input(&self) -> VacationInput {
        VacationInput {
            enabled: self.enabled,
            from: self.from.map(|d| d.to_string()).unwrap_or_default(),
            until: self.until.map(|d| d.to_string()).unwrap_or_default(),
            subject: self.subject.clone(),
            text: self.text.clone(),
            addresses: self.addresses.iter().map(|a| a.to_string()).collect(),
            days: self.days,
        }
    }
}

/// The header a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    From,
    /// To or Cc.
    To,
    Subject,
    /// Another header, by its name (letters, digits, hyphens).
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Contains,
    Is,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Into this folder.
    Move(String),
    MarkRead,
    Flag,
    Discard,
}

/// A validated filter rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub field: Field,
    pub match_type: Match,
    pub value: String,
    pub action: Action,
}

impl Rule {
    pub fn parse(input: &RuleInput) -> Result<Rule, FormError> {
        let header = input.header.trim();
        let field = match header.to_ascii_lowercase().as_str() {
            "from" => Field::From,
            "to" => Field::To,
            "subject" => Field::Subject,
            _ => {
                let fits = !header.is_empty()
                    && header.len() <= MAX_HEADER_NAME
                    && header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !fits {
                    return Err(FormError::InvalidHeader);
                }
                Field::Named(header.to_string())
            }
        };
        let match_type = match input.match_type.trim() {
            "contains" | "" => Match::Contains,
            "is" => Match::Is,
            _ => return Err(FormError::InvalidMatch),
        };
        let value = one_line(&input.value)?;
        if value.is_empty() {
            return Err(FormError::ValueMissing);
        }
        let action = match input.action.trim() {
            "move" => {
                let folder = one_line(&input.folder)?;
                if folder.is_empty() {
                    return Err(FormError::FolderMissing);
                }
                Action::Move(folder)
            }
            "mark_read" => Action::MarkRead,
            "flag" => Action::Flag,
            "discard" => Action::Discard,
            _ => return Err(FormError::InvalidAction),
        };
        Ok(Rule { field, match_type, value, action })
    }

    pub fn input(&self) -> RuleInput {
        let header = match &self.field {
            Field::From => "from".to_string(),
            Field::To => "to".to_string(),
            Field::Subject => "subject".to_string(),
            Field::Named(name) => name.clone(),
        };
        let (action, folder) = match &self.action {
            Action::Move(folder) => ("move", folder.clone()),
            Action::MarkRead => ("mark_read", String::new()),
            Action::Flag => ("flag", String::new()),
            Action::Discard => ("discard", String::new()),
        };
        RuleInput {
            header,
            match_type: match self.match_type {
                Match::Contains => "contains",
                Match::Is => "is",
            }
            .to_string(),
            value: self.value.clone(),
            action: action.to_string(),
            folder,
        }
    }
}

/// Parses a list of rules, in order.
pub fn parse_rules(inputs: &[RuleInput]) -> Result<Vec<Rule>, FormError> {
    if inputs.len() > MAX_RULES {
        return Err(FormError::TooManyRules);
    }
    inputs.iter().map(Rule::parse).collect()
}

/// A single-line text: trimmed, no control characters, bounded.
fn one_line(text: &str) -> Result<String, FormError> {
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err(FormError::ControlCharacter);
    }
    if text.chars().count() > MAX_VALUE {
        return Err(FormError::ValueTooLong);
    }
    Ok(text.to_string())
}

/// Everything the two forms hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forms {
    /// `None`: never filled in.
    pub vacation: Option<Vacation>,
    pub rules: Vec<Rule>,
}

/// The stored shape of [`Forms`], in the script's state comment.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StoredForms {
    version: u32,
    vacation: Option<VacationInput>,
    rules: Vec<RuleInput>,
}

/// A Sieve quoted string (RFC 5228 §2.4.2): `"` and `\` escaped. The text has no control
/// characters but newlines and tabs (the validation refused them).
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The script for the forms' state. Pure: the same state always gives the same text.
pub fn generate(forms: &Forms) -> String {
    let stored = StoredForms {
        version: 1,
        vacation: forms.vacation.as_ref().map(Vacation::input),
        rules: forms.rules.iter().map(Rule::input).collect(),
    };
    // Compact JSON has no raw newline: control characters are escaped.
    let state = serde_json::to_string(&stored).unwrap_or_default();
    let vacation = forms.vacation.as_ref().filter(|v| v.enabled);
    let mut require = Vec::new();
    if forms.rules.iter().any(|r| matches!(r.action, Action::Move(_))) {
        require.extend(["fileinto", "mailbox"]);
    }
    if forms.rules.iter().any(|r| matches!(r.action, Action::MarkRead | Action::Flag)) {
        require.push("imap4flags");
    }
    if let Some(v) = vacation {
        require.push("vacation");
        if v.from.is_some() || v.until.is_some() {
            require.extend(["date", "relational"]);
        }
    }
    let mut out = format!("{HEADLINE}\n{STATE_PREFIX}{state}\n");
    if !require.is_empty() {
        let list: Vec<String> = require.iter().map(|r| quote(r)).collect();
        out.push_str(&format!("require [{}];\n", list.join(", ")));
    }
    if let Some(v) = vacation {
        out.push_str("\n# Vacation reply\n");
        let dates: Vec<String> = [("ge", v.from), ("le", v.until)]
            .iter()
            .filter_map(|(op, day)| day.map(|d| format!("currentdate :value \"{op}\" \"date\" \"{d}\"")))
            .collect();
        let indent = if dates.is_empty() { "" } else { "    " };
        match dates.len() {
            0 => {}
            1 => out.push_str(&format!("if {} {{\n", dates[0])),
            _ => out.push_str(&format!("if allof ({}) {{\n", dates.join(", "))),
        }
        out.push_str(&format!("{indent}vacation :days {}", v.days));
        if !v.subject.is_empty() {
            out.push_str(&format!(" :subject {}", quote(&v.subject)));
        }
        if !v.addresses.is_empty() {
            let list: Vec<String> = v.addresses.iter().map(|a| quote(&a.to_string())).collect();
            out.push_str(&format!(" :addresses [{}]", list.join(", ")));
        }
        out.push_str(&format!(" {};\n", quote(&v.text)));
        if !dates.is_empty() {
            out.push_str("}\n");
        }
    }
    if !forms.rules.is_empty() {
        out.push_str("\n# Filters: the first rule that matches applies.\n");
        for (i, rule) in forms.rules.iter().enumerate() {
            let keyword = if i == 0 { "if" } else { "} elsif" };
            out.push_str(&format!("{keyword} {} {{\n    {}\n", test(rule), action(&rule.action)));
        }
        out.push_str("}\n");
    }
    out
}

fn test(rule: &Rule) -> String {
    let headers = match &rule.field {
        Field::From => quote("from"),
        Field::To => format!("[{}, {}]", quote("to"), quote("cc")),
        Field::Subject => quote("subject"),
        Field::Named(name) => quote(name),
    };
    let match_type = match rule.match_type {
        Match::Contains => ":contains",
        Match::Is => ":is",
    };
    format!("header {match_type} {headers} {}", quote(&rule.value))
}

fn action(action: &Action) -> String {
    match action {
        Action::Move(folder) => format!("fileinto :create {};", quote(folder)),
        Action::MarkRead => format!("addflag {};", quote("\\Seen")),
        Action::Flag => format!("addflag {};", quote("\\Flagged")),
        Action::Discard => "discard;".to_string(),
    }
}

/// The forms' state of a script, if the script is exactly what [`generate`] writes for
/// the state it records; `None` for anything else (written by hand, edited, or not a
/// script of the forms at all).
pub fn read_back(script: &str) -> Option<Forms> {
    let forms = recorded_state(script)?;
    (generate(&forms) == script.replace("\r\n", "\n")).then_some(forms)
}

/// The state a script of the forms records in its first lines, even when the rest was
/// changed by hand since (what the forms held last); `None` without a valid record.
pub fn recorded_state(script: &str) -> Option<Forms> {
    let mut lines = script.lines();
    if lines.next()?.trim_end_matches('\r') != HEADLINE {
        return None;
    }
    let state = lines.next()?.trim_end_matches('\r').strip_prefix(STATE_PREFIX)?;
    let stored: StoredForms = serde_json::from_str(state).ok()?;
    if stored.version != 1 {
        return None;
    }
    let vacation = match stored.vacation {
        Some(v) => Some(Vacation::parse(&v, None).ok()?),
        None => None,
    };
    Some(Forms { vacation, rules: parse_rules(&stored.rules).ok()? })
}
