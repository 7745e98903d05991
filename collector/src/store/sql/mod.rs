//! The store's SQL, written once for both backends. `sqlite.rs` and
//! `postgres.rs` each mount this folder as their own module (`#[path]`), so
//! it is compiled once per backend against that backend's dialect, which the
//! mounting module defines (see ARCHITECTURE.md, invariant S1):
//!
//! - `Db`, the sqlx database, and `Backend`, the store struct (with `pool`,
//!   `label` and `settings`);
//! - `MIGRATIONS` (its `migrations/<dialect>/*.sql`), `MIGRATION_LOCK`,
//!   `VERSION_TABLE`, `LOCK_PRODUCTS`, `READING_BEFORE` and `READING_AFTER`
//!   (a counter's filed neighbours of a time);
//! - `Backend::new_observations`, the duplicate check, and the bulk writes
//!   `write_products`, `write_readings` and `write_current`, which differ by
//!   backend;
//! - `push_key_set(qb, keys)`: ` = ANY($n)` or ` IN ($n, ...)` after a
//!   column, as the backend binds a set of keys best.
//!
//! Placeholders are `$n`, which both backends accept; QueryBuilder writes
//! each backend's own. Integers are 64-bit and flags are 0/1 in both.

use super::{
    push_key_set, Backend, Db, ANALYZE_REQUESTS, BACKEND, BEGIN_WRITE, LOCK_PRODUCTS, MIGRATIONS,
    MIGRATION_LOCK, READING_AFTER, READING_BEFORE, VERSION_TABLE,
};

mod accounts;
mod audit;
mod billing;
mod clock;
mod configuration;
mod contracts;
mod email;
mod enrollment;
mod groups;
mod ingest;
mod invitations;
mod kb;
mod links;
mod migrate;
mod organisations;
mod outbox;
mod products;
mod profile;
mod readings;
mod registrations;
mod requests;
mod rows;
#[allow(
    unused_imports,
    reason = "the SQLite backend's push_key_set uses it; PostgreSQL binds an array"
)]
pub(crate) use rows::in_list;
mod series;
mod sessions;
mod totp;
mod users;

#[cfg(test)]
pub(super) mod migration_tests;

pub(super) use ingest::{ProductSeen, PRODUCT_SEEN_AGAIN};
pub(super) use readings::{CurrentRow, NewReading, CURRENT_AGAIN};
pub(super) use rows::Tx;

impl Backend {
    /// A transaction for a change (`BEGIN_WRITE`: on SQLite it holds the
    /// write lock from its start).
    pub(super) async fn begin_write(&self) -> Result<rows::Tx, crate::store::StoreError> {
        self.pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(|e| self.err(e))
    }
}
