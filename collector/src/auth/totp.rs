//! The TOTP second factor (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1,
//! 30-second steps, 6 digits, as authenticator apps expect. Pure: the
//! secret, the code and the time in; the step that matched out. A code is
//! accepted in its own step and one step either side (clock drift), and
//! only once: the caller keeps the last step used and passes it back.

use data_encoding::BASE32_NOPAD;
use ring::hmac;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps either side of now that still count.
pub const WINDOW: i64 = 1;

/// The secret as an authenticator app takes it (base32, no padding).
pub fn encode_secret(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    BASE32_NOPAD.decode(text.trim().as_bytes()).ok()
}

/// The code of `step` (RFC 4226 section 5.3, dynamic truncation).
pub fn code(secret: &[u8], step: i64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let h = mac.as_ref();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(DIGITS)
}

/// The step `given` matches at `now_secs`, if it is a code of the window
/// and later than `last_step` (a code works once).
pub fn verify(secret: &[u8], given: &str, now_secs: i64, last_step: i64) -> Option<i64> {
    let given = given.trim();
    if given.len() != DIGITS as usize || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = given.parse().ok()?;
    let now = now_secs.div_euclid(STEP_SECS);
    (now - WINDOW..=now + WINDOW)
        .filter(|s| *s > last_step)
        .find(|s| code(secret, *s) == want)
}

/// The `otpauth://` URI an app reads from a QR code.
pub fn uri(secret_b32: &str, account: &str, issuer: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the 8-digit codes, last 6 digits).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, expected) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            let c = code(secret, t / STEP_SECS);
            assert_eq!(format!("{c:06}"), expected[2..], "t = {t}");
        }
    }

    #[test]
    fn a_code_counts_in_its_window_and_once() {
        let secret = b"12345678901234567890";
        let t = 1_111_111_111;
        let now_code = format!("{:06}", code(secret, t / STEP_SECS));
        let step = verify(secret, &now_code, t, 0).expect("accepted now");
        assert_eq!(step, t / STEP_SECS);
        // 30 s later (one step of drift) it still counts; 90 s later not.
        assert_eq!(verify(secret, &now_code, t + 30, 0), Some(step));
        assert_eq!(verify(secret, &now_code, t + 90, 0), None);
        assert_eq!(verify(secret, &now_code, t - 90, 0), None);
        // Used once: not again.
        assert_eq!(verify(secret, &now_code, t, step), None);
        for bad in ["", "12345", "1234567", "abcdef", " 12 34"] {
            assert_eq!(verify(secret, bad, t, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn secrets_round_trip_and_the_uri_names_the_account() {
        let s = encode_secret(&[0xde, 0xad, 0xbe, 0xef, 0x01]);
        assert_eq!(decode_secret(&s), Some(vec![0xde, 0xad, 0xbe, 0xef, 0x01]));
        let u = uri(&s, "mia@example.com", "meterlink");
        assert!(
            u.starts_with("otpauth://totp/meterlink:mia%40example.com?secret="),
            "{u}"
        );
        assert!(u.contains("&period=30"), "{u}");
    }
}
