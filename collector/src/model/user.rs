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
    #[serde(default)]
    pub first_name: String,
    /// Surname: users are searched by it.
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub phone: String,
    /// The companies of their organisation the user sees; None: all of them.
    #[serde(default)]
    pub companies: Option<Vec<String>>,
    /// Their company's organisation (read only).
    #[serde(default, skip_deserializing)]
    pub organisation: Option<String>,
    /// The companies the user sees, resolved by the store (read only).
    #[serde(default, skip_deserializing)]
    pub sees: Vec<String>,
    /// Whether logging in asks for a TOTP code (read only).
    #[serde(default, skip_deserializing)]
    pub totp: bool,
}

impl User {
    /// A user with the defaults for everything but these.
    pub fn new(id: &str, name: &str, role: Role, account: Option<&str>) -> User {
        User {
            id: id.into(),
            name: name.into(),
            role,
            account: account.map(str::to_string),
            email: None,
            state: UserState::Active,
            language: english(),
            first_name: String::new(),
            last_name: String::new(),
            phone: String::new(),
            companies: None,
            organisation: None,
            sees: Vec::new(),
            totp: false,
        }
    }
}

fn english() -> String {
    "en".into()
}

/// What a person is told of by e-mail: the events of the portal.
pub const NOTIFICATION_EVENTS: [&str; 5] = [
    "request_opened",
    "request_updated",
    "request_closed",
    "meter_reading_due",
    "consumables",
];

/// One event's e-mail setting: off, or on for some products and groups
/// (both empty: every product the person sees). An event without a
/// setting is on for every product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSetting {
    /// One of `NOTIFICATION_EVENTS`.
    pub event: String,
    pub enabled: bool,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub groups: Vec<i64>,
}

/// The personal data a person changes themselves.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
}

/// A person's second factor as stored.
#[derive(Debug, Clone)]
pub struct TotpState {
    pub secret_b32: String,
    pub enabled: bool,
    pub last_step: i64,
}

/// Which users a list holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    pub account: Option<String>,
    /// The start of their surname, any case.
    pub surname: Option<String>,
    pub state: Option<UserState>,
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
