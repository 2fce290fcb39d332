//! The site secret, keyed hashes and random tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks values with keys derived from the site secret, one key per purpose, so a
/// signature made for one use can never be replayed as another.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: Vec<u8>) -> Signer {
        Signer { secret }
    }

    fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut derived = hmac_sha256(&self.secret, purpose.as_bytes());
        let out = hmac_sha256(&derived, message);
        derived.fill(0);
        out
    }

    /// A URL-safe signature of `message` for `purpose`.
    pub fn sign(&self, purpose: &str, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, message.as_bytes()))
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, purpose: &str, message: &str, signature: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(signature) {
            Ok(given) => bool::from(
                self.mac(purpose, message.as_bytes())
                    .ct_eq(given.as_slice()),
            ),
            Err(_) => false,
        }
    }

    /// What stands for an email address where the address itself must not be kept (a block
    /// that outlives an erasure, the moderation log's record of it): a keyed hash, the same for
    /// every spelling of one address, meaningless without the site secret.
    pub fn address_key(&self, email: &str) -> String {
        let mac = self.mac("address-key", email.trim().to_lowercase().as_bytes());
        hex::encode(&mac[..16])
    }

    /// Encrypts `plain` for `purpose` (ChaCha20-Poly1305 under a key derived from the site
    /// secret, random nonce): URL-safe text that says nothing of `plain` and that only
    /// `open` with the same purpose turns back.
    pub fn seal(&self, purpose: &str, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut data = plain.as_bytes().to_vec();
        // Sealing fails only for inputs of gigabytes; an empty seal then opens to nothing.
        if self
            .aead_key(purpose)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The text `seal` was given, if `sealed` was made by this site for `purpose`, unaltered.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .aead_key(purpose)
            .open_in_place(nonce, Aad::empty(), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    fn aead_key(&self, purpose: &str) -> LessSafeKey {
        let mut key = self.mac("seal", purpose.as_bytes());
        // A 32-byte key always fits ChaCha20-Poly1305.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key).unwrap_or_else(|_| unreachable!());
        key.fill(0);
        LessSafeKey::new(unbound)
    }

    /// A keyed hash reduced to 32 bits (avatars): stable per input, meaningless without the key.
    pub fn keyed_u32(&self, purpose: &str, input: &str) -> u32 {
        let mac = self.mac(purpose, input.as_bytes());
        u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]])
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `bytes` random bytes from the operating system, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn fill_random(buf: &mut [u8]) {
    // The OS generator failing means the machine cannot do anything securely; stop loudly.
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {e}");
    }
}

/// SHA-256 of a token, hex: what is stored for session ids and one-time tokens.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_bound_to_its_purpose_and_message() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let sig = signer.sign("form", "1.2");
        assert!(signer.verify("form", "1.2", &sig));
        assert!(!signer.verify("form", "1.3", &sig));
        assert!(!signer.verify("cookie", "1.2", &sig));
        assert!(!signer.verify("form", "1.2", "garbage!"));
    }

    #[test]
    fn a_sealed_text_opens_only_for_its_purpose_and_hides_what_it_holds() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let sealed = signer.seal("my-comments", "ada@example.com");
        assert_eq!(
            signer.open("my-comments", &sealed).as_deref(),
            Some("ada@example.com")
        );
        assert_ne!(sealed, signer.seal("my-comments", "ada@example.com"));
        assert!(!sealed.contains("ada"));
        assert_eq!(signer.open("other", &sealed), None);
        let other = Signer::new(b"fedcba9876543210fedcba9876543210".to_vec());
        assert_eq!(other.open("my-comments", &sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            signer.open("my-comments", &String::from_utf8(tampered).unwrap()),
            None
        );
        assert_eq!(
            signer.address_key("Ada@Example.com"),
            signer.address_key("ada@example.com")
        );
    }
}
