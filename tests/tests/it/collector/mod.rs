//! The collector on its own: the REST API on both stores, people logging
//! in, e-mail notifications through a real SMTP server, the outbox to an
//! external portal, replicas on one PostgreSQL.

mod activity;
mod api;
mod configuration;
mod email;
mod knowledge;
mod outbox;
mod people;
mod replicas;
mod sessions;
mod smtp_tls;
mod web;
