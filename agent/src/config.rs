//! agent.toml: parsed and validated before anything starts; errors name the
//! key and the line.

use crate::schedule::Schedule;
use crate::snmp::engine::{Credential, CredentialSet, Secret};
use crate::snmp::usm::{AuthProtocol, PrivProtocol, UsmUser};
use crate::snmp::Version;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Must equal the common name of the agent's certificate. Default: the
    /// id it enrolled as, else the host name.
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub collector: CollectorConfig,
    #[serde(default)]
    pub buffer: BufferConfig,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub discovery: DiscoverySection,
    #[serde(default)]
    pub admin: AdminSection,
    pub credentials: Vec<CredentialConfig>,
    pub targets: Vec<TargetConfig>,
    pub schedule: ScheduleConfig,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/agent")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// https://HOST:PORT of the collector's gRPC listener.
    pub url: String,
    /// Name in the collector's certificate (default: the URL's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// CA that signed the collector's certificate, and the agent's own
    /// certificate and key: all three, or none to use what enrollment keeps
    /// in data_dir/identity.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A join token (`meterlink-collector token create`): `run` enrolls with
    /// it when the agent has no certificate yet. Used once.
    #[serde(default)]
    pub token: Option<JoinToken>,
    /// A file holding the join token (a secret mounted by a container
    /// runtime or systemd credentials), read when `run` enrolls.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// HTTP proxy to reach the collector through (CONNECT),
    /// `http://[USER:PASSWORD@]HOST:PORT` (Basic authentication; percent-encode
    /// special characters in the user and password).
    #[serde(default)]
    pub proxy: Option<String>,
    #[serde(default = "default_batch")]
    pub batch_max_count: usize,
    #[serde(default = "default_window")]
    pub window: usize,
}

fn default_batch() -> usize {
    500
}
fn default_window() -> usize {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    512 << 20
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: default_max_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Packets per second over all devices (polls and scans); none: no limit.
    #[serde(default)]
    pub max_pps: Option<u32>,
}

/// The admin port: `/metrics` and `/healthz` on a loopback address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// 127.0.0.1:9464 for instance; none: no admin port.
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
}

/// How scheduled discovery keeps the devices it found.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySection {
    /// Scans in a row a known printer may miss (off, unplugged) and still be
    /// polled; one more and it is dropped, with a log line.
    #[serde(default = "default_max_missed")]
    pub max_missed: u32,
}

fn default_max_missed() -> u32 {
    3
}

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            max_missed: default_max_missed(),
        }
    }
}

fn default_timeout() -> f64 {
    1.5
}
fn default_retries() -> u32 {
    2
}
fn default_concurrency() -> usize {
    128
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            timeout: default_timeout(),
            retries: default_retries(),
            concurrency: default_concurrency(),
            max_pps: None,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub name: String,
    /// "1", "2c" or "3".
    pub version: String,
    #[serde(default)]
    pub community: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub auth_protocol: Option<String>,
    #[serde(default)]
    pub auth_passphrase: Option<String>,
    #[serde(default)]
    pub privacy_protocol: Option<String>,
    #[serde(default)]
    pub privacy_passphrase: Option<String>,
    #[serde(default)]
    pub context: String,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The group's name in metrics; default `targets[N]` (N from 1).
    #[serde(default)]
    pub name: Option<String>,
    /// Addresses, CIDR blocks or ranges, as for `discover`.
    pub addresses: Vec<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Credential set names, tried in this order.
    pub credentials: Vec<String>,
}

fn default_port() -> u16 {
    161
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Meter reads (counters, status, supplies).
    pub meter: String,
    /// Status polls (status and supplies).
    #[serde(default)]
    pub status: Option<String>,
    /// Discovery of the target ranges.
    #[serde(default)]
    pub discovery: Option<String>,
}

fn default_tz() -> String {
    "UTC".into()
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {what}")]
pub struct ConfigError {
    pub file: String,
    pub what: String,
}

/// A validated configuration, ready to run.
#[derive(Debug)]
pub struct Validated {
    pub cfg: AgentConfig,
    pub credentials: Vec<CredentialSet>,
    /// Per target group: the credential sets in order.
    pub target_creds: Vec<Vec<CredentialSet>>,
    pub meter: Schedule,
    pub status: Option<Schedule>,
    pub discovery: Option<Schedule>,
}

impl CollectorConfig {
    /// The join token: `token`, or the contents of `token_file`.
    pub fn join_token(&self) -> Result<Option<JoinToken>, ConfigError> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            what: format!("collector.token_file: cannot read the join token: {e}"),
        })?;
        Ok(Some(JoinToken(text.trim().to_string())))
    }
}

