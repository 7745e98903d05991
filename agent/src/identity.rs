//! The agent's TLS identity: the certificate files agent.toml names, or the
//! one enrollment keeps in data_dir/identity/agent.pem (key, certificate
//! and CA in one file, mode 0600, replaced by an atomic rename). Enrolling
//! with a join token pins the collector's CA by the token's fingerprint;
//! renewing before expiry makes a new key each time. The private key is
//! made here and never leaves this host.

use meterlink_proto::v1::collector_client::CollectorClient;
use meterlink_proto::v1::{EnrollRequest, RenewRequest};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_rustls::rustls;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Why the identity could not be read, made or renewed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {0} can be read by other users; run `chmod 600 {0}`")]
    KeyReadable(PathBuf),
    #[error("{0}: holds no {1}")]
    Missing(PathBuf, &'static str),
    #[error("not a join token: give the whole text `meterlink-collector token create` printed (mlj_...)")]
    BadToken,
    #[error("the agent has no certificate: enroll it with `meterlink-agent enroll --config agent.toml --token TOKEN`, or give [collector] token, or ca, cert and key")]
    NotEnrolled,
    /// The collector could not be reached or the TLS handshake failed:
    /// worth trying again.
    #[error("{0}")]
    Unreachable(String),
    /// The collector's chain holds no CA with the token's fingerprint.
    #[error("the collector at {url} presents no CA with the join token's fingerprint {fingerprint}...: the token was made by another collector, or this is not the collector it names")]
    NotPinned { url: String, fingerprint: String },
    /// The collector refused: the token, the CSR, or the agent.
    #[error("the collector refused: {0}")]
    Refused(String),
    #[error("cannot make a key or a certificate request: {0}")]
    Key(String),
}

impl IdentityError {
    /// Worth trying again later (the collector down), not a refusal.
    pub fn is_transient(&self) -> bool {
        matches!(self, IdentityError::Unreachable(_))
    }
}

/// Key, certificate and CA, with what the certificate says.
#[derive(Clone)]
pub struct Material {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's common name.
    pub agent_id: Option<String>,
    pub not_before_ms: Option<i64>,
    pub not_after_ms: Option<i64>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("agent_id", &self.agent_id)
            .field("not_after_ms", &self.not_after_ms)
            .finish_non_exhaustive()
    }
}

impl Material {
    fn new(ca_pem: String, cert_pem: String, key_pem: String) -> Material {
        let (agent_id, not_before_ms, not_after_ms) = describe(&cert_pem);
        Material {
            ca_pem,
            cert_pem,
            key_pem,
            agent_id,
            not_before_ms,
            not_after_ms,
        }
    }

    /// When to renew: at two thirds of the certificate's life.
    pub fn renew_at_ms(&self) -> Option<i64> {
        let (b, a) = (self.not_before_ms?, self.not_after_ms?);
        Some(b + (a - b) * 2 / 3)
    }
}

/// (common name, not before, not after) of a PEM certificate.
fn describe(cert_pem: &str) -> (Option<String>, Option<i64>, Option<i64>) {
    let Ok((_, p)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return (None, None, None);
    };
    let Ok((_, c)) = x509_parser::parse_x509_certificate(&p.contents) else {
        return (None, None, None);
    };
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|n| n.as_str().ok())
        .map(str::to_string);
    let v = c.validity();
    (
        cn,
        Some(v.not_before.timestamp() * 1000),
        Some(v.not_after.timestamp() * 1000),
    )
}

/// Where the identity comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Files agent.toml names, managed by whoever made them.
    Files {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    /// The file enrollment writes and renewal replaces.
    Enrolled { dir: PathBuf },
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn read_secret(path: &Path) -> Result<String, IdentityError> {
    let meta = std::fs::metadata(path).map_err(file_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(IdentityError::KeyReadable(path.to_path_buf()));
    }
    std::fs::read_to_string(path).map_err(file_err(path))
}

/// PEM blocks of `text` with the given label, each re-encoded as PEM.
fn blocks(text: &str, label: &str) -> Vec<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let Some(j) = rest[i..].find(&end) else { break };
        out.push(format!("{}\n", &rest[i..i + j + end.len()]));
        rest = &rest[i + j + end.len()..];
    }
    out
}

