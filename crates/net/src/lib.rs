//! The one connection layer under every protocol server (SMTP, IMAP, POP3, the panel):
//!
//! - [`listen`]: accepting on a bound listener, admission per address and per service
//!   before any TLS work, the timed implicit-TLS handshake, refusing busy clients;
//! - [`Conn`]: the session's connection, with limited line reads, timed reads and
//!   writes, and the STARTTLS upgrade that discards buffered plaintext in one place;
//! - [`MemoryBudget`]: the bound on message bytes held in memory across sessions;
//! - [`tls_info`]: what TLS negotiated, for the login log and trace fields;
//! - [`canonical`]: the one canonical form of a client's address;
//! - [`proxy`]: the PROXY protocol header a trusted load balancer sends first, which
//!   names the client the connection is for.
//!
//! Protocol crates depend on this crate, never on each other. Only `server` binds sockets.

mod admission;
mod budget;
mod conn;
pub mod listen;
mod network;
mod peer;
pub mod proxy;
mod stream;

pub use admission::{Admission, Busy, Slot};
pub use budget::{MemoryBudget, Reservation};
pub use conn::{Conn, Ended, Line, Timeouts};
pub use listen::{Endpoint, Protocol, Security, accept_loop};
pub use network::{Network, NetworkError};
pub use peer::{canonical, canonical_ip};
pub use proxy::TrustedProxies;
pub use stream::{MaybeTls, TlsAcceptor, tls_info};
