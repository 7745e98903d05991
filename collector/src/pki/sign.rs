//! Agent certificates from certificate signing requests: the checks on a
//! CSR (parses, self-signature holds, a strong key, the name allowed) and
//! the short-lived client certificate made from it. No IO: the CA and the
//! clock come in as values.

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};

/// Why a CSR is refused. Says what to do; nothing is issued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the certificate signing request is not a PEM or DER PKCS#10 request")]
    Malformed,
    #[error("the certificate signing request's signature does not verify")]
    BadSignature,
    #[error("the certificate signing request's key is too weak ({0}): use ECDSA P-256 or P-384, Ed25519, or RSA of 2048 bits or more")]
    WeakKey(String),
    #[error("the certificate signing request has no common name: it names the agent")]
    NoName,
    #[error("the certificate signing request names {asked:?}, but the join token is for agent {allowed:?}")]
    WrongName { asked: String, allowed: String },
    #[error("agent id {0:?}: use 1 to 64 of A-Z a-z 0-9 - _ . (not starting with a dot)")]
    BadName(String),
}

/// A checked CSR: the agent id it names and its public key.
pub struct CheckedCsr {
    pub agent: String,
    key: rcgen::PublicKey,
}

/// Checks a CSR (PEM, or DER) for `allowed` (the only name it may carry;
/// None: any valid agent id).
pub fn check_csr(csr: &[u8], allowed: Option<&str>) -> Result<CheckedCsr, CsrError> {
    let der = match x509_parser::pem::parse_x509_pem(csr) {
        Ok((_, p)) if p.label == "CERTIFICATE REQUEST" || p.label == "NEW CERTIFICATE REQUEST" => {
            p.contents
        }
        Ok(_) => return Err(CsrError::Malformed),
        Err(_) => csr.to_vec(),
    };
    use x509_parser::prelude::FromDer;
    let (rest, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|_| CsrError::Malformed)?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed);
    }
    let spki = &req.certification_request_info.subject_pki;
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => {
            return Err(CsrError::WeakKey(format!("RSA {} bits", rsa.key_size())))
        }
        Ok(x509_parser::public_key::PublicKey::RSA(_))
        | Ok(x509_parser::public_key::PublicKey::EC(_)) => {}
        Ok(x509_parser::public_key::PublicKey::Unknown(_))
            if spki.algorithm.algorithm == x509_parser::oid_registry::OID_SIG_ED25519 => {}
        Ok(other) => return Err(CsrError::WeakKey(key_kind(&other).into())),
        Err(_) => return Err(CsrError::Malformed),
    }
    // rcgen verifies the self-signature and knows only strong algorithms.
    let params =
        CertificateSigningRequestParams::from_der(&der.as_slice().into()).map_err(|e| match e {
            rcgen::Error::InvalidCertificationRequestSignature => CsrError::BadSignature,
            rcgen::Error::UnsupportedSignatureAlgorithm => {
                CsrError::WeakKey("unsupported algorithm".into())
            }
            _ => CsrError::Malformed,
        })?;
    let name = params
        .params
        .distinguished_name
        .get(&DnType::CommonName)
        .and_then(dn_text)
        .ok_or(CsrError::NoName)?;
    if let Some(allowed) = allowed {
        if name != allowed {
            return Err(CsrError::WrongName {
                asked: name,
                allowed: allowed.into(),
            });
        }
    }
    if !crate::model::valid_agent_id(&name) {
        return Err(CsrError::BadName(name));
    }
    Ok(CheckedCsr {
        agent: name,
        key: params.public_key,
    })
}

