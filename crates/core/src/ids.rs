//! Identifiers in AWS's formats, from the operating system's random source.

use rand::Rng;

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `ThreadRng` is a CSPRNG seeded (and periodically reseeded) from the OS: secure for
/// tokens, without a system call per character.
fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| {
            char::from(
                alphabet
                    .get(rng.gen_range(0..alphabet.len()))
                    .copied()
                    .unwrap_or(b'A'),
            )
        })
        .collect()
}

fn hex(len: usize) -> String {
    pick(b"0123456789abcdef", len)
}

/// A unique id with IAM's four-letter prefix: `AIDA` users, `AGPA` groups, `ANPA` policies.
pub fn iam_unique_id(prefix: &str) -> String {
    format!("{prefix}{}", pick(UPPER_ALNUM, 17))
}

/// An access key id (`AKIA` + 16) and its secret (40 characters).
pub fn access_key_pair() -> (String, String) {
    (format!("AKIA{}", pick(UPPER_ALNUM, 16)), pick(BASE62, 40))
}

/// A 12-digit account id that does not start with 0.
pub fn account_id() -> String {
    let mut rng = rand::thread_rng();
    format!("{}{}", rng.gen_range(1..10), pick(b"0123456789", 11))
}

pub fn ec2_instance_id() -> String {
    format!("i-{}", hex(17))
}

pub fn managed_instance_id() -> String {
    format!("mi-{}", hex(17))
}

/// `<caller name>-<17 hex>`, as Session Manager names sessions.
pub fn session_id(caller_name: &str) -> String {
    format!("{caller_name}-{}", hex(17))
}

/// A one-time secret: 256 bits, URL-safe.
pub fn token() -> String {
    pick(BASE62, 43)
}

/// A request id in AWS's UUID shape.
pub fn request_id() -> String {
    let h = hex(32);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// Whether `id` is an EC2 instance id (`i-` + 8 or 17 hex).
pub fn is_ec2_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 17 || h.len() == 8) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether `id` is a managed instance id (`mi-` + 17 hex).
pub fn is_managed_instance_id(id: &str) -> bool {
    id.strip_prefix("mi-")
        .is_some_and(|h| h.len() == 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let (id, secret) = access_key_pair();
        assert!(id.starts_with("AKIA") && id.len() == 20);
        assert_eq!(secret.len(), 40);
        assert_eq!(account_id().len(), 12);
        assert!(is_ec2_instance_id(&ec2_instance_id()));
        assert!(is_managed_instance_id(&managed_instance_id()));
        assert!(!is_ec2_instance_id("i-xyz"));
        assert!(session_id("TestUserA").starts_with("TestUserA-"));
        assert_eq!(request_id().len(), 36);
    }
}
