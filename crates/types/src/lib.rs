//! Validated values shared by every Postfach crate.
//!
//! Everything that enters Postfach from the outside (a command line, a config file, a
//! protocol line, a form) is parsed once into one of these types at the edge; code behind
//! the edge never re-validates. This crate does no I/O.

mod address;
mod blob;
mod ids;
mod invisible;
mod login;
mod node;
mod quota;
mod secret;
mod settings;
mod spam;
mod time;

pub use address::{AddressError, CustomerName, DomainName, EmailAddress, LocalPart};
pub use blob::{BlobId, BlobIdError};
pub use ids::{
    AliasId, ApiTokenId, AppPasswordId, CustomerId, DkimKeyId, DomainId, FolderId, IdError, ImportJobId, MailboxId,
    QueueMessageId, QueueRecipientId, SessionId,
};
pub use login::{LOSSY_LOGIN_CHARS, LoginName, LoginNameError, LoginTarget, MAX_LOGIN_NAME_BYTES};
pub use node::{MAX_NODE_NAME_LEN, NodeName, NodeNameError};
pub use quota::{Room, Space, WARNING_LEVELS, format_size};
pub use secret::Secret;
pub use settings::{AccessMode, Language, LoginResult, Mechanism, ParseEnumError, Role, Service, TlsInfo};
pub use spam::{SpamScore, SpamScoreError, SpamThreshold};
pub use time::{UnixTime, format_rfc3339, format_rfc5322};
