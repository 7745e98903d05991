//! Who calls the REST API and what they may see and change (invariant 7,
//! user side). The policy here does no IO: the API asks it with the caller
//! and the row in question. It depends on the model only (invariant C2).

pub mod password;

use crate::model::{Product, ProductUpdate, Role, ServiceRequest, User};

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
    /// Make join tokens that enroll agents into the account.
    EnrollAgents,
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
                Action::SeeAgents
                    | Action::Billing
                    | Action::ManageGroups
                    | Action::ManageUsers
                    | Action::EnrollAgents
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

#[cfg(test)]
mod tests;
