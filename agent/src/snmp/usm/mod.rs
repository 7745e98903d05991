//! The User-based Security Model (RFC 3414, RFC 3826, RFC 7860) for both
//! sides of a v3 exchange: key localisation, message authentication and
//! privacy. No IO; randomness only for privacy salts.
//!
//! AES-192/256 need more key material than some hashes give. Two incompatible
//! extensions exist and both are in the field: "Blumenthal"
//! (draft-blumenthal-aes-usm-04, net-snmp's AES192/AES256) and "Reeder"
//! (draft-reeder-snmpv3-usm-3desede, Cisco's, net-snmp's AES192C/AES256C).

use super::message::{ScopedData, ScopedPdu, V3Message, FLAG_AUTH, FLAG_PRIV};
use aes::cipher::{
    block_padding::NoPadding, AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit,
};
use hmac::{Hmac, Mac};
use sha2::Digest;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AuthProtocol {
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA")]
    Sha1,
    #[serde(rename = "SHA-224")]
    Sha224,
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "SHA-384")]
    Sha384,
    #[serde(rename = "SHA-512")]
    Sha512,
}

impl AuthProtocol {
    pub const ALL: [AuthProtocol; 6] = [
        AuthProtocol::Md5,
        AuthProtocol::Sha1,
        AuthProtocol::Sha224,
        AuthProtocol::Sha256,
        AuthProtocol::Sha384,
        AuthProtocol::Sha512,
    ];

    /// The net-snmp spelling, as accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::Md5 => "MD5",
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha224 => "SHA-224",
            AuthProtocol::Sha256 => "SHA-256",
            AuthProtocol::Sha384 => "SHA-384",
            AuthProtocol::Sha512 => "SHA-512",
        }
    }

    /// Length of the truncated MAC carried in msgAuthenticationParameters.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn h<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            AuthProtocol::Md5 => h::<md5::Md5>(parts),
            AuthProtocol::Sha1 => h::<sha1::Sha1>(parts),
            AuthProtocol::Sha224 => h::<sha2::Sha224>(parts),
            AuthProtocol::Sha256 => h::<sha2::Sha256>(parts),
            AuthProtocol::Sha384 => h::<sha2::Sha384>(parts),
            AuthProtocol::Sha512 => h::<sha2::Sha512>(parts),
        }
    }

    /// RFC 3414 A.2: hash one megabyte of the repeated password.
    fn password_to_key(self, password: &[u8]) -> Vec<u8> {
        fn ku<D: Digest>(password: &[u8]) -> Vec<u8> {
            // The megabyte made by doubling the repetition, then hashed in
            // one go: copied byte by byte it cost more than the hashing (an
            // agent.toml of forty v3 credential sets took a second).
            const MB: usize = 1_048_576;
            let mut bytes = Vec::with_capacity(MB + password.len());
            bytes.extend_from_slice(password);
            while bytes.len() < MB {
                // Always a whole number of passwords so far: the copy
                // continues the cycle.
                bytes.extend_from_within(..bytes.len().min(MB - bytes.len()));
            }
            bytes.truncate(MB);
            D::digest(&bytes).to_vec()
        }
        if password.is_empty() {
            return Vec::new();
        }
        match self {
            AuthProtocol::Md5 => ku::<md5::Md5>(password),
            AuthProtocol::Sha1 => ku::<sha1::Sha1>(password),
            AuthProtocol::Sha224 => ku::<sha2::Sha224>(password),
            AuthProtocol::Sha256 => ku::<sha2::Sha256>(password),
            AuthProtocol::Sha384 => ku::<sha2::Sha384>(password),
            AuthProtocol::Sha512 => ku::<sha2::Sha512>(password),
        }
    }

    fn localize(self, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
        self.hash(&[ku, engine_id, ku])
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        macro_rules! m {
            ($d:ty) => {{
                let mut mac =
                    Hmac::<$d>::new_from_slice(key).expect("HMAC takes keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }};
        }
        let full = match self {
            AuthProtocol::Md5 => m!(md5::Md5),
            AuthProtocol::Sha1 => m!(sha1::Sha1),
            AuthProtocol::Sha224 => m!(sha2::Sha224),
            AuthProtocol::Sha256 => m!(sha2::Sha256),
            AuthProtocol::Sha384 => m!(sha2::Sha384),
            AuthProtocol::Sha512 => m!(sha2::Sha512),
        };
        full[..self.mac_len()].to_vec()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}")]
pub struct ProtocolParseError(pub String);

impl FromStr for AuthProtocol {
    type Err = ProtocolParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().replace('_', "-").as_str() {
            "MD5" => AuthProtocol::Md5,
            "SHA" | "SHA1" | "SHA-1" => AuthProtocol::Sha1,
            "SHA-224" | "SHA224" => AuthProtocol::Sha224,
            "SHA-256" | "SHA256" => AuthProtocol::Sha256,
            "SHA-384" | "SHA384" => AuthProtocol::Sha384,
            "SHA-512" | "SHA512" => AuthProtocol::Sha512,
            _ => return Err(ProtocolParseError(s.to_string())),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PrivProtocol {
    #[serde(rename = "DES")]
    Des,
    #[serde(rename = "AES")]
    Aes128,
    #[serde(rename = "AES192")]
    Aes192,
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "AES192C")]
    Aes192C,
    #[serde(rename = "AES256C")]
    Aes256C,
}

impl PrivProtocol {
    pub const ALL: [PrivProtocol; 6] = [
        PrivProtocol::Des,
        PrivProtocol::Aes128,
        PrivProtocol::Aes192,
        PrivProtocol::Aes256,
        PrivProtocol::Aes192C,
        PrivProtocol::Aes256C,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PrivProtocol::Des => "DES",
            PrivProtocol::Aes128 => "AES",
            PrivProtocol::Aes192 => "AES192",
            PrivProtocol::Aes256 => "AES256",
            PrivProtocol::Aes192C => "AES192C",
            PrivProtocol::Aes256C => "AES256C",
        }
    }

    fn key_len(self) -> usize {
        match self {
            PrivProtocol::Des | PrivProtocol::Aes128 => 16,
            PrivProtocol::Aes192 | PrivProtocol::Aes192C => 24,
            PrivProtocol::Aes256 | PrivProtocol::Aes256C => 32,
        }
    }
}

impl FromStr for PrivProtocol {
    type Err = ProtocolParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().replace('-', "").as_str() {
            "DES" => PrivProtocol::Des,
            "AES" | "AES128" => PrivProtocol::Aes128,
            "AES192" => PrivProtocol::Aes192,
            "AES256" => PrivProtocol::Aes256,
            "AES192C" => PrivProtocol::Aes192C,
            "AES256C" => PrivProtocol::Aes256C,
            _ => return Err(ProtocolParseError(s.to_string())),
        })
    }
}

