//! Who calls the REST API and what they may see and change (invariant 7,
//! user side). The policy here does no IO: the API asks it with the caller
//! and the row in question. It depends on the model only (invariant C2).

pub mod password;
pub mod totp;

use crate::model::{Group, Product, ProductUpdate, Role, ServiceRequest, User};

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
    /// Name the product administrators of products and groups.
    AssignAdministrators,
    /// Read the audit log (operators all of it, account managers their
    /// organisation's).
    SeeAudit,
}

impl User {
    /// The companies (account ids) the caller is confined to; None: an
    /// operator, all of them. A customer user sees the ones the store
    /// resolved (`sees`): none when they have no company.
    pub fn confined_to(&self) -> Option<&[String]> {
        match self.role {
            Role::Operator => None,
            _ => Some(&self.sees),
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
                    | Action::AssignAdministrators
                    | Action::SeeAudit
            ),
            // Their own groups, of products they administer (`sees_group`).
            Role::ProductAdministrator => matches!(a, Action::ManageGroups),
        }
    }

    pub fn sees_account(&self, account: &str) -> bool {
        self.confined_to()
            .is_none_or(|own| own.iter().any(|a| a == account))
    }

    fn sees_account_of(&self, account: Option<&str>) -> bool {
        account.is_some_and(|a| self.sees_account(a))
    }

    pub fn sees_product(&self, p: &Product) -> bool {
        self.sees_product_of(p.account.as_deref(), &p.administrators)
    }

    /// `sees_product` from the two facts it rests on: the product's account
    /// and its administrators (its own and its groups').
    pub fn sees_product_of(&self, account: Option<&str>, administrators: &[String]) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => self.sees_account_of(account),
            Role::ProductAdministrator => {
                self.sees_account_of(account) && administrators.iter().any(|a| a == &self.id)
            }
        }
    }

    /// A request of the caller's companies; a product administrator also
    /// needs the request's product (`product`, looked up by the caller).
    pub fn sees_request(&self, r: &ServiceRequest, product: Option<&Product>) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => self.sees_account_of(r.account.as_deref()),
            Role::ProductAdministrator => {
                self.sees_account_of(r.account.as_deref())
                    && product.is_some_and(|p| Some(&p.serial) == r.serial.as_ref())
                    && product.is_some_and(|p| self.sees_product(p))
            }
        }
    }

    /// A group: account managers every group of their companies, product
    /// administrators the groups they made.
    pub fn sees_group(&self, g: &Group) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => self.sees_account(&g.account),
            Role::ProductAdministrator => {
                self.sees_account(&g.account) && g.created_by.as_deref() == Some(self.id.as_str())
            }
        }
    }

    /// Another user: operators see everyone, account managers the users of
    /// their companies, everyone themselves.
    pub fn sees_user(&self, u: &User) -> bool {
        u.id == self.id
            || match self.role {
                Role::Operator => true,
                Role::AccountManager => {
                    u.role != Role::Operator && self.sees_account_of(u.account.as_deref())
                }
                Role::ProductAdministrator => false,
            }
    }

    /// May the caller create or replace `u`? Account managers make users of
    /// their own companies only, never operators, and never see wider than
    /// they do themselves.
    pub fn may_write_user(&self, u: &User) -> bool {
        match self.role {
            Role::Operator => true,
            Role::AccountManager => {
                let scope_ok = match (&self.companies, &u.companies) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some(theirs)) => theirs.iter().all(|c| self.sees_account(c)),
                };
                u.role != Role::Operator && self.sees_account_of(u.account.as_deref()) && scope_ok
            }
            Role::ProductAdministrator => false,
        }
    }

    /// The fields of `u` the caller may not change: contract data
    /// (account, eMaintenance, billing day, entitlements) is the
    /// operator's; the administrators are the account manager's.
    pub fn refused_fields(&self, u: &ProductUpdate) -> Vec<&'static str> {
        let set = [
            ("account", u.account.is_some()),
            ("emaintenance", u.emaintenance.is_some()),
            ("billing_day", u.billing_day.is_some()),
            ("entitlements", u.entitlements.is_some()),
            ("terms", u.terms.is_some()),
            ("administrators", u.administrators.is_some()),
            ("site_address", u.site_address.is_some()),
        ];
        let allowed: &[&str] = match self.role {
            Role::Operator => return Vec::new(),
            Role::AccountManager => &["administrators", "site_address"],
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
