//! API tokens `mlk_<id>_<secret>`: made from the system's random source,
//! parsed, and checked against the stored SHA-256 in constant time. A leaf:
//! depends on nothing else of the crate (invariant C1).

/// The prefix of every API token, so a leaked one is easy to recognise
/// (secret scanners) and to tell from other credentials.
pub const TOKEN_PREFIX: &str = "mlk_";

/// A new token: its public id, the text handed to the user once, and the
/// hash kept in the store.
pub struct NewToken {
    pub id: String,
    pub text: Secret,
    pub secret_hash: String,
}

/// Token text: never in Debug output or logs (invariant 8).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The system's random source failed: no token can be made safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system's random source failed")]
pub struct NoRandomness;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<prefix><id>_<secret>`: 8 random bytes of id (the lookup key) and
/// `SECRET` of secret, hex, from the system's random source.
fn random_token<const SECRET: usize>(prefix: &str) -> Result<NewToken, NoRandomness> {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let (mut id, mut secret) = ([0u8; 8], [0u8; SECRET]);
    rng.fill(&mut id).map_err(|_| NoRandomness)?;
    rng.fill(&mut secret).map_err(|_| NoRandomness)?;
    let (id, secret) = (hex(&id), hex(&secret));
    Ok(NewToken {
        secret_hash: hash_secret(&secret),
        text: Secret(format!("{prefix}{id}_{secret}")),
        id,
    })
}

/// `N` bytes from the system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], NoRandomness> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| NoRandomness)?;
    Ok(b)
}

/// A session id for a cookie (32 random bytes, hex) and the hash the store
/// keeps of it; and a CSRF token (32 random bytes, hex) bound to it.
pub fn generate_session() -> Result<(Secret, String, String), NoRandomness> {
    let id = hex(&random_bytes::<32>()?);
    let csrf = hex(&random_bytes::<32>()?);
    Ok((Secret(id.clone()), hash_secret(&id), csrf))
}

/// An API token `mlk_<id>_<secret>` with 32 bytes of secret.
pub fn generate() -> Result<NewToken, NoRandomness> {
    random_token::<32>(TOKEN_PREFIX)
}

/// The prefix of a join token: `mlj_<id>_<secret>_<ca-fingerprint>`.
pub const JOIN_PREFIX: &str = "mlj_";

/// A join token without its fingerprint, with 16 bytes of secret
/// (single-use and expiring: 128 bits are plenty). The collector appends
/// its CA's fingerprint (`with_fingerprint`).
pub fn generate_join() -> Result<NewToken, NoRandomness> {
    random_token::<16>(JOIN_PREFIX)
}

/// The join token the agent is given: id, secret and the SHA-256 (hex) of
/// the CA certificate the agent is to trust, which it pins.
pub fn with_fingerprint(token: &Secret, ca_sha256_hex: &str) -> Secret {
    Secret(format!("{}_{ca_sha256_hex}", token.0))
}

/// A parsed join token.
#[derive(Debug, PartialEq, Eq)]
pub struct JoinParts<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub ca_sha256: &'a str,
}

/// Splits a join token; None when it is not one.
pub fn parse_join(text: &str) -> Option<JoinParts<'_>> {
    let mut parts = text.trim().strip_prefix(JOIN_PREFIX)?.split('_');
    let (id, secret, fp) = (parts.next()?, parts.next()?, parts.next()?);
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (parts.next().is_none() && is_hex(id, 16) && is_hex(secret, 32) && is_hex(fp, 64)).then_some(
        JoinParts {
            id,
            secret,
            ca_sha256: fp,
        },
    )
}

/// SHA-256 of the secret part, hex. A plain hash is enough: the secret is
/// 256 random bits, not a password that could be guessed.
pub fn hash_secret(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Splits token text into (id, secret); None when it is not one of ours.
pub fn parse_token(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex(id, 16) && is_hex(secret, 64)).then_some((id, secret))
}

/// Compares two hashes in time independent of where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_carry_the_fingerprint() {
        let t = generate_join().unwrap();
        let fp = "ab".repeat(32);
        let whole = with_fingerprint(&t.text, &fp);
        let p = parse_join(&whole.0).expect("parses");
        assert_eq!((p.id, p.ca_sha256), (t.id.as_str(), fp.as_str()));
        assert_eq!(hash_secret(p.secret), t.secret_hash);
        assert_eq!(parse_join(&t.text.0), None, "no fingerprint");
        assert_eq!(parse_join(&format!("{}_00", whole.0)), None);
        assert_eq!(parse_join(&whole.0.replace("mlj_", "mlk_")), None);
        assert!(
            parse_join(&format!(" {}\n", whole.0)).is_some(),
            "pasted with spaces"
        );
    }

    #[test]
    fn tokens_parse_and_hash() {
        let t = generate().unwrap();
        let (id, secret) = parse_token(&t.text.0).expect("a generated token parses");
        assert_eq!(id, t.id);
        assert!(same_hash(&hash_secret(secret), &t.secret_hash));
        assert!(!t.secret_hash.contains(secret));
        let t2 = generate().unwrap();
        assert_ne!(t.text, t2.text);
        assert!(!same_hash(&t.secret_hash, &t2.secret_hash));
        assert!(!format!("{:?}", t.text).contains(secret));

        for bad in [
            "",
            "mlk_",
            "Bearer mlk_0011223344556677_00",
            "mlk_0011223344556677",
            "mlk_001122334455667_0000000000000000000000000000000000000000000000000000000000000000",
            "mlk_00112233445566zz_0000000000000000000000000000000000000000000000000000000000000000",
            "xyz_0011223344556677_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(parse_token(bad).is_none(), "{bad:?}");
        }
        assert!(parse_token(
            "mlk_0011223344556677_0000000000000000000000000000000000000000000000000000000000000000"
        )
        .is_some());
    }
}
