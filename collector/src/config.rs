//! collector.toml: validated at start; errors name the key and the line.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store and the development PKI live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub grpc: Listen,
    #[serde(default = "default_http")]
    pub http: Listen,
    /// Certificates; without them a development CA in data_dir/pki is used.
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default)]
    pub store: Store,
    #[serde(default)]
    pub agents: Agents,
    /// Meter-reading filing rules.
    #[serde(default)]
    pub filing: crate::filing::FilingPolicy,
    #[serde(default)]
    pub requests: Requests,
    #[serde(default)]
    pub portal: Portal,
    #[serde(default)]
    pub enrollment: Enrollment,
    #[serde(default)]
    pub sessions: SessionsSection,
    #[serde(default)]
    pub email: EmailSection,
    #[serde(default)]
    pub knowledge: KnowledgeSection,
}

/// The knowledge centre.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSection {
    /// The vendor's download centre (software, drivers, manuals) for a
    /// model: an http(s) address where `{model}` stands for the model.
    #[serde(default)]
    pub download_url: Option<String>,
}

/// E-mail notifications over SMTP; off without `smtp_url`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS) or `smtps://host:port` (TLS); `user:password@` before the
    /// host to authenticate.
    #[serde(default)]
    pub smtp_url: Option<String>,
    /// The sender, as `Name <address>`.
    #[serde(default)]
    pub from: Option<String>,
    /// Where people reach the portal: links in the messages start with it.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Attempts before a message becomes a dead letter. Default 20.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First retry after this many ms, doubled per attempt. Default 1000.
    #[serde(default)]
    pub retry_base_ms: Option<u64>,
    /// Longest wait between two attempts, in ms. Default 300000.
    #[serde(default)]
    pub retry_max_ms: Option<u64>,
    /// A CA certificate (PEM) the SMTP server's certificate is checked
    /// against besides the public roots: a server with a private CA.
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// How long an invitation's link works, in seconds. Default 7 days.
    #[serde(default)]
    pub invitation_ttl_secs: Option<u64>,
    /// How long a registration's confirmation link works. Default 1 day.
    #[serde(default)]
    pub confirmation_ttl_secs: Option<u64>,
}

impl EmailSection {
    /// The invitation and confirmation link lifetimes in ms (at least a minute).
    pub fn link_ttls_ms(&self) -> (i64, i64) {
        let ms = |v: Option<u64>, default: u64| (v.unwrap_or(default).max(60) as i64) * 1000;
        (
            ms(self.invitation_ttl_secs, 7 * 86_400),
            ms(self.confirmation_ttl_secs, 86_400),
        )
    }
}

impl std::fmt::Debug for EmailSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSection")
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(crate::mailer::redact),
            )
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// People's login sessions (cookies) and the login throttle.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    /// A session ends after this many minutes without a request. Default 30.
    #[serde(default)]
    pub idle_minutes: Option<u64>,
    /// ... and this many hours after the login in any case. Default 12.
    #[serde(default)]
    pub absolute_hours: Option<u64>,
    /// Mark cookies Secure: the API is reached over TLS (a proxy in front).
    /// `X-Forwarded-Proto: https` from the proxy does the same per request.
    #[serde(default)]
    pub secure_cookies: bool,
    /// Failed logins allowed per e-mail address, and per client address, in
    /// 15 minutes. Default 5 and 20.
    #[serde(default)]
    pub max_failures_per_email: Option<usize>,
    #[serde(default)]
    pub max_failures_per_client: Option<usize>,
}

/// Agent enrollment with join tokens, and the certificates it issues.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// How long an agent certificate lasts, in seconds; agents renew it at
    /// about two thirds. Default 2592000 (30 days).
    #[serde(default)]
    pub cert_lifetime_secs: Option<u64>,
    /// How long a join token is good for when `token create` gives no
    /// --ttl, in seconds. Default 86400 (a day).
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
}

/// Service-request rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// A rules file replacing the embedded defaults (same format as
    /// collector/src/requests/default-rules.toml).
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// How often the clock's rules run (device silent, meter due,
    /// hold-down closes), in seconds. Default 60.
    #[serde(default)]
    pub tick_secs: Option<f64>,
}

/// An external portal that receives every service-request change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portal {
    /// POST endpoint; without it the collector is the portal backend itself.
    #[serde(default)]
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub token: Option<crate::portal::Token>,
    /// Attempts before a change becomes a dead letter. Default 20.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First retry after this many ms, doubled per attempt. Default 1000.
    #[serde(default)]
    pub retry_base_ms: Option<u64>,
    /// Longest wait between two attempts, in ms. Default 300000 (5 min).
    #[serde(default)]
    pub retry_max_ms: Option<u64>,
}