fn key_kind(k: &x509_parser::public_key::PublicKey<'_>) -> &'static str {
    use x509_parser::public_key::PublicKey::*;
    match k {
        DSA(_) => "DSA",
        GostR3410(_) | GostR3410_2012(_) => "GOST",
        _ => "unknown key type",
    }
}

fn dn_text(v: &DnValue) -> Option<String> {
    match v {
        DnValue::Utf8String(s) => Some(s.clone()),
        DnValue::PrintableString(s) => Some(s.as_str().to_string()),
        DnValue::Ia5String(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// The CA that signs agent certificates, and what agents are told to trust.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    /// CA certificate(s) given to agents: the one their certificates chain
    /// to and the one the collector's certificate chains to.
    pub trust_pem: String,
    /// SHA-256 (hex) of the CA certificate agents pin: a join token carries it.
    pub pin_sha256: String,
}

/// A certificate made for an agent.
#[derive(Debug, Clone)]
pub struct AgentCert {
    pub pem: String,
    pub serial: String,
    pub not_after_ms: i64,
}

impl Signer {
    /// `ca_pem` and `ca_key_pem` sign agent certificates; `server_ca_pem`
    /// is the CA the collector's own certificate chains to (agents pin it).
    pub fn new(
        ca_pem: &str,
        ca_key_pem: &str,
        server_ca_pem: &str,
    ) -> Result<Signer, rcgen::Error> {
        let key = KeyPair::from_pem(ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(ca_pem, key)?;
        let pin_sha256 =
            first_cert_sha256(server_ca_pem).ok_or(rcgen::Error::CouldNotParseCertificate)?;
        let mut trust_pem = server_ca_pem.trim_end().to_string();
        trust_pem.push('\n');
        if first_cert_sha256(ca_pem) != Some(pin_sha256.clone()) {
            trust_pem.push_str(ca_pem.trim_end());
            trust_pem.push('\n');
        }
        Ok(Signer {
            issuer,
            trust_pem,
            pin_sha256,
        })
    }

    /// A client certificate for the CSR's agent, from `now_ms` (backdated a
    /// little for clocks that differ) for `lifetime_ms`, with a random
    /// serial.
    pub fn sign(
        &self,
        csr: &CheckedCsr,
        now_ms: i64,
        lifetime_ms: i64,
        serial: [u8; 16],
    ) -> Result<AgentCert, rcgen::Error> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name
            .push(DnType::CommonName, csr.agent.as_str());
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // Positive and without a leading zero byte: its DER is these bytes.
        let mut serial = serial;
        serial[0] = (serial[0] & 0x3f) | 0x40;
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        let backdate = (lifetime_ms / 10).min(3_600_000);
        let at = |ms: i64| {
            time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        };
        let not_after_ms = now_ms.saturating_add(lifetime_ms);
        p.not_before = at(now_ms - backdate);
        p.not_after = at(not_after_ms);
        let cert = p.signed_by(&csr.key, &self.issuer)?;
        Ok(AgentCert {
            pem: cert.pem(),
            serial: hex(&serial),
            not_after_ms: not_after_ms.div_euclid(1000) * 1000,
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 (hex) of the first certificate in a PEM text: the fingerprint
/// a join token carries.
pub fn first_cert_sha256(pem: &str) -> Option<String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (p.label == "CERTIFICATE")
        .then(|| hex(ring::digest::digest(&ring::digest::SHA256, &p.contents).as_ref()))
}

/// The serial (hex) of a DER certificate, as `Signer::sign` writes it.
pub fn serial_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(hex(cert.raw_serial()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "test CA");
        let c = p.self_signed(&key).unwrap();
        (c.pem(), key.serialize_pem())
    }

    fn csr_for(name: &str, key: &KeyPair) -> String {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.serialize_request(key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_good_csr_becomes_a_short_lived_client_certificate() {
        let (ca_pem, ca_key) = ca();
        let signer = Signer::new(&ca_pem, &ca_key, &ca_pem).unwrap();
        assert_eq!(signer.pin_sha256, first_cert_sha256(&ca_pem).unwrap());
        assert_eq!(signer.trust_pem.matches("BEGIN CERTIFICATE").count(), 1);
        let key = KeyPair::generate().unwrap();
        let csr = check_csr(csr_for("agent-7", &key).as_bytes(), Some("agent-7")).unwrap();
        let now = 1_800_000_000_000;
        let c = signer.sign(&csr, now, 60_000, [0xff; 16]).unwrap();
        let (_, p) = x509_parser::pem::parse_x509_pem(c.pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&p.contents).unwrap();
        assert_eq!(
            super::super::common_name(&p.contents).as_deref(),
            Some("agent-7")
        );
        assert_eq!(cert.validity().not_after.timestamp() * 1000, now + 60_000);
        assert_eq!(cert.validity().not_before.timestamp() * 1000, now - 6_000);
        assert_eq!(serial_of(&p.contents).unwrap(), c.serial);
        assert_eq!(c.serial.len(), 32);
        assert!(c.serial.starts_with('7'), "{}", c.serial);
        assert_eq!(
            cert.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
        );
    }

    #[test]
    fn bad_csrs_are_refused_with_the_reason() {
        let key = KeyPair::generate().unwrap();
        let good = csr_for("agent-7", &key);
        assert!(matches!(
            check_csr(good.as_bytes(), Some("agent-8")),
            Err(CsrError::WrongName { .. })
        ));
        assert_eq!(check_csr(b"garbage", None).err(), Some(CsrError::Malformed));
        assert!(matches!(
            check_csr(csr_for("../x", &key).as_bytes(), None),
            Err(CsrError::BadName(_))
        ));
        // Flip a byte of the signature: the self-signature no longer holds.
        let (_, p) = x509_parser::pem::parse_x509_pem(good.as_bytes()).unwrap();
        let mut der = p.contents.clone();
        let last = der.len() - 3;
        der[last] ^= 0x55;
        assert!(matches!(
            check_csr(&der, None),
            Err(CsrError::BadSignature | CsrError::Malformed)
        ));
        let no_name = {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.serialize_request(&key).unwrap().pem().unwrap()
        };
        assert_eq!(
            check_csr(no_name.as_bytes(), None).err(),
            Some(CsrError::NoName)
        );
        // A certificate is not a request.
        let (ca_pem, _) = ca();
        assert_eq!(
            check_csr(ca_pem.as_bytes(), None).err(),
            Some(CsrError::Malformed)
        );
    }
}
