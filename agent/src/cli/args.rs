//! The command line's argument structs and what they turn into.

use super::Failure;
use crate::profile::ProfileSet;
use crate::snmp::engine::{Credential, CredentialSet, EngineConfig, Secret};
use crate::snmp::usm::{AuthProtocol, PrivProtocol, UsmUser};
use crate::snmp::Version;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct CredentialArgs {
    /// SNMP v1/v2c community.
    #[arg(long, short = 'c', env = "METERLINK_COMMUNITY", hide_env_values = true)]
    pub community: Option<String>,
    /// SNMP version for --community: 1 or 2c.
    #[arg(long, default_value = "2c", value_parser = ["1", "2c"])]
    pub snmp_version: String,
    /// SNMPv3 user name.
    #[arg(long)]
    pub v3_user: Option<String>,
    /// SNMPv3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512.
    #[arg(long)]
    pub auth_proto: Option<AuthProtocol>,
    /// SNMPv3 authentication passphrase.
    #[arg(long, env = "METERLINK_AUTH_PASS", hide_env_values = true)]
    pub auth_pass: Option<String>,
    /// SNMPv3 privacy protocol: DES, AES, AES192, AES256, AES192C, AES256C.
    #[arg(long)]
    pub priv_proto: Option<PrivProtocol>,
    /// SNMPv3 privacy passphrase.
    #[arg(long, env = "METERLINK_PRIV_PASS", hide_env_values = true)]
    pub priv_pass: Option<String>,
    /// SNMPv3 context name.
    #[arg(long, default_value = "")]
    pub context: String,
}

#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Seconds to wait for the first answer to a request.
    #[arg(long, default_value_t = 1.5)]
    pub timeout: f64,
    /// Retransmissions after the first attempt.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Directory of extra device profiles (*.toml); same-named ones replace the built-in.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Device address: HOST or HOST:PORT (default port 161).
    pub target: String,
    #[command(flatten)]
    pub creds: CredentialArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// What to scan: CIDR (192.0.2.0/24), ranges (192.0.2.10-192.0.2.40 or
    /// 192.0.2.10-40), hosts, HOST:PORT.
    #[arg(required = true)]
    pub ranges: Vec<String>,
    #[command(flatten)]
    pub creds: CredentialArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Devices probed at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Packets per second, all devices together (0: no limit).
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Refuse to scan more addresses than this.
    #[arg(long, default_value_t = 65536)]
    pub max_hosts: usize,
    /// Port for entries that name none.
    #[arg(long, default_value_t = 161)]
    pub port: u16,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List silent addresses too.
    #[arg(long)]
    pub all: bool,
}

impl CredentialArgs {
    /// The credential set the flags describe. Named after its kind and user,
    /// never after a secret.
    pub fn credential_set(&self) -> Result<CredentialSet, Failure> {
        if let Some(user) = &self.v3_user {
            if self.community.is_some() {
                return Err(Failure::usage(
                    "give either --community or --v3-user, not both",
                ));
            }
            let auth = match (&self.auth_proto, &self.auth_pass) {
                (Some(p), Some(a)) => Some((*p, a.as_str())),
                (None, None) => None,
                (Some(_), None) => return Err(Failure::usage("--auth-proto needs --auth-pass")),
                (None, Some(_)) => return Err(Failure::usage("--auth-pass needs --auth-proto")),
            };
            let privacy = match (&self.priv_proto, &self.priv_pass) {
                (Some(p), Some(a)) => Some((*p, a.as_str())),
                (None, None) => None,
                (Some(_), None) => return Err(Failure::usage("--priv-proto needs --priv-pass")),
                (None, Some(_)) => return Err(Failure::usage("--priv-pass needs --priv-proto")),
            };
            let u = UsmUser::new(user, auth, privacy)
                .map_err(|e| Failure::usage(format!("SNMPv3 user {user:?}: {e}")))?;
            let level = match (auth, privacy) {
                (Some((a, _)), Some((p, _))) => format!("authPriv {}/{}", a.name(), p.name()),
                (Some((a, _)), None) => format!("authNoPriv {}", a.name()),
                _ => "noAuthNoPriv".into(),
            };
            return Ok(CredentialSet {
                name: format!("v3 user {user} ({level})"),
                credential: Credential::V3 {
                    user: Arc::new(u),
                    context: self.context.clone(),
                },
            });
        }
        let version = if self.snmp_version == "1" {
            Version::V1
        } else {
            Version::V2c
        };
        let community = self.community.clone().unwrap_or_else(|| "public".into());
        Ok(CredentialSet {
            name: format!(
                "{} community{}",
                version.name(),
                if self.community.is_none() {
                    " (default)"
                } else {
                    ""
                }
            ),
            credential: Credential::Community {
                version,
                community: Secret(community),
            },
        })
    }
}

impl EngineArgs {
    pub fn engine_config(&self) -> Result<EngineConfig, Failure> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 60.0) {
            return Err(Failure::usage("--timeout must be between 0 and 60 seconds"));
        }
        Ok(EngineConfig {
            timeout: Duration::from_secs_f64(self.timeout),
            retries: self.retries.min(10),
            ..EngineConfig::default()
        })
    }

    pub fn profile_set(&self) -> Result<ProfileSet, Failure> {
        let Some(dir) = &self.profiles else {
            return Ok(ProfileSet::embedded());
        };
        let mut files = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| {
            Failure::usage(format!(
                "cannot read profile directory {}: {e}",
                dir.display()
            ))
        })?;
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Failure::usage(format!("cannot read profile {}: {e}", path.display()))
                })?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        ProfileSet::with_overrides(files).map_err(|e| Failure::usage(e.to_string()))
    }
}
