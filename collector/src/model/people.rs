//! How people join: invitations, registrations; and the audit log of what
//! they (and programs and agents) changed.

use serde::{Deserialize, Serialize};

use super::{Role, User};

/// An account manager's invitation of a colleague.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `account_manager` or `product_administrator`.
    pub role: Role,
    /// Their company; default: the inviter's.
    #[serde(default)]
    pub account: Option<String>,
    /// The companies of the organisation they see; default: all.
    #[serde(default)]
    pub companies: Option<Vec<String>>,
    /// Products they administer (product administrators).
    #[serde(default)]
    pub products: Vec<String>,
    /// Groups whose products they administer (product administrators).
    #[serde(default)]
    pub groups: Vec<i64>,
    /// `en` or `it`; default: the inviter's.
    #[serde(default)]
    pub language: Option<String>,
}

/// The links an e-mail carries (built from the public URL) and how long
/// they last.
#[derive(Debug, Clone)]
pub struct LinkMail {
    /// The link's token as the URL carries it (only its hash is stored).
    pub token: String,
    pub sha256: String,
    pub base_url: String,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// A person registering: the first of an organisation becomes its
/// account manager.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewRegistration {
    pub company_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    /// Serial numbers of products under contract (at least one).
    pub serials: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationState {
    /// The e-mailed link was not followed yet.
    Unconfirmed,
    /// Confirmed, waiting for an operator (no serial matched a company, or
    /// the organisation has an account manager already).
    Queued,
    Approved,
    Rejected,
}

impl RegistrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Unconfirmed => "unconfirmed",
            RegistrationState::Queued => "queued",
            RegistrationState::Approved => "approved",
            RegistrationState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<RegistrationState> {
        [
            RegistrationState::Unconfirmed,
            RegistrationState::Queued,
            RegistrationState::Approved,
            RegistrationState::Rejected,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Registration {
    pub id: String,
    pub company_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub serials: Vec<String>,
    pub language: String,
    pub state: RegistrationState,
    /// The company its serial numbers matched, if any.
    pub account: Option<String>,
    pub created_at_ms: i64,
    pub confirmed_at_ms: Option<i64>,
    pub decided_at_ms: Option<i64>,
    pub decided_by: Option<String>,
    /// The user it made, once approved.
    pub user: Option<String>,
}

/// What confirming a registration did.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmed {
    pub registration: Registration,
    /// The account manager it made (None: it waits for an operator).
    pub user: Option<User>,
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// `person` (a session), `program` (an API token or the command
    /// line), `agent` (enrollment), `anonymous` (registering, following
    /// an e-mailed link).
    pub kind: String,
    pub id: String,
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub actor: Actor,
    /// The company the object belongs to (its organisation is recorded).
    pub account: Option<String>,
    /// Set when the object is an organisation (or has no company).
    pub organisation: Option<String>,
    pub object_kind: String,
    pub object_id: String,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl NewAudit {
    /// A change made with `meterlink-collector` on the collector's host.
    pub fn command_line(
        object_kind: &str,
        object_id: &str,
        action: &str,
        account: Option<&str>,
        after: Option<serde_json::Value>,
    ) -> NewAudit {
        NewAudit {
            actor: Actor {
                kind: "program".into(),
                id: "meterlink-collector (command line)".into(),
            },
            account: account.map(str::to_string),
            organisation: None,
            object_kind: object_kind.into(),
            object_id: object_id.into(),
            action: action.into(),
            before: None,
            after,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: Actor,
    pub organisation: Option<String>,
    pub object_kind: String,
    pub object_id: String,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The actor's id (a user id, an agent id).
    pub actor: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    /// Entries older than this id (the previous page's `next`).
    pub before: Option<i64>,
    pub limit: Option<u32>,
    /// Set by the API for account managers: their organisation's only.
    #[serde(skip)]
    pub organisation: Option<String>,
}
