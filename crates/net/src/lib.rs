//! Connection plumbing shared by the protocol servers (SMTP, IMAP, POP3): a stream that
//! starts in plaintext and may be upgraded to TLS, what TLS negotiated (for the login
//! log), and the per-address connection limit.
//!
//! Protocol crates depend on this crate, never on each other.

mod limiter;
mod stream;

pub use limiter::{ConnectionGuard, ConnectionLimiter};
pub use stream::{MaybeTls, TlsAcceptor, tls_info};
