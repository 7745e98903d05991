//! What every statement shares: the transaction and row types, the column
//! lists, and rows turned into model values.

use crate::model::{Account, Product, Reading, ServiceRequest};
use crate::model::{Role, User};
use crate::store::encoding::request_number;
use crate::store::StoreError;
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

use super::{Backend, Db, BACKEND};

pub(crate) type Tx = sqlx::Transaction<'static, Db>;
pub(super) type DbRow = <Db as sqlx::Database>::Row;

pub(super) const PRODUCT_COLS: &str =
    "p.serial, p.account_id, p.vendor, p.model, p.firmware, p.mac, p.address, \
     p.alt_name, p.site_address, p.location, p.emaintenance, p.billing_day, \
     p.entitlements, p.agent_id, p.first_seen_ms, p.last_seen_ms, p.terms";

pub(super) const REQUEST_COLS: &str =
    "request_id, account_id, serial, kind, priority, state, opened_by, \
     fingerprint, title, code, kb_article, occurrences, first_seen_ms, last_seen_ms, \
     opened_at_ms, closed_at_ms, close_reason, description, contact_name, contact_phone, \
     location, destination_address, destination_location, status, due_at_ms";

pub(super) const READING_COLS: &str =
    "counter_id, value, raw_value, taken_at_ms, filed_at_ms, agent_id, seq, state, anomaly";

pub(super) fn product_from(r: &DbRow) -> Product {
    let entitlements: String = r.get(12);
    Product {
        serial: r.get(0),
        account: r.get(1),
        vendor: r.get(2),
        model: r.get(3),
        firmware: r.get(4),
        mac: r.get(5),
        address: r.get(6),
        alt_name: r.get(7),
        site_address: r.get(8),
        location: r.get(9),
        administrators: Vec::new(),
        emaintenance: r.get::<i64, _>(10) != 0,
        billing_day: r.get::<Option<i64>, _>(11).map(|d| d as u32),
        entitlements: serde_json::from_str(&entitlements).unwrap_or_default(),
        groups: Vec::new(),
        agent: r.get(13),
        first_seen_ms: r.get(14),
        last_seen_ms: r.get(15),
        terms: r
            .get::<Option<&str>, _>(16)
            .and_then(|t| serde_json::from_str(t).ok()),
        counters: BTreeMap::new(),
    }
}

pub(super) fn reading_from(r: &DbRow) -> Reading {
    let agent: String = r.get(5);
    let anomaly: Option<String> = r.get(8);
    Reading {
        counter: r.get(0),
        value: r.get::<i64, _>(1) as u64,
        raw_value: r.get::<Option<i64>, _>(2).map(|v| v as u64),
        taken_at_ms: r.get(3),
        filed_at_ms: r.get(4),
        source: if agent.starts_with("manual:") {
            "manual".into()
        } else {
            "agent".into()
        },
        agent: agent
            .strip_prefix("manual:")
            .map(str::to_string)
            .unwrap_or(agent),
        seq: r.get::<i64, _>(6) as u64,
        state: r.get(7),
        anomaly: anomaly.and_then(|a| serde_json::from_str(&a).ok()),
    }
}

pub(super) fn request_from(r: &DbRow) -> ServiceRequest {
    ServiceRequest {
        number: request_number(r.get(0)),
        account: r.get(1),
        serial: r.get(2),
        kind: r.get(3),
        priority: r.get(4),
        state: r.get(5),
        opened_by: r.get(6),
        fingerprint: r.get(7),
        title: r.get(8),
        code: r.get(9),
        kb_article: r.get(10),
        occurrences: r.get::<i64, _>(11) as u32,
        first_seen_ms: r.get(12),
        last_seen_ms: r.get(13),
        opened_at_ms: r.get(14),
        closed_at_ms: r.get(15),
        close_reason: r.get(16),
        description: r.get(17),
        contact_name: r.get(18),
        contact_phone: r.get(19),
        location: r.get(20),
        destination_address: r.get(21),
        destination_location: r.get(22),
        status: r.get(23),
        due_at_ms: r.get(24),
        overdue: {
            let due: Option<i64> = r.get(24);
            let open = r.get::<&str, _>(5) == "open";
            open && due.is_some_and(|d| d < crate::store::now_ms())
        },
        events: Vec::new(),
    }
}

