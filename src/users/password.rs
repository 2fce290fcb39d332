//! argon2id password hashing. Only this module knows argon2.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that passed the length rules; made only by `Password::parse`.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// Refused before any hashing: too short to resist guessing, or long enough to be a
    /// denial-of-service vector.
    pub fn parse(text: &str) -> Result<Password, String> {
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(format!(
                "the password is longer than {MAX_PASSWORD_BYTES} bytes"
            ));
        }
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(format!(
                "the password must have at least {MIN_PASSWORD_CHARS} characters"
            ));
        }
        Ok(Password(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const M_COST: u32 = 19_456;
const T_COST: u32 = 2;

fn params() -> Params {
    Params::new(M_COST, T_COST, 1, None).unwrap_or_default()
}

/// argon2id, m=19456 KiB, t=2, p=1 (OWASP's recommendation).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// Hashes with a fresh allocation, for one-off callers (the command line); the server hashes
/// through `PasswordWorkers`, which reuse their memory.
pub fn hash_password(password: &Password) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_str().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// Whether `password` matches the stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    verify_with(&mut [], password.as_bytes(), stored)
}

/// The argon2 working memory for today's parameters (19 MiB), allocated once per worker.
fn new_memory() -> Vec<Block> {
    vec![Block::default(); params().block_count()]
}

/// Hashes into a PHC string with today's parameters, in the caller's memory.
fn hash_with(memory: &mut [Block], password: &Password) -> anyhow::Result<String> {
    let params = params();
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hasher()
        .hash_password_into_with_memory(password.as_str().as_bytes(), &salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| anyhow::anyhow!("encoding the password hash failed: {e}"))?,
        salt: Some(salt),
        hash: Some(
            Output::new(&out)
                .map_err(|e| anyhow::anyhow!("encoding the password hash failed: {e}"))?,
        ),
    };
    Ok(phc.to_string())
}

/// Verifies against a stored PHC string with the parameters it names, in `memory` when that is
/// large enough (a hash made with a larger `m` gets a one-off allocation).
fn verify_with(memory: &mut [Block], password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::new(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    let mut one_off = Vec::new();
    let memory: &mut [Block] = if memory.len() >= blocks {
        memory
    } else {
        one_off.resize(blocks, Block::default());
        &mut one_off
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, memory)
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// Verified against when an account does not exist, so the answer costs the same. Its
/// parameters are today's; the password it was made from is unknown (random bytes).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$DVpQJF3Dfd86251n0T2Tow$9lbsVtFzYZPK9V5WTSHiA9Ol59Vprfd489B5I0z8EoM";

enum Job {
    Hash {
        password: Password,
        reply: tokio::sync::oneshot::Sender<anyhow::Result<String>>,
    },
    /// `stored: None` checks against `DUMMY_HASH` and answers false.
    Verify {
        password: String,
        stored: Option<String>,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}

/// A few dedicated threads that do every argon2 run of the server, each in one 19 MiB block it
/// allocates at its first job and keeps. A burst of logins queues here instead of each taking a
/// blocking thread with its own allocation (glibc kept one 19 MiB arena per thread: 60 logins
/// left the process at 500 MB). The threads end when the last handle is dropped.
#[derive(Clone)]
pub struct PasswordWorkers {
    jobs: mpsc::Sender<Job>,
}

impl PasswordWorkers {
    pub fn start(threads: usize) -> std::io::Result<PasswordWorkers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(PasswordWorkers { jobs })
    }

    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Hash { password, reply })?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the password worker stopped"))?
    }

    /// Whether `password` matches `stored`; with `None` (no such account) a check of the same
    /// cost runs and the answer is false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Verify {
            password,
            stored,
            reply,
        })?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the password worker stopped"))
    }

    fn send(&self, job: Job) -> anyhow::Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the password workers stopped"))
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = {
            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.recv()
        };
        let Ok(job) = job else {
            return;
        };
        if memory.is_empty() {
            memory = new_memory();
        }
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with(&mut memory, &password));
            }
            Job::Verify {
                password,
                stored,
                reply,
            } => {
                let matched = match &stored {
                    Some(stored) => verify_with(&mut memory, password.as_bytes(), stored),
                    None => {
                        verify_with(&mut memory, password.as_bytes(), DUMMY_HASH);
                        false
                    }
                };
                let _ = reply.send(matched);
            }
        }
    }
}

/// Whether a stored hash was made with weaker settings than today's, so it should be re-hashed
/// after a successful login.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    hash.algorithm.as_str() != "argon2id" || params.m_cost() < 19_456 || params.t_cost() < 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_before_hashing() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert!(Password::parse("twelve chars").is_ok());
    }

    #[test]
    fn a_hash_verifies_only_its_password() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!needs_rehash(&hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn hashes_made_in_reused_memory_are_ordinary_phc_strings() {
        let mut memory = new_memory();
        let password = Password::parse("correct horse battery").unwrap();
        let first = hash_with(&mut memory, &password).unwrap();
        let second = hash_with(&mut memory, &password).unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "each hash has its own salt");
        // The crate's own verifier accepts them, and hashes it made verify in reused memory.
        let parsed = PasswordHash::new(&first).unwrap();
        assert!(
            argon2::PasswordVerifier::verify_password(&hasher(), b"correct horse battery", &parsed)
                .is_ok()
        );
        let made_by_crate = hash_password(&password).unwrap();
        assert!(verify_with(
            &mut memory,
            b"correct horse battery",
            &made_by_crate
        ));
        assert!(!verify_with(
            &mut memory,
            b"wrong horse battery",
            &made_by_crate
        ));
        assert!(!verify_with(&mut memory, b"anything", DUMMY_HASH));
        // A hash with a larger memory cost than today's still verifies.
        let larger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32_768, 2, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(verify_with(&mut memory, b"correct horse battery", &larger));
    }
}
