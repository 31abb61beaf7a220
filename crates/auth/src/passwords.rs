//! Password hashing with argon2id, off the async threads and with bounded concurrency.
//!
//! Parameters are OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1). Each hash
//! costs ~19 MiB and tens of milliseconds of one core, so hashes run on tokio's blocking
//! pool behind a semaphore: a burst of logins queues instead of exhausting memory.
//!
//! The 19 MiB working area is given back to the system after every hash (see
//! [`work_area`]), so a server that verified a password once does not keep it.

use std::sync::Arc;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use postfach_policy::MAX_PASSWORD_CHARS;
use postfach_types::Secret;
use tokio::sync::Semaphore;

use crate::AuthError;

/// argon2id memory cost in KiB (OWASP minimum: 19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// argon2id iterations.
pub const ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const LANES: u32 = 1;

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// `concurrency` hashes run at once at most (at least one).
    pub fn new(concurrency: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    /// One hash per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) for the password.
    pub async fn hash(&self, password: &Secret<String>) -> Result<String, AuthError> {
        let password = password.clone();
        self.run(move || hash_with(&mut work_area(), password.expose().as_bytes())).await?
    }

    /// Whether `password` matches the PHC string `hash`. Overlong secrets are refused
    /// without hashing; a malformed hash never matches.
    pub async fn verify(&self, hash: &str, password: &Secret<String>) -> Result<bool, AuthError> {
        if password.expose().chars().count() > MAX_PASSWORD_CHARS {
            return Ok(false);
        }
        let (hash, password) = (hash.to_string(), password.clone());
        self.run(move || verify_with(&mut work_area(), &hash, password.expose().as_bytes())).await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let _permit = self.permits.acquire().await.map_err(|_| AuthError::Hashing("hasher closed".into()))?;
        tokio::task::spawn_blocking(work).await.map_err(|e| AuthError::Hashing(e.to_string()))
    }
}

/// Verifies `password` against the PHC string `phc` (with the parameters stored in it),
/// in `memory`. A malformed hash never matches; the comparison is constant-time.
fn verify_with(memory: &mut Vec<Block>, phc: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or(Version::V0x13);
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    memory.resize(blocks, Block::default());
    let mut out = vec![0u8; expected.len()];
    if argon.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..]).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A new PHC string for `password`, computed in `memory`.
fn hash_with(memory: &mut Vec<Block>, password: &[u8]) -> Result<String, AuthError> {
    let failed = |e: &dyn std::fmt::Display| AuthError::Hashing(e.to_string());
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|e| failed(&e))?;
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| failed(&e))?;
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| failed(&e))?;
    memory.resize(params.block_count(), Block::default());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon.hash_password_into_with_memory(password, salt_bytes, &mut out, &mut memory[..]).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// An empty argon2 working area. Its capacity (never touched beyond the blocks a hash
/// uses) is above glibc's largest dynamic mmap threshold (32 MiB), so the allocation is
/// always its own mapping and freeing it returns the memory to the system at once. A
/// 19 MiB allocation would instead raise that threshold and then be served from, and
/// kept in, the malloc arena of whichever blocking thread ran the hash.
fn work_area() -> Vec<Block> {
    const BLOCKS: usize = 40 * 1024; // 40 MiB of 1 KiB blocks
    Vec::with_capacity(BLOCKS.max(MEMORY_KIB as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(2);
        let secret = Secret::new("violet mango tractor whisper".to_string());
        let hash = hasher.hash(&secret).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify(&hash, &secret).await.expect("verify"));
        assert!(!hasher.verify(&hash, &Secret::new("violet mango tractor whispe".into())).await.expect("verify"));
        assert!(!hasher.verify("not a hash", &secret).await.expect("verify"));
        // Same password, new salt: different hash.
        assert_ne!(hash, hasher.hash(&secret).await.expect("hash"));
    }
}