/// A join token; never in Debug output (invariant 8).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct JoinToken(pub String);

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinToken(***)")
    }
}

/// Targets and schedules pushed by the collector (`AgentConfig.settings_toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pushed {
    #[serde(default)]
    pub schedule: Option<ScheduleConfig>,
    #[serde(default)]
    pub targets: Option<Vec<TargetConfig>>,
}

impl Validated {
    /// This configuration with the collector's pushed targets and schedules
    /// in place of the file's; validated like the file (credential names
    /// must exist here). Errors point into the pushed text.
    pub fn with_pushed(
        &self,
        version: &str,
        settings_toml: &str,
    ) -> Result<Validated, ConfigError> {
        let file = format!("configuration {version:?} pushed by the collector");
        let pushed: Pushed = toml::from_str(settings_toml).map_err(|e| ConfigError {
            file: file.clone(),
            what: e.to_string(),
        })?;
        let mut cfg = self.cfg.clone();
        if let Some(s) = pushed.schedule {
            cfg.schedule = s;
        }
        if let Some(t) = pushed.targets {
            cfg.targets = t;
        }
        AgentConfig::validate(&file, settings_toml, cfg)
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<Validated, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            what: format!("cannot read: {e}"),
        })?;
        let mut v = Self::parse(&file, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut v.cfg.data_dir);
        let c = &mut v.cfg.collector;
        for p in [&mut c.ca, &mut c.cert, &mut c.key, &mut c.token_file]
            .into_iter()
            .flatten()
        {
            fix(p);
        }
        Ok(v)
    }

    /// Parses and validates. `file` names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<Validated, ConfigError> {
        let err = |what: String| ConfigError {
            file: file.to_string(),
            what,
        };
        let cfg: AgentConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        Self::validate(file, text, cfg)
    }

    /// Validates `cfg`; `text` is where line numbers in errors point.
    fn validate(file: &str, text: &str, cfg: AgentConfig) -> Result<Validated, ConfigError> {
        let err = |what: String| ConfigError {
            file: file.to_string(),
            what,
        };
        let at = |key: &str, needle: &str| match line_of(text, needle) {
            Some(l) => format!("{key} (line {l})"),
            None => key.to_string(),
        };
        let mut credentials = Vec::new();
        for (i, c) in cfg.credentials.iter().enumerate() {
            let key = format!("credentials[{i}] ({:?})", c.name);
            let here = at(&key, &format!("\"{}\"", c.name));
            let set = match c.version.as_str() {
                "1" | "2c" => CredentialSet {
                    name: c.name.clone(),
                    credential: Credential::Community {
                        version: if c.version == "1" {
                            Version::V1
                        } else {
                            Version::V2c
                        },
                        community: Secret(c.community.clone().ok_or_else(|| {
                            err(format!(
                                "{here}: community is required for version {}",
                                c.version
                            ))
                        })?),
                    },
                },
                "3" => {
                    let user = c
                        .user
                        .clone()
                        .ok_or_else(|| err(format!("{here}: user is required for version 3")))?;
                    let auth = match (&c.auth_protocol, &c.auth_passphrase) {
                        (Some(p), Some(a)) => Some((
                            p.parse::<AuthProtocol>()
                                .map_err(|e| err(format!("{here}: auth_protocol: {e}")))?,
                            a.as_str(),
                        )),
                        (None, None) => None,
                        _ => {
                            return Err(err(format!(
                                "{here}: give auth_protocol and auth_passphrase together"
                            )))
                        }
                    };
                    let privacy = match (&c.privacy_protocol, &c.privacy_passphrase) {
                        (Some(p), Some(a)) => Some((
                            p.parse::<PrivProtocol>()
                                .map_err(|e| err(format!("{here}: privacy_protocol: {e}")))?,
                            a.as_str(),
                        )),
                        (None, None) => None,
                        _ => {
                            return Err(err(format!(
                                "{here}: give privacy_protocol and privacy_passphrase together"
                            )))
                        }
                    };
                    let u = UsmUser::new(&user, auth, privacy)
                        .map_err(|e| err(format!("{here}: {e}")))?;
                    CredentialSet {
                        name: c.name.clone(),
                        credential: Credential::V3 {
                            user: Arc::new(u),
                            context: c.context.clone(),
                        },
                    }
                }
                other => {
                    return Err(err(format!(
                        "{here}: version {other:?}; expected \"1\", \"2c\" or \"3\""
                    )))
                }
            };
            if credentials.iter().any(|x: &CredentialSet| x.name == c.name) {
                return Err(err(format!(
                    "{here}: a credential set with this name already exists"
                )));
            }
            credentials.push(set);
        }
        let mut target_creds = Vec::new();
        // Every target's addresses count toward one bound, checked without
        // making the addresses: the daemon makes them all.
        let mut addresses = crate::range::AddressSet::default();
        for (i, t) in cfg.targets.iter().enumerate() {
            let max = crate::range::MAX_TARGET_ADDRESSES;
            addresses
                .add_ranges(&t.addresses, t.port, max)
                .map_err(|e| {
                    let hint = if e.too_many {
                        "; all the targets together name at most that many: narrow the ranges"
                    } else {
                        ""
                    };
                    let here = at(
                        &format!("targets[{i}].addresses"),
                        &format!("\"{}\"", e.input),
                    );
                    err(format!("{here}: {e}{hint}"))
                })?;
            if t.credentials.is_empty() {
                return Err(err(format!(
                    "targets[{i}].credentials: name at least one credential set"
                )));
            }
            let mut sets = Vec::new();
            for n in &t.credentials {
                let s = credentials.iter().find(|c| &c.name == n).ok_or_else(|| {
                    err(format!(
                        "{}: no credential set named {n:?}",
                        at(&format!("targets[{i}].credentials"), &format!("\"{n}\""))
                    ))
                })?;
                sets.push(s.clone());
            }
            target_creds.push(sets);
        }
        let timeout = cfg.engine.timeout;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 60.0) {
            return Err(err(format!(
                "{}: {timeout} is not a number of seconds from above 0 to 60",
                at("engine.timeout", "timeout")
            )));
        }
        let sched = |key: &str, expr: &str| {
            Schedule::parse(expr, &cfg.schedule.timezone)
                .map_err(|e| err(format!("{}: {e}", at(&format!("schedule.{key}"), key))))
        };
        let meter = sched("meter", &cfg.schedule.meter)?;
        let status = cfg
            .schedule
            .status
            .as_deref()
            .map(|e| sched("status", e))
            .transpose()?;
        let discovery = cfg
            .schedule
            .discovery
            .as_deref()
            .map(|e| sched("discovery", e))
            .transpose()?;
        if let Some(p) = &cfg.collector.proxy {
            let rest = p.strip_prefix("http://").unwrap_or("");
            if rest.is_empty() || !rest.trim_end_matches('/').contains(':') {
                return Err(err(format!(
                    "{}: expected http://HOST:PORT or http://USER:PASSWORD@HOST:PORT",
                    at("collector.proxy", "proxy")
                )));
            }
        }
        let c = &cfg.collector;
        let given = [c.ca.is_some(), c.cert.is_some(), c.key.is_some()];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            return Err(err(format!(
                "{}: give ca, cert and key together, or none of them to use the certificate enrollment keeps in data_dir/identity",
                at("collector", "[collector]")
            )));
        }
        if let Some(a) = cfg.admin.listen {
            if !a.ip().is_loopback() {
                return Err(err(format!(
                    "{}: {a} is not a loopback address: the admin port serves metrics to this host only (127.0.0.1:PORT or [::1]:PORT)",
                    at("admin.listen", "listen")
                )));
            }
        }
        if let Some(id) = &cfg.agent_id {
            let ok = (1..=64).contains(&id.len())
                && !id.starts_with('.')
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(err(format!(
                    "{}: {id:?}: use 1 to 64 of A-Z a-z 0-9 - _ . (not starting with a dot)",
                    at("agent_id", "agent_id")
                )));
            }
        }
        if !cfg.collector.url.starts_with("https://") {
            return Err(err(format!(
                "{}: the collector is reached over TLS: use https://HOST:PORT",
                at("collector.url", "url")
            )));
        }
        Ok(Validated {
            cfg,
            credentials,
            target_creds,
            meter,
            status,
            discovery,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
agent_id = "agent-1"
[collector]
url = "https://127.0.0.1:50051"
ca = "ca.pem"
cert = "agent.pem"
key = "agent-key.pem"

[[credentials]]
name = "office"
version = "2c"
community = "public"

[[credentials]]
name = "secure"
version = "3"
user = "meter"
auth_protocol = "SHA-256"
auth_passphrase = "authpass1"
privacy_protocol = "AES"
privacy_passphrase = "privpass1"

[[targets]]
addresses = ["192.0.2.0/28", "198.51.100.7:1161"]
credentials = ["secure", "office"]

[schedule]
timezone = "Europe/Rome"
meter = "0 */15 * * * *"
status = "*/5 * * * *"
"#;

    #[test]
    fn good_config() {
        let v = AgentConfig::parse("agent.toml", GOOD).unwrap();
        assert_eq!(v.credentials.len(), 2);
        assert_eq!(v.target_creds[0][0].name, "secure");
        assert!(v.status.is_some());
        assert!(format!("{:?}", v.cfg).contains("office"));
        assert!(
            !format!("{:?}", v.cfg).contains("authpass1"),
            "secrets in Debug output"
        );
    }

    #[test]
    fn the_admin_port_is_loopback_only_and_certificates_come_together() {
        let open = format!("{GOOD}\n[admin]\nlisten = \"0.0.0.0:9464\"\n");
        let e = AgentConfig::parse("agent.toml", &open)
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin.listen") && e.contains("loopback"), "{e}");
        let local = format!("{GOOD}\n[admin]\nlisten = \"127.0.0.1:9464\"\n");
        assert!(AgentConfig::parse("agent.toml", &local).is_ok());
        let half = GOOD.replace("key = \"agent-key.pem\"\n", "");
        let e = AgentConfig::parse("agent.toml", &half)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca, cert and key together"), "{e}");
        let none = GOOD
            .replace("ca = \"ca.pem\"\n", "")
            .replace("cert = \"agent.pem\"\n", "")
            .replace("key = \"agent-key.pem\"\n", "");
        let v = AgentConfig::parse("agent.toml", &none).unwrap();
        assert!(v.cfg.collector.cert.is_none());
        let bad_id = GOOD.replace("agent_id = \"agent-1\"", "agent_id = \"../x\"");
        assert!(AgentConfig::parse("agent.toml", &bad_id).is_err());
    }

    #[test]
    fn the_engine_timeout_is_a_number_of_seconds() {
        // TOML has nan and inf: the daemon would have failed to start on them.
        for bad in ["nan", "inf", "-1.0", "0.0", "61"] {
            let text = format!("{GOOD}\n[engine]\ntimeout = {bad}\n");
            let e = AgentConfig::parse("agent.toml", &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("engine.timeout (line "), "{bad}: {e}");
        }
        let fine = format!("{GOOD}\n[engine]\ntimeout = 2.5\n");
        assert!(AgentConfig::parse("agent.toml", &fine).is_ok());
    }

    /// All targets together name at most 2^20 addresses, counted without
    /// making them (a pushed configuration of sixteen /12 targets made
    /// sixteen million addresses to check them one target at a time).
    #[test]
    fn the_targets_name_at_most_a_million_addresses_in_all() {
        let one = "[[targets]]\naddresses = [\"10.0.0.0/13\"]\ncredentials = [\"office\"]\n";
        // The same block twice counts once.
        let fits = format!("{GOOD}\n{one}\n{one}");
        assert!(AgentConfig::parse("agent.toml", &fits).is_ok());
        let two = format!("{fits}\n{}", one.replace("10.0.0.0/13", "10.16.0.0/12"));
        let e = AgentConfig::parse("agent.toml", &two)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("targets[3].addresses (line 41)")
                && e.contains("\"10.16.0.0/12\"")
                && e.contains("more than 1048576 addresses in all")
                && e.contains("all the targets together"),
            "{e}"
        );
    }

    #[test]
    fn errors_point_at_key_and_line() {
        let bad = GOOD.replace(
            "credentials = [\"secure\", \"office\"]",
            "credentials = [\"secure\", \"ofice\"]",
        );
        let e = AgentConfig::parse("agent.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("targets[0].credentials")
                && e.contains("line 25")
                && e.contains("\"ofice\""),
            "{e}"
        );
        let bad = GOOD.replace("*/5 * * * *", "*/5 * * *");
        let e = AgentConfig::parse("agent.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("schedule.status") && e.contains("line 30"),
            "{e}"
        );
        let bad = GOOD.replace("privpass1", "short");
        let e = AgentConfig::parse("agent.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("credentials[1]") && e.contains("at least 8"),
            "{e}"
        );
        assert!(!e.contains("short\""), "{e}");
        let bad = GOOD.replace("agent_id", "agent_name");
        let e = AgentConfig::parse("agent.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent_name") && e.contains("line 2"), "{e}");
    }
}
