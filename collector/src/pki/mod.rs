//! Certificates: a development CA made on first start, server and agent
//! certificates signed by it, and the checks on key files.

pub mod sign;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Gen(#[from] rcgen::Error),
    #[error("key file {0} can be read by other users; run `chmod 600 {0}`")]
    KeyTooOpen(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuses private key files that group or others can read.
pub fn check_key_file(path: &Path) -> Result<(), PkiError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(PkiError::KeyTooOpen(path.display().to_string()));
    }
    Ok(())
}

/// Reads a certificate and its key, checking the key file's permissions.
pub fn read_pair(cert: &Path, key: &Path) -> Result<(String, String), PkiError> {
    check_key_file(key)?;
    let c = std::fs::read_to_string(cert).map_err(io(cert))?;
    let k = std::fs::read_to_string(key).map_err(io(key))?;
    Ok((c, k))
}

fn write_public(path: &Path, text: &str) -> Result<(), PkiError> {
    std::fs::write(path, text).map_err(io(path))
}

pub fn write_secret(path: &Path, text: &str) -> Result<(), PkiError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// A certificate authority kept in a directory: `ca.pem`, `ca-key.pem`.
pub struct Pki {
    pub dir: PathBuf,
}

/// Paths of an issued certificate and key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Validity window of an issued certificate, as (year, month, day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
}

/// Days a certificate issued without a validity of its own lasts.
pub const DEFAULT_CERT_DAYS: u32 = 365;
/// Days the development CA lasts.
pub const CA_DAYS: u32 = 3650;

impl Validity {
    /// From yesterday (clocks differ) to `days` after today, UTC.
    pub fn days_from(today: chrono::NaiveDate, days: u32) -> Validity {
        use chrono::Datelike;
        let ymd = |d: chrono::NaiveDate| (d.year(), d.month() as u8, d.day() as u8);
        let before = today.pred_opt().unwrap_or(today);
        let after = today
            .checked_add_days(chrono::Days::new(u64::from(days)))
            .unwrap_or(chrono::NaiveDate::MAX);
        Validity {
            not_before: ymd(before),
            not_after: ymd(after),
        }
    }

    pub fn days_from_now(days: u32) -> Validity {
        Validity::days_from(chrono::Utc::now().date_naive(), days)
    }

    fn apply(self, p: &mut CertificateParams) {
        p.not_before =
            rcgen::date_time_ymd(self.not_before.0, self.not_before.1, self.not_before.2);
        p.not_after = rcgen::date_time_ymd(self.not_after.0, self.not_after.1, self.not_after.2);
    }
}

/// When a PEM certificate expires, in ms since the epoch; None when it does
/// not parse.
pub fn expires_at_ms(pem: &str) -> Option<i64> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = p.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}

impl Pki {
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }

    /// Opens the CA in `dir`, creating a development CA there if none exists.
    pub fn ensure(dir: &Path, name: &str) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        if !pki.ca_cert().exists() {
            let key = KeyPair::generate()?;
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            Validity::days_from_now(CA_DAYS).apply(&mut p);
            let cert = p.self_signed(&key)?;
            write_secret(&pki.ca_key(), &key.serialize_pem())?;
            write_public(&pki.ca_cert(), &cert.pem())?;
            tracing::info!(dir = %dir.display(), "created a development certificate authority");
        }
        check_key_file(&pki.ca_key())?;
        Ok(pki)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let (cert, key) = read_pair(&self.ca_cert(), &self.ca_key())?;
        let key = KeyPair::from_pem(&key)?;
        Ok(Issuer::from_ca_cert_pem(&cert, key)?)
    }

    /// Issues a certificate for `name` into `out/<file>.pem` and `<file>-key.pem`,
    /// valid for `validity` or else `DEFAULT_CERT_DAYS` from today: never
    /// without an end. Servers get `name` and the loopback addresses as
    /// subject alternative names.
    pub fn issue(
        &self,
        name: &str,
        server: bool,
        out: &Path,
        file: &str,
        validity: Option<Validity>,
    ) -> Result<Issued, PkiError> {
        self.issue_named(name, &[], server, out, file, validity)
    }

    /// As `issue`, with `more` names (host names or addresses) beside `name`.
    pub fn issue_named(
        &self,
        name: &str,
        more: &[String],
        server: bool,
        out: &Path,
        file: &str,
        validity: Option<Validity>,
    ) -> Result<Issued, PkiError> {
        std::fs::create_dir_all(out).map_err(io(out))?;
        let key = KeyPair::generate()?;
        let mut sans = vec![name.to_string()];
        sans.extend(more.iter().filter(|m| m.as_str() != name).cloned());
        if server {
            sans.extend([
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ]);
        }
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        for s in sans {
            p.subject_alt_names
                .push(match s.parse::<std::net::IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(s.try_into()?),
                });
        }
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        validity
            .unwrap_or_else(|| Validity::days_from_now(DEFAULT_CERT_DAYS))
            .apply(&mut p);
        let cert = p.signed_by(&key, &self.issuer()?)?;
        let issued = Issued {
            cert: out.join(format!("{file}.pem")),
            key: out.join(format!("{file}-key.pem")),
        };
        write_secret(&issued.key, &key.serialize_pem())?;
        write_public(&issued.cert, &cert.pem())?;
        Ok(issued)
    }
}

/// The subject alternative names (DNS names and addresses) of a PEM
/// certificate, as text.
pub fn san_names(pem: &str) -> Vec<String> {
    let Ok((_, p)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else {
        return Vec::new();
    };
    let Ok((_, c)) = x509_parser::parse_x509_certificate(&p.contents) else {
        return Vec::new();
    };
    let Ok(Some(ext)) = c.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The common name of a DER certificate: the agent's identity.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_checks_keys() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(&dir.path().join("pki"), "test CA").unwrap();
        let c = pki
            .issue("agent-7", false, dir.path(), "agent", None)
            .unwrap();
        let pem = std::fs::read_to_string(&c.cert).unwrap();
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents;
        assert_eq!(common_name(&der).as_deref(), Some("agent-7"));
        check_key_file(&c.key).unwrap();
        std::fs::set_permissions(&c.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_key_file(&c.key).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn validity_runs_from_yesterday_for_the_days_asked() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(
            Validity::days_from(d, 30),
            Validity {
                not_before: (2026, 12, 30),
                not_after: (2027, 1, 30)
            }
        );
        let leap = chrono::NaiveDate::from_ymd_opt(2028, 3, 1).unwrap();
        assert_eq!(Validity::days_from(leap, 1).not_before, (2028, 2, 29));
    }

    #[test]
    fn every_certificate_has_an_end() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(&dir.path().join("ca"), "test CA").unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let day = 86_400_000;
        let ca = std::fs::read_to_string(pki.ca_cert()).unwrap();
        let ca_end = expires_at_ms(&ca).unwrap();
        assert!((ca_end - now - i64::from(CA_DAYS) * day).abs() <= 2 * day);
        let plain = pki.issue("a1", false, dir.path(), "a1", None).unwrap();
        let end = expires_at_ms(&std::fs::read_to_string(plain.cert).unwrap()).unwrap();
        assert!((end - now - i64::from(DEFAULT_CERT_DAYS) * day).abs() <= 2 * day);
        let short = pki
            .issue(
                "a2",
                false,
                dir.path(),
                "a2",
                Some(Validity::days_from_now(30)),
            )
            .unwrap();
        let end = expires_at_ms(&std::fs::read_to_string(short.cert).unwrap()).unwrap();
        assert!((end - now - 30 * day).abs() <= 2 * day);
        assert_eq!(expires_at_ms("not a certificate"), None);
    }
}