impl Source {
    pub fn from_config(c: &crate::config::CollectorConfig, data_dir: &Path) -> Source {
        match (&c.ca, &c.cert, &c.key) {
            (Some(ca), Some(cert), Some(key)) => Source::Files {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => Source::Enrolled {
                dir: data_dir.join("identity"),
            },
        }
    }

    /// The enrolled identity's file.
    pub fn enrolled_file(dir: &Path) -> PathBuf {
        dir.join("agent.pem")
    }

    /// Whether there is anything to load (enrolled: the file exists).
    pub fn present(&self) -> bool {
        match self {
            Source::Files { .. } => true,
            Source::Enrolled { dir } => Source::enrolled_file(dir).exists(),
        }
    }

    pub fn load(&self) -> Result<Material, IdentityError> {
        match self {
            Source::Files { ca, cert, key } => {
                let key_pem = read_secret(key)?;
                let ca_pem = std::fs::read_to_string(ca).map_err(file_err(ca))?;
                let cert_pem = std::fs::read_to_string(cert).map_err(file_err(cert))?;
                Ok(Material::new(ca_pem, cert_pem, key_pem))
            }
            Source::Enrolled { dir } => {
                let path = Source::enrolled_file(dir);
                if !path.exists() {
                    return Err(IdentityError::NotEnrolled);
                }
                let text = read_secret(&path)?;
                let key = blocks(&text, "PRIVATE KEY")
                    .pop()
                    .ok_or(IdentityError::Missing(path.clone(), "private key"))?;
                let mut certs = blocks(&text, "CERTIFICATE").into_iter();
                let cert = certs
                    .next()
                    .ok_or(IdentityError::Missing(path.clone(), "certificate"))?;
                let ca: String = certs.collect();
                if ca.is_empty() {
                    return Err(IdentityError::Missing(path, "CA certificate"));
                }
                Ok(Material::new(ca, cert, key))
            }
        }
    }

    /// Replaces the enrolled identity with `m` in one rename (a crash leaves
    /// the old file or the new one, never half of each).
    fn store(dir: &Path, m: &Material) -> Result<(), IdentityError> {
        std::fs::create_dir_all(dir).map_err(file_err(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(file_err(dir))?;
        let path = Source::enrolled_file(dir);
        let tmp = dir.join("agent.pem.new");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(file_err(&tmp))?;
        let text = format!(
            "{}{}{}",
            m.key_pem.trim_end().to_string() + "\n",
            m.cert_pem.trim_end().to_string() + "\n",
            m.ca_pem.trim_end().to_string() + "\n"
        );
        f.write_all(text.as_bytes()).map_err(file_err(&tmp))?;
        f.sync_all().map_err(file_err(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(file_err(&path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// How the collector is reached.
#[derive(Debug, Clone)]
pub struct Reach {
    pub url: String,
    pub server_name: String,
    pub proxy: Option<String>,
}

impl Reach {
    pub fn from_config(c: &crate::config::CollectorConfig) -> Reach {
        let host = c
            .url
            .trim_start_matches("https://")
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
            .unwrap_or_default();
        Reach {
            url: c.url.clone(),
            server_name: c.server_name.clone().unwrap_or(host),
            proxy: c.proxy.clone(),
        }
    }

    /// A gRPC channel trusting `ca_pem`, with `identity` as the client
    /// certificate when given.
    pub async fn channel(
        &self,
        ca_pem: &str,
        identity: Option<(&str, &str)>,
    ) -> Result<Channel, IdentityError> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name(self.server_name.clone());
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let endpoint = crate::connect::endpoint(&self.url, tls)
            .map_err(|e| IdentityError::Refused(format!("collector url {:?}: {e}", self.url)))?
            .timeout(Duration::from_secs(30));
        let connected = endpoint
            .connect_with_connector(crate::connect::Connect::new(self.proxy.as_deref()))
            .await;
        connected.map_err(|e| {
            IdentityError::Unreachable(format!("cannot connect to {}: {}", self.url, chain(&e)))
        })
    }

    async fn tcp(&self) -> Result<tokio::net::TcpStream, IdentityError> {
        let uri: tonic::transport::Uri = self
            .url
            .parse()
            .map_err(|e| IdentityError::Refused(format!("collector url {:?}: {e}", self.url)))?;
        let connect = crate::connect::Connect::new(self.proxy.as_deref());
        match tokio::time::timeout(crate::connect::CONNECT_TIMEOUT, connect.open(&uri)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(IdentityError::Unreachable(format!(
                "cannot connect to {}: {e}",
                self.url
            ))),
            Err(_) => Err(IdentityError::Unreachable(format!(
                "cannot connect to {}: no answer within {} s",
                self.url,
                crate::connect::CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The collector's CA, pinned: a TLS handshake records the chain the
    /// collector presents, the certificate in it with `sha256_hex` becomes
    /// the only root, and the collector's certificate must verify against
    /// it for `server_name`. Answers the CA as PEM.
    pub async fn pinned_ca(&self, sha256_hex: &str) -> Result<String, IdentityError> {
        use rustls::client::danger::ServerCertVerifier;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let capture = Arc::new(Capture {
            chain: Mutex::new(Vec::new()),
            provider: provider.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| IdentityError::Key(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(capture.clone())
            .with_no_client_auth();
        let mut config = config;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name =
            rustls::pki_types::ServerName::try_from(self.server_name.clone()).map_err(|e| {
                IdentityError::Refused(format!("server name {:?}: {e}", self.server_name))
            })?;
        let tcp = self.tcp().await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = tokio::time::timeout(
            Duration::from_secs(10),
            connector.connect(name.clone(), tcp),
        )
        .await
        .map_err(|_| {
            IdentityError::Unreachable(format!("TLS handshake with {} timed out", self.url))
        })?
        .map_err(|e| IdentityError::Unreachable(format!("TLS handshake with {}: {e}", self.url)))?;
        drop(tls);
        let chain = capture
            .chain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let want = sha256_hex.to_ascii_lowercase();
        let not_pinned = || IdentityError::NotPinned {
            url: self.url.clone(),
            fingerprint: want[..16].to_string(),
        };
        let ca = chain
            .iter()
            .find(|c| sha256(c.as_ref()) == want)
            .ok_or_else(not_pinned)?;
        let (end, intermediates) = chain.split_first().ok_or_else(not_pinned)?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| IdentityError::Refused(format!("the pinned CA does not parse: {e}")))?;
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| IdentityError::Key(e.to_string()))?;
        verifier
            .verify_server_cert(end, intermediates, &name, &[], rustls::pki_types::UnixTime::now())
            .map_err(|e| {
                IdentityError::Refused(format!(
                    "the collector's certificate does not verify against the pinned CA for {:?}: {e}",
                    self.server_name
                ))
            })?;
        Ok(to_pem(ca.as_ref()))
    }
}

/// Records the chain the server presents; the signature checks are real
/// (the handshake proves the server holds its key); whether the chain is
/// trusted is decided after, against the pinned CA.
#[derive(Debug)]
struct Capture {
    chain: Mutex<Vec<rustls::pki_types::CertificateDer<'static>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let mut c = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        *c = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|d| d.clone().into_owned())
            .collect();
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn sha256(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap_or(""));
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// The fingerprint part of a join token `mlj_<id>_<secret>_<sha256>`.
pub fn token_fingerprint(token: &str) -> Result<&str, IdentityError> {
    let rest = token
        .trim()
        .strip_prefix("mlj_")
        .ok_or(IdentityError::BadToken)?;
    let parts: Vec<&str> = rest.split('_').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match parts.as_slice() {
        [id, secret, fp] if hex(id, 16) && hex(secret, 32) && hex(fp, 64) => Ok(fp),
        _ => Err(IdentityError::BadToken),
    }
}

/// A new key (ECDSA P-256) and a CSR naming `agent_id`.
fn key_and_csr(agent_id: &str) -> Result<(rcgen::KeyPair, String), IdentityError> {
    let key = rcgen::KeyPair::generate().map_err(|e| IdentityError::Key(e.to_string()))?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    p.distinguished_name
        .push(rcgen::DnType::CommonName, agent_id);
    let csr = p
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    Ok((key, csr))
}

fn refused(s: tonic::Status) -> IdentityError {
    match s.code() {
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::ResourceExhausted => {
            IdentityError::Unreachable(format!("collector: {}", s.message()))
        }
        _ => IdentityError::Refused(s.message().to_string()),
    }
}

/// Enrolls as `agent_id` with `token`: pins the CA, sends a CSR for a key
/// made here, and writes key, certificate and CA to `dir`.
pub async fn enroll(
    reach: &Reach,
    token: &str,
    agent_id: &str,
    dir: &Path,
) -> Result<Material, IdentityError> {
    let fp = token_fingerprint(token)?;
    let ca_pem = reach.pinned_ca(fp).await?;
    let (key, csr) = key_and_csr(agent_id)?;
    let channel = reach.channel(&ca_pem, None).await?;
    let r = CollectorClient::new(channel)
        .enroll(EnrollRequest {
            token: token.trim().to_string(),
            csr_pem: csr,
        })
        .await
        .map_err(refused)?
        .into_inner();
    // The pinned CA first: it is what the collector's certificate chains to.
    let mut ca = ca_pem;
    for c in blocks(&r.ca_pem, "CERTIFICATE") {
        if !ca.contains(c.trim()) {
            ca.push_str(&c);
        }
    }
    let m = Material::new(ca, r.certificate_pem, key.serialize_pem());
    if m.agent_id.as_deref() != Some(agent_id) {
        return Err(IdentityError::Refused(format!(
            "the certificate issued names {:?}, not {agent_id:?}",
            m.agent_id
        )));
    }
    store_off_runtime(dir, &m).await?;
    Ok(m)
}

/// Renews `current` over mutual TLS with a new key; writes it to `dir`.
pub async fn renew(
    reach: &Reach,
    current: &Material,
    dir: &Path,
) -> Result<Material, IdentityError> {
    let agent_id = current
        .agent_id
        .clone()
        .ok_or_else(|| IdentityError::Key("the current certificate has no common name".into()))?;
    let (key, csr) = key_and_csr(&agent_id)?;
    let channel = reach
        .channel(&current.ca_pem, Some((&current.cert_pem, &current.key_pem)))
        .await?;
    let r = CollectorClient::new(channel)
        .renew(RenewRequest { csr_pem: csr })
        .await
        .map_err(refused)?
        .into_inner();
    let m = Material::new(
        current.ca_pem.clone(),
        r.certificate_pem,
        key.serialize_pem(),
    );
    if m.agent_id != current.agent_id {
        return Err(IdentityError::Refused(format!(
            "the renewed certificate names {:?}, not {agent_id:?}",
            m.agent_id
        )));
    }
    store_off_runtime(dir, &m).await?;
    Ok(m)
}

/// `Source::store` (it fsyncs) on a blocking thread (invariant 6).
async fn store_off_runtime(dir: &Path, m: &Material) -> Result<(), IdentityError> {
    let (dir, m) = (dir.to_path_buf(), m.clone());
    tokio::task::spawn_blocking(move || Source::store(&dir, &m))
        .await
        .map_err(|e| IdentityError::Key(format!("the identity write task failed: {e}")))?
}

/// What the renewal is doing, for `status` and the metrics.
#[derive(Debug, Default)]
pub struct IdentityStatus {
    /// When the certificate in use expires, ms (0: unknown).
    pub expires_at_ms: AtomicI64,
    pub renew_at_ms: AtomicI64,
    pub last_error: Mutex<Option<String>>,
    /// Notified when a renewed certificate is on disk: the uplink reconnects with it.
    pub renewed: Notify,
}

impl IdentityStatus {
    pub fn show(&self, m: &Material) {
        self.expires_at_ms
            .store(m.not_after_ms.unwrap_or(0), Ordering::Relaxed);
        self.renew_at_ms
            .store(m.renew_at_ms().unwrap_or(0), Ordering::Relaxed);
    }

    fn error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Renews the enrolled certificate at two thirds of its life, until
/// shutdown. A failed renewal is retried with backoff (never past a
/// quarter of the time left, at least a second); the old certificate stays
/// in use until it expires. Never returns an error: the agent goes on.
pub async fn keep_renewed(
    reach: Reach,
    dir: PathBuf,
    status: Arc<IdentityStatus>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let source = Source::Enrolled { dir: dir.clone() };
    let mut backoff = Duration::from_secs(1);
    loop {
        let wait = match source.load() {
            Ok(m) => {
                status.show(&m);
                let Some(at) = m.renew_at_ms() else {
                    tracing::warn!(
                        "the agent's certificate has no validity to read; not renewing it"
                    );
                    return;
                };
                let now = now_ms();
                if at > now {
                    Duration::from_millis((at - now) as u64)
                } else {
                    match renew(&reach, &m, &dir).await {
                        Ok(new) => {
                            status.show(&new);
                            status.error(None);
                            backoff = Duration::from_secs(1);
                            tracing::info!(
                                expires_at_ms = new.not_after_ms.unwrap_or(0),
                                "agent certificate renewed"
                            );
                            status.renewed.notify_one();
                            continue;
                        }
                        Err(e) => {
                            let left = m.not_after_ms.unwrap_or(now) - now;
                            if left <= 0 {
                                tracing::error!(error = %e, "the agent's certificate has expired and could not be renewed: enroll again with a new join token");
                            } else {
                                tracing::warn!(error = %e, left_ms = left, "certificate renewal failed; the current certificate stays in use; retrying");
                            }
                            status.error(Some(e.to_string()));
                            let cap = Duration::from_millis((left / 4).max(1000) as u64)
                                .min(Duration::from_secs(600));
                            let w = backoff.min(cap);
                            backoff = (backoff * 2).min(Duration::from_secs(600));
                            w
                        }
                    }
                }
            }
            Err(e) => {
                status.error(Some(e.to_string()));
                tracing::error!(error = %e, "cannot read the agent's certificate; looking again in 30 s");
                Duration::from_secs(30)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_give_their_fingerprint() {
        let fp = "ab".repeat(32);
        let t = format!("mlj_{}_{}_{fp}", "1".repeat(16), "2".repeat(32));
        assert_eq!(token_fingerprint(&t).unwrap(), fp);
        assert_eq!(token_fingerprint(&format!(" {t}\n")).unwrap(), fp);
        assert!(token_fingerprint("mlk_x").is_err());
        assert!(token_fingerprint(&t[..t.len() - 1]).is_err());
    }

    #[test]
    fn the_enrolled_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = key_and_csr("agent-3").unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "agent-3");
        let cert = p.self_signed(&key).unwrap().pem();
        let ca = {
            let k = rcgen::KeyPair::generate().unwrap();
            rcgen::CertificateParams::new(Vec::<String>::new())
                .unwrap()
                .self_signed(&k)
                .unwrap()
                .pem()
        };
        let m = Material::new(ca.clone(), cert.clone(), key.serialize_pem());
        let id = dir.path().join("identity");
        Source::store(&id, &m).unwrap();
        let file = Source::enrolled_file(&id);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = Source::Enrolled { dir: id.clone() }.load().unwrap();
        assert_eq!(back.agent_id.as_deref(), Some("agent-3"));
        assert_eq!(back.cert_pem.trim(), cert.trim());
        assert_eq!(back.ca_pem.trim(), ca.trim());
        assert_eq!(back.key_pem.trim(), key.serialize_pem().trim());
        let (b, a) = (back.not_before_ms.unwrap(), back.not_after_ms.unwrap());
        assert_eq!(back.renew_at_ms(), Some(b + (a - b) * 2 / 3));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Source::Enrolled { dir: id }.load().unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        let none = Source::Enrolled {
            dir: dir.path().join("nothing"),
        };
        assert!(!none.present());
        assert!(matches!(none.load(), Err(IdentityError::NotEnrolled)));
    }
}
