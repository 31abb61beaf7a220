//! Row ids: one newtype per kind of object, so that a mailbox's id can never be passed
//! where a customer's is meant.
//!
//! An id is a database row id (a positive `i64`). On the JSON API and in `--json` output it
//! is a plain number (`#[serde(transparent)]`); in URLs and on the command line it is
//! parsed with `FromStr`, which refuses anything but a positive decimal number. With the
//! `sqlx` feature (enabled by `postfach-store`) each id binds and decodes as the `i64` it
//! wraps, so the store's SQL reads the same as with plain integers.

/// The text is not an id: not a decimal number, or not positive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an id")]
pub struct IdError(pub String);

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id of the row with this number.
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            /// The row number, for SQL and arithmetic-free comparisons.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                s.parse()
                    .ok()
                    .filter(|id: &i64| *id > 0)
                    .map(Self)
                    // Bounded: the text may come from anywhere.
                    .ok_or_else(|| IdError(s.chars().take(64).collect()))
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            i64: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <i64 as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <i64 as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            i64: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <i64 as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            i64: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                <i64 as sqlx::Decode<'r, DB>>::decode(value).map(Self)
            }
        }
    )*};
}

ids! {
    /// A customer (or admin): a panel account that owns domains.
    CustomerId;
    /// A hosted domain or alias domain.
    DomainId;
    /// A mailbox.
    MailboxId;
    /// An alias (an address that forwards to others).
    AliasId;
    /// A folder of a mailbox (an IMAP mailbox).
    FolderId;
    /// A message in the outbound queue.
    QueueMessageId;
    /// One recipient of a message in the outbound queue.
    QueueRecipientId;
    /// A DKIM key of a domain.
    DkimKeyId;
    /// A panel session.
    SessionId;
    /// An API token.
    ApiTokenId;
    /// An app password of a mailbox.
    AppPasswordId;
    /// An IMAP import job of a mailbox (the panel's and the API's).
    ImportJobId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_positive_numbers_and_print_as_numbers() {
        assert_eq!("42".parse(), Ok(MailboxId::new(42)));
        assert!("0".parse::<MailboxId>().is_err());
        assert!("-1".parse::<MailboxId>().is_err());
        assert!("4x".parse::<MailboxId>().is_err());
        assert!(" 4".parse::<MailboxId>().is_err());
        assert_eq!(MailboxId::new(7).to_string(), "7");
        assert_eq!(i64::from(CustomerId::new(3)), 3);
    }

    #[test]
    fn ids_are_plain_numbers_in_json() {
        assert_eq!(serde_json::to_string(&DomainId::new(12)).expect("json"), "12");
        assert_eq!(serde_json::from_str::<DomainId>("12").expect("json"), DomainId::new(12));
        assert_eq!(serde_json::to_string(&Some(AliasId::new(5))).expect("json"), "5");
    }
}
