//! Agent enrollment: join tokens and the certificate state of each agent.

use serde::Serialize;

/// A join token as the store keeps it (the secret only as a hash).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JoinToken {
    pub id: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub account: String,
    /// The agent id the token enrolls; None: the agent names itself.
    pub agent: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
    pub used_by_agent: Option<String>,
}

/// What to make a join token for.
#[derive(Debug, Clone)]
pub struct NewJoinToken {
    pub account: String,
    pub agent: Option<String>,
    pub created_by: String,
    pub expires_at_ms: i64,
}

/// A join token just made: its text (given once) and what the store keeps.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedJoinToken {
    /// The whole token, with the collector CA's fingerprint.
    pub token: String,
    pub id: String,
    pub account: String,
    pub agent: Option<String>,
    pub expires_at_ms: i64,
}

/// Whether an agent may connect, and with which certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentCredential {
    pub disabled: bool,
    /// Serial (hex) of the certificate issued last by enrollment or renewal;
    /// None for an agent that never enrolled (certificates made by `ca issue`).
    pub serial: Option<String>,
    /// The serial before the last renewal: still good until the agent
    /// renews with the new one, in case the renewal's answer was lost.
    pub previous_serial: Option<String>,
}

impl AgentCredential {
    /// May a certificate with `serial` (hex) act as this agent?
    pub fn accepts(&self, serial: &str) -> bool {
        if self.disabled {
            return false;
        }
        match &self.serial {
            None => true,
            Some(s) => s == serial || self.previous_serial.as_deref() == Some(serial),
        }
    }
}

/// An agent id is a certificate's common name and names a file of pushed
/// configuration: 1 to 64 of `A-Z a-z 0-9 - _ .`, not starting with a dot.
pub fn valid_agent_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// An issued certificate to record for an agent.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub agent: String,
    pub serial: String,
    pub expires_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_safe_names() {
        for ok in ["agent-1", "lan_host.example", "A"] {
            assert!(valid_agent_id(ok), "{ok}");
        }
        for bad in ["", ".hidden", "../etc", "a b", "a/b", &"x".repeat(65)] {
            assert!(!valid_agent_id(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_accept_the_current_and_previous_serial_only() {
        let never = AgentCredential::default();
        assert!(never.accepts("anything"), "an agent that never enrolled");
        let c = AgentCredential {
            disabled: false,
            serial: Some("02".into()),
            previous_serial: Some("01".into()),
        };
        assert!(c.accepts("02") && c.accepts("01") && !c.accepts("00"));
        let off = AgentCredential {
            disabled: true,
            ..c
        };
        assert!(!off.accepts("02"));
        assert!(!AgentCredential {
            disabled: true,
            ..never
        }
        .accepts("x"));
    }
}
