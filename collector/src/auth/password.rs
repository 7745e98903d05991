//! Passwords (argon2id with OWASP's parameters: 19 MiB, 2 passes, 1 lane),
//! the login throttle and how long sessions last. Pure: the salt comes in from the caller, and the
//! times of earlier failures come in as values. Hashing takes tens of
//! milliseconds of CPU: callers run it on a blocking thread (invariant 6).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest and longest password accepted, in characters (NIST SP 800-63B
/// asks for at least 8 and for long ones to be allowed; we ask for 12).
pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// OWASP's argon2id configuration: m = 19456 KiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19_456;
pub const PASSES: u32 = 2;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).expect("OWASP's parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password is refused.
pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!(
            "a password has at least {MIN_LEN} characters (a phrase of a few words is good)"
        ));
    }
    if n > MAX_LEN {
        return Err(format!("a password has at most {MAX_LEN} characters"));
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err("a password of one character repeated is too easy to guess".into());
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password` with `salt`.
pub fn hash(password: &str, salt: &[u8; 16]) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| HashError(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false for one that
/// does not parse).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches in practice, verified against when the
/// e-mail is unknown, so that the answer takes as long as for a wrong
/// password.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("no password is this one, ever", &[0x5a; 16]).unwrap_or_default())
}

/// How many failed logins are allowed in a window, per e-mail address and
/// per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub per_email: usize,
    pub per_client: usize,
    pub window_ms: i64,
}

impl Default for Throttle {
    /// 5 failures per e-mail address and 20 per client address in 15 minutes.
    fn default() -> Self {
        Throttle {
            per_email: 5,
            per_client: 20,
            window_ms: 15 * 60_000,
        }
    }
}

impl Throttle {
    /// With the times of the failures of this e-mail address and of this
    /// client: None to go on, or how many ms until a try is allowed again.
    pub fn wait_ms(&self, email: &[i64], client: &[i64], now_ms: i64) -> Option<i64> {
        let wait = |times: &[i64], limit: usize| {
            let mut recent: Vec<i64> = times
                .iter()
                .copied()
                .filter(|t| *t > now_ms - self.window_ms)
                .collect();
            if recent.len() < limit {
                return None;
            }
            recent.sort_unstable();
            // Allowed again when enough of them have left the window.
            let freeing = recent[recent.len() - limit];
            Some((freeing + self.window_ms - now_ms).max(1))
        };
        match (wait(email, self.per_email), wait(client, self.per_client)) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }
}

/// How sessions last and logins are throttled.
#[derive(Clone, Debug)]
pub struct Sessions {
    pub idle_ms: i64,
    pub absolute_ms: i64,
    /// Secure cookies (the API is reached over TLS through a proxy);
    /// `X-Forwarded-Proto: https` turns them on per request too.
    pub secure: bool,
    pub throttle: Throttle,
}

impl Default for Sessions {
    /// 30 minutes idle, 12 hours in all.
    fn default() -> Self {
        Sessions {
            idle_ms: 30 * 60_000,
            absolute_ms: 12 * 3_600_000,
            secure: false,
            throttle: Throttle::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_say_their_parameters() {
        let h = hash("correct horse battery", &[7; 16]).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(
            hash("correct horse battery", &[8; 16]).unwrap(),
            h,
            "the salt counts"
        );
        assert!(!verify("", decoy()));
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        assert!(check_strength("short").unwrap_err().contains("at least 12"));
        assert!(check_strength("aaaaaaaaaaaaaa")
            .unwrap_err()
            .contains("repeated"));
        assert!(check_strength(&"ab".repeat(65))
            .unwrap_err()
            .contains("at most"));
        assert!(check_strength("lungo il fiume blu").is_ok());
        // Characters, not bytes.
        assert!(check_strength("ééééééééééé").is_err());
    }

    #[test]
    fn the_throttle_counts_failures_in_the_window() {
        let t = Throttle::default();
        let now = 100 * 60_000;
        let four: Vec<i64> = (0..4).map(|i| now - i * 1000).collect();
        assert_eq!(t.wait_ms(&four, &[], now), None);
        let mut five = four.clone();
        five.push(now - 10 * 60_000);
        // The oldest of the five leaves the window in 5 minutes.
        assert_eq!(t.wait_ms(&five, &[], now), Some(5 * 60_000));
        // Failures older than the window do not count.
        let old: Vec<i64> = (0..10).map(|i| now - 16 * 60_000 - i).collect();
        assert_eq!(t.wait_ms(&old, &[], now), None);
        let client: Vec<i64> = (0..20).map(|i| now - i * 100).collect();
        assert!(t.wait_ms(&[], &client, now).unwrap() > 14 * 60_000);
    }
}
