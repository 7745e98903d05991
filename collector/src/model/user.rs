//! Users, their roles and their API tokens as listed.

use serde::{Deserialize, Serialize};

/// A user's role. Operators are the service provider's staff; the two
/// customer roles belong to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every account, agents, unassigned devices, the knowledge base.
    Operator,
    /// Everything of their account.
    AccountManager,
    /// The products of their account whose administrator they are.
    ProductAdministrator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::AccountManager => "account_manager",
            Role::ProductAdministrator => "product_administrator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "account_manager" => Some(Role::AccountManager),
            "product_administrator" => Some(Role::ProductAdministrator),
            _ => None,
        }
    }
}

/// Whether a user may use the portal now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    #[default]
    Active,
    /// Invited, has not answered yet.
    Pending,
    /// No access for now: sessions and tokens are refused until reinstated.
    Suspended,
    /// Declined the invitation.
    Refused,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "active",
            UserState::Pending => "pending",
            UserState::Suspended => "suspended",
            UserState::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<UserState> {
        match s {
            "active" => Some(UserState::Active),
            "pending" => Some(UserState::Pending),
            "suspended" => Some(UserState::Suspended),
            "refused" => Some(UserState::Refused),
            _ => None,
        }
    }
}

/// A user of the API and the portal. Operators have no account; the others
/// exactly one. A person logs in with their e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub account: Option<String>,
    /// Lower case; unique among users.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub state: UserState,
    /// `en` or `it`: the portal's pages and the e-mails.
    #[serde(default = "english")]
    pub language: String,
}

fn english() -> String {
    "en".into()
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// A token just issued: the only time its text is shown.
#[derive(Clone, Serialize)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// Give as `Authorization: Bearer <token>`.
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("info", &self.info)
            .field("token", &"***")
            .finish()
    }
}

/// A live session: its user and the CSRF token cookie-authenticated
/// writes must carry.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: User,
    pub csrf_token: String,
}