/// The columns `user_from` reads, in its order, from `users` (not aliased).
/// Columns a query adds after them start at `USER_N`.
pub(super) const USER_COLS: &str = concat!(
    "users.user_id, users.name, users.role, users.account_id, users.email, users.state, \
     users.language, users.first_name, users.last_name, users.phone, users.totp_enabled, \
     (SELECT oa.organisation_id FROM accounts oa WHERE oa.account_id = users.account_id), ",
    user_sees!(),
    ", EXISTS (SELECT 1 FROM user_companies uc WHERE uc.user_id = users.user_id)"
);
pub(super) const USER_N: usize = 14;

/// None for a role or state this collector does not know (a newer schema's).
/// An operator sees every company: `sees` stays empty for them.
pub(super) fn user_from(r: &DbRow) -> Option<User> {
    let role = Role::parse(r.get::<&str, _>(2))?;
    let sees: Vec<String> = match role {
        Role::Operator => Vec::new(),
        _ => serde_json::from_str(r.get::<&str, _>(12)).unwrap_or_default(),
    };
    let scoped = r.get::<bool, _>(13);
    Some(User {
        id: r.get(0),
        name: r.get(1),
        role,
        account: r.get(3),
        email: r.get(4),
        state: crate::model::UserState::parse(r.get::<&str, _>(5))?,
        language: r.get(6),
        first_name: r.get(7),
        last_name: r.get(8),
        phone: r.get(9),
        totp: r.get::<i64, _>(10) != 0,
        organisation: r.get(11),
        companies: scoped.then(|| sees.clone()),
        sees,
    })
}

/// The columns `account_from` reads (from `accounts`).
pub(super) const ACCOUNT_COLS: &str =
    "account_id, name, billing_code, service_code, auto_create, time_zone, organisation_id";

pub(super) fn account_from(r: &DbRow) -> Account {
    Account {
        id: r.get(0),
        name: r.get(1),
        billing_code: r.get(2),
        service_code: r.get(3),
        auto_create_products: r.get::<i64, _>(4) != 0,
        time_zone: r.get(5),
        organisation: r.get(6),
    }
}

/// `text` with LIKE's wildcards escaped (the pattern says `ESCAPE '\\'`).
pub(super) fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The serials `user` administers, directly or through a group, as a
/// subquery: `... serial IN <this>`.
pub(super) fn administered_by<'a>(qb: &mut QueryBuilder<'a, Db>, user: &'a str) {
    qb.push("(SELECT pa.serial FROM product_administrators pa WHERE pa.user_id = ")
        .push_bind(user)
        .push(
            " UNION SELECT gp.serial FROM group_products gp JOIN group_administrators ga \
             ON ga.group_id = gp.group_id WHERE ga.user_id = ",
        )
        .push_bind(user)
        .push(")");
}

/// `AND <column> IN (accounts)`, nothing when `accounts` is None, and a
/// filter nothing passes when it is empty.
pub(super) fn within_accounts<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    column: &str,
    accounts: Option<&'a [String]>,
) {
    let Some(accounts) = accounts else { return };
    qb.push(format!(" AND {column} IN "));
    if accounts.is_empty() {
        qb.push("(NULL)");
    } else {
        in_list(qb, accounts.iter().map(String::as_str));
    }
}

pub(crate) fn in_list<'a>(qb: &mut QueryBuilder<'a, Db>, items: impl IntoIterator<Item = &'a str>) {
    qb.push("(");
    let mut sep = qb.separated(", ");
    for i in items {
        sep.push_bind(i);
    }
    sep.push_unseparated(")");
}

impl Backend {
    pub fn backend(&self) -> &'static str {
        BACKEND
    }

    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    pub(crate) fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Db {
            path: self.label.clone(),
            source,
        }
    }
}
