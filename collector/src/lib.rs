//! meterlink collector: gRPC ingest with mutual TLS, the store, the REST API.

pub mod agents;
pub mod api;
pub mod auth;
pub mod config;
pub mod exit;
pub mod filing;
pub mod ingest;
pub mod mailer;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pki;
pub mod portal;
pub mod requests;
pub mod server;
pub mod store;
pub mod token;
pub mod users;
