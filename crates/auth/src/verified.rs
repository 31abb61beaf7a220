//! A short-lived memory of passwords that were verified correctly, so a mail client that
//! logs in again and again (every few minutes, per connection) does not pay argon2id each
//! time.
//!
//! An entry is an HMAC-SHA256 of the secret under a random key made at process start,
//! bound to the account's stored hash string: a password change (new hash) invalidates it
//! at once. Only successes are remembered; a wrong password always costs a full argon2id
//! verification, so guessing stays as expensive as before. Entries expire after
//! [`TTL`], and the map is bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use postfach_types::Secret;

/// How long a verified password is remembered.
pub const TTL: Duration = Duration::from_secs(300);
/// At most this many logins are remembered; beyond it the map is cleared.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct VerifiedCache {
    key: hmac::Key,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// The PHC hash string the password was verified against.
    hash: String,
    tag: hmac::Tag,
    at: Instant,
}

impl VerifiedCache {
    pub fn new() -> Self {
        let seed: [u8; 32] = rand::random();
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &seed), entries: Mutex::default() }
    }

    /// Whether `secret` was verified against `hash` for `login` within the TTL.
    pub fn contains(&self, login: &str, hash: &str, secret: &Secret<String>) -> bool {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(entry) = entries.get(login) else { return false };
        entry.hash == hash
            && entry.at.elapsed() < TTL
            && hmac::verify(&self.key, secret.expose().as_bytes(), entry.tag.as_ref()).is_ok()
    }

    /// Remembers a successful verification.
    pub fn insert(&self, login: &str, hash: &str, secret: &Secret<String>) {
        let tag = hmac::sign(&self.key, secret.expose().as_bytes());
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(login.to_string(), Entry { hash: hash.to_string(), tag, at: Instant::now() });
    }

    /// Forgets a login (after a failure, so a stale entry never outlives a wrong guess).
    pub fn remove(&self, login: &str) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(login);
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_same_password_for_the_same_hash() {
        let cache = VerifiedCache::new();
        let right = Secret::new("violet mango tractor whisper".to_string());
        let wrong = Secret::new("violet mango tractor whispers".to_string());
        assert!(!cache.contains("max@acme.example", "$argon2id$a", &right));
        cache.insert("max@acme.example", "$argon2id$a", &right);
        assert!(cache.contains("max@acme.example", "$argon2id$a", &right));
        assert!(!cache.contains("max@acme.example", "$argon2id$a", &wrong));
        assert!(!cache.contains("max@acme.example", "$argon2id$b", &right), "a new password hash invalidates");
        assert!(!cache.contains("erika@acme.example", "$argon2id$a", &right));
        cache.remove("max@acme.example");
        assert!(!cache.contains("max@acme.example", "$argon2id$a", &right));
    }
}
