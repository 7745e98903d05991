//! Starting the collector: TLS material, store, gRPC (ingest, health,
//! reflection) and HTTP listeners. The one module that assembles the whole
//! (invariant C5).

use crate::config::Config;
use crate::ingest::{Ingest, MAX_MESSAGE};
use crate::pki::{read_pair, Pki};
use crate::store::{Settings, Store};
use meterlink_proto::v1::collector_server::CollectorServer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("{0}")]
    Mail(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running collector.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub store: Arc<Store>,
    /// The CA agents' certificates must chain to.
    pub client_ca: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting and waits for the listeners to close.
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// TLS files to use: (client CA, certificate, key, client CA's key, server
/// CA): the configured ones, or the development PKI under the data
/// directory (created on first start).
fn tls_files(cfg: &Config) -> Result<TlsFiles, StartError> {
    if let Some(t) = &cfg.tls {
        return Ok(TlsFiles {
            client_ca: t.client_ca.clone(),
            cert: t.cert.clone(),
            key: t.key.clone(),
            client_ca_key: t.client_ca_key.clone(),
            server_ca: t.server_ca.clone().unwrap_or_else(|| t.client_ca.clone()),
        });
    }
    let dir = cfg.data_dir.join("pki");
    let pki = Pki::ensure(&dir, "meterlink development CA")?;
    let cert = dir.join("collector.pem");
    let key = dir.join("collector-key.pem");
    // Made anew when missing, unreadable, within 30 days of its end, or
    // without a name agents use: a collector running for years keeps a
    // valid server certificate.
    let renew_before = crate::store::now_ms() + 30 * 86_400_000;
    let names = &cfg.grpc.server_names;
    let current = std::fs::read_to_string(&cert)
        .ok()
        .filter(|pem| {
            let has = crate::pki::san_names(pem);
            names.iter().all(|n| has.contains(n))
        })
        .and_then(|pem| crate::pki::expires_at_ms(&pem))
        .filter(|end| *end > renew_before);
    if current.is_none() || !key.exists() {
        pki.issue_named("localhost", names, true, &dir, "collector", None)?;
    }
    Ok(TlsFiles {
        client_ca: pki.ca_cert(),
        cert,
        key,
        client_ca_key: Some(pki.ca_key()),
        server_ca: pki.ca_cert(),
    })
}

struct TlsFiles {
    client_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_ca_key: Option<PathBuf>,
    server_ca: PathBuf,
}

fn read_text(p: &std::path::Path) -> Result<String, StartError> {
    std::fs::read_to_string(p).map_err(|e| StartError::Tls(format!("{}: {e}", p.display())))
}

/// What the gRPC listener presents and trusts, and the enrollment signer.
struct TlsMaterial {
    /// The collector's certificate followed by its chain up to its CA, so
    /// that an enrolling agent can pin the CA by its fingerprint.
    chain_pem: String,
    key_pem: String,
    client_ca_pem: String,
    signer: Option<crate::pki::sign::Signer>,
}

fn tls_material(f: &TlsFiles) -> Result<TlsMaterial, StartError> {
    let (cert_pem, key_pem) = read_pair(&f.cert, &f.key)?;
    let client_ca_pem = read_text(&f.client_ca)?;
    let server_ca_pem = read_text(&f.server_ca)?;
    let mut chain_pem = cert_pem.trim_end().to_string();
    chain_pem.push('\n');
    let ca_fp = crate::pki::sign::first_cert_sha256(&server_ca_pem);
    let has_ca = chain_pem
        .split_inclusive("-----END CERTIFICATE-----")
        .any(|c| crate::pki::sign::first_cert_sha256(c) == ca_fp);
    if !has_ca {
        chain_pem.push_str(server_ca_pem.trim_end());
        chain_pem.push('\n');
    }
    let signer = match &f.client_ca_key {
        Some(k) => {
            crate::pki::check_key_file(k)?;
            let key = read_text(k)?;
            Some(
                crate::pki::sign::Signer::new(&client_ca_pem, &key, &server_ca_pem)
                    .map_err(|e| StartError::Tls(format!("enrollment CA {}: {e}", k.display())))?,
            )
        }
        None => None,
    };
    Ok(TlsMaterial {
        chain_pem,
        key_pem,
        client_ca_pem,
        signer,
    })
}

/// `check-config`: everything `start` reads before it opens the store
/// (request rules, outbox settings, certificates and keys with their
/// permissions), checked without creating or opening anything.
pub fn check_config(cfg: &Config) -> Result<String, StartError> {
    let rules = cfg.rules()?;
    cfg.outbox()?;
    cfg.download_url()?;
    if let Some(m) = cfg.mail() {
        crate::mailer::transport(&m).map_err(StartError::Mail)?;
    }
    let tls = match &cfg.tls {
        Some(t) => {
            let m = tls_material(&TlsFiles {
                client_ca: t.client_ca.clone(),
                cert: t.cert.clone(),
                key: t.key.clone(),
                client_ca_key: t.client_ca_key.clone(),
                server_ca: t.server_ca.clone().unwrap_or_else(|| t.client_ca.clone()),
            })?;
            let enroll = if m.signer.is_some() {
                "enrollment on"
            } else {
                "enrollment off (no client_ca_key)"
            };
            format!("certificate {}, {enroll}", t.cert.display())
        }
        None => format!(
            "its own CA in {} (made on first start)",
            cfg.data_dir.join("pki").display()
        ),
    };
    Ok(format!(
        "ok: gRPC on {} with {tls}, REST API on {}, store {}, {} request rules\n",
        cfg.grpc.listen,
        cfg.http.listen,
        crate::store::redact_url(&cfg.store_url()),
        rules.rules.len()
    ))
}

/// A connection that has not finished its TLS handshake by then is closed:
/// one that stalls, or a client that connects and says nothing, would
/// otherwise hold a socket for good.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// HTTP/2 pings on an agent's connection after this much quiet; the
/// connection is closed when the answer takes longer than
/// [`KEEPALIVE_TIMEOUT`]: an agent whose host or network vanished without a
/// FIN or RST (power cut, a NAT that forgot the flow) does not leave its
/// stream open for ever.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn start(cfg: &Config) -> Result<Running, StartError> {
    let files = tls_files(cfg)?;
    let tls_m = tls_material(&files)?;
    let ca = files.client_ca.clone();
    let settings = Settings {
        filing: cfg.filing.clone(),
        rules: cfg.rules()?,
        outbox: cfg.portal.url.is_some(),
        email: cfg.mail().map(|_| crate::store::EmailSettings {
            public_url: cfg.email.public_url.clone(),
        }),
    };
    let outbox = cfg.outbox()?;
    let store = Arc::new(Store::open(&cfg.store_url(), settings).await?);
    first_operator(&store, &cfg.data_dir).await?;

    let grpc = tokio::net::TcpListener::bind(cfg.grpc.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.grpc.listen,
            source,
        })?;
    let http = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.http.listen,
            source,
        })?;
    let grpc_addr = grpc.local_addr().map_err(|source| StartError::Listen {
        addr: cfg.grpc.listen,
        source,
    })?;
    let http_addr = http.local_addr().map_err(|source| StartError::Listen {
        addr: cfg.http.listen,
        source,
    })?;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CollectorServer<Ingest>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(meterlink_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let metrics = Arc::new(crate::metrics::Metrics::new());
    // The clock's first run, before anything is served: what it finds is
    // what the store held at start, not whatever arrives while a spawned
    // task waits for its turn. Absences are judged from `listening_since`
    // on, once the agents have had the rules' catch-up time to deliver.
    let listening_since = crate::store::now_ms();
    clock_tick(&store, &metrics, listening_since).await;
    let (credentials_tx, credentials) = tokio::sync::watch::channel(Default::default());
    let enrollment = tls_m.signer.map(|signer| {
        Arc::new(crate::ingest::enroll::Enrollment {
            signer,
            cert_lifetime_ms: cfg.cert_lifetime_ms(),
        })
    });
    let ingest = CollectorServer::new(Ingest {
        store: store.clone(),
        metrics: metrics.clone(),
        agents_dir: cfg.agents_dir(),
        recheck: cfg.agents_recheck(),
        enrollment: enrollment.clone(),
        credentials,
    })
    .max_decoding_message_size(MAX_MESSAGE);
    // Client certificates are asked for and checked against the CA; a
    // connection without one can only enroll (every other call needs one).
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(tls_m.chain_pem, tls_m.key_pem))
        .client_ca_root(Certificate::from_pem(tls_m.client_ca_pem))
        .client_auth_optional(true)
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tick_tx, stop_tick_rx) = tokio::sync::watch::channel(false);
    let router = Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE_INTERVAL))
        .tls_config(tls)
        .map_err(|e| StartError::Tls(e.to_string()))?
        .add_service(health)
        .add_service(reflection)
        .add_service(ingest);
    let grpc_task = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
            let _ = stop_http_tx.send(());
            let _ = stop_tick_tx.send(true);
        };
        if let Err(e) = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), stop)
            .await
        {
            tracing::error!(error = %e, "gRPC server stopped");
        }
    });
    let settings = crate::api::Settings {
        joining: crate::api::Joining {
            pin_sha256: enrollment.as_ref().map(|e| e.signer.pin_sha256.clone()),
            token_ttl_ms: cfg.token_ttl_ms(),
        },
        sessions: cfg.sessions(),
        mail: crate::api::Mail {
            on: cfg.mail().is_some(),
            public_url: cfg.email.public_url.clone(),
            invitation_ttl_ms: cfg.email.link_ttls_ms().0,
            confirmation_ttl_ms: cfg.email.link_ttls_ms().1,
        },
        knowledge: crate::api::Knowledge {
            download_url: cfg.download_url()?,
        },
    };
    let app = crate::api::router(store.clone(), metrics.clone(), settings)
        .into_make_service_with_connect_info::<SocketAddr>();
    let http_task = tokio::spawn(async move {
        let r = axum::serve(http, app)
            .with_graceful_shutdown(async {
                let _ = stop_http_rx.await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    let mut tasks = vec![
        tokio::spawn(tick_loop(
            store.clone(),
            metrics.clone(),
            cfg.tick(),
            listening_since,
            stop_tick_rx.clone(),
        )),
        tokio::spawn(crate::ingest::enroll::watch_credentials(
            store.clone(),
            credentials_tx,
            stop_tick_rx.clone(),
        )),
    ];
    if let Some(mail) = cfg.mail() {
        tasks.push(tokio::spawn(crate::mailer::run(
            store.clone(),
            mail,
            stop_tick_rx.clone(),
        )));
    }
    if let Some(outbox) = outbox {
        tracing::info!("service-request changes go to the external portal (outbox)");
        tasks.push(tokio::spawn(crate::portal::run_outbox(
            store.clone(),
            outbox,
            stop_tick_rx,
        )));
    }
    tracing::info!(%grpc_addr, %http_addr, store = store.backend(), "collector listening");
    Ok(Running {
        grpc_addr,
        http_addr,
        store,
        client_ca: ca,
        shutdown: Some(stop_tx),
        tasks: [grpc_task, http_task].into_iter().chain(tasks).collect(),
    })
}

/// The file the first operator's token is written to on first start.
pub const OPERATOR_TOKEN_FILE: &str = "operator-token";

/// On the first start (no operator in the store), creates the operator
/// `admin` and writes an API token for it to data_dir/operator-token,
/// readable by the collector's user only. The token is never logged.
async fn first_operator(store: &Store, data_dir: &std::path::Path) -> Result<(), StartError> {
    use crate::model::{Role, User};
    let users = store.users(None, &Default::default()).await?;
    if users.iter().any(|u| u.role == Role::Operator) {
        return Ok(());
    }
    let admin = User::new("admin", "Administrator", Role::Operator, None);
    if !store.add_user_if_absent(&admin).await? {
        // Another replica made it first, or "admin" is a customer user.
        if !store
            .users(None, &Default::default())
            .await?
            .iter()
            .any(|u| u.role == Role::Operator)
        {
            tracing::warn!(
                "no operator in the store and the user \"admin\" is not one: \
                 create one with `meterlink-collector user add ID --role operator`"
            );
        }
        return Ok(());
    }
    let t = store
        .issue_token(&admin.id, "first start", None, crate::store::now_ms())
        .await?;
    let file = data_dir.join(OPERATOR_TOKEN_FILE);
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    crate::pki::write_secret(&file, &format!("{}\n", t.token))?;
    tracing::warn!(
        file = %file.display(),
        "first start: created the operator \"admin\"; its API token is in the file \
         (give it as Authorization: Bearer ...); `meterlink-collector user` manages users"
    );
    Ok(())
}

/// Runs the clock's request rules every `every` until stopped; the first
/// run is `start`'s own, before it serves.
async fn tick_loop(
    store: Arc<Store>,
    metrics: Arc<crate::metrics::Metrics>,
    every: std::time::Duration,
    listening_since: i64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        clock_tick(&store, &metrics, listening_since).await;
    }
}

/// One run of the clock's request rules (device silent, meter due, ...).
async fn clock_tick(store: &Store, metrics: &crate::metrics::Metrics, listening_since: i64) {
    match store.tick(crate::store::now_ms(), listening_since).await {
        Ok(t) if t.total() == 0 => {}
        Ok(t) => {
            metrics.record_requests(t.iter());
            metrics.request_changes.inc_by(t.total());
            tracing::info!(changes = t.total(), "service requests changed by the clock");
        }
        Err(e) => {
            tracing::error!(error = %e, "clock rules failed; trying again at the next tick")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_near_its_end_is_made_anew() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::parse(
            "collector.toml",
            &format!("data_dir = \"{}\"\n", dir.path().display()),
        )
        .unwrap();
        let pki_dir = dir.path().join("pki");
        let pki = Pki::ensure(&pki_dir, "test CA").unwrap();
        let soon = crate::pki::Validity::days_from_now(10);
        pki.issue("localhost", true, &pki_dir, "collector", Some(soon))
            .unwrap();
        let end = |p: &std::path::Path| {
            crate::pki::expires_at_ms(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let cert = tls_files(&cfg).unwrap().cert;
        let year = 300 * 86_400_000;
        assert!(end(&cert) > crate::store::now_ms() + year, "renewed");
        // A certificate with a long way to go is kept as it is.
        let before = std::fs::read_to_string(&cert).unwrap();
        tls_files(&cfg).unwrap();
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), before);
        // A name agents use that it lacks: made anew with it.
        let named = Config::parse(
            "collector.toml",
            &format!(
                "data_dir = \"{}\"\n[grpc]\nlisten = \"0.0.0.0:50051\"\nserver_names = [\"collector.example.com\", \"192.0.2.7\"]\n",
                dir.path().display()
            ),
        )
        .unwrap();
        tls_files(&named).unwrap();
        let sans = crate::pki::san_names(&std::fs::read_to_string(&cert).unwrap());
        for n in [
            "localhost",
            "127.0.0.1",
            "collector.example.com",
            "192.0.2.7",
        ] {
            assert!(sans.iter().any(|s| s == n), "{n} not in {sans:?}");
        }
    }
}
