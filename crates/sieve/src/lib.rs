//! Sieve filters (RFC 5228) of a mailbox: the check of a script before it is stored, and
//! the run of the active script at final delivery.
//!
//! The interpreter is Stalwart's `sieve-rs` (AGPL-3.0-only, like this project's licence
//! allows; it reads messages with the same `mail-parser` as we do). This crate decides
//! which of its extensions a customer's script may use ([`SUPPORTED`]), how long a run may
//! take, and turns its events into an [`Outcome`] that delivery carries out. It does no
//! I/O: delivery, the store and the outbound queue live elsewhere.

mod error;
mod run;

use std::sync::{Arc, LazyLock};

pub use error::ScriptError;
pub use run::{Envelope, FileInto, Outcome, RunError, Vacation, run};

/// The extensions a script may `require`; anything else is refused when the script is
/// checked, and again when it runs.
pub const SUPPORTED: &[&str] = &[
    "fileinto",
    "mailbox",
    "imap4flags",
    "envelope",
    "body",
    "vacation",
    "reject",
    "ereject",
    "copy",
    "variables",
    "date",
    "relational",
    "encoded-character",
    "subaddress",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
];

/// Instructions one run may execute before it is stopped (a loop cannot exist in Sieve
/// without extensions we leave out, but long scripts over many parts can still be slow).
pub const MAX_INSTRUCTIONS: usize = 10_000;
/// The longest string or variable value a script may build at run time.
pub const MAX_VARIABLE_BYTES: usize = 4096;
/// The most header fields a script's tests read in full (bounds `header :contains`).
pub const MAX_HEADER_BYTES: usize = 4096;

/// A compiled script, cheap to clone; compile once per script change.
#[derive(Debug, Clone)]
pub struct Script(Arc<sieve::Sieve>);

/// The compiler with our bounds (the stored script's size is bounded before, by the
/// mailbox's limit).
fn compiler() -> sieve::Compiler {
    sieve::Compiler::new()
        .with_max_script_size(1024 * 1024)
        .with_max_string_size(MAX_VARIABLE_BYTES)
        .with_max_nested_blocks(15)
        .with_max_nested_tests(15)
        .with_max_includes(0)
}

/// The runtime every run uses: only [`SUPPORTED`] extensions, bounded work.
pub(crate) fn runtime() -> &'static sieve::Runtime {
    static RUNTIME: LazyLock<sieve::Runtime> = LazyLock::new(|| {
        let mut runtime = sieve::Runtime::new()
            .without_capabilities(sieve::compiler::grammar::Capability::all().iter().cloned())
            .with_cpu_limit(MAX_INSTRUCTIONS)
            .with_max_variable_size(MAX_VARIABLE_BYTES)
            .with_max_header_size(MAX_HEADER_BYTES)
            .with_max_nested_includes(0)
            // One redirect and one vacation reply per message at most.
            .with_max_redirects(1)
            .with_max_out_messages(2)
            .with_max_received_headers(10)
            .with_default_vacation_expiry(7 * 86_400)
            .with_env_variable("name", "Postfach")
            .with_env_variable("version", env!("CARGO_PKG_VERSION"));
        for name in SUPPORTED {
            runtime.set_capability(sieve::compiler::grammar::Capability::parse(name));
        }
        runtime
    });
    &RUNTIME
}

/// Compiles a script, refusing what is wrong with it or what it requires that is not
/// supported here.
pub fn compile(text: &str) -> Result<Script, ScriptError> {
    let sieve = compiler().compile(text.as_bytes()).map_err(ScriptError::from_compile)?;
    let script = Script(Arc::new(sieve));
    check_requires(text, &script)?;
    Ok(script)
}

/// Refuses a script that requires an extension not in [`SUPPORTED`]. `require` comes
/// first in a script (RFC 5228 §3.2), so a run over an empty message meets it before any
/// action; the run stops at the first action.
fn check_requires(text: &str, script: &Script) -> Result<(), ScriptError> {
    let mut context = runtime().filter(b"");
    let mut input = sieve::Input::script(sieve::Script::Personal("check".into()), Arc::clone(&script.0));
    // Tests answer "no"; the first action or the end stops the check.
    while let Some(result) = context.run(input) {
        match result {
            Err(sieve::runtime::RuntimeError::CapabilityNotAllowed(capability)) => {
                return Err(ScriptError::unsupported(text, &capability.to_string()));
            }
            Err(sieve::runtime::RuntimeError::CapabilityNotSupported(name)) => {
                return Err(ScriptError::unsupported(text, &name));
            }
            Err(_) => return Ok(()),
            Ok(
                sieve::Event::IncludeScript { .. }
                | sieve::Event::MailboxExists { .. }
                | sieve::Event::ListContains { .. }
                | sieve::Event::DuplicateId { .. }
                | sieve::Event::Function { .. },
            ) => input = false.into(),
            Ok(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Whether `text` is a script this server can store and run; the error names the line
/// and column of the first problem.
pub fn check(text: &str) -> Result<(), ScriptError> {
    compile(text).map(|_| ())
}

#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod tests;
