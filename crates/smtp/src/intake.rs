//! What happens between the end of DATA and the reply: the received message is read
//! back from its spool file under the shared memory budget, put into CRLF form, parsed
//! once with `postfach_message` (the same parse IMAP shows), and checked — structure and
//! header (for every message, [`postfach_message::check_intake`]), the authors
//! (submission: [`crate::senders`]) and the `From:` domains (the MX).

use postfach_blob::SpoolFile;
use std::time::Duration;

use postfach_message::IntakeError;
use postfach_net::{MemoryBudget, Reservation};

/// A received message in memory, with the budget it holds.
#[derive(Debug)]
pub struct Received {
    /// With CRLF line endings (RFC 5322 §2.1).
    pub bytes: Vec<u8>,
    _reservation: Reservation,
}

/// Memory reserved per byte of a spooled message: the bytes, their CRLF copy (bare LFs
/// double, at most), and the stored copy with its added fields.
pub const RESERVE_FACTOR: u64 = 4;
/// How long a finished message waits for its share of the budget before the client is
/// asked to try again (other sessions may hold it while slow clients read).
const BUDGET_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the memory budget stayed spent for {0:?}")]
    Busy(Duration),
    #[error(transparent)]
    Spool(#[from] postfach_blob::BlobError),
}

/// Reads a spooled message back; waits (a bounded time) while other sessions hold the
/// budget.
pub async fn load(file: SpoolFile, budget: &MemoryBudget) -> Result<Received, LoadError> {
    let want = file.len().saturating_mul(RESERVE_FACTOR);
    let reservation =
        tokio::time::timeout(BUDGET_WAIT, budget.reserve(want)).await.map_err(|_| LoadError::Busy(BUDGET_WAIT))?;
    let bytes = file.read_all().await?;
    let crlf = match postfach_message::crlf_line_endings(&bytes) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(crlf) => Some(crlf),
    };
    let bytes = crlf.unwrap_or(bytes);
    Ok(Received { bytes, _reservation: reservation })
}

/// The reply for a message that fails the intake check: its code, enhanced code and text.
pub fn refusal(error: &IntakeError) -> (u16, [u8; 3], String) {
    let code = match error {
        // RFC 3463 §3.7: 5.6.0 "other or undefined media error".
        IntakeError::TooDeep { .. }
        | IntakeError::TooManyParts { .. }
        | IntakeError::TooManyFields { .. }
        | IntakeError::FieldTooLong { .. }
        | IntakeError::FieldTooComplex { .. }
        | IntakeError::TooManyAddresses { .. } => 554,
        IntakeError::HeaderSyntax { .. } | IntakeError::Duplicate { .. } => 550,
    };
    let hint = match error {
        IntakeError::TooDeep { .. } | IntakeError::TooManyParts { .. } | IntakeError::TooManyFields { .. } => {
            "send the attachments on their own"
        }
        IntakeError::FieldTooLong { .. } => "the sending program must write it shorter or leave it out",
        IntakeError::FieldTooComplex { .. } | IntakeError::HeaderSyntax { .. } => {
            "the sending program writes a broken header"
        }
        IntakeError::TooManyAddresses { .. } => "split the recipients over several messages or use a mailing list",
        IntakeError::Duplicate { .. } => "RFC 5322 allows this field once; the sending program must merge them",
    };
    (code, [5, 6, 0], format!("Message refused: {error}; {hint}"))
}

/// Whether two readings of the authors' domains agree, whatever their order and
/// repetitions (mail-auth lists one per address).
pub fn same_domains(a: &[String], b: &[String]) -> bool {
    use std::collections::BTreeSet;
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use postfach_message::Message;

    #[test]
    fn refusals_name_the_problem() {
        let (code, esc, text) = refusal(&IntakeError::Duplicate { field: "From" });
        assert_eq!((code, esc), (550, [5, 6, 0]));
        assert!(text.contains("more than one From:"), "{text}");
        let (code, _, text) = refusal(&IntakeError::TooDeep { limit: 50 });
        assert_eq!(code, 554);
        assert!(text.contains("50 levels"), "{text}");
        let (code, _, text) = refusal(&IntakeError::FieldTooLong { field: "Subject".into(), limit: 65_536 });
        assert_eq!(code, 554);
        assert!(text.starts_with("Message refused: the Subject: header field is longer than 65536 bytes;"), "{text}");
        let (_, _, text) = refusal(&IntakeError::TooManyAddresses { field: "To", limit: 1_000 });
        assert!(text.contains("To: header field has more than 1000 addresses; split"), "{text}");
    }

    #[test]
    fn author_domains_come_from_the_one_parse_and_compare_as_sets() {
        let raw = b"From: CEO <ceo@Hosted.Example.>, x@other.example, y@hosted.example\r\nSubject: s\r\n\r\nbody";
        let ours = Message::parse(raw).top().author_domains();
        assert_eq!(ours, ["hosted.example", "other.example"]);
        // mail-auth's reading: one entry per address.
        let theirs: Vec<String> = ["hosted.example", "other.example", "hosted.example"].map(String::from).into();
        assert!(same_domains(&ours, &theirs));
        assert!(!same_domains(&ours, &theirs[..1]));
    }
}
