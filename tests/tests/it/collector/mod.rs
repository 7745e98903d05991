//! The collector on its own: the REST API on both stores, people logging
//! in, the outbox to an external portal, replicas on one PostgreSQL.

mod api;
mod outbox;
mod replicas;
mod sessions;