/// Configuration pushed to agents: `<dir>/<agent id>.toml`, else
/// `<dir>/default.toml`, holding a `[schedule]` table and/or `[[targets]]`
/// as in agent.toml. Sent when an agent connects and whenever the file
/// changes; the agent validates it against its own credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    /// Default data_dir/agents.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// How often a connected agent's file is looked at again, in seconds.
    #[serde(default)]
    pub recheck_secs: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub listen: SocketAddr,
    /// gRPC only, without [tls]: the names agents reach this collector by
    /// (host names or addresses), put in the certificate the development CA
    /// makes for it beside localhost and the loopback addresses.
    #[serde(default)]
    pub server_names: Vec<String>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            listen: "127.0.0.1:50051".parse().expect("addr"),
            server_names: Vec::new(),
        }
    }
}

fn default_http() -> Listen {
    Listen {
        listen: "127.0.0.1:8080".parse().expect("addr"),
        server_names: Vec::new(),
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/collector")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// CA that signs agent certificates.
    pub client_ca: PathBuf,
    /// The collector's certificate; followed in the file by its chain up to
    /// and including its CA, which enrolling agents pin.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Key of `client_ca`: with it the collector enrolls agents itself.
    #[serde(default)]
    pub client_ca_key: Option<PathBuf>,
    /// The CA the collector's certificate chains to, when it is not
    /// `client_ca`: the one join tokens name by fingerprint.
    #[serde(default)]
    pub server_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// SQLite file; default data_dir/meterlink.db.
    pub sqlite: Option<PathBuf>,
    /// PostgreSQL instead of SQLite (`postgres://user@host/db`): several
    /// collectors may share it.
    pub postgres: Option<DatabaseUrl>,
}

/// A database URL; Debug shows it without its password.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", crate::store::redact_url(&self.0))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct ConfigError {
    pub file: String,
    pub what: String,
}