/// A v3 user with its passwords already turned into keys (the expensive part,
/// done once per user, not per device).
#[derive(Clone)]
pub struct UsmUser {
    pub name: Vec<u8>,
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for UsmUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are derived from secrets: never print them.
        f.debug_struct("UsmUser")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("auth", &self.auth.as_ref().map(|a| a.0))
            .field("privacy", &self.privacy.as_ref().map(|p| p.0))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsmConfigError {
    #[error("privacy needs authentication: give an auth protocol and passphrase too")]
    PrivWithoutAuth,
    #[error("{0} passphrase must be at least 8 characters (RFC 3414)")]
    ShortPassphrase(&'static str),
}

impl UsmUser {
    pub fn new(
        name: &str,
        auth: Option<(AuthProtocol, &str)>,
        privacy: Option<(PrivProtocol, &str)>,
    ) -> Result<UsmUser, UsmConfigError> {
        if privacy.is_some() && auth.is_none() {
            return Err(UsmConfigError::PrivWithoutAuth);
        }
        if auth.is_some_and(|(_, p)| p.len() < 8) {
            return Err(UsmConfigError::ShortPassphrase("authentication"));
        }
        if privacy.is_some_and(|(_, p)| p.len() < 8) {
            return Err(UsmConfigError::ShortPassphrase("privacy"));
        }
        let auth_ku = auth.map(|(p, pass)| (p, p.password_to_key(pass.as_bytes())));
        // The privacy key is derived with the authentication hash (RFC 3826 §1.2).
        let priv_ku = match (auth, privacy) {
            (Some((a, _)), Some((p, pass))) => Some((p, a.password_to_key(pass.as_bytes()))),
            _ => None,
        };
        Ok(UsmUser {
            name: name.as_bytes().to_vec(),
            auth: auth_ku,
            privacy: priv_ku,
        })
    }

    pub fn security_flags(&self) -> u8 {
        (if self.auth.is_some() { FLAG_AUTH } else { 0 })
            | (if self.privacy.is_some() { FLAG_PRIV } else { 0 })
    }

    /// Keys localised to one authoritative engine.
    pub fn localize(&self, engine_id: &[u8]) -> LocalKeys {
        let auth = self
            .auth
            .as_ref()
            .map(|(p, ku)| (*p, p.localize(ku, engine_id)));
        let privacy = match (&self.auth, &self.privacy) {
            (Some((a, _)), Some((p, ku))) => {
                let mut kul = a.localize(ku, engine_id);
                let need = p.key_len();
                while kul.len() < need {
                    let more = match p {
                        PrivProtocol::Aes192C | PrivProtocol::Aes256C => {
                            a.localize(&a.password_to_key(&kul), engine_id)
                        }
                        _ => a.hash(&[&kul]),
                    };
                    kul.extend_from_slice(&more);
                }
                kul.truncate(need);
                Some((*p, kul))
            }
            _ => None,
        };
        LocalKeys { auth, privacy }
    }
}

#[derive(Clone)]
pub struct LocalKeys {
    auth: Option<(AuthProtocol, Vec<u8>)>,
    privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKeys(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsmError {
    #[error("message is not authenticated but the user requires authentication")]
    NotAuthenticated,
    #[error("authentication failed: the message digest does not match (wrong authentication passphrase or protocol)")]
    WrongDigest,
    #[error("message is not encrypted but the user requires privacy")]
    NotEncrypted,
    #[error("decryption failed (wrong privacy passphrase or protocol): {0}")]
    Decryption(String),
}

fn next_salt() -> u64 {
    static SALT: OnceLock<AtomicU64> = OnceLock::new();
    SALT.get_or_init(|| {
        let mut seed = [0u8; 8];
        // A predictable start only weakens IV uniqueness across restarts; never fail on it.
        let _ = getrandom::getrandom(&mut seed);
        AtomicU64::new(u64::from_ne_bytes(seed))
    })
    .fetch_add(1, Ordering::Relaxed)
}

impl LocalKeys {
    /// Encrypts (if the keys have privacy) and authenticates (if they have
    /// authentication) a message whose data is a plain scoped PDU.
    pub fn seal(&self, mut msg: V3Message) -> Vec<u8> {
        msg.flags &= !(FLAG_AUTH | FLAG_PRIV);
        if let (Some((p, key)), ScopedData::Plain(sp)) = (&self.privacy, &msg.data) {
            let plain = sp.encode();
            let (cipher, salt) = encrypt(*p, key, msg.usm.engine_boots, msg.usm.engine_time, plain);
            msg.data = ScopedData::Encrypted(cipher);
            msg.usm.priv_params = salt;
            msg.flags |= FLAG_PRIV;
        }
        match &self.auth {
            Some((a, key)) => {
                msg.flags |= FLAG_AUTH;
                msg.usm.auth_params = vec![0u8; a.mac_len()];
                let (mut bytes, at) = msg.encode();
                let mac = a.mac(key, &bytes);
                bytes[at..at + mac.len()].copy_from_slice(&mac);
                bytes
            }
            None => {
                msg.usm.auth_params.clear();
                msg.encode().0
            }
        }
    }

    /// Verifies and decrypts a received message. `packet` is the message as
    /// received, `auth_at` where its authentication parameters start.
    pub fn open(
        &self,
        packet: &[u8],
        auth_at: usize,
        msg: &V3Message,
    ) -> Result<ScopedPdu, UsmError> {
        if let Some((a, key)) = &self.auth {
            if msg.flags & FLAG_AUTH == 0 {
                return Err(UsmError::NotAuthenticated);
            }
            let got = &msg.usm.auth_params;
            if got.len() != a.mac_len() || auth_at + got.len() > packet.len() {
                return Err(UsmError::WrongDigest);
            }
            let mut zeroed = packet.to_vec();
            zeroed[auth_at..auth_at + got.len()].fill(0);
            let want = a.mac(key, &zeroed);
            if !constant_time_eq(&want, got) {
                return Err(UsmError::WrongDigest);
            }
        }
        match (&msg.data, &self.privacy) {
            (ScopedData::Plain(sp), None) => Ok(sp.clone()),
            (ScopedData::Plain(_), Some(_)) => Err(UsmError::NotEncrypted),
            (ScopedData::Encrypted(c), Some((p, key))) => {
                let plain = decrypt(
                    *p,
                    key,
                    msg.usm.engine_boots,
                    msg.usm.engine_time,
                    &msg.usm.priv_params,
                    c,
                )?;
                // DES pads to 8 bytes; the scoped PDU's own length tells where it ends.
                ScopedPdu::decode(&plain).map_err(|e| UsmError::Decryption(e.to_string()))
            }
            (ScopedData::Encrypted(_), None) => Err(UsmError::Decryption(
                "message is encrypted but no privacy key is configured".into(),
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn encrypt(
    p: PrivProtocol,
    key: &[u8],
    boots: i64,
    time: i64,
    mut plain: Vec<u8>,
) -> (Vec<u8>, Vec<u8>) {
    let salt = next_salt();
    match p {
        PrivProtocol::Des => {
            let mut s = [0u8; 8];
            s[..4].copy_from_slice(&(boots as u32).to_be_bytes());
            s[4..].copy_from_slice(&(salt as u32).to_be_bytes());
            let mut iv = [0u8; 8];
            for i in 0..8 {
                iv[i] = key[8 + i] ^ s[i];
            }
            let len = plain.len();
            plain.resize(len.div_ceil(8) * 8, 0);
            let n = plain.len();
            cbc::Encryptor::<des::Des>::new_from_slices(&key[..8], &iv)
                .expect("DES key and IV are 8 bytes")
                .encrypt_padded_mut::<NoPadding>(&mut plain, n)
                .expect("buffer is a whole number of blocks");
            (plain, s.to_vec())
        }
        _ => {
            let s = salt.to_be_bytes();
            let iv = aes_iv(boots, time, &s);
            aes_cfb(p, key, &iv, &mut plain, true);
            (plain, s.to_vec())
        }
    }
}

fn aes_iv(boots: i64, time: i64, salt: &[u8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&(boots as u32).to_be_bytes());
    iv[4..8].copy_from_slice(&(time as u32).to_be_bytes());
    iv[8..].copy_from_slice(&salt[..8]);
    iv
}

fn aes_cfb(p: PrivProtocol, key: &[u8], iv: &[u8; 16], buf: &mut [u8], enc: bool) {
    macro_rules! run {
        ($c:ty, $n:expr) => {
            if enc {
                cfb_mode::Encryptor::<$c>::new_from_slices(&key[..$n], iv)
                    .expect("key length matches the cipher")
                    .encrypt(buf)
            } else {
                cfb_mode::Decryptor::<$c>::new_from_slices(&key[..$n], iv)
                    .expect("key length matches the cipher")
                    .decrypt(buf)
            }
        };
    }
    match p {
        PrivProtocol::Aes128 => run!(aes::Aes128, 16),
        PrivProtocol::Aes192 | PrivProtocol::Aes192C => run!(aes::Aes192, 24),
        PrivProtocol::Aes256 | PrivProtocol::Aes256C => run!(aes::Aes256, 32),
        PrivProtocol::Des => unreachable!("DES is CBC"),
    }
}

fn decrypt(
    p: PrivProtocol,
    key: &[u8],
    boots: i64,
    time: i64,
    salt: &[u8],
    cipher: &[u8],
) -> Result<Vec<u8>, UsmError> {
    if salt.len() != 8 {
        return Err(UsmError::Decryption(format!(
            "privacy parameters are {} bytes, expected 8",
            salt.len()
        )));
    }
    let mut buf = cipher.to_vec();
    match p {
        PrivProtocol::Des => {
            if !buf.len().is_multiple_of(8) {
                return Err(UsmError::Decryption(
                    "DES ciphertext is not a whole number of blocks".into(),
                ));
            }
            let mut iv = [0u8; 8];
            for i in 0..8 {
                iv[i] = key[8 + i] ^ salt[i];
            }
            cbc::Decryptor::<des::Des>::new_from_slices(&key[..8], &iv)
                .expect("DES key and IV are 8 bytes")
                .decrypt_padded_mut::<NoPadding>(&mut buf)
                .map_err(|e| UsmError::Decryption(e.to_string()))?;
        }
        _ => {
            let iv = aes_iv(boots, time, salt);
            aes_cfb(p, key, &iv, &mut buf, false);
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests;
