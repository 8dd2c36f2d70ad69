//! Webhook signatures as the Standard Webhooks specification defines them
//! (standardwebhooks.com), so receivers can check Baton's deliveries with that
//! project's libraries: the signed content is `id.timestamp.body`, the key the
//! base64 part of a `whsec_` secret, the MAC HMAC-SHA256, and the header value
//! `v1,<base64 of the MAC>` (several, space-separated, while a secret rotates).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// How a secret is written: this prefix, then the key in base64.
const PREFIX: &str = "whsec_";

/// The fewest and most bytes a key may have.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// How far a delivery's timestamp may be from the receiver's clock (5 minutes,
/// as the specification's libraries allow).
pub const TOLERANCE_S: i64 = 300;

/// A webhook's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// Reads `whsec_<base64>`; anything else is refused with the reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(encoded) = text.strip_prefix(PREFIX) else {
            return Err(format!("a webhook secret is `{PREFIX}` followed by base64"));
        };
        let key = STANDARD.decode(encoded).map_err(|_| format!("the part after `{PREFIX}` is not base64"))?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(format!(
                "a webhook secret's key is {} to {} bytes, this one is {}",
                KEY_BYTES.start(),
                KEY_BYTES.end(),
                key.len()
            ));
        }
        Ok(Self { key })
    }

    /// A new secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        Self { key }
    }

    /// The secret as it is written (`whsec_…`): shown once, when it is made.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The `webhook-signature` header value for a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    /// Whether `header` (a `webhook-signature` value) holds a valid signature of
    /// the delivery, with its timestamp within [`TOLERANCE_S`] of `now`.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str, now: i64) -> bool {
        if (now - timestamp).abs() > TOLERANCE_S {
            return false;
        }
        let expected = self.mac(id, timestamp, body);
        header
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|sig| STANDARD.decode(sig).is_ok_and(|given| given.len() == expected.len() && same(&given, &expected)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut content = Vec::with_capacity(id.len() + body.len() + 24);
        content.extend_from_slice(id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(timestamp.to_string().as_bytes());
        content.push(b'.');
        content.extend_from_slice(body);
        hmac_sha256(&self.key, &content)
    }
}

/// HMAC-SHA256 (RFC 2104) over SHA-256 from `sha2`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Compares in time that does not depend on where the bytes differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn the_specifications_example_signs_as_it_says() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(secret.expose(), SECRET);
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2, and test case 6 (a key longer than a block).
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn a_changed_body_id_timestamp_or_secret_does_not_verify() {
        let secret = Secret::parse(SECRET).unwrap();
        let header = secret.sign(ID, TIMESTAMP, BODY);
        assert!(secret.verify(ID, TIMESTAMP, BODY, &header, TIMESTAMP + 10));
        assert!(secret.verify(ID, TIMESTAMP, BODY, &format!("v1,bm9wZQ== {header}"), TIMESTAMP), "any of several");
        assert!(!secret.verify(ID, TIMESTAMP, br#"{"test": 2432232315}"#, &header, TIMESTAMP));
        assert!(!secret.verify("msg_other", TIMESTAMP, BODY, &header, TIMESTAMP));
        assert!(!secret.verify(ID, TIMESTAMP + 1, BODY, &header, TIMESTAMP));
        assert!(!secret.verify(ID, TIMESTAMP, BODY, &header, TIMESTAMP + TOLERANCE_S + 1), "too old");
        assert!(!Secret::generate().verify(ID, TIMESTAMP, BODY, &header, TIMESTAMP));
        assert!(!secret.verify(ID, TIMESTAMP, BODY, "v2,abc", TIMESTAMP));
    }

    #[test]
    fn secrets_that_are_not_whsec_base64_are_refused() {
        for bad in ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ="] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
        let made = Secret::generate();
        assert_eq!(Secret::parse(&made.expose()).unwrap(), made);
        assert_ne!(Secret::generate(), made);
        assert_eq!(format!("{made:?}"), "Secret(…)", "never printed");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
