//! argon2id password hashing. Only this module knows argon2.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

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

/// argon2id, m=19456 KiB, t=2, p=1 (OWASP's recommendation).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &Password) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_str().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// Whether `password` matches the stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => hasher().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
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
}
