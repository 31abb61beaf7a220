//! [`BlobId`]: the name of a message's bytes in the blob store, the one form in which a
//! blob crosses crates (store rows, deliveries, the sweeps).

/// A blob's name: 32 lower-case hex digits (128 random bits). Parsing refuses anything
/// else, so an id can never name a path outside the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(String);

/// The text is not a blob id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a blob id")]
pub struct BlobIdError(pub String);

impl BlobId {
    pub fn parse(s: &str) -> Result<Self, BlobIdError> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(s.to_string()))
        } else {
            // Bounded: the text may come from anywhere.
            Err(BlobIdError(s.chars().take(64).collect()))
        }
    }

    /// The id made of these (random) bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Comparisons with text, for tests and logs; a `BlobId` is only made by parsing.
impl PartialEq<str> for BlobId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BlobId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for BlobId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(BlobId::parse("../../etc/passwd").is_err());
        assert!(BlobId::parse(&"a".repeat(32)).is_ok());
        assert!(BlobId::parse(&"A".repeat(32)).is_err());
        assert!(BlobId::parse(&"a".repeat(33)).is_err());
        assert_eq!(BlobId::from_bytes([0xab; 16]).as_str(), "ab".repeat(16));
    }
}
