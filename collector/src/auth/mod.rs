//! Who calls the REST API and what they may see and change (invariant 7,
//! user side). The policy here does no IO: the API asks it with the caller
//! and the row in question. Tokens are made here too; only their SHA-256
//! is stored.

use crate::store::{Product, ProductUpdate, ServiceRequest};
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

/// A user of the API. Operators have no account; the others exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub account: Option<String>,
}

/// What a caller may do beyond reading its own products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create or change accounts.
    ManageAccounts,
    /// Assign agents to accounts, see unassigned devices, the outbox.
    ManageFleet,
    /// Write knowledge-base articles.
    ManageKnowledgeBase,
    /// See the account's agents (last seen, backlog).
    SeeAgents,
    /// The billing export.
    Billing,
    /// Create, rename and delete groups, change their members.
    ManageGroups,
    /// Create users of the account and give them tokens.
    ManageUsers,
}

impl User {
    /// The account the caller is confined to; None: an operator, all of them.
    pub fn confined_to(&self) -> Option<&str> {
        match self.role {
            Role::Operator => None,
            // A customer user without an account sees nothing (the store
            // refuses such users; this keeps the policy total).
            _ => Some(self.account.as_deref().unwrap_or("\u{0}none")),
        }
    }

    pub fn may(&self, a: Action) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => matches!(
                a,
                Action::SeeAgents | Action::Billing | Action::ManageGroups | Action::ManageUsers
            ),
            Role::ProductAdministrator => false,
        }
    }

    pub fn sees_account(&self, account: &str) -> bool {
        self.confined_to().is_none_or(|own| own == account)
    }

    pub fn sees_product(&self, p: &Product) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => p.account.as_deref() == self.confined_to(),
            Role::ProductAdministrator => {
                p.account.as_deref() == self.confined_to()
                    && p.administrator.as_deref() == Some(self.id.as_str())
            }
        }
    }

    /// A request of the caller's account; a product administrator also
    /// needs the request's product (`product`, looked up by the caller).
    pub fn sees_request(&self, r: &ServiceRequest, product: Option<&Product>) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => r.account.as_deref() == self.confined_to(),
            Role::ProductAdministrator => {
                r.account.as_deref() == self.confined_to()
                    && product.is_some_and(|p| Some(&p.serial) == r.serial.as_ref())
                    && product.is_some_and(|p| self.sees_product(p))
            }
        }
    }

    /// Another user: operators see everyone, account managers their
    /// account's users, everyone themselves.
    pub fn sees_user(&self, u: &User) -> bool {
        u.id == self.id
            || match self.role {
                Role::Operator => true,
                Role::AccountManager => u.role != Role::Operator && u.account == self.account,
                Role::ProductAdministrator => false,
            }
    }

    /// May the caller create or replace `u`? Account managers make users of
    /// their own account only, never operators.
    pub fn may_write_user(&self, u: &User) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => u.role != Role::Operator && u.account == self.account,
            Role::ProductAdministrator => false,
        }
    }

    /// The fields of `u` the caller may not change: contract data
    /// (account, eMaintenance, billing day, entitlements) is the
    /// operator's; the administrator is the account manager's.
    pub fn refused_fields(&self, u: &ProductUpdate) -> Vec<&'static str> {
        let set = [
            ("account", u.account.is_some()),
            ("emaintenance", u.emaintenance.is_some()),
            ("billing_day", u.billing_day.is_some()),
            ("entitlements", u.entitlements.is_some()),
            ("administrator", u.administrator.is_some()),
            ("site_address", u.site_address.is_some()),
        ];
        let allowed: &[&str] = match self.role {
            Role::Operator => return Vec::new(),
            Role::AccountManager => &["administrator", "site_address"],
            Role::ProductAdministrator => &[],
        };
        set.iter()
            .filter(|(f, present)| *present && !allowed.contains(f))
            .map(|(f, _)| *f)
            .collect()
    }
}

/// The prefix of every API token, so a leaked one is easy to recognise
/// (secret scanners) and to tell from other credentials.
pub const TOKEN_PREFIX: &str = "mlk_";

/// A new token: its public id, the text handed to the user once, and the
/// hash kept in the store.
pub struct NewToken {
    pub id: String,
    pub text: Secret,
    pub secret_hash: String,
}

/// Token text: never in Debug output or logs (invariant 8).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token `mlk_<id>_<secret>`: 8 random bytes of id (the lookup key) and
/// 32 of secret, hex.
pub fn generate() -> Result<NewToken, String> {
    use ring::rand::SecureRandom;
    let mut raw = [0u8; 40];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| "the system's random source failed".to_string())?;
    let id = hex(&raw[..8]);
    let secret = hex(&raw[8..]);
    Ok(NewToken {
        secret_hash: hash_secret(&secret),
        text: Secret(format!("{TOKEN_PREFIX}{id}_{secret}")),
        id,
    })
}

/// SHA-256 of the secret part, hex. A plain hash is enough: the secret is
/// 256 random bits, not a password that could be guessed.
pub fn hash_secret(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Splits token text into (id, secret); None when it is not one of ours.
pub fn parse_token(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex(id, 16) && is_hex(secret, 64)).then_some((id, secret))
}

/// Compares two hashes in time independent of where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