impl Config {
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError {
            file: file.into(),
            what: e.to_string(),
        })?;
        // TOML has nan and inf; a period must be a number of seconds.
        for (key, secs) in [
            ("[requests] tick_secs", c.requests.tick_secs),
            ("[agents] recheck_secs", c.agents.recheck_secs),
        ] {
            if let Some(s) = secs.filter(|s| !s.is_finite() || *s <= 0.0) {
                return Err(ConfigError {
                    file: file.into(),
                    what: format!("{key}: {s} is not a number of seconds above 0"),
                });
            }
        }
        Ok(c)
    }

    /// Reads a config file; relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            what: format!("cannot read: {e}"),
        })?;
        let mut c = Self::parse(&file, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.data_dir);
        if let Some(t) = c.tls.as_mut() {
            fix(&mut t.client_ca);
            fix(&mut t.cert);
            fix(&mut t.key);
            t.client_ca_key.iter_mut().for_each(fix);
            t.server_ca.iter_mut().for_each(fix);
        }
        if let Some(s) = c.store.sqlite.as_mut() {
            fix(s);
        }
        if let Some(d) = c.agents.dir.as_mut() {
            fix(d);
        }
        if let Some(r) = c.requests.rules.as_mut() {
            fix(r);
        }
        Ok(c)
    }

    pub fn agents_dir(&self) -> PathBuf {
        self.agents
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("agents"))
    }

    pub fn agents_recheck(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            self.agents
                .recheck_secs
                .unwrap_or(30.0)
                .clamp(0.1, 86_400.0),
        )
    }

    /// What `store::Store::open` opens: the PostgreSQL URL or the SQLite path.
    pub fn store_url(&self) -> String {
        match &self.store.postgres {
            Some(u) => u.0.clone(),
            None => self.sqlite_path().display().to_string(),
        }
    }

    /// The request rules: the configured file, or the embedded defaults.
    pub fn rules(&self) -> Result<crate::requests::Rules, ConfigError> {
        match &self.requests.rules {
            None => Ok(crate::requests::Rules::defaults()),
            Some(p) => {
                let file = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    file: file.clone(),
                    what: format!("cannot read the request rules: {e}"),
                })?;
                crate::requests::Rules::parse(&file, &text).map_err(|e| ConfigError {
                    file: e.file,
                    what: e.what,
                })
            }
        }
    }

    /// The HTTP outbox's settings, when an external portal is configured.
    pub fn outbox(&self) -> Result<Option<crate::portal::OutboxConfig>, ConfigError> {
        let Some(url) = &self.portal.url else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError {
                file: "collector.toml".into(),
                what: "[portal] url: give an http:// or https:// URL".into(),
            });
        }
        let mut c = crate::portal::OutboxConfig::new(url);
        c.token = self.portal.token.clone();
        if let Some(n) = self.portal.max_attempts {
            c.max_attempts = n.max(1);
        }
        if let Some(ms) = self.portal.retry_base_ms {
            c.retry_base = std::time::Duration::from_millis(ms.max(1));
            c.idle = c.idle.min(c.retry_base);
        }
        if let Some(ms) = self.portal.retry_max_ms {
            c.retry_max = std::time::Duration::from_millis(ms.max(1));
        }
        Ok(Some(c))
    }

    /// The download centre's address template, when one is configured.
    pub fn download_url(&self) -> Result<Option<String>, ConfigError> {
        let Some(t) = &self.knowledge.download_url else {
            return Ok(None);
        };
        if !(t.starts_with("http://") || t.starts_with("https://")) || !t.contains("{model}") {
            return Err(ConfigError {
                file: "collector.toml".into(),
                what: "[knowledge] download_url: give an http:// or https:// address with \
                       {model} where the model's name goes"
                    .into(),
            });
        }
        Ok(Some(t.clone()))
    }

    pub fn tick(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            self.requests
                .tick_secs
                .unwrap_or(60.0)
                .clamp(0.05, 86_400.0),
        )
    }

    /// The mailer's settings, when `[email] smtp_url` is given.
    pub fn mail(&self) -> Option<crate::mailer::MailConfig> {
        let e = &self.email;
        let url = e.smtp_url.clone()?;
        Some(crate::mailer::MailConfig {
            smtp_url: url,
            from: e
                .from
                .clone()
                .unwrap_or_else(|| "meterlink <meterlink@localhost>".into()),
            max_attempts: e.max_attempts.unwrap_or(20).max(1),
            retry_base: std::time::Duration::from_millis(e.retry_base_ms.unwrap_or(1000).max(1)),
            retry_max: std::time::Duration::from_millis(e.retry_max_ms.unwrap_or(300_000).max(1)),
            idle: std::time::Duration::from_millis(e.retry_base_ms.unwrap_or(1000).clamp(50, 1000)),
            ca: e.ca.clone(),
        })
    }

    pub fn sessions(&self) -> crate::auth::password::Sessions {
        let d = crate::auth::password::Sessions::default();
        let s = &self.sessions;
        crate::auth::password::Sessions {
            idle_ms: s
                .idle_minutes
                .map(|m| m.clamp(1, 7 * 24 * 60) as i64 * 60_000)
                .unwrap_or(d.idle_ms),
            absolute_ms: s
                .absolute_hours
                .map(|h| h.clamp(1, 30 * 24) as i64 * 3_600_000)
                .unwrap_or(d.absolute_ms),
            secure: s.secure_cookies,
            throttle: crate::auth::password::Throttle {
                per_email: s
                    .max_failures_per_email
                    .unwrap_or(d.throttle.per_email)
                    .max(1),
                per_client: s
                    .max_failures_per_client
                    .unwrap_or(d.throttle.per_client)
                    .max(1),
                ..d.throttle
            },
        }
    }

    pub fn cert_lifetime_ms(&self) -> i64 {
        let s = self
            .enrollment
            .cert_lifetime_secs
            .unwrap_or(30 * 86_400)
            .clamp(10, 10 * 365 * 86_400);
        s as i64 * 1000
    }

    pub fn token_ttl_ms(&self) -> i64 {
        let s = self
            .enrollment
            .token_ttl_secs
            .unwrap_or(86_400)
            .clamp(1, 365 * 86_400);
        s as i64 * 1000
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.store
            .sqlite
            .clone()
            .unwrap_or_else(|| self.data_dir.join("meterlink.db"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_numbers_of_seconds() {
        // `serve` would have panicked making a Duration of nan.
        for bad in ["nan", "inf", "-inf", "0.0", "-5"] {
            for (table, key) in [("requests", "tick_secs"), ("agents", "recheck_secs")] {
                let text = format!("[{table}]\n{key} = {bad}\n");
                let e = Config::parse("c.toml", &text).unwrap_err();
                assert!(e.what.contains(&format!("[{table}] {key}")), "{text}: {e}");
            }
        }
        let c = Config::parse("c.toml", "[requests]\ntick_secs = 0.5\n").unwrap();
        assert_eq!(c.tick(), std::time::Duration::from_millis(500));
    }

    #[test]
    fn errors_name_key_and_line() {
        let e =
            Config::parse("c.toml", "data_dir = \"x\"\n[grpc]\nlisten = \"nope\"\n").unwrap_err();
        assert!(e.what.contains("line 3"), "{e}");
        let e = Config::parse("c.toml", "data_dir = \"x\"\nlisten_typo = 1\n").unwrap_err();
        assert!(e.what.contains("listen_typo"), "{e}");
        let c = Config::parse("c.toml", "").unwrap();
        assert_eq!(c.grpc.listen.port(), 50051);
        assert_eq!(
            c.sqlite_path(),
            PathBuf::from("data/collector/meterlink.db")
        );
        let c = Config::parse(
            "c.toml",
            "[portal]\nurl = \"https://p\"\ntoken = \"s3cret\"\n",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = Config::parse(
            "c.toml",
            "[store]\npostgres = \"postgres://u:pw0rd@h/db\"\n",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("pw0rd"), "{c:?}");
        assert_eq!(c.store_url(), "postgres://u:pw0rd@h/db");
        assert!(Config::parse("c.toml", "[portal]\nurl = \"ftp://p\"\n")
            .unwrap()
            .outbox()
            .is_err());
    }
}
